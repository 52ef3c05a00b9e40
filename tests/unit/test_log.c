/*
 * Unit tests for logging (common/log.c): escaping of untrusted text, so a
 * hostile URL or header cannot forge a log line, and aj_err(), the
 * library tier's "message and -errno" return.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "util.h"

static void
expect_escaped(const char *in, const char *want)
{
	char out[256];

	memset(out, 'Z', sizeof(out));
	aj_log_escape(in, out, sizeof(out));
	cr_assert_str_eq(out, want, "escape('%s')", in);
}

Test(log, printable_ascii_passes_unchanged)
{
	expect_escaped("", "");
	expect_escaped("GET https://docs.example.org/a?b=c#d",
		       "GET https://docs.example.org/a?b=c#d");
	expect_escaped(" ~!\"'{}", " ~!\"'{}");
}

Test(log, control_characters_cannot_forge_a_line)
{
	/* A newline would start a line of the attacker's choosing. */
	expect_escaped("x\nagentjail: fetch allowed", "x\\x0aagentjail: fetch allowed");
	expect_escaped("a\rb", "a\\x0db");
	expect_escaped("\t", "\\x09");
	expect_escaped("\x1b[2J", "\\x1b[2J"); /* a terminal escape sequence */
	expect_escaped("\x7f", "\\x7f");
	expect_escaped("\x01", "\\x01");
}

Test(log, backslash_and_non_ascii_are_escaped)
{
	/* The backslash itself, so "\x0a" in the input is not read back as
	 * an escaped newline. */
	expect_escaped("\\x0a", "\\x5cx0a");
	/* UTF-8 bytes one by one: the output is plain ASCII. */
	expect_escaped("caf\xc3\xa9", "caf\\xc3\\xa9");
	expect_escaped("\xff", "\\xff");
}

Test(log, output_is_bounded_and_never_cuts_an_escape)
{
	char out[8];

	memset(out, 'Z', sizeof(out));
	aj_log_escape("abcdefghij", out, sizeof(out));
	cr_assert_str_eq(out, "abcdefg");

	/* "ab" + "\x0a" needs 2 + 4 bytes and the NUL: the escape does not fit
	 * whole in 6, so it is left out rather than cut. */
	memset(out, 'Z', sizeof(out));
	aj_log_escape("ab\ncd", out, 6);
	cr_assert_str_eq(out, "ab");
	memset(out, 'Z', sizeof(out));
	aj_log_escape("ab\ncd", out, 7);
	cr_assert_str_eq(out, "ab\\x0a");

	memset(out, 'Z', sizeof(out));
	aj_log_escape("abc", out, 1);
	cr_assert_str_eq(out, "");
	/* No room at all: nothing is written. */
	memset(out, 'Z', sizeof(out));
	aj_log_escape("abc", out, 0);
	cr_assert_eq(out[0], 'Z');
}

Test(log, escaped_output_has_only_printable_ascii)
{
	char in[256], out[1100];

	for (int i = 1; i < 256; i++)
		in[i - 1] = (char)i;
	in[255] = '\0';
	aj_log_escape(in, out, sizeof(out));
	cr_assert_eq(strlen(out), 95 - 1 + (255 - 94) * 4, "%zu bytes", strlen(out));
	for (const char *p = out; *p != '\0'; p++)
		cr_assert(*p >= 0x20 && *p < 0x7f, "byte 0x%02x in the output", (unsigned char)*p);
}

Test(log, err_formats_and_returns_the_code)
{
	char err[64] = "untouched";

	cr_assert_eq(aj_err(err, sizeof(err), -EINVAL, "%s:%d: bad %s", "f.profile", 3, "thing"),
		     -EINVAL);
	cr_assert_str_eq(err, "f.profile:3: bad thing");
	/* The code is returned unchanged, whatever it is. */
	cr_assert_eq(aj_err(err, sizeof(err), -ENOENT, "x"), -ENOENT);
	cr_assert_eq(aj_err(err, sizeof(err), 0, "y"), 0);
	cr_assert_str_eq(err, "y");
}

Test(log, err_truncates_and_accepts_no_buffer)
{
	char err[8];

	cr_assert_eq(aj_err(err, sizeof(err), -E2BIG, "%s", "a long message"), -E2BIG);
	cr_assert_str_eq(err, "a long ");
	/* A caller that wants no message passes NULL (or no room). */
	cr_assert_eq(aj_err(NULL, 0, -ENOMEM, "ignored %d", 1), -ENOMEM);
	memcpy(err, "keep", 5);
	cr_assert_eq(aj_err(err, 0, -EIO, "ignored"), -EIO);
	cr_assert_str_eq(err, "keep");
}

static void
keep_line(const char *line, size_t len, void *arg)
{
	char *out = arg;

	snprintf(out, 256, "%.*s", (int)len, line);
}

static void *
log_from_another_thread(void *arg)
{
	(void)arg;
	aj_log_info("from another thread");
	return NULL;
}

Test(log, a_sink_takes_the_threads_lines_whole)
{
	char got[256] = "";
	pthread_t t;

	aj_log_set_sink(keep_line, got);
	aj_log_info("queued %d", 7);
	cr_assert_str_eq(got, "agentjail: queued 7\n");
	/* Per thread: another thread's line does not reach this sink. */
	cr_assert_eq(pthread_create(&t, NULL, log_from_another_thread, NULL), 0);
	cr_assert_eq(pthread_join(t, NULL), 0);
	cr_assert_str_eq(got, "agentjail: queued 7\n");
	aj_log_set_sink(NULL, NULL);
}
