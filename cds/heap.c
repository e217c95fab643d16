/* SPDX-License-Identifier: MIT */
/* Heap layer, version-neutral part: serialize code graphs, check and
 * patch mapped ones.  What an object's bytes look like in one CPython
 * version is layout.h's business (layout_3XX.c); this file walks graphs,
 * lists references, drives validation and loads.
 *
 * An archived object is byte for byte what CPython itself would have built,
 * placed at a known address.  Invariants (CPYTHON-NOTES.md 8, cited as
 * inv. N):
 *  1. Nothing archived is ever freed: every object carries a reference count
 *     (cds_layout_refcnt: 2^40 on 3.11, immortal from 3.12) that no amount
 *     of DECREF can bring to zero, and the mapping is never unmapped.
 *  2. Every GC type (tuple) is preceded by a zeroed PyGC_Head: untracked,
 *     not collecting.  Nothing ever tracks it.
 *  3. The process's singletons (None, True, False, Ellipsis, small ints,
 *     empty and 1-character str/bytes, the empty tuple) and type objects are
 *     never copied: their slots are "external" and hold the process's own
 *     object after loading.
 *  4. Stored str and bytes hashes are -1 ("not computed"), so a different
 *     hash secret needs no patching.
 *  5. Code is archived in its never-executed form, as the version creates
 *     it (3.11: PyCode_GetCode, warm-up counter at its initial value; 3.12
 *     on: co_code_adaptive as _PyCode_Quicken leaves a fresh object), with
 *     every runtime cache pointer NULL and no instrumentation.
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
#include "layout.h"

#include <limits.h>
#include <opcode.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define CDS_GC_HEAD CDS_GC_HEAD_SIZE /* sizeof(PyGC_Head): layout_3XX.c */
/* a node kind of the serializer only: archived as a CDS_OBJ_TUPLE of its
 * items (inv. 7) */
#define CDS_OBJ_FROZEN CDS_OBJ_NKINDS
#define ALIGN8(n) CDS_ALIGN8(n)

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
            index <= CDS_EXT_SMALL_INT + CDS_EXT_INT_MAX - CDS_EXT_INT_MIN) {
            o = PyLong_FromLong((long)index - CDS_EXT_SMALL_INT +
                                CDS_EXT_INT_MIN);
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
        if (!overflow && v >= cds_layout_small_int_min &&
            v <= cds_layout_small_int_max) {
            return CDS_EXT_SMALL_INT + (int)(v - CDS_EXT_INT_MIN);
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
        [CDS_OBJ_TUPLE] = &PyTuple_Type,     [CDS_OBJ_SLICE] = &PySlice_Type,
    };
    return types[kind];
}

/* ---------------------------------------------------------------------
 * Fingerprint (format.md 2.1) */

static void
copy_field(char *dst, size_t size, const char *src)
{
    memset(dst, 0, size);
    if (src != NULL) {
        strncpy(dst, src, size - 1);
    }
}

/* format.md 2.1 quicken_hash: the XXH3 of the bytecode a fresh code object
 * of this interpreter holds for a probe function that has each counter
 * quickening writes at creation (RESUME, a warm-up counter, JUMP_BACKWARD).
 * From 3.15 on their initial values are run-time settings
 * (interp->opt_config: PYTHON_SPECIALIZATION_OFF, PYTHON_JIT_*), and an
 * archive holds its dumper's: a process quickening otherwise must not
 * run them.  0 if it cannot say (an error then). */
static uint64_t
quicken_hash(void)
{
    static const char probe[] = "def probe(x):\n"
                                "    for i in x:\n"
                                "        x = x.a + i\n";
    PyObject *mod = Py_CompileString(probe, "<pycds probe>", Py_file_input);
    uint64_t h = 0;

    if (mod != NULL && PyCode_Check(mod)) {
        PyObject *consts = ((PyCodeObject *)mod)->co_consts;
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(consts); i++) {
            PyObject *c = PyTuple_GET_ITEM(consts, i);
            if (PyCode_Check(c)) {
                h = cds_hash((const uint8_t *)c + cds_layout_code_head,
                             (size_t)Py_SIZE(c) * 2u);
                break;
            }
        }
    }
    Py_XDECREF(mod);
    PyErr_Clear();
    return h;
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
    fp->layout_hash = cds_hash(cds_layout_table, cds_layout_table_size);
    /* sys.implementation.cache_tag, PyImport_GetMagicTag() where it is
     * not a str (cds_heap_module_attr) */
    PyObject *impl = cds_heap_module_attr("sys", "implementation");
    PyObject *tag = impl != NULL ? PyObject_GetAttrString(impl, "cache_tag")
                                 : NULL;
    const char *tag_text = tag != NULL && PyUnicode_Check(tag)
                               ? PyUnicode_AsUTF8(tag)
                               : NULL;
    copy_field(fp->cache_tag, sizeof(fp->cache_tag),
               tag_text != NULL ? tag_text : PyImport_GetMagicTag());
    Py_XDECREF(tag);
    Py_XDECREF(impl);
    PyErr_Clear();
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
    if ((fp->quicken_hash = quicken_hash()) == 0) {
        return CDS_FAIL(err, CDS_EVERSION, UINT64_MAX,
                        "cannot compile the quickening probe");
    }
    return 0;
}

PyObject *
cds_heap_module_attr(const char *module, const char *name)
{
    PyObject *key = PyUnicode_FromString(module);
    PyObject *m = key != NULL ? PyImport_GetModule(key) : NULL;
    PyObject *v = m != NULL ? PyObject_GetAttrString(m, name) : NULL;

    Py_XDECREF(m);
    Py_XDECREF(key);
    PyErr_Clear();
    return v;
}

/* sizeof(PyGC_Head), which only the internal headers declare: what
 * sys.getsizeof adds to a GC object's own size.  -1 if it cannot say. */
static long
gc_head_size(void)
{
    PyObject *t = PyTuple_Pack(1, Py_None), *r = NULL, *mine = NULL;
    PyObject *getsizeof = cds_heap_module_attr("sys", "getsizeof");
    long gc = -1;

    if (t != NULL && getsizeof != NULL) {
        r = PyObject_CallOneArg(getsizeof, t);
        mine = PyObject_CallMethod(t, "__sizeof__", NULL);
    }
    if (r != NULL && mine != NULL) {
        gc = PyLong_AsLong(r) - PyLong_AsLong(mine);
    }
    Py_XDECREF(t);
    Py_XDECREF(r);
    Py_XDECREF(mine);
    Py_XDECREF(getsizeof);
    PyErr_Clear();
    return gc;
}

int
cds_heap_check_runtime(int measure, cds_error *err)
{
    static int checked, measured; /* 1 ok, -1 refused; 0 not yet */
    static cds_error saved;

    if (checked == 0) {
        checked = -1;
        if ((uint32_t)Py_Version != (uint32_t)PY_VERSION_HEX) {
            /* dotted, as people name versions: the hex form is for
             * the archive header */
            unsigned long v = (unsigned long)Py_Version;
            CDS_FAIL(&saved, CDS_EVERSION, UINT64_MAX,
                     "built for Python %s, running Python %lu.%lu.%lu%s",
                     PY_VERSION, v >> 24, (v >> 16) & 0xff, (v >> 8) & 0xff,
                     (v & 0xf0) == 0xf0 ? "" : " (pre-release)");
        }
        else {
            char buf[160];
            const char *why = cds_layout_check_runtime(buf, sizeof(buf));
            if (why != NULL) {
                CDS_FAIL(&saved, CDS_EVERSION, UINT64_MAX, "%s", why);
            }
            else {
                checked = 1;
            }
        }
    }
    if (checked > 0 && measure && measured == 0) {
        long gc = gc_head_size();
        measured = 1;
        if (gc != CDS_GC_HEAD_SIZE) {
            CDS_FAIL(&saved, CDS_EVERSION, UINT64_MAX,
                     "GC head of %ld bytes, not %u", gc, CDS_GC_HEAD_SIZE);
            checked = -1;
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
    uint64_t *hints;   /* by index: cds_layout_str_fixed_address() */
    uint32_t count, cap_table, cap_hints;
    PyObject *startup; /* set: interned before the dump began, or NULL */
    PyObject *early_names; /* set: '$' records of the list, or NULL */
    uint32_t *early;   /* pool indices interned at activation (4.1) */
    uint32_t nearly, cap_early;
    uint32_t ncode;    /* code versions given out (format.md 5.1.7) */
    uint32_t *renumber; /* cds_heap_pool_order(): old index -> new, or NULL */
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
        Py_XDECREF(p->startup);
        Py_XDECREF(p->early_names);
        free(p->early);
        free(p->renumber);
        free(p->objects);
        free(p->table);
        free(p->hints);
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
    out->hints = p->hints;
    out->early = p->early;
    out->early_count = p->nearly;
    out->renumber = p->renumber;
    out->code_version_base = p->ncode ? cds_layout_code_version_base : 0;
    out->code_version_count = p->ncode;
}

/* The extent of pool string i in p->objects. */
static uint32_t
pool_extent(const cds_heap_pool *p, uint32_t i)
{
    return (i + 1 < p->count ? p->table[i + 1] : p->size) - p->table[i];
}

int
cds_heap_pool_order(cds_heap_pool *p, cds_error *err)
{
    uint8_t *objects = NULL;
    uint32_t *table = NULL, *renumber = NULL;
    uint64_t *hints = NULL;
    uint32_t n = 0, at = 0;

    if (p->nearly == 0 || p->renumber != NULL) {
        return 0;
    }
    objects = malloc(p->size ? p->size : 1);
    table = malloc(sizeof(*table) * p->count);
    hints = malloc(sizeof(*hints) * p->count);
    renumber = malloc(sizeof(*renumber) * p->count);
    if (objects == NULL || table == NULL || hints == NULL ||
        renumber == NULL) {
        free(objects);
        free(table);
        free(hints);
        free(renumber);
        return CDS_FAIL(err, CDS_ENOMEM, UINT64_MAX, "out of memory");
    }
    for (uint32_t i = 0; i < p->count; i++) {
        renumber[i] = UINT32_MAX;
    }
    /* the early strings first, in the order they were pooled (p->early
     * is increasing), then the others in theirs */
    for (uint32_t k = 0; k < p->nearly; k++) {
        renumber[p->early[k]] = n++;
    }
    for (uint32_t i = 0; i < p->count; i++) {
        if (renumber[i] == UINT32_MAX) {
            renumber[i] = n++;
        }
    }
    /* new index j holds old string inv[j]: walk the old indices in the
     * new order */
    uint32_t *inv = table; /* reused: filled with offsets below, in order */
    for (uint32_t i = 0; i < p->count; i++) {
        inv[renumber[i]] = i;
    }
    for (uint32_t j = 0; j < p->count; j++) {
        uint32_t i = inv[j];
        uint32_t len = pool_extent(p, i);
        memcpy(objects + at, p->objects + p->table[i], len);
        hints[j] = p->hints[i];
        inv[j] = at; /* inv[j] is read before it is overwritten */
        at += len;
    }
    for (uint32_t k = 0; k < p->nearly; k++) {
        p->early[k] = k;
    }
    free(p->objects);
    free(p->table);
    free(p->hints);
    p->objects = objects;
    p->cap = p->size ? p->size : 1;
    p->table = table;
    p->cap_table = p->count;
    p->hints = hints;
    p->cap_hints = p->count;
    p->renumber = renumber;
    return 0;
}

int
cds_heap_pool_note_startup(cds_heap_pool *p, cds_error *err)
{
    PyObject *set = cds_layout_interned_heap();

    if (set == NULL) {
        PyErr_Clear();
        return CDS_FAIL(err, CDS_ENOMEM, UINT64_MAX, "out of memory");
    }
    Py_XSETREF(p->startup, set == Py_None ? NULL : set);
    if (set == Py_None) {
        Py_DECREF(set);
    }
    return 0;
}

int
cds_heap_pool_note_early(cds_heap_pool *p, PyObject *names, cds_error *err)
{
    PyObject *set = PySet_New(names);

    if (set == NULL) {
        PyErr_Clear();
        return CDS_FAIL(err, CDS_ENOMEM, UINT64_MAX, "out of memory");
    }
    Py_XSETREF(p->early_names, set);
    return 0;
}

/* Will loading have to write a slot that refers to str o (a pool
 * string)?  Yes when the interpreter had an equal string interned on its
 * heap before anything was served, as it had before the dump began: the
 * slot then gets that string's address, which no file can know. */
static int
pool_rewritten(const cds_heap_pool *p, PyObject *o)
{
    if (p->startup == NULL || cds_layout_str_fixed_address(o) != 0) {
        return 0;
    }
    int rc = PySet_Contains(p->startup, o);
    if (rc < 0) {
        PyErr_Clear();
        return 0;
    }
    return rc;
}

static int grow(void **p, uint32_t *cap, uint32_t need, size_t elem,
                cds_error *err);
static uint64_t object_size(PyObject *o, int kind, PyObject *items);

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
                   sizeof(*p->table), err)) < 0 ||
        (rc = grow((void **)&p->hints, &p->cap_hints, p->count + 1,
                   sizeof(*p->hints), err)) < 0) {
        return rc;
    }
    memset(p->objects + p->size, 0, size);
    const char *why = cds_layout_emit(p->objects + p->size, o, CDS_OBJ_STR);
    if (why != NULL) {
        return CDS_FAIL(err, CDS_EUNSUPPORTED, UINT64_MAX, "%s", why);
    }
    v = PyLong_FromUnsignedLong(p->count);
    if (v == NULL || PyDict_SetItem(p->index, o, v) < 0) {
        Py_XDECREF(v);
        PyErr_Clear();
        return CDS_FAIL(err, CDS_ENOMEM, UINT64_MAX, "out of memory");
    }
    Py_DECREF(v);
    p->table[p->count] = p->size;
    p->hints[p->count] = cds_layout_str_fixed_address(o);
    /* interned at activation, unless start-up has it (heap.h) */
    if (p->early_names != NULL && p->hints[p->count] == 0 &&
        !pool_rewritten(p, o)) {
        int r = PySet_Contains(p->early_names, o);
        if (r < 0) {
            PyErr_Clear();
        }
        else if (r > 0) {
            if ((rc = grow((void **)&p->early, &p->cap_early, p->nearly + 1,
                           sizeof(*p->early), err)) < 0) {
                return rc;
            }
            p->early[p->nearly++] = p->count;
        }
    }
    *index = p->count++;
    p->size += (uint32_t)size;
    return 0;
}

