/*
 * Unit tests for the event stream (supervisor/events.c): one JSON object
 * per line with the common fields of docs/EVENTS.md (type, jail, seq,
 * time), the same line to the fd and the callback, and a reader that goes
 * away costs counted lines, not the run (no SIGPIPE).
 */
#include "config.h"

#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "supervisor.h"

static void
collect(const char *line, void *arg)
{
	json_t *lines = arg;

	/* The callback gets the line without its newline. */
	cr_assert_null(strchr(line, '\n'), "a newline in '%s'", line);
	json_array_append_new(lines, json_string(line));
}

static char *
read_all(int fd)
{
	char *buf = NULL;
	size_t len = 0;
	ssize_t n;

	do {
		buf = realloc(buf, len + 4096 + 1);
		cr_assert_not_null(buf);
		n = read(fd, buf + len, 4096);
		cr_assert_geq(n, 0, "read: %s", strerror(errno));
		len += (size_t)n;
	} while (n > 0);
	buf[len] = '\0';
	return buf;
}

static bool
is_hex(const char *s, size_t len)
{
	if (strlen(s) != len)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* "2026-11-25T02:52:52.927Z" */
static bool
is_time(const char *s)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";

	if (s == NULL || strlen(s) != sizeof(shape) - 1)
		return false;
	for (size_t i = 0; i < sizeof(shape) - 1; i++)
		if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != shape[i])
			return false;
	return true;
}

Test(events, json_lines_with_the_common_fields)
{
	struct aj_output *out;
	struct aj_events *ev;
	json_t *cb_lines = json_array();
	char *text, *line, *save = NULL;
	int p[2], n = 0;

	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	cr_assert_eq(aj_output_new(p[1], 1 << 20, &out), 0);
	cr_assert_eq(aj_events_new(out, collect, cb_lines, &ev), 0);
	cr_assert(is_hex(aj_events_jail_id(ev), 32), "jail id '%s'", aj_events_jail_id(ev));
	aj_events_emit(ev, "start", json_pack("{s:s}", "version", PACKAGE_VERSION));
	aj_events_emit(ev, "violation", json_pack("{s:s, s:i}", "syscall", "socket", "pid", 7));
	aj_events_emit(ev, "exit", NULL);
	aj_events_free(ev);
	cr_assert_eq(aj_output_lost(out), 0);
	aj_output_free(out);
	close(p[1]);
	text = read_all(p[0]);
	close(p[0]);

	cr_assert_eq(text[strlen(text) - 1], '\n', "the last line is not ended");
	for (line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		static const char *const types[] = {"start", "violation", "exit"};
		json_error_t err;
		json_t *obj = json_loads(line, JSON_REJECT_DUPLICATES, &err);

		cr_assert_not_null(obj, "not JSON: %s (%s)", line, err.text);
		cr_assert_lt(n, 3, "more lines than events");
		cr_assert_str_eq(json_string_value(json_object_get(obj, "type")), types[n]);
		cr_assert_eq(json_integer_value(json_object_get(obj, "seq")), n + 1, "%s", line);
		cr_assert(is_hex(json_string_value(json_object_get(obj, "jail")), 32), "%s", line);
		cr_assert(is_time(json_string_value(json_object_get(obj, "time"))), "%s", line);
		/* The same line reached the callback. */
		cr_assert_str_eq(json_string_value(json_array_get(cb_lines, (size_t)n)), line);
		if (n == 1) {
			cr_assert_str_eq(json_string_value(json_object_get(obj, "syscall")),
					 "socket");
			cr_assert_eq(json_integer_value(json_object_get(obj, "pid")), 7);
		}
		json_decref(obj);
		n++;
	}
	cr_assert_eq(n, 3);
	cr_assert_eq(json_array_size(cb_lines), 3);
	json_decref(cb_lines);
	free(text);
}

Test(events, every_line_is_plain_ascii)
{
	struct aj_events *ev;
	json_t *lines = json_array();
	const char *line;

	cr_assert_eq(aj_events_new(NULL, collect, lines, &ev), 0);
	/* Text from the agent: a newline and non-ASCII stay escaped. */
	aj_events_emit(ev, "fetch", json_pack("{s:s}", "url", "http://x/\n\xc3\xa9"));
	aj_events_free(ev);
	line = json_string_value(json_array_get(lines, 0));
	cr_assert_not_null(line);
	for (const char *c = line; *c != '\0'; c++)
		cr_assert((unsigned char)*c >= 0x20 && (unsigned char)*c < 0x7f,
			  "byte 0x%02x in '%s'", (unsigned char)*c, line);
	/* jansson writes the hex digits in either case. */
	cr_assert_not_null(strcasestr(line, "\\n\\u00e9"), "%s", line);
	json_decref(lines);
}

