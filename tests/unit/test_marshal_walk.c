/* SPDX-License-Identifier: MIT */
/* Unit tests of cds/marshal_walk.c: the marshal walker that turns
 * frozenset records into tuple records so that the dump can read the
 * order stock CPython inserts a frozenset's items in.  Streams are made
 * by hand, record by record, as Python/marshal.c writes them; each is
 * walked from an exactly sized heap copy, so AddressSanitizer catches any
 * read past its end. */
#include "unit.h"

#include "marshal_walk.h"

#include <stdlib.h>
#include <string.h>

/* A stream under construction. */
struct stream {
    uint8_t b[8192];
    size_t n;
};

static void
put(struct stream *s, const void *p, size_t n)
{
    assert_true(s->n + n <= sizeof(s->b));
    memcpy(s->b + s->n, p, n);
    s->n += n;
}

static void
put_byte(struct stream *s, unsigned v)
{
    uint8_t c = (uint8_t)v;
    put(s, &c, 1);
}

static void
put_i32(struct stream *s, int32_t v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    uint8_t le[4] = {(uint8_t)u, (uint8_t)(u >> 8), (uint8_t)(u >> 16),
                     (uint8_t)(u >> 24)};
    put(s, le, 4);
}

static void
put_int(struct stream *s, int32_t v, bool ref)
{
    put_byte(s, 'i' | (ref ? 0x80u : 0u));
    put_i32(s, v);
}

static void
put_short_ascii(struct stream *s, const char *text)
{
    put_byte(s, 'z');
    put_byte(s, (unsigned)strlen(text));
    put(s, text, strlen(text));
}

/* Walk a heap copy of exactly s->n bytes; the result replaces s. */
static int
walk(struct stream *s, size_t *nsets, cds_error *err)
{
    uint8_t *copy = malloc(s->n ? s->n : 1);
    assert_non_null(copy);
    memcpy(copy, s->b, s->n);
    int rc = cds_marshal_frozensets_to_tuples(copy, s->n, nsets, err);
    memcpy(s->b, copy, s->n);
    free(copy);
    return rc;
}

/* frozenset({5, 13}) with FLAG_REF: the type byte becomes a tuple's, the
 * flag and everything else stay. */
static void
test_marshal_walk_frozenset_becomes_tuple(void **state)
{
    (void)state;
    struct stream s = {0}, want;
    cds_error err;
    size_t nsets = 99;

    put_byte(&s, '>' | 0x80u);
    put_i32(&s, 2);
    put_int(&s, 5, true);
    put_int(&s, 13, false);
    want = s;
    want.b[0] = '(' | 0x80u;
    assert_status(walk(&s, &nsets, &err), 0);
    assert_int_equal(nsets, 1);
    assert_memory_equal(s.b, want.b, s.n);

    /* without the flag, and empty */
    memset(&s, 0, sizeof(s));
    put_byte(&s, '>');
    put_i32(&s, 0);
    assert_status(walk(&s, &nsets, &err), 0);
    assert_int_equal(nsets, 1);
    assert_int_equal(s.b[0], '(');
}

/* A code object (3.11+ layout) whose constants hold frozensets inside a
 * tuple, next to a record of every other kind marshal writes: only the
 * two frozenset type bytes change. */
