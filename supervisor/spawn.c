/*
 * Starting a jail, the supervisor's side: clone into new namespaces, write
 * the id maps, take the broker's door from init, and let init start the
 * command once the broker runs (init's side: supervisor/init.c).
 *
 * Process layout (started by root, the user is dropped before cloning so
 * no process with host-root credentials ever enters the jail):
 *
 *   supervisor ──(root only) intermediate: drop to the profile's user,
 *       │                    clone(CLONE_PARENT), report pid, exit
 *       └── jail init (pid 1 of the jail): set up, spawn, reap, forward
 *             └── agent: posix_spawn (new session, default signals, fds) CMD
 *
 * The two talk over the setup channel (supervisor/setup-channel.c, where
 * the conversation is written down).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/sched.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "supervisor.h"

#define JAIL_NS_FLAGS                                                                              \
	(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS)

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

static int
report_failure(const struct aj_setup_msg *msg, char *err, size_t errlen)
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

/* Started by root, the jail is cloned by a short-lived intermediate that
 * first becomes the profile's user, so no process with host-root
 * credentials ever enters the jail.  The intermediate is a vfork-style
 * child (CLONE_VM | CLONE_VFORK): it shares the supervisor's memory, makes
 * only raw system calls (glibc's set*id wrappers would signal the
 * supervisor's threads), and writes its result into ARGS.  The jail is its
 * sibling (CLONE_PARENT), so the supervisor reaps it. */
struct intermediate_args {
	const struct aj_spawn_plan *plan;
	uint64_t flags;
	int parent_fd;
	int child_fd;
	pid_t pid; /* out: the jail's pid */
	int err;   /* out: positive errno on failure */
	enum aj_step step;
};

#define INTERMEDIATE_STACK (1024 * 1024)

static int
intermediate(void *p)
{
	struct intermediate_args *a = p;
	uid_t uid = a->plan->uid, ruid, euid, suid;
	gid_t gid = a->plan->gid, rgid, egid, sgid;
	pid_t pid;

	if (syscall(SYS_setgroups, 0, NULL) < 0 || syscall(SYS_setresgid, gid, gid, gid) < 0 ||
	    syscall(SYS_setresuid, uid, uid, uid) < 0) {
		a->err = errno;
		a->step = AJ_STEP_IDMAP;
		_exit(1);
	}
	/* Trust but verify: nothing with a root id may clone the jail. */
	if (syscall(SYS_getresuid, &ruid, &euid, &suid) < 0 ||
	    syscall(SYS_getresgid, &rgid, &egid, &sgid) < 0 || ruid != uid || euid != uid ||
	    suid != uid || rgid != gid || egid != gid || sgid != gid || uid == 0 || gid == 0) {
		a->err = EPERM;
		a->step = AJ_STEP_IDMAP;
		_exit(1);
	}
	pid = clone3_fork_like(a->flags | CLONE_PARENT, NULL);
	if (pid == 0) {
		/* The jail: its own copy of memory from here on. */
		close(a->parent_fd);
		aj_init_run(a->plan, a->child_fd);
	}
	if (pid < 0) {
		a->err = errno;
		a->step = AJ_STEP_CLONE;
		_exit(1);
	}
	a->pid = pid;
	_exit(0);
}

/* Run the intermediate on its own stack (with a guard page below it) and
 * every signal blocked, so nothing can interrupt it half-way; the jail it
 * clones starts with all signals blocked too and sets its own mask. */
static int
run_intermediate(struct intermediate_args *args)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	sigset_t all, saved;
	int dumpable, st = 0, r = 0;
	char *stack;
	pid_t mid;

	stack = mmap(NULL, INTERMEDIATE_STACK + page, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (stack == MAP_FAILED)
		return -errno;
	if (mprotect(stack, page, PROT_NONE) < 0) {
		r = -errno;
		goto out;
	}
	/* The intermediate's set*id marks the shared memory non-dumpable:
	 * give the supervisor back the state it had. */
	dumpable = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &saved);
	/* Returns once the intermediate has exited (CLONE_VFORK). */
	mid = clone(intermediate, stack + page + INTERMEDIATE_STACK,
		    CLONE_VM | CLONE_VFORK | SIGCHLD, args);
	if (mid < 0)
		r = -errno;
	else
		while (waitpid(mid, &st, 0) < 0 && errno == EINTR)
			;
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
	if (dumpable > 0)
		(void)prctl(PR_SET_DUMPABLE, dumpable, 0, 0, 0);
	if (r == 0 && args->err == 0 &&
	    (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || args->pid <= 0)) {
		/* Died without a word (killed, crashed): there may be no
		 * jail, and never a pid we could mistake for our own group. */
		args->err = EIO;
		args->step = AJ_STEP_CLONE;
	}
