/* SPDX-License-Identifier: MIT */
/* Heap layer for CPython 3.11: serialize code graphs, patch mapped ones.
 *
 * An archived object is byte for byte what CPython itself would have built,
 * placed at a known address.  Invariants (CPYTHON-NOTES.md 8, cited as
 * inv. N):
 *  1. Nothing archived is ever freed: every object carries a reference count
 *     (CDS_REFCNT) that no amount of DECREF can bring to zero, and the
 *     mapping is never unmapped.
 *  2. Every GC type (tuple) is preceded by a zeroed PyGC_Head: untracked,
 *     not collecting.  Nothing ever tracks it.
 *  3. The process's singletons (None, True, False, Ellipsis, small ints,
 *     empty and 1-character str/bytes, the empty tuple) and type objects are
 *     never copied: their slots are "external" and hold the process's own
 *     object after loading.
 *  4. Stored str and bytes hashes are -1 ("not computed"), so a different
 *     hash secret needs no patching.
 *  5. Code is archived in its never-executed form (PyCode_GetCode: no
 *     quickened instructions, zeroed inline caches, warm-up counter at its
 *     initial value) with every runtime cache pointer NULL.
 *  6. Strings the dumping interpreter had interned are interned again at
 *     load; where the interpreter already has an equal interned string,
 *     every slot that pointed at the archived copy is redirected to it and
 *     we keep one reference to it for ever.
 *  7. frozenset is never archived as such (its table depends on the hash
 *     secret): its items are a tuple, and loading builds the frozenset.
 *  8. A str is laid out as PyUnicode_New would leave it, lazily built caches
 *     (utf8, and wstr but where it is the data itself) empty. */
#include "heap.h"

#include "checksum.h"

#include <string.h>

#if PY_VERSION_HEX < 0x030B0000 || PY_VERSION_HEX >= 0x030C0000
#error "this heap layer supports CPython 3.11 only"
#endif

/* inv. 1: far above any count reachable from real references; CPython's own
 * static objects use 999999999 in 3.11. */
#define CDS_REFCNT ((Py_ssize_t)1 << 40)
/* Internal/pycore_code.h: QUICKENING_INITIAL_WARMUP_VALUE
 * (-QUICKENING_WARMUP_DELAY).  Checked at runtime against a fresh code
 * object in cds_heap_check_runtime(). */
#define CDS_CODE_WARMUP (-8)
#define CDS_GC_HEAD CDS_GC_HEAD_SIZE /* sizeof(PyGC_Head) */

/* PyBytesObject.ob_shash is deprecated (but still the hash cache, right
 * before ob_sval): name its offset without touching the field. */
#define BYTES_SHASH_OFF (offsetof(PyBytesObject, ob_sval) - sizeof(Py_hash_t))
/* a node kind of the serializer only: archived as a CDS_OBJ_TUPLE of its
 * items (inv. 7) */
#define CDS_OBJ_FROZEN CDS_OBJ_NKINDS
#define ALIGN8(n) (((n) + 7u) & ~(uint64_t)7u)

/* ---------------------------------------------------------------------
 * External objects (format.md 5.3): the same table at dump and load. */

static PyObject *ext_cache[CDS_EXT_COUNT];

/* Borrowed pointer to the process's object for an external index, or
 * NULL with an exception set.  Results are cached (and the references
 * kept) for the life of the process. */
static PyObject *
ext_object(uint32_t index)
{
    PyObject *o;

    if (index >= CDS_EXT_COUNT) {
        PyErr_SetString(PyExc_SystemError, "pycds: bad external index");
        return NULL;
    }
    if (ext_cache[index] != NULL) {
        return ext_cache[index];
    }
    switch (index) {
    case CDS_EXT_NONE: o = Py_None; break;
    case CDS_EXT_TRUE: o = Py_True; break;
    case CDS_EXT_FALSE: o = Py_False; break;
    case CDS_EXT_ELLIPSIS: o = Py_Ellipsis; break;
    case CDS_EXT_EMPTY_STR: o = PyUnicode_New(0, 0); goto owned;
    case CDS_EXT_EMPTY_BYTES: o = PyBytes_FromStringAndSize(NULL, 0);
        goto owned;
    case CDS_EXT_EMPTY_TUPLE: o = PyTuple_New(0); goto owned;
    default:
        if (index >= CDS_EXT_SMALL_INT &&
            index <= CDS_EXT_SMALL_INT + CDS_SMALL_INT_MAX -
                         CDS_SMALL_INT_MIN) {
            o = PyLong_FromLong((long)index - CDS_EXT_SMALL_INT +
                                CDS_SMALL_INT_MIN);
        }
        else if (index >= CDS_EXT_LATIN1 && index < CDS_EXT_BYTE) {
            /* the interned 1-character string: on 3.11 the latin-1
             * singleton is not always the interned one, and names must be
             * (heap.c inv. 6) */
            o = PyUnicode_FromOrdinal((int)(index - CDS_EXT_LATIN1));
            if (o != NULL) {
                PyUnicode_InternInPlace(&o);
            }
        }
        else if (index >= CDS_EXT_BYTE && index < CDS_EXT_COUNT) {
            char c = (char)(index - CDS_EXT_BYTE);
            o = PyBytes_FromStringAndSize(&c, 1);
        }
        else {
            PyErr_SetString(PyExc_SystemError, "pycds: bad external index");
            return NULL;
        }
        goto owned;
    }
    Py_INCREF(o);
owned:
    /* the reference is kept for ever: the slots that use it never
     * release theirs (inv. 1) */
    ext_cache[index] = o;
    return o;
}

/* The external index for o, or -1 when o must be archived. */
static int
ext_index(PyObject *o)
{
    if (o == Py_None) {
        return CDS_EXT_NONE;
    }
    if (o == Py_True) {
        return CDS_EXT_TRUE;
    }
    if (o == Py_False) {
        return CDS_EXT_FALSE;
    }
    if (o == Py_Ellipsis) {
        return CDS_EXT_ELLIPSIS;
    }
    if (PyLong_CheckExact(o)) {
        int overflow;
        long v = PyLong_AsLongAndOverflow(o, &overflow);
        if (!overflow && v >= CDS_SMALL_INT_MIN && v <= CDS_SMALL_INT_MAX) {
            return CDS_EXT_SMALL_INT + (int)(v - CDS_SMALL_INT_MIN);
        }
        return -1;
    }
    if (PyUnicode_CheckExact(o)) {
        Py_ssize_t n = PyUnicode_GET_LENGTH(o);
        if (n == 0) {
            return CDS_EXT_EMPTY_STR;
        }
        if (n == 1 && PyUnicode_READ_CHAR(o, 0) < 256) {
            return CDS_EXT_LATIN1 + (int)PyUnicode_READ_CHAR(o, 0);
        }
        return -1;
    }
    if (PyBytes_CheckExact(o)) {
        Py_ssize_t n = PyBytes_GET_SIZE(o);
        if (n == 0) {
            return CDS_EXT_EMPTY_BYTES;
        }
        if (n == 1) {
            return CDS_EXT_BYTE + (unsigned char)PyBytes_AS_STRING(o)[0];
        }
        return -1;
    }
    if (PyTuple_CheckExact(o) && PyTuple_GET_SIZE(o) == 0) {
        return CDS_EXT_EMPTY_TUPLE;
    }
    return -1;
}

