/* SPDX-License-Identifier: MIT */
/* Reading an archive: map, validate, look up, validate a segment.
 *
 * This is the format layer's reader.  It needs no interpreter: the CLI's
 * inspect/verify, the unit tests and the fuzzer use it on plain buffers.
 * cds_archive_load() is a pure function of (data, size); open() is a thin
 * wrapper that maps a file and calls it. */
#ifndef CDS_ARCHIVE_H
#define CDS_ARCHIVE_H

#include "cds.h"
#include "format.h"

#include <stdbool.h>

typedef struct cds_archive {
    uint8_t *data;     /* the image; writable only when mapped so */
    size_t size;
    size_t map_size;   /* non-zero when we own an mmap of data */
    bool writable;     /* mapped with PROT_WRITE by open() */
    int fd1;           /* the open file's descriptor + 1; 0: none */
    const struct cds_disk_header *header;
    const struct cds_disk_module *modules;
    const uint32_t *slots;
    const char *strings;
    /* where the image lives minus where the writer placed it: the amount
     * added to every internal pointer (format.md 5.2) */
    uint64_t delta;
    /* copy mode (cds_archive_copy_segments): one byte per module, set
     * once its segment has been read in; NULL otherwise */
    uint8_t *fetched;
    /* copy mode with the bytes objects before each segment's load-only
     * region used at the image's address, mapped from the file
     * (copy_segments' map_bytes, cds_segment_bytes_to_file) */
    bool map_bytes;
    /* copy mode: anonymous memory each segment is read into, where what
     * it keeps stays and the next one's is read in after it, packed
     * (cds_archive_arena); [arena, touched) is faulted in already */
    uint8_t *arena, *touched;
    size_t arena_left;
    /* copy mode: where segment scratch_index was read in, until loaded */
    uint8_t *scratch;
    uint32_t scratch_index;
    /* the file mapped: the blocks' whole pages are inaccessible
     * (PROT_NONE) until their module's first use
     * (cds_archive_guard_segments, cds_segment_unguard) */
    bool guarded;
} cds_archive;

/* cds_archive_open flags */
#define CDS_OPEN_WRITABLE 0x1u  /* PROT_WRITE, MAP_PRIVATE: for patching */
#define CDS_OPEN_RELOCATE 0x2u  /* never map at the preferred base */
#define CDS_OPEN_TRUSTED 0x4u   /* refuse files others could have written */

/* Validate the header and the module index of an image in memory
 * (format.md 6, checks H1..H11 and I1..I8).  expect, when not NULL, is
 * the fingerprint of the interpreter that will use the objects; a
 * mismatch is CDS_EVERSION.  data must stay valid and unchanged until
 * the archive is no longer used; a is filled even on failure only with
 * data/size.  Returns 0 or a negative cds_status. */
int cds_archive_load(cds_archive *a, const void *data, size_t size,
                     const struct cds_disk_fingerprint *expect,
                     cds_error *err);

/* Open path read-only, map it (at the preferred base where the kernel
 * allows, unless CDS_OPEN_RELOCATE) and load it.  On success a owns the
 * mapping until cds_archive_close(). */
int cds_archive_open(cds_archive *a, const char *path, unsigned flags,
                     const struct cds_disk_fingerprint *expect,
                     cds_error *err);

/* Is the file still the size it was when mapped?  An archive overwritten
 * in place (not replaced by rename, as the writer does) would make the
 * pages not read yet fault with SIGBUS past its new end: callers check
 * before touching a part of the image for the first time.  0, or
 * CDS_ECORRUPT.  Always 0 for an image not opened by open(). */
int cds_archive_check_file(const cds_archive *a, cds_error *err);

/* Unmap what open() mapped; accepts a zeroed archive. */
void cds_archive_close(cds_archive *a);

/* Find a module by name in O(1): *index set on success, CDS_ENOTFOUND
 * otherwise.  Only valid after a successful load. */
int cds_archive_find(const cds_archive *a, const char *name, size_t len,
                     uint32_t *index);

/* The slot map of a segment (format.md 6.3): a 16-bit unit per 8 bytes of
 * its object region, saying what starts there and how the unit is listed.
 * cds_segment_validate_map builds it while checking the lists; the heap
 * layer's deep validation (cds_heap_validate) reads it, refuses a slot
 * on an object's first unit, and then uses the class bits of object units
 * for its own marks, rather than mapping the segment a second time. */
