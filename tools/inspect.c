/* SPDX-License-Identifier: MIT */
/* `pycds inspect`: an archive's header, fingerprint, totals and modules
 * as YAML.
 *
 * The archive is opened with the format layer's reader (read-only, no
 * fingerprint expected), so everything reported here lies inside bounds
 * the reader has checked: the header (H1..H11), the index and each entry's
 * segment tables (I1..I8).  Segments are not validated (that is `pycds
 * verify`): the object tables are read for their kinds only, and a kind
 * the format does not know is counted as "unknown" rather than trusted. */
#include "cli.h"

#include "archive.h"
#include "cds.h"
#include "format.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* format.md 5.1, in enum cds_obj_kind order */
static const char *const kind_names[CDS_OBJ_NKINDS] = {
    "code", "str", "bytes", "int", "float", "complex", "tuple", "slice",
};
static_assert(CDS_OBJ_NKINDS == 8, "kind_names follows enum cds_obj_kind");

/* Objects per kind; [CDS_OBJ_NKINDS] counts kinds the format lacks. */
struct kind_counts {
    uint64_t n[CDS_OBJ_NKINDS + 1];
};

/* Count the kinds in module i's object table.  The table lies inside the
 * segment (archive.c, I8), which lies inside the file (I7). */
static void
count_kinds(const cds_archive *a, uint32_t i, struct kind_counts *kc)
{
    const struct cds_disk_module *m = &a->modules[i];
    const uint8_t *tab = a->data + m->seg_offset + m->objtab_off;

    for (uint32_t j = 0; j < m->nobjects; j++) {
        uint32_t e;
        memcpy(&e, tab + 4 * (size_t)j, sizeof(e));
        unsigned k = CDS_OBJ_KIND(e);
        kc->n[k < CDS_OBJ_NKINDS ? k : CDS_OBJ_NKINDS]++;
    }
}

static void
emit_kinds(cli_report *y, const struct kind_counts *kc)
{
    cli_report_map_begin(y);
    for (unsigned k = 0; k < CDS_OBJ_NKINDS; k++) {
        cli_report_key(y, kind_names[k]);
        cli_report_u64(y, kc->n[k]);
    }
    if (kc->n[CDS_OBJ_NKINDS] != 0) {
        cli_report_key(y, "unknown");
        cli_report_u64(y, kc->n[CDS_OBJ_NKINDS]);
    }
    cli_report_map_end(y);
}

/* key: {offset: off, size: size} */
static void
emit_range(cli_report *y, const char *key, uint64_t off, const char *what,
           uint64_t n)
{
    cli_report_key(y, key);
    cli_report_map_begin(y);
    cli_report_key(y, "offset");
    cli_report_u64(y, off);
    cli_report_key(y, what);
    cli_report_u64(y, n);
    cli_report_map_end(y);
}

/* created_ns as an ISO 8601 UTC timestamp (a plain YAML timestamp). */
static void
emit_time(cli_report *y, uint64_t ns)
{
    time_t secs = (time_t)(ns / 1000000000u);
    struct tm tm;
    char date[32], buf[48];

    if (gmtime_r(&secs, &tm) == NULL ||
        strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
        cli_report_str(y, "unrepresentable");
        return;
    }
    snprintf(buf, sizeof(buf), "%s.%09uZ", date,
             (unsigned)(ns % 1000000000u));
    cli_report_plain(y, buf);
}

static void
emit_header(cli_report *y, const cds_archive *a)
{
    const struct cds_disk_header *h = a->header;

    cli_report_key(y, "header");
    cli_report_map_begin(y);
    cli_report_key(y, "format_version");
    cli_report_u64(y, h->format_version);
    cli_report_key(y, "optimize");
    cli_report_u64(y, h->optimize);
    cli_report_key(y, "header_size");
    cli_report_u64(y, h->header_size);
    cli_report_key(y, "file_size");
    cli_report_u64(y, h->file_size);
    cli_report_key(y, "base_address");
    cli_report_hex(y, h->base_address);
    cli_report_key(y, "created");
    emit_time(y, h->created_ns);
    cli_report_key(y, "created_ns");
    cli_report_u64(y, h->created_ns);
    cli_report_key(y, "header_checksum");
    cli_report_hex(y, h->header_checksum);
    emit_range(y, "segments", h->segments_offset, "size", h->segments_size);
    cli_report_key(y, "index");
    cli_report_map_begin(y);
    cli_report_key(y, "offset");
    cli_report_u64(y, h->index_offset);
    cli_report_key(y, "size");
    cli_report_u64(y, h->index_size);
    cli_report_key(y, "checksum");
    cli_report_hex(y, h->index_checksum);
    cli_report_map_end(y);
    emit_range(y, "slots", h->slots_offset, "count", h->nslots);
    emit_range(y, "entries", h->entries_offset, "count", h->nmodules);
    emit_range(y, "strings", h->strings_offset, "size", h->strings_size);
    /* format.md 4.1: interned strings shared by all modules; offsets in
     * it are from its start */
    cli_report_key(y, "pool");
    cli_report_map_begin(y);
    cli_report_key(y, "offset");
    cli_report_u64(y, h->pool_offset);
    cli_report_key(y, "size");
    cli_report_u64(y, h->pool_size);
    cli_report_key(y, "strings");
    cli_report_u64(y, h->pool_count);
    cli_report_key(y, "object_bytes");
    cli_report_u64(y, h->pool_objects_size);
    cli_report_key(y, "table_offset");
    cli_report_u64(y, h->pool_table_off);
    cli_report_key(y, "early_strings");
    cli_report_u64(y, h->pool_early_count);
    cli_report_key(y, "sums_offset");
    cli_report_u64(y, h->pool_sums_off);
    cli_report_key(y, "block_size");
    cli_report_u64(y, h->pool_block_size);
    cli_report_key(y, "sums_checksum");
    cli_report_hex(y, h->pool_sums_checksum);
    cli_report_map_end(y);
    cli_report_key(y, "flags");
    cli_report_u64(y, h->flags);
    cli_report_map_end(y);
}

