/* SPDX-License-Identifier: MIT */
/* libyaml at one border: the inspect report's YAML emitter (report.c
 * drives it) and pycds.yaml.
 *
 * This is the only file that includes yaml.h.  libyaml returns 1 for
 * success and 0 for failure; every function here returns 0 or -1 like the
 * rest of pycds, and libyaml's problem strings become one-line messages.
 *
 * Invariants:
 *  1. Every scalar handed to libyaml is valid UTF-8: libyaml refuses
 *     anything else, and archive strings (paths) are only known to be
 *     NUL-terminated.  Bad bytes become U+FFFD.
 *  2. A string value is never written so that a YAML reader would take it
 *     for a number, a boolean or null: such strings are quoted.
 *  3. The emitter's errors are sticky (cli.h); an event not handed to
 *     libyaml is deleted here, one that is handed over is libyaml's. */
#include "cli.h"

#include <yaml.h>

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---------------------------------------------------------------------
 * Emitter */

struct cli_yaml {
    yaml_emitter_t emitter;
    FILE *f;
    bool failed;
    char message[200];
};

static int
fail(cli_yaml *y, const char *what)
{
    if (!y->failed) {
        y->failed = true;
        snprintf(y->message, sizeof(y->message), "cannot write yaml: %s",
                 what != NULL ? what : "unknown error");
    }
    return -1;
}

/* Hand ev to the emitter (inv. 3).  ok is libyaml's result of building
 * the event: 1 for success. */
static int
emit(cli_yaml *y, yaml_event_t *ev, int ok)
{
    if (!ok) {
        return fail(y, "out of memory");
    }
    if (y->failed) {
        yaml_event_delete(ev);
        return -1;
    }
    if (!yaml_emitter_emit(&y->emitter, ev)) {
        return fail(y, y->emitter.problem);
    }
    return 0;
}

cli_yaml *
cli_yaml_create(FILE *f)
{
    cli_yaml *y = calloc(1, sizeof(*y));
    yaml_event_t ev;

    if (y == NULL) {
        return NULL;
    }
    if (!yaml_emitter_initialize(&y->emitter)) {
        free(y);
        return NULL;
    }
    y->f = f;
    yaml_emitter_set_output_file(&y->emitter, f);
    yaml_emitter_set_unicode(&y->emitter, 1);
    /* no folding: one line per value, so that grep and diff work */
    yaml_emitter_set_width(&y->emitter, -1);
    emit(y, &ev, yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING));
    emit(y, &ev,
         yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1));
    return y;
}

int
cli_yaml_finish(cli_yaml *y, char *msg, size_t msgsize)
{
    yaml_event_t ev;

    emit(y, &ev, yaml_document_end_event_initialize(&ev, 1));
    emit(y, &ev, yaml_stream_end_event_initialize(&ev));
    if (!y->failed && !yaml_emitter_flush(&y->emitter)) {
        fail(y, y->emitter.problem);
    }
    if (!y->failed && (fflush(y->f) != 0 || ferror(y->f))) {
        fail(y, strerror(errno));
    }
    if (y->failed) {
        snprintf(msg, msgsize, "%s", y->message);
        return -1;
    }
    return 0;
}

void
cli_yaml_destroy(cli_yaml *y)
{
    if (y != NULL) {
        yaml_emitter_delete(&y->emitter);
        free(y);
    }
}

int
cli_yaml_map_begin(cli_yaml *y)
{
    yaml_event_t ev;
    return emit(y, &ev,
                yaml_mapping_start_event_initialize(
                    &ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE));
}

int
cli_yaml_map_end(cli_yaml *y)
{
    yaml_event_t ev;
    return emit(y, &ev, yaml_mapping_end_event_initialize(&ev));
}

int
cli_yaml_seq_begin(cli_yaml *y)
{
    yaml_event_t ev;
    return emit(y, &ev,
                yaml_sequence_start_event_initialize(
                    &ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE));
}

