/*
 * Integration tests: `socket inet loopback`, the socket mode of the
 * profiles for tools and agents (docs/PROFILES.md).
 *
 * Inside a real jail the agent's own servers work on the jail's loopback
 * (127.0.0.1 and ::1, with real programs: python3's http.server and
 * urllib), the host's loopback is not the jail's (a server the test starts
 * on the host's 127.0.0.1 is not reached), and every call that names a
 * destination outside the jail's loopback (connect, sendto, sendmsg,
 * sendmmsg; TCP and UDP; IPv4 and IPv6) fails with the kernel's own answer
 * and is reported exactly once with the decoded address and port.  Raw and
 * packet sockets stay refused and reported; `on-violation kill` ends the
 * jail at the first attempt.
 *
 * Suite: loopback.
 */
#include "config.h"

#include <agentjail/agentjail.h>
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "event-stream.h"
#include "harness.h"

#define TRY aj_test_bin("tests/integration/try")

/* Self-contained: the shipped profiles may be unreadable to the
 * unprivileged run (see run-suite). */
#define PROFILE_BODY                                                                               \
	"hostname agentjail\nuser nobody\nenv keep PATH HOME LANG TERM\nrlimit core 0\n"           \
	"socket inet loopback\n"

#define SHOWFMT "status %d\n--- stdout:\n%s\n--- stderr:\n%s"
#define SHOWARGS(r) (r).status, (r).out, (r).err

static char *scratch;
static char *prof;      /* loopback mode */
static char *prof_kill; /* the same with `on-violation kill` */
static char *events;    /* SCRATCH/events.jsonl */

static void
setup(void)
{
	scratch = aj_test_scratch();
	prof = aj_test_write_file(scratch, "loopback.profile", PROFILE_BODY);
	prof_kill = aj_test_write_file(scratch, "kill.profile", PROFILE_BODY "on-violation kill\n");
	if (asprintf(&events, "%s/events.jsonl", scratch) < 0)
		abort();
}

static void
teardown(void)
{
	aj_test_rmrf(scratch);
	free(scratch);
	free(prof);
	free(prof_kill);
	free(events);
}

TestSuite(loopback, .init = setup, .fini = teardown, .timeout = 60);

/* Run sh -c CMD under PROFILE with the events to EVENTS; the stream is
 * parsed and checked into S (stream_free it). */
static void
run_sh(struct aj_result *r, struct stream *s, char **text, const char *profile, const char *cmd)
{
	unlink(events);
	aj_test_run(r, -1, "--profile", profile, "--events", events, "--", "sh", "-c", cmd, NULL);
	*text = aj_test_slurp(events);
	stream_parse(s, *text, false);
}

/* CMD runs to its end under `on-violation kill`, prints OUT, and raises
 * no violation. */
static void
assert_quiet(const char *cmd, const char *out)
{
	struct aj_result r;
	struct stream s;
	char *text;

	run_sh(&r, &s, &text, prof_kill, cmd);
	cr_assert_eq(r.status, 0, "%s: " SHOWFMT, cmd, SHOWARGS(r));
	cr_assert_str_eq(r.out, out, "%s: " SHOWFMT, cmd, SHOWARGS(r));
	cr_assert_eq(count_type(&s, "violation"), 0, "%s:\n%s", cmd, text);
	cr_assert_eq(int_of(exit_event(&s), "violations", text), 0, "%s", text);
	stream_free(&s);
	free(text);
	aj_test_result_free(&r);
}

/* ---- 1. the jail's own loopback works, quietly ------------------------------ */

Test(loopback, own_tcp_servers_work_on_both_loopback_addresses)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "%s tcp-local 127.0.0.1 && %s tcp-local ::1", TRY, TRY);
	assert_quiet(cmd, "tcp-local ok\ntcp-local ok\n");
}

/* A real server and a real client, as a new user's trial did: python3's
 * http.server on 127.0.0.1 (EPERM before this mode) and urllib. */
Test(loopback, a_python_http_server_and_client_work)
{
	assert_quiet("cd \"$(mktemp -d)\" && echo hello > index.html && "
		     "python3 -c \"import http.server, threading, urllib.request\n"
		     "s = http.server.ThreadingHTTPServer(('127.0.0.1', 0), "
		     "http.server.SimpleHTTPRequestHandler)\n"
		     "threading.Thread(target=s.serve_forever, daemon=True).start()\n"
		     "u = 'http://127.0.0.1:%d/index.html' % s.server_address[1]\n"
		     "print(urllib.request.urlopen(u, timeout=10).read().decode(), end='')\n"
		     "s.shutdown()\" 2>/dev/null",
		     "hello\n");
}

/* Library probes that raised false alarms in the strict mode: urllib3's
 * AF_INET6 check (pip, venv), glibc's lookup sorting (UDP connect). */
