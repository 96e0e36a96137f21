/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ident.c: identifiers (see ident.h) on top of the keyring (the pepper's
 * HMAC), the account key, the AEAD and the store's records (kind "ident",
 * key = type byte | HMAC, value = cipher byte | sealed value). The table
 * of country calling codes is ITU-T E.164's assignments by ISO 3166 code.
 */
#include "base/common.h"

#include "core/acct.h"
#include "core/ident.h"
#include "crypto/aead.h"
#include "crypto/kr.h"

#define REC_KIND "ident"

/* ISO 3166 alpha-2 code and country calling code, as "CCdigits". */
static const char *const calling_codes[] = {
    "AD376", "AE971", "AF93",  "AG1",   "AI1",   "AL355", "AM374", "AO244", "AR54",  "AS1",
    "AT43",  "AU61",  "AW297", "AX358", "AZ994", "BA387", "BB1",   "BD880", "BE32",  "BF226",
    "BG359", "BH973", "BI257", "BJ229", "BL590", "BM1",   "BN673", "BO591", "BQ599", "BR55",
    "BS1",   "BT975", "BW267", "BY375", "BZ501", "CA1",   "CC61",  "CD243", "CF236", "CG242",
    "CH41",  "CI225", "CK682", "CL56",  "CM237", "CN86",  "CO57",  "CR506", "CU53",  "CV238",
    "CW599", "CX61",  "CY357", "CZ420", "DE49",  "DJ253", "DK45",  "DM1",   "DO1",   "DZ213",
    "EC593", "EE372", "EG20",  "EH212", "ER291", "ES34",  "ET251", "FI358", "FJ679", "FK500",
    "FM691", "FO298", "FR33",  "GA241", "GB44",  "GD1",   "GE995", "GF594", "GG44",  "GH233",
    "GI350", "GL299", "GM220", "GN224", "GP590", "GQ240", "GR30",  "GT502", "GU1",   "GW245",
    "GY592", "HK852", "HN504", "HR385", "HT509", "HU36",  "ID62",  "IE353", "IL972", "IM44",
    "IN91",  "IO246", "IQ964", "IR98",  "IS354", "IT39",  "JE44",  "JM1",   "JO962", "JP81",
    "KE254", "KG996", "KH855", "KI686", "KM269", "KN1",   "KP850", "KR82",  "KW965", "KY1",
    "KZ7",   "LA856", "LB961", "LC1",   "LI423", "LK94",  "LR231", "LS266", "LT370", "LU352",
    "LV371", "LY218", "MA212", "MC377", "MD373", "ME382", "MF590", "MG261", "MH692", "MK389",
    "ML223", "MM95",  "MN976", "MO853", "MP1",   "MQ596", "MR222", "MS1",   "MT356", "MU230",
    "MV960", "MW265", "MX52",  "MY60",  "MZ258", "NA264", "NC687", "NE227", "NF672", "NG234",
    "NI505", "NL31",  "NO47",  "NP977", "NR674", "NU683", "NZ64",  "OM968", "PA507", "PE51",
    "PF689", "PG675", "PH63",  "PK92",  "PL48",  "PM508", "PR1",   "PS970", "PT351", "PW680",
    "PY595", "QA974", "RE262", "RO40",  "RS381", "RU7",   "RW250", "SA966", "SB677", "SC248",
    "SD249", "SE46",  "SG65",  "SH290", "SI386", "SJ47",  "SK421", "SL232", "SM378", "SN221",
    "SO252", "SR597", "SS211", "ST239", "SV503", "SX1",   "SY963", "SZ268", "TC1",   "TD235",
    "TG228", "TH66",  "TJ992", "TK690", "TL670", "TM993", "TN216", "TO676", "TR90",  "TT1",
    "TV688", "TW886", "TZ255", "UA380", "UG256", "US1",   "UY598", "UZ998", "VA39",  "VC1",
    "VE58",  "VG1",   "VI1",   "VN84",  "VU678", "WF681", "WS685", "XK383", "YE967", "YT262",
    "ZA27",  "ZM260", "ZW263",
};

/* Countries whose national numbers keep their leading 0 after the code. */
static const char keeps_trunk_zero[] = "IT SM VA";

