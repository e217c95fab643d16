/* SPDX-License-Identifier: MIT */
/* The _cds extension's process-global state and what its files give each
 * other.
 *
 * _cdsmodule.c reads PYCDSMODE and dispatches; finder.c is SHARE's
 * meta-path finder (path rules, spec) and its activation; stale.c tells
 * whether an archived module's source changed (PYCDSCHECK); loader.c is
 * the get_code that TRACE and SHARE put on SourceFileLoader (serving
 * archived code, recording traced names); dump.c is DUMP, the only user
 * of the embedded Python glue (glue.py); auto.c is AUTO, which serves or
 * traces and starts a DUMP at exit; summary.c is PYCDSSTATS's report at
 * exit.
 *
 * Invariants:
 *  1. The archive is a cache: any problem with it produces at most one
 *     warning line on stderr per process and the import system carries on
 *     as if pycds were absent.  No exception from pycds reaches an import.
 *  2. The mapping is process-global and never unmapped once a segment has
 *     been handed out (heap.c inv. 1); so the state here is process-global
 *     too, and only the main interpreter activates.
 *  3. A segment is patched at most once; a segment that fails validation
 *     is never touched and its module is imported normally. */
#ifndef PYCDS_HOOK_H
#define PYCDS_HOOK_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "archive.h"

#include <stdint.h>
#include <time.h>

enum { MODE_OFF, MODE_TRACE, MODE_DUMP, MODE_SHARE, MODE_AUTO };
/* PYCDSCHECK: how SHARE decides a source is unchanged since the dump */
enum { CHECK_STAT, CHECK_HASH, CHECK_NONE };
/* SEG_HANDED: loaded, and its root handed out once as a heap copy
 * (cds_heap_copy_root); a later request imports the module normally */
enum { SEG_UNLOADED = 0, SEG_LOADING, SEG_LOADED, SEG_BAD, SEG_HANDED };

/* The PYCDS* environment (docs/usage.md), read once, at activation, by
 * _cdsmodule.c: the one place that parses it. */
struct cds_hook_config {
    int mode;            /* MODE_*, PYCDSMODE */
    int verbose;         /* PYCDSVERBOSE */
    int prefault;        /* PYCDSPREFAULT: CDS_PREFAULT_* (heap.h) */
    int check;           /* CHECK_*, PYCDSCHECK */
    int relocate;        /* PYCDSRELOCATE set and not "0" */
    const char *archive; /* PYCDSARCHIVE; NULL when unset or empty */
    const char *list;    /* PYCDSLIST; likewise */
    uint64_t base;       /* PYCDSBASE (DUMP): CDS_DEFAULT_BASE unless a
                            non-zero multiple of 4096 */
    /* DUMP: more modules than PYCDSLIST names, ':'-separated (NULL when
     * unset or empty): packages, sys.path trees, fnmatch patterns */
    const char *packages, *paths, *include, *exclude;
};

struct cds_hook {
    struct cds_hook_config config;
    int warned;
    int auto_mode;  /* PYCDSMODE=AUTO: config.mode is what it chose */
    int disabled;   /* the archive is no longer usable at all */
    PyObject *glue; /* the glue's namespace */
    PyObject *sysdict; /* the sys module's dict (cds__hook_sys) */
    /* SHARE */
    cds_archive archive;
    const char *archive_path; /* config.archive, once it is open */
    uint8_t *seg_state;       /* per module: SEG_* */
    PyObject **codes;         /* per module: the loaded code object */
    PyObject **loaders;       /* per module: the loader find_spec last made */
    PyObject *finder;
    PyObject *module_spec;         /* ModuleSpec */
    PyObject *file_finder;         /* FileFinder */
    PyObject *path_importer_cache; /* PathFinder._path_importer_cache */
    int py_verbose;                /* sys.flags.verbose (-v) */
    Py_ssize_t nserved, nmissed, nstale, nfailed;
    uint64_t load_ns, find_ns; /* time in segment loading, in find_spec */
    /* TRACE and SHARE: the get_code they put on SourceFileLoader */
    PyObject *orig_get_code; /* SourceLoader.get_code */
    PyObject *sfl_type;      /* SourceFileLoader */
    /* TRACE */
    int trace_fd;
    PyObject *traced; /* set of names written */
    Py_ssize_t interned_pos; /* TRACE: the interned dict seen up to here */
};

/* The one state (inv. 2), defined in _cdsmodule.c. */
extern struct cds_hook cds__hook;

/* inv. 1: the one "pycds: warning:" line of the process. */
void cds__hook_warn(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

#define VERBOSE(level, ...)                                                   \
    do {                                                                      \
        if (cds__hook.config.verbose >= (level)) {                            \
            PySys_WriteStderr(__VA_ARGS__);                                   \
        }                                                                     \
    } while (0)

static inline uint64_t
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* _cdsmodule.c */
PyObject *cds__hook_importlib_get(const char *name);
PyObject *cds__hook_sys(const char *name);
int cds__hook_sys_flag(const char *name);
int cds__hook_runtime_problem(int measure, char *buf, size_t size);

/* stale.c: is module ix's source unchanged since the dump (PYCDSCHECK)?
 * With report, a changed one is counted and said under -v. */
int cds__source_unchanged(uint32_t ix, const char *name, int report);

/* finder.c: 1 when the archive serves; otherwise the one warning is
 * given and the result is the cds_status that refused the archive
 * (CDS_EVERSION too for another optimization level), or 0 when the
 * refusal is not the archive's (no PYCDSARCHIVE, a pycds built for
 * another interpreter, the finder not installed). */
int cds__share_activate(void);

/* loader.c */
int cds__loader_install(void);
void cds__trace_activate(void);

/* auto.c: AUTO, SHARE when the archive serves, else TRACE, and a dump
 * when the program exits with status 0 */
void cds__auto_activate(void);

/* summary.c: PYCDSSTATS, a summary on stderr at exit */
void cds__summary_install(void);

/* dump.c */
void cds__dump_activate(void); /* does not return */
PyObject *cds__dump_py(PyObject *mod, PyObject *args);
PyObject *cds__dump_frozensets_as_tuples(PyObject *mod, PyObject *arg);

#endif
