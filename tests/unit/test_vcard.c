/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_vcard.c: the vCard checker and walker (dav/vcard.c). Every file of
 * $OIKOS_SHARED/data/vcards (real exports of Android, iOS, Outlook, Gmail,
 * Evolution, Lotus Notes, ...) must be accepted with the version its
 * MANIFEST.tsv gives; garbage of many shapes must be refused with a reason;
 * the walker must unfold lines, join quoted-printable soft breaks and give
 * parameters and decoded values. Single-threaded.
 */
#include "base/common.h"

#include <setjmp.h>
#include <cmocka.h>

#include "dav/vcard.h"

static char *
read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *data = malloc(VCARD_MAX + 1);
    size_t n = data ? fread(data, 1, VCARD_MAX + 1, f) : 0;
    fclose(f);
    *len = n;
    return data;
}

static const char *
shared(void)
{
    const char *root = getenv("OIKOS_SHARED");
    if (!root)
        fail_msg("OIKOS_SHARED is not set (run the test through ctest)");
    return root;
}

static void
test_corpus_accepted(void **state)
{
    (void)state;
    char path[1024], line[2048], why[VCARD_WHY_MAX];
    struct vcard_info info;
    snprintf(path, sizeof(path), "%s/data/vcards/MANIFEST.tsv", shared());
    FILE *m = fopen(path, "r");
    assert_non_null(m);
    size_t files = 0;
    while (fgets(line, sizeof(line), m)) {
        if (line[0] == '#' || !strncmp(line, "file\t", 5) || line[0] == '\n')
            continue;
        char *name = strtok_r(line, "\t", &(char *){NULL});
        char *rest = line + strlen(name) + 1;
        char *license_end = strchr(rest, '\t');
        assert_non_null(license_end);
        char *version = license_end + 1;
        size_t vlen = strcspn(version, "\t");
        snprintf(path, sizeof(path), "%s/data/vcards/%s", shared(), name);
        size_t len = 0;
        char *data = read_file(path, &len);
        assert_non_null(data);
        int rc = vcard_check(SLICE(data, len), &info, why);
        if (rc)
            fail_msg("%s refused: %s", name, why);
        unsigned want = vlen == 0                        ? 21
                        : !strncmp(version, "2.1", vlen) ? 21
                        : !strncmp(version, "3.0", vlen) ? 30
                                                         : 40;
        if (info.version != want)
            fail_msg("%s: version %u, manifest says %.*s", name, info.version, (int)vlen, version);
        assert_true(info.cards >= 1);
        free(data);
        files++;
    }
    fclose(m);
    assert_int_equal(files, 61);
}

static void
test_uid(void **state)
{
    (void)state;
    char why[VCARD_WHY_MAX];
    struct vcard_info info;
    const char *folded = "BEGIN:VCARD\r\nVERSION:4.0\r\nFN:A\r\nUID:urn:uuid:1234\r\n 5678 \r\n"
                         "END:VCARD\r\n";
    assert_int_equal(vcard_check(SLICE_STR(folded), &info, why), 0);
    assert_true(info.has_uid);
    assert_string_equal(info.uid, "urn:uuid:12345678");
    assert_int_equal(info.version, 40);

    const char *none = "BEGIN:VCARD\nN:Ando;Roid;\nEND:VCARD\n";
    assert_int_equal(vcard_check(SLICE_STR(none), &info, why), 0);
    assert_false(info.has_uid);
    assert_int_equal(info.version, 21);

    /* the first card's UID, not a nested one's */
    const char *nested = "BEGIN:VCARD\nVERSION:2.1\nN:p\nBEGIN:VCARD\nUID:inner\nN:x\n"
                         "END:VCARD\nUID:outer\nEND:VCARD\n";
    assert_int_equal(vcard_check(SLICE_STR(nested), &info, why), 0);
    assert_string_equal(info.uid, "outer");

    const char *grouped = "BEGIN:VCARD\nVERSION:3.0\nFN:x\nitem1.UID:  g  \nEND:VCARD";
    assert_int_equal(vcard_check(SLICE_STR(grouped), &info, why), 0);
    assert_string_equal(info.uid, "g");
}

