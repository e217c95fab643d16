/* SPDX-License-Identifier: MIT */
/* The error funnel: every rejection in cds/ goes through cds__error_set. */
#include "cds.h"

#include <stdarg.h>
#include <stdio.h>

int
cds__error_set(cds_error *err, int status, int line, uint64_t offset,
               const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        err->status = status;
        err->offset = offset;
        err->line = line;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof(err->message), fmt, ap);
        va_end(ap);
        /* one line, whatever names from the file it quotes: a warning is
         * one line on stderr (control characters shown as '?') */
        for (char *c = err->message; *c != '\0'; c++) {
            if ((unsigned char)*c < 0x20 || *c == 0x7f) {
                *c = '?';
            }
        }
    }
    return status;
}

const char *
cds_status_name(int status)
{
    switch (status) {
    case CDS_OK: return "ok";
    case CDS_ENOMEM: return "out of memory";
    case CDS_EIO: return "i/o error";
    case CDS_ENOTFOUND: return "not found";
    case CDS_EFORMAT: return "not a pycds archive";
    case CDS_EVERSION: return "built for another interpreter";
    case CDS_ECORRUPT: return "corrupt";
    case CDS_ECHECKSUM: return "checksum mismatch";
    case CDS_EMAP: return "cannot map";
    case CDS_EINCOMPLETE: return "incomplete";
    case CDS_EUNSUPPORTED: return "unsupported object";
    case CDS_EPERM: return "not trusted";
    }
    return "unknown error";
}
