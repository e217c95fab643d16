/* SPDX-License-Identifier: MIT */
/* Object layout of CPython 3.15 (layout.h; format.md 5.1, "3.14 and 3.15").
 *
 * As 3.14 (layout_314.c says what changed from 3.13; layout_flags.h holds
 * what the two share), plus:
 * - a small-int cache of -5..1024, all of it external (format.md 5.3);
 * - a generator expression opens with RESUME RESUME_AT_GEN_EXPR_START,
 *   which init_code passes over for _co_firsttraceable
 *   (cds_layout_resume_not_entry);
 * - quickening takes its initial counters from run-time settings
 *   (interp->opt_config), which the fingerprint's quicken_hash compares;
 * - lazy imports (PEP 810) reach the import system, and so the archive's
 *   finder, when the name is first used: nothing to do here. */
#define LAYOUT_VERSION_TAG 0x030F
#include "layout_flags.h"

#if PY_VERSION_HEX < 0x030F0000 || PY_VERSION_HEX >= 0x03100000
#error "layout_315.c is the heap layout of CPython 3.15"
#endif

static_assert(_PY_NSMALLNEGINTS == 5 && _PY_NSMALLPOSINTS == 1025,
              "small ints");
