/* SPDX-License-Identifier: MIT */
/* libFuzzer target for the format layer's reader (docs/fuzzing.md).
 *
 * One input is a mode byte followed by an archive image.  The image is
 * copied into an exactly sized, 64-byte aligned buffer (the reader
 * assumes the alignment mmap gives; AddressSanitizer then catches any read
 * past its end), optionally re-sealed, and run through every function of
 * cds/archive.c that reads untrusted bytes: cds_archive_load(), then, when
 * it accepts the image, cds_archive_find() and cds_segment_validate() on
 * every module and cds_pool_find() on every pool index and a few beyond
 * (the rest of archive.c maps files and advises the kernel about pages).
 * Re-sealing recomputes every checksum, as libgit2's commit-graph fuzzer
 * does, so that mutations reach the structural checks behind them;
 * without it the checksum checks themselves are what gets fuzzed.
 *
 * Not crashing is not enough: after every call an oracle, written
 * independently from docs/format.md 6, checks what that call promises
 * (an accepted segment has every listed slot inside its object region,
 * once, aimed at an object start, ...) and aborts when a promise is
 * broken, so a validator that lets a bad segment through to the heap
 * layer is found as a crash too.  Failures must fill the error record
 * consistently (status, line, one-line message).
 *
 * Mode byte (input byte 0):
 *   bit 0  re-seal: every segment's seg_checksum, the pool's block sums
 *          and pool_sums_checksum, index_checksum, then header_checksum,
 *          each only where the offsets it needs lie inside the image.
 *          PYCDS_FUZZ_RESEAL=0 or 1 in the environment overrides the bit.
 *   bit 1  when re-sealing, first set file_size to the image's size, so
 *          that insertions and deletions get past H5
 *   bit 2  expect the image's own fingerprint (H7), changed in the field
 *          that bits 3-7 choose (FP_FLIPS): H7 must then fail, except
 *          for the PIE build flag, which is not compared
 * Bits 3-7 otherwise, and values of them past FP_FLIPS, change nothing.  A raw archive file is therefore an input
 * once a mode byte is put in front of it (make_seeds.sh does).
 * PYCDS_FUZZ_VERBOSE=1 prints what the reader said of each input: for
 * reproducing a crash, or checking that seeds get past the checks. */
#include "archive.h"
#include "checksum.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MODE_RESEAL 0x1u
#define MODE_FIX_SIZE 0x2u
#define MODE_EXPECT 0x4u

/* One change to a fingerprint per compared field (format.md 2.1), and
 * an undefined build flag (compared too): byte offset, bits to flip.  String
 * fields are changed in their first byte, which strncmp always sees. */
static const struct {
    uint16_t off;
    uint8_t xor;
} FP_FLIPS[] = {
    {offsetof(struct cds_disk_fingerprint, py_version_hex), 1},
    {offsetof(struct cds_disk_fingerprint, pyc_magic), 1},
    {offsetof(struct cds_disk_fingerprint, pointer_size), 1},
    {offsetof(struct cds_disk_fingerprint, byte_order), 1},
    {offsetof(struct cds_disk_fingerprint, long_shift), 1},
    {offsetof(struct cds_disk_fingerprint, wchar_size), 1},
    {offsetof(struct cds_disk_fingerprint, build_flags), CDS_BUILD_DEBUG},
    {offsetof(struct cds_disk_fingerprint, layout_hash), 1},
    {offsetof(struct cds_disk_fingerprint, runtime_hash), 1},
    {offsetof(struct cds_disk_fingerprint, cache_tag), 1},
    {offsetof(struct cds_disk_fingerprint, soabi), 1},
    {offsetof(struct cds_disk_fingerprint, build_info), 1},
    {offsetof(struct cds_disk_fingerprint, compiler), 1},
    {offsetof(struct cds_disk_fingerprint, build_flags), 0x10}, /* undefined */
};
#define FP_NFLIPS (sizeof(FP_FLIPS) / sizeof(FP_FLIPS[0]))

