/*
 * The broker's fetches, end to end: a real jail runs `agentjail fetch` (or
 * the Python client, or a raw protocol driver) against real HTTP and HTTPS
 * servers this test starts on the host's 127.0.0.1, with a CA it makes.
 * Every security claim is an attempt with its exact failure.  The cases
 * that name addresses outside loopback run in ssrf_lab (test_ssrf.c).
 */
#include "config.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "servers.h"

static char *scratch;
static struct aj_server http;

static void
setup(void)
{
	scratch = aj_test_scratch();
	/* The jail's user (nobody, when started by root) writes results here;
	 * sticky, so that the profiles in it stay trusted. */
	chmod(scratch, 01777);
	cr_assert_eq(aj_server_start_http(&http, "127.0.0.1", NULL, scratch), 0,
		     "cannot start the test HTTP server");
}

static void
teardown(void)
{
	aj_server_stop(&http);
	aj_test_rmrf(scratch);
	free(scratch);
}

TestSuite(fetch, .init = setup, .fini = teardown, .timeout = 120);

/* A profile: the test's lines, formatted, after a base that keeps the
 * sanitizer's leak check out of the jail (it would ptrace). */
static char *
write_profile(const char *fmt, ...)
{
	va_list ap;
	char *path;

	va_start(ap, fmt);
	path = aj_test_vwrite_profile(scratch, "fetch.profile",
				      "env keep PATH AJ URL TLS\nenv set ASAN_OPTIONS=detect_leaks=0\n",
				      fmt, ap);
	va_end(ap);
	return path;
}

/* Run SCRIPT (sh) in a jail with PROFILE (aj_test_jail_sh); $AJ is
 * agentjail, $URL the test server.  The audit records go to
 * scratch/audit.jsonl, the events to scratch/events.jsonl. */
static void
in_jail(struct aj_result *res, const char *profile, const char *script)
{
	setenv("URL", http.url, 1);
	aj_test_jail_sh_records(res, scratch, profile, script);
}

#define SHOW(r) "status %d\n--- out:\n%s\n--- err:\n%s", (r).status, (r).out, (r).err

/* The records of scratch/NAME (the audit or the events of the last run). */
#define audit_records(name) aj_test_json_lines(scratch, name)

static const char *scratch_text(const char *name);

#define str aj_test_json_str

/* ---- allowed requests ----------------------------------------------------- */

Test(fetch, allowed_get_streams_the_body_and_is_audited)
{
	char *prof = write_profile("fetch allow GET http://127.0.0.1:%d/**\n", http.port);
	struct aj_result r;
	json_t *audit, *rec, *events, *exitev = NULL;
	size_t i;

	in_jail(&r, prof, "$AJ fetch \"$URL/page.html\"; echo \"exit=$?\"");
	cr_assert_eq(r.status, 0, SHOW(r));
	cr_assert_not_null(strstr(r.out, "<h1>Hello from the test site</h1>"), SHOW(r));
	cr_assert_not_null(strstr(r.out, "exit=0"), SHOW(r));
	cr_assert_eq(aj_server_log_count(&http, "GET /page.html"), 1);

	audit = audit_records("audit.jsonl");
	cr_assert_eq(json_array_size(audit), 1);
	rec = json_array_get(audit, 0);
	cr_assert_str_eq(str(rec, "decision"), "allowed");
	cr_assert_str_eq(str(rec, "method"), "GET");
	cr_assert_eq(json_integer_value(json_object_get(rec, "status")), 200);
	cr_assert_str_eq(str(rec, "address"), "127.0.0.1");
	cr_assert(json_integer_value(json_object_get(rec, "bytes_out")) > 30);
	cr_assert_not_null(strstr(str(rec, "rule"), "fetch.profile:3"), "%s", str(rec, "rule"));
	cr_assert_eq(strlen(str(rec, "policy_sha256")), 64);
	cr_assert_eq(strlen(str(rec, "jail")), 32);

	/* The same record is a `fetch` event; `exit` counts it. */
	events = audit_records("events.jsonl");
	json_array_foreach(events, i, rec)
	{
		if (strcmp(str(rec, "type"), "fetch") == 0)
			cr_assert_str_eq(str(rec, "url"), str(json_array_get(audit, 0), "url"));
		if (strcmp(str(rec, "type"), "exit") == 0)
			exitev = rec;
	}
	cr_assert_not_null(exitev);
	cr_assert_eq(
		json_integer_value(json_object_get(json_object_get(exitev, "fetches"), "allowed")),
		1);
	json_decref(events);
	json_decref(audit);
	aj_test_result_free(&r);
	free(prof);
}

/* Each record names the process that asked (its channel's maker): the
 * pid, comm and executable of `agentjail fetch` and of a Python client. */
Test(fetch, the_audit_names_the_requesting_process)
{
	const char *staged = getenv("AJ_TEST_PYDIR");
	char *prof = write_profile("fetch allow GET http://127.0.0.1:%d/**\n", http.port);
	char pydir[4096], script[8192];
	const char *exe;
	struct aj_result r;
	json_t *audit, *rec;

	snprintf(pydir, sizeof(pydir), "%s", staged ? staged : AJ_SRCDIR "/clients/python");
	snprintf(script, sizeof(script),
		 "$AJ fetch -o /dev/null \"$URL/page.html\" && python3 -B -c 'import sys; "
		 "sys.path.insert(0, sys.argv[1]); import agentjail_client as c; "
		 "print(c.fetch(sys.argv[2] + \"/page.html\").status)' '%s' \"$URL\"",
		 pydir);
	in_jail(&r, prof, script);
	cr_assert_eq(r.status, 0, SHOW(r));
	audit = audit_records("audit.jsonl");
	cr_assert_eq(json_array_size(audit), 2);
	rec = json_array_get(audit, 0);
	cr_assert_gt(json_integer_value(json_object_get(rec, "pid")), 1);
	cr_assert_str_eq(str(rec, "comm"), "agentjail");
	exe = str(rec, "exe");
	cr_assert(strlen(exe) > 10 && strcmp(exe + strlen(exe) - 10, "/agentjail") == 0, "%s", exe);
	rec = json_array_get(audit, 1);
	cr_assert_gt(json_integer_value(json_object_get(rec, "pid")), 1);
	cr_assert_str_eq(str(rec, "comm"), "python3");
	cr_assert_not_null(strstr(str(rec, "exe"), "/python3"), "%s", str(rec, "exe"));
	json_decref(audit);
	aj_test_result_free(&r);
	free(prof);
}

/* A process whose parent closed fd 3 (a shell's `3>&-`, Python's
 * subprocess by default) or put another file there reaches the broker
 * through the jail's broker socket, under the default `socket unix deny`;
 * its records name it; the C and the Python client both fall back.  A
 * seqpacket socket (the one kind of unix socket that profile lets the
 * agent make) cannot reach a host service on a stream socket. */
