/*
 * The hand-over of the fetch policy from the supervisor to the broker: one
 * encoder, one decoder, both named for the operation.  The supervisor
 * writes the policy it loaded into a sealed memfd (aj_handover_write());
 * the broker, before it reads a byte from the agent, checks the seals and
 * decodes it (aj_handover_read()).  The broker therefore decides with
 * exactly what the supervisor loaded and hashed, never with a file that
 * could have changed since, and never re-parses profile text.
 *
 * The format is binary and belongs to one build (the supervisor and the
 * broker are always installed together): a header with a magic, a version
 * and the sizes of the records, then the rules and the address ranges as
 * their structs, then the profile's path and the CA text.  The decoder
 * trusts nothing it has not checked: every count and length is bounded,
 * every string terminated, every field in its range; anything else is
 * refused (the broker then does not start: fail closed).
 */
#ifndef AJ_HANDOVER_H
#define AJ_HANDOVER_H

#include <stddef.h>
#include <stdint.h>

#include "policy.h"

/* P as bytes: *OUT is a new buffer of *LEN bytes the caller frees.
 * Returns 0 or -ENOMEM. */
int aj_handover_encode(const struct aj_policy *p, uint8_t **out, size_t *len);

/* LEN bytes at BUF into *OUT (written only on success; release it with
 * aj_policy_clear()).  Returns 0, -EBADMSG with ERR saying what is wrong,
 * or -ENOMEM. */
int aj_handover_decode(const uint8_t *buf, size_t len, struct aj_policy *out, char *err,
		       size_t errlen);

/* P encoded into a new sealed memfd (close-on-exec).  Returns the fd or
 * -errno. */
int aj_handover_write(const struct aj_policy *p);

/* Decode the sealed memfd FD (not closed) into *OUT.  Returns 0, -EPERM
 * (FD is not a sealed memfd), -EBADMSG with ERR, or -errno from reading. */
int aj_handover_read(int fd, struct aj_policy *out, char *err, size_t errlen);

#endif /* AJ_HANDOVER_H */