static const char *
calling_code_of(const char *country)
{
    for (size_t i = 0; i < ARRAY_SIZE(calling_codes); i++)
        if (calling_codes[i][0] == country[0] && calling_codes[i][1] == country[1])
            return calling_codes[i] + 2;
    return NULL;
}

/* True if digits start with some country's calling code. */
static bool
starts_with_calling_code(const char *digits)
{
    for (size_t i = 0; i < ARRAY_SIZE(calling_codes); i++) {
        const char *cc = calling_codes[i] + 2;
        if (!strncmp(digits, cc, strlen(cc)))
            return true;
    }
    return false;
}

int
ident_type_parse(const char *s, enum ident_type *out)
{
    if (!strcmp(s, "phone"))
        *out = IDENT_PHONE;
    else if (!strcmp(s, "imei"))
        *out = IDENT_IMEI;
    else
        return ERR_INVAL;
    return 0;
}

const char *
ident_type_name(enum ident_type t)
{
    return t == IDENT_PHONE ? "phone" : "imei";
}

/* Copies the digits of in, dropping separators; ERR_INVAL for anything else. */
static int
digits_of(char *out, size_t cap, const char *in, const char *separators)
{
    size_t n = 0;
    for (const char *p = in; *p; p++) {
        if (*p >= '0' && *p <= '9') {
            if (n + 1 >= cap)
                return ERR_INVAL;
            out[n++] = *p;
        } else if (!strchr(separators, *p)) {
            return ERR_INVAL;
        }
    }
    out[n] = 0;
    return n ? 0 : ERR_INVAL;
}

int
ident_phone_normalize(char out[IDENT_VALUE_MAX], const char *in, const char *country)
{
    char digits[24];
    char cc[3] = {0};
    const char *p = in;
    bool intl = false;
    while (*p == ' ')
        p++;
    if (*p == '+') {
        intl = true;
        p++;
    }
    if (strlen(p) > 64 || digits_of(digits, sizeof(digits), p, " -.()/"))
        return ERR_INVAL;
    const char *d = digits;
    if (!intl && !strncmp(d, "00", 2)) {
        intl = true;
        d += 2;
    }
    if (intl) {
        if (!starts_with_calling_code(d))
            return ERR_INVAL;
        if (strlen(d) < 7 || strlen(d) > 15)
            return ERR_INVAL;
        snprintf(out, IDENT_VALUE_MAX, "+%.15s", d);
        return 0;
    }
    if (!country || strlen(country) != 2)
        return ERR_INVAL;
    cc[0] = (char)(country[0] & ~32);
    cc[1] = (char)(country[1] & ~32);
    const char *code = calling_code_of(cc);
    if (!code)
        return ERR_INVAL;
    if (d[0] == '0' && !strstr(keeps_trunk_zero, cc))
        d++;
    size_t total = strlen(code) + strlen(d);
    if (!*d || total < 7 || total > 15)
        return ERR_INVAL;
    snprintf(out, IDENT_VALUE_MAX, "+%.3s%.15s", code, d);
    return 0;
}

int
ident_imei_normalize(char out[IDENT_VALUE_MAX], const char *in)
{
    char d[IDENT_VALUE_MAX];
    if (strlen(in) > 64 || digits_of(d, sizeof(d), in, " -") || strlen(d) != 15)
        return ERR_INVAL;
    /* Luhn: double every second digit from the right, the check digit excluded */
    unsigned sum = 0;
    for (int i = 14, dbl = 0; i >= 0; i--, dbl = !dbl) {
        unsigned v = (unsigned)(d[i] - '0');
        if (dbl) {
            v *= 2;
            if (v > 9)
                v -= 9;
        }
        sum += v;
    }
    if (sum % 10)
        return ERR_INVAL;
    memcpy(out, d, 16);
    return 0;
}

static int
normalize(enum ident_type type, const char *value, const char *country, char out[IDENT_VALUE_MAX])
{
    return type == IDENT_PHONE ? ident_phone_normalize(out, value, country)
                               : ident_imei_normalize(out, value);
}

/* The record key: type byte, then the HMAC of "ident" 0 type 0 value. */
static int
record_key(struct region *r, enum ident_type type, const char *norm, uint8_t key[1 + KR_HASH_LEN])
{
    char msg[64];
    int n = snprintf(msg, sizeof(msg), "ident%c%s%c%s", 0, ident_type_name(type), 0, norm);
    key[0] = (uint8_t)type;
    int rc = kr_ident(region_keyring(r), key + 1, SLICE(msg, (size_t)n));
    secret_wipe(msg, sizeof(msg));
    return rc;
}