Test(fetch, a_process_without_the_door_reaches_the_broker_socket)
{
	const char *staged = getenv("AJ_TEST_PYDIR");
	char *prof = write_profile("fetch allow GET http://127.0.0.1:%d/**\n", http.port);
	char pydir[4096], sockpath[4200], script[12288];
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct aj_result r;
	json_t *audit, *rec;
	size_t i;
	int host;

	/* A host service on a stream socket the jail can see. */
	snprintf(sockpath, sizeof(sockpath), "%s/service.sock", scratch);
	cr_assert_lt(strlen(sockpath), sizeof(sa.sun_path));
	memcpy(sa.sun_path, sockpath, strlen(sockpath) + 1);
	host = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert(host >= 0 && bind(host, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
		  chmod(sockpath, 0777) == 0 && listen(host, 4) == 0);
	snprintf(pydir, sizeof(pydir), "%s", staged ? staged : AJ_SRCDIR "/clients/python");
	snprintf(script, sizeof(script),
		 "echo \"socket=$AGENTJAIL_SOCKET\"; "
		 "(exec 3>&-; $AJ fetch \"$URL/page.html\"; echo \"closed=$?\"); "
		 "(exec 3</dev/null; $AJ fetch -o /dev/null \"$URL/page.html\"; echo \"file=$?\"); "
		 "python3 -B -c 'import os, subprocess, sys; sys.path.insert(0, sys.argv[1]); "
		 "import agentjail_client as c; "
		 "print(\"sub=%%d\" %% subprocess.run([os.environ[\"AJ\"], \"fetch\", \"-o\", "
		 "\"/dev/null\", sys.argv[2] + \"/page.html\"]).returncode); "
		 "os.close(3); print(\"py=%%d\" %% c.fetch(sys.argv[2] + \"/page.html\").status); "
		 "import socket; s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)\n"
		 "try: s.connect(sys.argv[3]); print(\"service=reached\")\n"
		 "except OSError as e: print(\"service=\" + os.strerror(e.errno))\n"
		 "try: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); print(\"stream=made\")\n"
		 "except OSError as e: print(\"stream=\" + os.strerror(e.errno))' '%s' \"$URL\" '%s'",
		 pydir, sockpath);
	in_jail(&r, prof, script);
	close(host);
	unlink(sockpath);
	cr_assert_eq(r.status, 0, SHOW(r));
	cr_assert(aj_test_has_line(r.out, "socket=/run/agentjail/broker.sock"), SHOW(r));
	cr_assert_not_null(strstr(r.out, "<h1>Hello from the test site</h1>"), SHOW(r));
	cr_assert(aj_test_has_line(r.out, "closed=0"), SHOW(r));
	cr_assert(aj_test_has_line(r.out, "file=0"), SHOW(r));
	cr_assert(aj_test_has_line(r.out, "sub=0"), SHOW(r));
	cr_assert(aj_test_has_line(r.out, "py=200"), SHOW(r));
	cr_assert(aj_test_has_line(r.out, "service=Protocol wrong type for socket"), SHOW(r));
	cr_assert(aj_test_has_line(r.out, "stream=Operation not permitted"), SHOW(r));
	cr_assert_eq(aj_server_log_count(&http, "GET /page.html"), 4);
	audit = audit_records("audit.jsonl");
	cr_assert_eq(json_array_size(audit), 4);
	json_array_foreach(audit, i, rec)
	{
		cr_assert_str_eq(str(rec, "decision"), "allowed");
		cr_assert_gt(json_integer_value(json_object_get(rec, "pid")), 1);
		cr_assert_str_eq(str(rec, "comm"), i < 3 ? "agentjail" : "python3");
	}
	json_decref(audit);
	aj_test_result_free(&r);
	free(prof);
}

Test(fetch, head_and_headers_with_i)
{
	char *prof = write_profile("fetch allow GET,HEAD http://127.0.0.1:%d/**\n", http.port);
	struct aj_result r;

	in_jail(&r, prof,
		"$AJ fetch -i -X HEAD \"$URL/bytes/1000\"; echo \"exit=$?\"; "
		"$AJ fetch -i \"$URL/headers-out?Set-Cookie=a%3Db\" ; echo \"exit=$?\"; "
		"$AJ fetch -i \"$URL/bytes/10?chunked=1&length=99999\" | head -c 200 | "
		"grep -ci content-length; echo \"exit=$?\"");
	cr_assert_not_null(strstr(r.out, "HTTP/1.1 200"), SHOW(r));
	cr_assert_not_null(strstr(r.out, "Content-Length: 1000"), SHOW(r));
	/* A Content-Length beside a transfer coding is not passed on (the
	 * body's length is not what it says). */
	cr_assert_not_null(strstr(r.out, "0\nexit=1\n"), SHOW(r));
	/* A response's own cookies reach the agent. */
	cr_assert_not_null(strstr(r.out, "Set-Cookie: a=b"), SHOW(r));
	cr_assert_null(strstr(r.out, "Connection:"), "hop-by-hop header relayed: " SHOW(r));
	cr_assert_not_null(strstr(r.out, "exit=0\n"), SHOW(r));
	cr_assert_eq(aj_server_log_count(&http, "HEAD /bytes/1000"), 1);
	aj_test_result_free(&r);
	free(prof);
}

/* Issue 9: a query is decided as the server reads it (the broker fetches
 * exactly the spelling it decided on), and headers that would make the
 * server read another method, host or path go upstream only where a rule
 * says `pass-header`. */
Test(fetch, queries_and_override_headers_are_decided_as_servers_read_them)
{
	char *prof =
		write_profile("fetch allow GET http://127.0.0.1:%d/echo/** query **\n"
			      "fetch deny * http://127.0.0.1:%d/echo/** query **action=delete**\n"
			      "fetch allow GET http://127.0.0.1:%d/echo/pass pass-header "
			      "X-HTTP-Method-Override\n",
			      http.port, http.port, http.port);
	struct aj_result r;

	in_jail(&r, prof,
		"$AJ fetch \"$URL/echo/a?action=delete\"; echo \"exit=$?\"; "
		"$AJ fetch \"$URL/echo/a?%61ction=delete\"; echo \"exit=$?\"; "
		"$AJ fetch \"$URL/echo/a?action=%64elete\"; echo \"exit=$?\"; "
		"$AJ fetch \"$URL/echo/a?action%3Ddelete\"; echo \"exit=$?\"; "
		"$AJ fetch \"$URL/echo/a?action=view&action=delete\"; echo \"exit=$?\"; "
		"$AJ fetch \"$URL/echo/a?%61ction=view\"; echo \"exit=$?\"; "
		"$AJ fetch -H 'X-HTTP-Method-Override: DELETE' -H 'X-Forwarded-Host: evil.example' "
		"-H 'Forwarded: host=evil.example' -H 'X-Original-URL: /admin' -H 'X-Keep: 1' "
		"\"$URL/echo/a?x=1\"; echo \"exit=$?\"; "
		"$AJ fetch -H 'X-HTTP-Method-Override: DELETE' -H 'X-Forwarded-Host: evil.example' "
		"\"$URL/echo/pass\"; echo \"exit=$?\"");
	/* Denied in every spelling (exit 3), ambiguous ones refused as bad
	 * requests (exit 8), and none of them reached the server. */
	cr_assert_not_null(strstr(r.out, "exit=3\nexit=3\nexit=3\nexit=8\nexit=8\n"), SHOW(r));
	cr_assert_not_null(strstr(r.err, "holds an encoded '=' or '&'"), SHOW(r));
	cr_assert_not_null(strstr(r.err, "query parameter 'action' is given twice"), SHOW(r));
	cr_assert_eq(aj_server_log_count(&http, "GET /echo/a?action=delete"), 0);
	cr_assert_eq(aj_server_log_count(&http, "GET /echo/a?action=view&action=delete"), 0);
	/* What was allowed was fetched in the spelling that was decided. */
	cr_assert_not_null(strstr(r.out, "\"path\": \"/echo/a?action=view\""), SHOW(r));
	/* The override headers were dropped, the others kept... */
	cr_assert_not_null(strstr(r.out, "[\"X-Keep\", \"1\"]"), SHOW(r));
	cr_assert_null(strstr(r.out, "[\"X-Original-URL\""), SHOW(r));
	cr_assert_null(strstr(r.out, "[\"Forwarded\""), SHOW(r));
	/* ...but for the one a rule lets pass, on that rule's URL. */
	cr_assert_not_null(strstr(r.out, "[\"X-HTTP-Method-Override\", \"DELETE\"]"), SHOW(r));
	{
		const char *pass = strstr(r.out, "\"path\": \"/echo/pass\"");

		cr_assert_not_null(pass, SHOW(r));
		cr_assert_null(strstr(r.out, "[\"X-Forwarded-Host\""), SHOW(r));
		cr_assert_eq(strstr(r.out, "[\"X-HTTP-Method-Override\"") > pass, true,
			     "the override passed only where the rule says so: " SHOW(r));
	}
	{
		int ok = 0;

		for (const char *p = r.out; (p = strstr(p, "exit=0\n")) != NULL; p++)
			ok++;
		cr_assert_eq(ok, 3, SHOW(r));
	}
	aj_test_result_free(&r);
	free(prof);
}

Test(fetch, post_bodies_arrive_whole)
{
	char *prof = write_profile("fetch allow POST,PUT http://127.0.0.1:%d/echo\n", http.port);
	struct aj_result r;

	/* 300 KiB: several BODY frames. */
	in_jail(&r, prof,
		"head -c 307200 /dev/zero | tr '\\0' x > /tmp/body; "
		"$AJ fetch -d 'a=1&b=2' \"$URL/echo\"; echo; "
		"$AJ fetch -X PUT --data-binary @/tmp/body \"$URL/echo\"; echo \"exit=$?\"");
	cr_assert_not_null(strstr(r.out, "\"method\": \"POST\""), SHOW(r));
	cr_assert_not_null(strstr(r.out, "\"body\": \"a=1&b=2\""), SHOW(r));
	cr_assert_not_null(strstr(r.out, "\"method\": \"PUT\""), SHOW(r));
	cr_assert_not_null(strstr(r.out, "\"body_length\": 307200"), SHOW(r));
	cr_assert_not_null(strstr(r.out, "exit=0"), SHOW(r));
	aj_test_result_free(&r);
	free(prof);
}

/* ---- the policy ----------------------------------------------------------- */

Test(fetch, denials_name_the_rule)
{
	char *prof = write_profile("fetch allow GET http://127.0.0.1:%d/docs/**\n"
				   "fetch deny GET http://127.0.0.1:%d/docs/private/**\n",
				   http.port, http.port);
	struct aj_result r;
	char script[2048];

	snprintf(script, sizeof(script),
		 "for u in \"-X POST $URL/docs/a\" \"$URL/other\" "
		 "\"http://127.0.0.1:%d/docs/a\" \"https://127.0.0.1:%d/docs/a\" "
		 "\"http://127.0.0.2:%d/docs/a\" \"$URL/docs/private/x\"; do "
		 "$AJ fetch $u; echo \"exit=$?\"; done",
		 http.port + 1, http.port, http.port);
	in_jail(&r, prof, script);
	/* method, path, port, scheme, host: no rule; then deny over allow. */
	cr_assert_not_null(strstr(r.out, "exit=3\nexit=3\nexit=3\nexit=3\nexit=3\nexit=3\n"),
			   SHOW(r));
	cr_assert_not_null(strstr(r.err, "denied: no fetch rule allows POST"), SHOW(r));
	cr_assert_not_null(strstr(r.err, "is denied by a fetch deny rule (rule: "), SHOW(r));
	cr_assert_not_null(strstr(r.err, "fetch.profile:4)"), SHOW(r));
	cr_assert_eq(aj_server_log_count(&http, "/docs"), 0, "a denied request reached the server");
	aj_test_result_free(&r);
	free(prof);
}

Test(fetch, urls_are_fetched_as_normalised)
{
	char *prof = write_profile("fetch allow GET http://127.0.0.1:%d/echo/b\n"
				   "fetch allow GET http://localhost:%d/echo/b\n"
				   "fetch address allow 127.0.0.1\nfetch address allow ::1\n",
				   http.port, http.port);
	struct aj_result r;
	char script[2048];

	snprintf(script, sizeof(script),
		 "$AJ fetch \"$URL/echo/a/../b\"; echo \"exit=$?\"; "
		 "$AJ fetch \"http://LOCALHOST.:%d/echo/b\"; echo \"exit=$?\"; "
		 "$AJ fetch \"$URL/echo/%%2e%%2e/b\"; echo \"exit=$?\"; "
		 "$AJ fetch \"$URL/echo%%2Fb\"; echo \"exit=$?\"; "
		 "$AJ fetch \"$URL//echo/b\"; echo \"exit=$?\"; "
		 "$AJ fetch \"http://user@127.0.0.1:%d/echo/b\"; echo \"exit=$?\"",
		 http.port, http.port);
	in_jail(&r, prof, script);
	/* Dot segments resolved, host case and trailing dot normalised: the
	 * server sees the clean path; encoded dots and slashes and userinfo
	 * are refused. */
	cr_assert_not_null(strstr(r.out, "\"path\": \"/echo/b\""), SHOW(r));
	cr_assert_not_null(strstr(r.out, "exit=0\n"), SHOW(r));
	cr_assert_not_null(strstr(r.out, "exit=0\nexit=8\nexit=8\nexit=8\nexit=8\n"), SHOW(r));
	cr_assert_not_null(strstr(r.err, "empty path segment ('//') not allowed"), SHOW(r));
	cr_assert_eq(aj_server_log_count(&http, "GET /echo/b"), 2, SHOW(r));
	cr_assert_eq(aj_server_log_count(&http, ".."), 0);
	aj_test_result_free(&r);
	free(prof);
}

/* ---- addresses --------------------------------------------------------------- */

Test(fetch, a_name_for_loopback_needs_an_explicit_rule)
{
	char *prof = write_profile("fetch allow GET http://localhost:%d/**\n", http.port);
	struct aj_result r;
	char script[1024];

	snprintf(script, sizeof(script), "$AJ fetch http://localhost:%d/page.html; echo exit=$?",
		 http.port);
	in_jail(&r, prof, script);
	cr_assert_not_null(strstr(r.out, "exit=3"), SHOW(r));
	cr_assert_not_null(strstr(r.err, "loopback: refused"), SHOW(r));
	cr_assert_eq(aj_server_log_count(&http, "/page.html"), 0);
	aj_test_result_free(&r);
	free(prof);
}

Test(fetch, host_header_cannot_front_another_domain)
{
	char *prof = write_profile("fetch allow GET http://127.0.0.1:%d/**\n", http.port);
	struct aj_result r;

	in_jail(&r, prof,
		"$AJ fetch -H 'Host: evil.example' \"$URL/echo\"; echo \"exit=$?\"; "
		"$AJ fetch -H \"Host: ${URL#http://}\" -H 'Cookie: s=1' -H 'Authorization: Basic "
		"x' "
		"-H 'Connection: close, X-Drop' -H 'X-Drop: 1' -H 'X-Keep: 2' -H 'TE: trailers' "
		"-H 'Upgrade: h2c' \"$URL/echo\"; echo \"exit=$?\"");
	cr_assert_not_null(strstr(r.out, "exit=8\n"), SHOW(r));
	cr_assert_not_null(strstr(r.err, "Host header 'evil.example' does not name"), SHOW(r));
	cr_assert_not_null(strstr(r.out, "\"X-Keep\", \"2\""), SHOW(r));
	cr_assert_null(strstr(r.out, "Cookie"), SHOW(r));
	cr_assert_null(strstr(r.out, "Authorization"), SHOW(r));
	cr_assert_null(strstr(r.out, "X-Drop"), SHOW(r));
	cr_assert_null(strstr(r.out, "h2c"), SHOW(r));
	cr_assert_null(strstr(r.out, "\"TE\""), SHOW(r));
	cr_assert_not_null(strstr(r.out, "exit=0"), SHOW(r));
	aj_test_result_free(&r);
	free(prof);
}

/* THREATS 16: the agent's framing headers never reach upstream; a request
 * that tries to frame its own body (CL.TE, TE.CL, two lengths, a length
 * that lies) is refused, and the server sees nothing of it. */
Test(fetch, smuggling_attempts_are_refused)
{
	char *prof = write_profile("fetch allow GET,POST http://127.0.0.1:%d/**\n", http.port);
	struct aj_result r;

	in_jail(&r, prof,
		"for h in 'Transfer-Encoding: chunked' 'Transfer-Encoding: identity' "
		"'Content-Length: 3' 'Content-Length: +5' 'Content-Length: 5, 5'; do "
		"$AJ fetch -H \"$h\" -d hello \"$URL/echo\"; echo \"exit=$?\"; done; "
		"$AJ fetch -H 'Content-Length: 5' -H 'Content-Length: 5' -d hello \"$URL/echo\"; "
		"echo \"exit=$?\"; "
		"$AJ fetch -H 'Content-Length: 5' -d hello \"$URL/echo\"; echo \"exit=$?\"");
	cr_assert_not_null(strstr(r.out, "exit=8\nexit=8\nexit=8\nexit=8\nexit=8\nexit=8\n"),
			   SHOW(r));
	cr_assert_not_null(strstr(r.err, "Transfer-Encoding is refused"), SHOW(r));
	cr_assert_not_null(strstr(r.err, "Content-Length 3 does not match the body (5 bytes)"),
			   SHOW(r));
	cr_assert_not_null(strstr(r.err, "Content-Length must appear once, as a plain number"),
			   SHOW(r));
	/* A true length is fine (and the broker sends its own). */
	cr_assert_not_null(strstr(r.out, "\"body\": \"hello\""), SHOW(r));
	cr_assert_eq(aj_server_log_count(&http, "POST /echo"), 1, SHOW(r));
	aj_test_result_free(&r);
	free(prof);
}

Test(fetch, query_rules_match_the_query)
{
	char *prof =
		write_profile("fetch allow GET http://127.0.0.1:%d/echo query q=*\n", http.port);
	struct aj_result r;

	in_jail(&r, prof,
		"$AJ fetch \"$URL/echo?q=cats\" >/dev/null; echo \"exit=$?\"; "
		"$AJ fetch \"$URL/echo?q=cats&token=x\"; echo \"exit=$?\"; "
		"$AJ fetch \"$URL/echo\"; echo \"exit=$?\"");
	cr_assert_not_null(strstr(r.out, "exit=0\nexit=3\nexit=3\n"), SHOW(r));
	cr_assert_eq(aj_server_log_count(&http, "GET /echo"), 1);
	aj_test_result_free(&r);
	free(prof);
}

Test(fetch, credentials_pass_only_where_a_rule_says_so)
{
	char *prof =
		write_profile("fetch allow GET http://127.0.0.1:%d/echo credentials\n", http.port);
	struct aj_result r;

	in_jail(&r, prof, "$AJ fetch -H 'Authorization: Bearer t0k' \"$URL/echo\"");
	cr_assert_not_null(strstr(r.out, "\"Authorization\", \"Bearer t0k\""), SHOW(r));
	aj_test_result_free(&r);
	free(prof);
}

/* ---- redirects ----------------------------------------------------------------- */

Test(fetch, redirects_are_decided_hop_by_hop)
{
	char *prof = write_profile("fetch allow GET http://127.0.0.1:%d/redirect/**\n"
				   "fetch allow GET http://127.0.0.1:%d/page.html\n",
				   http.port, http.port);
	struct aj_result r;

	in_jail(&r, prof,
		"$AJ fetch \"$URL/redirect/302?to=/page.html\"; echo \"exit=$?\"; "
		"$AJ fetch \"$URL/redirect/301?to=$URL/echo\"; echo \"exit=$?\"; "
		"$AJ fetch \"$URL/redirect/307?to=file:///etc/passwd\"; echo \"exit=$?\"");
	cr_assert_not_null(strstr(r.out, "Hello from the test site"), SHOW(r));
	cr_assert_not_null(strstr(r.out, "exit=0\nexit=3\nexit=3\n"), SHOW(r));
	cr_assert_not_null(strstr(r.err, "redirect hop 1 to GET http://127.0.0.1:"), SHOW(r));
	cr_assert_not_null(strstr(r.err, "redirect hop 1 to 'file:///etc/passwd' refused"),
			   SHOW(r));
	cr_assert_eq(aj_server_log_count(&http, "GET /echo"), 0, "a denied hop was fetched");
	aj_test_result_free(&r);
	free(prof);
}

Test(fetch, redirect_loops_end_at_the_limit)
{
	char *prof =
		write_profile("fetch allow GET http://127.0.0.1:%d/** redirects 3\n", http.port);
	struct aj_result r;

	in_jail(&r, prof,
		"$AJ fetch \"$URL/redirect/302?to=/redirect/302%3Fto%3D/redirect/"
		"302%253Fto%253D/redirect/302%25253Fto%25253D/page.html\"; "
		"echo \"exit=$?\"");
	cr_assert_not_null(strstr(r.out, "exit=7"), SHOW(r));
	cr_assert_not_null(strstr(r.err, "more than 3 redirects"), SHOW(r));
	aj_test_result_free(&r);
	free(prof);
}

/* ---- limits ------------------------------------------------------------------ */

Test(fetch, limits_hold)
{
	char *prof = write_profile("fetch allow GET http://127.0.0.1:%d/bytes/** response 4K\n"
				   "fetch allow GET http://127.0.0.1:%d/slow/** timeout 500ms\n"
				   "fetch allow POST http://127.0.0.1:%d/echo max-body 1K\n"
				   "fetch allow GET http://127.0.0.1:%d/page.html rate 2/min\n",
				   http.port, http.port, http.port, http.port);
	struct aj_result r;

	in_jail(&r, prof,
		"$AJ fetch \"$URL/bytes/4096\" >/dev/null; echo \"exit=$?\"; "
		"$AJ fetch \"$URL/bytes/5000\" >/dev/null; echo \"exit=$?\"; "
		"$AJ fetch \"$URL/bytes/5000?chunked=1\" >/dev/null; echo \"exit=$?\"; "
		"$AJ fetch \"$URL/slow/5000\"; echo \"exit=$?\"; "
		"head -c 2000 /dev/zero > /tmp/b; $AJ fetch --data-binary @/tmp/b \"$URL/echo\"; "
		"echo \"exit=$?\"; "
		"for i in 1 2 3; do $AJ fetch \"$URL/page.html\" >/dev/null; echo \"exit=$?\"; "
		"done");
	cr_assert_not_null(strstr(r.out, "exit=0\nexit=5\nexit=5\nexit=4\nexit=5\n"
					 "exit=0\nexit=0\nexit=9\n"),
			   SHOW(r));
	cr_assert_not_null(strstr(r.err, "too_large: the response is over the limit of 4096"),
			   SHOW(r));
	cr_assert_not_null(strstr(r.err, "timeout: no complete answer from 127.0.0.1"), SHOW(r));
	cr_assert_not_null(strstr(r.err, "the request body is over the limit of 1024"), SHOW(r));
	cr_assert_not_null(strstr(r.err, "rate_limited: more than 2 requests per minute"), SHOW(r));
	cr_assert_eq(aj_server_log_count(&http, "POST /echo"), 0);
	aj_test_result_free(&r);
	free(prof);
}

/* ---- TLS ------------------------------------------------------------------------ */

Test(fetch, https_is_verified_against_system_and_profile_cas)
{
	static const char *const hosts[] = {"127.0.0.1", "localhost", NULL};
	char certs[4096], ca[4200], wrong[4200];
	struct aj_server tls = {0};
	struct aj_result r;
	char *prof;

	snprintf(certs, sizeof(certs), "%s/certs", scratch);
	cr_assert_eq(aj_make_ca(certs, hosts), 0);
	cr_assert_eq(aj_server_start_http(&tls, "127.0.0.1", certs, scratch), 0);
	snprintf(ca, sizeof(ca), "%s/ca.pem", certs);
	snprintf(wrong, sizeof(wrong), "%s/wrong-ca.pem", certs);

	prof = write_profile("fetch allow GET https://127.0.0.1:%d/**\nfetch ca %s\n", tls.port,
			     ca);
	setenv("TLS", tls.url, 1);
	in_jail(&r, prof, "$AJ fetch \"$TLS/page.html\"; echo \"exit=$?\"");
	cr_assert_not_null(strstr(r.out, "Hello from the test site"), SHOW(r));
	cr_assert_not_null(strstr(r.out, "exit=0"), SHOW(r));
	aj_test_result_free(&r);
	free(prof);

	/* The system store alone, and a CA that signed nothing: refused. */
	prof = write_profile("fetch allow GET https://127.0.0.1:%d/**\n", tls.port);
	in_jail(&r, prof, "$AJ fetch \"$TLS/page.html\"; echo \"exit=$?\"");
	cr_assert_not_null(strstr(r.out, "exit=7"), SHOW(r));
	cr_assert_not_null(strstr(r.err, "certificate"), SHOW(r));
	aj_test_result_free(&r);
	free(prof);
	prof = write_profile("fetch allow GET https://127.0.0.1:%d/**\nfetch ca %s\n", tls.port,
			     wrong);
	in_jail(&r, prof, "$AJ fetch \"$TLS/page.html\"; echo \"exit=$?\"");
	cr_assert_not_null(strstr(r.out, "exit=7"), SHOW(r));
	aj_test_result_free(&r);
	free(prof);
	cr_assert_eq(aj_server_log_count(&tls, "/page.html"), 1);
	aj_server_stop(&tls);
}

/* ---- audit ------------------------------------------------------------------------ */

Test(fetch, sensitive_queries_never_reach_the_audit)
{
	char *prof = write_profile("fetch allow GET http://127.0.0.1:%d/echo sensitive-query\n",
				   http.port);
	struct aj_result r;
	json_t *audit;

	/* Joined in the shell: the start event records the command line as
	 * given, which must not hold the secret whole. */
	in_jail(&r, prof,
		"s=s3; s=${s}cret; $AJ fetch -H \"Authorization: Bearer $s\" \"$URL/echo?token=$s\"");
	cr_assert_eq(r.status, 0, SHOW(r));
	audit = audit_records("audit.jsonl");
	cr_assert_eq(json_array_size(audit), 1);
	cr_assert(strstr(str(json_array_get(audit, 0), "url"), "?(redacted)") != NULL);
	json_decref(audit);
	{
		char path[4096], *buf;

		snprintf(path, sizeof(path), "%s/audit.jsonl", scratch);
		buf = aj_test_slurp(path);
		cr_assert_null(strstr(buf, "s3cret"), "%s", buf);
		free(buf);
		snprintf(path, sizeof(path), "%s/events.jsonl", scratch);
		buf = aj_test_slurp(path);
		cr_assert_null(strstr(buf, "s3cret"), "%s", buf);
		free(buf);
	}
	aj_test_result_free(&r);
	free(prof);
}

Test(fetch, the_audit_trail_is_read_only_in_the_jail)
{
	char *prof = write_profile("fetch allow GET http://127.0.0.1:%d/**\n", http.port);
	char script[8192];
	struct aj_result r;

	char path[4200];
	int fd;

	/* Writable for everyone on the host: only the jail's mount stops it. */
	snprintf(path, sizeof(path), "%s/audit.jsonl", scratch);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0666);
	cr_assert_geq(fd, 0);
	fchmod(fd, 0666);
	close(fd);
	snprintf(script, sizeof(script),
		 "$AJ fetch \"$URL/page.html\" >/dev/null; "
		 "echo '{\"decision\":\"forged\"}' >> '%s/audit.jsonl'; echo \"exit=$?\"",
		 scratch);
	in_jail(&r, prof, script);
	cr_assert_not_null(strstr(r.out, "exit=2"), SHOW(r));
	cr_assert_not_null(strstr(r.err, "Read-only file system"), SHOW(r));
	cr_assert_null(strstr(scratch_text("audit.jsonl"), "forged"));
	aj_test_result_free(&r);
	free(prof);
}