Test(events, sequence_numbers_have_no_gap)
{
	struct aj_events *ev;
	json_t *lines = json_array();

	cr_assert_eq(aj_events_new(NULL, collect, lines, &ev), 0);
	for (int i = 0; i < 100; i++)
		aj_events_emit(ev, "violation", NULL);
	aj_events_free(ev);
	cr_assert_eq(json_array_size(lines), 100);
	for (size_t i = 0; i < 100; i++) {
		json_t *obj = json_loads(json_string_value(json_array_get(lines, i)), 0, NULL);

		cr_assert_not_null(obj);
		cr_assert_eq(json_integer_value(json_object_get(obj, "seq")), (json_int_t)i + 1);
		json_decref(obj);
	}
	json_decref(lines);
}

Test(events, each_run_has_its_own_jail_id)
{
	struct aj_events *a, *b;

	cr_assert_eq(aj_events_new(NULL, NULL, NULL, &a), 0);
	cr_assert_eq(aj_events_new(NULL, NULL, NULL, &b), 0);
	cr_assert_str_neq(aj_events_jail_id(a), aj_events_jail_id(b));
	/* With neither fd nor callback the events go nowhere, and cost
	 * nothing (their fields are released: the leak check says so). */
	aj_events_emit(a, "start", json_pack("{s:s}", "k", "v"));
	aj_events_free(a);
	aj_events_free(b);
	aj_events_free(NULL);
}

Test(events, no_stream_takes_the_fields_too)
{
	/* A NULL stream still takes the reference (ASan's leak check). */
	aj_events_emit(NULL, "start", json_pack("{s:s}", "k", "v"));
}

Test(events, a_closed_reader_costs_counted_lines_not_the_run, .init = cr_redirect_stderr)
{
	struct aj_output *out;
	struct aj_events *ev;
	json_t *lines = json_array();
	sigset_t pending, mask;
	int p[2];

	cr_assert_neq(signal(SIGPIPE, SIG_DFL), SIG_ERR);
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	close(p[0]);
	cr_assert_eq(aj_output_new(p[1], 1 << 20, &out), 0);
	cr_assert_eq(aj_events_new(out, collect, lines, &ev), 0);
	/* A SIGPIPE would kill this test: EPIPE loses the lines, counted. */
	aj_events_emit(ev, "start", NULL);
	aj_events_emit(ev, "violation", NULL);
	aj_events_emit(ev, "exit", NULL);
	cr_assert_eq(aj_output_lost(out), 3);
	/* The callback still hears every event. */
	cr_assert_eq(json_array_size(lines), 3);
	/* No SIGPIPE is left pending, and the signal mask is as it was. */
	cr_assert_eq(sigpending(&pending), 0);
	cr_assert_not(sigismember(&pending, SIGPIPE));
	cr_assert_eq(sigprocmask(SIG_SETMASK, NULL, &mask), 0);
	cr_assert_not(sigismember(&mask, SIGPIPE));
	aj_events_free(ev);
	aj_output_free(out);
	close(p[1]);
	json_decref(lines);
	fflush(stderr);
	/* Nothing per line: the run's end reports the counts (run.c). */
	cr_assert_stderr_eq_str("");
}

Test(events, a_caller_blocking_sigpipe_keeps_its_pending_signal)
{
	struct aj_output *out;
	struct aj_events *ev;
	sigset_t set, pending;
	int p[2];

	/* An embedding program that blocks SIGPIPE itself may have one of
	 * its own pending: the stream must not consume it. */
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	cr_assert_eq(sigprocmask(SIG_BLOCK, &set, NULL), 0);
	cr_assert_eq(raise(SIGPIPE), 0);
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	close(p[0]);
	cr_assert_eq(aj_output_new(p[1], 1 << 20, &out), 0);
	cr_assert_eq(aj_events_new(out, NULL, NULL, &ev), 0);
	aj_events_emit(ev, "start", NULL);
	aj_events_free(ev);
	aj_output_free(out);
	close(p[1]);
	cr_assert_eq(sigpending(&pending), 0);
	cr_assert(sigismember(&pending, SIGPIPE), "the caller's pending SIGPIPE was consumed");
}
