/*
 * Integration tests: loud violations and the event stream.
 *
 * Escape attempts made inside a real jail (through the static `try`
 * helper) must each reach the supervisor, be refused with EPERM, and be
 * written as exactly one `violation` event; the stream (start first, exit
 * last, one jail id, seq 1..n) must stay complete and bounded whatever the
 * agent does: loop a million times, close its output, die by a signal.
 * `on-violation kill` ends the whole jail.  Every line is parsed with
 * jansson and checked against the stream's invariants (stream_parse), and
 * once more by the stdlib-only tests/integration/check-events.py.
 *
 * Suite: violations.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <agentjail/agentjail.h>

#include "event-stream.h"
#include "harness.h"

#define TRY aj_test_bin("tests/integration/try")
#define AJ aj_test_bin("agentjail")

/* Self-contained: the shipped profiles may be unreadable to the
 * unprivileged run (see run-suite). */
#define PROFILE_BODY                                                                               \
	"hostname agentjail\nuser nobody\nenv keep PATH HOME LANG TERM\nrlimit core 0\n"

#define SHOWFMT "status %d\n--- stdout:\n%s\n--- stderr:\n%s"
#define SHOWARGS(r) (r).status, (r).out, (r).err

/* The script, embedded at build time: the copy used when the source tree
 * cannot be read at run time (run-suite's unprivileged run of a tree in a
 * private home).  The source file is preferred: it is never stale. */
__asm__(".pushsection .rodata\n"
	".globl aj_test_check_events_py\n"
	".hidden aj_test_check_events_py\n"
	"aj_test_check_events_py:\n"
	".incbin \"" AJ_SRCDIR "/tests/integration/check-events.py\"\n"
	".byte 0\n"
	".popsection\n");
extern const char aj_test_check_events_py[] __attribute__((visibility("hidden")));

static char *scratch;
static char *prof;      /* the default policy */
static char *prof_kill; /* the same with `on-violation kill` */
static char *prof_unix; /* the same with `socket unix allow` */
static char *events;    /* SCRATCH/events.jsonl */

static void
setup(void)
{
	scratch = aj_test_scratch();
	prof = aj_test_write_file(scratch, "jail.profile", PROFILE_BODY);
	prof_kill = aj_test_write_file(scratch, "kill.profile", PROFILE_BODY "on-violation kill\n");
	prof_unix = aj_test_write_file(scratch, "unix.profile", PROFILE_BODY "socket unix allow\n");
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
	free(prof_unix);
	free(events);
}

TestSuite(violations, .init = setup, .fini = teardown, .timeout = 60);

/* ---- helpers --------------------------------------------------------------- */

static char *
path_in(const char *dir, const char *name)
{
	char *p;

	cr_assert_geq(asprintf(&p, "%s/%s", dir, name), 0);
	return p;
}

static bool
has_substr(const char *text, const char *needle)
{
	return strstr(text, needle) != NULL;
}

/* ---- 1. each escape attempt: one violation event ----------------------------- */

struct attempt {
	const char *verb;    /* try VERB */
	const char *syscall; /* "syscall" */
	int nr;              /* "nr" */
	const char *summary; /* "summary", exact */
	const char *args;    /* members "args" must have (JSON object text) */
	const char *arg0;    /* raw-args calls: args.args[0], or NULL: any */
};

static const struct attempt attempts[] = {
	{"socket-inet", "socket", SYS_socket, "socket AF_INET",
	 "{\"family\":\"AF_INET\",\"type\":\"SOCK_STREAM\",\"flags\":[],\"protocol\":0}", NULL},
	{"socket-inet6", "socket", SYS_socket, "socket AF_INET6",
	 "{\"family\":\"AF_INET6\",\"type\":\"SOCK_STREAM\",\"flags\":[],\"protocol\":0}", NULL},
	{"socket-packet", "socket", SYS_socket, "socket AF_PACKET",
	 "{\"family\":\"AF_PACKET\",\"type\":\"SOCK_RAW\",\"flags\":[],\"protocol\":0}", NULL},
	/* (NETLINK_ROUTE, glibc's interface listing, is refused without a
	 * violation: netlink_route_is_refused_without_a_violation.) */
	{"socket-netlink-audit", "socket", SYS_socket, "socket AF_NETLINK",
	 "{\"family\":\"AF_NETLINK\",\"type\":\"SOCK_RAW\",\"flags\":[],\"protocol\":9}", NULL},
	{"socket-vsock", "socket", SYS_socket, "socket AF_VSOCK",
	 "{\"family\":\"AF_VSOCK\",\"type\":\"SOCK_STREAM\",\"flags\":[],\"protocol\":0}", NULL},
	{"socketpair-inet", "socketpair", SYS_socketpair, "socketpair AF_INET",
	 "{\"family\":\"AF_INET\",\"type\":\"SOCK_STREAM\",\"flags\":[],\"protocol\":0}", NULL},
	{"io_uring_setup", "io_uring_setup", SYS_io_uring_setup, "io_uring_setup", "{}", "0x1"},
	{"ptrace-attach-1", "ptrace", SYS_ptrace, "ptrace PTRACE_ATTACH",
	 "{\"request\":\"PTRACE_ATTACH\",\"pid\":1}", NULL},
	{"process_vm_readv", "process_vm_readv", SYS_process_vm_readv, "process_vm_readv", "{}",
	 "0x1"},
	{"process_vm_writev", "process_vm_writev", SYS_process_vm_writev, "process_vm_writev", "{}",
	 "0x1"},
	{"bpf", "bpf", SYS_bpf, "bpf", "{}", "0x0"},
	{"perf_event_open", "perf_event_open", SYS_perf_event_open, "perf_event_open", "{}", NULL},
	{"unshare-user", "unshare", SYS_unshare, "unshare CLONE_NEWUSER",
	 "{\"flags\":[\"CLONE_NEWUSER\"]}", NULL},
	{"unshare-net", "unshare", SYS_unshare, "unshare CLONE_NEWNET",
	 "{\"flags\":[\"CLONE_NEWNET\"]}", NULL},
	{"setns", "setns", SYS_setns, "setns CLONE_NEWNET", "{\"nstype\":[\"CLONE_NEWNET\"]}",
	 NULL},
	{"clone-newnet", "clone", SYS_clone, "clone CLONE_NEWNET",
	 "{\"flags\":[\"CLONE_NEWNET\"],\"exit_signal\":\"SIGCHLD\"}", NULL},
	{"mount-tmpfs", "mount", SYS_mount, "mount", "{\"flags\":[]}", NULL},
	{"keyctl", "keyctl", SYS_keyctl, "keyctl", "{}", "0x0"},
	{"userfaultfd", "userfaultfd", SYS_userfaultfd, "userfaultfd", "{}", "0x0"},
	{"open_by_handle_at", "open_by_handle_at", SYS_open_by_handle_at, "open_by_handle_at", "{}",
	 NULL},
	{"tiocsti", "ioctl", SYS_ioctl, "ioctl TIOCSTI", "{\"fd\":0,\"request\":\"TIOCSTI\"}",
	 NULL},
	/* The kernel compares 32 bits: TIOCSTI | 1 << 32 is TIOCSTI. */
	{"tiocsti-high", "ioctl", SYS_ioctl, "ioctl TIOCSTI",
	 "{\"fd\":0,\"request\":\"TIOCSTI\",\"request_raw\":\"0x100005412\"}", NULL},
	{"tioclinux", "ioctl", SYS_ioctl, "ioctl TIOCLINUX", "{\"fd\":0,\"request\":\"TIOCLINUX\"}",
	 NULL},
};

