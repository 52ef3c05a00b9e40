/*
 * The jail's init: pid 1 of the jail, in the new namespaces.  It brings up
 * loopback, makes the proxy's listeners (`proxy on`) and the broker's
 * door, sets the jail up from inside in a fixed order (hostname,
 * filesystem, working directory, capabilities, seccomp last, resource
 * limits), starts the command once the supervisor says the broker runs,
 * then reaps and forwards signals until the command exits.  When the agent
 * has a terminal of its own, init makes it (in the jail's devpts); when
 * the caller sits at a terminal, init stops and continues the jail as a
 * whole for job control.  It talks to the supervisor over the setup
 * channel (supervisor/setup-channel.c); any failure is one FAILURE
 * message and an exit.
 */
#include "config.h"

#include <errno.h>
#include <linux/sched.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "fdpass.h"
#include "proto.h"
#include "supervisor.h"

/* What the supervisor forwards to init, and init to the agent.  SIGWINCH
 * and SIGCONT too: a resized terminal and a resumed job concern
 * the agent as much as its supervisor.  SIGTSTP (^Z on a terminal the
 * agent shares with the caller) stops the jail as a whole under job
 * control, else the agent. */
const int aj_init_forwarded_signals[AJ_INIT_N_FORWARDED] = {
	SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT, SIGTSTP,
};

/* Tier 2: any failure between clone and execve is fatal; report and exit. */
static _Noreturn void
child_fail(int sync_fd, enum aj_step step, int errnum, const char *detail)
{
	struct aj_setup_msg msg = {.type = AJ_SETUP_FAILURE, .step = step, .err = errnum};

	if (detail != NULL)
		snprintf(msg.detail, sizeof(msg.detail), "%s", detail);
	(void)aj_setup_send(sync_fd, &msg, -1);
	_exit(step == AJ_STEP_EXEC ? (errnum == ENOENT ? AJ_EXIT_NOT_FOUND : AJ_EXIT_CANNOT_EXEC)
				   : AJ_EXIT_SETUP);
}

/* The agent, spawned by init.  Resource limits were set on init and are
 * inherited.  An exec failure comes back as the return value, so init can
 * report it on the setup channel. */
static int
spawn_agent(const struct aj_spawn_plan *plan, int door, const int stdio[3], int fg_tty, pid_t *pid)
{
	extern char **environ;

	/* posix_spawnp searches the PATH of environ: make it the agent's.
	 * Init reads nothing from its environment. */
	environ = plan->envp;
	return aj_process_spawn(plan->argv[0], plan->argv, plan->envp, &door, 1, stdio, fg_tty, true,
				pid);
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
	struct aj_setup_msg msg = {.type = AJ_SETUP_AGENT_STATUS, .err = st};

	(void)aj_setup_send(sync_fd, &msg, -1);
	if (WIFSIGNALED(st))
		_exit(AJ_EXIT_SIGNAL_BASE + WTERMSIG(st));
	_exit(WEXITSTATUS(st));
}

static void
forward(pid_t agent, int sig)
{
	if (kill(-agent, sig) < 0)
		(void)kill(agent, sig);
}

/* Tell the supervisor the jail is stopped, so it can give the caller's
 * terminal back and stop itself (the caller's shell sees a stopped job). */
static void
jail_stopped(int sync_fd, struct aj_jobctl *stopped)
{
	struct aj_setup_msg msg = {.type = AJ_SETUP_STOPPED};

	aj_jobctl_stop(stopped);
	(void)aj_setup_send(sync_fd, &msg, -1);
}

