/*
 * The broker's launch: its own program (never a fork of the supervisor,
 * whose memory holds the whole profile and the caller's state), started
 * with posix_spawn in its own session (a terminal's ^C is for the agent,
 * forwarded by the supervisor), with exactly the three descriptors of the
 * contract in common/fds.h, and stdio of its own (nothing of the caller's
 * terminal: its log lines come to the supervisor through a pipe).  It drops to its user itself when
 * started by root, sets no_new_privs and dies with the supervisor (broker/main.c).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "handover.h"
#include "memfd.h"
#include "supervisor.h"

static void
close_stdio(int stdio[3])
{
	for (int i = 0; i < 3; i++)
		if (stdio[i] >= 0)
			close(stdio[i]);
}

#ifndef AJ_LIBEXECDIR
#define AJ_LIBEXECDIR "/usr/local/libexec/agentjail"
#endif

/* The policy the broker decides with, as a sealed memfd: exactly what was
 * loaded and hashed here, never a file that could change before the broker
 * reads it (common/handover.h).  Returns the fd or -errno with ERR. */
static int
launch_policy(const struct aj_profile *profile, char *const *secrets, char *err, size_t errlen)
{
	struct aj_policy with = profile->fetch;
	int fd;

	with.secrets = (char **)secrets;
	fd = aj_handover_write(&with);

	if (fd < 0)
		return aj_err(err, errlen, fd, "%s failed: writing the policy: %s",
			      aj_step_name(AJ_STEP_BROKER), strerror(-fd));
	return fd;
}

/* The broker's stdio: /dev/null in, /dev/null out, and a pipe for its log
 * lines, whose read end (non-blocking) goes to *LOG_FD.  STDIO gets the
 * three fds to place (the caller closes them once the broker has them). */