Test(loopback, library_probes_raise_no_violation)
{
	assert_quiet("python3 -c \"import socket; s = socket.socket(socket.AF_INET6); "
		     "s.bind(('::1', 0)); print('v6')\" && getent ahosts localhost >/dev/null && "
		     "echo sorted",
		     "v6\nsorted\n");
}

/* A UDP exchange on the jail's loopback (a local DNS stub, a test
 * harness), sendto with a destination included. */
Test(loopback, udp_on_the_jails_loopback_is_quiet)
{
	assert_quiet("python3 -c \"import socket\n"
		     "a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); a.bind(('127.0.0.1', 0))\n"
		     "b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
		     "b.sendto(b'ping', a.getsockname())\n"
		     "print(a.recv(16).decode())\"",
		     "ping\n");
}

/* The jail's own name resolves from its hosts file: a program that looks
 * it up (git for a committer without an address, getfqdn) sends no DNS
 * query, which the jail could not answer and would report. */
Test(loopback, the_jails_own_name_resolves_without_a_query)
{
	assert_quiet("getent ahostsv4 agentjail >/dev/null && getent ahostsv6 agentjail >/dev/null && "
		     "echo resolves && "
		     "python3 -c \"import socket; print(socket.getfqdn())\" && "
		     "{ echo x >> /etc/hosts; } 2>/dev/null || echo read-only",
		     "resolves\nagentjail\nread-only\n");
}

/* ---- 2. the host's loopback is not the jail's -------------------------------- */

Test(loopback, a_server_on_the_hosts_loopback_is_not_reached)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	struct aj_result r;
	struct stream s;
	char cmd[512], *text;
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(lfd, 0);
	cr_assert_eq(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(listen(lfd, 8), 0);
	cr_assert_eq(getsockname(lfd, (struct sockaddr *)&sa, &len), 0);
	snprintf(cmd, sizeof(cmd), "%s connect-tcp 127.0.0.1 %u", TRY, ntohs(sa.sin_port));
	run_sh(&r, &s, &text, prof, cmd);
	/* The jail's own lo answers: nothing listens there. */
	cr_assert_str_eq(r.out, "connect-tcp ECONNREFUSED\n", SHOWFMT, SHOWARGS(r));
	cr_assert_eq(count_type(&s, "violation"), 0, "%s", text);
	close(lfd);
	stream_free(&s);
	free(text);
	aj_test_result_free(&r);
}

/* ---- 3. a destination outside: the kernel's answer, one report ---------------- */

struct outside {
	const char *verb, *ip, *port;
	const char *answer;  /* what the agent sees */
	int nr;              /* the reported call */
	const char *summary; /* exact */
	const char *args;    /* members of "args" */
};

static const struct outside outside[] = {
	{"connect-tcp", "192.0.2.1", "443", "ENETUNREACH", SYS_connect, "connect 192.0.2.1:443",
	 "{\"family\":\"AF_INET\",\"type\":\"SOCK_STREAM\",\"address\":\"192.0.2.1\",\"port\":443}"},
	{"connect-tcp", "2001:db8::1", "443", "ENETUNREACH", SYS_connect,
	 "connect [2001:db8::1]:443",
	 "{\"family\":\"AF_INET6\",\"type\":\"SOCK_STREAM\",\"address\":\"2001:db8::1\","
	 "\"port\":443}"},
	/* A private address is outside the jail too. */
	{"connect-tcp", "10.255.255.1", "22", "ENETUNREACH", SYS_connect, "connect 10.255.255.1:22",
	 "{\"address\":\"10.255.255.1\",\"port\":22}"},
	/* A resolver asking a server outside (it would send once connected). */
	{"connect-udp", "192.0.2.53", "53", "ENETUNREACH", SYS_connect, "connect 192.0.2.53:53",
	 "{\"family\":\"AF_INET\",\"type\":\"SOCK_DGRAM\",\"address\":\"192.0.2.53\",\"port\":53}"},
	{"sendto-udp", "192.0.2.1", "53", "ENETUNREACH", SYS_sendto, "sendto 192.0.2.1:53",
	 "{\"type\":\"SOCK_DGRAM\",\"address\":\"192.0.2.1\",\"port\":53}"},
	{"sendto-udp", "2001:db8::53", "53", "ENETUNREACH", SYS_sendto, "sendto [2001:db8::53]:53",
	 "{\"family\":\"AF_INET6\",\"address\":\"2001:db8::53\",\"port\":53}"},
	{"sendmsg-udp", "192.0.2.1", "123", "ENETUNREACH", SYS_sendmsg, "sendmsg 192.0.2.1:123",
	 "{\"type\":\"SOCK_DGRAM\",\"address\":\"192.0.2.1\",\"port\":123}"},
	{"sendmmsg-udp", "192.0.2.1", "9", "ENETUNREACH", SYS_sendmmsg, "sendmmsg 192.0.2.1:9",
	 "{\"type\":\"SOCK_DGRAM\",\"address\":\"192.0.2.1\",\"port\":9}"},
};

