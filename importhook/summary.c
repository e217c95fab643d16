/* SPDX-License-Identifier: MIT */
/* PYCDSSTATS=1: a summary of what SHARE did, on stderr when the process
 * exits (pycds stats; docs/usage.md).
 *
 *   pycds: stats: archive /srv/heap.img, 534 modules, mapped at its base
 *   pycds: stats: served 534, not in the archive 21, stale 0, failed 0
 *   pycds: stats: loading 44.9 ms, find_spec 6.3 ms
 *   pycds: stats: archive pages 6476 resident of 8022: 4086 the file's
 *   (63 %), 2390 copied
 *
 * Invariants:
 *  1. It runs from libc's exit handlers, after Py_Finalize: counters and
 *     the mapping only (never unmapped, hook.h inv. 2), no Python.
 *  2. Only the process that activated reports (a forked worker's counters
 *     include its parent's), and only when the archive was mapped. */
#include "hook.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pid_t summary_pid;

struct pages {
    uint64_t rss_kb, dirty_kb, clean_kb;
};

/* The archive's lines of /proc/self/smaps, summed: resident, copied
 * (Private_Dirty and Shared_Dirty) and still the file's (Private_Clean,
 * Shared_Clean; in copy mode the range is anonymous memory, all copied). */
static int
archive_pages(struct pages *p)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    long page = sysconf(_SC_PAGESIZE);
    uintptr_t lo = (uintptr_t)cds__hook.archive.data;
    uintptr_t hi = lo + cds__hook.archive.size;
    char line[512];
    int in = 0;

    memset(p, 0, sizeof(*p));
    if (page > 0) {
        hi = (hi + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
    }
    if (f == NULL) {
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        unsigned long long start, end, kb;
        char key[64];
        if (sscanf(line, "%llx-%llx ", &start, &end) == 2) {
            in = start >= lo && end <= hi;
            continue;
        }
        if (!in || sscanf(line, "%63[^:]: %llu kB", key, &kb) != 2) {
            continue;
        }
        if (strcmp(key, "Rss") == 0) {
            p->rss_kb += kb;
        }
        else if (strcmp(key, "Private_Dirty") == 0 ||
                 strcmp(key, "Shared_Dirty") == 0) {
            p->dirty_kb += kb;
        }
        else if (strcmp(key, "Private_Clean") == 0 ||
                 strcmp(key, "Shared_Clean") == 0) {
            p->clean_kb += kb;
        }
    }
    fclose(f);
    return 0;
}

static void
summary(int status, void *arg)
{
    struct pages p;
    long page = sysconf(_SC_PAGESIZE);
    uint64_t kb_per_page = page > 0 ? (uint64_t)page / 1024u : 4u;

    (void)status;
    (void)arg;
    if (getpid() != summary_pid || cds__hook.seg_state == NULL) {
        return; /* inv. 2 */
    }
    fprintf(stderr, "pycds: stats: archive %s, %u modules, %s%s\n",
            cds__hook.archive_path, cds__hook.archive.header->nmodules,
            cds_archive_at_base(&cds__hook.archive) ? "mapped at its base"
                                                    : "relocated",
            cds__hook.archive.fetched != NULL ? ", segments read in (copy "
                                                "mode)"
                                              : "");
    fprintf(stderr,
            "pycds: stats: served %zd, not in the archive %zd, stale %zd, "
            "failed %zd%s\n",
            cds__hook.nserved, cds__hook.nmissed, cds__hook.nstale,
            cds__hook.nfailed,
            cds__hook.warned ? ", and a warning (above)" : "");
    fprintf(stderr, "pycds: stats: loading %.1f ms, find_spec %.1f ms\n",
            (double)cds__hook.load_ns / 1e6, (double)cds__hook.find_ns / 1e6);
    if (archive_pages(&p) == 0 && kb_per_page > 0) {
        uint64_t mapped = (cds__hook.archive.size + (uint64_t)page - 1) /
                          (uint64_t)page;
        uint64_t rss = p.rss_kb / kb_per_page;
        uint64_t clean = p.clean_kb / kb_per_page;
        fprintf(stderr,
                "pycds: stats: archive pages %" PRIu64 " resident of %" PRIu64
                ": %" PRIu64 " the file's (%.0f %%), %" PRIu64 " copied\n",
                rss, mapped, clean, rss ? 100.0 * (double)clean / (double)rss
                                        : 0.0,
                p.dirty_kb / kb_per_page);
    }
    fflush(stderr);
}

void
cds__summary_install(void)
{
    const char *v = getenv("PYCDSSTATS");

    if (v == NULL || v[0] == '\0' || strcmp(v, "0") == 0) {
        return;
    }
    summary_pid = getpid();
    on_exit(summary, NULL);
}
