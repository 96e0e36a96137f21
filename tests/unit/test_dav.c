/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_dav.c: the WebDAV request parser and answer helpers (dav/dav.c):
 * PROPFIND, addressbook-multiget, addressbook-query, sync-collection and
 * extended MKCOL bodies as real clients send them; garbage, DOCTYPEs and
 * entity bombs, deep nesting and too many properties or hrefs refused with
 * a reason; escaping, hrefs, Depth, If-Match and If-None-Match. Pure, single-threaded.
 */
#include "base/common.h"

#include <setjmp.h>
#include <cmocka.h>

#include "dav/dav.h"

static struct dav_request *
parse_ok(const char *xml)
{
    struct dav_request *rq = NULL;
    char why[DAV_WHY_MAX];
    int rc = dav_request_parse(&rq, SLICE_STR(xml), why);
    if (rc)
        fail_msg("refused (%d): %s\n%s", rc, why, xml);
    return rq;
}

static int
parse_err(const char *xml, char why[DAV_WHY_MAX])
{
    struct dav_request *rq = NULL;
    int rc = dav_request_parse(&rq, SLICE_STR(xml), why);
    assert_null(rq);
    return rc;
}

static void
test_propfind(void **state)
{
    (void)state;
    /* DAVx5-style: several namespaces, one unknown */
    struct dav_request *rq = parse_ok(
        "<?xml version='1.0' encoding='UTF-8' ?>"
        "<propfind xmlns=\"DAV:\" xmlns:CARD=\"urn:ietf:params:xml:ns:carddav\" "
        "xmlns:CS=\"http://calendarserver.org/ns/\" xmlns:X=\"urn:x\">"
        "<prop><resourcetype/><displayname/><CS:getctag/><sync-token/>"
        "<CARD:addressbook-home-set/><X:color/><current-user-privilege-set/></prop></propfind>");
    assert_int_equal(rq->kind, DAV_BODY_PROPFIND);
    assert_int_equal(rq->mode, DAV_PROPS_LIST);
    assert_int_equal(rq->nprops, 7);
    assert_int_equal(rq->props[0].id, DAV_P_RESOURCETYPE);
    assert_int_equal(rq->props[2].id, DAV_P_GETCTAG);
    assert_int_equal(rq->props[4].id, DAV_P_ADDRESSBOOK_HOME_SET);
    assert_int_equal(rq->props[5].id, DAV_P_OTHER);
    assert_string_equal(rq->props[5].ns, "urn:x");
    assert_string_equal(rq->props[5].name, "color");
    dav_request_free(rq);

    rq = parse_ok("<D:propfind xmlns:D='DAV:'><D:allprop/></D:propfind>");
    assert_int_equal(rq->mode, DAV_PROPS_ALL);
    dav_request_free(rq);
    rq = parse_ok("<D:propfind xmlns:D='DAV:'><D:propname/></D:propfind>");
    assert_int_equal(rq->mode, DAV_PROPS_NAMES);
    dav_request_free(rq);
    rq = parse_ok("");
    assert_int_equal(rq->kind, DAV_BODY_NONE);
    assert_int_equal(rq->mode, DAV_PROPS_ALL);
    dav_request_free(rq);
    rq = parse_ok("  \r\n ");
    assert_int_equal(rq->kind, DAV_BODY_NONE);
    dav_request_free(rq);
    /* a property without namespace */
    rq = parse_ok("<D:propfind xmlns:D='DAV:'><D:prop><plain/></D:prop></D:propfind>");
    assert_int_equal(rq->nprops, 1);
    assert_string_equal(rq->props[0].ns, "");
    assert_string_equal(rq->props[0].name, "plain");
    dav_request_free(rq);
}

static void
test_multiget(void **state)
{
    (void)state;
    struct dav_request *rq =
        parse_ok("<C:addressbook-multiget xmlns:D=\"DAV:\" "
                 "xmlns:C=\"urn:ietf:params:xml:ns:carddav\">"
                 "<D:prop><D:getetag/><C:address-data><C:prop name=\"FN\"/></C:address-data>"
                 "</D:prop>"
                 "<D:href>/dav/addressbooks/a/contacts/1.vcf</D:href>"
                 "<D:href>\n  /dav/addressbooks/a/contacts/a%20b.vcf  \n</D:href>"
                 "<D:href>http://h:1/dav/addressbooks/a/contacts/x&amp;y.vcf</D:href>"
                 "</C:addressbook-multiget>");
    assert_int_equal(rq->kind, DAV_BODY_MULTIGET);
    assert_int_equal(rq->mode, DAV_PROPS_LIST);
    assert_int_equal(rq->nprops, 2);
    assert_int_equal(rq->props[1].id, DAV_P_ADDRESS_DATA);
    assert_int_equal(rq->nhrefs, 3);
    assert_string_equal(rq->hrefs[1], "/dav/addressbooks/a/contacts/a%20b.vcf");
    assert_string_equal(rq->hrefs[2], "http://h:1/dav/addressbooks/a/contacts/x&y.vcf");
    dav_request_free(rq);
}

