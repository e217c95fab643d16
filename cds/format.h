/* SPDX-License-Identifier: MIT */
/* On-disk layout of a pycds archive: the C mirror of docs/format.md.
 *
 * Every struct here is an exact image of bytes in the file (native byte
 * order, which the header records and the reader checks).  They carry the
 * _disk suffix and are never used as in-memory state.  A change to any of
 * them changes docs/format.md, CDS_FORMAT_VERSION and the golden test in
 * the same commit. */
#ifndef CDS_FORMAT_H
#define CDS_FORMAT_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

/* format.md 2: the magic.  The writer stores CDS_MAGIC_INCOMPLETE first
 * and rewrites the header with the complete magic once the file is whole
 * (as Emacs's pdumper does), so a half-written archive says so.  The
 * non-ASCII first byte and the \r\n catch text-mode mangling as PNG's
 * magic does. */
#define CDS_MAGIC "\x93PYCDS\r\n"
#define CDS_MAGIC_INCOMPLETE "\x93PYCDS\r!"
#define CDS_MAGIC_SIZE 8
#define CDS_FORMAT_VERSION 8u

#define CDS_HEADER_SIZE 1024u   /* format.md 2: header occupies [0, 1024) */
#define CDS_SEGMENT_ALIGN 64u   /* format.md 4: segment blocks start here */
#define CDS_SEGMENT_PAGE 4096u  /* format.md 4: where the writer starts them */
#define CDS_OBJECT_ALIGN 8u     /* format.md 5: objects and GC heads */
#define CDS_MAX_MODULES (1u << 24)
#define CDS_MAX_NAME 1024u      /* longest module name accepted */

/* format.md 2.1: build fingerprint.  Compared field by field with the one
 * the loading interpreter computes (strings up to their NUL, the PIE bit
 * ignored); any difference is CDS_EVERSION. */
struct cds_disk_fingerprint {
    uint32_t py_version_hex;  /* PY_VERSION_HEX of the headers built with */
    uint32_t pyc_magic;       /* importlib.util.MAGIC_NUMBER, little end. */
    uint8_t pointer_size;     /* sizeof(void *) */
    uint8_t byte_order;       /* 1 little endian, 2 big endian */
    uint8_t long_shift;       /* PyLong_SHIFT */
    uint8_t wchar_size;       /* sizeof(wchar_t) */
    uint32_t build_flags;     /* CDS_BUILD_* */
    uint64_t layout_hash;     /* XXH3 of the object layout table */
    uint64_t runtime_hash;    /* XXH3 of Py_GetVersion|build info|compiler */
    char cache_tag[16];       /* sys.implementation.cache_tag */
    char soabi[48];           /* extension suffix: names the ABI */
    char build_info[96];      /* Py_GetBuildInfo() */
    char compiler[88];        /* Py_GetCompiler() */
    uint64_t quicken_hash;    /* XXH3 of a probe's as-created bytecode */
};
#define CDS_BUILD_DEBUG 0x1u
#define CDS_BUILD_TRACE_REFS 0x2u
#define CDS_BUILD_REF_DEBUG 0x4u
#define CDS_BUILD_GIL_DISABLED 0x8u
static_assert(sizeof(struct cds_disk_fingerprint) == 288 &&
                  offsetof(struct cds_disk_fingerprint, quicken_hash) == 280,
              "fingerprint");

