/* SPDX-License-Identifier: MIT */
/* The heap layout CPython 3.14 and 3.15 share (layout_314.c says what
 * changed from 3.13): the layout macros for layout_immortal.h and the
 * static_asserts of their object head and code object, included once by
 * the one of layout_314.c, layout_315.c a build compiles, after it
 * defines LAYOUT_VERSION_TAG. */
#ifndef CDS_LAYOUT_FLAGS_H
#define CDS_LAYOUT_FLAGS_H

#ifndef LAYOUT_VERSION_TAG
#error "define LAYOUT_VERSION_TAG first"
#endif
#define Py_BUILD_CORE 1
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
#include <internal/pycore_opcode_utils.h> /* RESUME_AT_GEN_EXPR_START */
#include <internal/pycore_runtime_structs.h>

#include "layout_immortal.h"


static_assert(_Py_IMMORTAL_INITIAL_REFCNT == 0xC0000000u &&
                  _Py_IMMORTAL_FLAGS == 1 &&
                  _Py_STATICALLY_ALLOCATED_FLAG == 4 &&
                  (uint64_t)_Py_STATIC_IMMORTAL_INITIAL_REFCNT ==
                      0x00050000C0000000ull,
              "immortal static object head");
static_assert(offsetof(PyObject, ob_flags) == 6, "ob_flags");
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

#endif /* CDS_LAYOUT_FLAGS_H */
