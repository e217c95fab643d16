/* SPDX-License-Identifier: MIT */
/* The archive writer (format.md 7): stream segments, then index, header.
 *
 * Invariants:
 *  1. The destination path is only ever replaced by rename(2) of a
 *     complete, fsynced file: readers map the old file or the new one.
 *  2. Until the header is rewritten at the very end, the magic on disk is
 *     CDS_MAGIC_INCOMPLETE, so a file left behind by a crash is rejected
 *     as unfinished even if someone renames it.
 *  3. Entries are stored in the order their segments were written, which
 *     is what the reader's overlap check (format.md 6, I7) expects. */
#include "writer.h"

#include "checksum.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct cds_writer {
    int fd;
    int finished;
    char *path;
    char *tmp_path;
    uint64_t offset; /* next write position */
    struct cds_disk_header header;
    struct cds_disk_module *modules;
    uint32_t nmodules, cap_modules;
    char *strings;
    uint64_t strings_size, strings_cap;
    const struct cds_pool *pool;
};

static int
write_all(cds_writer *w, const void *data, size_t len, cds_error *err)
{
    const uint8_t *p = data;
    while (len > 0) {
        ssize_t n = pwrite(w->fd, p, len, (off_t)w->offset);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return CDS_FAIL(err, CDS_EIO, w->offset, "write %s: %s",
                            w->tmp_path, strerror(errno));
        }
        p += n;
        len -= (size_t)n;
        w->offset += (uint64_t)n;
    }
    return 0;
}

static int
write_pad(cds_writer *w, uint64_t align, cds_error *err)
{
    static const uint8_t zeros[CDS_SEGMENT_PAGE];
    uint64_t pad = (align - w->offset % align) % align;
    return write_all(w, zeros, (size_t)pad, err);
}

/* Add s to the string pool; *off receives its offset. */
static int
store_string(cds_writer *w, const char *s, uint32_t *off, uint32_t *len,
             cds_error *err)
{
    size_t n = strlen(s);
    if (n >= UINT32_MAX / 2 || w->strings_size + n + 1 > UINT32_MAX) {
        return CDS_FAIL(err, CDS_ENOMEM, UINT64_MAX, "string pool too big");
    }
    if (w->strings_size + n + 1 > w->strings_cap) {
        uint64_t cap = w->strings_cap ? w->strings_cap * 2 : 4096;
        while (cap < w->strings_size + n + 1) {
            cap *= 2;
        }
        char *p = realloc(w->strings, cap);
        if (p == NULL) {
            return CDS_FAIL(err, CDS_ENOMEM, UINT64_MAX, "out of memory");
        }
        w->strings = p;
        w->strings_cap = cap;
    }
    memcpy(w->strings + w->strings_size, s, n + 1);
    *off = (uint32_t)w->strings_size;
    *len = (uint32_t)n;
    w->strings_size += n + 1;
    return 0;
}

int
cds_writer_create(cds_writer **out, const char *path, uint64_t base,
                  const struct cds_disk_fingerprint *fp, cds_error *err)
{
    cds_writer *w = calloc(1, sizeof(*w));
    int rc;

    *out = NULL;
    if (w == NULL) {
        return CDS_FAIL(err, CDS_ENOMEM, UINT64_MAX, "out of memory");
    }
    w->fd = -1;
    if (base % 4096 != 0) {
        rc = CDS_FAIL(err, CDS_ECORRUPT, UINT64_MAX,
                      "base address 0x%llx not page aligned",
                      (unsigned long long)base);
        goto fail;
    }
    w->path = strdup(path);
    w->tmp_path = malloc(strlen(path) + 16);
    if (w->path == NULL || w->tmp_path == NULL) {
        rc = CDS_FAIL(err, CDS_ENOMEM, UINT64_MAX, "out of memory");
        goto fail;
    }
    sprintf(w->tmp_path, "%s.tmp.XXXXXX", path);
    w->fd = mkstemp(w->tmp_path);
    if (w->fd < 0) {
        /* the temporary name means nothing to the user: the archive's
         * does, and the error is its directory's */
        rc = CDS_FAIL(err, CDS_EIO, UINT64_MAX, "cannot write %s: %s",
                      path, strerror(errno));
        w->tmp_path[0] = '\0';
        goto fail;
    }
    /* mkstemp makes 0600; an archive is read by every worker user, and
     * written by its owner only: the reader refuses anything else */
    mode_t mask = umask(0);
    umask(mask);
    if (fchmod(w->fd, 0644 & ~mask) != 0) {
        rc = CDS_FAIL(err, CDS_EIO, UINT64_MAX, "chmod %s: %s", w->tmp_path,
                      strerror(errno));
        goto fail;
    }
    memcpy(w->header.magic, CDS_MAGIC_INCOMPLETE, CDS_MAGIC_SIZE);
    w->header.format_version = CDS_FORMAT_VERSION;
    w->header.header_size = CDS_HEADER_SIZE;
    w->header.base_address = base;
    w->header.fingerprint = *fp;
    /* inv. 2: an incomplete header goes down first */
    if ((rc = write_all(w, &w->header, sizeof(w->header), err)) < 0) {
        goto fail;
    }
    w->header.segments_offset = w->offset;
    *out = w;
    return 0;
fail:
    cds_writer_destroy(w);
    return rc;
}

