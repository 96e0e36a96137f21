# SPDX-License-Identifier: Apache-2.0
"""End to end: CardDAV (RFC 6352, WebDAV sync RFC 6578, extended MKCOL RFC
5689) against a real oikosd on 127.0.0.1: discovery, PROPFIND, PUT, GET
and DELETE with preconditions, multiget, query, sync-collection, address
books made and deleted, consent, the corpus of real vCards byte-exact, the
redirect of another region's account, and a real client (vdirsyncer)
syncing 500 cards both ways."""

import base64
import glob
import os
import shutil
import socket
import subprocess
import textwrap
import urllib.parse
import xml.etree.ElementTree as ET

import pytest

from oikostest import Server, canary_hits, data_path, free_ports, store_query

PASSWORD = "correct horse battery"
SHARED = os.environ.get("OIKOS_SHARED", os.path.join(os.path.dirname(__file__), "../../../shared"))
VCARDS = os.path.join(SHARED, "data", "vcards")
D = "{DAV:}"
C = "{urn:ietf:params:xml:ns:carddav}"
CS = "{http://calendarserver.org/ns/}"
NS = 'xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:carddav" ' \
     'xmlns:cs="http://calendarserver.org/ns/"'


def card(uid, fn, extra=""):
    return ("BEGIN:VCARD\r\nVERSION:3.0\r\nUID:%s\r\nFN:%s\r\nN:%s;;;;\r\n%sEND:VCARD\r\n"
            % (uid, fn, fn, extra)).encode()


class Dav:
    """A CardDAV client of one account, speaking raw HTTP."""

    def __init__(self, server, account, password=PASSWORD):
        self.s = server
        self.account = account
        self.auth = "Basic " + base64.b64encode(("%s:%s" % (account, password)).encode()).decode()
        self.home = "/dav/addressbooks/%s/" % account
        self.book = self.home + "contacts/"

    def req(self, method, path, body=None, headers=None, auth=True):
        h = {"Authorization": self.auth} if auth else {}
        h.update(headers or {})
        if isinstance(body, str):
            body = body.encode()
        if body is not None and method in ("PROPFIND", "REPORT", "MKCOL"):
            h.setdefault("Content-Type", "application/xml; charset=utf-8")
        return self.s.request(method, path, raw=body, headers=h)

    def put(self, name, data, book=None, headers=None):
        return self.req("PUT", (book or self.book) + urllib.parse.quote(name), data,
                        dict({"Content-Type": "text/vcard"}, **(headers or {})))

    def get(self, name, book=None):
        return self.req("GET", (book or self.book) + urllib.parse.quote(name))

    def delete(self, name, book=None, headers=None):
        return self.req("DELETE", (book or self.book) + urllib.parse.quote(name), None, headers)

    def propfind(self, path, props, depth="0"):
        body = "<d:propfind %s><d:prop>%s</d:prop></d:propfind>" % (NS, props)
        return self.req("PROPFIND", path, body, {"Depth": depth})

    def multiget(self, hrefs, book=None):
        body = "<c:addressbook-multiget %s><d:prop><d:getetag/><c:address-data/></d:prop>%s" \
               "</c:addressbook-multiget>" % (NS, "".join("<d:href>%s</d:href>" % h for h in hrefs))
        return self.req("REPORT", book or self.book, body, {"Depth": "1"})

    def sync(self, token="", book=None, limit=None, props="<d:getetag/>"):
        lim = "<d:limit><d:nresults>%d</d:nresults></d:limit>" % limit if limit else ""
        body = "<d:sync-collection %s><d:sync-token>%s</d:sync-token><d:sync-level>1" \
               "</d:sync-level>%s<d:prop>%s</d:prop></d:sync-collection>" % (NS, token, lim, props)
        return self.req("REPORT", book or self.book, body)

    def query(self, filt, test="anyof"):
        body = "<c:addressbook-query %s><d:prop><d:getetag/></d:prop><c:filter test=\"%s\">%s" \
               "</c:filter></c:addressbook-query>" % (NS, test, filt)
        return self.req("REPORT", self.book, body, {"Depth": "1"})


def ms(r):
    """A 207 answer as {href: (status or None, {prop tag: (status, element)})} and its token."""
    assert r.status == 207, (r.status, r.body[:500])
    assert r.header("Content-Type").startswith("application/xml")
    root = ET.fromstring(r.body)
    assert root.tag == D + "multistatus"
    out = {}
    for resp in root.findall(D + "response"):
        href = urllib.parse.unquote(resp.find(D + "href").text)
        st = resp.find(D + "status")
        props = {}
        for ps in resp.findall(D + "propstat"):
            code = int(ps.find(D + "status").text.split()[1])
            for p in ps.find(D + "prop"):
                props[p.tag] = (code, p)
        out[href] = (int(st.text.split()[1]) if st is not None else None, props)
    tok = root.find(D + "sync-token")
    return out, tok.text if tok is not None else None


