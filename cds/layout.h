/* SPDX-License-Identifier: MIT */
/* What one CPython version's object layout dictates, for heap.c.
 *
 * heap.c is version-neutral: the graph walk and its memo, references and
 * externals, the validation driver and the slot map, relocation, type and
 * external patching, the string pool and frozensets.  Everything that
 * depends on how a version lays out an object's bytes lives behind this
 * interface, in exactly one file per version: layout_311.c,
 * layout_312.c, layout_313.c.  CMake compiles the one that matches the
 * interpreter it builds for (cds/CMakeLists.txt); each fences itself with
 * PY_VERSION_HEX and static_asserts every offset docs/format.md 5.1
 * tabulates for it.  Versions with immortal objects and a wstr-less str
 * (3.12 on) share their str, int and head code through layout_immortal.h.
 *
 * Contract for every function here: the image p is zeroed before an emit
 * and large enough (cds_layout_size); the check functions read the image
 * only, need neither the interpreter nor the GIL, and return NULL when
 * the object is good, else what is wrong (a static string). */
#ifndef CDS_LAYOUT_H
#define CDS_LAYOUT_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "format.h"

#include <stdbool.h>
#include <stdint.h>

#define CDS_ALIGN8(n) (((n) + 7u) & ~(uint64_t)7u)

/* The reference count every archived object carries (inv. 1 of heap.c):
 * one no DECREF brings to zero.  3.11: 2^40; 3.12 on: the immortal
 * value, which Py_INCREF and Py_DECREF leave unwritten; 3.14 on, the
 * whole first word of the object, ob_flags included (immortal and
 * statically allocated, as the runtime's own static objects).
 * cds_layout_refcnt_reported is what Py_REFCNT says of such an object
 * (3.14 on: the 32-bit count alone). */
extern const Py_ssize_t cds_layout_refcnt, cds_layout_refcnt_reported;
/* Human form for messages ("2^40", "immortal"). */
extern const char cds_layout_refcnt_name[];

/* The ints the interpreter owns (its small-int cache): never archived,
 * always external (format.md 5.3).  Must lie within the external table's
 * int range, CDS_EXT_INT_MIN.. (static_asserted per version). */
extern const long cds_layout_small_int_min, cds_layout_small_int_max;

/* The sizes and offsets the layout fingerprint hashes (format.md 2.1). */
extern const uint64_t cds_layout_table[];
extern const size_t cds_layout_table_size; /* bytes */

/* Once per process: is the running interpreter laid out as the headers
 * said (type sizes, a fresh code object's state)?  NULL, or why not. */
const char *cds_layout_check_runtime(char *buf, size_t size);

/* ---- serializing */

/* Bytes of the object image (GC head excluded), for an object of a kind
 * (format.md 5.1).  For tuples nitems is the item count (a frozenset is
 * archived as the tuple of its items); ignored otherwise. */
uint64_t cds_layout_size(PyObject *o, unsigned kind, Py_ssize_t nitems);

/* Write the image of o (kind other than tuple) at p, its head included:
 * reference count, this process's type object, sizes, every field but
 * the pointer fields listed in cds_layout_code_fields, which the caller
 * fills.  NULL or why o cannot be archived. */
const char *cds_layout_emit(uint8_t *p, PyObject *o, unsigned kind);

/* The head of a tuple image of n items (items written by the caller at
 * offset cds_layout_tuple_items); from 3.14 the hash cache, -1. */
void cds_layout_emit_tuple(uint8_t *p, Py_ssize_t n);
extern const uint32_t cds_layout_tuple_items;
/* The offsets of a slice's start, stop and step (format.md 5.1.8): the
 * caller of cds_layout_emit fills them. */
extern const uint32_t cds_layout_slice_fields[3];
/* What lies between a tuple's ob_size and its items (3.14 on: the hash
 * cache, which must be -1 as a str's, inv. 4): NULL if good, else why,
 * with *at its offset in the object. */
const char *cds_layout_check_tuple(const uint8_t *p, uint32_t *at);

/* The pointer fields of a code object and the kind each must hold
 * (_PyCode_Validate), in the order they are emitted and checked. */
struct cds_layout_field {
    const char *name;
    uint32_t off;
    unsigned want; /* CDS_OBJ_TUPLE, CDS_OBJ_BYTES or CDS_OBJ_STR */
};
extern const struct cds_layout_field cds_layout_code_fields[];
extern const size_t cds_layout_code_nfields;
/* indexes into cds_layout_code_fields */
enum { CDS_FIELD_NAMES = 1, CDS_FIELD_LPNAMES = 3, CDS_FIELD_LPKINDS = 4 };

/* ---- validating (format.md 6.7) */

/* The version-neutral view of a code image, for the checks heap.c runs
 * on every version (_PyCode_Validate, init_code's derived counts). */
