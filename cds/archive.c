/* SPDX-License-Identifier: MIT */
/* The archive reader: every byte of the file is untrusted until checked.
 *
 * Invariants (cited in code as inv. N):
 *  1. No offset or length read from the file is followed before it has been
 *     checked against the size of the image, with overflow-safe arithmetic
 *     (off > size || len > size - off).
 *  2. Checks run in a fixed order, cheapest and most fundamental first:
 *     magic, format version, header size, file size, header checksum,
 *     build fingerprint, section bounds, index checksum, entries.  A
 *     truncated or foreign file is therefore named as such rather than as
 *     "corrupt".  docs/format.md section 6 lists the same order.
 *  3. Nothing here writes to the image; patching belongs to the heap layer,
 *     after cds_segment_validate() has accepted the segment.
 *  4. Every check runs in every build type; assert() guards only our own
 *     programming errors. */
#include "archive.h"

#include "checksum.h"

#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif
#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

/* inv. 1: is [off, off+len) inside [0, size)? */
static bool
check_range(uint64_t off, uint64_t len, uint64_t size)
{
    return off <= size && len <= size - off;
}

/* n * elem without overflow into *out. */
static bool
check_mul(uint64_t n, uint64_t elem, uint64_t *out)
{
    if (elem != 0 && n > UINT64_MAX / elem) {
        return false;
    }
    *out = n * elem;
    return true;
}

static bool
check_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != 0) {
            return false;
        }
    }
    return true;
}

/* A string in the string pool: [off, off+len) inside, NUL at off+len, no
 * NUL before it (format.md 3.3). */
static bool
check_string(const cds_archive *a, uint32_t off, uint32_t len)
{
    const struct cds_disk_header *h = a->header;
    if (!check_range(off, (uint64_t)len + 1, h->strings_size)) {
        return false;
    }
    const char *s = a->strings + off;
    return s[len] == '\0' && memchr(s, '\0', len) == NULL;
}

static uint64_t
header_checksum(const struct cds_disk_header *h)
{
    struct cds_disk_header copy;
    memcpy(&copy, h, sizeof(copy));
    copy.header_checksum = 0;
    return cds_hash(&copy, sizeof(copy));
}

#define FP_DIFF(field, fmt)                                                 \
    if (have->field != want->field) {                                       \
        snprintf(buf, bufsize, #field " " fmt " != " fmt,                   \
                 have->field, want->field);                                 \
        return true;                                                        \
    }
#define FP_DIFF_STR(field)                                                  \
    if (strncmp(have->field, want->field, sizeof(have->field)) != 0) {      \
        snprintf(buf, bufsize, #field " '%.*s' != '%.*s'",                  \
                 (int)sizeof(have->field), have->field,                     \
                 (int)sizeof(want->field), want->field);                    \
        return true;                                                        \
    }

bool
cds_fingerprint_diff(const struct cds_disk_fingerprint *have,
                     const struct cds_disk_fingerprint *want, char *buf,
                     size_t bufsize)
{
    FP_DIFF(py_version_hex, "0x%x");
    FP_DIFF(pyc_magic, "%u");
    FP_DIFF(pointer_size, "%u");
    FP_DIFF(byte_order, "%u");
    FP_DIFF(long_shift, "%u");
    FP_DIFF(wchar_size, "%u");
    FP_DIFF(build_flags, "0x%x");
    FP_DIFF(layout_hash, "0x%" PRIx64);
    FP_DIFF_STR(cache_tag);
    FP_DIFF_STR(soabi);
    FP_DIFF_STR(build_info);
    FP_DIFF_STR(compiler);
    FP_DIFF(runtime_hash, "0x%" PRIx64);
    if (have->quicken_hash != want->quicken_hash) {
        snprintf(buf, bufsize,
                 "quicken_hash 0x%" PRIx64 " != 0x%" PRIx64
                 " (the interpreter quickens code otherwise: its"
                 " specialization or JIT settings differ from the dump's)",
                 have->quicken_hash, want->quicken_hash);
        return true;
    }
    return false;
}

static int
load_header(cds_archive *a, const struct cds_disk_fingerprint *expect,
            cds_error *err)
{
    const struct cds_disk_header *h = (const void *)a->data;
    uint64_t size = a->size;

    /* H1: magic */
    if (size < CDS_MAGIC_SIZE) {
        return CDS_FAIL(err, CDS_EFORMAT, 0,
                        "file is %llu bytes, too small for an archive",
                        (unsigned long long)size);
    }
    if (memcmp(h->magic, CDS_MAGIC_INCOMPLETE, CDS_MAGIC_SIZE) == 0) {
        return CDS_FAIL(err, CDS_EINCOMPLETE, 0,
                        "magic marks an unfinished archive");
    }
    if (memcmp(h->magic, CDS_MAGIC, CDS_MAGIC_SIZE) != 0) {
        return CDS_FAIL(err, CDS_EFORMAT, 0, "bad magic: not an archive");
    }
    /* H2: the header must be whole before any field is read */
    if (size < CDS_HEADER_SIZE) {
        return CDS_FAIL(err, CDS_ECORRUPT, size,
                        "header truncated at %llu of %u bytes",
                        (unsigned long long)size, CDS_HEADER_SIZE);
    }
    /* H3, H4 */
    if (h->format_version != CDS_FORMAT_VERSION) {
        return CDS_FAIL(err, CDS_EFORMAT, 8,
                        "format version %u, this reader knows %u",
                        h->format_version, CDS_FORMAT_VERSION);
    }
    if (h->header_size != CDS_HEADER_SIZE) {
        return CDS_CORRUPT(err, 12, "header size %u, expected %u",
                           h->header_size, CDS_HEADER_SIZE);
    }
    /* H5: truncation and appended garbage are both file size errors */
    if (h->file_size != size) {
        return CDS_CORRUPT(err, 16,
                           "file is %llu bytes, header says %llu",
                           (unsigned long long)size,
                           (unsigned long long)h->file_size);
    }
    /* H6 */
    if (header_checksum(h) != h->header_checksum) {
        return CDS_FAIL(err, CDS_ECHECKSUM, 24, "header checksum mismatch");
    }
    /* H7: the interpreter (format.md 2.1) */
    if (expect != NULL) {
        char why[200];
        if (cds_fingerprint_diff(&h->fingerprint, expect, why, sizeof(why))) {
            return CDS_FAIL(err, CDS_EVERSION, 136,
                            "fingerprint mismatch: %s", why);
        }
    }
    /* H8: reserved bytes are zero, so they can gain meaning later */
    if (h->flags != 0 ||
        !check_zero(h->reserved, sizeof(h->reserved))) {
        return CDS_CORRUPT(err, 128, "reserved header bytes are not zero");
    }
    if (h->optimize > 255) {
        return CDS_CORRUPT(err, 132, "optimization level %u", h->optimize);
    }
    /* code versions: a range of valid ones (2 on, 3.14's first valid) or
     * none */
    if (h->code_version_count != 0
            ? h->code_version_base < 2 ||
                  h->code_version_base > UINT32_MAX - h->code_version_count
            : h->code_version_base != 0) {
        return CDS_CORRUPT(err, 472, "code versions %u+%u",
                           h->code_version_base, h->code_version_count);
    }
    /* H9: base address page aligned (it is handed to mmap) */
    if (h->base_address % 4096 != 0) {
        return CDS_CORRUPT(err, 32, "base address 0x%llx not page aligned",
                           (unsigned long long)h->base_address);
    }
    /* H10: sections inside the file, segments before the index */
    if (h->segments_offset < CDS_HEADER_SIZE ||
        h->segments_offset % CDS_SEGMENT_ALIGN != 0 ||
        !check_range(h->segments_offset, h->segments_size, size)) {
        return CDS_CORRUPT(err, 48, "segments [0x%llx, +0x%llx) outside file",
                           (unsigned long long)h->segments_offset,
                           (unsigned long long)h->segments_size);
    }
    if (h->index_offset < h->segments_offset + h->segments_size ||
        !check_range(h->index_offset, h->index_size, size)) {
        return CDS_CORRUPT(err, 64, "index [0x%llx, +0x%llx) outside file",
                           (unsigned long long)h->index_offset,
                           (unsigned long long)h->index_size);
    }
    /* H11: the string pool between segments and index (format.md 4.1) */
    uint64_t seg_end = h->segments_offset + h->segments_size;
    if (h->pool_block_size != CDS_POOL_BLOCK ||
        h->pool_offset < seg_end || h->pool_offset % CDS_SEGMENT_ALIGN ||
        !check_range(h->pool_offset, h->pool_size, h->index_offset)) {
        return CDS_CORRUPT(err, 424, "string pool [0x%llx, +0x%llx) outside "
                           "its place",
                           (unsigned long long)h->pool_offset,
                           (unsigned long long)h->pool_size);
    }
    if (h->pool_count == 0) {
        if (h->pool_size != 0 || h->pool_objects_size != 0 ||
            h->pool_table_off != 0 || h->pool_sums_off != 0 ||
            h->pool_sums_checksum != 0 || h->pool_early_count != 0) {
            return CDS_CORRUPT(err, 448, "empty string pool with contents");
        }
        return 0;
    }
    uint64_t covered = cds_pool_covered(h);
    uint64_t nblocks = (covered + CDS_POOL_BLOCK - 1) / CDS_POOL_BLOCK;
    if (h->pool_objects_size % CDS_OBJECT_ALIGN != 0 ||
        h->pool_table_off != h->pool_objects_size ||
        h->pool_early_count > h->pool_count ||
        h->pool_sums_off != (covered + 7) / 8 * 8 ||
        h->pool_size != (uint64_t)h->pool_sums_off + 8 * nblocks) {
        return CDS_CORRUPT(err, 448, "string pool layout inconsistent");
    }
    return 0;
}

