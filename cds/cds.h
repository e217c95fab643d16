/* SPDX-License-Identifier: MIT */
/* Status codes and the error record shared by every layer of pycds.
 *
 * Fallible functions return 0 or a negative cds_status and describe the
 * failure in a caller-owned cds_error.  There is no global error state:
 * the reader is a pure function of its input, so the fuzzer, the CLI and
 * the import hook can all use it side by side. */
#ifndef CDS_CDS_H
#define CDS_CDS_H

#include <stddef.h>
#include <stdint.h>

enum cds_status {
    CDS_OK = 0,
    CDS_ENOMEM = -1,    /* allocation failed */
    CDS_EIO = -2,       /* open, read, write, stat or rename failed */
    CDS_ENOTFOUND = -3, /* no such module in the archive */
    CDS_EFORMAT = -4,   /* not a pycds archive, or an unknown format version */
    CDS_EVERSION = -5,  /* a pycds archive, built for another interpreter */
    CDS_ECORRUPT = -6,  /* structurally inconsistent */
    CDS_ECHECKSUM = -7, /* a checksum does not match */
    CDS_EMAP = -8,      /* could not map as asked */
    CDS_EINCOMPLETE = -9, /* the writer never finished this file */
    CDS_EUNSUPPORTED = -10, /* an object the archive cannot hold */
    CDS_EPERM = -11,    /* others could have written it: not trusted */
};

typedef struct cds_error {
    int status;        /* the enum cds_status returned */
    uint64_t offset;   /* file offset the message is about, or UINT64_MAX */
    int line;          /* source line that reported it (one breakpoint) */
    char message[256]; /* one line, lower case, what and where */
} cds_error;

/* Record an error; returns status so that callers can write
 * `return cds__error_set(err, CDS_ECORRUPT, __LINE__, off, "...")`. */
int cds__error_set(cds_error *err, int status, int line, uint64_t offset,
                   const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* The one corruption funnel: records __LINE__ so that a breakpoint on
 * cds__error_set catches every rejection. */
#define CDS_CORRUPT(err, off, ...)                                          \
    cds__error_set((err), CDS_ECORRUPT, __LINE__, (uint64_t)(off), __VA_ARGS__)
#define CDS_FAIL(err, status, off, ...)                                     \
    cds__error_set((err), (status), __LINE__, (uint64_t)(off), __VA_ARGS__)

/* Static name of a status ("corrupt", "checksum", ...). */
const char *cds_status_name(int status);

#endif /* CDS_CDS_H */