def announce(server, method, path, auth, length):
    """The status of a request that announces a body of length bytes and sends none."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    try:
        sock.sendall(("%s %s HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\n"
                      "Content-Length: %d\r\n\r\n" % (method, path, auth, length)).encode())
        head = sock.recv(4096)
    finally:
        sock.close()
    return int(head.split(b" ")[1])


def error_of(r):
    root = ET.fromstring(r.body)
    assert root.tag == D + "error", r.body
    return [child.tag for child in root]


@pytest.fixture
def dav(server):
    account = server.signup("IN", PASSWORD)
    token = server.login(account, PASSWORD)
    r = server.request("PUT", "/v1/me/consents/contacts", {"granted": True}, token=token)
    assert r.status == 200, r.body
    d = Dav(server, account)
    d.token = token
    return d


def test_discovery(server, dav):
    r = dav.req("OPTIONS", "/dav/", auth=False)
    assert r.status == 200
    assert [c.strip() for c in r.header("DAV").split(",")] == ["1", "3", "addressbook"]
    assert "REPORT" in r.header("Allow") and "MKCOL" in r.header("Allow")

    r = dav.req("PROPFIND", "/.well-known/carddav", "<d:propfind %s/>" % NS, auth=False)
    assert r.status == 301 and r.header("Location") == "/dav/"
    r = dav.req("GET", "/.well-known/carddav", auth=False)
    assert r.status == 301 and r.header("Location") == "/dav/"

    # credentials are asked for, and checked
    r = dav.req("PROPFIND", "/dav/", "", {"Depth": "0"}, auth=False)
    assert r.status == 401 and r.header("WWW-Authenticate").startswith("Basic")
    bad = Dav(server, dav.account, "wrong password!")
    r = bad.propfind("/dav/", "<d:current-user-principal/>")
    assert r.status == 401 and r.header("WWW-Authenticate").startswith("Basic")
    r = Dav(server, "in-aaaaaaaaaaaaaaaaaaaa").propfind("/dav/", "<d:current-user-principal/>")
    assert r.status == 401

    res, _ = ms(dav.propfind("/dav/", "<d:current-user-principal/>"))
    principal = res["/dav/"][1][D + "current-user-principal"][1].find(D + "href").text
    assert principal == "/dav/principals/%s/" % dav.account
    res, _ = ms(dav.propfind(principal, "<c:addressbook-home-set/><d:displayname/>"
                                        "<d:resourcetype/>"))
    props = res[principal][1]
    home = props[C + "addressbook-home-set"][1].find(D + "href").text
    assert home == dav.home
    assert props[D + "resourcetype"][1].find(D + "principal") is not None

    res, _ = ms(dav.propfind(home, "<d:resourcetype/><d:displayname/>"
                                   "<d:current-user-privilege-set/>", depth="1"))
    assert set(res) == {home, dav.book}
    rt = res[dav.book][1][D + "resourcetype"][1]
    assert rt.find(C + "addressbook") is not None and rt.find(D + "collection") is not None
    assert res[dav.book][1][D + "displayname"][1].text == "Contacts"
    privs = res[dav.book][1][D + "current-user-privilege-set"][1]
    assert privs.find(D + "privilege/" + D + "write") is not None

    # another account's tree is not this account's
    other = Dav(server, server.signup("IN", PASSWORD))
    r = other.propfind(dav.book, "<d:getetag/>")
    assert r.status == 403
    r = other.req("GET", dav.book + "x.vcf")
    assert r.status == 403


def test_consent_off_is_403_with_how_to_turn_it_on(server):
    account = server.signup("IN", PASSWORD)
    token = server.login(account, PASSWORD)
    d = Dav(server, account)
    for r in (d.put("a.vcf", card("u1", "Zebulon Canary")),
              d.propfind(d.book, "<d:getetag/>", depth="1"),
              d.sync(),
              d.get("a.vcf")):
        assert r.status == 403, r.body
        msg = r.json()["error"]["message"]
        assert "turn them on" in msg.lower() and "consent on contacts" in msg
    # nothing was stored: once turned on, the service is empty
    r = server.request("PUT", "/v1/me/consents/contacts", {"granted": True}, token=token)
    assert r.status == 200
    items = server.request("GET", "/v1/me/data/contacts", token=token).json()["items"]
    assert items == []
    # and turning it off again stops CardDAV at once
    assert d.put("a.vcf", card("u1", "Zebulon Canary")).status == 201
    assert d.req("MKCOL", d.home + "work/").status == 201
    assert dav_records(server, account) > 0
    r = server.request("DELETE", "/v1/me/consents/contacts", token=token)
    assert r.status == 200
    assert d.get("a.vcf").status == 403
    assert d.sync().status == 403
    # and nothing of the address books is kept: books, UID index
    assert dav_records(server, account) == 0


def dav_records(server, account):
    """CardDAV's own records of an account in the data store."""
    rows = store_query(os.path.join(server.data, "oikos.db"),
                       "SELECT count(*) FROM records WHERE account = ? AND kind IN"
                       " ('davbook', 'davuid', 'davres')", account)
    return rows[0][0]