/* PY_VERSION_HEX as "3.11.2" or "3.12.0rc1". */
static void
format_py_version(uint32_t hex, char *buf, size_t size)
{
    static const char *const levels[16] = {
        [0xa] = "a", [0xb] = "b", [0xc] = "rc", [0xf] = "",
    };
    unsigned level = (hex >> 4) & 0xf;
    const char *tag = levels[level] != NULL ? levels[level] : "?";

    snprintf(buf, size, "%u.%u.%u", hex >> 24, (hex >> 16) & 0xff,
             (hex >> 8) & 0xff);
    if (level != 0xf) {
        size_t n = strlen(buf);
        snprintf(buf + n, size - n, "%s%u", tag, hex & 0xf);
    }
}

static void
emit_fingerprint(cli_report *y, const struct cds_disk_fingerprint *fp)
{
    static const struct {
        uint32_t bit;
        const char *name;
    } flags[] = {
        {CDS_BUILD_DEBUG, "debug"},
        {CDS_BUILD_TRACE_REFS, "trace_refs"},
        {CDS_BUILD_REF_DEBUG, "ref_debug"},
        {CDS_BUILD_GIL_DISABLED, "gil_disabled"},
    };
    char version[32];

    cli_report_key(y, "fingerprint");
    cli_report_map_begin(y);
    cli_report_key(y, "py_version_hex");
    snprintf(version, sizeof(version), "0x%08x", fp->py_version_hex);
    cli_report_plain(y, version);
    cli_report_key(y, "python_version");
    format_py_version(fp->py_version_hex, version, sizeof(version));
    cli_report_str(y, version);
    /* importlib.util.MAGIC_NUMBER as a little-endian uint32: the number
     * proper is its low 16 bits, then "\r\n" */
    cli_report_key(y, "pyc_magic");
    cli_report_u64(y, fp->pyc_magic);
    cli_report_key(y, "pyc_magic_number");
    cli_report_u64(y, fp->pyc_magic & 0xffffu);
    cli_report_key(y, "pointer_size");
    cli_report_u64(y, fp->pointer_size);
    cli_report_key(y, "byte_order");
    cli_report_str(y, fp->byte_order == 1   ? "little"
                    : fp->byte_order == 2 ? "big"
                                          : "unknown");
    cli_report_key(y, "long_shift");
    cli_report_u64(y, fp->long_shift);
    cli_report_key(y, "wchar_size");
    cli_report_u64(y, fp->wchar_size);
    cli_report_key(y, "build_flags");
    cli_report_u64(y, fp->build_flags);
    cli_report_key(y, "build_flag_names");
    cli_report_seq_begin(y);
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
        if (fp->build_flags & flags[i].bit) {
            cli_report_str(y, flags[i].name);
        }
    }
    cli_report_seq_end(y);
    cli_report_key(y, "layout_hash");
    cli_report_hex(y, fp->layout_hash);
    cli_report_key(y, "runtime_hash");
    cli_report_hex(y, fp->runtime_hash);
    /* fixed-size fields: not necessarily NUL-terminated in the file */
    cli_report_key(y, "cache_tag");
    cli_report_strn(y, fp->cache_tag, sizeof(fp->cache_tag));
    cli_report_key(y, "soabi");
    cli_report_strn(y, fp->soabi, sizeof(fp->soabi));
    cli_report_key(y, "build_info");
    cli_report_strn(y, fp->build_info, sizeof(fp->build_info));
    cli_report_key(y, "compiler");
    cli_report_strn(y, fp->compiler, sizeof(fp->compiler));
    cli_report_key(y, "quicken_hash");
    cli_report_hex(y, fp->quicken_hash);
    cli_report_map_end(y);
}

