/*
 * Fail closed (THREATS.md #22): when a layer the profile requires cannot be
 * applied, agentjail must stop before the command runs, exit 125 and name
 * the failing step.  Each case makes one kernel feature unavailable for
 * real: `try with-errno NR ERRNO -- CMD` runs agentjail under a seccomp
 * filter that fails system call NR with ERRNO, and `try no-userns -- CMD`
 * under a user.max_user_namespaces of 0 (nothing is mocked: the kernel
 * answers the jail's setup the way a kernel without that feature, or a
 * sandbox around agentjail, would).
 */
#include "config.h"

#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <jansson.h>
#include <linux/seccomp.h>
#include <unistd.h>

#include "harness.h"

/* A profile that needs nothing from the source tree (the suite may run
 * from a staging directory without ./profiles). */
static char *profile;
static char *scratch;

static void
setup(void)
{
	scratch = aj_test_scratch();
	profile = aj_test_write_file(scratch, "p.profile", "env keep PATH\n");
}

static void
teardown(void)
{
	aj_test_rmrf(scratch);
	free(profile);
	free(scratch);
}

TestSuite(failclosed, .init = setup, .fini = teardown);

static void
run_without(long nr, const char *errno_name, struct aj_result *res)
{
	char nrbuf[32];
	const char *argv[] = {
		aj_test_bin("tests/integration/try"),
		"with-errno",
		nrbuf,
		errno_name,
		"--",
		aj_test_bin("agentjail"),
		"run",
		"--profile",
		profile,
		"--",
		"/bin/sh",
		"-c",
		"echo AGENT-RAN",
		NULL,
	};

	snprintf(nrbuf, sizeof(nrbuf), "%ld", nr);
	aj_test_exec(argv, -1, res);
}

static void
assert_stopped(const struct aj_result *res, const char *step, const char *hint)
{
	cr_assert_eq(res->status, 125, "status %d, stderr: %s", res->status, res->err);
	cr_assert_null(strstr(res->out, "AGENT-RAN"), "the command ran: %s", res->out);
	cr_assert_not_null(strstr(res->err, step), "stderr does not name '%s': %s", step, res->err);
	if (hint != NULL)
		cr_assert_not_null(strstr(res->err, hint), "stderr lacks the fix '%s': %s", hint,
				   res->err);
	/* One clear line, not a cascade.  In the ASan build the sanitizer's
	 * runtime may add its own warnings (the vfork-style intermediate runs
	 * on a separate stack); those are not agentjail's output. */
	cr_assert_eq(aj_test_count_own_lines(res->err), 1,
		     "expected exactly one line on stderr: %s", res->err);
}

/* `try no-userns -- CMD` runs CMD in a user namespace whose
 * user.max_user_namespaces is 0, as a kernel with them disabled would. */
Test(failclosed, without_user_namespaces, .timeout = 60)
{
	const char *argv[] = {
		aj_test_bin("tests/integration/try"),
		"no-userns",
		"--",
		aj_test_bin("agentjail"),
		"run",
		"--profile",
		profile,
		"--",
		"/bin/sh",
		"-c",
		"echo AGENT-RAN",
		NULL,
	};
	struct aj_result res;

	aj_test_exec(argv, -1, &res);
	assert_stopped(&res, "creating the namespaces failed", "max_user_namespaces");
	aj_test_result_free(&res);
}

Test(failclosed, without_seccomp, .timeout = 60)
{
	struct aj_result res;

	run_without(SYS_seccomp, "EINVAL", &res);
	assert_stopped(&res, "loading the seccomp filter failed", "CONFIG_SECCOMP_FILTER");
	aj_test_result_free(&res);
}

Test(failclosed, without_new_mount_api, .timeout = 60)
{
	struct aj_result res;

	run_without(SYS_mount_setattr, "ENOSYS", &res);
	assert_stopped(&res, "failed", "new mount API");
	aj_test_result_free(&res);
}

Test(failclosed, without_mounts, .timeout = 60)
{
	struct aj_result res;

	run_without(SYS_mount, "EPERM", &res);
	assert_stopped(&res, "making mounts private failed", NULL);
	aj_test_result_free(&res);
}

Test(failclosed, without_hostname, .timeout = 60)
{
	struct aj_result res;

	run_without(SYS_sethostname, "EPERM", &res);
	assert_stopped(&res, "setting the hostname failed", NULL);
	aj_test_result_free(&res);
}

Test(failclosed, without_capability_drop, .timeout = 60)
{
	struct aj_result res;

	run_without(SYS_capset, "EPERM", &res);
	assert_stopped(&res, "dropping capabilities failed", NULL);
	aj_test_result_free(&res);
}

