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
#include <jansson.h>
#include <pwd.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "handover.h"
#include "supervisor.h"

#ifndef AJ_LIBEXECDIR
#define AJ_LIBEXECDIR "/usr/local/libexec/agentjail"
#endif

/* Who the agent and the broker run as.  Started by root: the profile's
 * `user` and `broker-user`, never uid 0.  Otherwise: the caller. */
struct identity {
	uid_t uid;
	gid_t gid;
	uid_t broker_uid;
	gid_t broker_gid;
	bool drop; /* started by root: become uid/gid before anything runs */
};

/* NAME (a user name or id; ROLE is the directive that named it) as a
 * host uid and gid, never root's. */
static int
resolve_user(const struct aj_profile *profile, const char *name, const char *role, uid_t *uid,
	     gid_t *gid, char *err, size_t errlen)
{
	struct passwd pw, *res = NULL;
	char buf[4096], *end;
	unsigned long n;

	errno = 0;
	n = strtoul(name, &end, 10);
	if (*end == '\0' && end != name) {
		/* (uid_t)-1 means "unchanged" to set*id: never a valid id. */
		if (errno != 0 || n >= (unsigned long)(uid_t)-1)
			return aj_err(err, errlen, -EINVAL, "profile %s: %s id %s is out of range",
				      profile->path, role, name);
		if (getpwuid_r((uid_t)n, &pw, buf, sizeof(buf), &res) != 0 || res == NULL) {
			*uid = (uid_t)n;
			*gid = (gid_t)n;
			res = NULL;
		}
	} else if (getpwnam_r(name, &pw, buf, sizeof(buf), &res) != 0 || res == NULL) {
		return aj_err(err, errlen, -ENOENT,
			      "profile %s: %s '%s' does not exist on this host (it is the user "
			      "the %s runs as when agentjail is started by root)",
			      profile->path, role, name,
			      strcmp(role, "user") == 0 ? "agent" : "broker");
	}
	if (res != NULL) {
		*uid = res->pw_uid;
		*gid = res->pw_gid;
	}
	if (*uid == 0 || *gid == 0)
		return aj_err(err, errlen, -EPERM,
			      "profile %s: refusing to run the %s as host root (%s '%s')",
			      profile->path, strcmp(role, "user") == 0 ? "agent" : "broker", role,
			      name);
	return 0;
}

static int
resolve_identity(const struct aj_profile *profile, struct identity *id, char *err, size_t errlen)
{
	int r;

	if (getuid() != geteuid())
		return aj_err(err, errlen, -EPERM,
			      "agentjail must not run set-user-ID: install it as a normal program");
	if (geteuid() != 0) {
		id->uid = id->broker_uid = getuid();
		id->gid = id->broker_gid = getgid();
		id->drop = false;
		return 0;
	}
	r = resolve_user(profile, profile->user, "user", &id->uid, &id->gid, err, errlen);
	if (r == 0)
		r = resolve_user(profile, profile->broker_user, "broker-user", &id->broker_uid,
				 &id->broker_gid, err, errlen);
	if (r < 0)
		return r;
	id->drop = true;
	return 0;
}

/* Where the agent could plant a profile for the next run: the search
 * directories a user can write (./profiles and the XDG one) and the
 * profile file in use (only the file: it may sit in the agent's working
 * directory).  Made read-only inside the jail.
 * Directories that do not exist yet cannot be covered this way (see
 * README, "What it is not"). */
struct protected_paths {
	char cwd_profiles[4096];
	char xdg_profiles[4096];
	char profile_file[4096];
	char events_file[4096];
	char audit_file[4096];
	const char *list[6];
};

/* The path of FD if it is a regular file, into OUT (PATH_MAX); else "". */
static void
regular_file_path(int fd, char *out, size_t len)
{
	struct stat st;
	char link[64];
	ssize_t n;

	out[0] = '\0';
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, out, len - 1);
	if (n > 0 && out[0] == '/')
		out[n] = '\0';
	else
		out[0] = '\0';
}

