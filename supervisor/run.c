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
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
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
	if (r == 0)
		r = aj_proxy_env_apply(opts->profile, &env);
	for (size_t i = 0; r == 0 && i < opts->n_env; i++)
		r = aj_env_set(&env, opts->env[i].name, opts->env[i].value);
	if (r < 0) {
		aj_env_free(env);
		return r;
	}
	*out = env;
	return 0;
}

/* How many of the proxy's sockets init made (they come first in the
 * array). */
static size_t
n_proxy_fds(const struct aj_jail *jail)
{
	size_t n = 0;

	while (n < AJ_PROXY_SOCKETS && jail->proxy_fds[n] >= 0)
		n++;
	return n;
}

/* on-violation kill: the whole pid namespace dies with its init. */
static void
kill_jail(void *pidfd)
{
	(void)syscall(SYS_pidfd_send_signal, *(int *)pidfd, SIGKILL, NULL, 0);
}

/* The agent's own terminal (supervisor/pty.c): which of its stdio fds it
 * replaces, and the caller's modes and size for it to start with.  The
 * terminal the caller types into is the one followed; else the output's. */
struct run_terminal {
	unsigned stdio; /* bits: the agent's fds 0, 1, 2 that are terminals */
	struct termios modes;
	struct winsize size;
	bool job_control;
};

static void
terminal_plan(const struct aj_run_options *opts, struct run_terminal *t)
{
	int fd;

	t->stdio = opts->pty ? aj_pty_terminals(opts->stdio) : 0;
	/* A shell's job: the caller sits at the terminal that is our stdin. */
	t->job_control = opts->stdio[0] < 0 && isatty(STDIN_FILENO);
	if (t->stdio == 0)
		return;
	fd = (t->stdio & 1) ? 0 : (t->stdio & 2) ? 1 : 2;
	if (opts->stdio[fd] >= 0)
		fd = opts->stdio[fd];
	if (tcgetattr(fd, &t->modes) < 0 || ioctl(fd, TIOCGWINSZ, &t->size) < 0)
		t->stdio = 0; /* not a terminal after all: share it */
}

/* The run's output (supervisor/output.c): the supervisor's stderr lines,
 * the event stream and the audit log, none of which may block it. */
#define STDERR_BOUND (64 * 1024)
#define RECORDS_BOUND (1024 * 1024)
/* How long the end of a run waits for a file to take what is queued. */
#define DRAIN_MS 1000

struct run_outputs {
	struct aj_output *stderr_out, *events_out, *audit_out;
	struct aj_output *list[3];
	size_t n;
};

static void
log_to_output(const char *line, size_t len, void *arg)
{
	aj_output_line(arg, line, len);
}

static int
outputs_open(struct run_outputs *o, int events_fd, int audit_fd)
{
	int r = aj_output_new(STDERR_FILENO, STDERR_BOUND, &o->stderr_out);

	if (r == 0 && events_fd >= 0)
		r = aj_output_new(events_fd, RECORDS_BOUND, &o->events_out);
	if (r == 0 && audit_fd >= 0)
		r = aj_output_new(audit_fd, RECORDS_BOUND, &o->audit_out);
	if (r < 0)
		return r;
	o->list[o->n++] = o->stderr_out;
	if (o->events_out != NULL)
		o->list[o->n++] = o->events_out;
	if (o->audit_out != NULL)
		o->list[o->n++] = o->audit_out;
	aj_log_set_sink(log_to_output, o->stderr_out);
	return 0;
}

/* After the last line: wait a bounded time for the files to take what is
 * queued, then leave stderr to the caller again. */
static void
outputs_close(struct run_outputs *o)
{
	aj_output_drain(o->list, o->n, DRAIN_MS);
	aj_log_set_sink(NULL, NULL);
	aj_output_free(o->stderr_out);
	aj_output_free(o->events_out);
	aj_output_free(o->audit_out);
}

/* Lines lost so far, and a word on stderr about them (the exit event
 * carries the counts too). */
static json_t *
outputs_lost(struct run_outputs *o, bool quiet)
{
	unsigned long long err = aj_output_lost(o->stderr_out), ev = aj_output_lost(o->events_out),
			   au = aj_output_lost(o->audit_out);

	if ((ev > 0 || au > 0 || err > 0) && !quiet)
		aj_log_warn(
			"warning: lines not written (the file took nothing more: a stopped "
			"terminal, or "
			"a reader that stopped reading): %llu to stderr, %llu events, %llu audit "
			"records",
			err, ev, au);
	return json_pack("{s:I, s:I, s:I}", "stderr", (json_int_t)err, "events", (json_int_t)ev,
			 "audit", (json_int_t)au);
}

