/*
 * aj_run(): one jailed command, start to finish, in the order the design
 * fixes.  Everything that can be decided is decided before any process
 * starts (policy, identity, filter, environment); then the broker, then the
 * jail; then the supervisor watches until the jail's init exits.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
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

#ifndef AJ_LIBEXECDIR
#define AJ_LIBEXECDIR "/usr/local/libexec/agentjail"
#endif

struct identity {
	uid_t uid;
	gid_t gid;
	bool drop; /* started by root: become uid/gid before anything runs */
};

/* Who the agent (and the broker) run as.  Started by root: the profile's
 * user, never uid 0.  Otherwise: the caller. */
static int
resolve_identity(const struct aj_profile *profile, struct identity *id, char *err,
                 size_t errlen)
{
	struct passwd pw, *res = NULL;
	char buf[4096], *end;
	unsigned long n;

	if (getuid() != geteuid())
		return aj_err(err, errlen, -EPERM,
		              "agentjail must not run set-user-ID: install it as a normal program");
	if (geteuid() != 0) {
		id->uid = getuid();
		id->gid = getgid();
		id->drop = false;
		return 0;
	}
	errno = 0;
	n = strtoul(profile->user, &end, 10);
	if (*end == '\0' && end != profile->user) {
		if (getpwuid_r((uid_t)n, &pw, buf, sizeof(buf), &res) != 0 || res == NULL) {
			id->uid = (uid_t)n;
			id->gid = (gid_t)n;
			res = NULL;
		}
	} else if (getpwnam_r(profile->user, &pw, buf, sizeof(buf), &res) != 0 || res == NULL) {
		return aj_err(err, errlen, -ENOENT,
		              "profile %s: user '%s' does not exist on this host (it is the user "
		              "the agent runs as when agentjail is started by root)",
		              profile->path, profile->user);
	}
	if (res != NULL) {
		id->uid = res->pw_uid;
		id->gid = res->pw_gid;
	}
	if (id->uid == 0 || id->gid == 0)
		return aj_err(err, errlen, -EPERM,
		              "profile %s: refusing to run the agent as host root (user '%s')",
		              profile->path, profile->user);
	id->drop = true;
	return 0;
}

static const char *
broker_program(const struct aj_run_options *opts)
{
	return opts->broker_path ? opts->broker_path : AJ_LIBEXECDIR "/agentjail-broker";
}

/* The broker: its own process with its end of the socketpair at fd 3, no
 * capabilities, no_new_privs, and (started by root) the profile's user.  A
 * close-on-exec pipe tells whether the exec worked. */
static int
start_broker(const struct aj_run_options *opts, const struct identity *id, int broker_end,
             pid_t *pid_out, int *pidfd_out, char *err, size_t errlen)
{
	const char *path = broker_program(opts);
	int pipefd[2], e = 0, pidfd;
	ssize_t n;
	pid_t pid, parent = getpid();

	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return aj_err(err, errlen, -errno, "pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0) {
		e = errno;
		close(pipefd[0]);
		close(pipefd[1]);
		return aj_err(err, errlen, -e, "starting the broker: fork: %s", strerror(e));
	}
	if (pid == 0) {
		char *argv[] = {"agentjail-broker", NULL};
		char *envp[] = {"AGENTJAIL_FD=3", NULL};
		struct sigaction dfl = {.sa_handler = SIG_DFL};
		sigset_t none;

		close(pipefd[0]);
		(void)prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		if (getppid() != parent)
			_exit(AJ_EXIT_SETUP);
		if (id->drop && (setgroups(0, NULL) < 0 || setresgid(id->gid, id->gid, id->gid) < 0 ||
		                 setresuid(id->uid, id->uid, id->uid) < 0))
			goto fail;
		if (aj_fds_prepare_agent(broker_end, &pipefd[1]) < 0)
			goto fail;
		for (int s = 1; s < NSIG; s++)
			if (s != SIGKILL && s != SIGSTOP)
				(void)sigaction(s, &dfl, NULL);
		sigemptyset(&none);
		(void)sigprocmask(SIG_SETMASK, &none, NULL);
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
			goto fail;
		execve(path, argv, envp);
	fail:
		e = errno;
		(void)!write(pipefd[1], &e, sizeof(e));
		_exit(AJ_EXIT_SETUP);
	}
	close(pipefd[1]);
	do
		n = read(pipefd[0], &e, sizeof(e));
	while (n < 0 && errno == EINTR);
	close(pipefd[0]);
	if (n == (ssize_t)sizeof(e)) {
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		return aj_err(err, errlen, -e, "%s failed: %s: %s (%s)", aj_step_name(AJ_STEP_BROKER),
		              path, strerror(e), aj_step_hint(AJ_STEP_BROKER, e));
	}
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0) {
		e = errno;
		kill(pid, SIGKILL);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		return aj_err(err, errlen, -e, "pidfd_open: %s", strerror(e));
	}
	*pid_out = pid;
	*pidfd_out = pidfd;
	return 0;
}