/* The type object of an object kind (format.md 5.1). */
static PyTypeObject *
kind_type(unsigned kind)
{
    static PyTypeObject *const types[CDS_OBJ_NKINDS] = {
        [CDS_OBJ_CODE] = &PyCode_Type,       [CDS_OBJ_STR] = &PyUnicode_Type,
        [CDS_OBJ_BYTES] = &PyBytes_Type,     [CDS_OBJ_INT] = &PyLong_Type,
        [CDS_OBJ_FLOAT] = &PyFloat_Type,     [CDS_OBJ_COMPLEX] = &PyComplex_Type,
        [CDS_OBJ_TUPLE] = &PyTuple_Type,
    };
    return types[kind];
}

/* ---------------------------------------------------------------------
 * Fingerprint (format.md 2.1) */

/* Every size and offset the archive depends on; its hash is the layout
 * fingerprint.  Values from the headers compiled against. */
static const uint64_t layout_table[] = {
    sizeof(PyObject), sizeof(PyVarObject), offsetof(PyObject, ob_type),
    sizeof(PyASCIIObject), sizeof(PyCompactUnicodeObject),
    offsetof(PyASCIIObject, hash), offsetof(PyASCIIObject, wstr),
    BYTES_SHASH_OFF, offsetof(PyBytesObject, ob_sval),
    offsetof(PyLongObject, ob_digit), sizeof(digit),
    sizeof(PyFloatObject), sizeof(PyComplexObject),
    offsetof(PyTupleObject, ob_item), CDS_GC_HEAD,
    offsetof(PyCodeObject, co_consts), offsetof(PyCodeObject, co_flags),
    offsetof(PyCodeObject, co_localsplusnames),
    offsetof(PyCodeObject, co_linetable), offsetof(PyCodeObject, co_extra),
    offsetof(PyCodeObject, co_code_adaptive), (uint64_t)CDS_CODE_WARMUP,
    (uint64_t)CDS_REFCNT,
};

static void
copy_field(char *dst, size_t size, const char *src)
{
    memset(dst, 0, size);
    if (src != NULL) {
        strncpy(dst, src, size - 1);
    }
}

int
cds_heap_fingerprint(struct cds_disk_fingerprint *fp, cds_error *err)
{
    const uint32_t probe = 1;
    long magic = PyImport_GetMagicNumber();
    char runtime[512];

    memset(fp, 0, sizeof(*fp));
    if (magic == -1) {
        PyErr_Clear();
        return CDS_FAIL(err, CDS_EVERSION, UINT64_MAX,
                        "cannot read the pyc magic number");
    }
    fp->py_version_hex = PY_VERSION_HEX;
    fp->pyc_magic = (uint32_t)magic;
    fp->pointer_size = (uint8_t)sizeof(void *);
    fp->byte_order = *(const uint8_t *)&probe == 1 ? 1 : 2;
    fp->long_shift = PyLong_SHIFT;
    fp->wchar_size = (uint8_t)sizeof(wchar_t);
#ifdef Py_DEBUG
    fp->build_flags |= CDS_BUILD_DEBUG;
#endif
#ifdef Py_TRACE_REFS
    fp->build_flags |= CDS_BUILD_TRACE_REFS;
#endif
#ifdef Py_REF_DEBUG
    fp->build_flags |= CDS_BUILD_REF_DEBUG;
#endif
#ifdef Py_GIL_DISABLED
    fp->build_flags |= CDS_BUILD_GIL_DISABLED;
#endif
    fp->layout_hash = cds_hash(layout_table, sizeof(layout_table));
    copy_field(fp->cache_tag, sizeof(fp->cache_tag), PyImport_GetMagicTag());
    /* the extension suffix names the ABI (".cpython-311-x86_64-linux-gnu
     * .so"): the headers do not carry SOABI, the running import system
     * does */
    PyObject *imp = PyImport_ImportModule("_imp");
    PyObject *sfx = imp ? PyObject_CallMethod(imp, "extension_suffixes", NULL)
                        : NULL;
    Py_XDECREF(imp);
    if (sfx == NULL || !PyList_Check(sfx) || PyList_GET_SIZE(sfx) == 0 ||
        !PyUnicode_Check(PyList_GET_ITEM(sfx, 0))) {
        Py_XDECREF(sfx);
        PyErr_Clear();
        return CDS_FAIL(err, CDS_EVERSION, UINT64_MAX,
                        "cannot read the extension suffix");
    }
    copy_field(fp->soabi, sizeof(fp->soabi),
               PyUnicode_AsUTF8(PyList_GET_ITEM(sfx, 0)));
    Py_DECREF(sfx);
    PyErr_Clear();
    copy_field(fp->build_info, sizeof(fp->build_info), Py_GetBuildInfo());
    copy_field(fp->compiler, sizeof(fp->compiler), Py_GetCompiler());
    snprintf(runtime, sizeof(runtime), "%s|%s|%s", Py_GetVersion(),
             Py_GetBuildInfo(), Py_GetCompiler());
    fp->runtime_hash = cds_hash(runtime, strlen(runtime));
    return 0;
}

int
cds_heap_check_runtime(cds_error *err)
{
    static int checked; /* 1 ok, -1 refused */
    static cds_error saved;

    if (checked == 0) {
        checked = -1;
        if ((uint32_t)Py_Version != (uint32_t)PY_VERSION_HEX) {
            CDS_FAIL(&saved, CDS_EVERSION, UINT64_MAX,
                     "built for python 0x%x, running 0x%lx",
                     (unsigned)PY_VERSION_HEX, (unsigned long)Py_Version);
        }
        else if (PyCode_Type.tp_basicsize !=
                     (Py_ssize_t)offsetof(PyCodeObject, co_code_adaptive) ||
                 PyTuple_Type.tp_basicsize !=
                     (Py_ssize_t)offsetof(PyTupleObject, ob_item) ||
                 PyBytes_Type.tp_basicsize !=
                     (Py_ssize_t)offsetof(PyBytesObject, ob_sval) + 1 ||
                 PyUnicode_Type.tp_basicsize !=
                     (Py_ssize_t)sizeof(PyUnicodeObject)) {
            CDS_FAIL(&saved, CDS_EVERSION, UINT64_MAX,
                     "object layout differs from the headers built with");
        }
        else {
            /* a fresh code object shows the warm-up value (inv. 5) */
            PyCodeObject *co = PyCode_NewEmpty("pycds", "probe", 1);
            if (co == NULL) {
                PyErr_Clear();
                CDS_FAIL(&saved, CDS_EVERSION, UINT64_MAX,
                         "cannot create a probe code object");
            }
            else if (co->co_warmup != CDS_CODE_WARMUP) {
                CDS_FAIL(&saved, CDS_EVERSION, UINT64_MAX,
                         "code warm-up counter %d, expected %d",
                         co->co_warmup, CDS_CODE_WARMUP);
            }
            else {
                checked = 1;
            }
            Py_XDECREF(co);
        }
    }
    if (checked < 0) {
        if (err != NULL) {
            *err = saved;
        }
        return saved.status;
    }
    return 0;
}

