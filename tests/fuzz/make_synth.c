/* SPDX-License-Identifier: MIT */
/* Synthetic seed archives for the fuzzer, written with the real writer.
 *
 * The import hook's dumps rarely put a frozenset on an external (), so
 * seeds from real dumps leave that check of cds_segment_validate to
 * chance.  This program writes small archives whose segments use every
 * list and every object kind, with and without a string pool, and one
 * whose pool spans several checksum blocks.  It needs no interpreter: object bodies are plausible, not
 * loadable (the format layer does not read them, format.md 6.5).
 *
 *   make_synth DIR    writes DIR/synth-*.img */
#include "cds.h"
#include "format.h"
#include "writer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The object region (format.md 5): offsets of the objects, then of the
 * pointer slots, each named after the field it stands for. */
enum {
    O_CODE = 0,      /* code, 192 bytes (ob_size 4) */
    O_FILENAME = 192, /* str "/tmp/synth.py", not interned */
    O_NAME = 256,    /* str "synth", referred to four times */
    O_INT = 312,     /* int 2^30 + 1: two digits */
    O_FLOAT = 344,
    O_COMPLEX = 368,
    O_CONSTS = 416,  /* tuple of 5, GC head at 400 */
    O_NAMES = 496,   /* tuple of 2, GC head at 480 */
    O_ITEMS = 552,   /* tuple of 2: a frozenset's items, GC head at 536 */
    O_LINES = 592,   /* bytes, 7 */
    OBJECTS = 632,
};

struct synth {
    struct cds_segment seg;
    _Alignas(8) uint8_t objects[OBJECTS];
    uint32_t objtab[10];
    uint32_t reloc[12];
    struct cds_disk_ext ext[6];
    uint32_t frozen[2];
    struct cds_disk_shared shared[1];
};

static void
put64(uint8_t *p, uint32_t off, uint64_t v)
{
    memcpy(p + off, &v, 8);
}

static void
put32(uint8_t *p, uint32_t off, uint32_t v)
{
    memcpy(p + off, &v, 4);
}

/* Lay the segment out for address addr; pool_index < 0: no pool, the
 * pool slot becomes an external None. */
