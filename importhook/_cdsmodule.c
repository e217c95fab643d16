/* SPDX-License-Identifier: MIT */
/* _cds: the import hook.  Reads PYCDSMODE and does TRACE, DUMP or SHARE.
 *
 * pycds.pth (or, from a build tree, the CLI's sitecustomize) calls
 * _activate() during site import when PYCDSMODE is set.  The hot paths
 * are C: the finder's miss (one hash probe) and get_code (validate and
 * patch a segment on first use, then hand out the same code object).  The
 * Python glue (glue.py, embedded) is DUMP's: TRACE and SHARE run no
 * Python code of pycds (no frame of ours in a profiler, nothing to
 * unmarshal at start-up).
 *
 * Invariants:
 *  1. The archive is a cache: any problem with it produces at most one
 *     warning line on stderr per process and the import system carries on
 *     as if pycds were absent.  No exception from pycds reaches an import.
 *  2. The mapping is process-global and never unmapped once a segment has
 *     been handed out (heap.c inv. 1); so the state here is process-global
 *     too, and only the main interpreter activates.
 *  3. A segment is patched at most once; a segment that fails validation
 *     is never touched and its module is imported normally. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <marshal.h>

#include "archive.h"
#include "checksum.h"
#include "heap.h"
#include "marshal_walk.h"
#include "modlist.h"
#include "writer.h"

#include "glue.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { MODE_OFF, MODE_TRACE, MODE_DUMP, MODE_SHARE };
/* PYCDSCHECK: how SHARE decides a source is unchanged since the dump */
enum { CHECK_STAT, CHECK_HASH, CHECK_NONE };
enum { SEG_UNLOADED = 0, SEG_LOADING, SEG_LOADED, SEG_BAD };

static struct {
    int mode;
    int verbose;
    int warned;
    int prefault;        /* PYCDSPREFAULT, default on */
    int check;           /* CHECK_*, PYCDSCHECK */
    int disabled;        /* the archive is no longer usable at all */
    PyObject *glue;      /* the glue's namespace */
    /* SHARE */
    cds_archive archive;
    const char *archive_path;
    uint8_t *seg_state;  /* per module: SEG_* */
    PyObject **codes;    /* per module: the loaded code object */
    PyObject **loaders;  /* per module: the loader find_spec last made */
    PyObject *finder;
    PyObject *module_spec;          /* ModuleSpec */
    PyObject *file_finder;          /* FileFinder */
    PyObject *path_importer_cache;  /* PathFinder._path_importer_cache */
    int py_verbose;                 /* sys.flags.verbose (-v) */
    Py_ssize_t nserved, nmissed, nstale, nfailed;
    uint64_t load_ns, find_ns; /* time in segment loading, in find_spec */
    /* TRACE */
    int trace_fd;
    PyObject *traced;    /* set of names written */
} G = {.trace_fd = -1};

static PyObject *orig_get_code; /* SourceLoader.get_code */
static PyObject *sfl_type;      /* SourceFileLoader */

/* inv. 1: the one warning. */
static void
warn_once(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
warn_once(const char *fmt, ...)
{
    char buf[2 * PATH_MAX + 1024]; /* an archive path, a module path */
    va_list ap;

    if (G.warned++) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    /* not PySys_WriteStderr: it cuts at 1000 bytes, newline included */
    PySys_FormatStderr("pycds: warning: %s\n", buf);
}

#define VERBOSE(level, ...)                                                 \
    do {                                                                    \
        if (G.verbose >= (level)) {                                         \
            PySys_WriteStderr(__VA_ARGS__);                                 \
        }                                                                   \
    } while (0)

static int install_get_code(void);

static PyObject *
glue_get(const char *name)
{
    PyObject *o = PyDict_GetItemString(G.glue, name);
    if (o == NULL && !PyErr_Occurred()) {
        PyErr_Format(PyExc_SystemError, "pycds glue lacks %s", name);
    }
    return o; /* borrowed */
}

/* A class of importlib's frozen halves, loaded long before site runs:
 * TRACE and SHARE need no glue (nothing to unmarshal and run at
 * start-up).  A new reference, which the callers keep for the life of the
 * process (inv. 2); NULL with an exception. */
static PyObject *
importlib_get(const char *name)
{
    static const char *const modules[] = {"_frozen_importlib_external",
                                          "_frozen_importlib"};
    PyObject *sysmods = PyImport_GetModuleDict(); /* borrowed */

    for (size_t i = 0; i < sizeof(modules) / sizeof(modules[0]); i++) {
        PyObject *m = PyDict_GetItemString(sysmods, modules[i]);
        PyObject *o = m != NULL ? PyObject_GetAttrString(m, name) : NULL;
        if (o != NULL) {
            return o;
        }
        PyErr_Clear();
    }
    PyErr_Format(PyExc_SystemError, "pycds: importlib lacks %s", name);
    return NULL;
}

/* 0 when this _cds can work in the running interpreter (the version and
 * object layout it was compiled for); else 1, with buf saying why not
 * and what to do, naming both interpreters by path and version.  Makes
 * no Python object: it cannot fail. */
static int
runtime_problem(char *buf, size_t size)
{
    cds_error err;
    PyObject *exe = PySys_GetObject("executable"); /* borrowed */
    const char *path = NULL;
    const char *version = Py_GetVersion(); /* "3.11.7 (main, ...)" */

    if (cds_heap_check_runtime(&err) == 0) {
        return 0;
    }
    if (exe != NULL && PyUnicode_Check(exe) &&
        PyUnicode_GET_LENGTH(exe) > 0) {
        path = PyUnicode_AsUTF8(exe);
    }
    if (path == NULL) {
        PyErr_Clear();
        path = "this interpreter";
    }
    if ((uint32_t)Py_Version != (uint32_t)PY_VERSION_HEX) {
        snprintf(buf, size,
                 "pycds was built for Python %s (%s), not for Python %.*s "
                 "(%s): rebuild pycds for it (cmake -DPYCDS_PYTHON=%s)",
                 PY_VERSION, PYCDS_BUILD_PYTHON,
                 (int)strcspn(version, " "), version, path, path);
    }
    else {
        snprintf(buf, size,
                 "pycds cannot work in %s: %s; rebuild pycds for it (cmake "
                 "-DPYCDS_PYTHON=%s)",
                 path, err.message, path);
    }
    return 1;
}

/* ---------------------------------------------------------------------
 * SHARE: the finder and get_code */

/* XXH3 of the file at path and its size; 0 or -1 (errno). */
static int
hash_file(const char *path, uint64_t *hash, uint64_t *size)
{
    struct stat st;
    uint8_t *buf = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc = -1;

    if (fd < 0) {
        return -1;
    }
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
        size_t n = (size_t)st.st_size, got = 0;
        buf = malloc(n ? n : 1);
        while (buf != NULL && got < n) {
            ssize_t r = read(fd, buf + got, n - got);
            if (r <= 0) {
                break;
            }
            got += (size_t)r;
        }
        if (buf != NULL && got == n) {
            *hash = cds_hash(buf, n);
            *size = n;
            rc = 0;
        }
    }
    free(buf);
    close(fd);
    return rc;
}