static void
test_marshal_walk_every_record_kind(void **state)
{
    (void)state;
    struct stream s = {0}, want;
    cds_error err;
    size_t nsets = 0, at_fs1, at_fs2, at_set;

    put_byte(&s, 'c' | 0x80u);
    for (int i = 0; i < 5; i++) { /* argcount .. flags */
        put_i32(&s, i);
    }
    put_byte(&s, 's'); /* co_code */
    put_i32(&s, 4);
    put(&s, "\x97\x00\x53\x00", 4);
    put_byte(&s, '('); /* co_consts */
    put_i32(&s, 26);
    put_byte(&s, 'N');
    put_byte(&s, 'F');
    put_byte(&s, 'T');
    put_byte(&s, 'S');
    put_byte(&s, '.');
    put_int(&s, -7, false);
    put_byte(&s, 'I');
    put(&s, "\1\2\3\4\5\6\7\0", 8);
    put_byte(&s, 'f');
    put_byte(&s, 3);
    put(&s, "1.5", 3);
    put_byte(&s, 'g');
    put(&s, "\0\0\0\0\0\0\xf8\x3f", 8);
    put_byte(&s, 'x');
    put_byte(&s, 1);
    put(&s, "1", 1);
    put_byte(&s, 2);
    put(&s, "-2", 2);
    put_byte(&s, 'y');
    put(&s, "0123456789abcdef", 16);
    put_byte(&s, 'l'); /* -(2**30): three 15-bit digits, negative */
    put_i32(&s, -3);
    put(&s, "\0\0\0\0\1\0", 6);
    put_byte(&s, 's');
    put_i32(&s, 3);
    put(&s, ">>>", 3); /* a '>' in data is not a record */
    put_byte(&s, 't');
    put_i32(&s, 2);
    put(&s, "ab", 2);
    put_byte(&s, 'u');
    put_i32(&s, 2);
    put(&s, "\xc3\xa9", 2);
    put_byte(&s, 'a');
    put_i32(&s, 1);
    put(&s, ">", 1);
    put_byte(&s, 'A' | 0x80u);
    put_i32(&s, 1);
    put(&s, "q", 1);
    put_short_ascii(&s, "short");
    put_byte(&s, 'Z');
    put_byte(&s, 0);
    put_byte(&s, 'r'); /* a reference to the code object itself */
    put_i32(&s, 0);
    put_byte(&s, '[');
    put_i32(&s, 1);
    put_int(&s, 1, false);
    put_byte(&s, '{');
    put_short_ascii(&s, "k");
    put_int(&s, 2, false);
    put_byte(&s, '0');
    at_set = s.n;
    put_byte(&s, '<'); /* a set (not a constant kind, but marshal's) */
    put_i32(&s, 1);
    put_int(&s, 3, false);
    put_byte(&s, ':'); /* slice (3.14+) */
    put_byte(&s, 'N');
    put_int(&s, 4, false);
    put_byte(&s, 'N');
    put_byte(&s, ')');
    put_byte(&s, 1);
    at_fs1 = s.n;
    put_byte(&s, '>');
    put_i32(&s, 2);
    put_int(&s, 21, false);
    at_fs2 = s.n;
    put_byte(&s, '>' | 0x80u); /* nested: a frozenset item of it */
    put_i32(&s, 1);
    put_short_ascii(&s, "n");
    put_short_ascii(&s, "tail");
    put_byte(&s, ')'); /* co_names .. co_qualname: 6 more objects */
    put_byte(&s, 0);
    put_byte(&s, ')');
    put_byte(&s, 0);
    put_byte(&s, 's');
    put_i32(&s, 0);
    put_short_ascii(&s, "m.py");
    put_short_ascii(&s, "<module>");
    put_short_ascii(&s, "<module>");
    put_i32(&s, 1); /* co_firstlineno */
    put_byte(&s, 's');
    put_i32(&s, 0);
    put_byte(&s, 's');
    put_i32(&s, 0);
    want = s;
    want.b[at_fs1] = '(';
    want.b[at_fs2] = '(' | 0x80u;
    assert_int_equal(s.b[at_set], '<');
    int rc = walk(&s, &nsets, &err);
    if (rc != 0) {
        print_error("%s at %llu\n", err.message,
                    (unsigned long long)err.offset);
    }
    assert_status(rc, 0);
    assert_int_equal(nsets, 2);
    assert_memory_equal(s.b, want.b, s.n);
}