static void
protected_paths_init(struct protected_paths *pp, const struct aj_profile *profile, const char *cwd,
		     int events_fd, int audit_fd)
{
	const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
	size_t n = 0;

	if (cwd != NULL && snprintf(pp->cwd_profiles, sizeof(pp->cwd_profiles), "%s/profiles",
				    cwd) < (int)sizeof(pp->cwd_profiles))
		pp->list[n++] = pp->cwd_profiles;
	if (xdg != NULL && xdg[0] == '/')
		snprintf(pp->xdg_profiles, sizeof(pp->xdg_profiles), "%s/agentjail", xdg);
	else if (home != NULL && home[0] == '/')
		snprintf(pp->xdg_profiles, sizeof(pp->xdg_profiles), "%s/.config/agentjail", home);
	if (pp->xdg_profiles[0] != '\0')
		pp->list[n++] = pp->xdg_profiles;
	if (realpath(profile->path, pp->profile_file) != NULL)
		pp->list[n++] = pp->profile_file;
	/* The records of this very run must not be the agent's to edit. */
	regular_file_path(events_fd, pp->events_file, sizeof(pp->events_file));
	if (pp->events_file[0] != '\0')
		pp->list[n++] = pp->events_file;
	regular_file_path(audit_fd, pp->audit_file, sizeof(pp->audit_file));
	if (pp->audit_file[0] != '\0')
		pp->list[n++] = pp->audit_file;
	pp->list[n] = NULL;
}

static const char *
broker_program(const struct aj_run_options *opts)
{
	return opts->broker_path ? opts->broker_path : AJ_LIBEXECDIR "/agentjail-broker";
}

/* The broker: its own program, started with posix_spawn (no copy of the
 * supervisor's memory) in its own session (a terminal's ^C is for the
 * agent, forwarded by the supervisor), its end of the socketpair at fd 3
 * and nothing else.  It drops to the profile's user itself when started by root, sets
 * no_new_privs, and dies with the supervisor (see broker/broker.c). */
static int
start_broker(const struct aj_run_options *opts, const struct identity *id, int broker_end,
	     int audit_end, pid_t *pid_out, int *pidfd_out, char *err, size_t errlen)
{
	const char *path = broker_program(opts);
	char parent[32], user[64];
	char *argv[] = {"agentjail-broker", "--supervisor", parent, id->drop ? "--user" : NULL, user,
			NULL};
	char *envp[] = {NULL};
	pid_t pid;
	int r, pidfd, policy_fd;

	snprintf(parent, sizeof(parent), "%d", (int)getpid());
	snprintf(user, sizeof(user), "%u:%u", (unsigned)id->broker_uid, (unsigned)id->broker_gid);
	/* The broker decides with exactly what was loaded here. */
	policy_fd = aj_handover_write(&opts->profile->fetch);
	if (policy_fd < 0)
		return aj_err(err, errlen, policy_fd, "%s failed: writing the policy: %s",
			      aj_step_name(AJ_STEP_BROKER), strerror(-policy_fd));
	r = aj_spawn_program(path, argv, envp, (int[]){broker_end, policy_fd, audit_end}, 3, false,
			     &pid);
	close(policy_fd);
	if (r != 0)
		return aj_err(err, errlen, -r, "%s failed: %s: %s (%s)",
			      aj_step_name(AJ_STEP_BROKER), path, strerror(r),
			      aj_step_hint(AJ_STEP_BROKER, r));

	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0) {
		r = errno;
		kill(pid, SIGKILL);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		return aj_err(err, errlen, -r, "pidfd_open: %s", strerror(r));
	}
	*pid_out = pid;
	*pidfd_out = pidfd;
	return 0;
}

/* on-violation kill: the whole pid namespace dies with its init. */
static void
kill_jail(void *pidfd)
{
	(void)syscall(SYS_pidfd_send_signal, *(int *)pidfd, SIGKILL, NULL, 0);
}