static void
flip(struct cds_disk_fingerprint *fp, size_t k)
{
    ((uint8_t *)fp)[FP_FLIPS[k].off] ^= FP_FLIPS[k].xor;
}

#define HDR(field) offsetof(struct cds_disk_header, field)
#define MOD(field) offsetof(struct cds_disk_module, field)

/* An oracle failure: a reader function broke its promise. */
#define REQUIRE(cond)                                                       \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "fuzz_archive: oracle failed at %s:%d: %s\n",   \
                    __FILE__, __LINE__, #cond);                             \
            abort();                                                        \
        }                                                                   \
    } while (0)

static uint32_t
get32(const uint8_t *img, uint64_t off)
{
    uint32_t v;
    memcpy(&v, img + off, sizeof(v));
    return v;
}

static uint64_t
get64(const uint8_t *img, uint64_t off)
{
    uint64_t v;
    memcpy(&v, img + off, sizeof(v));
    return v;
}

static void
put64(uint8_t *img, uint64_t off, uint64_t v)
{
    memcpy(img + off, &v, sizeof(v));
}

/* [off, off + len) inside [0, size), overflow-safe. */
static bool
inside(uint64_t off, uint64_t len, uint64_t size)
{
    return off <= size && len <= size - off;
}

/* Re-seal the image's checksums in dependency order: segment sums live in
 * the index, pool sums and the index sum in the header.  Best effort on
 * garbage: a checksum whose range is not inside the image is left alone. */
static void
reseal(uint8_t *img, size_t size, bool fix_size)
{
    if (size < CDS_HEADER_SIZE) {
        return;
    }
    if (fix_size) {
        put64(img, HDR(file_size), size);
    }
    /* segments, only those in entry order and disjoint as I7 wants: that
     * bounds the bytes hashed by the image size */
    uint64_t entries = get64(img, HDR(entries_offset));
    uint32_t nmodules = get32(img, HDR(nmodules));
    uint64_t prev_end = 0;
    for (uint32_t i = 0; i < nmodules; i++) {
        uint64_t at = entries + (uint64_t)i * sizeof(struct cds_disk_module);
        if (!inside(entries,
                    ((uint64_t)i + 1) * sizeof(struct cds_disk_module),
                    size)) {
            break;
        }
        uint64_t off = get64(img, at + MOD(seg_offset));
        uint64_t len = get64(img, at + MOD(seg_size));
        if (off < prev_end || !inside(off, len, size)) {
            continue;
        }
        put64(img, at + MOD(seg_checksum), cds_hash(img + off, len));
        prev_end = off + len;
    }
    /* the pool (format.md 4.1) */
    uint32_t count = get32(img, HDR(pool_count));
    if (count != 0) {
        uint64_t pool = get64(img, HDR(pool_offset));
        uint64_t covered =
            (uint64_t)get32(img, HDR(pool_objects_size)) + 4ull * count +
            4ull * get32(img, HDR(pool_early_count));
        uint64_t nblocks = (covered + CDS_POOL_BLOCK - 1) / CDS_POOL_BLOCK;
        uint64_t sums = get32(img, HDR(pool_sums_off));
        if (inside(pool, covered, size) && inside(pool, sums, size) &&
            inside(pool + sums, 8 * nblocks, size)) {
            for (uint64_t b = 0; b < nblocks; b++) {
                uint64_t start = b * CDS_POOL_BLOCK;
                uint64_t len = covered - start < CDS_POOL_BLOCK
                                   ? covered - start
                                   : CDS_POOL_BLOCK;
                put64(img, pool + sums + 8 * b,
                      cds_hash(img + pool + start, len));
            }
            put64(img, HDR(pool_sums_checksum),
                  cds_hash(img + pool + sums, 8 * nblocks));
        }
    }
    uint64_t index = get64(img, HDR(index_offset));
    uint64_t index_size = get64(img, HDR(index_size));
    if (inside(index, index_size, size)) {
        put64(img, HDR(index_checksum), cds_hash(img + index, index_size));
    }
    put64(img, HDR(header_checksum), 0);
    put64(img, HDR(header_checksum), cds_hash(img, CDS_HEADER_SIZE));
}