static void
kill_broker(pid_t pid, int pidfd)
{
	(void)syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	close(pidfd);
}

int
aj_run(const struct aj_run_options *opts, int *status, char *err, size_t errlen)
{
	extern char **environ;
	struct aj_seccomp_opts sopts;
	struct identity id = {0};
	struct aj_jail jail = {.pid = -1, .pidfd = -1};
	struct aj_monitor_plan mplan;
	char cwd[4096], localerr[512];
	char **envp = NULL;
	void *filter = NULL;
	int pair[2] = {-1, -1};
	pid_t broker_pid = -1;
	int broker_pidfd = -1;
	int r;

	if (err == NULL || errlen == 0) {
		err = localerr;
		errlen = sizeof(localerr);
	}
	err[0] = '\0';
	if (opts == NULL || opts->profile == NULL || opts->argv == NULL || opts->argv[0] == NULL)
		return aj_err(err, errlen, -EINVAL, "aj_run: a profile and a command are required");
	if (opts->timeout_sec < 0)
		return aj_err(err, errlen, -EINVAL, "aj_run: the timeout must not be negative");

	/* 1. Everything decided before anything starts. */
	r = resolve_identity(opts->profile, &id, err, errlen);
	if (r < 0)
		return r;
	sopts.allow_unix_sockets = opts->profile->allow_unix_sockets;
	r = aj_seccomp_build(&sopts, &filter, err, errlen);
	if (r < 0)
		return r;
	r = aj_env_build(opts->profile, environ, AJ_BROKER_FD, &envp);
	if (r < 0) {
		aj_err(err, errlen, r, "building the environment: %s", strerror(-r));
		goto out;
	}

	/* 2. The one door: a socketpair whose ends go to the broker and the
	 * agent.  The supervisor keeps neither. */
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0) {
		r = aj_err(err, errlen, -errno, "socketpair: %s", strerror(errno));
		goto out;
	}

	/* 3. The broker, before the jail, so the agent's first request finds it. */
	r = start_broker(opts, &id, pair[0], &broker_pid, &broker_pidfd, err, errlen);
	if (r < 0)
		goto out;
	close(pair[0]);
	pair[0] = -1;

	/* 4. The jail. */
	{
		struct aj_spawn_plan plan = {
			.profile = opts->profile,
			.argv = opts->argv,
			.envp = envp,
			.seccomp = filter,
			.uid = id.uid,
			.gid = id.gid,
			.drop_privileges = id.drop,
			.cwd = getcwd(cwd, sizeof(cwd)),
			.xdg_runtime_dir = getenv("XDG_RUNTIME_DIR"),
			.broker_fd = pair[1],
			.quiet = opts->quiet,
		};
		r = aj_spawn_jail(&plan, &jail, err, errlen);
	}
	close(pair[1]);
	pair[1] = -1;
	if (r < 0) {
		kill_broker(broker_pid, broker_pidfd);
		broker_pidfd = -1;
		goto out;
	}
	if (jail.exec_errno != 0 && !opts->quiet) {
		char safe[512];
		aj_log_escape(opts->argv[0], safe, sizeof(safe));
		fprintf(stderr, "agentjail: cannot execute '%s': %s\n", safe,
		        strerror(jail.exec_errno));
	}

	/* 5. Watch until the jail's init exits. */
	mplan = (struct aj_monitor_plan){
		.jail_pidfd = jail.pidfd,
		.broker_pidfd = broker_pidfd,
		.timeout_sec = opts->timeout_sec,
		.forward_signals = opts->forward_signals,
		.quiet = opts->quiet,
	};
	r = aj_monitor_run(&mplan, status, err, errlen);
	if (r < 0) {
		/* Fail closed: no jail outlives a supervisor that cannot watch it. */
		siginfo_t info;
		(void)syscall(SYS_pidfd_send_signal, jail.pidfd, SIGKILL, NULL, 0);
		(void)waitid(P_PIDFD, jail.pidfd, &info, WEXITED);
		(void)syscall(SYS_pidfd_send_signal, broker_pidfd, SIGKILL, NULL, 0);
		(void)waitid(P_PIDFD, broker_pidfd, &info, WEXITED);
	}
	close(jail.pidfd);
	close(broker_pidfd);
	broker_pidfd = -1;
out:
	if (pair[0] >= 0)
		close(pair[0]);
	if (pair[1] >= 0)
		close(pair[1]);
	aj_env_free(envp);
	aj_seccomp_free(filter);
	return r;
}
