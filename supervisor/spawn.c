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
 *       └── jail init (pid 1 of the jail): set up, spawn, reap, forward
 *             └── agent: posix_spawn (new session, default signals, fds) CMD
 *
 * The setup channel is a SOCK_SEQPACKET socketpair: the parent sends "go"
 * after writing the maps; the jail sends one failure record (step, errno,
 * detail) if anything fails, including the command's exec.  Init closes it
 * once posix_spawn has executed the command, so EOF without a record means
 * the command runs.
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

#include "fdpass.h"
#include "supervisor.h"

enum sync_type {
	SYNC_GO = 1,       /* parent -> jail: maps written, continue */
	SYNC_FAILURE,      /* jail -> parent: a setup step failed */
	SYNC_LISTENER,     /* jail -> parent: the seccomp listener fd (SCM_RIGHTS), or none */
	SYNC_EXECUTED,     /* jail -> parent: the command runs */
	SYNC_AGENT_STATUS, /* jail -> parent: the agent's raw wait status, just before init exits */
};

struct sync_msg {
	int32_t type;
	int32_t step; /* enum aj_step */
	int32_t err;  /* positive errno */
	char detail[240];
};

#define JAIL_NS_FLAGS                                                                              \
	(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS)

/* What the supervisor forwards to init, and init to the agent.  SIGWINCH
 * and SIGCONT too: a resized terminal and a resumed job concern
 * the agent as much as its supervisor. */
const int aj_spawn_forwarded_signals[AJ_SPAWN_N_FORWARDED] = {
	SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT,
};

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

/* The agent, spawned by init.  Resource limits were set on init and are
 * inherited.  An exec failure comes back as the return value, so init can
 * report it on the setup channel. */
static int
spawn_agent(const struct aj_spawn_plan *plan, pid_t *pid)
{
	extern char **environ;

	/* posix_spawnp searches the PATH of environ: make it the agent's.
	 * Init reads nothing from its environment. */
	environ = plan->envp;
	return aj_process_spawn(plan->argv[0], plan->argv, plan->envp, &plan->broker_fd, 1,
				plan->stdio, true, pid);
}

/* posix_spawnp reports EACCES when a PATH directory cannot be searched,
 * even if the command exists nowhere (root's PATH seen by `nobody`).
 * Shells call that "not found" (127); so do we, unless a file by that name
 * really is on PATH and could not be executed (126). */
static int
exec_errno(const char *cmd, int r)
{
	const char *path = getenv("PATH");
	char candidate[4096];
	struct stat st;

	if (r != EACCES || strchr(cmd, '/') != NULL)
		return r;
	if (path == NULL)
		path = "/bin:/usr/bin";
	for (const char *p = path;; p++) {
		const char *end = strchrnul(p, ':');
		int n = (int)(end - p);

		snprintf(candidate, sizeof(candidate), "%.*s/%s", n, n ? p : ".", cmd);
		if (stat(candidate, &st) == 0)
			return EACCES;
		if (*end == '\0')
			return ENOENT;
		p = end;
	}
}

/* The jail's pid 1 after the agent started: forward signals to the agent's
 * process group, reap every orphan, and leave with the agent's status.
 * When init exits, the kernel kills whatever else is left in the jail. */
/* The raw wait status goes to the supervisor before init exits with the
 * folded one: 130 from `exit 130` and 130 from SIGINT are then told apart
 * (the exit event's "signal"). */
static _Noreturn void
init_exit(int sync_fd, int st)
{
	struct sync_msg msg = {.type = SYNC_AGENT_STATUS, .err = st};

	sync_send(sync_fd, &msg);
	if (WIFSIGNALED(st))
		_exit(AJ_EXIT_SIGNAL_BASE + WTERMSIG(st));
	_exit(WEXITSTATUS(st));
}

static _Noreturn void
init_loop(pid_t agent, const sigset_t *waitset, int sync_fd)
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
			init_exit(sync_fd, st);
		}
	}
}

