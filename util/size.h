/* size.h — QEMU's size syntax ("128M", "1.5G", "0x1000", "4096B").
 * Owns parsing and formatting of byte counts given by people: the command
 * line and options. Pure functions, any thread. */
#ifndef MIGD_UTIL_SIZE_H
#define MIGD_UTIL_SIZE_H

#include <stddef.h>
#include <stdint.h>

#define SIZE_KiB (1ull << 10)
#define SIZE_MiB (1ull << 20)
#define SIZE_GiB (1ull << 30)
#define SIZE_TiB (1ull << 40)

/* Parses str the way QEMU's qemu_strtosz() does: a decimal number with an
 * optional fraction, or a 0x hex integer, followed by at most one suffix
 * (B K M G T P E, either case, powers of 1024). A number without a suffix is
 * scaled by default_suffix ('B' for bytes, 'M' for -m's MiB). A fraction
 * needs a multiplier larger than one byte. The whole string must be used.
 * Returns 0, -EINVAL (malformed) or -ERANGE (does not fit in 64 bits). */
int size_parse(const char *str, char default_suffix, uint64_t *out);

/* Formats n as the largest exact binary unit ("128M", "1536K", "7B") into
 * buf; returns buf. */
char *size_format(uint64_t n, char *buf, size_t len);

#endif
