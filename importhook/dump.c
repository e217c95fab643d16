/* SPDX-License-Identifier: MIT */
/* DUMP: read the list, find each module without importing anything (the
 * embedded glue), serialize the code stock runs from its .pyc, and write
 * the archive; _exit without running the program. */
#include "hook.h"

#include <marshal.h>

#include "checksum.h"
#include "heap.h"
#include "marshal_walk.h"
#include "modlist.h"
#include "writer.h"

#include "glue.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static PyObject *
glue_get(const char *name)
{
    PyObject *o = PyDict_GetItemString(cds__hook.glue, name);
    if (o == NULL && !PyErr_Occurred()) {
        PyErr_Format(PyExc_SystemError, "pycds glue lacks %s", name);
    }
    return o; /* borrowed */
}

static int
load_glue(void)
{
    PyObject *code, *builtins;

    if (cds__hook.glue != NULL) {
        return 0;
    }
    code = PyMarshal_ReadObjectFromString((const char *)glue_code,
                                          sizeof(glue_code));
    if (code == NULL) {
        return -1;
    }
    cds__hook.glue = PyDict_New();
    builtins = PyEval_GetBuiltins();
    if (cds__hook.glue == NULL ||
        PyDict_SetItemString(cds__hook.glue, "__builtins__", builtins) < 0) {
        Py_DECREF(code);
        return -1;
    }
    PyObject *modname = PyUnicode_FromString("_cds");
    if (modname == NULL ||
        PyDict_SetItemString(cds__hook.glue, "__name__", modname) < 0) {
        Py_XDECREF(modname);
        Py_DECREF(code);
        return -1;
    }
    Py_DECREF(modname);
    PyObject *r = PyEval_EvalCode(code, cds__hook.glue, cds__hook.glue);
    Py_DECREF(code);
    if (r == NULL) {
        return -1;
    }
    Py_DECREF(r);
    return 0;
}

/* A DUMP failure the user can act on (a list that cannot be read, an
 * archive that cannot be written, an interpreter pycds is not built for):
 * one line, no exception name (issue 6). */
struct dump_error {
    char message[2 * PATH_MAX + 256]; /* two paths and some words */
};

static int dump_fail(struct dump_error *e, const char *fmt, ...)
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
/* A bar on a terminal (docs/usage.md, `pycds dump`): once the dump has
 * run a second, one line on stderr, redrawn at most ten times a second,
 * erased before any other line and at the end.  Nothing when stderr is
 * not a terminal, or under PYCDSVERBOSE (a line per module already). */
static struct {
    int on;
    uint64_t start, last;
    int shown;
} progress;

/* sys.NAME.flush(), whatever happens. */
static void
flush_stream(const char *name)
{
    PyObject *f = cds__hook_sys(name); /* borrowed */
    PyObject *r = f != NULL ? PyObject_CallMethod(f, "flush", NULL) : NULL;
    Py_XDECREF(r);
    PyErr_Clear();
}

static void
progress_start(void)
{
    progress.on = isatty(STDERR_FILENO) && cds__hook.config.verbose == 0;
    progress.start = now_ns();
    progress.last = 0;
    progress.shown = 0;
}

static void
progress_erase(void)
{
    if (progress.shown) {
        PySys_WriteStderr("\r\033[K");
        flush_stream("stderr");
        progress.shown = 0;
    }
}

static void
progress_show(Py_ssize_t done, Py_ssize_t total, uint64_t bytes)
{
    enum { WIDTH = 30 };
    uint64_t t = now_ns();
    char bar[WIDTH + 1];
    Py_ssize_t filled = total > 0 ? done * WIDTH / total : WIDTH;

    if (!progress.on || t - progress.start < 1000000000u ||
        t - progress.last < 100000000u) {
        return;
    }
    progress.last = t;
    for (Py_ssize_t k = 0; k < WIDTH; k++) {
        bar[k] = k < filled ? '#' : '.';
    }
    bar[WIDTH] = '\0';
    PySys_WriteStderr("\rpycds: dump: [%s] %zd/%zd modules, %.1f MB", bar,
                      done, total, (double)bytes / 1e6);
    flush_stream("stderr");
    progress.shown = 1;
}

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
    progress_erase();
    PySys_FormatStderr("pycds: dump: %U\n", line);
    Py_DECREF(line);
}

