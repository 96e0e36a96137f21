/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_dev.c: `oikos dev up`, a local three-region cloud (in, sg, us) on
 * loopback for trying oikos out: a cluster file, one oikosd per region
 * with its own data directory, each initialised once and unsealed at every
 * start with shares kept in DIR/dev-shares (loudly marked as a trial-only
 * shortcut). Runs in the foreground; SIGINT or SIGTERM stops the three
 * regions cleanly. Single-threaded.
 */
#include "base/common.h"

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/util.h"
#include "cli/cli.h"

#define DEV_REGIONS 3

static const struct {
    const char *name;
    const char *countries;
} dev_regions[DEV_REGIONS] = {
    {"in", "IN"},
    {"sg", "SG MY ID PH TW HK"},
    {"us", "*"},
};

static int dev_up_run(int argc, char **argv);

static const struct cli_cmd dev_up = {
    "dev up",
    "dev up [--dir DIR] [--port N] [--oikosd PATH]",
    "start a local three-region cloud (in, sg, us) on loopback, for trying oikos out",
    "  --dir DIR       where the regions keep their data (default ./oikos-dev)\n"
    "  --port N        the first of three ports: in at N, sg at N+1, us at N+2 (default 7701)\n"
    "  --oikosd PATH   the server program (default: beside oikos, else on PATH)\n",
    dev_up_run,
};

static int
dev_run(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "up"))
        return dev_up.run(argc - 1, argv + 1);
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        cli_help(&dev_up, stdout);
        return CLI_EXIT_OK;
    }
    return cli_usage_error(&dev_up,
                           argc < 2 ? "which dev command? ('up')" : "unknown dev command '%s'",
                           argc < 2 ? "" : argv[1]);
}

const struct cli_cmd cli_cmd_dev = {
    "dev",
    "dev up [--dir DIR] [--port N] [--oikosd PATH]",
    "run a local three-region cloud on loopback for trying oikos out",
    NULL,
    dev_run,
};

/* The server program: --oikosd, $OIKOSD, beside this program, or on PATH. */
static void
find_oikosd(const char *opt, char *out, size_t cap)
{
    const char *env = getenv("OIKOSD");
    if (opt || env) {
        snprintf(out, cap, "%s", opt ? opt : env);
        return;
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
        self[n] = 0;
        char *slash = strrchr(self, '/');
        if (slash && (size_t)(slash - self) + sizeof("/oikosd") <= cap) {
            memcpy(out, self, (size_t)(slash - self));
            memcpy(out + (slash - self), "/oikosd", sizeof("/oikosd"));
            if (access(out, X_OK) == 0)
                return;
        }
    }
    snprintf(out, cap, "oikosd");
}

static int
write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return ERR_IO;
    size_t n = strlen(text);
    bool ok = write(fd, text, n) == (ssize_t)n && fsync(fd) == 0;
    close(fd);
    return ok ? 0 : ERR_IO;
}

static pid_t
spawn(const char *oikosd, const char *dir, const char *name, unsigned port)
{
    char listen[32], data[PATH_MAX], cluster[PATH_MAX], logf[PATH_MAX];
    snprintf(listen, sizeof(listen), "127.0.0.1:%u", port);
    snprintf(data, sizeof(data), "%s/%s", dir, name);
    snprintf(cluster, sizeof(cluster), "%s/cluster.ini", dir);
    snprintf(logf, sizeof(logf), "%s/%s.log", dir, name);
    pid_t pid = fork();
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        setpgid(0, 0); /* Ctrl-C reaches oikos, which stops the regions in order */
        execlp(oikosd, oikosd, "--region", name, "--listen", listen, "--data", data, "--cluster",
               cluster, "--log-file", logf, (char *)NULL);
        fprintf(stderr, "oikos: cannot run '%s': %s\n", oikosd, strerror(errno));
        _exit(127);
    }
    return pid;
}