struct cds_code_view {
    int64_t nunits; /* ob_size: 2-byte code units */
    int argcount, posonlyargcount, kwonlyargcount, flags, stacksize;
    int nlocalsplus, nlocals, ncellvars, nfreevars;
    int nplaincellvars; /* -1 where the version has no such field */
    int firsttraceable;
    const uint8_t *code; /* co_code_adaptive */
    /* offsets of the fields, for messages */
    uint32_t off_flags, off_stacksize, off_nlocalsplus, off_nlocals,
        off_argcount, off_firsttraceable;
};
extern const uint32_t cds_layout_code_head; /* offset of co_code_adaptive */
/* The RESUME oparg (its RESUME_OPARG_LOCATION_MASK bits) that does not
 * mark the entry init_code takes for _co_firsttraceable: 3.15's
 * RESUME_AT_GEN_EXPR_START, which opens a generator expression before
 * its RETURN_GENERATOR; -1 where every RESUME does. */
extern const int cds_layout_resume_not_entry;
void cds_layout_code_view(const uint8_t *p, struct cds_code_view *v);

/* The version-neutral view of a str image, for heap.c's checks of kind,
 * length, data, NUL and hash (format.md 5.1.2): NULL and *v filled, or
 * why its head is wrong for this version (reference count, state bits,
 * lazily built caches not empty). */
struct cds_str_view {
    int64_t length;
    int64_t hash;
    unsigned kind, ascii;
    uint32_t head; /* where the characters start */
};
const char *cds_layout_str_view(const uint8_t *p, uint32_t extent,
                                struct cds_str_view *v);

/* The version-neutral view of an int image: NULL and *v filled, or why
 * its size field is wrong (bits no int has). */
struct cds_int_view {
    int64_t size;         /* +-ndigits, as 3.11's ob_size */
    const char *size_name; /* the field, for messages */
    uint32_t head;        /* offset of ob_digit */
};
const char *cds_layout_int_view(const uint8_t *p, struct cds_int_view *v);

/* bytes: hash cache and data offsets (the count is ob_size) */
extern const uint32_t cds_layout_bytes_hash, cds_layout_bytes_data;

/* The version's own state of a code image: runtime caches empty, the
 * as-created counters (inv. 5), fields derived from others.  NULL, or
 * why not (in buf, or static) with *at the offset in the object of the
 * first bad field. */
const char *cds_layout_check_code(const uint8_t *p, uint32_t *at, char *buf,
                                  size_t size);

/* ---- dumping (with the GIL) */

/* For an interned str o of the dumping process: the address any process
 * of this interpreter binary has it at, when o is one the runtime
 * allocated statically (3.12 on: the identifiers, deep-frozen code's
 * strings), so that a slot holding it needs no write on a non-PIE build;
 * 0 otherwise (and always on 3.11, where nothing tells them). */
uint64_t cds_layout_str_fixed_address(PyObject *o);
/* A new set of the strings the interpreter has interned on its heap so
 * far (3.12 on), None where it cannot tell (3.11); NULL with an
 * exception set on failure. */
PyObject *cds_layout_interned_heap(void);
/* The interpreter's own dict of the strings interned on its heap
 * (3.12 on; borrowed), NULL where it cannot be reached (3.11). */
PyObject *cds_layout_interned_dict(void);

/* ---- loading (with the GIL) */

/* After the type of a str image is patched, before anything reads it
 * (3.11: a UCS-4 string's wstr view). */
void cds_layout_str_loaded(uint8_t *p, uint32_t extent);
/* After PyUnicode_InternInPlace made the archived str s the interned
 * one: the version's interned state, so that no finalizer makes it
 * mortal (heap.c inv. 6). */
void cds_layout_str_interned(PyObject *s);
/* Code versions (3.13, format.md 5.1.7): the archive's code objects hold
 * co_version values of their own, from cds_layout_code_version_base on,
 * at offset cds_layout_code_version_off; both 0 where a version keeps
 * none in the file (3.11, 3.12). */
extern const uint32_t cds_layout_code_version_base, cds_layout_code_version_off;
/* Once per archive, before its first code object is loaded: keep the
 * interpreter's version counter from ever giving out one of [base, base
 * + count), by moving it past the range if it has not reached base yet.
 * 1 if done (the file's versions stand), 0 if not (the counter is past
 * base, or exhausted): then each code object gets one from the counter. */
int cds_layout_code_versions_reserve(uint32_t base, uint32_t count);
/* After a segment's references are resolved, once per code object
 * before it can run; reserved as cds_layout_code_versions_reserve()
 * returned (3.13: unless reserved, co_version from the interpreter's
 * counter). */
void cds_layout_code_loaded(PyObject *code, int reserved);
/* Whether running archived code writes the objects' reference counts
 * (3.11), so that every page of a used segment is written anyway. */
extern const int cds_layout_refcounts_written;

#endif /* CDS_LAYOUT_H */