uint64_t
cds_writer_next_offset(const cds_writer *w)
{
    return (w->offset + CDS_SEGMENT_PAGE - 1) / CDS_SEGMENT_PAGE *
           CDS_SEGMENT_PAGE;
}

/* memcpy that accepts an empty list given as NULL */
static void
copy_list(uint8_t *dst, const void *src, uint64_t len)
{
    if (len != 0) {
        memcpy(dst, src, len);
    }
}

/* Lay out the lists after the objects (format.md 4) and write the block,
 * filling the entry's offsets, sizes and checksum. */
static int
write_segment(cds_writer *w, struct cds_disk_module *e,
              const struct cds_segment *seg, cds_error *err)
{
    uint64_t off = seg->objects_size;
    uint8_t *block;
    int rc;

    e->objtab_off = (uint32_t)off;
    off += 4ull * seg->nobjects;
    e->reloc_off = (uint32_t)off;
    off += 4ull * seg->nreloc;
    e->ext_off = (uint32_t)off;
    off += sizeof(struct cds_disk_ext) * (uint64_t)seg->next;
    /* format.md 5.4: empty lists, at the offsets they always had */
    e->intern_off = (uint32_t)off;
    e->frozen_off = (uint32_t)off;
    off += 4ull * seg->nfrozen;
    e->shared_off = (uint32_t)off;
    off += sizeof(struct cds_disk_shared) * (uint64_t)seg->nshared;
    if (off > UINT32_MAX) {
        return CDS_FAIL(err, CDS_ENOMEM, w->offset,
                        "module %s: segment over 4 GiB",
                        w->strings + e->name_off);
    }
    block = malloc(off ? off : 1);
    if (block == NULL) {
        return CDS_FAIL(err, CDS_ENOMEM, UINT64_MAX, "out of memory");
    }
    copy_list(block, seg->objects, seg->objects_size);
    copy_list(block + e->objtab_off, seg->objtab, 4ull * seg->nobjects);
    copy_list(block + e->reloc_off, seg->reloc, 4ull * seg->nreloc);
    copy_list(block + e->ext_off, seg->ext, 8ull * seg->next);
    copy_list(block + e->frozen_off, seg->frozen, 4ull * seg->nfrozen);
    copy_list(block + e->shared_off, seg->shared, 8ull * seg->nshared);
    e->objects_size = seg->objects_size;
    e->nobjects = seg->nobjects;
    e->root_off = seg->root_off;
    e->nreloc = seg->nreloc;
    e->next = seg->next;
    e->nfrozen = seg->nfrozen;
    e->nshared = seg->nshared;
    e->write_size = seg->write_size;
    e->copy_off = seg->copy_off;
    e->seg_size = off;
    e->seg_checksum = cds_hash(block, off);
    /* each block on a page of its own: pages written at load (its first
     * objects) and pages dropped after it (its tables) are no other
     * block's (format.md 4) */
    rc = write_pad(w, CDS_SEGMENT_PAGE, err);
    if (rc == 0) {
        e->seg_offset = w->offset;
        rc = write_all(w, block, off, err);
    }
    free(block);
    return rc;
}

