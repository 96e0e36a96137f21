# SPDX-License-Identifier: Apache-2.0
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import oikostest  # noqa: E402


@pytest.fixture(autouse=True)
def pg_databases():
    """On a PostgreSQL run, the databases made during a test are dropped
    after it (after its servers stopped), so the cluster stays small."""
    mark = oikostest.pg_mark()
    yield
    if oikostest.PG_DIR:
        oikostest.pg_cleanup(mark)


@pytest.fixture
def server(tmp_path):
    """A fresh, initialised (5 shares, threshold 3) and unsealed region."""
    s = oikostest.Server(tmp_path).start()
    init = s.init(5, 3)
    s.shares = init["shares"]
    s.operator_token = init["operator_token"]
    yield s
    s.stop()


@pytest.fixture
def user(server):
    """An account on `server` with a session: (account, token)."""
    account = server.signup("IN")
    return account, server.login(account)
