/*
 * Embedding: an orchestrator links libagentjail and calls aj_run() in its
 * own process.  The library must run a real jail, return statuses and
 * errors instead of exiting, and leave the caller as it found it (no fds,
 * no children, the same signal mask).  The options an orchestrator sets
 * (working directory, environment, stdio, a profile given as text) reach
 * the agent, and each invalid one is refused before anything starts.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <agentjail/agentjail.h>

#include "harness.h"

static char *scratch;
static char *profile_path;
static struct aj_profile *profile;

static void
setup(void)
{
	char err[512];

	scratch = aj_test_scratch();
	profile_path = aj_test_write_file(scratch, "embed.profile", "env keep PATH\n");
	cr_assert_eq(aj_profile_load(profile_path, &profile, err, sizeof(err)), 0, "%s", err);
}

static void
teardown(void)
{
	aj_profile_free(profile);
	aj_test_rmrf(scratch);
	free(profile_path);
	free(scratch);
}

TestSuite(embed, .init = setup, .fini = teardown, .timeout = 60);

static int
count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	cr_assert_not_null(d);
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the DIR's own fd */
}

/* Options for ARGV under P, as the tests run them: the built broker,
 * signals forwarded, no notices. */
static struct aj_run_options *
options_for(const struct aj_profile *p, char **argv)
{
	struct aj_run_options *opts = NULL;

	cr_assert_eq(aj_run_options_new(&opts), 0);
	cr_assert_eq(aj_run_options_set_profile(opts, p), 0);
	cr_assert_eq(aj_run_options_set_argv(opts, argv), 0);
	cr_assert_eq(aj_run_options_set_broker_path(opts, aj_test_bin("agentjail-broker")), 0);
	cr_assert_eq(aj_run_options_set_forward_signals(opts, true), 0);
	cr_assert_eq(aj_run_options_set_quiet(opts, true), 0);
	return opts;
}

static int
run(char **argv, char *err, size_t errlen, int *status)
{
	struct aj_run_options *opts = options_for(profile, argv);
	int r = aj_run(opts, status, err, errlen);

	aj_run_options_free(opts);
	return r;
}

Test(embed, runs_a_real_jail_and_returns_the_status)
{
	char *argv[] = {"/bin/sh", "-c",
			"test \"$(cat /proc/sys/kernel/hostname)\" = agentjail "
			"&& test \"$(ls /sys/class/net)\" = lo && exit 7",
			NULL};
	char err[512] = "";
	int status = -1;

	cr_assert_eq(run(argv, err, sizeof(err), &status), 0, "%s", err);
	cr_assert_eq(status, 7, "status %d: the command did not see the jail", status);
}

Test(embed, leaves_the_caller_unchanged)
{
	char *argv[] = {"/bin/true", NULL};
	sigset_t before, after;
	char err[512] = "";
	int status = -1, fds = count_fds();

	sigemptyset(&before);
	sigaddset(&before, SIGUSR2);
	cr_assert_eq(sigprocmask(SIG_SETMASK, &before, NULL), 0);
	cr_assert_eq(run(argv, err, sizeof(err), &status), 0, "%s", err);
	cr_assert_eq(status, 0);
	cr_assert_eq(count_fds(), fds, "aj_run leaked %d fds", count_fds() - fds);
	cr_assert_eq(sigprocmask(SIG_SETMASK, NULL, &after), 0);
	cr_assert(sigismember(&after, SIGUSR2) && !sigismember(&after, SIGTERM) &&
			  !sigismember(&after, SIGINT),
		  "aj_run did not restore the caller's signal mask");
	cr_assert_eq(waitpid(-1, NULL, WNOHANG), -1, "aj_run left a child behind");
	cr_assert_eq(errno, ECHILD);
}