out:
	munmap(stack, INTERMEDIATE_STACK + page);
	return r;
}

/* Clone the jail.  Returns 0 with *PID and *PIDFD, or -errno; when the
 * failure is the clone itself, ERR is left empty for the caller (which may
 * retry without an optional namespace). */
static int
start_clone(const struct aj_spawn_plan *plan, uint64_t flags, int parent_fd, int child_fd,
	    pid_t *pid, int *pidfd, char *err, size_t errlen)
{
	struct intermediate_args args = {
		.plan = plan,
		.flags = flags,
		.parent_fd = parent_fd,
		.child_fd = child_fd,
	};
	int r;

	if (!plan->drop_privileges) {
		*pidfd = -1;
		*pid = clone3_fork_like(flags | CLONE_PIDFD, pidfd);
		if (*pid == 0) {
			close(parent_fd);
			aj_init_run(plan, child_fd);
		}
		if (*pid < 0)
			return -errno;
		return 0;
	}

	r = run_intermediate(&args);
	if (r < 0)
		return aj_err(err, errlen, r, "starting the intermediate process: %s",
			      strerror(-r));
	if (args.err != 0 && args.step == AJ_STEP_CLONE)
		return -args.err;
	if (args.err != 0) {
		const char *hint = aj_step_hint(args.step, args.err);
		return aj_err(err, errlen, -args.err, "%s failed: %s%s%s%s",
			      aj_step_name(args.step), strerror(args.err), hint ? " (" : "",
			      hint ? hint : "", hint ? ")" : "");
	}
	*pid = args.pid;
	*pidfd = (int)syscall(SYS_pidfd_open, *pid, 0);
	if (*pidfd < 0) {
		r = -errno;
		aj_process_kill_and_reap(*pid, -1, NULL);
		return aj_err(err, errlen, r, "pidfd_open: %s", strerror(-r));
	}
	return 0;
}

/* A setup failure: nothing of the jail is left running; ERR says why. */
static int
fail_jail(struct aj_jail *jail, const struct aj_setup_msg *msg, char *err, size_t errlen)
{
	aj_spawn_jail_abort(jail);
	return report_failure(msg, err, errlen);
}

/* EOF or a broken message where init's word was due: init died during
 * setup (killed from outside, or a bug); there is no command running. */
static int
fail_unheard(struct aj_jail *jail, int r, char *err, size_t errlen)
{
	struct aj_setup_msg msg = {.step = AJ_STEP_NONE, .err = r < 0 ? -r : EPIPE};

	snprintf(msg.detail, sizeof(msg.detail), "reading the setup channel: %s",
		 r < 0 ? strerror(-r) : "the jail's init died during setup");
	return fail_jail(jail, &msg, err, errlen);
}

int
aj_spawn_jail(const struct aj_spawn_plan *plan, struct aj_jail *jail, char *err, size_t errlen)
{
	uint64_t flags = JAIL_NS_FLAGS | CLONE_NEWCGROUP;
	struct aj_setup_msg msg = {.type = AJ_SETUP_GO};
	int sv[2], r, passed;

	*jail = (struct aj_jail){
		.pid = -1, .pidfd = -1, .listener_fd = -1, .sync_fd = -1, .door_fd = -1, .pty_fd = -1,
		.proxy_fds = AJ_PROXY_FDS_NONE, .ca_fd = -1};
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return aj_err(err, errlen, -errno, "socketpair: %s", strerror(errno));

	err[0] = '\0';
	r = start_clone(plan, flags, sv[0], sv[1], &jail->pid, &jail->pidfd, err, errlen);
	if (r == -EINVAL && err[0] == '\0' &&
	    (plan->profile->optional_layers & AJ_LAYER_CGROUPNS)) {
		if (!plan->quiet)
			fprintf(stderr, "agentjail: notice: no cgroup namespace on this kernel "
					"(profile: optional cgroupns)\n");
		flags &= ~(uint64_t)CLONE_NEWCGROUP;
		r = start_clone(plan, flags, sv[0], sv[1], &jail->pid, &jail->pidfd, err, errlen);
	}
	close(sv[1]);
	if (r < 0) {
		close(sv[0]);
		jail->pid = -1;
		jail->pidfd = -1;
		if (err[0] == '\0') {
			const char *hint = aj_step_hint(AJ_STEP_CLONE, -r);
			aj_err(err, errlen, r, "%s failed: %s%s%s%s", aj_step_name(AJ_STEP_CLONE),
			       strerror(-r), hint ? " (" : "", hint ? hint : "", hint ? ")" : "");
		}
		return r;
	}
	jail->sync_fd = sv[0];

	r = aj_userns_write_maps(jail->pid, plan->uid, plan->gid, msg.detail, sizeof(msg.detail));
	if (r < 0) {
		msg.step = AJ_STEP_IDMAP;
		msg.err = -r;
		return fail_jail(jail, &msg, err, errlen);
	}
	(void)aj_setup_send(jail->sync_fd, &msg, -1);

	/* Init's first words: the proxy's listeners (`proxy on`), then the
	 * door, or why it could not make them. */
	for (size_t n_proxy = 0;; n_proxy++) {
		r = aj_setup_recv(jail->sync_fd, &msg, &passed);
		if (r <= 0 || msg.type != AJ_SETUP_PROXY)
			break;
		if (passed < 0 || n_proxy == AJ_PROXY_SOCKETS) {
			if (passed >= 0)
				close(passed);
			return fail_unheard(jail, -EPROTO, err, errlen);
		}
		jail->proxy_fds[n_proxy] = passed;
	}
	if (r > 0 && msg.type == AJ_SETUP_DOOR && passed >= 0) {
		jail->door_fd = passed;
		return 0;
	}
	if (passed >= 0)
		close(passed);
	if (r > 0 && msg.type == AJ_SETUP_FAILURE)
		return fail_jail(jail, &msg, err, errlen);
	return fail_unheard(jail, r > 0 ? -EPROTO : r, err, errlen);
}

