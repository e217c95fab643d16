/* SPDX-License-Identifier: MIT */
/* A walker over marshal streams that rewrites frozenset records into
 * tuple records (marshal_walk.h).
 *
 * Why: a frozenset's iteration order depends on the order its items were
 * inserted (collisions), and stock CPython inserts them in the order its
 * .pyc holds them (marshal writes them sorted by their own marshal bytes,
 * 3.11 and later; those bytes depend on reference counts at write time,
 * so the order cannot be recomputed later).  The dump reads that order
 * here, off the same stream the loader would read.
 *
 * The record layout is marshal's (Python/marshal.c, format version 4 and
 * 5): a type byte, whose bit 0x80 (FLAG_REF) only says the object is
 * entered in the reference list, then a payload that depends on the type.
 * Every length is checked against the end of the data before it is
 * followed; nesting is bounded as marshal bounds it. */
#include "marshal_walk.h"

#include <limits.h>
#include <string.h>

#define FLAG_REF 0x80u
#define MAX_DEPTH 2000 /* marshal's MAX_MARSHAL_STACK_DEPTH */

struct walk {
    uint8_t *data;
    size_t size;
    size_t pos;
    size_t nsets;
    cds_error *err;
};

static int
need(struct walk *w, size_t n)
{
    if (n > w->size - w->pos) {
        return CDS_CORRUPT(w->err, w->pos,
                           "marshal data: record of %zu bytes past the end",
                           n);
    }
    return 0;
}

static int
skip(struct walk *w, size_t n)
{
    int rc = need(w, n);
    if (rc == 0) {
        w->pos += n;
    }
    return rc;
}

/* A little-endian 32-bit field, as marshal's r_long: signed. */
static int
load_i32(struct walk *w, int32_t *v)
{
    int rc = need(w, 4);
    if (rc == 0) {
        const uint8_t *p = w->data + w->pos;
        uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 |
                     (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        memcpy(v, &u, sizeof(*v));
        w->pos += 4;
    }
    return rc;
}

/* A count of items or bytes: 32-bit, never negative. */
static int
load_count(struct walk *w, size_t *n)
{
    int32_t v = 0;
    *n = 0;
    int rc = load_i32(w, &v);
    if (rc == 0 && v < 0) {
        rc = CDS_CORRUPT(w->err, w->pos - 4, "marshal data: negative size");
    }
    if (rc == 0) {
        *n = (size_t)v;
    }
    return rc;
}

static int
load_u8(struct walk *w, size_t *n)
{
    *n = 0;
    int rc = need(w, 1);
    if (rc == 0) {
        *n = w->data[w->pos++];
    }
    return rc;
}

static int walk_object(struct walk *w, int depth);

static int
walk_objects(struct walk *w, size_t n, int depth)
{
    int rc = 0;
    /* each object is at least one byte: a count past the end is caught
     * before it loops long */
    if (n > w->size - w->pos) {
        return need(w, n);
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = walk_object(w, depth);
    }
    return rc;
}

static int
walk_object(struct walk *w, int depth)
{
    size_t n = 0, at = w->pos;
    int32_t v = 0;
    int rc;

    if (depth > MAX_DEPTH) {
        return CDS_CORRUPT(w->err, at, "marshal data: nested too deep");
    }
    if ((rc = load_u8(w, &n)) < 0) {
        return rc;
    }
    switch ((unsigned)n & ~FLAG_REF) {
    case '0': /* NULL: ends a dict */
    case 'N': case 'F': case 'T': case 'S': case '.':
        return 0;
    case 'i': case 'r':
        return skip(w, 4);
    case 'I': case 'g':
        return skip(w, 8);
    case 'y':
        return skip(w, 16);
    case 'f':
        if ((rc = load_u8(w, &n)) < 0) {
            return rc;
        }
        return skip(w, n);
    case 'x':
        for (int i = 0; i < 2; i++) {
            if ((rc = load_u8(w, &n)) < 0 || (rc = skip(w, n)) < 0) {
                return rc;
            }
        }
        return 0;
    case 'l': /* signed count of 15-bit digits, 2 bytes each */
        if ((rc = load_i32(w, &v)) < 0) {
            return rc;
        }
        n = v < 0 ? (size_t)-(int64_t)v : (size_t)v;
        return skip(w, n <= SIZE_MAX / 2 ? 2 * n : SIZE_MAX);
    case 's': case 't': case 'u': case 'a': case 'A':
        if ((rc = load_count(w, &n)) < 0) {
            return rc;
        }
        return skip(w, n);
    case 'z': case 'Z':
        if ((rc = load_u8(w, &n)) < 0) {
            return rc;
        }
        return skip(w, n);
    case '>': /* frozenset: becomes a tuple (marshal_walk.h) */
        w->data[at] = (uint8_t)('(' | (w->data[at] & FLAG_REF));
        w->nsets++;
        __attribute__((fallthrough)); /* the same layout */
    case '(': case '[': case '<':
        if ((rc = load_count(w, &n)) < 0) {
            return rc;
        }
        return walk_objects(w, n, depth + 1);
    case ')':
        if ((rc = load_u8(w, &n)) < 0) {
            return rc;
        }
        return walk_objects(w, n, depth + 1);
    case '{':
        for (;;) {
            if ((rc = need(w, 1)) < 0) {
                return rc;
            }
            if ((w->data[w->pos] & ~FLAG_REF) == '0') { /* NULL */
                w->pos++;
                return 0;
            }
            if ((rc = walk_objects(w, 2, depth + 1)) < 0) {
                return rc;
            }
        }
    case 'c': /* 3.11+: 5 ints, 8 objects, firstlineno, 2 objects */
        if ((rc = skip(w, 20)) < 0 ||
            (rc = walk_objects(w, 8, depth + 1)) < 0 ||
            (rc = skip(w, 4)) < 0) {
            return rc;
        }
        return walk_objects(w, 2, depth + 1);
    case ':': /* slice (3.14+): start, stop, step */
        return walk_objects(w, 3, depth + 1);
    }
    return CDS_CORRUPT(w->err, at, "marshal data: unknown type code 0x%02x",
                       (unsigned)n);
}

int
cds_marshal_frozensets_to_tuples(uint8_t *data, size_t size, size_t *nsets,
                                 cds_error *err)
{
    struct walk w = {.data = data, .size = size, .err = err};
    /* bytes after the object are left alone, as marshal.loads ignores
     * them */
    int rc = walk_object(&w, 0);

    if (nsets != NULL) {
        *nsets = w.nsets;
    }
    return rc;
}