/* An '@ LINE QUALNAME FILE' record of code that ran in the trace (the
 * part after the '@', n bytes at p) into ran: FILE -> set of (LINE,
 * QUALNAME).  A malformed record is ignored: it is only a layout hint.
 * -1 with an exception on failure. */
static int
add_ran(PyObject *ran, const char *p, size_t n)
{
    char buf[64];
    const char *end = p + n, *q = memchr(p, ' ', n), *r;
    if (q == NULL || q - p >= (ptrdiff_t)sizeof(buf) ||
        (r = memchr(q + 1, ' ', (size_t)(end - q - 1))) == NULL ||
        r + 1 >= end) {
        return 0;
    }
    memcpy(buf, p, (size_t)(q - p));
    buf[q - p] = '\0';
    char *stop;
    unsigned long line = strtoul(buf, &stop, 10);
    if (*stop != '\0' || stop == buf) {
        return 0;
    }
    PyObject *file = PyUnicode_DecodeUTF8(r + 1, end - r - 1, "strict");
    PyObject *key = file == NULL ? NULL
                                 : Py_BuildValue("(ks#)", line, q + 1,
                                                 (Py_ssize_t)(r - q - 1));
    if (key == NULL) {
        Py_XDECREF(file);
        if (PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
            PyErr_Clear();
            return 0;
        }
        return -1;
    }
    PyObject *set = PyDict_GetItemWithError(ran, file);
    int rc = -1;
    if (set == NULL && !PyErr_Occurred() && (set = PySet_New(NULL)) != NULL) {
        rc = PyDict_SetItem(ran, file, set);
        Py_DECREF(set); /* the dict holds it */
        if (rc < 0) {
            set = NULL;
        }
    }
    rc = set == NULL ? -1 : PySet_Add(set, key);
    Py_DECREF(key);
    Py_DECREF(file);
    return rc;
}

/* Read the list: one name per line, of any length, '#' comments, blanks
 * ignored, each name once, in first-seen order (the import order of the
 * trace); '@' records of code that ran go to *ran (add_ran), '$' records
 * of strings the trace saw interned to the set interned (one that is not
 * UTF-8 is ignored: they are only a layout hint).  A line that
 * is not UTF-8 or holds a NUL byte is reported with its number and
 * skipped (*nskipped).  The names, or NULL with an exception (out of
 * memory) or with e filled. */
