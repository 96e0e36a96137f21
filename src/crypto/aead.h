/* SPDX-License-Identifier: Apache-2.0 */
/*
 * aead.h: authenticated encryption of everything oikos stores. AES-256-GCM
 * where the CPU has AES-NI, XChaCha20-Poly1305 elsewhere; the cipher id is
 * stored with each sealed item so both can be read back anywhere they run.
 * Sealed format: nonce || ciphertext || tag, nonce random per message.
 * Pure; thread-safe after aead_setup().
 */
#ifndef OIKOS_AEAD_H
#define OIKOS_AEAD_H

#include "base/buf.h"
#include "base/common.h"

enum aead_cipher {
    AEAD_AES256GCM = 1,
    AEAD_XCHACHA20POLY1305 = 2,
};

#define AEAD_KEY_LEN 32
#define AEAD_TAG_LEN 16
#define AEAD_MAX_NONCE_LEN 24
#define AEAD_MAX_OVERHEAD (AEAD_MAX_NONCE_LEN + AEAD_TAG_LEN)

/** Initialises libsodium and picks the default cipher. Call once at start. */
MUST_CHECK int aead_setup(void);
/** The cipher new data is sealed with on this machine. */
enum aead_cipher aead_default(void);
/**
 * Makes c the cipher new data is sealed with (configuration, or tests of
 * the fallback path). ERR_INVAL if c is unknown or unavailable here.
 */
MUST_CHECK int aead_set_default(enum aead_cipher c);
/** True if the cipher can be used here (AES-GCM needs AES-NI). */
bool aead_available(enum aead_cipher c);
/** Nonce length of a cipher (0 for an unknown one). */
size_t aead_nonce_len(enum aead_cipher c);
/** Bytes a sealed message adds to its plaintext (nonce + tag). */
size_t aead_overhead(enum aead_cipher c);

/**
 * Seals pt with a fresh random nonce into out (cap >= pt.len + overhead):
 * nonce || ciphertext || tag. *outlen gets the sealed length. ERR_INVAL for
 * an unknown or unavailable cipher or small cap.
 */
MUST_CHECK int aead_seal(enum aead_cipher c, uint8_t *out, size_t cap, size_t *outlen,
                         const uint8_t key[AEAD_KEY_LEN], struct slice aad, struct slice pt);
/**
 * Opens a sealed message into out (cap >= sealed.len - overhead). ERR_CRYPTO
 * if it was altered, is truncated, or the key or aad differ; out is wiped then.
 */
MUST_CHECK int aead_open(enum aead_cipher c, uint8_t *out, size_t cap, size_t *outlen,
                         const uint8_t key[AEAD_KEY_LEN], struct slice aad, struct slice sealed);

/**
 * The primitives with an explicit nonce, for known-answer tests: ct gets
 * pt.len bytes, tag AEAD_TAG_LEN bytes. aead_decrypt returns ERR_CRYPTO on a
 * bad tag and wipes pt.
 */
MUST_CHECK int aead_encrypt(enum aead_cipher c, uint8_t *ct, uint8_t tag[AEAD_TAG_LEN],
                            const uint8_t key[AEAD_KEY_LEN], struct slice nonce, struct slice aad,
                            struct slice pt);
MUST_CHECK int aead_decrypt(enum aead_cipher c, uint8_t *pt, const uint8_t key[AEAD_KEY_LEN],
                            struct slice nonce, struct slice aad, struct slice ct,
                            const uint8_t tag[AEAD_TAG_LEN]);

#endif