static void
test_garbage_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "\r\n\r\n",
        "hello world",
        "{\"fn\": \"Alice\"}",
        "<html><body>BEGIN:VCARD</body></html>",
        "BEGIN:VCALENDAR\nVERSION:2.0\nEND:VCALENDAR\n",
        "BEGIN:VCARD\nVERSION:3.0\nFN:no end\n",
        "END:VCARD\n",
        "BEGIN:VCARD\nVERSION:5.0\nFN:x\nEND:VCARD\n",
        "BEGIN:VCARD\nVERSION:3.0\nFN:x\nthis is not a property\nEND:VCARD\n",
        "BEGIN:VCARD\nVERSION:4.0\nFN:x\nEND:VCARD\ntrailing text\n",
        "BEGIN:VCARD\nVERSION:4.0\nFN:x\nEND:VCARD\nEND:VCARD\n",
        "BEGIN:VCARD\nVERSION:4.0\nEND:VCARD\n",
        "BEGIN:VCARD\nVERSION:4.0\nFN:x\nBEGIN:VEVENT\nEND:VEVENT\nEND:VCARD\n",
        "BEGIN:VCARD\nVERSION:4.0\nFN:\xff\xfe bad utf8\nEND:VCARD\n",
        "BEGIN:VCARD\nVERSION:3.0\nVERSION:4.0\nFN:x\nEND:VCARD\n",
        "BEGIN:VCARD\nVERSION:4.0\nFN:x\x01y\nEND:VCARD\n",
        "garbage\nBEGIN:VCARD\nVERSION:4.0\nFN:x\nEND:VCARD\n",
        "BEGIN:VCARD\n folded without a property\nVERSION:4.0\nFN:x\nEND:VCARD\n",
        "BEGIN:VCARD\n:no name\nEND:VCARD\n",
    };
    char why[VCARD_WHY_MAX];
    struct vcard_info info;
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        int rc = vcard_check(SLICE_STR(bad[i]), &info, why);
        if (rc != ERR_INVAL)
            fail_msg("accepted garbage #%zu: %s", i, bad[i]);
        assert_true(why[0] != 0);
    }
    /* a NUL byte, and random binary */
    static const char nul[] = "BEGIN:VCARD\nVERSION:4.0\nFN:a\0b\nEND:VCARD\n";
    assert_int_equal(vcard_check(SLICE(nul, sizeof(nul) - 1), &info, why), ERR_INVAL);
    uint8_t noise[4096];
    uint32_t x = 12345;
    for (int round = 0; round < 64; round++) {
        for (size_t i = 0; i < sizeof(noise); i++) {
            x = x * 1103515245u + 12345u;
            noise[i] = (uint8_t)(x >> 16);
        }
        assert_int_equal(vcard_check(SLICE(noise, sizeof(noise)), &info, why), ERR_INVAL);
    }
    /* too large */
    char *big = malloc(VCARD_MAX + 2);
    assert_non_null(big);
    memset(big, 'a', VCARD_MAX + 1);
    assert_int_equal(vcard_check(SLICE(big, VCARD_MAX + 1), &info, why), ERR_TOO_LARGE);
    free(big);
}

struct seen {
    char names[32][32];
    char values[32][256];
    size_t n;
    struct buf text;
};

static int
on_prop(void *ctx, const struct vcard_prop *p)
{
    struct seen *s = ctx;
    if (s->n == 32)
        return 0;
    snprintf(s->names[s->n], 32, "%.*s", (int)p->name.len, (const char *)p->name.p);
    buf_reset(&s->text);
    assert_int_equal(vcard_value_text(p, &s->text), 0);
    snprintf(s->values[s->n], 256, "%s", s->text.data ? s->text.data : "");
    s->n++;
    return 0;
}

static void
test_walk(void **state)
{
    (void)state;
    const char *card = "BEGIN:VCARD\r\n"
                       "VERSION:2.1\r\n"
                       "N;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:=C3=91=20=C3=\r\n"
                       "=91;;;;\r\n"
                       "item1.EMAIL;INTERNET:alice@\r\n"
                       " example.org\r\n"
                       "NOTE:a\\, b\\nc\r\n"
                       "BEGIN:VCARD\r\nFN:nested\r\nEND:VCARD\r\n"
                       "TEL;TYPE=\"cell,voice\";PREF:+1 555\r\n"
                       "END:VCARD\r\n";
    struct seen s;
    struct buf scratch;
    memset(&s, 0, sizeof(s));
    buf_init(&s.text, 4096);
    buf_init(&scratch, 4096);
    assert_int_equal(vcard_each(SLICE_STR(card), &scratch, on_prop, &s), 0);
    assert_int_equal(s.n, 4);
    assert_string_equal(s.names[0], "N");
    assert_string_equal(s.values[0], "\xc3\x91 \xc3\x91;;;;");
    assert_string_equal(s.names[1], "EMAIL");
    assert_string_equal(s.values[1], "alice@example.org");
    assert_string_equal(s.values[2], "a, b\nc");
    assert_string_equal(s.names[3], "TEL");
    buf_release(&s.text);
    buf_release(&scratch);
}

struct params {
    char got[8][64];
    size_t n;
};

static int
on_param(void *ctx, struct slice name, struct slice value)
{
    struct params *p = ctx;
    if (p->n < 8)
        snprintf(p->got[p->n++], 64, "%.*s=%.*s", (int)name.len, (const char *)name.p,
                 (int)value.len, (const char *)value.p);
    return 0;
}

static void
test_params(void **state)
{
    (void)state;
    struct vcard_prop p;
    struct params got;
    memset(&p, 0, sizeof(p));
    memset(&got, 0, sizeof(got));
    p.params = SLICE_STR("TYPE=\"work,voice\";PREF;LABEL=\"a;b\"");
    assert_int_equal(vcard_each_param(&p, on_param, &got), 0);
    assert_int_equal(got.n, 4);
    assert_string_equal(got.got[0], "TYPE=work");
    assert_string_equal(got.got[1], "TYPE=voice");
    assert_string_equal(got.got[2], "TYPE=PREF");
    assert_string_equal(got.got[3], "LABEL=a;b");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corpus_accepted), cmocka_unit_test(test_uid),
        cmocka_unit_test(test_garbage_refused), cmocka_unit_test(test_walk),
        cmocka_unit_test(test_params),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