static int
load_index(cds_archive *a, cds_error *err)
{
    const struct cds_disk_header *h = a->header;
    uint64_t slots_bytes, entries_bytes;
    uint64_t iend = h->index_offset + h->index_size; /* checked in H10 */

    /* I1: counts */
    if (h->nmodules > CDS_MAX_MODULES) {
        return CDS_CORRUPT(err, 88, "%u modules, limit is %u", h->nmodules,
                           CDS_MAX_MODULES);
    }
    if (h->nslots == 0 || (h->nslots & (h->nslots - 1)) != 0 ||
        h->nslots < h->nmodules || h->nslots > 2 * CDS_MAX_MODULES) {
        return CDS_CORRUPT(err, 92, "%u hash slots for %u modules",
                           h->nslots, h->nmodules);
    }
    /* I2: the three tables inside the index, in order, aligned */
    if (h->index_offset % 8 != 0) {
        return CDS_CORRUPT(err, 64, "index offset 0x%llx not aligned",
                           (unsigned long long)h->index_offset);
    }
    check_mul(h->nslots, sizeof(uint32_t), &slots_bytes);
    check_mul(h->nmodules, sizeof(struct cds_disk_module), &entries_bytes);
    if (h->slots_offset != h->index_offset ||
        !check_range(h->slots_offset, slots_bytes, iend)) {
        return CDS_CORRUPT(err, 96, "hash slots outside the index");
    }
    if (h->entries_offset % 8 != 0 ||
        h->entries_offset < h->slots_offset + slots_bytes ||
        !check_range(h->entries_offset, entries_bytes, iend)) {
        return CDS_CORRUPT(err, 104, "module entries outside the index");
    }
    if (h->strings_offset < h->entries_offset + entries_bytes ||
        !check_range(h->strings_offset, h->strings_size, iend)) {
        return CDS_CORRUPT(err, 112, "string pool outside the index");
    }
    /* I3 */
    if (cds_hash(a->data + h->index_offset, h->index_size) !=
        h->index_checksum) {
        return CDS_FAIL(err, CDS_ECHECKSUM, h->index_offset,
                        "index checksum mismatch");
    }
    /* I3b: the pool's block checksums (its blocks are checked on use) */
    if (h->pool_count != 0 &&
        cds_hash(a->data + h->pool_offset + h->pool_sums_off,
                 h->pool_size - h->pool_sums_off) != h->pool_sums_checksum) {
        return CDS_FAIL(err, CDS_ECHECKSUM, h->pool_offset + h->pool_sums_off,
                        "string pool checksums mismatch");
    }
    a->slots = (const uint32_t *)(const void *)(a->data + h->slots_offset);
    a->modules =
        (const struct cds_disk_module *)(const void *)(a->data +
                                                       h->entries_offset);
    a->strings = (const char *)a->data + h->strings_offset;

    /* I4: slots name entries or nothing */
    for (uint32_t i = 0; i < h->nslots; i++) {
        if (a->slots[i] > h->nmodules) {
            return CDS_CORRUPT(err, h->slots_offset + 4ull * i,
                               "slot %u: entry %u of %u", i, a->slots[i],
                               h->nmodules);
        }
    }
    /* I5..I8: entries */
    uint64_t seg_end = h->segments_offset + h->segments_size;
    uint64_t prev_end = h->segments_offset;
    for (uint32_t i = 0; i < h->nmodules; i++) {
        const struct cds_disk_module *m = &a->modules[i];
        uint64_t at = h->entries_offset + (uint64_t)i * sizeof(*m);
        if (m->name_len == 0 || m->name_len > CDS_MAX_NAME ||
            !check_string(a, m->name_off, m->name_len)) {
            return CDS_CORRUPT(err, at + 8, "entry %u: bad name", i);
        }
        if (m->name_hash != cds_hash(a->strings + m->name_off, m->name_len)) {
            return CDS_CORRUPT(err, at, "entry %u: name hash mismatch", i);
        }
        if (!check_string(a, m->origin_off, m->origin_len) ||
            m->origin_len == 0) {
            return CDS_CORRUPT(err, at + 16, "entry %u: bad origin", i);
        }
        if (!check_string(a, m->search_off, m->search_len)) {
            return CDS_CORRUPT(err, at + 24, "entry %u: bad search path", i);
        }
        if ((m->flags & ~CDS_MODULE_PACKAGE) != 0) {
            return CDS_CORRUPT(err, at + 32, "entry %u: unknown flags 0x%x",
                               i, m->flags);
        }
        /* I7: segments in entry order, aligned, not overlapping */
        if (m->seg_offset % CDS_SEGMENT_ALIGN != 0 ||
            m->seg_size > UINT32_MAX || m->seg_offset < prev_end ||
            !check_range(m->seg_offset, m->seg_size, seg_end)) {
            return CDS_CORRUPT(err, at + 56,
                               "entry %u: segment 0x%llx+0x%llx outside "
                               "segments or overlapping",
                               i, (unsigned long long)m->seg_offset,
                               (unsigned long long)m->seg_size);
        }
        prev_end = m->seg_offset + m->seg_size;
        /* I8: the segment's own tables lie inside it (format.md 4) */
        uint64_t s = m->seg_size, n;
        if (m->objects_size % CDS_OBJECT_ALIGN != 0 || m->objects_size > s ||
            m->root_off % CDS_OBJECT_ALIGN != 0 ||
            m->root_off >= m->objects_size ||
            m->write_size % CDS_OBJECT_ALIGN != 0 ||
            m->write_size > m->objects_size ||
            m->copy_off % CDS_OBJECT_ALIGN != 0 ||
            m->copy_off < m->write_size || m->copy_off > m->objects_size) {
            return CDS_CORRUPT(err, at + 80, "entry %u: bad object region",
                               i);
        }
        check_mul(m->nobjects, 4, &n);
        if (m->nobjects == 0 || m->objtab_off % 4 ||
            m->objtab_off < m->objects_size ||
            !check_range(m->objtab_off, n, s)) {
            return CDS_CORRUPT(err, at + 128, "entry %u: bad object table",
                               i);
        }
        check_mul(m->nshared, sizeof(struct cds_disk_shared), &n);
        if (m->shared_off % 4 || m->shared_off < m->objects_size ||
            !check_range(m->shared_off, n, s)) {
            return CDS_CORRUPT(err, at + 132, "entry %u: bad pool reference "
                               "list", i);
        }
        check_mul(m->nreloc, 4, &n);
        if (m->reloc_off % 4 || m->reloc_off < m->objects_size ||
            !check_range(m->reloc_off, n, s)) {
            return CDS_CORRUPT(err, at + 88, "entry %u: bad relocation list",
                               i);
        }
        check_mul(m->next, sizeof(struct cds_disk_ext), &n);
        if (m->ext_off % 4 || m->ext_off < m->objects_size ||
            !check_range(m->ext_off, n, s)) {
            return CDS_CORRUPT(err, at + 96, "entry %u: bad external list", i);
        }
        /* interned strings live in the pool (format.md 5.4): a
         * segment's own intern lists are empty */
        if (m->nintern != 0 || m->nrefs != 0) {
            return CDS_CORRUPT(err, at + (m->nintern ? 108 : 116),
                               "entry %u: interned strings outside the pool",
                               i);
        }
        check_mul(m->nfrozen, 4, &n);
        if (m->frozen_off % 4 || m->frozen_off < m->objects_size ||
            !check_range(m->frozen_off, n, s)) {
            return CDS_CORRUPT(err, at + 120, "entry %u: bad frozenset list",
                               i);
        }
    }
    return 0;
}