/* ---- SSRF: in a network namespace of the test's own, holding only lo ---------- */

Test(fetch, ssrf_addresses_redirects_and_rebinding_in_a_closed_netns)
{
	char lab[4096];
	struct aj_result r;

	snprintf(lab, sizeof(lab), "%s/lab", scratch);
	cr_assert_eq(mkdir(lab, 0777), 0);
	aj_test_netlab(&r, "ssrf-lab", lab);
	cr_assert_eq(r.status, 0, SHOW(r));
	/* Names for metadata, private, shared and loopback addresses, and
	 * redirects to them: refused by the address check (denied), not by a
	 * failed connection (upstream_error, 7). */
	cr_assert_not_null(strstr(r.out, "case metadata exit=3\n"
					 "case private exit=3\n"
					 "case shared exit=3\n"
					 "case loopback-name exit=3\n"
					 "case v6-metadata exit=3\n"
					 "case redirect-metadata exit=3\n"
					 "case redirect-private exit=3\n"
					 "case redirect-private-literal exit=3\n"),
			   SHOW(r));
	{
		char errpath[4200], *err;

		snprintf(errpath, sizeof(errpath), "%s/err", lab);
		err = aj_test_slurp(errpath);
		cr_assert_not_null(strstr(err, "metadata.test resolves to 169.254.169.254, cloud "
					       "metadata: refused"),
				   "%s", err);
		cr_assert_not_null(strstr(err, "10.1.2.3, private (RFC 1918): refused"), "%s", err);
		cr_assert_not_null(strstr(err, "fd00:ec2::254, cloud metadata"), "%s", err);
		cr_assert_not_null(strstr(err, "redirect hop 1 to GET http://10.1.2.3:"), "%s",
				   err);
		cr_assert_not_null(strstr(err, "rebind.test resolves to 127.0.0.1, loopback: "
					       "refused"),
				   "%s", err);
		free(err);
	}
	/* A rule naming the address lets the check pass; there is no route. */
	cr_assert_not_null(strstr(r.out, "case named-metadata exit=7\n"), SHOW(r));
	/* Rebinding: the name alternates between 127.0.0.2 (allowed by
	 * `fetch address allow`) and 127.0.0.1 (not): every answer that said
	 * 127.0.0.1 was refused, and the server there saw nothing. */
	cr_assert_not_null(strstr(r.out, "case rebind exit=0\n"), SHOW(r));
	cr_assert_not_null(strstr(r.out, "case rebind exit=3\n"), SHOW(r));
	cr_assert_null(strstr(r.out, "case rebind exit=7"), SHOW(r));
	cr_assert_not_null(strstr(r.out, "web1 requests 0\n"), SHOW(r));
	cr_assert_null(strstr(r.out, "web2 requests 0\n"), SHOW(r));
	aj_test_result_free(&r);
}