int
aj_spawn_jail_go(struct aj_jail *jail, char *err, size_t errlen)
{
	struct aj_setup_msg msg = {.type = AJ_SETUP_GO};
	int r, passed;

	if (jail->door_fd >= 0) {
		close(jail->door_fd);
		jail->door_fd = -1;
	}
	/* With the proxy's CA certificate, which init adds to the jail's
	 * trust before the command starts. */
	(void)aj_setup_send(jail->sync_fd, &msg, jail->ca_fd);
	if (jail->ca_fd >= 0) {
		close(jail->ca_fd);
		jail->ca_fd = -1;
	}
	for (;;) {
		int *slot;

		r = aj_setup_recv(jail->sync_fd, &msg, &passed);
		if (r <= 0 || (msg.type != AJ_SETUP_LISTENER && msg.type != AJ_SETUP_PTY))
			break;
		slot = msg.type == AJ_SETUP_PTY ? &jail->pty_fd : &jail->listener_fd;
		if (*slot >= 0 && passed >= 0)
			close(*slot);
		if (passed >= 0)
			*slot = passed;
	}
	if (r <= 0)
		return fail_unheard(jail, r, err, errlen);
	jail->exec_errno = 0;
	if (msg.type == AJ_SETUP_EXECUTED)
		return 0;
	if (msg.type == AJ_SETUP_FAILURE && msg.step == AJ_STEP_EXEC) {
		/* The jail is fine; the command is not.  Init exits with 126/127. */
		close(jail->sync_fd);
		jail->sync_fd = -1;
		jail->exec_errno = msg.err;
		return 0;
	}
	return fail_jail(jail, &msg, err, errlen);
}

void
aj_spawn_jail_close_proxy(struct aj_jail *jail)
{
	for (size_t i = 0; i < AJ_PROXY_SOCKETS; i++) {
		if (jail->proxy_fds[i] >= 0)
			close(jail->proxy_fds[i]);
		jail->proxy_fds[i] = -1;
	}
}

void
aj_spawn_jail_abort(struct aj_jail *jail)
{
	if (jail->door_fd >= 0)
		close(jail->door_fd);
	if (jail->sync_fd >= 0)
		close(jail->sync_fd);
	if (jail->listener_fd >= 0)
		close(jail->listener_fd);
	if (jail->pty_fd >= 0)
		close(jail->pty_fd);
	aj_spawn_jail_close_proxy(jail);
	if (jail->ca_fd >= 0)
		close(jail->ca_fd);
	if (jail->pid > 0)
		aj_process_kill_and_reap(jail->pid, jail->pidfd, NULL);
	if (jail->pidfd >= 0)
		close(jail->pidfd);
	*jail = (struct aj_jail){
		.pid = -1, .pidfd = -1, .listener_fd = -1, .sync_fd = -1, .door_fd = -1, .pty_fd = -1,
		.proxy_fds = AJ_PROXY_FDS_NONE, .ca_fd = -1};
}

bool
aj_spawn_agent_status(int sync_fd, int *wait_status)
{
	struct aj_setup_msg msg;

	if (sync_fd < 0 || recv(sync_fd, &msg, sizeof(msg), MSG_DONTWAIT) != (ssize_t)sizeof(msg) ||
	    msg.type != AJ_SETUP_AGENT_STATUS)
		return false;
	*wait_status = msg.err;
	return true;
}