/* format.md 2: the header, at offset 0. */
struct cds_disk_header {
    char magic[CDS_MAGIC_SIZE];    /* 0: CDS_MAGIC */
    uint32_t format_version;       /* 8: CDS_FORMAT_VERSION */
    uint32_t header_size;          /* 12: CDS_HEADER_SIZE */
    uint64_t file_size;            /* 16: exact size of the file */
    uint64_t header_checksum;      /* 24: XXH3 of [0,1024) with this 0 */
    uint64_t base_address;         /* 32: preferred map address */
    uint64_t created_ns;           /* 40: dump time, CLOCK_REALTIME */
    uint64_t segments_offset;      /* 48: first segment block */
    uint64_t segments_size;        /* 56: bytes of all segment blocks */
    uint64_t index_offset;         /* 64: module table */
    uint64_t index_size;           /* 72: slots + entries + strings */
    uint64_t index_checksum;       /* 80: XXH3 of the index bytes */
    uint32_t nmodules;             /* 88: module entries */
    uint32_t nslots;               /* 92: hash slots, power of two */
    uint64_t slots_offset;         /* 96: uint32_t[nslots] */
    uint64_t entries_offset;       /* 104: cds_disk_module[nmodules] */
    uint64_t strings_offset;       /* 112: NUL-terminated names, paths */
    uint64_t strings_size;         /* 120 */
    uint32_t flags;                /* 128: zero (none defined yet) */
    uint32_t optimize;             /* 132: sys.flags.optimize at dump, <256 */
    struct cds_disk_fingerprint fingerprint; /* 136 */
    /* format.md 4.1: the pool of interned strings shared by all modules */
    uint64_t pool_offset;          /* 424: pool block, file offset */
    uint64_t pool_size;            /* 432: bytes of the block */
    uint64_t pool_sums_checksum;   /* 440: XXH3 of the block checksums */
    uint32_t pool_count;           /* 448: strings in the pool */
    uint32_t pool_objects_size;    /* 452: their object region */
    uint32_t pool_table_off;       /* 456: uint32_t[pool_count] offsets */
    uint32_t pool_sums_off;        /* 460: uint64_t[nblocks] checksums */
    uint32_t pool_block_size;      /* 464: CDS_POOL_BLOCK */
    uint32_t pool_early_count;     /* 468: uint32_t[] after the table: the
                                    * strings interned at activation */
    uint32_t code_version_base;    /* 472: co_version of the first code */
    uint32_t code_version_count;   /* 476: versions given out, one each */
    uint8_t reserved[CDS_HEADER_SIZE - 480]; /* 480: zero */
};
/* format.md 4.1: pool bytes are checked in blocks of this size, each on
 * first use, so a large pool costs nothing until its strings are used */
#define CDS_POOL_BLOCK 16384u
/* format.md 4.1: what the block sums cover, from the pool's start: the
 * strings, their table and the early list after it */
static inline uint64_t
cds_pool_covered(const struct cds_disk_header *h)
{
    return (uint64_t)h->pool_objects_size + 4ull * h->pool_count +
           4ull * h->pool_early_count;
}
static_assert(sizeof(struct cds_disk_header) == CDS_HEADER_SIZE, "header");
static_assert(offsetof(struct cds_disk_header, header_checksum) == 24, "hc");
static_assert(offsetof(struct cds_disk_header, nmodules) == 88, "nm");
static_assert(offsetof(struct cds_disk_header, fingerprint) == 136, "fp");
static_assert(offsetof(struct cds_disk_header, pool_offset) == 424, "pool");
static_assert(offsetof(struct cds_disk_header, code_version_base) == 472,
              "cv");
static_assert(offsetof(struct cds_disk_header, reserved) == 480, "rsv");

/* format.md 3.2: one module.  Offsets named *_off are relative to the
 * start of the module's segment block; name/origin/search offsets are
 * relative to strings_offset. */
struct cds_disk_module {
    uint64_t name_hash;      /* 0: XXH3 of the name bytes */
    uint32_t name_off;       /* 8 */
    uint32_t name_len;       /* 12: without the NUL */
    uint32_t origin_off;     /* 16: absolute path of the .py file */
    uint32_t origin_len;     /* 20 */
    uint32_t search_off;     /* 24: directory the finder found it in */
    uint32_t search_len;     /* 28 */
    uint32_t flags;          /* 32: CDS_MODULE_* */
    uint32_t root_off;       /* 36: the module's code object */
    int64_t source_mtime_ns; /* 40: st_mtim of origin at dump time */
    uint64_t source_size;    /* 48: st_size of origin at dump time */
    uint64_t seg_offset;     /* 56: segment block, file offset */
    uint64_t seg_size;       /* 64: bytes in the block */
    uint64_t seg_checksum;   /* 72: XXH3 of the block as written */
    uint32_t objects_size;   /* 80: object region, [0, objects_size) */
    uint32_t nobjects;       /* 84: objects in the region */
    uint32_t reloc_off;      /* 88: uint32_t[nreloc] pointer slots */
    uint32_t nreloc;         /* 92 */
    uint32_t ext_off;        /* 96: cds_disk_ext[next] */
    uint32_t next;           /* 100 */
    uint32_t intern_off;     /* 104: unused: interned strings are pooled */
    uint32_t nintern;        /* 108: 0 (format.md 5.4) */
    uint32_t copy_off;       /* 112: [copy_off, objects_size) of the region
                              * is only read at load: module and class
                              * bodies the loader hands out as heap copies
                              * (5) */
    uint32_t nrefs;          /* 116: 0 */
    uint32_t frozen_off;     /* 120: uint32_t[nfrozen] frozenset slots */
    uint32_t nfrozen;        /* 124 */
    uint32_t objtab_off;     /* 128: uint32_t[nobjects] object table */
    uint32_t shared_off;     /* 132: cds_disk_shared[nshared] */
    uint32_t nshared;        /* 136: slots that point into the pool */
    uint32_t write_size;     /* 140: [0, write_size) of the region is
                              * what loading and running write */
    uint64_t source_hash;    /* 144: XXH3 of the source file's bytes */
};
#define CDS_MODULE_PACKAGE 0x1u
static_assert(sizeof(struct cds_disk_module) == 152, "module entry");

