/* SPDX-License-Identifier: MIT */
/* The part of the heap layout that CPython 3.12 to 3.15 share (PEP 683
 * immortal objects, str without wstr, int with lv_tag, code objects that
 * differ only in runtime fields): the body of their layout.h functions,
 * included once, by the one layout_3XX.c a build compiles, which
 * static_asserts its own offsets, includes the internal headers that
 * declare FRAME_SPECIALS_SIZE and the small-int cache, names what differs
 * (LAYOUT_VERSION_TAG, LAYOUT_REFCNT, LAYOUT_REFCNT_REPORTED,
 * LAYOUT_CODE_EXTRA_RUNTIME; LAYOUT_TUPLE_HASH from 3.14, as
 * layout_kinds.h says) and defines the load hooks.  A later version whose
 * objects differ more gets a header of its own. */
#ifndef CDS_LAYOUT_IMMORTAL_H
#define CDS_LAYOUT_IMMORTAL_H

#include "heap.h"
#include "layout_kinds.h"

#if PY_VERSION_HEX < 0x030C0000
#error "layout_immortal.h is for CPython 3.12 and later"
#endif
#ifdef Py_GIL_DISABLED
#error "free-threaded builds are not supported (another object header)"
#endif

#define LONG_DIGITS offsetof(PyLongObject, long_value.ob_digit)
#define LONG_TAG offsetof(PyLongObject, long_value.lv_tag)

/* format.md 5.1's offsets shared by 3.12 and 3.13 */
static_assert(sizeof(PyObject) == 16 && offsetof(PyObject, ob_type) == 8,
              "object head");
static_assert(offsetof(PyVarObject, ob_size) == 16, "ob_size");
static_assert(sizeof(PyASCIIObject) == 40 &&
                  offsetof(PyASCIIObject, length) == 16 &&
                  offsetof(PyASCIIObject, hash) == 24 &&
                  offsetof(PyASCIIObject, state) == 32,
              "PyASCIIObject");
static_assert(sizeof(PyCompactUnicodeObject) == 56 &&
                  offsetof(PyCompactUnicodeObject, utf8_length) == 40 &&
                  offsetof(PyCompactUnicodeObject, utf8) == 48,
              "PyCompactUnicodeObject");
static_assert(BYTES_SHASH_OFF == 24 && offsetof(PyBytesObject, ob_sval) == 32,
              "bytes");
static_assert(LONG_TAG == 16 && LONG_DIGITS == 24 && sizeof(digit) == 4,
              "int");
static_assert(offsetof(PyFloatObject, ob_fval) == 16 &&
                  offsetof(PyComplexObject, cval) == 16,
              "float, complex");
#ifdef LAYOUT_TUPLE_HASH
static_assert(offsetof(PyTupleObject, ob_hash) == 24 &&
                  offsetof(PyTupleObject, ob_item) == 32,
              "tuple");
#else
static_assert(offsetof(PyTupleObject, ob_item) == 24, "tuple");
#endif
#if !defined(LAYOUT_REFCNT) || !defined(LAYOUT_REFCNT_REPORTED)
#error "define LAYOUT_REFCNT and LAYOUT_REFCNT_REPORTED first"
#endif

const Py_ssize_t cds_layout_refcnt = (Py_ssize_t)LAYOUT_REFCNT;
const Py_ssize_t cds_layout_refcnt_reported =
    (Py_ssize_t)LAYOUT_REFCNT_REPORTED;
const char cds_layout_refcnt_name[] = "immortal";
/* Py_INCREF and Py_DECREF skip an immortal count */
const int cds_layout_refcounts_written = 0;
const uint32_t cds_layout_tuple_items = offsetof(PyTupleObject, ob_item);
const uint32_t cds_layout_bytes_hash = BYTES_SHASH_OFF;
const uint32_t cds_layout_bytes_data = offsetof(PyBytesObject, ob_sval);

/* Digits an int holds (lv_tag >> _PyLong_NON_SIZE_BITS). */
static Py_ssize_t
long_ndigits(PyObject *o)
{
    return (Py_ssize_t)(((PyLongObject *)o)->long_value.lv_tag >>
                        _PyLong_NON_SIZE_BITS);
}

