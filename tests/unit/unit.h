/* SPDX-License-Identifier: MIT */
/* Helpers shared by the CMocka programs in tests/unit/.
 *
 * Each program tests one module of cds/ and links this file.  It holds
 * what more than one program needs: temporary directories, reading a file
 * into an exactly sized buffer (so that AddressSanitizer catches any read
 * past the image), a synthetic fingerprint and a small synthetic segment
 * that satisfies format.md 5 without an interpreter, and the command-line
 * filter that lets CTest run one case per test (test_<module>_<case>). */
#ifndef PYCDS_TESTS_UNIT_H
#define PYCDS_TESTS_UNIT_H

/* CMocka wants these before it */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "cds.h"
#include "format.h"
#include "writer.h"

#include <stdbool.h>

#define UNIT_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Fail with both statuses named, not as two unsigned hex numbers. */
#define assert_status(rc, want)                                             \
    do {                                                                    \
        int rc_ = (rc), want_ = (want);                                     \
        if (rc_ != want_) {                                                 \
            print_error("status %d (%s), expected %d (%s)\n", rc_,          \
                        cds_status_name(rc_), want_,                        \
                        cds_status_name(want_));                            \
            fail();                                                         \
        }                                                                   \
    } while (0)

/* A failed call filled err consistently: the status it returned, the
 * line that reported it, a one-line message. */
void unit_check_error(const cds_error *err, int rc);

/* A preferred base for test archives.  Not CDS_DEFAULT_BASE: under
 * AddressSanitizer that address lies in ASan's shadow memory (x86-64
 * shadow is [0x02008fff7000, 0x10007fff7fff]), so MAP_FIXED_NOREPLACE at
 * it always fails and the at-base path would never run in the Sanitize
 * build.  This one is free in both address-space layouts. */
#define UNIT_BASE 0x520000000000ull

/* argv[1], when given, names the one case to run (CTest registers each
 * case as its own test).  Returns 0, or -1 after a message when the name
 * matches no case, so that a stale registration fails instead of passing
 * with zero tests run. */
int unit_select(int argc, char **argv, const struct CMUnitTest *tests,
                size_t ntests);

/* mkdtemp under $TMPDIR (or /tmp); path receives it.  unit_tmpdir_remove
 * deletes the files in it and the directory. */
void unit_tmpdir_create(char *path, size_t size);
void unit_tmpdir_remove(const char *path);

/* Count the directory entries whose name starts with prefix. */
int unit_count_prefix(const char *dir, const char *prefix);

/* Read path into a new 64-byte aligned buffer of exactly its size (free()
 * it).  Fails the test on error. */
uint8_t *unit_read_file(const char *path, size_t *size);

/* An exactly sized, 64-byte aligned copy of n bytes (n may be 0). */
uint8_t *unit_copy(const void *src, size_t n);

/* Write n bytes to path (replacing it). */
void unit_write_file(const char *path, const void *data, size_t n);

/* A plausible fingerprint with every compared field non-zero. */
void unit_fingerprint(struct cds_disk_fingerprint *fp);

/* A synthetic segment (format.md 5) that cds_segment_validate accepts
 * when the block is placed at addr (base + its file offset):
 *
 *   off  kind   bytes        slots
 *     0  code   [0, 64)      32 -> tuple@80 (reloc), 40 -> None (ext),
 *                            48 -> a pool string (shared, if a pool)
 *    80  tuple  [64, 120)    104 -> str@120 (intern ref),
 *                            112 -> tuple@192 (reloc, frozenset)
 *   120  str    [120, 176)
 *   192  tuple  [176, 224)   216 -> small int 1 (ext)
 *
 * variant changes the bytes of the string so that modules differ. */
#define UNIT_SEG_OBJECTS 224u
#define UNIT_SEG_CODE 0u
#define UNIT_SEG_TUPLE 80u
#define UNIT_SEG_STR 120u
#define UNIT_SEG_ITEMS 192u
#define UNIT_SEG_SLOT_TUPLE 32u   /* reloc[0] */
#define UNIT_SEG_SLOT_NONE 40u    /* ext[0] */
#define UNIT_SEG_SLOT_STR 104u    /* reloc[2] */
#define UNIT_SEG_SLOT_ITEMS 112u  /* reloc[1], frozen[0] */
#define UNIT_SEG_SLOT_ONE 216u    /* ext[1] */
#define UNIT_SEG_SLOT_POOL 48u    /* shared[0], when there is a pool */
struct unit_segment {
    struct cds_segment seg;
    _Alignas(8) uint8_t objects[UNIT_SEG_OBJECTS];
    uint32_t objtab[4];
    uint32_t reloc[3];
    struct cds_disk_ext ext[2];
    uint32_t frozen[1];
    struct cds_disk_shared shared[1];
};
/* npool: strings in the archive's pool; when not 0 the code object's slot
 * UNIT_SEG_SLOT_POOL refers to pool string variant % npool. */
void unit_segment_init(struct unit_segment *u, uint64_t addr,
                       unsigned variant, uint32_t npool);

/* Add a module with a synthetic segment at the writer's next offset. */
int unit_writer_add(cds_writer *w, uint64_t base,
                    const struct cds_writer_module *m, unsigned variant,
                    uint32_t npool, cds_error *err);

/* A synthetic string pool (format.md 4.1): count compact ASCII str images
 * "pool%05u" of 64 bytes each, so that 600 strings span 3 checksum
 * blocks. */
#define UNIT_POOL_STRING 64u
struct unit_pool {
    struct cds_pool pool;
    uint8_t *objects;
    uint32_t *table;
};
void unit_pool_init(struct unit_pool *p, uint32_t count);
void unit_pool_clear(struct unit_pool *p);

/* Re-seal an image after changing it, so that the checks behind the
 * checksum are reached: the header checksum; the index checksum (then the
 * header); module i's segment checksum (then index, header); the pool's
 * block checksums, their checksum (then the header). */
void unit_seal_header(uint8_t *img);
void unit_seal_index(uint8_t *img);
void unit_seal_segment(uint8_t *img, uint32_t i);
void unit_seal_pool(uint8_t *img);

#endif
