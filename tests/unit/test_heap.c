/* SPDX-License-Identifier: MIT */
/* Unit tests of the heap layer (cds/heap.c) in an embedded CPython.
 *
 * The group setup starts the interpreter the heap layer was built for
 * (isolated, without site) and loads heap_check.py, the comparisons, into
 * a namespace with a few C helpers.  A round trip compiles heap_sample.py,
 * serializes its code graph with cds_heap_serialize for the address
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
 * interpreter with archived objects alive, which must be clean.
 *
 * The cases are the same for every version the heap layer supports
 * (3.11 to 3.13): offsets come from sizeof/offsetof and messages from
 * cds/layout.h where they can; where a version lays an object out
 * otherwise, the case checks that version's fields, fenced by
 * PY_VERSION_HEX (IMMORTAL_LAYOUT: 3.12 on). */
#include "heap.h"

#include "unit.h"

#include "archive.h"
#include "layout.h"
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

/* Immortal objects, a str without wstr, ints with lv_tag (PEP 683; the
 * versions cds/layout_immortal.h is for) */
#define IMMORTAL_LAYOUT (PY_VERSION_HEX >= 0x030C0000)
/* Is there an object of kind k in heap_sample's archive?  Every kind but
 * the slice, which compilers before 3.14 never make a constant. */
/* 3.14 on: every archived str image is statically allocated in the
 * file (layout_immortal.h LAYOUT_STR_STATIC) */
#define STR_STATIC_IN_FILE (PY_VERSION_HEX >= 0x030E0000)
#define SAMPLE_HAS_KIND(k) \
    ((k) != CDS_OBJ_SLICE || PY_VERSION_HEX >= 0x030E0000)

/* The str image (format.md 5.1.2): where the characters of an ASCII and
 * of another compact string start, the state word and its bits. */
#define STR_ASCII_DATA ((uint32_t)sizeof(PyASCIIObject))
#define STR_COMPACT_DATA ((uint32_t)sizeof(PyCompactUnicodeObject))
#define STR_STATE ((uint32_t)offsetof(PyASCIIObject, state))
#define STR_UTF8 ((uint32_t)offsetof(PyCompactUnicodeObject, utf8))
#define STR_UTF8_LENGTH                                                     \
    ((uint32_t)offsetof(PyCompactUnicodeObject, utf8_length))
#define STR_KIND (7u << 2)    /* state.kind */
#define STR_COMPACT (1u << 5) /* state.compact */
#define STR_ASCII (1u << 6)   /* state.ascii */
/* 3.11: state.ready; 3.12 on: state.statically_allocated */
#define STR_BIT7 (1u << 7)
/* What cds_layout_str_view says of a head with bad state bits, and of a
 * non-ASCII string's lazily built caches. */
#if STR_STATIC_IN_FILE
#define STR_STATE_WHY "not compact, interned or not statically allocated"
#define STR_CACHE_WHY "utf8 cache set"
#elif IMMORTAL_LAYOUT
#define STR_STATE_WHY "not compact, interned or statically allocated"
#define STR_CACHE_WHY "utf8 cache set"
#else
#define STR_STATE_WHY "not compact, not ready, interned or with a wstr"
#define STR_CACHE_WHY "utf8 or wstr cache set"
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

static bool
in_archive(const void *o)
{
    for (unsigned i = 0; i < G.nimages; i++) {
        if ((uintptr_t)o >= G.images[i].start &&
            (uintptr_t)o < G.images[i].end) {
            return true;
        }
    }
    return false;
}

static PyObject *
c_in_archive(PyObject *self, PyObject *o)
{
    (void)self;
    return PyBool_FromLong(in_archive(o));
}

static PyObject *
c_str_layout(PyObject *self, PyObject *s)
{
    (void)self;
    if (!PyUnicode_Check(s)) {
        PyErr_SetString(PyExc_TypeError, "str_layout: not a str");
        return NULL;
    }
#if IMMORTAL_LAYOUT
    int statically_allocated =
        (int)((PyASCIIObject *)s)->state.statically_allocated;
#else
    int statically_allocated = 0; /* no such bit */
#endif
    return Py_BuildValue("(iiiiii)", (int)PyUnicode_KIND(s),
                         (int)PyUnicode_IS_ASCII(s),
                         (int)PyUnicode_IS_COMPACT(s),
                         (int)PyUnicode_IS_READY(s),
                         (int)PyUnicode_CHECK_INTERNED(s),
                         statically_allocated);
}

static PyObject *
c_refcnt(PyObject *self, PyObject *o)
{
    (void)self;
    return PyLong_FromSsize_t(Py_REFCNT(o));
}

/* 3.12 on: a code object's co_version (3.13 assigns it at load); None on
 * 3.11, which has no such field. */
static PyObject *
c_co_version(PyObject *self, PyObject *o)
{
    (void)self;
    if (!PyCode_Check(o)) {
        PyErr_SetString(PyExc_TypeError, "co_version: not a code object");
        return NULL;
    }
#if IMMORTAL_LAYOUT
    return PyLong_FromUnsignedLong(((PyCodeObject *)o)->co_version);
#else
    Py_RETURN_NONE;
#endif
}

static PyMethodDef c_methods[] = {
    {"in_archive", c_in_archive, METH_O, "is o inside a loaded image"},
    {"str_layout", c_str_layout, METH_O,
     "(kind, ascii, compact, ready, interned, statically_allocated)"},
    {"refcnt", c_refcnt, METH_O, "ob_refcnt"},
    {"co_version", c_co_version, METH_O, "co_version (3.12 on), or None"},
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
    uint32_t nfrozensets, nfrozen, next, nreloc, nshared;
};

static void
add_code(cds_writer *w, cds_heap_pool *pool, const char *name,
         PyObject *code, tamper_fn *tamper, struct report *report)
{
    cds_heap_segment seg;
    cds_error err;
    char origin[256];
    uint64_t addr = UNIT_BASE + cds_writer_next_offset(w);
    int rc = cds_heap_serialize(code, addr, pool, NULL, NULL, &seg, &err);

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
    static const struct cds_disk_shared no_shared[1];
#define NOT_NULL(list, empty)                                               \
    if (seg.seg.list == NULL) {                                             \
        seg.seg.list = (empty);                                             \
    }
    NOT_NULL(reloc, none);
    NOT_NULL(ext, no_ext);
    NOT_NULL(frozen, none);
    NOT_NULL(shared, no_shared);
#undef NOT_NULL
    if (report != NULL) {
        memcpy(report->counts, seg.counts, sizeof(report->counts));
        report->nfrozensets = seg.nfrozensets;
        report->nfrozen = seg.seg.nfrozen;
        report->next = seg.seg.next;
        report->nreloc = seg.seg.nreloc;
        report->nshared = seg.seg.nshared;
    }
    snprintf(origin, sizeof(origin), "/src/%s.py", name);
    struct cds_writer_module m = {name, origin, "/src", 0, 1, 2, 3};
    assert_status(cds_writer_add(w, &m, &seg.seg, &err), 0);
    cds_heap_segment_clear(&seg);
}

/* An archive being written at path with a pool, as the import hook
 * dumps: early (a list of str, or NULL) are the list's '$' records. */
struct pooled {
    cds_writer *w;
    cds_heap_pool *pool;
};

static void
pooled_create(struct pooled *p, const char *path, PyObject *early)
{
    cds_error err;

    p->w = NULL;
    assert_status(cds_heap_pool_create(&p->pool, &err), 0);
    if (early != NULL) {
        assert_status(cds_heap_pool_note_early(p->pool, early, &err), 0);
    }
    unlink(path);
    assert_status(cds_writer_create(&p->w, path, UNIT_BASE, &G.fp, &err), 0);
}

/* The pool ordered and written, the archive finished, as dump.c does. */
static void
pooled_finish(struct pooled *p)
{
    struct cds_pool view;
    cds_error err;

    assert_status(cds_heap_pool_order(p->pool, &err), 0);
    cds_heap_pool_view(p->pool, &view);
    cds_writer_set_pool(p->w, &view);
    assert_status(cds_writer_finish(p->w, &err), 0);
    cds_writer_destroy(p->w);
    cds_heap_pool_destroy(p->pool);
}

/* Write path: first (FILLER_SRC when NULL) as "filler", then code as
 * "heap_sample", interned strings in the pool, as the import hook dumps. */
static void
build_archive_at(const char *path, PyObject *first, PyObject *code,
                 tamper_fn *tamper, struct report *report)
{
    struct pooled p;
    PyObject *filler =
        first ? Py_NewRef(first) : compile_text(FILLER_SRC, "/src/filler.py");

    pooled_create(&p, path, NULL);
    add_code(p.w, p.pool, "filler", filler, NULL, NULL);
    add_code(p.w, p.pool, "heap_sample", code, tamper, report);
    pooled_finish(&p);
    Py_DECREF(filler);
}

static void
build_archive(PyObject *code, tamper_fn *tamper, struct report *report)
{
    build_archive_at(G.path, NULL, code, tamper, report);
}

/* build_archive(compile(src, filename)) in a child process, so that no
 * string of src is ever interned in this one (3.12 on, every name the
 * compiler interns is immortal: it never leaves the interned dict). */