int
cds_archive_load(cds_archive *a, const void *data, size_t size,
                 const struct cds_disk_fingerprint *expect, cds_error *err)
{
    int rc;

    memset(a, 0, sizeof(*a));
    a->data = (uint8_t *)(uintptr_t)data;
    a->size = size;
    if ((rc = load_header(a, expect, err)) < 0) {
        return rc;
    }
    a->header = (const struct cds_disk_header *)data;
    a->delta = (uint64_t)(uintptr_t)data - a->header->base_address;
    if ((rc = load_index(a, err)) < 0) {
        a->header = NULL;
        return rc;
    }
    return 0;
}

/* madvise(advice) over [p, p+len), page-rounded: 0, or -1 when the
 * pages could not all be faulted in (the file shrank under us).  Kernels
 * without the advice: 0, and the pages fault in on use as usual. */
static int
advise(void *p, uint64_t len, int advice)
{
    uintptr_t first = (uintptr_t)p & ~(uintptr_t)4095;
    uintptr_t last = ((uintptr_t)p + len + 4095) & ~(uintptr_t)4095;

    if (last > first && madvise((void *)first, last - first, advice) != 0 &&
        errno != EINVAL) {
        return -1;
    }
    return 0;
}

/* Pages that will be written: private copies of the file's bytes, made
 * in one system call instead of a copy-on-write fault each. */
static int
populate(void *p, uint64_t len)
{
    return advise(p, len, MADV_POPULATE_WRITE);
}

/* Pages that are only read: the file's page-cache pages, mapped in one
 * system call instead of a fault each, and shared with every other
 * process that maps the file. */
static int
populate_read(void *p, uint64_t len)
{
    return advise(p, len, MADV_POPULATE_READ);
}

/* Who may have written the file open as fd (as ssh judges key files):
 * the file and every directory above it must belong to root or to us and
 * not be writable by group or others, except for sticky directories
 * (/tmp), where others cannot replace what they do not own.  The
 * directories are those of the file actually opened (/proc/self/fd), so
 * a symbolic link or a rename between check and open changes nothing. */
static int
check_trusted(int fd, const struct stat *st, cds_error *err)
{
    char link[64], real[4096];
    uid_t me = geteuid();
    ssize_t n;

    if ((st->st_uid != 0 && st->st_uid != me) ||
        (st->st_mode & (S_IWGRP | S_IWOTH)) != 0) {
        return CDS_FAIL(err, CDS_EPERM, UINT64_MAX,
                        "file is owned by uid %u with mode %04o: others "
                        "could have written it",
                        (unsigned)st->st_uid, (unsigned)(st->st_mode & 07777));
    }
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    n = readlink(link, real, sizeof(real) - 1);
    if (n <= 0 || real[0] != '/') {
        return CDS_FAIL(err, CDS_EPERM, UINT64_MAX,
                        "cannot tell which directory holds the file");
    }
    real[n] = '\0';
    for (char *slash = strrchr(real, '/'); slash != NULL;
         slash = strrchr(real, '/')) {
        struct stat ds;
        *slash = '\0';
        const char *dir = real[0] != '\0' ? real : "/";
        if (stat(dir, &ds) != 0) {
            return CDS_FAIL(err, CDS_EPERM, UINT64_MAX, "cannot stat %s: %s",
                            dir, strerror(errno));
        }
        if ((ds.st_uid != 0 && ds.st_uid != me) ||
            ((ds.st_mode & (S_IWGRP | S_IWOTH)) != 0 &&
             (ds.st_mode & S_ISVTX) == 0)) {
            return CDS_FAIL(err, CDS_EPERM, UINT64_MAX,
                            "directory %s is owned by uid %u with mode %04o: "
                            "others could replace the file",
                            dir, (unsigned)ds.st_uid,
                            (unsigned)(ds.st_mode & 07777));
        }
        if (real[0] == '\0') {
            break;
        }
    }
    return 0;
}