static void
reset_signal_handlers(void)
{
	struct sigaction dfl = {.sa_handler = SIG_DFL};

	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			(void)sigaction(sig, &dfl, NULL);
}

/* Close every fd above 2 except the N in KEEP (any order; entries below 3
 * and repeats are ignored). */
static int
close_all_but(const int *keep, size_t n)
{
	unsigned int from = 3;

	for (;;) {
		unsigned int next = ~0U;

		/* The smallest kept fd at or above FROM. */
		for (size_t i = 0; i < n; i++)
			if (keep[i] >= (int)from && (unsigned int)keep[i] < next)
				next = (unsigned int)keep[i];
		if (next == ~0U)
			return syscall(SYS_close_range, from, ~0U, 0) < 0 ? -errno : 0;
		if (next > from && syscall(SYS_close_range, from, next - 1, 0) < 0)
			return -errno;
		from = next + 1;
	}
}

static void send_listener(int sync_fd, int fd);

/* Seccomp, with escape attempts reported to the supervisor when the
 * kernel can (user notification), else refused with EPERM all the same. */
static int
load_filter(const struct aj_spawn_plan *plan, int sync_fd)
{
	int fd;

	if (plan->seccomp_notify == NULL)
		return aj_seccomp_load_prebuilt(plan->seccomp);
	fd = aj_seccomp_load_prebuilt_listener(plan->seccomp_notify);
	/* No user notification here: EINVAL/EOPNOTSUPP/ENOSYS from a kernel
	 * without it, EBUSY when an outer sandbox already holds the one
	 * listener a process may have (LXD, sysbox, crun).  Refuse all the
	 * same, unreported. */
	if (fd == -EINVAL || fd == -EOPNOTSUPP || fd == -ENOSYS || fd == -EBUSY) {
		send_listener(sync_fd, -1);
		return aj_seccomp_load_prebuilt(plan->seccomp);
	}
	if (fd < 0)
		return fd;
	send_listener(sync_fd, fd);
	close(fd);
	return 0;
}