static void
test_sync(void **state)
{
    (void)state;
    struct dav_request *rq = parse_ok(
        "<d:sync-collection xmlns:d=\"DAV:\"><d:sync-token>urn:oikos:sync:ab-12</d:sync-token>"
        "<d:sync-level>1</d:sync-level><d:limit><d:nresults>10</d:nresults></d:limit>"
        "<d:prop><d:getetag/></d:prop></d:sync-collection>");
    assert_int_equal(rq->kind, DAV_BODY_SYNC);
    assert_string_equal(rq->sync_token, "urn:oikos:sync:ab-12");
    assert_int_equal(rq->limit, 10);
    assert_false(rq->sync_infinite);
    assert_int_equal(rq->nprops, 1);
    dav_request_free(rq);
    rq = parse_ok("<d:sync-collection xmlns:d=\"DAV:\"><d:sync-token/>"
                  "<d:sync-level>infinite</d:sync-level><d:prop/></d:sync-collection>");
    assert_string_equal(rq->sync_token, "");
    assert_true(rq->sync_infinite);
    dav_request_free(rq);
}

static void
test_query(void **state)
{
    (void)state;
    struct dav_request *rq = parse_ok(
        "<C:addressbook-query xmlns:D=\"DAV:\" xmlns:C=\"urn:ietf:params:xml:ns:carddav\">"
        "<D:prop><D:getetag/></D:prop>"
        "<C:filter test=\"allof\">"
        "<C:prop-filter name=\"FN\"><C:text-match collation=\"i;unicode-casemap\" "
        "match-type=\"starts-with\">Ali</C:text-match></C:prop-filter>"
        "<C:prop-filter name=\"EMAIL\" test=\"allof\"><C:text-match negate-condition=\"yes\">"
        "spam</C:text-match><C:param-filter name=\"TYPE\"><C:text-match match-type=\"equals\">"
        "work</C:text-match></C:param-filter></C:prop-filter>"
        "<C:prop-filter name=\"NICKNAME\"><C:is-not-defined/></C:prop-filter>"
        "</C:filter><C:limit><C:nresults>5</C:nresults></C:limit></C:addressbook-query>");
    assert_int_equal(rq->kind, DAV_BODY_QUERY);
    assert_true(rq->filter_allof);
    assert_int_equal(rq->nfilters, 3);
    assert_string_equal(rq->filters[0].name, "FN");
    assert_int_equal(rq->filters[0].nmatches, 1);
    assert_int_equal(rq->filters[0].matches[0].match, DAV_MATCH_STARTS);
    assert_string_equal(rq->filters[0].matches[0].text, "Ali");
    assert_true(rq->filters[1].allof);
    assert_true(rq->filters[1].matches[0].negate);
    assert_int_equal(rq->filters[1].matches[0].match, DAV_MATCH_CONTAINS);
    assert_int_equal(rq->filters[1].nparams, 1);
    assert_string_equal(rq->filters[1].params[0].name, "TYPE");
    assert_true(rq->filters[1].params[0].has_match);
    assert_string_equal(rq->filters[1].params[0].match.text, "work");
    assert_true(rq->filters[2].not_defined);
    assert_int_equal(rq->limit, 5);
    dav_request_free(rq);
}

static void
test_mkcol(void **state)
{
    (void)state;
    struct dav_request *rq = parse_ok(
        "<D:mkcol xmlns:D=\"DAV:\" xmlns:C=\"urn:ietf:params:xml:ns:carddav\"><D:set><D:prop>"
        "<D:resourcetype><D:collection/><C:addressbook/></D:resourcetype>"
        "<D:displayname>Work &amp; friends</D:displayname>"
        "<C:addressbook-description>People I work with</C:addressbook-description>"
        "</D:prop></D:set></D:mkcol>");
    assert_int_equal(rq->kind, DAV_BODY_MKCOL);
    assert_true(rq->mk_addressbook);
    assert_false(rq->mk_other_type);
    assert_string_equal(rq->mk_displayname, "Work & friends");
    assert_string_equal(rq->mk_description, "People I work with");
    dav_request_free(rq);
    rq = parse_ok("<D:mkcol xmlns:D=\"DAV:\" xmlns:C=\"urn:ietf:params:xml:ns:caldav\"><D:set>"
                  "<D:prop><D:resourcetype><D:collection/><C:calendar/></D:resourcetype>"
                  "</D:prop></D:set></D:mkcol>");
    assert_true(rq->mk_other_type);
    assert_false(rq->mk_addressbook);
    dav_request_free(rq);
    rq = parse_ok("<x:other xmlns:x=\"urn:y\"/>");
    assert_int_equal(rq->kind, DAV_BODY_OTHER);
    assert_string_equal(rq->root_ns, "urn:y");
    assert_string_equal(rq->root_name, "other");
    dav_request_free(rq);
}