/* Sizes of the kinds laid out alike from 3.12 on (all but code). */
static uint64_t
size_common(PyObject *o, unsigned kind, Py_ssize_t nitems)
{
    if (kind == CDS_OBJ_INT) {
        Py_ssize_t n = long_ndigits(o);
        return LONG_DIGITS + (uint64_t)(n > 0 ? n : 1) * sizeof(digit);
    }
    return size_plain(o, kind, nitems);
}

/* LAYOUT_STR_STATIC (3.14 on): every str image is marked statically
 * allocated, not only those the archive interns.  A str the program
 * interns at run time (setattr with a constant name, sys.intern) ends
 * SSTATE_INTERNED_IMMORTAL, which 3.14's finalizer makes mortal and
 * releases; unicode_dealloc re-immortalises a statically allocated str
 * instead of freeing it, and memory of the mapping must never be freed.
 * Before 3.14 only debug builds release such strings (CPYTHON-NOTES.md
 * 3.2), so the bit stays for interning at load to set. */
#ifndef LAYOUT_STR_STATIC
#define LAYOUT_STR_STATIC 0
#endif

/* The compact str image: head, state (not interned; statically
 * allocated as LAYOUT_STR_STATIC says; interning at load decides the
 * rest), data, NUL. */
static void
emit_str(uint8_t *p, PyObject *o)
{
    Py_ssize_t len = PyUnicode_GET_LENGTH(o);
    int kind = PyUnicode_KIND(o);
    PyCompactUnicodeObject u;
    size_t head;

    memset(&u, 0, sizeof(u));
    u._base.length = len;
    u._base.hash = -1; /* inv. 4 */
    u._base.state.interned = 0;
    u._base.state.kind = (unsigned)kind;
    u._base.state.compact = 1;
    u._base.state.ascii = PyUnicode_IS_ASCII(o) ? 1 : 0;
    u._base.state.statically_allocated = LAYOUT_STR_STATIC;
    u.utf8_length = 0; /* a lazily built cache */
    u.utf8 = NULL;
    head = PyUnicode_IS_ASCII(o) ? sizeof(PyASCIIObject)
                                 : sizeof(PyCompactUnicodeObject);
    memcpy(p + sizeof(PyObject), (uint8_t *)&u + sizeof(PyObject),
           head - sizeof(PyObject));
    emit_head(p, &PyUnicode_Type, NOT_VAR);
    memcpy(p + head, PyUnicode_DATA(o), (size_t)len * (size_t)kind);
}

/* Every kind but code. */
static const char *
emit_common(uint8_t *p, PyObject *o, unsigned kind)
{
    switch (kind) {
    case CDS_OBJ_STR:
        emit_str(p, o);
        return NULL;
    case CDS_OBJ_INT: {
        uintptr_t tag = ((PyLongObject *)o)->long_value.lv_tag;
        memcpy(p + LONG_TAG, &tag, sizeof(tag));
        memcpy(p + LONG_DIGITS, ((PyLongObject *)o)->long_value.ob_digit,
               (size_t)long_ndigits(o) * sizeof(digit));
        emit_head(p, &PyLong_Type, NOT_VAR);
        return NULL;
    }
    }
    if (emit_plain(p, o, kind)) {
        return NULL;
    }
    return "bad object kind";
}

const char *
cds_layout_str_view(const uint8_t *p, uint32_t extent, struct cds_str_view *v)
{
    PyASCIIObject a;

    if (extent < sizeof(PyASCIIObject)) {
        return "no room for its header";
    }
    memcpy(&a, p, sizeof(a));
    /* inv. 1: the whole word (3.14 on: with ob_flags) */
    Py_ssize_t refcnt;
    memcpy(&refcnt, p, sizeof(refcnt));
    if (refcnt != cds_layout_refcnt) {
        return "reference count is not immortal";
    }
    if (!a.state.compact || a.state.interned != 0 ||
        a.state.statically_allocated != LAYOUT_STR_STATIC) {
        return LAYOUT_STR_STATIC
                   ? "not compact, interned or not statically allocated"
                   : "not compact, interned or statically allocated";
    }
    v->length = a.length;
    v->hash = a.hash;
    v->kind = a.state.kind;
    v->ascii = a.state.ascii;
    v->head = a.state.ascii ? sizeof(PyASCIIObject)
                            : sizeof(PyCompactUnicodeObject);
    if (!a.state.ascii && extent >= sizeof(PyCompactUnicodeObject)) {
        PyCompactUnicodeObject c;
        memcpy(&c, p, sizeof(c));
        if (c.utf8 != NULL || c.utf8_length != 0) {
            return "utf8 cache set";
        }
    }
    return NULL;
}