/* S as a JSON string; text that is not UTF-8 (which jansson would drop)
 * escaped as the violations' paths are, \xNN. */
static json_t *
escaped_json(const char *s)
{
	size_t cap = 4 * strlen(s) + 1;
	json_t *j = json_string(s);
	char *e;

	if (j != NULL)
		return j;
	e = malloc(cap);
	if (e == NULL)
		return NULL;
	aj_log_escape(s, e, cap);
	j = json_string(e);
	free(e);
	return j;
}

/* The command as it is run, its arguments one string each. */
static json_t *
command_json(char *const *argv)
{
	json_t *a = json_array();

	for (size_t i = 0; a != NULL && argv[i] != NULL; i++)
		json_array_append_new(a, escaped_json(argv[i]));
	return a;
}

static void
emit_start(struct aj_events *events, const struct aj_run_options *opts,
	   const struct aj_identity *id, pid_t broker, pid_t init, bool violations_reported,
	   const char *cwd)
{
	char hex[65] = "";
	json_t *missing = json_array(), *start;

	(void)aj_profile_sha256(opts->profile, hex);
	if (!violations_reported)
		json_array_append_new(missing, json_string("seccomp_user_notification"));
	start = json_pack("{s:s, s:{s:s, s:s, s:s}, s:[s,s,s,s,s,s,s], s:{s:I, s:I, s:I, s:I}, "
			  "s:{s:I, s:I, s:I}, s:{s:b, s:s}, s:o}",
			  "version", PACKAGE_VERSION, "profile", "name",
			  aj_profile_name(opts->profile), "path", aj_profile_path(opts->profile),
			  "sha256", hex, "namespaces", "user", "net", "mnt", "pid", "ipc", "uts",
			  "cgroup", "ids", "uid", (json_int_t)id->uid, "gid", (json_int_t)id->gid,
			  "host_uid", (json_int_t)id->uid, "host_gid", (json_int_t)id->gid, "pids",
			  "supervisor", (json_int_t)getpid(), "broker", (json_int_t)broker, "init",
			  (json_int_t)init, "violations", "reported", violations_reported,
			  "on_violation", opts->profile->kill_on_violation ? "kill" : "deny",
			  "missing", missing);
	/* Who the run is: what it runs and where (the directory asked for;
	 * one the jail cannot see is left for /, with a notice). */
	if (start != NULL) {
		json_object_set_new(start, "command", command_json(opts->argv));
		json_object_set_new(start, "cwd", cwd != NULL ? escaped_json(cwd) : json_null());
	}
	aj_events_emit(events, "start", start);
}

static void
emit_exit(struct aj_events *events, struct aj_violations *violations, struct aj_audit *audit,
	  int status, int signal, const struct timespec *started, json_t *lost, bool quiet)
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
		       json_pack("{s:i, s:o, s:f, s:{s:I, s:I}, s:I, s:o, s:o}", "status", status,
				 "signal", signal > 0 ? json_integer(signal) : json_null(),
				 "duration_ms", ms, "fetches", "allowed", (json_int_t)allowed,
				 "denied", (json_int_t)denied, "violations", (json_int_t)total,
				 "violation_counts", aj_violations_counts(violations), "lines_lost",
				 lost));
	if (total > 0 && !quiet) {
		char what[1024];
		aj_violations_describe(violations, what, sizeof(what));
		aj_log_info("%llu violation%s blocked (%s)", total, total == 1 ? "" : "s", what);
	}
}