static void
build_archive_elsewhere(const char *src, const char *filename)
{
    int status;

    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        PyObject *code = compile_text(src, filename);
        build_archive(code, NULL, NULL);
        Py_DECREF(code);
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
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
    /* what the import hook runs: containers, bodies, then patching */
    rc = cds_heap_segment_use(a, ix, CDS_PREFAULT_AUTO, code, err);
    if (rc < 0) {
        unit_check_error(err, rc);
    }
    /* 1: the root handed out as a heap copy (format.md 8, step 6) */
    return rc > 0 ? 0 : rc;
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

/* The pool index of the string whose UTF-8 text is text (ASCII: data
 * after a PyASCIIObject; non-ASCII latin-1: after a
 * PyCompactUnicodeObject). */
static uint32_t
pool_index_of(uint8_t *img, const char *text, bool ascii)
{
    for (uint32_t i = 0; i < img_header(img)->pool_count; i++) {
        const char *data = (const char *)pool_string(img, i) +
                           (ascii ? STR_ASCII_DATA : STR_COMPACT_DATA);
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
    if (cds_heap_check_runtime(1, &err) < 0 ||
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
    /* what heap_check.py expects of archived objects after loading: the
     * reference count (inv. 1), whether it is immortal, and the interned
     * state of an archived str interned in place (3.11: mortal; 3.12 on:
     * immortal-static, layout_immortal.h str_make_static) */
#if IMMORTAL_LAYOUT
    const long sstate_loaded = SSTATE_INTERNED_IMMORTAL_STATIC;
#else
    const long sstate_loaded = SSTATE_INTERNED_MORTAL;
#endif
    if (c == NULL || G.ns == NULL ||
        PyModule_AddIntConstant(c, "ARCHIVED_REFCNT",
                                (long)cds_layout_refcnt_reported) < 0 ||
        PyModule_AddIntConstant(c, "SMALL_INT_MAX",
                                cds_layout_small_int_max) < 0 ||
        PyModule_AddIntConstant(c, "STR_STATIC", STR_STATIC_IN_FILE) < 0 ||
        PyModule_AddIntConstant(c, "IMMORTAL", IMMORTAL_LAYOUT) < 0 ||
        PyModule_AddIntConstant(c, "SSTATE_LOADED", sstate_loaded) < 0 ||
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
round_trip(enum place where)
{
    struct report rep;
    struct loaded *l;
    PyObject *orig = compile_sample();

    build_archive(orig, NULL, &rep);
    if ((l = load_archive(where)) == NULL) {
        Py_DECREF(orig);
        skip();
    }
    /* the segment holds every kind (frozensets as tuples of items) */
    for (unsigned k = 0; k < CDS_OBJ_NKINDS; k++) {
        assert_true(rep.counts[k] > 0 || !SAMPLE_HAS_KIND(k));
    }
    assert_int_equal(rep.nfrozensets, 4);
    assert_int_equal(rep.nfrozen, 4);
    assert_true(rep.next > 0 && rep.nreloc > 0);
    /* interned strings: in the pool (5.5) */
    assert_true(rep.nshared > 50);
    assert_true(l->a.header->pool_count > 50);

    pycheck("check_round_trip",
            Py_BuildValue("(OO(sssssssssss))", orig, l->sample, "code", "str",
                          "bytes", "int", "float", "complex", "tuple",
                          "frozenset", "NoneType", "bool", "ellipsis"));
    PyObject *filler = compile_text(FILLER_SRC, "/src/filler.py");
    pycheck("check_loaded", Py_BuildValue("(OO)", filler, l->filler));
    Py_DECREF(filler);
    Py_DECREF(orig);
}

static void
test_heap_round_trip_relocated(void **state)
{
    (void)state;
    round_trip(RELOCATED);
}

static void
test_heap_round_trip_at_base(void **state)
{
    (void)state;
    round_trip(AT_BASE);
}

static void
test_heap_round_trip_mapped(void **state)
{
    (void)state;
    round_trip(MAPPED);
}

/* None, True, False, Ellipsis, small ints, '', 1-char latin-1 str, b'',
 * 1-byte bytes and () come back as the process's own objects. */
static void
test_heap_singletons_are_the_processes(void **state)
{
    PyObject *orig = compile_sample();

    (void)state;
    build_archive(orig, NULL, NULL);
    struct loaded *l = load_archive(RELOCATED);
    pycheck("check_singletons", Py_BuildValue("(O)", l->sample));
    Py_DECREF(orig);
}

/* Interned names are the interpreter's interned objects (here: the ones
 * the original code, still alive, uses), from the pool or from the
 * segment.  A new original per archive: the checks read co_varnames,
 * which fills _co_cached, and from 3.12 the dumper refuses a code object
 * with _co_cached set (format.md 5.1). */
static void
test_heap_interned_names_are_the_interpreters(void **state)
{
    (void)state;
    PyObject *orig = compile_sample();
    build_archive(orig, NULL, NULL);
    struct loaded *l = load_archive(RELOCATED);
    pycheck("check_interned_names", Py_BuildValue("(OO)", orig, l->sample));
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
    (void)state;
    PyObject *orig = compile_sample();
    build_archive(orig, NULL, NULL);
    struct loaded *l = load_archive(RELOCATED);
    pycheck("check_one_char_names", Py_BuildValue("(OO)", orig, l->sample));
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
        char names[4][32];
#if IMMORTAL_LAYOUT
        /* the compiler's names are immortal: names this process never
         * interned come from an archive another process wrote */
        build_archive_elsewhere(srcs[k], "/src/fresh.py");
#else
        PyObject *orig = compile_text(srcs[k], "/src/fresh.py");
        build_archive(orig, NULL, NULL);
        /* the only owner of those names goes: they leave the interned
         * dict */
        Py_DECREF(orig);
#endif
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
    build_archive_at(G.path, one, two, NULL, NULL);
    struct loaded *l = load_archive(RELOCATED);
    PyObject *n = pycall("check_shared",
                         Py_BuildValue("(OOOO)", one, two, l->filler,
                                       l->sample));
    assert_int_equal(PyLong_AsLong(n), l->a.header->pool_count);
    Py_DECREF(n);
    Py_DECREF(one);
    Py_DECREF(two);
}

/* format.md 4.1, as written: the early strings come first in the pool,
 * numbered 0.. in the order they were pooled, wherever the module naming
 * them lies in the archive, and every module's references follow them.
 * The early string here is named only by the last module; without
 * cds_heap_pool_order() it would be the pool's last string. */
static void
test_heap_pool_early_strings_first(void **state)
{
    cds_error err;
    struct pooled p;
    PyObject *one = compile_text("early_plain_q5 = 1\n"
                                 "def early_fn_q6(x):\n"
                                 "    return x + early_plain_q5\n"
                                 "RESULTS = [early_fn_q6(1)]\n",
                                 "/src/one.py");
    PyObject *two = compile_text("early_late_q7 = 2\n"
                                 "early_plain_q5 = early_late_q7 + 1\n"
                                 "RESULTS = [early_plain_q5, 'early_late_q7']\n",
                                 "/src/two.py");

    (void)state;
    PyObject *names = Py_BuildValue("[s]", "early_late_q7");
    pooled_create(&p, G.path, names);
    Py_DECREF(names);
    add_code(p.w, p.pool, "filler", one, NULL, NULL);
    add_code(p.w, p.pool, "heap_sample", two, NULL, NULL);
    pooled_finish(&p);

    size_t n;
    uint8_t *img = unit_read_file(G.path, &n);
    struct cds_disk_header *h = img_header(img);
    assert_int_equal(h->pool_early_count, 1);
    uint32_t early;
    memcpy(&early, img + h->pool_offset + h->pool_table_off +
                       4ull * h->pool_count, 4);
    assert_int_equal(early, 0);
    assert_int_equal(pool_index_of(img, "early_late_q7", true), 0);
    assert_true(pool_index_of(img, "early_plain_q5", true) > 0);
    free(img);
    /* the references were renumbered with the pool: both modules load
     * as they were, the early string resolved first as at activation */
    struct loaded *l = new_loaded();
    img = unit_read_file(G.path, &n);
    assert_status(cds_archive_load(&l->a, img, n, &G.fp, &err), 0);
    register_image(img, n);
    assert_status(cds_heap_resolve_early(&l->a, &err), 0);
    load_module(&l->a, "filler", &l->filler);
    load_module(&l->a, "heap_sample", &l->sample);
    pycheck("check_same_results", Py_BuildValue("(OO)", one, l->filler));
    pycheck("check_same_results", Py_BuildValue("(OO)", two, l->sample));
    Py_DECREF(one);
    Py_DECREF(two);
}

/* format.md 6.4: a pool string's image is checked before the interpreter
 * sees it (the checksums re-sealed, so only the image is wrong). */
static void
set_state_bits(uint8_t *s, uint32_t clear, uint32_t set)
{
    uint32_t st;
    memcpy(&st, s + STR_STATE, 4);
    st = (st & ~clear) | set;
    memcpy(s + STR_STATE, &st, 4);
}

static void
put64(uint8_t *p, uint64_t v)
{
    memcpy(p, &v, 8);
}

static void
test_heap_pool_string_image_checked(void **state)
{
    /* the head of each version (format.md 5.1.2): 3.11's ready bit and
     * wstr fields, 3.12's statically_allocated bit */
    enum {
        LEN0, LEN_HUGE, INTERNED, NOT_COMPACT, KIND3, ASCII_KIND2, NO_NUL,
        UTF8, UTF8_LEN, REFCNT,
#if IMMORTAL_LAYOUT
        STATIC,
#else
        NOT_READY, WSTR, WSTR_LEN,
#endif
        NCASES
    };
    static const struct {
        const char *what, *why;
    } cases[NCASES] = {
        [LEN0] = {"length 0", "length out of range"},
        [LEN_HUGE] = {"length past the extent", "length out of range"},
        [INTERNED] = {"interned state set", STR_STATE_WHY},
        [NOT_COMPACT] = {"not compact", STR_STATE_WHY},
        [KIND3] = {"kind 3", "bad kind"},
        [ASCII_KIND2] = {"ascii with kind 2", "bad kind"},
        [NO_NUL] = {"no NUL", "no terminating NUL"},
        [UTF8] = {"utf8 set (non-ASCII)", STR_CACHE_WHY},
        [UTF8_LEN] = {"utf8_length set (non-ASCII)", STR_CACHE_WHY},
        [REFCNT] = {"reference count 1", "reference count is not"},
#if IMMORTAL_LAYOUT
        [STATIC] = {"statically allocated", STR_STATE_WHY},
#else
        [NOT_READY] = {"not ready", STR_STATE_WHY},
        [WSTR] = {"wstr set", STR_STATE_WHY},
        [WSTR_LEN] = {"wstr_length set (non-ASCII)", STR_CACHE_WHY},
#endif
    };
    PyObject *orig = compile_sample();
    char want[160];
    size_t n;

    (void)state;
    build_archive(orig, NULL, NULL);
    uint8_t *golden = unit_read_file(G.path, &n);
    uint32_t ascii = pool_index_of(golden, "FILLER", true);
    uint32_t latin = pool_index_of(golden, "caf\xe9", false);
    for (int c = 0; c < NCASES; c++) {
        bool nonascii = c == UTF8 || c == UTF8_LEN;
#if !IMMORTAL_LAYOUT
        nonascii |= c == WSTR_LEN;
#endif
        uint8_t *img = unit_copy(golden, n);
        uint32_t index = nonascii ? latin : ascii;
        uint8_t *s = pool_string(img, index);
        switch (c) {
        case LEN0: put64(s + 16, 0); break;
        case LEN_HUGE: put64(s + 16, 1000); break;
        case INTERNED: set_state_bits(s, 0, 1); break;
        case NOT_COMPACT: set_state_bits(s, STR_COMPACT, 0); break;
        case KIND3: set_state_bits(s, STR_KIND, 3u << 2); break;
        case ASCII_KIND2: set_state_bits(s, STR_KIND, 2u << 2); break;
        /* after "FILLER" */
        case NO_NUL: s[STR_ASCII_DATA + 6] = 'x'; break;
        case UTF8: put64(s + STR_UTF8, 0x1000); break;
        case UTF8_LEN: put64(s + STR_UTF8_LENGTH, 4); break;
        case REFCNT: put64(s, 1); break;
#if IMMORTAL_LAYOUT
        case STATIC:
            set_state_bits(s, STR_STATIC_IN_FILE ? STR_BIT7 : 0,
                           STR_STATIC_IN_FILE ? 0 : STR_BIT7);
            break;
#else
        case NOT_READY: set_state_bits(s, STR_BIT7, 0); break;
        case WSTR:
            put64(s + offsetof(PyASCIIObject, wstr), 0x1000);
            break;
        case WSTR_LEN:
            put64(s + offsetof(PyCompactUnicodeObject, wstr_length), 4);
            break;
#endif
        }
        unit_seal_pool(img);
        struct loaded *l = load_image(img, n);
        PyObject *code = NULL;
        cds_error err;
        int rc = try_load_module(&l->a, "filler", &code, &err);
        if (rc != CDS_ECORRUPT) {
            print_error("%s: %s\n", cases[c].what, cds_status_name(rc));
        }
        assert_status(rc, CDS_ECORRUPT);
        assert_null(code);
        snprintf(want, sizeof(want), "pool string %u is not a valid str: %s",
                 index, cases[c].why);
        if (strstr(err.message, want) == NULL) {
            print_error("%s: \"%s\", expected \"%s\"\n", cases[c].what,
                        err.message, want);
            fail();
        }
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
    build_archive(orig, NULL, NULL);
    uint8_t *img = unit_read_file(G.path, &n);
    uint8_t *s = pool_string(img, pool_index_of(img, "caf\xe9", false));
    set_state_bits(s, STR_KIND, 2u << 2); /* kind 2 */
    put64(s + 16, (uint64_t)INT64_MAX);   /* length 2^63 - 1 */
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
    build_archive(orig, NULL, NULL);
    uint8_t *img = unit_read_file(G.path, &n);
    pool_string(img, pool_index_of(img, "FILLER", true))[STR_ASCII_DATA] ^=
        0x20;
    struct loaded *l = load_image(img, n);
    PyObject *code = NULL;
    assert_status(try_load_module(&l->a, "filler", &code, &err),
                  CDS_ECHECKSUM);
    assert_null(code);
    Py_DECREF(orig);
}

#if PY_VERSION_HEX >= 0x030D0000
/* tamper: the segment's second code object takes the first one's version */
static void
same_code_version(cds_heap_segment *seg)
{
    uint32_t first = UINT32_MAX, ver;
    for (uint32_t i = 0; i < seg->seg.nobjects; i++) {
        uint32_t off = CDS_OBJ_OFFSET(seg->objtab[i]);
        if (CDS_OBJ_KIND(seg->objtab[i]) != CDS_OBJ_CODE) {
            continue;
        }
        if (first == UINT32_MAX) {
            first = off;
            continue;
        }
        memcpy(&ver, seg->objects + first + offsetof(PyCodeObject, co_version),
               4);
        memcpy(seg->objects + off + offsetof(PyCodeObject, co_version), &ver,
               4);
        return;
    }
    fail_msg("no second code object");
}
#endif

/* 3.13 (format.md 5.1.7): two code objects of one version would pass
 * each other's specialisation guards: a segment that gives one version
 * twice passes validation (each is in the archive's range) but is
 * refused at load, before anything is written to it. */
static void
test_heap_code_versions_unique(void **state)
{
    (void)state;
#if PY_VERSION_HEX >= 0x030D0000
    PyObject *orig = compile_sample();
    cds_error err;
    size_t n;

    build_archive(orig, same_code_version, NULL);
    uint8_t *img = unit_read_file(G.path, &n);
    struct loaded *l = load_image(img, n);
    PyObject *code = NULL;
    uint32_t ix;
    assert_status(cds_archive_find(&l->a, "heap_sample", 11, &ix), 0);
    const struct cds_disk_module *m = &l->a.modules[ix];
    uint8_t *before = malloc(m->objects_size);
    assert_non_null(before);
    memcpy(before, l->a.data + m->seg_offset, m->objects_size);
    assert_status(try_load_module(&l->a, "heap_sample", &code, &err),
                  CDS_ECORRUPT);
    assert_non_null(strstr(err.message, "given twice"));
    assert_null(code);
    assert_memory_equal(before, l->a.data + m->seg_offset, m->objects_size);
    free(before);
    Py_DECREF(orig);
#else
    skip();
#endif
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
    build_archive_at(G.path, NULL, code_a, NULL, NULL);
    build_archive_at(path_b, NULL, code_b, NULL, NULL);
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
    build_archive(orig, NULL, NULL);
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
    static const char src[] =
        "NEG = (-6, -257, -2**30, -(2**30 + 1), -2**62, -2**63, -2**64,\n"
        "       -1267650600228229401496703205376,  # -2**100\n"
        "       -98765432109876543210, (-7, (-8,)))\n"
        "def f(x):\n"
        "    return (x in {-6, -1267650600228229401496703205376, 7},\n"
        "            x - 1000, -12345678901234567890)\n"
        "RESULTS = (f(-6), f(-1267650600228229401496703205376), f(7))\n";

    (void)state;
    PyObject *orig = compile_text(src, "/src/negative.py");
    build_archive(orig, NULL, NULL);
    struct loaded *l = load_archive(RELOCATED);
    pycheck("check_negative_ints", Py_BuildValue("(OO)", orig, l->sample));
    Py_DECREF(orig);
}

/* Archived tuples are untracked, refcounts stay huge, collections with
 * archived objects reachable from tracked ones are fine. */
static void
test_heap_survives_gc(void **state)
{
    PyObject *orig = compile_sample();

    (void)state;
    build_archive(orig, NULL, NULL);
    struct loaded *l = load_archive(RELOCATED);
    pycheck("check_survives_gc", Py_BuildValue("(O)", l->sample));
    Py_DECREF(orig);
}

/* heap.c inv. 5: code that has run (and been quickened) is archived in its
 * never-executed form (3.11: PyCode_GetCode's; 3.12 on: the
 * co_code_adaptive of a fresh object, which init_code quickens); the
 * loaded copy runs and quickens on its own. */
static void
test_heap_quickened_code_archived_deoptimised(void **state)
{
    PyObject *orig = compile_sample();
    PyObject *fresh = compile_sample(); /* never run */

    (void)state;
    /* run the module and its functions until they are quickened */
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
    build_archive(orig, NULL, NULL);
    struct loaded *l = load_archive(RELOCATED);
    /* 3.12 on, the archive holds the bytecode of a never-run twin
     * (layout_immortal.h code_as_created), so run code archives as
     * fresh code in every version */
    const int fresh_form = 1;
    pycheck("check_deoptimised",
            Py_BuildValue("(OOOi)", orig, l->sample, fresh, fresh_form));
    pycheck("check_round_trip", Py_BuildValue("(OO())", orig, l->sample));
    Py_DECREF(ns);
    Py_DECREF(fresh);
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
    build_archive(orig, scribble, NULL);
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

/* The word at p: an object's reference count. */
static Py_ssize_t
word_at(const uint8_t *p)
{
    Py_ssize_t w;
    memcpy(&w, p, sizeof(w));
    return w;
}

/* inv. 1 after loading.  3.12 on (PEP 683): every archived object is
 * immortal, so Py_INCREF and Py_DECREF leave its count unwritten (the
 * word still holds the file's bytes, and its page stays the file's if
 * nothing else writes it), and running the code writes no count either;
 * pool strings too, interned in place or not.  3.11: the count is
 * mortal, INCREF writes it, DECREF gives it back. */
static void
test_heap_refcounts_after_load(void **state)
{
    PyObject *orig = compile_sample();
    size_t n;
    uint32_t ix;

    (void)state;
    build_archive(orig, NULL, NULL);
    uint8_t *file = unit_read_file(G.path, &n);
    struct loaded *l = load_archive(RELOCATED);
    assert_int_equal(l->a.size, n);
    assert_status(cds_archive_find(&l->a, "heap_sample", 11, &ix), 0);
    const struct cds_disk_module *m = &l->a.modules[ix];
    const uint8_t *seg = l->a.data + m->seg_offset;
    const uint8_t *fseg = file + m->seg_offset;
    const uint32_t *objtab = (const void *)(seg + m->objtab_off);
    for (int ran = 0; ran < 2; ran++) {
        if (ran) {
            /* run it, quickening and specialising it, then collect */
            PyObject *ns = pycall("run", Py_BuildValue("(O)", l->sample));
            PyObject *results = PyDict_GetItemString(ns, "results");
            assert_non_null(results);
            for (int i = 0; i < 20; i++) {
                PyObject *r = PyObject_CallNoArgs(results);
                if (r == NULL) {
                    fail_python("results()");
                }
                Py_DECREF(r);
            }
            Py_DECREF(ns);
            PyGC_Collect();
        }
        for (uint32_t i = 0; i < m->nobjects; i++) {
            uint32_t off = CDS_OBJ_OFFSET(objtab[i]);
            PyObject *o = (PyObject *)(void *)(l->a.data + m->seg_offset +
                                               off);
            assert_int_equal(word_at(fseg + off), cds_layout_refcnt);
#if IMMORTAL_LAYOUT
            assert_int_equal(Py_REFCNT(o), cds_layout_refcnt_reported);
            for (int k = 0; k < 3; k++) {
                Py_INCREF(o);
            }
            assert_int_equal(Py_REFCNT(o), cds_layout_refcnt_reported);
            assert_memory_equal(seg + off, fseg + off, sizeof(Py_ssize_t));
            for (int k = 0; k < 3; k++) {
                Py_DECREF(o);
            }
            assert_int_equal(Py_REFCNT(o), cds_layout_refcnt_reported);
            assert_memory_equal(seg + off, fseg + off, sizeof(Py_ssize_t));
#else
            /* plus the references others hold: the root's that
             * cds_heap_load returned, the rebuilt frozensets' items' */
            Py_ssize_t was = Py_REFCNT(o);
            assert_true(was >= cds_layout_refcnt + (o == l->sample));
            for (int k = 0; k < 3; k++) {
                Py_INCREF(o);
            }
            assert_int_equal(Py_REFCNT(o), was + 3);
            for (int k = 0; k < 3; k++) {
                Py_DECREF(o);
            }
            assert_int_equal(Py_REFCNT(o), was);
#endif
        }
    }
    /* the pool strings both modules resolved, and the others */
    const struct cds_disk_header *h = l->a.header;
    for (uint32_t i = 0; i < h->pool_count; i++) {
        uint32_t off;
        memcpy(&off, file + h->pool_offset + h->pool_table_off + 4ull * i,
               4);
        const uint8_t *fs = file + h->pool_offset + off;
        assert_int_equal(word_at(fs), cds_layout_refcnt);
#if IMMORTAL_LAYOUT
        assert_memory_equal(l->a.data + h->pool_offset + off, fs,
                            sizeof(Py_ssize_t));
#else
        /* interned in place: the interned dict's two references are not
         * counted (3.11 PyUnicode_InternInPlace) */
        assert_true(word_at(l->a.data + h->pool_offset + off) >=
                    cds_layout_refcnt - 2);
#endif
    }
    free(file);
    Py_DECREF(orig);
}

/* The str object of loaded archive a, in module ix's segment or in the
 * pool, whose ASCII text is text; NULL if none. */
static PyObject *
archived_str(const cds_archive *a, uint32_t ix, const char *text)
{
    const struct cds_disk_module *m = &a->modules[ix];
    const struct cds_disk_header *h = a->header;
    const uint32_t *objtab =
        (const void *)(a->data + m->seg_offset + m->objtab_off);
    size_t len = strlen(text);

    for (uint32_t i = 0; i < m->nobjects + h->pool_count; i++) {
        uint8_t *p;
        if (i < m->nobjects) {
            if (CDS_OBJ_KIND(objtab[i]) != CDS_OBJ_STR) {
                continue;
            }
            p = a->data + m->seg_offset + CDS_OBJ_OFFSET(objtab[i]);
        }
        else {
            uint32_t off;
            memcpy(&off,
                   a->data + h->pool_offset + h->pool_table_off +
                       4ull * (i - m->nobjects),
                   4);
            p = a->data + h->pool_offset + off;
        }
        PyObject *s = (PyObject *)(void *)p;
        if (PyUnicode_IS_ASCII(s) &&
            PyUnicode_GET_LENGTH(s) == (Py_ssize_t)len &&
            memcmp(p + STR_ASCII_DATA, text, len + 1) == 0) {
            return s;
        }
    }
    return NULL;
}

/* heap.c inv. 6 after loading, for pool strings and strings kept in the
 * segment.  An archived str that no equal string was interned before
 * becomes the interned one, in the version's state (3.11:
 * SSTATE_INTERNED_MORTAL; 3.12 on: SSTATE_INTERNED_IMMORTAL_STATIC with
 * statically_allocated set, layout_immortal.h str_make_static, so that no
 * finalizer makes it mortal or frees it) and its count unchanged; one
 * equal to a string interned already ("len") is redirected to that one,
 * and the archived copy stays as the file has it: not interned. */
static void
test_heap_interned_state_after_load(void **state)
{
    /* one per archive: the first archive's strings become the interned
     * ones */
    static const char *const srcs[2] = {
        "def cds_state_fn_3e8b(cds_state_arg_3e8b):\n"
        "    return len(cds_state_arg_3e8b)\n",
        "def cds_state_fn_4f9c(cds_state_arg_4f9c):\n"
        "    return len(cds_state_arg_4f9c)\n",
    };
    uint32_t ix;

    (void)state;
    for (int round = 0; round < 2; round++) {
        /* names this process never interned, in a first and a second
         * archive */
        build_archive_elsewhere(srcs[round], "/src/state.py");
        struct loaded *l = load_archive(RELOCATED);
        assert_status(cds_archive_find(&l->a, "heap_sample", 11, &ix), 0);
        PyObject *consts = ((PyCodeObject *)l->sample)->co_consts;
        PyCodeObject *fn = NULL;
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(consts); i++) {
            if (PyCode_Check(PyTuple_GET_ITEM(consts, i))) {
                fn = (PyCodeObject *)PyTuple_GET_ITEM(consts, i);
            }
        }
        assert_non_null(fn);
        PyObject *fresh[2] = {fn->co_name,
                              PyTuple_GET_ITEM(fn->co_localsplusnames, 0)};
        for (int i = 0; i < 2; i++) {
            PyObject *s = fresh[i];
            assert_true(PyUnicode_CHECK_INTERNED(s) != 0);
            assert_true(in_archive(s));
            PyObject *copy = PyUnicode_FromString(PyUnicode_AsUTF8(s));
            assert_non_null(copy);
            PyObject *t = copy;
            PyUnicode_InternInPlace(&t);
            assert_ptr_equal(t, s); /* the interpreter's interned one */
            Py_DECREF(t);
#if IMMORTAL_LAYOUT
            assert_int_equal(PyUnicode_CHECK_INTERNED(s),
                             SSTATE_INTERNED_IMMORTAL_STATIC);
            assert_int_equal(((PyASCIIObject *)s)->state.statically_allocated,
                             1);
            assert_int_equal(Py_REFCNT(s), cds_layout_refcnt_reported);
#else
            assert_int_equal(PyUnicode_CHECK_INTERNED(s),
                             SSTATE_INTERNED_MORTAL);
            /* PyUnicode_InternInPlace took off the dict's two; the
             * module body's co_names, copied with it (format.md 8, step
             * 7), holds one to the function's name */
            assert_int_equal(Py_REFCNT(s),
                             cds_layout_refcnt_reported + (i == 0));
#endif
        }
        /* "len": the interpreter's, and the archived copy left alone */
        PyObject *name = PyTuple_GET_ITEM(fn->co_names, 0);
        PyObject *len = PyUnicode_InternFromString("len");
        assert_ptr_equal(name, len);
        Py_DECREF(len);
        assert_false(in_archive(name));
        PyObject *dup = archived_str(&l->a, ix, "len");
        assert_non_null(dup);
        assert_ptr_not_equal(dup, name);
        assert_int_equal(PyUnicode_CHECK_INTERNED(dup), SSTATE_NOT_INTERNED);
#if IMMORTAL_LAYOUT
        assert_int_equal(((PyASCIIObject *)dup)->state.statically_allocated,
                         STR_STATIC_IN_FILE);
#endif
#if IMMORTAL_LAYOUT
        assert_int_equal(Py_REFCNT(dup), cds_layout_refcnt_reported);
#else
        /* PyUnicode_InternInPlace released the one it replaced */
        assert_int_equal(Py_REFCNT(dup), cds_layout_refcnt - 1);
#endif
    }
}

/* The code objects of a graph, depth first. */
static void
collect_code(PyObject *code, PyObject *out)
{
    assert_int_equal(PyList_Append(out, code), 0);
    PyObject *consts = ((PyCodeObject *)code)->co_consts;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(consts); i++) {
        if (PyCode_Check(PyTuple_GET_ITEM(consts, i))) {
            collect_code(PyTuple_GET_ITEM(consts, i), out);
        }
    }
}

/* Loaded code carries a fresh object's per-interpreter state (inv. 5):
 * 3.11: the warm-up counter a new object starts with; 3.12: co_version
 * 0, as archived (the interpreter hands out function versions when a
 * call is specialised); 3.13: every loaded code object has its own
 * version from the archive's range (format.md 5.1.7), which lies above
 * the versions of code objects created before the load, and the
 * interpreter's counter moved past it for those created after. */
static void
test_heap_code_state_after_load(void **state)
{
    PyObject *orig = compile_sample();
    PyObject *codes = PyList_New(0);

    (void)state;
    assert_non_null(codes);
    build_archive(orig, NULL, NULL);
    PyCodeObject *before = PyCode_NewEmpty("before.py", "before", 1);
    assert_non_null(before);
    struct loaded *l = load_archive(RELOCATED);
    PyCodeObject *after = PyCode_NewEmpty("after.py", "after", 1);
    assert_non_null(after);
    collect_code(l->filler, codes);
    collect_code(l->sample, codes);
    Py_ssize_t ncodes = PyList_GET_SIZE(codes);
    assert_true(ncodes > 10);
#if PY_VERSION_HEX >= 0x030D0000
    /* the counter moved past the archive's range, which lies above it */
    const struct cds_disk_header *h = l->a.header;
    assert_true(before->co_version != 0);
    assert_true(before->co_version < h->code_version_base);
    assert_true(after->co_version >=
                h->code_version_base + h->code_version_count);
    assert_true(h->code_version_count >= (uint32_t)ncodes);
#endif
    for (Py_ssize_t i = 0; i < ncodes; i++) {
        PyCodeObject *co = (PyCodeObject *)PyList_GET_ITEM(codes, i);
#if PY_VERSION_HEX >= 0x030D0000
        assert_true(co->co_version >= h->code_version_base &&
                    co->co_version - h->code_version_base <
                        h->code_version_count);
        for (Py_ssize_t j = 0; j < i; j++) {
            assert_int_not_equal(
                co->co_version,
                ((PyCodeObject *)PyList_GET_ITEM(codes, j))->co_version);
        }
#elif IMMORTAL_LAYOUT
        assert_int_equal(co->co_version, 0);
#else
        assert_int_equal(co->co_warmup, before->co_warmup);
        assert_int_equal(co->_co_linearray_entry_size, 0);
#endif
    }
    Py_DECREF(before);
    Py_DECREF(after);
    Py_DECREF(codes);
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
    cds_heap_pool *pool = NULL;

    (void)state;
    assert_status(cds_heap_pool_create(&pool, &err), 0);
    for (size_t i = 0; i < UNIT_ARRAY_SIZE(consts); i++) {
        snprintf(expr, sizeof(expr),
                 "compile('x = 1', '<u>', 'exec').replace("
                 "co_consts=(%s, None))",
                 consts[i]);
        PyObject *code = pyeval(expr);
        memset(&seg, 0x5a, sizeof(seg));
        int rc =
            cds_heap_serialize(code, UNIT_BASE + 4096, pool, NULL, NULL, &seg,
                               &err);
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
    assert_status(cds_heap_serialize(code, UNIT_BASE, pool, NULL, NULL, &seg, &err),
                  CDS_EUNSUPPORTED);
    assert_null(seg.objects);
    Py_DECREF(code);
    /* the root must be a code object */
    PyObject *s = PyUnicode_FromString("not code");
    assert_status(cds_heap_serialize(s, UNIT_BASE, pool, NULL, NULL, &seg, &err),
                  CDS_EUNSUPPORTED);
    Py_DECREF(s);
    /* and a pool there must be: interned strings go nowhere else */
    code = pyeval("compile('x = 1', '<u>', 'exec')");
    assert_status(cds_heap_serialize(code, UNIT_BASE, NULL, NULL, NULL, &seg, &err),
                  CDS_EUNSUPPORTED);
    Py_DECREF(code);
    cds_heap_pool_destroy(pool);
    cds_heap_segment_clear(&seg);
    cds_heap_segment_clear(NULL);
}

/* Both validations of a segment, as cds_heap_segment_use runs them: the
 * containers, then the object bodies on the slot map the first left. */
static int
validate_segment(const cds_archive *a, uint32_t ix, cds_error *err)
{
    cds_slot_map map;
    int rc = cds_segment_validate_map(a, ix, &map, err);

    if (rc == 0) {
        rc = cds_heap_validate(a, ix, &map, err);
    }
    cds_slot_map_free(&map);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Deep validation of object bodies (cds_heap_validate, format.md 6.7).
 * A case patches the heap_sample segment of a good archive, re-seals the
 * checksums (so that cds_segment_validate, which must still accept the
 * segment, does not catch it first) and expects CDS_ECORRUPT from
 * cds_heap_validate with a message naming the object and the field. */

/* The heap_sample segment of a writable copy of the golden archive. */
struct vimg {
    uint8_t *img;
    size_t n;
    cds_archive a;
    uint32_t ix;
    uint8_t *seg;
    struct cds_disk_module *m;
    uint64_t base; /* the segment's address at the writer's base */
};

/* format.md 5: without a load-only region (copy_off = objects_size) the
 * same objects are all the module's, kept: the root is served as
 * archived, not copied. */
static void
keep_bodies(cds_heap_segment *seg)
{
    seg->seg.copy_off = seg->seg.objects_size;
}

/* The sample, pooled, as the import hook dumps it; built once per
 * process and kept (G is reachable). */
static const uint8_t *
golden(size_t *n)
{
    static uint8_t *img;
    static size_t size;
    if (img == NULL) {
        PyObject *orig = compile_sample();
        /* the cases move slots between objects: no load-only region
         * (S3 would refuse a slot moved out of it first) */
        build_archive(orig, keep_bodies, NULL);
        img = unit_read_file(G.path, &size);
        Py_DECREF(orig);
    }
    *n = size;
    return img;
}

static void
vimg_open(struct vimg *v)
{
    cds_error err;
    const uint8_t *g = golden(&v->n);

    v->img = unit_copy(g, v->n);
    memset(&v->a, 0, sizeof(v->a));
    assert_status(cds_archive_load(&v->a, v->img, v->n, &G.fp, &err), 0);
    assert_status(cds_archive_find(&v->a, "heap_sample", 11, &v->ix), 0);
    v->m = (struct cds_disk_module *)(void *)(v->img +
                                              v->a.header->entries_offset) +
           v->ix;
    v->seg = v->img + v->m->seg_offset;
    v->base = v->a.header->base_address + v->m->seg_offset;
    /* the golden segment is good */
    assert_status(validate_segment(&v->a, v->ix, &err), 0);
}

/* Re-seal, check that the containers still pass, and expect want in the
 * message of cds_heap_validate's CDS_ECORRUPT.  Frees the image. */
static void
vimg_expect(struct vimg *v, const char *what, const char *want)
{
    cds_error err;
    int rc;

    unit_seal_segment(v->img, v->ix);
    memset(&v->a, 0, sizeof(v->a));
    assert_status(cds_archive_load(&v->a, v->img, v->n, &G.fp, &err), 0);
    cds_slot_map map;
    rc = cds_segment_validate_map(&v->a, v->ix, &map, &err);
    if (rc != 0) {
        print_error("%s: cds_segment_validate: %s\n", what, err.message);
    }
    assert_status(rc, 0);
    rc = cds_heap_validate(&v->a, v->ix, &map, &err);
    cds_slot_map_free(&map);
    if (rc != CDS_ECORRUPT || strstr(err.message, want) == NULL) {
        print_error("%s: %s: \"%s\", expected \"%s\"\n", what,
                    cds_status_name(rc), rc != 0 ? err.message : "", want);
        fail();
    }
    unit_check_error(&err, rc);
    assert_true(err.offset >= v->m->seg_offset &&
                err.offset < v->m->seg_offset + v->m->seg_size);
    assert_non_null(strstr(err.message, "module heap_sample: "));
    free(v->img);
    v->img = NULL;
}

static uint64_t
vget(const struct vimg *v, uint32_t at)
{
    uint64_t x;
    memcpy(&x, v->seg + at, 8);
    return x;
}

static void
vput(struct vimg *v, uint32_t at, uint64_t x)
{
    memcpy(v->seg + at, &x, 8);
}

static int32_t
vget32(const struct vimg *v, uint32_t at)
{
    int32_t x;
    memcpy(&x, v->seg + at, 4);
    return x;
}

static void
vput32(struct vimg *v, uint32_t at, int32_t x)
{
    memcpy(v->seg + at, &x, 4);
}

static const uint32_t *
vobjtab(const struct vimg *v)
{
    return (const uint32_t *)(const void *)(v->seg + v->m->objtab_off);
}

/* Where object i's extent ends (format.md 5.1: the next object, its GC
 * head for a tuple). */
static uint32_t
vend(const struct vimg *v, uint32_t i)
{
    const uint32_t *t = vobjtab(v);
    if (i + 1 == v->m->nobjects) {
        return v->m->objects_size;
    }
    return CDS_OBJ_OFFSET(t[i + 1]) -
           (CDS_OBJ_KIND(t[i + 1]) == CDS_OBJ_TUPLE ? CDS_GC_HEAD_SIZE : 0);
}

typedef bool vpred(const struct vimg *v, uint32_t off, uint32_t end);

/* The offset of the first object of kind for which pred (NULL: any)
 * holds; its extent's end in *end. */
static uint32_t
vfind(const struct vimg *v, unsigned kind, vpred *pred, uint32_t *end)
{
    const uint32_t *t = vobjtab(v);
    for (uint32_t i = 0; i < v->m->nobjects; i++) {
        uint32_t off = CDS_OBJ_OFFSET(t[i]);
        if (CDS_OBJ_KIND(t[i]) == kind &&
            (pred == NULL || pred(v, off, vend(v, i)))) {
            if (end != NULL) {
                *end = vend(v, i);
            }
            return off;
        }
    }
    print_error("no object of kind %u as wanted\n", kind);
    fail();
    return 0;
}

/* The index of the relocation list entry for slot, or UINT32_MAX. */
static uint32_t
vreloc(const struct vimg *v, uint32_t slot)
{
    const uint32_t *r = (const uint32_t *)(const void *)(v->seg +
                                                         v->m->reloc_off);
    for (uint32_t i = 0; i < v->m->nreloc; i++) {
        if (r[i] == slot) {
            return i;
        }
    }
    return UINT32_MAX;
}

/* Move relocation entry i to slot `to` (a unit of some other object's
 * data), with the pointer it held, so that the segment's lists stay valid
 * and the old slot is no longer listed. */
static void
vmove_reloc(struct vimg *v, uint32_t i, uint32_t to)
{
    uint32_t *r = (uint32_t *)(void *)(v->seg + v->m->reloc_off);
    vput(v, to, vget(v, r[i]));
    r[i] = to;
}

#if PY_VERSION_HEX >= 0x030D0000
/* Relist a pool reference as a relocation: the pool slot `slot` and the
 * relocated slot of a tuple item (not a frozenset's) trade lists, so
 * that `slot` is a relocated pointer (to what the item pointed at) and
 * the item a pool reference (holding 0, format.md 5.5).  Every list keeps
 * its length and stays valid. */
static void
vswap_shared_reloc(struct vimg *v, uint32_t slot)
{
    struct cds_disk_shared *sh =
        (struct cds_disk_shared *)(void *)(v->seg + v->m->shared_off);
    uint32_t *r = (uint32_t *)(void *)(v->seg + v->m->reloc_off);
    const uint32_t *fr = (const uint32_t *)(const void *)(v->seg +
                                                          v->m->frozen_off);
    const uint32_t *t = vobjtab(v);
    uint32_t j = 0;

    while (j < v->m->nshared && sh[j].slot != slot) {
        j++;
    }
    assert_true(j < v->m->nshared);
    for (uint32_t i = 0; i < v->m->nreloc; i++) {
        bool frozen = false, item = false;
        for (uint32_t k = 0; k < v->m->nfrozen; k++) {
            frozen |= fr[k] == r[i];
        }
        for (uint32_t k = 0; k < v->m->nobjects && !frozen; k++) {
            uint32_t o = CDS_OBJ_OFFSET(t[k]);
            uint32_t items = o + cds_layout_tuple_items;
            item |= CDS_OBJ_KIND(t[k]) == CDS_OBJ_TUPLE && r[i] >= items &&
                    r[i] < items + 8 * (uint64_t)vget(v, o + 16);
        }
        if (item) {
            uint32_t x = r[i];
            vput(v, slot, vget(v, x));
            vput(v, x, 0);
            r[i] = slot;
            sh[j].slot = x;
            return;
        }
    }
    print_error("no relocated tuple item to trade\n");
    fail();
}
#endif

#define VSIZE(v, off) ((int64_t)vget((v), (off) + 16))
#define CODE_AT(field) ((uint32_t)offsetof(PyCodeObject, field))

static bool
str_ascii_long(const struct vimg *v, uint32_t off, uint32_t end)
{
    (void)end;
    return (v->seg[off + STR_STATE] & STR_ASCII) && VSIZE(v, off) >= 24;
}

static bool
str_kind2(const struct vimg *v, uint32_t off, uint32_t end)
{
    (void)end;
    return (v->seg[off + STR_STATE] & STR_KIND) >> 2 == 2 &&
           VSIZE(v, off) >= 4;
}

static bool
str_kind4(const struct vimg *v, uint32_t off, uint32_t end)
{
    (void)end;
    return (v->seg[off + STR_STATE] & STR_KIND) >> 2 == 4;
}

static bool
bytes_big(const struct vimg *v, uint32_t off, uint32_t end)
{
    (void)end;
    return VSIZE(v, off) >= 64;
}

/* An int's signed digit count, as the layout reads it (3.11: ob_size;
 * 3.12 on: lv_tag), and where its digits start. */
static int64_t
vint_size(const struct vimg *v, uint32_t off, uint32_t *head)
{
    struct cds_int_view iv;
    assert_null(cds_layout_int_view(v->seg + off, &iv));
    if (head != NULL) {
        *head = iv.head;
    }
    return iv.size;
}

/* Store a signed digit count in the int at off, as the version encodes
 * it: ob_size, or lv_tag = ndigits << 3 | sign (0 positive, 1 zero, 2
 * negative). */
static void
vput_int_size(struct vimg *v, uint32_t off, int64_t size)
{
#if IMMORTAL_LAYOUT
    uint64_t n = size < 0 ? 0 - (uint64_t)size : (uint64_t)size;
    vput(v, off + (uint32_t)offsetof(PyLongObject, long_value.lv_tag),
         n << 3 | (size < 0 ? 2u : size == 0 ? 1u : 0u));
#else
    vput(v, off + (uint32_t)offsetof(PyVarObject, ob_size), (uint64_t)size);
#endif
}

static bool
int_multi(const struct vimg *v, uint32_t off, uint32_t end)
{
    (void)end;
    return vint_size(v, off, NULL) >= 3;
}

static bool
int_one(const struct vimg *v, uint32_t off, uint32_t end)
{
    (void)end;
    return vint_size(v, off, NULL) == 1;
}

static bool
float_tight(const struct vimg *v, uint32_t off, uint32_t end)
{
    (void)v;
    return end - off < sizeof(PyComplexObject);
}

static bool
tuple_multi(const struct vimg *v, uint32_t off, uint32_t end)
{
    (void)end;
    return VSIZE(v, off) >= 2;
}

/* a function with at least two locals (a co_localspluskinds of the
 * segment, not an external 1-byte bytes) */
static bool
code_two_locals(const struct vimg *v, uint32_t off, uint32_t end)
{
    (void)end;
    return vget32(v, off + CODE_AT(co_nlocalsplus)) >= 2;
}

/* a function of one positional argument and no other local */
static bool
code_one_arg(const struct vimg *v, uint32_t off, uint32_t end)
{
    (void)end;
    return vget32(v, off + CODE_AT(co_argcount)) == 1 &&
           vget32(v, off + CODE_AT(co_nlocalsplus)) == 1 &&
           vget32(v, off + CODE_AT(co_nlocals)) == 1 &&
           !(vget32(v, off + CODE_AT(co_flags)) &
             (CO_VARARGS | CO_VARKEYWORDS));
}

/* The writer's archives pass: the sample, many standard library modules,
 * and constants that need the rare layouts (the empty frozenset's empty
 * item tuple). */
static void
test_heap_validate_accepts_archives(void **state)
{
    cds_error err;
    struct pooled p;

    (void)state;
    PyObject *orig = compile_sample();
    build_archive(orig, NULL, NULL);
    struct loaded *l = load_archive(RELOCATED); /* validates, loads */
    pycheck("check_round_trip", Py_BuildValue("(OO())", orig, l->sample));
    Py_DECREF(orig);
    /* the standard library, in one pooled archive as the hook writes */
    PyObject *mods = pycall("stdlib_codes", PyTuple_New(0));
    Py_ssize_t nmods = PyList_GET_SIZE(mods);
    assert_true(nmods >= 15);
    PyObject *odd = pyeval(
        "compile('x = 1', '/src/odd.py', 'exec').replace(co_consts=("
        "frozenset(), frozenset({(1, 'a'), 2**70, b'xy', 'odd str'}),"
        " ('t', (), b'', ''), None))");
    pooled_create(&p, G.path, NULL);
    add_code(p.w, p.pool, "odd", odd, NULL, NULL);
    for (Py_ssize_t i = 0; i < nmods; i++) {
        PyObject *pair = PyList_GET_ITEM(mods, i);
        add_code(p.w, p.pool, PyUnicode_AsUTF8(PyTuple_GET_ITEM(pair, 0)),
                 PyTuple_GET_ITEM(pair, 1), NULL, NULL);
    }
    pooled_finish(&p);
    size_t n;
    uint8_t *img = unit_read_file(G.path, &n);
    l = load_image(img, n);
    for (uint32_t i = 0; i < l->a.header->nmodules; i++) {
        int rc = validate_segment(&l->a, i, &err);
        if (rc != 0) {
            print_error("%s: %s\n", cds_module_name(&l->a, i), err.message);
        }
        assert_status(rc, 0);
    }
    /* and the odd one loads as it was */
    PyObject *code = NULL;
    load_module(&l->a, "odd", &code);
    pycheck("check_loaded", Py_BuildValue("(OO)", odd, code));
    Py_DECREF(code);
    Py_DECREF(odd);
    Py_DECREF(mods);
}

/* format.md 5 and 8, step 6: the module body lies in the load-only region
 * and is handed out as a mortal heap copy, with its co_consts, co_names
 * and its class bodies; functions stay archived.  Without the region
 * (copy_off = objects_size) the root is served as archived.  A pointer
 * from before copy_off into the region is refused (S3). */
static void
test_heap_load_only_region(void **state)
{
    PyObject *orig = compile_text("def f(a):\n"
                                  "    return a * 2\n"
                                  "class C:\n"
                                  "    class D:\n"
                                  "        y = 3\n"
                                  "    x = f(1)\n"
                                  "RESULTS = [C.x, C.D.y, f(3), {1, 2}]\n",
                                  "heap_sample.py");
    cds_error err;
    uint32_t ix;
    size_t n;

    (void)state;
    for (int where = RELOCATED; where <= MAPPED; where++) {
        build_archive(orig, NULL, NULL);
        struct loaded *l = load_archive(where);
        assert_status(cds_archive_find(&l->a, "heap_sample", 11, &ix), 0);
        const struct cds_disk_module *m = &l->a.modules[ix];
        assert_true(m->copy_off < m->objects_size);
        assert_int_equal(m->root_off, m->copy_off);
        PyCodeObject *root = (PyCodeObject *)l->sample;
        assert_false(in_archive(root));
        assert_false(in_archive(root->co_consts));
        assert_false(in_archive(root->co_names));
        assert_int_equal(Py_REFCNT(root), 1);
        int classes = 0, functions = 0;
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(root->co_consts); i++) {
            PyObject *c = PyTuple_GET_ITEM(root->co_consts, i);
            if (!PyCode_Check(c)) {
                continue;
            }
            if (((PyCodeObject *)c)->co_flags & CO_OPTIMIZED) {
                functions++;
                assert_true(in_archive(c));
            }
            else {
                classes++;
                assert_false(in_archive(c)); /* C, and D inside it */
                PyObject *cc = ((PyCodeObject *)c)->co_consts;
                for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(cc); k++) {
                    if (PyCode_Check(PyTuple_GET_ITEM(cc, k))) {
                        assert_false(in_archive(PyTuple_GET_ITEM(cc, k)));
                    }
                }
            }
        }
        assert_int_equal(classes, 1);
        assert_int_equal(functions, 1);
        pycheck("check_same_results",
                Py_BuildValue("(OO)", orig, l->sample));
        /* the region is never read again: on a mapping its pages go */
        if (where == MAPPED) {
            uintptr_t lo = ((uintptr_t)l->a.data + m->seg_offset +
                            m->copy_off + 4095) & ~(uintptr_t)4095;
            uintptr_t hi = ((uintptr_t)l->a.data + m->seg_offset +
                            m->objects_size) & ~(uintptr_t)4095;
            /* mapped in this process: /proc/self/pagemap's bit 63
             * (mincore would tell the page cache's, for a file page) */
            int pm = open("/proc/self/pagemap", O_RDONLY);
            assert_true(pm >= 0);
            for (uintptr_t p = lo; p < hi; p += 4096) {
                uint64_t e = 0;
                assert_int_equal(pread(pm, &e, 8, (off_t)(p / 4096 * 8)), 8);
                assert_int_equal(e >> 63, 0);
            }
            close(pm);
        }
    }
    /* no region: the root as archived */
    build_archive(orig, keep_bodies, NULL);
    struct loaded *l = load_archive(RELOCATED);
    assert_true(in_archive(l->sample));
    pycheck("check_loaded", Py_BuildValue("(OO)", orig, l->sample));
    /* the region moved past the root: the root's pointers now lead into
     * it from before it */
    build_archive(orig, NULL, NULL);
    uint8_t *img = unit_read_file(G.path, &n);
    cds_archive a;
    memset(&a, 0, sizeof(a));
    assert_status(cds_archive_load(&a, img, n, &G.fp, &err), 0);
    assert_status(cds_archive_find(&a, "heap_sample", 11, &ix), 0);
    struct cds_disk_module *m =
        (struct cds_disk_module *)(void *)(img +
                                           a.header->entries_offset) + ix;
    const uint32_t *objtab =
        (const void *)(img + m->seg_offset + m->objtab_off);
    uint32_t k = 0;
    while (CDS_OBJ_OFFSET(objtab[k]) <= m->root_off) {
        k++;
    }
    /* the object after the root (a tuple: its GC head), which the root
     * names */
    m->copy_off = CDS_OBJ_OFFSET(objtab[k]) -
                  (CDS_OBJ_GC_HEADED(CDS_OBJ_KIND(objtab[k])) ? 16 : 0);
    unit_seal_index(img);
    unit_seal_header(img);
    memset(&a, 0, sizeof(a));
    assert_status(cds_archive_load(&a, img, n, &G.fp, &err), 0);
    assert_status(cds_segment_validate(&a, ix, &err), CDS_ECORRUPT);
    assert_non_null(strstr(err.message, "into the load-only region"));
    free(img);
    Py_DECREF(orig);
}

/* format.md 8, steps 2 and 5.4a: in copy mode a segment is read into
 * memory out of the image (cds_archive_arena) and keeps its objects
 * there, pointers relocated to them; the module runs as from the file. */
static void
test_heap_copy_mode_moves(void **state)
{
    PyObject *orig = compile_text("def f(a):\n"
                                  "    return (a, 'x' * a, 2.5, 10 ** 30)\n"
                                  "class C:\n"
                                  "    y = frozenset({1, 2})\n"
                                  "RESULTS = [f(2), C.y, {3, 4} | C.y]\n",
                                  "heap_sample.py");
    cds_error err;
    uint32_t ix;

    (void)state;
    build_archive(orig, NULL, NULL);
    struct loaded *l = new_loaded();
    assert_status(cds_archive_open(&l->a, G.path,
                                   CDS_OPEN_WRITABLE | CDS_OPEN_RELOCATE,
                                   &G.fp, &err),
                  0);
    assert_status(cds_archive_copy_segments(&l->a, false, &err), 0);
    load_module(&l->a, "heap_sample", &l->sample);
    assert_status(cds_archive_find(&l->a, "heap_sample", 11, &ix), 0);
    PyCodeObject *root = (PyCodeObject *)l->sample;
    const uint8_t *lo = l->a.data, *hi = l->a.data + l->a.size;
    int moved = 0;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(root->co_consts); i++) {
        PyObject *c = PyTuple_GET_ITEM(root->co_consts, i);
        if (PyCode_Check(c) && ((PyCodeObject *)c)->co_flags & CO_OPTIMIZED) {
            /* archived, moved: outside the image, its consts too */
            PyObject *cc = ((PyCodeObject *)c)->co_consts;
            assert_false((const uint8_t *)c >= lo && (const uint8_t *)c < hi);
            assert_false((const uint8_t *)cc >= lo &&
                         (const uint8_t *)cc < hi);
            assert_true(Py_REFCNT(c) >= cds_layout_refcnt_reported);
            moved++;
        }
    }
    assert_int_equal(moved, 1);
    pycheck("check_same_run", Py_BuildValue("(OO)", orig, l->sample));
    Py_DECREF(orig);
}

static void
test_heap_validate_any_order(void **state)
{
    /* as written (format.md 5) the root lies in the load-only region at
     * the end, after the tuples and bytes it refers to: the second pass
     * cds_heap_validate makes for such orders checks it */
    PyObject *orig = compile_text("def f(a, b):\n"
                                  "    c = a + b\n"
                                  "    return (c, 1.5, 'c' * a)\n"
                                  "class C:\n"
                                  "    x = f(1, 2)\n"
                                  "RESULTS = [C.x, f(3, 4), b'xy']\n",
                                  "heap_sample.py");
    cds_error err;
    size_t n;

    (void)state;
    build_archive(orig, NULL, NULL);
    struct loaded *l = load_archive(RELOCATED);
    uint32_t ix;
    assert_status(cds_archive_find(&l->a, "heap_sample", 11, &ix), 0);
    assert_int_not_equal(l->a.modules[ix].root_off, 0);
    assert_int_equal(l->a.modules[ix].root_off, l->a.modules[ix].copy_off);
    assert_false(in_archive(l->sample)); /* a heap copy */
    pycheck("check_loaded", Py_BuildValue("(OO)", orig, l->sample));
    /* a corrupt count in the moved root is still found */
    uint8_t *img = unit_read_file(G.path, &n);
    cds_archive a;
    memset(&a, 0, sizeof(a));
    assert_status(cds_archive_load(&a, img, n, &G.fp, &err), 0);
    assert_status(cds_archive_find(&a, "heap_sample", 11, &ix), 0);
    uint8_t *root = img + a.modules[ix].seg_offset + a.modules[ix].root_off;
    int32_t nl;
    memcpy(&nl, root + CODE_AT(co_nlocals), 4);
    nl += 1;
    memcpy(root + CODE_AT(co_nlocals), &nl, 4);
    unit_seal_segment(img, ix);
    memset(&a, 0, sizeof(a));
    assert_status(cds_archive_load(&a, img, n, &G.fp, &err), 0);
    cds_slot_map map;
    assert_status(cds_segment_validate_map(&a, ix, &map, &err), 0);
    assert_status(cds_heap_validate(&a, ix, &map, &err), CDS_ECORRUPT);
    assert_non_null(strstr(err.message, "co_localspluskinds say"));
    cds_slot_map_free(&map);
    /* the map must be the segment's: none, or another size, is refused */
    assert_status(cds_heap_validate(&a, ix, NULL, &err), CDS_ECORRUPT);
    assert_non_null(strstr(err.message, "segment not validated"));
    assert_status(cds_segment_validate_map(&a, 0, &map, &err), 0);
    if (map.objects_size != a.modules[ix].objects_size) {
        assert_status(cds_heap_validate(&a, ix, &map, &err), CDS_ECORRUPT);
        assert_non_null(strstr(err.message, "segment not validated"));
    }
    cds_slot_map_free(&map);
    free(img);
    Py_DECREF(orig);
}

/* inv. 1: every object's reference count is the archive's
 * (cds_layout_refcnt: 2^40 on 3.11, immortal from 3.12). */
static void
test_heap_validate_refcount(void **state)
{
    static const char *const names[CDS_OBJ_NKINDS] = {
        "code", "str", "bytes", "int", "float", "complex", "tuple", "slice",
    };
    struct vimg v;
    char want[160];

    (void)state;
    for (unsigned k = 0; k < CDS_OBJ_NKINDS; k++) {
        if (!SAMPLE_HAS_KIND(k)) {
            continue;
        }
        vimg_open(&v);
        uint32_t off = vfind(&v, k, NULL, NULL);
        vput(&v, off, 1);
        snprintf(want, sizeof(want),
                 "module heap_sample: object 0x%x (%s): reference count "
                 "0x1, not %s",
                 off, names[k], cds_layout_refcnt_name);
        vimg_expect(&v, names[k], want);
        /* one short of it: 3.12 on, a count Py_INCREF writes */
        vimg_open(&v);
        vput(&v, off, (uint64_t)cds_layout_refcnt - 1);
        snprintf(want, sizeof(want),
                 "object 0x%x (%s): reference count 0x%llx, not %s", off,
                 names[k], (unsigned long long)cds_layout_refcnt - 1,
                 cds_layout_refcnt_name);
        vimg_expect(&v, names[k], want);
    }
}

/* format.md 5.1.2 and 6.4: a str of the segment gets the image checks of
 * a pool string, and its characters fit its kind. */
static void
test_heap_validate_str(void **state)
{
    static const struct {
        const char *what, *want;
    } cases[] = {
        {"length 0", "length out of range"},
        {"length past the extent", "length out of range"},
        {"characters past the extent", "characters past its extent"},
        {"no NUL", "no terminating NUL"},
        {"ascii flag, a byte above 0x7f",
         "kind or ascii flag does not fit its characters"},
        {"interned", STR_STATE_WHY},
#if IMMORTAL_LAYOUT
        {"statically allocated bit flipped", STR_STATE_WHY},
#else
        {"wstr set", STR_STATE_WHY},
#endif
        {"kind 3", "bad kind"},
        {"kind 2, all characters below 0x100",
         "kind or ascii flag does not fit its characters"},
        {"utf8 set", STR_CACHE_WHY},
        {"kind 4, a character above 0x10ffff",
         "kind or ascii flag does not fit its characters"},
    };
    struct vimg v;
    char want[160];

    (void)state;
    for (size_t c = 0; c < UNIT_ARRAY_SIZE(cases); c++) {
        uint32_t end = 0;
        vimg_open(&v);
        uint32_t off = vfind(&v, CDS_OBJ_STR,
                             c >= 10  ? str_kind4
                             : c >= 8 ? str_kind2
                                      : str_ascii_long,
                             &end);
        uint64_t len = vget(&v, off + 16);
        uint32_t state32 = (uint32_t)vget32(&v, off + STR_STATE);
        switch (c) {
        case 0: vput(&v, off + 16, 0); break;
        case 1: vput(&v, off + 16, end - off); break;
        case 2: vput(&v, off + 16, end - off - STR_ASCII_DATA); break;
        case 3: v.seg[off + STR_ASCII_DATA + len] = 'x'; break;
        case 4: v.seg[off + STR_ASCII_DATA + 3] = 0xe9; break;
        case 5: vput32(&v, off + STR_STATE, (int32_t)(state32 | 1)); break;
        case 6:
#if IMMORTAL_LAYOUT
            /* the bit the file does not have (3.14 on: it has it) */
            vput32(&v, off + STR_STATE, (int32_t)(state32 ^ STR_BIT7));
#else
            vput(&v, off + offsetof(PyASCIIObject, wstr), 0x1000);
#endif
            break;
        case 7:
            vput32(&v, off + STR_STATE,
                   (int32_t)((state32 & ~STR_KIND) | 3u << 2));
            break;
        case 8:
            for (uint64_t i = 0; i < len; i++) {
                v.seg[off + STR_COMPACT_DATA + 2 * i + 1] = 0; /* high */
            }
            break;
        case 9: vput(&v, off + STR_UTF8, 0x1000); break;
        case 10: vput32(&v, off + STR_COMPACT_DATA, 0x110000); break;
        }
        snprintf(want, sizeof(want), "object 0x%x (str): not a valid str: %s",
                 off, cases[c].want);
        vimg_expect(&v, cases[c].what, want);
    }
}

/* format.md 5.1.3 */
static void
test_heap_validate_bytes(void **state)
{
    struct vimg v;
    uint32_t off, end;

    (void)state;
    vimg_open(&v);
    off = vfind(&v, CDS_OBJ_BYTES, bytes_big, &end);
    vput(&v, off + 16, UINT64_MAX);
    vimg_expect(&v, "size -1", "(bytes): ob_size -1 does not fill its");
    vimg_open(&v);
    off = vfind(&v, CDS_OBJ_BYTES, bytes_big, &end);
    vput(&v, off + 16, end - off - 32);
    vimg_expect(&v, "size past the extent", "does not fill its");
    vimg_open(&v);
    off = vfind(&v, CDS_OBJ_BYTES, bytes_big, &end);
    v.seg[off + 32 + vget(&v, off + 16)] = 1;
    vimg_expect(&v, "no NUL", "no NUL after its");
    vimg_open(&v);
    off = vfind(&v, CDS_OBJ_BYTES, bytes_big, &end);
    vput(&v, off + 24, 12345);
    vimg_expect(&v, "hash", "ob_shash is not -1");
}

/* format.md 5.1.4 */
static void
test_heap_validate_int(void **state)
{
#if IMMORTAL_LAYOUT
    const char *const size_name = "digit count"; /* lv_tag's */
#else
    const char *const size_name = "ob_size";
#endif
    struct vimg v;
    uint32_t off, end, head;
    char want[160];

    (void)state;
    vimg_open(&v);
    off = vfind(&v, CDS_OBJ_INT, int_multi, &end);
    vput_int_size(&v, off, 0);
    snprintf(want, sizeof(want),
             "module heap_sample: object 0x%x (int): %s 0 does not fill "
             "its %u bytes",
             off, size_name, end - off);
    vimg_expect(&v, "size 0", want);
    vimg_open(&v);
    off = vfind(&v, CDS_OBJ_INT, int_multi, &end);
#if IMMORTAL_LAYOUT
    /* the most digits lv_tag counts (2^61 - 1), negative */
    vput_int_size(&v, off, -(INT64_MAX >> 2));
    vimg_expect(&v, "size -(2^61 - 1)",
                "(int): digit count -2305843009213693951 does not fill");
#else
    vput(&v, off + 16, (uint64_t)INT64_MIN);
    vimg_expect(&v, "size -2^63", "(int): ob_size -9223372036854775808");
#endif
    vimg_open(&v);
    off = vfind(&v, CDS_OBJ_INT, int_multi, &end);
    vint_size(&v, off, &head);
    vput32(&v, off + head + 4, 1 << 30);
    vimg_expect(&v, "digit 2^30", "digit 1 is 0x40000000, not below 2^30");
    vimg_open(&v);
    off = vfind(&v, CDS_OBJ_INT, int_multi, &end);
    vput32(&v, off + head + 4 * (uint32_t)(vint_size(&v, off, NULL) - 1),
           0);
    vimg_expect(&v, "top digit 0", "not a normalized big int");
    vimg_open(&v);
    off = vfind(&v, CDS_OBJ_INT, int_one, &end);
    vput32(&v, off + head, 256);
    vimg_expect(&v, "small int", "top digit 0x100 of 1");
#if IMMORTAL_LAYOUT
    /* lv_tag bits no int has: sign 3, bit 2 (3.13: immortal small ints),
     * zero with digits, positive without */
    const struct {
        const char *what;
        uint64_t tag;
    } tags[] = {
        {"sign 3", 3u << 3 | 3u},
        {"bit 2", 3u << 3 | 4u},
        {"zero with 3 digits", 3u << 3 | 1u},
        {"positive without digits", 0},
    };
    for (size_t i = 0; i < UNIT_ARRAY_SIZE(tags); i++) {
        vimg_open(&v);
        off = vfind(&v, CDS_OBJ_INT, int_multi, &end);
        vput(&v, off + (uint32_t)offsetof(PyLongObject, long_value.lv_tag),
             tags[i].tag);
        snprintf(want, sizeof(want), "object 0x%x (int): lv_tag is no int's",
                 off);
        vimg_expect(&v, tags[i].what, want);
    }
#endif
}

/* format.md 5.1.5: a complex needs 32 bytes */
static void
test_heap_validate_float_complex(void **state)
{
    struct vimg v;
    uint32_t end;

    (void)state;
    vimg_open(&v);
    uint32_t off = vfind(&v, CDS_OBJ_FLOAT, float_tight, &end);
    uint32_t *t = (uint32_t *)(void *)(v.seg + v.m->objtab_off);
    for (uint32_t i = 0; i < v.m->nobjects; i++) {
        if (CDS_OBJ_OFFSET(t[i]) == off) {
            t[i] = off | CDS_OBJ_COMPLEX;
        }
    }
    vimg_expect(&v, "24-byte complex", "(complex): 24 bytes, not its size");
}

/* format.md 5.1.6, inv. 2 */
static void
test_heap_validate_tuple(void **state)
{
    struct vimg v;
    uint32_t off, end;
    char want[200];

    (void)state;
    vimg_open(&v);
    off = vfind(&v, CDS_OBJ_TUPLE, tuple_multi, &end);
    vput(&v, off - 8, 0x1000); /* _gc_prev */
    vimg_expect(&v, "GC head", "(tuple): GC head is not zero");
    vimg_open(&v);
    off = vfind(&v, CDS_OBJ_TUPLE, tuple_multi, &end);
    vput(&v, off + 16, (uint64_t)VSIZE(&v, off) + 1);
    vimg_expect(&v, "size past the extent", "(tuple): ob_size");
    vimg_open(&v);
    off = vfind(&v, CDS_OBJ_TUPLE, tuple_multi, &end);
    vput(&v, off + 16, 0);
    vimg_expect(&v, "empty, not a frozenset's items",
                "(tuple): ob_size 0 does not fill");
    /* an item listed nowhere: its relocation moved into bytes data */
    vimg_open(&v);
    uint32_t data = vfind(&v, CDS_OBJ_BYTES, bytes_big, NULL) + 40;
    const uint32_t *r = (const uint32_t *)(const void *)(v.seg +
                                                         v.m->reloc_off);
    uint32_t i, item = 0;
    off = 0;
    for (i = 0; i < v.m->nreloc && off == 0; i++) {
        /* a relocated slot inside a tuple's items */
        const uint32_t *t = vobjtab(&v);
        for (uint32_t j = 0; j < v.m->nobjects; j++) {
            uint32_t o = CDS_OBJ_OFFSET(t[j]);
            uint32_t items = o + cds_layout_tuple_items;
            if (CDS_OBJ_KIND(t[j]) == CDS_OBJ_TUPLE && r[i] >= items &&
                r[i] < items + 8 * (uint64_t)VSIZE(&v, o)) {
                off = o;
                item = r[i];
                break;
            }
        }
    }
    assert_int_not_equal(off, 0);
    vmove_reloc(&v, i - 1, data);
    snprintf(want, sizeof(want),
             "module heap_sample: object 0x%x (tuple): item %u at 0x%x is "
             "not a listed pointer",
             off, (item - off - cds_layout_tuple_items) / 8, item);
    vimg_expect(&v, "item unlisted", want);
    /* a listed slot past the items: ob_size too small */
    vimg_open(&v);
    off = vfind(&v, CDS_OBJ_TUPLE, tuple_multi, &end);
    uint64_t nitems = (uint64_t)VSIZE(&v, off);
    vput(&v, off + 16, nitems - 1);
    snprintf(want, sizeof(want), "object 0x%x (tuple): ", off);
    vimg_expect(&v, "ob_size one short", want);
    vimg_open(&v);
    vput(&v, off + 16, nitems - 1);
    snprintf(want, sizeof(want), "(tuple): ob_size %llu does not fill",
             (unsigned long long)(nitems - 1));
    vimg_expect(&v, "ob_size one short", want);
}

/* A listed slot in an object's head would have loading add the
 * relocation delta to its reference count. */
static void
test_heap_validate_slot_in_header(void **state)
{
    struct vimg v;
    char want[160];

    (void)state;
    vimg_open(&v);
    uint32_t off = vfind(&v, CDS_OBJ_BYTES, bytes_big, NULL);
    vmove_reloc(&v, 0, off);
    snprintf(want, sizeof(want),
             "object 0x%x (bytes): relocation slot 0x%x is not a pointer "
             "field",
             off, off);
    vimg_expect(&v, "relocation of a refcount", want);
}

/* format.md 5.1.7: the bytecode fits, runtime fields are clear */
static void
test_heap_validate_code_layout(void **state)
{
    static const struct {
        const char *what;
        uint32_t at;
        uint64_t value;
        unsigned width;
        const char *want;
    } cases[] = {
        {"no bytecode", 16, 0, 8, "(code): bytecode of 0 units does not fill"},
        {"bytecode past the extent", 16, 1u << 20, 8,
         "(code): bytecode of 1048576 units does not fill"},
        {"co_weakreflist", CODE_AT(co_weakreflist), 0x1000, 8,
         "co_weakreflist is not NULL"},
#if IMMORTAL_LAYOUT
        /* the runtime fields of 3.12 on (layout_312.c, layout_313.c) */
#if PY_VERSION_HEX >= 0x030D0000
        {"co_executors", CODE_AT(co_executors), 0x1000, 8,
         "co_executors is not NULL"},
#endif
        {"_co_cached", CODE_AT(_co_cached), 0x1000, 8,
         "_co_cached is not NULL"},
        {"_co_instrumentation_version", CODE_AT(_co_instrumentation_version),
         1, 8, "_co_instrumentation_version is not 0"},
        {"_co_monitoring", CODE_AT(_co_monitoring), 0x1000, 8,
         "_co_monitoring is not NULL"},
        {"co_extra", CODE_AT(co_extra), 0x1000, 8, "co_extra is not NULL"},
#if PY_VERSION_HEX >= 0x030D0000
        /* one of the archive's own versions (format.md 5.1.7) */
        {"co_version", CODE_AT(co_version), 1, 4, "outside the archive's"},
#else
        /* as created: the interpreter hands out versions lazily */
        {"co_version", CODE_AT(co_version), 1, 4, "co_version is not 0"},
#endif
#else
        {"_co_code", CODE_AT(_co_code), 0x1000, 8, "_co_code is not NULL"},
        {"_co_linearray", CODE_AT(_co_linearray), 0x1000, 8,
         "_co_linearray is not NULL"},
        {"co_extra", CODE_AT(co_extra), 0x1000, 8, "co_extra is not NULL"},
        {"co_warmup", CODE_AT(co_warmup), 0xfff9 /* -7 */, 2,
         "co_warmup -7, _co_linearray_entry_size 0: not a fresh code"},
        {"_co_linearray_entry_size", CODE_AT(_co_linearray_entry_size), 1,
         2, "co_warmup -8, _co_linearray_entry_size 1"},
#endif
        {"_co_firsttraceable", CODE_AT(_co_firsttraceable), 3, 4,
         "_co_firsttraceable 3, first RESUME at 0"},
    };
    struct vimg v;

    (void)state;
    for (size_t c = 0; c < UNIT_ARRAY_SIZE(cases); c++) {
        vimg_open(&v);
        uint32_t off = v.m->root_off;
        memcpy(v.seg + off + cases[c].at, &cases[c].value, cases[c].width);
        vimg_expect(&v, cases[c].what, cases[c].want);
    }
#if IMMORTAL_LAYOUT
    /* frames are sized by co_framesize: co_nlocalsplus + co_stacksize +
     * the frame's specials (FRAME_SPECIALS_SIZE, internal), one too many
     * and far too few */
    static const int32_t deltas[] = {1, -1, INT32_MIN};
    for (size_t c = 0; c < UNIT_ARRAY_SIZE(deltas); c++) {
        char want[160];
        vimg_open(&v);
        uint32_t off = v.m->root_off;
        int32_t size = vget32(&v, off + CODE_AT(co_framesize));
        int32_t nlp = vget32(&v, off + CODE_AT(co_nlocalsplus));
        int32_t stack = vget32(&v, off + CODE_AT(co_stacksize));
        int32_t bad = deltas[c] == INT32_MIN ? 0 : size + deltas[c];
        vput32(&v, off + CODE_AT(co_framesize), bad);
        snprintf(want, sizeof(want),
                 "(code): co_framesize %d, co_nlocalsplus %d + co_stacksize "
                 "%d + %d",
                 bad, nlp, stack, size - nlp - stack);
        vimg_expect(&v, "co_framesize", want);
    }
#endif
}

/* format.md 5.1.7: every pointer field listed, of the kind
 * _PyCode_Validate demands */
static void
test_heap_validate_code_fields(void **state)
{
    struct vimg v;
    char want[200];
    uint32_t root, slot, i;

    (void)state;
    /* unlisted: its relocation moved into bytes data */
    vimg_open(&v);
    root = v.m->root_off;
    slot = root + CODE_AT(co_consts);
    i = vreloc(&v, slot);
    assert_int_not_equal(i, UINT32_MAX);
    vmove_reloc(&v, i, vfind(&v, CDS_OBJ_BYTES, bytes_big, NULL) + 40);
    snprintf(want, sizeof(want),
             "module heap_sample: object 0x%x (code): co_consts at 0x%x is "
             "not a listed pointer",
             root, slot);
    vimg_expect(&v, "co_consts unlisted", want);
    /* a str where a tuple must be */
    vimg_open(&v);
    root = v.m->root_off;
    vput(&v, root + CODE_AT(co_consts),
         v.base + vfind(&v, CDS_OBJ_STR, NULL, NULL));
    snprintf(want, sizeof(want),
             "object 0x%x (code): co_consts at 0x%x is not a tuple", root,
             root + CODE_AT(co_consts));
    vimg_expect(&v, "co_consts a str", want);
    /* a tuple where a str must be */
    vimg_open(&v);
    root = v.m->root_off;
#if PY_VERSION_HEX >= 0x030D0000
    /* 3.13 interns every code object's file name, name and qualified
     * name: a pool reference, made a relocation first */
    vswap_shared_reloc(&v, root + CODE_AT(co_filename));
#else
    /* the file name is not interned: a relocated pointer */
#endif
    assert_int_not_equal(vreloc(&v, root + CODE_AT(co_filename)),
                         UINT32_MAX);
    vput(&v, root + CODE_AT(co_filename),
         v.base + vfind(&v, CDS_OBJ_TUPLE, NULL, NULL));
    snprintf(want, sizeof(want), "co_filename at 0x%x is not a str",
             root + CODE_AT(co_filename));
    vimg_expect(&v, "co_filename a tuple", want);
    vimg_open(&v);
    root = v.m->root_off;
    vput(&v, root + CODE_AT(co_linetable),
         v.base + vfind(&v, CDS_OBJ_STR, NULL, NULL));
    vimg_expect(&v, "co_linetable a str", "is not a bytes");
    vimg_open(&v);
    uint32_t f = vfind(&v, CDS_OBJ_CODE, code_two_locals, NULL);
    assert_int_not_equal(vreloc(&v, f + CODE_AT(co_localspluskinds)),
                         UINT32_MAX);
    vput(&v, f + CODE_AT(co_localspluskinds),
         v.base + vfind(&v, CDS_OBJ_INT, NULL, NULL));
    vimg_expect(&v, "co_localspluskinds an int",
                "co_localspluskinds at 0x");
    vimg_open(&v);
    f = vfind(&v, CDS_OBJ_CODE, code_two_locals, NULL);
    vput(&v, f + CODE_AT(co_localspluskinds),
         v.base + vfind(&v, CDS_OBJ_INT, NULL, NULL));
    vimg_expect(&v, "co_localspluskinds an int", "is not a bytes");
    /* a frozenset slot: a frozenset after loading */
    vimg_open(&v);
    root = v.m->root_off;
    assert_true(v.m->nfrozen > 0);
    memcpy(v.seg + v.m->frozen_off, &(uint32_t){root + CODE_AT(co_consts)},
           4);
    snprintf(want, sizeof(want), "co_consts at 0x%x is not a tuple",
             root + CODE_AT(co_consts));
    vimg_expect(&v, "co_consts a frozenset", want);
    /* names that are not str: the module's constants as its names */
    vimg_open(&v);
    root = v.m->root_off;
    vput(&v, root + CODE_AT(co_names), vget(&v, root + CODE_AT(co_consts)));
    vimg_expect(&v, "co_names with non-str items", "co_names item ");
    vimg_open(&v);
    f = vfind(&v, CDS_OBJ_CODE, code_one_arg, NULL);
    vput(&v, f + CODE_AT(co_localsplusnames),
         v.base + vfind(&v, CDS_OBJ_TUPLE, tuple_multi, NULL));
    vimg_expect(&v, "co_localsplusnames with non-str items",
                "(code): co_localsplusnames item ");
    /* all str, but not one name per local */
    vimg_open(&v);
    root = v.m->root_off;
    f = vfind(&v, CDS_OBJ_CODE, code_one_arg, NULL);
    vput(&v, f + CODE_AT(co_localsplusnames),
         vget(&v, root + CODE_AT(co_names)));
    snprintf(want, sizeof(want), "object 0x%x (code): co_nlocalsplus 1, ",
             f);
    vimg_expect(&v, "co_localsplusnames of the wrong length", want);
}

/* The counts _PyCode_Validate checks and init_code derives: the
 * interpreter sizes and indexes by them. */
static void
test_heap_validate_code_counts(void **state)
{
    static const struct {
        const char *what;
        uint32_t at;
        int32_t delta, set;
        const char *want;
    } cases[] = {
        {"posonly > argcount", CODE_AT(co_posonlyargcount), 0, 2,
         "co_argcount 1, co_posonlyargcount 2"},
        {"kwonly < 0", CODE_AT(co_kwonlyargcount), 0, -1,
         "co_kwonlyargcount -1"},
        {"flags < 0", CODE_AT(co_flags), 0, INT32_MIN, "co_flags 0x80000"},
        {"stacksize < 0", CODE_AT(co_stacksize), 0, -1,
         "co_stacksize -1, co_nlocalsplus 1: bad frame size"},
        {"stacksize huge", CODE_AT(co_stacksize), 0, INT32_MAX / 8,
         "bad frame size"},
        {"nlocalsplus", CODE_AT(co_nlocalsplus), 1, 0,
         "co_nlocalsplus 2, 1 names, 1 kinds"},
#if IMMORTAL_LAYOUT
        /* no co_nplaincellvars from 3.12 on */
        {"nlocals", CODE_AT(co_nlocals), 1, 0,
         "co_nlocals 2, co_ncellvars 0, co_nfreevars 0; co_localspluskinds "
         "say 1, 0, 0"},
#else
        {"nlocals", CODE_AT(co_nlocals), 1, 0,
         "co_nlocals 2, co_nplaincellvars 0, co_ncellvars 0, co_nfreevars "
         "0; co_localspluskinds say 1, 0, 0, 0"},
        {"nplaincellvars", CODE_AT(co_nplaincellvars), 1, 0,
         "co_localspluskinds say"},
#endif
        {"ncellvars", CODE_AT(co_ncellvars), 1, 0, "co_localspluskinds say"},
        {"nfreevars", CODE_AT(co_nfreevars), 1, 0, "co_localspluskinds say"},
        {"*args without a local", CODE_AT(co_flags), 0, -2,
         "(code): 2 arguments but 1 locals"},
        {"argcount > locals", CODE_AT(co_argcount), 1, 0,
         "2 arguments but 1 locals"},
    };
    struct vimg v;

    (void)state;
    for (size_t c = 0; c < UNIT_ARRAY_SIZE(cases); c++) {
        vimg_open(&v);
        uint32_t f = vfind(&v, CDS_OBJ_CODE, code_one_arg, NULL);
#if IMMORTAL_LAYOUT
        int32_t specials = vget32(&v, f + CODE_AT(co_framesize)) -
                           vget32(&v, f + CODE_AT(co_nlocalsplus)) -
                           vget32(&v, f + CODE_AT(co_stacksize));
#endif
        int32_t x = vget32(&v, f + cases[c].at);
        if (cases[c].set == -2) {
            x |= CO_VARARGS;
        }
        else if (cases[c].delta != 0) {
            x += cases[c].delta;
        }
        else {
            x = cases[c].set;
        }
        vput32(&v, f + cases[c].at, x);
#if IMMORTAL_LAYOUT
        /* co_framesize follows co_nlocalsplus and co_stacksize, as a
         * forger would make it, so that the check reached is this one and
         * not test_heap_validate_code_layout's */
        vput32(&v, f + CODE_AT(co_framesize),
               vget32(&v, f + CODE_AT(co_nlocalsplus)) +
                   vget32(&v, f + CODE_AT(co_stacksize)) + specials);
#endif
        vimg_expect(&v, cases[c].what, cases[c].want);
    }
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
    assert_int_equal(fp.build_flags, 0); /* release, GIL */
    assert_true(fp.layout_hash != 0);
    assert_true(fp.runtime_hash != 0);
    assert_true(fp.quicken_hash != 0); /* the probe compiled */
    v = pyeval("__import__('sys').implementation.cache_tag");
    assert_string_equal(fp.cache_tag, PyUnicode_AsUTF8(v));
    assert_string_equal(fp.cache_tag, PyImport_GetMagicTag());
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
    assert_status(cds_heap_check_runtime(0, &err), 0);
    assert_status(cds_heap_check_runtime(1, &err), 0);
}

int
main(int argc, char **argv)
{
#define T(name) cmocka_unit_test(name)
    const struct CMUnitTest tests[] = {
        T(test_heap_round_trip_relocated),
        T(test_heap_round_trip_at_base),
        T(test_heap_round_trip_mapped),
        T(test_heap_singletons_are_the_processes),
        T(test_heap_interned_names_are_the_interpreters),
        T(test_heap_one_char_names_interned),
        T(test_heap_new_names_interned_in_place),
        T(test_heap_pool_shared_across_modules),
        T(test_heap_pool_early_strings_first),
        T(test_heap_pool_string_image_checked),
        T(test_heap_pool_string_length_overflow),
        T(test_heap_pool_block_checked_at_load),
        T(test_heap_pool_state_follows_the_archive),
        T(test_heap_frozensets_rebuilt),
        T(test_heap_negative_ints),
        T(test_heap_survives_gc),
        T(test_heap_quickened_code_archived_deoptimised),
        T(test_heap_patches_moved_types_and_externals),
        T(test_heap_refcounts_after_load),
        T(test_heap_interned_state_after_load),
        T(test_heap_code_state_after_load),
        T(test_heap_code_versions_unique),
        T(test_heap_unsupported_constants),
        T(test_heap_validate_accepts_archives),
        T(test_heap_validate_any_order),
        T(test_heap_load_only_region),
        T(test_heap_copy_mode_moves),
        T(test_heap_validate_refcount),
        T(test_heap_validate_str),
        T(test_heap_validate_bytes),
        T(test_heap_validate_int),
        T(test_heap_validate_float_complex),
        T(test_heap_validate_tuple),
        T(test_heap_validate_slot_in_header),
        T(test_heap_validate_code_layout),
        T(test_heap_validate_code_fields),
        T(test_heap_validate_code_counts),
        T(test_heap_fingerprint),
    };
#undef T
    if (unit_select(argc, argv, tests, UNIT_ARRAY_SIZE(tests)) < 0) {
        return 2;
    }
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