def test_put_get_delete_with_preconditions(server, dav):
    v1 = card("pgd-1", "Ada Lovelace", "EMAIL:ada@example.org\r\n")
    r = dav.put("ada.vcf", v1, headers={"If-None-Match": "*"})
    assert r.status == 201
    etag1 = r.header("ETag")
    assert etag1.startswith('"') and etag1.endswith('"')
    r = dav.put("ada.vcf", v1, headers={"If-None-Match": "*"})
    assert r.status == 412
    r = dav.get("ada.vcf")
    assert r.status == 200 and r.body == v1 and r.header("ETag") == etag1
    assert r.header("Content-Type").startswith("text/vcard")

    v2 = card("pgd-1", "Ada King", "EMAIL:ada@example.org\r\n")
    assert dav.put("ada.vcf", v2, headers={"If-Match": '"0000000000000000"'}).status == 412
    assert dav.put("ada.vcf", v2, headers={"If-Match": "W/" + etag1}).status == 412
    r = dav.put("ada.vcf", v2, headers={"If-Match": etag1})
    assert r.status == 204
    etag2 = r.header("ETag")
    assert etag2 != etag1
    assert dav.get("ada.vcf").body == v2
    # If-Match on a missing resource fails; a plain PUT makes it
    assert dav.put("new.vcf", card("pgd-2", "N"), headers={"If-Match": "*"}).status == 412
    assert dav.get("new.vcf").status == 404
    assert dav.req("HEAD", dav.book + "ada.vcf").status == 200

    assert dav.delete("ada.vcf", headers={"If-Match": etag1}).status == 412
    assert dav.get("ada.vcf").status == 200
    assert dav.delete("ada.vcf", headers={"If-Match": etag2}).status == 204
    assert dav.get("ada.vcf").status == 404
    assert dav.delete("ada.vcf").status == 404
    assert dav.req("PUT", dav.book + "x.vcf", None, {"If-Match": "bogus"}).status == 400


def test_garbage_is_refused_and_nothing_stored(server, dav):
    before = server.request("GET", "/v1/me/data/contacts", token=dav.token).json()["items"]
    for bad in (b"", b"hello", b"\x00\x01\x02" * 100, b"<html>BEGIN:VCARD</html>",
                b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:no end\r\n",
                b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n",
                b"BEGIN:VCARD\r\nVERSION:9.9\r\nFN:x\r\nEND:VCARD\r\n",
                b"BEGIN:VCARD\r\nVERSION:4.0\r\nFN:\xff\xfe\r\nEND:VCARD\r\n"):
        r = dav.put("bad.vcf", bad)
        assert r.status == 400, (bad, r.status)
        assert C + "valid-address-data" in error_of(r)
    # too large: refused on the headers, before the body is read
    assert announce(server, "PUT", dav.book + "big.vcf", dav.auth, (4 << 20) + 1) == 413
    assert server.request("GET", "/v1/me/data/contacts",
                          token=dav.token).json()["items"] == before
    # request bodies: not XML, unknown reports, infinite depth, too many hrefs
    r = dav.req("PROPFIND", dav.book, "<d:propfind", {"Depth": "0"})
    assert r.status == 400 and "XML" in r.json()["error"]["message"]
    r = dav.req("REPORT", dav.book, "<d:unknown-report xmlns:d='DAV:'/>")
    assert r.status == 403 and D + "supported-report" in error_of(r)
    r = dav.req("PROPFIND", dav.book, "", {"Depth": "infinity"})
    assert r.status == 403 and D + "propfind-finite-depth" in error_of(r)
    r = dav.req("PROPFIND", dav.book, "", {"Depth": "7"})
    assert r.status == 400
    many = "".join("<d:href>/dav/x/%d</d:href>" % i for i in range(50001))
    r = dav.req("REPORT", dav.book, "<c:addressbook-multiget %s>%s</c:addressbook-multiget>"
                % (NS, many))
    assert r.status == 400 and "hrefs" in r.json()["error"]["message"]
    r = dav.req("PROPFIND", dav.book, "<!DOCTYPE x [<!ENTITY a 'b'>]><d:propfind %s/>" % NS,
                {"Depth": "0"})
    assert r.status == 400
    assert announce(server, "PROPFIND", dav.book, dav.auth, 9 << 20) == 413
    assert dav.req("GET", "/dav/elsewhere/x").status == 404
    assert dav.req("PUT", dav.home + "contacts/a/b.vcf", card("x", "y")).status == 404