static PyObject *
read_list(const char *path, Py_ssize_t *nskipped, PyObject *ran,
          PyObject *interned, struct dump_error *e)
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
        enum cds_list_line kind =
            cds_list_line_parse(line, (size_t)got, &p, &n);
        if (kind == CDS_LIST_NUL) {
            report_skip("%s:%lu: skipping a line with a NUL byte", path,
                        lineno);
            ++*nskipped;
            continue;
        }
        if (kind == CDS_LIST_BLANK) {
            continue;
        }
        if (kind == CDS_LIST_RAN) {
            if (add_ran(ran, p, n) < 0) {
                goto fail;
            }
            continue;
        }
        if (kind == CDS_LIST_INTERNED) {
            PyObject *str = PyUnicode_DecodeUTF8(p, (Py_ssize_t)n, "strict");
            int r = str == NULL ? -1 : PySet_Add(interned, str);
            Py_XDECREF(str);
            if (r < 0) {
                if (!PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
                    goto fail;
                }
                PyErr_Clear();
            }
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
        if (r == 0 &&
            (PySet_Add(seen, name) < 0 || PyList_Append(names, name) < 0)) {
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

/* A ':'-separated PYCDS* value as a list of its non-empty parts (an
 * empty list for NULL), or NULL with an exception. */
static PyObject *
split_env(const char *v)
{
    PyObject *out = PyList_New(0), *s = NULL, *sep = NULL, *parts = NULL;

    if (out == NULL || v == NULL) {
        return out;
    }
    if ((s = PyUnicode_DecodeFSDefault(v)) != NULL &&
        (sep = PyUnicode_FromString(":")) != NULL &&
        (parts = PyUnicode_Split(s, sep, -1)) != NULL) {
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(parts); i++) {
            PyObject *p = PyList_GET_ITEM(parts, i);
            if (PyUnicode_GET_LENGTH(p) > 0 && PyList_Append(out, p) < 0) {
                Py_CLEAR(out);
                break;
            }
        }
    }
    else {
        Py_CLEAR(out);
    }
    Py_XDECREF(s);
    Py_XDECREF(sep);
    Py_XDECREF(parts);
    return out;
}

/* PYCDSPACKAGES, PYCDSPATHS: *names grows by the modules they hold; then
 * PYCDSINCLUDE/PYCDSEXCLUDE filter all of them (glue.py expand_names).  A
 * package or path that is not there is one skip line each.  0, or -1 with
 * an exception. */
static int
expand(PyObject **names, Py_ssize_t *nskipped)
{
    const struct cds_hook_config *c = &cds__hook.config;
    PyObject *fn, *args[5] = {NULL}, *r = NULL;
    int rc = -1;

    if (c->packages == NULL && c->paths == NULL && c->include == NULL &&
        c->exclude == NULL) {
        return 0;
    }
    if ((fn = glue_get("expand_names")) == NULL) {
        return -1;
    }
    args[0] = *names;
    Py_INCREF(args[0]);
    if ((args[1] = split_env(c->packages)) == NULL ||
        (args[2] = split_env(c->paths)) == NULL ||
        (args[3] = split_env(c->include)) == NULL ||
        (args[4] = split_env(c->exclude)) == NULL ||
        (r = PyObject_Vectorcall(fn, args, 5, NULL)) == NULL) {
        goto out;
    }
    if (!PyTuple_Check(r) || PyTuple_GET_SIZE(r) != 2) {
        PyErr_SetString(PyExc_TypeError, "expand_names: not a pair");
        goto out;
    }
    PyObject *problems = PyTuple_GET_ITEM(r, 1);
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(problems); i++) {
        report_skip("%U", PyList_GET_ITEM(problems, i));
        ++*nskipped;
    }
    Py_SETREF(*names, Py_NewRef(PyTuple_GET_ITEM(r, 0)));
    rc = 0;
out:
    for (int i = 0; i < 5; i++) {
        Py_XDECREF(args[i]);
    }
    Py_XDECREF(r);
    return rc;
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
    PyObject *names = NULL, *info_fn, *ran, *interned;
    int rc, status = -1;

    memset(c, 0, sizeof(*c));
    e->message[0] = '\0';
    progress_start(); /* the second counts from here: the list, the glue */
    if (cds__hook_runtime_problem(1, e->message, sizeof(e->message))) {
        return -1;
    }
    if (load_glue() < 0 || (info_fn = glue_get("dump_info")) == NULL) {
        return -1;
    }
    if (cds_heap_fingerprint(&fp, &err) < 0) {
        return dump_fail(e, "%s", err.message);
    }
    ran = PyDict_New();
    interned = PySet_New(NULL);
    if (ran == NULL || interned == NULL ||
        (names = list != NULL
                     ? read_list(list, &c->skipped, ran, interned, e)
                     : PyList_New(0)) == NULL ||
        expand(&names, &c->skipped) < 0) {
        Py_XDECREF(ran);
        Py_XDECREF(interned);
        Py_XDECREF(names);
        return -1;
    }
    /* what is interned now is interned before anything is served in the
     * processes that load the archive (they run the same start-up and
     * glue): slots naming it will be rewritten there (heap.h) */
    if (cds_heap_pool_create(&pool, &err) < 0 ||
        cds_heap_pool_note_startup(pool, &err) < 0 ||
        cds_heap_pool_note_early(pool, interned, &err) < 0) {
        PyErr_NoMemory();
        goto out;
    }
    if (cds_writer_create(&w, archive, cds__hook.config.base, &fp, &err) < 0) {
        dump_fail(e, "%s", err.message);
        goto out;
    }
    /* the loaders below compile for this level (-O, -OO, PYTHONOPTIMIZE) */
    int optimize = cds__hook_sys_flag("optimize");
    cds_writer_set_optimize(w, optimize > 255 ? 255u : (unsigned)optimize);
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(names); i++) {
        PyObject *name = PyList_GET_ITEM(names, i);
        progress_show(i, PyList_GET_SIZE(names), cds_writer_next_offset(w));
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
            .source_size =
                PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(info, 5)),
        };
        PyObject *source = PyTuple_GET_ITEM(info, 6);
        if (PyBytes_Check(source)) {
            m.source_hash = cds_hash(PyBytes_AS_STRING(source),
                                     (size_t)PyBytes_GET_SIZE(source));
        }
        if (m.origin == NULL || m.search == NULL || PyErr_Occurred()) {
            /* a path that is not UTF-8 cannot be stored: skip the module */
            PyErr_Clear();
            report_skip("skipping %U: path not representable in UTF-8", name);
            c->skipped++;
            Py_DECREF(info);
            continue;
        }
        cds_heap_segment seg;
        uint64_t addr = cds__hook.config.base + cds_writer_next_offset(w);
        /* the code of this module that ran in the trace, by its file */
        PyObject *ran_here =
            PyDict_GetItemWithError(ran, PyTuple_GET_ITEM(info, 1));
        if (ran_here == NULL && PyErr_Occurred()) {
            Py_DECREF(info);
            goto out;
        }
        rc = cds_heap_serialize(code, addr, pool, PyTuple_GET_ITEM(info, 7),
                                ran_here, &seg, &err);
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
    progress_erase();
    if (cds_heap_pool_order(pool, &err) < 0) {
        dump_fail(e, "%s", err.message);
        goto out;
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
    Py_XDECREF(ran);
    Py_XDECREF(interned);
    return status;
}