struct node {
    PyObject *obj;    /* borrowed; the caller keeps the graph alive */
    PyObject *items;  /* frozenset: new reference to its items tuple */
    uint32_t off;     /* object offset in the region (after any GC head) */
    uint32_t size;    /* bytes, GC head included, 8-aligned */
    uint32_t refs;    /* references to it from the segment's objects */
    uint8_t kind;
    bool copied;      /* only read at load: a body handed out as a copy */
};

struct ser {
    PyObject *set_orders; /* id(frozenset) -> items in insertion order */
    struct node *nodes;
    uint32_t nnodes, cap;
    /* pointer -> node index + 1, open addressing */
    PyObject **keys;
    uint32_t *vals;
    uint32_t mask;
    uint64_t addr;
    cds_heap_segment *out;
    uint32_t cap_reloc, cap_ext, cap_frozen;
    cds_heap_pool *pool; /* every interned str goes there */
    uint32_t cap_shared;
    cds_error *err;
};

/* Does o go to the pool rather than into the segment (every interned str
 * that is not external)? */
static int
pooled(PyObject *o)
{
    return PyUnicode_CheckExact(o) && PyUnicode_CHECK_INTERNED(o) &&
           ext_index(o) < 0;
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

/* Bytes of o's image, a tuple's GC head included. */
static uint64_t
object_size(PyObject *o, int kind, PyObject *items)
{
    if (kind == CDS_OBJ_TUPLE || kind == CDS_OBJ_FROZEN) {
        PyObject *t = kind == CDS_OBJ_TUPLE ? o : items;
        return CDS_GC_HEAD +
               cds_layout_size(t, CDS_OBJ_TUPLE, PyTuple_GET_SIZE(t));
    }
    if (kind == CDS_OBJ_SLICE) {
        return CDS_GC_HEAD + cds_layout_size(o, CDS_OBJ_SLICE, 0);
    }
    return cds_layout_size(o, (unsigned)kind, 0);
}

static int visit(struct ser *s, PyObject *o, int depth);

/* A slice's start, stop and step (i = 0, 1, 2), in the order of their
 * slots. */
static PyObject *
slice_field(PyObject *o, int i)
{
    PySliceObject *sl = (PySliceObject *)o;
    return i == 0 ? sl->start : i == 1 ? sl->stop : sl->step;
}

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

/* Does tuple items hold exactly the objects of set o, in any order?  The
 * sizes are equal: each of o's objects found in items makes items a
 * permutation of them.  Constant sets are small; a scan each is fine. */
static int
check_same_items(PyObject *o, PyObject *items)
{
    PyObject *it = PyObject_GetIter(o), *x;
    int same = it != NULL;

    while (same && (x = PyIter_Next(it)) != NULL) {
        Py_ssize_t i = 0, n = PyTuple_GET_SIZE(items);
        while (i < n && PyTuple_GET_ITEM(items, i) != x) {
            i++;
        }
        same = i < n;
        Py_DECREF(x);
    }
    Py_XDECREF(it);
    PyErr_Clear();
    return same;
}

/* A frozenset's items in the order loading must insert them (inv. 7):
 * the order stock CPython inserts them in, from set_orders, where the
 * dump found it (its .pyc), else the dumping process's iteration order.
 * New reference, or NULL with an exception. */
static PyObject *
frozenset_items(struct ser *s, PyObject *o)
{
    if (s->set_orders != NULL && PyDict_Check(s->set_orders)) {
        PyObject *key = PyLong_FromVoidPtr(o), *items;
        if (key == NULL) {
            return NULL;
        }
        items = PyDict_GetItemWithError(s->set_orders, key); /* borrowed */
        Py_DECREF(key);
        if (items == NULL && PyErr_Occurred()) {
            return NULL;
        }
        /* the set's own item objects, each once (equal ones, such as 1
         * for True, would be other constants), or nothing to go by */
        if (items != NULL && PyTuple_CheckExact(items) &&
            PyTuple_GET_SIZE(items) == PySet_GET_SIZE(o) &&
            check_same_items(o, items)) {
            return Py_NewRef(items);
        }
    }
    return PySequence_Tuple(o);
}

/* Pointer field i of code object o (cds_layout_code_fields). */
static inline PyObject *
code_field(PyObject *o, size_t i)
{
    PyObject *f;
    memcpy(&f, (const char *)o + cds_layout_code_fields[i].off, sizeof(f));
    return f;
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
    uint32_t seen = ext_index(o) >= 0 ? 0 : memo_find(s, o);
    if (seen != 0) {
        s->nodes[seen - 1].refs++;
        return 0;
    }
    if (ext_index(o) >= 0 || pooled(o)) {
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
    else if (PySlice_Check(o)) { /* 3.14 on: the compiler folds them */
        kind = CDS_OBJ_SLICE;
    }
    else if (PyFrozenSet_CheckExact(o)) {
        kind = CDS_OBJ_FROZEN;
        items = frozenset_items(s, o);
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
    n->refs = 1;
    if (kind == CDS_OBJ_FROZEN) {
        s->out->nfrozensets++;
    }
    s->out->counts[kind == CDS_OBJ_FROZEN ? CDS_OBJ_TUPLE : kind]++;

    switch (kind) {
    case CDS_OBJ_CODE:
        for (size_t i = 0; i < cds_layout_code_nfields; i++) {
            if ((rc = visit(s, code_field(o, i), depth + 1)) < 0) {
                return rc;
            }
        }
        return 0;
    case CDS_OBJ_TUPLE:
        return visit_tuple_items(s, o, depth);
    case CDS_OBJ_SLICE:
        for (int i = 0; i < 3; i++) {
            if ((rc = visit(s, slice_field(o, i), depth + 1)) < 0) {
                return rc;
            }
        }
        return 0;
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
    if (pooled(target)) {
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
        /* the writer stores the slot's hint once the pool has its place
         * (format.md 5.5); emit_code copied this process's pointer here */
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

static int
emit_code(struct ser *s, const struct node *n)
{
    const char *why =
        cds_layout_emit(s->out->objects + n->off, n->obj, CDS_OBJ_CODE);
    int rc;

    if (why != NULL) {
        return CDS_FAIL(s->err, CDS_EUNSUPPORTED, UINT64_MAX, "%s", why);
    }
    /* 3.13: the code object's own version, unique in the archive */
    if (cds_layout_code_version_off != 0) {
        if (s->pool->ncode >= UINT32_MAX - cds_layout_code_version_base) {
            return CDS_FAIL(s->err, CDS_EUNSUPPORTED, UINT64_MAX,
                            "too many code objects");
        }
        uint32_t ver = cds_layout_code_version_base + s->pool->ncode++;
        memcpy(s->out->objects + n->off + cds_layout_code_version_off, &ver,
               4);
    }
    for (size_t i = 0; i < cds_layout_code_nfields; i++) {
        uint32_t slot = n->off + cds_layout_code_fields[i].off;
        if ((rc = emit_ref(s, slot, code_field(n->obj, i))) < 0) {
            return rc;
        }
    }
    return 0;
}

static int
emit_tuple(struct ser *s, const struct node *n, PyObject *t)
{
    int rc;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(t); i++) {
        uint32_t slot = n->off + cds_layout_tuple_items +
                        (uint32_t)(i * (Py_ssize_t)sizeof(PyObject *));
        if ((rc = emit_ref(s, slot, PyTuple_GET_ITEM(t, i))) < 0) {
            return rc;
        }
    }
    /* inv. 2: the GC head before n->off stays zero */
    cds_layout_emit_tuple(s->out->objects + n->off, PyTuple_GET_SIZE(t));
    return 0;
}

static int
emit_slice(struct ser *s, const struct node *n)
{
    int rc;
    for (int i = 0; i < 3; i++) {
        uint32_t slot = n->off + cds_layout_slice_fields[i];
        if ((rc = emit_ref(s, slot, slice_field(n->obj, i))) < 0) {
            return rc;
        }
    }
    /* inv. 2: the GC head before n->off stays zero */
    const char *why =
        cds_layout_emit(s->out->objects + n->off, n->obj, CDS_OBJ_SLICE);
    if (why != NULL) {
        return CDS_FAIL(s->err, CDS_EUNSUPPORTED, UINT64_MAX, "%s", why);
    }
    return 0;
}

static int
emit_node(struct ser *s, const struct node *n)
{
    const char *why;

    switch (n->kind) {
    case CDS_OBJ_CODE:
        return emit_code(s, n);
    case CDS_OBJ_SLICE:
        return emit_slice(s, n);
    case CDS_OBJ_TUPLE:
        return emit_tuple(s, n, n->obj);
    case CDS_OBJ_FROZEN:
        return emit_tuple(s, n, n->items); /* inv. 7 */
    }
    why = cds_layout_emit(s->out->objects + n->off, n->obj, n->kind);
    if (why != NULL) {
        return CDS_FAIL(s->err, CDS_EUNSUPPORTED, UINT64_MAX, "%s", why);
    }
    return 0;
}

/* Does loading write into tuple node n: a slot of a frozenset (built at
 * load), or of a pool string that will resolve to a string interned
 * before anything was served? */
static int
tuple_patched(const struct ser *s, const struct node *n)
{
    if (n->kind == CDS_OBJ_SLICE) {
        for (int i = 0; i < 3; i++) {
            PyObject *o = slice_field(n->obj, i);
            if (pooled(o) && pool_rewritten(s->pool, o)) {
                return 1;
            }
        }
        return 0;
    }
    PyObject *t = n->kind == CDS_OBJ_FROZEN ? n->items : n->obj;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(t); i++) {
        PyObject *o = PyTuple_GET_ITEM(t, i);
        if (PyFrozenSet_CheckExact(o) ||
            (pooled(o) && pool_rewritten(s->pool, o))) {
            return 1;
        }
    }
    return 0;
}

/* Does loading write into code node n: a name or file name that will
 * resolve to a string interned before anything was served (a function
 * named as a builtin is)? */
static int
code_patched(const struct ser *s, const struct node *n)
{
    PyCodeObject *co = (PyCodeObject *)n->obj;
    PyObject *names[] = {co->co_name, co->co_qualname, co->co_filename};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (pooled(names[i]) && pool_rewritten(s->pool, names[i])) {
            return 1;
        }
    }
    return 0;
}

/* Did code object o run in the trace (ran: a set of (co_firstlineno,
 * co_qualname), or NULL)? */
static int
code_ran(PyObject *ran, PyObject *o)
{
    PyCodeObject *co = (PyCodeObject *)o;
    if (ran == NULL) {
        return 0;
    }
    PyObject *key = Py_BuildValue("(iO)", co->co_firstlineno, co->co_qualname);
    int rc = key == NULL ? -1 : PySet_Contains(ran, key);
    Py_XDECREF(key);
    if (rc < 0) {
        PyErr_Clear();
        return 0;
    }
    return rc;
}

/* The bodies the loader hands out as heap copies (format.md 5): from a
 * module or class body, its co_consts tuple and the class bodies in it,
 * each referred to from there alone.  Once copied at load, nothing reads
 * them again, so their pages can go.  Deeper bodies than
 * CDS_COPY_DEPTH stay archived (the loader stops there too). */
static void
mark_copied(struct ser *s, uint32_t i, int depth)
{
    PyObject *consts = ((PyCodeObject *)s->nodes[i].obj)->co_consts;
    uint32_t t = memo_find(s, consts);

    s->nodes[i].copied = true;
    /* its names and tables, when only it refers to them: copied with it
     * (the copy's dealloc would otherwise read their reference counts,
     * faulting their pages back in) */
    for (size_t f = 0; f < cds_layout_code_nfields; f++) {
        PyObject *o = code_field(s->nodes[i].obj, f);
        uint32_t j = o == consts ? 0 : memo_find(s, o);
        if (j != 0 && s->nodes[j - 1].refs == 1 &&
            (s->nodes[j - 1].kind == CDS_OBJ_TUPLE ||
             s->nodes[j - 1].kind == CDS_OBJ_BYTES)) {
            s->nodes[j - 1].copied = true;
        }
    }
    if (t == 0 || s->nodes[t - 1].kind != CDS_OBJ_TUPLE ||
        s->nodes[t - 1].refs != 1 || s->nodes[t - 1].copied) {
        return;
    }
    s->nodes[t - 1].copied = true;
    for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(consts); k++) {
        PyObject *c = PyTuple_GET_ITEM(consts, k);
        uint32_t j = PyCode_Check(c) ? memo_find(s, c) : 0;
        if (j != 0 && s->nodes[j - 1].kind == CDS_OBJ_CODE &&
            s->nodes[j - 1].refs == 1 && !s->nodes[j - 1].copied &&
            !(((PyCodeObject *)c)->co_flags & CO_OPTIMIZED) &&
            depth + 1 < CDS_COPY_DEPTH) {
            mark_copied(s, j - 1, depth + 1);
        }
    }
}

int
cds_heap_serialize(PyObject *code, uint64_t addr, cds_heap_pool *pool,
                   PyObject *set_orders, PyObject *ran,
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
    s.set_orders = set_orders;
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
    if (pool == NULL) {
        rc = CDS_FAIL(err, CDS_EUNSUPPORTED, UINT64_MAX,
                      "no string pool to serialize into");
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
    /* Layout (format.md 5, DESIGN.md cost model): first the tuples and
     * code objects loading writes into (a frozenset built, a name
     * interned before anything was served), whose end is write_size; then
     * code objects, which running writes (adaptive bytecode, counters,
     * caches) where it runs them: the module and class bodies not copied,
     * then the functions that ran in the trace, then the others; then the
     * constants and names, which 3.11 writes too (reference counts) and
     * any version may hash; the other tuples; bytes: line and exception
     * tables are only ever read; last, from copy_off, the bodies the
     * loader hands out as heap copies with what only they refer to, only
     * read at load. */
    uint32_t write_size = 0, copy_off = 0;
    if (ran != NULL && !PyAnySet_Check(ran)) {
        ran = NULL;
    }
    if (s.nodes[0].kind == CDS_OBJ_CODE &&
        !(((PyCodeObject *)s.nodes[0].obj)->co_flags & CO_OPTIMIZED)) {
        mark_copied(&s, 0, 0);
    }
    for (int pass = 0; pass < 8; pass++) {
        for (uint32_t i = 0; i < s.nnodes; i++) {
            struct node *n = &s.nodes[i];
            int tuple = n->kind == CDS_OBJ_TUPLE ||
                        n->kind == CDS_OBJ_FROZEN || n->kind == CDS_OBJ_SLICE;
            /* module and class bodies, which importing runs, and the
             * functions that ran in the trace, before the others */
            int want = n->copied ? 7
                       : n->kind == CDS_OBJ_CODE
                           ? code_patched(&s, n)     ? 0
                             : !(((PyCodeObject *)n->obj)->co_flags &
                                 CO_OPTIMIZED)       ? 1
                             : code_ran(ran, n->obj) ? 2
                                                     : 3
                       : n->kind == CDS_OBJ_BYTES ? 6
                       : tuple ? (tuple_patched(&s, n) ? 0 : 5)
                               : 4;
            if (want != pass) {
                continue;
            }
            uint64_t gc = tuple ? CDS_GC_HEAD : 0;
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
        if (pass == 0) {
            write_size = (uint32_t)off;
        }
        if (pass == 6) {
            copy_off = (uint32_t)off;
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
    out->seg.objects = out->objects;
    out->seg.objects_size = (uint32_t)off;
    out->seg.objtab = out->objtab;
    out->seg.nobjects = s.nnodes;
    out->seg.root_off = s.nodes[0].off; /* visit() put the root first */
    out->seg.reloc = out->reloc;
    out->seg.ext = out->ext;
    out->seg.frozen = out->frozen;
    out->seg.shared = out->shared;
    out->seg.write_size = write_size;
    out->seg.copy_off = copy_off;
    rc = 0;
out:
    for (uint32_t i = 0; i < s.nnodes; i++) {
        Py_XDECREF(s.nodes[i].items);
    }
    free(s.nodes);
    free(s.keys);
    free(s.vals);
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

/* Load-side state: for the one archive of the process, each pool
 * string's interned object once resolved, which pool blocks passed their
 * checksum, which code versions loaded code objects hold, and whether
 * the interpreter's version counter was moved past them.  Kept for ever,
 * like the objects (inv. 1). */
static struct {
    const uint8_t *image; /* the archive's data: its identity */
    PyObject **resolved;
    uint8_t *block_ok;
    uint8_t *versions;    /* one bit per code version of the archive */
    int versions_reserved;
    void *abandoned;      /* the states of earlier images, kept */
} pool_state;

/* The state for archive a, made afresh for an image not seen before: a
 * previous archive's is abandoned, not freed, since its strings may
 * still be in use. */
static int
load_state(cds_archive *a, cds_error *err)
{
    const struct cds_disk_header *h = a->header;

    if (pool_state.image == a->data) {
        return 0;
    }
    uint64_t nblocks = cds_pool_nblocks(a);
    PyObject **resolved =
        calloc(h->pool_count ? h->pool_count : 1, sizeof(PyObject *));
    uint8_t *ok = calloc(nblocks ? nblocks : 1, 1);
    uint8_t *versions = calloc((h->code_version_count + 7) / 8 + 1, 1);
    void *prev = pool_state.image != NULL ? malloc(sizeof(pool_state))
                                          : NULL;
    if (resolved == NULL || ok == NULL || versions == NULL ||
        (pool_state.image != NULL && prev == NULL)) {
        free(resolved);
        free(ok);
        free(versions);
        free(prev);
        return CDS_FAIL(err, CDS_ENOMEM, UINT64_MAX, "out of memory");
    }
    if (prev != NULL) {
        /* reachable for ever, as its strings may be */
        memcpy(prev, &pool_state, sizeof(pool_state));
        pool_state.abandoned = prev;
    }
    pool_state.image = a->data;
    pool_state.resolved = resolved;
    pool_state.block_ok = ok;
    pool_state.versions = versions;
    /* before any archived code object can run (format.md 8) */
    pool_state.versions_reserved =
        h->code_version_count != 0 &&
        cds_layout_code_versions_reserve(h->code_version_base,
                                         h->code_version_count);
    return 0;
}

/* The version bit index of the code object at objtab entry e (in range:
 * cds_heap_validate checked it). */
static uint32_t
version_index(const cds_archive *a, const uint8_t *seg, uint32_t e)
{
    uint32_t ver;
    memcpy(&ver, seg + CDS_OBJ_OFFSET(e) + cds_layout_code_version_off, 4);
    return ver - a->header->code_version_base;
}

/* 3.13: claim the versions of module index's code objects, refusing one
 * that another code object, loaded before or in this segment, holds: two
 * functions of one version would pass each other's specialisation
 * guards.  Before any write; a refused segment claims nothing. */
static int
claim_versions(cds_archive *a, uint32_t index, cds_error *err)
{
    const struct cds_disk_module *m = &a->modules[index];
    const uint8_t *seg = cds_segment_mem(a, index);
    const uint32_t *objtab = (const void *)(seg + m->objtab_off);
    uint8_t *bits = pool_state.versions;
    uint32_t i, k;

    if (cds_layout_code_version_off == 0) {
        return 0;
    }
    for (i = 0; i < m->nobjects; i++) {
        if (CDS_OBJ_KIND(objtab[i]) != CDS_OBJ_CODE) {
            continue;
        }
        k = version_index(a, seg, objtab[i]);
        if (bits[k / 8] & (1u << (k % 8))) {
            break;
        }
        bits[k / 8] |= (uint8_t)(1u << (k % 8));
    }
    if (i == m->nobjects) {
        return 0;
    }
    uint32_t bad = objtab[i];
    while (i-- > 0) { /* give this segment's claims back */
        if (CDS_OBJ_KIND(objtab[i]) == CDS_OBJ_CODE) {
            k = version_index(a, seg, objtab[i]);
            bits[k / 8] &= (uint8_t)~(1u << (k % 8));
        }
    }
    return CDS_CORRUPT(err,
                       m->seg_offset + CDS_OBJ_OFFSET(bad) +
                           cds_layout_code_version_off,
                       "module %s: co_version %u given twice",
                       cds_module_name(a, index),
                       version_index(a, seg, bad) +
                           a->header->code_version_base);
}

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
        /* ASCII text is most of what is read here: 32 bytes at a time (a
         * GCC/Clang vector: two SSE2 registers on x86-64), then words,
         * the last one overlapping */
        typedef uint64_t u64x4 __attribute__((vector_size(32)));
        u64x4 wide = {0, 0, 0, 0};
        uint64_t w = 0, i = 0;
        for (; i + 32 <= len; i += 32) {
            u64x4 x;
            memcpy(&x, data + i, sizeof(x));
            wide |= x;
        }
        for (; i + 8 <= len; i += 8) {
            uint64_t x;
            memcpy(&x, data + i, 8);
            w |= x;
        }
        if (i < len && len >= 8) {
            uint64_t x;
            memcpy(&x, data + len - 8, 8);
            w |= x;
        }
        else {
            for (; i < len; i++) {
                w |= data[i];
            }
        }
        w |= wide[0] | wide[1] | wide[2] | wide[3];
        /* only whether some byte is above 0x7f matters for kind 1 */
        return w & 0x8080808080808080ull ? 0x80 : 0;
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
    struct cds_str_view a;
    uint64_t need, len;
    const char *why = cds_layout_str_view(p, extent, &a);

    if (why != NULL) {
        return why;
    }
    if ((a.kind != 1 && a.kind != 2 && a.kind != 4) ||
        (a.ascii && a.kind != 1)) {
        return "bad kind";
    }
    /* length >= extent rules out the overflow of (length + 1) x kind */
    if (a.length < 1 || (uint64_t)a.length >= extent) {
        return "length out of range";
    }
    len = (uint64_t)a.length;
    need = a.head + (len + 1) * a.kind;
    if (need > extent) {
        return "characters past its extent";
    }
    /* the writer packs objects: anything else is a length changed */
    if (ALIGN8(need) != extent) {
        return "size does not fill its extent";
    }
    /* inv. 4: a stored hash would put it in the wrong dict bucket */
    if (a.hash != -1) {
        return "hash is not -1";
    }
    /* the terminating NUL of its kind */
    for (unsigned i = 0; i < a.kind; i++) {
        if (p[need - 1 - i] != 0) {
            return "no terminating NUL";
        }
    }
    /* the smallest kind that holds the characters, ascii set exactly when
     * all are below 0x80 (what _PyUnicode_CheckConsistency asserts):
     * equality tests compare kinds first, and ASCII strings are used as
     * their own UTF-8 */
    uint32_t max, ors = str_chars_or(p + a.head, len, a.kind, &max);
    bool ok;
    switch (a.kind) {
    case 1: ok = a.ascii ? ors < 0x80 : ors >= 0x80; break;
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

    if (load_state(a, err) < 0) {
        return NULL;
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
    cds_layout_str_loaded(p, extent);
    t = s;
    /* the archived string becomes the interned one unless the interpreter
     * has an equal one already; either way we keep the reference */
    PyUnicode_InternInPlace(&t);
    if (t == s) {
        cds_layout_str_interned(s);
    }
    pool_state.resolved[index] = t;
    return t;
}

int
cds_heap_interned_since(Py_ssize_t *pos, PyObject *list)
{
    PyObject *d = cds_layout_interned_dict(), *k, *v;

    if (d == NULL) {
        return 0;
    }
    while (PyDict_Next(d, pos, &k, &v)) {
        if (list != NULL && PyList_Append(list, k) < 0) {
            return -1;
        }
    }
    return 0;
}

static uint64_t now_ns(void);

int
cds_heap_resolve_early(cds_archive *a, cds_error *err)
{
    const uint32_t *list;
    uint64_t t0 = now_ns();
    int rc;

    if (a->header->pool_early_count == 0) {
        return 0; /* 3.11, and lists without '$': the pool waits for use */
    }
    if ((rc = load_state(a, err)) < 0 ||
        (rc = cds_pool_early(a, pool_state.block_ok, &list, err)) < 0) {
        return rc;
    }
    for (uint32_t i = 0; i < a->header->pool_early_count; i++) {
        uint32_t ix;
        memcpy(&ix, list + i, 4);
        if (pool_resolve(a, ix, err) == NULL) {
            return err->status;
        }
    }
    cds_heap_phases.intern += now_ns() - t0;
    return 0;
}

/* ---------------------------------------------------------------------
 * Deep validation of a segment's objects (format.md 6.7)
 *
 * cds_segment_validate() checks the containers: the object table and the
 * lists of pointer slots.  This checks what lies between: every object's
 * body against the layout the emit_* functions above write, so that a
 * segment whose checksum was recomputed after tampering cannot hand the
 * interpreter an object that makes it read or write out of bounds.  The
 * bar is "an object graph marshal and _PyCode_New could have built",
 * not "the bytes the serializer wrote": the bytecode, line table and
 * exception table are trusted as CPython trusts a .pyc's (format.md 6.5).
 * Pure reads of the image; no interpreter is needed. */

/* The slot map (archive.h cds_slot_map) that cds_segment_validate_map
 * built: a 16-bit unit per 8 bytes, the kind of an object that starts
 * there and how the unit is listed as a slot.  The first pass refuses a
 * slot on an object's first unit (check_heads), so CDS_MAP_FROZEN means
 * one thing on object units (a frozenset's item tuple) and another on
 * slots, and the class bits of object units are free for VM_STRS. */
#define VM_KIND(u) CDS_MAP_KIND(u)
#define VM_CLASS(u) CDS_MAP_CLASS(u)
#define VM_LISTED CDS_MAP_LISTED
#define VM_FROZEN CDS_MAP_FROZEN
/* object unit of a tuple, set by the first pass: every item is a pool or
 * external str slot */
#define VM_STRS 0x10u
/* object unit of a code object, set by the first pass: its cross-checks
 * wait for the second (what it names comes before it) */
#define VM_DEFERRED 0x20u
#define SC_NONE CDS_SC_NONE
#define SC_RELOC CDS_SC_RELOC
#define SC_SHARED CDS_SC_SHARED
#define SC_EXT_TUPLE CDS_SC_EXT_TUPLE
#define SC_EXT_NOBYTES CDS_SC_EXT_NOBYTES
#define SC_EXT_STR CDS_SC_EXT_STR
#define SC_EXT_OTHER CDS_SC_EXT_OTHER
#define SC_EXT_BYTE CDS_SC_EXT_BYTE

static const char *const kind_names[CDS_OBJ_NKINDS] = {
    "code", "str", "bytes", "int", "float", "complex", "tuple", "slice",
};

struct vseg {
    const char *name;
    const uint8_t *seg;
    uint64_t seg_offset; /* file offset of the block, for messages */
    uint64_t base;       /* the block's address at the writer's base */
    uint32_t size;       /* objects_size */
    const uint32_t *objtab;
    uint32_t nobjects;
    uint16_t *map;
    uint64_t nfields;    /* pointer fields seen, each one a listed slot */
    bool deferred;       /* code objects whose targets come before them */
    uint32_t version_base, version_count; /* the header's code versions */
    cds_error *err;
};

/* Where an object's bytes end: the next object (its GC head, for a
 * tuple) or the region's end.  S2 leaves at least 24 bytes. */
static inline uint32_t
object_extent(const struct vseg *v, uint32_t i)
{
    uint32_t off = CDS_OBJ_OFFSET(v->objtab[i]);
    if (i + 1 == v->nobjects) {
        return v->size - off;
    }
    uint32_t next = CDS_OBJ_OFFSET(v->objtab[i + 1]);
    if (CDS_OBJ_GC_HEADED(CDS_OBJ_KIND(v->objtab[i + 1]))) {
        next -= CDS_GC_HEAD;
    }
    return next - off;
}

/* The index of the last object starting at or before off (the first
 * object when none does). */
static uint32_t
find_object(const struct vseg *v, uint32_t off)
{
    uint32_t lo = 0, hi = v->nobjects;
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (CDS_OBJ_OFFSET(v->objtab[mid]) <= off) {
            lo = mid;
        }
        else {
            hi = mid;
        }
    }
    return lo;
}

/* Report slot, listed in `list`, as lying outside every pointer field. */
static int
stray_slot(const struct vseg *v, uint32_t slot, const char *list)
{
    uint32_t i = find_object(v, slot);
    uint32_t off = CDS_OBJ_OFFSET(v->objtab[i]);
    if (slot < off || slot - off >= object_extent(v, i)) {
        /* before the first object, or in a tuple's GC head */
        return CDS_CORRUPT(v->err, v->seg_offset + slot,
                           "module %s: %s slot 0x%x is outside every "
                           "object",
                           v->name, list, slot);
    }
    return CDS_CORRUPT(v->err, v->seg_offset + slot,
                       "module %s: object 0x%x (%s): %s slot 0x%x is not "
                       "a pointer field",
                       v->name, off, kind_names[CDS_OBJ_KIND(v->objtab[i])],
                       list, slot);
}

/* The list that names a slot of class cls, for messages. */
static const char *
class_list(unsigned cls)
{
    return cls == SC_RELOC ? "relocation"
           : cls == SC_SHARED ? "pool reference"
                              : "external";
}

/* No listed slot is an object's first unit (its reference count, which
 * loading would patch).  The format layer cannot tell: it does not know
 * which words of an object are fields. */
static int
check_heads(const struct vseg *v)
{
    for (uint32_t i = 0; i < v->nobjects; i++) {
        uint32_t off = CDS_OBJ_OFFSET(v->objtab[i]);
        unsigned u = v->map[off / 8];
        if (u & VM_LISTED) {
            return stray_slot(v, off, class_list(VM_CLASS(u)));
        }
    }
    return 0;
}

/* What a listed slot refers to, as one small number: its class, or for
 * a relocated slot REF_OBJ + the kind of the object of the segment it
 * points at (whose offset goes to *target); plus REF_FROZEN for a slot
 * of the frozen list (it holds a frozenset after loading).  SC_NONE: not
 * listed. */
#define REF_OBJ 16u
#define REF_FROZEN 32u
static inline unsigned
load_ref(const struct vseg *v, uint32_t slot, uint32_t *target)
{
    unsigned u = v->map[slot / 8], cls = VM_CLASS(u);
    unsigned frozen = u & VM_FROZEN ? REF_FROZEN : 0;
    uint64_t p;

    if (cls != SC_RELOC) {
        return cls | frozen;
    }
    memcpy(&p, v->seg + slot, 8);
    p -= v->base;
    /* S3 made it the start of an object of the segment */
    if (p >= v->size || p % 8 != 0 || VM_KIND(v->map[p / 8]) == 0) {
        return SC_NONE;
    }
    *target = (uint32_t)p;
    return (REF_OBJ + VM_KIND(v->map[p / 8]) - 1) | frozen;
}

/* The load_ref() values that are a tuple, a bytes, a str once loaded,
 * one bit each (a frozen slot is none of them). */
#define REF_BIT(r) ((uint64_t)1 << (r))
static const uint64_t ref_kinds[CDS_OBJ_NKINDS] = {
    [CDS_OBJ_TUPLE] = REF_BIT(SC_EXT_TUPLE) | REF_BIT(REF_OBJ + CDS_OBJ_TUPLE),
    [CDS_OBJ_BYTES] = REF_BIT(SC_EXT_NOBYTES) |
                      ((uint64_t)0xff << SC_EXT_BYTE) /* its 8 classes */ |
                      REF_BIT(REF_OBJ + CDS_OBJ_BYTES),
    [CDS_OBJ_STR] = REF_BIT(SC_SHARED) |
                    REF_BIT(SC_EXT_STR) | REF_BIT(REF_OBJ + CDS_OBJ_STR),
};

/* Is the slot a reference to an object of kind want once loaded? */
static inline bool
ref_is(const struct vseg *v, uint32_t slot, unsigned want, unsigned *ref,
       uint32_t *target)
{
    *ref = load_ref(v, slot, target);
    return (ref_kinds[want] & REF_BIT(*ref)) != 0;
}

/* A tuple's item count and first item slot, or a bytes object's size and
 * data, for a reference ref_is() accepted (its target was checked by the
 * first pass). */
static uint64_t
ref_tuple(const struct vseg *v, unsigned ref, uint32_t target,
          uint32_t *items)
{
    *items = target + cds_layout_tuple_items;
    if (ref == SC_EXT_TUPLE) {
        return 0;
    }
    return (uint64_t)((const PyVarObject *)(v->seg + target))->ob_size;
}

static uint64_t
ref_bytes(const struct vseg *v, unsigned ref, uint32_t target,
          const uint8_t **data, uint8_t *one)
{
    *data = one;
    if (ref == SC_EXT_NOBYTES) {
        return 0;
    }
    if (ref >= SC_EXT_BYTE && ref < REF_OBJ) {
        /* the bits that matter of the byte */
        *one = (uint8_t)((ref - SC_EXT_BYTE) << 5);
        return 1;
    }
    *data = v->seg + target + cds_layout_bytes_data;
    return (uint64_t)((const PyVarObject *)(v->seg + target))->ob_size;
}

/* The corruption funnel for object bodies: "module M: object 0xO (K): "
 * and the detail, with the line of the failed check (cds.h). */
static int vfail(const struct vseg *v, int line, uint32_t obj, unsigned kind,
                 uint32_t at, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
#define VFAIL(v, obj, kind, at, ...)                                        \
    vfail((v), __LINE__, (obj), (kind), (at), __VA_ARGS__)

static int
vfail(const struct vseg *v, int line, uint32_t obj, unsigned kind,
      uint32_t at, const char *fmt, ...)
{
    char detail[160];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    return cds__error_set(v->err, CDS_ECORRUPT, line, v->seg_offset + at,
                          "module %s: object 0x%x (%s): %s", v->name, obj,
                          kind_names[kind], detail);
}

/* sizeof(_Py_CODEUNIT), which 3.13 no longer declares publicly */
#define CODE_UNIT 2u
#define code_fields cds_layout_code_fields
#define NCODE_FIELDS cds_layout_code_nfields
#define FIELD_NAMES CDS_FIELD_NAMES
#define FIELD_LPNAMES CDS_FIELD_LPNAMES
#define FIELD_LPKINDS CDS_FIELD_LPKINDS
/* Include/internal/pycore_code.h (CO_FAST_*): the kinds of
 * co_localspluskinds that init_code counts, the same bits in 3.11-3.13 */
#define FAST_LOCAL 0x20
#define FAST_CELL 0x40
#define FAST_FREE 0x80

static int validate_code_refs(const struct vseg *v, uint32_t off);

/* First pass, a code object on its own (format.md 5.1.7): its size, the
 * fields loading and running rely on, and each pointer field listed and
 * of its kind; then, if the tuples and bytes it names were checked
 * already, the counts that depend on them (validate_code_refs). */
static int
validate_code(struct vseg *v, uint32_t off, uint32_t extent)
{
    struct cds_code_view co;
    const uint32_t head = cds_layout_code_head;
    bool ready = true;
    char buf[160];
    uint32_t at = 0;
    const char *why;

    cds_layout_code_view(v->seg + off, &co);
    int64_t n = co.nunits;
    /* _PyCode_Validate: indexable with an int */
    if (extent < head || n < 1 || n > INT_MAX ||
        (uint64_t)n > (extent - head) / CODE_UNIT ||
        ALIGN8(head + (uint64_t)n * CODE_UNIT) != extent) {
        return VFAIL(v, off, CDS_OBJ_CODE, off + 16,
                     "bytecode of %lld units does not fill its %u bytes",
                     (long long)n, extent);
    }
    if ((why = cds_layout_check_code(v->seg + off, &at, buf, sizeof(buf))) !=
        NULL) {
        return VFAIL(v, off, CDS_OBJ_CODE, off + at, "%s", why);
    }
    /* 3.13: a version of the archive's range (format.md 5.1.7); that no
     * two code objects share one is checked as they are loaded */
    if (cds_layout_code_version_off != 0) {
        uint32_t ver;
        memcpy(&ver, v->seg + off + cds_layout_code_version_off, 4);
        if (ver - v->version_base >= v->version_count) {
            return VFAIL(v, off, CDS_OBJ_CODE,
                         off + cds_layout_code_version_off,
                         "co_version %u outside the archive's %u+%u", ver,
                         v->version_base, v->version_count);
        }
    }
    for (size_t i = 0; i < NCODE_FIELDS; i++) {
        uint32_t slot = off + code_fields[i].off, target = 0;
        unsigned ref;
        if (!ref_is(v, slot, code_fields[i].want, &ref, &target)) {
            return VFAIL(v, off, CDS_OBJ_CODE, slot, "%s at 0x%x is not %s",
                         code_fields[i].name, slot,
                         ref == SC_NONE ? "a listed pointer"
                         : code_fields[i].want == CDS_OBJ_TUPLE ? "a tuple"
                         : code_fields[i].want == CDS_OBJ_BYTES ? "a bytes"
                                                                : "a str");
        }
        /* the first pass runs backwards: objects after this one are
         * checked (as written, all that code refers to) */
        ready &= ref < REF_OBJ || target > off;
    }
    v->nfields += NCODE_FIELDS;
    /* _PyCode_Validate's argument checks */
    if (co.posonlyargcount < 0 || co.argcount < co.posonlyargcount ||
        co.kwonlyargcount < 0 || co.flags < 0) {
        return VFAIL(v, off, CDS_OBJ_CODE, off + co.off_flags,
                     "co_argcount %d, co_posonlyargcount %d, "
                     "co_kwonlyargcount %d, co_flags 0x%x",
                     co.argcount, co.posonlyargcount, co.kwonlyargcount,
                     (unsigned)co.flags);
    }
    /* a frame has co_nlocalsplus + co_stacksize (+ a few) slots, sized in
     * int arithmetic (pystate.c push_chunk: bytes in an int) */
    if (co.stacksize < 0 || co.nlocalsplus < 0 ||
        (int64_t)co.stacksize + co.nlocalsplus >
            INT_MAX / (int64_t)sizeof(PyObject *) - 64) {
        return VFAIL(v, off, CDS_OBJ_CODE, off + co.off_stacksize,
                     "co_stacksize %d, co_nlocalsplus %d: bad frame size",
                     co.stacksize, co.nlocalsplus);
    }
    /* init_code: the first RESUME (3.15: but a generator expression's
     * opening one); frames before it are incomplete.  The scan reads
     * units as {opcode byte, oparg byte}, the opcode first whatever the
     * byte order, and does not skip inline caches, as init_code (which
     * runs before quickening, on zeroed caches) does not.  Before the
     * entry only 3.15's opening RESUME has one, a counter whose low byte
     * is its backoff (6), not RESUME's opcode, under every setting short
     * of PYTHON_JIT_RESUME_INITIAL_BACKOFF=0: then a code object can be
     * refused here, never accepted wrongly */
    int entry = 0;
    for (; entry < n; entry++) {
        const uint8_t *unit = co.code + CODE_UNIT * (size_t)entry;
        if (unit[0] == RESUME &&
            (unit[1] & 7) != cds_layout_resume_not_entry) {
            break;
        }
    }
    if (co.firsttraceable != entry) {
        return VFAIL(v, off, CDS_OBJ_CODE, off + co.off_firsttraceable,
                     "_co_firsttraceable %d, first RESUME at %d",
                     co.firsttraceable, entry);
    }
    if (!ready) {
        v->deferred = true;
        v->map[off / 8] |= VM_DEFERRED;
        return 0;
    }
    return validate_code_refs(v, off);
}

/* Are the items of the tuple in code field `field` all str? */
static int
validate_names(const struct vseg *v, uint32_t off, unsigned field)
{
    uint32_t items, target = 0;
    unsigned ref;
    uint64_t n;

    ref_is(v, off + code_fields[field].off, CDS_OBJ_TUPLE, &ref, &target);
    if (ref == SC_EXT_TUPLE || (v->map[target / 8] & VM_STRS)) {
        return 0; /* (), or all pool (or interned, external) strings */
    }
    n = ref_tuple(v, ref, target, &items);
    for (uint64_t i = 0; i < n; i++) {
        uint32_t s = items + (uint32_t)(8 * i), t;
        if (!ref_is(v, s, CDS_OBJ_STR, &ref, &t)) {
            return VFAIL(v, off, CDS_OBJ_CODE, s,
                         "%s item %llu is not a str", code_fields[field].name,
                         (unsigned long long)i);
        }
    }
    return 0;
}

/* A code object against the objects it refers to (checked already): its
 * names, and the counts init_code derives from co_localspluskinds, which
 * the interpreter trusts when it sizes tuples and indexes frames (e.g.
 * _PyCode_GetFreevars fills co_nfreevars items by kind; super() indexes
 * from co_nlocals + co_nplaincellvars). */
static int
validate_code_refs(const struct vseg *v, uint32_t off)
{
    struct cds_code_view co;
    uint32_t names_slot = off + code_fields[FIELD_LPNAMES].off;
    uint32_t kinds_slot = off + code_fields[FIELD_LPKINDS].off;
    uint32_t items, target = 0;
    const uint8_t *kinds;
    uint8_t one;
    unsigned ref;
    int rc;

    cds_layout_code_view(v->seg + off, &co);
    if ((rc = validate_names(v, off, FIELD_NAMES)) < 0 ||
        (rc = validate_names(v, off, FIELD_LPNAMES)) < 0) {
        return rc;
    }
    ref_is(v, names_slot, CDS_OBJ_TUPLE, &ref, &target);
    uint64_t nnames = ref_tuple(v, ref, target, &items);
    ref_is(v, kinds_slot, CDS_OBJ_BYTES, &ref, &target);
    uint64_t nkinds = ref_bytes(v, ref, target, &kinds, &one);
    if (nnames != nkinds || nnames != (uint64_t)co.nlocalsplus) {
        return VFAIL(v, off, CDS_OBJ_CODE, off + co.off_nlocalsplus,
                     "co_nlocalsplus %d, %llu names, %llu kinds",
                     co.nlocalsplus, (unsigned long long)nnames,
                     (unsigned long long)nkinds);
    }
    /* get_localsplus_counts() */
    int nlocals = 0, nplaincellvars = 0, ncellvars = 0, nfreevars = 0;
    for (uint64_t i = 0; i < nkinds; i++) {
        /* the same counts without branches: a cell that is not a local
         * is a plain cell; free only counts when neither */
        int local = (kinds[i] & FAST_LOCAL) != 0;
        int cell = (kinds[i] & FAST_CELL) != 0;
        int free_ = (kinds[i] & FAST_FREE) != 0;
        nlocals += local;
        ncellvars += cell;
        nplaincellvars += cell & !local;
        nfreevars += free_ & !local & !cell;
    }
    /* a version without co_nplaincellvars (-1) has nothing to compare */
    if (co.nplaincellvars < 0) {
        nplaincellvars = -1;
    }
    if (co.nplaincellvars < 0 &&
        (co.nlocals != nlocals || co.ncellvars != ncellvars ||
         co.nfreevars != nfreevars)) {
        return VFAIL(v, off, CDS_OBJ_CODE, off + co.off_nlocals,
                     "co_nlocals %d, co_ncellvars %d, co_nfreevars %d; "
                     "co_localspluskinds say %d, %d, %d",
                     co.nlocals, co.ncellvars, co.nfreevars, nlocals,
                     ncellvars, nfreevars);
    }
    if (co.nlocals != nlocals || co.nplaincellvars != nplaincellvars ||
        co.ncellvars != ncellvars || co.nfreevars != nfreevars) {
        return VFAIL(v, off, CDS_OBJ_CODE, off + co.off_nlocals,
                     "co_nlocals %d, co_nplaincellvars %d, co_ncellvars %d, "
                     "co_nfreevars %d; co_localspluskinds say %d, %d, %d, %d",
                     co.nlocals, co.nplaincellvars, co.ncellvars,
                     co.nfreevars, nlocals, nplaincellvars, ncellvars,
                     nfreevars);
    }
    /* _PyCode_Validate: the arguments are locals (frames store them
     * there) */
    int64_t nargs = (int64_t)co.argcount + co.kwonlyargcount +
                    ((co.flags & CO_VARARGS) != 0) +
                    ((co.flags & CO_VARKEYWORDS) != 0);
    if (nargs > nlocals) {
        return VFAIL(v, off, CDS_OBJ_CODE, off + co.off_argcount,
                     "%lld arguments but %d locals", (long long)nargs,
                     nlocals);
    }
    return 0;
}

static int
validate_bytes(const struct vseg *v, uint32_t off, uint32_t extent)
{
    const uint32_t head = cds_layout_bytes_data;
    Py_ssize_t n = ((const PyVarObject *)(v->seg + off))->ob_size;
    Py_hash_t h;

    if (extent <= head || n < 0 || (uint64_t)n > extent - head - 1 ||
        ALIGN8(head + (uint64_t)n + 1) != extent) {
        return VFAIL(v, off, CDS_OBJ_BYTES, off + 16,
                     "ob_size %lld does not fill its %u bytes", (long long)n,
                     extent);
    }
    if (v->seg[off + head + (uint32_t)n] != 0) {
        return VFAIL(v, off, CDS_OBJ_BYTES, off + head + (uint32_t)n,
                     "no NUL after its %lld bytes", (long long)n);
    }
    /* inv. 4 */
    memcpy(&h, v->seg + off + cds_layout_bytes_hash, sizeof(h));
    if (h != -1) {
        return VFAIL(v, off, CDS_OBJ_BYTES, off + cds_layout_bytes_hash,
                     "ob_shash is not -1");
    }
    return 0;
}

static int
validate_int(const struct vseg *v, uint32_t off, uint32_t extent)
{
    struct cds_int_view iv;
    const char *why = cds_layout_int_view(v->seg + off, &iv);
    if (why != NULL) {
        return VFAIL(v, off, CDS_OBJ_INT, off + 16, "%s", why);
    }
    const uint32_t head = iv.head;
    int64_t size = iv.size;
    /* |size| without overflow at INT64_MIN */
    uint64_t n = size < 0 ? 0 - (uint64_t)size : (uint64_t)size;
    const uint8_t *d = v->seg + off + head;
    digit top = 0;

    /* 0 and the other small ints are the interpreter's (inv. 3) */
    if (size == 0 || extent < head || n > (extent - head) / sizeof(digit) ||
        ALIGN8(head + n * sizeof(digit)) != extent) {
        return VFAIL(v, off, CDS_OBJ_INT, off + 16,
                     "%s %lld does not fill its %u bytes", iv.size_name,
                     (long long)size, extent);
    }
    for (uint64_t i = 0; i < n; i++) {
        memcpy(&top, d + sizeof(digit) * i, sizeof(digit));
        if (top >= (digit)1 << PyLong_SHIFT) {
            return VFAIL(v, off, CDS_OBJ_INT,
                         off + head + (uint32_t)(sizeof(digit) * i),
                         "digit %llu is 0x%x, not below 2^%d",
                         (unsigned long long)i, (unsigned)top, PyLong_SHIFT);
        }
    }
    /* normalized (long_normalize), and not a small int */
    if (top == 0 ||
        (n == 1 && (size < 0 ? top <= -cds_layout_small_int_min
                             : top <= cds_layout_small_int_max))) {
        return VFAIL(v, off, CDS_OBJ_INT, off + 16,
                     "top digit 0x%x of %llu: not a normalized big int",
                     (unsigned)top, (unsigned long long)n);
    }
    return 0;
}

static int
validate_tuple(struct vseg *v, uint32_t off, uint32_t extent)
{
    const uint32_t head = cds_layout_tuple_items;
    Py_ssize_t n = ((const PyVarObject *)(v->seg + off))->ob_size;
    uint64_t gc[2];

    /* inv. 2 (S2 left room for the head) */
    memcpy(gc, v->seg + off - CDS_GC_HEAD, sizeof(gc));
    if (gc[0] != 0 || gc[1] != 0) {
        return VFAIL(v, off, CDS_OBJ_TUPLE, off - CDS_GC_HEAD,
                     "GC head is not zero");
    }
    /* () is the interpreter's, but an empty frozenset's items (format.md
     * 5.1.6) */
    if (n < 0 || (n == 0 && !(v->map[off / 8] & VM_FROZEN)) ||
        extent < head || (uint64_t)n > (extent - head) / sizeof(PyObject *) ||
        head + (uint64_t)n * sizeof(PyObject *) != extent) {
        return VFAIL(v, off, CDS_OBJ_TUPLE, off + 16,
                     "ob_size %lld does not fill its %u bytes",
                     (long long)n, extent);
    }
    uint32_t at;
    const char *why = cds_layout_check_tuple(v->seg + off, &at);
    if (why != NULL) {
        return VFAIL(v, off, CDS_OBJ_TUPLE, off + at, "%s", why);
    }
    /* per slot class: 1 unlisted, 2 not a str that needs no pointer
     * followed (names, nearly all the tuples here, are pool strings) */
    static const uint8_t item_flags[16] = {
        [SC_NONE] = 3,        [SC_RELOC] = 2,
        [SC_SHARED] = 0,      [SC_EXT_TUPLE] = 2,  [SC_EXT_NOBYTES] = 2,
        [SC_EXT_STR] = 0,     [SC_EXT_OTHER] = 2,  [SC_EXT_BYTE] = 2,
        [SC_EXT_BYTE + 1] = 2, [SC_EXT_BYTE + 2] = 2, [SC_EXT_BYTE + 3] = 2,
        [SC_EXT_BYTE + 4] = 2, [SC_EXT_BYTE + 5] = 2, [SC_EXT_BYTE + 6] = 2,
        [SC_EXT_BYTE + 7] = 2,
    };
    const uint16_t *units = v->map + (off + head) / 8;
    unsigned flags = 0;
    for (uint32_t i = 0; i < (uint32_t)n; i++) {
        flags |= item_flags[VM_CLASS(units[i])];
    }
    if (!(flags & 2)) {
        v->map[off / 8] |= VM_STRS;
    }
    unsigned unlisted = flags & 1;
    for (uint32_t i = 0; unlisted && i < (uint32_t)n; i++) {
        uint32_t slot = off + head + 8 * i;
        if ((units[i] & VM_LISTED) == 0) {
            return VFAIL(v, off, CDS_OBJ_TUPLE, slot,
                         "item %u at 0x%x is not a listed pointer", i, slot);
        }
    }
    v->nfields += (uint64_t)n;
    return 0;
}

/* A slice (format.md 5.1.8): a zeroed GC head, its size, and three
 * pointer fields, each a listed slot of any kind (marshal's TYPE_SLICE
 * reads any object for start, stop and step). */
static int
validate_slice(struct vseg *v, uint32_t off, uint32_t extent)
{
    uint64_t gc[2];

    memcpy(gc, v->seg + off - CDS_GC_HEAD, sizeof(gc));
    if (gc[0] != 0 || gc[1] != 0) {
        return VFAIL(v, off, CDS_OBJ_SLICE, off - CDS_GC_HEAD,
                     "GC head is not zero");
    }
    if (extent != ALIGN8(cds_layout_size(NULL, CDS_OBJ_SLICE, 0))) {
        return VFAIL(v, off, CDS_OBJ_SLICE, off, "%u bytes, not its size",
                     extent);
    }
    for (int f = 0; f < 3; f++) {
        uint32_t slot = off + cds_layout_slice_fields[f];
        if ((v->map[slot / 8] & VM_LISTED) == 0) {
            return VFAIL(v, off, CDS_OBJ_SLICE, slot,
                         "field %d at 0x%x is not a listed pointer", f, slot);
        }
    }
    v->nfields += 3;
    return 0;
}

/* Is slot one of the pointer fields of the object that holds it? */
static bool
is_field(const struct vseg *v, uint32_t slot)
{
    uint32_t i = find_object(v, slot);
    uint32_t off = CDS_OBJ_OFFSET(v->objtab[i]), rel = slot - off;

    switch (CDS_OBJ_KIND(v->objtab[i])) {
    case CDS_OBJ_CODE:
        for (size_t f = 0; f < NCODE_FIELDS; f++) {
            if (rel == code_fields[f].off) {
                return true;
            }
        }
        return false;
    case CDS_OBJ_TUPLE:
        /* the first pass bounded ob_size by the extent */
        return slot >= off && rel >= cds_layout_tuple_items &&
               (rel - cds_layout_tuple_items) / 8 <
                   (uint64_t)((const PyVarObject *)(v->seg + off))->ob_size;
    case CDS_OBJ_SLICE:
        for (int f = 0; f < 3; f++) {
            if (slot >= off && rel == cds_layout_slice_fields[f]) {
                return true;
            }
        }
        return false;
    }
    return false;
}

/* More slots are listed than there are pointer fields: name one that is
 * no field (a tuple's ob_size too small, a slot in a str's data...).
 * Only on failure, so a search per slot is fine. */
static int
find_stray(const struct vseg *v, const struct cds_disk_module *m)
{
    static const char *const names[] = {"relocation", "external",
                                        "pool reference"};
    const uint32_t offs[] = {m->reloc_off, m->ext_off, m->shared_off};
    const uint32_t counts[] = {m->nreloc, m->next, m->nshared};

    for (unsigned l = 0; l < 3; l++) {
        /* u32 slots, or {u32 slot; u32 index} pairs */
        uint32_t stride = l < 1 ? 4 : 8;
        for (uint32_t i = 0; i < counts[l]; i++) {
            uint32_t slot;
            memcpy(&slot, v->seg + offs[l] + (size_t)stride * i, 4);
            if (!is_field(v, slot)) {
                return stray_slot(v, slot, names[l]);
            }
        }
    }
    return CDS_CORRUPT(v->err, v->seg_offset,
                       "module %s: %llu pointer fields for %llu listed "
                       "slots",
                       v->name, (unsigned long long)v->nfields,
                       (unsigned long long)m->nreloc + m->next + m->nshared);
}

int
cds_heap_validate(const cds_archive *a, uint32_t index, cds_slot_map *map,
                  cds_error *err)
{
    const struct cds_disk_module *m = &a->modules[index];
    struct vseg v;
    int rc = 0;

    v.name = cds_module_name(a, index);
    v.seg = cds_segment_mem(a, index);
    v.seg_offset = m->seg_offset;
    v.base = a->header->base_address + m->seg_offset;
    v.size = m->objects_size;
    v.objtab = (const void *)(v.seg + m->objtab_off);
    v.nobjects = m->nobjects;
    v.nfields = 0;
    v.deferred = false;
    v.version_base = a->header->code_version_base;
    v.version_count = a->header->code_version_count;
    v.err = err;
    /* the map of this very segment, as cds_segment_validate_map left it */
    if (v.size < 24 || v.nobjects == 0 || map == NULL || map->units == NULL ||
        map->objects_size != m->objects_size) {
        return CDS_CORRUPT(err, m->seg_offset,
                           "module %s: segment not validated", v.name);
    }
    v.map = map->units;
    if ((rc = check_heads(&v)) < 0) {
        return rc;
    }
    /* Backwards: as written, what a code object refers to comes after it
     * (format.md 5), so it is checked, and still in the cache, when the
     * code object's cross-checks run */
    for (uint32_t i = v.nobjects; i-- > 0 && rc == 0;) {
        uint32_t off = CDS_OBJ_OFFSET(v.objtab[i]);
        unsigned kind = CDS_OBJ_KIND(v.objtab[i]);
        uint32_t extent = object_extent(&v, i);
        Py_ssize_t refcnt;
        /* inv. 1: the object's first word (3.14 on: ob_flags too) */
        memcpy(&refcnt, v.seg + off, sizeof(refcnt));
        if (refcnt != cds_layout_refcnt) {
            rc = VFAIL(&v, off, kind, off, "reference count 0x%llx, not %s",
                       (unsigned long long)refcnt, cds_layout_refcnt_name);
            break;
        }
        switch (kind) {
        case CDS_OBJ_CODE:
            rc = validate_code(&v, off, extent);
            break;
        case CDS_OBJ_STR: {
            const char *why = check_str_image(v.seg + off, extent);
            if (why != NULL) {
                rc = VFAIL(&v, off, kind, off, "not a valid str: %s", why);
            }
            break;
        }
        case CDS_OBJ_BYTES:
            rc = validate_bytes(&v, off, extent);
            break;
        case CDS_OBJ_INT:
            rc = validate_int(&v, off, extent);
            break;
        case CDS_OBJ_FLOAT:
        case CDS_OBJ_COMPLEX:
            if (extent != ALIGN8(cds_layout_size(NULL, kind, 0))) {
                rc = VFAIL(&v, off, kind, off, "%u bytes, not its size",
                           extent);
            }
            break;
        case CDS_OBJ_TUPLE:
            rc = validate_tuple(&v, off, extent);
            break;
        case CDS_OBJ_SLICE:
            rc = validate_slice(&v, off, extent);
            break;
        }
    }
    /* another order (as written, the load-only region's bodies, which
     * name what comes before them): a second pass over those deferred,
     * once everything is checked */
    for (uint32_t i = 0; v.deferred && i < v.nobjects && rc == 0; i++) {
        if (CDS_OBJ_KIND(v.objtab[i]) == CDS_OBJ_CODE &&
            (v.map[CDS_OBJ_OFFSET(v.objtab[i]) / 8] & VM_DEFERRED)) {
            rc = validate_code_refs(&v, CDS_OBJ_OFFSET(v.objtab[i]));
        }
    }
    /* every field was a listed slot, so equal counts mean every listed
     * slot is a field: nothing else (a header, str data) gets patched */
    if (rc == 0 && v.nfields != (uint64_t)m->nreloc + m->next +
                                    m->nshared) {
        rc = find_stray(&v, m);
    }
    return rc;
}

/* Where a segment's objects are: at seg, but those of [lo, hi) at the
 * image's address (copy mode's bytes objects left with the file,
 * format.md 8, step 5). */
struct place {
    uint8_t *seg, *image;
    uint32_t lo, hi;
};

static inline uint8_t *
place_at(const struct place *pl, uint32_t off)
{
    return (off >= pl->lo && off < pl->hi ? pl->image : pl->seg) + off;
}

struct frozen_slot {
    PyObject *items; /* the tuple the slot points to */
    uint32_t slot;
};

static int
cmp_frozen_desc(const void *x, const void *y)
{
    uintptr_t a = (uintptr_t)((const struct frozen_slot *)x)->items;
    uintptr_t b = (uintptr_t)((const struct frozen_slot *)y)->items;
    return a < b ? 1 : a > b ? -1 : 0;
}

static int
build_frozensets(uint8_t *seg, const struct cds_disk_module *m,
                 const char *name, cds_error *err)
{
    const uint32_t *frozen = (const void *)(seg + m->frozen_off);
    struct frozen_slot *fs = calloc(m->nfrozen, sizeof(*fs));
    PyObject *prev_items = NULL, *prev = NULL;
    int rc = 0;

    if (fs == NULL) {
        return CDS_FAIL(err, CDS_ENOMEM, UINT64_MAX, "out of memory");
    }
    for (uint32_t i = 0; i < m->nfrozen; i++) {
        memcpy(&fs[i].items, seg + frozen[i], sizeof(PyObject *));
        fs[i].slot = frozen[i];
        if ((rc = check_object(fs[i].items, &PyTuple_Type, "frozenset items",
                               name, err)) < 0) {
            goto out;
        }
    }
    qsort(fs, m->nfrozen, sizeof(*fs), cmp_frozen_desc);
    for (uint32_t i = 0; i < m->nfrozen; i++) {
        PyObject *f = prev;
        if (fs[i].items != prev_items) {
            f = PyFrozenSet_New(fs[i].items);
            if (f == NULL) {
                PyErr_Clear();
                rc = CDS_FAIL(err, CDS_ENOMEM, UINT64_MAX,
                              "module %s: cannot build a frozenset", name);
                goto out;
            }
            prev_items = fs[i].items;
            prev = f;
        }
        else {
            Py_INCREF(f);
        }
        /* the slot owns a reference; archived containers are never
         * freed */
        memcpy(seg + fs[i].slot, &f, sizeof(f));
    }
out:
    free(fs);
    return rc;
}

struct cds_heap_phases cds_heap_phases;

static uint64_t
now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* The end of what the last cds_heap_load wrote in its object region
 * (segment offset): nothing from there on differs from the file; and the
 * same below the load-only region (copy_off), for when it was copied. */
static uint32_t last_written_end, last_written_live;

struct written {
    uint32_t end, live, copy_off;
};

static inline void
wrote(struct written *w, uint32_t off, uint32_t len)
{
    if (off + len > w->end) {
        w->end = off + len;
    }
    if (off < w->copy_off && off + len > w->live) {
        w->live = off + len;
    }
}

static int load_at(cds_archive *a, uint32_t index, const struct place *pl,
                   PyObject **code, cds_error *err);

int
cds_heap_load(cds_archive *a, uint32_t index, PyObject **code,
              cds_error *err)
{
    struct place pl = {cds_segment_mem(a, index), NULL, 0, 0};
    return load_at(a, index, &pl, code, err);
}

static int
load_at(cds_archive *a, uint32_t index, const struct place *pl,
        PyObject **code, cds_error *err)
{
    uint64_t t0 = now_ns(), t1, t2, t3;
    const struct cds_disk_module *m = &a->modules[index];
    struct written written = {0, 0, m->copy_off};
    uint8_t *seg = pl->seg;
    const char *name = cds_module_name(a, index);
    int rc;

    *code = NULL;
    /* 0. the process's state for this archive; the code versions (3.13),
     * the last check before anything is written */
    if ((rc = load_state(a, err)) < 0 ||
        (rc = claim_versions(a, index, err)) < 0) {
        return rc;
    }
    /* 1. internal pointers: nothing at all where the block is where the
     * writer put it; else each to where its target is (one uniform delta
     * but for copy mode's bytes objects left in the image) */
    const uint64_t wbase = a->header->base_address + m->seg_offset;
    if ((uintptr_t)seg != wbase) {
        written.end = m->objects_size; /* every reloc slot */
        written.live = m->copy_off;
        const uint32_t *reloc = (const void *)(seg + m->reloc_off);
        for (uint32_t i = 0; i < m->nreloc; i++) {
            uint32_t slot = reloc[i];
            uint64_t v;
            memcpy(&v, seg + slot, 8);
            /* S3: the writer's address of an object of the segment */
            v = (uint64_t)(uintptr_t)place_at(pl, (uint32_t)(v - wbase));
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
            wrote(&written, off, 16);
        }
        if (CDS_OBJ_KIND(objtab[i]) == CDS_OBJ_STR) {
            uint32_t next = i + 1 < m->nobjects
                                ? CDS_OBJ_OFFSET(objtab[i + 1])
                                : m->objects_size;
            cds_layout_str_loaded(seg + off, next - off);
            if (cds_layout_refcounts_written) {
                /* 3.11's hook may write a UCS-4 string's wstr view */
                wrote(&written, off, next - off);
            }
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
            wrote(&written, ext[i].slot, 8);
        }
    }
    t1 = now_ns();
    /* 4. pool strings (inv. 6): interned once per process, before
     * anything hashes or runs, then shared by every segment that refers
     * to them (format.md 5.5).  Two passes: resolving reads only the
     * reference table and the pool, the slot pass only the table and the
     * segment, so each streams through less memory */
    const struct cds_disk_shared *sh = (const void *)(seg + m->shared_off);
    for (uint32_t i = 0; i < m->nshared; i++) {
        /* most slots name a string resolved already (step 0 made the
         * state this archive's; S6 checked the index) */
        if (pool_state.resolved[sh[i].index] == NULL &&
            pool_resolve(a, sh[i].index, err) == NULL) {
            return err->status;
        }
    }
    t2 = now_ns();
    for (uint32_t i = 0; i < m->nshared; i++) {
        PyObject *t = pool_state.resolved[sh[i].index], *have;
        /* the file holds the writer's guess: mostly right, and then the
         * page stays the file's */
        memcpy(&have, seg + sh[i].slot, sizeof(have));
        if (have != t) {
            memcpy(seg + sh[i].slot, &t, sizeof(t));
            wrote(&written, sh[i].slot, 8);
        }
    }
    t3 = now_ns();
    cds_heap_phases.patch += t1 - t0;
    cds_heap_phases.intern += t2 - t1;
    cds_heap_phases.refs += t3 - t2;
    /* 5. frozensets from their item tuples (inv. 7).  A frozenset's items
     * tuple lies before the items tuples of the frozensets inside it (the
     * writer lays tuples out in visit order), so building by descending
     * tuple address builds nested ones innermost first; slots that share
     * a tuple (one frozenset, referred to twice) share the frozenset */
    if (m->nfrozen > 0 &&
        (rc = build_frozensets(seg, m, name, err)) < 0) {
        return rc;
    }
    const uint32_t *frozen = (const void *)(seg + m->frozen_off);
    for (uint32_t i = 0; i < m->nfrozen; i++) {
        wrote(&written, frozen[i], 8);
    }
    /* 6. the version's per-interpreter state of code objects */
    for (uint32_t i = 0; i < m->nobjects; i++) {
        if (CDS_OBJ_KIND(objtab[i]) == CDS_OBJ_CODE) {
            cds_layout_code_loaded(
                (PyObject *)(seg + CDS_OBJ_OFFSET(objtab[i])),
                pool_state.versions_reserved);
            if (cds_layout_code_version_off != 0 &&
                !pool_state.versions_reserved) {
                wrote(&written, CDS_OBJ_OFFSET(objtab[i]),
                      cds_layout_code_version_off + 4);
            }
        }
    }
    PyObject *root = (PyObject *)(seg + m->root_off);
    cds_heap_phases.patch += now_ns() - t3;
    if ((rc = check_object(root, &PyCode_Type, "root", name, err)) < 0) {
        return rc;
    }
    Py_INCREF(root);
    *code = root;
    last_written_end = written.end;
    last_written_live = written.live;
    return 0;
}

/* A segment's load-only region (format.md 5), [lo, hi) in memory, and
 * where to report on it. */
struct lonly {
    const uint8_t *lo, *hi;
    const char *name;
    cds_error *err;
    /* objects used at [ilo, ihi) that the block read in holds too, at
     * the same offset from seg (copy mode's bytes left in the image) */
    const uint8_t *ilo, *ihi, *seg;
};

/* o, or its twin in the block read in: what is only read of it is read
 * there, so that no page of the file is faulted in for it */
static inline PyObject *
twin(const struct lonly *r, PyObject *o)
{
    const uint8_t *p = (const uint8_t *)o;
    return p >= r->ilo && p < r->ihi ? (PyObject *)(r->seg + (p - r->ilo))
                                     : o;
}

static inline bool
load_only(const struct lonly *r, const void *p)
{
    return (const uint8_t *)p >= r->lo && (const uint8_t *)p < r->hi;
}

static PyObject *copy_body(const struct lonly *r, PyObject *code,
                           int depth);

/* A heap copy of the tuple t of the load-only region whose items lie
 * outside it (a body's names). */
static PyObject *
copy_tuple(const struct lonly *r, PyObject *t)
{
    Py_ssize_t n = PyTuple_GET_SIZE(t);

    for (Py_ssize_t i = 0; i < n; i++) {
        if (load_only(r, PyTuple_GET_ITEM(t, i))) {
            CDS_CORRUPT(r->err, UINT64_MAX,
                        "module %s: a body's names lie in the load-only "
                        "region",
                        r->name);
            return NULL;
        }
    }
    PyObject *c = PyTuple_New(n);
    for (Py_ssize_t i = 0; c != NULL && i < n; i++) {
        PyTuple_SET_ITEM(c, i, Py_NewRef(PyTuple_GET_ITEM(t, i)));
    }
    if (c == NULL) {
        PyErr_Clear();
        CDS_FAIL(r->err, CDS_ENOMEM, UINT64_MAX, "out of memory");
    }
    return c;
}

/* A heap copy of the co_consts tuple t of a body being copied: the
 * bodies in it copied too, every other item shared. */
static PyObject *
copy_consts(const struct lonly *r, PyObject *t, int depth)
{
    Py_ssize_t n = PyTuple_GET_SIZE(t);
    PyObject *c = PyTuple_New(n);

    if (c == NULL) {
        PyErr_Clear();
        CDS_FAIL(r->err, CDS_ENOMEM, UINT64_MAX, "out of memory");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyTuple_GET_ITEM(t, i);
        if (load_only(r, item)) {
            item = PyCode_Check(item)
                       ? copy_body(r, item, depth + 1)
                       : NULL;
            if (item == NULL) {
                if (r->err->status == 0) {
                    CDS_CORRUPT(r->err, UINT64_MAX,
                                "module %s: a constant of the load-only "
                                "region is not a code object",
                                r->name);
                }
                Py_DECREF(c);
                return NULL;
            }
        }
        else {
            Py_INCREF(item);
        }
        PyTuple_SET_ITEM(c, i, item);
    }
    return c;
}

/* A heap copy of the archived body code (format.md 8, step 6), loaded and
 * not yet run: a new code object of the same size with its bytes, which
 * are as a fresh code object's (6.7), and a reference to each object its
 * fields name, but a copy of its co_consts when that lies in the
 * load-only region, with the bodies there copied likewise.  The copy is
 * mortal: the interpreter frees it once the body has run, as it frees
 * the code it unmarshals. */
static PyObject *
copy_body(const struct lonly *r, PyObject *code, int depth)
{
    Py_ssize_t n = Py_SIZE(code);
    size_t head = sizeof(PyVarObject);
    size_t size = (size_t)PyCode_Type.tp_basicsize +
                  (size_t)n * (size_t)PyCode_Type.tp_itemsize;

    if (depth >= CDS_COPY_DEPTH) {
        CDS_CORRUPT(r->err, UINT64_MAX,
                    "module %s: bodies nested over %d deep in the load-only "
                    "region",
                    r->name, CDS_COPY_DEPTH);
        return NULL;
    }
    PyObject *copy = (PyObject *)PyObject_NewVar(PyCodeObject, &PyCode_Type,
                                                 n);
    if (copy == NULL) {
        PyErr_Clear();
        CDS_FAIL(r->err, CDS_ENOMEM, UINT64_MAX, "out of memory");
        return NULL;
    }
    memcpy((char *)copy + head, (const char *)code + head, size - head);
    /* no field names anything until it holds its own reference: a
     * failure part way frees the copy as the interpreter would */
    for (size_t i = 0; i < cds_layout_code_nfields; i++) {
        memset((char *)copy + cds_layout_code_fields[i].off, 0,
               sizeof(PyObject *));
    }
    for (size_t i = 0; i < cds_layout_code_nfields; i++) {
        uint32_t at = cds_layout_code_fields[i].off;
        PyObject *f;
        memcpy(&f, (const char *)code + at, sizeof(f));
        bool own = load_only(r, f);
        if (own && at == offsetof(PyCodeObject, co_consts)) {
            f = copy_consts(r, f, depth);
        }
        else if (own && PyTuple_CheckExact(f)) {
            /* names of this body alone: a tuple of its own */
            f = copy_tuple(r, f);
        }
        else if (PyBytes_CheckExact(twin(r, f)) &&
                 (own || (cds_layout_refcounts_written &&
                          PyBytes_GET_SIZE(twin(r, f)) > 1))) {
            /* a line or exception table of this body alone; on 3.11
             * any, whose count a reference would write: one of its own
             * leaves the archive's bytes pages the file's (format.md 8,
             * step 2) */
            PyObject *t = twin(r, f);
            f = PyBytes_FromStringAndSize(PyBytes_AS_STRING(t),
                                          PyBytes_GET_SIZE(t));
            if (f == NULL) {
                PyErr_Clear();
                CDS_FAIL(r->err, CDS_ENOMEM, UINT64_MAX, "out of memory");
            }
        }
        else if (!own) {
            Py_INCREF(f);
        }
        else {
            CDS_CORRUPT(r->err, UINT64_MAX,
                        "module %s: a body's %s lies in the load-only "
                        "region",
                        r->name, cds_layout_code_fields[i].name);
            f = NULL;
        }
        if (f == NULL) {
            Py_DECREF(copy);
            return NULL;
        }
        memcpy((char *)copy + at, &f, sizeof(f));
    }
    return copy;
}

static int copy_root_at(cds_archive *a, uint32_t index,
                        const struct place *pl, PyObject **code,
                        cds_error *err);

int
cds_heap_copy_root(cds_archive *a, uint32_t index, PyObject **code,
                   cds_error *err)
{
    struct place pl = {cds_segment_mem(a, index), NULL, 0, 0};
    return copy_root_at(a, index, &pl, code, err);
}

static int
copy_root_at(cds_archive *a, uint32_t index, const struct place *pl,
             PyObject **code, cds_error *err)
{
    const struct cds_disk_module *m = &a->modules[index];
    uint8_t *seg = pl->seg;
    struct lonly r = {seg + m->copy_off, seg + m->objects_size,
                      cds_module_name(a, index), err,
                      pl->hi > pl->lo ? pl->image + pl->lo : NULL,
                      pl->hi > pl->lo ? pl->image + pl->hi : NULL,
                      seg + pl->lo};
    uint64_t t0 = now_ns();

    if (!load_only(&r, *code)) {
        return 0;
    }
    err->status = 0;
    PyObject *copy = copy_body(&r, *code, 0);
    if (copy == NULL) {
        cds_heap_phases.copy += now_ns() - t0;
        return err->status;
    }
    /* the region's frozenset slots own a reference each (step 5): the
     * copies hold their own */
    const uint32_t *frozen = (const void *)(seg + m->frozen_off);
    for (uint32_t i = 0; i < m->nfrozen; i++) {
        if (frozen[i] >= m->copy_off) {
            PyObject *f;
            memcpy(&f, seg + frozen[i], sizeof(f));
            memset(seg + frozen[i], 0, sizeof(f));
            Py_DECREF(f);
        }
    }
    Py_DECREF(*code); /* the archived root: 2^40 or immortal */
    *code = copy;
    cds_heap_phases.copy += now_ns() - t0;
    return 1;
}

/* Are the type objects not where module index's objects name them (a
 * PIE interpreter: every ob_type is patched)?  Judged by the root's,
 * unchecked yet but only a guess here. */
static bool
types_moved(const cds_archive *a, uint32_t index)
{
    const struct cds_disk_module *m = &a->modules[index];
    PyTypeObject *have;

    memcpy(&have, a->data + m->seg_offset + m->root_off +
                      offsetof(PyObject, ob_type),
           sizeof(have));
    return have != &PyCode_Type;
}

/* How much of module index's block loading and running will write
 * (cds_segment_prefault): all of it where the interpreter writes
 * reference counts, where the archive is relocated, or where the type
 * objects moved (types_moved); otherwise what the
 * writer put first for being written (format.md 5). */
static bool
segment_written(const cds_archive *a, uint32_t index)
{
    return cds_layout_refcounts_written || a->delta != 0 ||
           types_moved(a, index);
}

bool
cds_heap_writes_every_page(const cds_archive *a)
{
    return a->header->nmodules != 0 && segment_written(a, 0);
}

bool
cds_heap_bytes_stay_clean(const cds_archive *a)
{
    /* the types where the writer saw them: no ob_type is patched, and
     * nothing loading does writes a bytes object (3.11's reference counts
     * are written only where a reference is taken, which reading a line
     * or exception table does not) */
    return a->header->nmodules != 0 && a->delta == 0 && !types_moved(a, 0);
}

static uint64_t
write_end(const cds_archive *a, uint32_t index, int prefault)
{
    const struct cds_disk_module *m = &a->modules[index];

    return prefault == CDS_PREFAULT_ALL || segment_written(a, index)
               ? m->seg_size
               : m->write_size;
}

int
cds_heap_segment_use(cds_archive *a, uint32_t index, int prefault,
                     PyObject **code, cds_error *err)
{
    cds_slot_map map = {NULL, 0};
    int rc = 0;
    uint64_t t0 = now_ns(), t1, t2, t3;

    *code = NULL;
    if ((rc = cds_segment_unguard(a, index, err)) < 0) {
        return rc;
    }
    if (a->fetched != NULL) {
        /* copy mode: the segment must be read in, whatever prefault says */
        rc = cds_segment_prefault(a, index, a->modules[index].seg_size, err);
    }
    else if (prefault != CDS_PREFAULT_NONE) {
        rc = cds_segment_prefault(a, index, write_end(a, index, prefault),
                                  err);
    }
    t1 = now_ns();
    if (rc == 0) {
        rc = cds_segment_validate_map(a, index, &map, err);
    }
    t2 = now_ns();
    /* object bodies: what marshal and _PyCode_New could have built */
    if (rc == 0) {
        rc = cds_heap_validate(a, index, &map, err);
    }
    t3 = now_ns();
    cds_heap_phases.fetch += t1 - t0;
    cds_heap_phases.check += t2 - t1;
    cds_heap_phases.validate += t3 - t2;
    cds_slot_map_free(&map);
    /* where the block is, and in copy mode with map_bytes, which of its
     * bytes objects are used at the image's address: those before the
     * load-only region, from the file (format.md 8, step 5) */
    const struct cds_disk_module *m = &a->modules[index];
    struct place pl = {cds_segment_mem(a, index), a->data + m->seg_offset,
                       0, 0};
    bool copy_mode = a->fetched != NULL && pl.seg != pl.image;
    if (rc == 0 && copy_mode && a->map_bytes) {
        uint64_t tb = now_ns();
        pl.lo = cds_segment_bytes_to_file(a, index);
        cds_heap_phases.release += now_ns() - tb;
        pl.hi = pl.lo < m->copy_off ? m->copy_off : 0;
    }
    bool touched = rc == 0;
    if (rc == 0) {
        rc = load_at(a, index, &pl, code, err);
    }
    /* before copying, which may collect garbage, run finalizers and so
     * load another segment */
    uint32_t w_end = last_written_end, w_live = last_written_live;
    /* the bodies handed out as heap copies: the load-only region is
     * dead from here on (format.md 8, step 6) */
    int copied = rc == 0 ? copy_root_at(a, index, &pl, code, err) : 0;
    if (copied < 0) {
        Py_CLEAR(*code);
        rc = copied;
    }
    uint64_t t4 = now_ns();
    uint32_t dead = copied ? m->copy_off : m->objects_size;
    uint32_t written = copied ? w_live : w_end;
    if (copy_mode) {
        /* what is kept stays where it was read in; the rest is the next
         * segment's to be read into.  Refused before loading: nothing;
         * failed while loading: all, since objects made meanwhile
         * (frozensets) may point into it */
        uint32_t keep = !touched    ? 0
                        : rc < 0    ? m->seg_size
                        : !copied   ? m->objects_size
                        : pl.hi > 0 ? pl.lo
                                    : m->copy_off;
        cds_archive_arena_keep(a, pl.seg, m->seg_size, keep);
    }
    else if (rc == 0 && !cds_layout_refcounts_written &&
             prefault != CDS_PREFAULT_ALL) {
        /* the file mapped (3.12 on): the bytes objects at the end were
         * read by validation, are rarely read again (tracebacks, tracing,
         * exceptions in their code), and not written unless a reference
         * is taken to one: they leave the resident set, and come back
         * from the page cache if needed */
        uint32_t from = cds_segment_bytes_start(a, index, dead);
        cds_segment_release_from(a, index, from > written ? from : written,
                                 dead);
    }
    else if (rc == 0) {
        cds_segment_release_from(a, index, dead, dead);
    }
    cds_heap_phases.release += now_ns() - t4;
    return rc < 0 ? rc : copied;
}
