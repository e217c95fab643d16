/* SPDX-License-Identifier: MIT */
/* The heap layer: CPython objects in and out of archive segments.
 *
 * This is the only part of cds/ that knows an interpreter's object layout.
 * Serializing turns a freshly unmarshalled code object and everything its
 * constants reach into a segment of real PyObjects laid out for a given
 * address; loading patches a validated segment in place so that the
 * running interpreter can use those objects directly (format.md 5, 8).
 * One CPython version per build: the layout is fenced by PY_VERSION_HEX
 * in heap.c. */
#ifndef CDS_HEAP_H
#define CDS_HEAP_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "archive.h"
#include "writer.h"

/* Growable buffers of a serialized segment; seg views them. */
typedef struct cds_heap_segment {
    struct cds_segment seg;
    uint8_t *objects;
    uint32_t *reloc;
    struct cds_disk_ext *ext;
    uint32_t *frozen;
    uint32_t *objtab;
    struct cds_disk_shared *shared;
    /* objects by kind (enum cds_obj_kind), for reports */
    uint32_t counts[CDS_OBJ_NKINDS];
    uint32_t nfrozensets;
} cds_heap_segment;

/* Fill fp with the running interpreter's build fingerprint (format.md
 * 2.1).  Needs an initialised interpreter; does no imports. */
int cds_heap_fingerprint(struct cds_disk_fingerprint *fp, cds_error *err);

/* Check, once per process, that the running interpreter is the one this
 * heap layer was compiled for (version, object sizes).  With measure,
 * also what only a running interpreter can say, sizeof(PyGC_Head)
 * (format.h), which asks sys.getsizeof: the dump, TRACE and the CLI's
 * check measure it; SHARE does not, since an archive it accepts has the
 * fingerprint (runtime_hash: version, build date and compiler) of the
 * interpreter that measured it when it dumped, and the measurement runs
 * interpreter code that nothing else in a program runs (docs/
 * benchmarks.md, "Where a small workload's peak RSS goes").  0 or
 * CDS_EVERSION. */
int cds_heap_check_runtime(int measure, cds_error *err);

/* Attribute name of the module sys.modules has as module: a new
 * reference, or NULL with no exception set.  What pycds reads of sys and
 * importlib goes through here, not through PySys_GetObject,
 * PyImport_GetModuleDict or PyImport_GetMagicTag: in Debian's
 * PGO-ordered 3.14 those lie in a 64 KiB stretch of text that a stock
 * import never runs, which the kernel's fault-around would map into
 * every SHARE process for their sake. */
PyObject *cds_heap_module_attr(const char *module, const char *name);

/* The archive-wide pool of interned strings (format.md 4.1): serializing
 * puts every interned string there, once for the whole archive, and the
 * segment refers to it by index; loading interns each at most once per
 * process. */
typedef struct cds_heap_pool cds_heap_pool;

int cds_heap_pool_create(cds_heap_pool **pool, cds_error *err);
void cds_heap_pool_destroy(cds_heap_pool *pool);
/* A view for cds_writer_set_pool(), valid until the pool changes. */
void cds_heap_pool_view(const cds_heap_pool *pool, struct cds_pool *out);
/* Take note of the strings the interpreter has interned so far (3.12
 * on), before the first module is dumped: the process that loads the
 * archive has them interned before anything is served too, so slots
 * referring to them will be written at load, and the serializer puts
 * the tuples holding them with what is written (format.md 5). */
int cds_heap_pool_note_startup(cds_heap_pool *pool, cds_error *err);
/* Take note of names, a set of str: strings the traced program interned
 * outside unmarshalling before a module that names them was loaded
 * ('$' records of the list, docs/usage.md).  Those the pool gets (and
 * that start-up did not intern) go on its early list (format.md 4.1):
 * the loader interns them when it activates the archive, before anything
 * else can, so that the archive's strings are the interned ones and the
 * slots naming them stay as the file has them. */
int cds_heap_pool_note_early(cds_heap_pool *pool, PyObject *names,
                             cds_error *err);
/* After the last cds_heap_serialize(): number the early strings first
 * and lay them out at the start of the pool (format.md 4.1, as
 * written), so that interning them at activation reads and writes the
 * fewest pool blocks, whatever else the archive holds.  The view's
 * renumber then maps the indices the segments were serialized with to
 * the new ones; the writer rewrites them (cds_writer_finish). */
int cds_heap_pool_order(cds_heap_pool *pool, cds_error *err);

/* Serialize code and every object its constants reach into seg, laid out
 * to live at address addr, its interned strings into pool (required).
 * The code is archived in its never-run form whatever it went through
 * (heap.c inv. 5).  set_orders (NULL: none) maps id(frozenset), as an
 * int, to a tuple of its items in the order stock CPython inserts them
 * when it loads the module's .pyc (format.md 5.4); a frozenset it does
 * not map, or maps to anything but a tuple of exactly its items, is
 * archived in this process's iteration order.  ran (NULL: none) is a set
 * of (co_firstlineno, co_qualname) of the module's functions that ran in
 * the trace: their code objects are laid out before the other functions'
 * (format.md 5).  Objects of a kind the
 * archive cannot hold are CDS_EUNSUPPORTED.  seg is initialised here;
 * release it with cds_heap_segment_clear(). */
int cds_heap_serialize(PyObject *code, uint64_t addr, cds_heap_pool *pool,
                       PyObject *set_orders, PyObject *ran,
                       cds_heap_segment *seg, cds_error *err);