static void
test_garbage(void **state)
{
    (void)state;
    char why[DAV_WHY_MAX];
    static const char *const bad[] = {
        "not xml at all",
        "<D:propfind xmlns:D='DAV:'><D:prop>",
        "<D:propfind xmlns:D='DAV:'></D:prop>",
        "<a><b></a></b>",
        "\x01\x02\x03",
        "<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'aaaaaaaaaa'><!ENTITY b '&a;&a;&a;&a;'>]>"
        "<x>&b;</x>",
        "<!DOCTYPE propfind SYSTEM 'file:///etc/passwd'><propfind xmlns='DAV:'/>",
        "<D:propfind xmlns:D='DAV:'>&undefined;</D:propfind>",
        "<C:addressbook-query xmlns:C='urn:ietf:params:xml:ns:carddav'><C:filter>"
        "<C:prop-filter name='FN'><C:text-match collation='i;klingon'>x</C:text-match>"
        "</C:prop-filter></C:filter></C:addressbook-query>",
        "<C:addressbook-query xmlns:C='urn:ietf:params:xml:ns:carddav'><C:filter>"
        "<C:prop-filter name='FN'><C:text-match match-type='regex'>x</C:text-match>"
        "</C:prop-filter></C:filter></C:addressbook-query>",
        "<C:addressbook-query xmlns:C='urn:ietf:params:xml:ns:carddav'><C:filter>"
        "<C:prop-filter><C:is-not-defined/></C:prop-filter></C:filter></C:addressbook-query>",
        "<d:sync-collection xmlns:d='DAV:'><d:sync-level>2</d:sync-level></d:sync-collection>",
        "<d:sync-collection xmlns:d='DAV:'><d:limit><d:nresults>-1</d:nresults></d:limit>"
        "</d:sync-collection>",
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        int rc = parse_err(bad[i], why);
        if (rc != ERR_INVAL)
            fail_msg("garbage #%zu gave %d: %s", i, rc, bad[i]);
        assert_true(why[0] != 0);
    }

    struct buf b;
    buf_init(&b, (size_t)64 << 20);
    /* too deep */
    for (int i = 0; i < DAV_DEPTH_MAX + 5; i++)
        assert_int_equal(buf_adds(&b, "<a>"), 0);
    for (int i = 0; i < DAV_DEPTH_MAX + 5; i++)
        assert_int_equal(buf_adds(&b, "</a>"), 0);
    assert_int_equal(parse_err(b.data, why), ERR_INVAL);
    /* too many properties */
    buf_reset(&b);
    assert_int_equal(buf_adds(&b, "<propfind xmlns='DAV:'><prop>"), 0);
    for (int i = 0; i <= DAV_PROPS_MAX; i++)
        assert_int_equal(buf_addf(&b, "<p%d/>", i), 0);
    assert_int_equal(buf_adds(&b, "</prop></propfind>"), 0);
    assert_int_equal(parse_err(b.data, why), ERR_LIMIT);
    /* too many hrefs */
    buf_reset(&b);
    assert_int_equal(buf_adds(&b, "<C:addressbook-multiget xmlns:D='DAV:' "
                                  "xmlns:C='urn:ietf:params:xml:ns:carddav'>"),
                     0);
    for (int i = 0; i <= DAV_HREFS_MAX; i++)
        assert_int_equal(buf_addf(&b, "<D:href>/%d</D:href>", i), 0);
    assert_int_equal(buf_adds(&b, "</C:addressbook-multiget>"), 0);
    assert_int_equal(parse_err(b.data, why), ERR_LIMIT);
    /* the most hrefs allowed still pass */
    buf_reset(&b);
    assert_int_equal(buf_adds(&b, "<C:addressbook-multiget xmlns:D='DAV:' "
                                  "xmlns:C='urn:ietf:params:xml:ns:carddav'>"),
                     0);
    for (int i = 0; i < DAV_HREFS_MAX; i++)
        assert_int_equal(buf_addf(&b, "<D:href>/%d</D:href>", i), 0);
    assert_int_equal(buf_adds(&b, "</C:addressbook-multiget>"), 0);
    struct dav_request *rq = parse_ok(b.data);
    assert_int_equal(rq->nhrefs, DAV_HREFS_MAX);
    dav_request_free(rq);
    /* too large */
    buf_reset(&b);
    assert_int_equal(buf_grow(&b, DAV_XML_MAX + 1), 0);
    memset(b.data, ' ', DAV_XML_MAX + 1);
    b.len = DAV_XML_MAX + 1;
    rq = NULL;
    assert_int_equal(dav_request_parse(&rq, buf_slice(&b), why), ERR_TOO_LARGE);
    buf_release(&b);
}

