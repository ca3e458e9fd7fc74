/*
 * crc32c.h — CRC-32C (Castagnoli), the checksum of peer frames and of
 * streamed snapshot files.
 *
 * Software, table-driven, byte at a time: fast enough for the frame sizes
 * of the peer protocol and free of CPU feature detection.
 */
#ifndef AGENDA_CRC32C_H
#define AGENDA_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/*
 * Extend a CRC-32C over n bytes at p and return it.  Start with crc = 0;
 * feeding a buffer in pieces gives the same result as feeding it whole:
 * agenda_crc32c(agenda_crc32c(0, a, na), b, nb) == CRC of a followed by b.
 * p may be NULL when n is 0.  The standard check value holds:
 * agenda_crc32c(0, "123456789", 9) == 0xE3069283.  Pure; thread-safe.
 */
uint32_t agenda_crc32c(uint32_t crc, const void *p, size_t n);

#endif /* AGENDA_CRC32C_H */