int
cli_yaml_seq_end(cli_yaml *y)
{
    yaml_event_t ev;
    return emit(y, &ev, yaml_sequence_end_event_initialize(&ev));
}

/* One scalar of len valid UTF-8 bytes; plain_ok says whether a reader
 * would take the plain form for a string (inv. 2).  Otherwise libyaml
 * picks a quoted style. */
static int
emit_scalar(cli_yaml *y, const char *s, size_t len, bool plain_ok)
{
    yaml_event_t ev;
    if (len > INT_MAX) {
        return fail(y, "scalar too long");
    }
    return emit(y, &ev,
                yaml_scalar_event_initialize(
                    &ev, NULL, NULL, (yaml_char_t *)(uintptr_t)s, (int)len,
                    plain_ok, 1, YAML_ANY_SCALAR_STYLE));
}

/* Length of the valid UTF-8 sequence at p (at most n bytes), or 0.
 * Rejects overlong forms, surrogates and values above U+10FFFF. */
static size_t
load_utf8(const unsigned char *p, size_t n)
{
    uint32_t v;
    size_t width;

    if (p[0] < 0x80) {
        return 1;
    }
    if ((p[0] & 0xe0) == 0xc0) {
        width = 2;
        v = p[0] & 0x1f;
    }
    else if ((p[0] & 0xf0) == 0xe0) {
        width = 3;
        v = p[0] & 0x0f;
    }
    else if ((p[0] & 0xf8) == 0xf0) {
        width = 4;
        v = p[0] & 0x07;
    }
    else {
        return 0;
    }
    if (width > n) {
        return 0;
    }
    for (size_t k = 1; k < width; k++) {
        if ((p[k] & 0xc0) != 0x80) {
            return 0;
        }
        v = (v << 6) | (p[k] & 0x3f);
    }
    if ((width == 2 && v < 0x80) || (width == 3 && v < 0x800) ||
        (width == 4 && v < 0x10000) || (v >= 0xd800 && v <= 0xdfff) ||
        v > 0x10ffff) {
        return 0;
    }
    return width;
}

bool
cli_utf8_check(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, w;

    while (i < len && (w = load_utf8(p + i, len - i)) != 0) {
        i += w;
    }
    return i == len;
}

/* inv. 2: would a YAML 1.1 or 1.2 reader take plain s for a string?
 * Conservative: module names and absolute paths pass, anything that
 * starts like a number, an indicator or a special word is quoted. */
static bool
check_plain_string(const char *s, size_t len)
{
    static const char *const words[] = {
        "null", "true", "false", "yes", "no", "on", "off", "y", "n",
    };
    unsigned char c = (unsigned char)s[0];

    if (len == 0) {
        return false;
    }
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
          c == '/' || c >= 0x80)) {
        return false;
    }
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if (strlen(words[i]) == len && strncasecmp(s, words[i], len) == 0) {
            return false;
        }
    }
    return true;
}

char *
cli_utf8_sanitize(const char *s, size_t len, size_t *outlen)
{
    const unsigned char *p = (const unsigned char *)s;
    char *copy;
    size_t n = 0, w;

    /* inv. 1: each bad byte becomes U+FFFD (3 bytes) */
    if (len > (SIZE_MAX - 1) / 3 || (copy = malloc(3 * len + 1)) == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < len; i += w) {
        w = load_utf8(p + i, len - i);
        if (w == 0) {
            memcpy(copy + n, "\xef\xbf\xbd", 3);
            n += 3;
            w = 1;
        }
        else {
            memcpy(copy + n, s + i, w);
            n += w;
        }
    }
    copy[n] = '\0';
    *outlen = n;
    return copy;
}

int
cli_yaml_strn(cli_yaml *y, const char *s, size_t maxlen)
{
    size_t len = strnlen(s, maxlen), n;
    char *copy;
    int rc;

    if (cli_utf8_check(s, len)) {
        return emit_scalar(y, s, len, check_plain_string(s, len));
    }
    if ((copy = cli_utf8_sanitize(s, len, &n)) == NULL) {
        return fail(y, "out of memory");
    }
    rc = emit_scalar(y, copy, n, check_plain_string(copy, n));
    free(copy);
    return rc;
}