int
cds_archive_open(cds_archive *a, const char *path, unsigned flags,
                 const struct cds_disk_fingerprint *expect, cds_error *err)
{
    struct cds_disk_header h;
    struct stat st;
    void *map = MAP_FAILED;
    int rc, prot = PROT_READ;
    int fd = -1;

    memset(a, 0, sizeof(*a));
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return CDS_FAIL(err, CDS_EIO, UINT64_MAX, "cannot open: %s",
                        strerror(errno));
    }
    if (fstat(fd, &st) != 0) {
        rc = CDS_FAIL(err, CDS_EIO, UINT64_MAX, "cannot stat: %s",
                      strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = CDS_FAIL(err, CDS_EFORMAT, UINT64_MAX, "not a regular file");
        goto out;
    }
    if ((flags & CDS_OPEN_TRUSTED) && (rc = check_trusted(fd, &st, err)) < 0) {
        goto out;
    }
    if (st.st_size < (off_t)sizeof(h)) {
        /* too small to map usefully: let load() name the problem */
        uint8_t small[sizeof(h)];
        ssize_t n = pread(fd, small, sizeof(small), 0);
        rc = cds_archive_load(a, small, n < 0 ? 0 : (size_t)n, expect, err);
        memset(a, 0, sizeof(*a));
        if (rc == 0) {
            rc = CDS_CORRUPT(err, 0, "archive too small");
        }
        goto out;
    }
    if (pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h)) {
        rc = CDS_FAIL(err, CDS_EIO, 0, "cannot read header");
        goto out;
    }
    if (flags & CDS_OPEN_WRITABLE) {
        prot |= PROT_WRITE;
    }
    /* Prefer the writer's base: then no internal pointer needs patching
     * (DESIGN.md cost model).  The header is not trusted yet: a bad base
     * only costs a failed hint. */
    if (!(flags & CDS_OPEN_RELOCATE) && h.base_address != 0 &&
        h.base_address % 4096 == 0 &&
        memcmp(h.magic, CDS_MAGIC, CDS_MAGIC_SIZE) == 0) {
        map = mmap((void *)(uintptr_t)h.base_address, (size_t)st.st_size,
                   prot, MAP_PRIVATE | MAP_FIXED_NOREPLACE, fd, 0);
        if (map != MAP_FAILED &&
            (uintptr_t)map != (uintptr_t)h.base_address) {
            /* an old kernel took it as a hint and put it elsewhere */
            munmap(map, (size_t)st.st_size);
            map = MAP_FAILED;
        }
    }
    if (map == MAP_FAILED) {
        map = mmap(NULL, (size_t)st.st_size, prot, MAP_PRIVATE, fd, 0);
    }
    if (map == MAP_FAILED) {
        rc = CDS_FAIL(err, CDS_EMAP, UINT64_MAX, "cannot map %lld bytes: %s",
                      (long long)st.st_size, strerror(errno));
        goto out;
    }
    /* A writable (process) mapping: make the header and the index private
     * before reading them, so that an archive truncated in place later
     * cannot take them away (SIGBUS); segments and pool blocks are made
     * private likewise before their first use.  A read-only mapping (the
     * CLI) reads the file's pages. */
    if (prot & PROT_WRITE) {
        if (populate(map, CDS_HEADER_SIZE) < 0) {
            rc = CDS_FAIL(err, CDS_EMAP, 0, "cannot fault in the header");
            munmap(map, (size_t)st.st_size);
            goto out;
        }
        if (h.index_offset < (uint64_t)st.st_size &&
            populate((uint8_t *)map + h.index_offset,
                     (uint64_t)st.st_size - h.index_offset) < 0) {
            rc = CDS_FAIL(err, CDS_EMAP, h.index_offset,
                          "cannot fault in the index");
            munmap(map, (size_t)st.st_size);
            goto out;
        }
    }
    rc = cds_archive_load(a, map, (size_t)st.st_size, expect, err);
    if (rc < 0) {
        munmap(map, (size_t)st.st_size);
        memset(a, 0, sizeof(*a));
    }
    else {
        a->map_size = (size_t)st.st_size;
        a->writable = (prot & PROT_WRITE) != 0;
        a->fd1 = fd + 1; /* kept to notice an in-place overwrite */
        fd = -1;
    }
out:
    if (fd >= 0) {
        close(fd);
    }
    return rc;
}

int
cds_archive_check_file(const cds_archive *a, cds_error *err)
{
    struct stat st;

    if (a->fd1 == 0) {
        return 0;
    }
    if (fstat(a->fd1 - 1, &st) != 0 || (uint64_t)st.st_size != a->size) {
        return CDS_CORRUPT(err, UINT64_MAX,
                           "the file changed size while mapped (overwritten "
                           "in place, not replaced by rename?)");
    }
    return 0;
}

void
cds_archive_close(cds_archive *a)
{
    if (a != NULL && a->map_size != 0) {
        munmap(a->data, a->map_size);
    }
    if (a != NULL && a->fd1 != 0) {
        close(a->fd1 - 1);
    }
    if (a != NULL) {
        free(a->fetched);
        memset(a, 0, sizeof(*a));
    }
}

int
cds_archive_find(const cds_archive *a, const char *name, size_t len,
                 uint32_t *index)
{
    const struct cds_disk_header *h = a->header;
    if (h == NULL || len == 0 || len > CDS_MAX_NAME) {
        return CDS_ENOTFOUND;
    }
    uint64_t hash = cds_hash(name, len);
    uint32_t mask = h->nslots - 1;
    /* linear probing, bounded by nslots even if every slot is taken */
    for (uint32_t i = 0, s = (uint32_t)hash & mask; i < h->nslots;
         i++, s = (s + 1) & mask) {
        uint32_t v = a->slots[s];
        if (v == 0) {
            break;
        }
        const struct cds_disk_module *m = &a->modules[v - 1];
        if (m->name_hash == hash && m->name_len == len &&
            memcmp(a->strings + m->name_off, name, len) == 0) {
            *index = v - 1;
            return 0;
        }
    }
    return CDS_ENOTFOUND;
}

static int read_in(const cds_archive *a, uint64_t off, uint64_t len);