Test(embed, errors_are_returned_not_exited)
{
	char *missing[] = {"/nonexistent/agent", NULL};
	char *none[] = {NULL};
	struct aj_run_options *opts = NULL;
	char err[512] = "";
	int status = -1;

	cr_assert_eq(aj_run_options_new(&opts), 0);
	cr_assert_eq(aj_run_options_set_profile(opts, profile), 0);
	cr_assert_eq(aj_run_options_set_argv(opts, none), 0);
	cr_assert_eq(aj_run(opts, &status, err, sizeof(err)), -EINVAL);
	cr_assert_not_null(strstr(err, "a profile and a command are required"), "%s", err);
	aj_run_options_free(opts);

	cr_assert_eq(run(missing, err, sizeof(err), &status), 0, "%s", err);
	cr_assert_eq(status, AJ_EXIT_NOT_FOUND);

	cr_assert_eq(aj_run_options_new(&opts), 0);
	cr_assert_eq(aj_run_options_set_profile(opts, profile), 0);
	cr_assert_eq(aj_run_options_set_argv(opts, missing), 0);
	cr_assert_eq(aj_run_options_set_broker_path(opts, "/nonexistent/broker"), 0);
	cr_assert_eq(aj_run(opts, &status, err, sizeof(err)), -ENOENT);
	cr_assert_not_null(strstr(err, "starting the broker failed"), "%s", err);
	aj_run_options_free(opts);
}

Test(embed, profile_errors_carry_file_and_line)
{
	char *bad = aj_test_write_file(scratch, "bad.profile", "hostname ok\nfrobnicate\n");
	struct aj_profile *p = NULL;
	char err[512] = "", want[1024];

	cr_assert_eq(aj_profile_load(bad, &p, err, sizeof(err)), -EINVAL);
	cr_assert_null(p);
	snprintf(want, sizeof(want), "%s:2: unknown directive 'frobnicate'", bad);
	cr_assert_str_eq(err, want);
	free(bad);
}

/* ---- the options an orchestrator sets ----------------------------------- */

/* Everything the pipe holds until EOF (the writers are closed). */
static char *
slurp(int fd)
{
	size_t len = 0;
	char *buf = calloc(1, 1);
	char chunk[4096];
	ssize_t n;

	while ((n = read(fd, chunk, sizeof(chunk))) > 0) {
		buf = realloc(buf, len + (size_t)n + 1);
		memcpy(buf + len, chunk, (size_t)n);
		len += (size_t)n;
		buf[len] = '\0';
	}
	cr_assert_geq(n, 0);
	return buf;
}

