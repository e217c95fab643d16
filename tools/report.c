/* SPDX-License-Identifier: MIT */
/* The inspect report's emitter, in YAML (through yamlio.c's libyaml
 * layer) or JSON (RFC 8259, written here: a handful of rules that no
 * dependency of the project implements).
 *
 * Invariants:
 *  1. Both formats get the same calls in the same order, so a report is
 *     one sequence of cli_report_* calls; JSON takes YAML's plain
 *     scalars that are JSON numbers or true/false as literals and writes
 *     every other scalar (hex, timestamps, versions) as a string.
 *  2. JSON strings are valid UTF-8 (bad bytes become U+FFFD, as in YAML)
 *     with the control characters, '"' and '\' escaped: any JSON parser
 *     reads them back as the same text.
 *  3. Errors are sticky, as in yamlio.c (cli.h). */
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define JSON_MAX_DEPTH 32

struct cli_report {
    cli_yaml *yaml; /* NULL for JSON */
    FILE *f;
    bool failed;
    char message[200];
    /* JSON: per open container, whether it has had an item yet */
    int depth;
    bool has_item[JSON_MAX_DEPTH];
    bool after_key; /* a key was written: its value comes next */
};

static int
json_fail(cli_report *r, const char *what)
{
    if (!r->failed) {
        r->failed = true;
        snprintf(r->message, sizeof(r->message), "cannot write json: %s",
                 what);
    }
    return -1;
}

cli_report *
cli_report_create(FILE *f, enum cli_report_format format)
{
    cli_report *r = calloc(1, sizeof(*r));

    if (r == NULL) {
        return NULL;
    }
    r->f = f;
    if (format == CLI_REPORT_YAML && (r->yaml = cli_yaml_create(f)) == NULL) {
        free(r);
        return NULL;
    }
    return r;
}

int
cli_report_finish(cli_report *r, char *msg, size_t msgsize)
{
    if (r->yaml != NULL) {
        return cli_yaml_finish(r->yaml, msg, msgsize);
    }
    if (!r->failed && r->depth != 0) {
        json_fail(r, "unclosed container");
    }
    if (!r->failed && (fputc('\n', r->f) == EOF || fflush(r->f) != 0 ||
                       ferror(r->f))) {
        json_fail(r, strerror(errno));
    }
    if (r->failed) {
        snprintf(msg, msgsize, "%s", r->message);
        return -1;
    }
    return 0;
}

void
cli_report_destroy(cli_report *r)
{
    if (r != NULL) {
        cli_yaml_destroy(r->yaml);
        free(r);
    }
}

/* Before any value or key: the separator and the indentation. */
static int
json_item(cli_report *r, bool is_key)
{
    if (r->failed) {
        return -1;
    }
    if (r->after_key && !is_key) {
        r->after_key = false;
        return fputs(" ", r->f) == EOF ? json_fail(r, strerror(errno)) : 0;
    }
    if (r->depth == 0) {
        return 0;
    }
    if (fprintf(r->f, "%s\n%*s", r->has_item[r->depth - 1] ? "," : "",
                2 * r->depth, "") < 0) {
        return json_fail(r, strerror(errno));
    }
    r->has_item[r->depth - 1] = true;
    return 0;
}

static int
json_open(cli_report *r, char c)
{
    if (json_item(r, false) < 0) {
        return -1;
    }
    if (r->depth == JSON_MAX_DEPTH) {
        return json_fail(r, "nested too deep");
    }
    r->has_item[r->depth++] = false;
    return fputc(c, r->f) == EOF ? json_fail(r, strerror(errno)) : 0;
}

static int
json_close(cli_report *r, char c)
{
    if (r->failed) {
        return -1;
    }
    if (r->depth == 0) {
        return json_fail(r, "close without open");
    }
    bool items = r->has_item[--r->depth];
    if ((items && fprintf(r->f, "\n%*s", 2 * r->depth, "") < 0) ||
        fputc(c, r->f) == EOF) {
        return json_fail(r, strerror(errno));
    }
    return 0;
}