/* Check pool block b once (P2). */
static int
check_pool_block(const cds_archive *a, uint64_t b, uint8_t *block_ok,
                 cds_error *err)
{
    const struct cds_disk_header *h = a->header;
    const uint8_t *pool = a->data + h->pool_offset;
    uint64_t covered = cds_pool_covered(h);
    uint64_t start = b * CDS_POOL_BLOCK, sum;

    if (block_ok[b]) {
        return 0;
    }
    uint64_t len = covered - start < CDS_POOL_BLOCK ? covered - start
                                                     : CDS_POOL_BLOCK;
    /* make the block private before checking it (in copy mode, read it
     * in): what was checked cannot change or vanish under us, and
     * interning writes to it anyway */
    if (a->fetched != NULL
            ? read_in(a, h->pool_offset + start, len) < 0
            : a->map_size != 0 && a->writable &&
                  populate((void *)(uintptr_t)(pool + start), len) < 0) {
        return CDS_FAIL(err, CDS_EMAP, h->pool_offset + start,
                        "string pool block %llu cannot be faulted in",
                        (unsigned long long)b);
    }
    memcpy(&sum, pool + h->pool_sums_off + 8 * b, 8);
    if (cds_hash(pool + start, len) != sum) {
        return CDS_FAIL(err, CDS_ECHECKSUM, h->pool_offset + start,
                        "string pool block %llu checksum mismatch",
                        (unsigned long long)b);
    }
    block_ok[b] = 1;
    return 0;
}

int
cds_pool_find(const cds_archive *a, uint32_t index, uint8_t *block_ok,
              uint32_t *off, uint32_t *extent, cds_error *err)
{
    const struct cds_disk_header *h = a->header;
    const uint8_t *pool = a->data + h->pool_offset;
    uint64_t t = (uint64_t)h->pool_table_off + 4ull * index;
    uint32_t start, end;
    int rc;

    /* P1: the index names a string */
    if (index >= h->pool_count) {
        return CDS_CORRUPT(err, h->pool_offset, "pool index %u of %u", index,
                           h->pool_count);
    }
    /* P2: the table entries and the string's bytes are the ones written */
    if ((rc = check_pool_block(a, t / CDS_POOL_BLOCK, block_ok, err)) < 0 ||
        (index + 1 < h->pool_count &&
         (rc = check_pool_block(a, (t + 4) / CDS_POOL_BLOCK, block_ok,
                                err)) < 0)) {
        return rc;
    }
    memcpy(&start, pool + t, 4);
    end = h->pool_objects_size;
    if (index + 1 < h->pool_count) {
        memcpy(&end, pool + t + 4, 4);
    }
    /* P3: strings are in table order, aligned, inside the region */
    if (start % CDS_OBJECT_ALIGN != 0 || start >= end ||
        end > h->pool_objects_size) {
        return CDS_CORRUPT(err, h->pool_offset + t,
                           "pool string %u at 0x%x..0x%x", index, start, end);
    }
    for (uint64_t b = start / CDS_POOL_BLOCK; b <= (end - 1) / CDS_POOL_BLOCK;
         b++) {
        if ((rc = check_pool_block(a, b, block_ok, err)) < 0) {
            return rc;
        }
    }
    *off = start;
    *extent = end - start;
    return 0;
}

int
cds_pool_early(const cds_archive *a, uint8_t *block_ok,
               const uint32_t **list, cds_error *err)
{
    const struct cds_disk_header *h = a->header;
    uint64_t at = (uint64_t)h->pool_table_off + 4ull * h->pool_count;
    uint64_t end = at + 4ull * h->pool_early_count; /* H11: inside */
    int rc;

    *list = NULL;
    if (h->pool_early_count == 0) {
        return 0;
    }
    /* P2 for the list's blocks; each index is checked (P1) as it is
     * resolved */
    for (uint64_t b = at / CDS_POOL_BLOCK; b <= (end - 1) / CDS_POOL_BLOCK;
         b++) {
        if ((rc = check_pool_block(a, b, block_ok, err)) < 0) {
            return rc;
        }
    }
    *list = (const uint32_t *)(const void *)(a->data + h->pool_offset + at);
    return 0;
}

uint64_t
cds_pool_nblocks(const cds_archive *a)
{
    const struct cds_disk_header *h = a->header;
    uint64_t covered = cds_pool_covered(h);
    return (covered + CDS_POOL_BLOCK - 1) / CDS_POOL_BLOCK;
}

/* pread all of [off, off + len) of the file to dst */
static int
read_to(const cds_archive *a, uint8_t *dst, uint64_t off, uint64_t len)
{
    for (uint64_t at = off; at < off + len;) {
        ssize_t n = pread(a->fd1 - 1, dst + (at - off),
                          (size_t)(off + len - at), (off_t)at);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            errno = n < 0 ? errno : ENODATA;
            return -1;
        }
        at += (uint64_t)n;
    }
    return 0;
}

/* the same into the image, at the same offset */
static int
read_in(const cds_archive *a, uint64_t off, uint64_t len)
{
    return read_to(a, a->data + off, off, len);
}

