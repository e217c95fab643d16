/* SPDX-License-Identifier: MIT */
/* Unit tests of the archive writer (cds/writer.c).
 *
 * Each case gets its own temporary directory.  The writer's output is read
 * back through the reader (cds_archive_load on an exactly sized buffer)
 * and compared field by field with what was added: names, origins, search
 * paths, flags, source mtime and size, and every byte of every segment
 * list.  The atomicity cases check writer.c inv. 1 and 2: the destination
 * changes only by rename at finish, the temporary file says it is
 * unfinished, and destroy without finish leaves nothing behind. */
#include "unit.h"

#include "archive.h"
#include "checksum.h"
#include "writer.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct dir {
    char path[256];
    char dest[512];
    char base[64]; /* file name of dest, the prefix of its temp files */
};

static struct cds_disk_fingerprint fp;

static int
dir_setup(void **state)
{
    struct dir *d = calloc(1, sizeof(*d));
    assert_non_null(d);
    unit_fingerprint(&fp);
    unit_tmpdir_create(d->path, sizeof(d->path));
    snprintf(d->base, sizeof(d->base), "heap.img");
    snprintf(d->dest, sizeof(d->dest), "%s/%s", d->path, d->base);
    *state = d;
    return 0;
}

static int
dir_teardown(void **state)
{
    struct dir *d = *state;
    unit_tmpdir_remove(d->path);
    free(d);
    return 0;
}

/* Temp files of dest: "heap.img.tmp.XXXXXX". */
static int
count_tmp(const struct dir *d)
{
    char prefix[80];
    snprintf(prefix, sizeof(prefix), "%s.tmp.", d->base);
    return unit_count_prefix(d->path, prefix);
}

static bool
file_equals(const char *path, const void *data, size_t n)
{
    size_t have;
    uint8_t *p = unit_read_file(path, &have);
    bool same = have == n && memcmp(p, data, n) == 0;
    free(p);
    return same;
}

static const char old_contents[] = "the previous archive";

/* Load path into *img (caller frees) and a. */
static void
load_file(const char *path, cds_archive *a, uint8_t **img)
{
    cds_error err;
    size_t n;
    *img = unit_read_file(path, &n);
    memset(a, 0, sizeof(*a));
    assert_status(cds_archive_load(a, *img, n, &fp, &err), 0);
}

static const struct cds_writer_module mod_a = {"a", "/src/a.py", "/src", 0,
                                               1, 2, 5};
static const struct cds_writer_module mod_b = {"b", "/src/b.py", "/src", 0,
                                               3, 4, 6};

/* ------------------------------------------------------------------ */

