/*
 * The broker's door, as far as it goes in this version: the protocol
 * (handshake, private channels, error records) over the real socket of a
 * real jail, every request denied by default, malformed frames answered
 * and survived, a vanished broker reported as such.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static char *scratch;
static char *profile;

static void
setup(void)
{
	scratch = aj_test_scratch();
	/* agentjail fetch runs inside the jail.  In the ASan build its leak
	 * checker would ptrace it at exit, which the jail refuses (and
	 * reports): the sanitizer's exit check is off in here. */
	profile = aj_test_write_file(scratch, "broker.profile",
				     "env keep PATH\nenv set ASAN_OPTIONS=detect_leaks=0\n");
}

static void
teardown(void)
{
	aj_test_rmrf(scratch);
	free(profile);
	free(scratch);
}

TestSuite(broker, .init = setup, .fini = teardown, .timeout = 60);

/* Whether the file at PATH holds WANT. */
static bool
file_has(const char *path, const char *want)
{
	char *text = aj_test_slurp_if_exists(path);
	bool has = strstr(text, want) != NULL;

	free(text);
	return has;
}

Test(broker, fetch_is_denied_by_default_with_the_rule)
{
	struct aj_result r;
	char want[4200];

	/* The profile keeps only PATH: pass the paths inside the script. */
	char script[9000];
	snprintf(script, sizeof(script), "'%s' fetch https://example.org/secret; echo exit=$?",
		 aj_test_bin("agentjail"));
	aj_test_jail_sh(&r, profile, NULL, NULL, script);
	cr_assert_eq(r.status, 0, "status %d: %s", r.status, r.err);
	cr_assert_not_null(strstr(r.out, "exit=3"), "%s", r.out);
	cr_assert_not_null(strstr(r.err, "agentjail fetch: denied: no fetch rule allows GET "
					 "https://example.org/secret"),
			   "%s", r.err);
	snprintf(want, sizeof(want), "(rule: %s: no 'fetch allow' rule matches", profile);
	cr_assert_not_null(strstr(r.err, want), "%s", r.err);
	aj_test_result_free(&r);
}

Test(broker, malformed_request_is_bad_request)
{
	struct aj_result r;
	char script[9000];

	snprintf(script, sizeof(script),
		 "'%1$s' fetch 'http://a b/'; echo exit=$?; '%1$s' fetch -X get http://x/; "
		 "echo exit=$?",
		 aj_test_bin("agentjail"));
	aj_test_jail_sh(&r, profile, NULL, NULL, script);
	cr_assert_not_null(strstr(r.out, "exit=8\nexit=8"), "%s", r.out);
	cr_assert_not_null(strstr(r.err, "bad_request: url holds a control character"), "%s",
			   r.err);
	aj_test_result_free(&r);
}

/* Twenty clients at once, each on its own channel (CONNECT): every one
 * gets its own answer. */
Test(broker, concurrent_clients_each_get_their_answer)
{
	struct aj_result r;
	char script[9000];

	snprintf(script, sizeof(script),
		 "for i in $(seq 20); do ('%s' fetch https://example.org/$i 2>/dev/null; "
		 "echo exit=$?) & done; wait",
		 aj_test_bin("agentjail"));
	aj_test_jail_sh(&r, profile, NULL, NULL, script);
	cr_assert_eq(r.status, 0, "%s", r.err);
	{
		int n = 0;
		for (const char *p = r.out; (p = strstr(p, "exit=3")) != NULL; p++)
			n++;
		cr_assert_eq(n, 20, "not every client was denied: %s", r.out);
	}
	aj_test_result_free(&r);
}

/* Each kind of malformed frame: one ERROR record (bad_request, naming the
 * problem), the channel closed, the broker and the supervisor unharmed. */
