/* SPDX-License-Identifier: MIT */
/* _cds: the import hook.  Reads PYCDSMODE and does TRACE, DUMP or SHARE.
 *
 * pycds.pth (or, from a build tree, the CLI's sitecustomize) calls
 * _activate() during site import when PYCDSMODE is set.  The hot paths
 * are C: the finder's miss (one hash probe) and get_code (validate and
 * patch a segment on first use, then hand out the same code object).  The
 * Python glue (glue.py, embedded) is DUMP's: TRACE and SHARE run no
 * Python code of pycds (no frame of ours in a profiler, nothing to
 * unmarshal at start-up).  The invariants are in hook.h; this file holds
 * the dispatch, the state, and the module's functions. */
#include "hook.h"

#include "heap.h"
#include "writer.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct cds_hook cds__hook = {.trace_fd = -1};

/* inv. 1: the one warning. */
void
cds__hook_warn(const char *fmt, ...)
{
    char buf[2 * PATH_MAX + 1024]; /* an archive path, a module path */
    va_list ap;

    if (cds__hook.warned++) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    /* not PySys_WriteStderr: it cuts at 1000 bytes, newline included */
    PySys_FormatStderr("pycds: warning: %s\n", buf);
}

/* sys.NAME as PySys_GetObject has it, a borrowed reference or NULL with
 * no exception set: a lookup in the sys module's dict, kept from the
 * first call (the main interpreter's, inv. 2).  Not PySys_GetObject
 * itself: cds_heap_module_attr (heap.h) says why. */
PyObject *
cds__hook_sys(const char *name)
{
    if (cds__hook.sysdict == NULL) {
        PyObject *d = cds_heap_module_attr("sys", "__dict__");
        if (d == NULL || !PyDict_Check(d)) {
            Py_XDECREF(d);
            return NULL;
        }
        cds__hook.sysdict = d;
    }
    return PyDict_GetItemString(cds__hook.sysdict, name);
}

/* sys.flags.NAME (optimize, verbose, ignore_environment): the
 * interpreter's configuration as every version exposes it, where the
 * Py_*Flag globals are deprecated (3.12).  0 when it cannot be read. */
int
cds__hook_sys_flag(const char *name)
{
    PyObject *flags = cds__hook_sys("flags"); /* borrowed */
    PyObject *v = flags != NULL ? PyObject_GetAttrString(flags, name) : NULL;
    long n = v != NULL && PyLong_Check(v) ? PyLong_AsLong(v) : 0;

    Py_XDECREF(v);
    PyErr_Clear();
    return n < 0 ? 0 : n > INT_MAX ? INT_MAX : (int)n;
}

/* A class of importlib's frozen halves, loaded long before site runs:
 * TRACE and SHARE need no glue (nothing to unmarshal and run at
 * start-up).  A new reference, which the callers keep for the life of the
 * process (inv. 2); NULL with an exception. */
PyObject *
cds__hook_importlib_get(const char *name)
{
    static const char *const modules[] = {"_frozen_importlib_external",
                                          "_frozen_importlib"};
    for (size_t i = 0; i < sizeof(modules) / sizeof(modules[0]); i++) {
        PyObject *o = cds_heap_module_attr(modules[i], name);
        if (o != NULL) {
            return o;
        }
    }
    PyErr_Format(PyExc_SystemError, "pycds: importlib lacks %s", name);
    return NULL;
}

/* 0 when this _cds can work in the running interpreter (the version and
 * object layout it was compiled for; with measure, its GC head too:
 * cds_heap_check_runtime); else 1, with buf saying why not and what to
 * do, naming both interpreters by path and version.  Makes no Python
 * object: it cannot fail. */
