/* size.c — QEMU-compatible size strings (see size.h). Integer arithmetic
 * only: fractions are exact decimal numerators scaled with 128-bit products,
 * so "1.5G" is exactly 1610612736 on every host. Pure, any thread. */
#include "util/size.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* Multiplier for a suffix character, or 0 if c is not a suffix. */
static uint64_t suffix_mul(char c)
{
	switch (toupper((unsigned char)c)) {
	case 'B':
		return 1;
	case 'K':
		return 1ull << 10;
	case 'M':
		return 1ull << 20;
	case 'G':
		return 1ull << 30;
	case 'T':
		return 1ull << 40;
	case 'P':
		return 1ull << 50;
	case 'E':
		return 1ull << 60;
	}
	return 0;
}

static int parse_hex(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	const char *p = s;

	if (!isxdigit((unsigned char)*p))
		return -EINVAL;
	for (; isxdigit((unsigned char)*p); p++) {
		unsigned d = isdigit((unsigned char)*p)
				     ? (unsigned)(*p - '0')
				     : (unsigned)(toupper((unsigned char)*p) -
						  'A' + 10);
		if (v >> 60)
			return -ERANGE;
		v = v << 4 | d;
	}
	/* QEMU refuses fractions and suffixes on hex numbers. */
	if (*p)
		return -EINVAL;
	*out = v;
	return 0;
}

struct decimal {
	uint64_t integral;
	uint64_t frac_num; /* fraction = frac_num / frac_den */
	uint64_t frac_den;
	bool overflow;
};

/* Reads "[digits][.digits]" from *pp; at least one digit overall. */
static int parse_decimal(const char **pp, struct decimal *d)
{
	const char *p = *pp;
	int ndigits = 0;

	*d = (struct decimal){.frac_den = 1};
	for (; isdigit((unsigned char)*p); p++, ndigits++) {
		unsigned dig = (unsigned)(*p - '0');
		if (d->integral > (UINT64_MAX - dig) / 10)
			d->overflow = true;
		else
			d->integral = d->integral * 10 + dig;
	}
	if (*p == '.') {
		for (p++; isdigit((unsigned char)*p); p++, ndigits++) {
			/* Digits past 10^18 cannot change a 64-bit result. */
			if (d->frac_den >= 1000000000000000000ull)
				continue;
			d->frac_num = d->frac_num * 10 + (unsigned)(*p - '0');
			d->frac_den *= 10;
		}
	}
	if (!ndigits)
		return -EINVAL;
	*pp = p;
	return 0;
}

int size_parse(const char *str, char default_suffix, uint64_t *out)
{
	const char *p = str;
	struct decimal d;
	unsigned __int128 total;
	uint64_t mul;
	int ret;

	if (!str || !out)
		return -EINVAL;
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
		return parse_hex(p + 2, out);
	ret = parse_decimal(&p, &d);
	if (ret < 0)
		return ret;
	mul = *p ? suffix_mul(*p++) : suffix_mul(default_suffix);
	if (!mul || *p)
		return -EINVAL;
	if (d.frac_num && mul == 1)
		return -EINVAL;
	if (d.overflow)
		return -ERANGE;
	total = (unsigned __int128)d.integral * mul;
	/* Round the fractional bytes to nearest, as QEMU does. */
	total += ((unsigned __int128)d.frac_num * mul + d.frac_den / 2) /
		 d.frac_den;
	if (total > UINT64_MAX)
		return -ERANGE;
	*out = (uint64_t)total;
	return 0;
}

char *size_format(uint64_t n, char *buf, size_t len)
{
	static const char units[] = "BKMGTPE";
	int u = 0;

	while (n && u < 6 && !(n & 1023)) {
		n >>= 10;
		u++;
	}
	snprintf(buf, len, "%llu%c", (unsigned long long)n, units[u]);
	return buf;
}