static void
test_writing(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 4096);
    assert_int_equal(dav_xml_escape(&b, SLICE_STR("a<b>&\"c\"\r\n")), 0);
    assert_string_equal(b.data, "a&lt;b&gt;&amp;&quot;c&quot;&#13;\n");
    buf_reset(&b);
    assert_int_equal(dav_href_escape(&b, SLICE_STR("a b/\xc3\xa9&x")), 0);
    assert_string_equal(b.data, "a%20b/%C3%A9%26x");
    assert_int_equal(dav_href_path(&b, "https://host:8443/dav/a%20b/%C3%A9?x=1"), 0);
    assert_string_equal(b.data, "/dav/a b/\xc3\xa9");
    assert_int_equal(dav_href_path(&b, "/dav/x%2"), ERR_INVAL);
    assert_int_equal(dav_href_path(&b, "/dav/x%00y"), ERR_INVAL);
    assert_true(dav_xml_text_ok(SLICE_STR("BEGIN:VCARD\r\nFN:\xc3\xa9\tx\r\n")));
    assert_false(dav_xml_text_ok(SLICE_STR("FN:\x82\xa0"))); /* Shift_JIS */
    assert_false(dav_xml_text_ok(SLICE_STR("FN:\x0c")));     /* form feed */

    struct dav_props ps;
    dav_props_init(&ps, 4096);
    struct dav_prop other = {DAV_P_OTHER, "urn:x", "color"};
    assert_int_equal(dav_prop_text(&ps, dav_prop_known(DAV_P_GETETAG), "\"1\""), 0);
    assert_int_equal(dav_prop_missing(&ps, &other), 0);
    buf_reset(&b);
    assert_int_equal(dav_ms_props(&b, "/dav/x", &ps), 0);
    assert_non_null(strstr(b.data, "<d:getetag>&quot;1&quot;</d:getetag>"));
    assert_non_null(strstr(b.data, "<x:color xmlns:x=\"urn:x\"/>"));
    assert_non_null(strstr(b.data, "HTTP/1.1 404 Not Found"));
    dav_props_release(&ps);
    buf_release(&b);
}

static void
test_headers(void **state)
{
    (void)state;
    struct dav_cond c;
    assert_int_equal(dav_depth(NULL, 0), 0);
    assert_int_equal(dav_depth("1", 0), 1);
    assert_int_equal(dav_depth("Infinity", 0), DAV_DEPTH_INFINITY);
    assert_int_equal(dav_depth("2", 0), -1);

    assert_int_equal(dav_cond_parse(&c, NULL, "*"), 0);
    assert_int_equal(dav_cond_check(&c, false, ""), 0);
    assert_int_equal(dav_cond_check(&c, true, "abc"), ERR_PRECONDITION);

    assert_int_equal(dav_cond_parse(&c, "\"abc\"", NULL), 0);
    assert_int_equal(dav_cond_check(&c, true, "abc"), 0);
    assert_int_equal(dav_cond_check(&c, true, "abd"), ERR_PRECONDITION);
    assert_int_equal(dav_cond_check(&c, false, ""), ERR_PRECONDITION);

    assert_int_equal(dav_cond_parse(&c, "W/\"abc\"", NULL), 0);
    assert_int_equal(dav_cond_check(&c, true, "abc"), ERR_PRECONDITION); /* strong only */

    assert_int_equal(dav_cond_parse(&c, "\"x\", \"abc\"", "W/\"zzz\""), 0);
    assert_int_equal(dav_cond_check(&c, true, "abc"), 0);
    assert_int_equal(dav_cond_parse(&c, NULL, "W/\"abc\""), 0);
    assert_int_equal(dav_cond_check(&c, true, "abc"), ERR_PRECONDITION); /* weak matches */

    assert_int_equal(dav_cond_parse(&c, "*", NULL), 0);
    assert_int_equal(dav_cond_check(&c, true, "abc"), 0);
    assert_int_equal(dav_cond_check(&c, false, ""), ERR_PRECONDITION);

    assert_int_equal(dav_cond_parse(&c, "abc", NULL), ERR_INVAL);
    assert_int_equal(dav_cond_parse(&c, "\"abc", NULL), ERR_INVAL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_propfind), cmocka_unit_test(test_multiget),
        cmocka_unit_test(test_sync),     cmocka_unit_test(test_query),
        cmocka_unit_test(test_mkcol),    cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_writing),  cmocka_unit_test(test_headers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