static void
test_writer_finish_is_atomic(void **state)
{
    struct dir *d = *state;
    cds_writer *w = NULL;
    cds_error err;
    cds_archive a;
    uint8_t *img;
    struct stat st;
    char tmp[600] = "";

    unit_write_file(d->dest, old_contents, sizeof(old_contents));
    mode_t mask = umask(022);
    assert_status(cds_writer_create(&w, d->dest, UNIT_BASE, &fp, &err), 0);
    assert_non_null(w);
    assert_int_equal(count_tmp(d), 1);
    assert_true(file_equals(d->dest, old_contents, sizeof(old_contents)));
    assert_status(unit_writer_add(w, UNIT_BASE, &mod_a, 0, 0, &err), 0);
    assert_status(unit_writer_add(w, UNIT_BASE, &mod_b, 1, 0, &err), 0);
    assert_true(file_equals(d->dest, old_contents, sizeof(old_contents)));

    /* inv. 2: the temporary file is marked unfinished */
    {
        char prefix[80];
        snprintf(prefix, sizeof(prefix), "%s.tmp.", d->base);
        DIR *dp = opendir(d->path);
        struct dirent *e;
        assert_non_null(dp);
        while ((e = readdir(dp)) != NULL) {
            if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) {
                snprintf(tmp, sizeof(tmp), "%s/%s", d->path, e->d_name);
            }
        }
        closedir(dp);
        size_t n;
        uint8_t *p = unit_read_file(tmp, &n);
        assert_true(n > CDS_HEADER_SIZE);
        assert_int_equal(memcmp(p, CDS_MAGIC_INCOMPLETE, CDS_MAGIC_SIZE),
                         0);
        memset(&a, 0, sizeof(a));
        assert_status(cds_archive_load(&a, p, n, &fp, &err),
                      CDS_EINCOMPLETE);
        free(p);
    }

    assert_status(cds_writer_finish(w, &err), 0);
    assert_int_equal(count_tmp(d), 0);
    cds_writer_destroy(w);
    umask(mask);
    assert_int_equal(count_tmp(d), 0);
    assert_int_equal(stat(tmp, &st), -1);
    /* the new archive replaced the old file, readable by all (0666 less
     * the umask, not mkstemp's 0600) */
    assert_int_equal(stat(d->dest, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    load_file(d->dest, &a, &img);
    assert_int_equal(a.header->nmodules, 2);
    free(img);
}

static void
test_writer_destroy_without_finish(void **state)
{
    struct dir *d = *state;
    cds_writer *w = NULL;
    cds_error err;
    struct stat st;

    /* no destination before: none after */
    assert_status(cds_writer_create(&w, d->dest, UNIT_BASE, &fp, &err), 0);
    assert_status(unit_writer_add(w, UNIT_BASE, &mod_a, 0, 0, &err), 0);
    assert_int_equal(count_tmp(d), 1);
    cds_writer_destroy(w);
    assert_int_equal(count_tmp(d), 0);
    assert_int_equal(stat(d->dest, &st), -1);

    /* an existing destination is left as it was */
    unit_write_file(d->dest, old_contents, sizeof(old_contents));
    assert_status(cds_writer_create(&w, d->dest, UNIT_BASE, &fp, &err), 0);
    assert_status(unit_writer_add(w, UNIT_BASE, &mod_a, 0, 0, &err), 0);
    cds_writer_destroy(w);
    assert_int_equal(count_tmp(d), 0);
    assert_true(file_equals(d->dest, old_contents, sizeof(old_contents)));

    /* with nothing added */
    assert_status(cds_writer_create(&w, d->dest, UNIT_BASE, &fp, &err), 0);
    cds_writer_destroy(w);
    assert_int_equal(count_tmp(d), 0);
    assert_true(file_equals(d->dest, old_contents, sizeof(old_contents)));

    cds_writer_destroy(NULL);
}

/* format.md 3.1: a name added twice fails at finish (ECORRUPT); nothing
 * reaches the destination. */
static void
test_writer_duplicate_names(void **state)
{
    struct dir *d = *state;
    static const char *const names[] = {"a", "b", "pkg.mod", "c", "a"};
    cds_writer *w = NULL;
    cds_error err;
    int rc;

    unit_write_file(d->dest, old_contents, sizeof(old_contents));
    assert_status(cds_writer_create(&w, d->dest, UNIT_BASE, &fp, &err), 0);
    for (size_t i = 0; i < UNIT_ARRAY_SIZE(names); i++) {
        struct cds_writer_module m = {names[i], "/src/x.py", "/src", 0, 0,
                                      0, 0};
        assert_status(unit_writer_add(w, UNIT_BASE, &m, (unsigned)i, 0, &err),
                      0);
    }
    rc = cds_writer_finish(w, &err);
    assert_status(rc, CDS_ECORRUPT);
    unit_check_error(&err, rc);
    assert_true(file_equals(d->dest, old_contents, sizeof(old_contents)));
    cds_writer_destroy(w);
    assert_int_equal(count_tmp(d), 0);
    assert_true(file_equals(d->dest, old_contents, sizeof(old_contents)));

    /* the same name with another case, a prefix or an extension is not a
     * duplicate */
    static const char *const distinct[] = {"a", "A", "a.b", "a.", "ab"};
    assert_status(cds_writer_create(&w, d->dest, UNIT_BASE, &fp, &err), 0);
    for (size_t i = 0; i < UNIT_ARRAY_SIZE(distinct); i++) {
        struct cds_writer_module m = {distinct[i], "/src/x.py", "/src", 0,
                                      0, 0, 0};
        assert_status(unit_writer_add(w, UNIT_BASE, &m, (unsigned)i, 0, &err),
                      0);
    }
    assert_status(cds_writer_finish(w, &err), 0);
    cds_writer_destroy(w);
}

/* Many modules, then one of them again at the end. */
static void
test_writer_duplicate_among_many(void **state)
{
    struct dir *d = *state;
    cds_writer *w = NULL;
    cds_error err;
    char name[32];

    assert_status(cds_writer_create(&w, d->dest, UNIT_BASE, &fp, &err), 0);
    for (unsigned i = 0; i <= 1000; i++) {
        snprintf(name, sizeof(name), "mod%u", i == 1000 ? 517 : i);
        struct cds_writer_module m = {name, "/src/x.py", "/src", 0, 0, 0, 0};
        assert_status(unit_writer_add(w, UNIT_BASE, &m, i, 0, &err), 0);
    }
    assert_status(cds_writer_finish(w, &err), CDS_ECORRUPT);
    assert_non_null(strstr(err.message, "mod517"));
    cds_writer_destroy(w);
    assert_int_equal(count_tmp(d), 0);
    struct stat st;
    assert_int_equal(stat(d->dest, &st), -1);
}

static void
check_segment(const cds_archive *a, uint32_t ix, const struct unit_segment *u)
{
    const struct cds_disk_module *m = &a->modules[ix];
    const uint8_t *seg = a->data + m->seg_offset;

    assert_int_equal(m->seg_offset % CDS_SEGMENT_ALIGN, 0);
    assert_int_equal(m->seg_checksum, cds_hash(seg, m->seg_size));
    assert_int_equal(m->objects_size, u->seg.objects_size);
    assert_int_equal(m->root_off, u->seg.root_off);
    assert_memory_equal(seg, u->objects, u->seg.objects_size);
#define LIST(field, count, elem)                                             \
    assert_int_equal(m->count, u->seg.count);                               \
    assert_memory_equal(seg + m->field##_off, u->field,                     \
                        (size_t)u->seg.count * (elem))
    LIST(objtab, nobjects, 4);
    LIST(reloc, nreloc, 4);
    LIST(ext, next, sizeof(struct cds_disk_ext));
    LIST(frozen, nfrozen, 4);
#undef LIST
    /* format.md 5.4: no interned strings in a segment */
    assert_int_equal(m->nintern, 0);
    assert_int_equal(m->nrefs, 0);
    assert_int_equal(m->write_size, u->seg.write_size);
}

/* format.md 1.4, 2, 3, 3.3: the file as written. */
static void
check_layout(const cds_archive *a)
{
    const struct cds_disk_header *h = a->header;
    uint64_t end = h->segments_offset;
    uint32_t next_string = 0;

    assert_int_equal(h->file_size, h->index_offset + h->index_size);
    assert_int_equal(h->segments_size % CDS_SEGMENT_ALIGN, 0);
    assert_int_equal(h->index_offset % CDS_SEGMENT_ALIGN, 0);
    assert_int_equal(h->slots_offset, h->index_offset);
    assert_int_equal(h->strings_offset + h->strings_size, h->file_size);
    for (uint32_t i = 0; i < h->nmodules; i++) {
        const struct cds_disk_module *m = &a->modules[i];
        /* blocks in entry order, zero padding between them */
        assert_true(m->seg_offset >= end);
        for (uint64_t b = end; b < m->seg_offset; b++) {
            assert_int_equal(a->data[b], 0);
        }
        assert_int_equal(m->objtab_off, m->objects_size);
        end = m->seg_offset + m->seg_size;
        /* name, origin, search of each entry, in entry order, unshared */
        assert_int_equal(m->name_off, next_string);
        assert_int_equal(m->origin_off, m->name_off + m->name_len + 1);
        assert_int_equal(m->search_off, m->origin_off + m->origin_len + 1);
        next_string = m->search_off + m->search_len + 1;
    }
    assert_int_equal(next_string, h->strings_size);
    for (uint64_t b = end; b < h->segments_offset + h->segments_size; b++) {
        assert_int_equal(a->data[b], 0);
    }
    /* every slot names an entry once */
    uint32_t seen = 0;
    for (uint32_t s = 0; s < h->nslots; s++) {
        seen += a->slots[s] != 0;
    }
    assert_int_equal(seen, h->nmodules);
}

static void
test_writer_round_trip(void **state)
{
    struct dir *d = *state;
    static const struct cds_writer_module mods[] = {
        {"a", "/src/a.py", "/src", 0, 0, 0, 0},
        {"pkg", "/src/pkg/__init__.py", "/src", CDS_MODULE_PACKAGE,
         INT64_MIN, UINT64_MAX, UINT64_MAX},
        {"pkg.caf\xc3\xa9", "/src dir/pkg/caf\xc3\xa9.py", "/src dir/pkg", 0,
         -1, 1, 1},
        {"big", "/b.py", "", 0, INT64_MAX, 123456789012345ull, 0x123456789abcdef0ull},
        {"recent", "/r.py", "/", CDS_MODULE_PACKAGE,
         1700000000123456789ll, 4096, 42},
    };
    enum { N = UNIT_ARRAY_SIZE(mods) };
    struct unit_segment segs[N];
    uint64_t offsets[N];
    cds_writer *w = NULL;
    cds_error err;
    cds_archive a;
    uint8_t *img;
    struct timespec t0, t1;

    clock_gettime(CLOCK_REALTIME, &t0);
    assert_status(cds_writer_create(&w, d->dest, UNIT_BASE, &fp, &err), 0);
    /* blocks start on pages (format.md 4) */
    assert_int_equal(cds_writer_next_offset(w), CDS_SEGMENT_PAGE);
    for (unsigned i = 0; i < N; i++) {
        offsets[i] = cds_writer_next_offset(w);
        assert_int_equal(offsets[i] % CDS_SEGMENT_PAGE, 0);
        unit_segment_init(&segs[i], UNIT_BASE + offsets[i], i, 0);
        assert_status(cds_writer_add(w, &mods[i], &segs[i].seg, &err), 0);
        assert_true(cds_writer_next_offset(w) > offsets[i]);
    }
    assert_status(cds_writer_finish(w, &err), 0);
    cds_writer_destroy(w);
    clock_gettime(CLOCK_REALTIME, &t1);

    load_file(d->dest, &a, &img);
    const struct cds_disk_header *h = a.header;
    assert_int_equal(memcmp(h->magic, CDS_MAGIC, CDS_MAGIC_SIZE), 0);
    assert_int_equal(h->format_version, CDS_FORMAT_VERSION);
    assert_int_equal(h->header_size, CDS_HEADER_SIZE);
    assert_int_equal(h->file_size, a.size);
    assert_int_equal(h->base_address, UNIT_BASE);
    assert_memory_equal(&h->fingerprint, &fp, sizeof(fp));
    /* not assert_in_range: deprecated in CMocka 2 (Debian unstable) */
    assert_true(h->created_ns >= (uint64_t)t0.tv_sec * 1000000000ull +
                                     (uint64_t)t0.tv_nsec &&
                h->created_ns <= (uint64_t)t1.tv_sec * 1000000000ull +
                                     (uint64_t)t1.tv_nsec);
    assert_int_equal(h->segments_offset, CDS_HEADER_SIZE);
    assert_int_equal(h->nmodules, N);
    assert_true(h->nslots >= 2 * N);
    for (uint32_t i = 0; i < N; i++) {
        uint32_t ix;
        const struct cds_disk_module *m;
        assert_status(cds_archive_find(&a, mods[i].name,
                                       strlen(mods[i].name), &ix),
                      0);
        assert_int_equal(ix, i);
        m = &a.modules[ix];
        assert_string_equal(cds_module_name(&a, ix), mods[i].name);
        assert_string_equal(cds_module_origin(&a, ix), mods[i].origin);
        assert_string_equal(cds_module_search(&a, ix), mods[i].search);
        assert_int_equal(m->name_len, strlen(mods[i].name));
        assert_int_equal(m->name_hash,
                         cds_hash(mods[i].name, strlen(mods[i].name)));
        assert_int_equal(m->flags, mods[i].flags);
        assert_true(m->source_mtime_ns == mods[i].source_mtime_ns);
        assert_true(m->source_size == mods[i].source_size);
        assert_true(m->source_hash == mods[i].source_hash);
        assert_int_equal(m->seg_offset, offsets[i]);
        check_segment(&a, ix, &segs[i]);
        assert_status(cds_segment_validate(&a, ix, &err), 0);
    }
    check_layout(&a);
    free(img);
}

static void
test_writer_rejects_bad_input(void **state)
{
    struct dir *d = *state;
    cds_writer *w = (cds_writer *)(uintptr_t)1;
    cds_error err;
    char path[600], name[CDS_MAX_NAME + 2];
    cds_archive a;
    uint8_t *img;
    struct unit_segment u;

    /* base not page aligned: nothing created */
    assert_status(cds_writer_create(&w, d->dest, UNIT_BASE + 8, &fp, &err),
                  CDS_ECORRUPT);
    unit_check_error(&err, CDS_ECORRUPT);
    assert_null(w);
    assert_int_equal(count_tmp(d), 0);
    /* a directory that does not exist */
    snprintf(path, sizeof(path), "%s/no/such/dir/heap.img", d->path);
    w = (cds_writer *)(uintptr_t)1;
    assert_status(cds_writer_create(&w, path, UNIT_BASE, &fp, &err),
                  CDS_EIO);
    unit_check_error(&err, CDS_EIO);
    assert_null(w);

    assert_status(cds_writer_create(&w, d->dest, UNIT_BASE, &fp, &err), 0);
    struct cds_writer_module m = mod_a;
    m.name = "";
    assert_status(unit_writer_add(w, UNIT_BASE, &m, 0, 0, &err), CDS_ECORRUPT);
    memset(name, 'n', sizeof(name));
    name[CDS_MAX_NAME + 1] = '\0';
    m.name = name;
    assert_status(unit_writer_add(w, UNIT_BASE, &m, 0, 0, &err), CDS_ECORRUPT);
    name[CDS_MAX_NAME] = '\0'; /* the longest accepted */
    assert_status(unit_writer_add(w, UNIT_BASE, &m, 0, 0, &err), 0);
    m.name = "seg";
    unit_segment_init(&u, UNIT_BASE + cds_writer_next_offset(w), 0, 0);
    u.seg.objects_size = UNIT_SEG_OBJECTS - 4;
    assert_status(cds_writer_add(w, &m, &u.seg, &err), CDS_ECORRUPT);
    unit_segment_init(&u, UNIT_BASE + cds_writer_next_offset(w), 0, 0);
    u.seg.root_off = u.seg.objects_size;
    assert_status(cds_writer_add(w, &m, &u.seg, &err), CDS_ECORRUPT);
    /* the writer is still usable: only the accepted modules are in */
    assert_status(unit_writer_add(w, UNIT_BASE, &mod_b, 1, 0, &err), 0);
    assert_status(cds_writer_finish(w, &err), 0);
    cds_writer_destroy(w);
    load_file(d->dest, &a, &img);
    assert_int_equal(a.header->nmodules, 2);
    uint32_t ix;
    assert_status(cds_archive_find(&a, name, CDS_MAX_NAME, &ix), 0);
    assert_status(cds_archive_find(&a, "b", 1, &ix), 0);
    assert_status(cds_archive_find(&a, "seg", 3, &ix), CDS_ENOTFOUND);
    for (uint32_t i = 0; i < 2; i++) {
        assert_status(cds_segment_validate(&a, i, &err), 0);
    }
    free(img);
}

static void
test_writer_empty_archive(void **state)
{
    struct dir *d = *state;
    cds_writer *w = NULL;
    cds_error err;
    cds_archive a;
    uint8_t *img;
    uint32_t ix;

    assert_status(cds_writer_create(&w, d->dest, UNIT_BASE, &fp, &err), 0);
    assert_status(cds_writer_finish(w, &err), 0);
    cds_writer_destroy(w);
    load_file(d->dest, &a, &img);
    assert_int_equal(a.header->nmodules, 0);
    assert_int_equal(a.header->segments_size, 0);
    assert_status(cds_archive_find(&a, "a", 1, &ix), CDS_ENOTFOUND);
    free(img);
}

/* format.md 4.1: pool objects, offset table, block checksums and their
 * checksum, between the last segment and the index. */
static void
check_pool(const cds_archive *a, const struct cds_pool *want)
{
    const struct cds_disk_header *h = a->header;
    const uint8_t *pool = a->data + h->pool_offset;
    uint64_t seg_end = h->segments_offset + h->segments_size;

    assert_int_equal(h->pool_block_size, CDS_POOL_BLOCK);
    assert_int_equal(h->pool_offset, seg_end);
    assert_int_equal(h->pool_offset % CDS_SEGMENT_ALIGN, 0);
    assert_int_equal(h->index_offset,
                     (h->pool_offset + h->pool_size + 63) / 64 * 64);
    for (uint64_t b = h->pool_offset + h->pool_size; b < h->index_offset;
         b++) {
        assert_int_equal(a->data[b], 0);
    }
    if (want == NULL || want->count == 0) {
        assert_int_equal(h->pool_count, 0);
        assert_int_equal(h->pool_size, 0);
        assert_int_equal(h->pool_objects_size, 0);
        assert_int_equal(h->pool_table_off, 0);
        assert_int_equal(h->pool_sums_off, 0);
        assert_int_equal(h->pool_sums_checksum, 0);
        assert_int_equal(h->pool_early_count, 0);
        return;
    }
    uint64_t covered = want->objects_size + 4ull * want->count +
                       4ull * want->early_count;
    uint64_t nblocks = (covered + CDS_POOL_BLOCK - 1) / CDS_POOL_BLOCK;
    assert_int_equal(h->pool_count, want->count);
    assert_int_equal(h->pool_objects_size, want->objects_size);
    assert_int_equal(h->pool_table_off, want->objects_size);
    assert_int_equal(h->pool_sums_off, (covered + 7) / 8 * 8);
    assert_int_equal(h->pool_size, h->pool_sums_off + 8 * nblocks);
    assert_memory_equal(pool, want->objects, want->objects_size);
    assert_memory_equal(pool + h->pool_table_off, want->table,
                        4ull * want->count);
    assert_int_equal(h->pool_early_count, want->early_count);
    if (want->early_count != 0) {
        assert_memory_equal(pool + h->pool_table_off + 4ull * want->count,
                            want->early, 4ull * want->early_count);
    }
    for (uint64_t b = covered; b < h->pool_sums_off; b++) {
        assert_int_equal(pool[b], 0);
    }
    for (uint64_t b = 0; b < nblocks; b++) {
        uint64_t start = b * CDS_POOL_BLOCK, sum;
        uint64_t len = covered - start < CDS_POOL_BLOCK ? covered - start
                                                         : CDS_POOL_BLOCK;
        memcpy(&sum, pool + h->pool_sums_off + 8 * b, 8);
        assert_int_equal(sum, cds_hash(pool + start, len));
    }
    assert_int_equal(h->pool_sums_checksum,
                     cds_hash(pool + h->pool_sums_off, 8 * nblocks));
}

static void
test_writer_pool_round_trip(void **state)
{
    struct dir *d = *state;
    static const uint32_t counts[] = {1, 255, 600, 2000};
    cds_writer *w = NULL;
    cds_error err;
    cds_archive a;
    uint8_t *img;

    for (size_t k = 0; k < UNIT_ARRAY_SIZE(counts); k++) {
        struct unit_pool pool;
        unit_pool_init(&pool, counts[k]);
        /* format.md 4.1: every third string interned at activation */
        uint32_t *early = calloc(counts[k] / 3 + 1, sizeof(uint32_t));
        assert_non_null(early);
        for (uint32_t i = 0; i < counts[k]; i += 3) {
            early[pool.pool.early_count++] = counts[k] - 1 - i;
        }
        pool.pool.early = early;
        assert_status(cds_writer_create(&w, d->dest, UNIT_BASE, &fp, &err),
                      0);
        assert_status(unit_writer_add(w, UNIT_BASE, &mod_a, 0, counts[k],
                                      &err),
                      0);
        assert_status(unit_writer_add(w, UNIT_BASE, &mod_b, 7, counts[k],
                                      &err),
                      0);
        cds_writer_set_pool(w, &pool.pool);
        assert_status(cds_writer_finish(w, &err), 0);
        cds_writer_destroy(w);
        load_file(d->dest, &a, &img);
        check_pool(&a, &pool.pool);
        check_layout(&a);
        uint8_t *ok = calloc(cds_pool_nblocks(&a), 1);
        assert_non_null(ok);
        for (uint32_t i = 0; i < counts[k]; i++) {
            uint32_t off, extent;
            assert_status(cds_pool_find(&a, i, ok, &off, &extent, &err), 0);
            assert_int_equal(off, pool.table[i]);
        }
        const uint32_t *list;
        assert_status(cds_pool_early(&a, ok, &list, &err), 0);
        assert_non_null(list);
        assert_memory_equal(list, early, 4ull * pool.pool.early_count);
        for (uint32_t i = 0; i < 2; i++) {
            assert_status(cds_segment_validate(&a, i, &err), 0);
            assert_int_equal(a.modules[i].nshared, 1);
        }
        free(ok);
        free(img);
        free(early);
        unit_pool_clear(&pool);
    }
}

static void
test_writer_empty_pool(void **state)
{
    struct dir *d = *state;
    cds_writer *w = NULL;
    cds_error err;
    cds_archive a;
    uint8_t *img;
    struct unit_pool pool;

    /* no pool given */
    assert_status(cds_writer_create(&w, d->dest, UNIT_BASE, &fp, &err), 0);
    assert_status(unit_writer_add(w, UNIT_BASE, &mod_a, 0, 0, &err), 0);
    assert_status(cds_writer_finish(w, &err), 0);
    cds_writer_destroy(w);
    load_file(d->dest, &a, &img);
    check_pool(&a, NULL);
    free(img);
    /* a pool of no strings */
    unit_pool_init(&pool, 0);
    assert_status(cds_writer_create(&w, d->dest, UNIT_BASE, &fp, &err), 0);
    assert_status(unit_writer_add(w, UNIT_BASE, &mod_a, 0, 0, &err), 0);
    cds_writer_set_pool(w, &pool.pool);
    assert_status(cds_writer_finish(w, &err), 0);
    cds_writer_destroy(w);
    load_file(d->dest, &a, &img);
    check_pool(&a, NULL);
    free(img);
    unit_pool_clear(&pool);
}

static void
test_writer_malformed_pool(void **state)
{
    struct dir *d = *state;
    cds_writer *w = NULL;
    cds_error err;
    struct unit_pool pool;

    unit_write_file(d->dest, old_contents, sizeof(old_contents));
    unit_pool_init(&pool, 3);
    pool.pool.objects_size -= 4; /* not a multiple of 8 */
    assert_status(cds_writer_create(&w, d->dest, UNIT_BASE, &fp, &err), 0);
    assert_status(unit_writer_add(w, UNIT_BASE, &mod_a, 0, 3, &err), 0);
    cds_writer_set_pool(w, &pool.pool);
    assert_status(cds_writer_finish(w, &err), CDS_ECORRUPT);
    unit_check_error(&err, CDS_ECORRUPT);
    cds_writer_destroy(w);
    assert_int_equal(count_tmp(d), 0);
    assert_true(file_equals(d->dest, old_contents, sizeof(old_contents)));
    unit_pool_clear(&pool);
}

/* Regression (was a bug: cds/writer.c, write_segment): every list of struct cds_segment is
 * copied with memcpy(block + off, seg->list, size * count), also when the
 * count is 0 and the pointer NULL, which is how cds_heap_serialize leaves
 * the lists it has nothing for (no frozensets, no pool references: most
 * modules).  memcpy with a NULL source is undefined behaviour even for 0
 * bytes (C11 7.24.1p2; glibc declares it nonnull), so the compiler may
 * assume the pointer non-NULL, and the Sanitize build aborts on the first
 * module dumped ("null pointer passed as argument 2").  In other builds
 * this case passes: only UBSan sees it. */
static void
test_writer_empty_lists_null(void **state)
{
    struct dir *d = *state;
    cds_writer *w = NULL;
    cds_error err;
    cds_archive a;
    uint8_t *img;
    struct unit_segment u;

    assert_status(cds_writer_create(&w, d->dest, UNIT_BASE, &fp, &err), 0);
    unit_segment_init(&u, UNIT_BASE + cds_writer_next_offset(w), 0, 0);
    u.seg.reloc = NULL;
    u.seg.nreloc = 0;
    u.seg.ext = NULL;
    u.seg.next = 0;
    u.seg.frozen = NULL;
    u.seg.nfrozen = 0;
    u.seg.shared = NULL;
    u.seg.nshared = 0;
    assert_status(cds_writer_add(w, &mod_a, &u.seg, &err), 0);
    assert_status(cds_writer_finish(w, &err), 0);
    cds_writer_destroy(w);
    load_file(d->dest, &a, &img);
    assert_int_equal(a.modules[0].nreloc + a.modules[0].next +
                         a.modules[0].nfrozen + a.modules[0].nshared,
                     0);
    assert_status(cds_segment_validate(&a, 0, &err), 0);
    free(img);
}

/* inv. 1: a reader that mapped the old archive keeps it whole while a new
 * one replaces it; a new open sees the new one. */
static void
test_writer_replaces_mapped_archive(void **state)
{
    struct dir *d = *state;
    cds_writer *w = NULL;
    cds_error err;
    cds_archive old, cur;
    uint32_t ix;

    assert_status(cds_writer_create(&w, d->dest, UNIT_BASE, &fp, &err), 0);
    assert_status(unit_writer_add(w, UNIT_BASE, &mod_a, 0, 0, &err), 0);
    assert_status(cds_writer_finish(w, &err), 0);
    cds_writer_destroy(w);
    assert_status(cds_archive_open(&old, d->dest, CDS_OPEN_RELOCATE, &fp,
                                   &err),
                  0);

    assert_status(cds_writer_create(&w, d->dest, UNIT_BASE, &fp, &err), 0);
    assert_status(unit_writer_add(w, UNIT_BASE, &mod_b, 1, 0, &err), 0);
    assert_status(cds_writer_finish(w, &err), 0);
    cds_writer_destroy(w);

    assert_status(cds_archive_find(&old, "a", 1, &ix), 0);
    assert_status(cds_segment_validate(&old, ix, &err), 0);
    assert_status(cds_archive_find(&old, "b", 1, &ix), CDS_ENOTFOUND);
    assert_status(cds_archive_open(&cur, d->dest, CDS_OPEN_RELOCATE, &fp,
                                   &err),
                  0);
    assert_status(cds_archive_find(&cur, "a", 1, &ix), CDS_ENOTFOUND);
    assert_status(cds_archive_find(&cur, "b", 1, &ix), 0);
    assert_status(cds_segment_validate(&cur, ix, &err), 0);
    cds_archive_close(&cur);
    cds_archive_close(&old);
}

int
main(int argc, char **argv)
{
#define T(name) cmocka_unit_test_setup_teardown(name, dir_setup, dir_teardown)
    const struct CMUnitTest tests[] = {
        T(test_writer_finish_is_atomic),
        T(test_writer_destroy_without_finish),
        T(test_writer_duplicate_names),
        T(test_writer_duplicate_among_many),
        T(test_writer_round_trip),
        T(test_writer_rejects_bad_input),
        T(test_writer_empty_archive),
        T(test_writer_pool_round_trip),
        T(test_writer_empty_pool),
        T(test_writer_malformed_pool),
        T(test_writer_empty_lists_null),
        T(test_writer_replaces_mapped_archive),
    };
#undef T
    if (unit_select(argc, argv, tests, UNIT_ARRAY_SIZE(tests)) < 0) {
        return 2;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