static void
emit_start(struct aj_events *events, const struct aj_run_options *opts, const struct identity *id,
	   pid_t broker, pid_t init, bool violations_reported)
{
	char hex[65] = "";
	json_t *missing = json_array();

	(void)aj_profile_sha256(opts->profile, hex);
	if (!violations_reported)
		json_array_append_new(missing, json_string("seccomp_user_notification"));
	aj_events_emit(
		events, "start",
		json_pack("{s:s, s:{s:s, s:s, s:s}, s:[s,s,s,s,s,s,s], s:{s:I, s:I, s:I, s:I}, "
			  "s:{s:I, s:I, s:I}, s:{s:b, s:s}, s:o}",
			  "version", PACKAGE_VERSION, "profile", "name",
			  aj_profile_name(opts->profile), "path", aj_profile_path(opts->profile),
			  "sha256", hex, "namespaces", "user", "net", "mnt", "pid", "ipc", "uts",
			  "cgroup", "ids", "uid", (json_int_t)id->uid, "gid", (json_int_t)id->gid,
			  "host_uid", (json_int_t)id->uid, "host_gid", (json_int_t)id->gid, "pids",
			  "supervisor", (json_int_t)getpid(), "broker", (json_int_t)broker, "init",
			  (json_int_t)init, "violations", "reported", violations_reported,
			  "on_violation", opts->profile->kill_on_violation ? "kill" : "deny",
			  "missing", missing));
}

