/* SPDX-License-Identifier: MIT */
/* SHARE's meta-path finder: serve an archived module only where
 * PathFinder would find its file, with the spec FileFinder would make;
 * and SHARE's activation (map the archive, install the finder). */
#include "hook.h"

#include "heap.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* The finder of one path entry, as PathFinder._path_importer_cache gets
 * it: sys.path_importer_cache first (a dict lookup: no call, no frame),
 * the method itself on a miss or for '' (it makes and caches the
 * finder).  New reference (Py_None: no finder), or NULL with an
 * exception. */
static PyObject *
entry_finder(PyObject *entry)
{
    PyObject *cache = cds__hook_sys("path_importer_cache"); /* borrowed */

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
    return PyObject_CallOneArg(cds__hook.path_importer_cache, entry);
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

    if ((PyObject *)Py_TYPE(finder) != cds__hook.file_finder) {
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
                r = PyTuple_GET_ITEM(pair, 1) == cds__hook.sfl_type;
            }
        }
    }
    Py_DECREF(loaders);
    return r == 1;
}

/* An exception that is no error of a finder's (KeyboardInterrupt,
 * SystemExit): it goes on to the import, as without pycds. */
static int
check_interrupted(void)
{
    return PyErr_Occurred() && !PyErr_ExceptionMatches(PyExc_Exception);
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
static int
archived_dir_first(PyObject *name, PyObject *path, PyObject *target,
                   const char *search, PyObject **why)
{
    PyObject *entries = path, *it, *entry;
    const char *where =
        path == Py_None ? "sys.path" : "the package's __path__";
    int found = 0, stop = 0;

    *why = NULL;
    if (path == Py_None) {
        entries = cds__hook_sys("path"); /* borrowed */
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
            spec =
                PyObject_CallMethod(finder, "find_spec", "OO", name, target);
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
            else if (spec != Py_None && ((loader = PyObject_GetAttrString(
                                              spec, "loader")) == NULL ||
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
        *why =
            PyUnicode_FromFormat("directory %s is not in %s", search, where);
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
        (loader = PyObject_CallFunctionObjArgs(cds__hook.sfl_type, name, path,
                                               NULL)) == NULL ||
        (args = PyTuple_Pack(2, name, loader)) == NULL ||
        (kwargs = Py_BuildValue("{s:O}", "origin", path)) == NULL ||
        (spec = PyObject_Call(cds__hook.module_spec, args, kwargs)) == NULL ||
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
    cds__hook.find_ns += now_ns() - t0;
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
    if (cds__hook.disabled) {
        Py_RETURN_NONE;
    }
    if (cds_archive_find(&cds__hook.archive, name, (size_t)len, &ix) < 0) {
        cds__hook.nmissed++;
        VERBOSE(1, "pycds: %s: not in archive\n", name);
        Py_RETURN_NONE;
    }
    if (cds__hook.seg_state[ix] == SEG_BAD) {
        VERBOSE(1, "pycds: %s: not served: archive segment is bad\n", name);
        Py_RETURN_NONE;
    }
    const struct cds_disk_module *m = &cds__hook.archive.modules[ix];
    const char *origin = cds_module_origin(&cds__hook.archive, ix);
    if (!cds__source_unchanged(ix, name, 1)) {
        Py_RETURN_NONE;
    }
    PyObject *why = NULL;
    int first =
        archived_dir_first(args[0], path, target,
                           cds_module_search(&cds__hook.archive, ix), &why);
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
            cds__hook.nmissed++;
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
    Py_XSETREF(cds__hook.loaders[ix], loader);
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
    return PyUnicode_FromFormat("<pycds archive finder %s>",
                                cds__hook.archive_path);
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
    PyObject *meta_path = cds__hook_sys("meta_path"); /* borrowed */
    PyObject *pathfinder = cds__hook_importlib_get("PathFinder");
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

int
cds__share_activate(void)
{
    struct cds_disk_fingerprint fp;
    cds_error err;
    unsigned flags = CDS_OPEN_WRITABLE | CDS_OPEN_TRUSTED;
    int rc;

    cds__hook.archive_path = cds__hook.config.archive;
    if (cds__hook.archive_path == NULL) {
        cds__hook_warn("PYCDSMODE=SHARE without PYCDSARCHIVE; "
                       "using the normal import system");
        return 0;
    }
    if (cds__hook.config.relocate) {
        flags |= CDS_OPEN_RELOCATE;
    }
    char problem[2 * PATH_MAX + 256];
    if (cds__hook_runtime_problem(0, problem, sizeof(problem))) {
        cds__hook_warn("%s; using the normal import system", problem);
        return 0;
    }
    if ((rc = cds_heap_fingerprint(&fp, &err)) < 0 ||
        (rc = cds_archive_open(&cds__hook.archive, cds__hook.archive_path,
                               flags, &fp, &err)) < 0) {
        cds__hook_warn("archive %s: %s (%s); using the normal import system",
                       cds__hook.archive_path, err.message,
                       cds_status_name(rc));
        return rc;
    }
    /* -O and -OO select other .pyc files: code compiled with another
     * level must not be served (asserts, __debug__, docstrings) */
    int optimize = cds__hook_sys_flag("optimize");
    if (cds__hook.archive.header->optimize != (uint32_t)optimize) {
        cds__hook_warn(
            "archive %s: written for optimization level %u, running "
            "at %d; using the normal import system",
            cds__hook.archive_path, cds__hook.archive.header->optimize,
            optimize);
        cds_archive_close(&cds__hook.archive);
        return CDS_EVERSION; /* written by another configuration */
    }
    /* every page will be written anyway (3.11, PIE, relocated): read
     * segments into (huge-page) anonymous memory at first use instead of
     * a copy-on-write fault per page (docs/design.md 3) */
    if (cds__hook.config.prefault == CDS_PREFAULT_AUTO &&
        cds_heap_writes_every_page(&cds__hook.archive) &&
        (rc = cds_archive_copy_segments(
             &cds__hook.archive, cds_heap_bytes_stay_clean(&cds__hook.archive),
             &err)) < 0) {
        cds__hook_warn("archive %s: %s (%s); using the normal import system",
                       cds__hook.archive_path, err.message,
                       cds_status_name(rc));
        cds_archive_close(&cds__hook.archive);
        return rc;
    }
    /* the file mapped: no block's pages mapped before its module's first
     * use, not even by the kernel's fault-around */
    cds_archive_guard_segments(&cds__hook.archive);
    uint32_t n = cds__hook.archive.header->nmodules;
    cds__hook.seg_state = calloc(n ? n : 1, 1);
    cds__hook.codes = calloc(n ? n : 1, sizeof(PyObject *));
    cds__hook.loaders = calloc(n ? n : 1, sizeof(PyObject *));
    if (cds__hook.seg_state == NULL || cds__hook.codes == NULL ||
        cds__hook.loaders == NULL) {
        free(cds__hook.seg_state);
        free(cds__hook.codes);
        free(cds__hook.loaders);
        cds__hook.seg_state = NULL;
        cds_archive_close(&cds__hook.archive);
        cds__hook_warn("archive %s: out of memory; using the normal import "
                       "system",
                       cds__hook.archive_path);
        return CDS_ENOMEM;
    }
    PyObject *type = NULL, *pathfinder = cds__hook_importlib_get("PathFinder");
    if (pathfinder != NULL) {
        cds__hook.path_importer_cache =
            PyObject_GetAttrString(pathfinder, "_path_importer_cache");
        Py_DECREF(pathfinder);
    }
    if (cds__hook.path_importer_cache == NULL ||
        (cds__hook.module_spec = cds__hook_importlib_get("ModuleSpec")) ==
            NULL ||
        (cds__hook.file_finder = cds__hook_importlib_get("FileFinder")) ==
            NULL ||
        cds__loader_install() < 0 ||
        (type = PyType_FromSpec(&finder_spec)) == NULL ||
        (cds__hook.finder = PyObject_CallNoArgs(type)) == NULL ||
        install_finder(cds__hook.finder) < 0) {
        PyErr_Clear();
        Py_XDECREF(type);
        free(cds__hook.seg_state);
        free(cds__hook.codes);
        free(cds__hook.loaders);
        cds__hook.seg_state = NULL;
        cds_archive_close(&cds__hook.archive); /* nothing handed out yet */
        cds__hook_warn(
            "archive %s: cannot install the finder; using the normal "
            "import system",
            cds__hook.archive_path);
        return 0;
    }
    Py_DECREF(type);
    /* the strings the traced program interned on its own before the
     * modules naming them were loaded (format.md 4.1): interned now, the
     * archive's own ones become the interpreter's, and the slots naming
     * them keep the file's pages clean.  Last, since from here on the
     * archive stays mapped: the interpreter holds its strings.  A string
     * that fails its checks leaves the rest to the segments that name
     * them, which check it again and are imported normally if it still
     * fails */
    if ((rc = cds_heap_resolve_early(&cds__hook.archive, &err)) < 0) {
        cds__hook_warn("archive %s: %s (%s); the modules that need it are "
                       "imported normally",
                       cds__hook.archive_path, err.message,
                       cds_status_name(rc));
    }
    /* python -v: say where served code comes from, as the loader does */
    cds__hook.py_verbose = cds__hook_sys_flag("verbose");
    VERBOSE(1, "pycds: archive %s: %u modules, mapped %s\n",
            cds__hook.archive_path, n,
            cds_archive_at_base(&cds__hook.archive)
                ? "at its base"
                : "elsewhere (relocating)");
    cds__summary_install();
    return 1;
}