static _Noreturn void
init_loop(pid_t agent, const sigset_t *waitset, int sync_fd, bool job_control)
{
	struct aj_jobctl stopped = {0};

	for (;;) {
		siginfo_t info;
		int sig = sigwaitinfo(waitset, &info);

		if (sig < 0)
			continue;
		if (sig == SIGTSTP && job_control) {
			if (!stopped.active)
				jail_stopped(sync_fd, &stopped);
			continue;
		}
		if (sig == SIGCONT && stopped.active) {
			aj_jobctl_continue(&stopped, agent);
			continue;
		}
		if (sig != SIGCHLD) {
			forward(agent, sig);
			continue;
		}
		for (;;) {
			int st;
			pid_t p = waitpid(-1, &st, WNOHANG | (job_control ? WUNTRACED : 0));
			if (p <= 0)
				break;
			if (p != agent)
				continue;
			/* The agent stopped (^Z on its terminal, or a stop
			 * signal): so does the rest of the jail, as a job. */
			if (WIFSTOPPED(st)) {
				if (!stopped.active)
					jail_stopped(sync_fd, &stopped);
				continue;
			}
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

/*
 * Init -> supervisor: the listener fd, or -1 for "no notification on this
 * kernel".  Sent by a helper that shares init's file table but not its
 * filter: in loopback mode the filter watches sendmsg() (a datagram to an
 * address outside the jail is reported), and until the supervisor holds
 * the listener nobody would answer init's own sendmsg of it.  The helper
 * is cloned before the filter is loaded, when no agent process exists,
 * runs only this and is reaped at once; it gets the fd number over a pipe.
 */
struct listener_handover {
	pid_t helper;
	int pipe[2];
};

static int
handover_start(struct listener_handover *h, int sync_fd)
{
	struct clone_args args = {.flags = CLONE_FILES, .exit_signal = 0};
	struct aj_setup_msg msg = {.type = AJ_SETUP_LISTENER};
	int fd;

	if (pipe2(h->pipe, O_CLOEXEC) < 0)
		return -errno;
	h->helper = (pid_t)syscall(SYS_clone3, &args, sizeof(args));
	if (h->helper < 0) {
		int e = errno;

		close(h->pipe[0]);
		close(h->pipe[1]);
		return -e;
	}
	if (h->helper > 0)
		return 0;
	/* The helper.  It shares the table: it closes nothing. */
	if (read(h->pipe[0], &fd, sizeof(fd)) != (ssize_t)sizeof(fd))
		_exit(EPIPE);
	_exit(-aj_setup_send(sync_fd, &msg, fd));
}

/* FD is the listener (or -1); init keeps no copy of it afterwards. */
static int
handover_finish(struct listener_handover *h, int fd)
{
	int st = 0, r = 0;

	if (write(h->pipe[1], &fd, sizeof(fd)) != (ssize_t)sizeof(fd))
		r = -errno;
	close(h->pipe[1]);
	while (waitpid(h->helper, &st, __WALL) < 0)
		if (errno != EINTR) {
			r = r ? r : -errno;
			break;
		}
	close(h->pipe[0]);
	if (fd >= 0)
		close(fd);
	if (r == 0 && (!WIFEXITED(st) || WEXITSTATUS(st) != 0))
		r = WIFEXITED(st) ? -WEXITSTATUS(st) : -EIO;
	return r;
}

/*
 * The proxy's listening sockets (`proxy on`), made here for the reason the
 * door is: a socket belongs to the network namespace of its creator, and
 * these must listen on the jail's loopback, where the agent's tools
 * connect; nothing listens on the host.  Made before the filter (which
 * the broker, their user, is not under anyway) and passed to the
 * supervisor before the door, for the broker.  ::1 is skipped on a kernel
 * without IPv6.
 */
/* One socket of TYPE bound to ADDR:PORT (listening if a stream), passed to
 * the supervisor; failing is fatal, named WHAT. */
static void
pass_bound_socket(int type, uint32_t addr, uint16_t port, const char *what, int sync_fd)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(addr)};
	struct aj_setup_msg msg = {.type = AJ_SETUP_PROXY};
	int fd = socket(AF_INET, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (fd < 0 || bind(fd, (const struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    (type == SOCK_STREAM && listen(fd, SOMAXCONN) < 0))
		child_fail(sync_fd, AJ_STEP_PROXY, errno, what);
	if (aj_setup_send(sync_fd, &msg, fd) < 0)
		child_fail(sync_fd, AJ_STEP_PROXY, EIO, "passing a proxy socket");
	close(fd);
}

/* For the tools that ignore the proxy variables (common/fds.h, in this
 * order): the DNS stub's socket, where the jail's resolv.conf points (and
 * where a resolver without one looks), and the listeners that take the
 * connections to the addresses it gives out, on every local address of
 * ports 80 and 443 (the agent, without capabilities, binds no port below
 * 1024; one to an address the stub did not give out is closed). */
static void
make_capture_sockets(int sync_fd)
{
	pass_bound_socket(SOCK_DGRAM, INADDR_LOOPBACK, 53, "the DNS stub on 127.0.0.1:53", sync_fd);
	pass_bound_socket(SOCK_STREAM, INADDR_ANY, 80, "the captured port 80", sync_fd);
	pass_bound_socket(SOCK_STREAM, INADDR_ANY, 443, "the captured port 443", sync_fd);
}

static void
make_proxy_listeners(uint16_t port, int sync_fd)
{
	struct sockaddr_in v4 = {.sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct sockaddr_in6 v6 = {.sin6_family = AF_INET6, .sin6_port = htons(port),
				  .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	const struct {
		const struct sockaddr *sa;
		socklen_t len;
		const char *name;
	} where[AJ_PROXY_LISTENERS] = {
		{(const struct sockaddr *)&v4, sizeof(v4), "127.0.0.1"},
		{(const struct sockaddr *)&v6, sizeof(v6), "[::1]"},
	};
	struct aj_setup_msg msg = {.type = AJ_SETUP_PROXY};
	char what[64];
	int one = 1;

	for (size_t i = 0; i < AJ_PROXY_LISTENERS; i++) {
		int fd = socket(where[i].sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

		if (fd < 0 && i == 1 && errno == EAFNOSUPPORT)
			continue;
		snprintf(what, sizeof(what), "%s:%u", where[i].name, (unsigned)port);
		if (fd < 0)
			child_fail(sync_fd, AJ_STEP_PROXY, errno, what);
		if ((i == 1 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
		    bind(fd, where[i].sa, where[i].len) < 0) {
			if (i == 1 && errno == EADDRNOTAVAIL) { /* IPv6 disabled: no ::1 */
				close(fd);
				continue;
			}
			child_fail(sync_fd, AJ_STEP_PROXY, errno, what);
		}
		if (listen(fd, SOMAXCONN) < 0)
			child_fail(sync_fd, AJ_STEP_PROXY, errno, what);
		if (aj_setup_send(sync_fd, &msg, fd) < 0)
			child_fail(sync_fd, AJ_STEP_PROXY, EIO, "passing a listening socket");
		close(fd);
	}
}

/*
 * The door, made here because a socket belongs to the network namespace of
 * the process that creates it: network ioctls on it (SIOCGIFCONF,
 * SIOCGIFHWADDR, ...) answer from that namespace.  Made by the supervisor,
 * the agent's end listed the host's interfaces and MAC addresses.  The
 * broker's end goes to the parent; the agent's end is returned.
 */
static int
make_door(int sync_fd)
{
	struct aj_setup_msg msg = {.type = AJ_SETUP_DOOR};
	int pair[2], r;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0)
		child_fail(sync_fd, AJ_STEP_DOOR, errno, "socketpair");
	r = aj_setup_send(sync_fd, &msg, pair[0]);
	if (r < 0)
		child_fail(sync_fd, AJ_STEP_DOOR, -r, "passing the broker's end");
	close(pair[0]);
	return pair[1];
}

/*
 * The broker socket (AJ_BROKER_SOCKET_PATH) for the processes of the jail
 * whose parent did not pass the door on (Python's subprocess and Node's
 * spawn close fd 3 by default): bound in the jail's private /run once it
 * is mounted, so it exists in the jail alone, and handed to the broker
 * over the door itself (LISTEN), before the agent can send anything
 * there.  Seqpacket, as the door: the seccomp filter lets every jail
 * create that kind (and no other, under `socket unix deny`).  Any process
 * of the jail may connect (mode 0666); each connection is a channel.  A
 * host without /run has no private one to put it in: the door alone.
 */
static void
pass_broker_socket(int door, int sync_fd)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	uint8_t frame[AJ_PROTO_HEADER_SIZE];
	int fd;

	_Static_assert(sizeof(AJ_BROKER_SOCKET_PATH) <= sizeof(sa.sun_path), "path too long");
	if (access("/run", F_OK) < 0)
		return;
	memcpy(sa.sun_path, AJ_BROKER_SOCKET_PATH, sizeof(AJ_BROKER_SOCKET_PATH));
	if (mkdir(AJ_JAIL_RUN_DIR, 0755) < 0 && errno != EEXIST)
		child_fail(sync_fd, AJ_STEP_DOOR, errno, "creating " AJ_JAIL_RUN_DIR);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (const struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    chmod(AJ_BROKER_SOCKET_PATH, 0666) < 0 || listen(fd, SOMAXCONN) < 0)
		child_fail(sync_fd, AJ_STEP_DOOR, errno, "the broker socket " AJ_BROKER_SOCKET_PATH);
	if (aj_proto_frame(AJ_MSG_LISTEN, 0, 0, NULL, 0, frame, sizeof(frame)) < 0 ||
	    aj_fdpass_send(door, frame, sizeof(frame), fd, 0) != (ssize_t)sizeof(frame))
		child_fail(sync_fd, AJ_STEP_DOOR, EIO, "handing the broker socket to the broker");
	close(fd);
}

/*
 * The agent's own terminal: a pseudo-terminal of the jail's devpts
 * (mounted by aj_fs_setup), so the agent never holds the caller's.  It
 * starts with the caller's modes and size; the master goes to the
 * supervisor, which relays it.  Init becomes the session leader with the
 * slave as its controlling terminal, as a login shell is, so the agent
 * runs in a foreground process group that is not orphaned: the terminal's
 * ^Z stops it (the kernel drops stop signals to orphaned groups).
 * Returns the slave (close-on-exec).
 */
static int
make_pty(const struct aj_spawn_plan *plan, int sync_fd)
{
	struct aj_setup_msg msg = {.type = AJ_SETUP_PTY};
	char path[64];
	int master, slave, r;

	master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0)
		child_fail(sync_fd, AJ_STEP_PTY, errno, "/dev/ptmx");
	if (unlockpt(master) < 0 || ptsname_r(master, path, sizeof(path)) != 0)
		child_fail(sync_fd, AJ_STEP_PTY, errno, "unlockpt");
	/* Termios ioctls on a master apply to its slave. */
	if ((plan->pty_termios != NULL && tcsetattr(master, TCSANOW, plan->pty_termios) < 0) ||
	    (plan->pty_winsize != NULL && ioctl(master, TIOCSWINSZ, plan->pty_winsize) < 0))
		child_fail(sync_fd, AJ_STEP_PTY, errno, "copying the caller's terminal modes");
	slave = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0)
		child_fail(sync_fd, AJ_STEP_PTY, errno, path);
	if (setsid() < 0 || ioctl(slave, TIOCSCTTY, 0) < 0)
		child_fail(sync_fd, AJ_STEP_PTY, errno, "making it the jail's controlling terminal");
	r = aj_setup_send(sync_fd, &msg, master);
	if (r < 0)
		child_fail(sync_fd, AJ_STEP_PTY, -r, "passing the terminal's master");
	close(master);
	return slave;
}

/* The supervisor's "go" (the maps are written; later, the broker runs,
 * with its CA when the proxy is on), and the fd it came with (or -1).  EOF
 * or anything else means the supervisor gave up or is gone: leave without
 * starting anything. */
static int
wait_for_go(int sync_fd)
{
	struct aj_setup_msg go;
	int passed;

	if (aj_setup_recv(sync_fd, &go, &passed) != 1 || go.type != AJ_SETUP_GO)
		_exit(AJ_EXIT_SETUP);
	return passed;
}

/* `proxy on`: the jail's trust bundle (fs.c made it, the system's
 * certificates in it) gets the broker's CA, from the memfd CA. */
static void
trust_jail_ca(int bundle, int ca, int sync_fd)
{
	char pem[16384];
	ssize_t n = ca >= 0 ? pread(ca, pem, sizeof(pem), 0) : -1;

	if (n <= 0 || write(bundle, "\n", 1) != 1 || write(bundle, pem, (size_t)n) != n)
		child_fail(sync_fd, AJ_STEP_TRUST, n < 0 || ca < 0 ? EBADF : errno,
			   "adding the proxy's CA to the jail's trust");
	close(ca);
	close(bundle);
}

/* Seccomp, with escape attempts reported to the supervisor when the
 * kernel can (user notification), else refused with EPERM all the same. */
static int
load_filter(const struct aj_spawn_plan *plan, int sync_fd)
{
	struct listener_handover h;
	int fd, r;

	if (plan->seccomp_notify == NULL)
		return aj_seccomp_load_prebuilt(plan->seccomp);
	r = handover_start(&h, sync_fd);
	if (r < 0)
		child_fail(sync_fd, AJ_STEP_SECCOMP, -r, "starting the listener's handover");
	fd = aj_seccomp_load_prebuilt_listener(plan->seccomp_notify);
	/* No user notification here: EINVAL/EOPNOTSUPP/ENOSYS from a kernel
	 * without it, EBUSY when an outer sandbox already holds the one
	 * listener a process may have (LXD, sysbox, crun).  Refuse all the
	 * same, unreported. */
	if (fd == -EINVAL || fd == -EOPNOTSUPP || fd == -ENOSYS || fd == -EBUSY) {
		r = handover_finish(&h, -1);
		if (r < 0)
			child_fail(sync_fd, AJ_STEP_SECCOMP, -r, "passing the notification listener");
		return aj_seccomp_load_prebuilt(plan->seccomp);
	}
	r = handover_finish(&h, fd < 0 ? -1 : fd);
	if (fd < 0)
		return fd;
	if (r < 0)
		child_fail(sync_fd, AJ_STEP_SECCOMP, -r, "passing the notification listener");
	return 0;
}

_Noreturn void
aj_init_run(const struct aj_spawn_plan *plan, int sync_fd)
{
	struct aj_fs_plan fs = {
		.tmpfs_size = plan->profile->tmpfs_size,
		.xdg_runtime_dir = plan->xdg_runtime_dir,
		.sysfs_optional = plan->profile->optional_layers & AJ_LAYER_SYSFS,
		.quiet = plan->quiet,
		.readonly_paths = plan->readonly_paths,
		.hidden_paths = plan->hidden_paths,
		.hostname = plan->profile->hostname,
	};
	enum aj_step step;
	char err[256];
	sigset_t waitset;
	pid_t agent;
	int door, r, slave = -1, stdio[3] = {-1, -1, -1}, bundle = -1, ca;

	/* Init is a clone of the supervisor: the secrets of `inject` rules
	 * are the broker's, not ours to keep in the jail. */
	aj_secrets_forget(plan->secrets);
	/* Die with the supervisor; if it is already gone the read below sees
	 * EOF and we leave before doing anything. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		_exit(AJ_EXIT_SETUP);
	{
		int stray = wait_for_go(sync_fd);

		if (stray >= 0)
			close(stray);
	}
	/* Non-dumpable: the agent cannot open /proc/1/mem or ptrace init.  Only
	 * after "go": a non-dumpable process's /proc files belong to root, and
	 * an unprivileged supervisor could no longer write our id maps. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		child_fail(sync_fd, AJ_STEP_NONE, errno, "PR_SET_DUMPABLE");
	(void)prctl(PR_SET_NAME, "agentjail-init", 0, 0, 0);
	/* Init holds only the setup channel and the agent's stdio: whatever
	 * else the caller had open stays outside. */
	{
		int keep[4] = {sync_fd, -1, -1, -1};

		for (size_t i = 0; plan->stdio != NULL && i < 3; i++)
			keep[1 + i] = plan->stdio[i];
		r = close_all_but(keep, AJ_ARRAY_SIZE(keep));
	}
	if (r < 0)
		child_fail(sync_fd, AJ_STEP_NONE, -r, "closing inherited file descriptors");
	/* The network first: the proxy's listeners need its loopback up, and
	 * the broker gets them with the door. */
	r = aj_netns_setup_loopback(err, sizeof(err));
	if (r < 0)
		child_fail(sync_fd, r == -EEXIST || r == -ENODEV ? AJ_STEP_LINKS : AJ_STEP_LOOPBACK,
			   -r, err);
	if (plan->profile->proxy_port != 0) {
		make_capture_sockets(sync_fd);
		make_proxy_listeners(plan->profile->proxy_port, sync_fd);
	}
	/* Then the door, so the broker starts while the jail is being set up. */
	door = make_door(sync_fd);
	/* Handlers and the mask come from the caller (an embedder may have
	 * its own): start from the defaults, with what init waits for held. */
	sigemptyset(&waitset);
	sigaddset(&waitset, SIGCHLD);
	/* The supervisor's list: what it forwards, init passes on to the
	 * agent's process group. */
	for (size_t i = 0; i < AJ_INIT_N_FORWARDED; i++)
		sigaddset(&waitset, aj_init_forwarded_signals[i]);
	reset_signal_handlers();
	if (sigprocmask(SIG_SETMASK, &waitset, NULL) < 0)
		child_fail(sync_fd, AJ_STEP_NONE, errno, "sigprocmask");

	if (sethostname(plan->profile->hostname, strlen(plan->profile->hostname)) < 0)
		child_fail(sync_fd, AJ_STEP_HOSTNAME, errno, plan->profile->hostname);

	if (plan->profile->proxy_port != 0)
		fs.bundle_fd = &bundle;
	r = aj_fs_setup(&fs, &step, err, sizeof(err));
	if (r < 0)
		child_fail(sync_fd, step, -r, err);
	pass_broker_socket(door, sync_fd);

	/* The agent's stdio: the run's, with its own terminal in place of
	 * the caller's. */
	for (size_t i = 0; plan->stdio != NULL && i < 3; i++)
		stdio[i] = plan->stdio[i];
	if (plan->pty_stdio != 0) {
		slave = make_pty(plan, sync_fd);
		for (size_t i = 0; i < 3; i++)
			if (plan->pty_stdio & (1u << i))
				stdio[i] = slave;
	}

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
	/* The broker runs on the door's other end before the command does;
	 * with the proxy, its CA comes with the word. */
	ca = wait_for_go(sync_fd);
	if (bundle >= 0)
		trust_jail_ca(bundle, ca, sync_fd);
	else if (ca >= 0)
		close(ca);
	r = spawn_agent(plan, door, stdio, slave, &agent);
	if (r != 0) {
		aj_log_escape(plan->argv[0], err, sizeof(err));
		child_fail(sync_fd, AJ_STEP_EXEC, exec_errno(plan->argv[0], r), err);
	}
	/* The command runs.  The channel stays open for the agent's status. */
	{
		struct aj_setup_msg done = {.type = AJ_SETUP_EXECUTED};
		(void)aj_setup_send(sync_fd, &done, -1);
	}
	/* Init keeps no copy of the agent's ends: a reader of the agent's
	 * stdout sees EOF when the agent (and what it started) is done. */
	close(door);
	if (slave >= 0)
		close(slave);
	for (size_t i = 0; plan->stdio != NULL && i < 3; i++)
		if (plan->stdio[i] > 2)
			close(plan->stdio[i]);
	init_loop(agent, &waitset, sync_fd, plan->job_control);
}