#define N_ATTEMPTS (sizeof(attempts) / sizeof(attempts[0]))

static void
free_params(struct criterion_test_params *p)
{
	cr_free(p->params);
}

ParameterizedTestParameters(violations, each_attempt_is_one_event)
{
	size_t *idx = cr_malloc(N_ATTEMPTS * sizeof(*idx));

	for (size_t i = 0; i < N_ATTEMPTS; i++)
		idx[i] = i;
	return cr_make_param_array(size_t, idx, N_ATTEMPTS, free_params);
}

ParameterizedTest(size_t *idx, violations, each_attempt_is_one_event, .timeout = 60)
{
	const struct attempt *a = &attempts[*idx];
	struct aj_profile *p = NULL;
	struct aj_result r;
	struct stream s;
	json_t *start, *v, *ex, *args;
	char want[256], sha[65], err[512], exe[PATH_MAX], *text;
	const char *version;

	aj_test_run(&r, -1, "--profile", prof, "--events", events, "--", TRY, a->verb, NULL);
	/* The agent saw EPERM, and only that. */
	snprintf(want, sizeof(want), "%s EPERM\n", a->verb);
	cr_assert_str_eq(r.out, want, "try %s: " SHOWFMT, a->verb, SHOWARGS(r));
	cr_assert_eq(r.status, 1, "try %s: " SHOWFMT, a->verb, SHOWARGS(r));
	snprintf(want, sizeof(want), "agentjail: 1 violation blocked (%s x1)", a->summary);
	cr_assert(aj_test_has_line(r.err, want), "want the line '%s': " SHOWFMT, want, SHOWARGS(r));

	text = aj_test_slurp(events);
	stream_parse(&s, text, false);

	/* start: who and under which policy. */
	start = s.ev[0];
	version = str_of(start, "version");
	cr_assert(version && version[0], "%s", text);
	cr_assert_str_eq(str_of(json_object_get(start, "profile"), "path"), prof, "%s", text);
	cr_assert_eq(aj_profile_load(prof, &p, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(aj_profile_sha256(p, sha), 0);
	aj_profile_free(p);
	cr_assert_str_eq(str_of(json_object_get(start, "profile"), "sha256"), sha, "%s", text);
	assert_has_members(start,
			   "{\"violations\":{\"reported\":true,\"on_violation\":\"deny\"},"
			   "\"missing\":[]}",
			   text);
	cr_assert(json_is_array(json_object_get(start, "namespaces")), "%s", text);
	cr_assert_gt(int_of(json_object_get(start, "pids"), "init", text), 0);
	cr_assert_gt(int_of(json_object_get(start, "pids"), "broker", text), 0);
	cr_assert_gt(int_of(json_object_get(start, "pids"), "supervisor", text), 0);

	/* Exactly one violation, decoded. */
	cr_assert_eq(count_type(&s, "violation_repeated"), 0, "%s", text);
	v = only(&s, "violation");
	cr_assert_str_eq(str_of(v, "syscall"), a->syscall, "%s", text);
	cr_assert_eq(int_of(v, "nr", text), a->nr, "%s", text);
	cr_assert_str_eq(str_of(v, "summary"), a->summary, "%s", text);
	cr_assert_str_eq(str_of(v, "action"), "deny", "%s", text);
	cr_assert_str_eq(str_of(v, "comm"), "try", "%s", text);
	cr_assert_not_null(realpath(TRY, exe));
	cr_assert_str_eq(str_of(v, "exe"), exe, "%s", text);
	/* The agent is init's child, never init itself. */
	cr_assert_neq(int_of(v, "pid", text), int_of(json_object_get(start, "pids"), "init", text),
		      "%s", text);
	args = json_object_get(v, "args");
	assert_has_members(args, a->args, text);
	if (a->arg0 != NULL) {
		/* Calls without a decoder: their six registers in hex. */
		json_t *raw = json_object_get(args, "args"), *x;
		size_t i;

		cr_assert(json_is_array(raw) && json_array_size(raw) == 6, "raw args: %s", text);
		json_array_foreach(raw, i, x)
		{
			const char *h = json_string_value(x);
			cr_assert(h && strncmp(h, "0x", 2) == 0 && h[2] &&
					  strspn(h + 2, "0123456789abcdef") == strlen(h + 2),
				  "args[%zu] is not hex: %s", i, text);
		}
		cr_assert_str_eq(json_string_value(json_array_get(raw, 0)), a->arg0, "%s", text);
	}
	if (strcmp(a->verb, "tiocsti") == 0)
		cr_assert_null(json_object_get(args, "request_raw"), "%s", text);

	/* broker_exit, then exit with the count. */
	assert_has_members(only(&s, "broker_exit"),
			   "{\"how\":\"exited\",\"status\":0,\"expected\":true}", text);
	ex = exit_event(&s);
	cr_assert_eq(int_of(ex, "status", text), 1, "%s", text);
	cr_assert(json_is_null(json_object_get(ex, "signal")), "%s", text);
	cr_assert_eq(int_of(ex, "violations", text), 1, "%s", text);
	cr_assert_eq(json_object_size(json_object_get(ex, "violation_counts")), 1, "%s", text);
	cr_assert_eq(int_of(json_object_get(ex, "violation_counts"), a->summary, text), 1, "%s",
		     text);

	stream_free(&s);
	free(text);
	aj_test_result_free(&r);
}

/* Several kinds in one run: counted per kind, summed up at exit. */
Test(violations, several_kinds_are_counted_per_kind, .timeout = 60)
{
	struct aj_result r;
	struct stream s;
	json_t *ex;
	char *text;
	size_t n = 0;

	aj_test_run(&r, -1, "--profile", prof, "--events", events, "--", "/bin/sh", "-c",
		    "\"$0\" socket-inet; \"$0\" io_uring_setup; \"$0\" socket-inet", TRY, NULL);
	cr_assert_eq(r.status, 1, SHOWFMT, SHOWARGS(r));
	cr_assert_str_eq(r.out, "socket-inet EPERM\nio_uring_setup EPERM\nsocket-inet EPERM\n",
			 SHOWFMT, SHOWARGS(r));
	cr_assert(aj_test_has_line(r.err, "agentjail: 3 violations blocked (socket AF_INET x2, "
					  "io_uring_setup x1)"),
		  SHOWFMT, SHOWARGS(r));

	text = aj_test_slurp(events);
	stream_parse(&s, text, false);
	cr_assert_eq(count_type(&s, "violation"), 3, "%s", text);
	ex = exit_event(&s);
	cr_assert_eq(int_of(ex, "violations", text), 3, "%s", text);
	assert_has_members(ex, "{\"violation_counts\":{\"socket AF_INET\":2,\"io_uring_setup\":1}}",
			   text);
	/* In order, each from its own process. */
	for (size_t i = 0; i < s.n; i++) {
		static const char *const order[] = {"socket AF_INET", "io_uring_setup",
						    "socket AF_INET"};
		if (strcmp(str_of(s.ev[i], "type"), "violation") != 0)
			continue;
		cr_assert_str_eq(str_of(s.ev[i], "summary"), order[n], "%s", text);
		n++;
	}
	stream_free(&s);
	free(text);
	aj_test_result_free(&r);
}

/* ---- 2. routine refusals are not violations ----------------------------------- */

Test(violations, unix_and_netlink_route_sockets_are_not_violations, .timeout = 60)
{
	static const struct {
		const char *verb, *line;
		int status;
		bool allow_unix;
	} cases[] = {
		/* Refused (profile default) but routine: glibc tries nscd. */
		{"socket-unix", "socket-unix EPERM\n", 1, false},
		{"socketpair-unix", "socketpair-unix ok\n", 0, false},
		{"socket-unix", "socket-unix ok\n", 0, true},
		/* Issue 9: glibc lists the interfaces through NETLINK_ROUTE. */
		{"socket-netlink", "socket-netlink EPERM\n", 1, false},
		/* Issue 10: and sorts getaddrinfo's answers, and resolves,
		 * through a UDP socket. */
		{"socket-inet-udp", "socket-inet-udp EPERM\n", 1, false},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct aj_result r;
		struct stream s;
		char *text;

		unlink(events);
		aj_test_run(&r, -1, "--profile", cases[i].allow_unix ? prof_unix : prof, "--events",
			    events, "--", TRY, cases[i].verb, NULL);
		cr_assert_str_eq(r.out, cases[i].line, "%s: " SHOWFMT, cases[i].verb, SHOWARGS(r));
		cr_assert_eq(r.status, cases[i].status, "%s: " SHOWFMT, cases[i].verb, SHOWARGS(r));
		cr_assert(!has_substr(r.err, "violation"), "%s: " SHOWFMT, cases[i].verb,
			  SHOWARGS(r));
		text = aj_test_slurp(events);
		stream_parse(&s, text, false);
		cr_assert_eq(count_type(&s, "violation"), 0, "%s:\n%s", cases[i].verb, text);
		cr_assert_eq(count_type(&s, "violation_repeated"), 0, "%s:\n%s", cases[i].verb,
			     text);
		cr_assert_eq(int_of(exit_event(&s), "violations", text), 0, "%s", text);
		cr_assert_eq(json_object_size(json_object_get(exit_event(&s), "violation_counts")),
			     0, "%s", text);
		cr_assert_eq(int_of(exit_event(&s), "status", text), cases[i].status, "%s", text);
		stream_free(&s);
		free(text);
		aj_test_result_free(&r);
	}
}

/* Run the shell command CMD under `on-violation kill`: it must run to its
 * end, print OUT, and raise no violation. */
static void
assert_no_false_alarm(const char *cmd, const char *out)
{
	struct aj_result r;
	struct stream s;
	char *text;

	unlink(events);
	aj_test_run(&r, -1, "--profile", prof_kill, "--events", events, "--", "sh", "-c", cmd,
		    NULL);
	cr_assert_eq(r.status, 0, "%s: " SHOWFMT, cmd, SHOWARGS(r));
	cr_assert_str_eq(r.out, out, "%s: " SHOWFMT, cmd, SHOWARGS(r));
	text = aj_test_slurp(events);
	stream_parse(&s, text, false);
	cr_assert_eq(count_type(&s, "violation"), 0, "%s:\n%s", cmd, text);
	cr_assert_eq(int_of(exit_event(&s), "violations", text), 0, "%s", text);
	stream_free(&s);
	free(text);
	aj_test_result_free(&r);
}

/* Issue 9: a real program resolving a name with AI_ADDRCONFIG (glibc asks
 * NETLINK_ROUTE for the addresses first). */
Test(violations, getaddrinfo_raises_no_false_alarm, .timeout = 60)
{
	assert_no_false_alarm("python3 -c \"import socket; socket.getaddrinfo('localhost', 80, 0, "
			      "socket.SOCK_STREAM, 0, socket.AI_ADDRCONFIG); print('resolved')\"",
			      "resolved\n");
}

/* Issue 10: a lookup with more than one answer (glibc sorts them through
 * a UDP socket's connect): `getent hosts localhost` printed the address
 * and then raised a violation. */
Test(violations, a_lookup_with_several_answers_raises_no_false_alarm, .timeout = 60)
{
	assert_no_false_alarm("getent ahosts localhost >/dev/null && python3 -c \"import socket; "
			      "print(len(socket.getaddrinfo('localhost', 80)) > 1)\"",
			      "True\n");
}

/* ---- 3. on-violation kill ------------------------------------------------------ */

/* Wait up to MS for a process whose argv[1] is MARKER (host-wide) to be
 * running (WANT) or gone. */
static bool
marker_becomes(const char *marker, bool want, int ms)
{
	for (int waited = 0;; waited += 20) {
		if ((aj_test_procs_with_arg(marker, NULL, 0) > 0) == want)
			return true;
		if (waited >= ms)
			return false;
		usleep(20000);
	}
}

Test(violations, on_violation_kill_ends_the_whole_jail, .timeout = 60)
{
	struct aj_result r;
	struct stream s;
	char marker[64], control[64], *text;
	json_t *v, *ex;
	pid_t pid;

	/* A unique `sleep` argument: the child's name on the host. */
	snprintf(marker, sizeof(marker), "3171.%d", (int)getpid());
	snprintf(control, sizeof(control), "3172.%d", (int)getpid());

	/* The scanner sees a live marker: start one on the host. */
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		execl("/bin/sleep", "sleep", control, (char *)NULL);
		_exit(127);
	}
	cr_assert(marker_becomes(control, true, 5000), "the scanner does not see sleep %s",
		  control);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	cr_assert(marker_becomes(control, false, 5000), "sleep %s is still listed", control);

	/* --timeout: a jail that is not killed fails here, not by hanging. */
	aj_test_run(&r, -1, "--profile", prof_kill, "--events", events, "--timeout", "30", "--",
		    TRY, "fork-then-socket", marker, NULL);
	cr_assert(has_substr(r.out, "fork-then-socket child "), "the child did not start: " SHOWFMT,
		  SHOWARGS(r));
	cr_assert_eq(r.status, AJ_EXIT_VIOLATION, SHOWFMT, SHOWARGS(r));
	cr_assert(strcasestr(r.err, "kill") != NULL, "stderr does not mention the kill: " SHOWFMT,
		  SHOWARGS(r));
	cr_assert(marker_becomes(marker, false, 3000),
		  "the jailed child (sleep %s) survived the kill", marker);

	text = aj_test_slurp(events);
	stream_parse(&s, text, false);
	assert_has_members(s.ev[0],
			   "{\"violations\":{\"reported\":true,\"on_violation\":\"kill\"}}", text);
	v = only(&s, "violation");
	cr_assert_str_eq(str_of(v, "summary"), "socket AF_INET", "%s", text);
	cr_assert_str_eq(str_of(v, "action"), "kill", "%s", text);
	ex = exit_event(&s);
	cr_assert_eq(int_of(ex, "status", text), AJ_EXIT_VIOLATION, "%s", text);
	cr_assert_eq(int_of(ex, "violations", text), 1, "%s", text);
	stream_free(&s);
	free(text);
	aj_test_result_free(&r);
}

/* ---- 4. a loop of attempts: bounded, exact ------------------------------------ */

Test(violations, a_hundred_thousand_attempts_are_bounded_and_exact, .timeout = 60)
{
	struct aj_result r;
	struct stream s;
	struct timespec t0, t1;
	json_t *ex;
	json_int_t full = 0, repeated = 0, n_repeated = 0;
	double secs, dur;
	char *text;
	size_t lines = 0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	aj_test_run(&r, -1, "--profile", prof, "--events", events, "--", TRY, "loop-socket",
		    "100000", NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	cr_assert_str_eq(r.out, "loop-socket EPERM 100000\n", SHOWFMT, SHOWARGS(r));
	cr_assert_eq(r.status, 1, SHOWFMT, SHOWARGS(r));
	cr_assert(aj_test_has_line(r.err,
				   "agentjail: 100000 violations blocked (socket AF_INET x100000)"),
		  SHOWFMT, SHOWARGS(r));
	cr_assert_lt(secs, 45., "100000 attempts took %.1f s", secs);

	text = aj_test_slurp(events);
	for (const char *p = text; (p = strchr(p, '\n')) != NULL; p++)
		lines++;
	cr_assert_lt(lines, 2000, "%zu lines of events for one loop", lines);
	stream_parse(&s, text, false); /* also: violations + repeated counts == total */
	ex = exit_event(&s);
	dur = json_number_value(json_object_get(ex, "duration_ms")) / 1000.;
	for (size_t i = 0; i < s.n; i++) {
		const char *type = str_of(s.ev[i], "type");
		if (strcmp(type, "violation") == 0) {
			full++;
			cr_assert_str_eq(str_of(s.ev[i], "summary"), "socket AF_INET", "%s", text);
		} else if (strcmp(type, "violation_repeated") == 0) {
			n_repeated++;
			repeated += int_of(s.ev[i], "count", text);
			cr_assert_str_eq(str_of(s.ev[i], "summary"), "socket AF_INET", "%s", text);
		}
	}
	cr_assert_eq(full + repeated, 100000, "%lld full + %lld counted", (long long)full,
		     (long long)repeated);
	cr_assert_eq(int_of(ex, "violations", text), 100000, "%s", text);
	cr_assert_eq(int_of(json_object_get(ex, "violation_counts"), "socket AF_INET", text),
		     100000, "%s", text);
	/* Rate limits: at most 5 full events per second (per started second
	 * of the run), violation_repeated at most once a second plus the one
	 * at exit. */
	cr_assert_gt(full, 0, "no full violation event at all");
	cr_assert_leq(full, 5 * ((json_int_t)dur + 2), "%lld full events in %.2f s:\n%s",
		      (long long)full, dur, text);
	cr_assert_leq(n_repeated, (json_int_t)dur + 2,
		      "%lld violation_repeated events for one summary in %.2f s (at most one a "
		      "second, plus one at exit):\n%s",
		      (long long)n_repeated, dur, text);
	/* ... and spaced a second apart (0.1 s of slack for the clock), but
	 * for the last one, written at exit. */
	for (size_t i = 0, prev = 0; i + 2 < s.n; i++) {
		if (strcmp(str_of(s.ev[i], "type"), "violation_repeated") != 0)
			continue;
		if (prev > 0)
			cr_assert_geq(
				time_of(s.ev[i]) - time_of(s.ev[prev - 1]), 0.9,
				"violation_repeated seq %zu and %zu are %.3f s apart (at most "
				"one a second):\n%s",
				prev, i + 1, time_of(s.ev[i]) - time_of(s.ev[prev - 1]), text);
		prev = i + 1;
	}
	stream_free(&s);
	free(text);
	aj_test_result_free(&r);
}

/* ---- 5. the stream as JSON, and check-events.py -------------------------------- */

/* The script in the scratch dir: read from the source tree by this process
 * (or, when that is unreadable, the copy built in), so python runs it from
 * a place whoever runs the suite can read. */
static char *
stage_script(void)
{
	char *src = path_in(AJ_SRCDIR, "tests/integration/check-events.py");
	int fd = open(src, O_RDONLY | O_CLOEXEC);
	char *text, *dst;

	if (fd >= 0) {
		text = aj_test_slurp_fd(fd);
		close(fd);
	} else {
		cr_assert(errno == EACCES || errno == EPERM, "%s: %s", src, strerror(errno));
		text = strdup(aj_test_check_events_py);
	}
	cr_assert(has_substr(text, "def check_stream"), "%s is not the checker", src);
	dst = aj_test_write_file(scratch, "check-events.py", text);
	free(text);
	free(src);
	return dst;
}

static void
run_script(struct aj_result *r, const char *script, const char *file)
{
	const char *argv[] = {"/usr/bin/python3", script, file, NULL};
	aj_test_exec(argv, -1, r);
}

/* Rewrite line LINE (1-based) of TEXT through EDIT (or drop it when EDIT
 * returns NULL); the result is written to SCRATCH/NAME. */
static char *
edited(const char *text, size_t line, json_t *(*edit)(json_t *), const char *name)
{
	char *out = NULL, *path;
	size_t len = 0, i = 0;
	FILE *f = open_memstream(&out, &len);

	for (const char *p = text; *p; i++) {
		const char *nl = strchr(p, '\n');
		char *l = strndup(p, (size_t)(nl - p));

		p = nl + 1;
		if (i + 1 != line) {
			fprintf(f, "%s\n", l);
		} else {
			json_t *ev = edit(json_loads(l, 0, NULL));
			if (ev != NULL) {
				char *dumped = json_dumps(ev, JSON_COMPACT | JSON_PRESERVE_ORDER);
				fprintf(f, "%s\n", dumped);
				free(dumped);
				json_decref(ev);
			}
		}
		free(l);
	}
	fclose(f);
	path = aj_test_write_file(scratch, name, out);
	free(out);
	return path;
}

static json_t *
drop(json_t *ev)
{
	json_decref(ev);
	return NULL;
}

static json_t *
other_jail(json_t *ev)
{
	json_object_set_new(ev, "jail", json_string("0123456789abcdef0123456789abcdef"));
	return ev;
}

static json_t *
no_syscall(json_t *ev)
{
	json_object_del(ev, "syscall");
	return ev;
}

static json_t *
one_more(json_t *ev)
{
	json_object_set_new(
		ev, "violations",
		json_integer(json_integer_value(json_object_get(ev, "violations")) + 1));
	return ev;
}

static json_t *
unknown_type(json_t *ev)
{
	json_object_set_new(ev, "type", json_string("violation_maybe"));
	return ev;
}

Test(violations, every_line_is_json_and_check_events_agrees, .timeout = 60)
{
	struct aj_result r, c;
	struct stream s;
	char *text, *script, *bad;
	size_t viol = 0;

	/* Something of every kind: 2 kinds of violation, a repeated one. */
	aj_test_run(&r, -1, "--profile", prof, "--events", events, "--", "/bin/sh", "-c",
		    "\"$0\" io_uring_setup; \"$0\" loop-socket 20; exit 3", TRY, NULL);
	cr_assert_eq(r.status, 3, SHOWFMT, SHOWARGS(r));
	text = aj_test_slurp(events);
	stream_parse(&s, text, false); /* every line through json_loads */
	cr_assert_eq(count_type(&s, "violation_repeated"), 1, "%s", text);
	cr_assert_eq(int_of(exit_event(&s), "violations", text), 21, "%s", text);
	for (size_t i = 0; i < s.n; i++)
		if (strcmp(str_of(s.ev[i], "type"), "violation") == 0)
			viol = i + 1;

	script = stage_script();
	run_script(&c, script, events);
	cr_assert_eq(c.status, 0, "check-events.py rejects a real stream: " SHOWFMT "\n%s",
		     SHOWARGS(c), text);
	cr_assert(has_substr(c.out, "ok"), SHOWFMT, SHOWARGS(c));
	aj_test_result_free(&c);

	/* And it rejects broken streams, naming the line. */
	struct {
		size_t line;
		json_t *(*edit)(json_t *);
		const char *why;
	} broken[] = {
		{2, drop, "a seq gap"},
		{s.n, drop, "no exit at the end"},
		{2, other_jail, "two jail ids"},
		{viol, no_syscall, "a violation without syscall"},
		{s.n, one_more, "exit.violations off by one"},
		{2, unknown_type, "an unknown type"},
	};
	for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++) {
		bad = edited(text, broken[i].line, broken[i].edit, "broken.jsonl");
		run_script(&c, script, bad);
		cr_assert_eq(c.status, 1, "check-events.py accepts %s: " SHOWFMT, broken[i].why,
			     SHOWARGS(c));
		cr_assert(has_substr(c.err, "line "), "%s: no line named: " SHOWFMT, broken[i].why,
			  SHOWARGS(c));
		aj_test_result_free(&c);
		free(bad);
	}
	bad = aj_test_write_file(scratch, "garbage.jsonl", "{\"type\":\"start\"\n");
	run_script(&c, script, bad);
	cr_assert_eq(c.status, 1, "check-events.py accepts a non-JSON line: " SHOWFMT, SHOWARGS(c));
	aj_test_result_free(&c);
	free(bad);

	free(script);
	stream_free(&s);
	free(text);
	aj_test_result_free(&r);
}

/* ---- 6. complete whatever the agent does ---------------------------------------- */

Test(violations, stream_is_complete_when_the_agent_closes_its_output, .timeout = 60)
{
	struct aj_result r;
	struct stream s;
	char *text;

	/* To a file. */
	aj_test_run(&r, -1, "--profile", prof, "--events", events, "--", "/bin/sh", "-c",
		    "exec >&- 2>&-; \"$0\" socket-inet", TRY, NULL);
	cr_assert_eq(r.status, 1, SHOWFMT, SHOWARGS(r));
	text = aj_test_slurp(events);
	stream_parse(&s, text, false);
	cr_assert_str_eq(str_of(only(&s, "violation"), "summary"), "socket AF_INET", "%s", text);
	cr_assert_eq(int_of(exit_event(&s), "status", text), 1, "%s", text);
	cr_assert_eq(int_of(exit_event(&s), "violations", text), 1, "%s", text);
	stream_free(&s);
	free(text);
	aj_test_result_free(&r);

	/* To stdout, which the agent shares and closes. */
	aj_test_run(&r, -1, "--profile", prof, "--events", "-", "--", "/bin/sh", "-c",
		    "exec >&- 2>&-; \"$0\" socket-inet", TRY, NULL);
	cr_assert_eq(r.status, 1, SHOWFMT, SHOWARGS(r));
	stream_parse(&s, r.out, false);
	cr_assert_str_eq(str_of(only(&s, "violation"), "summary"), "socket AF_INET", "%s", r.out);
	cr_assert_eq(int_of(exit_event(&s), "violations", r.out), 1, "%s", r.out);
	stream_free(&s);
	aj_test_result_free(&r);
}

Test(violations, stream_is_complete_when_the_agent_dies_by_a_signal, .timeout = 60)
{
	struct aj_result r;
	struct stream s;
	json_t *ex;
	char *text;

	aj_test_run(&r, -1, "--profile", prof, "--events", events, "--", "/bin/sh", "-c",
		    "\"$0\" socket-inet; kill -KILL $$", TRY, NULL);
	cr_assert_eq(r.status, 128 + SIGKILL, SHOWFMT, SHOWARGS(r));
	cr_assert_str_eq(r.out, "socket-inet EPERM\n", SHOWFMT, SHOWARGS(r));
	text = aj_test_slurp(events);
	stream_parse(&s, text, false);
	cr_assert_str_eq(str_of(only(&s, "violation"), "summary"), "socket AF_INET", "%s", text);
	ex = exit_event(&s);
	cr_assert_eq(int_of(ex, "status", text), 128 + SIGKILL, "%s", text);
	cr_assert_eq(int_of(ex, "signal", text), SIGKILL, "%s", text);
	cr_assert_eq(int_of(ex, "violations", text), 1, "%s", text);
	stream_free(&s);
	free(text);
	aj_test_result_free(&r);
}

/* ---- 7. --events destinations and errors ---------------------------------------- */

Test(violations, events_to_stdout, .timeout = 60)
{
	struct aj_result r;
	struct stream s;

	aj_test_run(&r, -1, "--profile", prof, "--events", "-", "--", TRY, "socket-inet", NULL);
	cr_assert_eq(r.status, 1, SHOWFMT, SHOWARGS(r));
	cr_assert(aj_test_has_line(r.out, "socket-inet EPERM"), SHOWFMT, SHOWARGS(r));
	stream_parse(&s, r.out, true);
	cr_assert_str_eq(str_of(only(&s, "violation"), "summary"), "socket AF_INET", "%s", r.out);
	cr_assert_eq(int_of(exit_event(&s), "violations", r.out), 1, "%s", r.out);
	stream_free(&s);
	aj_test_result_free(&r);
}

Test(violations, events_to_an_fd, .timeout = 60)
{
	struct aj_result r;
	struct stream s;
	char spec[32], *text;
	int p[2];

	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	snprintf(spec, sizeof(spec), "fd:%d", p[1]);
	aj_test_run(&r, p[1], "--profile", prof, "--events", spec, "--", TRY, "socket-inet", NULL);
	close(p[1]);
	text = aj_test_slurp_fd(p[0]);
	close(p[0]);
	cr_assert_eq(r.status, 1, SHOWFMT, SHOWARGS(r));
	cr_assert_str_eq(r.out, "socket-inet EPERM\n", SHOWFMT, SHOWARGS(r));
	stream_parse(&s, text, false);
	cr_assert_str_eq(str_of(only(&s, "violation"), "summary"), "socket AF_INET", "%s", text);
	stream_free(&s);
	free(text);
	aj_test_result_free(&r);
}

/* The agent must not get the events fd: it could forge the stream. */
Test(violations, the_events_fd_does_not_reach_the_agent, .timeout = 60)
{
	struct aj_result r;
	char spec[32];
	int p[2];

	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	snprintf(spec, sizeof(spec), "fd:%d", p[1]);
	aj_test_run(&r, p[1], "--profile", prof, "--events", spec, "--", TRY, "fds", NULL);
	close(p[1]);
	close(p[0]);
	cr_assert_eq(r.status, 0, SHOWFMT, SHOWARGS(r));
	cr_assert_str_eq(r.out, "fds 0 1 2 3\n", SHOWFMT, SHOWARGS(r));
	aj_test_result_free(&r);

	aj_test_run(&r, -1, "--profile", prof, "--events", events, "--", TRY, "fds", NULL);
	cr_assert_eq(r.status, 0, SHOWFMT, SHOWARGS(r));
	cr_assert_str_eq(r.out, "fds 0 1 2 3\n", SHOWFMT, SHOWARGS(r));
	aj_test_result_free(&r);
}

/* A file is created private and appended to: runs can share one log. */
Test(violations, events_file_is_private_and_appended, .timeout = 60)
{
	struct aj_result r;
	struct stream s1, s2;
	struct stat st;
	char *first, *both;

	aj_test_run(&r, -1, "--profile", prof, "--events", events, "--", TRY, "socket-inet", NULL);
	cr_assert_eq(r.status, 1, SHOWFMT, SHOWARGS(r));
	aj_test_result_free(&r);
	cr_assert_eq(stat(events, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0600, "events file mode %o", st.st_mode & 07777);
	first = aj_test_slurp(events);

	aj_test_run(&r, -1, "--profile", prof, "--events", events, "--", TRY, "io_uring_setup",
		    NULL);
	cr_assert_eq(r.status, 1, SHOWFMT, SHOWARGS(r));
	aj_test_result_free(&r);
	both = aj_test_slurp(events);
	cr_assert_eq(strncmp(both, first, strlen(first)), 0, "the first run's lines changed:\n%s",
		     both);
	stream_parse(&s1, first, false);
	stream_parse(&s2, both + strlen(first), false);
	cr_assert_str_eq(str_of(only(&s2, "violation"), "summary"), "io_uring_setup", "%s", both);
	cr_assert_str_neq(str_of(s1.ev[0], "jail"), str_of(s2.ev[0], "jail"),
			  "two runs with one jail id:\n%s", both);
	stream_free(&s1);
	stream_free(&s2);
	free(first);
	free(both);
}

static int
count_substr(const char *text, const char *needle)
{
	int n = 0;

	for (const char *p = text; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	return n;
}

/* A destination that fails (a full disk, a reader that went away) costs
 * the stream's lines, counted and said once at the end, never the jail nor
 * agentjail itself. */
static void
assert_events_lost_said_once(const struct aj_result *r)
{
	const char *line = strstr(r->err, "agentjail: warning: lines not written");
	unsigned long long to_stderr = 1, lost_events = 0;

	cr_assert_eq(count_substr(r->err, "lines not written"), 1, SHOWFMT, SHOWARGS(*r));
	cr_assert_not_null(line, SHOWFMT, SHOWARGS(*r));
	line = strstr(line, "): ");
	cr_assert_not_null(line, SHOWFMT, SHOWARGS(*r));
	cr_assert_eq(sscanf(line, "): %llu to stderr, %llu events", &to_stderr, &lost_events), 2,
		     SHOWFMT, SHOWARGS(*r));
	cr_assert_eq(to_stderr, 0, SHOWFMT, SHOWARGS(*r));
	cr_assert_geq(lost_events, 1, SHOWFMT, SHOWARGS(*r));
}

Test(violations, failing_events_destination_does_not_stop_the_jail, .timeout = 60)
{
	struct aj_result r;
	char spec[32];
	int p[2];

	aj_test_run(&r, -1, "--profile", prof, "--events", "/dev/full", "--", "/bin/sh", "-c",
		    "\"$0\" socket-inet; \"$0\" io_uring_setup", TRY, NULL);
	cr_assert_eq(r.status, 1, SHOWFMT, SHOWARGS(r));
	cr_assert_str_eq(r.out, "socket-inet EPERM\nio_uring_setup EPERM\n", SHOWFMT, SHOWARGS(r));
	assert_events_lost_said_once(&r);
	cr_assert(aj_test_has_line(r.err, "agentjail: 2 violations blocked (socket AF_INET x1, "
					  "io_uring_setup x1)"),
		  SHOWFMT, SHOWARGS(r));
	aj_test_result_free(&r);

	/* The reader closed its end before the run: SIGPIPE at its default
	 * (as a shell or a supervisor would leave it) must not kill agentjail. */
	cr_assert_neq(signal(SIGPIPE, SIG_DFL), SIG_ERR);
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	close(p[0]);
	snprintf(spec, sizeof(spec), "fd:%d", p[1]);
	aj_test_run(&r, p[1], "--profile", prof, "--events", spec, "--", TRY, "socket-inet", NULL);
	close(p[1]);
	cr_assert_eq(r.status, 1, "a closed events reader stopped the run: " SHOWFMT, SHOWARGS(r));
	cr_assert_str_eq(r.out, "socket-inet EPERM\n", SHOWFMT, SHOWARGS(r));
	assert_events_lost_said_once(&r);
	aj_test_result_free(&r);
}

Test(violations, bad_events_destinations, .timeout = 60)
{
	static const struct {
		const char *spec;
		int status;
	} cases[] = {
		{"/nonexistent/dir/x", AJ_EXIT_SETUP},
		{"fd:999", AJ_EXIT_SETUP}, /* not open */
		{"", AJ_EXIT_USAGE},
		{"fd:x", AJ_EXIT_USAGE},
		{"fd:", AJ_EXIT_USAGE},
		{"fd:-1", AJ_EXIT_USAGE},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct aj_result r;

		aj_test_run(&r, -1, "--profile", prof, "--events", cases[i].spec, "--", TRY,
			    "socket-inet", NULL);
		cr_assert_eq(r.status, cases[i].status, "--events '%s': " SHOWFMT, cases[i].spec,
			     SHOWARGS(r));
		cr_assert_str_eq(r.out, "", "--events '%s' still ran the command: " SHOWFMT,
				 cases[i].spec, SHOWARGS(r));
		cr_assert(has_substr(r.err, "--events") || has_substr(r.err, cases[i].spec),
			  "--events '%s': the error does not say what: " SHOWFMT, cases[i].spec,
			  SHOWARGS(r));
		aj_test_result_free(&r);
	}
}

/* ---- 8. the library: a callback and an fd ------------------------------------------ */

struct collected {
	char *buf;
	size_t len;
	size_t calls;
	bool newline;
};

static void
collect(const char *line, void *arg)
{
	struct collected *c = arg;
	size_t n = strlen(line);

	c->calls++;
	c->newline |= strchr(line, '\n') != NULL;
	c->buf = realloc(c->buf, c->len + n + 2);
	memcpy(c->buf + c->len, line, n);
	c->len += n;
	c->buf[c->len++] = '\n';
	c->buf[c->len] = '\0';
}

Test(violations, library_callback_and_fd, .timeout = 60)
{
	struct aj_profile *p = NULL;
	struct collected c = {0};
	struct stream s;
	char err[512] = "", *fromfd;
	char *argv[] = {"/bin/sh", "-c", "exec \"$0\" socket-inet >/dev/null", (char *)TRY, NULL};
	int status = -1, pipefd[2];
	json_t *v;

	cr_assert_eq(aj_profile_load(prof, &p, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(pipe2(pipefd, O_CLOEXEC), 0);
	struct aj_run_options *opts = NULL;
	cr_assert_eq(aj_run_options_new(&opts), 0);
	cr_assert_eq(aj_run_options_set_profile(opts, p), 0);
	cr_assert_eq(aj_run_options_set_argv(opts, argv), 0);
	cr_assert_eq(aj_run_options_set_broker_path(opts, aj_test_bin("agentjail-broker")), 0);
	cr_assert_eq(aj_run_options_set_quiet(opts, true), 0);
	cr_assert_eq(aj_run_options_set_event_callback(opts, collect, &c), 0);
	cr_assert_eq(aj_run_options_set_events_fd(opts, pipefd[1]), 0);
	cr_assert_eq(aj_run(opts, &status, err, sizeof(err)), 0, "%s", err);
	aj_run_options_free(opts);
	cr_assert_eq(status, 1);
	cr_assert_geq(fcntl(pipefd[1], F_GETFD), 0, "aj_run closed the events fd");
	close(pipefd[1]);
	fromfd = aj_test_slurp_fd(pipefd[0]);
	close(pipefd[0]);

	/* The callback: one call per event, no newline in the line. */
	cr_assert_not_null(c.buf, "the callback was never called");
	cr_assert(!c.newline, "a callback line carries a newline:\n%s", c.buf);
	stream_parse(&s, c.buf, false);
	cr_assert_eq(c.calls, s.n);
	v = only(&s, "violation");
	cr_assert_str_eq(str_of(v, "summary"), "socket AF_INET", "%s", c.buf);
	cr_assert_str_eq(str_of(v, "comm"), "try", "%s", c.buf);
	cr_assert_eq(int_of(exit_event(&s), "status", c.buf), status, "%s", c.buf);
	cr_assert_eq(int_of(exit_event(&s), "violations", c.buf), 1, "%s", c.buf);
	stream_free(&s);

	/* The fd: the same lines. */
	cr_assert_str_eq(fromfd, c.buf);

	free(fromfd);
	free(c.buf);
	aj_profile_free(p);
}

Test(violations, library_fd_only, .timeout = 60)
{
	struct aj_profile *p = NULL;
	struct stream s;
	char err[512] = "", *text;
	char *argv[] = {"/bin/sh", "-c", "exec \"$0\" unshare-user >/dev/null", (char *)TRY, NULL};
	int status = -1, pipefd[2];

	cr_assert_eq(aj_profile_load(prof, &p, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(pipe2(pipefd, O_CLOEXEC), 0);
	struct aj_run_options *opts = NULL;
	cr_assert_eq(aj_run_options_new(&opts), 0);
	cr_assert_eq(aj_run_options_set_profile(opts, p), 0);
	cr_assert_eq(aj_run_options_set_argv(opts, argv), 0);
	cr_assert_eq(aj_run_options_set_broker_path(opts, aj_test_bin("agentjail-broker")), 0);
	cr_assert_eq(aj_run_options_set_quiet(opts, true), 0);
	cr_assert_eq(aj_run_options_set_events_fd(opts, pipefd[1]), 0);
	cr_assert_eq(aj_run(opts, &status, err, sizeof(err)), 0, "%s", err);
	aj_run_options_free(opts);
	cr_assert_eq(status, 1);
	close(pipefd[1]);
	text = aj_test_slurp_fd(pipefd[0]);
	close(pipefd[0]);
	stream_parse(&s, text, false);
	cr_assert_str_eq(str_of(only(&s, "violation"), "summary"), "unshare CLONE_NEWUSER", "%s",
			 text);
	stream_free(&s);
	free(text);
	aj_profile_free(p);
}

/* ---- 9. --quiet ------------------------------------------------------------------- */

Test(violations, quiet_keeps_the_events_but_not_the_summary, .timeout = 60)
{
	struct aj_result r;
	struct stream s;
	char *text;

	aj_test_run(&r, -1, "--profile", prof, "--quiet", "--events", events, "--", TRY,
		    "socket-inet", NULL);
	cr_assert_eq(r.status, 1, SHOWFMT, SHOWARGS(r));
	cr_assert_str_eq(r.out, "socket-inet EPERM\n", SHOWFMT, SHOWARGS(r));
	cr_assert_eq(aj_test_count_own_lines(r.err), 0, "--quiet, yet: " SHOWFMT, SHOWARGS(r));
	text = aj_test_slurp(events);
	stream_parse(&s, text, false);
	cr_assert_str_eq(str_of(only(&s, "violation"), "summary"), "socket AF_INET", "%s", text);
	stream_free(&s);
	free(text);
	aj_test_result_free(&r);

	/* The same without --quiet: the line is there. */
	aj_test_run(&r, -1, "--profile", prof, "--", TRY, "socket-inet", NULL);
	cr_assert_eq(r.status, 1, SHOWFMT, SHOWARGS(r));
	cr_assert(aj_test_has_line(r.err, "agentjail: 1 violation blocked (socket AF_INET x1)"),
		  SHOWFMT, SHOWARGS(r));
	aj_test_result_free(&r);
}