Test(broker, malformed_frames_end_the_channel_not_the_broker)
{
	static const struct {
		const char *hex;
		const char *why;
	} cases[] = {
		{"0103", "shorter than the 16-byte header"},
		{"01030000010000000500000000000000", "frame is truncated"},
		{"01630000000000000000000000000000", "unknown message type 99"},
		{"02010000000000000000000000000000", "version 2 is not supported"},
		{"01010000000000000000000001000000", "reserved bytes are not zero"},
		{"01030000010000000200000000000000"
		 "7b7d",
		 "REQUEST is not permitted before HELLO"},
		{"01010000000000000300000000000000"
		 "7b7b7b",
		 "invalid JSON"},
		{"01010000000000000100000000000000"
		 "ff",
		 "invalid UTF-8"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct aj_result r;
		char script[9000];

		snprintf(script, sizeof(script),
			 "'%1$s' broker-send %2$s; '%3$s' fetch https://x.example/; echo exit=$?",
			 aj_test_bin("tests/integration/try"), cases[i].hex,
			 aj_test_bin("agentjail"));
		aj_test_jail_sh(&r, profile, NULL, NULL, script);
		cr_assert_eq(r.status, 0, "case %zu: status %d: %s", i, r.status, r.err);
		cr_assert_not_null(strstr(r.out, "broker-send reply 8 "), "case %zu: %s", i, r.out);
		cr_assert_not_null(strstr(r.out, "\"code\":\"bad_request\""), "case %zu: %s", i,
				   r.out);
		cr_assert_not_null(strstr(r.out, cases[i].why), "case %zu: want '%s' in %s", i,
				   cases[i].why, r.out);
		/* The main channel is closed: a later client finds no broker. */
		cr_assert_not_null(strstr(r.out, "exit=6"), "case %zu: %s", i, r.out);
		cr_assert_not_null(strstr(r.err, "protocol error"), "case %zu: %s", i, r.err);
		aj_test_result_free(&r);
	}
}

/* The broker killed: clients get broker_unavailable (exit 6), nothing
 * hangs, and agentjail says so. */
Test(broker, dead_broker_is_reported_and_nothing_hangs)
{
	struct aj_result r;
	char script[9000];

	/* The broker is the agent's only peer on fd 3: find it from the
	 * host side would need the events; here the agent closes nothing and
	 * the test kills every agentjail-broker whose parent is gone...
	 * simpler and exact: kill it through the pid the start event gives. */
	char *events = aj_test_write_file(scratch, "ev.jsonl", "");
	char flag[4200];

	snprintf(flag, sizeof(flag), "%s/go", scratch);
	snprintf(script, sizeof(script),
		 "while [ ! -e '%s' ]; do sleep 0.05; done; '%s' fetch https://x.example/; "
		 "echo exit=$?",
		 flag, aj_test_bin("agentjail"));
	{
		const char *argv[] = {aj_test_bin("agentjail"),
				      "run",
				      "--profile",
				      profile,
				      "--events",
				      events,
				      "--timeout",
				      "30",
				      "--",
				      "/bin/sh",
				      "-c",
				      script,
				      NULL};
		pid_t pid = fork();
		cr_assert_geq(pid, 0);
		if (pid == 0) {
			aj_test_exec(argv, -1, &r);
			printf("%s", r.out);
			fprintf(stderr, "%s", r.err);
			_exit(r.status);
		}
		{
			int broker = aj_test_broker_pid(events, 5000);

			cr_assert_gt(broker, 0, "no start event with the broker pid");
			cr_assert_eq(kill(broker, SIGKILL), 0);
			usleep(100000);
			fclose(fopen(flag, "w"));
		}
		{
			int st;
			cr_assert_eq(waitpid(pid, &st, 0), pid);
			cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "agentjail status 0x%x",
				  st);
		}
	}
	{
		char *buf = aj_test_slurp(events);

		cr_assert_not_null(strstr(buf, "\"type\":\"broker_exit\","), "%s", buf);
		cr_assert_not_null(strstr(buf, "\"how\":\"killed\""), "%s", buf);
		cr_assert_not_null(strstr(buf, "\"expected\":false"), "%s", buf);
		free(buf);
	}
	free(events);
}

/* The Python client (clients/python), standard library only, against the
 * real broker from inside a real jail. */