static bool
verbose(void)
{
    static int env = -1;
    if (env == -1) {
        const char *s = getenv("PYCDS_FUZZ_VERBOSE");
        env = s != NULL && s[0] != '\0' && s[0] != '0';
    }
    return env == 1;
}

static void
report(const char *what, long i, int rc, const cds_error *err)
{
    if (verbose()) {
        fprintf(stderr, "fuzz_archive: %s %ld: %s%s%s\n", what, i,
                cds_status_name(rc), rc < 0 ? ": " : "",
                rc < 0 ? err->message : "");
    }
}

static bool
want_reseal(unsigned mode)
{
    static int env = -2; /* -2 unread, -1 unset */
    if (env == -2) {
        const char *s = getenv("PYCDS_FUZZ_RESEAL");
        env = s == NULL || s[0] == '\0' ? -1 : s[0] == '1';
    }
    return env >= 0 ? env == 1 : (mode & MODE_RESEAL) != 0;
}

/* A failure filled the error record as cds.h promises. */
static void
check_error(const cds_error *err, int rc)
{
    REQUIRE(rc < 0);
    REQUIRE(err->status == rc);
    REQUIRE(err->line > 0);
    REQUIRE(err->message[0] != '\0');
    REQUIRE(memchr(err->message, '\0', sizeof(err->message)) != NULL);
    REQUIRE(strchr(err->message, '\n') == NULL);
    REQUIRE(strcmp(cds_status_name(rc), "unknown error") != 0);
}

static bool
check_name(const cds_archive *a, uint32_t off, uint32_t len)
{
    const struct cds_disk_header *h = a->header;
    return inside(off, (uint64_t)len + 1, h->strings_size) &&
           a->strings[(uint64_t)off + len] == '\0' &&
           strlen(a->strings + off) == len;
}

/* What a successful cds_archive_load promises (format.md 6.2: "every
 * header field, entry, segment table and the pool's bounds lie inside the
 * file"), checked independently. */