const char *
cds_layout_int_view(const uint8_t *p, struct cds_int_view *v)
{
    uintptr_t tag;

    memcpy(&tag, p + LONG_TAG, sizeof(tag));
    v->size_name = "digit count";
    v->head = LONG_DIGITS;
    /* sign bits: 0 positive, 1 zero, 2 negative; bit 2 is no int's of
     * ours (3.13 reserves it for immortal small ints) */
    unsigned sign = (unsigned)(tag & _PyLong_SIGN_MASK);
    uint64_t n = (uint64_t)(tag >> _PyLong_NON_SIZE_BITS);
    if (sign == 3 || (tag & 4) != 0 || (sign == 1) != (n == 0) ||
        n > INT64_MAX) {
        return "lv_tag is no int's";
    }
    v->size = sign == 2 ? -(int64_t)n : (int64_t)n;
    return NULL;
}

/* The as-created form of code object co: a new code object made from
 * co's fields (code.replace() with no change), which runs init_code and
 * so _PyCode_Quicken on co's de-optimised bytecode, as marshal does for
 * a .pyc.  Whatever co went through (run, specialised, instrumented),
 * its twin has never run: inv. 5 holds for any code serialized.  New
 * reference, or NULL with the exception cleared. */
static PyCodeObject *
code_as_created(PyCodeObject *co)
{
    PyObject *twin = PyObject_CallMethod((PyObject *)co, "replace", NULL);

    if (twin == NULL || !PyCode_Check(twin) || twin == (PyObject *)co ||
        Py_SIZE(twin) != Py_SIZE(co)) {
        Py_XDECREF(twin);
        PyErr_Clear();
        return NULL;
    }
    return (PyCodeObject *)twin;
}

/* A str the archived one became the interned one of (t == s): mark it
 * statically allocated and interned immortal-static, as the runtime's
 * own static strings, so that no finalizer ever makes it mortal (3.13's
 * debug builds and later versions do for SSTATE_INTERNED_IMMORTAL) and
 * unicode_dealloc would re-immortalise rather than free it. */
static void
str_make_static(PyObject *s)
{
    ((PyASCIIObject *)s)->state.interned = SSTATE_INTERNED_IMMORTAL_STATIC;
    ((PyASCIIObject *)s)->state.statically_allocated = 1;
}

void
cds_layout_str_interned(PyObject *s)
{
    str_make_static(s);
}

/* 3.12 on: a str has no wstr to fill. */
void
cds_layout_str_loaded(uint8_t *p, uint32_t extent)
{
    (void)p;
    (void)extent;
}

/* ---------------------------------------------------------------------
 * Code objects as 3.12 and 3.13 lay them out: the same fields but for the
 * runtime ones the includer lists in LAYOUT_CODE_EXTRA_RUNTIME (entries
 * {why, offset} of pointer fields that must be NULL; 3.13: co_executors),
 * with LAYOUT_VERSION_TAG first in the fingerprint table.  The includer
 * static_asserts every offset. */
#if !defined(LAYOUT_VERSION_TAG) || !defined(LAYOUT_CODE_EXTRA_RUNTIME)
#error "define LAYOUT_VERSION_TAG and LAYOUT_CODE_EXTRA_RUNTIME first"
#endif
#ifndef Py_BUILD_CORE
#error "FRAME_SPECIALS_SIZE needs Py_BUILD_CORE before Python.h"
#endif
#if !defined(FRAME_SPECIALS_SIZE) || !defined(_PY_NSMALLPOSINTS)
#error "include the headers of FRAME_SPECIALS_SIZE and _PY_NSMALLPOSINTS"
#endif
#include <internal/pycore_interp.h>
#include <opcode.h>
#include <stdio.h>

const long cds_layout_small_int_min = -_PY_NSMALLNEGINTS,
           cds_layout_small_int_max = _PY_NSMALLPOSINTS - 1;