/* ---------------------------------------------------------------------
 * Serializing (format.md 5) */

/* The dump-side string pool (format.md 4.1): every interned string of
 * every module, once.  Shared across calls to cds_heap_serialize(). */
struct cds_heap_pool {
    PyObject *index;   /* str -> int: pool index (equal strings share) */
    uint8_t *objects;
    uint32_t size, cap;
    uint32_t *table;
    uint32_t count, cap_table;
};

int
cds_heap_pool_create(cds_heap_pool **out, cds_error *err)
{
    cds_heap_pool *p = calloc(1, sizeof(*p));
    *out = NULL;
    if (p == NULL || (p->index = PyDict_New()) == NULL) {
        PyErr_Clear();
        free(p);
        return CDS_FAIL(err, CDS_ENOMEM, UINT64_MAX, "out of memory");
    }
    *out = p;
    return 0;
}

void
cds_heap_pool_destroy(cds_heap_pool *p)
{
    if (p != NULL) {
        Py_XDECREF(p->index);
        free(p->objects);
        free(p->table);
        free(p);
    }
}

void
cds_heap_pool_view(const cds_heap_pool *p, struct cds_pool *out)
{
    out->objects = p->objects;
    out->objects_size = p->size;
    out->table = p->table;
    out->count = p->count;
}

static int grow(void **p, uint32_t *cap, uint32_t need, size_t elem,
                cds_error *err);
static uint64_t object_size(PyObject *o, int kind, PyObject *items);
static void write_str_image(uint8_t *p, PyObject *o);

/* The pool index of str o, adding it if new. */
static int
pool_add(cds_heap_pool *p, PyObject *o, uint32_t *index, cds_error *err)
{
    PyObject *v = PyDict_GetItemWithError(p->index, o);
    int rc;

    if (v != NULL) {
        *index = (uint32_t)PyLong_AsUnsignedLong(v);
        return 0;
    }
    if (PyErr_Occurred()) {
        PyErr_Clear();
        return CDS_FAIL(err, CDS_ENOMEM, UINT64_MAX, "pool lookup failed");
    }
    uint64_t size = ALIGN8(object_size(o, CDS_OBJ_STR, NULL));
    if ((uint64_t)p->size + size > UINT32_MAX / 2) {
        return CDS_FAIL(err, CDS_EUNSUPPORTED, UINT64_MAX, "pool too large");
    }
    if ((rc = grow((void **)&p->objects, &p->cap, p->size + (uint32_t)size,
                   1, err)) < 0 ||
        (rc = grow((void **)&p->table, &p->cap_table, p->count + 1,
                   sizeof(*p->table), err)) < 0) {
        return rc;
    }
    memset(p->objects + p->size, 0, size);
    write_str_image(p->objects + p->size, o);
    v = PyLong_FromUnsignedLong(p->count);
    if (v == NULL || PyDict_SetItem(p->index, o, v) < 0) {
        Py_XDECREF(v);
        PyErr_Clear();
        return CDS_FAIL(err, CDS_ENOMEM, UINT64_MAX, "out of memory");
    }
    Py_DECREF(v);
    p->table[p->count] = p->size;
    *index = p->count++;
    p->size += (uint32_t)size;
    return 0;
}

struct node {
    PyObject *obj;    /* borrowed; the caller keeps the graph alive */
    PyObject *items;  /* frozenset: new reference to its items tuple */
    uint32_t off;     /* object offset in the region (after any GC head) */
    uint32_t size;    /* bytes, GC head included, 8-aligned */
    uint8_t kind;
    uint8_t interned;
    uint32_t nrefs;   /* interned str: slots that point to it */
    uint32_t intern_ix;
};

struct ser {
    struct node *nodes;
    uint32_t nnodes, cap;
    /* pointer -> node index + 1, open addressing */
    PyObject **keys;
    uint32_t *vals;
    uint32_t mask;
    uint64_t addr;
    cds_heap_segment *out;
    uint32_t cap_reloc, cap_ext, cap_refs, cap_frozen;
    /* (node, slot) pairs for interned strings, sorted into refs later */
    uint32_t *pend;
    uint32_t npend, cap_pend;
    cds_heap_pool *pool; /* NULL: interned strings stay in the segment */
    uint32_t cap_shared;
    cds_error *err;
};

/* Does o go to the pool rather than into the segment? */
static int
pooled(const struct ser *s, PyObject *o)
{
    return s->pool != NULL && PyUnicode_CheckExact(o) &&
           PyUnicode_CHECK_INTERNED(o) && ext_index(o) < 0;
}

static int
grow(void **p, uint32_t *cap, uint32_t need, size_t elem, cds_error *err)
{
    if (need <= *cap) {
        return 0;
    }
    uint64_t n = *cap ? *cap : 64;
    while (n < need) {
        n *= 2;
    }
    if (n > UINT32_MAX) {
        return CDS_FAIL(err, CDS_ENOMEM, UINT64_MAX, "segment too large");
    }
    void *q = realloc(*p, n * elem);
    if (q == NULL) {
        return CDS_FAIL(err, CDS_ENOMEM, UINT64_MAX, "out of memory");
    }
    *p = q;
    *cap = (uint32_t)n;
    return 0;
}

static uint32_t
hash_ptr(const void *p)
{
    uint64_t x = (uint64_t)(uintptr_t)p;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return (uint32_t)x;
}

/* node index + 1 for o, or 0 */
static uint32_t
memo_find(struct ser *s, PyObject *o)
{
    for (uint32_t i = hash_ptr(o) & s->mask;; i = (i + 1) & s->mask) {
        if (s->keys[i] == NULL) {
            return 0;
        }
        if (s->keys[i] == o) {
            return s->vals[i];
        }
    }
}

static int
memo_add(struct ser *s, PyObject *o, uint32_t v)
{
    if ((uint64_t)s->nnodes * 2 >= s->mask) {
        uint32_t nmask = s->mask * 2 + 1;
        PyObject **keys = calloc((size_t)nmask + 1, sizeof(*keys));
        uint32_t *vals = calloc((size_t)nmask + 1, sizeof(*vals));
        if (keys == NULL || vals == NULL) {
            free(keys);
            free(vals);
            return CDS_FAIL(s->err, CDS_ENOMEM, UINT64_MAX, "out of memory");
        }
        for (uint32_t i = 0; i <= s->mask; i++) {
            if (s->keys[i] != NULL) {
                uint32_t j = hash_ptr(s->keys[i]) & nmask;
                while (keys[j] != NULL) {
                    j = (j + 1) & nmask;
                }
                keys[j] = s->keys[i];
                vals[j] = s->vals[i];
            }
        }
        free(s->keys);
        free(s->vals);
        s->keys = keys;
        s->vals = vals;
        s->mask = nmask;
    }
    uint32_t i = hash_ptr(o) & s->mask;
    while (s->keys[i] != NULL) {
        i = (i + 1) & s->mask;
    }
    s->keys[i] = o;
    s->vals[i] = v;
    return 0;
}