static void
oracle_archive(const cds_archive *a, size_t size)
{
    const struct cds_disk_header *h = a->header;

    REQUIRE(h != NULL && (const void *)h == (const void *)a->data);
    REQUIRE(a->size == size && h->file_size == size);
    REQUIRE(memcmp(h->magic, CDS_MAGIC, CDS_MAGIC_SIZE) == 0);
    REQUIRE(h->format_version == CDS_FORMAT_VERSION);
    REQUIRE(h->header_size == CDS_HEADER_SIZE);
    REQUIRE(h->flags == 0 && h->optimize <= 255 &&
            h->pool_early_count <= h->pool_count);
    for (size_t i = 0; i < sizeof(h->reserved); i++) {
        REQUIRE(h->reserved[i] == 0);
    }
    REQUIRE(h->code_version_count != 0
                ? h->code_version_base >= 2 &&
                      h->code_version_base <=
                          UINT32_MAX - h->code_version_count
                : h->code_version_base == 0);
    REQUIRE(h->base_address % 4096 == 0);
    REQUIRE(h->pool_block_size == CDS_POOL_BLOCK);
    REQUIRE(h->segments_offset >= CDS_HEADER_SIZE &&
            h->segments_offset % CDS_SEGMENT_ALIGN == 0 &&
            inside(h->segments_offset, h->segments_size, size));
    REQUIRE(h->index_offset >= h->segments_offset + h->segments_size);
    REQUIRE(h->pool_offset >= h->segments_offset + h->segments_size &&
            h->pool_offset % CDS_SEGMENT_ALIGN == 0 &&
            inside(h->pool_offset, h->pool_size, h->index_offset));
    REQUIRE(inside(h->index_offset, h->index_size, size));
    REQUIRE(inside(h->slots_offset, 4ull * h->nslots, size));
    REQUIRE(h->entries_offset % 8 == 0);
    REQUIRE(inside(h->entries_offset,
                   (uint64_t)h->nmodules * sizeof(struct cds_disk_module),
                   size));
    REQUIRE(inside(h->strings_offset, h->strings_size, size));
    REQUIRE(h->nslots != 0 && (h->nslots & (h->nslots - 1)) == 0);
    REQUIRE(inside(h->pool_offset, h->pool_size, size));
    if (h->pool_count != 0) {
        uint64_t covered =
            (uint64_t)h->pool_objects_size + 4ull * h->pool_count;
        uint64_t nblocks = (covered + CDS_POOL_BLOCK - 1) / CDS_POOL_BLOCK;
        REQUIRE(cds_pool_nblocks(a) == nblocks);
        REQUIRE(covered <= h->pool_size);
        REQUIRE(h->pool_table_off == h->pool_objects_size);
        REQUIRE((uint64_t)h->pool_sums_off >= covered);
        REQUIRE(inside(h->pool_sums_off, 8 * nblocks, h->pool_size));
    }
    for (uint32_t i = 0; i < h->nslots; i++) {
        REQUIRE(a->slots[i] <= h->nmodules);
    }
    uint64_t prev_end = 0;
    for (uint32_t i = 0; i < h->nmodules; i++) {
        const struct cds_disk_module *m = &a->modules[i];
        REQUIRE(check_name(a, m->name_off, m->name_len));
        REQUIRE(m->name_len >= 1 && m->name_len <= CDS_MAX_NAME);
        REQUIRE(check_name(a, m->origin_off, m->origin_len));
        REQUIRE(check_name(a, m->search_off, m->search_len));
        REQUIRE(cds_module_name(a, i) == a->strings + m->name_off);
        REQUIRE(cds_module_origin(a, i) == a->strings + m->origin_off);
        REQUIRE(cds_module_search(a, i) == a->strings + m->search_off);
        REQUIRE(m->seg_offset % CDS_SEGMENT_ALIGN == 0);
        REQUIRE(m->seg_offset >= prev_end);
        REQUIRE(inside(m->seg_offset, m->seg_size, size));
        REQUIRE(m->seg_size <= UINT32_MAX);
        prev_end = m->seg_offset + m->seg_size;
        /* the tables the heap layer walks without further checks */
        const struct {
            uint32_t off, n, elem;
        } t[] = {
            {m->objtab_off, m->nobjects, 4},
            {m->reloc_off, m->nreloc, 4},
            {m->ext_off, m->next, sizeof(struct cds_disk_ext)},
            {m->frozen_off, m->nfrozen, 4},
            {m->shared_off, m->nshared, sizeof(struct cds_disk_shared)},
        };
        REQUIRE(m->objects_size % 8 == 0 && m->objects_size <= m->seg_size);
        REQUIRE(m->root_off % 8 == 0 && m->root_off < m->objects_size);
        REQUIRE(m->write_size % 8 == 0 && m->write_size <= m->objects_size);
        REQUIRE(m->nobjects != 0);
        REQUIRE(m->nintern == 0 && m->nrefs == 0); /* format.md 5.4 */
        for (size_t k = 0; k < sizeof(t) / sizeof(t[0]); k++) {
            REQUIRE(t[k].off % 4 == 0 && t[k].off >= m->objects_size);
            REQUIRE(inside(t[k].off, (uint64_t)t[k].n * t[k].elem,
                           m->seg_size));
        }
    }
}

static int
compare_u32(const void *x, const void *y)
{
    uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
    return a < b ? -1 : a > b;
}

static int
compare_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}

