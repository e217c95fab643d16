/* SPDX-License-Identifier: MIT */
/* Object layout of CPython 3.12 (layout.h; format.md 5.1, "3.12").
 *
 * Objects are immortal (PEP 683): Py_INCREF and Py_DECREF leave the
 * count unwritten, so objects nothing else writes keep their pages clean.
 * Code is quickened when it is created (init_code calls _PyCode_Quicken:
 * superinstructions, warm-up counters in the inline caches), so the
 * archive holds co_code_adaptive as a fresh, never-run object of the
 * dumping interpreter has it: that of a twin made by code.replace()
 * (layout_immortal.h code_as_created), whatever the dumped object ran.
 * co_version is 0, which makes _PyFunction_GetVersionForCurrentState
 * hand out a version from the interpreter's counter the first time a
 * call is specialised (the code counter, _Py_next_func_version, is not
 * exported).  CPYTHON-NOTES.md 2.3-2.4. */
#define Py_BUILD_CORE 1 /* FRAME_SPECIALS_SIZE (internal/pycore_frame.h) */
#define LAYOUT_VERSION_TAG 0x030C
#define LAYOUT_CODE_EXTRA_RUNTIME /* none */
/* Include/object.h: the immortal count of a 64-bit GIL build, which
 * Py_INCREF's saturating add and Py_DECREF leave unwritten */
#define LAYOUT_REFCNT _Py_IMMORTAL_REFCNT
#define LAYOUT_REFCNT_REPORTED _Py_IMMORTAL_REFCNT
#include "layout.h"

#include <internal/pycore_frame.h>
#include <internal/pycore_global_objects.h>

#include "layout_immortal.h"

static_assert(_Py_IMMORTAL_REFCNT == 0xFFFFFFFF, "immortal refcount");

#if PY_VERSION_HEX < 0x030C0000 || PY_VERSION_HEX >= 0x030D0000
#error "layout_312.c is the heap layout of CPython 3.12"
#endif

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
                  offsetof(PyCodeObject, _co_cached) == 152 &&
                  offsetof(PyCodeObject, _co_instrumentation_version) ==
                      160 &&
                  offsetof(PyCodeObject, _co_monitoring) == 168 &&
                  offsetof(PyCodeObject, _co_firsttraceable) == 176 &&
                  offsetof(PyCodeObject, co_extra) == 184 &&
                  offsetof(PyCodeObject, co_code_adaptive) == 192,
              "PyCodeObject");
