/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cfg.h: the daemon's configuration. One declarative table of options (in
 * cfg.c) drives parsing, validation, --help and the man page's list. Sources
 * in increasing precedence: defaults < config file (INI, section [oikosd])
 * < environment (OIKOS_<NAME>) < command line (--name value). The result is
 * one immutable struct config, validated whole before anything starts.
 */
#ifndef OIKOS_CFG_H
#define OIKOS_CFG_H

#include "base/buf.h"
#include "base/common.h"

struct config {
    char *region;         /* this region's name: lowercase letters, 2..15 */
    char *listen;         /* HOST:PORT */
    char *data;           /* data directory */
    char *cluster;        /* cluster file, or NULL */
    char *store;          /* store URL; default sqlite:<data>/oikos.db */
    char *keystore;       /* key store URL; default sqlite:<data>/keys.db */
    char *policy_version; /* privacy policy version recorded with each consent change */
    char *config;         /* config file, or NULL */
    char *log_level;
    char *log_file;
    uint64_t threads;
    uint64_t connection_limit;
    uint64_t connection_timeout;
    uint64_t max_header_bytes;
    uint64_t max_json_bytes;
    uint64_t max_object_bytes;
    uint64_t chunk_bytes;
    uint64_t session_ttl;
    uint64_t login_max_failures;
    uint64_t login_lockout;
    uint64_t pwhash_ops;
    uint64_t pwhash_mem;
    uint64_t retention_idle_account;        /* seconds without activity before erasure */
    uint64_t retention_purge;               /* seconds revoked or erased data may stay on disk */
    uint64_t retention_message_undelivered; /* seconds an undelivered message is kept */
    /* derived by cfg_load */
    char host[64];
    uint16_t port;
};

/**
 * Builds the configuration from every source. argv holds only options
 * (--name value or --name=value). On error returns ERR_INVAL and writes a
 * message (lowercase, no final period) into err. cfg_release frees it.
 */
MUST_CHECK int cfg_load(struct config *c, int argc, char **argv, struct buf *err);
/** Frees the strings of a configuration. */
void cfg_release(struct config *c);
/** Writes the option list (name, default, help) for --help. */
void cfg_usage(FILE *out);

#endif
