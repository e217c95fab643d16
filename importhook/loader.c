/* SPDX-License-Identifier: MIT */
/* SourceFileLoader.get_code as TRACE and SHARE see it: SHARE serves the
 * archived code object (a segment validated and patched on first use),
 * TRACE records what the original get_code loaded. */
#include "hook.h"

#include "heap.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Count a module served and say so: PYCDSVERBOSE=1, and python -v with
 * the line SourceLoader.get_code prints for a .pyc ("# code object from
 * '...'"), naming the archive instead. */
static void
report_served(const char *name, const char *path)
{
    cds__hook.nserved++;
    VERBOSE(1, "pycds: %s: served from archive\n", name);
    if (cds__hook.py_verbose) {
        PySys_FormatStderr("# code object from pycds archive '%s' for '%s'\n",
                           cds__hook.archive_path, path);
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
    if (cds__hook.seg_state == NULL || cds__hook.disabled ||
        cds_archive_find(&cds__hook.archive, name, (size_t)len, &ix) < 0 ||
        strcmp(cds_module_origin(&cds__hook.archive, ix), path) != 0) {
        return NULL;
    }
    /* a loader the finder did not make (importlib.reload makes its own
     * through the finder; pydoc.importfile, runpy and friends do not):
     * the finder's staleness check has not run for it */
    if (cds__hook.loaders[ix] != loader &&
        !cds__source_unchanged(ix, name, 0)) {
        return NULL;
    }
    switch (cds__hook.seg_state[ix]) {
    case SEG_LOADED:
        report_served(name, path);
        return Py_NewRef(cds__hook.codes[ix]);
    case SEG_HANDED:
        /* the body ran from a copy, freed since, and the archive's pages
         * of it are gone: import it as stock does, from the .pyc */
        VERBOSE(1, "pycds: %s: served once already; importing it "
                   "normally\n", name);
        return NULL;
    case SEG_BAD:
    case SEG_LOADING:
        /* inv. 3: loading can allocate, so collect garbage, so run a
         * finalizer that switches threads; another thread asking for the
         * same segment then imports it normally */
        return NULL;
    }
    cds__hook.seg_state[ix] = SEG_LOADING;
    uint64_t t0 = now_ns();
    /* an archive overwritten in place: pages past its new end would
     * fault with SIGBUS (inv. 1) */
    if (cds_archive_check_file(&cds__hook.archive, &err) < 0) {
        cds__hook.seg_state[ix] = SEG_BAD;
        cds__hook.disabled = 1;
        cds__hook.nfailed++;
        cds__hook_warn("archive %s: %s; using the normal import system",
                       cds__hook.archive_path, err.message);
        return NULL;
    }
    rc =
        cds_heap_segment_use(&cds__hook.archive, ix, cds__hook.config.prefault,
                             &cds__hook.codes[ix], &err);
    cds__hook.load_ns += now_ns() - t0;
    if (rc < 0) {
        cds__hook.seg_state[ix] = SEG_BAD;
        cds__hook.nfailed++;
        cds__hook_warn("archive %s: %s (%s); importing it normally",
                       cds__hook.archive_path, err.message,
                       cds_status_name(rc));
        VERBOSE(1, "pycds: %s: not served: %s\n", name, err.message);
        return NULL;
    }
    report_served(name, path);
    VERBOSE(2,
            "pycds: %s: segment of %u objects, %u relocations%s, "
            "%u pool references\n",
            name, cds__hook.archive.modules[ix].nobjects,
            cds__hook.archive.modules[ix].nreloc,
            cds_archive_at_base(&cds__hook.archive)
                ? " (at base: none applied)"
                : "",
            cds__hook.archive.modules[ix].nshared);
    if (rc == 1) {
        /* a heap copy, the caller's alone (cds_heap_copy_root) */
        PyObject *code = cds__hook.codes[ix];
        cds__hook.codes[ix] = NULL;
        cds__hook.seg_state[ix] = SEG_HANDED;
        return code;
    }
    cds__hook.seg_state[ix] = SEG_LOADED;
    return Py_NewRef(cds__hook.codes[ix]);
}

/* TRACE one module name (once per process). */
static void
record_name(PyObject *name)
{
    Py_ssize_t len;
    const char *s;
    int r;

    if (cds__hook.traced == NULL || cds__hook.trace_fd < 0 ||
        !PyUnicode_Check(name)) {
        return;
    }
    r = PySet_Contains(cds__hook.traced, name);
    if (r != 0) {
        if (r < 0) {
            PyErr_Clear();
        }
        return;
    }
    if (PySet_Add(cds__hook.traced, name) < 0 ||
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
        if (write(cds__hook.trace_fd, line, (size_t)len + 1) < 0) {
            cds__hook_warn("cannot write trace list: %s", strerror(errno));
        }
        PyMem_Free(line);
    }
    VERBOSE(2, "pycds: traced %s\n", s);
}

/* TRACE (3.12 on): the strings interned since the last get_code
 * returned, as '$ STRING' records of the list, in one write(2): strings
 * the program interned on its own (C extensions' names, setattr, names
 * of code not archived) before this module's code named them.  The dump
 * puts those it pools on the archive's early list, which SHARE interns
 * at activation, so that the archive's strings win (format.md 4.1).
 * Strings with a blank or a character str.isprintable() refuses (a
 * record is one line), or over 256 characters, are left out. */
static void
record_interned(void)
{
    PyObject *fresh = PyList_New(0);
    char *buf = NULL;
    size_t len = 0, cap = 0;

    if (fresh == NULL ||
        cds_heap_interned_since(&cds__hook.interned_pos, fresh) < 0) {
        goto out;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(fresh); i++) {
        PyObject *str = PyList_GET_ITEM(fresh, i);
        Py_ssize_t n = PyUnicode_GET_LENGTH(str);
        int kind = PyUnicode_KIND(str), ok = n > 0 && n <= 256;
        const void *data = PyUnicode_DATA(str);
        /* printable and no blank, as str.isprintable() sees them: no
         * line break of any kind (U+2028 included), no surrogate */
        for (Py_ssize_t k = 0; ok && k < n; k++) {
            Py_UCS4 ch = PyUnicode_READ(kind, data, k);
            ok = ch != ' ' && Py_UNICODE_ISPRINTABLE(ch);
        }
        const char *s = ok ? PyUnicode_AsUTF8AndSize(str, &n) : NULL;
        if (s == NULL) {
            PyErr_Clear();
            continue;
        }
        if (len + (size_t)n + 3 > cap) {
            size_t ncap = 2 * cap + (size_t)n + 4096;
            char *p = PyMem_Realloc(buf, ncap);
            if (p == NULL) {
                goto out;
            }
            buf = p;
            cap = ncap;
        }
        buf[len++] = '$';
        buf[len++] = ' ';
        memcpy(buf + len, s, (size_t)n);
        len += (size_t)n;
        buf[len++] = '\n';
    }
    if (len > 0 && write(cds__hook.trace_fd, buf, len) < 0) {
        cds__hook_warn("cannot write trace list: %s", strerror(errno));
    }
out:
    PyErr_Clear();
    PyMem_Free(buf);
    Py_XDECREF(fresh);
}

/* A C method of SourceFileLoader, so that no frame of ours appears in a
 * traceback through it (importlib's frame trimming would not know it).
 * SHARE: a plain SourceFileLoader (subclasses may transform the source)
 * for an archived module's file gets the archived code.  TRACE: records
 * what the original loaded. */
static PyObject *
loader_get_code(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *code, *call[2];

    if (cds__hook.config.mode == MODE_SHARE && nargs == 1 &&
        (PyObject *)Py_TYPE(self) == cds__hook.sfl_type) {
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
    int tracing = cds__hook.config.mode == MODE_TRACE &&
                  cds__hook.trace_fd >= 0;
    if (tracing) {
        record_interned();
    }
    code = PyObject_Vectorcall(cds__hook.orig_get_code, call, 2, NULL);
    if (tracing) {
        /* what unmarshalling (or compiling) interned is the module's own;
         * with no list it cannot fail (and leaves get_code's exception) */
        (void)cds_heap_interned_since(&cds__hook.interned_pos, NULL);
        if (code != NULL) {
            record_name(args[0]);
        }
    }
    return code;
}

static PyMethodDef loader_get_code_def = {
    "get_code",
    (PyCFunction)(void (*)(void))loader_get_code,
    METH_FASTCALL,
    "Code object for the module: from the pycds archive when it is served "
    "there, otherwise as SourceLoader.get_code.",
};

/* Put loader_get_code on SourceFileLoader. */
int
cds__loader_install(void)
{
    PyObject *sl = cds__hook_importlib_get("SourceLoader"), *descr;

    if (cds__hook.sfl_type == NULL) {
        cds__hook.sfl_type = cds__hook_importlib_get("SourceFileLoader");
    }
    if (sl == NULL || cds__hook.sfl_type == NULL ||
        !PyType_Check(cds__hook.sfl_type)) {
        Py_XDECREF(sl);
        return -1;
    }
    cds__hook.orig_get_code = PyObject_GetAttrString(sl, "get_code");
    Py_DECREF(sl);
    if (cds__hook.orig_get_code == NULL) {
        return -1;
    }
    descr = PyDescr_NewMethod((PyTypeObject *)cds__hook.sfl_type,
                              &loader_get_code_def);
    if (descr == NULL) {
        return -1;
    }
    int rc = PyObject_SetAttrString(cds__hook.sfl_type, "get_code", descr);
    Py_DECREF(descr);
    return rc;
}

#if PY_VERSION_HEX >= 0x030C0000
/* TRACE on 3.12 on: the functions that run, recorded as '@ LINE QUALNAME
 * FILE' lines of the list (docs/usage.md), so that the dump lays their
 * code out apart from code that never runs (format.md 5).  A
 * sys.monitoring PY_START callback that returns DISABLE: it runs once
 * per code object. */
#define TRACE_TOOL_ID 4 /* no named tool (debugger 0, coverage 1,
                         * profiler 2, optimizer 5) */
static PyObject *trace_disable;

static PyObject *
trace_py_start(PyObject *Py_UNUSED(self), PyObject *const *args,
               Py_ssize_t nargs)
{
    PyCodeObject *co = nargs >= 1 && PyCode_Check(args[0])
                           ? (PyCodeObject *)args[0]
                           : NULL;
    const char *q, *f;
    Py_ssize_t nq, nf;

    /* module and class bodies are laid out first anyway */
    if (co != NULL && (co->co_flags & CO_OPTIMIZED) &&
        cds__hook.trace_fd >= 0 &&
        (q = PyUnicode_AsUTF8AndSize(co->co_qualname, &nq)) != NULL &&
        (f = PyUnicode_AsUTF8AndSize(co->co_filename, &nf)) != NULL &&
        memchr(q, ' ', (size_t)nq) == NULL &&
        memchr(f, '\n', (size_t)nf) == NULL) {
        size_t cap = (size_t)nq + (size_t)nf + 32;
        char *line = PyMem_Malloc(cap);
        if (line != NULL) {
            int n = snprintf(line, cap, "@ %d %s %s\n", co->co_firstlineno,
                             q, f);
            /* one write(2) per line, as for names */
            if (n > 0 && (size_t)n < cap &&
                write(cds__hook.trace_fd, line, (size_t)n) < 0) {
                cds__hook_warn("cannot write trace list: %s",
                               strerror(errno));
            }
            PyMem_Free(line);
        }
    }
    PyErr_Clear();
    return Py_NewRef(trace_disable);
}

static PyMethodDef trace_py_start_def = {
    "_pycds_ran", (PyCFunction)(void (*)(void))trace_py_start,
    METH_FASTCALL, NULL};

static void
trace_functions(void)
{
    PyObject *mon = cds__hook_sys("monitoring"); /* borrowed */
    PyObject *r = NULL, *events = NULL, *start = NULL, *fn = NULL;

    if (mon == NULL ||
        (r = PyObject_CallMethod(mon, "use_tool_id", "is", TRACE_TOOL_ID,
                                 "pycds trace")) == NULL) {
        /* the program's own tool has the id: names only */
        PyErr_Clear();
        VERBOSE(1, "pycds: trace: sys.monitoring tool %d in use; not "
                   "recording functions\n", TRACE_TOOL_ID);
        return;
    }
    Py_DECREF(r);
    if ((trace_disable = PyObject_GetAttrString(mon, "DISABLE")) == NULL ||
        (events = PyObject_GetAttrString(mon, "events")) == NULL ||
        (start = PyObject_GetAttrString(events, "PY_START")) == NULL ||
        (fn = PyCFunction_New(&trace_py_start_def, NULL)) == NULL ||
        (r = PyObject_CallMethod(mon, "register_callback", "iOO",
                                 TRACE_TOOL_ID, start, fn)) == NULL) {
        goto out;
    }
    Py_DECREF(r);
    r = PyObject_CallMethod(mon, "set_events", "iO", TRACE_TOOL_ID, start);
    Py_XDECREF(r);
out:
    PyErr_Clear();
    Py_XDECREF(events);
    Py_XDECREF(start);
    Py_XDECREF(fn);
}
#endif

void
cds__trace_activate(void)
{
    const char *list = cds__hook.config.list;

    if (list == NULL) {
        cds__hook_warn("PYCDSMODE=TRACE without PYCDSLIST; not tracing");
        return;
    }
    /* what is traced is only worth dumping with a pycds built for this
     * interpreter: say so now, not at the dump */
    char problem[2 * PATH_MAX + 256];
    if (cds__hook_runtime_problem(1, problem, sizeof(problem))) {
        cds__hook_warn("%s; not tracing", problem);
        return;
    }
    cds__hook.trace_fd =
        open(list, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
    if (cds__hook.trace_fd < 0) {
        cds__hook_warn("cannot open trace list %s: %s", list, strerror(errno));
        return;
    }
    cds__hook.traced = PySet_New(NULL);
    if (cds__hook.traced == NULL || cds__loader_install() < 0) {
        PyErr_Clear();
        cds__hook_warn("cannot install the tracer");
        return;
    }
#if PY_VERSION_HEX >= 0x030C0000
    trace_functions();
#endif
    /* start-up's strings are the dump's too (cds_heap_pool_note_startup) */
    if (cds_heap_interned_since(&cds__hook.interned_pos, NULL) < 0) {
        PyErr_Clear();
    }
}