/* ---- streaming, flow control, many requests ---------------------------------- */

/* The protocol driver (tests/integration/proto-driver.py), as staged. */
static const char *
driver(void)
{
	static char path[4096];
	const char *staged = getenv("AJ_TEST_PYDIR");

	if (staged != NULL)
		snprintf(path, sizeof(path), "%s/proto-driver.py", staged);
	else
		snprintf(path, sizeof(path), "%s/tests/integration/proto-driver.py", AJ_SRCDIR);
	return path;
}

/* Start the jail in the background (stdout/stderr to scratch files). */
static pid_t
jail_bg(const char *profile, const char *script)
{
	char events[4200], out[4200];
	pid_t pid;

	snprintf(events, sizeof(events), "%s/events.jsonl", scratch);
	snprintf(out, sizeof(out), "%s/bg.out", scratch);
	unlink(events);
	setenv("AJ", aj_test_bin("agentjail"), 1);
	setenv("URL", http.url, 1);
	pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int nul = open("/dev/null", O_RDONLY);

		dup2(nul, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		execl(aj_test_bin("agentjail"), "agentjail", "run", "--profile", profile,
		      "--events", events, "--", "/bin/sh", "-c", script, (char *)NULL);
		_exit(127);
	}
	return pid;
}

static int
wait_status(pid_t pid)
{
	int st;

	while (waitpid(pid, &st, 0) < 0)
		;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* The text of scratch/NAME, "" while it does not exist.  It stays valid
 * for the next three calls, so that a message may quote what the assertion
 * read. */
static const char *
scratch_text(const char *name)
{
	static char *kept[4];
	static unsigned next;
	unsigned slot = next++ % 4;
	char path[4200];

	snprintf(path, sizeof(path), "%s/%s", scratch, name);
	free(kept[slot]);
	kept[slot] = aj_test_slurp_if_exists(path);
	return kept[slot];
}

/* Wait (up to 60 s) until scratch/NAME holds NEEDLE. */
static bool
wait_for(const char *name, const char *needle)
{
	for (int i = 0; i < 600; i++) {
		if (strstr(scratch_text(name), needle) != NULL)
			return true;
		usleep(100000);
	}
	return false;
}

static int
broker_pid(void)
{
	char events[4200];
	int pid;

	snprintf(events, sizeof(events), "%s/events.jsonl", scratch);
	pid = aj_test_broker_pid(events, 60000);
	cr_assert_gt(pid, 0, "no start event");
	return pid;
}

/* The broker's peak resident memory so far, in KiB. */
static long
broker_peak_kb(int pid)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "r");
	cr_assert_not_null(f, "the broker (pid %d) is gone", pid);
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "VmHWM:", 6) == 0)
			kb = atol(line + 6);
	fclose(f);
	return kb;
}

/* Run SCRIPT in a jail in the background and return the broker's peak
 * RSS in KiB, read once SCRIPT is done while the jail still runs; the jail
 * must then exit 0. */
static long
jail_broker_peak_kb(const char *profile, const char *script)
{
	char full[20000];
	pid_t pid;
	long kb;
	int bp;

	snprintf(full, sizeof(full), "%s; echo done > '%s/done'; sleep 1", script, scratch);
	pid = jail_bg(profile, full);
	bp = broker_pid();
	cr_assert(wait_for("done", "done"), "the jail did not get there: %s",
		  scratch_text("bg.out"));
	kb = broker_peak_kb(bp);
	cr_assert_eq(wait_status(pid), 0, "%s", scratch_text("bg.out"));
	return kb;
}

/* The broker's memory may not grow with the size of what it relays:
 * 256 MiB through it, or a reader that stops, stay within this.  In the
 * sanitizer build the broker is built with ASan, whose quarantine keeps
 * freed memory on purpose (up to 256 MiB): its RSS says nothing about the
 * broker's, so there the bound is checked by the normal build only. */
#define BROKER_FLAT_KB (48 * 1024)
#if defined(__SANITIZE_ADDRESS__)
#define BROKER_MEMORY_MEASURED false
#else
#define BROKER_MEMORY_MEASURED true
#endif

static void
assert_broker_flat(long kb)
{
	if (BROKER_MEMORY_MEASURED)
		cr_assert_lt(kb, BROKER_FLAT_KB, "broker peak RSS %ld KiB", kb);
	else
		cr_log_info("ASan build: broker peak RSS %ld KiB not checked (quarantine)", kb);
}

Test(fetch, a_256_mib_download_streams_with_flat_broker_memory)
{
	char *prof = write_profile("fetch allow GET http://127.0.0.1:%d/** response 512M "
				   "timeout 120s\n",
				   http.port);
	char script[16384];
	long kb;

	snprintf(script, sizeof(script), "$AJ fetch \"$URL/bytes/268435456\" | wc -c > '%s/count'",
		 scratch);
	kb = jail_broker_peak_kb(prof, script);
	cr_assert_eq(atol(scratch_text("count")), 268435456L, "bytes: %s", scratch_text("count"));
	assert_broker_flat(kb);
	free(prof);
}

Test(fetch, a_reader_that_stops_pauses_its_transfer)
{
	char *prof =
		write_profile("fetch allow GET http://127.0.0.1:%d/** response 1G\n", http.port);
	char script[16384];
	long kb;

	snprintf(script, sizeof(script),
		 "python3 -B '%s' stall \"$URL/bytes/1073741824\" 3 > '%s/drv' 2>&1", driver(),
		 scratch);
	kb = jail_broker_peak_kb(prof, script);
	cr_assert_not_null(strstr(scratch_text("drv"), "ok stalled reader; another channel served"),
			   "%s", scratch_text("drv"));
	assert_broker_flat(kb);
	free(prof);
}

Test(fetch, two_hundred_requests_in_flight_on_one_channel)
{
	char *prof = write_profile("fetch allow GET http://127.0.0.1:%d/**\n"
				   "fetch limit concurrency 256\n",
				   http.port);
	struct aj_result r;
	char script[16384];

	snprintf(script, sizeof(script), "python3 -B '%s' concurrent \"$URL/bytes/20000\" 200",
		 driver());
	in_jail(&r, prof, script);
	cr_assert_eq(r.status, 0, SHOW(r));
	cr_assert_not_null(strstr(r.out, "ok 200 requests on one channel"), SHOW(r));
	cr_assert_eq(aj_server_log_count(&http, "GET /bytes/20000"), 200);
	aj_test_result_free(&r);
	free(prof);
}

/* More clients at once than the broker has channel slots: they wait for
 * one, and every fetch succeeds. */
Test(fetch, a_hundred_clients_at_once_all_get_their_answer)
{
	char *prof = write_profile("fetch allow GET http://127.0.0.1:%d/**\n"
				   "fetch limit concurrency 256\n",
				   http.port);
	struct aj_result r;

	in_jail(&r, prof,
		"i=0; while [ $i -lt 100 ]; do ($AJ fetch \"$URL/bytes/1000\" >/dev/null; "
		"echo \"exit=$?\") & i=$((i+1)); done; wait");
	cr_assert_null(strstr(r.out, "exit=6"), SHOW(r));
	cr_assert_null(strstr(r.out, "exit=9"), SHOW(r));
	cr_assert_eq(aj_server_log_count(&http, "GET /bytes/1000"), 100, SHOW(r));
	aj_test_result_free(&r);
	free(prof);
}

Test(fetch, concurrency_beyond_the_limit_is_rate_limited)
{
	char *prof =
		write_profile("fetch allow GET http://127.0.0.1:%d/** concurrency 2\n", http.port);
	struct aj_result r;

	in_jail(&r, prof,
		"for i in 1 2 3 4; do ($AJ fetch \"$URL/slow/1500\" >/dev/null; echo \"exit=$?\") "
		"& "
		"done; wait");
	cr_assert_not_null(strstr(r.out, "exit=9"), SHOW(r));
	cr_assert_not_null(strstr(r.out, "exit=0"), SHOW(r));
	cr_assert_not_null(strstr(r.err, "rate_limited: more than 2 requests in flight"), SHOW(r));
	aj_test_result_free(&r);
	free(prof);
}

Test(fetch, memfd_hand_over_is_sealed)
{
	char *prof = write_profile("fetch allow GET http://127.0.0.1:%d/**\n", http.port);
	struct aj_result r;
	char script[16384];

	snprintf(script, sizeof(script), "python3 -B '%s' memfd \"$URL/bytes/1000000\" 1000000",
		 driver());
	in_jail(&r, prof, script);
	cr_assert_not_null(strstr(r.out, "ok memfd of 1000000 bytes, sealed"), SHOW(r));
	aj_test_result_free(&r);
	free(prof);
}

/* A chunked body has no Content-Length: the RESPONSE of a memfd hand-over
 * announces the memfd's size, which the client checks. */
Test(fetch, memfd_hand_over_of_a_chunked_body_announces_its_size)
{
	char *prof = write_profile("fetch allow GET http://127.0.0.1:%d/**\n", http.port);
	struct aj_result r;
	char script[16384];

	snprintf(script, sizeof(script),
		 "python3 -B '%s' memfd \"$URL/bytes/300000?chunked=1\" 300000", driver());
	in_jail(&r, prof, script);
	cr_assert_not_null(strstr(r.out, "ok memfd of 300000 bytes, sealed"), SHOW(r));
	aj_test_result_free(&r);
	free(prof);
}

