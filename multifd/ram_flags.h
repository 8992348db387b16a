/* ram_flags.h — flags of the be64 that starts every record of QEMU's 'ram'
 * section (reference §1.7): the low bits of a page-aligned offset. */
#ifndef MIGD_MULTIFD_RAM_FLAGS_H
#define MIGD_MULTIFD_RAM_FLAGS_H

#define RAM_SAVE_FLAG_FULL 0x01u /* obsolete, never sent */
#define RAM_SAVE_FLAG_ZERO 0x02u
#define RAM_SAVE_FLAG_MEM_SIZE 0x04u
#define RAM_SAVE_FLAG_PAGE 0x08u
#define RAM_SAVE_FLAG_EOS 0x10u
#define RAM_SAVE_FLAG_CONTINUE 0x20u
#define RAM_SAVE_FLAG_XBZRLE 0x40u
#define RAM_SAVE_FLAG_HOOK 0x80u	   /* RDMA only */
#define RAM_SAVE_FLAG_COMPRESS_PAGE 0x100u /* removed in QEMU 9.1 */
#define RAM_SAVE_FLAG_MULTIFD_FLUSH 0x200u

#define RAM_TARGET_PAGE_BITS 12
#define RAM_TARGET_PAGE_SIZE (1u << RAM_TARGET_PAGE_BITS)
#define RAM_TARGET_PAGE_MASK (~(uint64_t)(RAM_TARGET_PAGE_SIZE - 1))

#endif
