/* SPDX-License-Identifier: MIT */
/* Checksums and name hashes: the only door to xxHash (XXH3, 64 bits). */
#ifndef CDS_CHECKSUM_H
#define CDS_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

/* XXH3-64 of len bytes, seed 0.  Used for every checksum in the file and
 * for module-name hashes (format.md 1.3). */
uint64_t cds_hash(const void *data, size_t len);

#endif
