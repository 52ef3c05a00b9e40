/*
 * The caller's terminal (issue 9, item 1).
 *
 * Shared (--no-pty): the agent may stop its output (tcflow(TCOOFF) is an
 * ordinary tty ioctl), after which every write to it blocks.  Nothing the
 * agent does to its stdio may block the supervisor: the jail still ends at
 * its time limit, agentjail exits with the timeout status, and the lines
 * the terminal did not take are counted in the exit event.
 *
 * Its own (the default): the agent gets a pseudo-terminal of the jail's,
 * relayed by the supervisor.  Its tcflow stops only its own terminal; a
 * jailed shell has job control and /dev/tty; ^C, resizes and ^Z reach it
 * through its line discipline; ^Z stops the jail as a whole and agentjail
 * with it, and SIGCONT continues both.
 *
 * Each test runs agentjail in a session of its own on a pty the test
 * makes, as a terminal emulator would; a guard kills agentjail if it has
 * not ended in time.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <jansson.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <agentjail/exitcodes.h>

#include "harness.h"

/* Far past the jail's 2 s limit: agentjail must be gone well before. */
#define GUARD_MS 30000

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

TestSuite(terminal, .init = setup, .fini = teardown, .timeout = 90);

/* Run ARGV (NULL-terminated) on a new pty as its session's controlling
 * terminal.  Returns agentjail's exit status, or -1 if the guard had to
 * kill it; *STOPPED says whether the terminal's output was stopped at the
 * end (else the agent's attempt did not happen, and the test proves
 * nothing). */
static int
run_on_pty(const char *const *argv, bool *stopped)
{
	int master, slave, st = 0, pidfd;
	struct pollfd pfd;
	pid_t pid;

	cr_assert_eq(openpty(&master, &slave, NULL, NULL, NULL), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		setsid();
		if (ioctl(slave, TIOCSCTTY, 0) < 0)
			_exit(99);
		dup2(slave, 0);
		dup2(slave, 1);
		dup2(slave, 2);
		close(master);
		if (slave > 2)
			close(slave);
		execv(argv[0], (char *const *)argv);
		_exit(98);
	}
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	cr_assert_geq(pidfd, 0);
	pfd = (struct pollfd){.fd = pidfd, .events = POLLIN};
	if (poll(&pfd, 1, GUARD_MS) != 1) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		close(pidfd);
		close(slave);
		close(master);
		return -1;
	}
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	close(pidfd);
	/* A stopped terminal takes nothing: a non-blocking write says so. */
	cr_assert_eq(fcntl(slave, F_SETFL, O_NONBLOCK), 0);
	*stopped = write(slave, "x", 1) < 0 && errno == EAGAIN;
	(void)tcflow(slave, TCOON);
	close(slave);
	close(master);
	cr_assert(WIFEXITED(st), "agentjail died of signal %d", WTERMSIG(st));
	return WEXITSTATUS(st);
}

/* The agent stops the terminal's output, then tries a network socket (a
 * violation: an event, and a line in the exit summary), then waits.  Its
 * own output goes elsewhere: the stopped terminal would block it too. */
#define STALLING_AGENT "%s tcooff >/dev/null; %s socket-inet >/dev/null 2>&1; exec sleep 60"

static void
stall(const char *events)
{
	char script[1024];
	const char *try = aj_test_bin("tests/integration/try");
	const char *argv[] = {aj_test_bin("agentjail"),
			      "run",
			      "--profile",
			      profile,
			      "--timeout",
			      "2",
			      "--no-pty",
			      events ? "--events" : "--",
			      events ? events : "/bin/sh",
			      events ? "--" : "-c",
			      events ? "/bin/sh" : script,
			      events ? "-c" : NULL,
			      events ? script : NULL,
			      NULL};
	bool stopped = false;
	int status;

	snprintf(script, sizeof(script), STALLING_AGENT, try, try);
	status = run_on_pty(argv, &stopped);
	cr_assert_neq(status, -1, "agentjail did not end: the stopped terminal blocked it");
	cr_assert(stopped, "the agent did not stop the terminal's output (is %s in the jail?)",
		  try);
	cr_assert_eq(status, AJ_EXIT_TIMEOUT, "agentjail exited %d, not with the timeout status",
		     status);
}

Test(terminal, a_stopped_terminal_does_not_stop_the_time_limit)
{
	stall(NULL);
}

Test(terminal, a_stopped_terminal_with_events_on_it_does_not_stop_the_time_limit)
{
	/* --events -: every event goes to the stopped terminal too. */
	stall("-");
}