int
cds_writer_add(cds_writer *w, const struct cds_writer_module *m,
               const struct cds_segment *seg, cds_error *err)
{
    struct cds_disk_module e;
    int rc;

    if (seg->objects_size % CDS_OBJECT_ALIGN != 0 ||
        seg->root_off >= seg->objects_size ||
        seg->write_size % CDS_OBJECT_ALIGN != 0 ||
        seg->write_size > seg->objects_size ||
        seg->copy_off % CDS_OBJECT_ALIGN != 0 ||
        seg->copy_off < seg->write_size ||
        seg->copy_off > seg->objects_size) {
        return CDS_FAIL(err, CDS_ECORRUPT, UINT64_MAX,
                        "module %s: malformed segment", m->name);
    }
    if (strlen(m->name) == 0 || strlen(m->name) > CDS_MAX_NAME) {
        return CDS_FAIL(err, CDS_ECORRUPT, UINT64_MAX, "bad module name");
    }
    if (w->nmodules >= CDS_MAX_MODULES) {
        return CDS_FAIL(err, CDS_ENOMEM, UINT64_MAX, "too many modules");
    }
    memset(&e, 0, sizeof(e));
    if ((rc = store_string(w, m->name, &e.name_off, &e.name_len, err)) < 0 ||
        (rc = store_string(w, m->origin, &e.origin_off, &e.origin_len,
                           err)) < 0 ||
        (rc = store_string(w, m->search, &e.search_off, &e.search_len,
                           err)) < 0) {
        return rc;
    }
    e.name_hash = cds_hash(m->name, e.name_len);
    e.flags = m->flags;
    e.source_mtime_ns = m->source_mtime_ns;
    e.source_size = m->source_size;
    e.source_hash = m->source_hash;
    if ((rc = write_segment(w, &e, seg, err)) < 0) {
        return rc;
    }
    if (w->nmodules == w->cap_modules) {
        uint32_t cap = w->cap_modules ? w->cap_modules * 2 : 64;
        struct cds_disk_module *p = realloc(w->modules, cap * sizeof(*p));
        if (p == NULL) {
            return CDS_FAIL(err, CDS_ENOMEM, UINT64_MAX, "out of memory");
        }
        w->modules = p;
        w->cap_modules = cap;
    }
    w->modules[w->nmodules++] = e; /* inv. 3 */
    return 0;
}

/* format.md 4.1: objects, offset table, then one checksum per block of
 * [objects, table). */
static int
write_pool(cds_writer *w, const struct cds_pool *pool, cds_error *err)
{
    struct cds_disk_header *h = &w->header;
    uint64_t covered, nblocks, *sums = NULL;
    uint8_t *block = NULL;
    int rc;

    if ((rc = write_pad(w, CDS_SEGMENT_ALIGN, err)) < 0) {
        return rc;
    }
    h->pool_offset = w->offset;
    h->pool_block_size = CDS_POOL_BLOCK;
    if (pool != NULL && pool->code_version_count != 0) {
        h->code_version_base = pool->code_version_base;
        h->code_version_count = pool->code_version_count;
    }
    if (pool == NULL || pool->count == 0) {
        return 0; /* empty: count, sizes and checksum stay zero */
    }
    if (pool->objects_size % CDS_OBJECT_ALIGN != 0) {
        return CDS_FAIL(err, CDS_ECORRUPT, UINT64_MAX, "malformed pool");
    }
    /* H11: each string at most once on the list */
    if (pool->early_count > pool->count) {
        return CDS_FAIL(err, CDS_ECORRUPT, UINT64_MAX, "malformed pool");
    }
    for (uint32_t i = 0; i < pool->early_count; i++) {
        if (pool->early[i] >= pool->count) {
            return CDS_FAIL(err, CDS_ECORRUPT, UINT64_MAX, "malformed pool");
        }
    }
    h->pool_count = pool->count;
    h->pool_objects_size = pool->objects_size;
    h->pool_early_count = pool->early_count;
    covered = cds_pool_covered(h);
    nblocks = (covered + CDS_POOL_BLOCK - 1) / CDS_POOL_BLOCK;
    uint64_t sums_off = (covered + 7) / 8 * 8;
    if (sums_off + 8 * nblocks > UINT32_MAX) {
        return CDS_FAIL(err, CDS_ENOMEM, UINT64_MAX, "pool over 4 GiB");
    }
    block = calloc(1, sums_off);
    sums = calloc(nblocks, sizeof(*sums));
    if (block == NULL || sums == NULL) {
        rc = CDS_FAIL(err, CDS_ENOMEM, UINT64_MAX, "out of memory");
        goto out;
    }
    memcpy(block, pool->objects, pool->objects_size);
    memcpy(block + pool->objects_size, pool->table, 4ull * pool->count);
    if (pool->early_count != 0) {
        memcpy(block + pool->objects_size + 4ull * pool->count, pool->early,
               4ull * pool->early_count);
    }
    for (uint64_t i = 0; i < nblocks; i++) {
        uint64_t start = i * CDS_POOL_BLOCK;
        uint64_t len = covered - start < CDS_POOL_BLOCK ? covered - start
                                                         : CDS_POOL_BLOCK;
        sums[i] = cds_hash(block + start, len);
    }
    h->pool_table_off = pool->objects_size;
    h->pool_sums_off = (uint32_t)sums_off;
    h->pool_size = sums_off + 8 * nblocks;
    h->pool_sums_checksum = cds_hash(sums, 8 * nblocks);
    if ((rc = write_all(w, block, sums_off, err)) == 0) {
        rc = write_all(w, sums, 8 * nblocks, err);
    }
out:
    free(block);
    free(sums);
    return rc;
}