#define N_OUTSIDE (sizeof(outside) / sizeof(outside[0]))

static void
free_params(struct criterion_test_params *p)
{
	cr_free(p->params);
}

ParameterizedTestParameters(loopback, a_destination_outside_is_reported_once)
{
	size_t *idx = cr_malloc(N_OUTSIDE * sizeof(*idx));

	for (size_t i = 0; i < N_OUTSIDE; i++)
		idx[i] = i;
	return cr_make_param_array(size_t, idx, N_OUTSIDE, free_params);
}

ParameterizedTest(size_t *idx, loopback, a_destination_outside_is_reported_once)
{
	const struct outside *o = &outside[*idx];
	struct aj_result r;
	struct stream s;
	char cmd[512], want[256], *text;
	json_t *v, *counts;

	snprintf(cmd, sizeof(cmd), "%s %s %s %s", TRY, o->verb, o->ip, o->port);
	run_sh(&r, &s, &text, prof, cmd);
	snprintf(want, sizeof(want), "%s %s\n", o->verb, o->answer);
	cr_assert_str_eq(r.out, want, "%s: " SHOWFMT, cmd, SHOWARGS(r));
	snprintf(want, sizeof(want), "agentjail: 1 violation blocked (%s x1)", o->summary);
	cr_assert(aj_test_has_line(r.err, want), "want the line '%s': " SHOWFMT, want, SHOWARGS(r));

	v = only(&s, "violation");
	cr_assert_eq(count_type(&s, "violation_repeated"), 0, "%s", text);
	cr_assert_str_eq(str_of(v, "summary"), o->summary, "%s", text);
	cr_assert_eq(int_of(v, "nr", text), o->nr, "%s", text);
	cr_assert_str_eq(str_of(v, "action"), "deny", "%s", text);
	assert_has_members(json_object_get(v, "args"), o->args, text);
	cr_assert_eq(int_of(exit_event(&s), "violations", text), 1, "%s", text);
	counts = json_object_get(exit_event(&s), "violation_counts");
	cr_assert_eq(json_integer_value(json_object_get(counts, o->summary)), 1, "%s", text);
	stream_free(&s);
	free(text);
	aj_test_result_free(&r);
}

/* glibc connects a UDP socket to each answer of a lookup to sort them;
 * such a connect sends nothing, and only port 53 is a resolver's. */
Test(loopback, a_udp_connect_outside_off_port_53_is_not_reported)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "%s connect-udp 192.0.2.1 443; %s connect-udp 2001:db8::1 80; exit 0",
		 TRY, TRY);
	assert_quiet(cmd, "connect-udp ENETUNREACH\nconnect-udp ENETUNREACH\n");
}

/* ---- 4. what stays refused, and the kill -------------------------------------- */

Test(loopback, raw_and_packet_sockets_stay_refused_and_reported)
{
	struct aj_result r;
	struct stream s;
	char cmd[512], *text;
	json_t *counts;

	snprintf(cmd, sizeof(cmd), "%s socket-raw; %s socket-packet", TRY, TRY);
	run_sh(&r, &s, &text, prof, cmd);
	cr_assert_str_eq(r.out, "socket-raw EPERM\nsocket-packet EPERM\n", SHOWFMT, SHOWARGS(r));
	counts = json_object_get(exit_event(&s), "violation_counts");
	cr_assert_eq(json_integer_value(json_object_get(counts, "socket AF_INET")), 1, "%s", text);
	cr_assert_eq(json_integer_value(json_object_get(counts, "socket AF_PACKET")), 1, "%s",
		     text);
	cr_assert_eq(int_of(exit_event(&s), "violations", text), 2, "%s", text);
	stream_free(&s);
	free(text);
	aj_test_result_free(&r);
}

Test(loopback, on_violation_kill_ends_the_jail_at_a_connect_outside)
{
	struct aj_result r;
	struct stream s;
	char cmd[512], *text;
	json_t *v;

	snprintf(cmd, sizeof(cmd), "%s connect-tcp 192.0.2.1 443; echo survived", TRY);
	run_sh(&r, &s, &text, prof_kill, cmd);
	cr_assert_eq(r.status, AJ_EXIT_VIOLATION, SHOWFMT, SHOWARGS(r));
	cr_assert_str_eq(r.out, "", "the agent ran on after the attempt: " SHOWFMT, SHOWARGS(r));
	v = only(&s, "violation");
	cr_assert_str_eq(str_of(v, "summary"), "connect 192.0.2.1:443", "%s", text);
	cr_assert_str_eq(str_of(v, "action"), "kill", "%s", text);
	cr_assert_eq(int_of(exit_event(&s), "status", text), AJ_EXIT_VIOLATION, "%s", text);
	stream_free(&s);
	free(text);
	aj_test_result_free(&r);
}