Test(terminal, lines_the_terminal_did_not_take_are_counted)
{
	char *path, *text, *last;
	json_t *exit_ev, *lost;

	cr_assert_gt(asprintf(&path, "%s/events.json", scratch), 0);
	stall(path);
	text = aj_test_slurp(path);
	cr_assert_not_null(text);
	/* The last line. */
	cr_assert_gt(strlen(text), 1, "no event");
	text[strlen(text) - 1] = '\0';
	last = strrchr(text, '\n');
	last = last != NULL ? last + 1 : text;
	exit_ev = json_loads(last, 0, NULL);
	cr_assert_not_null(exit_ev, "%s", last);
	cr_assert_str_eq(json_string_value(json_object_get(exit_ev, "type")), "exit", "%s", last);
	cr_assert_eq(json_integer_value(json_object_get(exit_ev, "status")), AJ_EXIT_TIMEOUT);
	lost = json_object_get(exit_ev, "lines_lost");
	cr_assert_not_null(lost, "%s", last);
	/* At least the timeout line went to the stopped terminal; the file
	 * took every event. */
	cr_assert_geq(json_integer_value(json_object_get(lost, "stderr")), 1, "%s", last);
	cr_assert_eq(json_integer_value(json_object_get(lost, "events")), 0, "%s", last);
	json_decref(exit_ev);
	free(text);
	free(path);
}

/* ---- the agent's own terminal -------------------------------------------- */

/* agentjail running on a pty the test holds the master of. */
struct session {
	pid_t pid;
	int master;
	int slave; /* kept open: the test reads the caller's modes on it */
	char out[65536];
	size_t len;
};

static void
session_start(struct session *s, const char *const *argv)
{
	struct winsize ws = {.ws_row = 24, .ws_col = 80};

	memset(s, 0, sizeof(*s));
	cr_assert_eq(openpty(&s->master, &s->slave, NULL, NULL, &ws), 0);
	s->pid = fork();
	cr_assert_geq(s->pid, 0);
	if (s->pid == 0) {
		setsid();
		if (ioctl(s->slave, TIOCSCTTY, 0) < 0)
			_exit(99);
		dup2(s->slave, 0);
		dup2(s->slave, 1);
		dup2(s->slave, 2);
		close(s->master);
		if (s->slave > 2)
			close(s->slave);
		execv(argv[0], (char *const *)argv);
		_exit(98);
	}
	cr_assert_eq(fcntl(s->master, F_SETFL, O_NONBLOCK), 0);
}

/* Read what the terminal shows, for at most MS; true once NEEDLE was
 * shown. */
static bool
session_expect(struct session *s, const char *needle, int ms)
{
	for (int waited = 0;; waited += 50) {
		ssize_t n;

		while (s->len < sizeof(s->out) - 1 &&
		       (n = read(s->master, s->out + s->len, sizeof(s->out) - 1 - s->len)) > 0)
			s->len += (size_t)n;
		s->out[s->len] = '\0';
		if (needle != NULL && strstr(s->out, needle) != NULL)
			return true;
		if (waited >= ms)
			return false;
		poll(NULL, 0, 50);
	}
}

static void
session_type(struct session *s, const char *keys)
{
	cr_assert_eq(write(s->master, keys, strlen(keys)), (ssize_t)strlen(keys));
}

/* agentjail's wait status once it exits (or stops, with WUNTRACED in
 * FLAGS), reading the terminal meanwhile; -1 after MS. */
static int
session_wait(struct session *s, int flags, int ms)
{
	for (int waited = 0; waited < ms; waited += 50) {
		int st;
		pid_t p = waitpid(s->pid, &st, WNOHANG | flags);

		if (p == s->pid)
			return st;
		(void)session_expect(s, NULL, 0);
		poll(NULL, 0, 50);
	}
	return -1;
}

static void
session_end(struct session *s)
{
	if (waitpid(s->pid, NULL, WNOHANG) == 0) {
		kill(s->pid, SIGKILL);
		waitpid(s->pid, NULL, 0);
	}
	close(s->master);
	close(s->slave);
}

/* Is the caller's terminal in the modes the test gave it (canonical,
 * echoing), or raw? */
static bool
caller_terminal_cooked(struct session *s)
{
	struct termios t;

	cr_assert_eq(tcgetattr(s->slave, &t), 0);
	return (t.c_lflag & ICANON) && (t.c_lflag & ECHO);
}

#define RUN(...)                                                                       \
	((const char *const[]){aj_test_bin("agentjail"), "run", "--profile", profile, \
			       __VA_ARGS__, NULL})