Test(broker, python_client_in_a_jail)
{
	const char *staged = getenv("AJ_TEST_PYDIR");
	char pydir[4096], check[4200], script[9000];
	struct aj_result r;

	if (staged != NULL) {
		snprintf(pydir, sizeof(pydir), "%s", staged);
		snprintf(check, sizeof(check), "%s/python-client-check.py", staged);
	} else {
		snprintf(pydir, sizeof(pydir), "%s/clients/python", AJ_SRCDIR);
		snprintf(check, sizeof(check), "%s/tests/integration/python-client-check.py",
			 AJ_SRCDIR);
	}
	snprintf(script, sizeof(script), "python3 -B '%s' '%s'", check, pydir);
	aj_test_jail_sh(&r, profile, NULL, NULL, script);
	cr_assert_eq(r.status, 0, "status %d\n%s\n%s", r.status, r.out, r.err);
	cr_assert_null(strstr(r.out, "FAIL"), "%s", r.out);
	cr_assert_not_null(strstr(r.out, "ok code is denied"), "%s", r.out);
	cr_assert_not_null(strstr(r.out, "ok a bad fd is broker_unavailable"), "%s", r.out);
	aj_test_result_free(&r);
}

/* Fetch rules decide with the one URL normaliser: what would be fetched is
 * what was matched; deny wins; the deciding rule is named. */
Test(broker, rules_decide_on_the_normalised_url)
{
	static const struct {
		const char *url;
		const char *want; /* in stderr; a leading '@' stands for "<profile path>" */
		int line;         /* the deciding rule's line, 0: none */
		int status;
	} cases[] = {
		/* (Allowed URLs are fetched: that side is in test_fetch.c,
		 * against a server of the test's own.) */
		{"https://docs.example.org/private/k",
		 "GET https://docs.example.org/private/k is denied by a fetch deny rule", 4, 3},
		{"https://docs.example.org:8443/a", "no 'fetch allow' rule matches (default deny)",
		 0, 3},
		{"http://docs.example.org/a", "no fetch rule allows GET http://docs.example.org/a",
		 0, 3},
		{"https://docs.example.org.evil.org/", "no fetch rule allows", 0, 3},
		{"https://docs.example.org/%2e%2e/x", "bad_request: encoded dot segment", 0, 8},
		{"https://user@docs.example.org/", "bad_request: userinfo", 0, 8},
		{"http://2130706433/", "bad_request: non-canonical IPv4 literal", 0, 8},
		{"ftp://docs.example.org/", "bad_request:", 0, 8},
		/* Paths servers read differently than the matcher would. */
		{"https://docs.example.org/private;x/a", "bad_request: ';' (path parameters)", 0,
		 8},
		{"https://docs.example.org/private%3Bx/a", "bad_request: ';' (path parameters)", 0,
		 8},
		{"https://docs.example.org/private./a", "bad_request: a path segment must not end",
		 0, 8},
	};
	char *rules = aj_test_write_file(scratch, "rules.profile",
					 "env keep PATH\nenv set ASAN_OPTIONS=detect_leaks=0\n"
					 "fetch allow GET,HEAD https://docs.example.org/**\n"
					 "fetch deny * https://docs.example.org/private/**\n");

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char script[9000], rule[4200], status[32];
		const char *argv[] = {aj_test_bin("agentjail"),
				      "run",
				      "--profile",
				      rules,
				      "--",
				      "/bin/sh",
				      "-c",
				      script,
				      NULL};
		struct aj_result r;

		snprintf(script, sizeof(script), "'%s' fetch '%s'; echo exit=$?",
			 aj_test_bin("agentjail"), cases[i].url);
		aj_test_exec(argv, -1, &r);
		snprintf(status, sizeof(status), "exit=%d", cases[i].status);
		cr_assert_not_null(strstr(r.out, status), "%s: %s / %s", cases[i].url, r.out,
				   r.err);
		cr_assert_not_null(strstr(r.err, cases[i].want), "%s: want '%s' in %s",
				   cases[i].url, cases[i].want, r.err);
		if (cases[i].line > 0) {
			snprintf(rule, sizeof(rule), "(rule: %s:%d)", rules, cases[i].line);
			cr_assert_not_null(strstr(r.err, rule), "%s: want '%s' in %s", cases[i].url,
					   rule, r.err);
		}
		aj_test_result_free(&r);
	}
	free(rules);
}