static void
ident_aad(char *aad, size_t cap, const char *account, enum ident_type type)
{
    snprintf(aad, cap, "ident|%s|%s", account, ident_type_name(type));
}

int
ident_add(struct region *r, const char *account, enum ident_type type, const char *value)
{
    struct store_account a;
    struct store_batch *b = NULL;
    struct key32 *ak = NULL;
    char norm[IDENT_VALUE_MAX];
    uint8_t key[1 + KR_HASH_LEN];
    uint8_t sealed[1 + IDENT_VALUE_MAX + AEAD_MAX_OVERHEAD];
    size_t slen = 0;
    char aad[128];

    if (region_sealed(r))
        return ERR_SEALED;
    int rc = store_account_get(region_store(r), account, &a);
    if (rc)
        return rc;
    rc = normalize(type, value, a.country, norm);
    secret_wipe(&a, sizeof(a));
    if (rc)
        return rc;
    rc = record_key(r, type, norm, key);
    if (rc)
        goto out;
    rc = ERR_NOMEM;
    ak = key32_new();
    if (!ak)
        goto out;
    rc = acct_key(r, account, ak);
    if (rc)
        goto out;
    enum aead_cipher c = aead_default();
    sealed[0] = (uint8_t)c;
    ident_aad(aad, sizeof(aad), account, type);
    rc =
        aead_seal(c, sealed + 1, sizeof(sealed) - 1, &slen, ak->b, SLICE_STR(aad), SLICE_STR(norm));
    if (!rc)
        rc = store_batch_new(&b);
    if (!rc)
        rc = store_batch_rec_put(b, account, REC_KIND, SLICE(key, sizeof(key)),
                                 SLICE(sealed, slen + 1));
    if (!rc)
        rc = store_commit(region_store(r), b, true);
out:
    store_batch_free(b);
    key32_free(ak);
    secret_wipe(norm, sizeof(norm));
    return rc;
}

struct list_ctx {
    const char *account;
    struct key32 *ak;
    ident_cb cb;
    void *ctx;
};

static int
list_one(void *vctx, struct slice key, struct slice val)
{
    struct list_ctx *l = vctx;
    char value[IDENT_VALUE_MAX + 1];
    char aad[128];
    size_t n = 0;
    if (key.len != 1 + KR_HASH_LEN || val.len < 1 ||
        (key.p[0] != IDENT_PHONE && key.p[0] != IDENT_IMEI))
        return ERR_CORRUPT;
    enum ident_type type = (enum ident_type)key.p[0];
    ident_aad(aad, sizeof(aad), l->account, type);
    int rc = aead_open((enum aead_cipher)val.p[0], (uint8_t *)value, sizeof(value) - 1, &n,
                       l->ak->b, SLICE_STR(aad), SLICE(val.p + 1, val.len - 1));
    if (rc)
        return rc;
    value[n] = 0;
    rc = l->cb(l->ctx, type, value);
    secret_wipe(value, sizeof(value));
    return rc;
}

int
ident_list(struct region *r, const char *account, ident_cb cb, void *ctx)
{
    struct list_ctx l = {account, key32_new(), cb, ctx};
    if (!l.ak)
        return ERR_NOMEM;
    int rc = region_sealed(r) ? ERR_SEALED : acct_key(r, account, l.ak);
    if (!rc)
        rc = store_rec_list(region_store(r), account, REC_KIND, list_one, &l);
    key32_free(l.ak);
    return rc;
}

int
ident_lookup(struct region *r, enum ident_type type, const char *value, const char *country,
             char account_out[STORE_ID_MAX])
{
    char norm[IDENT_VALUE_MAX];
    uint8_t key[1 + KR_HASH_LEN];
    if (region_sealed(r))
        return ERR_SEALED;
    int rc = normalize(type, value, country, norm);
    if (!rc)
        rc = record_key(r, type, norm, key);
    if (!rc)
        rc = store_rec_find(region_store(r), REC_KIND, SLICE(key, sizeof(key)), account_out);
    secret_wipe(norm, sizeof(norm));
    return rc;
}