/* format.md 5.5: a slot that must point to pool string index (after that
 * string is interned).  The file holds the writer's guess of that
 * address, never followed: loading writes the slot where it differs. */
struct cds_disk_shared {
    uint32_t slot;
    uint32_t index;
};
static_assert(sizeof(struct cds_disk_shared) == 8, "shared");

/* format.md 5.1: the object table, one uint32_t per object in offset
 * order: the object's offset in the region with its kind in the low
 * three bits (offsets are multiples of CDS_OBJECT_ALIGN).  Loading writes
 * the kind's type object into the ob_type field at offset + 8. */
enum cds_obj_kind {
    CDS_OBJ_CODE = 0,
    CDS_OBJ_STR,
    CDS_OBJ_BYTES,
    CDS_OBJ_INT,
    CDS_OBJ_FLOAT,
    CDS_OBJ_COMPLEX,
    CDS_OBJ_TUPLE,  /* preceded by a 16-byte zeroed PyGC_Head */
    CDS_OBJ_SLICE,  /* likewise (3.14 on: constant slices) */
    CDS_OBJ_NKINDS,
};
/* the kinds whose image a zeroed PyGC_Head precedes */
#define CDS_OBJ_GC_HEADED(kind) \
    ((kind) == CDS_OBJ_TUPLE || (kind) == CDS_OBJ_SLICE)
#define CDS_OBJ_KIND(entry) ((entry) & 7u)
static_assert(CDS_OBJ_NKINDS <= 8, "a kind fits an entry's 3 low bits");
#define CDS_OBJ_OFFSET(entry) ((entry) & ~7u)
/* What precedes every tuple: sizeof(PyGC_Head), 16 bytes in every
 * version pycds builds for (which only internal headers declare, so
 * the dump measures it, cds_heap_check_runtime); a version with
 * another GC head would need a new format version. */
#define CDS_GC_HEAD_SIZE 16u
/* format.md 5: how deep module and class bodies nest in the load-only
 * region: the writer copies no deeper, the loader refuses deeper */
#define CDS_COPY_DEPTH 200

/* format.md 5.3: a slot that must point to an object of the running
 * process (a singleton, a small int, a cached 1-char str or bytes). */
struct cds_disk_ext {
    uint32_t slot;   /* offset of the pointer slot in the segment */
    uint32_t index;  /* CDS_EXT_* */
};
static_assert(sizeof(struct cds_disk_ext) == 8, "ext");

/* format.md 5.3: the external object table, by index. */
enum {
    CDS_EXT_NONE = 0,
    CDS_EXT_TRUE,
    CDS_EXT_FALSE,
    CDS_EXT_ELLIPSIS,
    CDS_EXT_EMPTY_STR,
    CDS_EXT_EMPTY_BYTES,
    CDS_EXT_EMPTY_TUPLE,
    CDS_EXT_NFIXED,
    CDS_EXT_SMALL_INT = 256,  /* + (v + 5), v in [-5, 1024] */
    CDS_EXT_LATIN1 = 1536,    /* + c, c in [0, 255]: 1-char str */
    CDS_EXT_BYTE = 1792,      /* + c: 1-byte bytes */
    CDS_EXT_COUNT = 2048,
};
/* The ints the table can name: the small-int cache of every supported
 * version (3.11-3.14: -5..256; 3.15: -5..1024).  Which ints a version
 * owns is its heap layout's fact (cds_layout_small_int_min/max,
 * static_asserted to lie within); a version whose cache is larger needs
 * the range grown here and a new format version. */
#define CDS_EXT_INT_MIN (-5)
#define CDS_EXT_INT_MAX 1024
static_assert(CDS_EXT_SMALL_INT + CDS_EXT_INT_MAX - CDS_EXT_INT_MIN <
                  CDS_EXT_LATIN1,
              "external table ranges overlap");

#endif /* CDS_FORMAT_H */