Test(fetch, broker_killed_mid_request_is_reported_and_nothing_hangs)
{
	char *prof = write_profile("fetch allow GET http://127.0.0.1:%d/**\n", http.port);
	char script[16384];
	pid_t pid;
	int bp;

	snprintf(script, sizeof(script),
		 "python3 -B '%s' slowfetch \"$URL/slow/30000\" > '%s/drv' 2>&1; "
		 "$AJ fetch \"$URL/page.html\"; echo \"exit=$?\"",
		 driver(), scratch);
	pid = jail_bg(prof, script);
	bp = broker_pid();
	cr_assert(wait_for("drv", "waiting"), "%s", scratch_text("bg.out"));
	cr_assert_eq(kill(bp, SIGKILL), 0);
	cr_assert_eq(wait_status(pid), 0, "%s", scratch_text("bg.out"));
	cr_assert_not_null(strstr(scratch_text("drv"), "ended: EOF"), "%s", scratch_text("drv"));
	/* A later client gets broker_unavailable (6) at once. */
	cr_assert_not_null(strstr(scratch_text("bg.out"), "exit=6"), "%s", scratch_text("bg.out"));
	cr_assert_not_null(strstr(scratch_text("bg.out"), "the broker exited (signal 9)"), "%s",
			   scratch_text("bg.out"));
	cr_assert_not_null(strstr(scratch_text("events.jsonl"), "\"expected\":false"), "%s",
			   scratch_text("events.jsonl"));
	free(prof);
}

/* Started by root, the broker runs as `broker-user`, not as the agent's
 * user (an ordinary caller's jail and broker both run as the caller). */
Test(fetch, the_broker_runs_as_its_own_user)
{
	char *prof = write_profile("broker-user 4242\nfetch allow GET http://127.0.0.1:%d/**\n",
				   http.port);
	char script[8192], path[64], line[256];
	unsigned uid = 0, want = geteuid() == 0 ? 4242 : (unsigned)getuid();
	pid_t pid;
	FILE *f;
	int bp;

	snprintf(script, sizeof(script),
		 "$AJ fetch \"$URL/page.html\" > '%s/page'; id -u > '%s/agent-uid'; "
		 "echo done > '%s/done'; sleep 1",
		 scratch, scratch, scratch);
	pid = jail_bg(prof, script);
	bp = broker_pid();
	cr_assert(wait_for("done", "done"), "%s", scratch_text("bg.out"));
	snprintf(path, sizeof(path), "/proc/%d/status", bp);
	f = fopen(path, "r");
	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "Uid:", 4) == 0)
			uid = (unsigned)atoi(line + 4);
	fclose(f);
	cr_assert_eq(wait_status(pid), 0, "%s", scratch_text("bg.out"));
	cr_assert_eq(uid, want, "broker uid %u", uid);
	cr_assert_not_null(strstr(scratch_text("page"), "Hello from the test site"), "%s",
			   scratch_text("bg.out"));
	if (geteuid() == 0)
		cr_assert_neq(atoi(scratch_text("agent-uid")), 4242);
	free(prof);
}

/* ---- the broker against an agent that abuses it (review findings) ------------ */

Test(fetch, a_connect_flood_does_not_harm_the_broker)
{
	char *prof = write_profile("fetch allow GET http://127.0.0.1:%d/**\n", http.port);
	struct aj_result r;
	char script[8192];

	snprintf(script, sizeof(script), "python3 -B '%s' connect-flood \"$URL/bytes/10\"",
		 driver());
	in_jail(&r, prof, script);
	cr_assert_eq(r.status, 0, SHOW(r));
	cr_assert_not_null(strstr(r.out, "ok the broker serves after a CONNECT flood"), SHOW(r));
	aj_test_result_free(&r);
	free(prof);
}

/* Bodies that never end: the broker holds at most its budget (64 MiB)
 * of them, and refuses the rest. */
Test(fetch, unfinished_bodies_are_bounded)
{
	char *prof = write_profile("fetch allow POST http://127.0.0.1:%d/**\n"
				   "fetch limit rate 1000000/min\n",
				   http.port);
	char script[8192];
	long kb;

	snprintf(script, sizeof(script), "python3 -B '%s' bodies \"$URL/echo\" > '%s/drv' 2>&1",
		 driver(), scratch);
	kb = jail_broker_peak_kb(prof, script);
	cr_assert_not_null(strstr(scratch_text("drv"), "bodies refused"), "%s",
			   scratch_text("drv"));
	if (BROKER_MEMORY_MEASURED)
		cr_assert_lt(kb, 128 * 1024, "broker peak RSS %ld KiB", kb);
	free(prof);
}

/* An agent that sends requests and never reads the answers: the broker
 * stops reading it once a bounded queue is full. */
Test(fetch, a_client_that_never_reads_is_not_read)
{
	char *prof = write_profile("fetch limit rate 1000000/min\n");
	char script[8192];
	long kb;

	snprintf(script, sizeof(script), "python3 -B '%s' no-read \"$URL/denied\" > '%s/drv' 2>&1",
		 driver(), scratch);
	kb = jail_broker_peak_kb(prof, script);
	cr_assert_not_null(strstr(scratch_text("drv"), "ok the broker stopped reading"), "%s",
			   scratch_text("drv"));
	assert_broker_flat(kb);
	free(prof);
}

/* The same with every answer carrying a pipe: the answers that wait for
 * the agent hold descriptors (and bodies), so they count for more than
 * their bytes and the broker stops reading sooner; its descriptors stay
 * few (a review found 1,800 held by one such channel). */
Test(fetch, a_client_that_never_reads_its_pipes_is_not_read)
{
	char *prof = write_profile("fetch allow GET http://127.0.0.1:%d/**\n"
				   "fetch limit rate 1000000/min\n",
				   http.port);
	char script[8192], fd_dir[64];
	int bp, fds = 0;
	pid_t pid;
	DIR *d;

	snprintf(script, sizeof(script),
		 "python3 -B '%s' no-read \"$URL/bytes/1000\" pipe 5 > '%s/drv' 2>&1", driver(),
		 scratch);
	pid = jail_bg(prof, script);
	bp = broker_pid();
	cr_assert(wait_for("drv", "ok the broker stopped reading"), "%s", scratch_text("drv"));
	snprintf(fd_dir, sizeof(fd_dir), "/proc/%d/fd", bp);
	d = opendir(fd_dir);
	if (d == NULL && errno == EACCES && geteuid() != 0) {
		/* The broker is not dumpable (its memory holds secrets): its
		 * descriptors are root's to list.  The same bound is checked
		 * in the suite's run as root. */
		cr_assert_eq(wait_status(pid), 0, "%s", scratch_text("bg.out"));
		free(prof);
		cr_skip_test("the broker's /proc/%d/fd is readable by root only (it is not "
			     "dumpable); counted in the run as root",
			     bp);
	}
	cr_assert_not_null(d, "%s: %s", fd_dir, strerror(errno));
	for (struct dirent *e; (e = readdir(d)) != NULL;)
		fds += e->d_name[0] != '.';
	closedir(d);
	/* At most 64 requests in flight (the default concurrency), each with
	 * a connection and a pipe; about 16 answers with a pipe queued; the
	 * broker's own under 40.  Without the bound, about 500 here. */
	cr_assert_lt(fds, 2 * 64 + 17 + 40, "the broker holds %d descriptors; %s", fds,
		     scratch_text("drv"));
	cr_assert_eq(wait_status(pid), 0, "%s", scratch_text("bg.out"));
	free(prof);
}

/* Overlapping allow rules: every matching rule's restrictions hold,
 * whichever rule decided. */
Test(fetch, overlapping_rules_keep_every_restriction)
{
	char *prof = write_profile("fetch allow GET http://127.0.0.1:%d/bytes/** sensitive-query "
				   "response 5\n"
				   "fetch allow GET http://127.0.0.1:%d/**\n",
				   http.port, http.port);
	struct aj_result r;

	/* The token is joined in the shell: the start event records the
	 * command line as given, which must not hold it whole. */
	in_jail(&r, prof, "t=TOP; $AJ fetch \"$URL/bytes/100?token=${t}SECRET\"; echo \"exit=$?\"");
	cr_assert_not_null(strstr(r.out, "exit=5"), SHOW(r));
	cr_assert_null(strstr(scratch_text("audit.jsonl"), "TOPSECRET"), "%s",
		       scratch_text("audit.jsonl"));
	cr_assert_null(strstr(scratch_text("events.jsonl"), "TOPSECRET"), "%s",
		       scratch_text("events.jsonl"));
	aj_test_result_free(&r);
	free(prof);
}

/* A redirect's target rules apply too, and every hop is audited. */
Test(fetch, redirect_targets_bring_their_own_restrictions)
{
	char *prof = write_profile("fetch allow GET,POST http://127.0.0.1:%d/redirect/**\n"
				   "fetch allow GET http://127.0.0.1:%d/echo sensitive-query\n"
				   "fetch allow POST http://127.0.0.1:%d/echo max-body 10\n",
				   http.port, http.port, http.port);
	struct aj_result r;
	json_t *audit, *rec;
	size_t i, finals = 0;
	char want[256];

	in_jail(&r, prof,
		"$AJ fetch \"$URL/redirect/302?to=/echo%3Ftoken%3DSECRET123\" >/dev/null; "
		"echo \"exit=$?\"; "
		"head -c 1000 /dev/zero > /tmp/b; "
		"$AJ fetch --data-binary @/tmp/b \"$URL/redirect/307?to=/echo\"; echo \"exit=$?\"");
	cr_assert_not_null(strstr(r.out, "exit=0\nexit=5\n"), SHOW(r));
	cr_assert_not_null(strstr(r.err, "redirect hop 1: the request body is over the limit of "
					 "10 bytes"),
			   SHOW(r));
	cr_assert_eq(aj_server_log_count(&http, "POST /echo"), 0);
	audit = audit_records("audit.jsonl");
	/* The first URL carries the target in its query, as its rule allows;
	 * the target's own rule says its query is secret. */
	snprintf(want, sizeof(want), "%s/echo?(redacted)", http.url);
	cr_assert_str_eq(str(json_array_get(audit, 1), "url"), want);
	cr_assert_eq(json_integer_value(json_object_get(json_array_get(audit, 1), "hop")), 1);
	cr_assert_eq(json_integer_value(json_object_get(json_array_get(audit, 3), "hop")), 1);
	/* Two requests, each with a record for its redirecting hop. */
	cr_assert_eq(json_array_size(audit), 4, "%s", scratch_text("audit.jsonl"));
	json_array_foreach(audit, i, rec)
	{
		if (json_is_true(json_object_get(rec, "final")))
			finals++;
		else
			cr_assert_eq(json_integer_value(json_object_get(rec, "status")) / 100, 3);
	}
	cr_assert_eq(finals, 2);
	json_decref(audit);
	cr_assert_not_null(
		strstr(scratch_text("events.jsonl"), "\"fetches\":{\"allowed\":2,\"denied\":0}"),
		"%s", scratch_text("events.jsonl"));
	aj_test_result_free(&r);
	free(prof);
}

/* An upload refused while its body still comes, then cancelled: answered
 * once, and its slot freed (300 rounds on one channel of 256 slots). */
Test(fetch, refused_uploads_are_answered_once_and_forgotten)
{
	char *prof = write_profile("fetch allow POST http://127.0.0.1:%d/echo max-body 1K "
				   "timeout 1s\n"
				   "fetch allow GET http://127.0.0.1:%d/**\n",
				   http.port, http.port);
	struct aj_result r;
	char script[8192];

	snprintf(script, sizeof(script),
		 "python3 -B '%s' refused-uploads \"$URL/echo\" \"$URL/bytes/10\"", driver());
	in_jail(&r, prof, script);
	cr_assert_eq(r.status, 0, SHOW(r));
	cr_assert_not_null(strstr(r.out, "ok 300 refused uploads, each answered once"), SHOW(r));
	aj_test_result_free(&r);
	free(prof);
}

/* The profile-wide rate stops reading the channel that overdrew it, not
 * the others. */
Test(fetch, the_rate_throttles_only_the_channel_that_overdrew_it)
{
	char *prof = write_profile("fetch limit rate 5/min\n");
	struct aj_result r;
	char script[8192];

	snprintf(script, sizeof(script), "python3 -B '%s' throttled \"$URL/denied\"", driver());
	in_jail(&r, prof, script);
	cr_assert_eq(r.status, 0, SHOW(r));
	cr_assert_not_null(strstr(r.out, "ok another channel said HELLO"), SHOW(r));
	aj_test_result_free(&r);
	free(prof);
}

/* ---- "deliver":"pipe": bodies through a pipe, big plain ones by splice(2) ---- */