def test_rest_and_carddav_are_one_truth(server, dav):
    v = card("one-truth", "Grace Hopper")
    etag = dav.put("grace.vcf", v).header("ETag")
    # the vCard is the object "contacts/grace.vcf" of the REST API
    r = server.get(dav.token, "contacts", "contacts/grace.vcf")
    assert r.status == 200 and r.body == v and r.header("ETag") == etag
    # an object put through REST is a member of the book
    w = card("rest-made", "Alan Turing")
    assert server.put(dav.token, "contacts", "contacts/alan.vcf", w).status == 201
    res, token = ms(dav.sync())
    assert set(res) == {dav.book + "grace.vcf", dav.book + "alan.vcf"}
    assert ms(dav.multiget([dav.book + "alan.vcf"]))[0][dav.book + "alan.vcf"][1][
        C + "address-data"][1].text.encode() == w
    # a REST delete shows up as a deletion in the next sync
    r = server.request("DELETE", data_path("contacts", "contacts/alan.vcf"), token=dav.token)
    assert r.status == 204
    res, _ = ms(dav.sync(token))
    assert res == {dav.book + "alan.vcf": (404, {})}


def test_propfind_properties(server, dav):
    v = card("props-1", "Hedy Lamarr")
    etag = dav.put("hedy.vcf", v).header("ETag")
    props = ("<d:getetag/><d:getcontenttype/><d:resourcetype/><d:displayname/><d:sync-token/>"
             "<cs:getctag/><d:supported-report-set/><d:quota-used-bytes/>"
             "<d:quota-available-bytes/><c:supported-address-data/><c:max-resource-size/>"
             "<d:getcontentlength/><x:unknown xmlns:x='urn:x'/>")
    res, _ = ms(dav.propfind(dav.book, props, depth="1"))
    assert set(res) == {dav.book, dav.book + "hedy.vcf"}
    book = res[dav.book][1]
    assert book[D + "sync-token"][0] == 200
    assert book[D + "sync-token"][1].text == book[CS + "getctag"][1].text
    reports = [r[0][0].tag for r in book[D + "supported-report-set"][1]]
    assert set(reports) == {C + "addressbook-multiget", C + "addressbook-query",
                            D + "sync-collection"}
    assert int(book[D + "quota-used-bytes"][1].text) >= len(v)
    assert book[D + "quota-available-bytes"][0] == 404
    assert book[D + "getetag"][0] == 404
    assert book["{urn:x}unknown"][0] == 404
    assert int(book[C + "max-resource-size"][1].text) == 4 << 20
    member = res[dav.book + "hedy.vcf"][1]
    assert member[D + "getetag"][1].text == etag
    assert member[D + "getcontenttype"][1].text.startswith("text/vcard")
    assert len(member[D + "resourcetype"][1]) == 0
    assert int(member[D + "getcontentlength"][1].text) == len(v)
    assert member[D + "displayname"][0] == 404
    # depth 0 on the card itself, allprop and propname
    res, _ = ms(dav.propfind(dav.book + "hedy.vcf", "<d:getetag/>"))
    assert res[dav.book + "hedy.vcf"][1][D + "getetag"][1].text == etag
    res, _ = ms(dav.req("PROPFIND", dav.book, "", {"Depth": "1"}))
    assert res[dav.book + "hedy.vcf"][1][D + "getetag"][1].text == etag
    assert D + "getetag" not in res[dav.book][1]  # allprop leaves out what is not there
    res, _ = ms(dav.req("PROPFIND", dav.book, "<d:propfind %s><d:propname/></d:propfind>" % NS,
                        {"Depth": "0"}))
    assert D + "sync-token" in res[dav.book][1]
    # the ctag moves with every change
    before = book[CS + "getctag"][1].text
    dav.put("hedy.vcf", card("props-1", "Hedy Kiesler"))
    res, _ = ms(dav.propfind(dav.book, "<cs:getctag/>"))
    assert res[dav.book][1][CS + "getctag"][1].text != before
    assert dav.propfind(dav.book + "nope.vcf", "<d:getetag/>").status == 404
    assert dav.propfind(dav.home + "nobook/", "<d:getetag/>").status == 404