/* OPTS run and exit 7: the shell command in the jail found what it tests. */
static void
assert_runs_7(struct aj_run_options *opts)
{
	char err[512] = "";
	int status = -1;

	cr_assert_eq(aj_run(opts, &status, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(status, 7, "status %d: the agent did not see what was asked", status);
}

/* OPTS are refused with WANT and a message holding MSG, and the refusal
 * leaves nothing behind: no status, no child, no fd. */
static void
assert_refused(struct aj_run_options *opts, int want, const char *msg)
{
	char err[512] = "";
	int status = -1, fds = count_fds();

	cr_assert_eq(aj_run(opts, &status, err, sizeof(err)), want, "want %d (%s), got: %s", want,
		     strerror(-want), err);
	cr_assert_not_null(strstr(err, msg), "want '%s' in: %s", msg, err);
	cr_assert_eq(status, -1, "a failed aj_run wrote *status");
	cr_assert_eq(count_fds(), fds, "a refused aj_run leaked %d fds", count_fds() - fds);
	cr_assert_eq(waitpid(-1, NULL, WNOHANG), -1, "a refused aj_run left a child behind");
	cr_assert_eq(errno, ECHILD);
}

Test(embed, cwd_is_where_the_agent_starts)
{
	char *argv[] = {"/bin/sh", "-c",
			"test \"$(readlink /proc/self/cwd)\" = \"$WANT\" && exit 7", NULL};
	struct aj_run_options *opts = options_for(profile, argv);
	char real[PATH_MAX];

	cr_assert_not_null(realpath(scratch, real));
	cr_assert_eq(aj_run_options_set_cwd(opts, real), 0);
	cr_assert_eq(aj_run_options_add_env(opts, "WANT", real), 0);
	assert_runs_7(opts);
	aj_run_options_free(opts);
}

Test(embed, cwd_that_cannot_be_used_is_refused)
{
	char *argv[] = {"/bin/true", NULL};
	struct aj_run_options *opts = options_for(profile, argv);
	char *file = aj_test_write_file(scratch, "plain", "");
	char hostonly[] = "/tmp/aj-embed-XXXXXX";

	cr_assert_eq(aj_run_options_set_cwd(opts, "relative/dir"), 0);
	assert_refused(opts, -EINVAL, "working directory 'relative/dir' is not an absolute path");
	cr_assert_eq(aj_run_options_set_cwd(opts, "/nonexistent/dir"), 0);
	assert_refused(opts, -ENOENT, "working directory /nonexistent/dir: No such file");
	cr_assert_eq(aj_run_options_set_cwd(opts, file), 0);
	assert_refused(opts, -ENOTDIR, "is not a directory");

	/* On the host, but not in the jail (its /tmp is private): the jail
	 * fails at the step, and nothing is left running. */
	cr_assert_not_null(mkdtemp(hostonly));
	cr_assert_eq(aj_run_options_set_cwd(opts, hostonly), 0);
	assert_refused(opts, -ENOENT, "entering the working directory failed");
	rmdir(hostonly);
	free(file);
	aj_run_options_free(opts);
}

Test(embed, env_additions_come_after_the_profile)
{
	/* The fixture profile keeps PATH: an addition replaces it. */
	char *argv[] = {
		"/bin/sh", "-c",
		"test \"$ADDED\" = 'two words' && test \"$PATH\" = /usr/bin:/bin && "
		"test \"$TWICE\" = second && test \"$EMPTY\" = '' && test \"${EMPTY+set}\" = set "
		"&& test \"$AGENTJAIL\" = 1 && test \"$AGENTJAIL_FD\" = 3 && exit 7",
		NULL};
	struct aj_run_options *opts = options_for(profile, argv);

	cr_assert_eq(aj_run_options_add_env(opts, "ADDED", "two words"), 0);
	cr_assert_eq(aj_run_options_add_env(opts, "PATH", "/usr/bin:/bin"), 0);
	cr_assert_eq(aj_run_options_add_env(opts, "TWICE", "first"), 0);
	cr_assert_eq(aj_run_options_add_env(opts, "TWICE", "second"), 0);
	cr_assert_eq(aj_run_options_add_env(opts, "EMPTY", ""), 0);
	cr_assert_eq(aj_run_options_add_env(opts, NULL, "x"), -EINVAL);
	assert_runs_7(opts);
	aj_run_options_free(opts);
}

Test(embed, reserved_and_malformed_env_names_are_refused)
{
	static const char *const reserved[] = {"AGENTJAIL", "AGENTJAIL_FD", "AGENTJAIL_OTHER"};
	char *argv[] = {"/bin/true", NULL};
	struct aj_run_options *opts;
	char want[128];

	for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
		opts = options_for(profile, argv);
		cr_assert_eq(aj_run_options_add_env(opts, reserved[i], "9"), 0);
		snprintf(want, sizeof(want), "environment: %s is reserved", reserved[i]);
		assert_refused(opts, -EINVAL, want);
		aj_run_options_free(opts);
	}
	opts = options_for(profile, argv);
	cr_assert_eq(aj_run_options_add_env(opts, "A=B", "x"), 0);
	assert_refused(opts, -EINVAL, "'A=B' is not a variable name");
	aj_run_options_free(opts);
	opts = options_for(profile, argv);
	cr_assert_eq(aj_run_options_add_env(opts, "", "x"), 0);
	assert_refused(opts, -EINVAL, "'' is not a variable name");
	aj_run_options_free(opts);
}

Test(embed, stdio_fds_become_the_agents)
{
	char *argv[] = {"/bin/sh", "-c", "read x; echo \"out:$x\"; echo \"err:$x\" >&2; exit 7",
			NULL};
	struct aj_run_options *opts = options_for(profile, argv);
	int in[2], out[2], errp[2];
	char *text;

	cr_assert_eq(pipe2(in, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(out, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(errp, O_CLOEXEC), 0);
	cr_assert_eq(write(in[1], "hello\n", 6), 6);
	close(in[1]);
	cr_assert_eq(aj_run_options_set_stdio(opts, in[0], out[1], errp[1]), 0);
	assert_runs_7(opts);
	/* Still the caller's: aj_run closed none of them. */
	cr_assert_geq(fcntl(in[0], F_GETFD), 0, "aj_run closed the stdin fd");
	cr_assert_geq(fcntl(out[1], F_GETFD), 0, "aj_run closed the stdout fd");
	cr_assert_geq(fcntl(errp[1], F_GETFD), 0, "aj_run closed the stderr fd");
	close(in[0]);
	close(out[1]);
	close(errp[1]);
	text = slurp(out[0]);
	cr_assert_str_eq(text, "out:hello\n");
	free(text);
	text = slurp(errp[0]);
	cr_assert_str_eq(text, "err:hello\n");
	free(text);
	close(out[0]);
	close(errp[0]);
	aj_run_options_free(opts);
}

Test(embed, stdio_may_share_one_fd_and_keep_the_others)
{
	/* stdout and stderr into one pipe; stdin stays the caller's. */
	char *argv[] = {"/bin/sh", "-c",
			"echo a; echo b >&2; test \"$(ls /proc/self/fd | wc -l)\" -le 5 && exit 7",
			NULL};
	struct aj_run_options *opts = options_for(profile, argv);
	int both[2];
	char *text;

	cr_assert_eq(pipe2(both, O_CLOEXEC), 0);
	cr_assert_eq(aj_run_options_set_stdio(opts, -1, both[1], both[1]), 0);
	assert_runs_7(opts);
	close(both[1]);
	text = slurp(both[0]);
	cr_assert_str_eq(text, "a\nb\n");
	free(text);
	close(both[0]);
	aj_run_options_free(opts);
}

Test(embed, unusable_fds_are_refused)
{
	char *argv[] = {"/bin/true", NULL};
	struct aj_run_options *opts = options_for(profile, argv);
	int dir = open(scratch, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int path = open(scratch, O_PATH | O_CLOEXEC);
	int p[2];

	cr_assert_geq(dir, 0);
	cr_assert_geq(path, 0);
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);

	cr_assert_eq(aj_run_options_set_stdio(opts, 1000, -1, -1), 0);
	assert_refused(opts, -EBADF, "stdin: fd 1000 is not open");
	cr_assert_eq(aj_run_options_set_stdio(opts, -1, -7, -1), 0);
	assert_refused(opts, -EBADF, "stdout: -7 is not an fd");
	/* A directory fd would let the agent out of its view (fchdir). */
	cr_assert_eq(aj_run_options_set_stdio(opts, dir, -1, -1), 0);
	assert_refused(opts, -EBADF, "is a directory or an O_PATH descriptor");
	cr_assert_eq(aj_run_options_set_stdio(opts, -1, -1, path), 0);
	assert_refused(opts, -EBADF, "is a directory or an O_PATH descriptor");
	cr_assert_eq(aj_run_options_set_stdio(opts, -1, p[0], -1), 0);
	assert_refused(opts, -EBADF, "stdout: fd");
	cr_assert_eq(aj_run_options_set_stdio(opts, p[1], -1, -1), 0);
	assert_refused(opts, -EBADF, "is open write-only");
	cr_assert_eq(aj_run_options_set_stdio(opts, -1, -1, -1), 0);

	cr_assert_eq(aj_run_options_set_events_fd(opts, 1000), 0);
	assert_refused(opts, -EBADF, "events fd: fd 1000 is not open");
	cr_assert_eq(aj_run_options_set_events_fd(opts, p[0]), 0);
	assert_refused(opts, -EBADF, "events fd: fd");
	cr_assert_eq(aj_run_options_set_events_fd(opts, -1), 0);
	cr_assert_eq(aj_run_options_set_audit_fd(opts, dir), 0);
	assert_refused(opts, -EBADF, "audit fd: fd");
	cr_assert_eq(aj_run_options_set_audit_fd(opts, -1), 0);

	cr_assert_eq(aj_run_options_set_timeout(opts, -1), 0);
	assert_refused(opts, -EINVAL, "the timeout must be 0 (none) or a positive number");

	close(dir);
	close(path);
	close(p[0]);
	close(p[1]);
	aj_run_options_free(opts);
}

Test(embed, profile_from_a_string_runs_and_includes_through_the_search)
{
	char *argv[] = {"/bin/sh", "-c",
			"test \"$(cat /proc/sys/kernel/hostname)\" = from-text && "
			"test \"$BASE\" = yes && test \"$WHO\" = caller && exit 7",
			NULL};
	char *xdg, *dir, *base;
	struct aj_profile *p = NULL;
	struct aj_run_options *opts;
	char err[512] = "";

	/* `include base` is found where a named profile would be: here in
	 * $XDG_CONFIG_HOME/agentjail/profiles. */
	cr_assert_geq(asprintf(&xdg, "%s/xdg", scratch), 0);
	cr_assert_geq(asprintf(&dir, "%s/agentjail", xdg), 0);
	cr_assert_eq(mkdir(xdg, 0755), 0);
	cr_assert_eq(mkdir(dir, 0755), 0);
	free(dir);
	cr_assert_geq(asprintf(&dir, "%s/agentjail/profiles", xdg), 0);
	cr_assert_eq(mkdir(dir, 0755), 0);
	base = aj_test_write_file(dir, "base.profile", "env keep PATH\nenv set BASE=yes\n");
	cr_assert_eq(setenv("XDG_CONFIG_HOME", xdg, 1), 0);

	cr_assert_eq(aj_profile_load_string(
			     "inline", "include base\nhostname from-text\nenv set WHO=profile\n",
			     &p, err, sizeof(err)),
		     0, "%s", err);
	cr_assert_str_eq(aj_profile_name(p), "inline");
	cr_assert_str_eq(aj_profile_path(p), "inline");
	opts = options_for(p, argv);
	cr_assert_eq(aj_run_options_add_env(opts, "WHO", "caller"), 0);
	assert_runs_7(opts);
	aj_run_options_free(opts);
	aj_profile_free(p);
	unsetenv("XDG_CONFIG_HOME");
	free(base);
	free(dir);
	free(xdg);
}

Test(embed, profile_string_errors_name_the_string)
{
	struct aj_profile *p = NULL;
	char err[512] = "";

	cr_assert_eq(
		aj_profile_load_string("inline", "hostname ok\nfrobnicate\n", &p, err, sizeof(err)),
		-EINVAL);
	cr_assert_null(p);
	cr_assert_str_eq(err, "inline:2: unknown directive 'frobnicate'");
	cr_assert_eq(aj_profile_load_string("inline", "include no-such-profile-here\n", &p, err,
					    sizeof(err)),
		     -ENOENT);
	cr_assert_not_null(strstr(err, "inline:1: profile 'no-such-profile-here' not found"), "%s",
			   err);
	cr_assert_eq(aj_profile_load_string("inline", "fetch ca ca.pem\n", &p, err, sizeof(err)),
		     -EINVAL);
	cr_assert_not_null(strstr(err, "must be an absolute path"), "%s", err);
	cr_assert_eq(aj_profile_load_string("", "hostname x\n", &p, err, sizeof(err)), -EINVAL);
	cr_assert_eq(aj_profile_load_string("inline", NULL, &p, err, sizeof(err)), -EINVAL);
	cr_assert_null(p);
}
