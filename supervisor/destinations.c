/*
 * Where a jailed socket's bytes are headed (`socket inet loopback`).  The
 * jail's filter sends connect(), sendto() with a destination, sendmsg()
 * and sendmmsg() to the supervisor (seccomp.c: add_destination_rules);
 * this file reads the destination the call names and says whether it
 * leaves the jail's loopback, which is then reported as a violation.
 *
 * The answer to the call is always the kernel's own (the notification is
 * continued): the jail's network namespace holds only lo, so a destination
 * outside it fails with ENETUNREACH whatever is decided here.  That is why
 * reading the agent's memory is safe here although the agent can change
 * it between our read and the kernel's (a racing agent only changes what
 * is reported, never what is reached), and why an unreadable destination
 * is not reported: the kernel refuses the call (EFAULT) or routes it.
 *
 * What counts as leaving: a stream connect() to any address but the
 * jail's own (127.0.0.0/8, ::1, the unspecified address, their
 * IPv4-mapped forms); a datagram sent to one; and a datagram connect()
 * to one on port 53 (a resolver asking a server outside the jail, which
 * would send as soon as the connect worked).  Other datagram connects
 * send nothing: glibc makes one to sort every lookup's answers.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "addr.h"
#include "supervisor.h"

/* A datagram connect() to this port is a lookup through a server. */
#define DNS_PORT 53

/* sendmmsg() headers read per call: the first one leaving is reported. */
#define MMSG_MAX 16

/* The jail's own addresses: what its loopback answers. */
static const char *const jail_local[] = {"127.0.0.0/8", "0.0.0.0", "::1", "::"};

bool
aj_destination_watched(int nr)
{
	return nr == SYS_connect || nr == SYS_sendto || nr == SYS_sendmsg || nr == SYS_sendmmsg;
}

static bool
is_jail_local(const struct sockaddr *sa)
{
	for (size_t i = 0; i < AJ_ARRAY_SIZE(jail_local); i++) {
		struct aj_cidr c;

		if (aj_cidr_parse(jail_local[i], &c, NULL, 0) == 0 && aj_cidr_contains(&c, sa))
			return true;
	}
	return false;
}

/* LEN bytes of the notified task's memory at ADDR.  Valid only if the
 * notification still is after the read (the caller checks once, at the
 * end): then the task waited in its call throughout, and the pid read
 * from was its own. */
static bool
read_exact(pid_t pid, uint64_t addr, void *buf, size_t len)
{
	struct iovec local = {.iov_base = buf, .iov_len = len};
	struct iovec remote = {.iov_base = (void *)(uintptr_t)addr, .iov_len = len};

	return process_vm_readv(pid, &local, 1, &remote, 1, 0) == (ssize_t)len;
}

/* The type of the notified task's socket FD (SOCK_STREAM, ...), or -1. */
static int
socket_type(int listener, const struct seccomp_notif *req, int fd)
{
	int pidfd = (int)syscall(SYS_pidfd_open, req->pid, 0), copy, type = -1;
	socklen_t len = sizeof(type);

	if (pidfd < 0)
		return -1;
	if (ioctl(listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &req->id) != 0) {
		close(pidfd);
		return -1;
	}
	copy = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
	close(pidfd);
	if (copy < 0)
		return -1;
	if (getsockopt(copy, SOL_SOCKET, SO_TYPE, &type, &len) != 0)
		type = -1;
	close(copy);
	return type;
}

/* Read the sockaddr of LEN bytes at ADDR into D; true when it is an inet
 * address outside the jail. */
static bool
leaves(pid_t pid, uint64_t addr, uint64_t len, struct aj_destination *d)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (addr == 0 || len < sizeof(sa_family_t))
		return false;
	if (len > sizeof(ss))
		len = sizeof(ss);
	if (!read_exact(pid, addr, &ss, (size_t)len))
		return false;
	if (ss.ss_family == AF_INET && len >= sizeof(struct sockaddr_in))
		d->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	else if (ss.ss_family == AF_INET6 && len >= sizeof(struct sockaddr_in6))
		d->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	else
		return false; /* AF_UNIX, AF_UNSPEC (disconnect), a short address */
	if (is_jail_local((struct sockaddr *)&ss))
		return false;
	d->family = ss.ss_family;
	aj_addr_format((struct sockaddr *)&ss, d->address, sizeof(d->address));
	return true;
}

/* The destination of a sendmsg()'s header at ADDR. */
static bool
msghdr_leaves(pid_t pid, uint64_t addr, struct aj_destination *d)
{
	struct msghdr h;

	return read_exact(pid, addr, &h, sizeof(h)) &&
	       leaves(pid, (uint64_t)(uintptr_t)h.msg_name, h.msg_namelen, d);
}

static bool
decide(pid_t pid, const struct seccomp_data *c, struct aj_destination *d)
{
	switch (c->nr) {
	case SYS_connect:
		d->call = "connect";
		return leaves(pid, c->args[1], c->args[2], d);
	case SYS_sendto:
		d->call = "sendto";
		return leaves(pid, c->args[4], c->args[5], d);
	case SYS_sendmsg:
		d->call = "sendmsg";
		return msghdr_leaves(pid, c->args[1], d);
	case SYS_sendmmsg:
		d->call = "sendmmsg";
		for (uint64_t i = 0; i < c->args[2] && i < MMSG_MAX; i++)
			if (msghdr_leaves(pid, c->args[1] + i * sizeof(struct mmsghdr), d))
				return true;
		return false;
	default:
		return false;
	}
}

int
aj_destination_read(int listener, const struct seccomp_notif *req, struct aj_destination *out)
{
	struct aj_destination d = {.fd = (int)req->data.args[0]};

	if (!aj_destination_watched(req->data.nr))
		return 0;
	/* The destination first: a call inside the jail (the common case)
	 * costs one or two reads.  The type only for a call that leaves: it
	 * decides a connect() (only a stream's, or a datagram's to port 53,
	 * is reported) and is part of every report. */
	if (!decide((pid_t)req->pid, &req->data, &d))
		return 0;
	d.type = socket_type(listener, req, d.fd);
	if (req->data.nr == SYS_connect && d.type == SOCK_DGRAM && d.port != DNS_PORT)
		return 0;
	if (ioctl(listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &req->id) != 0)
		return 0;
	*out = d;
	return 1;
}

void
aj_destination_summary(const struct aj_destination *d, char *out, size_t len)
{
	snprintf(out, len, d->family == AF_INET6 ? "%s [%s]:%u" : "%s %s:%u", d->call, d->address,
		 d->port);
}

void
aj_destination_args(const struct aj_destination *d, char *out, size_t len)
{
	const char *type = d->type == SOCK_STREAM  ? "SOCK_STREAM"
			   : d->type == SOCK_DGRAM ? "SOCK_DGRAM"
						   : "unknown";

	snprintf(out, len,
		 "\"fd\":%d,\"family\":\"%s\",\"type\":\"%s\",\"address\":\"%s\",\"port\":%u",
		 d->fd, d->family == AF_INET6 ? "AF_INET6" : "AF_INET", type, d->address, d->port);
}
