/* SPDX-License-Identifier: MIT */
/* Reading marshal streams (the body of a .pyc) without an interpreter:
 * only as far as the dump needs to know the order in which the loader
 * that stock CPython runs inserts a frozenset's items. */
#ifndef CDS_MARSHAL_WALK_H
#define CDS_MARSHAL_WALK_H

#include "cds.h"

#include <stddef.h>
#include <stdint.h>

/* Rewrite, in place, the type byte of every frozenset record of the
 * marshal stream data[0..size) into a tuple's (format.md 5.4: the order
 * frozensets are built in).  Both records are a 4-byte count and that
 * many objects, and both take their reference index before their items,
 * so the stream stays valid and its references keep their meaning:
 * marshal.loads of the result is the same object graph with each
 * frozenset replaced by a tuple of its items in the order marshal read,
 * and so inserted, them.  *nsets (may be NULL) counts the records
 * rewritten.  Bytes after the object are ignored, as marshal.loads does.
 * 0, or CDS_ECORRUPT (data does not start with one whole marshal object
 * of CPython 3.11 to 3.15) with data partly rewritten. */
int cds_marshal_frozensets_to_tuples(uint8_t *data, size_t size,
                                     size_t *nsets, cds_error *err);

#endif