int
cli_yaml_key(cli_yaml *y, const char *key)
{
    return cli_yaml_strn(y, key, SIZE_MAX);
}

int
cli_yaml_plain(cli_yaml *y, const char *text)
{
    return emit_scalar(y, text, strlen(text), true);
}

/* ---------------------------------------------------------------------
 * pycds.yaml */

/* What a config read needs besides the result: the file, for messages
 * and relative paths. */
struct config_reader {
    yaml_document_t *doc;
    const char *path;
    char *dir;      /* directory of path, for relative values */
    char *msg;
    size_t msgsize;
};

static int
fail_config(struct config_reader *r, const yaml_node_t *node,
            const char *what, const char *key)
{
    if (node != NULL) {
        snprintf(r->msg, r->msgsize, "%s:%zu: %s%s%s%s", r->path,
                 node->start_mark.line + 1, what, key ? " '" : "",
                 key ? key : "", key ? "'" : "");
    }
    else {
        snprintf(r->msg, r->msgsize, "%s: %s", r->path, what);
    }
    return -1;
}

static const char *
find_scalar(const yaml_node_t *node)
{
    return node->type == YAML_SCALAR_NODE
               ? (const char *)node->data.scalar.value
               : NULL;
}

/* A path value: relative ones are taken from the config's directory.
 * A python without a slash stays a name for execvp's PATH search. */
static int
set_path(struct config_reader *r, const yaml_node_t *node, const char *key,
         bool command, char **out)
{
    const char *v = find_scalar(node);

    if (*out != NULL) {
        return fail_config(r, node, "duplicate key", key);
    }
    if (v == NULL || v[0] == '\0') {
        return fail_config(r, node, "expected a path for", key);
    }
    if (v[0] == '/' || (command && strchr(v, '/') == NULL)) {
        *out = strdup(v);
    }
    else {
        size_t n = strlen(r->dir) + 1 + strlen(v) + 1;
        if ((*out = malloc(n)) != NULL) {
            snprintf(*out, n, "%s/%s", r->dir, v);
        }
    }
    if (*out == NULL) {
        return fail_config(r, NULL, "out of memory", NULL);
    }
    return 0;
}

/* A list of patterns: a sequence of scalars, a single scalar, or null. */
static int
set_patterns(struct config_reader *r, const yaml_node_t *node,
             const char *key, char ***out, size_t *nout)
{
    const yaml_node_item_t *items = NULL;
    size_t n = 0;
    yaml_node_item_t one;

    if (*out != NULL) {
        return fail_config(r, node, "duplicate key", key);
    }
    if (node->type == YAML_SEQUENCE_NODE) {
        items = node->data.sequence.items.start;
        n = (size_t)(node->data.sequence.items.top - items);
    }
    else if (node->type == YAML_SCALAR_NODE) {
        /* "exclude:" with nothing after it is an empty list */
        if (node->data.scalar.length == 0 ||
            strcmp((const char *)node->data.scalar.value, "~") == 0 ||
            strcmp((const char *)node->data.scalar.value, "null") == 0) {
            n = 0;
        }
        else {
            one = (yaml_node_item_t)(node - r->doc->nodes.start + 1);
            items = &one;
            n = 1;
        }
    }
    else {
        return fail_config(r, node, "expected a list of patterns for", key);
    }
    *out = calloc(n + 1, sizeof(char *));
    if (*out == NULL) {
        return fail_config(r, NULL, "out of memory", NULL);
    }
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *item = yaml_document_get_node(r->doc, items[i]);
        const char *v = item != NULL ? find_scalar(item) : NULL;
        if (v == NULL || v[0] == '\0') {
            return fail_config(r, item != NULL ? item : node,
                               "expected a pattern in", key);
        }
        if (((*out)[i] = strdup(v)) == NULL) {
            return fail_config(r, NULL, "out of memory", NULL);
        }
        *nout = i + 1;
    }
    return 0;
}