/* The kind of the object at segment offset off, or -1 when no object of
 * the table starts there (the table is sorted: checked before use). */
static int
object_kind(const uint32_t *objtab, uint32_t n, uint64_t off)
{
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        uint32_t o = CDS_OBJ_OFFSET(objtab[mid]);
        if (o == off) {
            return (int)CDS_OBJ_KIND(objtab[mid]);
        }
        if (o < off) {
            lo = mid + 1;
        }
        else {
            hi = mid;
        }
    }
    return -1;
}

static bool
valid_slot(const struct cds_disk_module *m, uint32_t slot)
{
    return slot % 8 == 0 && inside(slot, 8, m->objects_size);
}

static bool
valid_ext_index(uint32_t index)
{
    return index < CDS_EXT_NFIXED ||
           (index >= CDS_EXT_SMALL_INT &&
            index <= CDS_EXT_SMALL_INT + (CDS_EXT_INT_MAX -
                                          CDS_EXT_INT_MIN)) ||
           (index >= CDS_EXT_LATIN1 && index < CDS_EXT_COUNT);
}

/* What a successful cds_segment_validate promises (format.md 5.2-5.5,
 * 6.3): everything cds_heap_load writes through is inside the object
 * region, listed once, and aimed where the format says. */
static void
oracle_segment(const cds_archive *a, uint32_t index)
{
    const struct cds_disk_module *m = &a->modules[index];
    const uint8_t *seg = a->data + m->seg_offset;
    uint64_t base = a->header->base_address + m->seg_offset;
    const uint32_t *objtab = (const void *)(seg + m->objtab_off);
    const uint32_t *reloc = (const void *)(seg + m->reloc_off);
    const struct cds_disk_ext *ext = (const void *)(seg + m->ext_off);
    const uint32_t *frozen = (const void *)(seg + m->frozen_off);
    const struct cds_disk_shared *sh = (const void *)(seg + m->shared_off);

    REQUIRE(cds_hash(seg, m->seg_size) == m->seg_checksum);
    /* objects: sorted, known kinds, heads inside, GC heads before tuples */
    uint64_t prev_end = 0;
    for (uint32_t i = 0; i < m->nobjects; i++) {
        uint32_t off = CDS_OBJ_OFFSET(objtab[i]);
        uint32_t kind = CDS_OBJ_KIND(objtab[i]);
        REQUIRE(kind < CDS_OBJ_NKINDS);
        if (kind == CDS_OBJ_TUPLE) {
            REQUIRE(off >= CDS_GC_HEAD_SIZE);
            REQUIRE(off - CDS_GC_HEAD_SIZE >= prev_end);
        }
        REQUIRE(off >= prev_end);
        REQUIRE(inside(off, 24, m->objects_size));
        prev_end = (uint64_t)off + 24;
    }
    REQUIRE(object_kind(objtab, m->nobjects, m->root_off) == CDS_OBJ_CODE);

    /* every slot written at load: reloc, ext, shared */
    uint64_t nslots = (uint64_t)m->nreloc + m->next + m->nshared;
    uint32_t *slots = malloc((nslots ? nslots : 1) * sizeof(*slots));
    uint64_t k = 0;
    REQUIRE(slots != NULL);
    for (uint32_t i = 0; i < m->nreloc; i++) {
        uint64_t v;
        REQUIRE(valid_slot(m, reloc[i]));
        memcpy(&v, seg + reloc[i], 8);
        REQUIRE(v >= base && v - base < m->objects_size);
        REQUIRE(object_kind(objtab, m->nobjects, v - base) >= 0);
        slots[k++] = reloc[i];
    }
    for (uint32_t i = 0; i < m->next; i++) {
        REQUIRE(valid_ext_index(ext[i].index));
        REQUIRE(valid_slot(m, ext[i].slot));
        slots[k++] = ext[i].slot;
    }
    for (uint32_t i = 0; i < m->nshared; i++) {
        /* the slot's value is a hint, never followed (format.md 5.5) */
        REQUIRE(sh[i].index < a->header->pool_count);
        REQUIRE(valid_slot(m, sh[i].slot));
        slots[k++] = sh[i].slot;
    }
    REQUIRE(k == nslots);
    qsort(slots, nslots, sizeof(*slots), compare_u32);
    for (uint64_t i = 1; i < nslots; i++) {
        REQUIRE(slots[i - 1] != slots[i]); /* 5.2: exactly one list */
    }
    /* frozenset slots: a reloc slot aimed at a tuple, or ext (); keys
     * (slot << 32 | list << 16 | ext index), sorted, slots unique */
    uint64_t nkeys = (uint64_t)m->nreloc + m->next;
    uint64_t *keys = malloc((nkeys ? nkeys : 1) * sizeof(*keys));
    REQUIRE(keys != NULL);
    for (uint32_t i = 0; i < m->nreloc; i++) {
        keys[i] = (uint64_t)reloc[i] << 32;
    }
    for (uint32_t i = 0; i < m->next; i++) {
        keys[m->nreloc + i] =
            (uint64_t)ext[i].slot << 32 | 1u << 16 | (ext[i].index & 0xffff);
    }
    qsort(keys, nkeys, sizeof(*keys), compare_u64);
    for (uint32_t i = 0; i < m->nfrozen; i++) {
        uint32_t slot = frozen[i];
        uint64_t lo = 0, hi = nkeys, v;
        REQUIRE(valid_slot(m, slot));
        while (lo < hi) {
            uint64_t mid = lo + (hi - lo) / 2;
            if (keys[mid] >> 32 < slot) {
                lo = mid + 1;
            }
            else {
                hi = mid;
            }
        }
        REQUIRE(lo < nkeys && keys[lo] >> 32 == slot);
        if ((keys[lo] >> 16 & 1) == 0) {
            memcpy(&v, seg + slot, 8);
            REQUIRE(object_kind(objtab, m->nobjects, v - base) ==
                    CDS_OBJ_TUPLE);
        }
        else {
            REQUIRE((keys[lo] & 0xffff) == CDS_EXT_EMPTY_TUPLE);
        }
    }
    free(keys);
    /* ... each listed once in frozen (S7) */
    uint32_t *fz = malloc((m->nfrozen ? m->nfrozen : 1) * sizeof(*fz));
    REQUIRE(fz != NULL);
    memcpy(fz, frozen, (size_t)m->nfrozen * sizeof(*fz));
    qsort(fz, m->nfrozen, sizeof(*fz), compare_u32);
    for (uint32_t i = 1; i < m->nfrozen; i++) {
        REQUIRE(fz[i - 1] != fz[i]);
    }
    free(fz);
    free(slots);
}

