/* qemufile.h — QEMU's buffered migration stream (its QEMUFile) over one
 * channel: big-endian integers, length-prefixed strings, raw buffers.
 * Writers buffer up to 32 KiB plus up to 64 iovecs that point straight at
 * guest RAM (qfile_put_ram: no copy), and remember the first I/O error so
 * encoders need not check every put; check qfile_flush()/qfile_error().
 * Readers return an error from every call: their input is hostile.
 * One thread per qfile (the owner of its channel). */
#ifndef MIGD_MULTIFD_QEMUFILE_H
#define MIGD_MULTIFD_QEMUFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct channel;
struct qfile;

#define QFILE_BUF_SIZE 32768
#define QFILE_MAX_IOV 64

struct qfile *qfile_writer_new(struct channel *ch);
struct qfile *qfile_reader_new(struct channel *ch);
/* Frees the qfile (not the channel; a writer is not flushed). */
void qfile_free(struct qfile *f);
struct channel *qfile_channel(struct qfile *f);

/* ---- writer ---- */
void qfile_put_u8(struct qfile *f, uint8_t v);
void qfile_put_be16(struct qfile *f, uint16_t v);
void qfile_put_be32(struct qfile *f, uint32_t v);
void qfile_put_be64(struct qfile *f, uint64_t v);
void qfile_put_buffer(struct qfile *f, const void *buf, size_t len);
/* u8 length + bytes (len <= 255: longer strings set -EINVAL). */
void qfile_put_str8(struct qfile *f, const char *s);
/* Queues len bytes at buf by reference (guest RAM): buf must stay mapped
 * until the next flush. The content sent is what buf holds at flush. */
void qfile_put_ram(struct qfile *f, const void *buf, size_t len);
/* Sends everything buffered. 0 or the first error (-errno). Once an error
 * is set, flushes drop what was put (the stream is broken anyway). Puts
 * flush by themselves when the buffer or the iovecs run out; a put that
 * meets an error only records it. -EINVAL on a reader. */
int qfile_flush(struct qfile *f);
/* The first error met, 0 if none (writer; readers return theirs). */
int qfile_error(const struct qfile *f);
/* The stream position: bytes put so far, buffered or sent (writer), or
 * bytes consumed by get/skip calls (reader; peek does not count). */
uint64_t qfile_pos(const struct qfile *f);

/* ---- reader ----
 * Every call returns 0 or -errno: -EPIPE when the stream ends before the
 * first byte of the item, -EPROTO when it ends inside it, or the
 * transport's error. Errors are not sticky (the caller stops at the first).
 * A call reads at most what it needs plus one buffer (32 KiB) of
 * read-ahead, and allocates nothing. */
int qfile_get_u8(struct qfile *f, uint8_t *v);
int qfile_peek_u8(struct qfile *f, uint8_t *v);
int qfile_get_be16(struct qfile *f, uint16_t *v);
int qfile_get_be32(struct qfile *f, uint32_t *v);
int qfile_get_be64(struct qfile *f, uint64_t *v);
/* Exactly len bytes into buf: first what is buffered, then the rest is
 * read straight into buf (each read also refills the buffer with what
 * follows, in the same system call). */
int qfile_get_buffer(struct qfile *f, void *buf, size_t len);
int qfile_skip(struct qfile *f, size_t len);
/* u8 length + bytes into buf (256 bytes), NUL-terminated; buf is "" on
 * error. A length without its text is -EPROTO. */
int qfile_get_str8(struct qfile *f, char buf[256]);
/* Read-ahead: bytes received from the channel but not consumed yet, and
 * dropping them (so the caller can reposition a seekable channel, as
 * mapped-ram does around each block's pages). Reader only. */
size_t qfile_readahead(const struct qfile *f);
void qfile_drop_readahead(struct qfile *f);

#endif