static _Noreturn void
jail_init(const struct aj_spawn_plan *plan, int sync_fd)
{
	struct aj_fs_plan fs = {
		.tmpfs_size = plan->profile->tmpfs_size,
		.xdg_runtime_dir = plan->xdg_runtime_dir,
		.sysfs_optional = plan->profile->optional_layers & AJ_LAYER_SYSFS,
		.quiet = plan->quiet,
		.readonly_paths = plan->readonly_paths,
	};
	struct sync_msg go;
	enum aj_step step;
	char err[256];
	sigset_t waitset;
	pid_t agent;
	int r;

	/* Die with the supervisor; if it is already gone the read below sees
	 * EOF and we leave before doing anything. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		_exit(AJ_EXIT_SETUP);
	if (recv(sync_fd, &go, sizeof(go), 0) != sizeof(go) || go.type != SYNC_GO)
		_exit(AJ_EXIT_SETUP);
	/* Non-dumpable: the agent cannot open /proc/1/mem or ptrace init.  Only
	 * after "go": a non-dumpable process's /proc files belong to root, and
	 * an unprivileged supervisor could no longer write our id maps. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		child_fail(sync_fd, AJ_STEP_NONE, errno, "PR_SET_DUMPABLE");
	(void)prctl(PR_SET_NAME, "agentjail-init", 0, 0, 0);
	/* Init holds only the setup channel, the broker end and the agent's
	 * stdio: whatever else the caller had open stays outside. */
	{
		int keep[5] = {sync_fd, plan->broker_fd, -1, -1, -1};

		for (size_t i = 0; plan->stdio != NULL && i < 3; i++)
			keep[2 + i] = plan->stdio[i];
		r = close_all_but(keep, AJ_ARRAY_SIZE(keep));
	}
	if (r < 0)
		child_fail(sync_fd, AJ_STEP_NONE, -r, "closing inherited file descriptors");
	/* Handlers and the mask come from the caller (an embedder may have
	 * its own): start from the defaults, with what init waits for held. */
	sigemptyset(&waitset);
	sigaddset(&waitset, SIGCHLD);
	/* The supervisor's list: what it forwards, init passes on to the
	 * agent's process group. */
	for (size_t i = 0; i < AJ_SPAWN_N_FORWARDED; i++)
		sigaddset(&waitset, aj_spawn_forwarded_signals[i]);
	reset_signal_handlers();
	if (sigprocmask(SIG_SETMASK, &waitset, NULL) < 0)
		child_fail(sync_fd, AJ_STEP_NONE, errno, "sigprocmask");

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
	 * CVE-2024-21626).  One the caller asked for must be entered; the
	 * caller's own is a convenience, and / does instead. */
	if (plan->cwd != NULL && plan->cwd_required) {
		if (chdir(plan->cwd) < 0) {
			int e = errno;
			char safe[200];

			aj_log_escape(plan->cwd, safe, sizeof(safe));
			snprintf(err, sizeof(err), "%s: %s", safe, strerror(e));
			child_fail(sync_fd, AJ_STEP_CWD, e, err);
		}
	} else if (plan->cwd == NULL || chdir(plan->cwd) < 0) {
		if (!plan->quiet && plan->cwd != NULL) {
			char safe[512];
			aj_log_escape(plan->cwd, safe, sizeof(safe));
			fprintf(stderr,
				"agentjail: notice: working directory %s is not visible "
				"in the jail; starting in /\n",
				safe);
		}
		if (chdir("/") < 0)
			child_fail(sync_fd, AJ_STEP_NONE, errno, "chdir /");
	}

	r = aj_caps_drop_all(err, sizeof(err));
	if (r < 0)
		child_fail(sync_fd, AJ_STEP_CAPS, -r, err);

	/* Seccomp last: init is filtered too, so no unfiltered process lives
	 * in the jail's pid namespace (THREATS.md #8). */
	r = load_filter(plan, sync_fd);
	if (r < 0)
		child_fail(sync_fd, AJ_STEP_SECCOMP, -r, NULL);

	r = aj_rlimits_apply(plan->profile, err, sizeof(err));
	if (r < 0)
		child_fail(sync_fd, AJ_STEP_RLIMIT, -r, err);
	r = spawn_agent(plan, &agent);
	if (r != 0) {
		aj_log_escape(plan->argv[0], err, sizeof(err));
		child_fail(sync_fd, AJ_STEP_EXEC, exec_errno(plan->argv[0], r), err);
	}
	/* The command runs.  The channel stays open for the agent's status. */
	{
		struct sync_msg done = {.type = SYNC_EXECUTED};
		sync_send(sync_fd, &done);
	}
	/* Init keeps no copy of the agent's ends: a reader of the agent's
	 * stdout sees EOF when the agent (and what it started) is done. */
	close(plan->broker_fd);
	for (size_t i = 0; plan->stdio != NULL && i < 3; i++)
		if (plan->stdio[i] > 2)
			close(plan->stdio[i]);
	init_loop(agent, &waitset, sync_fd);
}

/* Receive one setup message; a passed fd (SCM_RIGHTS) lands in *PASSED
 * (close-on-exec), else -1.  Returns 1, 0 on EOF, or -errno. */
static int
recv_msg(int fd, struct sync_msg *msg, int *passed)
{
	bool bad_fds;
	ssize_t n = aj_fdpass_recv(fd, msg, sizeof(*msg), 0, passed, &bad_fds);

	if (n < 0)
		return (int)n;
	/* Exactly one fd is taken; any other count is a broken message. */
	if (bad_fds)
		return -EPROTO;
	/* At most one fd, and only where the message type says so. */
	if (*passed >= 0 && (n != (ssize_t)sizeof(*msg) || msg->type != SYNC_LISTENER)) {
		close(*passed);
		*passed = -1;
		return -EPROTO;
	}
	if (n == 0)
		return 0;
	if ((size_t)n != sizeof(*msg)) {
		if (*passed >= 0)
			close(*passed);
		*passed = -1;
		return -EPROTO;
	}
	msg->detail[sizeof(msg->detail) - 1] = '\0';
	return 1;
}