static_assert(-_PY_NSMALLNEGINTS >= CDS_EXT_INT_MIN &&
                  _PY_NSMALLPOSINTS - 1 <= CDS_EXT_INT_MAX,
              "small ints");
const uint32_t cds_layout_code_head = offsetof(PyCodeObject, co_code_adaptive);
#ifdef RESUME_AT_GEN_EXPR_START /* internal/pycore_opcode_utils.h, 3.15 */
const int cds_layout_resume_not_entry = RESUME_AT_GEN_EXPR_START;
#else
const int cds_layout_resume_not_entry = -1;
#endif

const uint64_t cds_layout_table[] = {
    LAYOUT_VERSION_TAG, /* the layout's version: no two tables collide */
    sizeof(PyObject), sizeof(PyVarObject), offsetof(PyObject, ob_type),
    sizeof(PyASCIIObject), sizeof(PyCompactUnicodeObject),
    offsetof(PyASCIIObject, hash), BYTES_SHASH_OFF,
    offsetof(PyBytesObject, ob_sval), LONG_TAG, LONG_DIGITS, sizeof(digit),
    sizeof(PyFloatObject), sizeof(PyComplexObject),
    offsetof(PyTupleObject, ob_item), CDS_GC_HEAD_SIZE,
    offsetof(PyCodeObject, co_consts), offsetof(PyCodeObject, co_flags),
    offsetof(PyCodeObject, co_framesize), offsetof(PyCodeObject, co_version),
    offsetof(PyCodeObject, co_localsplusnames),
    offsetof(PyCodeObject, co_linetable), offsetof(PyCodeObject, co_extra),
    offsetof(PyCodeObject, co_code_adaptive), FRAME_SPECIALS_SIZE,
    (uint64_t)LAYOUT_REFCNT,
};
const size_t cds_layout_table_size = sizeof(cds_layout_table);

const struct cds_layout_field cds_layout_code_fields[] = {
#define F(field, kind) {#field, offsetof(PyCodeObject, field), kind}
    F(co_consts, CDS_OBJ_TUPLE),          F(co_names, CDS_OBJ_TUPLE),
    F(co_exceptiontable, CDS_OBJ_BYTES),  F(co_localsplusnames, CDS_OBJ_TUPLE),
    F(co_localspluskinds, CDS_OBJ_BYTES), F(co_filename, CDS_OBJ_STR),
    F(co_name, CDS_OBJ_STR),              F(co_qualname, CDS_OBJ_STR),
    F(co_linetable, CDS_OBJ_BYTES),
#undef F
};
const size_t cds_layout_code_nfields =
    sizeof(cds_layout_code_fields) / sizeof(cds_layout_code_fields[0]);

const char *
cds_layout_check_runtime(char *buf, size_t size)
{
    if (PyCode_Type.tp_basicsize !=
            (Py_ssize_t)offsetof(PyCodeObject, co_code_adaptive) ||
        PyTuple_Type.tp_basicsize !=
            (Py_ssize_t)offsetof(PyTupleObject, ob_item) ||
        PyBytes_Type.tp_basicsize !=
            (Py_ssize_t)offsetof(PyBytesObject, ob_sval) + 1 ||
        PyUnicode_Type.tp_basicsize != (Py_ssize_t)sizeof(PyUnicodeObject) ||
        PyLong_Type.tp_basicsize != (Py_ssize_t)LONG_DIGITS) {
        return "object layout differs from the headers built with";
    }
    /* a code object's frame size as init_code computes it, the same
     * specials in every one: importlib's _find_and_load, which every
     * import runs, or else a new one (PyCode_NewEmpty's bytecode lies in
     * a page of the interpreter's read-only data that nothing else a
     * program does reads: a 64 KiB fault-around window in every SHARE
     * process of Debian's 3.14 that stock never maps) */
    PyObject *fn = cds_heap_module_attr("_frozen_importlib", "_find_and_load");
    PyCodeObject *co = NULL;
    if (fn != NULL && PyFunction_Check(fn)) {
        co = (PyCodeObject *)Py_NewRef(PyFunction_GET_CODE(fn));
    }
    Py_XDECREF(fn);
    PyErr_Clear();
    if (co == NULL && (co = PyCode_NewEmpty("pycds", "probe", 1)) == NULL) {
        PyErr_Clear();
        return "cannot create a probe code object";
    }
    int specials = co->co_framesize - co->co_nlocalsplus - co->co_stacksize;
    Py_DECREF(co);
    if (specials != FRAME_SPECIALS_SIZE) {
        snprintf(buf, size, "frame specials %d, expected %d", specials,
                 FRAME_SPECIALS_SIZE);
        return buf;
    }
    return NULL;
}

