/* SPDX-License-Identifier: MIT */
/* Object layout of CPython 3.11 (layout.h; format.md 5.1, "3.11").
 *
 * Objects are mortal: every archived object carries 2^40 references,
 * far above any count real references reach, and every INCREF writes it.
 * A str keeps its 3.11 wstr/ready fields; code objects are archived in
 * their never-quickened form (PyCode_GetCode) with the warm-up counter
 * at its initial value: 3.11 quickens a code object only after it ran
 * (CPYTHON-NOTES.md 2.3). */
#include "layout_kinds.h"

#include <opcode.h>
#include <string.h>

#if PY_VERSION_HEX < 0x030B0000 || PY_VERSION_HEX >= 0x030C0000
#error "layout_311.c is the heap layout of CPython 3.11"
#endif
#ifdef Py_GIL_DISABLED
#error "free-threaded builds are not supported"
#endif

/* Internal/pycore_code.h: QUICKENING_INITIAL_WARMUP_VALUE
 * (-QUICKENING_WARMUP_DELAY).  Checked at runtime against a fresh code
 * object in cds_layout_check_runtime(). */
#define CODE_WARMUP (-8)

/* format.md 5.1's table for 3.11: every offset it states */
static_assert(sizeof(PyObject) == 16 && offsetof(PyObject, ob_type) == 8,
              "object head");
static_assert(offsetof(PyVarObject, ob_size) == 16, "ob_size");
static_assert(sizeof(PyASCIIObject) == 48 &&
                  offsetof(PyASCIIObject, length) == 16 &&
                  offsetof(PyASCIIObject, hash) == 24 &&
                  offsetof(PyASCIIObject, state) == 32 &&
                  offsetof(PyASCIIObject, wstr) == 40,
              "PyASCIIObject");
static_assert(sizeof(PyCompactUnicodeObject) == 72 &&
                  offsetof(PyCompactUnicodeObject, utf8_length) == 48 &&
                  offsetof(PyCompactUnicodeObject, utf8) == 56 &&
                  offsetof(PyCompactUnicodeObject, wstr_length) == 64,
              "PyCompactUnicodeObject");
static_assert(BYTES_SHASH_OFF == 24 && offsetof(PyBytesObject, ob_sval) == 32,
              "bytes");
static_assert(offsetof(PyLongObject, ob_digit) == 24 && sizeof(digit) == 4,
              "int");
static_assert(offsetof(PyFloatObject, ob_fval) == 16 &&
                  offsetof(PyComplexObject, cval) == 16,
              "float, complex");
static_assert(offsetof(PyTupleObject, ob_item) == 24, "tuple");
static_assert(offsetof(PyCodeObject, co_consts) == 24 &&
                  offsetof(PyCodeObject, co_names) == 32 &&
                  offsetof(PyCodeObject, co_exceptiontable) == 40 &&
                  offsetof(PyCodeObject, co_flags) == 48 &&
                  offsetof(PyCodeObject, co_warmup) == 52 &&
                  offsetof(PyCodeObject, _co_linearray_entry_size) == 54 &&
                  offsetof(PyCodeObject, co_argcount) == 56 &&
                  offsetof(PyCodeObject, co_nlocalsplus) == 76 &&
                  offsetof(PyCodeObject, co_nlocals) == 80 &&
                  offsetof(PyCodeObject, co_nplaincellvars) == 84 &&
                  offsetof(PyCodeObject, co_ncellvars) == 88 &&
                  offsetof(PyCodeObject, co_nfreevars) == 92 &&
                  offsetof(PyCodeObject, co_localsplusnames) == 96 &&
                  offsetof(PyCodeObject, co_linetable) == 136 &&
                  offsetof(PyCodeObject, co_weakreflist) == 144 &&
                  offsetof(PyCodeObject, _co_code) == 152 &&
                  offsetof(PyCodeObject, _co_linearray) == 160 &&
                  offsetof(PyCodeObject, _co_firsttraceable) == 168 &&
                  offsetof(PyCodeObject, co_extra) == 176 &&
                  offsetof(PyCodeObject, co_code_adaptive) == 184,
              "PyCodeObject");

