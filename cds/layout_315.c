/* SPDX-License-Identifier: MIT */
/* Object layout of CPython 3.15 (layout.h; format.md 5.1, "3.14 and 3.15").
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
 * 3.15 adds to 3.14 a small-int cache of -5..1024, all of it external
 * (format.md 5.3), and lazy imports (PEP 810), which reach the import
 * system, and so the archive's finder, when the name is first used.
 * FRAME_SPECIALS_SIZE moved to internal/pycore_interpframe.h and the
 * small-int cache to internal/pycore_runtime_structs.h. */
#define Py_BUILD_CORE 1
#define LAYOUT_VERSION_TAG 0x030F
#define LAYOUT_CODE_VERSIONS 1 /* co_version set by the writer */
#define LAYOUT_TUPLE_HASH 1
#define LAYOUT_STR_STATIC 1 /* every str image (layout_immortal.h) */
#define LAYOUT_CODE_EXTRA_RUNTIME \
    {"co_executors is not NULL", offsetof(PyCodeObject, co_executors)}, \
    {"_co_unique_id is not 0", offsetof(PyCodeObject, _co_unique_id)},
#define LAYOUT_REFCNT _Py_STATIC_IMMORTAL_INITIAL_REFCNT
#define LAYOUT_REFCNT_REPORTED _Py_IMMORTAL_INITIAL_REFCNT
#include "layout.h"

#include <internal/pycore_interpframe.h>
#include <internal/pycore_runtime_structs.h>

#include "layout_immortal.h"

#if PY_VERSION_HEX < 0x030F0000 || PY_VERSION_HEX >= 0x030100000
#error "layout_315.c is the heap layout of CPython 3.15"
#endif

static_assert(_Py_IMMORTAL_INITIAL_REFCNT == 0xC0000000u &&
                  _Py_IMMORTAL_FLAGS == 1 &&
                  _Py_STATICALLY_ALLOCATED_FLAG == 4 &&
                  (uint64_t)_Py_STATIC_IMMORTAL_INITIAL_REFCNT ==
                      0x00050000C0000000ull,
              "immortal static object head");
static_assert(offsetof(PyObject, ob_flags) == 6, "ob_flags");
static_assert(_PY_NSMALLNEGINTS == 5 && _PY_NSMALLPOSINTS == 1025,
              "small ints");
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
                  offsetof(PyCodeObject, co_executors) == 152 &&
                  offsetof(PyCodeObject, _co_cached) == 160 &&
                  offsetof(PyCodeObject, _co_instrumentation_version) ==
                      168 &&
                  offsetof(PyCodeObject, _co_monitoring) == 176 &&
                  offsetof(PyCodeObject, _co_unique_id) == 184 &&
                  offsetof(PyCodeObject, _co_firsttraceable) == 192 &&
                  offsetof(PyCodeObject, co_extra) == 200 &&
                  offsetof(PyCodeObject, co_code_adaptive) == 208,
              "PyCodeObject");