uint64_t
cds_layout_size(PyObject *o, unsigned kind, Py_ssize_t nitems)
{
    if (kind == CDS_OBJ_CODE) {
        return offsetof(PyCodeObject, co_code_adaptive) +
               (uint64_t)Py_SIZE(o) * 2u; /* 2-byte code units */
    }
    return size_common(o, kind, nitems);
}

static const char *
emit_code(uint8_t *p, PyCodeObject *co)
{
    PyCodeObject *img = (PyCodeObject *)p; /* only for offsetof/stores */
    /* inv. 5: the bytecode and the fields init_code derives from it come
     * from a never-run twin, whether co ran or not */
    PyCodeObject *fresh = code_as_created(co);

    if (fresh == NULL) {
        return "cannot make the as-created form of a code object";
    }
    img->co_flags = co->co_flags;
    img->co_argcount = co->co_argcount;
    img->co_posonlyargcount = co->co_posonlyargcount;
    img->co_kwonlyargcount = co->co_kwonlyargcount;
    img->co_stacksize = co->co_stacksize;
    img->co_firstlineno = co->co_firstlineno;
    img->co_nlocalsplus = co->co_nlocalsplus;
    img->co_framesize = fresh->co_framesize;
    img->co_nlocals = co->co_nlocals;
    img->co_ncellvars = co->co_ncellvars;
    img->co_nfreevars = co->co_nfreevars;
    img->co_version = 0; /* the version's cds_layout_code_loaded decides */
    img->_co_firsttraceable = fresh->_co_firsttraceable;
    /* as created: quickened, counters at their warm-up values */
    memcpy(p + offsetof(PyCodeObject, co_code_adaptive),
           fresh->co_code_adaptive, (size_t)Py_SIZE(co) * 2u);
    Py_DECREF(fresh);
    emit_head(p, &PyCode_Type, Py_SIZE(co));
    return NULL;
}

const char *
cds_layout_emit(uint8_t *p, PyObject *o, unsigned kind)
{
    if (kind == CDS_OBJ_CODE) {
        return emit_code(p, (PyCodeObject *)o);
    }
    return emit_common(p, o, kind);
}

void
cds_layout_code_view(const uint8_t *p, struct cds_code_view *v)
{
    const PyCodeObject *co = (const void *)p;

    v->nunits = co->ob_base.ob_size;
    v->argcount = co->co_argcount;
    v->posonlyargcount = co->co_posonlyargcount;
    v->kwonlyargcount = co->co_kwonlyargcount;
    v->flags = co->co_flags;
    v->stacksize = co->co_stacksize;
    v->nlocalsplus = co->co_nlocalsplus;
    v->nlocals = co->co_nlocals;
    v->ncellvars = co->co_ncellvars;
    v->nfreevars = co->co_nfreevars;
    v->nplaincellvars = -1;
    v->firsttraceable = co->_co_firsttraceable;
    v->code = p + offsetof(PyCodeObject, co_code_adaptive);
    v->off_flags = offsetof(PyCodeObject, co_flags);
    v->off_stacksize = offsetof(PyCodeObject, co_stacksize);
    v->off_nlocalsplus = offsetof(PyCodeObject, co_nlocalsplus);
    v->off_nlocals = offsetof(PyCodeObject, co_nlocals);
    v->off_argcount = offsetof(PyCodeObject, co_argcount);
    v->off_firsttraceable = offsetof(PyCodeObject, _co_firsttraceable);
}