const Py_ssize_t cds_layout_refcnt = (Py_ssize_t)1 << 40,
                 cds_layout_refcnt_reported = (Py_ssize_t)1 << 40;
const char cds_layout_refcnt_name[] = "2^40";
const int cds_layout_refcounts_written = 1;
const long cds_layout_small_int_min = -5, cds_layout_small_int_max = 256;
const int cds_layout_resume_not_entry = -1;
static_assert(-5 >= CDS_EXT_INT_MIN && 256 <= CDS_EXT_INT_MAX, "small ints");
const uint32_t cds_layout_tuple_items = offsetof(PyTupleObject, ob_item);
const uint32_t cds_layout_bytes_hash = BYTES_SHASH_OFF;
const uint32_t cds_layout_bytes_data = offsetof(PyBytesObject, ob_sval);
const uint32_t cds_layout_code_head = offsetof(PyCodeObject, co_code_adaptive);

/* Every size and offset the archive depends on; its hash is the layout
 * fingerprint.  The 3.11 table as it always was: archives stay valid. */
const uint64_t cds_layout_table[] = {
    sizeof(PyObject), sizeof(PyVarObject), offsetof(PyObject, ob_type),
    sizeof(PyASCIIObject), sizeof(PyCompactUnicodeObject),
    offsetof(PyASCIIObject, hash), offsetof(PyASCIIObject, wstr),
    BYTES_SHASH_OFF, offsetof(PyBytesObject, ob_sval),
    offsetof(PyLongObject, ob_digit), sizeof(digit),
    sizeof(PyFloatObject), sizeof(PyComplexObject),
    offsetof(PyTupleObject, ob_item), CDS_GC_HEAD_SIZE,
    offsetof(PyCodeObject, co_consts), offsetof(PyCodeObject, co_flags),
    offsetof(PyCodeObject, co_localsplusnames),
    offsetof(PyCodeObject, co_linetable), offsetof(PyCodeObject, co_extra),
    offsetof(PyCodeObject, co_code_adaptive), (uint64_t)CODE_WARMUP,
    (uint64_t)((Py_ssize_t)1 << 40),
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
        PyUnicode_Type.tp_basicsize != (Py_ssize_t)sizeof(PyUnicodeObject)) {
        return "object layout differs from the headers built with";
    }
    /* a fresh code object shows the warm-up value (inv. 5) */
    PyCodeObject *co = PyCode_NewEmpty("pycds", "probe", 1);
    if (co == NULL) {
        PyErr_Clear();
        return "cannot create a probe code object";
    }
    int warmup = co->co_warmup;
    Py_DECREF(co);
    if (warmup != CODE_WARMUP) {
        snprintf(buf, size, "code warm-up counter %d, expected %d", warmup,
                 CODE_WARMUP);
        return buf;
    }
    return NULL;
}

/* ---------------------------------------------------------------------
 * Serializing */

uint64_t
cds_layout_size(PyObject *o, unsigned kind, Py_ssize_t nitems)
{
    switch (kind) {
    case CDS_OBJ_CODE:
        return offsetof(PyCodeObject, co_code_adaptive) +
               (uint64_t)Py_SIZE(o) * sizeof(_Py_CODEUNIT);
    case CDS_OBJ_INT: {
        Py_ssize_t n = Py_SIZE(o) < 0 ? -Py_SIZE(o) : Py_SIZE(o);
        return offsetof(PyLongObject, ob_digit) +
               (uint64_t)(n > 0 ? n : 1) * sizeof(digit);
    }
    }
    return size_plain(o, kind, nitems);
}

