/* SPDX-License-Identifier: MIT */
/* The object kinds every supported version lays out alike (3.11-3.15):
 * the object head, bytes, float, complex and tuple (whose hash cache
 * 3.14 adds), and the size of a compact str (its head sizes come from
 * the version's headers).  Static
 * functions for the one layout_3XX.c a build compiles (through
 * layout_immortal.h for 3.12 on); a version that changes one of these
 * kinds takes it out of here. */
#ifndef CDS_LAYOUT_KINDS_H
#define CDS_LAYOUT_KINDS_H

#include "layout.h"

#include <stdbool.h>
#include <string.h>

/* PyBytesObject.ob_shash is deprecated (but still the hash cache, right
 * before ob_sval): name its offset without touching the field. */
#define BYTES_SHASH_OFF (offsetof(PyBytesObject, ob_sval) - sizeof(Py_hash_t))

/* No ob_size: float, complex, str (and int from 3.12). */
#define NOT_VAR PY_SSIZE_T_MIN

/* The common object head: the version's reference count (inv. 1), this
 * process's type (loading rewrites it only if it moved: format.md 5.1),
 * and ob_size unless size is NOT_VAR (3.11's int ob_size is negative for
 * negative values). */
static void
emit_head(uint8_t *p, PyTypeObject *type, Py_ssize_t size)
{
    memcpy(p + offsetof(PyObject, ob_refcnt), &cds_layout_refcnt,
           sizeof(Py_ssize_t));
    memcpy(p + offsetof(PyObject, ob_type), &type, sizeof(type));
    if (size != NOT_VAR) {
        memcpy(p + offsetof(PyVarObject, ob_size), &size, sizeof(size));
    }
}

/* LAYOUT_TUPLE_HASH (3.14 on): a tuple caches its hash in ob_hash,
 * between ob_size and the items, -1 until first hashed. */
void
cds_layout_emit_tuple(uint8_t *p, Py_ssize_t n)
{
#ifdef LAYOUT_TUPLE_HASH
    Py_hash_t h = -1; /* inv. 4 */
    memcpy(p + offsetof(PyTupleObject, ob_hash), &h, sizeof(h));
#endif
    emit_head(p, &PyTuple_Type, n);
}

const char *
cds_layout_check_tuple(const uint8_t *p, uint32_t *at)
{
#ifdef LAYOUT_TUPLE_HASH
    Py_hash_t h;
    memcpy(&h, p + offsetof(PyTupleObject, ob_hash), sizeof(h));
    if (h != -1) {
        *at = offsetof(PyTupleObject, ob_hash);
        return "hash is not -1";
    }
#else
    (void)p;
    (void)at;
#endif
    return NULL;
}

/* Bytes of the image of a str, bytes, float, complex, tuple (nitems
 * items) or slice; 0 for another kind. */
static uint64_t
size_plain(PyObject *o, unsigned kind, Py_ssize_t nitems)
{
    switch (kind) {
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
    case CDS_OBJ_FLOAT:
        return sizeof(PyFloatObject);
    case CDS_OBJ_COMPLEX:
        return sizeof(PyComplexObject);
    case CDS_OBJ_TUPLE:
        return offsetof(PyTupleObject, ob_item) +
               (uint64_t)nitems * sizeof(PyObject *);
    case CDS_OBJ_SLICE:
        return sizeof(PySliceObject);
    }
    return 0;
}

/* Write the image of a bytes, float, complex or slice object; false for
 * another kind. */
static bool
emit_plain(uint8_t *p, PyObject *o, unsigned kind)
{
    switch (kind) {
    case CDS_OBJ_BYTES: {
        Py_hash_t h = -1; /* inv. 4 */
        memcpy(p + BYTES_SHASH_OFF, &h, sizeof(h));
        memcpy(p + offsetof(PyBytesObject, ob_sval), PyBytes_AS_STRING(o),
               (size_t)PyBytes_GET_SIZE(o));
        emit_head(p, &PyBytes_Type, PyBytes_GET_SIZE(o));
        return true;
    }
    case CDS_OBJ_FLOAT:
        memcpy(p + offsetof(PyFloatObject, ob_fval),
               &((PyFloatObject *)o)->ob_fval, sizeof(double));
        emit_head(p, &PyFloat_Type, NOT_VAR);
        return true;
    case CDS_OBJ_COMPLEX:
        memcpy(p + offsetof(PyComplexObject, cval),
               &((PyComplexObject *)o)->cval, sizeof(Py_complex));
        emit_head(p, &PyComplex_Type, NOT_VAR);
        return true;
    case CDS_OBJ_SLICE: /* fields: the caller's */
        emit_head(p, &PySlice_Type, NOT_VAR);
        return true;
    }
    return false;
}

/* A slice's start, stop and step fields, in that order. */
const uint32_t cds_layout_slice_fields[3] = {
    offsetof(PySliceObject, start),
    offsetof(PySliceObject, stop),
    offsetof(PySliceObject, step),
};
static_assert(sizeof(PySliceObject) == 40 &&
                  offsetof(PySliceObject, start) == 16 &&
                  offsetof(PySliceObject, step) == 32,
              "PySliceObject");

#ifndef LAYOUT_CODE_VERSIONS
/* A version that keeps no code version in the file (3.11 has none; 3.12
 * gives functions theirs lazily): nothing to reserve or assign. */
const uint32_t cds_layout_code_version_base = 0, cds_layout_code_version_off = 0;

int
cds_layout_code_versions_reserve(uint32_t base, uint32_t count)
{
    (void)base;
    (void)count;
    return 0;
}

void
cds_layout_code_loaded(PyObject *code, int reserved)
{
    (void)code;
    (void)reserved;
}
#endif

#endif /* CDS_LAYOUT_KINDS_H */