static uint64_t
object_size(PyObject *o, int kind, PyObject *items)
{
    switch (kind) {
    case CDS_OBJ_CODE:
        return offsetof(PyCodeObject, co_code_adaptive) +
               (uint64_t)Py_SIZE(o) * sizeof(_Py_CODEUNIT);
    case CDS_OBJ_STR:
        if (PyUnicode_IS_ASCII(o)) {
            return sizeof(PyASCIIObject) + (uint64_t)PyUnicode_GET_LENGTH(o) +
                   1;
        }
        return sizeof(PyCompactUnicodeObject) +
               ((uint64_t)PyUnicode_GET_LENGTH(o) + 1) * PyUnicode_KIND(o);
    case CDS_OBJ_BYTES:
        return offsetof(PyBytesObject, ob_sval) +
               (uint64_t)PyBytes_GET_SIZE(o) + 1;
    case CDS_OBJ_INT: {
        Py_ssize_t n = Py_SIZE(o) < 0 ? -Py_SIZE(o) : Py_SIZE(o);
        return offsetof(PyLongObject, ob_digit) +
               (uint64_t)(n > 0 ? n : 1) * sizeof(digit);
    }
    case CDS_OBJ_FLOAT:
        return sizeof(PyFloatObject);
    case CDS_OBJ_COMPLEX:
        return sizeof(PyComplexObject);
    case CDS_OBJ_TUPLE:
        return CDS_GC_HEAD + offsetof(PyTupleObject, ob_item) +
               (uint64_t)PyTuple_GET_SIZE(o) * sizeof(PyObject *);
    case CDS_OBJ_FROZEN:
        return CDS_GC_HEAD + offsetof(PyTupleObject, ob_item) +
               (uint64_t)PyTuple_GET_SIZE(items) * sizeof(PyObject *);
    }
    return 0;
}

static int visit(struct ser *s, PyObject *o, int depth);

static int
visit_tuple_items(struct ser *s, PyObject *t, int depth)
{
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(t); i++) {
        int rc = visit(s, PyTuple_GET_ITEM(t, i), depth + 1);
        if (rc < 0) {
            return rc;
        }
    }
    return 0;
}

/* Collect o and what it reaches into s->nodes (depth-first, each object
 * once by identity, as marshal's reference table does). */
static int
visit(struct ser *s, PyObject *o, int depth)
{
    int kind, rc;
    PyObject *items = NULL;

    if (depth > 2000) {
        return CDS_FAIL(s->err, CDS_EUNSUPPORTED, UINT64_MAX,
                        "constants nested too deeply");
    }
    if (ext_index(o) >= 0 || memo_find(s, o) != 0 || pooled(s, o)) {
        return 0;
    }
    if (PyCode_Check(o) && Py_IS_TYPE(o, &PyCode_Type)) {
        kind = CDS_OBJ_CODE;
    }
    else if (PyUnicode_CheckExact(o)) {
        if (PyUnicode_READY(o) < 0) {
            PyErr_Clear();
            return CDS_FAIL(s->err, CDS_EUNSUPPORTED, UINT64_MAX,
                            "str not ready");
        }
        kind = CDS_OBJ_STR;
    }
    else if (PyBytes_CheckExact(o)) {
        kind = CDS_OBJ_BYTES;
    }
    else if (PyLong_CheckExact(o)) {
        kind = CDS_OBJ_INT;
    }
    else if (PyFloat_CheckExact(o)) {
        kind = CDS_OBJ_FLOAT;
    }
    else if (PyComplex_CheckExact(o)) {
        kind = CDS_OBJ_COMPLEX;
    }
    else if (PyTuple_CheckExact(o)) {
        kind = CDS_OBJ_TUPLE;
    }
    else if (PyFrozenSet_CheckExact(o)) {
        kind = CDS_OBJ_FROZEN;
        items = PySequence_Tuple(o);
        if (items == NULL) {
            PyErr_Clear();
            return CDS_FAIL(s->err, CDS_ENOMEM, UINT64_MAX,
                            "cannot list frozenset items");
        }
    }
    else {
        return CDS_FAIL(s->err, CDS_EUNSUPPORTED, UINT64_MAX,
                        "constant of type %.100s cannot be archived",
                        Py_TYPE(o)->tp_name);
    }
    uint64_t size = ALIGN8(object_size(o, kind, items));
    if (size > UINT32_MAX) {
        Py_XDECREF(items);
        return CDS_FAIL(s->err, CDS_EUNSUPPORTED, UINT64_MAX,
                        "object of %llu bytes too large",
                        (unsigned long long)size);
    }
    if ((rc = grow((void **)&s->nodes, &s->cap, s->nnodes + 1,
                   sizeof(struct node), s->err)) < 0 ||
        (rc = memo_add(s, o, s->nnodes + 1)) < 0) {
        Py_XDECREF(items);
        return rc;
    }
    struct node *n = &s->nodes[s->nnodes++];
    memset(n, 0, sizeof(*n));
    n->obj = o;
    n->items = items;
    n->kind = (uint8_t)kind;
    n->size = (uint32_t)size;
    n->interned = kind == CDS_OBJ_STR && PyUnicode_CHECK_INTERNED(o) != 0;
    if (kind == CDS_OBJ_FROZEN) {
        s->out->nfrozensets++;
    }
    s->out->counts[kind == CDS_OBJ_FROZEN ? CDS_OBJ_TUPLE : kind]++;

    switch (kind) {
    case CDS_OBJ_CODE: {
        PyCodeObject *co = (PyCodeObject *)o;
        PyObject *refs[] = {co->co_consts, co->co_names,
                            co->co_exceptiontable, co->co_localsplusnames,
                            co->co_localspluskinds, co->co_filename,
                            co->co_name, co->co_qualname, co->co_linetable};
        for (size_t i = 0; i < sizeof(refs) / sizeof(refs[0]); i++) {
            if ((rc = visit(s, refs[i], depth + 1)) < 0) {
                return rc;
            }
        }
        return 0;
    }
    case CDS_OBJ_TUPLE:
        return visit_tuple_items(s, o, depth);
    case CDS_OBJ_FROZEN:
        return visit_tuple_items(s, items, depth);
    }
    return 0;
}

/* Store the process's object for external index ix in slot (inv. 3). */
static int
emit_ext(struct ser *s, uint32_t slot, int ix)
{
    cds_heap_segment *out = s->out;
    PyObject *cur = ext_object((uint32_t)ix);
    uint64_t value;
    int rc;

    if (cur == NULL) {
        PyErr_Clear();
        return CDS_FAIL(s->err, CDS_ENOMEM, UINT64_MAX,
                        "cannot resolve external object %d", ix);
    }
    if ((rc = grow((void **)&out->ext, &s->cap_ext, out->seg.next + 1,
                   sizeof(*out->ext), s->err)) < 0) {
        return rc;
    }
    out->ext[out->seg.next].slot = slot;
    out->ext[out->seg.next].index = (uint32_t)ix;
    out->seg.next++;
    /* this process's address: on an interpreter without ASLR for its
     * statics (Debian's non-PIE python3.11) loading finds it unchanged and
     * writes nothing */
    value = (uint64_t)(uintptr_t)cur;
    memcpy(out->objects + slot, &value, 8);
    return 0;
}