/* Every prefix of a valid stream is rejected, never read past. */
static void
test_marshal_walk_truncated_every_length(void **state)
{
    (void)state;
    struct stream s = {0};
    cds_error err;

    put_byte(&s, ')');
    put_byte(&s, 4);
    put_byte(&s, '>');
    put_i32(&s, 1);
    put_byte(&s, 'l');
    put_i32(&s, 2);
    put(&s, "\1\0\1\0", 4);
    put_short_ascii(&s, "abc");
    put_byte(&s, '{');
    put_int(&s, 1, false);
    put_byte(&s, 'g');
    put(&s, "\0\0\0\0\0\0\0\0", 8);
    put_byte(&s, '0');
    put_byte(&s, 'u');
    put_i32(&s, 1);
    put(&s, "x", 1);
    size_t full = s.n;
    for (size_t len = 0; len < full; len++) {
        struct stream t = s;
        t.n = len;
        int rc = walk(&t, NULL, &err);
        assert_status(rc, CDS_ECORRUPT);
        unit_check_error(&err, rc);
    }
    assert_status(walk(&s, NULL, &err), 0);
}

/* An unknown type code, sizes that cannot be, nesting deeper than
 * marshal allows are rejected; bytes after the object are not. */
static void
test_marshal_walk_rejects_bad_streams(void **state)
{
    (void)state;
    struct stream s = {0};
    cds_error err;
    size_t nsets;

    /* bytes after the object: ignored, as marshal.loads ignores them */
    put_byte(&s, '>');
    put_i32(&s, 1);
    put_int(&s, 1, false);
    put_byte(&s, '>');
    assert_status(walk(&s, &nsets, &err), 0);
    assert_int_equal(nsets, 1);
    assert_int_equal(s.b[0], '(');
    assert_int_equal(s.b[s.n - 1], '>');

    /* a dict ends at a NULL record, FLAG_REF set or not */
    memset(&s, 0, sizeof(s));
    put_byte(&s, '{');
    put_short_ascii(&s, "k");
    put_int(&s, 2, false);
    put_byte(&s, '0' | 0x80u);
    assert_status(walk(&s, NULL, &err), 0);

    memset(&s, 0, sizeof(s));
    put_byte(&s, ')');
    put_byte(&s, 1);
    put_byte(&s, 'Q');
    assert_status(walk(&s, NULL, &err), CDS_ECORRUPT);
    assert_non_null(strstr(err.message, "unknown type code 0x51"));
    assert_int_equal(err.offset, 2);

    memset(&s, 0, sizeof(s));
    put_byte(&s, '(');
    put_i32(&s, -1);
    assert_status(walk(&s, NULL, &err), CDS_ECORRUPT);

    memset(&s, 0, sizeof(s)); /* 2**31 - 1 items in 5 bytes: at once */
    put_byte(&s, '>');
    put_i32(&s, INT32_MAX);
    assert_status(walk(&s, NULL, &err), CDS_ECORRUPT);

    memset(&s, 0, sizeof(s));
    put_byte(&s, 'l');
    put_i32(&s, INT32_MIN);
    assert_status(walk(&s, NULL, &err), CDS_ECORRUPT);

    memset(&s, 0, sizeof(s));
    for (int i = 0; i < 2100; i++) {
        put_byte(&s, ')');
        put_byte(&s, 1);
    }
    put_byte(&s, 'N');
    assert_status(walk(&s, NULL, &err), CDS_ECORRUPT);
    assert_non_null(strstr(err.message, "nested too deep"));

    memset(&s, 0, sizeof(s)); /* as deep as marshal goes is fine */
    for (int i = 0; i < 1999; i++) {
        put_byte(&s, ')');
        put_byte(&s, 1);
    }
    put_byte(&s, 'N');
    assert_status(walk(&s, NULL, &err), 0);
}

int
main(int argc, char **argv)
{
#define T(name) cmocka_unit_test(name)
    const struct CMUnitTest tests[] = {
        T(test_marshal_walk_frozenset_becomes_tuple),
        T(test_marshal_walk_every_record_kind),
        T(test_marshal_walk_truncated_every_length),
        T(test_marshal_walk_rejects_bad_streams),
    };
#undef T
    if (unit_select(argc, argv, tests, UNIT_ARRAY_SIZE(tests)) < 0) {
        return 2;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
