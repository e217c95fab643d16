/* SPDX-License-Identifier: MIT */
/* Helpers shared by the unit test programs (see unit.h). */
#include "unit.h"

#include "checksum.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int
unit_select(int argc, char **argv, const struct CMUnitTest *tests,
            size_t ntests)
{
    if (argc < 2) {
        return 0;
    }
    for (size_t i = 0; i < ntests; i++) {
        if (strcmp(tests[i].name, argv[1]) == 0) {
            cmocka_set_test_filter(argv[1]);
            return 0;
        }
    }
    fprintf(stderr, "%s: no test case named %s\n", argv[0], argv[1]);
    return -1;
}

void
unit_tmpdir_create(char *path, size_t size)
{
    const char *tmp = getenv("TMPDIR");
    int n = snprintf(path, size, "%s/pycds-unit-XXXXXX",
                     tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    assert_true(n > 0 && (size_t)n < size);
    assert_non_null(mkdtemp(path));
}

void
unit_tmpdir_remove(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    char file[4096];

    if (d == NULL) {
        return;
    }
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }
        snprintf(file, sizeof(file), "%s/%s", path, e->d_name);
        unlink(file);
    }
    closedir(d);
    rmdir(path);
}

int
unit_count_prefix(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) {
            n++;
        }
    }
    closedir(d);
    return n;
}

uint8_t *
unit_copy(const void *src, size_t n)
{
    void *p = NULL;
    /* posix_memalign(0) may return NULL: keep one byte, load sees n */
    assert_int_equal(posix_memalign(&p, 64, n ? n : 1), 0);
    if (n != 0) {
        memcpy(p, src, n);
    }
    return p;
}