/* Point the slot at offset slot to target: an external reference (inv.
 * 3) or an internal one, listed for relocation. */
static int
emit_ref(struct ser *s, uint32_t slot, PyObject *target)
{
    cds_heap_segment *out = s->out;
    int rc, ix = ext_index(target);
    uint64_t value;

    if (ix >= 0) {
        return emit_ext(s, slot, ix);
    }
    if (pooled(s, target)) {
        uint32_t index = 0;
        if ((rc = pool_add(s->pool, target, &index, s->err)) < 0 ||
            (rc = grow((void **)&out->shared, &s->cap_shared,
                       out->seg.nshared + 1, sizeof(*out->shared),
                       s->err)) < 0) {
            return rc;
        }
        out->shared[out->seg.nshared].slot = slot;
        out->shared[out->seg.nshared].index = index;
        out->seg.nshared++;
        /* the slot holds 0 in the file (format.md 5.5); emit_code copied
         * this process's pointer into it */
        value = 0;
        memcpy(out->objects + slot, &value, 8);
        return 0;
    }
    uint32_t v = memo_find(s, target);
    if (v == 0) {
        return CDS_FAIL(s->err, CDS_ECORRUPT, UINT64_MAX,
                        "object missing from the graph");
    }
    struct node *n = &s->nodes[v - 1];
    value = s->addr + n->off;
    memcpy(out->objects + slot, &value, 8);
    if (n->interned) {
        /* listed once, in the refs of its string (format.md 5.4) */
        if ((rc = grow((void **)&s->pend, &s->cap_pend, s->npend + 2,
                       sizeof(*s->pend), s->err)) < 0) {
            return rc;
        }
        s->pend[s->npend++] = v - 1;
        s->pend[s->npend++] = slot;
        n->nrefs++;
        return 0;
    }
    if ((rc = grow((void **)&out->reloc, &s->cap_reloc, out->seg.nreloc + 1,
                   sizeof(*out->reloc), s->err)) < 0) {
        return rc;
    }
    out->reloc[out->seg.nreloc++] = slot;
    if (n->kind == CDS_OBJ_FROZEN) {
        if ((rc = grow((void **)&out->frozen, &s->cap_frozen,
                       out->seg.nfrozen + 1, sizeof(*out->frozen),
                       s->err)) < 0) {
            return rc;
        }
        out->frozen[out->seg.nfrozen++] = slot;
    }
    return 0;
}

/* No ob_size: float, complex. */
#define NOT_VAR PY_SSIZE_T_MIN

/* The common object head: refcount (inv. 1), type, and ob_size unless
 * size is NOT_VAR (an int's ob_size is negative for negative values).
 * The type is this process's; loading rewrites it only if it moved
 * (format.md 5.1). */
static int
emit_head(struct ser *s, const struct node *n, Py_ssize_t size)
{
    Py_ssize_t refcnt = CDS_REFCNT;
    uint8_t *p = s->out->objects + n->off;
    unsigned kind = n->kind == CDS_OBJ_FROZEN ? CDS_OBJ_TUPLE : n->kind;
    PyTypeObject *type = kind_type(kind);

    memcpy(p + offsetof(PyObject, ob_refcnt), &refcnt, sizeof(refcnt));
    memcpy(p + offsetof(PyObject, ob_type), &type, sizeof(type));
    if (size != NOT_VAR) {
        memcpy(p + offsetof(PyVarObject, ob_size), &size, sizeof(size));
    }
    return 0;
}

/* Write the compact str image of o at p (zeroed, large enough: see
 * object_size): head, state, data, NUL. */
static void
write_str_image(uint8_t *p, PyObject *o)
{
    Py_ssize_t len = PyUnicode_GET_LENGTH(o);
    int kind = PyUnicode_KIND(o);
    PyCompactUnicodeObject u;
    Py_ssize_t refcnt = CDS_REFCNT;
    PyTypeObject *type = &PyUnicode_Type;
    size_t head;

    memset(&u, 0, sizeof(u));
    u._base.length = len;
    u._base.hash = -1;                   /* inv. 4 */
    u._base.state.interned = 0;          /* set by interning at load */
    u._base.state.kind = (unsigned)kind;
    u._base.state.compact = 1;
    u._base.state.ascii = PyUnicode_IS_ASCII(o) ? 1 : 0;
    u._base.state.ready = 1;
    u._base.wstr = NULL;                 /* a lazily built cache */
    u.utf8_length = 0;                   /* ditto */
    u.utf8 = NULL;
    u.wstr_length = 0;
    head = PyUnicode_IS_ASCII(o) ? sizeof(PyASCIIObject)
                                 : sizeof(PyCompactUnicodeObject);
    /* copy the fields after the object head */
    memcpy(p + sizeof(PyObject), (uint8_t *)&u + sizeof(PyObject),
           head - sizeof(PyObject));
    memcpy(p + offsetof(PyObject, ob_refcnt), &refcnt, sizeof(refcnt));
    memcpy(p + offsetof(PyObject, ob_type), &type, sizeof(type));
    /* data and its terminating NUL (the buffer is zeroed) */
    memcpy(p + head, PyUnicode_DATA(o), (size_t)len * (size_t)kind);
}

static int
emit_str(struct ser *s, const struct node *n)
{
    write_str_image(s->out->objects + n->off, n->obj);
    return 0;
}

static int
emit_code(struct ser *s, const struct node *n)
{
    PyCodeObject *co = (PyCodeObject *)n->obj;
    uint8_t *p = s->out->objects + n->off;
    PyCodeObject *img = (PyCodeObject *)p; /* only for offsetof/stores */
    PyObject *bytecode;
    int rc;

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
        return CDS_FAIL(s->err, CDS_ENOMEM, UINT64_MAX,
                        "cannot read bytecode");
    }
    if (PyBytes_GET_SIZE(bytecode) != Py_SIZE(co) * 2) {
        Py_DECREF(bytecode);
        return CDS_FAIL(s->err, CDS_EUNSUPPORTED, UINT64_MAX,
                        "bytecode size mismatch");
    }
    memcpy(p + offsetof(PyCodeObject, co_code_adaptive),
           PyBytes_AS_STRING(bytecode), (size_t)PyBytes_GET_SIZE(bytecode));
    Py_DECREF(bytecode);
    img->co_warmup = CDS_CODE_WARMUP;
    img->_co_linearray_entry_size = 0;
    img->co_weakreflist = NULL;
    img->_co_code = NULL;
    img->_co_linearray = NULL;
    img->co_extra = NULL;
