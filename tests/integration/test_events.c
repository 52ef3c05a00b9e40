/*
 * The exit event tells an agent that exited with 130 from one killed by
 * SIGINT (both give agentjail status 130): init reports the raw wait
 * status before it exits.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static json_t *
last_event(const char *out)
{
	const char *last = out, *p;

	for (p = out; (p = strstr(p, "\n{")) != NULL; p++)
		last = p + 1;
	return json_loads(last, JSON_DISABLE_EOF_CHECK, NULL);
}

static void
check_exit(const char *script, int want_status, int want_signal)
{
	char *dir = aj_test_scratch();
	char *profile = aj_test_write_file(dir, "p.profile", "env keep PATH\n");
	const char *argv[] = {aj_test_bin("agentjail"),
			      "run",
			      "--profile",
			      profile,
			      "--quiet",
			      "--events",
			      "-",
			      "--",
			      "/bin/sh",
			      "-c",
			      script,
			      NULL};
	struct aj_result res;
	json_t *exit_ev, *sig;

	aj_test_exec(argv, -1, &res);
	cr_assert_eq(res.status, want_status, "status %d: %s", res.status, res.err);
	exit_ev = last_event(res.out);
	cr_assert_not_null(exit_ev, "no JSON at the end of: %s", res.out);
	cr_assert_str_eq(json_string_value(json_object_get(exit_ev, "type")), "exit");
	cr_assert_eq(json_integer_value(json_object_get(exit_ev, "status")), want_status);
	sig = json_object_get(exit_ev, "signal");
	if (want_signal == 0)
		cr_assert(json_is_null(sig), "%s: signal should be null: %s", script, res.out);
	else
		cr_assert_eq(json_integer_value(sig), want_signal, "%s: %s", script, res.out);
	json_decref(exit_ev);
	aj_test_result_free(&res);
	aj_test_rmrf(dir);
	free(profile);
	free(dir);
}

Test(events, exit_130_is_not_a_signal, .timeout = 60)
{
	check_exit("exit 130", 130, 0);
}

Test(events, death_by_sigint_is_signal_2, .timeout = 60)
{
	check_exit("kill -INT $$", 130, 2);
}

Test(events, clean_exit_has_no_signal, .timeout = 60)
{
	check_exit("exit 0", 0, 0);
}

/* The start event says what runs and where: the command and its
 * arguments as given, and the directory it was started in. */
Test(events, start_names_the_command_and_its_directory, .timeout = 60)
{
	char *dir = aj_test_scratch();
	char *profile = aj_test_write_file(dir, "p.profile", "env keep PATH\n"), here[4096];
	const char *argv[] = {aj_test_bin("agentjail"), "run", "--profile", profile, "--quiet",
			      "--events", "-", "--", "/bin/echo", "two words", "", "ünï", "\xff", NULL};
	struct aj_result res;
	json_t *start, *cmd;

	cr_assert_eq(chdir(dir), 0);
	cr_assert_not_null(getcwd(here, sizeof(here)));
	aj_test_exec(argv, -1, &res);
	cr_assert_eq(res.status, 0, "status %d: %s", res.status, res.err);
	start = json_loads(strstr(res.out, "{\"type\":\"start\""), JSON_DISABLE_EOF_CHECK, NULL);
	cr_assert_not_null(start, "no start event in: %s", res.out);
	cmd = json_object_get(start, "command");
	cr_assert_eq(json_array_size(cmd), 5, "%s", res.out);
	cr_assert_str_eq(json_string_value(json_array_get(cmd, 0)), "/bin/echo");
	cr_assert_str_eq(json_string_value(json_array_get(cmd, 1)), "two words");
	cr_assert_str_eq(json_string_value(json_array_get(cmd, 2)), "");
	cr_assert_str_eq(json_string_value(json_array_get(cmd, 3)), "ünï");
	/* Not UTF-8: escaped, never dropped. */
	cr_assert_str_eq(json_string_value(json_array_get(cmd, 4)), "\\xff");
	cr_assert_str_eq(json_string_value(json_object_get(start, "cwd")), here);
	json_decref(start);
	aj_test_result_free(&res);
	cr_assert_eq(chdir("/"), 0);
	aj_test_rmrf(dir);
	free(profile);
	free(dir);
}
