/*
 * Sealed memfds: how a body or the policy crosses a process boundary so
 * that the receiver knows nobody can change it afterwards.  The seal set
 * is written once, here; the sender seals with aj_memfd_seal(), the
 * receiver checks with aj_memfd_is_sealed().
 */
#ifndef AJ_MEMFD_H
#define AJ_MEMFD_H

#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>

/* Nothing can be written, grown, shrunk, or unsealed any more. */
#define AJ_MEMFD_SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

/* A new, empty memfd that can be sealed (close-on-exec).  Returns the fd or
 * -errno. */
int aj_memfd_new(const char *name);

/* Add AJ_MEMFD_SEALS to FD and rewind it to offset 0.  Returns 0 or -errno. */
int aj_memfd_seal(int fd);

/* Does FD carry every seal of AJ_MEMFD_SEALS (so it is a memfd)? */
bool aj_memfd_is_sealed(int fd);

/* A sealed memfd holding LEN bytes of DATA.  Returns the fd or -errno. */
int aj_memfd_of(const char *name, const void *data, size_t len);

#endif /* AJ_MEMFD_H */
