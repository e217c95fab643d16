/* SPDX-License-Identifier: MIT */
/* Shared declarations of the pycds command-line tool.
 *
 * The tool is four files: pycds.c (argument parsing, trace/dump/run,
 * verify), inspect.c (the inspect report), report.c (the report's
 * emitter, YAML or JSON) and yamlio.c, the only includer of yaml.h, which
 * wraps libyaml's emitter and reads pycds.yaml.  libyaml
 * returns 1 for success; everything declared here returns 0 or -1, like
 * the rest of pycds, and the conversion happens inside yamlio.c. */
#ifndef PYCDS_TOOLS_CLI_H
#define PYCDS_TOOLS_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Exit statuses of the tool itself (trace, run and dump pass on the
 * program's own). */
#define CLI_EXIT_OK 0
#define CLI_EXIT_FAIL 1   /* the archive is bad, a file cannot be read */
#define CLI_EXIT_USAGE 2  /* bad arguments or a bad pycds.yaml */

/* ---------------------------------------------------------------------
 * Report output (report.c): the inspect report, as YAML or JSON
 *
 * Errors are sticky, as with ferror(): after the first failure every call
 * does nothing and returns -1, and cli_report_finish() reports it, so a
 * report can be written as a straight sequence of calls with one check at
 * the end. */

typedef struct cli_report cli_report;
enum cli_report_format { CLI_REPORT_YAML, CLI_REPORT_JSON };

/* Start a report on f: a YAML stream with one document, or one JSON
 * value.  Returns NULL when out of memory. */
cli_report *cli_report_create(FILE *f, enum cli_report_format format);

/* End the report and flush f.  Returns 0, or -1 with a one-line message
 * in msg.  Does not free r. */
int cli_report_finish(cli_report *r, char *msg, size_t msgsize);

/* Free r; accepts NULL. */
void cli_report_destroy(cli_report *r);

/* Mappings (JSON objects) and sequences (arrays).  Inside a mapping, keys
 * and values alternate: cli_report_key() then one value (a scalar, a
 * mapping or a sequence). */
int cli_report_map_begin(cli_report *r);
int cli_report_map_end(cli_report *r);
int cli_report_seq_begin(cli_report *r);
int cli_report_seq_end(cli_report *r);
int cli_report_key(cli_report *r, const char *key);

/* Scalars.  str() is always a string (YAML quotes whatever a reader
 * would take for something else: "true", "1.5", ""); bytes that are not
 * UTF-8 become U+FFFD; strn() takes a fixed-size field that may lack its
 * NUL.  u64() and i64() write integers, bool() true or false, hex() 0x
 * and 16 digits (a JSON string); plain() writes text that is already a
 * valid plain YAML scalar (a timestamp), in JSON a number or boolean if
 * it is one, else a string. */
int cli_report_str(cli_report *r, const char *s);
int cli_report_strn(cli_report *r, const char *s, size_t maxlen);
int cli_report_u64(cli_report *r, uint64_t v);
int cli_report_i64(cli_report *r, int64_t v);
int cli_report_hex(cli_report *r, uint64_t v);
int cli_report_bool(cli_report *r, bool v);
int cli_report_plain(cli_report *r, const char *text);

/* ---------------------------------------------------------------------
 * YAML output (yamlio.c), for report.c
 *
 * A thin layer over libyaml's emitter, with cli_report's sticky errors
 * and scalar rules. */

typedef struct cli_yaml cli_yaml;
cli_yaml *cli_yaml_create(FILE *f);
int cli_yaml_finish(cli_yaml *y, char *msg, size_t msgsize);
void cli_yaml_destroy(cli_yaml *y);
int cli_yaml_map_begin(cli_yaml *y);
int cli_yaml_map_end(cli_yaml *y);
int cli_yaml_seq_begin(cli_yaml *y);
int cli_yaml_seq_end(cli_yaml *y);
int cli_yaml_key(cli_yaml *y, const char *key);
int cli_yaml_strn(cli_yaml *y, const char *s, size_t maxlen);
int cli_yaml_plain(cli_yaml *y, const char *text);

/* Are the len bytes at s valid UTF-8 as Python's strict decoder takes it
 * (no overlong forms, surrogates or values above U+10FFFF)? */
bool cli_utf8_check(const char *s, size_t len);

/* A malloc'd NUL-terminated copy of the len bytes at s with each byte
 * that is not part of valid UTF-8 replaced by U+FFFD; its length in
 * *outlen.  NULL when out of memory. */
char *cli_utf8_sanitize(const char *s, size_t len, size_t *outlen);

/* ---------------------------------------------------------------------
 * pycds.yaml (yamlio.c)
 *
 *   archive: heap.img        # default ARCHIVE of run, dump, inspect, verify
 *   list: heap.lst           # default LIST of trace and dump
 *   python: /usr/bin/python3.11   # default --python of dump
 *   include: [myapp, myapp.*]     # dump keeps only names matching one
 *   exclude: ["test.*", "*.tests.*"]   # ...and drops names matching one
 *
 * Relative paths are relative to the directory of the file. */

struct cli_config {
    char *path;      /* the file read, or NULL when there was none */
    char *archive;   /* absolute or as given; NULL when unset */
    char *list;
    char *python;
    char **include;  /* fnmatch(3) patterns on module names */
    size_t ninclude;
    char **exclude;
    size_t nexclude;
};

/* Read path into c (zeroed first).  Returns 0, or -1 with a one-line
 * message in msg ("pycds.yaml:3: unknown key 'arhive'").  c owns what it
 * holds until cli_config_clear(), also on failure. */
int cli_config_read(struct cli_config *c, const char *path, char *msg,
                    size_t msgsize);

/* Free what c holds and zero it; accepts a zeroed config. */
void cli_config_clear(struct cli_config *c);

/* ---------------------------------------------------------------------
 * inspect (inspect.c) */

struct cli_inspect_options {
    bool modules;  /* include the per-module list */
    bool json;     /* JSON instead of YAML */
};

/* Write the report of the archive at path to stdout.  Returns an
 * exit status; on a bad archive prints the one-line error. */
int cli_inspect_write(const char *path,
                      const struct cli_inspect_options *opt);

/* Print "pycds: PATH: MESSAGE (STATUS NAME)" on stderr (pycds.c). */
void cli_archive_error_write(const char *path, const char *message,
                             int status);

#endif /* PYCDS_TOOLS_CLI_H */