void cds_heap_segment_clear(cds_heap_segment *seg);

/* Check the bodies of module index's objects against the layout this
 * heap layer writes (format.md 5.1, 6.7): every object's size fields
 * within its extent, reference counts, str/bytes/int invariants, zeroed GC
 * heads, code objects' counts and runtime fields as _PyCode_Validate and
 * init_code leave them, each pointer field a listed slot holding the kind
 * the interpreter expects there, and no listed slot outside a pointer
 * field.  map is the slot map cds_segment_validate_map() left when it
 * accepted the segment (the one owner of it: this adds its own marks to
 * it, and the caller frees it).  Call before cds_heap_load(), which
 * trusts all of it.  Reads the image only (it may be read-only) and needs
 * neither the interpreter nor the GIL.  0 or CDS_ECORRUPT. */
int cds_heap_validate(const cds_archive *a, uint32_t index,
                      cds_slot_map *map, cds_error *err);

/* Make module index's segment usable and return a new reference to its
 * code object in *code.  The segment must have passed
 * cds_segment_validate() and cds_heap_validate(); the archive must be
 * mapped writable and never unmapped afterwards.  Call once per segment,
 * with the GIL held. */
int cds_heap_load(cds_archive *a, uint32_t index, PyObject **code,
                  cds_error *err);

/* After cds_heap_load of module index, with *code the root it returned:
 * when the root lies in the segment's load-only region (format.md 5),
 * replace *code (its reference released) by a heap copy of it, its
 * co_consts and the bodies there copied likewise, and return 1: the
 * caller hands it out once and keeps no reference, and nothing may read
 * the region again (cds_segment_release_from, or in copy mode
 * cds_archive_arena_keep).
 * 0 when the root is not copied, or CDS_ECORRUPT / CDS_ENOMEM (*code
 * unchanged). */
int cds_heap_copy_root(cds_archive *a, uint32_t index, PyObject **code,
                       cds_error *err);

/* A segment's first use, the one sequence the import hook and the tests
 * run (inv. 3 of importhook/hook.h): fault its pages in first
 * (cds_segment_prefault, unless prefault is CDS_PREFAULT_NONE: it changes
 * no byte; what will be written becomes private, in one system call,
 * and the rest is mapped from the file; CDS_PREFAULT_ALL makes the whole
 * block private); then cds_segment_validate_map, cds_heap_validate
 * (every check before the first write), cds_heap_load (in copy mode on
 * the block as read into the arena, with cds_segment_bytes_to_file
 * first), cds_heap_copy_root and cds_segment_release_from (in copy mode
 * cds_archive_arena_keep).  *code as for cds_heap_load;
 * returns 1 when it is a heap copy (cds_heap_copy_root), the caller's to
 * hand out once; a segment that fails validation has not been written
 * to. */
enum { CDS_PREFAULT_NONE, CDS_PREFAULT_AUTO, CDS_PREFAULT_ALL };

/* TRACE (3.12 on): append to list the strings the interpreter interned
 * on its heap since *pos (0: since it started), and move *pos past them;
 * list NULL only moves *pos.  Positions are the interned dict's entry
 * order: strings interned and freed meanwhile (mortal ones, 3.13 on)
 * leave deleted entries that a resize of the dict compacts, and *pos may
 * then lie past its end, missing what is interned until the dict grows
 * back past it; that costs pages, not correctness.  0, or -1 with an
 * exception (out of memory); nothing to do on 3.11. */
int cds_heap_interned_since(Py_ssize_t *pos, PyObject *list);

/* Activation: intern the pool's early strings (format.md 4.1, 8), each
 * checked as a segment's pool strings are.  0 or a negative status, with
 * err filled. */
int cds_heap_resolve_early(cds_archive *a, cds_error *err);

/* Where cds_heap_segment_use spends its time, summed over the process's
 * calls (CLOCK_MONOTONIC, ns): reading or faulting the block in, the
 * checksum with S1-S7 (cds_segment_validate_map), the object bodies
 * (cds_heap_validate), patching (relocation, types, externals,
 * frozensets, code objects' hooks), resolving the pool strings a segment
 * refers to (checks and interning) and its pool-reference slots (reading
 * each, writing those whose hint was wrong), the heap copies of module
 * bodies, and giving pages back after loading (in copy mode, mapping the
 * bytes objects from the file). */
struct cds_heap_phases {
    uint64_t fetch, check, validate, patch, intern, refs, copy, release;
};
extern struct cds_heap_phases cds_heap_phases;

/* Whether loading and running archive a's segments will write nearly
 * every page of them anyway: the version writes reference counts
 * (3.11), the archive is relocated, or the type objects are not where
 * the archive's objects name them (a PIE interpreter; judged by the
 * first module's root object, a guess that costs pages, never
 * correctness).  Then the import hook reads segments into anonymous
 * memory instead (cds_archive_copy_segments).  Call before any segment
 * is used. */
bool cds_heap_writes_every_page(const cds_archive *a);

/* Whether, even so, loading writes no bytes object of a's segments: the
 * archive is at its base and the types where the writer saw them (3.11:
 * only reference counts make it write every page, and reading a line or
 * exception table takes no reference).  Then copy mode leaves the bytes
 * objects' pages the file's (cds_archive_copy_segments' map_bytes). */
bool cds_heap_bytes_stay_clean(const cds_archive *a);
int cds_heap_segment_use(cds_archive *a, uint32_t index, int prefault,
                         PyObject **code, cds_error *err);

#endif
