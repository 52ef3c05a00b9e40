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
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "handover.h"
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
launch_policy(const struct aj_profile *profile, char *err, size_t errlen)
{
	int fd = aj_handover_write(&profile->fetch);

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
aj_launch_broker(const char *path, const struct aj_profile *profile, const struct aj_identity *id,
		 int door, int audit_end, const int *proxy, size_t n_proxy, struct aj_broker *broker,
		 char *err, size_t errlen)
{
	int fds[3 + AJ_PROXY_LISTENERS] = {door, -1, audit_end, -1, -1};
	char parent[32], user[64], listeners[16];
	char *argv[8] = {"agentjail-broker", "--supervisor", parent};
	size_t argc = 3;
	char *envp[] = {NULL};
	int stdio[3], log_fd = -1;
	pid_t child;
	int r, fd, policy_fd;

	*broker = (struct aj_broker){.pid = -1, .pidfd = -1, .log_fd = -1};
	if (path == NULL)
		path = AJ_LIBEXECDIR "/agentjail-broker";
	snprintf(parent, sizeof(parent), "%d", (int)getpid());
	snprintf(user, sizeof(user), "%u:%u", (unsigned)id->broker_uid, (unsigned)id->broker_gid);
	if (id->drop) {
		argv[argc++] = "--user";
		argv[argc++] = user;
	}
	if (n_proxy > AJ_PROXY_LISTENERS)
		n_proxy = AJ_PROXY_LISTENERS;
	if (n_proxy > 0) {
		snprintf(listeners, sizeof(listeners), "%zu", n_proxy);
		argv[argc++] = "--proxy";
		argv[argc++] = listeners;
	}
	r = launch_stdio(stdio, &log_fd);
	if (r < 0)
		return aj_err(err, errlen, r, "%s failed: its stdio: %s",
			      aj_step_name(AJ_STEP_BROKER), strerror(-r));
	policy_fd = launch_policy(profile, err, errlen);
	if (policy_fd < 0) {
		close_stdio(stdio);
		close(log_fd);
		return policy_fd;
	}
	fds[1] = policy_fd;
	for (size_t i = 0; i < n_proxy; i++)
		fds[3 + i] = proxy[i];
	r = aj_process_spawn(path, argv, envp, fds, 3 + n_proxy, stdio, -1, false, &child);
	close(policy_fd);
	close_stdio(stdio);
	if (r != 0) {
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
		return aj_err(err, errlen, -r, "pidfd_open: %s", strerror(r));
	}
	*broker = (struct aj_broker){.pid = child, .pidfd = fd, .log_fd = log_fd};
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
	*broker = (struct aj_broker){.pid = -1, .pidfd = -1, .log_fd = -1};
}