static void
emit_totals(cli_report *y, const cds_archive *a)
{
    const struct cds_disk_header *h = a->header;
    struct kind_counts kc = {{0}};
    uint64_t objects = 0, object_bytes = 0, reloc = 0, ext = 0;
    uint64_t frozen = 0, shared = 0, seg_bytes = 0, packages = 0;

    for (uint32_t i = 0; i < h->nmodules; i++) {
        const struct cds_disk_module *m = &a->modules[i];
        count_kinds(a, i, &kc);
        objects += m->nobjects;
        object_bytes += m->objects_size;
        reloc += m->nreloc;
        ext += m->next;
        frozen += m->nfrozen;
        shared += m->nshared;
        seg_bytes += m->seg_size;
        packages += (m->flags & CDS_MODULE_PACKAGE) != 0;
    }
    cli_report_key(y, "totals");
    cli_report_map_begin(y);
    cli_report_key(y, "modules");
    cli_report_u64(y, h->nmodules);
    cli_report_key(y, "packages");
    cli_report_u64(y, packages);
    cli_report_key(y, "objects");
    cli_report_u64(y, objects);
    cli_report_key(y, "objects_by_kind");
    emit_kinds(y, &kc);
    cli_report_key(y, "relocations");
    cli_report_u64(y, reloc);
    cli_report_key(y, "externals");
    cli_report_u64(y, ext);
    cli_report_key(y, "frozensets");
    cli_report_u64(y, frozen);
    cli_report_key(y, "pool_refs");
    cli_report_u64(y, shared);
    cli_report_key(y, "pool_strings");
    cli_report_u64(y, h->pool_count);
    cli_report_key(y, "object_bytes");
    cli_report_u64(y, object_bytes);
    cli_report_key(y, "segment_bytes");
    cli_report_u64(y, seg_bytes);
    cli_report_key(y, "pool_bytes");
    cli_report_u64(y, h->pool_size);
    cli_report_key(y, "index_bytes");
    cli_report_u64(y, h->index_size);
    cli_report_map_end(y);
}

static void
emit_module(cli_report *y, const cds_archive *a, uint32_t i)
{
    const struct cds_disk_module *m = &a->modules[i];

    cli_report_map_begin(y);
    cli_report_key(y, "name");
    cli_report_str(y, cds_module_name(a, i));
    cli_report_key(y, "origin");
    cli_report_str(y, cds_module_origin(a, i));
    cli_report_key(y, "search");
    cli_report_str(y, cds_module_search(a, i));
    cli_report_key(y, "package");
    cli_report_bool(y, (m->flags & CDS_MODULE_PACKAGE) != 0);
    cli_report_key(y, "source_mtime_ns");
    cli_report_i64(y, m->source_mtime_ns);
    cli_report_key(y, "source_size");
    cli_report_u64(y, m->source_size);
    cli_report_key(y, "source_hash");
    cli_report_hex(y, m->source_hash);
    cli_report_key(y, "segment");
    cli_report_map_begin(y);
    cli_report_key(y, "offset");
    cli_report_u64(y, m->seg_offset);
    cli_report_key(y, "size");
    cli_report_u64(y, m->seg_size);
    cli_report_key(y, "checksum");
    cli_report_hex(y, m->seg_checksum);
    cli_report_map_end(y);
    cli_report_key(y, "objects");
    cli_report_u64(y, m->nobjects);
    cli_report_key(y, "object_bytes");
    cli_report_u64(y, m->objects_size);
    cli_report_key(y, "relocations");
    cli_report_u64(y, m->nreloc);
    cli_report_key(y, "externals");
    cli_report_u64(y, m->next);
    cli_report_key(y, "pool_refs");
    cli_report_u64(y, m->nshared);
    cli_report_map_end(y);
}

int
cli_inspect_write(const char *path, const struct cli_inspect_options *opt)
{
    cds_archive a;
    cds_error err;
    cli_report *y = NULL;
    char msg[256];
    int rc, status = CLI_EXIT_FAIL;

    /* read-only, no fingerprint expected: inspect any interpreter's */
    rc = cds_archive_open(&a, path, 0, NULL, &err);
    if (rc < 0) {
        cli_archive_error_write(path, err.message, rc);
        return CLI_EXIT_FAIL;
    }
    if ((y = cli_report_create(stdout, opt->json ? CLI_REPORT_JSON
                                                       : CLI_REPORT_YAML)) == NULL) {
        cli_archive_error_write(path, "out of memory", CDS_ENOMEM);
        goto out;
    }
    cli_report_map_begin(y);
    cli_report_key(y, "archive");
    cli_report_str(y, path);
    emit_header(y, &a);
    emit_fingerprint(y, &a.header->fingerprint);
    emit_totals(y, &a);
    if (opt->modules) {
        cli_report_key(y, "modules");
        cli_report_seq_begin(y);
        for (uint32_t i = 0; i < a.header->nmodules; i++) {
            emit_module(y, &a, i);
        }
        cli_report_seq_end(y);
    }
    cli_report_map_end(y);
    if (cli_report_finish(y, msg, sizeof(msg)) < 0) {
        fprintf(stderr, "pycds: inspect: %s\n", msg);
        goto out;
    }
    status = CLI_EXIT_OK;
out:
    cli_report_destroy(y);
    cds_archive_close(&a);
    return status;
}