/* Init -> supervisor: the listener fd, or FD < 0 for "no notification on
 * this kernel". */
static void
send_listener(int sync_fd, int fd)
{
	struct sync_msg msg = {.type = SYNC_LISTENER};
	ssize_t n = aj_fdpass_send(sync_fd, &msg, sizeof(msg), fd, 0);

	if (n != (ssize_t)sizeof(msg))
		child_fail(sync_fd, AJ_STEP_SECCOMP, n < 0 ? (int)-n : EIO,
			   "passing the notification listener");
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
		jail_init(a->plan, a->child_fd);
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
			jail_init(plan, child_fd);
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

int
aj_spawn_jail(const struct aj_spawn_plan *plan, struct aj_jail *jail, char *err, size_t errlen)
{
	uint64_t flags = JAIL_NS_FLAGS | CLONE_NEWCGROUP;
	struct sync_msg msg = {.type = SYNC_GO};
	int sv[2], r;
	pid_t pid = -1;
	int pidfd = -1;

	jail->listener_fd = -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return aj_err(err, errlen, -errno, "socketpair: %s", strerror(errno));

	err[0] = '\0';
	r = start_clone(plan, flags, sv[0], sv[1], &pid, &pidfd, err, errlen);
	if (r == -EINVAL && err[0] == '\0' &&
	    (plan->profile->optional_layers & AJ_LAYER_CGROUPNS)) {
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

	jail->listener_fd = -1;
	jail->sync_fd = -1;
	for (;;) {
		int passed;

		r = recv_msg(sv[0], &msg, &passed);
		if (r <= 0 || msg.type != SYNC_LISTENER)
			break;
		if (jail->listener_fd >= 0 && passed >= 0)
			close(jail->listener_fd);
		if (passed >= 0)
			jail->listener_fd = passed;
	}
	if (r < 0 || r == 0) {
		/* EOF before "executed": init died during setup (killed from
		 * outside, or a bug); there is no command running. */
		msg.step = AJ_STEP_NONE;
		msg.err = r < 0 ? -r : EPIPE;
		snprintf(msg.detail, sizeof(msg.detail), "reading the setup channel: %s",
			 r < 0 ? strerror(-r) : "the jail's init died during setup");
		goto fail;
	}
	jail->pid = pid;
	jail->pidfd = pidfd;
	jail->exec_errno = 0;
	if (msg.type == SYNC_EXECUTED) {
		jail->sync_fd = sv[0];
		return 0;
	}
	close(sv[0]);
	if (msg.type == SYNC_FAILURE && msg.step == AJ_STEP_EXEC) {
		/* The jail is fine; the command is not.  Init exits with 126/127. */
		jail->exec_errno = msg.err;
		return 0;
	}
	sv[0] = -1;
fail:
	if (sv[0] >= 0)
		close(sv[0]);
	if (jail->listener_fd >= 0)
		close(jail->listener_fd);
	jail->listener_fd = -1;
	aj_process_kill_and_reap(pid, pidfd, NULL);
	close(pidfd);
	return report_failure(&msg, err, errlen);
}

bool
aj_spawn_agent_status(int sync_fd, int *wait_status)
{
	struct sync_msg msg;

	if (sync_fd < 0 || recv(sync_fd, &msg, sizeof(msg), MSG_DONTWAIT) != (ssize_t)sizeof(msg) ||
	    msg.type != SYNC_AGENT_STATUS)
		return false;
	*wait_status = msg.err;
	return true;
}