/* Waits until the region answers its health check; fills *health. */
static int
wait_ready(struct oc *c, pid_t pid, json_t **health)
{
    for (int i = 0; i < 300; i++) {
        struct oc_resp r = {0};
        int rc = oc_call(c, &r, "GET", "/v1/sys/health", NULL);
        if (!rc && r.status == 200 && r.json) {
            *health = json_incref(r.json);
            oc_resp_release(&r);
            return 0;
        }
        oc_resp_release(&r);
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return ERR_UNAVAILABLE;
        usleep(50000);
    }
    return ERR_UNAVAILABLE;
}

/* Initialises a new region (shares saved) or unseals one with its saved shares. */
static int
bring_up(struct oc *c, json_t *health, const char *sharefile)
{
    struct oc_resp r = {0};
    json_t *saved = NULL, *body = NULL;
    int rc = 0;
    if (!json_is_true(json_object_get(health, "initialized"))) {
        body = json_pack("{s:i,s:i}", "shares", 3, "threshold", 2);
        rc = body ? oc_call(c, &r, "POST", "/v1/sys/init", body) : ERR_NOMEM;
        if (!rc && r.status != 200)
            rc = cli_fail(c, ERR_INVAL, &r, "cannot initialise the region");
        if (!rc) {
            char *text = json_dumps(r.json, JSON_INDENT(2));
            rc = text ? write_file(sharefile, text) : ERR_NOMEM;
            free(text);
            if (rc)
                cli_error("cannot save the dev shares in '%s': %s", sharefile, strerror(errno));
        }
        goto out;
    }
    if (!json_is_true(json_object_get(health, "sealed")))
        goto out;
    json_error_t jerr;
    saved = json_load_file(sharefile, 0, &jerr);
    json_t *shares = json_object_get(saved, "shares");
    if (!json_is_array(shares)) {
        cli_error("the region is initialised but '%s' holds no shares to unseal it", sharefile);
        rc = ERR_NOT_FOUND;
        goto out;
    }
    size_t i;
    json_t *sh;
    json_array_foreach(shares, i, sh)
    {
        oc_resp_release(&r);
        json_decref(body);
        body = json_pack("{s:O}", "share", sh);
        rc = body ? oc_call(c, &r, "POST", "/v1/sys/unseal", body) : ERR_NOMEM;
        if (!rc && r.status != 200)
            rc = cli_fail(c, ERR_INVAL, &r, "cannot unseal the region");
        if (rc || json_is_false(json_object_get(r.json, "sealed")))
            break;
    }
out:
    oc_resp_release(&r);
    json_decref(body);
    json_decref(saved);
    return rc;
}

static void
stop_all(pid_t *pids)
{
    for (int i = 0; i < DEV_REGIONS; i++)
        if (pids[i] > 0)
            kill(pids[i], SIGTERM);
    for (int i = 0; i < DEV_REGIONS; i++)
        if (pids[i] > 0)
            waitpid(pids[i], NULL, 0);
}

