/* SPDX-License-Identifier: Apache-2.0 */
/*
 * aead_speed.c: the baseline of the streaming benchmarks: how fast one
 * core seals and opens 1 MiB buffers (oikosd's default chunk size) with
 * the ciphers oikosd uses: AES-256-GCM (when the CPU has AES-NI) as
 * OpenSSL's EVP interface does it, which is what oikosd runs, and as
 * libsodium does it, for comparison; XChaCha20-Poly1305 (libsodium). Each
 * measure repeats the decryption (or encryption) of one buffer, with a
 * short associated data like oikosd's, for the given time.
 *
 * Usage: bench_aead [SECONDS]: each decryption runs SECONDS (default 2),
 * each encryption half of it. Prints one JSON object on standard output,
 * speeds in MB/s (10^6 bytes per second) of plaintext; aes256gcm_* are
 * OpenSSL's, aes256gcm_libsodium_* libsodium's.
 * Single-threaded; owns every buffer it allocates.
 */
#include <errno.h>
#include <openssl/evp.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BUF_BYTES (1024 * 1024)
#define AAD_BYTES 64

enum cipher { AES_OPENSSL, AES_SODIUM, XCHACHA };

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* OpenSSL's AES-256-GCM, as oikosd calls it: a context per message. */
static int
evp_gcm(int enc, unsigned char *out, unsigned long long *outlen, const unsigned char *in,
        size_t len, const unsigned char *aad, const unsigned char *nonce, const unsigned char *key)
{
    static EVP_CIPHER *gcm;
    if (!gcm && !(gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL)))
        return -1;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n, ok = ctx && EVP_CipherInit_ex2(ctx, gcm, key, nonce, enc, NULL) &&
                EVP_CipherUpdate(ctx, NULL, &n, aad, AAD_BYTES);
    if (ok && !enc) {
        len -= 16;
        ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, 16, (void *)(uintptr_t)(in + len));
    }
    ok = ok && EVP_CipherUpdate(ctx, out, &n, in, (int)len) && EVP_CipherFinal_ex(ctx, out + n, &n);
    if (ok && enc)
        ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, out + len);
    *outlen = enc ? len + 16 : len;
    EVP_CIPHER_CTX_free(ctx);
    return ok ? 0 : -1;
}

static int
seal(enum cipher c, unsigned char *ct, unsigned long long *ctlen, const unsigned char *pt,
     const unsigned char *aad, const unsigned char *nonce, const unsigned char *key)
{
    if (c == AES_OPENSSL)
        return evp_gcm(1, ct, ctlen, pt, BUF_BYTES, aad, nonce, key);
    if (c == AES_SODIUM)
        return crypto_aead_aes256gcm_encrypt(ct, ctlen, pt, BUF_BYTES, aad, AAD_BYTES, NULL, nonce,
                                             key);
    return crypto_aead_xchacha20poly1305_ietf_encrypt(ct, ctlen, pt, BUF_BYTES, aad, AAD_BYTES,
                                                      NULL, nonce, key);
}

static int
open_ct(enum cipher c, unsigned char *pt, const unsigned char *ct, unsigned long long ctlen,
        const unsigned char *aad, const unsigned char *nonce, const unsigned char *key)
{
    unsigned long long ptlen = 0;
    if (c == AES_OPENSSL)
        return evp_gcm(0, pt, &ptlen, ct, ctlen, aad, nonce, key);
    if (c == AES_SODIUM)
        return crypto_aead_aes256gcm_decrypt(pt, &ptlen, NULL, ct, ctlen, aad, AAD_BYTES, nonce,
                                             key);
    return crypto_aead_xchacha20poly1305_ietf_decrypt(pt, &ptlen, NULL, ct, ctlen, aad, AAD_BYTES,
                                                      nonce, key);
}

/* Measures one cipher; returns 0 and the two speeds, or -1. */
static int
measure(enum cipher c, double seconds, unsigned char *pt, unsigned char *ct, unsigned char *out,
        double *enc_mbs, double *dec_mbs)
{
    unsigned char key[32], nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES], aad[AAD_BYTES];
    unsigned long long ctlen = 0;
    randombytes_buf(key, sizeof(key));
    randombytes_buf(nonce, sizeof(nonce));
    randombytes_buf(aad, sizeof(aad));

    unsigned long n = 0;
    double t0 = now_s(), t = t0;
    while (t - t0 < seconds / 2) {
        if (seal(c, ct, &ctlen, pt, aad, nonce, key))
            return -1;
        n++;
        t = now_s();
    }
    *enc_mbs = (double)n * BUF_BYTES / (t - t0) / 1e6;

    n = 0;
    t0 = t = now_s();
    while (t - t0 < seconds) {
        if (open_ct(c, out, ct, ctlen, aad, nonce, key))
            return -1;
        n++;
        t = now_s();
    }
    *dec_mbs = (double)n * BUF_BYTES / (t - t0) / 1e6;
    if (memcmp(out, pt, BUF_BYTES) != 0)
        return -1;
    sodium_memzero(key, sizeof(key));
    return 0;
}

int
main(int argc, char **argv)
{
    double seconds = 2;
    if (argc > 1) {
        char *end = NULL;
        errno = 0;
        seconds = strtod(argv[1], &end);
        if (argc > 2 || errno || end == argv[1] || *end || seconds < 0.05 || seconds > 600) {
            fprintf(stderr, "usage: bench_aead [SECONDS]\n");
            return 2;
        }
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "bench_aead: sodium_init failed\n");
        return 1;
    }
    unsigned char *pt = malloc(BUF_BYTES);
    unsigned char *ct = malloc(BUF_BYTES + crypto_aead_xchacha20poly1305_ietf_ABYTES +
                               crypto_aead_aes256gcm_ABYTES);
    unsigned char *out = malloc(BUF_BYTES);
    int rc = 1;
    if (!pt || !ct || !out)
        goto out;
    randombytes_buf(pt, BUF_BYTES);

    double aes_enc = 0, aes_dec = 0, so_enc = 0, so_dec = 0, xc_enc = 0, xc_dec = 0;
    int aes = crypto_aead_aes256gcm_is_available();
    if (aes && (measure(AES_OPENSSL, seconds, pt, ct, out, &aes_enc, &aes_dec) ||
                measure(AES_SODIUM, seconds, pt, ct, out, &so_enc, &so_dec))) {
        fprintf(stderr, "bench_aead: AES-256-GCM round trip failed\n");
        goto out;
    }
    if (measure(XCHACHA, seconds, pt, ct, out, &xc_enc, &xc_dec)) {
        fprintf(stderr, "bench_aead: XChaCha20-Poly1305 round trip failed\n");
        goto out;
    }
    printf("{\"buffer_bytes\": %d, \"aes256gcm_available\": %s,"
           " \"aes256gcm_encrypt_mbs\": %.1f, \"aes256gcm_decrypt_mbs\": %.1f,"
           " \"aes256gcm_libsodium_encrypt_mbs\": %.1f, \"aes256gcm_libsodium_decrypt_mbs\": %.1f,"
           " \"xchacha20poly1305_encrypt_mbs\": %.1f, \"xchacha20poly1305_decrypt_mbs\": %.1f}\n",
           BUF_BYTES, aes ? "true" : "false", aes_enc, aes_dec, so_enc, so_dec, xc_enc, xc_dec);
    rc = 0;
out:
    free(pt);
    free(ct);
    free(out);
    return rc;
}
