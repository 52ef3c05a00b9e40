/*
 * File descriptors over unix sockets (SCM_RIGHTS), at most one per
 * message: the supervisor receives the jail's seccomp listener, the broker
 * receives the agent's private channels and hands over memfds and pipes,
 * the client sends CONNECT.
 */
#ifndef AJ_FDPASS_H
#define AJ_FDPASS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Send LEN bytes at BUF as one message on SOCK (sendmsg FLAGS, MSG_NOSIGNAL
 * added; EINTR retried), with FD alongside (SCM_RIGHTS) when FD >= 0.
 * Returns the bytes sent or -errno. */
ssize_t aj_fdpass_send(int sock, const void *buf, size_t len, int fd, int flags);

/* Receive one message into BUF (CAP bytes; recvmsg FLAGS, close-on-exec
 * added; EINTR retried).  *FD is the one fd passed with it, or -1.  When
 * the sender passed more than one, or the control data was cut, every fd
 * is closed, *FD is -1 and *BAD_FDS true: the caller treats the message as
 * a protocol error.  Returns the length (the real one with MSG_TRUNC) or
 * -errno. */
ssize_t aj_fdpass_recv(int sock, void *buf, size_t cap, int flags, int *fd, bool *bad_fds);

#endif /* AJ_FDPASS_H */