static int
read_all(cds_writer *w, void *data, size_t len, uint64_t at, cds_error *err)
{
    uint8_t *p = data;
    while (len > 0) {
        ssize_t n = pread(w->fd, p, len, (off_t)at);
        if (n <= 0) {
            if (n < 0 && errno == EINTR) {
                continue;
            }
            return CDS_FAIL(err, CDS_EIO, at, "read back %s: %s",
                            w->tmp_path, n < 0 ? strerror(errno) : "short");
        }
        p += n;
        len -= (size_t)n;
        at += (uint64_t)n;
    }
    return 0;
}

/* format.md 5.5: now that the pool has its place, each pool reference
 * slot gets the address the string is expected to have when loaded:
 * its hint, or its own address in the pool at the preferred base, and
 * each reference the string's final index (struct cds_pool's renumber).
 * The blocks are read back, patched and checksummed again. */
static int
store_hints(cds_writer *w, const struct cds_pool *pool, cds_error *err)
{
    const struct cds_disk_header *h = &w->header;
    uint8_t *block = NULL;
    uint64_t cap = 0;
    int rc = 0;

    for (uint32_t i = 0; i < w->nmodules && rc == 0; i++) {
        struct cds_disk_module *e = &w->modules[i];
        if (e->nshared == 0) {
            continue;
        }
        if (e->seg_size > cap) {
            uint8_t *p = realloc(block, e->seg_size);
            if (p == NULL) {
                rc = CDS_FAIL(err, CDS_ENOMEM, UINT64_MAX, "out of memory");
                break;
            }
            block = p;
            cap = e->seg_size;
        }
        if ((rc = read_all(w, block, e->seg_size, e->seg_offset, err)) < 0) {
            break;
        }
        struct cds_disk_shared *sh = (void *)(block + e->shared_off);
        for (uint32_t k = 0; k < e->nshared; k++) {
            uint32_t ix = sh[k].index;
            if (pool != NULL && pool->renumber != NULL && ix < pool->count) {
                ix = sh[k].index = pool->renumber[ix];
            }
            if (pool == NULL || ix >= pool->count ||
                (uint64_t)sh[k].slot + 8 > e->objects_size) {
                free(block);
                return CDS_FAIL(err, CDS_ECORRUPT, UINT64_MAX,
                                "module %s: pool reference %u outside the "
                                "pool or the segment",
                                w->strings + e->name_off, k);
            }
            uint64_t v = pool->hints != NULL && pool->hints[ix] != 0
                             ? pool->hints[ix]
                             : h->base_address + h->pool_offset +
                                   pool->table[ix];
            memcpy(block + sh[k].slot, &v, 8);
        }
        e->seg_checksum = cds_hash(block, e->seg_size);
        uint64_t saved = w->offset;
        w->offset = e->seg_offset;
        rc = write_all(w, block, e->seg_size, err);
        w->offset = saved;
    }
    free(block);
    return rc;
}

void
cds_writer_set_optimize(cds_writer *w, unsigned level)
{
    w->header.optimize = level;
}

void
cds_writer_set_pool(cds_writer *w, const struct cds_pool *pool)
{
    w->pool = pool;
}