/* How many bytes scratch/NAME holds if they are a prefix of the /bytes
 * pattern (byte i = i % 251); -1 if a byte differs or it cannot be read. */
static long
pattern_length(const char *name)
{
	/* A whole number of periods: every block read starts at phase 0. */
	static unsigned char want[251 * 261], got[sizeof(want)];
	char path[4200];
	long len = 0;
	size_t n;
	FILE *f;

	for (size_t i = 0; i < sizeof(want); i++)
		want[i] = (unsigned char)(i % 251);
	snprintf(path, sizeof(path), "%s/%s", scratch, name);
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	while ((n = fread(got, 1, sizeof(got), f)) > 0) {
		if (memcmp(got, want, n) != 0) {
			fclose(f);
			return -1;
		}
		len += (long)n;
	}
	fclose(f);
	return len;
}

/* The final audit record of the request for BASE PATH (BASE: a server's
 * URL), or NULL. */
static json_t *
final_record(json_t *audit, const char *base, const char *path)
{
	char url[1024];
	json_t *rec;
	size_t i;

	snprintf(url, sizeof(url), "%s%s", base, path);
	json_array_foreach(audit, i, rec)
	{
		if (json_is_true(json_object_get(rec, "final")) &&
		    strcmp(str(rec, "url"), url) == 0)
			return rec;
	}
	return NULL;
}

/* An integer member of REC; -1 if it is absent (or not an integer). */
static long long
num(json_t *rec, const char *key)
{
	json_t *v = json_object_get(rec, key);

	return json_is_integer(v) ? (long long)json_integer_value(v) : -1;
}

/* The client port of the Nth (from 0) request whose server log line holds
 * NEEDLE: it tells the connections apart (httpd.py logs it last). */
static int
peer_port(const struct aj_server *s, const char *needle, int nth)
{
	char line[4096];
	int port = -1;
	FILE *f = fopen(s->log, "r");

	cr_assert_not_null(f, "no server log %s", s->log);
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strstr(line, needle) != NULL && nth-- == 0) {
			port = atoi(strrchr(line, ' ') + 1);
			break;
		}
	}
	fclose(f);
	return port;
}

/* The milliseconds TIMED_SH printed for LABEL ("LABEL exit=N ms=M"); -1 if none. */
static long
ms_after(const char *out, const char *label)
{
	char key[128];
	const char *p;

	snprintf(key, sizeof(key), "%s exit=", label);
	p = strstr(out, key);
	p = p ? strstr(p, " ms=") : NULL;
	return p ? atol(p + 4) : -1;
}

/* A shell function for snprintf'd scripts: `t LABEL CMD...` runs CMD,
 * then prints "LABEL exit=N ms=M" (M: its wall-clock time). */
#define TIMED_SH                                                                                   \
	"t() { l=$1; shift; s=$(date +%%s%%N); \"$@\"; e=$?; "                                     \
	"echo \"$l exit=$e ms=$((($(date +%%s%%N) - s) / 1000000))\"; }; "

#define MIB (1024L * 1024L)

/* The feature's reason to be: a big plain-HTTP body with a Content-Length
 * goes from the upstream socket into the agent's pipe by splice(2), never
 * through the broker's memory.  It arrives byte-exact, and the audit says
 * how much was spliced: all but what libcurl read before the hand-over. */
Test(fetch, a_64_mib_plain_body_is_spliced_byte_exact)
{
	char *prof =
		write_profile("fetch allow GET http://127.0.0.1:%d/** response 128M\n", http.port);
	struct aj_result r;
	char script[8192];
	json_t *audit, *rec;

	snprintf(script, sizeof(script),
		 "$AJ fetch -o '%s/big' \"$URL/bytes/67108864\"; echo \"exit=$?\"", scratch);
	in_jail(&r, prof, script);
	cr_assert_eq(r.status, 0, SHOW(r));
	cr_assert_not_null(strstr(r.out, "exit=0\n"), SHOW(r));
	cr_assert_eq(pattern_length("big"), 64 * MIB, "not the 64 MiB pattern: " SHOW(r));
	audit = audit_records("audit.jsonl");
	rec = final_record(audit, http.url, "/bytes/67108864");
	cr_assert_not_null(rec, "%s", scratch_text("audit.jsonl"));
	cr_assert_eq(num(rec, "status"), 200);
	cr_assert_str_eq(str(rec, "error"), "(none)");
	cr_assert_eq(num(rec, "bytes_out"), 64 * MIB, "%s", scratch_text("audit.jsonl"));
	cr_assert_geq(num(rec, "spliced"), 63 * MIB, "%s", scratch_text("audit.jsonl"));
	cr_assert_leq(num(rec, "spliced"), 64 * MIB, "%s", scratch_text("audit.jsonl"));
	json_decref(audit);
	aj_test_result_free(&r);
	free(prof);
}

/* Bodies that splice cannot take (small, one byte under the threshold,
 * chunked, TLS) still come through the pipe, written by the broker:
 * byte-exact, and with no "spliced" in their records. */
Test(fetch, other_bodies_come_through_the_pipe_unspliced)
{
	static const char *const hosts[] = {"127.0.0.1", NULL};
	static const struct {
		const char *file, *path;
		long size;
		bool tls;
	} cases[] = {
		{"small", "/bytes/1024", 1024, false},
		{"under", "/bytes/1048575", 1048575, false},
		{"chunked", "/bytes/3145728?chunked=1", 3 * MIB, false},
		{"tls", "/bytes/3145728", 3 * MIB, true},
	};
	char certs[4096], ca[4200], script[16384];
	struct aj_server tls = {0};
	struct aj_result r;
	json_t *audit, *rec;
	size_t len = 0;
	char *prof;

	snprintf(certs, sizeof(certs), "%s/certs", scratch);
	cr_assert_eq(aj_make_ca(certs, hosts), 0);
	cr_assert_eq(aj_server_start_http(&tls, "127.0.0.1", certs, scratch), 0);
	snprintf(ca, sizeof(ca), "%s/ca.pem", certs);
	setenv("TLS", tls.url, 1);
	prof = write_profile("fetch allow GET http://127.0.0.1:%d/**\n"
			     "fetch allow GET https://127.0.0.1:%d/**\nfetch ca %s\n",
			     http.port, tls.port, ca);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		len += (size_t)snprintf(script + len, sizeof(script) - len,
					"$AJ fetch -o '%s/%s' \"$%s%s\"; echo \"exit=$?\"; ",
					scratch, cases[i].file, cases[i].tls ? "TLS" : "URL",
					cases[i].path);
	in_jail(&r, prof, script);
	cr_assert_not_null(strstr(r.out, "exit=0\nexit=0\nexit=0\nexit=0\n"), SHOW(r));
	audit = audit_records("audit.jsonl");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cr_assert_eq(pattern_length(cases[i].file), cases[i].size, "%s:\n%s\n%s",
			     cases[i].path, r.out, r.err);
		rec = final_record(audit, cases[i].tls ? tls.url : http.url, cases[i].path);
		cr_assert_not_null(rec, "%s: %s", cases[i].path, scratch_text("audit.jsonl"));
		cr_assert_eq(num(rec, "bytes_out"), cases[i].size, "%s: %s", cases[i].path,
			     scratch_text("audit.jsonl"));
		cr_assert_null(json_object_get(rec, "spliced"), "%s: %s", cases[i].path,
			       scratch_text("audit.jsonl"));
	}
	json_decref(audit);
	aj_test_result_free(&r);
	free(prof);
	aj_server_stop(&tls);
}

/* The broker takes a spliced body's connection over from libcurl and closes
 * it at the end: two spliced downloads in a row, then small fetches, are
 * all byte-exact, and no later request comes on a spliced connection (the
 * server logs each request's client port; small fetches in a row do share
 * one).  The bodies are exactly the rule's limit: still spliced. */
Test(fetch, spliced_connections_are_not_reused)
{
	char *prof =
		write_profile("fetch allow GET http://127.0.0.1:%d/** response 64M\n", http.port);
	struct aj_result r;
	char script[8192];
	json_t *audit;
	int first, second;

	snprintf(script, sizeof(script),
		 "$AJ fetch -o '%s/a' \"$URL/bytes/67108864\"; echo \"exit=$?\"; "
		 "$AJ fetch -o '%s/b' \"$URL/bytes/67108864\"; echo \"exit=$?\"; "
		 "$AJ fetch -o '%s/c' \"$URL/bytes/1000\"; echo \"exit=$?\"; "
		 "$AJ fetch -o '%s/d' \"$URL/bytes/2000\"; echo \"exit=$?\"",
		 scratch, scratch, scratch, scratch);
	in_jail(&r, prof, script);
	cr_assert_not_null(strstr(r.out, "exit=0\nexit=0\nexit=0\nexit=0\n"), SHOW(r));
	cr_assert_eq(pattern_length("a"), 64 * MIB);
	cr_assert_eq(pattern_length("b"), 64 * MIB);
	cr_assert_eq(pattern_length("c"), 1000);
	cr_assert_eq(pattern_length("d"), 2000);
	/* Both big ones were spliced (the second too: a spliced request leaves
	 * nothing behind that spoils the next). */
	audit = audit_records("audit.jsonl");
	cr_assert_eq(json_array_size(audit), 4, "%s", scratch_text("audit.jsonl"));
	cr_assert_geq(num(json_array_get(audit, 0), "spliced"), 63 * MIB, "%s",
		      scratch_text("audit.jsonl"));
	cr_assert_geq(num(json_array_get(audit, 1), "spliced"), 63 * MIB, "%s",
		      scratch_text("audit.jsonl"));
	json_decref(audit);
	first = peer_port(&http, "GET /bytes/67108864 ", 0);
	second = peer_port(&http, "GET /bytes/67108864 ", 1);
	cr_assert_gt(first, 0);
	cr_assert_gt(second, 0);
	cr_assert_neq(first, second, "the second spliced request came on the first's connection");
	for (int i = 0; i < 2; i++) {
		const char *small = i == 0 ? "GET /bytes/1000 " : "GET /bytes/2000 ";

		cr_assert_neq(peer_port(&http, small, 0), first, "%s reused a spliced connection",
			      small);
		cr_assert_neq(peer_port(&http, small, 0), second, "%s reused a spliced connection",
			      small);
	}
	aj_test_result_free(&r);
	free(prof);
}

/* Upstream announces 8 MiB and closes after 2 MiB.  On the spliced path
 * (and, for comparison, chunked, written by the broker) the client gets
 * every byte that came, then upstream_error (7), never a success; the raw
 * protocol shows the pipe's EOF followed by ERROR; the broker goes on. */
Test(fetch, a_body_cut_short_in_the_pipe_is_an_upstream_error)
{
	char *prof = write_profile("fetch allow GET http://127.0.0.1:%d/**\n", http.port);
	struct aj_result r;
	char script[8192];
	json_t *audit, *rec;

	snprintf(script, sizeof(script),
		 "$AJ fetch -o '%s/cut' \"$URL/partial/8388608/2097152/0\"; echo \"exit=$?\"; "
		 "$AJ fetch -o '%s/cutc' \"$URL/partial/8388608/2097152/0?chunked=1\"; "
		 "echo \"exit=$?\"; "
		 "python3 -B '%s' pipe \"$URL/partial/8388608/2097153/0\" 8388608 upstream_error; "
		 "$AJ fetch \"$URL/bytes/1000\" | wc -c",
		 scratch, scratch, driver());
	in_jail(&r, prof, script);
	cr_assert_not_null(strstr(r.out, "exit=7\nexit=7\n"), SHOW(r));
	cr_assert_not_null(strstr(r.err, "agentjail fetch: upstream_error: "), SHOW(r));
	cr_assert_not_null(
		strstr(r.out,
		       "ok pipe ended after 2097153 of 8388608 bytes, then ERROR upstream_error"),
		SHOW(r));
	cr_assert_not_null(strstr(r.out, "\n1000\n"), SHOW(r));
	cr_assert_eq(pattern_length("cut"), 2 * MIB, SHOW(r));
	cr_assert_eq(pattern_length("cutc"), 2 * MIB, SHOW(r));
	audit = audit_records("audit.jsonl");
	rec = final_record(audit, http.url, "/partial/8388608/2097152/0");
	cr_assert_not_null(rec, "%s", scratch_text("audit.jsonl"));
	cr_assert_str_eq(str(rec, "error"), "upstream_error");
	cr_assert_eq(num(rec, "bytes_out"), 2 * MIB, "%s", scratch_text("audit.jsonl"));
	/* It was the spliced path that saw the cut. */
	cr_assert_gt(num(rec, "spliced"), 0, "%s", scratch_text("audit.jsonl"));
	rec = final_record(audit, http.url, "/partial/8388608/2097152/0?chunked=1");
	cr_assert_not_null(rec, "%s", scratch_text("audit.jsonl"));
	cr_assert_str_eq(str(rec, "error"), "upstream_error");
	cr_assert_null(json_object_get(rec, "spliced"), "%s", scratch_text("audit.jsonl"));
	json_decref(audit);
	aj_test_result_free(&r);
	free(prof);
}

