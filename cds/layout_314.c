/* SPDX-License-Identifier: MIT */
/* Object layout of CPython 3.14 (layout.h; format.md 5.1, "3.14 and 3.15").
 *
 * As 3.13 (layout_313.c) but for three things the headers changed:
 * - The object head's first word is a 32-bit count, ob_overflow and
 *   ob_flags (Include/object.h).  Py_INCREF leaves a count of at least
 *   _Py_IMMORTAL_INITIAL_REFCNT unwritten, Py_DECREF one with bit 31 set;
 *   and the evaluation loop's stack references take an object as
 *   immortal by its ob_flags bit _Py_IMMORTAL_FLAGS alone
 *   (internal/pycore_stackref.h PyStackRef_FromPyObjectSteal), closing
 *   a reference to any other with Py_DECREF_MORTAL, which writes the
 *   count unconditionally.  So every archived object carries the word
 *   the runtime gives its own static objects,
 *   _Py_STATIC_IMMORTAL_INITIAL_REFCNT: that count, flags immortal and
 *   statically allocated (never freed, as the mapping is not the
 *   allocator's).
 * - Tuples cache their hash (ob_hash, before the items): -1 in the file,
 *   as a str's (inv. 4), written when first hashed.
 * - Code objects gain _co_unique_id, used by free-threaded builds only:
 *   0 here, as PyObject_NewVar leaves a GIL build's.
 * - The finalizer releases interned strings that are immortal but not
 *   static: every str image is statically allocated (LAYOUT_STR_STATIC).
 * FRAME_SPECIALS_SIZE moved to internal/pycore_interpframe.h and the
 * small-int cache to internal/pycore_runtime_structs.h.  What 3.15
 * shares is in layout_flags.h. */
#define LAYOUT_VERSION_TAG 0x030E
#include "layout_flags.h"

#if PY_VERSION_HEX < 0x030E0000 || PY_VERSION_HEX >= 0x030F0000
#error "layout_314.c is the heap layout of CPython 3.14"
#endif

static_assert(_PY_NSMALLNEGINTS == 5 && _PY_NSMALLPOSINTS == 257,
              "small ints");