static int
launch_stdio(int stdio[3], int *log_fd)
{
	int p[2];

	stdio[0] = stdio[1] = stdio[2] = -1;
	stdio[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	stdio[1] = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (stdio[0] < 0 || stdio[1] < 0 || pipe2(p, O_CLOEXEC) < 0) {
		int e = errno;

		close_stdio(stdio);
		return -e;
	}
	if (fcntl(p[0], F_SETFL, O_NONBLOCK) < 0) {
		int e = errno;

		close(p[0]);
		close(p[1]);
		close_stdio(stdio);
		return -e;
	}
	stdio[2] = p[1];
	*log_fd = p[0];
	return 0;
}

int
aj_launch_broker(const char *path, const struct aj_profile *profile, char *const *secrets,
		 const struct aj_identity *id,
		 int door, int audit_end, const int *proxy, size_t n_proxy, struct aj_broker *broker,
		 char *err, size_t errlen)
{
	int fds[4 + AJ_PROXY_SOCKETS] = {door, -1, audit_end, -1, -1, -1, -1, -1, -1},
	    ca[2] = {-1, -1};
	char parent[32], user[64], listeners[16];
	char *argv[8] = {"agentjail-broker", "--supervisor", parent};
	size_t argc = 3;
	char *envp[] = {NULL};
	int stdio[3], log_fd = -1;
	pid_t child;
	int r, fd, policy_fd;

	*broker = (struct aj_broker){.pid = -1, .pidfd = -1, .log_fd = -1, .ca_fd = -1};
	if (path == NULL)
		path = AJ_LIBEXECDIR "/agentjail-broker";
	snprintf(parent, sizeof(parent), "%d", (int)getpid());
	snprintf(user, sizeof(user), "%u:%u", (unsigned)id->broker_uid, (unsigned)id->broker_gid);
	if (id->drop) {
		argv[argc++] = "--user";
		argv[argc++] = user;
	}
	/* The captures, then at least one listener, or no proxy at all. */
	if (n_proxy > AJ_PROXY_SOCKETS || (n_proxy > 0 && n_proxy <= AJ_PROXY_CAPTURES))
		return aj_err(err, errlen, -EPROTO, "%s failed: %zu proxy sockets from init",
			      aj_step_name(AJ_STEP_BROKER), n_proxy);
	if (n_proxy > 0) {
		snprintf(listeners, sizeof(listeners), "%zu", n_proxy - AJ_PROXY_CAPTURES);
		argv[argc++] = "--proxy";
		argv[argc++] = listeners;
	}
	r = launch_stdio(stdio, &log_fd);
	if (r < 0)
		return aj_err(err, errlen, r, "%s failed: its stdio: %s",
			      aj_step_name(AJ_STEP_BROKER), strerror(-r));
	policy_fd = launch_policy(profile, secrets, err, errlen);
	if (policy_fd < 0) {
		close_stdio(stdio);
		close(log_fd);
		return policy_fd;
	}
	fds[1] = policy_fd;
	if (n_proxy > 0 && pipe2(ca, O_CLOEXEC) < 0) {
		r = -errno;
		close(policy_fd);
		close_stdio(stdio);
		close(log_fd);
		return aj_err(err, errlen, r, "%s failed: a pipe for its CA: %s",
			      aj_step_name(AJ_STEP_BROKER), strerror(-r));
	}
	fds[3] = ca[1];
	for (size_t i = 0; i < n_proxy; i++)
		fds[4 + i] = proxy[i];
	r = aj_process_spawn(path, argv, envp, fds, n_proxy > 0 ? 4 + n_proxy : 3, stdio, -1,
			     false, &child);
	close(policy_fd);
	close_stdio(stdio);
	if (ca[1] >= 0)
		close(ca[1]);
	if (r != 0) {
		if (ca[0] >= 0)
			close(ca[0]);
		close(log_fd);
		return aj_err(err, errlen, -r, "%s failed: %s: %s (%s)",
			      aj_step_name(AJ_STEP_BROKER), path, strerror(r),
			      aj_step_hint(AJ_STEP_BROKER, r));
	}

	/* Watched and stopped through a pidfd from here on: the pid alone
	 * could be reused once the broker is reaped. */
	fd = (int)syscall(SYS_pidfd_open, child, 0);
	if (fd < 0) {
		r = errno;
		aj_process_kill_and_reap(child, -1, NULL);
		close(log_fd);
		if (ca[0] >= 0)
			close(ca[0]);
		return aj_err(err, errlen, -r, "pidfd_open: %s", strerror(r));
	}
	*broker = (struct aj_broker){.pid = child, .pidfd = fd, .log_fd = log_fd, .ca_fd = ca[0]};
	return 0;
}

/* What the broker logged before it failed, to the caller's stderr (the
 * run's relay is not watching yet).  Its lines are in the pipe already:
 * it wrote them before its end of the CA pipe closed. */
static void
relay_log(const struct aj_broker *broker)
{
	char buf[4096];
	ssize_t n;

	while ((n = read(broker->log_fd, buf, sizeof(buf))) > 0)
		(void)!write(STDERR_FILENO, buf, (size_t)n);
}

/* A CA certificate is well under this. */
#define CA_PEM_MAX 16384
/* The broker makes its CA before it serves: a P-256 key and one
 * signature, milliseconds. */
#define CA_WAIT_MS 10000

int
aj_launch_take_ca(struct aj_broker *broker, int *out, char *err, size_t errlen)
{
	static const char begin[] = "-----BEGIN CERTIFICATE-----\n";
	static const char end[] = "-----END CERTIFICATE-----\n";
	char pem[CA_PEM_MAX + 2]; /* one byte more than allowed, and the NUL */
	size_t len = 0;
	int r = 0;

	*out = -1;
	while (len < CA_PEM_MAX + 1) {
		struct pollfd p = {.fd = broker->ca_fd, .events = POLLIN};
		ssize_t n;

		r = poll(&p, 1, CA_WAIT_MS);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			r = r == 0 ? -ETIMEDOUT : -errno;
			break;
		}
		n = read(broker->ca_fd, pem + len, CA_PEM_MAX + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = n < 0 ? -errno : 0;
			break;
		}
		len += (size_t)n;
	}
	close(broker->ca_fd);
	broker->ca_fd = -1;
	if (r < 0 || len == 0)
		relay_log(broker);
	if (r < 0)
		return aj_err(err, errlen, r, "%s failed: waiting for its CA certificate: %s",
			      aj_step_name(AJ_STEP_BROKER), strerror(-r));
	pem[len] = '\0';
	/* Nothing else is added to the jail's trust: one certificate, whole. */
	if (len == 0 || len > CA_PEM_MAX || strncmp(pem, begin, sizeof(begin) - 1) != 0 ||
	    len < sizeof(end) - 1 || strcmp(pem + len - (sizeof(end) - 1), end) != 0 ||
	    strstr(pem + 1, "-----BEGIN") != NULL)
		return aj_err(err, errlen, -EPROTO, "%s failed: %s", aj_step_name(AJ_STEP_BROKER),
			      len == 0 ? "it made no CA certificate for the proxy (see its "
					 "message above)"
				       : "what it sent is not one PEM certificate");
	r = aj_memfd_of("agentjail-ca", pem, len);
	if (r < 0)
		return aj_err(err, errlen, r, "%s failed: a memfd for its CA: %s",
			      aj_step_name(AJ_STEP_BROKER), strerror(-r));
	*out = r;
	return 0;
}

void
aj_launch_stop(struct aj_broker *broker)
{
	aj_process_kill_and_reap(broker->pid, broker->pidfd, NULL);
	if (broker->pidfd >= 0)
		close(broker->pidfd);
	if (broker->log_fd >= 0)
		close(broker->log_fd);
	if (broker->ca_fd >= 0)
		close(broker->ca_fd);
	*broker = (struct aj_broker){.pid = -1, .pidfd = -1, .log_fd = -1, .ca_fd = -1};
}
