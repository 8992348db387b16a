/* byteorder.h — big-endian loads and stores on byte arrays, the only way
 * multifd/ reads or writes a wire integer (never by casting a buffer to a
 * struct). Byte-by-byte shifts: compilers turn them into one bswap+move,
 * and they are correct at any alignment. Pure inline functions: any thread. */
#ifndef MIGD_MULTIFD_BYTEORDER_H
#define MIGD_MULTIFD_BYTEORDER_H

#include <stdint.h>

static inline void mfd_store_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void mfd_store_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline void mfd_store_be64(uint8_t *p, uint64_t v)
{
	mfd_store_be32(p, (uint32_t)(v >> 32));
	mfd_store_be32(p + 4, (uint32_t)v);
}

static inline uint16_t mfd_load_be16(const uint8_t *p)
{
	return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}

static inline uint32_t mfd_load_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t mfd_load_be64(const uint8_t *p)
{
	return (uint64_t)mfd_load_be32(p) << 32 | mfd_load_be32(p + 4);
}

#endif