#define REF(field)                                                          \
    if ((rc = emit_ref(s, n->off + (uint32_t)offsetof(PyCodeObject, field), \
                       co->field)) < 0) {                                   \
        return rc;                                                          \
    }
    REF(co_consts);
    REF(co_names);
    REF(co_exceptiontable);
    REF(co_localsplusnames);
    REF(co_localspluskinds);
    REF(co_filename);
    REF(co_name);
    REF(co_qualname);
    REF(co_linetable);
#undef REF
    return emit_head(s, n, Py_SIZE(co));
}

static int
emit_tuple(struct ser *s, const struct node *n, PyObject *t)
{
    int rc;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(t); i++) {
        uint32_t slot = n->off + (uint32_t)offsetof(PyTupleObject, ob_item) +
                        (uint32_t)(i * (Py_ssize_t)sizeof(PyObject *));
        if ((rc = emit_ref(s, slot, PyTuple_GET_ITEM(t, i))) < 0) {
            return rc;
        }
    }
    /* inv. 2: the GC head before n->off stays zero */
    return emit_head(s, n, PyTuple_GET_SIZE(t));
}

static int
emit_node(struct ser *s, const struct node *n)
{
    PyObject *o = n->obj;
    uint8_t *p = s->out->objects + n->off;

    switch (n->kind) {
    case CDS_OBJ_CODE:
        return emit_code(s, n);
    case CDS_OBJ_STR:
        return emit_str(s, n);
    case CDS_OBJ_BYTES: {
        Py_hash_t h = -1; /* inv. 4 */
        memcpy(p + BYTES_SHASH_OFF, &h, sizeof(h));
        memcpy(p + offsetof(PyBytesObject, ob_sval), PyBytes_AS_STRING(o),
               (size_t)PyBytes_GET_SIZE(o));
        return emit_head(s, n, PyBytes_GET_SIZE(o));
    }
    case CDS_OBJ_INT: {
        Py_ssize_t nd = Py_SIZE(o) < 0 ? -Py_SIZE(o) : Py_SIZE(o);
        memcpy(p + offsetof(PyLongObject, ob_digit),
               ((PyLongObject *)o)->ob_digit, (size_t)nd * sizeof(digit));
        return emit_head(s, n, Py_SIZE(o));
    }
    case CDS_OBJ_FLOAT:
        memcpy(p + offsetof(PyFloatObject, ob_fval),
               &((PyFloatObject *)o)->ob_fval, sizeof(double));
        return emit_head(s, n, NOT_VAR);
    case CDS_OBJ_COMPLEX:
        memcpy(p + offsetof(PyComplexObject, cval),
               &((PyComplexObject *)o)->cval, sizeof(Py_complex));
        return emit_head(s, n, NOT_VAR);
    case CDS_OBJ_TUPLE:
        return emit_tuple(s, n, o);
    case CDS_OBJ_FROZEN:
        return emit_tuple(s, n, n->items); /* inv. 7 */
    }
    return CDS_FAIL(s->err, CDS_ECORRUPT, UINT64_MAX, "bad node kind");
}

static int
collect_interned(struct ser *s)
{
    cds_heap_segment *out = s->out;
    uint32_t nintern = 0, next = 0;

    for (uint32_t i = 0; i < s->nnodes; i++) {
        if (s->nodes[i].interned) {
            nintern++;
        }
    }
    out->intern = calloc(nintern ? nintern : 1, sizeof(*out->intern));
    out->refs = calloc(s->npend / 2 ? s->npend / 2 : 1, sizeof(*out->refs));
    if (out->intern == NULL || out->refs == NULL) {
        return CDS_FAIL(s->err, CDS_ENOMEM, UINT64_MAX, "out of memory");
    }
    for (uint32_t i = 0; i < s->nnodes; i++) {
        struct node *n = &s->nodes[i];
        if (n->interned) {
            n->intern_ix = out->seg.nintern;
            out->intern[out->seg.nintern].object = n->off;
            out->intern[out->seg.nintern].first_ref = next;
            out->intern[out->seg.nintern].nrefs = 0;
            out->seg.nintern++;
            next += n->nrefs;
        }
    }
    for (uint32_t i = 0; i < s->npend; i += 2) {
        struct cds_disk_intern *e = &out->intern[s->nodes[s->pend[i]].intern_ix];
        out->refs[e->first_ref + e->nrefs++] = s->pend[i + 1];
    }
    out->seg.nrefs = next;
    return 0;
}

int
cds_heap_serialize(PyObject *code, uint64_t addr, cds_heap_segment *out,
                   cds_error *err)
{
    return cds_heap_serialize_pooled(code, addr, NULL, out, err);
}

int
cds_heap_serialize_pooled(PyObject *code, uint64_t addr, cds_heap_pool *pool,
                          cds_heap_segment *out, cds_error *err)
{
    struct ser s;
    uint64_t off = 0;
    uint32_t ntab = 0;
    int rc;

    memset(out, 0, sizeof(*out));
    memset(&s, 0, sizeof(s));
    s.addr = addr;
    s.pool = pool;
    s.out = out;
    s.err = err;
    s.mask = 1023;
    s.keys = calloc(s.mask + 1, sizeof(*s.keys));
    s.vals = calloc(s.mask + 1, sizeof(*s.vals));
    if (s.keys == NULL || s.vals == NULL) {
        rc = CDS_FAIL(err, CDS_ENOMEM, UINT64_MAX, "out of memory");
        goto out;
    }
    if (!PyCode_Check(code)) {
        rc = CDS_FAIL(err, CDS_EUNSUPPORTED, UINT64_MAX, "not a code object");
        goto out;
    }
    if ((rc = visit(&s, code, 0)) < 0) {
        goto out;
    }
    out->objtab = calloc(s.nnodes, sizeof(*out->objtab));
    if (out->objtab == NULL) {
        rc = CDS_FAIL(err, CDS_ENOMEM, UINT64_MAX, "out of memory");
        goto out;
    }
    /* Layout (DESIGN.md cost model): code objects, which the interpreter
     * writes while running, first; then the constants and names, which
     * 3.11 writes too (reference counts, cached hashes, interning); bytes
     * last: line and exception tables are only ever read, so their pages
     * can stay shared with the file (cds_segment_prefault stops there). */
    for (int pass = 0; pass < 4; pass++) {
        for (uint32_t i = 0; i < s.nnodes; i++) {
            struct node *n = &s.nodes[i];
            int want = n->kind == CDS_OBJ_CODE ? 0
                       : n->kind == CDS_OBJ_BYTES ? 3
                       : n->kind == CDS_OBJ_TUPLE || n->kind == CDS_OBJ_FROZEN
                           ? 2
                           : 1;
            if (want != pass) {
                continue;
            }
            uint64_t gc = (n->kind == CDS_OBJ_TUPLE ||
                           n->kind == CDS_OBJ_FROZEN)
                              ? CDS_GC_HEAD
                              : 0;
            n->off = (uint32_t)(off + gc);
            off += n->size;
            /* assigned in increasing order: the table is sorted */
            out->objtab[ntab++] = n->off |
                (n->kind == CDS_OBJ_FROZEN ? CDS_OBJ_TUPLE : n->kind);
            if (off > UINT32_MAX - 16) {
                rc = CDS_FAIL(err, CDS_EUNSUPPORTED, UINT64_MAX,
                              "segment over 4 GiB");
                goto out;
            }
        }
    }
    out->objects = calloc(1, off ? off : 16);
    if (out->objects == NULL) {
        rc = CDS_FAIL(err, CDS_ENOMEM, UINT64_MAX, "out of memory");
        goto out;
    }
    for (uint32_t i = 0; i < s.nnodes; i++) {
        if ((rc = emit_node(&s, &s.nodes[i])) < 0) {
            goto out;
        }
    }
    if ((rc = collect_interned(&s)) < 0) {
        goto out;
    }
    out->seg.objects = out->objects;
    out->seg.objects_size = (uint32_t)off;
    out->seg.objtab = out->objtab;
    out->seg.nobjects = s.nnodes;
    out->seg.root_off = s.nodes[0].off; /* visit() put the root first */
    out->seg.reloc = out->reloc;
    out->seg.ext = out->ext;
    out->seg.intern = out->intern;
    out->seg.refs = out->refs;
    out->seg.frozen = out->frozen;
    out->seg.shared = out->shared;
    rc = 0;
out:
    for (uint32_t i = 0; i < s.nnodes; i++) {
        Py_XDECREF(s.nodes[i].items);
    }
    free(s.nodes);
    free(s.keys);
    free(s.vals);
    free(s.pend);
    if (rc < 0) {
        cds_heap_segment_clear(out);
    }
    return rc;
}