/* Never stale (issue 3, item 4), at the cost the user chose: by default
 * the same stat the path finder's loader would make, size and mtime to
 * the nanosecond; PYCDSCHECK=hash compares the source's bytes (for trees
 * whose mtimes are not kept); PYCDSCHECK=none trusts an immutable tree
 * and makes no system call at all. */
static int
source_unchanged(uint32_t ix, const char *name, int report)
{
    const struct cds_disk_module *m = &G.archive.modules[ix];
    const char *origin = cds_module_origin(&G.archive, ix);
    struct stat st;
    uint64_t hash, size;
    int gone;

    if (G.check == CHECK_NONE) {
        return 1;
    }
    if (G.check == CHECK_HASH) {
        gone = hash_file(origin, &hash, &size) != 0;
        if (!gone && size == m->source_size && hash == m->source_hash) {
            return 1;
        }
    }
    else {
        gone = stat(origin, &st) != 0;
        if (!gone && (uint64_t)st.st_size == m->source_size &&
            (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec ==
                m->source_mtime_ns) {
            return 1;
        }
    }
    if (report) {
        G.nstale++;
        VERBOSE(1, "pycds: %s: not served: source %s %s since the dump\n",
                name, origin, gone ? "gone" : "changed");
    }
    return 0;
}

static uint64_t
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Count a module served and say so: PYCDSVERBOSE=1, and python -v with
 * the line SourceLoader.get_code prints for a .pyc ("# code object from
 * '...'"), naming the archive instead. */
static void
report_served(const char *name, const char *path)
{
    G.nserved++;
    VERBOSE(1, "pycds: %s: served from archive\n", name);
    if (G.py_verbose) {
        PySys_FormatStderr("# code object from pycds archive '%s' for '%s'\n",
                           G.archive_path, path);
    }
}

/* The archived code object for module fullname from file path, asked by
 * loader; NULL (and no exception: inv. 1) when it is not served. */
static PyObject *
archived_code(PyObject *loader, PyObject *fullname, PyObject *pathobj)
{
    Py_ssize_t len;
    const char *name, *path;
    uint32_t ix;
    cds_error err;
    int rc;

    name = PyUnicode_AsUTF8AndSize(fullname, &len);
    path = PyUnicode_Check(pathobj) ? PyUnicode_AsUTF8(pathobj) : NULL;
    if (name == NULL || path == NULL) {
        PyErr_Clear();
        return NULL;
    }
    if (G.seg_state == NULL || G.disabled ||
        cds_archive_find(&G.archive, name, (size_t)len, &ix) < 0 ||
        strcmp(cds_module_origin(&G.archive, ix), path) != 0) {
        return NULL;
    }
    /* a loader the finder did not make (importlib.reload makes its own
     * through the finder; pydoc.importfile, runpy and friends do not):
     * the finder's staleness check has not run for it */
    if (G.loaders[ix] != loader && !source_unchanged(ix, name, 0)) {
        return NULL;
    }
    switch (G.seg_state[ix]) {
    case SEG_LOADED:
        report_served(name, path);
        return Py_NewRef(G.codes[ix]);
    case SEG_BAD:
    case SEG_LOADING:
        /* inv. 3: loading can allocate, so collect garbage, so run a
         * finalizer that switches threads; another thread asking for the
         * same segment then imports it normally */
        return NULL;
    }
    G.seg_state[ix] = SEG_LOADING;
    uint64_t t0 = now_ns();
    /* an archive overwritten in place: pages past its new end would
     * fault with SIGBUS (inv. 1) */
    if (cds_archive_check_file(&G.archive, &err) < 0) {
        G.seg_state[ix] = SEG_BAD;
        G.disabled = 1;
        G.nfailed++;
        warn_once("archive %s: %s; using the normal import system",
                  G.archive_path, err.message);
        return NULL;
    }
    /* The prefault changes no byte, only who owns the pages: done first,
     * validation reads private pages instead of mapping the file's and
     * having them copied right after (2 ms of 27 on sympy).  A segment
     * that then fails validation has cost some copying, nothing else. */
    rc = 0;
    if (G.prefault) {
        rc = cds_segment_prefault(&G.archive, ix, &err);
    }
    /* inv. 3: validate everything before the first write */
    if (rc == 0) {
        rc = cds_segment_validate(&G.archive, ix, &err);
    }
    /* object bodies: what marshal and _PyCode_New could have built */
    if (rc == 0) {
        rc = cds_heap_validate(&G.archive, ix, &err);
    }
    if (rc == 0) {
        rc = cds_heap_load(&G.archive, ix, &G.codes[ix], &err);
    }
    if (rc == 0) {
        cds_segment_release_lists(&G.archive, ix);
    }
    G.load_ns += now_ns() - t0;
    if (rc < 0) {
        G.seg_state[ix] = SEG_BAD;
        G.nfailed++;
        warn_once("archive %s: %s (%s); importing it normally",
                  G.archive_path, err.message, cds_status_name(rc));
        VERBOSE(1, "pycds: %s: not served: %s\n", name, err.message);
        return NULL;
    }
    G.seg_state[ix] = SEG_LOADED;
    report_served(name, path);
    VERBOSE(2, "pycds: %s: segment of %u objects, %u relocations%s, "
               "%u interned\n",
            name, G.archive.modules[ix].nobjects,
            G.archive.modules[ix].nreloc,
            cds_archive_at_base(&G.archive) ? " (at base: none applied)"
                                            : "",
            G.archive.modules[ix].nintern);
    return Py_NewRef(G.codes[ix]);
}

/* The finder of one path entry, as PathFinder._path_importer_cache gets
 * it: sys.path_importer_cache first (a dict lookup: no call, no frame),
 * the method itself on a miss or for '' (it makes and caches the
 * finder).  New reference (Py_None: no finder), or NULL with an
 * exception. */
static PyObject *
entry_finder(PyObject *entry)
{
    PyObject *cache = PySys_GetObject("path_importer_cache"); /* borrowed */

    if (cache != NULL && PyDict_Check(cache) && PyUnicode_Check(entry) &&
        PyUnicode_GET_LENGTH(entry) > 0) {
        PyObject *f = PyDict_GetItemWithError(cache, entry);
        if (f != NULL) {
            return Py_NewRef(f);
        }
        if (PyErr_Occurred()) {
            return NULL;
        }
    }
    return PyObject_CallOneArg(G.path_importer_cache, entry);
}

/* Does finder load plain source files of directory dir (a trailing '/'
 * aside)?  A FileFinder of that directory whose loader for ".py", the
 * first of its (suffix, loader) pairs with that suffix, as
 * FileFinder.find_spec tries them, is exactly SourceFileLoader: a path
 * hook made with FileFinder.path_hook((MyLoader, [".py"])) (import-time
 * transformers do this) loads with its own loader, and the archive steps
 * aside.  1, 0, or -1 with an exception. */
static int
finder_is_dir(PyObject *finder, const char *dir)
{
    Py_ssize_t n;
    const char *p;
    size_t dlen = strlen(dir);
    int r = 0;

    if ((PyObject *)Py_TYPE(finder) != G.file_finder) {
        return 0;
    }
    PyObject *path = PyObject_GetAttrString(finder, "path");
    if (path == NULL) {
        return -1;
    }
    if (PyUnicode_Check(path) &&
        (p = PyUnicode_AsUTF8AndSize(path, &n)) != NULL) {
        while (n > 1 && p[n - 1] == '/') {
            n--;
        }
        r = (size_t)n == dlen && memcmp(p, dir, dlen) == 0;
    }
    Py_DECREF(path);
    if (r != 1) {
        return PyErr_Occurred() ? -1 : 0;
    }
    PyObject *loaders = PyObject_GetAttrString(finder, "_loaders");
    if (loaders == NULL) {
        return -1;
    }
    r = -2; /* no ".py" pair: not a finder of source files */
    if (PyList_Check(loaders)) {
        for (Py_ssize_t i = 0; r == -2 && i < PyList_GET_SIZE(loaders); i++) {
            PyObject *pair = PyList_GET_ITEM(loaders, i);
            if (PyTuple_Check(pair) && PyTuple_GET_SIZE(pair) == 2 &&
                PyUnicode_Check(PyTuple_GET_ITEM(pair, 0)) &&
                PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(pair, 0),
                                                 ".py") == 0) {
                r = PyTuple_GET_ITEM(pair, 1) == sfl_type;
            }
        }
    }
    Py_DECREF(loaders);
    return r == 1;
}

/* Would PathFinder find name's archived file?  It takes the first entry
 * of path (the parent package's __path__; sys.path for a top-level name)
 * whose finder finds name with a loader (a namespace portion does not
 * stop it), so the archived directory, search, must come before any such
 * entry: an override directory put first on a package's __path__, or a
 * directory earlier on sys.path, shadows the archive.  An earlier finder
 * that fails, or that only has the legacy find_module API, is not judged
 * here: the archive steps aside and PathFinder does what it does with it
 * (raise, or use it).  1: yes; 0: no, and *why (new str, or NULL when it
 * could not be made) says why; -1: an exception. */
/* An exception that is no error of a finder's (KeyboardInterrupt,
 * SystemExit): it goes on to the import, as without pycds. */
static int
check_interrupted(void)
{
    return PyErr_Occurred() && !PyErr_ExceptionMatches(PyExc_Exception);
}

static int
archived_dir_first(PyObject *name, PyObject *path, PyObject *target,
                   const char *search, PyObject **why)
{
    PyObject *entries = path, *it, *entry;
    const char *where = path == Py_None ? "sys.path"
                                        : "the package's __path__";
    int found = 0, stop = 0;

    *why = NULL;
    if (path == Py_None) {
        entries = PySys_GetObject("path"); /* borrowed */
        if (entries == NULL) {
            return -1;
        }
    }
    if ((it = PyObject_GetIter(entries)) == NULL) {
        return -1;
    }
    while (!found && !stop && (entry = PyIter_Next(it)) != NULL) {
        PyObject *finder = NULL, *spec = NULL, *loader = NULL;
        /* PathFinder skips entries that are not str (bytes included) */
        if (!PyUnicode_Check(entry)) {
            Py_DECREF(entry);
            continue;
        }
        finder = entry_finder(entry);
        if (finder == NULL) {
            stop = 1;
            if (check_interrupted()) {
                goto interrupted;
            }
            PyErr_Clear();
            *why = PyUnicode_FromFormat("the finder of %R failed", entry);
        }
        else if (finder != Py_None &&
                 (found = finder_is_dir(finder, search)) == 0) {
            spec = PyObject_CallMethod(finder, "find_spec", "OO", name,
                                       target);
            if (spec == NULL) {
                stop = 1;
                if (check_interrupted()) {
                    goto interrupted;
                }
                *why = PyUnicode_FromFormat(
                    PyErr_ExceptionMatches(PyExc_AttributeError)
                        ? "the finder of %R is not one PathFinder asks "
                          "with find_spec"
                        : "the finder of %R failed",
                    entry);
                PyErr_Clear();
            }
            else if (spec != Py_None &&
                     ((loader = PyObject_GetAttrString(spec, "loader")) ==
                          NULL ||
                      loader != Py_None)) {
                stop = 1;
                if (check_interrupted()) {
                    goto interrupted;
                }
                PyErr_Clear();
                *why = PyUnicode_FromFormat("shadowed by %R, earlier in %s",
                                            entry, where);
            }
        }
        if (found < 0) {
            stop = 1;
            found = 0;
            if (check_interrupted()) {
                goto interrupted;
            }
            PyErr_Clear();
            *why = PyUnicode_FromFormat("the finder of %R failed", entry);
        }
        Py_XDECREF(loader);
        Py_XDECREF(spec);
        Py_XDECREF(finder);
        Py_DECREF(entry);
        /* a message that could not be made is no reason to go on: stop
         * stays set (inv. 1) */
        PyErr_Clear();
        continue;
    interrupted:
        Py_XDECREF(loader);
        Py_XDECREF(spec);
        Py_XDECREF(finder);
        Py_DECREF(entry);
        Py_DECREF(it);
        Py_CLEAR(*why);
        return -1;
    }
    Py_DECREF(it);
    if (PyErr_Occurred()) {
        Py_CLEAR(*why);
        return -1;
    }
    if (!found && !stop) {
        *why = PyUnicode_FromFormat("directory %s is not in %s", search,
                                    where);
    }
    return found;
}

/* What FileFinder builds for an archived file (spec_from_file_location),
 * minus the work the archive has done already: origin is absolute, and
 * the package flag is the same test on the file name that
 * SourceFileLoader.is_package makes.  New reference or NULL. */
static PyObject *
make_spec(PyObject *name, const char *origin, int is_package)
{
    PyObject *path = PyUnicode_DecodeFSDefault(origin);
    PyObject *loader = NULL, *args = NULL, *kwargs = NULL, *spec = NULL;

    if (path == NULL ||
        (loader = PyObject_CallFunctionObjArgs(sfl_type, name, path,
                                               NULL)) == NULL ||
        (args = PyTuple_Pack(2, name, loader)) == NULL ||
        (kwargs = Py_BuildValue("{s:O}", "origin", path)) == NULL ||
        (spec = PyObject_Call(G.module_spec, args, kwargs)) == NULL ||
        PyObject_SetAttrString(spec, "_set_fileattr", Py_True) < 0) {
        goto fail;
    }
    if (is_package) {
        const char *slash = strrchr(origin, '/');
        PyObject *dir = PyUnicode_DecodeFSDefaultAndSize(
            origin, slash != NULL ? slash - origin : 0);
        PyObject *locations = dir != NULL ? PyList_New(1) : NULL;
        if (locations == NULL) {
            Py_XDECREF(dir);
            goto fail;
        }
        PyList_SET_ITEM(locations, 0, dir);
        int rc = PyObject_SetAttrString(spec, "submodule_search_locations",
                                        locations);
        Py_DECREF(locations);
        if (rc < 0) {
            goto fail;
        }
    }
    goto out;
fail:
    Py_CLEAR(spec);
out:
    Py_XDECREF(kwargs);
    Py_XDECREF(args);
    Py_XDECREF(loader);
    Py_XDECREF(path);
    return spec;
}

static PyObject *find_spec_impl(PyObject *const *args, Py_ssize_t nargs,
                                PyObject *kwnames);

static PyObject *
finder_find_spec(PyObject *Py_UNUSED(self), PyObject *const *args,
                 Py_ssize_t nargs, PyObject *kwnames)
{
    uint64_t t0 = now_ns();
    PyObject *r = find_spec_impl(args, nargs, kwnames);
    G.find_ns += now_ns() - t0;
    return r;
}

static PyObject *
find_spec_impl(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    Py_ssize_t len;
    const char *name;
    uint32_t ix;
    PyObject *path = Py_None, *target = Py_None;

    if (nargs < 1 || nargs > 3 ||
        (kwnames != NULL && PyTuple_GET_SIZE(kwnames) > 3 - nargs)) {
        PyErr_SetString(PyExc_TypeError,
                        "find_spec(fullname, path=None, target=None)");
        return NULL;
    }
    if (nargs >= 2) {
        path = args[1];
    }
    if (nargs >= 3) {
        target = args[2];
    }
    for (Py_ssize_t i = 0; kwnames != NULL && i < PyTuple_GET_SIZE(kwnames);
         i++) {
        PyObject *kw = PyTuple_GET_ITEM(kwnames, i);
        if (PyUnicode_CompareWithASCIIString(kw, "path") == 0) {
            path = args[nargs + i];
        }
        else if (PyUnicode_CompareWithASCIIString(kw, "target") == 0) {
            target = args[nargs + i];
        }
    }
    name = PyUnicode_AsUTF8AndSize(args[0], &len);
    if (name == NULL) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    if (G.disabled) {
        Py_RETURN_NONE;
    }
    if (cds_archive_find(&G.archive, name, (size_t)len, &ix) < 0) {
        G.nmissed++;
        VERBOSE(1, "pycds: %s: not in archive\n", name);
        Py_RETURN_NONE;
    }
    if (G.seg_state[ix] == SEG_BAD) {
        VERBOSE(1, "pycds: %s: not served: archive segment is bad\n", name);
        Py_RETURN_NONE;
    }
    const struct cds_disk_module *m = &G.archive.modules[ix];
    const char *origin = cds_module_origin(&G.archive, ix);
    if (!source_unchanged(ix, name, 1)) {
        Py_RETURN_NONE;
    }
    PyObject *why = NULL;
    int first = archived_dir_first(args[0], path, target,
                                   cds_module_search(&G.archive, ix), &why);
    PyObject *spec = NULL;
    if (first == 1) {
        spec = make_spec(args[0], origin, m->flags & CDS_MODULE_PACKAGE);
    }
    if (spec == NULL) {
        if (check_interrupted()) {
            return NULL;
        }
        /* inv. 1: a failure here must not fail the import */
        PyErr_Clear();
        if (first == 0) {
            G.nmissed++;
            const char *w = why != NULL ? PyUnicode_AsUTF8(why) : NULL;
            VERBOSE(1, "pycds: %s: not served: %s\n", name,
                    w != NULL ? w : "path check failed");
            Py_XDECREF(why);
            PyErr_Clear();
        }
        Py_RETURN_NONE;
    }
    /* remember the loader this check was made for */
    PyObject *loader = PyObject_GetAttrString(spec, "loader");
    if (loader == NULL) {
        PyErr_Clear();
    }
    Py_XSETREF(G.loaders[ix], loader);
    return spec;
}

static PyObject *
finder_invalidate_caches(PyObject *Py_UNUSED(self),
                         PyObject *Py_UNUSED(ignored))
{
    Py_RETURN_NONE;
}

static PyObject *
finder_repr(PyObject *Py_UNUSED(self))
{
    return PyUnicode_FromFormat("<pycds archive finder %s>", G.archive_path);
}

static PyMethodDef finder_methods[] = {
    {"find_spec", (PyCFunction)(void (*)(void))finder_find_spec,
     METH_FASTCALL | METH_KEYWORDS,
     "find_spec(fullname, path=None, target=None): a spec for an archived "
     "module, or None."},
    {"invalidate_caches", finder_invalidate_caches, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot finder_slots[] = {
    {Py_tp_methods, finder_methods},
    {Py_tp_repr, finder_repr},
    {Py_tp_doc, "Meta path finder serving modules from a pycds archive."},
    {0, NULL},
};

static PyType_Spec finder_spec = {
    .name = "_cds.ArchiveFinder",
    .basicsize = sizeof(PyObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = finder_slots,
};

/* Insert the finder just before PathFinder: builtin and frozen modules
 * keep their precedence, as they would over a .pyc. */
static int
install_finder(PyObject *finder)
{
    PyObject *meta_path = PySys_GetObject("meta_path"); /* borrowed */
    PyObject *pathfinder = importlib_get("PathFinder");
    Py_ssize_t i, n;

    if (meta_path == NULL || !PyList_Check(meta_path) || pathfinder == NULL) {
        Py_XDECREF(pathfinder);
        PyErr_Clear();
        return -1;
    }
    n = PyList_GET_SIZE(meta_path);
    for (i = 0; i < n; i++) {
        if (PyList_GET_ITEM(meta_path, i) == pathfinder) {
            break;
        }
    }
    Py_DECREF(pathfinder);
    return PyList_Insert(meta_path, i, finder);
}

static int
load_glue(void)
{
    PyObject *code, *builtins;

    if (G.glue != NULL) {
        return 0;
    }
    code = PyMarshal_ReadObjectFromString((const char *)glue_code,
                                          sizeof(glue_code));
    if (code == NULL) {
        return -1;
    }
    G.glue = PyDict_New();
    builtins = PyEval_GetBuiltins();
    if (G.glue == NULL ||
        PyDict_SetItemString(G.glue, "__builtins__", builtins) < 0) {
        Py_DECREF(code);
        return -1;
    }
    PyObject *modname = PyUnicode_FromString("_cds");
    if (modname == NULL ||
        PyDict_SetItemString(G.glue, "__name__", modname) < 0) {
        Py_XDECREF(modname);
        Py_DECREF(code);
        return -1;
    }
    Py_DECREF(modname);
    PyObject *r = PyEval_EvalCode(code, G.glue, G.glue);
    Py_DECREF(code);
    if (r == NULL) {
        return -1;
    }
    Py_DECREF(r);
    return 0;
}

static void
activate_share(void)
{
    struct cds_disk_fingerprint fp;
    cds_error err;
    unsigned flags = CDS_OPEN_WRITABLE | CDS_OPEN_TRUSTED;
    const char *reloc = getenv("PYCDSRELOCATE");
    int rc;

    G.archive_path = getenv("PYCDSARCHIVE");
    if (G.archive_path == NULL || G.archive_path[0] == '\0') {
        warn_once("PYCDSMODE=SHARE without PYCDSARCHIVE; "
                  "using the normal import system");
        return;
    }
    if (reloc != NULL && reloc[0] != '\0' && strcmp(reloc, "0") != 0) {
        flags |= CDS_OPEN_RELOCATE;
    }
    char problem[2 * PATH_MAX + 256];
    if (runtime_problem(problem, sizeof(problem))) {
        warn_once("%s; using the normal import system", problem);
        return;
    }
    if ((rc = cds_heap_fingerprint(&fp, &err)) < 0 ||
        (rc = cds_archive_open(&G.archive, G.archive_path, flags, &fp,
                               &err)) < 0) {
        warn_once("archive %s: %s (%s); using the normal import system",
                  G.archive_path, err.message, cds_status_name(rc));
        return;
    }
    /* -O and -OO select other .pyc files: code compiled with another
     * level must not be served (asserts, __debug__, docstrings) */
    if (G.archive.header->optimize != (uint32_t)Py_OptimizeFlag) {
        warn_once("archive %s: written for optimization level %u, running "
                  "at %d; using the normal import system",
                  G.archive_path, G.archive.header->optimize,
                  Py_OptimizeFlag);
        cds_archive_close(&G.archive);
        return;
    }
    uint32_t n = G.archive.header->nmodules;
    G.seg_state = calloc(n ? n : 1, 1);
    G.codes = calloc(n ? n : 1, sizeof(PyObject *));
    G.loaders = calloc(n ? n : 1, sizeof(PyObject *));
    if (G.seg_state == NULL || G.codes == NULL || G.loaders == NULL) {
        free(G.seg_state);
        free(G.codes);
        free(G.loaders);
        G.seg_state = NULL;
        cds_archive_close(&G.archive);
        warn_once("archive %s: out of memory; using the normal import "
                  "system", G.archive_path);
        return;
    }
    PyObject *type = NULL, *pathfinder = importlib_get("PathFinder");
    if (pathfinder != NULL) {
        G.path_importer_cache =
            PyObject_GetAttrString(pathfinder, "_path_importer_cache");
        Py_DECREF(pathfinder);
    }
    if (G.path_importer_cache == NULL ||
        (G.module_spec = importlib_get("ModuleSpec")) == NULL ||
        (G.file_finder = importlib_get("FileFinder")) == NULL ||
        install_get_code() < 0 ||
        (type = PyType_FromSpec(&finder_spec)) == NULL ||
        (G.finder = PyObject_CallNoArgs(type)) == NULL ||
        install_finder(G.finder) < 0) {
        PyErr_Clear();
        Py_XDECREF(type);
        free(G.seg_state);
        free(G.codes);
        free(G.loaders);
        G.seg_state = NULL;
        cds_archive_close(&G.archive); /* nothing handed out yet */
        warn_once("archive %s: cannot install the finder; using the normal "
                  "import system", G.archive_path);
        return;
    }
    Py_DECREF(type);
    /* python -v: say where served code comes from, as the loader does */
    PyObject *sysflags = PySys_GetObject("flags"); /* borrowed */
    PyObject *v = sysflags != NULL
                      ? PyObject_GetAttrString(sysflags, "verbose")
                      : NULL;
    G.py_verbose = v != NULL && PyLong_Check(v) ? (int)PyLong_AsLong(v) : 0;
    Py_XDECREF(v);
    PyErr_Clear();
    VERBOSE(1, "pycds: archive %s: %u modules, mapped %s\n", G.archive_path,
            n, cds_archive_at_base(&G.archive) ? "at its base"
                                               : "elsewhere (relocating)");
}

/* ---------------------------------------------------------------------
 * TRACE */

/* TRACE one module name (once per process). */
static void
record_name(PyObject *name)
{
    Py_ssize_t len;
    const char *s;
    int r;

    if (G.traced == NULL || G.trace_fd < 0 || !PyUnicode_Check(name)) {
        return;
    }
    r = PySet_Contains(G.traced, name);
    if (r != 0) {
        if (r < 0) {
            PyErr_Clear();
        }
        return;
    }
    if (PySet_Add(G.traced, name) < 0 ||
        (s = PyUnicode_AsUTF8AndSize(name, &len)) == NULL) {
        PyErr_Clear();
        return;
    }
    /* site imports these before pycds is active, from whatever directory
     * is first on sys.path then (the CLI's activation directory): never
     * archived */
    if (strcmp(s, "sitecustomize") == 0 || strcmp(s, "usercustomize") == 0) {
        return;
    }
    /* one write(2) per name on an O_APPEND descriptor: the line is in the
     * file the moment it returns, whatever happens to the process later,
     * and concurrent tracers do not interleave within a line */
    char *line = PyMem_Malloc((size_t)len + 2);
    if (line != NULL) {
        memcpy(line, s, (size_t)len);
        line[len] = '\n';
        if (write(G.trace_fd, line, (size_t)len + 1) < 0) {
            warn_once("cannot write trace list: %s", strerror(errno));
        }
        PyMem_Free(line);
    }
    VERBOSE(2, "pycds: traced %s\n", s);
}

/* ---------------------------------------------------------------------
 * SourceFileLoader.get_code, as TRACE and SHARE see it */


/* A C method of SourceFileLoader, so that no frame of ours appears in a
 * traceback through it (importlib's frame trimming would not know it).
 * SHARE: a plain SourceFileLoader (subclasses may transform the source)
 * for an archived module's file gets the archived code.  TRACE: records
 * what the original loaded. */
static PyObject *
loader_get_code(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *code, *call[2];

    if (G.mode == MODE_SHARE && nargs == 1 &&
        (PyObject *)Py_TYPE(self) == sfl_type) {
        PyObject *path = PyObject_GetAttrString(self, "path");
        if (path == NULL) {
            PyErr_Clear();
        }
        else {
            code = archived_code(self, args[0], path);
            Py_DECREF(path);
            if (code != NULL) {
                return code;
            }
        }
    }
    if (nargs != 1) {
        PyErr_SetString(PyExc_TypeError, "get_code(fullname)");
        return NULL;
    }
    call[0] = self;
    call[1] = args[0];
    code = PyObject_Vectorcall(orig_get_code, call, 2, NULL);
    if (G.mode == MODE_TRACE && code != NULL) {
        record_name(args[0]);
    }
    return code;
}

static PyMethodDef loader_get_code_def = {
    "get_code", (PyCFunction)(void (*)(void))loader_get_code, METH_FASTCALL,
    "Code object for the module: from the pycds archive when it is served "
    "there, otherwise as SourceLoader.get_code.",
};

/* Put loader_get_code on SourceFileLoader. */
static int
install_get_code(void)
{
    PyObject *sl = importlib_get("SourceLoader"), *descr;

    if (sfl_type == NULL) {
        sfl_type = importlib_get("SourceFileLoader");
    }
    if (sl == NULL || sfl_type == NULL || !PyType_Check(sfl_type)) {
        Py_XDECREF(sl);
        return -1;
    }
    orig_get_code = PyObject_GetAttrString(sl, "get_code");
    Py_DECREF(sl);
    if (orig_get_code == NULL) {
        return -1;
    }
    descr = PyDescr_NewMethod((PyTypeObject *)sfl_type, &loader_get_code_def);
    if (descr == NULL) {
        return -1;
    }
    int rc = PyObject_SetAttrString(sfl_type, "get_code", descr);
    Py_DECREF(descr);
    return rc;
}

static void
activate_trace(void)
{
    const char *list = getenv("PYCDSLIST");

    if (list == NULL || list[0] == '\0') {
        warn_once("PYCDSMODE=TRACE without PYCDSLIST; not tracing");
        return;
    }
    /* what is traced is only worth dumping with a pycds built for this
     * interpreter: say so now, not at the dump */
    char problem[2 * PATH_MAX + 256];
    if (runtime_problem(problem, sizeof(problem))) {
        warn_once("%s; not tracing", problem);
        return;
    }
    G.trace_fd = open(list, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
    if (G.trace_fd < 0) {
        warn_once("cannot open trace list %s: %s", list, strerror(errno));
        return;
    }
    G.traced = PySet_New(NULL);
    if (G.traced == NULL || install_get_code() < 0) {
        PyErr_Clear();
        warn_once("cannot install the tracer");
        return;
    }
}

/* ---------------------------------------------------------------------
 * DUMP */

/* A DUMP failure the user can act on (a list that cannot be read, an
 * archive that cannot be written, an interpreter pycds is not built for):
 * one line, no exception name (issue 6). */
struct dump_error {
    char message[2 * PATH_MAX + 256]; /* two paths and some words */
};

static int
dump_fail(struct dump_error *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
dump_fail(struct dump_error *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
    return -1;
}

/* A skipped line or module: one line on stderr, whole whatever its length
 * (PySys_WriteStderr would cut it at 1000 bytes). */
static void
report_skip(const char *fmt, ...)
{
    va_list ap;
    PyObject *line;

    va_start(ap, fmt);
    line = PyUnicode_FromFormatV(fmt, ap);
    va_end(ap);
    if (line == NULL) {
        PyErr_Clear();
        return;
    }
    PySys_FormatStderr("pycds: dump: %U\n", line);
    Py_DECREF(line);
}

/* Read the list: one name per line, of any length, '#' comments, blanks
 * ignored, each name once, in first-seen order (the import order of the
 * trace).  A line that is not UTF-8 or holds a NUL byte is reported with
 * its number and skipped (*nskipped).  The names, or NULL with an
 * exception (out of memory) or with e filled. */
static PyObject *
read_list(const char *path, Py_ssize_t *nskipped, struct dump_error *e)
{
    FILE *f = fopen(path, "r");
    PyObject *names = NULL, *seen = NULL;
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    unsigned long lineno = 0;

    if (f == NULL) {
        dump_fail(e, "cannot open list %s: %s", path, strerror(errno));
        return NULL;
    }
    names = PyList_New(0);
    seen = PySet_New(NULL);
    if (names == NULL || seen == NULL) {
        goto fail;
    }
    while ((got = getline(&line, &cap, f)) >= 0) {
        const char *p;
        size_t n;
        lineno++;
        enum cds_list_line kind = cds_list_line_parse(line, (size_t)got, &p,
                                                      &n);
        if (kind == CDS_LIST_NUL) {
            report_skip("%s:%lu: skipping a line with a NUL byte", path,
                        lineno);
            ++*nskipped;
            continue;
        }
        if (kind == CDS_LIST_BLANK) {
            continue;
        }
        PyObject *name = PyUnicode_DecodeUTF8(p, (Py_ssize_t)n, "strict");
        if (name == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
                goto fail;
            }
            PyErr_Clear();
            report_skip("%s:%lu: skipping a name that is not UTF-8", path,
                        lineno);
            ++*nskipped;
            continue;
        }
        int r = PySet_Contains(seen, name);
        if (r == 0 && (PySet_Add(seen, name) < 0 ||
                       PyList_Append(names, name) < 0)) {
            r = -1;
        }
        Py_DECREF(name);
        if (r < 0) {
            goto fail;
        }
    }
    if (ferror(f)) {
        dump_fail(e, "cannot read list %s: %s", path, strerror(errno));
        Py_CLEAR(names);
    }
    free(line);
    fclose(f);
    Py_DECREF(seen);
    return names;
fail:
    free(line);
    fclose(f);
    Py_XDECREF(names);
    Py_XDECREF(seen);
    return NULL;
}

static uint64_t
base_from_env(void)
{
    const char *s = getenv("PYCDSBASE");
    if (s != NULL && s[0] != '\0') {
        unsigned long long v = strtoull(s, NULL, 0);
        if (v != 0 && v % 4096 == 0) {
            return v;
        }
    }
    return CDS_DEFAULT_BASE;
}

struct dump_counts {
    Py_ssize_t dumped, skipped;
    uint64_t objects;
};

/* Dump the listed modules to archive.  0, or -1 with e filled (a failure
 * the user can act on) or with a Python exception set (anything else). */
static int
dump(const char *list, const char *archive, struct dump_counts *c,
     struct dump_error *e)
{
    struct cds_disk_fingerprint fp;
    cds_writer *w = NULL;
    cds_heap_pool *pool = NULL;
    struct cds_pool pool_view;
    cds_error err;
    PyObject *names = NULL, *info_fn;
    int rc, status = -1;

    memset(c, 0, sizeof(*c));
    e->message[0] = '\0';
    if (runtime_problem(e->message, sizeof(e->message))) {
        return -1;
    }
    if (load_glue() < 0 || (info_fn = glue_get("dump_info")) == NULL) {
        return -1;
    }
    if (cds_heap_fingerprint(&fp, &err) < 0) {
        return dump_fail(e, "%s", err.message);
    }
    if ((names = read_list(list, &c->skipped, e)) == NULL) {
        return -1;
    }
    if (cds_heap_pool_create(&pool, &err) < 0) {
        PyErr_NoMemory();
        goto out;
    }
    if (cds_writer_create(&w, archive, base_from_env(), &fp, &err) < 0) {
        dump_fail(e, "%s", err.message);
        goto out;
    }
    /* the loaders below compile for this level (-O, -OO, PYTHONOPTIMIZE) */
    cds_writer_set_optimize(w, Py_OptimizeFlag > 255 ? 255u
                                                     : (unsigned)Py_OptimizeFlag);
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(names); i++) {
        PyObject *name = PyList_GET_ITEM(names, i);
        PyObject *info = PyObject_CallOneArg(info_fn, name);
        const char *cname = PyUnicode_AsUTF8(name);
        if (info == NULL || cname == NULL) {
            Py_XDECREF(info);
            goto out;
        }
        if (PyUnicode_Check(info)) {
            report_skip("skipping %U: %U", name, info);
            c->skipped++;
            Py_DECREF(info);
            continue;
        }
        PyObject *code = PyTuple_GET_ITEM(info, 0);
        struct cds_writer_module m = {
            .name = cname,
            .origin = PyUnicode_AsUTF8(PyTuple_GET_ITEM(info, 1)),
            .search = PyUnicode_AsUTF8(PyTuple_GET_ITEM(info, 2)),
            .flags = PyObject_IsTrue(PyTuple_GET_ITEM(info, 3))
                         ? CDS_MODULE_PACKAGE
                         : 0,
            .source_mtime_ns = PyLong_AsLongLong(PyTuple_GET_ITEM(info, 4)),
            .source_size = PyLong_AsUnsignedLongLong(
                PyTuple_GET_ITEM(info, 5)),
        };
        PyObject *source = PyTuple_GET_ITEM(info, 6);
        if (PyBytes_Check(source)) {
            m.source_hash = cds_hash(PyBytes_AS_STRING(source),
                                     (size_t)PyBytes_GET_SIZE(source));
        }
        if (m.origin == NULL || m.search == NULL || PyErr_Occurred()) {
            /* a path that is not UTF-8 cannot be stored: skip the module */
            PyErr_Clear();
            report_skip("skipping %U: path not representable in UTF-8",
                        name);
            c->skipped++;
            Py_DECREF(info);
            continue;
        }
        cds_heap_segment seg;
        uint64_t addr = base_from_env() + cds_writer_next_offset(w);
        rc = cds_heap_serialize_pooled(code, addr, pool,
                                       PyTuple_GET_ITEM(info, 7), &seg,
                                       &err);
        if (rc == CDS_EUNSUPPORTED) {
            report_skip("skipping %U: %s", name, err.message);
            c->skipped++;
            Py_DECREF(info);
            continue;
        }
        if (rc == 0) {
            rc = cds_writer_add(w, &m, &seg.seg, &err);
            c->objects += seg.seg.nobjects;
            cds_heap_segment_clear(&seg);
        }
        Py_DECREF(info);
        if (rc < 0) {
            dump_fail(e, "%s: %s", cname, err.message);
            goto out;
        }
        c->dumped++;
        VERBOSE(1, "pycds: dump: %s\n", cname);
    }
    cds_heap_pool_view(pool, &pool_view);
    cds_writer_set_pool(w, &pool_view);
    if (cds_writer_finish(w, &err) < 0) {
        dump_fail(e, "%s", err.message);
        goto out;
    }
    status = 0;
out:
    cds_writer_destroy(w);
    cds_heap_pool_destroy(pool);
    Py_XDECREF(names);
    return status;
}

static void
activate_dump(void)
{
    const char *list = getenv("PYCDSLIST");
    const char *archive = getenv("PYCDSARCHIVE");
    struct dump_counts c;
    struct dump_error e = {{0}};
    PyObject *prep, *r;
    int status = 1;

    if (list == NULL || !*list || archive == NULL || !*archive) {
        PySys_WriteStderr("pycds: dump: PYCDSMODE=DUMP needs PYCDSLIST and "
                          "PYCDSARCHIVE\n");
    }
    else if (load_glue() < 0 || (prep = glue_get("dump_prepare")) == NULL ||
             (r = PyObject_CallNoArgs(prep)) == NULL) {
        PyErr_Print();
    }
    else {
        Py_DECREF(r);
        if (dump(list, archive, &c, &e) == 0) {
            PySys_FormatStderr("pycds: dumped %zd modules (%zd skipped, "
                               "%llu objects) to %s\n",
                               c.dumped, c.skipped,
                               (unsigned long long)c.objects, archive);
            status = 0;
        }
        else if (e.message[0] != '\0') {
            PySys_FormatStderr("pycds: dump: %s\n", e.message);
        }
        else {
            /* not an expected condition: a bug, shown as one */
            PyErr_Print();
        }
    }
    /* "writes the archive and exits, without executing any listed module":
     * site is still importing us, so leave without running the program */
    PyObject *out = PySys_GetObject("stdout");
    PyObject *errs = PySys_GetObject("stderr");
    if (out != NULL) {
        r = PyObject_CallMethod(out, "flush", NULL);
        Py_XDECREF(r);
    }
    if (errs != NULL) {
        r = PyObject_CallMethod(errs, "flush", NULL);
        Py_XDECREF(r);
    }
    PyErr_Clear();
    _exit(status);
}

/* ---------------------------------------------------------------------
 * The module */

static PyObject *
activate(PyObject *Py_UNUSED(mod), PyObject *Py_UNUSED(ignored))
{
    static int done;
    const char *mode = getenv("PYCDSMODE");
    const char *verbose = getenv("PYCDSVERBOSE");

    if (done++ || mode == NULL || mode[0] == '\0') {
        Py_RETURN_NONE;
    }
    /* -E and -I ignore PYTHON* variables; an archive is code, so the
     * PYCDS* ones are ignored with them */
    if (Py_IgnoreEnvironmentFlag) {
        Py_RETURN_NONE;
    }
    /* inv. 2: the main interpreter only */
    if (PyInterpreterState_Get() != PyInterpreterState_Main()) {
        Py_RETURN_NONE;
    }
    G.verbose = verbose != NULL ? atoi(verbose) : 0;
    const char *pf = getenv("PYCDSPREFAULT");
    G.prefault = pf == NULL || strcmp(pf, "0") != 0;
    const char *check = getenv("PYCDSCHECK");
    if (check == NULL || check[0] == '\0' || strcmp(check, "stat") == 0) {
        G.check = CHECK_STAT;
    }
    else if (strcmp(check, "hash") == 0) {
        G.check = CHECK_HASH;
    }
    else if (strcmp(check, "none") == 0) {
        G.check = CHECK_NONE;
    }
    else {
        G.check = CHECK_STAT;
        warn_once("unknown PYCDSCHECK=%s (stat, hash or none); using stat",
                  check);
    }
    if (strcasecmp(mode, "TRACE") == 0) {
        G.mode = MODE_TRACE;
        activate_trace();
    }
    else if (strcasecmp(mode, "DUMP") == 0) {
        G.mode = MODE_DUMP;
        activate_dump(); /* does not return */
    }
    else if (strcasecmp(mode, "SHARE") == 0) {
        G.mode = MODE_SHARE;
        activate_share();
    }
    else if (strcasecmp(mode, "OFF") != 0) {
        warn_once("unknown PYCDSMODE=%s (TRACE, DUMP, SHARE or OFF)", mode);
    }
    Py_RETURN_NONE;
}

static PyObject *
dump_py(PyObject *Py_UNUSED(mod), PyObject *args)
{
    const char *list, *archive;
    struct dump_counts c;
    struct dump_error e;

    if (!PyArg_ParseTuple(args, "ss:dump", &list, &archive)) {
        return NULL;
    }
    if (dump(list, archive, &c, &e) < 0) {
        if (e.message[0] != '\0') {
            PyErr_SetString(PyExc_OSError, e.message);
        }
        return NULL;
    }
    return Py_BuildValue("{s:n,s:n,s:K}", "modules", c.dumped, "skipped",
                         c.skipped, "objects", (unsigned long long)c.objects);
}

static PyObject *
stats(PyObject *Py_UNUSED(mod), PyObject *Py_UNUSED(ignored))
{
    static const char *modes[] = {"off", "trace", "dump", "share"};
    uint32_t loaded = 0, bad = 0;
    if (G.seg_state != NULL) {
        for (uint32_t i = 0; i < G.archive.header->nmodules; i++) {
            loaded += G.seg_state[i] == SEG_LOADED;
            bad += G.seg_state[i] == SEG_BAD;
        }
    }
    return Py_BuildValue(
        "{s:s,s:O,s:n,s:n,s:n,s:n,s:I,s:I,s:I,s:O,s:i,s:K,s:K}", "mode",
        modes[G.mode], "active", G.seg_state != NULL ? Py_True : Py_False,
        "served", G.nserved, "missed", G.nmissed, "stale", G.nstale,
        "failed", G.nfailed, "modules",
        G.seg_state != NULL ? G.archive.header->nmodules : 0u,
        "segments_loaded", loaded, "segments_bad", bad, "relocated",
        G.seg_state != NULL && !cds_archive_at_base(&G.archive) ? Py_True
                                                                 : Py_False,
        "warnings", G.warned, "load_ns", (unsigned long long)G.load_ns,
        "find_ns", (unsigned long long)G.find_ns);
}

/* The dump's view of a .pyc body: the same marshal data with each
 * frozenset read back as the tuple of its items in insertion order. */
static PyObject *
frozensets_as_tuples(PyObject *Py_UNUSED(mod), PyObject *arg)
{
    Py_buffer view;
    cds_error err;
    PyObject *out;

    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    /* a bytes object of its own: from a 1-byte buffer
     * PyBytes_FromStringAndSize would return the interpreter's shared one,
     * which the walk then rewrites */
    out = PyBytes_FromStringAndSize(NULL, view.len);
    if (out != NULL && view.len > 0) {
        memcpy(PyBytes_AS_STRING(out), view.buf, (size_t)view.len);
    }
    PyBuffer_Release(&view);
    if (out != NULL &&
        cds_marshal_frozensets_to_tuples((uint8_t *)PyBytes_AS_STRING(out),
                                         (size_t)PyBytes_GET_SIZE(out), NULL,
                                         &err) < 0) {
        PyErr_SetString(PyExc_ValueError, err.message);
        Py_CLEAR(out);
    }
    return out;
}

static PyObject *
check_py(PyObject *Py_UNUSED(mod), PyObject *Py_UNUSED(ignored))
{
    char problem[2 * PATH_MAX + 256];
    if (!runtime_problem(problem, sizeof(problem))) {
        Py_RETURN_NONE;
    }
    return PyUnicode_FromString(problem);
}

static PyMethodDef cds_methods[] = {
    {"frozensets_as_tuples", frozensets_as_tuples, METH_O,
     "frozensets_as_tuples(data): marshal data with each frozenset record "
     "made a tuple of its items, in the order they are inserted."},
    {"check", check_py, METH_NOARGS,
     "None if this _cds can work in the running interpreter, else a str "
     "saying why not and what to do (the CLI's probe)."},
    {"_activate", activate, METH_NOARGS,
     "Act on PYCDSMODE (TRACE, DUMP, SHARE); called from pycds.pth."},
    {"dump", dump_py, METH_VARARGS,
     "dump(list, archive): write an archive of the listed modules."},
    {"stats", stats, METH_NOARGS,
     "Counters of this process: modules served, missed, stale..."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef cds_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_cds",
    .m_doc = "pycds: serve code objects from a memory-mapped archive.",
    .m_size = -1, /* inv. 2: process-global state */
    .m_methods = cds_methods,
};

PyMODINIT_FUNC PyInit__cds(void);

PyMODINIT_FUNC
PyInit__cds(void)
{
    return PyModule_Create(&cds_module);
}