/* Upstream sends 2 MiB of 8 MiB, then nothing for 30 s: the rule's time
 * limit (2 s) still ends the request, on the spliced path as on the
 * written one: timeout (4), soon after the limit, and ERROR after the
 * pipe's EOF on the wire. */
Test(fetch, a_body_that_stalls_in_the_pipe_ends_at_the_time_limit)
{
	char *prof =
		write_profile("fetch allow GET http://127.0.0.1:%d/** timeout 2s\n", http.port);
	struct aj_result r;
	char script[8192];
	json_t *audit, *rec;

	snprintf(script, sizeof(script),
		 TIMED_SH
		 "t spliced $AJ fetch -o '%s/st' \"$URL/partial/8388608/2097152/30\"; "
		 "t chunked $AJ fetch -o '%s/stc' \"$URL/partial/8388608/2097152/30?chunked=1\"; "
		 "python3 -B '%s' pipe \"$URL/partial/8388608/2097153/30\" 8388608 timeout; "
		 "$AJ fetch \"$URL/bytes/1000\" | wc -c",
		 scratch, scratch, driver());
	in_jail(&r, prof, script);
	cr_assert_not_null(strstr(r.out, "spliced exit=4 "), SHOW(r));
	cr_assert_not_null(strstr(r.out, "chunked exit=4 "), SHOW(r));
	cr_assert_not_null(strstr(r.err, "agentjail fetch: timeout: "), SHOW(r));
	for (int i = 0; i < 2; i++) {
		long ms = ms_after(r.out, i == 0 ? "spliced" : "chunked");

		cr_assert(ms >= 1900 && ms <= 5000, "ended after %ld ms, the limit is 2 s:\n%s\n%s",
			  ms, r.out, r.err);
	}
	cr_assert_not_null(
		strstr(r.out, "ok pipe ended after 2097153 of 8388608 bytes, then ERROR timeout"),
		SHOW(r));
	cr_assert_not_null(strstr(r.out, "\n1000\n"), SHOW(r));
	cr_assert_eq(pattern_length("st"), 2 * MIB, SHOW(r));
	cr_assert_eq(pattern_length("stc"), 2 * MIB, SHOW(r));
	audit = audit_records("audit.jsonl");
	rec = final_record(audit, http.url, "/partial/8388608/2097152/30");
	cr_assert_not_null(rec, "%s", scratch_text("audit.jsonl"));
	cr_assert_str_eq(str(rec, "error"), "timeout");
	cr_assert_gt(num(rec, "spliced"), 0, "%s", scratch_text("audit.jsonl"));
	rec = final_record(audit, http.url, "/partial/8388608/2097152/30?chunked=1");
	cr_assert_not_null(rec, "%s", scratch_text("audit.jsonl"));
	cr_assert_str_eq(str(rec, "error"), "timeout");
	json_decref(audit);
	aj_test_result_free(&r);
	free(prof);
}

/* A reader that stops: the pipe's capacity is the flow control.  Whether
 * the broker splices (plain) or writes (chunked) a 1 GiB body, it waits
 * for the pipe instead of buffering, serves another client meanwhile, and
 * once the reader is gone (the pipeline ends) it cancels and goes on. */
Test(fetch, a_pipe_reader_that_stops_keeps_the_broker_flat)
{
	char *prof = write_profile("fetch allow GET http://127.0.0.1:%d/** response 2G "
				   "timeout 120s\n",
				   http.port);
	char script[16384];
	const char *ev;
	int cancelled = 0;
	long kb;

	snprintf(script, sizeof(script),
		 "for q in '' '?chunked=1'; do "
		 "$AJ fetch \"$URL/bytes/1073741824$q\" | (sleep 3; head -c 65536 >/dev/null) & "
		 "sleep 1; $AJ fetch \"$URL/bytes/100\" | wc -c >> '%s/count'; wait; done; "
		 "$AJ fetch \"$URL/bytes/1000\" | wc -c >> '%s/count'",
		 scratch, scratch);
	kb = jail_broker_peak_kb(prof, script);
	cr_assert_str_eq(scratch_text("count"), "100\n100\n1000\n", "%s", scratch_text("bg.out"));
	assert_broker_flat(kb);
	/* Both big requests ended when their reader went away. */
	for (ev = scratch_text("events.jsonl");
	     (ev = strstr(ev, "\"error\":\"cancelled\"")) != NULL; ev++)
		cancelled++;
	cr_assert_eq(cancelled, 2, "%s", scratch_text("events.jsonl"));
	free(prof);
}

/* The agent closes the pipe before the end: the request is cancelled as by
 * CANCEL (nothing more is sent for it, the audit says "cancelled"), and the
 * channel stays usable.  For each of PATHS (under the test server), the
 * driver reads READ bytes, closes the pipe and keeps its channel HOLD
 * seconds more: a request ended by the channel's close would be
 * "cancelled" too, but only after that, so it must end within MAX_MS. */
static void
assert_closing_the_pipe_cancels(const char *const paths[2], long read, int hold, long max_ms,
				const char *profile_text)
{
	char *prof = write_profile(profile_text, http.port);
	char script[8192], want[512], both[2 * 512 + 8];
	struct aj_result r;
	json_t *audit;

	snprintf(script, sizeof(script),
		 "d='%s'; for p in '%s' '%s'; do python3 -B \"$d\" pipe-close \"$URL$p\" "
		 "\"$URL/bytes/5000\" %ld %d; done; $AJ fetch \"$URL/bytes/1000\" | wc -c",
		 driver(), paths[0], paths[1], read, hold);
	in_jail(&r, prof, script);
	cr_assert_eq(r.status, 0, SHOW(r));
	snprintf(want, sizeof(want),
		 "ok pipe closed after %ld bytes; nothing more came for it; the channel still "
		 "serves\n",
		 read);
	snprintf(both, sizeof(both), "%s%s1000\n", want, want);
	cr_assert_not_null(strstr(r.out, both), SHOW(r));
	audit = audit_records("audit.jsonl");
	for (int i = 0; i < 2; i++) {
		json_t *rec = final_record(audit, http.url, paths[i]);

		cr_assert_not_null(rec, "%s: %s", paths[i], scratch_text("audit.jsonl"));
		cr_assert_str_eq(str(rec, "error"), "cancelled", "%s: %s", paths[i],
				 scratch_text("audit.jsonl"));
		cr_assert_lt(num(rec, "duration_ms"), max_ms,
			     "%s: not ended by the pipe's close: %s", paths[i],
			     scratch_text("audit.jsonl"));
	}
	json_decref(audit);
	aj_test_result_free(&r);
	free(prof);
}

/* While the body flows, on the spliced path and on the written one. */
Test(fetch, closing_the_pipe_early_cancels_the_request)
{
	static const char *const paths[2] = {"/bytes/1073741824", "/bytes/1073741824?chunked=1"};

	assert_closing_the_pipe_cancels(paths, 100000, 3, 2000,
					"fetch allow GET http://127.0.0.1:%d/** response 2G "
					"timeout 60s\n");
}

/* While upstream sends nothing (it stalls after 2 MiB, which the agent has
 * read): the broker has nothing to write, so only watching the pipe tells
 * it the reader is gone.  It must cancel then, not hold the request (and
 * its upstream connection) until the rule's limit (20 s) or the channel's
 * end. */
Test(fetch, closing_the_pipe_while_upstream_idles_cancels_at_once)
{
	static const char *const paths[2] = {"/partial/8388608/2097152/30",
					     "/partial/8388608/2097152/30?chunked=1"};

	assert_closing_the_pipe_cancels(paths, 2097152, 5, 4000,
					"fetch allow GET http://127.0.0.1:%d/** timeout 20s\n");
}

/* A body the agent never reads from its pipe still ends at the time limit,
 * and its slot with it (concurrency 1: the next request needs it): a
 * chunked body just over the pipe's size (libcurl is done with it while
 * the rest waits for room) and a spliced one (the pipe is full).  Found by
 * a review: the wait after libcurl was done had no bound. */
Test(fetch, an_unread_pipe_ends_at_the_time_limit)
{
	char *prof = write_profile("fetch allow GET http://127.0.0.1:%d/** timeout 2s "
				   "concurrency 1\n",
				   http.port);
	static const char *const paths[2] = {"/bytes/1050000?chunked=1", "/bytes/8388608"};
	struct aj_result r;
	char script[8192];
	json_t *audit;

	snprintf(script, sizeof(script),
		 "d='%s'; for p in '%s' '%s'; do python3 -B \"$d\" pipe-unread \"$URL$p\" "
		 "\"$URL/bytes/1000\" 8; done",
		 driver(), paths[0], paths[1]);
	in_jail(&r, prof, script);
	cr_assert_eq(r.status, 0, SHOW(r));
	cr_assert_not_null(strstr(r.out, "ok unread pipe ended by the time limit; the next "
					 "request served\nok unread pipe ended by the time limit; "
					 "the next request served\n"),
			   SHOW(r));
	audit = audit_records("audit.jsonl");
	for (int i = 0; i < 2; i++) {
		json_t *rec = final_record(audit, http.url, paths[i]);

		cr_assert_not_null(rec, "%s: %s", paths[i], scratch_text("audit.jsonl"));
		cr_assert_str_eq(str(rec, "error"), "timeout", "%s: %s", paths[i],
				 scratch_text("audit.jsonl"));
		cr_assert_lt(num(rec, "duration_ms"), 4000, "%s: %s", paths[i],
			     scratch_text("audit.jsonl"));
	}
	json_decref(audit);
	aj_test_result_free(&r);
	free(prof);
}

/* Answers without a body over the pipe end at once and empty: HEAD of a
 * body big enough to splice (a broker that spliced it would wait for bytes
 * that never come), and 204.  A Content-Length over the rule's limit is
 * refused before any answer: too_large (5), nothing written, and on the
 * wire a plain ERROR without a pipe. */