static int
load_config(struct config_reader *r, struct cli_config *c)
{
    const yaml_node_t *root = yaml_document_get_root_node(r->doc);
    const yaml_node_pair_t *pair;

    if (root == NULL) {
        return 0; /* an empty file: no settings */
    }
    if (root->type != YAML_MAPPING_NODE) {
        return fail_config(r, root, "expected a mapping of settings", NULL);
    }
    for (pair = root->data.mapping.pairs.start;
         pair < root->data.mapping.pairs.top; pair++) {
        const yaml_node_t *k = yaml_document_get_node(r->doc, pair->key);
        const yaml_node_t *v = yaml_document_get_node(r->doc, pair->value);
        const char *key = k != NULL ? find_scalar(k) : NULL;
        int rc;

        if (key == NULL || v == NULL) {
            return fail_config(r, k != NULL ? k : root,
                               "expected a plain key", NULL);
        }
        if (strcmp(key, "archive") == 0) {
            rc = set_path(r, v, key, false, &c->archive);
        }
        else if (strcmp(key, "list") == 0) {
            rc = set_path(r, v, key, false, &c->list);
        }
        else if (strcmp(key, "python") == 0) {
            rc = set_path(r, v, key, true, &c->python);
        }
        else if (strcmp(key, "include") == 0) {
            rc = set_patterns(r, v, key, &c->include, &c->ninclude);
        }
        else if (strcmp(key, "exclude") == 0) {
            rc = set_patterns(r, v, key, &c->exclude, &c->nexclude);
        }
        else {
            rc = fail_config(r, k, "unknown key", key);
        }
        if (rc < 0) {
            return rc;
        }
    }
    return 0;
}

int
cli_config_read(struct cli_config *c, const char *path, char *msg,
                size_t msgsize)
{
    struct config_reader r = {.path = path, .msg = msg, .msgsize = msgsize};
    yaml_parser_t parser;
    yaml_document_t doc;
    bool parser_ok = false, doc_ok = false;
    const char *slash;
    FILE *f = NULL;
    int rc = -1;

    memset(c, 0, sizeof(*c));
    if ((c->path = strdup(path)) == NULL) {
        snprintf(msg, msgsize, "%s: out of memory", path);
        goto out;
    }
    slash = strrchr(path, '/');
    r.dir = slash == NULL ? strdup(".")
                          : strndup(path, slash == path
                                              ? 1
                                              : (size_t)(slash - path));
    if (r.dir == NULL) {
        snprintf(msg, msgsize, "%s: out of memory", path);
        goto out;
    }
    if ((f = fopen(path, "rb")) == NULL) {
        snprintf(msg, msgsize, "%s: cannot open: %s", path, strerror(errno));
        goto out;
    }
    if (!yaml_parser_initialize(&parser)) {
        snprintf(msg, msgsize, "%s: out of memory", path);
        goto out;
    }
    parser_ok = true;
    yaml_parser_set_input_file(&parser, f);
    if (!yaml_parser_load(&parser, &doc)) {
        snprintf(msg, msgsize, "%s:%zu: %s", path,
                 parser.problem_mark.line + 1,
                 parser.problem != NULL ? parser.problem : "parse error");
        goto out;
    }
    doc_ok = true;
    r.doc = &doc;
    rc = load_config(&r, c);
out:
    if (doc_ok) {
        yaml_document_delete(&doc);
    }
    if (parser_ok) {
        yaml_parser_delete(&parser);
    }
    if (f != NULL) {
        fclose(f);
    }
    free(r.dir);
    return rc;
}

static void
free_patterns(char **p)
{
    if (p != NULL) {
        for (size_t i = 0; p[i] != NULL; i++) {
            free(p[i]);
        }
        free(p);
    }
}

void
cli_config_clear(struct cli_config *c)
{
    free(c->path);
    free(c->archive);
    free(c->list);
    free(c->python);
    free_patterns(c->include);
    free_patterns(c->exclude);
    memset(c, 0, sizeof(*c));
}
