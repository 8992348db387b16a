/* parse.c — see parse.h. */
#include "util/parse.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>

int parse_hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int parse_fd_number(const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (end == s || errno || *end || v < 0 || v > INT_MAX)
		return -1;
	return (int)v;
}
