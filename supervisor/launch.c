/*
 * The broker's launch: its own program (never a fork of the supervisor,
 * whose memory holds the whole profile and the caller's state), started
 * with posix_spawn in its own session (a terminal's ^C is for the agent,
 * forwarded by the supervisor), with exactly the three descriptors of the
 * contract in common/fds.h.  It drops to its user itself when started by
 * root, sets no_new_privs and dies with the supervisor (broker/main.c).
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "handover.h"
#include "supervisor.h"

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

int
aj_launch_broker(const char *path, const struct aj_profile *profile, const struct aj_identity *id,
		 int door, int audit_end, pid_t *pid, int *pidfd, char *err, size_t errlen)
{
	char parent[32], user[64];
	char *argv[] = {"agentjail-broker",         "--supervisor", parent,
			id->drop ? "--user" : NULL, user,           NULL};
	char *envp[] = {NULL};
	pid_t child;
	int r, fd, policy_fd;

	if (path == NULL)
		path = AJ_LIBEXECDIR "/agentjail-broker";
	snprintf(parent, sizeof(parent), "%d", (int)getpid());
	snprintf(user, sizeof(user), "%u:%u", (unsigned)id->broker_uid, (unsigned)id->broker_gid);
	policy_fd = launch_policy(profile, err, errlen);
	if (policy_fd < 0)
		return policy_fd;
	r = aj_process_spawn(path, argv, envp, (int[]){door, policy_fd, audit_end}, 3, NULL, false,
			     &child);
	close(policy_fd);
	if (r != 0)
		return aj_err(err, errlen, -r, "%s failed: %s: %s (%s)",
			      aj_step_name(AJ_STEP_BROKER), path, strerror(r),
			      aj_step_hint(AJ_STEP_BROKER, r));

	/* Watched and stopped through a pidfd from here on: the pid alone
	 * could be reused once the broker is reaped. */
	fd = (int)syscall(SYS_pidfd_open, child, 0);
	if (fd < 0) {
		r = errno;
		aj_process_kill_and_reap(child, -1, NULL);
		return aj_err(err, errlen, -r, "pidfd_open: %s", strerror(r));
	}
	*pid = child;
	*pidfd = fd;
	return 0;
}

void
aj_launch_stop(pid_t pid, int pidfd)
{
	aj_process_kill_and_reap(pid, pidfd, NULL);
	if (pidfd >= 0)
		close(pidfd);
}