def test_multiget(server, dav):
    cards = {"m%d.vcf" % i: card("mg-%d" % i, "Person %d" % i) for i in range(5)}
    etags = {n: dav.put(n, v).header("ETag") for n, v in cards.items()}
    hrefs = [dav.book + n for n in cards] + [dav.book + "missing.vcf"]
    res, _ = ms(dav.multiget(hrefs))
    assert set(res) == set(hrefs)
    for n, v in cards.items():
        status, props = res[dav.book + n]
        assert props[D + "getetag"][1].text == etags[n]
        assert props[C + "address-data"][1].text.encode() == v
    assert res[dav.book + "missing.vcf"][0] == 404
    # absolute and percent-encoded hrefs are understood too
    dav.put("with space.vcf", card("mg-space", "Spacey"))
    href = "http://127.0.0.1:%d%swith%%20space.vcf" % (server.port, dav.book)
    res, _ = ms(dav.multiget([href]))
    assert list(res.values())[0][1][D + "getetag"][0] == 200


def test_query(server, dav):
    dav.put("a.vcf", card("q-a", "Élodie Durand",
                          "EMAIL;TYPE=work:elodie@work.example\r\nTEL:+33 1 23\r\n"))
    dav.put("b.vcf", card("q-b", "Bob Martin", "EMAIL;TYPE=home:bob@home.example\r\n"
                                               "NICKNAME:Bobby\r\n"))
    dav.put("c.vcf", card("q-c", "Carol Dubois", "NOTE:likes élan\r\n"))

    def names(r):
        return sorted(h.rsplit("/", 1)[1] for h in ms(r)[0])

    pf = '<c:prop-filter name="%s">%s</c:prop-filter>'
    tm = '<c:text-match match-type="%s"%s>%s</c:text-match>'
    assert names(dav.query(pf % ("FN", tm % ("contains", "", "ÉLODIE")))) == ["a.vcf"]
    assert names(dav.query(pf % ("FN", tm % ("starts-with", "", "bob")))) == ["b.vcf"]
    assert names(dav.query(pf % ("FN", tm % ("ends-with", "", "DUBOIS")))) == ["c.vcf"]
    assert names(dav.query(pf % ("EMAIL", tm % ("equals", "", "bob@home.example")))) == ["b.vcf"]
    assert names(dav.query(pf % ("FN", tm % ("contains", ' collation="i;octet"', "bob")))) == []
    assert names(dav.query(pf % ("FN", tm % ("contains", ' negate-condition="yes"', "o")))) == []
    assert names(dav.query(pf % ("NICKNAME", "<c:is-not-defined/>"))) == ["a.vcf", "c.vcf"]
    param = '<c:param-filter name="TYPE">%s</c:param-filter>' % (tm % ("equals", "", "WORK"))
    assert names(dav.query(pf % ("EMAIL", param))) == ["a.vcf"]
    assert names(dav.query(pf % ("TEL", ""))) == ["a.vcf"]
    both = pf % ("FN", tm % ("contains", "", "o")) + pf % ("NOTE", tm % ("contains", "", "ÉLAN"))
    assert names(dav.query(both, "allof")) == ["c.vcf"]
    assert names(dav.query(both, "anyof")) == ["a.vcf", "b.vcf", "c.vcf"]
    # a limit: the answer says it was cut short
    body = "<c:addressbook-query %s><d:prop><d:getetag/></d:prop><c:filter/><c:limit>" \
           "<c:nresults>2</c:nresults></c:limit></c:addressbook-query>" % NS
    res, _ = ms(dav.req("REPORT", dav.book, body, {"Depth": "1"}))
    assert len([h for h in res if h != dav.book]) == 2 and res[dav.book][0] == 507