void
cds_heap_segment_clear(cds_heap_segment *seg)
{
    if (seg == NULL) {
        return;
    }
    free(seg->objects);
    free(seg->objtab);
    free(seg->reloc);
    free(seg->ext);
    free(seg->intern);
    free(seg->refs);
    free(seg->frozen);
    free(seg->shared);
    memset(seg, 0, sizeof(*seg));
}

/* ---------------------------------------------------------------------
 * Loading (format.md 8) */

static int
check_object(PyObject *o, PyTypeObject *type, const char *what,
             const char *module, cds_error *err)
{
    if (!Py_IS_TYPE(o, type)) {
        return CDS_FAIL(err, CDS_ECORRUPT, UINT64_MAX,
                        "module %s: %s is not a %s after patching", module,
                        what, type->tp_name);
    }
    return 0;
}

/* inv. 8: on 3.11 (USE_UNICODE_WCHAR_CACHE, 4-byte wchar_t) a compact
 * UCS-4 string's wstr is its own data, as PyUnicode_New leaves it; the
 * wide-char functions (unicode_copy_as_widechar) read any other string
 * with wstr NULL as UCS-2.  The file stores NULL (no pointer into the
 * middle of an object to relocate); set it here, within extent bytes. */
static void
set_wstr(uint8_t *p, uint32_t extent)
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

/* Load-side pool state: for the one archive of the process, each pool
 * string's interned object once resolved, and which pool blocks passed
 * their checksum.  Kept for ever, like the objects (inv. 1). */
static struct {
    const uint8_t *image; /* the archive's data: its identity */
    PyObject **resolved;
    uint8_t *block_ok;
} pool_state;

/* The characters of a str image: their bitwise OR (which shows the
 * smallest kind that holds them: any character above 0x7f, 0xff, 0xffff
 * sets a bit above it) and their maximum (for kind 4 only, where the OR
 * cannot show that every character is at most 0x10ffff). */
static uint32_t
str_chars_or(const uint8_t *data, uint64_t len, unsigned kind,
             uint32_t *max)
{
    uint32_t acc = 0, m = 0;

    *max = 0;
    if (kind == 1) {
        /* ASCII text is most of what is read here: 8 bytes at a time */
        uint64_t wide = 0, i = 0;
        for (; i + 8 <= len; i += 8) {
            uint64_t w;
            memcpy(&w, data + i, 8);
            wide |= w;
        }
        for (; i < len; i++) {
            wide |= data[i];
        }
        for (unsigned b = 0; b < 8; b++) {
            acc |= (uint32_t)(wide >> (8 * b)) & 0xffu;
        }
        return acc;
    }
    for (uint64_t i = 0; i < len; i++) {
        uint32_t c;
        if (kind == 2) {
            uint16_t h;
            memcpy(&h, data + 2 * i, 2);
            c = h;
        }
        else {
            memcpy(&c, data + 4 * i, 4);
            m = c > m ? c : m;
        }
        acc |= c;
    }
    *max = m;
    return acc;
}

/* Is the str image at p, with extent bytes before the next object, one
 * that CPython's str functions can read safely and compare correctly
 * (format.md 5.1.2, 6.4)?  NULL if so, else what is wrong. */
static const char *
check_str_image(const uint8_t *p, uint32_t extent)
{
    PyASCIIObject a;
    uint64_t need, len;
    size_t head;

    if (extent < sizeof(PyASCIIObject)) {
        return "no room for its header";
    }
    memcpy(&a, p, sizeof(a));
    /* inv. 1: loading interns it, which takes 2 off a mortal count */
    if (a.ob_base.ob_refcnt != CDS_REFCNT) {
        return "reference count is not 2^40";
    }
    if (!a.state.compact || !a.state.ready || a.state.interned != 0 ||
        a.wstr != NULL) {
        return "not compact, not ready, interned or with a wstr";
    }
    if ((a.state.kind != 1 && a.state.kind != 2 && a.state.kind != 4) ||
        (a.state.ascii && a.state.kind != 1)) {
        return "bad kind";
    }
    /* length >= extent rules out the overflow of (length + 1) x kind */
    if (a.length < 1 || (uint64_t)a.length >= extent) {
        return "length out of range";
    }
    len = (uint64_t)a.length;
    head = a.state.ascii ? sizeof(PyASCIIObject)
                         : sizeof(PyCompactUnicodeObject);
    need = head + (len + 1) * a.state.kind;
    if (need > extent) {
        return "characters past its extent";
    }
    if (!a.state.ascii) {
        PyCompactUnicodeObject c;
        memcpy(&c, p, sizeof(c));
        if (c.utf8 != NULL || c.utf8_length != 0 || c.wstr_length != 0) {
            return "utf8 or wstr cache set";
        }
    }
    /* the terminating NUL of its kind */
    for (unsigned i = 0; i < a.state.kind; i++) {
        if (p[need - 1 - i] != 0) {
            return "no terminating NUL";
        }
    }
    /* the smallest kind that holds the characters, ascii set exactly when
     * all are below 0x80 (what _PyUnicode_CheckConsistency asserts):
     * equality tests compare kinds first, and ASCII strings are used as
     * their own UTF-8 */
    uint32_t max, ors = str_chars_or(p + head, len, a.state.kind, &max);
    bool ok;
    switch (a.state.kind) {
    case 1: ok = a.state.ascii ? ors < 0x80 : ors >= 0x80; break;
    case 2: ok = ors > 0xff; break;
    default: ok = ors > 0xffff && max <= 0x10ffff; break;
    }
    return ok ? NULL : "kind or ascii flag does not fit its characters";
}

