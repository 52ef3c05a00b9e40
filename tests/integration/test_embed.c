/*
 * Embedding: an orchestrator links libagentjail and calls aj_run() in its
 * own process.  The library must run a real jail, return statuses and
 * errors instead of exiting, and leave the caller as it found it (no fds,
 * no children, the same signal mask).
 */
#include "config.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static int
run(char **argv, char *err, size_t errlen, int *status)
{
	struct aj_run_options opts = {
		.profile = profile,
		.argv = argv,
		.broker_path = aj_test_bin("agentjail-broker"),
		.forward_signals = true,
		.quiet = true,
	};
	return aj_run(&opts, status, err, errlen);
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
	struct aj_run_options opts = {.profile = profile, .argv = none};
	char err[512] = "";
	int status = -1;

	cr_assert_eq(aj_run(&opts, &status, err, sizeof(err)), -EINVAL);
	cr_assert_not_null(strstr(err, "a profile and a command are required"), "%s", err);

	cr_assert_eq(run(missing, err, sizeof(err), &status), 0, "%s", err);
	cr_assert_eq(status, AJ_EXIT_NOT_FOUND);

	opts = (struct aj_run_options){
		.profile = profile, .argv = missing, .broker_path = "/nonexistent/broker"};
	cr_assert_eq(aj_run(&opts, &status, err, sizeof(err)), -ENOENT);
	cr_assert_not_null(strstr(err, "starting the broker failed"), "%s", err);
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