int
aj_run(const struct aj_run_options *opts, int *status, char *err, size_t errlen)
{
	struct aj_seccomp_opts sopts = {0};
	struct aj_identity id = {0};
	struct aj_jail jail = {
		.pid = -1, .pidfd = -1, .listener_fd = -1, .sync_fd = -1, .door_fd = -1, .pty_fd = -1,
		.proxy_fds = AJ_PROXY_FDS_NONE, .ca_fd = -1};
	int agent_signal = 0, run_status = -1;
	struct aj_events *events = NULL;
	struct aj_violations *violations = NULL;
	struct aj_audit *audit = NULL;
	struct timespec started;
	struct aj_monitor_plan mplan;
	struct aj_protect *protect = NULL;
	struct run_outputs outs = {0};
	struct run_terminal term = {0};
	struct aj_pty *pty = NULL;
	char cwd[4096], localerr[512];
	const char *start_cwd = NULL;
	char **envp = NULL;
	const struct sock_fprog *filter, *filter_notify;
	struct aj_broker broker = {.pid = -1, .pidfd = -1, .log_fd = -1, .ca_fd = -1};
	struct aj_secrets *secrets = NULL;
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
		for (size_t i = 0; i < AJ_ARRAY_SIZE(aj_init_forwarded_signals); i++)
			sigaddset(&held, aj_init_forwarded_signals[i]);
		pthread_sigmask(SIG_BLOCK, &held, &saved_mask);
	}

	/* 1. Everything decided before anything starts. */
	r = aj_identity_resolve(opts->profile, &id, err, errlen);
	if (r == 0)
		r = aj_secrets_load(&opts->profile->fetch, &secrets, err, errlen);
	if (r < 0)
		goto out;
	clock_gettime(CLOCK_MONOTONIC, &started);
	/* From here to the end, the supervisor's lines are queued, never
	 * waited for (supervisor/output.c). */
	r = outputs_open(&outs, opts->events_fd, opts->audit_fd);
	if (r < 0) {
		aj_err(err, errlen, r, "preparing the output: %s", strerror(-r));
		goto out;
	}
	r = aj_events_new(outs.events_out, opts->on_event, opts->on_event_arg, &events);
	if (r < 0) {
		aj_err(err, errlen, r, "creating the event stream: %s", strerror(-r));
		goto out;
	}
	sopts.allow_unix_sockets = opts->profile->allow_unix_sockets;
	sopts.loopback_sockets = opts->profile->loopback_sockets;
	filter = aj_seccomp_prebuilt(&sopts);
	sopts.notify_violations = true;
	filter_notify = aj_seccomp_prebuilt(&sopts);
	r = build_env(opts, &envp);
	if (r < 0) {
		aj_err(err, errlen, r, "building the environment: %s", strerror(-r));
		goto out;
	}
	r = aj_secrets_check_env(secrets, &opts->profile->fetch, envp, err, errlen);
	if (r < 0)
		goto out;

	/* 2. The jail, up to its door, with the policy's files and the run's
	 * records out of the agent's reach: init makes the socketpair in the
	 * jail's network namespace (a socket answers network ioctls from the
	 * namespace it was made in) and hands us the broker's end; the jail
	 * goes on setting itself up meanwhile, but starts nothing yet. */
	r = aj_protect_new(opts->profile, opts->events_fd, opts->audit_fd, !id.drop, &protect);
	if (r < 0) {
		aj_err(err, errlen, r, "listing the paths to protect: %s", strerror(-r));
		goto out;
	}
	terminal_plan(opts, &term);
	start_cwd = opts->cwd != NULL ? opts->cwd : getcwd(cwd, sizeof(cwd));
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
			.cwd = start_cwd,
			.cwd_required = opts->cwd != NULL,
			.stdio = opts->stdio,
			.xdg_runtime_dir = getenv("XDG_RUNTIME_DIR"),
			.readonly_paths = aj_protect_paths(protect),
			.hidden_paths = aj_secrets_hidden(secrets),
			.secrets = secrets,
			.quiet = opts->quiet,
			.pty_stdio = term.stdio,
			.pty_termios = &term.modes,
			.pty_winsize = &term.size,
			.job_control = term.job_control,
		};
		r = aj_spawn_jail(&plan, &jail, err, errlen);
		if (r < 0)
			goto out;
	}

	/* 3. The broker on the door's other end, before the command, so the
	 * agent's first request finds it.  The supervisor keeps no end. */
	{
		char hex[65] = "";
		int audit_end = -1;

		(void)aj_profile_sha256(opts->profile, hex);
		r = aj_audit_new(outs.audit_out, events, hex, jail.pid, &audit_end, &audit);
		if (r < 0)
			aj_err(err, errlen, r, "creating the audit pipe: %s", strerror(-r));
		else
			r = aj_launch_broker(opts->broker_path, opts->profile,
					     aj_secrets_values(secrets), &id, jail.door_fd, audit_end,
					     jail.proxy_fds, n_proxy_fds(&jail), &broker, err, errlen);
		/* The broker has them; the supervisor needs them no longer. */
		aj_secrets_free(secrets);
		secrets = NULL;
		if (audit_end >= 0)
			close(audit_end);
		aj_spawn_jail_close_proxy(&jail);
		/* The jail trusts the CA the broker made for its tunnels. */
		if (r == 0 && opts->profile->proxy_port != 0) {
			r = aj_launch_take_ca(&broker, &jail.ca_fd, err, errlen);
			if (r < 0)
				aj_launch_stop(&broker);
		}
		if (r < 0) {
			aj_spawn_jail_abort(&jail);
			goto out;
		}
	}

	/* 4. The command. */
	r = aj_spawn_jail_go(&jail, err, errlen);
	if (r < 0) {
		aj_launch_stop(&broker);
		goto out;
	}
	if (jail.pty_fd >= 0) {
		r = aj_pty_new(jail.pty_fd, opts->stdio, term.stdio, &pty);
		if (r < 0) {
			aj_spawn_jail_abort(&jail);
			aj_launch_stop(&broker);
			aj_err(err, errlen, r, "relaying the agent's terminal: %s", strerror(-r));
			goto out;
		}
		jail.pty_fd = -1;
	}
	if (jail.exec_errno != 0 && !opts->quiet) {
		char safe[512];
		aj_log_escape(opts->argv[0], safe, sizeof(safe));
		if (jail.exec_errno == ENOENT)
			aj_log_error("%s: command not found in the jail", safe);
		else
			aj_log_error("cannot execute '%s': %s", safe, strerror(jail.exec_errno));
	}

	if (jail.listener_fd >= 0) {
		r = aj_violations_new(jail.listener_fd, events, opts->profile->kill_on_violation,
				      kill_jail, &jail.pidfd, &violations);
		if (r < 0) {
			aj_spawn_jail_abort(&jail);
			aj_launch_stop(&broker);
			aj_err(err, errlen, r, "watching for violations: %s", strerror(-r));
			goto out;
		}
	} else if (!opts->quiet) {
		aj_log_info("notice: this kernel has no seccomp user notification; "
			    "escape attempts are refused but not reported");
	}
	emit_start(events, opts, &id, broker.pid, jail.pid, jail.listener_fd >= 0, start_cwd);

	/* 5. Watch until the jail's init exits. */
	mplan = (struct aj_monitor_plan){
		.jail_pidfd = jail.pidfd,
		.listener_fd = jail.listener_fd,
		.status_fd = jail.sync_fd,
		.events = events,
		.violations = violations,
		.audit = audit,
		.broker_pidfd = broker.pidfd,
		.broker_log_fd = broker.log_fd,
		.stderr_out = outs.stderr_out,
		.outputs = outs.list,
		.n_outputs = outs.n,
		.timeout_sec = opts->timeout_sec,
		.forward_signals = opts->forward_signals,
		.quiet = opts->quiet,
		.pty = pty,
		.job_control = term.job_control,
	};
	r = aj_monitor_run(&mplan, &run_status, &agent_signal, err, errlen);
	if (r < 0) {
		/* Fail closed: no jail outlives a supervisor that cannot watch it. */
		aj_process_kill_and_reap(jail.pid, jail.pidfd, NULL);
	}
	close(jail.pidfd);
	/* Reaped by the monitor (or killed here, when it failed). */
	aj_launch_stop(&broker);
	if (r == 0 && aj_pty_lost(pty) > 0 && !opts->quiet)
		aj_log_warn("warning: %llu bytes of the agent's terminal output not written (the "
			    "terminal took nothing more)",
			    aj_pty_lost(pty));
	if (r == 0) {
		/* The jail is gone: nothing of the agent's can move them now. */
		aj_protect_check(protect, events);
		/* What the files did not take by now is lost: the exit event
		 * says how much. */
		aj_output_drain(outs.list, outs.n, DRAIN_MS);
		emit_exit(events, violations, audit, run_status, agent_signal, &started,
			  outputs_lost(&outs, opts->quiet), opts->quiet);
		*status = run_status;
	}
out:
	aj_secrets_free(secrets);
	aj_pty_free(pty);
	if (jail.pty_fd >= 0)
		close(jail.pty_fd);
	outputs_close(&outs);
	if (jail.listener_fd >= 0)
		close(jail.listener_fd);
	if (jail.sync_fd >= 0)
		close(jail.sync_fd);
	aj_violations_free(violations);
	aj_protect_free(protect);
	aj_audit_free(audit);
	aj_events_free(events);
	aj_env_free(envp);
	if (opts->forward_signals)
		pthread_sigmask(SIG_SETMASK, &saved_mask, NULL);
	return r;
}