static void
emit_exit(struct aj_events *events, struct aj_violations *violations, struct aj_audit *audit,
	  int status, int signal, const struct timespec *started, bool quiet)
{
	unsigned long long total = aj_violations_total(violations), allowed, denied;
	struct timespec now;
	double ms;

	aj_violations_flush(violations);
	aj_audit_counts(audit, &allowed, &denied);
	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (double)(now.tv_sec - started->tv_sec) * 1e3 +
	     (double)(now.tv_nsec - started->tv_nsec) / 1e6;
	aj_events_emit(events, "exit",
		       json_pack("{s:i, s:o, s:f, s:{s:I, s:I}, s:I, s:o}", "status", status,
				 "signal", signal > 0 ? json_integer(signal) : json_null(),
				 "duration_ms", ms, "fetches", "allowed", (json_int_t)allowed,
				 "denied", (json_int_t)denied, "violations", (json_int_t)total,
				 "violation_counts", aj_violations_counts(violations)));
	if (total > 0 && !quiet) {
		char what[1024];
		aj_violations_describe(violations, what, sizeof(what));
		fprintf(stderr, "agentjail: %llu violation%s blocked (%s)\n", total,
			total == 1 ? "" : "s", what);
	}
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
	struct aj_seccomp_opts sopts = {0};
	struct identity id = {0};
	struct aj_jail jail = {.pid = -1, .pidfd = -1, .listener_fd = -1, .sync_fd = -1};
	int agent_signal = 0;
	struct aj_events *events = NULL;
	struct aj_violations *violations = NULL;
	struct aj_audit *audit = NULL;
	struct timespec started;
	struct aj_monitor_plan mplan;
	struct protected_paths protect = {0};
	char cwd[4096], localerr[512];
	char **envp = NULL;
	const struct sock_fprog *filter, *filter_notify;
	int pair[2] = {-1, -1};
	pid_t broker_pid = -1;
	int broker_pidfd = -1;
	sigset_t held, saved_mask;
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

	/* Signals meant for the agent that arrive while the jail is being set
	 * up are held, not lost (nor fatal to us): the monitor forwards them
	 * once the agent runs. */
	if (opts->forward_signals) {
		sigemptyset(&held);
		for (size_t i = 0; i < AJ_ARRAY_SIZE(aj_forwarded_signals); i++)
			sigaddset(&held, aj_forwarded_signals[i]);
		pthread_sigmask(SIG_BLOCK, &held, &saved_mask);
	}

	/* 1. Everything decided before anything starts. */
	r = resolve_identity(opts->profile, &id, err, errlen);
	if (r < 0)
		goto out;
	clock_gettime(CLOCK_MONOTONIC, &started);
	r = aj_events_new(opts->events_to_fd ? opts->events_fd : -1, opts->on_event,
			  opts->on_event_arg, &events);
	if (r < 0) {
		aj_err(err, errlen, r, "creating the event stream: %s", strerror(-r));
		goto out;
	}
	sopts.allow_unix_sockets = opts->profile->allow_unix_sockets;
	filter = aj_seccomp_prebuilt(&sopts);
	sopts.notify_violations = true;
	filter_notify = aj_seccomp_prebuilt(&sopts);
	r = aj_env_build(opts->profile, environ, AJ_FD_DOOR, &envp);
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
	{
		char hex[65] = "";
		int audit_end = -1;

		(void)aj_profile_sha256(opts->profile, hex);
		r = aj_audit_new(opts->audit_to_fd ? opts->audit_fd : -1, events, hex, &audit_end,
				 &audit);
		if (r < 0) {
			aj_err(err, errlen, r, "creating the audit pipe: %s", strerror(-r));
			goto out;
		}
		r = start_broker(opts, &id, pair[0], audit_end, &broker_pid, &broker_pidfd, err,
				 errlen);
		close(audit_end);
		if (r < 0)
			goto out;
	}
	close(pair[0]);
	pair[0] = -1;

	/* 4. The jail. */
	protected_paths_init(&protect, opts->profile, getcwd(cwd, sizeof(cwd)),
			     opts->events_to_fd ? opts->events_fd : -1,
			     opts->audit_to_fd ? opts->audit_fd : -1);
	{
		struct aj_spawn_plan plan = {
			.profile = opts->profile,
			.argv = opts->argv,
			.envp = envp,
			.seccomp = filter,
			.seccomp_notify = filter_notify,
			.uid = id.uid,
			.gid = id.gid,
			.drop_privileges = id.drop,
			.cwd = getcwd(cwd, sizeof(cwd)),
			.xdg_runtime_dir = getenv("XDG_RUNTIME_DIR"),
			.readonly_paths = protect.list,
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
		if (jail.exec_errno == ENOENT)
			fprintf(stderr, "agentjail: %s: command not found in the jail\n", safe);
		else
			fprintf(stderr, "agentjail: cannot execute '%s': %s\n", safe,
				strerror(jail.exec_errno));
	}

	if (jail.listener_fd >= 0) {
		r = aj_violations_new(jail.listener_fd, events, opts->profile->kill_on_violation,
				      kill_jail, &jail.pidfd, &violations);
		if (r < 0) {
			siginfo_t info;
			(void)syscall(SYS_pidfd_send_signal, jail.pidfd, SIGKILL, NULL, 0);
			(void)waitid(P_PIDFD, jail.pidfd, &info, WEXITED);
			kill_broker(broker_pid, broker_pidfd);
			broker_pidfd = -1;
			aj_err(err, errlen, r, "watching for violations: %s", strerror(-r));
			goto out;
		}
	} else if (!opts->quiet) {
		fprintf(stderr, "agentjail: notice: this kernel has no seccomp user notification; "
				"escape attempts are refused but not reported\n");
	}
	emit_start(events, opts, &id, broker_pid, jail.pid, jail.listener_fd >= 0);

	/* 5. Watch until the jail's init exits. */
	mplan = (struct aj_monitor_plan){
		.jail_pidfd = jail.pidfd,
		.listener_fd = jail.listener_fd,
		.status_fd = jail.sync_fd,
		.events = events,
		.violations = violations,
		.audit = audit,
		.broker_pidfd = broker_pidfd,
		.timeout_sec = opts->timeout_sec,
		.forward_signals = opts->forward_signals,
		.quiet = opts->quiet,
	};
	r = aj_monitor_run(&mplan, status, &agent_signal, err, errlen);
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
	if (r == 0)
		emit_exit(events, violations, audit, *status, agent_signal, &started, opts->quiet);
out:
	if (jail.listener_fd >= 0)
		close(jail.listener_fd);
	if (jail.sync_fd >= 0)
		close(jail.sync_fd);
	aj_violations_free(violations);
	aj_audit_free(audit);
	aj_events_free(events);
	if (pair[0] >= 0)
		close(pair[0]);
	if (pair[1] >= 0)
		close(pair[1]);
	aj_env_free(envp);
	if (opts->forward_signals)
		pthread_sigmask(SIG_SETMASK, &saved_mask, NULL);
	return r;
}