int
cds_archive_copy_segments(cds_archive *a, bool map_bytes, cds_error *err)
{
    const struct cds_disk_header *h = a->header;

    if (a->map_size == 0 || !a->writable || a->fd1 == 0 ||
        a->fetched != NULL) {
        return 0;
    }
    /* what open checked, kept as checked: the header, the pool's block
     * sums, the index; the rest is read in as it is first used */
    const uint64_t keep[3][2] = {
        {0, CDS_HEADER_SIZE},
        {h->pool_offset + h->pool_sums_off,
         h->pool_count ? h->pool_size - h->pool_sums_off : 0},
        {h->index_offset, h->index_size},
    };
    uint64_t total = 0;
    for (int i = 0; i < 3; i++) {
        total += keep[i][1];
    }
    uint8_t *saved = malloc(total), *fetched = calloc(h->nmodules + 1u, 1);
    if (saved == NULL || fetched == NULL) {
        free(saved);
        free(fetched);
        return CDS_FAIL(err, CDS_ENOMEM, UINT64_MAX, "out of memory");
    }
    for (uint64_t i = 0, at = 0; i < 3; at += keep[i][1], i++) {
        memcpy(saved + at, a->data + keep[i][0], keep[i][1]);
    }
    void *p = mmap(a->data, a->map_size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (p == MAP_FAILED) {
        free(saved);
        free(fetched);
        return CDS_FAIL(err, CDS_EMAP, 0, "cannot map memory for the "
                        "archive: %s", strerror(errno));
    }
    /* the header is back before anything reads it again */
    for (uint64_t i = 0, at = 0; i < 3; at += keep[i][1], i++) {
        memcpy(a->data + keep[i][0], saved + at, keep[i][1]);
    }
    free(saved);
    a->fetched = fetched;
    a->map_bytes = map_bytes;
    return 0;
}

uint32_t
cds_segment_bytes_to_file(const cds_archive *a, uint32_t index)
{
    const struct cds_disk_module *m = &a->modules[index];
    const uint64_t page = 4096;
    uint64_t seg = m->seg_offset;
    uint64_t next = index + 1 < a->header->nmodules
                        ? a->modules[index + 1].seg_offset
                        : a->header->pool_offset;
    if (!a->map_bytes) {
        return m->copy_off;
    }
    /* the block's own pages: none that another block's bytes share (the
     * bytes before the first are kept with the rest) */
    uint32_t lo = cds_segment_bytes_start(a, index, m->copy_off);
    uint64_t first = (seg + page - 1) & ~(page - 1);
    uint64_t end = (seg + m->copy_off + page - 1) & ~(page - 1);
    if (lo >= m->copy_off || end > (next & ~(page - 1))) {
        return m->copy_off;
    }
    const uint32_t *objtab =
        (const void *)(cds_segment_mem(a, index) + m->objtab_off);
    for (uint32_t i = 0; i < m->nobjects && lo < m->copy_off; i++) {
        uint32_t off = CDS_OBJ_OFFSET(objtab[i]);
        if (off >= lo && (off >= m->copy_off || seg + off >= first)) {
            lo = off < m->copy_off ? off : m->copy_off;
            break;
        }
    }
    uint64_t start = (seg + lo) & ~(page - 1);
    if (lo >= m->copy_off ||
        mmap(a->data + start, end - start, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_FIXED, a->fd1 - 1, (off_t)start) ==
            MAP_FAILED) {
        return m->copy_off;
    }
    return lo;
}

uint32_t
cds_segment_bytes_start(const cds_archive *a, uint32_t index, uint32_t end)
{
    const struct cds_disk_module *m = &a->modules[index];
    const uint32_t *objtab =
        (const void *)(cds_segment_mem(a, index) + m->objtab_off);
    uint32_t i = m->nobjects;

    while (i > 0 && CDS_OBJ_OFFSET(objtab[i - 1]) >= end) {
        i--;
    }
    while (i > 0 && CDS_OBJ_KIND(objtab[i - 1]) == CDS_OBJ_BYTES) {
        i--;
    }
    uint32_t at = i < m->nobjects ? CDS_OBJ_OFFSET(objtab[i]) : UINT32_MAX;
    return at < end ? at : end;
}

/* Copy mode: read module index's block into memory of its own, once */
static int
fetch_segment(cds_archive *a, uint32_t index, cds_error *err)
{
    const struct cds_disk_module *m = &a->modules[index];
    uint8_t *p;

    if (a->fetched[index] && a->scratch != NULL && a->scratch_index == index) {
        return 0;
    }
    if ((p = cds_archive_arena(a, m->seg_size)) == NULL) {
        return CDS_FAIL(err, CDS_ENOMEM, m->seg_offset,
                        "module %s: no memory for its segment",
                        cds_module_name(a, index));
    }
    if (read_to(a, p, m->seg_offset, m->seg_size) < 0) {
        int e = errno;
        cds_archive_arena_keep(a, p, m->seg_size, 0);
        return CDS_FAIL(err, CDS_EMAP, m->seg_offset,
                        "module %s: segment cannot be read: %s",
                        cds_module_name(a, index),
                        e == ENODATA ? "the file shrank" : strerror(e));
    }
    a->fetched[index] = 1;
    a->scratch = p;
    a->scratch_index = index;
    return 0;
}

int
cds_segment_prefault(cds_archive *a, uint32_t index, uint64_t write_end,
                     cds_error *err)
{
    const struct cds_disk_module *m = &a->modules[index];
    uintptr_t page = 4096;
    uintptr_t start = (uintptr_t)(a->data + m->seg_offset);
    uintptr_t end = start + m->seg_size;
    uintptr_t split = start + (write_end < m->seg_size ? write_end
                                                       : m->seg_size);

    if (a->fetched != NULL) {
        return fetch_segment(a, index, err);
    }
    if (a->map_size == 0 || !a->writable) {
        return 0;
    }
    /* the page holding the boundary is written: it goes private */
    split = (split + page - 1) & ~(page - 1);
    if (split > end) {
        split = end;
    }
    if (populate(a->data + m->seg_offset, split - start) < 0 ||
        (split < end && populate_read((void *)split, end - split) < 0)) {
        return CDS_FAIL(err, CDS_EMAP, m->seg_offset,
                        "module %s: segment cannot be faulted in",
                        cds_module_name(a, index));
    }
    return 0;
}

/* the whole pages of the segment blocks: [lo, hi) of the image */
static bool
segment_pages(const cds_archive *a, uint64_t *lo, uint64_t *hi)
{
    const uint64_t page = 4096;
    uint64_t start = a->header->segments_offset;
    uint64_t end = start + a->header->segments_size;
    *lo = (start + page - 1) & ~(page - 1);
    *hi = end & ~(page - 1);
    return *hi > *lo;
}

void
cds_archive_guard_segments(cds_archive *a)
{
    uint64_t lo, hi;

    if (a->map_size == 0 || !a->writable || a->fetched != NULL ||
        a->guarded || !segment_pages(a, &lo, &hi)) {
        return;
    }
    /* what was read of the blocks before (the first root's type, by
     * cds_heap_writes_every_page) left pages mapped around it: unmapped
     * first, unwritten as they are */
    (void)madvise(a->data + lo, hi - lo, MADV_DONTNEED);
    a->guarded = mprotect(a->data + lo, hi - lo, PROT_NONE) == 0;
}

int
cds_segment_unguard(cds_archive *a, uint32_t index, cds_error *err)
{
    const struct cds_disk_module *m = &a->modules[index];
    const uint64_t page = 4096;
    uint64_t lo, hi;

    if (!a->guarded || !segment_pages(a, &lo, &hi)) {
        return 0;
    }
    /* I7: the block lies inside the segments; its pages, clamped to the
     * guarded ones (a page it shares with the pool was never closed) */
    uint64_t from = m->seg_offset & ~(page - 1);
    uint64_t to = (m->seg_offset + m->seg_size + page - 1) & ~(page - 1);
    if (from < lo) {
        from = lo;
    }
    if (to > hi) {
        to = hi;
    }
    if (to > from &&
        mprotect(a->data + from, to - from, PROT_READ | PROT_WRITE) != 0) {
        return CDS_FAIL(err, CDS_EMAP, m->seg_offset,
                        "module %s: segment cannot be mapped: %s",
                        cds_module_name(a, index), strerror(errno));
    }
    return 0;
}

#define CDS_ARENA_CHUNK (1u << 20)
/* scratch left faulted in after the last kept objects, for the next
 * segment to be read into */
#define CDS_ARENA_SLACK (64u << 10)

static uint8_t *
page_up(uint8_t *p)
{
    return (uint8_t *)(((uintptr_t)p + 4095) & ~(uintptr_t)4095);
}

/* the faulted-in pages from at on leave the resident set */
static void
arena_drop(cds_archive *a, uint8_t *at)
{
    uint8_t *from = page_up(at);
    if (a->touched > from) {
        (void)madvise(from, (size_t)(a->touched - from), MADV_DONTNEED);
        a->touched = from;
    }
}

void *
cds_archive_arena(cds_archive *a, size_t n)
{
    n = (n + 63) & ~(size_t)63;
    if (n > a->arena_left) {
        if (a->arena != NULL) {
            arena_drop(a, a->arena);
        }
        size_t chunk = n > CDS_ARENA_CHUNK ? (n + 4095) & ~(size_t)4095
                                           : CDS_ARENA_CHUNK;
        void *p = mmap(NULL, chunk, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            return NULL;
        }
        a->arena = a->touched = p;
        a->arena_left = chunk;
    }
    uint8_t *r = a->arena;
    a->arena += n;
    a->arena_left -= n;
    /* read into whole: its pages in one system call rather than a fault
     * each (what is left of the chunk is never touched: not resident) */
    if (a->arena > a->touched) {
        uint8_t *from = a->touched > r ? a->touched : r;
        (void)populate(from, (uint64_t)(a->arena - from));
        a->touched = page_up(a->arena);
    }
    return r;
}

void
cds_archive_arena_keep(cds_archive *a, uint8_t *p, size_t n, size_t keep)
{
    n = (n + 63) & ~(size_t)63;
    keep = (keep + 63) & ~(size_t)63;
    if (a->scratch == p) {
        a->scratch = NULL;
    }
    if (keep >= n) {
        return;
    }
    if (a->arena == p + n) {
        /* the last reservation: what it does not keep is the next one's,
         * and only so much of it stays resident for that */
        a->arena = p + keep;
        a->arena_left += n - keep;
        if (a->touched > a->arena + CDS_ARENA_SLACK) {
            arena_drop(a, a->arena + CDS_ARENA_SLACK);
        }
        return;
    }
    /* another segment was read in meanwhile (loading this one ran a
     * finalizer that imported): the rest is lost, its pages dropped */
    uint8_t *from = page_up(p + keep), *to = (uint8_t *)((uintptr_t)(p + n) &
                                                         ~(uintptr_t)4095);
    if (to > from) {
        (void)madvise(from, (size_t)(to - from), MADV_DONTNEED);
    }
}

void
cds_segment_release_from(const cds_archive *a, uint32_t index, uint32_t clean,
                         uint32_t dead)
{
    const struct cds_disk_module *m = &a->modules[index];
    const uint64_t page = 4096;
    uint64_t seg = m->seg_offset;

    if (a->map_size == 0 || dead > m->seg_size || clean > dead) {
        return;
    }
    /* the block's last page too when nothing after it on that page is
     * read: the next block (or the pool) starts on a later page */
    uint64_t next = index + 1 < a->header->nmodules
                        ? a->modules[index + 1].seg_offset
                        : a->header->pool_offset;
    uint64_t end = (seg + m->seg_size + page - 1) & ~(page - 1);
    if (end > next) {
        end = (seg + m->seg_size) & ~(page - 1); /* before the next block */
    }
    uint64_t lo = (seg + clean + page - 1) & ~(page - 1);
    uint64_t hi = (seg + dead + page - 1) & ~(page - 1);
    if (hi > end) {
        hi = end;
    }
    if (a->fetched != NULL) {
        return; /* copy mode: cds_archive_arena_keep */
    }
    if (end > lo) {
        /* never written or never read again: these pages (the file's,
         * or private copies equal to it, or dead) can go */
        (void)madvise(a->data + lo, end - lo, MADV_DONTNEED);
    }
    if (end > hi) {
        /* and the dead pages stay gone: a mapping of their own (a flag
         * their neighbours lack), so that the kernel's fault-around, which
         * maps the page cache's pages near a faulting one within its
         * mapping, does not map them back when a clean page before them
         * is read again (an exception table, when an exception passes
         * through a function) or the next block is faulted in */
        (void)madvise(a->data + hi, end - hi, MADV_RANDOM);
    }
}

const char *
cds_module_name(const cds_archive *a, uint32_t index)
{
    return a->strings + a->modules[index].name_off;
}

const char *
cds_module_origin(const cds_archive *a, uint32_t index)
{
    return a->strings + a->modules[index].origin_off;
}

const char *
cds_module_search(const cds_archive *a, uint32_t index)
{
    return a->strings + a->modules[index].search_off;
}

static bool
check_slot(uint32_t slot, uint32_t objects_size)
{
    return slot % 8 == 0 && check_range(slot, 8, objects_size);
}

static bool
check_ext_index(uint32_t index)
{
    return index < CDS_EXT_NFIXED ||
           (index >= CDS_EXT_SMALL_INT &&
            index <= CDS_EXT_SMALL_INT + CDS_EXT_INT_MAX - CDS_EXT_INT_MIN) ||
           (index >= CDS_EXT_LATIN1 && index < CDS_EXT_COUNT);
}


unsigned
cds_ext_class(uint32_t index)
{
    if (index == CDS_EXT_EMPTY_TUPLE) {
        return CDS_SC_EXT_TUPLE;
    }
    if (index == CDS_EXT_EMPTY_BYTES) {
        return CDS_SC_EXT_NOBYTES;
    }
    if (index >= CDS_EXT_BYTE && index < CDS_EXT_COUNT) {
        return CDS_SC_EXT_BYTE + ((index - CDS_EXT_BYTE) >> 5);
    }
    if (index == CDS_EXT_EMPTY_STR ||
        (index >= CDS_EXT_LATIN1 && index < CDS_EXT_BYTE)) {
        return CDS_SC_EXT_STR;
    }
    return CDS_SC_EXT_OTHER;
}
static_assert(CDS_SC_EXT_BYTE + 7 <= 15, "slot classes fit 4 bits");

/* Mark slot as listed with class cls; false when it is out of bounds,
 * misaligned or already listed (S3: every slot in exactly one list, so
 * nothing is patched twice).  A slot on an object's first unit (its
 * reference count) is the heap layer's to refuse: it knows the fields. */
static bool
claim_slot(uint16_t *map, uint32_t slot, uint32_t objects_size, unsigned cls)
{
    if (!check_slot(slot, objects_size) ||
        (map[slot / 8] & CDS_MAP_LISTED) != 0) {
        return false;
    }
    map[slot / 8] |= (uint16_t)(cls << 4);
    return true;
}

void
cds_slot_map_free(cds_slot_map *map)
{
    if (map != NULL) {
        free(map->units);
        map->units = NULL;
        map->objects_size = 0;
    }
}

int
cds_segment_validate(const cds_archive *a, uint32_t index, cds_error *err)
{
    return cds_segment_validate_map(a, index, NULL, err);
}

int
cds_segment_validate_map(const cds_archive *a, uint32_t index,
                         cds_slot_map *out, cds_error *err)
{
    const struct cds_disk_module *m = &a->modules[index];
    const uint8_t *seg = cds_segment_mem(a, index); /* inv. 1: I7 */
    uint64_t base = a->header->base_address + m->seg_offset;
    uint64_t at_list;
    const char *name = cds_module_name(a, index);
    uint16_t *map = NULL;
    int rc = 0;

    if (out != NULL) {
        out->units = NULL;
        out->objects_size = 0;
    }
    /* S1: the bytes are the ones written */
    if (cds_hash(seg, m->seg_size) != m->seg_checksum) {
        return CDS_FAIL(err, CDS_ECHECKSUM, m->seg_offset,
                        "module %s: segment checksum mismatch", name);
    }
    map = calloc(m->objects_size / CDS_OBJECT_ALIGN + 1, sizeof(*map));
    if (map == NULL) {
        return CDS_FAIL(err, CDS_ENOMEM, UINT64_MAX, "out of memory");
    }
    /* S2: the object table: sorted, inside the region, known kinds, room
     * for each object's head (and a tuple's GC head before it); the root
     * is a code object */
    const uint32_t *objtab = (const void *)(seg + m->objtab_off);
    uint64_t prev_end = 0;
    at_list = m->seg_offset + m->objtab_off;
    for (uint32_t i = 0; i < m->nobjects; i++) {
        uint32_t off = CDS_OBJ_OFFSET(objtab[i]);
        unsigned kind = CDS_OBJ_KIND(objtab[i]);
        bool gc = CDS_OBJ_GC_HEADED(kind);
        uint64_t start = gc ? (uint64_t)off - CDS_GC_HEAD_SIZE : off;
        if (kind >= CDS_OBJ_NKINDS || off < prev_end ||
            (gc && off < CDS_GC_HEAD_SIZE) ||
            start < prev_end || !check_range(off, 24, m->objects_size)) {
            rc = CDS_CORRUPT(err, at_list + 4ull * i,
                             "module %s: object %u: offset 0x%x kind %u",
                             name, i, off, kind);
            goto out;
        }
        prev_end = (uint64_t)off + 24; /* at least a PyVarObject head */
        map[off / CDS_OBJECT_ALIGN] = (uint16_t)(kind + 1);
    }
    if (m->root_off % CDS_OBJECT_ALIGN != 0 ||
        CDS_MAP_KIND(map[m->root_off / CDS_OBJECT_ALIGN]) !=
            CDS_OBJ_CODE + 1) {
        rc = CDS_CORRUPT(err, m->seg_offset + m->root_off,
                         "module %s: root 0x%x is not a code object", name,
                         m->root_off);
        goto out;
    }
    /* S3: every relocated slot is listed once and holds a pointer to the
     * start of an object of this segment, at the writer's base (format.md
     * 5.2); none from before the load-only region into it, which is
     * dropped after loading (format.md 5) */
    const uint32_t *reloc = (const void *)(seg + m->reloc_off);
    at_list = m->seg_offset + m->reloc_off;
    for (uint32_t i = 0; i < m->nreloc; i++) {
        uint64_t v;
        if (!claim_slot(map, reloc[i], m->objects_size, CDS_SC_RELOC)) {
            rc = CDS_CORRUPT(err, at_list + 4ull * i,
                             "module %s: relocation %u: bad or repeated "
                             "slot 0x%x",
                             name, i, reloc[i]);
            goto out;
        }
        memcpy(&v, seg + reloc[i], 8);
        if (v < base || v - base >= m->objects_size ||
            (v - base) % CDS_OBJECT_ALIGN != 0 ||
            CDS_MAP_KIND(map[(v - base) / CDS_OBJECT_ALIGN]) == 0) {
            rc = CDS_CORRUPT(err, m->seg_offset + reloc[i],
                             "module %s: pointer 0x%llx is not an object of "
                             "the segment",
                             name, (unsigned long long)v);
            goto out;
        }
        if (reloc[i] < m->copy_off && v - base >= m->copy_off) {
            rc = CDS_CORRUPT(err, m->seg_offset + reloc[i],
                             "module %s: pointer 0x%llx from 0x%x into the "
                             "load-only region from 0x%x",
                             name, (unsigned long long)v, reloc[i],
                             m->copy_off);
            goto out;
        }
    }
    /* S4: external slots and their indices */
    const struct cds_disk_ext *ext = (const void *)(seg + m->ext_off);
    at_list = m->seg_offset + m->ext_off;
    for (uint32_t i = 0; i < m->next; i++) {
        if (!check_ext_index(ext[i].index) ||
            !claim_slot(map, ext[i].slot, m->objects_size,
                        cds_ext_class(ext[i].index))) {
            rc = CDS_CORRUPT(err, at_list + 8ull * i,
                             "module %s: external %u: slot 0x%x index %u",
                             name, i, ext[i].slot, ext[i].index);
            goto out;
        }
    }
    /* S6: pool references: a slot's value is only the writer's guess of
     * the interned string's address, never followed (format.md 5.5) */
    const struct cds_disk_shared *sh = (const void *)(seg + m->shared_off);
    at_list = m->seg_offset + m->shared_off;
    for (uint32_t i = 0; i < m->nshared; i++) {
        if (sh[i].index >= a->header->pool_count ||
            !claim_slot(map, sh[i].slot, m->objects_size, CDS_SC_SHARED)) {
            rc = CDS_CORRUPT(err, at_list + 8ull * i,
                             "module %s: pool reference %u: slot 0x%x "
                             "index %u",
                             name, i, sh[i].slot, sh[i].index);
            goto out;
        }
    }
    /* S7: a frozenset slot is a relocated pointer to a tuple of the
     * segment, or the external empty tuple (format.md 5.4): loading
     * follows it */
    const uint32_t *frozen = (const void *)(seg + m->frozen_off);
    at_list = m->seg_offset + m->frozen_off;
    for (uint32_t i = 0; i < m->nfrozen; i++) {
        uint32_t slot = frozen[i];
        bool ok = false;
        /* not listed as a frozenset slot already */
        if (check_slot(slot, m->objects_size) &&
            !(map[slot / 8] & CDS_MAP_FROZEN)) {
            unsigned cls = CDS_MAP_CLASS(map[slot / 8]);
            uint64_t v;
            memcpy(&v, seg + slot, 8);
            map[slot / 8] |= CDS_MAP_FROZEN;
            if (cls == CDS_SC_RELOC) {
                /* S3 checked v is an object start of the segment; the
                 * tuple is a frozenset's items (deep validation accepts
                 * an empty one) */
                uint16_t *unit = &map[(v - base) / CDS_OBJECT_ALIGN];
                ok = CDS_MAP_KIND(*unit) == CDS_OBJ_TUPLE + 1;
                *unit |= CDS_MAP_FROZEN;
            }
            else {
                ok = cls == CDS_SC_EXT_TUPLE;
            }
        }
        if (!ok) {
            rc = CDS_CORRUPT(err, at_list + 4ull * i,
                             "module %s: frozenset %u: slot 0x%x is not a "
                             "tuple pointer",
                             name, i, slot);
            goto out;
        }
    }
out:
    if (rc == 0 && out != NULL) {
        out->units = map;
        out->objects_size = m->objects_size;
    }
    else {
        free(map);
    }
    return rc;
}