Test(terminal, the_agent_has_a_terminal_of_its_own)
{
	struct session s;
	int st;

	session_start(&s, RUN("--", "/bin/sh", "-c",
			      "tty; echo via-tty >/dev/tty && echo ctty-ok; stty size"));
	st = session_wait(&s, 0, GUARD_MS);
	(void)session_expect(&s, NULL, 0);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d: %s", st, s.out);
	cr_assert(strstr(s.out, "/dev/pts/0") != NULL, "tty did not name the jail's pty: %s",
		  s.out);
	cr_assert(strstr(s.out, "via-tty") && strstr(s.out, "ctty-ok"), "/dev/tty: %s", s.out);
	/* It started with the caller's size. */
	cr_assert(strstr(s.out, "24 80") != NULL, "%s", s.out);
	cr_assert(caller_terminal_cooked(&s), "the caller's modes were not restored");
	session_end(&s);
}

Test(terminal, a_jailed_shell_has_job_control)
{
	struct session s;
	int st;

	session_start(&s, RUN("--", "/bin/bash", "--norc", "--noprofile", "-i"));
	cr_assert(session_expect(&s, "$ ", 10000), "no prompt: %s", s.out);
	/* Quoted, so the echo of the line does not match. */
	session_type(&s, "echo \"fl\"\"ags=$-.\"\n");
	cr_assert(session_expect(&s, "flags=", 10000), "%s", s.out);
	cr_assert(session_expect(&s, ".\r\n", 2000), "%s", s.out);
	cr_assert(strstr(s.out, "no job control") == NULL, "%s", s.out);
	{
		const char *f = strstr(s.out, "flags=");
		const char *dot = strchr(f, '.');

		/* $- holds m: monitor mode, job control on. */
		cr_assert(dot != NULL && memchr(f, 'm', (size_t)(dot - f)) != NULL, "%s", s.out);
	}
	/* A job stopped with ^Z stops in the jailed shell, not agentjail. */
	session_type(&s, "sleep 30\n");
	poll(NULL, 0, 500);
	session_type(&s, "\032");
	cr_assert(session_expect(&s, "Stopped", 10000), "^Z did not stop the job: %s", s.out);
	cr_assert_eq(session_wait(&s, WUNTRACED, 300), -1, "agentjail stopped or ended");
	/* fg gives it the terminal again; ^C ends it. */
	session_type(&s, "fg\n");
	poll(NULL, 0, 500);
	session_type(&s, "\003");
	poll(NULL, 0, 300);
	session_type(&s, "exit 7\n");
	st = session_wait(&s, 0, GUARD_MS);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 7, "status %d: %s", st, s.out);
	session_end(&s);
}

Test(terminal, ctrl_c_reaches_the_agent_through_its_terminal)
{
	struct session s;
	int st;

	session_start(&s, RUN("--", "/bin/sh", "-c", "echo ready; exec sleep 60"));
	cr_assert(session_expect(&s, "ready", 10000), "%s", s.out);
	/* Raw mode on the caller's terminal: ^C is a byte for the agent's
	 * line discipline, which interrupts its foreground group. */
	cr_assert(!caller_terminal_cooked(&s), "the caller's terminal is not raw");
	session_type(&s, "\003");
	st = session_wait(&s, 0, GUARD_MS);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 128 + SIGINT, "status %d: %s", st, s.out);
	cr_assert(caller_terminal_cooked(&s), "the caller's modes were not restored");
	session_end(&s);
}

Test(terminal, a_resize_reaches_the_agent)
{
	struct winsize big = {.ws_row = 50, .ws_col = 132};
	struct session s;
	bool resized = false;
	int st;

	session_start(&s, RUN("--", "/bin/sh", "-c", "while read x; do stty size; done"));
	session_type(&s, "\n");
	cr_assert(session_expect(&s, "24 80", 10000), "%s", s.out);
	/* The caller's terminal grows: agentjail gets SIGWINCH (it is the
	 * foreground), the agent's terminal takes the size. */
	cr_assert_eq(ioctl(s.master, TIOCSWINSZ, &big), 0);
	for (int i = 0; i < 50 && !resized; i++) {
		session_type(&s, "\n");
		resized = session_expect(&s, "50 132", 200);
	}
	cr_assert(resized, "the agent never saw the new size: %s", s.out);
	session_type(&s, "\004");
	st = session_wait(&s, 0, GUARD_MS);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d: %s", st, s.out);
	session_end(&s);
}