uint8_t *
unit_read_file(const char *path, size_t *size)
{
    struct stat st;
    void *p = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    size_t done = 0;

    assert_true(fd >= 0);
    assert_int_equal(fstat(fd, &st), 0);
    assert_int_equal(posix_memalign(&p, 64, st.st_size ? st.st_size : 1),
                     0);
    while (done < (size_t)st.st_size) {
        ssize_t n = read(fd, (uint8_t *)p + done, (size_t)st.st_size - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        assert_true(n > 0);
        done += (size_t)n;
    }
    close(fd);
    *size = (size_t)st.st_size;
    return p;
}

void
unit_write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

void
unit_fingerprint(struct cds_disk_fingerprint *fp)
{
    memset(fp, 0, sizeof(*fp));
    fp->py_version_hex = 0x030b07f0;
    fp->pyc_magic = 3495 | (uint32_t)'\r' << 16 | (uint32_t)'\n' << 24;
    fp->pointer_size = 8;
    fp->byte_order = 1;
    fp->long_shift = 30;
    fp->wchar_size = 4;
    fp->build_flags = 0;
    fp->layout_hash = 0x0123456789abcdefull;
    fp->runtime_hash = 0xfedcba9876543210ull;
    strcpy(fp->cache_tag, "cpython-311");
    strcpy(fp->soabi, "cpython-311-x86_64-linux-gnu");
    strcpy(fp->build_info, "main, Jan  1 2024, 00:00:00");
    strcpy(fp->compiler, "[GCC 12.2.0]");
}

static void
put_ptr(uint8_t *objects, uint32_t slot, uint64_t value)
{
    memcpy(objects + slot, &value, sizeof(value));
}

void
unit_segment_init(struct unit_segment *u, uint64_t addr, unsigned variant,
                  uint32_t npool)
{
    memset(u, 0, sizeof(*u));
    /* heads: a refcount and a recognisable "type" word; the format layer
     * reads neither */
    const uint32_t objs[] = {UNIT_SEG_CODE, UNIT_SEG_TUPLE, UNIT_SEG_STR,
                             UNIT_SEG_ITEMS};
    for (size_t i = 0; i < UNIT_ARRAY_SIZE(objs); i++) {
        put_ptr(u->objects, objs[i], 1ull << 40);
        put_ptr(u->objects, objs[i] + 8, 0x7e57000000000000ull + i);
    }
    put_ptr(u->objects, UNIT_SEG_TUPLE + 16, 2);  /* ob_size */
    put_ptr(u->objects, UNIT_SEG_ITEMS + 16, 1);
    put_ptr(u->objects, UNIT_SEG_STR + 16, 7);    /* length */
    snprintf((char *)u->objects + UNIT_SEG_STR + 48, 8, "mod%04u",
             variant % 10000);
    /* a raw, non-pointer word in the code object (its "ob_size") */
    put_ptr(u->objects, UNIT_SEG_CODE + 16, 0x4141414141414141ull);

    u->objtab[0] = UNIT_SEG_CODE | CDS_OBJ_CODE;
    u->objtab[1] = UNIT_SEG_TUPLE | CDS_OBJ_TUPLE;
    u->objtab[2] = UNIT_SEG_STR | CDS_OBJ_STR;
    u->objtab[3] = UNIT_SEG_ITEMS | CDS_OBJ_TUPLE;
    u->reloc[0] = UNIT_SEG_SLOT_TUPLE;
    put_ptr(u->objects, UNIT_SEG_SLOT_TUPLE, addr + UNIT_SEG_TUPLE);
    u->reloc[1] = UNIT_SEG_SLOT_ITEMS;
    put_ptr(u->objects, UNIT_SEG_SLOT_ITEMS, addr + UNIT_SEG_ITEMS);
    u->frozen[0] = UNIT_SEG_SLOT_ITEMS;
    u->ext[0].slot = UNIT_SEG_SLOT_NONE;
    u->ext[0].index = CDS_EXT_NONE;
    put_ptr(u->objects, UNIT_SEG_SLOT_NONE, 0x900000ull);
    u->ext[1].slot = UNIT_SEG_SLOT_ONE;
    u->ext[1].index = CDS_EXT_SMALL_INT + (1 - CDS_EXT_INT_MIN);
    put_ptr(u->objects, UNIT_SEG_SLOT_ONE, 0x900100ull);
    u->reloc[2] = UNIT_SEG_SLOT_STR;
    put_ptr(u->objects, UNIT_SEG_SLOT_STR, addr + UNIT_SEG_STR);

    u->seg.objects = u->objects;
    u->seg.objects_size = UNIT_SEG_OBJECTS;
    u->seg.objtab = u->objtab;
    u->seg.nobjects = UNIT_ARRAY_SIZE(u->objtab);
    u->seg.root_off = UNIT_SEG_CODE;
    u->seg.reloc = u->reloc;
    u->seg.nreloc = UNIT_ARRAY_SIZE(u->reloc);
    u->seg.ext = u->ext;
    u->seg.next = UNIT_ARRAY_SIZE(u->ext);
    u->seg.frozen = u->frozen;
    u->seg.nfrozen = UNIT_ARRAY_SIZE(u->frozen);
    /* never NULL, even when empty: see test_writer_empty_lists_null */
    u->seg.shared = u->shared;
    if (npool != 0) {
        /* the slot holds 0 in the file (format.md 5.5) */
        u->shared[0].slot = UNIT_SEG_SLOT_POOL;
        u->shared[0].index = variant % npool;
        u->seg.nshared = 1;
    }
}

int
unit_writer_add(cds_writer *w, uint64_t base,
                const struct cds_writer_module *m, unsigned variant,
                uint32_t npool, cds_error *err)
{
    struct unit_segment u;
    unit_segment_init(&u, base + cds_writer_next_offset(w), variant, npool);
    return cds_writer_add(w, m, &u.seg, err);
}

void
unit_pool_init(struct unit_pool *p, uint32_t count)
{
    memset(p, 0, sizeof(*p));
    p->objects = calloc(count ? count : 1, UNIT_POOL_STRING);
    p->table = calloc(count ? count : 1, sizeof(uint32_t));
    assert_non_null(p->objects);
    assert_non_null(p->table);
    for (uint32_t i = 0; i < count; i++) {
        uint8_t *o = p->objects + (size_t)i * UNIT_POOL_STRING;
        uint32_t state = 0xe4; /* compact, ascii, ready, kind 1 */
        put_ptr(o, 0, 1ull << 40);                /* ob_refcnt */
        put_ptr(o, 8, 0x7e57000000000000ull);     /* ob_type */
        put_ptr(o, 16, 9);                        /* length */
        put_ptr(o, 24, UINT64_MAX);               /* hash: -1 */
        memcpy(o + 32, &state, 4);
        snprintf((char *)o + 48, 10, "pool%05u", i % 100000);
        p->table[i] = i * UNIT_POOL_STRING;
    }
    p->pool.objects = p->objects;
    p->pool.objects_size = count * UNIT_POOL_STRING;
    p->pool.table = p->table;
    p->pool.count = count;
}

void
unit_pool_clear(struct unit_pool *p)
{
    free(p->objects);
    free(p->table);
    memset(p, 0, sizeof(*p));
}

void
unit_seal_header(uint8_t *img)
{
    struct cds_disk_header *h = (struct cds_disk_header *)(void *)img;
    h->header_checksum = 0;
    h->header_checksum = cds_hash(h, sizeof(*h));
}

void
unit_seal_index(uint8_t *img)
{
    struct cds_disk_header *h = (struct cds_disk_header *)(void *)img;
    h->index_checksum = cds_hash(img + h->index_offset, h->index_size);
    unit_seal_header(img);
}

void
unit_seal_segment(uint8_t *img, uint32_t i)
{
    struct cds_disk_header *h = (struct cds_disk_header *)(void *)img;
    struct cds_disk_module *m =
        (struct cds_disk_module *)(void *)(img + h->entries_offset) + i;
    m->seg_checksum = cds_hash(img + m->seg_offset, m->seg_size);
    unit_seal_index(img);
}

void
unit_seal_pool(uint8_t *img)
{
    struct cds_disk_header *h = (struct cds_disk_header *)(void *)img;
    uint8_t *pool = img + h->pool_offset;
    uint64_t covered = cds_pool_covered(h);
    uint64_t nblocks = (covered + CDS_POOL_BLOCK - 1) / CDS_POOL_BLOCK;

    for (uint64_t b = 0; b < nblocks; b++) {
        uint64_t start = b * CDS_POOL_BLOCK;
        uint64_t len = covered - start < CDS_POOL_BLOCK ? covered - start
                                                         : CDS_POOL_BLOCK;
        uint64_t sum = cds_hash(pool + start, len);
        memcpy(pool + h->pool_sums_off + 8 * b, &sum, 8);
    }
    h->pool_sums_checksum = cds_hash(pool + h->pool_sums_off, 8 * nblocks);
    unit_seal_header(img);
}

void
unit_check_error(const cds_error *err, int rc)
{
    assert_status(err->status, rc);
    assert_true(err->line > 0);
    assert_true(err->message[0] != '\0');
    assert_null(strchr(err->message, '\n'));
}