/* The compact str image: head, state, data, NUL. */
static void
emit_str(uint8_t *p, PyObject *o)
{
    Py_ssize_t len = PyUnicode_GET_LENGTH(o);
    int kind = PyUnicode_KIND(o);
    PyCompactUnicodeObject u;
    size_t head;

    memset(&u, 0, sizeof(u));
    u._base.length = len;
    u._base.hash = -1;          /* inv. 4 */
    u._base.state.interned = 0; /* set by interning at load */
    u._base.state.kind = (unsigned)kind;
    u._base.state.compact = 1;
    u._base.state.ascii = PyUnicode_IS_ASCII(o) ? 1 : 0;
    u._base.state.ready = 1;
    u._base.wstr = NULL; /* a lazily built cache */
    u.utf8_length = 0;   /* ditto */
    u.utf8 = NULL;
    u.wstr_length = 0;
    head = PyUnicode_IS_ASCII(o) ? sizeof(PyASCIIObject)
                                 : sizeof(PyCompactUnicodeObject);
    /* the fields after the object head */
    memcpy(p + sizeof(PyObject), (uint8_t *)&u + sizeof(PyObject),
           head - sizeof(PyObject));
    emit_head(p, &PyUnicode_Type, NOT_VAR);
    /* data and its terminating NUL (the buffer is zeroed) */
    memcpy(p + head, PyUnicode_DATA(o), (size_t)len * (size_t)kind);
}

static const char *
emit_code(uint8_t *p, PyCodeObject *co)
{
    PyCodeObject *img = (PyCodeObject *)p; /* only for offsetof/stores */
    PyObject *bytecode;

    /* field by field, so that no padding byte of the dumping process's
     * heap reaches the file (the region is zeroed) */
    img->co_flags = co->co_flags;
    img->co_argcount = co->co_argcount;
    img->co_posonlyargcount = co->co_posonlyargcount;
    img->co_kwonlyargcount = co->co_kwonlyargcount;
    img->co_stacksize = co->co_stacksize;
    img->co_firstlineno = co->co_firstlineno;
    img->co_nlocalsplus = co->co_nlocalsplus;
    img->co_nlocals = co->co_nlocals;
    img->co_nplaincellvars = co->co_nplaincellvars;
    img->co_ncellvars = co->co_ncellvars;
    img->co_nfreevars = co->co_nfreevars;
    img->_co_firsttraceable = co->_co_firsttraceable;
    /* inv. 5: the deoptimised, never-executed form */
    bytecode = PyCode_GetCode(co);
    if (bytecode == NULL) {
        PyErr_Clear();
        return "cannot read bytecode";
    }
    if (PyBytes_GET_SIZE(bytecode) != Py_SIZE(co) * 2) {
        Py_DECREF(bytecode);
        return "bytecode size mismatch";
    }
    memcpy(p + offsetof(PyCodeObject, co_code_adaptive),
           PyBytes_AS_STRING(bytecode), (size_t)PyBytes_GET_SIZE(bytecode));
    Py_DECREF(bytecode);
    img->co_warmup = CODE_WARMUP;
    img->_co_linearray_entry_size = 0;
    img->co_weakreflist = NULL;
    img->_co_code = NULL;
    img->_co_linearray = NULL;
    img->co_extra = NULL;
    emit_head(p, &PyCode_Type, Py_SIZE(co));
    return NULL;
}

const char *
cds_layout_emit(uint8_t *p, PyObject *o, unsigned kind)
{
    switch (kind) {
    case CDS_OBJ_CODE:
        return emit_code(p, (PyCodeObject *)o);
    case CDS_OBJ_STR:
        emit_str(p, o);
        return NULL;
    case CDS_OBJ_INT: {
        Py_ssize_t nd = Py_SIZE(o) < 0 ? -Py_SIZE(o) : Py_SIZE(o);
        memcpy(p + offsetof(PyLongObject, ob_digit),
               ((PyLongObject *)o)->ob_digit, (size_t)nd * sizeof(digit));
        emit_head(p, &PyLong_Type, Py_SIZE(o));
        return NULL;
    }
    }
    if (emit_plain(p, o, kind)) {
        return NULL;
    }
    return "bad object kind";
}