/* What a successful cds_pool_find promises (format.md 4.1, 6.4): the
 * extent lies in the pool's object region, and every 16 KiB block that
 * the table entries and the string occupy matches its checksum.  seen:
 * the blocks this oracle has verified already. */
static void
oracle_pool(const cds_archive *a, uint32_t index, uint32_t off,
            uint32_t extent, uint8_t *seen)
{
    const struct cds_disk_header *h = a->header;
    const uint8_t *pool = a->data + h->pool_offset;
    uint64_t covered = (uint64_t)h->pool_objects_size + 4ull * h->pool_count;
    uint64_t t = (uint64_t)h->pool_table_off + 4ull * index;
    uint64_t ranges[3][2] = {
        {t, t + 4},
        {t + 4, index + 1 < h->pool_count ? t + 8 : t + 4},
        {off, (uint64_t)off + extent},
    };

    REQUIRE(index < h->pool_count);
    REQUIRE(off % CDS_OBJECT_ALIGN == 0 && extent != 0);
    REQUIRE(inside(off, extent, h->pool_objects_size));
    REQUIRE(get32(pool, t) == off);
    for (size_t r = 0; r < 3; r++) {
        if (ranges[r][0] == ranges[r][1]) {
            continue;
        }
        for (uint64_t b = ranges[r][0] / CDS_POOL_BLOCK;
             b <= (ranges[r][1] - 1) / CDS_POOL_BLOCK; b++) {
            uint64_t start = b * CDS_POOL_BLOCK;
            uint64_t len = covered - start < CDS_POOL_BLOCK ? covered - start
                                                             : CDS_POOL_BLOCK;
            if (!seen[b]) {
                REQUIRE(cds_hash(pool + start, len) ==
                        get64(pool, h->pool_sums_off + 8 * b));
                seen[b] = 1;
            }
        }
    }
}

