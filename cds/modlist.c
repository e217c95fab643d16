/* SPDX-License-Identifier: MIT */
/* Lines of a module list (modlist.h). */
#include "modlist.h"

#include <string.h>

static int
check_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

enum cds_list_line
cds_list_line_parse(const char *line, size_t len, const char **name,
                    size_t *namelen)
{
    const char *p = line, *end = line + len, *hash;

    *name = NULL;
    *namelen = 0;
    if (memchr(line, '\0', len) != NULL) {
        return CDS_LIST_NUL;
    }
    while (p < end && check_blank(*p)) {
        p++;
    }
    if (p < end && (*p == '@' || *p == '$')) {
        enum cds_list_line kind = *p == '@' ? CDS_LIST_RAN : CDS_LIST_INTERNED;
        for (p++; p < end && check_blank(*p); p++) {
        }
        while (end > p && check_blank(end[-1])) {
            end--;
        }
        *name = p;
        *namelen = (size_t)(end - p);
        return kind;
    }
    p = line;
    if ((hash = memchr(line, '#', len)) != NULL) {
        end = hash;
    }
    while (p < end && check_blank(*p)) {
        p++;
    }
    while (end > p && check_blank(end[-1])) {
        end--;
    }
    if (p == end) {
        return CDS_LIST_BLANK;
    }
    *name = p;
    *namelen = (size_t)(end - p);
    return CDS_LIST_NAME;
}