def test_sync_collection(server, dav):
    for i in range(6):
        dav.put("s%d.vcf" % i, card("sync-%d" % i, "Sync %d" % i))
    res, token = ms(dav.sync())
    assert len(res) == 6 and all(s is None for s, _ in res.values())
    assert token.startswith("urn:oikos:sync:")
    # nothing changed: nothing listed, same token
    res, token2 = ms(dav.sync(token))
    assert res == {} and token2 == token
    # changes: one new, one changed, one deleted
    dav.put("new.vcf", card("sync-new", "New"))
    changed = dav.put("s1.vcf", card("sync-1", "Sync one")).header("ETag")
    assert dav.delete("s2.vcf").status == 204
    res, token3 = ms(dav.sync(token))
    assert set(res) == {dav.book + "new.vcf", dav.book + "s1.vcf", dav.book + "s2.vcf"}
    assert res[dav.book + "s2.vcf"] == (404, {})
    assert res[dav.book + "s1.vcf"][1][D + "getetag"][1].text == changed
    assert token3 != token
    # an initial sync lists no deletions
    res, _ = ms(dav.sync())
    assert dav.book + "s2.vcf" not in res and len(res) == 6
    # address-data can come with it
    res, _ = ms(dav.sync(token, props="<d:getetag/><c:address-data/>"))
    assert res[dav.book + "new.vcf"][1][C + "address-data"][1].text.encode() == \
        card("sync-new", "New")
    # limits: cut short with a 507 for the collection, then resumed from the token given
    res, tok_a = ms(dav.sync(limit=2))
    assert res[dav.book][0] == 507 and len(res) == 3
    res, tok_b = ms(dav.sync(tok_a, limit=100))
    # the 4 cards not listed yet, and s2, deleted since
    assert len(res) == 5 and dav.book not in res and res[dav.book + "s2.vcf"] == (404, {})
    # invalid tokens: the RFC 6578 error
    for bad in ("bogus", "urn:oikos:sync:00000000-1", token[:-1] + "999999999", "http://x/1"):
        r = dav.sync(bad)
        assert r.status == 403, bad
        assert D + "valid-sync-token" in error_of(r)
    # a token from before contacts were turned off and on again is no longer valid
    server.request("DELETE", "/v1/me/consents/contacts", token=dav.token)
    server.request("PUT", "/v1/me/consents/contacts", {"granted": True}, token=dav.token)
    r = dav.sync(tok_b)
    assert r.status == 403 and D + "valid-sync-token" in error_of(r)
    res, _ = ms(dav.sync())
    assert res == {}


def test_one_uid_per_book(server, dav):
    assert dav.put("x.vcf", card("same-uid", "X")).status == 201
    r = dav.put("y.vcf", card("same-uid", "Y"))
    assert r.status == 409
    root = ET.fromstring(r.body)
    conflict = root.find(C + "no-uid-conflict")
    assert conflict is not None and conflict.find(D + "href").text == dav.book + "x.vcf"
    assert dav.get("y.vcf").status == 404
    # the same resource may keep its UID; another book may hold the same UID
    assert dav.put("x.vcf", card("same-uid", "X2")).status == 204
    assert dav.req("MKCOL", dav.home + "other/").status == 201
    assert dav.put("y.vcf", card("same-uid", "Y"), book=dav.home + "other/").status == 201
    # a UID that changes frees the old one; a deleted card frees its UID
    assert dav.put("x.vcf", card("changed-uid", "X3")).status == 204
    assert dav.put("y.vcf", card("same-uid", "Y")).status == 201
    assert dav.put("z.vcf", card("changed-uid", "Z")).status == 409
    assert dav.delete("x.vcf").status == 204
    assert dav.put("z.vcf", card("changed-uid", "Z")).status == 201
    # a card deleted through REST does not keep its UID taken
    assert server.request("DELETE", data_path("contacts", "contacts/z.vcf"),
                          token=dav.token).status == 204
    assert dav.put("w.vcf", card("changed-uid", "W")).status == 201


def test_mkcol_and_delete_of_books(server, dav):
    body = ("<d:mkcol %s><d:set><d:prop><d:resourcetype><d:collection/><c:addressbook/>"
            "</d:resourcetype><d:displayname>Work &amp; co</d:displayname>"
            "<c:addressbook-description>Colleagues</c:addressbook-description></d:prop></d:set>"
            "</d:mkcol>") % NS
    work = dav.home + "work/"
    assert dav.req("MKCOL", work, body).status == 201
    assert dav.req("MKCOL", work, body).status == 405
    assert dav.req("MKCOL", dav.book).status == 405
    cal = body.replace("<c:addressbook/>", "<x:calendar xmlns:x='urn:ietf:params:xml:ns:caldav'/>")
    r = dav.req("MKCOL", dav.home + "cal/", cal)
    assert r.status == 403 and D + "valid-resourcetype" in error_of(r)
    assert dav.req("MKCOL", dav.book + "sub/").status == 404
    res, _ = ms(dav.propfind(dav.home, "<d:displayname/><c:addressbook-description/>", "1"))
    assert res[work][1][D + "displayname"][1].text == "Work & co"
    assert res[work][1][C + "addressbook-description"][1].text == "Colleagues"
    for i in range(30):
        assert dav.put("w%d.vcf" % i, card("work-%d" % i, "W %d" % i), book=work).status == 201
    assert server.get(dav.token, "contacts", "work/w3.vcf").status == 200
    assert dav.put("p.vcf", card("nobook", "P"), book=dav.home + "nobook/").status == 409
    # deleting a book deletes its cards; the default book stays
    assert dav.req("DELETE", work).status == 204
    assert server.get(dav.token, "contacts", "work/w3.vcf").status == 404
    assert dav.propfind(work, "<d:getetag/>").status == 404
    res, _ = ms(dav.propfind(dav.home, "<d:displayname/>", "1"))
    assert set(res) == {dav.home, dav.book}
    assert dav.req("DELETE", dav.book).status == 403
    assert dav.req("DELETE", work).status == 404
    # made again, it is empty and its UIDs are free
    assert dav.req("MKCOL", work).status == 201
    res, _ = ms(dav.sync(book=work))
    assert res == {}
    assert dav.put("w3.vcf", card("work-3", "W 3"), book=work).status == 201