static void
synth_init(struct synth *s, uint64_t addr, long pool_index)
{
    uint8_t *o = s->objects;
    uint32_t n;

    memset(s, 0, sizeof(*s));
    const uint32_t objtab[] = {
        O_CODE | CDS_OBJ_CODE,       O_FILENAME | CDS_OBJ_STR,
        O_NAME | CDS_OBJ_STR,        O_INT | CDS_OBJ_INT,
        O_FLOAT | CDS_OBJ_FLOAT,     O_COMPLEX | CDS_OBJ_COMPLEX,
        O_CONSTS | CDS_OBJ_TUPLE,    O_NAMES | CDS_OBJ_TUPLE,
        O_ITEMS | CDS_OBJ_TUPLE,     O_LINES | CDS_OBJ_BYTES,
    };
    memcpy(s->objtab, objtab, sizeof(objtab));
    for (size_t i = 0; i < sizeof(objtab) / sizeof(objtab[0]); i++) {
        uint32_t off = CDS_OBJ_OFFSET(objtab[i]);
        put64(o, off, 1ull << 40);                    /* ob_refcnt */
        put64(o, off + 8, 0x950000ull + 0x100 * i);   /* "type" */
    }
    /* code: ob_size, flags, warm-up, a few ints, bytecode */
    put64(o, O_CODE + 16, 4);
    put32(o, O_CODE + 48, 0x40);
    put32(o, O_CODE + 52, 0xfff8);
    put32(o, O_CODE + 72, 1);  /* co_firstlineno */
    memcpy(o + O_CODE + 184, "\x97\x00\x64\x00\x53\x00\x00\x00", 8);
    /* str: length, hash -1, state compact ascii ready, data */
    put64(o, O_FILENAME + 16, 13);
    put64(o, O_FILENAME + 24, UINT64_MAX);
    put32(o, O_FILENAME + 32, 0xe4);
    memcpy(o + O_FILENAME + 48, "/tmp/synth.py", 14);
    put64(o, O_NAME + 16, 5);
    put64(o, O_NAME + 24, UINT64_MAX);
    put32(o, O_NAME + 32, 0xe4);
    memcpy(o + O_NAME + 48, "synth", 6);
    put64(o, O_INT + 16, 2);
    put32(o, O_INT + 24, 1);
    put32(o, O_INT + 28, 1);
    put64(o, O_FLOAT + 16, 0x4004000000000000ull);   /* 2.5 */
    put64(o, O_COMPLEX + 16, 0x3ff0000000000000ull); /* 1+2j */
    put64(o, O_COMPLEX + 24, 0x4000000000000000ull);
    put64(o, O_CONSTS + 16, 5);
    put64(o, O_NAMES + 16, 2);
    put64(o, O_ITEMS + 16, 2);
    put64(o, O_LINES + 16, 7);
    put64(o, O_LINES + 24, UINT64_MAX);
    memcpy(o + O_LINES + 32, "\x80\x00\xd8\x04\x05\x81\x01", 7);

    /* internal pointers (5.2) */
    const uint32_t reloc[][2] = {
        {O_CODE + 24, O_CONSTS},   {O_CODE + 32, O_NAMES},
        {O_CODE + 112, O_FILENAME}, {O_CODE + 136, O_LINES},
        {O_CONSTS + 24, O_INT},    {O_CONSTS + 32, O_FLOAT},
        {O_CONSTS + 40, O_COMPLEX}, {O_CONSTS + 48, O_ITEMS},
        /* one str, four slots */
        {O_CODE + 120, O_NAME},    {O_CODE + 128, O_NAME},
        {O_NAMES + 24, O_NAME},    {O_ITEMS + 32, O_NAME},
    };
    for (n = 0; n < sizeof(reloc) / sizeof(reloc[0]); n++) {
        s->reloc[n] = reloc[n][0];
        put64(o, reloc[n][0], addr + reloc[n][1]);
    }
    /* external objects (5.3); the pool slot is one when there is no pool */
    const uint32_t ext[][2] = {
        {O_CODE + 40, CDS_EXT_EMPTY_BYTES},  /* co_exceptiontable */
        {O_CODE + 96, CDS_EXT_EMPTY_TUPLE},  /* co_localsplusnames */
        {O_CODE + 104, CDS_EXT_EMPTY_BYTES}, /* co_localspluskinds */
        {O_CONSTS + 56, CDS_EXT_EMPTY_TUPLE}, /* frozenset() */
        {O_ITEMS + 24, CDS_EXT_SMALL_INT + 1 - CDS_EXT_INT_MIN},
        {O_NAMES + 32, CDS_EXT_NONE},
    };
    s->seg.next = pool_index < 0 ? 6 : 5;
    for (n = 0; n < s->seg.next; n++) {
        s->ext[n].slot = ext[n][0];
        s->ext[n].index = ext[n][1];
        put64(o, ext[n][0], 0x900000ull + ext[n][1]);
    }
    /* frozensets: a tuple of the segment, and the external () (S7) */
    s->frozen[0] = O_CONSTS + 48;
    s->frozen[1] = O_CONSTS + 56;
    if (pool_index >= 0) {
        s->shared[0].slot = O_NAMES + 32; /* holds 0 in the file */
        s->shared[0].index = (uint32_t)pool_index;
        s->seg.nshared = 1;
    }

    s->seg.objects = s->objects;
    s->seg.objects_size = OBJECTS;
    s->seg.objtab = s->objtab;
    s->seg.nobjects = 10;
    s->seg.root_off = O_CODE;
    s->seg.reloc = s->reloc;
    s->seg.nreloc = 12;
    s->seg.ext = s->ext;
    s->seg.frozen = s->frozen;
    s->seg.nfrozen = 2;
    s->seg.shared = s->shared;
}