void
cds__dump_activate(void)
{
    const char *list = cds__hook.config.list;
    const char *archive = cds__hook.config.archive;
    struct dump_counts c;
    struct dump_error e = {{0}};
    PyObject *prep, *r;
    int status = 1;

    if ((list == NULL && cds__hook.config.packages == NULL &&
         cds__hook.config.paths == NULL) ||
        archive == NULL) {
        PySys_WriteStderr("pycds: dump: PYCDSMODE=DUMP needs PYCDSARCHIVE "
                          "and PYCDSLIST, PYCDSPACKAGES or PYCDSPATHS\n");
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
    flush_stream("stdout");
    flush_stream("stderr");
    _exit(status);
}

PyObject *
cds__dump_py(PyObject *Py_UNUSED(mod), PyObject *args)
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

/* The dump's view of a .pyc body: the same marshal data with each
 * frozenset read back as the tuple of its items in insertion order. */
PyObject *
cds__dump_frozensets_as_tuples(PyObject *Py_UNUSED(mod), PyObject *arg)
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
    if (out != NULL && cds_marshal_frozensets_to_tuples(
                           (uint8_t *)PyBytes_AS_STRING(out),
                           (size_t)PyBytes_GET_SIZE(out), NULL, &err) < 0) {
        PyErr_SetString(PyExc_ValueError, err.message);
        Py_CLEAR(out);
    }
    return out;
}
