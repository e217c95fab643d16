/* SPDX-License-Identifier: MIT */
/* Unit tests of the heap layer (cds/heap.c) in an embedded CPython.
 *
 * The group setup starts the interpreter the heap layer was built for
 * (isolated, without site) and loads heap_check.py, the comparisons, into
 * a namespace with a few C helpers.  A round trip compiles heap_sample.py,
 * serializes its code graph with cds_heap_serialize_pooled for the address
 * the writer will put it at (interned strings in an archive-wide pool, as
 * the import hook dumps, or, without a pool, kept in the segment), writes
 * an archive (after a first, small module, so that the segment is not at
 * the first offset), places the file in
 * memory (at its base with MAP_FIXED_NOREPLACE, in a malloc'd buffer, or
 * mapped by cds_archive_open: the last two relocate), validates the
 * segment and loads it.  The loaded objects are compared with the
 * originals in Python: types, values, the process's singletons, the
 * interpreter's interned strings, frozensets rebuilt, and the same results
 * when executed.  Images are never freed or unmapped: the objects in them
 * stay alive until exit (heap.h).  The group teardown finalizes the
 * interpreter with archived objects alive, which must be clean. */
#include "heap.h"

#include "unit.h"

#include "archive.h"
#include "writer.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

#ifndef UNIT_SOURCE_DIR
#error "UNIT_SOURCE_DIR: where heap_check.py and heap_sample.py are"
#endif

static struct {
    char dir[256];
    char path[512];
    struct cds_disk_fingerprint fp;
    PyObject *ns;    /* heap_check.py's namespace */
    char *sample;    /* heap_sample.py's source */
    /* every image loaded, for in_archive() */
    struct {
        uintptr_t start, end;
    } images[64];
    unsigned nimages;
    /* every struct loaded, kept reachable (LeakSanitizer) and never
     * freed */
    struct loaded *loaded[64];
    unsigned nloaded;
} G;

/* ------------------------------------------------------------------ */
/* C helpers for heap_check.py */

static PyObject *
c_in_archive(PyObject *self, PyObject *o)
{
    (void)self;
    for (unsigned i = 0; i < G.nimages; i++) {
        if ((uintptr_t)o >= G.images[i].start &&
            (uintptr_t)o < G.images[i].end) {
            Py_RETURN_TRUE;
        }
    }
    Py_RETURN_FALSE;
}

static PyObject *
c_str_layout(PyObject *self, PyObject *s)
{
    (void)self;
    if (!PyUnicode_Check(s)) {
        PyErr_SetString(PyExc_TypeError, "str_layout: not a str");
        return NULL;
    }
    return Py_BuildValue("(iiiii)", (int)PyUnicode_KIND(s),
                         (int)PyUnicode_IS_ASCII(s),
                         (int)PyUnicode_IS_COMPACT(s),
                         (int)PyUnicode_IS_READY(s),
                         (int)PyUnicode_CHECK_INTERNED(s));
}

static PyObject *
c_refcnt(PyObject *self, PyObject *o)
{
    (void)self;
    return PyLong_FromSsize_t(Py_REFCNT(o));
}

