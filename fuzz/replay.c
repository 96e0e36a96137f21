/* SPDX-License-Identifier: Apache-2.0 */
/*
 * replay.c: runs a fuzz target's LLVMFuzzerTestOneInput over every file
 * of the directories (or files) given, so that ctest replays each corpus
 * with any compiler, under the sanitizers of the build. Exits non-zero if a
 * file cannot be read; a crash is the target's own. Single-threaded.
 */
#include "base/common.h"

#include <dirent.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int main(int argc, char **argv);

static int
run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: cannot open '%s': %s\n", path, strerror(errno));
        return 1;
    }
    size_t cap = 1 << 16, len = 0;
    uint8_t *data = malloc(cap);
    while (data) {
        size_t n = fread(data + len, 1, cap - len, f);
        len += n;
        if (len < cap)
            break;
        uint8_t *more = realloc(data, cap * 2);
        if (!more) {
            free(data);
            data = NULL;
            break;
        }
        data = more;
        cap *= 2;
    }
    fclose(f);
    if (!data)
        return 1;
    LLVMFuzzerTestOneInput(data, len);
    free(data);
    return 0;
}

int
main(int argc, char **argv)
{
    int bad = 0, files = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            DIR *d = opendir(argv[i]);
            struct dirent *e;
            while (d && (e = readdir(d))) {
                char path[4096];
                if (e->d_name[0] == '.')
                    continue;
                snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
                bad |= run_file(path);
                files++;
            }
            if (d)
                closedir(d);
        } else {
            bad |= run_file(argv[i]);
            files++;
        }
    }
    printf("replay: %d inputs\n", files);
    return bad || files == 0;
}