/* ---------------------------------------------------------------------
 * Validating */

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
    v->nplaincellvars = co->co_nplaincellvars;
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
    /* inv. 5: the runtime caches are empty; anything else is a pointer
     * into the dumping process (CPYTHON-NOTES.md 8.6) */
    static const struct {
        const char *why;
        uint32_t off;
    } runtime[] = {
        {"co_weakreflist is not NULL", offsetof(PyCodeObject, co_weakreflist)},
        {"_co_code is not NULL", offsetof(PyCodeObject, _co_code)},
        {"_co_linearray is not NULL", offsetof(PyCodeObject, _co_linearray)},
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
    if (co->co_warmup != CODE_WARMUP || co->_co_linearray_entry_size != 0) {
        *at = offsetof(PyCodeObject, co_warmup);
        snprintf(buf, size,
                 "co_warmup %d, _co_linearray_entry_size %d: not a fresh "
                 "code object",
                 co->co_warmup, co->_co_linearray_entry_size);
        return buf;
    }
    return NULL;
}

const char *
cds_layout_str_view(const uint8_t *p, uint32_t extent, struct cds_str_view *v)
{
    PyASCIIObject a;

    if (extent < sizeof(PyASCIIObject)) {
        return "no room for its header";
    }
    memcpy(&a, p, sizeof(a));
    /* inv. 1: loading interns it, which takes 2 off a mortal count */
    if (a.ob_base.ob_refcnt != cds_layout_refcnt) {
        return "reference count is not 2^40";
    }
    if (!a.state.compact || !a.state.ready || a.state.interned != 0 ||
        a.wstr != NULL) {
        return "not compact, not ready, interned or with a wstr";
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
        if (c.utf8 != NULL || c.utf8_length != 0 || c.wstr_length != 0) {
            return "utf8 or wstr cache set";
        }
    }
    return NULL;
}

const char *
cds_layout_int_view(const uint8_t *p, struct cds_int_view *v)
{
    v->size = ((const PyVarObject *)p)->ob_size;
    v->size_name = "ob_size";
    v->head = offsetof(PyLongObject, ob_digit);
    return NULL;
}

/* ---------------------------------------------------------------------
 * Loading */

/* inv. 8: on 3.11 (USE_UNICODE_WCHAR_CACHE, 4-byte wchar_t) a compact
 * UCS-4 string's wstr is its own data, as PyUnicode_New leaves it; the
 * wide-char functions (unicode_copy_as_widechar) read any other string
 * with wstr NULL as UCS-2.  The file stores NULL (no pointer into the
 * middle of an object to relocate); set it here, within extent bytes. */
void
cds_layout_str_loaded(uint8_t *p, uint32_t extent)
{
#if SIZEOF_WCHAR_T == 4
    PyCompactUnicodeObject *u = (PyCompactUnicodeObject *)p;
    if (extent >= sizeof(*u) && !u->_base.state.ascii &&
        u->_base.state.kind == PyUnicode_4BYTE_KIND &&
        u->_base.wstr == NULL) {
        u->_base.wstr = (wchar_t *)(p + sizeof(*u));
        u->wstr_length = u->_base.length;
    }
#else
    (void)p;
    (void)extent;
#endif
}

/* 3.11: InternInPlace made it SSTATE_INTERNED_MORTAL and took the dict's
 * two references off its 2^40; _PyUnicode_ClearInterned gives them back
 * at exit.  Nothing more to do. */
void
cds_layout_str_interned(PyObject *s)
{
    (void)s;
}

/* 3.11 has statically allocated identifiers too, but no bit that tells
 * them, and writes every archived object's reference count anyway: no
 * slot is worth a guess. */
uint64_t
cds_layout_str_fixed_address(PyObject *o)
{
    (void)o;
    return 0;
}

/* The interned dict is private to unicodeobject.c. */
PyObject *
cds_layout_interned_heap(void)
{
    Py_RETURN_NONE;
}

PyObject *
cds_layout_interned_dict(void)
{
    return NULL;
}

