/*
 * Starting a jail: clone into new namespaces, write the id maps from the
 * parent, set the jail up from inside in a fixed order, then run the
 * command under a minimal init.
 *
 * Process layout (started by root, the user is dropped before cloning so
 * no process with host-root credentials ever enters the jail):
 *
 *   supervisor ──(root only) intermediate: drop to the profile's user,
 *       │                    clone(CLONE_PARENT), report pid, exit
 *       └── jail init (pid 1 of the jail): set up, fork, reap, forward
 *             └── agent: new session, limits, fds, execve(CMD)
 *
 * The setup channel is a SOCK_SEQPACKET socketpair: the parent sends "go"
 * after writing the maps; the jail sends one failure record (step, errno,
 * detail) if anything fails.  The agent holds the channel close-on-exec, so
 * EOF without a record means the command was executed.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"

enum sync_type {
	SYNC_GO = 1,   /* parent -> jail: maps written, continue */
	SYNC_PID,      /* intermediate -> parent: the jail's pid */
	SYNC_FAILURE,  /* jail -> parent: a setup step failed */
};

struct sync_msg {
	int32_t type;
	int32_t step;  /* enum aj_step */
	int32_t err;   /* positive errno */
	int32_t pid;
	char detail[240];
};

/* Signals the jail's init forwards to the agent's process group. */
static const int forwarded_signals[] = {
	SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT,
};

#define JAIL_NS_FLAGS                                                                    \
	(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC |         \
	 CLONE_NEWUTS)

