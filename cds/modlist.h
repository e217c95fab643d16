/* SPDX-License-Identifier: MIT */
/* The module list (PYCDSLIST, docs/usage.md): the one place that says
 * what a line of it holds, for the import hook that dumps it and the CLI
 * that filters it. */
#ifndef CDS_MODLIST_H
#define CDS_MODLIST_H

#include <stddef.h>

enum cds_list_line {
    CDS_LIST_BLANK = 0, /* nothing but blanks and a comment */
    CDS_LIST_NAME,      /* a name: *name, *namelen */
    CDS_LIST_NUL,       /* a NUL byte somewhere in the line: skipped */
    CDS_LIST_RAN,       /* '@ LINE QUALNAME FILE': code that ran in the
                         * trace; *name, *namelen: what follows the '@' */
    CDS_LIST_INTERNED,  /* '$ STRING': a string the traced program interned
                         * before a module naming it was loaded; *name,
                         * *namelen: STRING */
};

/* Classify line[0..len) (as getline(3) returns it, newline included or
 * not): '#' starts a comment, spaces, tabs, CR and LF around the name are
 * ignored.  A line whose first non-blank is '@' is a record of code that
 * ran while tracing (docs/usage.md), read whole: no comment in it; '$'
 * likewise starts a record of a string the trace saw interned.  For
 * CDS_LIST_NAME, *name points into line and *namelen is the name's
 * length (its bytes are not checked: the callers decode them as UTF-8
 * their own way). */
enum cds_list_line cds_list_line_parse(const char *line, size_t len,
                                       const char **name, size_t *namelen);

#endif