Test(failclosed, without_broker, .timeout = 60)
{
	const char *argv[] = {"/usr/bin/env",
			      "AGENTJAIL_BROKER=/nonexistent/agentjail-broker",
			      aj_test_bin("agentjail"),
			      "run",
			      "--profile",
			      profile,
			      "--",
			      "/bin/sh",
			      "-c",
			      "echo AGENT-RAN",
			      NULL};
	struct aj_result res;

	aj_test_exec(argv, -1, &res);
	assert_stopped(&res, "starting the broker failed", "agentjail-broker");
	aj_test_result_free(&res);
}

/* A kernel without seccomp user notification: the escape attempts are
 * refused all the same (EPERM), the run goes on, and the start event says
 * plainly that violations are not reported. */
Test(failclosed, without_user_notification_still_refuses, .timeout = 60)
{
	char *events = aj_test_write_file(scratch, "events.jsonl", "");
	char listener[16];
	const char *argv[] = {
		aj_test_bin("tests/integration/try"),
		"with-errno-flag",
		"317",
		"1",
		listener,
		"EINVAL",
		"--",
		aj_test_bin("agentjail"),
		"run",
		"--profile",
		profile,
		"--events",
		events,
		"--",
		aj_test_bin("tests/integration/try"),
		"socket-inet",
		NULL,
	};
	struct aj_result res;
	json_error_t jerr;
	json_t *start;
	FILE *f;
	char line[8192];
	int n_lines = 0, n_violations = 0;

	snprintf(listener, sizeof(listener), "%lu",
		 (unsigned long)SECCOMP_FILTER_FLAG_NEW_LISTENER);
	aj_test_exec(argv, -1, &res);
	cr_assert_eq(res.status, 1, "status %d, stderr: %s", res.status, res.err);
	cr_assert_not_null(strstr(res.out, "socket-inet EPERM"), "%s", res.out);
	cr_assert_not_null(strstr(res.err, "escape attempts are refused but not reported"), "%s",
			   res.err);
	f = fopen(events, "r");
	cr_assert_not_null(f);
	cr_assert_not_null(fgets(line, sizeof(line), f));
	start = json_loads(line, 0, &jerr);
	cr_assert_not_null(start, "%s: %s", jerr.text, line);
	cr_assert_str_eq(json_string_value(json_object_get(start, "type")), "start");
	cr_assert(json_is_false(json_object_get(json_object_get(start, "violations"), "reported")),
		  "%s", line);
	cr_assert_str_eq(json_string_value(json_array_get(json_object_get(start, "missing"), 0)),
			 "seccomp_user_notification", "%s", line);
	json_decref(start);
	n_lines = 1;
	while (fgets(line, sizeof(line), f) != NULL) {
		n_lines++;
		if (strstr(line, "\"type\":\"violation\"") != NULL)
			n_violations++;
	}
	fclose(f);
	cr_assert_eq(n_violations, 0, "violation events without a listener");
	cr_assert_geq(n_lines, 2, "no exit event");
	aj_test_result_free(&res);
	free(events);
}

/* A signal can withdraw an attempt between the supervisor's poll and its
 * receive.  That must cost nothing: the listener keeps answering (a
 * supervisor that stopped would leave every later attempt hanging and
 * unreported). */
Test(failclosed, listener_survives_signals, .timeout = 60)
{
	const char *argv[] = {aj_test_bin("agentjail"),
			      "run",
			      "--profile",
			      profile,
			      "--quiet",
			      "--",
			      aj_test_bin("tests/integration/try"),
			      "socket-under-signals",
			      "20000",
			      NULL};
	struct aj_result res;

	aj_test_exec(argv, -1, &res);
	cr_assert_not_null(strstr(res.out, "socket-under-signals EPERM"),
			   "status %d, stdout: %s, stderr: %s", res.status, res.out, res.err);
	aj_test_result_free(&res);
}

/* The events file of a run is read-only inside that run. */
Test(failclosed, events_file_is_read_only_inside, .timeout = 60)
{
	char *events = aj_test_write_file(scratch, "ro-events.jsonl", "");
	char cmd[4200];
	struct aj_result res;
	FILE *f;
	char line[256] = "";

	chmod(events, 0666);
	snprintf(cmd, sizeof(cmd), "echo forged > '%s'; echo rc=$?", events);
	{
		const char *argv[] = {aj_test_bin("agentjail"),
				      "run",
				      "--profile",
				      profile,
				      "--events",
				      events,
				      "--",
				      "/bin/sh",
				      "-c",
				      cmd,
				      NULL};
		aj_test_exec(argv, -1, &res);
	}
	cr_assert_eq(res.status, 0, "status %d: %s", res.status, res.err);
	cr_assert_not_null(strstr(res.out, "rc=2"), "the agent could write its events file: %s",
			   res.out);
	f = fopen(events, "r");
	cr_assert_not_null(f);
	cr_assert_not_null(fgets(line, sizeof(line), f));
	fclose(f);
	cr_assert_not_null(strstr(line, "\"type\":\"start\""), "first line: %s", line);
	aj_test_result_free(&res);
	free(events);
}
