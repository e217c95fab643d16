/* SPDX-License-Identifier: MIT */
/* Object layout of CPython 3.13 (layout.h; format.md 5.1, "3.13").
 *
 * Objects are immortal (PEP 683): Py_INCREF and Py_DECREF leave the
 * count unwritten, so objects nothing else writes keep their pages clean.
 * Code is quickened when it is created (init_code calls _PyCode_Quicken:
 * superinstructions, warm-up counters in the inline caches), so the
 * archive holds co_code_adaptive as a fresh, never-run object of the
 * dumping interpreter has it: that of a twin made by code.replace()
 * (layout_immortal.h code_as_created), whatever the dumped object ran.
 * co_version is 0 in the file and taken from the interpreter's counter
 * at load, as init_code takes it: 3.13's
 * PyFunction_New copies it into func_version, and a function whose
 * version is 0 is never specialised (CPYTHON-NOTES.md 2.3-2.4).  Strings
 * the archive interns are made immortal-static (layout_immortal.h). */
/* FRAME_SPECIALS_SIZE (internal/pycore_frame.h) and the interpreter's
 * function version counter (internal/pycore_interp.h) */
#define Py_BUILD_CORE 1
#define LAYOUT_VERSION_TAG 0x030D
#define LAYOUT_CODE_VERSIONS 1 /* co_version set by the writer */
#define LAYOUT_CODE_EXTRA_RUNTIME \
    {"co_executors is not NULL", offsetof(PyCodeObject, co_executors)},
#include "layout_immortal.h"

#include <internal/pycore_interp.h>

#if PY_VERSION_HEX < 0x030D0000 || PY_VERSION_HEX >= 0x030E0000
#error "layout_313.c is the heap layout of CPython 3.13"
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
                  offsetof(PyCodeObject, co_executors) == 152 &&
                  offsetof(PyCodeObject, _co_cached) == 160 &&
                  offsetof(PyCodeObject, _co_instrumentation_version) ==
                      168 &&
                  offsetof(PyCodeObject, _co_monitoring) == 176 &&
                  offsetof(PyCodeObject, _co_firsttraceable) == 184 &&
                  offsetof(PyCodeObject, co_extra) == 192 &&
                  offsetof(PyCodeObject, co_code_adaptive) == 200,
              "PyCodeObject");

void
cds_layout_str_interned(PyObject *s)
{
    str_make_static(s);
}

/* Far above what the counter reaches before anything is served (one per
 * code object created: some thousands at start-up), far below its end. */
const uint32_t cds_layout_code_version_base = 1u << 24;
const uint32_t cds_layout_code_version_off = offsetof(PyCodeObject, co_version);

/* init_code gives each code object the counter's next version, which
 * PyFunction_New copies and specialisation guards compare: versions must
 * be unique among the interpreter's code objects.  Moving the counter
 * past the archive's range keeps them unique without writing a version
 * into every archived code object (a page each). */
int
cds_layout_code_versions_reserve(uint32_t base, uint32_t count)
{
    PyInterpreterState *interp = PyInterpreterState_Get();
    uint32_t next = interp->func_state.next_version;

    if (next == 0 || next > base || count > UINT32_MAX - base) {
        return 0;
    }
    interp->func_state.next_version = base + count;
    return 1;
}

/* Unless reserved, init_code's version: the interpreter's next one, and
 * the counter moves on unless it ran out (0: no more specialisation). */
void
cds_layout_code_loaded(PyObject *code, int reserved)
{
    PyInterpreterState *interp = PyInterpreterState_Get();
    PyCodeObject *co = (PyCodeObject *)code;

    if (reserved) {
        return;
    }
    co->co_version = interp->func_state.next_version;
    if (interp->func_state.next_version != 0) {
        interp->func_state.next_version++;
    }
}
