/* parse.h — small text parsers shared by the control plane and the
 * transports: hex digits and QEMU's decimal fd numbers. Pure functions,
 * any thread. */
#ifndef MIGD_UTIL_PARSE_H
#define MIGD_UTIL_PARSE_H

/* Value of one hex digit (either case), -1 if c is not one. */
int parse_hex_digit(char c);
/* A whole decimal number in 0..INT_MAX the way QEMU's qemu_parse_fd()
 * reads it (strtol: optional blanks and sign, then digits and nothing
 * else); -1 when s is not one. */
int parse_fd_number(const char *s);

#endif