Test(fetch, empty_and_refused_bodies_over_the_pipe)
{
	char *prof = write_profile("fetch allow GET,HEAD http://127.0.0.1:%d/** response 4M "
				   "timeout 5s\n",
				   http.port);
	struct aj_result r;
	char script[8192];
	json_t *audit, *rec;
	struct stat st;
	char path[4200];

	snprintf(script, sizeof(script),
		 "$AJ fetch -X HEAD -o '%s/head' \"$URL/bytes/2097152\"; echo \"exit=$?\"; "
		 "$AJ fetch -o '%s/none' \"$URL/status/204\"; echo \"exit=$?\"; "
		 "$AJ fetch -o '%s/large' \"$URL/bytes/8388608\"; echo \"exit=$?\"; "
		 "python3 -B '%s' pipe-refused \"$URL/bytes/8388609\" too_large",
		 scratch, scratch, scratch, driver());
	in_jail(&r, prof, script);
	cr_assert_not_null(strstr(r.out, "exit=0\nexit=0\nexit=5\n"
					 "ok pipe refused with too_large before any answer\n"),
			   SHOW(r));
	cr_assert_not_null(
		strstr(r.err,
		       "agentjail fetch: too_large: the response is over the limit of 4194304"),
		SHOW(r));
	for (int i = 0; i < 3; i++) {
		const char *name = i == 0 ? "head" : i == 1 ? "none" : "large";

		snprintf(path, sizeof(path), "%s/%s", scratch, name);
		cr_assert_eq(stat(path, &st), 0, "%s", name);
		cr_assert_eq(st.st_size, 0, "%s: %lld bytes", name, (long long)st.st_size);
	}
	audit = audit_records("audit.jsonl");
	rec = final_record(audit, http.url, "/bytes/2097152");
	cr_assert_not_null(rec, "%s", scratch_text("audit.jsonl"));
	cr_assert_str_eq(str(rec, "method"), "HEAD");
	cr_assert_eq(num(rec, "status"), 200);
	cr_assert_eq(num(rec, "bytes_out"), 0, "%s", scratch_text("audit.jsonl"));
	cr_assert_null(json_object_get(rec, "spliced"), "%s", scratch_text("audit.jsonl"));
	rec = final_record(audit, http.url, "/status/204");
	cr_assert_not_null(rec, "%s", scratch_text("audit.jsonl"));
	cr_assert_eq(num(rec, "status"), 204);
	cr_assert_eq(num(rec, "bytes_out"), 0, "%s", scratch_text("audit.jsonl"));
	rec = final_record(audit, http.url, "/bytes/8388608");
	cr_assert_not_null(rec, "%s", scratch_text("audit.jsonl"));
	cr_assert_str_eq(str(rec, "error"), "too_large");
	cr_assert_null(json_object_get(rec, "spliced"), "%s", scratch_text("audit.jsonl"));
	json_decref(audit);
	aj_test_result_free(&r);
	free(prof);
}

/* The protocol of "deliver":"pipe", seen raw: one fd, a pipe's read end,
 * with the RESPONSE; the body through it and in no BODY frame; no WINDOW
 * needed; the write end closed, then BODY END with an empty payload; the
 * announced length.  Spliced, written (chunked, small) and TLS alike. */
Test(fetch, the_pipe_protocol_holds_for_every_kind_of_body)
{
	static const char *const hosts[] = {"127.0.0.1", NULL};
	char certs[4096], ca[4200], script[16384];
	struct aj_server tls = {0};
	struct aj_result r;
	char *prof;

	snprintf(certs, sizeof(certs), "%s/certs", scratch);
	cr_assert_eq(aj_make_ca(certs, hosts), 0);
	cr_assert_eq(aj_server_start_http(&tls, "127.0.0.1", certs, scratch), 0);
	snprintf(ca, sizeof(ca), "%s/ca.pem", certs);
	setenv("TLS", tls.url, 1);
	prof = write_profile("fetch allow GET http://127.0.0.1:%d/** response 128M\n"
			     "fetch allow GET https://127.0.0.1:%d/**\nfetch ca %s\n",
			     http.port, tls.port, ca);
	snprintf(script, sizeof(script),
		 "d='%s'; python3 -B \"$d\" pipe \"$URL/bytes/67108864\" 67108864; "
		 "python3 -B \"$d\" pipe \"$URL/bytes/3145728?chunked=1\" 3145728; "
		 "python3 -B \"$d\" pipe \"$URL/bytes/1000\" 1000; "
		 "python3 -B \"$d\" pipe \"$URL/bytes/0\" 0; "
		 "python3 -B \"$d\" pipe \"$TLS/bytes/3145728\" 3145728",
		 driver());
	in_jail(&r, prof, script);
	cr_assert_eq(r.status, 0, SHOW(r));
	cr_assert_not_null(strstr(r.out, "ok pipe of 67108864 bytes, then BODY END empty\n"
					 "ok pipe of 3145728 bytes, then BODY END empty\n"
					 "ok pipe of 1000 bytes, then BODY END empty\n"
					 "ok pipe of 0 bytes, then BODY END empty\n"
					 "ok pipe of 3145728 bytes, then BODY END empty\n"),
			   SHOW(r));
	aj_test_result_free(&r);
	free(prof);
	aj_server_stop(&tls);
}

/* `agentjail fetch` now takes the pipe, so the 256 MiB test above measures
 * that path; this twin keeps the frames path (BODY frames and WINDOW
 * credit, as the Python client uses it) under the same memory bound. */
Test(fetch, a_256_mib_download_by_frames_streams_with_flat_broker_memory)
{
	char *prof = write_profile("fetch allow GET http://127.0.0.1:%d/** response 512M "
				   "timeout 120s\n",
				   http.port);
	char script[16384];
	long kb;

	snprintf(script, sizeof(script),
		 "python3 -B '%s' frames \"$URL/bytes/268435456\" 268435456 > '%s/drv' 2>&1",
		 driver(), scratch);
	kb = jail_broker_peak_kb(prof, script);
	cr_assert_not_null(strstr(scratch_text("drv"), "ok 268435456 bytes in BODY frames"), "%s",
			   scratch_text("drv"));
	assert_broker_flat(kb);
	free(prof);
}

/* Splicing starts where the body starts, whatever came before on the
 * connection: after a redirect hop (whose own body is dropped), and after
 * an uploaded request body. */
Test(fetch, bodies_after_a_redirect_or_an_upload_are_spliced_byte_exact)
{
	char *prof = write_profile("fetch allow GET,POST http://127.0.0.1:%d/** response 128M\n",
				   http.port);
	struct aj_result r;
	char script[8192];
	json_t *audit, *rec;

	snprintf(script, sizeof(script),
		 "$AJ fetch -o '%s/redir' \"$URL/redirect/302?to=/bytes/33554432\"; "
		 "echo \"exit=$?\"; "
		 "head -c 300000 /dev/zero > /tmp/up; "
		 "$AJ fetch --data-binary @/tmp/up -o '%s/post' \"$URL/bytes/33554433\"; "
		 "echo \"exit=$?\"",
		 scratch, scratch);
	in_jail(&r, prof, script);
	cr_assert_not_null(strstr(r.out, "exit=0\nexit=0\n"), SHOW(r));
	cr_assert_eq(pattern_length("redir"), 32 * MIB, SHOW(r));
	cr_assert_eq(pattern_length("post"), 32 * MIB + 1, SHOW(r));
	cr_assert_eq(aj_server_log_count(&http, "POST /bytes/33554433"), 1);
	audit = audit_records("audit.jsonl");
	rec = final_record(audit, http.url, "/bytes/33554432");
	cr_assert_not_null(rec, "%s", scratch_text("audit.jsonl"));
	cr_assert_eq(num(rec, "hop"), 1, "%s", scratch_text("audit.jsonl"));
	cr_assert_eq(num(rec, "bytes_out"), 32 * MIB, "%s", scratch_text("audit.jsonl"));
	cr_assert_geq(num(rec, "spliced"), 31 * MIB, "%s", scratch_text("audit.jsonl"));
	rec = final_record(audit, http.url, "/bytes/33554433");
	cr_assert_not_null(rec, "%s", scratch_text("audit.jsonl"));
	cr_assert_eq(num(rec, "bytes_in"), 300000, "%s", scratch_text("audit.jsonl"));
	cr_assert_eq(num(rec, "bytes_out"), 32 * MIB + 1, "%s", scratch_text("audit.jsonl"));
	cr_assert_geq(num(rec, "spliced"), 31 * MIB, "%s", scratch_text("audit.jsonl"));
	json_decref(audit);
	aj_test_result_free(&r);
	free(prof);
}

/* Several spliced downloads at once, on connections that libcurl has
 * just used for small fetches (8 clients in parallel, each fetching small,
 * big, small, big): every body byte-exact and in its own file, and every
 * big one spliced, whichever connection it came on. */
Test(fetch, parallel_spliced_downloads_on_reused_connections)
{
	char *prof =
		write_profile("fetch allow GET http://127.0.0.1:%d/** response 64M\n", http.port);
	struct aj_result r;
	char script[8192];
	json_t *audit;

	snprintf(script, sizeof(script),
		 "cd '%s'; for i in 1 2 3 4 5 6 7 8; do (for j in 1 2; do "
		 "$AJ fetch -o small$i$j \"$URL/bytes/$((1000 + 10 * i + j))\"; echo \"exit=$?\"; "
		 "$AJ fetch -o big$i$j \"$URL/bytes/$((8388608 + 10 * i + j))\"; echo \"exit=$?\"; "
		 "done) & done; wait",
		 scratch);
	in_jail(&r, prof, script);
	cr_assert_eq(r.status, 0, SHOW(r));
	cr_assert_eq(strlen(r.out), 32 * strlen("exit=0\n"), SHOW(r));
	cr_assert_null(strstr(r.out, "exit=1"), SHOW(r));
	for (const char *p = r.out; *p != '\0'; p += strlen("exit=0\n"))
		cr_assert_eq(strncmp(p, "exit=0\n", 7), 0, SHOW(r));
	audit = audit_records("audit.jsonl");
	for (int i = 1; i <= 8; i++) {
		for (int j = 1; j <= 2; j++) {
			char name[32], path[64];
			json_t *rec;

			snprintf(name, sizeof(name), "small%d%d", i, j);
			cr_assert_eq(pattern_length(name), 1000 + 10 * i + j, "%s", name);
			snprintf(name, sizeof(name), "big%d%d", i, j);
			cr_assert_eq(pattern_length(name), 8 * MIB + 10 * i + j, "%s", name);
			snprintf(path, sizeof(path), "/bytes/%ld", 8 * MIB + 10 * i + j);
			rec = final_record(audit, http.url, path);
			cr_assert_not_null(rec, "%s: %s", path, scratch_text("audit.jsonl"));
			cr_assert_geq(num(rec, "spliced"), 7 * MIB, "%s not spliced: %s", path,
				      json_dumps(rec, JSON_COMPACT));
		}
	}
	json_decref(audit);
	aj_test_result_free(&r);
	free(prof);
}

/* CANCEL works on a piped request as on any other, spliced or written:
 * nothing more for it, the broker lets go of the pipe (EOF), the audit
 * says "cancelled" at once, and the channel goes on. */
Test(fetch, cancel_ends_a_piped_request)
{
	char *prof =
		write_profile("fetch allow GET http://127.0.0.1:%d/** response 2G\n", http.port);
	struct aj_result r;
	char script[8192];
	json_t *audit, *rec;

	snprintf(script, sizeof(script),
		 "d='%s'; python3 -B \"$d\" pipe-cancel \"$URL/bytes/1073741824\" "
		 "\"$URL/bytes/5000\"; "
		 "python3 -B \"$d\" pipe-cancel \"$URL/bytes/1073741824?chunked=1\" "
		 "\"$URL/bytes/5000\"",
		 driver());
	in_jail(&r, prof, script);
	cr_assert_eq(r.status, 0, SHOW(r));
	cr_assert_str_eq(r.out,
			 "ok pipe cancelled; EOF; the channel still serves\n"
			 "ok pipe cancelled; EOF; the channel still serves\n",
			 SHOW(r));
	audit = audit_records("audit.jsonl");
	for (int i = 0; i < 2; i++) {
		const char *path = i == 0 ? "/bytes/1073741824" : "/bytes/1073741824?chunked=1";

		rec = final_record(audit, http.url, path);
		cr_assert_not_null(rec, "%s: %s", path, scratch_text("audit.jsonl"));
		cr_assert_str_eq(str(rec, "error"), "cancelled", "%s: %s", path,
				 scratch_text("audit.jsonl"));
		/* By the CANCEL, not by the channel's end (a second later). */
		cr_assert_lt(num(rec, "duration_ms"), 1000, "%s: %s", path,
			     scratch_text("audit.jsonl"));
	}
	json_decref(audit);
	aj_test_result_free(&r);
	free(prof);
}
