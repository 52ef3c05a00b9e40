/*
 * aj_run(): one jailed command, start to finish, in the order the design
 * fixes.  Everything that can be decided is decided before any process
 * starts (policy, identity, filter, environment); then the broker, then the
 * jail; then the supervisor watches until the jail's init exits.
 */
#include "config.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "supervisor.h"

/* The profile's environment, then the caller's additions by name (checked
 * by aj_run_options_check: no reserved name among them). */
static int
build_env(const struct aj_run_options *opts, char ***out)
{
	extern char **environ;
	char **env = NULL;
	int r;

	r = aj_env_build(opts->profile, environ, AJ_FD_DOOR, &env);
	for (size_t i = 0; r == 0 && i < opts->n_env; i++)
		r = aj_env_set(&env, opts->env[i].name, opts->env[i].value);
	if (r < 0) {
		aj_env_free(env);
		return r;
	}
	*out = env;
	return 0;
}

/* on-violation kill: the whole pid namespace dies with its init. */
static void
kill_jail(void *pidfd)
{
	(void)syscall(SYS_pidfd_send_signal, *(int *)pidfd, SIGKILL, NULL, 0);
}

static void
emit_start(struct aj_events *events, const struct aj_run_options *opts,
	   const struct aj_identity *id, pid_t broker, pid_t init, bool violations_reported)
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

int
aj_run(const struct aj_run_options *opts, int *status, char *err, size_t errlen)
{
	struct aj_seccomp_opts sopts = {0};
	struct aj_identity id = {0};
	struct aj_jail jail = {.pid = -1, .pidfd = -1, .listener_fd = -1, .sync_fd = -1};
	int agent_signal = 0, run_status = -1;
	struct aj_events *events = NULL;
	struct aj_violations *violations = NULL;
	struct aj_audit *audit = NULL;
	struct timespec started;
	struct aj_monitor_plan mplan;
	struct aj_protect *protect = NULL;
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
	/* 0. The caller's options, all of them, before anything starts. */
	r = aj_run_options_check(opts, err, errlen);
	if (r < 0)
		return r;

	/* Signals meant for the agent that arrive while the jail is being set
	 * up are held, not lost (nor fatal to us): the monitor forwards them
	 * once the agent runs. */
	if (opts->forward_signals) {
		sigemptyset(&held);
		for (size_t i = 0; i < AJ_ARRAY_SIZE(aj_spawn_forwarded_signals); i++)
			sigaddset(&held, aj_spawn_forwarded_signals[i]);
		pthread_sigmask(SIG_BLOCK, &held, &saved_mask);
	}

	/* 1. Everything decided before anything starts. */
	r = aj_identity_resolve(opts->profile, &id, err, errlen);
	if (r < 0)
		goto out;
	clock_gettime(CLOCK_MONOTONIC, &started);
	r = aj_events_new(opts->events_fd, opts->on_event, opts->on_event_arg, &events);
	if (r < 0) {
		aj_err(err, errlen, r, "creating the event stream: %s", strerror(-r));
		goto out;
	}
	sopts.allow_unix_sockets = opts->profile->allow_unix_sockets;
	filter = aj_seccomp_prebuilt(&sopts);
	sopts.notify_violations = true;
	filter_notify = aj_seccomp_prebuilt(&sopts);
	r = build_env(opts, &envp);
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
		r = aj_audit_new(opts->audit_fd, events, hex, &audit_end, &audit);
		if (r < 0) {
			aj_err(err, errlen, r, "creating the audit pipe: %s", strerror(-r));
			goto out;
		}
		r = aj_launch_broker(opts->broker_path, opts->profile, &id, pair[0], audit_end,
				     &broker_pid, &broker_pidfd, err, errlen);
		close(audit_end);
		if (r < 0)
			goto out;
	}
	close(pair[0]);
	pair[0] = -1;

	/* 4. The jail, with the policy's files and the run's records out of
	 * the agent's reach. */
	r = aj_protect_new(opts->profile, opts->events_fd, opts->audit_fd, !id.drop, &protect);
	if (r < 0) {
		aj_launch_stop(broker_pid, broker_pidfd);
		broker_pidfd = -1;
		aj_err(err, errlen, r, "listing the paths to protect: %s", strerror(-r));
		goto out;
	}
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
			.cwd = opts->cwd != NULL ? opts->cwd : getcwd(cwd, sizeof(cwd)),
			.cwd_required = opts->cwd != NULL,
			.stdio = opts->stdio,
			.xdg_runtime_dir = getenv("XDG_RUNTIME_DIR"),
			.readonly_paths = aj_protect_paths(protect),
			.broker_fd = pair[1],
			.quiet = opts->quiet,
		};
		r = aj_spawn_jail(&plan, &jail, err, errlen);
	}
	close(pair[1]);
	pair[1] = -1;
	if (r < 0) {
		aj_launch_stop(broker_pid, broker_pidfd);
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
			aj_process_kill_and_reap(jail.pid, jail.pidfd, NULL);
			close(jail.pidfd);
			aj_launch_stop(broker_pid, broker_pidfd);
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
	r = aj_monitor_run(&mplan, &run_status, &agent_signal, err, errlen);
	if (r < 0) {
		/* Fail closed: no jail outlives a supervisor that cannot watch it. */
		aj_process_kill_and_reap(jail.pid, jail.pidfd, NULL);
		aj_process_kill_and_reap(broker_pid, broker_pidfd, NULL);
	}
	close(jail.pidfd);
	close(broker_pidfd);
	broker_pidfd = -1;
	if (r == 0) {
		/* The jail is gone: nothing of the agent's can move them now. */
		aj_protect_check(protect, events);
		emit_exit(events, violations, audit, run_status, agent_signal, &started,
			  opts->quiet);
		*status = run_status;
	}
out:
	if (jail.listener_fd >= 0)
		close(jail.listener_fd);
	if (jail.sync_fd >= 0)
		close(jail.sync_fd);
	aj_violations_free(violations);
	aj_protect_free(protect);
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