typedef struct cds_slot_map {
    uint16_t *units; /* objects_size / 8 + 1 units, owned */
    uint32_t objects_size;
} cds_slot_map;
/* object kind + 1 at an object's first unit, else 0 */
#define CDS_MAP_KIND(u) ((unsigned)(u) & 15u)
/* how a slot is listed: enum cds_slot_class */
#define CDS_MAP_CLASS(u) (((unsigned)(u) >> 4) & 15u)
#define CDS_MAP_LISTED 0xf0u
/* a slot of the frozen list, and the item tuple it points to */
#define CDS_MAP_FROZEN 0x100u
enum cds_slot_class {
    CDS_SC_NONE,        /* not listed */
    CDS_SC_RELOC,       /* an object of the segment (format.md 5.2) */
    CDS_SC_SHARED,      /* a pool str (5.5) */
    CDS_SC_EXT_TUPLE,   /* external (5.3): () */
    CDS_SC_EXT_NOBYTES, /* b"" */
    CDS_SC_EXT_STR,     /* "" or a 1-character str */
    CDS_SC_EXT_OTHER,   /* None, True, False, Ellipsis, a small int */
    /* 7-14: a 1-byte bytes, with the top 3 bits of its byte (what
     * counting co_localspluskinds reads: FAST_LOCAL, _CELL, _FREE) */
    CDS_SC_EXT_BYTE,
};
/* The class of external index (valid: S4). */
unsigned cds_ext_class(uint32_t index);

/* Check one module's segment before any of it is used (format.md 6,
 * checks S1..S7): its checksum, then every list entry and every pointer
 * the relocation list names.  Reads the image, writes nothing; call it
 * before patching.  With map non-NULL, a segment that passes leaves its
 * slot map there (release it with cds_slot_map_free); on failure *map is
 * empty. */
int cds_segment_validate_map(const cds_archive *a, uint32_t index,
                             cds_slot_map *map, cds_error *err);
/* cds_segment_validate_map without keeping the map. */
int cds_segment_validate(const cds_archive *a, uint32_t index,
                         cds_error *err);
void cds_slot_map_free(cds_slot_map *map);

/* Find pool string index (format.md 4.1, checks P1..P3): its object's
 * offset from the pool start in *off and the bytes up to the next string
 * in *extent.  Every pool block it reads is checked against its checksum
 * the first time (block_ok: one byte per block, cds_pool_nblocks(), zeroed
 * by the caller, kept for the archive's life). */
int cds_pool_find(const cds_archive *a, uint32_t index, uint8_t *block_ok,
                  uint32_t *off, uint32_t *extent, cds_error *err);

/* The pool's early list (format.md 4.1): header->pool_early_count pool
 * indices in *list (NULL when there are none), its blocks checked (P2)
 * with block_ok as for cds_pool_find.  The indices are not checked. */
int cds_pool_early(const cds_archive *a, uint8_t *block_ok,
                   const uint32_t **list, cds_error *err);

/* Number of checksum blocks of the pool. */
uint64_t cds_pool_nblocks(const cds_archive *a);

/* Fault in module index's segment block, before it is checked and
 * patched, in two system calls instead of a fault per page: the pages of
 * [0, write_end) of the block, which loading or running will write,
 * become private copies of the file's bytes (MADV_POPULATE_WRITE); the
 * rest are mapped from the file's page cache (MADV_POPULATE_READ) and
 * stay shared with every process that maps the file.  write_end is the
 * entry's write_size when nothing else of the segment will be written
 * (an immortal-object interpreter that maps the archive at its base and
 * needs no type patched), seg_size otherwise (3.11's reference counts,
 * relocation, a PIE interpreter's types: then every page is private, as
 * the loader needs).  Private pages cannot change or vanish if the file
 * is later overwritten in place; shared ones can (docs/design.md).  0,
 * or CDS_EMAP when the pages cannot be faulted in (the file shrank): then
 * nothing of the segment may be read.  0 without doing anything for
 * images not mapped writable by open(), and on kernels without the
 * advice.  In copy mode: the block read into memory of its own
 * (cds_archive_copy_segments), whatever write_end, or CDS_ENOMEM. */
int cds_segment_prefault(cds_archive *a, uint32_t index,
                         uint64_t write_end, cds_error *err);

/* Copy mode, for an interpreter that writes every page of a loaded
 * segment anyway (3.11's reference counts, a PIE build's types, a
 * relocated archive): the mapping becomes anonymous memory at the same
 * address, keeping what open checked (header, pool block sums, index);
 * then cds_segment_prefault reads each segment with pread(2) on its
 * first use into memory of its own (cds_archive_arena; where it is:
 * cds_segment_mem), and each pool block before its checksum is checked,
 * instead of a copy-on-write fault per 4 KiB page.  Nothing of the file
 * stays mapped, so a file truncated or rewritten in place afterwards
 * cannot reach the process (no SIGBUS; a size change is still caught by
 * cds_archive_check_file).  With map_bytes, for an interpreter that
 * writes every page but those of the bytes objects (3.11's reference
 * counts at the base, no type moved: line and exception tables are read
 * without a reference taken), the bytes objects before each segment's
 * load-only region are used at the image's address, mapped from the
 * file (cds_segment_bytes_to_file): they then belong to the file, as in
 * shared mode (a truncation in place can fault on them).  Only for an image mapped
 * writable by cds_archive_open(), before any segment is used; 0 without
 * doing anything otherwise.  CDS_EMAP if the memory cannot be had: then
 * the image may be gone, and the archive must be closed unused. */
