/* SPDX-License-Identifier: MIT */
/* Object layout of CPython 3.12 (layout.h; format.md 5.1, "3.12").
 *
 * Objects are immortal (PEP 683): Py_INCREF and Py_DECREF leave the
 * count unwritten, so objects nothing else writes keep their pages clean.
 * Code is quickened when it is created (init_code calls _PyCode_Quicken:
 * superinstructions, warm-up counters in the inline caches), so the
 * archive holds co_code_adaptive as a fresh, never-run object of the
 * dumping interpreter has it: that of a twin made by code.replace()
 * (layout_immortal.h code_as_created), whatever the dumped object ran; co_version is 0, which makes
 * _PyFunction_GetVersionForCurrentState hand out a version from the
 * interpreter's counter the first time a call is specialised (the code
 * counter, _Py_next_func_version, is not exported).  CPYTHON-NOTES.md
 * 2.3-2.4. */
#define Py_BUILD_CORE 1 /* FRAME_SPECIALS_SIZE (internal/pycore_frame.h) */
#include "layout_immortal.h"

#include <internal/pycore_frame.h>
#include <internal/pycore_global_objects.h>
#include <opcode.h>
#include <stdio.h>

#if PY_VERSION_HEX < 0x030C0000 || PY_VERSION_HEX >= 0x030D0000
#error "layout_312.c is the heap layout of CPython 3.12"
#endif

static_assert(offsetof(PyCodeObject, co_consts) == 24 &&
                  offsetof(PyCodeObject, co_names) == 32 &&
                  offsetof(PyCodeObject, co_exceptiontable) == 40 &&
                  offsetof(PyCodeObject, co_flags) == 48 &&
                  offsetof(PyCodeObject, co_argcount) == 52 &&
                  offsetof(PyCodeObject, co_nlocalsplus) == 72 &&
                  offsetof(PyCodeObject, co_framesize) == 76 &&
                  offsetof(PyCodeObject, co_nlocals) == 80 &&
                  offsetof(PyCodeObject, co_ncellvars) == 84 &&
                  offsetof(PyCodeObject, co_nfreevars) == 88 &&
                  offsetof(PyCodeObject, co_version) == 92 &&
                  offsetof(PyCodeObject, co_localsplusnames) == 96 &&
                  offsetof(PyCodeObject, co_linetable) == 136 &&
                  offsetof(PyCodeObject, co_weakreflist) == 144 &&
                  offsetof(PyCodeObject, _co_cached) == 152 &&
                  offsetof(PyCodeObject, _co_instrumentation_version) ==
                      160 &&
                  offsetof(PyCodeObject, _co_monitoring) == 168 &&
                  offsetof(PyCodeObject, _co_firsttraceable) == 176 &&
                  offsetof(PyCodeObject, co_extra) == 184 &&
                  offsetof(PyCodeObject, co_code_adaptive) == 192,
              "PyCodeObject");

const long cds_layout_small_int_min = -_PY_NSMALLNEGINTS,
           cds_layout_small_int_max = _PY_NSMALLPOSINTS - 1;
static_assert(-_PY_NSMALLNEGINTS >= CDS_EXT_INT_MIN &&
                  _PY_NSMALLPOSINTS - 1 <= CDS_EXT_INT_MAX,
              "small ints");
const uint32_t cds_layout_code_head = offsetof(PyCodeObject, co_code_adaptive);

const uint64_t cds_layout_table[] = {
    0x030C, /* the layout's version: no 3.11 table can collide */
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
    (uint64_t)_Py_IMMORTAL_REFCNT,
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
    /* a fresh code object's frame size as init_code computes it */
    PyCodeObject *co = PyCode_NewEmpty("pycds", "probe", 1);
    if (co == NULL) {
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
    img->co_version = 0; /* assigned lazily by the interpreter */
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
    if (co->co_version != 0) {
        *at = offsetof(PyCodeObject, co_version);
        return "co_version is not 0";
    }
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

void
cds_layout_str_interned(PyObject *s)
{
    str_make_static(s);
}

/* co_version stays 0 (see the top of the file). */
void
cds_layout_code_loaded(PyObject *code)
{
    (void)code;
}