static int
dev_up_run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"dir", required_argument, NULL, 'd'},
        {"port", required_argument, NULL, 'p'},
        {"oikosd", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = "oikos-dev", *oikosd_opt = NULL;
    uint64_t port = 7701;
    char oikosd[PATH_MAX], path[PATH_MAX], url[DEV_REGIONS][64];
    pid_t pids[DEV_REGIONS] = {0};
    struct buf cluster;
    sigset_t sigs;
    int ch, rc = CLI_EXIT_FAIL;

    optind = 0;
    while ((ch = cli_getopt(&dev_up, argc, argv, ":h", opts)) != -1) {
        switch (ch) {
        case 'd':
            dir = optarg;
            break;
        case 'p':
            if (cli_parse_num(&dev_up, "--port", optarg, 1, 65533, &port))
                return CLI_EXIT_USAGE;
            break;
        case 'o':
            oikosd_opt = optarg;
            break;
        case 'h':
            cli_help(&dev_up, stdout);
            return CLI_EXIT_OK;
        default:
            return CLI_EXIT_USAGE;
        }
    }
    if (optind < argc)
        return cli_usage_error(&dev_up, "unexpected argument '%s'", argv[optind]);
    find_oikosd(oikosd_opt, oikosd, sizeof(oikosd));

    snprintf(path, sizeof(path), "%s/dev-shares", dir);
    if ((mkdir(dir, 0700) && errno != EEXIST) || (mkdir(path, 0700) && errno != EEXIST)) {
        cli_error("cannot create '%s': %s", path, strerror(errno));
        return CLI_EXIT_FAIL;
    }
    buf_init(&cluster, 8192);
    for (int i = 0; i < DEV_REGIONS; i++) {
        snprintf(url[i], sizeof(url[i]), "http://127.0.0.1:%u", (unsigned)port + (unsigned)i);
        if (buf_addf(&cluster, "[region \"%s\"]\nurl = %s\ncountries = %s\n\n", dev_regions[i].name,
                     url[i], dev_regions[i].countries))
            cli_oom();
    }
    snprintf(path, sizeof(path), "%s/cluster.ini", dir);
    if (write_file(path, cluster.data)) {
        cli_error("cannot write '%s': %s", path, strerror(errno));
        buf_release(&cluster);
        return CLI_EXIT_FAIL;
    }
    buf_release(&cluster);

    /* signals are taken with sigwait once the regions run */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGCHLD);
    sigprocmask(SIG_BLOCK, &sigs, NULL);

    for (int i = 0; i < DEV_REGIONS; i++) {
        pids[i] = spawn(oikosd, dir, dev_regions[i].name, (unsigned)port + (unsigned)i);
        if (pids[i] < 0) {
            cli_error("cannot start '%s': %s", oikosd, strerror(errno));
            goto out;
        }
    }
    for (int i = 0; i < DEV_REGIONS; i++) {
        struct oc *c = NULL;
        json_t *health = NULL;
        if (oc_new(&c, url[i])) {
            cli_error("cannot talk to %s", url[i]);
            goto out;
        }
        int r = wait_ready(c, pids[i], &health);
        if (r) {
            cli_error("region '%s' did not start; see %s/%s.log", dev_regions[i].name, dir,
                      dev_regions[i].name);
            oc_free(c);
            goto out;
        }
        snprintf(path, sizeof(path), "%s/dev-shares/%s.json", dir, dev_regions[i].name);
        r = bring_up(c, health, path);
        json_decref(health);
        oc_free(c);
        if (r)
            goto out;
    }

    printf("\noikos dev cloud: three regions on loopback, initialised and unsealed\n\n");
    for (int i = 0; i < DEV_REGIONS; i++)
        printf("  %-3s %s   home of %s\n", dev_regions[i].name, url[i],
               !strcmp(dev_regions[i].countries, "*") ? "every other country"
                                                      : dev_regions[i].countries);
    printf("\n  WARNING: FOR TRYING OUT ONLY. The key shares and operator tokens are kept\n"
           "  in %s/dev-shares so that these regions can unseal themselves. A real\n"
           "  region hands each share to a different custodian and keeps none.\n\n",
           dir);
    printf("  Try:\n"
           "    oikos signup --country IN --url %s   (the us region sends you home to in)\n"
           "    oikos consent on contacts             (every service starts off)\n"
           "    oikos backup contacts FILE\n"
           "    oikos ls contacts\n"
           "    oikos restore contacts --dir /tmp/restored\n"
           "    curl -s %s/v1/sys/health\n\n"
           "  Logs and data: %s/   Ctrl-C stops all three.\n",
           url[2], url[0], dir);
    fflush(stdout);

    for (;;) {
        int sig = 0;
        if (sigwait(&sigs, &sig) != 0)
            continue;
        if (sig == SIGCHLD) {
            bool died = false;
            for (int i = 0; i < DEV_REGIONS; i++) {
                if (pids[i] > 0 && waitpid(pids[i], NULL, WNOHANG) == pids[i]) {
                    cli_error("region '%s' stopped unexpectedly; see %s/%s.log",
                              dev_regions[i].name, dir, dev_regions[i].name);
                    pids[i] = 0;
                    died = true;
                }
            }
            if (!died)
                continue;
            goto out;
        }
        break;
    }
    rc = CLI_EXIT_OK;
out:
    stop_all(pids);
    printf("oikos dev cloud: stopped\n");
    return rc;
}