int
cds__hook_runtime_problem(int measure, char *buf, size_t size)
{
    cds_error err;
    const char *path = NULL;
    const char *version = Py_GetVersion(); /* "3.11.7 (main, ...)" */

    if (cds_heap_check_runtime(measure, &err) == 0) {
        return 0;
    }
    PyObject *exe = PySys_GetObject("executable"); /* borrowed */
    if (exe != NULL && PyUnicode_Check(exe) && PyUnicode_GET_LENGTH(exe) > 0) {
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
                 PY_VERSION, PYCDS_BUILD_PYTHON, (int)strcspn(version, " "),
                 version, path, path);
    }
    else {
        snprintf(buf, size,
                 "pycds cannot work in %s: %s; rebuild pycds for it (cmake "
                 "-DPYCDS_PYTHON=%s)",
                 path, err.message, path);
    }
    return 1;
}

/* The value of PYCDS variable name, NULL when unset or empty. */
static const char *
load_env(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

/* The index of v in the NULL-terminated words (any case with nocase),
 * or -1. */
static int
find_word(const char *v, const char *const *words, int nocase)
{
    for (int i = 0; words[i] != NULL; i++) {
        if ((nocase ? strcasecmp(v, words[i]) : strcmp(v, words[i])) == 0) {
            return i;
        }
    }
    return -1;
}

/* Parse the PYCDS* environment into c (struct cds_hook_config).  A bad
 * PYCDSCHECK or PYCDSMODE is the one warning (inv. 1); MODE_OFF then. */
static void
config_read(struct cds_hook_config *c)
{
    const char *mode = load_env("PYCDSMODE");
    const char *verbose = load_env("PYCDSVERBOSE");
    const char *pf = load_env("PYCDSPREFAULT");
    const char *check = load_env("PYCDSCHECK");
    const char *reloc = load_env("PYCDSRELOCATE");
    const char *base = load_env("PYCDSBASE");

    memset(c, 0, sizeof(*c));
    c->verbose = verbose != NULL ? atoi(verbose) : 0;
    c->prefault = pf == NULL                 ? CDS_PREFAULT_AUTO
                  : strcmp(pf, "0") == 0   ? CDS_PREFAULT_NONE
                  : strcmp(pf, "all") == 0 ? CDS_PREFAULT_ALL
                                           : CDS_PREFAULT_AUTO;
    c->relocate = reloc != NULL && strcmp(reloc, "0") != 0;
    c->archive = load_env("PYCDSARCHIVE");
    c->list = load_env("PYCDSLIST");
    c->packages = load_env("PYCDSPACKAGES");
    c->paths = load_env("PYCDSPATHS");
    c->include = load_env("PYCDSINCLUDE");
    c->exclude = load_env("PYCDSEXCLUDE");
    c->base = CDS_DEFAULT_BASE;
    if (base != NULL) {
        unsigned long long v = strtoull(base, NULL, 0);
        if (v != 0 && v % 4096 == 0) {
            c->base = v;
        }
    }
    /* the words in the order of the CHECK_* and MODE_* values */
    static const char *const checks[] = {"stat", "hash", "none", NULL};
    static const char *const modes[] = {"OFF",   "TRACE", "DUMP",
                                        "SHARE", "AUTO",  NULL};
    c->check = check == NULL ? CHECK_STAT : find_word(check, checks, 0);
    if (c->check < 0) {
        c->check = CHECK_STAT;
        cds__hook_warn(
            "unknown PYCDSCHECK=%s (stat, hash or none); using stat", check);
    }
    c->mode = mode == NULL ? MODE_OFF : find_word(mode, modes, 1);
    if (c->mode < 0) {
        c->mode = MODE_OFF;
        cds__hook_warn(
            "unknown PYCDSMODE=%s (TRACE, DUMP, SHARE, AUTO or OFF)", mode);
    }
}

static PyObject *
activate(PyObject *Py_UNUSED(mod), PyObject *Py_UNUSED(ignored))
{
    static int done;
    const char *mode = getenv("PYCDSMODE");

    if (done++ || mode == NULL || mode[0] == '\0') {
        Py_RETURN_NONE;
    }
    /* -E and -I ignore PYTHON* variables; an archive is code, so the
     * PYCDS* ones are ignored with them */
    if (cds__hook_sys_flag("ignore_environment")) {
        Py_RETURN_NONE;
    }
    /* inv. 2: the main interpreter only */
    if (PyInterpreterState_Get() != PyInterpreterState_Main()) {
        Py_RETURN_NONE;
    }
    config_read(&cds__hook.config);
    switch (cds__hook.config.mode) {
    case MODE_TRACE: cds__trace_activate(); break;
    case MODE_DUMP:
        cds__dump_activate(); /* does not return */
        break;
    case MODE_SHARE: cds__share_activate(); break;
    case MODE_AUTO: cds__auto_activate(); break;
    }
    Py_RETURN_NONE;
}

static PyObject *
stats(PyObject *Py_UNUSED(mod), PyObject *Py_UNUSED(ignored))
{
    static const char *modes[] = {"off", "trace", "dump", "share", "auto"};
    uint32_t loaded = 0, bad = 0, handed = 0;
    if (cds__hook.seg_state != NULL) {
        for (uint32_t i = 0; i < cds__hook.archive.header->nmodules; i++) {
            loaded += cds__hook.seg_state[i] == SEG_LOADED ||
                      cds__hook.seg_state[i] == SEG_HANDED;
            handed += cds__hook.seg_state[i] == SEG_HANDED;
            bad += cds__hook.seg_state[i] == SEG_BAD;
        }
    }
    return Py_BuildValue(
        "{s:s,s:O,s:O,s:n,s:n,s:n,s:n,s:I,s:I,s:I,s:I,s:O,s:O,s:O,s:i,s:K,"
        "s:K,s:{s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K}}",
        "mode",
        modes[cds__hook.config.mode], "auto",
        cds__hook.auto_mode ? Py_True : Py_False, "active",
        cds__hook.seg_state != NULL ? Py_True : Py_False, "served",
        cds__hook.nserved, "missed", cds__hook.nmissed, "stale",
        cds__hook.nstale, "failed", cds__hook.nfailed, "modules",
        cds__hook.seg_state != NULL ? cds__hook.archive.header->nmodules : 0u,
        "segments_loaded", loaded, "segments_bad", bad, "bodies_copied",
        handed, "relocated",
        cds__hook.seg_state != NULL && !cds_archive_at_base(&cds__hook.archive)
            ? Py_True
            : Py_False,
        "copied", cds__hook.archive.fetched != NULL ? Py_True : Py_False,
        "bytes_mapped",
        cds__hook.archive.fetched != NULL && cds__hook.archive.map_bytes
            ? Py_True
            : Py_False,
        "warnings", cds__hook.warned, "load_ns",
        (unsigned long long)cds__hook.load_ns, "find_ns",
        (unsigned long long)cds__hook.find_ns, "phases_ns", "fetch",
        (unsigned long long)cds_heap_phases.fetch, "check",
        (unsigned long long)cds_heap_phases.check, "validate",
        (unsigned long long)cds_heap_phases.validate, "patch",
        (unsigned long long)cds_heap_phases.patch, "intern",
        (unsigned long long)cds_heap_phases.intern, "refs",
        (unsigned long long)cds_heap_phases.refs, "copy",
        (unsigned long long)cds_heap_phases.copy, "release",
        (unsigned long long)cds_heap_phases.release);
}

static PyObject *
check_py(PyObject *Py_UNUSED(mod), PyObject *Py_UNUSED(ignored))
{
    char problem[2 * PATH_MAX + 256];
    if (!cds__hook_runtime_problem(1, problem, sizeof(problem))) {
        Py_RETURN_NONE;
    }
    return PyUnicode_FromString(problem);
}

static PyMethodDef cds_methods[] = {
    {"frozensets_as_tuples", cds__dump_frozensets_as_tuples, METH_O,
     "frozensets_as_tuples(data): marshal data with each frozenset record "
     "made a tuple of its items, in the order they are inserted."},
    {"check", check_py, METH_NOARGS,
     "None if this _cds can work in the running interpreter, else a str "
     "saying why not and what to do (the CLI's probe)."},
    {"_activate", activate, METH_NOARGS,
     "Act on PYCDSMODE (TRACE, DUMP, SHARE, AUTO); called from pycds.pth."},
    {"dump", cds__dump_py, METH_VARARGS,
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
