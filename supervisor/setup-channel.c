/*
 * The setup channel between the supervisor and the jail's init: one
 * SOCK_SEQPACKET socketpair, fixed-size messages (struct aj_setup_msg), at
 * most one descriptor with a message whose type carries one.  Both ends
 * send with aj_setup_send() and receive with aj_setup_recv().
 *
 * The conversation, in order (supervisor/spawn.c and supervisor/init.c):
 *
 *   supervisor -> init   GO            the id maps are written
 *   init -> supervisor   DOOR + fd     the broker's end of the door
 *   supervisor -> init   GO            the broker runs on it
 *   init -> supervisor   PTY + fd      the agent's terminal (its master), when it has one
 *   init -> supervisor   LISTENER [fd] seccomp's notification listener, or none
 *   init -> supervisor   EXECUTED      the command runs
 *   init -> supervisor   STOPPED       the jail stopped as a whole (job control; repeats)
 *   init -> supervisor   AGENT_STATUS  the agent's wait status, as init exits
 *
 * Init sends PTY and LISTENER while the supervisor starts the broker, so
 * they wait in the socket until the second GO has been sent.
 *
 * FAILURE (step, errno, detail) replaces any of init's messages, and ends
 * the conversation.
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fdpass.h"
#include "supervisor.h"

/* The types whose message carries a descriptor (or, for LISTENER, may). */
static bool
carries_fd(int32_t type)
{
	return type == AJ_SETUP_DOOR || type == AJ_SETUP_LISTENER || type == AJ_SETUP_PTY ||
	       type == AJ_SETUP_PROXY || type == AJ_SETUP_GO;
}

int
aj_setup_send(int fd, const struct aj_setup_msg *msg, int passed)
{
	ssize_t n;

	if (passed >= 0) {
		n = aj_fdpass_send(fd, msg, sizeof(*msg), passed, 0);
		return n == (ssize_t)sizeof(*msg) ? 0 : n < 0 ? (int)n : -EIO;
	}
	do
		n = send(fd, msg, sizeof(*msg), MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n == (ssize_t)sizeof(*msg) ? 0 : n < 0 ? -errno : -EIO;
}

int
aj_setup_recv(int fd, struct aj_setup_msg *msg, int *passed)
{
	bool bad_fds;
	ssize_t n = aj_fdpass_recv(fd, msg, sizeof(*msg), 0, passed, &bad_fds);

	/* Init exited with a message of ours unread (it failed before
	 * reading the second "go"): the kernel then reports ECONNRESET once,
	 * ahead of what init sent before exiting, which is still queued (its
	 * FAILURE).  Read on: the error is cleared by being reported. */
	if (n == -ECONNRESET)
		n = aj_fdpass_recv(fd, msg, sizeof(*msg), 0, passed, &bad_fds);
	if (n < 0)
		return (int)n;
	/* Exactly one fd is taken; any other count is a broken message. */
	if (bad_fds)
		return -EPROTO;
	/* At most one fd, and only where the message type says so. */
	if (*passed >= 0 && (n != (ssize_t)sizeof(*msg) || !carries_fd(msg->type))) {
		close(*passed);
		*passed = -1;
		return -EPROTO;
	}
	if (n == 0)
		return 0;
	if ((size_t)n != sizeof(*msg))
		return -EPROTO;
	msg->detail[sizeof(msg->detail) - 1] = '\0';
	return 1;
}
