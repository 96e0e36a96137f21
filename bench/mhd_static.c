/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mhd_static.c: the baseline of the small-read benchmark: a bare
 * libmicrohttpd server that answers every GET with the same static 1 KiB
 * body, run with the same daemon flags and thread pool as oikosd
 * (internal polling thread, epoll, a pool of N threads). Like oikosd it
 * answers on the second call of the access handler: answering on the
 * first makes libmicrohttpd 0.9.75 close the connection after each
 * response, and the benchmark is about keep-alive connections.
 *
 * Usage: bench_mhd_static [--threads N] [--body-bytes N]. Listens on
 * 127.0.0.1 with a port the kernel picks, prints "port=P" on standard
 * output, serves until SIGTERM or SIGINT, then prints one JSON object with
 * the number of connections it accepted and of requests it answered, so
 * that the caller can check that keep-alive held.
 *
 * Ownership: main owns the daemon and the one shared response (libmicrohttpd
 * reference-counts it). Thread-safety: the handler runs on the pool's
 * threads and touches only atomics.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static atomic_ulong connections;
static atomic_ulong requests;
static int first_call_marker;

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
           const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    struct MHD_Response *resp = cls;
    (void)url;
    (void)version;
    (void)upload_data;
    if (*con_cls == NULL) {
        /* first call: headers only; answer at the next call */
        *con_cls = &first_call_marker;
        return MHD_YES;
    }
    if (*upload_data_size) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (strcmp(method, "GET") != 0)
        return MHD_NO;
    atomic_fetch_add(&requests, 1);
    return MHD_queue_response(conn, 200, resp);
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
             enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    *con_cls = NULL;
}

static void
on_connection(void *cls, struct MHD_Connection *conn, void **socket_ctx,
              enum MHD_ConnectionNotificationCode toe)
{
    (void)cls;
    (void)conn;
    (void)socket_ctx;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED)
        atomic_fetch_add(&connections, 1);
}

static int
parse_uint(const char *s, unsigned long lo, unsigned long hi, unsigned long *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

int
main(int argc, char **argv)
{
    unsigned long threads = 32, body_bytes = 1024;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && !strcmp(argv[i], "--threads") &&
            !parse_uint(argv[i + 1], 1, 1024, &threads)) {
            i++;
        } else if (i + 1 < argc && !strcmp(argv[i], "--body-bytes") &&
                   !parse_uint(argv[i + 1], 0, 1 << 24, &body_bytes)) {
            i++;
        } else {
            fprintf(stderr, "usage: bench_mhd_static [--threads N] [--body-bytes N]\n");
            return 2;
        }
    }

    /* block the stop signals in every thread; main waits for them */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);

    char *body = malloc(body_bytes ? body_bytes : 1);
    if (!body)
        return 1;
    for (unsigned long i = 0; i < body_bytes; i++)
        body[i] = (char)('a' + i % 26);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(body_bytes, body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return 1;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");

    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = 0;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, resp, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)threads, MHD_OPTION_CONNECTION_LIMIT, 1024u,
        MHD_OPTION_CONNECTION_TIMEOUT, 60u, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)32 * 1024,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_NOTIFY_CONNECTION,
        on_connection, NULL, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "bench_mhd_static: cannot start the daemon: %s\n", strerror(errno));
        MHD_destroy_response(resp);
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    printf("port=%u\n", info ? (unsigned)info->port : 0u);
    fflush(stdout);

    int sig = 0;
    sigwait(&stop, &sig);
    MHD_stop_daemon(d);
    MHD_destroy_response(resp);
    printf("{\"connections\": %lu, \"requests\": %lu}\n", atomic_load(&connections),
           atomic_load(&requests));
    return 0;
}
