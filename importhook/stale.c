/* SPDX-License-Identifier: MIT */
/* Never stale: is an archived module's source unchanged since the dump,
 * at the cost PYCDSCHECK chose (hook.h). */
#include "hook.h"

#include "checksum.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* XXH3 of the file at path and its size; 0 or -1 (errno). */
static int
hash_file(const char *path, uint64_t *hash, uint64_t *size)
{
    struct stat st;
    uint8_t *buf = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc = -1;

    if (fd < 0) {
        return -1;
    }
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
        size_t n = (size_t)st.st_size, got = 0;
        buf = malloc(n ? n : 1);
        while (buf != NULL && got < n) {
            ssize_t r = read(fd, buf + got, n - got);
            if (r <= 0) {
                break;
            }
            got += (size_t)r;
        }
        if (buf != NULL && got == n) {
            *hash = cds_hash(buf, n);
            *size = n;
            rc = 0;
        }
    }
    free(buf);
    close(fd);
    return rc;
}

/* Never stale (issue 3, item 4), at the cost the user chose: by default
 * the same stat the path finder's loader would make, size and mtime to
 * the nanosecond; PYCDSCHECK=hash compares the source's bytes (for trees
 * whose mtimes are not kept); PYCDSCHECK=none trusts an immutable tree
 * and makes no system call at all. */
int
cds__source_unchanged(uint32_t ix, const char *name, int report)
{
    const struct cds_disk_module *m = &cds__hook.archive.modules[ix];
    const char *origin = cds_module_origin(&cds__hook.archive, ix);
    struct stat st;
    uint64_t hash, size;
    int gone;

    if (cds__hook.config.check == CHECK_NONE) {
        return 1;
    }
    if (cds__hook.config.check == CHECK_HASH) {
        gone = hash_file(origin, &hash, &size) != 0;
        if (!gone && size == m->source_size && hash == m->source_hash) {
            return 1;
        }
    }
    else {
        gone = stat(origin, &st) != 0;
        if (!gone && (uint64_t)st.st_size == m->source_size &&
            (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec ==
                m->source_mtime_ns) {
            return 1;
        }
    }
    if (report) {
        cds__hook.nstale++;
        VERBOSE(1, "pycds: %s: not served: source %s %s since the dump\n",
                name, origin, gone ? "gone" : "changed");
    }
    return 0;
}
