/* SPDX-License-Identifier: MIT */
/* Writing an archive: segments streamed to a temporary file beside the
 * destination, then the index, then the header with the magic completed,
 * fsync, rename.  A reader never sees a partial archive. */
#ifndef CDS_WRITER_H
#define CDS_WRITER_H

#include "cds.h"
#include "format.h"

typedef struct cds_writer cds_writer;

/* What the index records about one module (format.md 3.2). */
struct cds_writer_module {
    const char *name;     /* dotted module name */
    const char *origin;   /* absolute path of the source file */
    const char *search;   /* directory the path finder searched */
    uint32_t flags;       /* CDS_MODULE_* */
    int64_t source_mtime_ns;
    uint64_t source_size;
    uint64_t source_hash; /* cds_hash of the source file's bytes */
};

/* A serialized segment: the object region and its lists, with offsets
 * relative to the start of the object region (format.md 4, 5). */
struct cds_segment {
    const uint8_t *objects;
    uint32_t objects_size; /* multiple of CDS_OBJECT_ALIGN */
    const uint32_t *objtab; /* nobjects entries, format.md 5.1 */
    uint32_t nobjects;
    uint32_t root_off;
    const uint32_t *reloc;
    uint32_t nreloc;
    const struct cds_disk_ext *ext;
    uint32_t next;
    const uint32_t *frozen;
    uint32_t nfrozen;
    const struct cds_disk_shared *shared;
    uint32_t nshared;
    uint32_t write_size; /* [0, write_size): what loading and running
                          * write (format.md 5), multiple of 8 */
    uint32_t copy_off;   /* [copy_off, objects_size): the bodies handed
                          * out as heap copies, only read at load;
                          * write_size <= copy_off */
};

/* The shared string pool (format.md 4.1): objects_size bytes of str
 * objects and the offset of each, by pool index.  hints (NULL: all 0)
 * gives, by pool index, the address a slot referring to that string
 * holds in the file (format.md 5.5), 0 for the string's own address in
 * the pool; the writer stores them when the pool's place is known. */
struct cds_pool {
    const uint8_t *objects;
    uint32_t objects_size; /* multiple of CDS_OBJECT_ALIGN */
    const uint32_t *table;
    uint32_t count;
    const uint64_t *hints;
    /* format.md 4.1: the indices the loader interns when it activates the
     * archive, before anything is served */
    const uint32_t *early;
    uint32_t early_count;
    /* the index each segment's pool references name, as they were
     * serialized, to the index the pool now has: renumber[old] = new;
     * NULL where they are the same */
    const uint32_t *renumber;
    /* format.md 5.1.7: the code objects' co_version values (3.13), one
     * each from base; count 0 where the version has none */
    uint32_t code_version_base, code_version_count;
};

/* Start an archive at path (written as path.tmp.XXXXXX until finished).
 * base is the preferred map address (page aligned); fp the fingerprint
 * of the interpreter whose objects will be added. */
int cds_writer_create(cds_writer **w, const char *path, uint64_t base,
                      const struct cds_disk_fingerprint *fp, cds_error *err);

/* Record the optimization level (sys.flags.optimize: 0, 1, 2, or more
 * for -OOO...) the code was compiled for; 0 by default. */
void cds_writer_set_optimize(cds_writer *w, unsigned level);

/* The file offset at which the next segment will be written: its objects
 * live at base + this offset when mapped at the preferred base. */
uint64_t cds_writer_next_offset(const cds_writer *w);

/* Append one module.  Strings in m are copied.  A name added twice makes
 * cds_writer_finish() fail with CDS_ECORRUPT. */
int cds_writer_add(cds_writer *w, const struct cds_writer_module *m,
                   const struct cds_segment *seg, cds_error *err);

/* Give the string pool to write at finish (none by default).  pool must
 * stay valid until cds_writer_finish(). */
void cds_writer_set_pool(cds_writer *w, const struct cds_pool *pool);

/* Write the pool, store in every pool reference slot of the segments
 * its hint (struct cds_pool) and checksum them again, then write the
 * index and the header, fsync, rename over the destination. */
int cds_writer_finish(cds_writer *w, cds_error *err);

/* Free w; removes the temporary file unless finished.  Accepts NULL. */
void cds_writer_destroy(cds_writer *w);

/* Default preferred base: far from the kernel's usual mmap and heap
 * ranges on x86-64 and arm64 (format.md 2). */
#define CDS_DEFAULT_BASE 0x3a0000000000ull

#endif