/* inv. 2: s is valid UTF-8 of len bytes. */
static int
json_string(cli_report *r, const char *s, size_t len)
{
    FILE *f = r->f;
    int bad = fputc('"', f) == EOF;

    for (size_t i = 0; i < len && !bad; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            bad = fputc('\\', f) == EOF || fputc(c, f) == EOF;
        }
        else if (c < 0x20 || c == 0x7f) {
            bad = fprintf(f, "\\u%04x", c) < 0;
        }
        else {
            bad = fputc(c, f) == EOF;
        }
    }
    if (bad || fputc('"', f) == EOF) {
        return json_fail(r, strerror(errno));
    }
    return 0;
}

static int
json_text(cli_report *r, const char *s, size_t len, bool is_key)
{
    size_t n;
    char *clean = cli_utf8_sanitize(s, len, &n);
    int rc;

    if (clean == NULL) {
        return json_fail(r, "out of memory");
    }
    rc = json_item(r, is_key);
    if (rc == 0) {
        rc = json_string(r, clean, n);
    }
    if (rc == 0 && is_key) {
        rc = fputc(':', r->f) == EOF ? json_fail(r, strerror(errno)) : 0;
        r->after_key = rc == 0;
    }
    free(clean);
    return rc;
}

/* A JSON number as json.loads reads it: -?(0|[1-9][0-9]*) (the report
 * has no fractions). */
static bool
json_integer(const char *s)
{
    if (*s == '-') {
        s++;
    }
    if (*s == '0') {
        return s[1] == '\0';
    }
    if (*s < '1' || *s > '9') {
        return false;
    }
    while (*s >= '0' && *s <= '9') {
        s++;
    }
    return *s == '\0';
}

int
cli_report_map_begin(cli_report *r)
{
    return r->yaml ? cli_yaml_map_begin(r->yaml) : json_open(r, '{');
}

int
cli_report_map_end(cli_report *r)
{
    return r->yaml ? cli_yaml_map_end(r->yaml) : json_close(r, '}');
}

int
cli_report_seq_begin(cli_report *r)
{
    return r->yaml ? cli_yaml_seq_begin(r->yaml) : json_open(r, '[');
}

int
cli_report_seq_end(cli_report *r)
{
    return r->yaml ? cli_yaml_seq_end(r->yaml) : json_close(r, ']');
}

int
cli_report_key(cli_report *r, const char *key)
{
    return r->yaml ? cli_yaml_key(r->yaml, key)
                   : json_text(r, key, strlen(key), true);
}

int
cli_report_strn(cli_report *r, const char *s, size_t maxlen)
{
    return r->yaml ? cli_yaml_strn(r->yaml, s, maxlen)
                   : json_text(r, s, strnlen(s, maxlen), false);
}

int
cli_report_str(cli_report *r, const char *s)
{
    return r->yaml ? cli_yaml_strn(r->yaml, s, SIZE_MAX)
                   : json_text(r, s, strlen(s), false);
}

/* inv. 1 */
int
cli_report_plain(cli_report *r, const char *text)
{
    if (r->yaml != NULL) {
        return cli_yaml_plain(r->yaml, text);
    }
    if (json_integer(text) || strcmp(text, "true") == 0 ||
        strcmp(text, "false") == 0) {
        if (json_item(r, false) < 0) {
            return -1;
        }
        return fputs(text, r->f) == EOF ? json_fail(r, strerror(errno)) : 0;
    }
    return json_text(r, text, strlen(text), false);
}

int
cli_report_u64(cli_report *r, uint64_t v)
{
    char buf[24];
    snprintf(buf, sizeof(buf), "%" PRIu64, v);
    return cli_report_plain(r, buf);
}

int
cli_report_i64(cli_report *r, int64_t v)
{
    char buf[24];
    snprintf(buf, sizeof(buf), "%" PRId64, v);
    return cli_report_plain(r, buf);
}

int
cli_report_hex(cli_report *r, uint64_t v)
{
    char buf[24];
    snprintf(buf, sizeof(buf), "0x%016" PRIx64, v);
    return cli_report_plain(r, buf);
}

int
cli_report_bool(cli_report *r, bool v)
{
    return cli_report_plain(r, v ? "true" : "false");
}