int
cds_writer_finish(cds_writer *w, cds_error *err)
{
    struct cds_disk_header *h = &w->header;
    uint32_t nslots = 1;
    uint32_t *slots = NULL;
    uint8_t *index = NULL;
    uint64_t slots_bytes, entries_bytes, size;
    struct timespec now;
    int rc;

    if ((rc = write_pad(w, CDS_SEGMENT_ALIGN, err)) < 0) {
        return rc;
    }
    h->segments_size = w->offset - h->segments_offset;
    if ((rc = write_pool(w, w->pool, err)) < 0 ||
        (rc = store_hints(w, w->pool, err)) < 0 ||
        (rc = write_pad(w, CDS_SEGMENT_ALIGN, err)) < 0) {
        return rc;
    }
    /* load factor at most 1/2: short probe sequences */
    while (nslots < 2 * (uint64_t)w->nmodules) {
        nslots *= 2;
    }
    slots = calloc(nslots, sizeof(*slots));
    if (slots == NULL) {
        return CDS_FAIL(err, CDS_ENOMEM, UINT64_MAX, "out of memory");
    }
    for (uint32_t i = 0; i < w->nmodules; i++) {
        const struct cds_disk_module *e = &w->modules[i];
        uint32_t s = (uint32_t)e->name_hash & (nslots - 1);
        while (slots[s] != 0) {
            const struct cds_disk_module *o = &w->modules[slots[s] - 1];
            if (o->name_hash == e->name_hash && o->name_len == e->name_len &&
                memcmp(w->strings + o->name_off, w->strings + e->name_off,
                       e->name_len) == 0) {
                rc = CDS_FAIL(err, CDS_ECORRUPT, UINT64_MAX,
                              "module %s added twice",
                              w->strings + e->name_off);
                goto out;
            }
            s = (s + 1) & (nslots - 1);
        }
        slots[s] = i + 1;
    }
    slots_bytes = 4ull * nslots;
    entries_bytes = sizeof(struct cds_disk_module) * (uint64_t)w->nmodules;
    h->index_offset = w->offset;
    h->nmodules = w->nmodules;
    h->nslots = nslots;
    h->slots_offset = w->offset;
    h->entries_offset = h->slots_offset + (slots_bytes + 7) / 8 * 8;
    h->strings_offset = h->entries_offset + entries_bytes;
    h->strings_size = w->strings_size;
    size = h->strings_offset + h->strings_size - h->index_offset;
    h->index_size = size;
    index = calloc(1, size ? size : 1);
    if (index == NULL) {
        rc = CDS_FAIL(err, CDS_ENOMEM, UINT64_MAX, "out of memory");
        goto out;
    }
    memcpy(index, slots, slots_bytes);
    if (entries_bytes != 0) {
        memcpy(index + (h->entries_offset - h->index_offset), w->modules,
               entries_bytes);
    }
    if (w->strings_size != 0) {
        memcpy(index + (h->strings_offset - h->index_offset), w->strings,
               w->strings_size);
    }
    h->index_checksum = cds_hash(index, size);
    if ((rc = write_all(w, index, size, err)) < 0) {
        goto out;
    }
    h->file_size = w->offset;
    clock_gettime(CLOCK_REALTIME, &now);
    h->created_ns = (uint64_t)now.tv_sec * 1000000000ull +
                    (uint64_t)now.tv_nsec;
    /* inv. 2: the complete magic and checksum go down last */
    memcpy(h->magic, CDS_MAGIC, CDS_MAGIC_SIZE);
    h->header_checksum = 0;
    h->header_checksum = cds_hash(h, sizeof(*h));
    w->offset = 0;
    if ((rc = write_all(w, h, sizeof(*h), err)) < 0) {
        goto out;
    }
    if (fsync(w->fd) != 0) {
        rc = CDS_FAIL(err, CDS_EIO, UINT64_MAX, "fsync %s: %s", w->tmp_path,
                      strerror(errno));
        goto out;
    }
    /* inv. 1 */
    if (rename(w->tmp_path, w->path) != 0) {
        rc = CDS_FAIL(err, CDS_EIO, UINT64_MAX, "rename to %s: %s", w->path,
                      strerror(errno));
        goto out;
    }
    w->finished = 1;
    /* make the rename itself durable */
    char *slash = strrchr(w->path, '/');
    if (slash != NULL) {
        *slash = '\0';
    }
    int dfd = open(slash != NULL ? (w->path[0] ? w->path : "/") : ".",
                   O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (slash != NULL) {
        *slash = '/';
    }
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    rc = 0;
out:
    free(slots);
    free(index);
    return rc;
}

void
cds_writer_destroy(cds_writer *w)
{
    if (w == NULL) {
        return;
    }
    if (w->fd >= 0) {
        close(w->fd);
    }
    if (!w->finished && w->tmp_path != NULL && w->tmp_path[0] != '\0') {
        unlink(w->tmp_path);
    }
    free(w->path);
    free(w->tmp_path);
    free(w->modules);
    free(w->strings);
    free(w);
}
