/* SPDX-License-Identifier: Apache-2.0 */
/*
 * session.c: the saved login (see session.h), on top of POSIX file calls,
 * jansson and base/buf. The file is written to a mkstemp file in the same
 * directory, fsync'd and renamed over the old one, then the directory is
 * fsync'd, so that the rename itself is durable. Reads refuse a file that
 * others could read or change, as ssh does with keys. The caller owns the
 * struct session; every function here is synchronous and not thread-safe
 * (getenv).
 */
#include "base/common.h"

#include <fcntl.h>
#include <jansson.h>
#include <pwd.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/session.h"

#define SESSION_FILE "session.json"
#define SESSION_MAX (64 * 1024)
#define SESSION_PATH_MAX 4096

/* Appends the directory that holds the session file. */
static int
session_dir(struct buf *out)
{
    const char *d = getenv("OIKOS_CONFIG_DIR");
    if (d && *d)
        return buf_adds(out, d);
    d = getenv("XDG_CONFIG_HOME");
    if (d && d[0] == '/') /* the XDG spec ignores relative values */
        return buf_addf(out, "%s/oikos", d);
    d = getenv("HOME");
    if (!d || !*d) {
        struct passwd *pw = getpwuid(geteuid());
        d = pw ? pw->pw_dir : NULL;
    }
    if (!d || !*d)
        return ERR_NOT_FOUND;
    return buf_addf(out, "%s/.config/oikos", d);
}

int
session_path(struct buf *out)
{
    int rc = session_dir(out);
    if (rc)
        return rc;
    return buf_adds(out, "/" SESSION_FILE);
}

/* mkdir -p, creating missing directories 0700. */
static int
mkdir_p(char *path)
{
    size_t n = strlen(path);
    for (size_t i = 1; i <= n; i++) {
        if (path[i] != '/' && path[i] != 0)
            continue;
        char saved = path[i];
        path[i] = 0;
        struct stat st;
        if (mkdir(path, 0700) != 0) {
            int e = errno;
            if (e != EEXIST || stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
                path[i] = saved;
                errno = e == EEXIST ? ENOTDIR : e;
                return ERR_IO;
            }
        }
        path[i] = saved;
    }
    return 0;
}

void
session_release(struct session *s)
{
    if (!s)
        return;
    if (s->token) {
        sodium_memzero(s->token, strlen(s->token));
        free(s->token);
    }
    free(s->url);
    free(s->account);
    s->url = s->account = s->token = NULL;
}

static int
dup_field(json_t *root, const char *key, bool required, char **out)
{
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v))
        return required ? ERR_CORRUPT : 0;
    const char *s = json_string_value(v);
    if (!s || !*s)
        return ERR_CORRUPT;
    *out = strdup(s);
    return *out ? 0 : ERR_NOMEM;
}

int
session_load(struct session *out)
{
    struct buf path, text;
    json_t *root = NULL;
    int fd = -1, rc, e = 0;

    memset(out, 0, sizeof(*out));
    buf_init(&path, SESSION_PATH_MAX);
    buf_init(&text, SESSION_MAX);
    rc = session_path(&path);
    if (rc)
        goto out;
    fd = open(path.data, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        e = errno;
        rc = e == ENOENT ? ERR_NOT_FOUND : ERR_IO;
        goto out;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        e = errno;
        rc = ERR_IO;
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = ERR_CORRUPT;
        goto out;
    }
    if ((st.st_mode & 077) || st.st_uid != geteuid()) {
        rc = ERR_FORBIDDEN;
        goto out;
    }
    for (;;) {
        char chunk[4096];
        ssize_t r = read(fd, chunk, sizeof(chunk));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            e = errno;
            rc = ERR_IO;
            goto out;
        }
        if (r == 0)
            break;
        rc = buf_add(&text, chunk, (size_t)r);
        sodium_memzero(chunk, sizeof(chunk));
        if (rc) {
            rc = rc == ERR_LIMIT ? ERR_CORRUPT : rc;
            goto out;
        }
    }
    root = json_loadb(text.data ? text.data : "", text.len, 0, NULL);
    if (!json_is_object(root)) {
        rc = ERR_CORRUPT;
        goto out;
    }
    rc = dup_field(root, "url", true, &out->url);
    if (!rc)
        rc = dup_field(root, "token", true, &out->token);
    if (!rc)
        rc = dup_field(root, "account", false, &out->account);
out:
    if (fd >= 0)
        close(fd);
    if (root)
        json_decref(root);
    if (text.data)
        sodium_memzero(text.data, text.len);
    buf_release(&text);
    buf_release(&path);
    if (rc)
        session_release(out);
    errno = e;
    return rc;
}

/* Writes all of p, retrying short writes. */
static int
write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return ERR_IO;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int
session_save(const struct session *s)
{
    struct buf dir, tmp, final;
    json_t *root = NULL;
    char *text = NULL;
    size_t text_len = 0;
    int fd = -1, dfd = -1, rc, e = 0;
    bool tmp_made = false;

    buf_init(&dir, SESSION_PATH_MAX);
    buf_init(&tmp, SESSION_PATH_MAX);
    buf_init(&final, SESSION_PATH_MAX);
    if (!s->url || !*s->url || !s->token || !*s->token) {
        rc = ERR_INVAL;
        goto out;
    }
    root = json_pack("{s:s, s:s?, s:s}", "url", s->url, "account", s->account, "token", s->token);
    if (!root) {
        rc = ERR_NOMEM;
        goto out;
    }
    text = json_dumps(root, JSON_INDENT(2));
    if (!text) {
        rc = ERR_NOMEM;
        goto out;
    }
    text_len = strlen(text);
    rc = session_dir(&dir);
    if (!rc)
        rc = buf_addf(&tmp, "%s/." SESSION_FILE ".XXXXXX", dir.data);
    if (!rc)
        rc = buf_addf(&final, "%s/" SESSION_FILE, dir.data);
    if (rc)
        goto out;
    rc = mkdir_p(dir.data);
    if (rc) {
        e = errno;
        goto out;
    }
    fd = mkostemp(tmp.data, O_CLOEXEC);
    if (fd < 0) {
        e = errno;
        rc = ERR_IO;
        goto out;
    }
    tmp_made = true;
    if (fchmod(fd, 0600) != 0 || write_all(fd, text, text_len) != 0 || write_all(fd, "\n", 1) ||
        fsync(fd) != 0) {
        e = errno;
        rc = ERR_IO;
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        e = errno;
        rc = ERR_IO;
        goto out;
    }
    fd = -1;
    if (rename(tmp.data, final.data) != 0) {
        e = errno;
        rc = ERR_IO;
        goto out;
    }
    tmp_made = false;
    dfd = open(dir.data, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0)
        (void)fsync(dfd); /* best effort: the file itself is already durable */
out:
    if (fd >= 0)
        close(fd);
    if (dfd >= 0)
        close(dfd);
    if (tmp_made)
        unlink(tmp.data);
    if (text) {
        sodium_memzero(text, text_len);
        free(text);
    }
    if (root)
        json_decref(root);
    buf_release(&dir);
    buf_release(&tmp);
    buf_release(&final);
    errno = e;
    return rc;
}

int
session_remove(void)
{
    struct buf path;
    buf_init(&path, SESSION_PATH_MAX);
    int rc = session_path(&path);
    int e = 0;
    if (!rc && unlink(path.data) != 0) {
        e = errno;
        rc = e == ENOENT ? ERR_NOT_FOUND : ERR_IO;
    }
    buf_release(&path);
    errno = e;
    return rc;
}