static void
try_find(const cds_archive *a, const char *name, size_t len)
{
    uint32_t i = UINT32_MAX;
    int rc = cds_archive_find(a, name, len, &i);
    if (rc == 0) {
        const struct cds_disk_module *m = &a->modules[i];
        REQUIRE(i < a->header->nmodules);
        REQUIRE(m->name_len == len);
        REQUIRE(memcmp(cds_module_name(a, i), name, len) == 0);
    }
    else {
        REQUIRE(rc == CDS_ENOTFOUND);
    }
}

static void
exercise(const cds_archive *a)
{
    const struct cds_disk_header *h = a->header;
    static char longname[CDS_MAX_NAME + 2];
    cds_error err;
    int rc;

    /* lookups: every module's own name (a bad slot table may miss it or
     * return another entry of that name: format.md 3.1), variations, and
     * names that can never be found */
    memset(longname, 'a', sizeof(longname));
    try_find(a, longname, CDS_MAX_NAME);
    try_find(a, longname, CDS_MAX_NAME + 1);
    try_find(a, "", 0);
    try_find(a, "json", 4);
    try_find(a, "tinymod", 7);
    try_find(a, "a\0b", 3);
    for (uint32_t i = 0; i < h->nmodules; i++) {
        const char *name = cds_module_name(a, i);
        uint32_t len = a->modules[i].name_len;
        char buf[CDS_MAX_NAME + 2];
        try_find(a, name, len);
        try_find(a, name, len - 1);
        memcpy(buf, name, len);
        buf[len] = 'x';
        try_find(a, buf, len + 1);
    }
    /* segments, each validated the way the import hook does, once */
    for (uint32_t i = 0; i < h->nmodules; i++) {
        memset(&err, 0, sizeof(err));
        rc = cds_segment_validate(a, i, &err);
        report("segment", i, rc, &err);
        if (rc == 0) {
            oracle_segment(a, i);
        }
        else {
            check_error(&err, rc);
            REQUIRE(rc == CDS_ECHECKSUM || rc == CDS_ECORRUPT ||
                    rc == CDS_ENOMEM);
        }
    }
    /* the pool: every index, then some out of range */
    uint64_t nblocks = cds_pool_nblocks(a);
    uint8_t *block_ok = calloc(nblocks ? nblocks : 1, 1);
    uint8_t *seen = calloc(nblocks ? nblocks : 1, 1);
    uint32_t found = 0;
    REQUIRE(block_ok != NULL && seen != NULL);
    for (uint32_t i = 0; i < h->pool_count; i++) {
        uint32_t off = UINT32_MAX, extent = UINT32_MAX;
        memset(&err, 0, sizeof(err));
        rc = cds_pool_find(a, i, block_ok, &off, &extent, &err);
        if (rc == 0) {
            oracle_pool(a, i, off, extent, seen);
            found++;
        }
        else {
            check_error(&err, rc);
            REQUIRE(rc == CDS_ECHECKSUM || rc == CDS_ECORRUPT);
            report("pool string", i, rc, &err);
        }
    }
    report("pool strings found", found, 0, &err);
    const uint32_t beyond[] = {h->pool_count, h->pool_count + 1,
                               UINT32_MAX / 4 + 1, UINT32_MAX};
    for (size_t i = 0; i < sizeof(beyond) / sizeof(beyond[0]); i++) {
        uint32_t off, extent;
        if (beyond[i] < h->pool_count) {
            continue; /* wrapped */
        }
        memset(&err, 0, sizeof(err));
        rc = cds_pool_find(a, beyond[i], block_ok, &off, &extent, &err);
        REQUIRE(rc == CDS_ECORRUPT);
        check_error(&err, rc);
    }
    /* the early list: inside the pool's checked blocks, or refused */
    const uint32_t *early = NULL;
    memset(&err, 0, sizeof(err));
    rc = cds_pool_early(a, block_ok, &early, &err);
    if (rc == 0) {
        REQUIRE((early != NULL) == (h->pool_early_count != 0));
        const uint8_t *lo = a->data + h->pool_offset + h->pool_table_off +
                            4ull * h->pool_count;
        REQUIRE(early == NULL || (const uint8_t *)early == lo);
    }
    else {
        check_error(&err, rc);
        REQUIRE(rc == CDS_ECHECKSUM);
    }
    free(block_ok);
    free(seen);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cds_disk_fingerprint fp;
    const struct cds_disk_fingerprint *expect = NULL;
    cds_archive a;
    cds_error err;
    void *p = NULL;

    if (size == 0) {
        return 0;
    }
    unsigned mode = data[0];
    size_t n = size - 1;
    /* exactly n bytes, aligned as a mapping is: reads past the image are
     * heap overflows (posix_memalign(0) may return NULL: keep one byte) */
    if (posix_memalign(&p, 64, n ? n : 1) != 0) {
        return 0;
    }
    uint8_t *img = p;
    memcpy(img, data + 1, n);
    if (want_reseal(mode)) {
        reseal(img, n, (mode & MODE_FIX_SIZE) != 0);
    }
    size_t fp_flip = FP_NFLIPS; /* none */
    if ((mode & MODE_EXPECT) && n >= CDS_HEADER_SIZE) {
        memcpy(&fp, img + HDR(fingerprint), sizeof(fp));
        if ((mode >> 3) >= 1 && (mode >> 3) <= FP_NFLIPS) {
            fp_flip = (mode >> 3) - 1;
            flip(&fp, fp_flip);
        }
        expect = &fp;
    }
    if (n >= CDS_HEADER_SIZE) {
        /* the message builder, on the file's unterminated char arrays */
        const struct cds_disk_fingerprint *have =
            (const void *)(img + HDR(fingerprint));
        for (size_t k = 0; k < FP_NFLIPS; k++) {
            struct cds_disk_fingerprint other = *have;
            char why[200];
            flip(&other, k);
            REQUIRE(cds_fingerprint_diff(have, &other, why, sizeof(why)));
            REQUIRE(memchr(why, '\0', sizeof(why)) != NULL);
        }
    }

    memset(&err, 0, sizeof(err));
    int rc = cds_archive_load(&a, img, n, expect, &err);
    report("load, modules", rc == 0 ? (long)a.header->nmodules : -1, rc,
           &err);
    if (rc == 0) {
        /* H7 cannot have passed a fingerprint that differs */
        REQUIRE(fp_flip == FP_NFLIPS);
        oracle_archive(&a, n);
        exercise(&a);
    }
    else {
        check_error(&err, rc);
        REQUIRE(rc == CDS_EFORMAT || rc == CDS_ECORRUPT ||
                rc == CDS_ECHECKSUM || rc == CDS_EINCOMPLETE ||
                rc == CDS_EVERSION);
        REQUIRE(rc != CDS_EVERSION || fp_flip != FP_NFLIPS);
        REQUIRE(a.header == NULL);
    }
    cds_archive_close(&a); /* a no-op: the fuzzer owns the buffer */
    free(p);
    return 0;
}