static void
sync_send(int fd, const struct sync_msg *msg)
{
	ssize_t n;

	do
		n = send(fd, msg, sizeof(*msg), MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
}

/* Tier 2: any failure between clone and execve is fatal; report and exit. */
static _Noreturn void
child_fail(int sync_fd, enum aj_step step, int errnum, const char *detail)
{
	struct sync_msg msg = {.type = SYNC_FAILURE, .step = step, .err = errnum};

	if (detail != NULL)
		snprintf(msg.detail, sizeof(msg.detail), "%s", detail);
	sync_send(sync_fd, &msg);
	_exit(step == AJ_STEP_EXEC ? (errnum == ENOENT ? AJ_EXIT_NOT_FOUND : AJ_EXIT_CANNOT_EXEC)
	                           : AJ_EXIT_SETUP);
}

static pid_t
clone3_fork_like(uint64_t flags, int *pidfd)
{
	struct clone_args args = {
		.flags = flags,
		.pidfd = (uint64_t)(uintptr_t)pidfd,
		/* CLONE_PARENT takes the caller's exit signal and refuses any other. */
		.exit_signal = (flags & CLONE_PARENT) ? 0 : SIGCHLD,
	};
	return (pid_t)syscall(SYS_clone3, &args, sizeof(args));
}

static void
reset_signals(void)
{
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	sigset_t none;

	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			(void)sigaction(s, &dfl, NULL);
	sigemptyset(&none);
	(void)sigprocmask(SIG_SETMASK, &none, NULL);
}

/* The agent: the last steps before execve, all in the agent's own process
 * (already filtered by seccomp, inherited from init). */
static _Noreturn void
agent_exec(const struct aj_spawn_plan *plan, int sync_fd)
{
	extern char **environ;
	char err[256];
	int r;

	reset_signals();
	if (setsid() < 0)
		child_fail(sync_fd, AJ_STEP_SESSION, errno, "setsid");
	r = aj_fds_prepare_agent(plan->broker_fd, &sync_fd);
	if (r < 0)
		child_fail(sync_fd, AJ_STEP_FDS, -r, NULL);
	r = aj_rlimits_apply(plan->profile, err, sizeof(err));
	if (r < 0)
		child_fail(sync_fd, AJ_STEP_RLIMIT, -r, err);
	environ = plan->envp;
	execvp(plan->argv[0], plan->argv);
	aj_log_escape(plan->argv[0], err, sizeof(err));
	child_fail(sync_fd, AJ_STEP_EXEC, errno, err);
}

/* The jail's pid 1 after the agent started: forward signals to the agent's
 * process group, reap every orphan, and leave with the agent's status.
 * When init exits, the kernel kills whatever else is left in the jail. */
static _Noreturn void
init_loop(pid_t agent, const sigset_t *waitset)
{
	for (;;) {
		siginfo_t info;
		int sig = sigwaitinfo(waitset, &info);

		if (sig < 0)
			continue;
		if (sig != SIGCHLD) {
			if (kill(-agent, sig) < 0)
				(void)kill(agent, sig);
			continue;
		}
		for (;;) {
			int st;
			pid_t p = waitpid(-1, &st, WNOHANG);
			if (p <= 0)
				break;
			if (p != agent)
				continue;
			if (WIFSIGNALED(st))
				_exit(AJ_EXIT_SIGNAL_BASE + WTERMSIG(st));
			_exit(WEXITSTATUS(st));
		}
	}
}

static _Noreturn void
jail_init(const struct aj_spawn_plan *plan, int sync_fd)
{
	struct aj_fs_plan fs = {
		.tmpfs_size = plan->profile->tmpfs_size,
		.xdg_runtime_dir = plan->xdg_runtime_dir,
		.sysfs_optional = plan->profile->optional_layers & AJ_LAYER_SYSFS,
		.quiet = plan->quiet,
	};
	struct sync_msg go;
	enum aj_step step;
	char err[256];
	sigset_t waitset;
	pid_t agent;
	int r;

	/* Die with the supervisor; if it is already gone the read below sees
	 * EOF and we leave before doing anything. */
	(void)prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	/* Non-dumpable: the agent cannot open /proc/1/mem or ptrace init. */
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	if (recv(sync_fd, &go, sizeof(go), 0) != sizeof(go) || go.type != SYNC_GO)
		_exit(AJ_EXIT_SETUP);

	if (sethostname(plan->profile->hostname, strlen(plan->profile->hostname)) < 0)
		child_fail(sync_fd, AJ_STEP_HOSTNAME, errno, plan->profile->hostname);

	r = aj_fs_setup(&fs, &step, err, sizeof(err));
	if (r < 0)
		child_fail(sync_fd, step, -r, err);

	r = aj_netns_setup_loopback(err, sizeof(err));
	if (r < 0)
		child_fail(sync_fd, r == -EEXIST || r == -ENODEV ? AJ_STEP_LINKS : AJ_STEP_LOOPBACK,
		           -r, err);

	/* Re-resolve the working directory by path inside the new mount
	 * namespace: no directory fd from the host survives (runc
	 * CVE-2024-21626). */
	if (plan->cwd == NULL || chdir(plan->cwd) < 0) {
		if (!plan->quiet && plan->cwd != NULL) {
			char safe[512];
			aj_log_escape(plan->cwd, safe, sizeof(safe));
			fprintf(stderr, "agentjail: notice: working directory %s is not visible "
			                "in the jail; starting in /\n", safe);
		}
		if (chdir("/") < 0)
			child_fail(sync_fd, AJ_STEP_NONE, errno, "chdir /");
	}

	r = aj_caps_drop_all(err, sizeof(err));
	if (r < 0)
		child_fail(sync_fd, AJ_STEP_CAPS, -r, err);

	/* Block what init waits for before the agent exists, so no signal is
	 * lost; the agent unblocks them before exec. */
	sigemptyset(&waitset);
	sigaddset(&waitset, SIGCHLD);
	for (size_t i = 0; i < AJ_ARRAY_SIZE(forwarded_signals); i++)
		sigaddset(&waitset, forwarded_signals[i]);
	if (sigprocmask(SIG_BLOCK, &waitset, NULL) < 0)
		child_fail(sync_fd, AJ_STEP_FORK, errno, "sigprocmask");

	/* Seccomp last: init is filtered too, so no unfiltered process lives
	 * in the jail's pid namespace (THREATS.md #8). */
	r = aj_seccomp_load(plan->seccomp);
	if (r < 0)
		child_fail(sync_fd, AJ_STEP_SECCOMP, -r, NULL);

	agent = fork();
	if (agent < 0)
		child_fail(sync_fd, AJ_STEP_FORK, errno, NULL);
	if (agent == 0)
		agent_exec(plan, sync_fd);
	close(sync_fd);
	close(plan->broker_fd);
	init_loop(agent, &waitset);
}

static int
recv_msg(int fd, struct sync_msg *msg)
{
	ssize_t n;

	do
		n = recv(fd, msg, sizeof(*msg), 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n == 0)
		return 0;
	if ((size_t)n != sizeof(*msg))
		return -EPROTO;
	msg->detail[sizeof(msg->detail) - 1] = '\0';
	return 1;
}

static int
report_failure(const struct sync_msg *msg, char *err, size_t errlen)
{
	const char *hint = aj_step_hint(msg->step, msg->err);
	char detail[256];

	if (msg->detail[0] != '\0')
		snprintf(detail, sizeof(detail), "%s", msg->detail);
	else
		snprintf(detail, sizeof(detail), "%s", strerror(msg->err));
	return aj_err(err, errlen, -(msg->err ? msg->err : EIO), "%s failed: %s%s%s%s",
	              aj_step_name(msg->step), detail, hint ? " (" : "", hint ? hint : "",
	              hint ? ")" : "");
}

static void
kill_and_reap(pid_t pid, int pidfd)
{
	siginfo_t info;

	if (pidfd >= 0)
		(void)syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
	else
		(void)kill(pid, SIGKILL);
	while (waitid(P_PID, pid, &info, WEXITED) < 0 && errno == EINTR)
		;
}

/* Started by root: become the profile's user in a throwaway child, then
 * clone the jail as a sibling (CLONE_PARENT) so the supervisor reaps it. */
static _Noreturn void
intermediate(const struct aj_spawn_plan *plan, uint64_t flags, int sync_fd)
{
	struct sync_msg msg = {.type = SYNC_PID};
	pid_t pid;

	if (setgroups(0, NULL) < 0 || setresgid(plan->gid, plan->gid, plan->gid) < 0 ||
	    setresuid(plan->uid, plan->uid, plan->uid) < 0)
		child_fail(sync_fd, AJ_STEP_IDMAP, errno, "dropping to the profile's user");
	pid = clone3_fork_like(flags | CLONE_PARENT, NULL);
	if (pid == 0)
		jail_init(plan, sync_fd);
	if (pid < 0)
		child_fail(sync_fd, AJ_STEP_CLONE, errno, NULL);
	msg.pid = pid;
	sync_send(sync_fd, &msg);
	_exit(0);
}

static int
start_clone(const struct aj_spawn_plan *plan, uint64_t flags, int parent_fd, int child_fd,
            pid_t *pid, int *pidfd, char *err, size_t errlen)
{
	struct sync_msg msg;
	pid_t mid;
	int st, r;

	if (!plan->drop_privileges) {
		*pidfd = -1;
		*pid = clone3_fork_like(flags | CLONE_PIDFD, pidfd);
		if (*pid == 0) {
			close(parent_fd);
			jail_init(plan, child_fd);
		}
		if (*pid < 0)
			return -errno;
		return 0;
	}

	mid = fork();
	if (mid < 0)
		return -errno;
	if (mid == 0) {
		close(parent_fd);
		intermediate(plan, flags, child_fd);
	}
	while (waitpid(mid, &st, 0) < 0 && errno == EINTR)
		;
	r = recv_msg(parent_fd, &msg);
	if (r <= 0)
		return aj_err(err, errlen, r < 0 ? r : -EIO, "the intermediate process died");
	if (msg.type == SYNC_FAILURE)
		return report_failure(&msg, err, errlen) ?: -EIO;
	*pid = msg.pid;
	*pidfd = (int)syscall(SYS_pidfd_open, *pid, 0);
	if (*pidfd < 0) {
		r = -errno;
		kill_and_reap(*pid, -1);
		return aj_err(err, errlen, r, "pidfd_open: %s", strerror(-r));
	}
	return 0;
}

int
aj_spawn_jail(const struct aj_spawn_plan *plan, struct aj_jail *jail, char *err, size_t errlen)
{
	uint64_t flags = JAIL_NS_FLAGS | CLONE_NEWCGROUP;
	struct sync_msg msg = {.type = SYNC_GO};
	int sv[2], r;
	pid_t pid = -1;
	int pidfd = -1;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return aj_err(err, errlen, -errno, "socketpair: %s", strerror(errno));

	err[0] = '\0';
	r = start_clone(plan, flags, sv[0], sv[1], &pid, &pidfd, err, errlen);
	if (r == -EINVAL && err[0] == '\0' && (plan->profile->optional_layers & AJ_LAYER_CGROUPNS)) {
		if (!plan->quiet)
			fprintf(stderr, "agentjail: notice: no cgroup namespace on this kernel "
			                "(profile: optional cgroupns)\n");
		flags &= ~(uint64_t)CLONE_NEWCGROUP;
		r = start_clone(plan, flags, sv[0], sv[1], &pid, &pidfd, err, errlen);
	}
	close(sv[1]);
	if (r < 0) {
		close(sv[0]);
		if (err[0] == '\0') {
			const char *hint = aj_step_hint(AJ_STEP_CLONE, -r);
			aj_err(err, errlen, r, "%s failed: %s%s%s%s", aj_step_name(AJ_STEP_CLONE),
			       strerror(-r), hint ? " (" : "", hint ? hint : "", hint ? ")" : "");
		}
		return r;
	}

	r = aj_userns_write_maps(pid, plan->uid, plan->gid, msg.detail, sizeof(msg.detail));
	if (r < 0) {
		msg.step = AJ_STEP_IDMAP;
		msg.err = -r;
		goto fail;
	}
	sync_send(sv[0], &msg);

	r = recv_msg(sv[0], &msg);
	if (r < 0) {
		msg.step = AJ_STEP_NONE;
		msg.err = -r;
		snprintf(msg.detail, sizeof(msg.detail), "reading the setup channel: %s",
		         strerror(-r));
		goto fail;
	}
	close(sv[0]);
	jail->pid = pid;
	jail->pidfd = pidfd;
	jail->exec_errno = 0;
	if (r == 0)
		return 0;
	if (msg.type == SYNC_FAILURE && msg.step == AJ_STEP_EXEC) {
		/* The jail is fine; the command is not.  Init exits with 126/127. */
		jail->exec_errno = msg.err;
		return 0;
	}
	sv[0] = -1;
fail:
	if (sv[0] >= 0)
		close(sv[0]);
	kill_and_reap(pid, pidfd);
	close(pidfd);
	return report_failure(&msg, err, errlen);
}
