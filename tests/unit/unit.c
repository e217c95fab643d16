/* SPDX-License-Identifier: MIT */
/* Helpers shared by the unit test programs (see unit.h). */
#include "unit.h"

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
    fp->build_flags = CDS_BUILD_PIE;
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
unit_segment_init(struct unit_segment *u, uint64_t addr, unsigned variant)
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
    u->ext[1].index = CDS_EXT_SMALL_INT + (1 - CDS_SMALL_INT_MIN);
    put_ptr(u->objects, UNIT_SEG_SLOT_ONE, 0x900100ull);
    u->intern[0].object = UNIT_SEG_STR;
    u->intern[0].first_ref = 0;
    u->intern[0].nrefs = 1;
    u->refs[0] = UNIT_SEG_SLOT_STR;
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
    u->seg.intern = u->intern;
    u->seg.nintern = UNIT_ARRAY_SIZE(u->intern);
    u->seg.refs = u->refs;
    u->seg.nrefs = UNIT_ARRAY_SIZE(u->refs);
    u->seg.frozen = u->frozen;
    u->seg.nfrozen = UNIT_ARRAY_SIZE(u->frozen);
}

int
unit_writer_add(cds_writer *w, uint64_t base,
                const struct cds_writer_module *m, unsigned variant,
                cds_error *err)
{
    struct unit_segment u;
    unit_segment_init(&u, base + cds_writer_next_offset(w), variant);
    return cds_writer_add(w, m, &u.seg, err);
}

void
unit_check_error(const cds_error *err, int rc)
{
    assert_status(err->status, rc);
    assert_true(err->line > 0);
    assert_true(err->message[0] != '\0');
    assert_null(strchr(err->message, '\n'));
}
