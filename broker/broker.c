/*
 * agentjail-broker: the agent's one door.  This first version only holds
 * its end of the socketpair (fd 3, AGENTJAIL_FD) so the jail's side of the
 * door exists and its lifecycle is real: it answers nothing yet and leaves
 * when the agent's end closes.  Fetching arrives with the wire protocol.
 *
 *   agentjail-broker --supervisor PID [--user UID:GID]
 *
 * Started by the supervisor with posix_spawn.  Before reading anything it
 * ties its life to the supervisor's, and (started by root) becomes UID:GID
 * with no supplementary groups, which clears every capability.
 */
#include "config.h"

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

static int
fail(const char *what)
{
	fprintf(stderr, "agentjail-broker[%d]: %s: %s\n", (int)getpid(), what, strerror(errno));
	return AJ_EXIT_SETUP;
}

static bool
has_no_capabilities(void)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[2];

	if (syscall(SYS_capget, &hdr, data) < 0)
		return false;
	for (int i = 0; i < 2; i++)
		if (data[i].effective || data[i].permitted || data[i].inheritable)
			return false;
	return true;
}

static int
become(const char *spec)
{
	unsigned uid, gid;
	char end;

	if (sscanf(spec, "%u:%u%c", &uid, &gid, &end) != 2 || uid == 0 || gid == 0) {
		errno = EINVAL;
		return -1;
	}
	if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0)
		return -1;
	return 0;
}

int
main(int argc, char **argv)
{
	const char *fdenv = getenv("AGENTJAIL_FD");
	int fd = fdenv ? atoi(fdenv) : AJ_BROKER_FD;
	pid_t supervisor = 0;
	const char *user = NULL;
	char buf[65536];

	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--supervisor") == 0)
			supervisor = (pid_t)atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--user") == 0)
			user = argv[i + 1];
	}
	/* Die with the supervisor; if it is already gone, leave now. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		return fail("PR_SET_PDEATHSIG");
	if (supervisor <= 0 || getppid() != supervisor)
		return AJ_EXIT_SETUP;
	if (user != NULL && become(user) < 0)
		return fail("dropping to the profile's user");
	if (geteuid() == 0 || !has_no_capabilities()) {
		errno = EPERM;
		return fail("refusing to serve with root identity or capabilities");
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return fail("PR_SET_NO_NEW_PRIVS");
	/* Re-arm: the identity change above cleared the death signal. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0 || getppid() != supervisor)
		return AJ_EXIT_SETUP;

	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);

		if (n == 0)
			return 0; /* every agent-side end is closed: the jail is gone */
		if (n < 0 && errno != EINTR)
			return fail("recv");
	}
}