/* The size of the file at PATH, or -1. */
static long
size_of(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

Test(terminal, ctrl_z_stops_the_whole_jail_and_fg_continues_it)
{
	char *ticks, script[1024];
	struct session s;
	long before;
	int st;

	/* A process of the jail in a session of its own (no terminal signal
	 * reaches it) ticks into a file the test can see. */
	ticks = aj_test_write_file(scratch, "ticks", "");
	cr_assert_eq(chmod(ticks, 0666), 0);
	snprintf(script, sizeof(script),
		 "setsid sh -c 'while :; do echo t >>%s; sleep 0.05; done' </dev/null & "
		 "echo ready; exec sleep 60",
		 ticks);
	session_start(&s, RUN("--", "/bin/sh", "-c", script));
	cr_assert(session_expect(&s, "ready", 10000), "%s", s.out);
	poll(NULL, 0, 300);
	cr_assert_gt(size_of(ticks), 0, "the ticker did not start");

	session_type(&s, "\032");
	st = session_wait(&s, WUNTRACED, 10000);
	cr_assert(st != -1 && WIFSTOPPED(st), "^Z did not stop agentjail (status %d): %s", st,
		  s.out);
	cr_assert(caller_terminal_cooked(&s), "the caller's modes were not restored on ^Z");
	/* Nothing of the jail runs while it is stopped. */
	poll(NULL, 0, 200);
	before = size_of(ticks);
	poll(NULL, 0, 1000);
	cr_assert_eq(size_of(ticks), before, "the jail kept running while stopped");

	/* fg */
	cr_assert_eq(kill(s.pid, SIGCONT), 0);
	for (int i = 0; i < 100 && size_of(ticks) == before; i++)
		poll(NULL, 0, 50);
	cr_assert_gt(size_of(ticks), before, "the jail did not continue");
	for (int i = 0; i < 100 && caller_terminal_cooked(&s); i++)
		poll(NULL, 0, 50);
	cr_assert(!caller_terminal_cooked(&s), "the caller's terminal is not raw again");

	session_type(&s, "\003");
	st = session_wait(&s, 0, GUARD_MS);
	cr_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 128 + SIGINT, "status %d: %s",
		  st, s.out);
	session_end(&s);
	free(ticks);
}

/* The stall of the shared terminal, tried on the agent's own: its tcflow
 * stops only its own terminal; the caller's keeps taking output. */
Test(terminal, the_agent_cannot_stop_the_callers_terminal)
{
	char script[1024], *events;
	const char *try = aj_test_bin("tests/integration/try");
	struct session s;
	char *text;
	int st;

	cr_assert_gt(asprintf(&events, "%s/events.json", scratch), 0);
	/* The violation only happens if tcooff succeeded on the agent's
	 * terminal. */
	snprintf(script, sizeof(script),
		 "%s tcooff >/dev/null && %s socket-inet >/dev/null 2>&1; exec sleep 60", try, try);
	session_start(&s, RUN("--timeout", "2", "--events", events, "--", "/bin/sh", "-c", script));
	st = session_wait(&s, 0, GUARD_MS);
	(void)session_expect(&s, NULL, 0);
	cr_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == AJ_EXIT_TIMEOUT, "status %d: %s",
		  st, s.out);
	/* The caller's terminal takes output. */
	cr_assert_eq(fcntl(s.slave, F_SETFL, O_NONBLOCK), 0);
	cr_assert_eq(write(s.slave, "x", 1), 1, "the caller's terminal was stopped");
	/* agentjail's own lines reached it. */
	cr_assert(strstr(s.out, "timeout after 2s") != NULL, "%s", s.out);
	text = aj_test_slurp(events);
	cr_assert(strstr(text, "\"type\":\"violation\"") != NULL, "tcooff failed in the jail: %s",
		  text);
	free(text);
	free(events);
	session_end(&s);
}

/* The real `script` (util-linux) as the terminal: a jailed interactive
 * shell sees a terminal with job control. */
Test(terminal, under_script_a_jailed_shell_has_job_control)
{
	char cmd[2048];
	struct aj_result r;
	const char *argv[] = {"/usr/bin/script", "-qec", cmd, "/dev/null", NULL};

	snprintf(cmd, sizeof(cmd),
		 "%s run --profile %s -- /bin/bash --norc --noprofile -i -c 'echo \"flags=$-.\"; tty'",
		 aj_test_bin("agentjail"), profile);
	aj_test_exec(argv, -1, &r);
	cr_assert_eq(r.status, 0, "%s\n%s", r.out, r.err);
	cr_assert(strstr(r.out, "/dev/pts/0") != NULL, "%s", r.out);
	cr_assert(strstr(r.out, "no job control") == NULL, "%s", r.out);
	{
		const char *f = strstr(r.out, "flags=");
		const char *dot = f != NULL ? strchr(f, '.') : NULL;

		cr_assert(dot != NULL && memchr(f, 'm', (size_t)(dot - f)) != NULL, "%s", r.out);
	}
	aj_test_result_free(&r);
}