int cds_archive_copy_segments(cds_archive *a, bool map_bytes,
                              cds_error *err);

/* The file mapped, not in copy mode: drop the whole pages of the
 * segment blocks from the resident set (none is written yet) and make
 * them inaccessible until each module's first use
 * (cds_segment_unguard).  What the kernel's fault-around maps of a file
 * around a faulting page is bounded by the mapping that holds it, so
 * faulting in one block no longer maps the pages of blocks whose module
 * the program never imports (an archive traced from more workloads than
 * the one running, docs/usage.md "The list"): they stay out of the
 * resident set.  Only for an image mapped writable by
 * cds_archive_open(), before any segment is used; does nothing
 * otherwise, or if the kernel refuses (then every block stays
 * accessible, as without it). */
void cds_archive_guard_segments(cds_archive *a);

/* Before anything of module index's block is read: its pages made
 * accessible again where cds_archive_guard_segments closed them.  0, or
 * CDS_EMAP when the kernel refuses (too many mappings): then nothing of
 * the segment may be read. */
int cds_segment_unguard(cds_archive *a, uint32_t index, cds_error *err);

/* Where module index's block is in memory: the image's bytes, but in
 * copy mode, from its read-in until it is loaded
 * (cds_archive_arena_keep), the memory it was read into. */
static inline uint8_t *
cds_segment_mem(const cds_archive *a, uint32_t index)
{
    return a->scratch != NULL && a->scratch_index == index
               ? a->scratch
               : a->data + a->modules[index].seg_offset;
}

/* Copy mode: n bytes, 64-aligned and faulted in, of anonymous memory
 * after the previous segment's kept objects, for a segment to be read
 * into; NULL when none can be had.  Never freed: what a segment keeps
 * lives as long as the process. */
void *cds_archive_arena(cds_archive *a, size_t n);

/* Copy mode, once the segment read into p (n bytes, from
 * cds_archive_arena) is loaded: its first keep bytes stay, the rest is
 * the next segment's to be read into (unless another reservation came
 * after p's; then its whole pages leave the resident set). */
void cds_archive_arena_keep(cds_archive *a, uint8_t *p, size_t n,
                            size_t keep);

/* Segment offset of the run of bytes objects that module index's objects
 * below end finish with (the writer puts them last but for the load-only
 * region, format.md 5), end when there is none; from the object table,
 * which must be in memory (in copy mode: the segment read in).  Clamped
 * to [0, end] whatever the table holds, for a decision about pages only:
 * validation judges the table. */
uint32_t cds_segment_bytes_start(const cds_archive *a, uint32_t index,
                                 uint32_t end);

/* Copy mode with map_bytes, module index's block read in and checked:
 * the segment offset from which its objects up to the load-only region
 * are bytes used at the image's address, where this maps the file over
 * the whole pages that hold them (a mapping of their own, so that the
 * kernel's fault-around maps no page beyond them); copy_off when there
 * are none, or they share a page with another block, or the mapping
 * failed (then they are used where the block was read in). */
uint32_t cds_segment_bytes_to_file(const cds_archive *a, uint32_t index);

/* After a segment is loaded: drop the pages of segment offsets from
 * clean on, so they stop counting in the process's resident set (only
 * whole pages that no object of any segment shares; a no-op for
 * unmapped images).  What lies in [clean, dead)
 * is objects loading did not write (still the file's, or private copies
 * equal to it), which may be read again; what lies from dead on (the
 * load-only region once copied, the lists) is never read again.  The
 * whole pages from clean on leave the resident set, and come back from
 * the page cache, unchanged, if read; those from dead on also get a
 * mapping of their own against the kernel's fault-around.  Not for copy
 * mode (cds_archive_arena_keep). */
void cds_segment_release_from(const cds_archive *a, uint32_t index,
                              uint32_t clean, uint32_t dead);

/* The module's name, origin and search directory (NUL-terminated,
 * inside the image). */
const char *cds_module_name(const cds_archive *a, uint32_t index);
const char *cds_module_origin(const cds_archive *a, uint32_t index);
const char *cds_module_search(const cds_archive *a, uint32_t index);

/* True when the image sits at the address the writer chose. */
static inline bool
cds_archive_at_base(const cds_archive *a)
{
    return a->delta == 0;
}

/* Describe the first difference between two fingerprints, for messages:
 * writes a short phrase to buf ("python version 0x30b02f0 != 0x30b07f0")
 * and returns true when they differ in a compared field. */
bool cds_fingerprint_diff(const struct cds_disk_fingerprint *have,
                          const struct cds_disk_fingerprint *want,
                          char *buf, size_t bufsize);

#endif