/* The broker is confined before it reads anything: its own seccomp
 * filter, no_new_privs, no capabilities, never host root.  Its status is
 * read once it has answered a request (so it has read from the agent);
 * the start event alone may come while it still confines itself. */
Test(broker, broker_is_confined)
{
	char *events = aj_test_write_file(scratch, "conf.jsonl", "");
	char *audit = aj_test_write_file(scratch, "conf-audit.jsonl", "");
	char flag[4200], script[9000];
	const char *argv[] = {aj_test_bin("agentjail"),
			      "run",
			      "--profile",
			      profile,
			      "--events",
			      events,
			      "--audit",
			      audit,
			      "--timeout",
			      "30",
			      "--",
			      "/bin/sh",
			      "-c",
			      script,
			      NULL};
	pid_t pid;
	int broker = 0, st;

	snprintf(flag, sizeof(flag), "%s/done", scratch);
	snprintf(script, sizeof(script),
		 "'%s' fetch https://example.org/ 2>/dev/null; "
		 "while [ ! -e '%s' ]; do sleep 0.05; done",
		 aj_test_bin("agentjail"), flag);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct aj_result r;
		aj_test_exec(argv, -1, &r);
		_exit(r.status);
	}
	broker = aj_test_broker_pid(events, 5000);
	cr_assert_gt(broker, 0, "no start event");
	/* The audit record of the (denied) request: the broker has read it. */
	for (int i = 0; i < 200 && !file_has(audit, "\"error\":\"denied\""); i++)
		usleep(50000);
	cr_assert(file_has(audit, "\"error\":\"denied\""), "the broker did not answer a request");
	{
		char path[64], *status;

		snprintf(path, sizeof(path), "/proc/%d/status", broker);
		status = aj_test_slurp(path);
		cr_assert_not_null(strstr(status, "\nSeccomp:\t2\n"), "%s", status);
		cr_assert_not_null(strstr(status, "\nNoNewPrivs:\t1\n"), "%s", status);
		cr_assert_not_null(strstr(status, "\nCapEff:\t0000000000000000\n"), "%s", status);
		cr_assert_not_null(strstr(status, "\nCapPrm:\t0000000000000000\n"), "%s", status);
		cr_assert_null(strstr(status, "\nUid:\t0\t"), "the broker runs as root: %s",
			       status);
		free(status);
	}
	fclose(fopen(flag, "w"));
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status 0x%x", st);
	free(audit);
	free(events);
}

/* An answer about a URL that would not fit in a frame still arrives
 * (short), rather than leaving the request hanging.  (Denied: a test
 * fetches only from servers of its own, see test_fetch.c.) */
Test(broker, oversized_answer_still_answers)
{
	char *rules = aj_test_write_file(scratch, "big.profile",
					 "env keep PATH\nenv set ASAN_OPTIONS=detect_leaks=0\n"
					 "fetch allow GET https://docs.example.org/only-this\n");
	char url[9000], script[9200];
	const char *argv[] = {aj_test_bin("agentjail"),
			      "run",
			      "--timeout",
			      "20",
			      "--profile",
			      rules,
			      "--",
			      "/bin/sh",
			      "-c",
			      script,
			      NULL};
	struct aj_result r;
	size_t n = (size_t)snprintf(url, sizeof(url), "https://docs.example.org/?");

	/* '"' is two bytes in JSON: the quoted URL would overflow a frame. */
	while (n < 8000)
		url[n++] = '"';
	url[n] = '\0';
	snprintf(script, sizeof(script), "'%s' fetch '%s'; echo exit=$?", aj_test_bin("agentjail"),
		 url);
	aj_test_exec(argv, -1, &r);
	cr_assert_eq(r.status, 0, "status %d (124 = it hung): %s", r.status, r.err);
	cr_assert_not_null(strstr(r.out, "exit=3"), "%s", r.out);
	aj_test_result_free(&r);
	free(rules);
}