static PyMethodDef c_methods[] = {
    {"in_archive", c_in_archive, METH_O, "is o inside a loaded image"},
    {"str_layout", c_str_layout, METH_O,
     "(kind, ascii, compact, ready, interned)"},
    {"refcnt", c_refcnt, METH_O, "ob_refcnt"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef c_module = {
    PyModuleDef_HEAD_INIT, "_c", "test_heap helpers", -1, c_methods,
    NULL, NULL, NULL, NULL,
};

/* ------------------------------------------------------------------ */
/* Python plumbing */

static char *
read_text(const char *name)
{
    char path[1024];
    size_t n;
    snprintf(path, sizeof(path), "%s/%s", UNIT_SOURCE_DIR, name);
    uint8_t *p = unit_read_file(path, &n);
    char *s = malloc(n + 1);
    assert_non_null(s);
    memcpy(s, p, n);
    s[n] = '\0';
    free(p);
    return s;
}

/* Fail the case with the Python traceback. */
static void
fail_python(const char *what)
{
    if (PyErr_Occurred()) {
        PyErr_Print();
    }
    print_error("%s failed\n", what);
    fail();
}

/* Call heap_check.fn(*args); steals args; returns a new reference. */
static PyObject *
pycall(const char *fn, PyObject *args)
{
    if (args == NULL) {
        fail_python("building arguments");
    }
    PyObject *f = PyDict_GetItemString(G.ns, fn);
    assert_non_null(f);
    PyObject *r = PyObject_CallObject(f, args);
    Py_DECREF(args);
    if (r == NULL) {
        fail_python(fn);
    }
    return r;
}

static void
pycheck(const char *fn, PyObject *args)
{
    Py_DECREF(pycall(fn, args));
}

static PyObject *
pyeval(const char *expr)
{
    PyObject *r = PyRun_String(expr, Py_eval_input, G.ns, G.ns);
    if (r == NULL) {
        fail_python(expr);
    }
    return r;
}

static PyObject *
compile_text(const char *src, const char *filename)
{
    PyObject *code = Py_CompileString(src, filename, Py_file_input);
    if (code == NULL) {
        fail_python(filename);
    }
    return code;
}

static PyObject *
compile_sample(void)
{
    return compile_text(G.sample, "/src/heap_sample.py");
}

/* ------------------------------------------------------------------ */
/* Archives of code objects */

/* The first module of every test archive: one ASCII and one non-ASCII
 * identifier for the pool ("café"). */
#define FILLER_SRC "FILLER = 'the first module'\ncaf\xc3\xa9 = FILLER * 2\n"

typedef void tamper_fn(cds_heap_segment *seg);

struct report {
    uint32_t counts[CDS_OBJ_NKINDS];
    uint32_t nfrozensets, nfrozen, nintern, next, nreloc, nshared;
};

static void
add_code(cds_writer *w, cds_heap_pool *pool, const char *name,
         PyObject *code, tamper_fn *tamper, struct report *report)
{
    cds_heap_segment seg;
    cds_error err;
    char origin[256];
    uint64_t addr = UNIT_BASE + cds_writer_next_offset(w);
    int rc = cds_heap_serialize_pooled(code, addr, pool, &seg, &err);

    if (rc < 0) {
        print_error("serialize %s: %s\n", name, err.message);
    }
    assert_status(rc, 0);
    if (tamper != NULL) {
        tamper(&seg);
    }
    /* heap.c leaves the lists it has nothing for NULL, and writer.c hands
     * them to memcpy (UB that UBSan aborts on: test_writer_empty_lists_null
     * has the bug).  Give it empty lists instead, so the rest of this
     * program still runs under the Sanitize build. */
    static const uint32_t none[1];
    static const struct cds_disk_ext no_ext[1];
    static const struct cds_disk_intern no_intern[1];
    static const struct cds_disk_shared no_shared[1];
#define NOT_NULL(list, empty)                                               \
    if (seg.seg.list == NULL) {                                             \
        seg.seg.list = (empty);                                             \
    }
    NOT_NULL(reloc, none);
    NOT_NULL(ext, no_ext);
    NOT_NULL(intern, no_intern);
    NOT_NULL(refs, none);
    NOT_NULL(frozen, none);
    NOT_NULL(shared, no_shared);
#undef NOT_NULL
    if (report != NULL) {
        memcpy(report->counts, seg.counts, sizeof(report->counts));
        report->nfrozensets = seg.nfrozensets;
        report->nfrozen = seg.seg.nfrozen;
        report->nintern = seg.seg.nintern;
        report->next = seg.seg.next;
        report->nreloc = seg.seg.nreloc;
        report->nshared = seg.seg.nshared;
    }
    snprintf(origin, sizeof(origin), "/src/%s.py", name);
    struct cds_writer_module m = {name, origin, "/src", 0, 1, 2, 3};
    assert_status(cds_writer_add(w, &m, &seg.seg, &err), 0);
    cds_heap_segment_clear(&seg);
}

/* Write path: first (FILLER_SRC when NULL) as "filler", then code as
 * "heap_sample"; interned strings in a pool (as the import hook dumps) or
 * kept in the segments (format.md 5.4). */
static void
build_archive_at(const char *path, PyObject *first, PyObject *code,
                 bool pooled, tamper_fn *tamper, struct report *report)
{
    cds_writer *w = NULL;
    cds_heap_pool *pool = NULL;
    struct cds_pool view;
    cds_error err;
    PyObject *filler =
        first ? Py_NewRef(first) : compile_text(FILLER_SRC, "/src/filler.py");

    if (pooled) {
        assert_status(cds_heap_pool_create(&pool, &err), 0);
    }
    unlink(path);
    assert_status(cds_writer_create(&w, path, UNIT_BASE, &G.fp, &err), 0);
    add_code(w, pool, "filler", filler, NULL, NULL);
    add_code(w, pool, "heap_sample", code, tamper, report);
    if (pooled) {
        cds_heap_pool_view(pool, &view);
        cds_writer_set_pool(w, &view);
    }
    assert_status(cds_writer_finish(w, &err), 0);
    cds_writer_destroy(w);
    cds_heap_pool_destroy(pool);
    Py_DECREF(filler);
}

static void
build_archive(PyObject *code, bool pooled, tamper_fn *tamper,
              struct report *report)
{
    build_archive_at(G.path, NULL, code, pooled, tamper, report);
}

enum place {
    RELOCATED, /* read into a malloc'd buffer */
    AT_BASE,   /* mapped at the writer's base: nothing to relocate */
    MAPPED,    /* cds_archive_open(WRITABLE | RELOCATE), as the hook does */
};

/* A loaded archive.  Allocated and never freed: the objects live in the
 * image and refer to it, and heap.c keeps per-archive pool state keyed by
 * the cds_archive's address (see test_heap_pool_state_follows_the_archive),
 * so no two archives of a test share one. */
struct loaded {
    cds_archive a;
    PyObject *filler;
    PyObject *sample;
};

static int
try_load_module(cds_archive *a, const char *name, PyObject **code,
                cds_error *err)
{
    uint32_t ix;
    int rc;

    *code = NULL;
    assert_status(cds_archive_find(a, name, strlen(name), &ix), 0);
    rc = cds_segment_validate(a, ix, err);
    if (rc == 0) {
        rc = cds_heap_load(a, ix, code, err);
    }
    if (rc < 0) {
        unit_check_error(err, rc);
    }
    return rc;
}

static void
load_module(cds_archive *a, const char *name, PyObject **code)
{
    cds_error err;
    int rc = try_load_module(a, name, code, &err);
    if (rc < 0) {
        print_error("load %s: %s\n", name, err.message);
    }
    assert_status(rc, 0);
    assert_non_null(*code);
    assert_true(PyCode_Check(*code));
}

static void
register_image(const void *data, size_t n)
{
    assert_true(G.nimages < UNIT_ARRAY_SIZE(G.images));
    G.images[G.nimages].start = (uintptr_t)data;
    G.images[G.nimages].end = (uintptr_t)data + n;
    G.nimages++;
}

/* Load the index of an image in memory (modules not loaded yet). */
static struct loaded *
new_loaded(void)
{
    struct loaded *l = calloc(1, sizeof(*l));
    assert_non_null(l);
    assert_true(G.nloaded < UNIT_ARRAY_SIZE(G.loaded));
    G.loaded[G.nloaded++] = l;
    return l;
}

static struct loaded *
load_image(uint8_t *data, size_t n)
{
    cds_error err;
    struct loaded *l = new_loaded();

    assert_status(cds_archive_load(&l->a, data, n, &G.fp, &err), 0);
    register_image(data, n);
    return l;
}

/* Place path in memory as asked and load both modules.  NULL when the
 * base is taken (the caller skips).  The image is never released. */
static struct loaded *
load_archive_at(const char *path, enum place where)
{
    cds_error err;
    struct loaded *l;
    size_t n = 0;

    if (where == RELOCATED) {
        uint8_t *data = unit_read_file(path, &n);
        l = load_image(data, n);
    }
    else if (where == AT_BASE) {
        struct stat st;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(fstat(fd, &st), 0);
        n = (size_t)st.st_size;
        void *p = mmap((void *)(uintptr_t)UNIT_BASE, n,
                       PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_FIXED_NOREPLACE, fd, 0);
        close(fd);
        if (p == MAP_FAILED || (uintptr_t)p != UNIT_BASE) {
            if (p != MAP_FAILED) {
                munmap(p, n);
            }
            return NULL;
        }
        l = load_image(p, n);
    }
    else {
        l = new_loaded();
        assert_status(cds_archive_open(&l->a, path,
                                       CDS_OPEN_WRITABLE | CDS_OPEN_RELOCATE,
                                       &G.fp, &err),
                      0);
        register_image(l->a.data, l->a.size);
    }
    assert_int_equal(cds_archive_at_base(&l->a), where == AT_BASE);
    load_module(&l->a, "filler", &l->filler);
    load_module(&l->a, "heap_sample", &l->sample);
    return l;
}

static struct loaded *
load_archive(enum place where)
{
    return load_archive_at(G.path, where);
}

/* Pool views of a file image (format.md 4.1). */
static struct cds_disk_header *
img_header(uint8_t *img)
{
    return (struct cds_disk_header *)(void *)img;
}

static uint8_t *
pool_string(uint8_t *img, uint32_t i)
{
    struct cds_disk_header *h = img_header(img);
    uint32_t off;
    memcpy(&off, img + h->pool_offset + h->pool_table_off + 4ull * i, 4);
    return img + h->pool_offset + off;
}

/* The pool index of the string whose UTF-8 text is text (ASCII: data at
 * 48; non-ASCII latin-1: data at 72). */
static uint32_t
pool_index_of(uint8_t *img, const char *text, bool ascii)
{
    for (uint32_t i = 0; i < img_header(img)->pool_count; i++) {
        const char *data =
            (const char *)pool_string(img, i) + (ascii ? 48 : 72);
        if (strcmp(data, text) == 0) {
            return i;
        }
    }
    print_error("no pool string %s\n", text);
    fail();
    return 0;
}

/* ------------------------------------------------------------------ */
/* Fixtures */

static int
group_setup(void **state)
{
    PyConfig config;
    PyStatus status;
    cds_error err;

    (void)state;
    /* isolated (no PYTHON* variables, no user site) and no site at all:
     * an installed pycds.pth must not activate the hook in here */
    PyConfig_InitIsolatedConfig(&config);
    config.site_import = 0;
    config.install_signal_handlers = 0;
    config.write_bytecode = 0;
    status = Py_InitializeFromConfig(&config);
    PyConfig_Clear(&config);
    if (PyStatus_Exception(status)) {
        print_error("Py_InitializeFromConfig: %s\n",
                    status.err_msg ? status.err_msg : "?");
        return -1;
    }
    if (cds_heap_check_runtime(&err) < 0 ||
        cds_heap_fingerprint(&G.fp, &err) < 0) {
        print_error("%s\n", err.message);
        return -1;
    }
    unit_tmpdir_create(G.dir, sizeof(G.dir));
    snprintf(G.path, sizeof(G.path), "%s/heap.img", G.dir);
    G.sample = read_text("heap_sample.py");

    PyObject *c = PyModule_Create(&c_module);
    char *src = read_text("heap_check.py");
    G.ns = PyDict_New();
    if (c == NULL || G.ns == NULL ||
        PyDict_SetItemString(G.ns, "_c", c) < 0 ||
        PyDict_SetItemString(G.ns, "__builtins__", PyEval_GetBuiltins()) <
            0) {
        PyErr_Print();
        return -1;
    }
    Py_DECREF(c);
    PyObject *code = Py_CompileString(src, UNIT_SOURCE_DIR "/heap_check.py",
                                      Py_file_input);
    free(src);
    PyObject *r = code ? PyEval_EvalCode(code, G.ns, G.ns) : NULL;
    Py_XDECREF(code);
    if (r == NULL) {
        PyErr_Print();
        return -1;
    }
    Py_DECREF(r);
    return 0;
}

static int
group_teardown(void **state)
{
    (void)state;
    Py_CLEAR(G.ns);
    free(G.sample);
    unit_tmpdir_remove(G.dir);
    /* archived objects are alive (module code, interned strings in the
     * interpreter's dict): finalization must neither free nor crash on
     * them (DESIGN.md invariants) */
    if (Py_FinalizeEx() != 0) {
        print_error("Py_FinalizeEx failed\n");
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Round trips */

static void
round_trip(enum place where, bool pooled)
{
    struct report rep;
    struct loaded *l;
    PyObject *orig = compile_sample();

    build_archive(orig, pooled, NULL, &rep);
    if ((l = load_archive(where)) == NULL) {
        Py_DECREF(orig);
        skip();
    }
    /* the segment holds every kind (frozensets as tuples of items) */
    for (unsigned k = 0; k < CDS_OBJ_NKINDS; k++) {
        assert_true(rep.counts[k] > 0);
    }
    assert_int_equal(rep.nfrozensets, 4);
    assert_int_equal(rep.nfrozen, 4);
    assert_true(rep.next > 0 && rep.nreloc > 0);
    /* interned strings: in the pool (5.5) or kept in the segment (5.4) */
    assert_true(pooled ? rep.nshared > 50 : rep.nintern > 50);
    assert_int_equal(pooled ? rep.nintern : rep.nshared, 0);
    assert_true(pooled ? l->a.header->pool_count > 50
                       : l->a.header->pool_count == 0);

    pycheck("check_round_trip",
            Py_BuildValue("(OO(sssssssssss))", orig, l->sample, "code", "str",
                          "bytes", "int", "float", "complex", "tuple",
                          "frozenset", "NoneType", "bool", "ellipsis"));
    PyObject *filler = compile_text(FILLER_SRC, "/src/filler.py");
    pycheck("deep_check", Py_BuildValue("(OO)", filler, l->filler));
    Py_DECREF(filler);
    Py_DECREF(orig);
}

static void
test_heap_round_trip_relocated(void **state)
{
    (void)state;
    round_trip(RELOCATED, true);
}

static void
test_heap_round_trip_at_base(void **state)
{
    (void)state;
    round_trip(AT_BASE, true);
}

static void
test_heap_round_trip_mapped(void **state)
{
    (void)state;
    round_trip(MAPPED, true);
}

static void
test_heap_round_trip_unpooled(void **state)
{
    (void)state;
    round_trip(RELOCATED, false);
}

static void
test_heap_round_trip_unpooled_at_base(void **state)
{
    (void)state;
    round_trip(AT_BASE, false);
}

/* None, True, False, Ellipsis, small ints, '', 1-char latin-1 str, b'',
 * 1-byte bytes and () come back as the process's own objects. */
static void
test_heap_singletons_are_the_processes(void **state)
{
    PyObject *orig = compile_sample();

    (void)state;
    build_archive(orig, true, NULL, NULL);
    struct loaded *l = load_archive(RELOCATED);
    pycheck("check_singletons", Py_BuildValue("(O)", l->sample));
    Py_DECREF(orig);
}

/* Interned names are the interpreter's interned objects (here: the ones
 * the original code, still alive, uses), from the pool or from the
 * segment. */
static void
test_heap_interned_names_are_the_interpreters(void **state)
{
    PyObject *orig = compile_sample();

    (void)state;
    for (int pooled = 1; pooled >= 0; pooled--) {
        build_archive(orig, pooled, NULL, NULL);
        struct loaded *l = load_archive(RELOCATED);
        pycheck("check_interned_names",
                Py_BuildValue("(OO)", orig, l->sample));
    }
    Py_DECREF(orig);
}

/* Regression (was a bug: cds/heap.c ext_index/ext_object, format.md 5.3): every 1-character
 * str below U+0100 is archived as the external CDS_EXT_LATIN1 + c and
 * loaded as PyUnicode_FromOrdinal(c), chr()'s cache.  On 3.11 that is not
 * the interned string for ASCII characters: the compiler's 1-character
 * names ('i', 'x', '_', ...) are interned objects distinct from chr(c)
 * (sys.intern('a') is not chr(97); format.md 5.3 assumes they are the
 * same).  So loaded code names 1-character locals, globals and attributes
 * with an uninterned string, against heap.c inv. 6: lookups still succeed
 * by string comparison, but identity with the interpreter's names is lost
 * (LOAD_ATTR_WITH_HINT/STORE_ATTR_WITH_HINT deoptimise on the pointer
 * mismatch, keyword arguments fall back to comparing strings).  Interning
 * the result of PyUnicode_FromOrdinal in ext_object fixes it without a
 * format change. */
static void
test_heap_one_char_names_interned(void **state)
{
    PyObject *orig = compile_sample();

    (void)state;
    for (int pooled = 1; pooled >= 0; pooled--) {
        build_archive(orig, pooled, NULL, NULL);
        struct loaded *l = load_archive(RELOCATED);
        pycheck("check_one_char_names",
                Py_BuildValue("(OO)", orig, l->sample));
    }
    Py_DECREF(orig);
}

/* Names no live object uses when the archive is loaded: the archived
 * strings (pool or segment) become the interned ones. */
static void
test_heap_new_names_interned_in_place(void **state)
{
    static const char *const srcs[2] = {
        "def cds_fresh_fn_5b1e(cds_fresh_arg_5b1e):\n"
        "    return cds_fresh_arg_5b1e.cds_fresh_attr_5b1e + "
        "cds_fresh_glob_5b1e\n",
        "def cds_fresh_fn_7c2f(cds_fresh_arg_7c2f):\n"
        "    return cds_fresh_arg_7c2f.cds_fresh_attr_7c2f + "
        "cds_fresh_glob_7c2f\n",
    };
    static const char *const ids[2] = {"5b1e", "7c2f"};

    (void)state;
    for (int k = 0; k < 2; k++) {
        PyObject *orig = compile_text(srcs[k], "/src/fresh.py");
        char names[4][32];
        build_archive(orig, k == 0, NULL, NULL);
        /* the only owner of those names goes: they leave the interned
         * dict */
        Py_DECREF(orig);
        struct loaded *l = load_archive(RELOCATED);
        snprintf(names[0], sizeof(names[0]), "cds_fresh_fn_%s", ids[k]);
        snprintf(names[1], sizeof(names[1]), "cds_fresh_arg_%s", ids[k]);
        snprintf(names[2], sizeof(names[2]), "cds_fresh_attr_%s", ids[k]);
        snprintf(names[3], sizeof(names[3]), "cds_fresh_glob_%s", ids[k]);
        pycheck("check_new_names",
                Py_BuildValue("(O[ssss])", l->sample, names[0], names[1],
                              names[2], names[3]));
    }
}

/* format.md 4.1: each interned string once for the whole archive, every
 * module's references resolved to the same object. */
static void
test_heap_pool_shared_across_modules(void **state)
{
    PyObject *one = compile_text(
        "shared_name_q1 = 1\n"
        "def shared_fn_q2(shared_arg_q3):\n"
        "    return shared_arg_q3 + shared_name_q1\n",
        "/src/one.py");
    PyObject *two = compile_text(
        "shared_name_q1 = 2\n"
        "def other_fn_q4(shared_arg_q3):\n"
        "    return shared_fn_q2(shared_arg_q3) + shared_name_q1\n",
        "/src/two.py");

    (void)state;
    build_archive_at(G.path, one, two, true, NULL, NULL);
    struct loaded *l = load_archive(RELOCATED);
    PyObject *n = pycall("check_shared",
                         Py_BuildValue("(OOOO)", one, two, l->filler,
                                       l->sample));
    assert_int_equal(PyLong_AsLong(n), l->a.header->pool_count);
    Py_DECREF(n);
    Py_DECREF(one);
    Py_DECREF(two);
}

/* format.md 6.4: a pool string's image is checked before the interpreter
 * sees it (the checksums re-sealed, so only the image is wrong). */
static void
set_state_bits(uint8_t *s, uint32_t clear, uint32_t set)
{
    uint32_t st;
    memcpy(&st, s + 32, 4);
    st = (st & ~clear) | set;
    memcpy(s + 32, &st, 4);
}

static void
put64(uint8_t *p, uint64_t v)
{
    memcpy(p, &v, 8);
}

static void
test_heap_pool_string_image_checked(void **state)
{
    enum {
        LEN0, LEN_HUGE, INTERNED, NOT_COMPACT, NOT_READY, KIND3,
        ASCII_KIND2, WSTR, NO_NUL, UTF8, UTF8_LEN, WSTR_LEN, NCASES
    };
    static const char *const what[NCASES] = {
        "length 0", "length past the extent", "interned state set",
        "not compact", "not ready", "kind 3", "ascii with kind 2",
        "wstr set", "no NUL", "utf8 set (non-ASCII)",
        "utf8_length set (non-ASCII)", "wstr_length set (non-ASCII)",
    };
    PyObject *orig = compile_sample();
    size_t n;

    (void)state;
    build_archive(orig, true, NULL, NULL);
    uint8_t *golden = unit_read_file(G.path, &n);
    uint32_t ascii = pool_index_of(golden, "FILLER", true);
    uint32_t latin = pool_index_of(golden, "caf\xe9", false);
    for (int c = 0; c < NCASES; c++) {
        uint8_t *img = unit_copy(golden, n);
        uint8_t *s = pool_string(img, c >= UTF8 ? latin : ascii);
        switch (c) {
        case LEN0: put64(s + 16, 0); break;
        case LEN_HUGE: put64(s + 16, 1000); break;
        case INTERNED: set_state_bits(s, 0, 1); break;
        case NOT_COMPACT: set_state_bits(s, 1u << 5, 0); break;
        case NOT_READY: set_state_bits(s, 1u << 7, 0); break;
        case KIND3: set_state_bits(s, 7u << 2, 3u << 2); break;
        case ASCII_KIND2: set_state_bits(s, 7u << 2, 2u << 2); break;
        case WSTR: put64(s + 40, 0x1000); break;
        case NO_NUL: s[48 + 6] = 'x'; break; /* after "FILLER" */
        case UTF8: put64(s + 56, 0x1000); break;
        case UTF8_LEN: put64(s + 48, 4); break;
        case WSTR_LEN: put64(s + 64, 4); break;
        }
        unit_seal_pool(img);
        struct loaded *l = load_image(img, n);
        PyObject *code = NULL;
        cds_error err;
        int rc = try_load_module(&l->a, "filler", &code, &err);
        if (rc != CDS_ECORRUPT) {
            print_error("%s: %s\n", what[c], cds_status_name(rc));
        }
        assert_status(rc, CDS_ECORRUPT);
        assert_null(code);
        assert_non_null(strstr(err.message, "not a valid str"));
        /* the image is never freed: load_image registered it */
    }
    free(golden);
    Py_DECREF(orig);
}

/* Regression (was a bug: cds/heap.c, check_str_image): format.md 6.4 requires "header plus
 * (length + 1) x kind <= extent", but the product is computed in 64 bits
 * from the file's length without an overflow check.  A non-ASCII pool
 * string of kind 2 with length 2^63 - 1 gives (2^63) x 2 = 0 mod 2^64, so
 * need = 72 fits any extent, the "terminating NUL" tested is bytes 70-71
 * (wstr_length, zero), and cds_heap_load returns 0 with that string
 * interned as a name of the loaded code (hashing survives only because
 * length x kind overflows Py_ssize_t to a negative byte count); the first
 * repr() of the code's co_names then reads far past the image and crashes
 * (seen: SIGSEGV).  Kind 4 with length 2^62 - 1 does the same.  The load
 * runs in a child process, so that a crash fails this case instead of
 * killing the program. */
static void
test_heap_pool_string_length_overflow(void **state)
{
    PyObject *orig = compile_sample();
    size_t n;
    int status;

    (void)state;
    build_archive(orig, true, NULL, NULL);
    uint8_t *img = unit_read_file(G.path, &n);
    uint8_t *s = pool_string(img, pool_index_of(img, "caf\xe9", false));
    set_state_bits(s, 7u << 2, 2u << 2);      /* kind 2 */
    put64(s + 16, (uint64_t)INT64_MAX);        /* length 2^63 - 1 */
    unit_seal_pool(img);
    struct loaded *l = load_image(img, n);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* no cmocka in here (nor its signal handlers): plain calls, the
         * verdict in the exit code */
        signal(SIGSEGV, SIG_DFL);
        signal(SIGBUS, SIG_DFL);
        signal(SIGABRT, SIG_DFL);
        PyObject *code = NULL;
        cds_error err;
        uint32_t ix;
        int rc = cds_archive_find(&l->a, "filler", 6, &ix);
        if (rc == 0) {
            rc = cds_segment_validate(&l->a, ix, &err);
        }
        if (rc == 0) {
            rc = cds_heap_load(&l->a, ix, &code, &err);
        }
        _exit(rc == CDS_ECORRUPT ? 0 : 10 + (rc < 0 ? -rc : 0));
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status)) {
        print_error("loading a pool string of length 2^63-1, kind 2: "
                    "killed by signal %d\n",
                    WTERMSIG(status));
    }
    else if (WEXITSTATUS(status) != 0) {
        print_error("loading a pool string of length 2^63-1, kind 2: "
                    "exit %d (10: accepted, 10+n: status -n; ASan: 1)\n",
                    WEXITSTATUS(status));
    }
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    Py_DECREF(orig);
}

/* format.md 4.1, P2: pool bytes are checked when a segment first uses
 * them, not when the archive is opened. */
static void
test_heap_pool_block_checked_at_load(void **state)
{
    PyObject *orig = compile_sample();
    cds_error err;
    size_t n;

    (void)state;
    build_archive(orig, true, NULL, NULL);
    uint8_t *img = unit_read_file(G.path, &n);
    pool_string(img, pool_index_of(img, "FILLER", true))[48] ^= 0x20;
    struct loaded *l = load_image(img, n);
    PyObject *code = NULL;
    assert_status(try_load_module(&l->a, "filler", &code, &err),
                  CDS_ECHECKSUM);
    assert_null(code);
    Py_DECREF(orig);
}

/* Regression (was a bug: cds/heap.c, pool_resolve): the load-side pool state (which pool
 * strings are resolved to which interned object, which blocks passed their
 * checksum) belongs to "the one archive of the process" and is keyed by
 * the address of the caller's cds_archive struct.  Nothing in heap.h says
 * a cds_archive may not be reused: after loading from archive A, loading
 * archive B into the same struct (a static, or a stack slot reused) finds
 * pool_state.archive == a and takes A's strings for B's pool indices, so
 * B's code silently gets A's names (here: its global is stored under A's
 * name).  Keying the state by the image (a->data and size, which stay
 * mapped for ever per heap.h) or resetting it in cds_archive_load would
 * avoid it. */
static void
test_heap_pool_state_follows_the_archive(void **state)
{
    char path_b[600];
    size_t na, nb;
    PyObject *code_a = compile_text("AAA_first_name_k9 = 1\n", "/src/a.py");
    PyObject *code_b = compile_text("BBB_other_name_k9 = 2\n", "/src/b.py");
    struct loaded *l = new_loaded();
    cds_error err;

    (void)state;
    snprintf(path_b, sizeof(path_b), "%s/b.img", G.dir);
    build_archive_at(G.path, NULL, code_a, true, NULL, NULL);
    build_archive_at(path_b, NULL, code_b, true, NULL, NULL);
    uint8_t *img_a = unit_read_file(G.path, &na);
    uint8_t *img_b = unit_read_file(path_b, &nb);
    register_image(img_a, na);
    register_image(img_b, nb);

    assert_status(cds_archive_load(&l->a, img_a, na, &G.fp, &err), 0);
    load_module(&l->a, "filler", &l->filler);
    load_module(&l->a, "heap_sample", &l->sample);
    /* archive A stays mapped and in use; the struct is reused for B */
    memset(&l->a, 0, sizeof(l->a));
    assert_status(cds_archive_load(&l->a, img_b, nb, &G.fp, &err), 0);
    load_module(&l->a, "filler", &l->filler);
    load_module(&l->a, "heap_sample", &l->sample);
    pycheck("check_names_are",
            Py_BuildValue("(O(s))", l->sample, "BBB_other_name_k9"));
    Py_DECREF(code_a);
    Py_DECREF(code_b);
}

static void
test_heap_frozensets_rebuilt(void **state)
{
    PyObject *orig = compile_sample();

    (void)state;
    build_archive(orig, true, NULL, NULL);
    struct loaded *l = load_archive(RELOCATED);
    pycheck("check_frozensets", Py_BuildValue("(OO)", orig, l->sample));
    Py_DECREF(orig);
}

/* Regression (was a bug: cds/heap.c, emit_head): emit_head(s, n, size) writes ob_size only
 * when size >= 0, using -1 to mean "no ob_size field" (str, float,
 * complex).  emit_node passes Py_SIZE(o) for ints, and a negative int has
 * a negative ob_size (minus its digit count, format.md 5.1.4), so its
 * ob_size stays 0 and every archived int below -5 loads as 0: -6, -2**64,
 * -2**100 all become 0, silently (the segment is valid and the value has
 * the right type).  heap_sample.py leaves them out so that the other
 * round-trip checks still run; this case covers them. */
static void
test_heap_negative_ints(void **state)
{
    PyObject *orig = compile_text(
        "NEG = (-6, -257, -2**30, -(2**30 + 1), -2**62, -2**63, -2**64,\n"
        "       -1267650600228229401496703205376,  # -2**100\n"
        "       -98765432109876543210, (-7, (-8,)))\n"
        "def f(x):\n"
        "    return (x in {-6, -1267650600228229401496703205376, 7},\n"
        "            x - 1000, -12345678901234567890)\n"
        "RESULTS = (f(-6), f(-1267650600228229401496703205376), f(7))\n",
        "/src/negative.py");

    (void)state;
    for (int pooled = 1; pooled >= 0; pooled--) {
        build_archive(orig, pooled, NULL, NULL);
        struct loaded *l = load_archive(RELOCATED);
        pycheck("check_negative_ints", Py_BuildValue("(OO)", orig, l->sample));
    }
    Py_DECREF(orig);
}

/* Archived tuples are untracked, refcounts stay huge, collections with
 * archived objects reachable from tracked ones are fine. */
static void
test_heap_survives_gc(void **state)
{
    PyObject *orig = compile_sample();

    (void)state;
    build_archive(orig, true, NULL, NULL);
    struct loaded *l = load_archive(RELOCATED);
    pycheck("check_survives_gc", Py_BuildValue("(O)", l->sample));
    Py_DECREF(orig);
}

/* heap.c inv. 5: code that has run (and been quickened) is archived in its
 * never-executed form; the loaded copy runs and quickens on its own. */
static void
test_heap_quickened_code_archived_deoptimised(void **state)
{
    PyObject *orig = compile_sample();

    (void)state;
    /* run the module and its functions until 3.11 quickens them */
    PyObject *ns = pycall("run", Py_BuildValue("(O)", orig));
    PyObject *results = PyDict_GetItemString(ns, "results");
    assert_non_null(results);
    for (int i = 0; i < 20; i++) {
        PyObject *r = PyObject_CallNoArgs(results);
        if (r == NULL) {
            fail_python("results()");
        }
        Py_DECREF(r);
    }
    build_archive(orig, true, NULL, NULL);
    struct loaded *l = load_archive(RELOCATED);
    pycheck("check_deoptimised", Py_BuildValue("(OO)", orig, l->sample));
    pycheck("check_round_trip", Py_BuildValue("(OO())", orig, l->sample));
    Py_DECREF(ns);
    Py_DECREF(orig);
}

/* A segment dumped by another process (a PIE interpreter under ASLR):
 * every ob_type and every external slot holds a foreign address.  Loading
 * writes this process's type objects and singletons. */
static void
scribble(cds_heap_segment *seg)
{
    for (uint32_t i = 0; i < seg->seg.nobjects; i++) {
        uint64_t bogus = 0x7e5700000000ull + 8ull * i;
        memcpy(seg->objects + CDS_OBJ_OFFSET(seg->objtab[i]) +
                   offsetof(PyObject, ob_type),
               &bogus, sizeof(bogus));
    }
    for (uint32_t i = 0; i < seg->seg.next; i++) {
        uint64_t bogus = 0xbad00000000ull + 8ull * i;
        memcpy(seg->objects + seg->ext[i].slot, &bogus, sizeof(bogus));
    }
}

static void
test_heap_patches_moved_types_and_externals(void **state)
{
    PyObject *orig = compile_sample();
    size_t n;

    (void)state;
    build_archive(orig, true, scribble, NULL);
    /* and the pool strings' types (format.md 4.1) */
    uint8_t *img = unit_read_file(G.path, &n);
    for (uint32_t i = 0; i < img_header(img)->pool_count; i++) {
        put64(pool_string(img, i) + offsetof(PyObject, ob_type),
              0x7e5800000000ull + i);
    }
    unit_seal_pool(img);
    struct loaded *l = load_image(img, n);
    load_module(&l->a, "filler", &l->filler);
    load_module(&l->a, "heap_sample", &l->sample);
    pycheck("check_round_trip", Py_BuildValue("(OO())", orig, l->sample));
    pycheck("check_singletons", Py_BuildValue("(O)", l->sample));
    Py_DECREF(orig);
}

/* Objects the archive cannot hold are CDS_EUNSUPPORTED, and the segment
 * is left cleared. */
static void
test_heap_unsupported_constants(void **state)
{
    static const char *const consts[] = {
        "[1, 2]",
        "{1, 2}",
        "{'k': 1}",
        "bytearray(b'x')",
        "type('S', (str,), {})('str subclass')",
        "type('I', (int,), {})(7)",
        "type('T', (tuple,), {})((1, 2))",
        "type('F', (frozenset,), {})((1, 2))",
        "object()",
        "(1, ('nested', [3]))",
        "(frozenset({1}), [])",
        "range(3)",
    };
    cds_heap_segment seg;
    cds_error err;
    char expr[512];

    (void)state;
    for (size_t i = 0; i < UNIT_ARRAY_SIZE(consts); i++) {
        snprintf(expr, sizeof(expr),
                 "compile('x = 1', '<u>', 'exec').replace("
                 "co_consts=(%s, None))",
                 consts[i]);
        PyObject *code = pyeval(expr);
        memset(&seg, 0x5a, sizeof(seg));
        int rc = cds_heap_serialize(code, UNIT_BASE + 4096, &seg, &err);
        if (rc != CDS_EUNSUPPORTED) {
            print_error("%s: %s\n", consts[i], cds_status_name(rc));
        }
        assert_status(rc, CDS_EUNSUPPORTED);
        unit_check_error(&err, rc);
        assert_null(seg.objects);
        assert_null(seg.seg.objects);
        assert_int_equal(seg.seg.nobjects, 0);
        cds_heap_segment_clear(&seg);
        Py_DECREF(code);
    }
    /* constants nested deeper than the serializer recurses */
    PyObject *code = pyeval(
        "(lambda t: compile('x = 1', '<u>', 'exec').replace("
        "co_consts=(t, None)))(__import__('functools').reduce("
        "lambda t, i: (t, i), range(5000), ()))");
    assert_status(cds_heap_serialize(code, UNIT_BASE, &seg, &err),
                  CDS_EUNSUPPORTED);
    assert_null(seg.objects);
    Py_DECREF(code);
    /* the root must be a code object */
    PyObject *s = PyUnicode_FromString("not code");
    assert_status(cds_heap_serialize(s, UNIT_BASE, &seg, &err),
                  CDS_EUNSUPPORTED);
    Py_DECREF(s);
    cds_heap_segment_clear(&seg);
    cds_heap_segment_clear(NULL);
}

/* ------------------------------------------------------------------ */
/* The build fingerprint */

static void
test_heap_fingerprint(void **state)
{
    struct cds_disk_fingerprint fp, again;
    cds_error err;
    PyObject *v;

    (void)state;
    assert_status(cds_heap_fingerprint(&fp, &err), 0);
    assert_status(cds_heap_fingerprint(&again, &err), 0);
    assert_memory_equal(&fp, &again, sizeof(fp));
    assert_int_equal(fp.py_version_hex, PY_VERSION_HEX);
    assert_int_equal(fp.py_version_hex, (uint32_t)Py_Version);
    v = pyeval("__import__('sys').hexversion");
    assert_int_equal(fp.py_version_hex, PyLong_AsUnsignedLong(v));
    Py_DECREF(v);
    v = pyeval("int.from_bytes(__import__('importlib.util').util"
               ".MAGIC_NUMBER, 'little')");
    assert_int_equal(fp.pyc_magic, PyLong_AsUnsignedLong(v));
    Py_DECREF(v);
    assert_int_equal(fp.pointer_size, sizeof(void *));
    assert_int_equal(fp.byte_order, 1); /* x86-64, arm64 little endian */
    assert_int_equal(fp.long_shift, PyLong_SHIFT);
    assert_int_equal(fp.wchar_size, sizeof(wchar_t));
    assert_int_equal(fp.build_flags & ~CDS_BUILD_PIE, 0); /* release */
    assert_true(fp.layout_hash != 0);
    assert_true(fp.runtime_hash != 0);
    v = pyeval("__import__('sys').implementation.cache_tag");
    assert_string_equal(fp.cache_tag, PyUnicode_AsUTF8(v));
    Py_DECREF(v);
    /* format.md 2.1: the ABI tag is the first extension suffix */
    v = pyeval("__import__('_imp').extension_suffixes()[0]");
    assert_string_equal(fp.soabi, PyUnicode_AsUTF8(v));
    Py_DECREF(v);
    assert_int_equal(strncmp(fp.build_info, Py_GetBuildInfo(),
                             sizeof(fp.build_info) - 1),
                     0);
    assert_int_equal(strncmp(fp.compiler, Py_GetCompiler(),
                             sizeof(fp.compiler) - 1),
                     0);
    assert_int_equal(fp.build_info[sizeof(fp.build_info) - 1], '\0');
    assert_int_equal(fp.compiler[sizeof(fp.compiler) - 1], '\0');
    /* its own archives load with it; another interpreter's do not */
    assert_memory_equal(&fp, &G.fp, sizeof(fp));
    assert_status(cds_heap_check_runtime(&err), 0);
}

int
main(int argc, char **argv)
{
#define T(name) cmocka_unit_test(name)
    const struct CMUnitTest tests[] = {
        T(test_heap_round_trip_relocated),
        T(test_heap_round_trip_at_base),
        T(test_heap_round_trip_mapped),
        T(test_heap_round_trip_unpooled),
        T(test_heap_round_trip_unpooled_at_base),
        T(test_heap_singletons_are_the_processes),
        T(test_heap_interned_names_are_the_interpreters),
        T(test_heap_one_char_names_interned),
        T(test_heap_new_names_interned_in_place),
        T(test_heap_pool_shared_across_modules),
        T(test_heap_pool_string_image_checked),
        T(test_heap_pool_string_length_overflow),
        T(test_heap_pool_block_checked_at_load),
        T(test_heap_pool_state_follows_the_archive),
        T(test_heap_frozensets_rebuilt),
        T(test_heap_negative_ints),
        T(test_heap_survives_gc),
        T(test_heap_quickened_code_archived_deoptimised),
        T(test_heap_patches_moved_types_and_externals),
        T(test_heap_unsupported_constants),
        T(test_heap_fingerprint),
    };
#undef T
    if (unit_select(argc, argv, tests, UNIT_ARRAY_SIZE(tests)) < 0) {
        return 2;
    }
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
