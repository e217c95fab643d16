/* SPDX-License-Identifier: MIT */
/* Unit tests of cds/modlist.c: what a line of a module list holds. */
#include "unit.h"

#include "modlist.h"

#include <string.h>

static void
expect(const char *line, size_t len, enum cds_list_line want,
       const char *want_name)
{
    const char *name;
    size_t n;
    enum cds_list_line got = cds_list_line_parse(line, len, &name, &n);
    assert_int_equal(got, want);
    if (want == CDS_LIST_NAME || want == CDS_LIST_RAN ||
        want == CDS_LIST_INTERNED) {
        assert_int_equal(n, strlen(want_name));
        assert_memory_equal(name, want_name, n);
        assert_true(name >= line && name + n <= line + len);
    }
    else {
        assert_null(name);
        assert_int_equal(n, 0);
    }
}

#define EXPECT(s, want, name) expect((s), sizeof(s) - 1, (want), (name))

static void
test_modlist_names_comments_blanks(void **state)
{
    (void)state;
    EXPECT("json\n", CDS_LIST_NAME, "json");
    EXPECT("json", CDS_LIST_NAME, "json");
    EXPECT("  \tjson.decoder \t\r\n", CDS_LIST_NAME, "json.decoder");
    EXPECT("csv  # a comment\n", CDS_LIST_NAME, "csv");
    EXPECT("csv#x", CDS_LIST_NAME, "csv");
    EXPECT("caf\xc3\xa9\n", CDS_LIST_NAME, "caf\xc3\xa9");
    EXPECT("bad\xffname\n", CDS_LIST_NAME, "bad\xffname");
    EXPECT("\n", CDS_LIST_BLANK, NULL);
    EXPECT("", CDS_LIST_BLANK, NULL);
    EXPECT("   \t\r\n", CDS_LIST_BLANK, NULL);
    EXPECT("# only a comment\n", CDS_LIST_BLANK, NULL);
    EXPECT("  # indented comment", CDS_LIST_BLANK, NULL);
    EXPECT("with\0nul\n", CDS_LIST_NUL, NULL);
    EXPECT("# comment \0 too\n", CDS_LIST_NUL, NULL);
    /* code that ran in the trace: read whole, '#' included */
    EXPECT("@ 12 f /src/a.py\n", CDS_LIST_RAN, "12 f /src/a.py");
    EXPECT("  @  3 C.m /src/with # hash.py \r\n", CDS_LIST_RAN,
           "3 C.m /src/with # hash.py");
    EXPECT("@", CDS_LIST_RAN, "");
    EXPECT("@ x\0y\n", CDS_LIST_NUL, NULL);
    /* strings the trace saw interned: read whole too */
    EXPECT("$ gcd\n", CDS_LIST_INTERNED, "gcd");
    EXPECT("  $\tis_zero#x \r\n", CDS_LIST_INTERNED, "is_zero#x");
    EXPECT("$", CDS_LIST_INTERNED, "");
    EXPECT("$ a\0b\n", CDS_LIST_NUL, NULL);
    /* a name that merely contains one is a name */
    EXPECT("a$b\n", CDS_LIST_NAME, "a$b");
}

int
main(int argc, char **argv)
{
#define T(name) cmocka_unit_test(name)
    const struct CMUnitTest tests[] = {
        T(test_modlist_names_comments_blanks),
    };
#undef T
    if (unit_select(argc, argv, tests, UNIT_ARRAY_SIZE(tests)) < 0) {
        return 2;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