/* count 64-byte compact ASCII strings "pool%05u" (4.1). */
static void
pool_init(struct cds_pool *p, uint8_t **objects, uint32_t **table,
          uint32_t count)
{
    memset(p, 0, sizeof(*p));
    *objects = calloc(count, 64);
    *table = calloc(count, 4);
    if (*objects == NULL || *table == NULL) {
        perror("calloc");
        exit(1);
    }
    for (uint32_t i = 0; i < count; i++) {
        uint8_t *o = *objects + 64ull * i;
        put64(o, 0, 1ull << 40);
        put64(o, 8, 0x953980ull);
        put64(o, 16, 9);
        put64(o, 24, UINT64_MAX);
        put32(o, 32, 0xe4);
        snprintf((char *)o + 48, 10, "pool%05u", i % 100000);
        (*table)[i] = 64 * i;
    }
    p->objects = *objects;
    p->objects_size = 64 * count;
    p->table = *table;
    p->count = count;
}

static int
write_archive(const char *dir, const char *file, uint32_t nmodules,
              uint32_t npool)
{
    static const char *const names[] = {"synth", "synth.sub", "synth.b",
                                        "synth.sub.c"};
    struct cds_disk_fingerprint fp;
    struct cds_pool pool;
    uint8_t *objects = NULL;
    uint32_t *table = NULL;
    cds_writer *w = NULL;
    cds_error err;
    char path[4096];
    int rc;

    memset(&fp, 0, sizeof(fp));
    fp.py_version_hex = 0x030b02f0;
    fp.pyc_magic = 0x0a0d0da7;
    fp.pointer_size = 8;
    fp.byte_order = 1;
    fp.long_shift = 30;
    fp.wchar_size = 4;
    fp.layout_hash = 0x19e3e195e8e96369ull;
    fp.runtime_hash = 0x6df419fb0bbb27a8ull;
    strcpy(fp.cache_tag, "cpython-311");
    strcpy(fp.soabi, ".cpython-311-x86_64-linux-gnu.so");
    strcpy(fp.build_info, "main, Jan  1 2024, 00:00:00");
    strcpy(fp.compiler, "[GCC 12.2.0]");
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    if ((rc = cds_writer_create(&w, path, CDS_DEFAULT_BASE, &fp, &err)) <
        0) {
        goto out;
    }
    if (npool != 0) {
        pool_init(&pool, &objects, &table, npool);
        cds_writer_set_pool(w, &pool);
    }
    for (uint32_t i = 0; i < nmodules; i++) {
        struct synth s;
        struct cds_writer_module m = {
            .name = names[i % 4],
            .origin = "/tmp/synth/__init__.py",
            .search = i % 2 ? "/tmp" : "",
            .flags = i % 2 ? CDS_MODULE_PACKAGE : 0,
            .source_mtime_ns = 1700000000000000000 + i,
            .source_size = 100 + i,
        };
        synth_init(&s, CDS_DEFAULT_BASE + cds_writer_next_offset(w),
                   npool ? (long)((i * 251u + npool - 1) % npool) : -1);
        if ((rc = cds_writer_add(w, &m, &s.seg, &err)) < 0) {
            goto out;
        }
    }
    rc = cds_writer_finish(w, &err);
out:
    if (rc < 0) {
        fprintf(stderr, "make_synth: %s: %s (%s)\n", path, err.message,
                cds_status_name(rc));
    }
    cds_writer_destroy(w);
    free(objects);
    free(table);
    return rc;
}

int
main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make_synth DIR\n");
        return 2;
    }
    if (write_archive(argv[1], "synth-nopool.img", 1, 0) < 0 ||
        write_archive(argv[1], "synth-small.img", 2, 3) < 0 ||
        write_archive(argv[1], "synth-blocks.img", 4, 600) < 0) {
        return 1;
    }
    return 0;
}
