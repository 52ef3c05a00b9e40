/*
 * Unit tests for the agent's terminal relay (supervisor/pty.c), between two
 * real pseudo-terminals: "caller" stands for the terminal agentjail runs
 * on, "agent" for the one the jail's init makes.  Keys typed at the caller
 * reach the agent's slave, the agent's output reaches the caller, raw mode
 * comes and goes with the caller's own modes restored, and the relay never
 * blocks.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "supervisor.h"

static void
guard(void)
{
	alarm(20);
}

struct pair {
	int master, slave;
};

static void
open_pair(struct pair *p, unsigned short rows, unsigned short cols)
{
	struct winsize ws = {.ws_row = rows, .ws_col = cols};

	cr_assert_eq(openpty(&p->master, &p->slave, NULL, NULL, &ws), 0);
}

/* Relay until FD holds LEN bytes to read (or give up), and read them. */
static void
relay_and_read(struct aj_pty *pty, int fd, char *buf, size_t len)
{
	size_t got = 0;

	cr_assert_eq(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
	for (int i = 0; i < 200 && got < len; i++) {
		ssize_t n;

		aj_pty_relay(pty);
		n = read(fd, buf + got, len - got);
		if (n > 0)
			got += (size_t)n;
		else
			poll(NULL, 0, 10);
	}
	buf[got] = '\0';
}

Test(pty, which_stdio_fds_are_terminals)
{
	struct pair caller;
	int p[2];

	open_pair(&caller, 24, 80);
	cr_assert_eq(pipe(p), 0);
	cr_assert_eq(aj_pty_terminals((int[]){caller.slave, p[1], caller.slave}), 5);
	cr_assert_eq(aj_pty_terminals((int[]){p[0], p[1], p[1]}), 0);
	close(p[0]);
	close(p[1]);
	close(caller.master);
	close(caller.slave);
}

Test(pty, keys_and_output_cross_and_raw_mode_is_undone, .init = guard)
{
	struct pair caller, agent;
	struct aj_pty *pty;
	struct termios t, before;
	char buf[64];
	int stdio[3];

	open_pair(&caller, 24, 80);
	open_pair(&agent, 0, 0);
	stdio[0] = stdio[1] = stdio[2] = caller.slave;
	cr_assert_eq(tcgetattr(caller.slave, &before), 0);
	cr_assert_eq(aj_pty_new(agent.master, stdio, 7, &pty), 0);
	cr_assert_eq(aj_pty_enter(pty), 0);
	cr_assert_eq(tcgetattr(caller.slave, &t), 0);
	cr_assert_eq(t.c_lflag & (ICANON | ECHO | ISIG), 0, "the caller's terminal is not raw");
	cr_assert(aj_pty_is_raw_on(pty, caller.slave));

	/* The caller's window size, copied. */
	aj_pty_resize(pty);
	{
		struct winsize ws;

		cr_assert_eq(ioctl(agent.slave, TIOCGWINSZ, &ws), 0);
		cr_assert_eq(ws.ws_row, 24);
		cr_assert_eq(ws.ws_col, 80);
	}

	/* A key, raw: no echo at the caller, the byte at the agent's slave
	 * (the agent's terminal is raw too, so it reads the byte as typed). */
	{
		struct termios raw;

		cr_assert_eq(tcgetattr(agent.slave, &raw), 0);
		cfmakeraw(&raw);
		cr_assert_eq(tcsetattr(agent.slave, TCSANOW, &raw), 0);
	}
	cr_assert_eq(write(caller.master, "k\003", 2), 2);
	relay_and_read(pty, agent.slave, buf, 2);
	cr_assert_str_eq(buf, "k\003");

	/* The agent's output at the caller. */
	cr_assert_eq(write(agent.slave, "out", 3), 3);
	relay_and_read(pty, caller.master, buf, 3);
	cr_assert_str_eq(buf, "out");

	aj_pty_leave(pty);
	cr_assert_eq(tcgetattr(caller.slave, &t), 0);
	cr_assert_eq(t.c_lflag, before.c_lflag, "the caller's modes were not restored");
	cr_assert(!aj_pty_is_raw_on(pty, caller.slave));
	aj_pty_free(pty); /* closes agent.master */
	close(agent.slave);
	close(caller.master);
	close(caller.slave);
}

Test(pty, output_alone_keeps_the_callers_modes, .init = guard)
{
	struct pair caller, agent;
	struct aj_pty *pty;
	struct termios t;
	int p[2], stdio[3];

	open_pair(&caller, 24, 80);
	open_pair(&agent, 0, 0);
	cr_assert_eq(pipe(p), 0);
	stdio[0] = p[0];
	stdio[1] = stdio[2] = caller.slave;
	cr_assert_eq(aj_pty_new(agent.master, stdio, 6, &pty), 0);
	cr_assert_eq(aj_pty_enter(pty), 0);
	cr_assert_eq(tcgetattr(caller.slave, &t), 0);
	cr_assert(t.c_lflag & ICANON, "raw mode without keys to relay");
	aj_pty_free(pty);
	close(agent.slave);
	close(p[0]);
	close(p[1]);
	close(caller.master);
	close(caller.slave);
}

/* A caller's terminal that takes nothing (its output stopped): the relay
 * returns at once, holds a bounded amount, and the agent's writes wait. */
Test(pty, a_stopped_caller_terminal_never_blocks_the_relay, .init = guard)
{
	struct pair caller, agent;
	struct aj_pty *pty;
	struct aj_pty_wants w;
	char chunk[4096];
	int stdio[3];

	open_pair(&caller, 24, 80);
	open_pair(&agent, 0, 0);
	stdio[0] = stdio[1] = stdio[2] = caller.slave;
	cr_assert_eq(aj_pty_new(agent.master, stdio, 7, &pty), 0);
	cr_assert_eq(tcflow(caller.slave, TCOOFF), 0);
	memset(chunk, 'x', sizeof(chunk));
	cr_assert_eq(fcntl(agent.slave, F_SETFL, O_NONBLOCK), 0);
	for (int i = 0; i < 200; i++) {
		(void)!write(agent.slave, chunk, sizeof(chunk));
		aj_pty_relay(pty);
	}
	aj_pty_wants(pty, &w);
	cr_assert(w.write_caller, "nothing waits for the stopped terminal");
	cr_assert(!w.read_master, "the relay reads on with its buffer full");
	/* The end: a bounded drain, the rest counted. */
	close(agent.slave);
	aj_pty_drain(pty, 100);
	cr_assert_gt(aj_pty_lost(pty), 0);
	(void)tcflow(caller.slave, TCOON);
	aj_pty_free(pty);
	close(caller.master);
	close(caller.slave);
}