def corpus():
    files = []
    with open(os.path.join(VCARDS, "MANIFEST.tsv")) as f:
        for line in f:
            if line.startswith(("#", "file\t")) or not line.strip():
                continue
            files.append(line.split("\t")[0])
    return files


def test_corpus_round_trips_byte_exact(server, dav):
    files = corpus()
    assert len(files) == 61
    assert dav.req("MKCOL", dav.home + "second/").status == 201
    placed = {}
    for name in files:
        with open(os.path.join(VCARDS, name), "rb") as f:
            data = f.read()
        res = name.replace("/", "_")
        r = dav.put(res, data)
        book = dav.book
        if r.status == 409:  # the corpus holds two cards with one UID
            book = dav.home + "second/"
            r = dav.put(res, data, book=book)
        assert r.status == 201, (name, r.status, r.body[:300])
        placed[name] = (book, res, data, r.header("ETag"))
    for name, (book, res, data, etag) in placed.items():
        r = dav.get(res, book=book)
        assert r.status == 200 and r.body == data, name
        assert r.header("ETag") == etag
    # through addressbook-multiget too, wherever the bytes can travel in XML
    # (cards in a legacy CHARSET such as Shift_JIS are not UTF-8: GET only)
    hrefs = [b + urllib.parse.quote(r) for b, r, _, _ in placed.values() if b == dav.book]
    res, _ = ms(dav.multiget(hrefs))
    through_xml = 0
    for name, (book, resname, data, etag) in placed.items():
        if book != dav.book:
            continue
        props = res[book + resname][1]
        assert props[D + "getetag"][1].text == etag
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            assert props[C + "address-data"][0] == 404
            continue
        assert props[C + "address-data"][1].text.encode() == data, name
        through_xml += 1
    assert through_xml >= 50


def test_no_personal_data_in_clear_on_disk_or_in_logs(server, dav):
    canaries = ["Philomena Quackenbush", "philomena.q@canary.example", "+91 98765 01234",
                "uid-canary-7f3e9b", "Quackenbush Family Book"]
    v = card(canaries[3], canaries[0], "EMAIL:%s\r\nTEL:%s\r\n" % (canaries[1], canaries[2]))
    book = dav.home + urllib.parse.quote(canaries[4]) + "/"
    assert dav.req("MKCOL", book).status == 201
    assert dav.put("canary-%s.vcf" % canaries[3], v, book=book).status == 201
    assert dav.put("dup.vcf", v, book=book).status == 409
    res, _ = ms(dav.multiget([book + "canary-%s.vcf" % canaries[3]], book=book))
    server.stop()
    assert canary_hits([server.data, server.log], canaries) == []
    server.start()


def test_seal_and_other_regions(tmp_path):
    ports = free_ports(2)
    cluster = str(tmp_path / "cluster.ini")
    with open(cluster, "w") as f:
        f.write('[region "in"]\nurl = http://127.0.0.1:%d\ncountries = IN\n\n'
                '[region "us"]\nurl = http://127.0.0.1:%d\ncountries = *\n' % tuple(ports))
    inr = Server(tmp_path, region="in", port=ports[0], args=["--cluster", cluster]).start()
    us = Server(tmp_path, region="us", port=ports[1], args=["--cluster", cluster]).start()
    try:
        init = inr.init(1, 1)
        us.init(1, 1)
        account = inr.signup("IN", PASSWORD)
        # an `in` account asking `us`: 308 to the same path at home, nothing read there
        d = Dav(us, account)
        path = "/dav/addressbooks/%s/contacts/" % account
        r = d.propfind(path, "<d:getetag/>")
        assert r.status == 308
        assert r.header("Location") == inr.url + path
        assert r.json()["error"]["region"] == "in"
        r = d.put("x.vcf", card("x", "X"))
        assert r.status == 308 and r.header("Location") == inr.url + path + "x.vcf"
        # at home it works; sealed, it answers 503 and forgets the credentials
        home = Dav(inr, account)
        token = inr.login(account, PASSWORD)
        inr.request("PUT", "/v1/me/consents/contacts", {"granted": True}, token=token)
        assert home.put("x.vcf", card("x", "X")).status == 201
        r = inr.request("POST", "/v1/sys/seal", token=init["operator_token"])
        assert r.status == 200
        assert home.get("x.vcf").status == 503
        inr.unseal(init["shares"])
        assert home.get("x.vcf").status == 200
        # a logout ends the remembered credential, not the password
        inr.request("DELETE", "/v1/sessions/current", token=token)
        assert home.get("x.vcf").status == 200
        assert Dav(inr, account, "not the password").get("x.vcf").status == 401
    finally:
        inr.stop()
        us.stop()