const char *
cds_layout_check_code(const uint8_t *p, uint32_t *at, char *buf, size_t size)
{
    const PyCodeObject *co = (const void *)p;
    static const struct {
        const char *why;
        uint32_t off;
    } runtime[] = {
        {"co_weakreflist is not NULL", offsetof(PyCodeObject, co_weakreflist)},
        LAYOUT_CODE_EXTRA_RUNTIME
        {"_co_cached is not NULL", offsetof(PyCodeObject, _co_cached)},
        {"_co_instrumentation_version is not 0",
         offsetof(PyCodeObject, _co_instrumentation_version)},
        {"_co_monitoring is not NULL", offsetof(PyCodeObject, _co_monitoring)},
        {"co_extra is not NULL", offsetof(PyCodeObject, co_extra)},
    };
    for (size_t i = 0; i < sizeof(runtime) / sizeof(runtime[0]); i++) {
        uint64_t w;
        memcpy(&w, p + runtime[i].off, 8);
        if (w != 0) {
            *at = runtime[i].off;
            return runtime[i].why;
        }
    }
#ifndef LAYOUT_CODE_VERSIONS
    if (co->co_version != 0) {
        *at = offsetof(PyCodeObject, co_version);
        return "co_version is not 0";
    }
#endif
    /* frames are sized by it (_PyFrame_PushUnchecked) */
    if ((int64_t)co->co_framesize !=
        (int64_t)co->co_nlocalsplus + co->co_stacksize + FRAME_SPECIALS_SIZE) {
        *at = offsetof(PyCodeObject, co_framesize);
        snprintf(buf, size,
                 "co_framesize %d, co_nlocalsplus %d + co_stacksize %d + %d",
                 co->co_framesize, co->co_nlocalsplus, co->co_stacksize,
                 (int)FRAME_SPECIALS_SIZE);
        return buf;
    }
    return NULL;
}

/* A statically allocated string (the runtime's identifiers, and on 3.12
 * deep-frozen code's) lives in the interpreter binary: at the same
 * address in every process of a non-PIE build. */
uint64_t
cds_layout_str_fixed_address(PyObject *o)
{
    return ((PyASCIIObject *)o)->state.statically_allocated
               ? (uint64_t)(uintptr_t)o
               : 0;
}

/* The interpreter's dict of the strings interned on its heap (the
 * static ones are in the runtime's own table). */
PyObject *
cds_layout_interned_dict(void)
{
    PyInterpreterState *interp = PyInterpreterState_Get();
    PyObject *d = _Py_INTERP_CACHED_OBJECT(interp, interned_strings);

    return d != NULL && PyDict_Check(d) ? d : NULL;
}

PyObject *
cds_layout_interned_heap(void)
{
    PyObject *d = cds_layout_interned_dict();

    if (d == NULL) {
        Py_RETURN_NONE;
    }
    return PySet_New(d);
}

#ifdef LAYOUT_CODE_VERSIONS
/* 3.13 on: init_code takes co_version from the interpreter's counter,
 * PyFunction_New copies it into func_version, and a function whose
 * version is 0 is never specialised (CPYTHON-NOTES.md 2.3-2.4): the
 * archive's code objects carry versions of their own (format.md 5.1.7). */
/* Far above what the counter reaches before anything is served (one per
 * code object created: some thousands at start-up), far below its end. */
const uint32_t cds_layout_code_version_base = 1u << 24;
const uint32_t cds_layout_code_version_off = offsetof(PyCodeObject, co_version);

/* init_code gives each code object the counter's next version, which
 * PyFunction_New copies and specialisation guards compare: versions must
 * be unique among the interpreter's code objects.  Moving the counter
 * past the archive's range keeps them unique without writing a version
 * into every archived code object (a page each). */
int
cds_layout_code_versions_reserve(uint32_t base, uint32_t count)
{
    PyInterpreterState *interp = PyInterpreterState_Get();
    uint32_t next = interp->func_state.next_version;

    if (next == 0 || next > base || count > UINT32_MAX - base) {
        return 0;
    }
    interp->func_state.next_version = base + count;
    return 1;
}

/* Unless reserved, init_code's version: the interpreter's next one, and
 * the counter moves on unless it ran out (0: no more specialisation). */
void
cds_layout_code_loaded(PyObject *code, int reserved)
{
    PyInterpreterState *interp = PyInterpreterState_Get();
    PyCodeObject *co = (PyCodeObject *)code;

    if (reserved) {
        return;
    }
    co->co_version = interp->func_state.next_version;
    if (interp->func_state.next_version != 0) {
        interp->func_state.next_version++;
    }
}
#endif

#endif /* CDS_LAYOUT_IMMORTAL_H */
