/*
 * The caller's terminal (issue 9, item 1): the agent shares it with
 * agentjail and may stop its output (tcflow(TCOOFF) is an ordinary tty
 * ioctl), after which every write to it blocks.  Nothing the agent does to
 * its stdio may block the supervisor: the jail still ends at its time
 * limit, agentjail exits with the timeout status, and the lines the
 * terminal did not take are counted in the exit event.
 *
 * Each test runs agentjail in a session of its own on a pty the test
 * makes, as a terminal emulator would, and never reads the pty until
 * agentjail is gone; a guard kills agentjail if it has not ended by then.
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