VDIRSYNCER = shutil.which("vdirsyncer") or "/usr/bin/vdirsyncer"


@pytest.mark.skipif(not os.path.exists(VDIRSYNCER), reason="vdirsyncer is not installed")
def test_vdirsyncer_syncs_500_cards_both_ways(server, dav, tmp_path):
    local = tmp_path / "local"
    local.mkdir()
    config = tmp_path / "config"
    config.write_text(textwrap.dedent("""\
        [general]
        status_path = "%s/status/"

        [pair contacts]
        a = "local"
        b = "oikos"
        collections = null
        conflict_resolution = "a wins"

        [storage local]
        type = "filesystem"
        path = "%s/"
        fileext = ".vcf"

        [storage oikos]
        type = "carddav"
        url = "%s%s"
        username = "%s"
        password = "%s"
        auth = "basic"
        """) % (tmp_path, local, server.url, dav.book, dav.account, PASSWORD))
    env = dict(os.environ, HOME=str(tmp_path), VDIRSYNCER_CONFIG=str(config))

    def vds(*args):
        p = subprocess.run([VDIRSYNCER, "-v", "WARNING"] + list(args), env=env,
                           input="y\n" * 10, capture_output=True, text=True, timeout=600)
        assert p.returncode == 0, p.stdout + p.stderr
        return p

    def local_cards():
        out = {}
        for path in glob.glob(str(local / "*.vcf")):
            with open(path, "rb") as f:
                data = f.read()
            uid = [l for l in data.split(b"\r\n") if l.startswith(b"UID:")][0][4:]
            out[uid.decode()] = data
        return out

    def server_cards():
        res, _ = ms(dav.propfind(dav.book, "<d:getetag/>", depth="1"))
        hrefs = [h for h in res if h != dav.book]
        got = {}
        for i in range(0, len(hrefs), 200):
            r, _ = ms(dav.multiget([urllib.parse.quote(h) for h in hrefs[i:i + 200]]))
            for h, (_, props) in r.items():
                data = props[C + "address-data"][1].text.encode()
                uid = [l for l in data.split(b"\r\n") if l.startswith(b"UID:")][0][4:]
                got[uid.decode()] = data
        return got

    for i in range(500):
        uid = "vds-%04d" % i
        (local / ("%s.vcf" % uid)).write_bytes(card(uid, "Person %d" % i,
                                                    "EMAIL:p%d@example.org\r\n" % i))
    vds("discover")
    vds("sync")
    assert len(server_cards()) == 500
    assert server_cards() == local_cards()

    # edits on both sides: oikos changes, adds and deletes some; so does the local folder
    res, _ = ms(dav.propfind(dav.book, "<d:getetag/>", depth="1"))
    by_uid = {}
    for h, (_, props) in res.items():
        if h != dav.book:
            by_uid[h.rsplit("/", 1)[1][:-4]] = (h, props[D + "getetag"][1].text)
    names = sorted(by_uid)
    for n in names[:10]:
        href, etag = by_uid[n]
        assert dav.req("PUT", urllib.parse.quote(href), card(n, "Changed on oikos " + n),
                       {"If-Match": etag}).status == 204
    for n in names[10:20]:
        href, etag = by_uid[n]
        assert dav.req("DELETE", urllib.parse.quote(href), None, {"If-Match": etag}).status == 204
    for i in range(5):
        assert dav.put("srv-new-%d.vcf" % i, card("srv-new-%d" % i, "Made on oikos")).status == 201
    for n in names[20:30]:
        path = [p for p in glob.glob(str(local / "*.vcf")) if n in p][0]
        with open(path, "wb") as f:
            f.write(card(n, "Changed locally " + n))
    for n in names[30:40]:
        os.remove([p for p in glob.glob(str(local / "*.vcf")) if n in p][0])
    for i in range(5):
        (local / ("loc-new-%d.vcf" % i)).write_bytes(card("loc-new-%d" % i, "Made locally"))

    vds("sync")
    srv, loc = server_cards(), local_cards()
    assert srv == loc
    assert len(srv) == 500 - 10 - 10 + 5 + 5
    assert srv[names[0]] == card(names[0], "Changed on oikos " + names[0])
    assert srv[names[25]] == card(names[25], "Changed locally " + names[25])
    assert names[15] not in srv and names[35] not in srv
    # a second sync finds nothing to do
    vds("sync")
    assert server_cards() == srv
