/*
 * Unit tests for the run's output (supervisor/output.c): lines are never
 * waited for, whatever the file does (a pipe nobody reads, a terminal whose
 * output was stopped with tcflow(TCOOFF), a socket), the caller's open file
 * description stays blocking, what waits is written in order once there
 * is room, and what cannot be written is counted.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <pty.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "supervisor.h"

#define LINE "a line of forty bytes, newline included\n"

/* Any write that blocks ends the test here, not in a hang. */
static void
guard(void)
{
	alarm(20);
}

/* Queue lines until the file has taken as much as it will; returns the
 * lines queued in all.  Each call must return at once. */
static unsigned
fill(struct aj_output *o, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		aj_output_line(o, LINE, strlen(LINE));
	return n;
}

static size_t
read_some(int fd, char *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, buf + got, len - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	return got;
}

Test(output, a_pipe_nobody_reads_never_blocks_and_keeps_the_order, .init = guard)
{
	struct aj_output *o;
	int p[2], flags;
	size_t bound = 128 * 1024, total, got;
	char *buf;

	cr_assert_eq(pipe2(p, O_CLOEXEC), 0); /* a blocking pipe, as a caller's would be */
	cr_assert_eq(aj_output_new(p[1], bound, &o), 0);
	/* 64 KiB fill the pipe, 128 KiB more the queue; the rest is lost. */
	fill(o, 6000);
	cr_assert(aj_output_waiting(o));
	cr_assert_gt(aj_output_lost(o), 0, "more than pipe and queue hold was taken");
	/* The caller's description was not made non-blocking. */
	flags = fcntl(p[1], F_GETFL);
	cr_assert_not(flags & O_NONBLOCK, "the caller's pipe became non-blocking");
	cr_assert_neq(aj_output_fd(o), p[1], "no description of its own");

	/* Room again: everything kept arrives, whole lines, in order. */
	total = (6000 - aj_output_lost(o)) * strlen(LINE);
	buf = malloc(total + 1);
	cr_assert_not_null(buf);
	cr_assert_eq(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
	got = 0;
	for (int round = 0; round < 1000 && got < total; round++) {
		got += read_some(p[0], buf + got, total - got);
		(void)aj_output_flush(o);
	}
	cr_assert_eq(got, total);
	cr_assert_not(aj_output_waiting(o));
	for (size_t off = 0; off < total; off += strlen(LINE))
		cr_assert(memcmp(buf + off, LINE, strlen(LINE)) == 0, "line at %zu broken", off);
	free(buf);
	aj_output_free(o);
	close(p[0]);
	close(p[1]);
}

Test(output, a_stopped_terminal_never_blocks, .init = guard)
{
	struct aj_output *o;
	int master, slave;
	char buf[4096];
	ssize_t n;

	cr_assert_eq(openpty(&master, &slave, NULL, NULL, NULL), 0);
	/* What an agent on the caller's terminal can do: stop its output. */
	cr_assert_eq(tcflow(slave, TCOOFF), 0);
	cr_assert_eq(aj_output_new(slave, 4096, &o), 0);
	fill(o, 10);
	cr_assert(aj_output_waiting(o), "a stopped terminal took the lines");
	aj_output_drain((struct aj_output *[]){o}, 1, 100);
	cr_assert_eq(aj_output_lost(o), 10, "lines waiting at the end are counted");
	/* Output restarted, new lines go through. */
	cr_assert_eq(tcflow(slave, TCOON), 0);
	aj_output_line(o, LINE, strlen(LINE));
	cr_assert_not(aj_output_waiting(o));
	n = read(master, buf, sizeof(buf) - 1);
	cr_assert_gt(n, 0);
	buf[n] = '\0';
	cr_assert_not_null(strstr(buf, "a line of forty bytes"), "%s", buf);
	aj_output_free(o);
	close(master);
	close(slave);
}

Test(output, a_socket_nobody_reads_never_blocks, .init = guard)
{
	struct aj_output *o;
	int sv[2];

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	cr_assert_eq(aj_output_new(sv[0], 4096, &o), 0);
	fill(o, 20000);
	cr_assert(aj_output_waiting(o));
	cr_assert_gt(aj_output_lost(o), 0);
	cr_assert_not(fcntl(sv[0], F_GETFL) & O_NONBLOCK);
	aj_output_free(o);
	close(sv[0]);
	close(sv[1]);
}

Test(output, a_reader_gone_loses_counted_lines_without_sigpipe, .init = guard)
{
	struct aj_output *o;
	int p[2];

	cr_assert_neq(signal(SIGPIPE, SIG_DFL), SIG_ERR);
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	cr_assert_eq(aj_output_new(p[1], 4096, &o), 0);
	close(p[0]);
	fill(o, 3);
	cr_assert_eq(aj_output_lost(o), 3);
	cr_assert_not(aj_output_waiting(o));
	aj_output_free(o);
	close(p[1]);
}

Test(output, a_regular_file_takes_everything, .init = guard)
{
	struct aj_output *o;
	char path[] = "/tmp/aj-output-XXXXXX";
	int fd = mkstemp(path);

	cr_assert_geq(fd, 0);
	unlink(path);
	cr_assert_eq(aj_output_new(fd, 64, &o), 0);
	fill(o, 1000);
	cr_assert_eq(aj_output_lost(o), 0);
	cr_assert_eq(lseek(fd, 0, SEEK_END), (off_t)(1000 * strlen(LINE)));
	cr_assert_eq(aj_output_fd(o), fd, "a file is written as it is");
	aj_output_free(o);
	close(fd);
}

Test(output, drain_waits_a_bounded_time, .init = guard)
{
	struct aj_output *o;
	struct timespec a, b;
	int p[2];
	double ms;

	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	cr_assert_eq(aj_output_new(p[1], 1 << 20, &o), 0);
	fill(o, 3000); /* more than the pipe holds */
	cr_assert(aj_output_waiting(o));
	clock_gettime(CLOCK_MONOTONIC, &a);
	aj_output_drain((struct aj_output *[]){o}, 1, 200);
	clock_gettime(CLOCK_MONOTONIC, &b);
	ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
	cr_assert_lt(ms, 5000, "drain waited %.0f ms", ms);
	cr_assert_gt(aj_output_lost(o), 0);
	cr_assert_not(aj_output_waiting(o));
	aj_output_free(o);
	close(p[0]);
	close(p[1]);
}

Test(output, a_raw_terminal_gets_crlf_line_ends, .init = guard)
{
	struct aj_output *o;
	char buf[64] = "";
	int p[2];

	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	cr_assert_eq(aj_output_new(p[1], 1024, &o), 0);
	aj_output_set_crlf(o, true);
	aj_output_line(o, "a\n", 2);
	aj_output_line(o, "b\r\n", 3); /* already CRLF: not doubled */
	aj_output_set_crlf(o, false);
	aj_output_line(o, "c\n", 2);
	aj_output_free(o);
	close(p[1]);
	cr_assert_eq(read_some(p[0], buf, sizeof(buf) - 1), 8);
	cr_assert_str_eq(buf, "a\r\nb\r\nc\n");
	close(p[0]);
}

Test(output, a_crlf_line_that_does_not_fit_is_lost_whole, .init = guard)
{
	struct aj_output *o;
	int p[2];

	cr_assert_eq(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
	/* Nobody reads: fill the pipe first, then the queue's 8 bytes. */
	while (write(p[1], LINE, strlen(LINE)) > 0)
		;
	cr_assert_eq(fcntl(p[1], F_SETFL, 0), 0);
	cr_assert_eq(aj_output_new(p[1], 8, &o), 0);
	aj_output_set_crlf(o, true);
	aj_output_line(o, "1234567\n", 8); /* 9 bytes as CRLF */
	cr_assert_eq(aj_output_lost(o), 1);
	aj_output_line(o, "123456\n", 7); /* 8 bytes: fits */
	cr_assert_eq(aj_output_lost(o), 1);
	aj_output_free(o);
	close(p[0]);
	close(p[1]);
}