/* The interned object for pool string index, resolving it on first use:
 * checks, type, interning (inv. 6).  Borrowed; NULL on error. */
static PyObject *
pool_resolve(cds_archive *a, uint32_t index, cds_error *err)
{
    uint32_t off, extent;
    uint8_t *p;
    PyTypeObject *type = &PyUnicode_Type;

    if (pool_state.image != a->data) {
        uint64_t nblocks = cds_pool_nblocks(a);
        PyObject **resolved = calloc(a->header->pool_count ? a->header->pool_count : 1,
                                     sizeof(PyObject *));
        uint8_t *ok = calloc(nblocks ? nblocks : 1, 1);
        if (resolved == NULL || ok == NULL) {
            free(resolved);
            free(ok);
            CDS_FAIL(err, CDS_ENOMEM, UINT64_MAX, "out of memory");
            return NULL;
        }
        /* a previous archive's state is abandoned, not freed: its
         * strings may still be in use */
        pool_state.image = a->data;
        pool_state.resolved = resolved;
        pool_state.block_ok = ok;
    }
    if (index < a->header->pool_count && pool_state.resolved[index] != NULL) {
        return pool_state.resolved[index];
    }
    if (cds_pool_find(a, index, pool_state.block_ok, &off, &extent, err) < 0) {
        return NULL;
    }
    p = a->data + a->header->pool_offset + off;
    const char *why = check_str_image(p, extent);
    if (why != NULL) {
        CDS_CORRUPT(err, a->header->pool_offset + off,
                    "pool string %u is not a valid str: %s", index, why);
        return NULL;
    }
    PyObject *s = (PyObject *)p, *t;
    if (Py_TYPE(s) != type) {
        memcpy(p + offsetof(PyObject, ob_type), &type, sizeof(type));
    }
    set_wstr(p, extent);
    t = s;
    /* the archived string becomes the interned one unless the interpreter
     * has an equal one already; either way we keep the reference */
    PyUnicode_InternInPlace(&t);
    pool_state.resolved[index] = t;
    return t;
}

int
cds_heap_load(cds_archive *a, uint32_t index, PyObject **code,
              cds_error *err)
{
    const struct cds_disk_module *m = &a->modules[index];
    uint8_t *seg = a->data + m->seg_offset;
    const char *name = cds_module_name(a, index);
    int rc;

    *code = NULL;
    const struct cds_disk_intern *in = (const void *)(seg + m->intern_off);
    const uint32_t *refs = (const void *)(seg + m->refs_off);
    /* 1. internal pointers, those to interned strings included: one
     * uniform delta, nothing at all when mapped at the base */
    if (a->delta != 0) {
        const uint32_t *reloc = (const void *)(seg + m->reloc_off);
        for (uint32_t i = 0; i < m->nreloc + m->nrefs; i++) {
            uint32_t slot = i < m->nreloc ? reloc[i] : refs[i - m->nreloc];
            uint64_t v;
            memcpy(&v, seg + slot, 8);
            v += a->delta;
            memcpy(seg + slot, &v, 8);
        }
    }
    /* 2. types: write only where the type object moved (PIE builds), so
     * pages stay shared with the file otherwise (DESIGN.md); and the
     * wchar_t view of UCS-4 strings (inv. 8) */
    const uint32_t *objtab = (const void *)(seg + m->objtab_off);
    for (uint32_t i = 0; i < m->nobjects; i++) {
        uint32_t off = CDS_OBJ_OFFSET(objtab[i]);
        uint8_t *slot = seg + off + offsetof(PyObject, ob_type);
        PyTypeObject *want = kind_type(CDS_OBJ_KIND(objtab[i])), *have;
        memcpy(&have, slot, sizeof(have));
        if (have != want) {
            memcpy(slot, &want, sizeof(want));
        }
        if (CDS_OBJ_KIND(objtab[i]) == CDS_OBJ_STR) {
            uint32_t next = i + 1 < m->nobjects
                                ? CDS_OBJ_OFFSET(objtab[i + 1])
                                : m->objects_size;
            set_wstr(seg + off, next - off);
        }
    }
    /* 3. external objects, likewise */
    const struct cds_disk_ext *ext = (const void *)(seg + m->ext_off);
    for (uint32_t i = 0; i < m->next; i++) {
        PyObject *cur = ext_object(ext[i].index);
        uint64_t v, want = (uint64_t)(uintptr_t)cur;
        if (cur == NULL) {
            PyErr_Clear();
            return CDS_FAIL(err, CDS_ENOMEM, UINT64_MAX,
                            "module %s: cannot resolve external %u", name,
                            ext[i].index);
        }
        memcpy(&v, seg + ext[i].slot, 8);
        if (v != want) {
            memcpy(seg + ext[i].slot, &want, 8);
        }
    }
    /* 4. interning (inv. 6): before anything hashes or runs */
    for (uint32_t i = 0; i < m->nintern; i++) {
        PyObject *s = (PyObject *)(seg + in[i].object);
        PyObject *t = s;
        if ((rc = check_object(s, &PyUnicode_Type, "interned string", name,
                               err)) < 0) {
            return rc;
        }
        PyUnicode_InternInPlace(&t);
        if (t != s) {
            /* an equal string was interned already: ours is a duplicate.
             * We keep the reference InternInPlace gave us for ever. */
            for (uint32_t j = 0; j < in[i].nrefs; j++) {
                uint64_t v = (uint64_t)(uintptr_t)t;
                memcpy(seg + refs[in[i].first_ref + j], &v, 8);
            }
        }
    }
    /* 5. pool strings: interned once per process, then shared by every
     * segment that refers to them (format.md 5.5) */
    const struct cds_disk_shared *sh = (const void *)(seg + m->shared_off);
    for (uint32_t i = 0; i < m->nshared; i++) {
        PyObject *t = pool_resolve(a, sh[i].index, err);
        if (t == NULL) {
            return err->status;
        }
        memcpy(seg + sh[i].slot, &t, sizeof(t));
    }
    /* 6. frozensets from their item tuples (inv. 7) */
    const uint32_t *frozen = (const void *)(seg + m->frozen_off);
    for (uint32_t i = 0; i < m->nfrozen; i++) {
        PyObject *items, *fs;
        memcpy(&items, seg + frozen[i], sizeof(items));
        if ((rc = check_object(items, &PyTuple_Type, "frozenset items", name,
                               err)) < 0) {
            return rc;
        }
        fs = PyFrozenSet_New(items);
        if (fs == NULL) {
            PyErr_Clear();
            return CDS_FAIL(err, CDS_ENOMEM, UINT64_MAX,
                            "module %s: cannot build a frozenset", name);
        }
        /* the slot owns fs; archived containers are never freed */
        memcpy(seg + frozen[i], &fs, sizeof(fs));
    }
    PyObject *root = (PyObject *)(seg + m->root_off);
    if ((rc = check_object(root, &PyCode_Type, "root", name, err)) < 0) {
        return rc;
    }
    Py_INCREF(root);
    *code = root;
    return 0;
}
