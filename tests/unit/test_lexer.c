/*
 * Unit tests for the lexer of profile lines (common/lexer.c): comments,
 * blanks, tokens, decimal numbers and sizes.  The same values mean the
 * same wherever a profile writes them, so the edges are pinned here.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "lexer.h"
#include "util.h"

static void
expect_stripped(const char *line, const char *want)
{
	char buf[256];

	snprintf(buf, sizeof(buf), "%s", line);
	aj_lexer_strip_comment(buf);
	cr_assert_str_eq(buf, want, "'%s' -> '%s', want '%s'", line, buf, want);
}

Test(lexer, comments_start_at_a_blank_or_the_line_start)
{
	expect_stripped("# only a comment", "");
	expect_stripped("hostname a # the name", "hostname a");
	expect_stripped("hostname a\t# after a tab", "hostname a");
	/* Inside a word '#' is text: a value like `a#b` survives. */
	expect_stripped("env set X=a#b", "env set X=a#b");
	expect_stripped("env set X=a#b # but this goes", "env set X=a#b");
	/* Trailing blanks go too, with or without a comment. */
	expect_stripped("rlimit nofile 1024 \t ", "rlimit nofile 1024");
	expect_stripped("   ", "");
	expect_stripped("", "");
	/* Leading blanks stay: the parser skips them. */
	expect_stripped("  include default", "  include default");
}

Test(lexer, skip_blanks_skips_spaces_and_tabs_only)
{
	char line[] = " \t x\ny";
	char empty[] = "";
	char newline[] = "\nz";

	cr_assert_str_eq(aj_lexer_skip_blanks(line), "x\ny");
	cr_assert_eq(aj_lexer_skip_blanks(empty), empty);
	/* A newline is not a blank (lines are split before lexing). */
	cr_assert_eq(aj_lexer_skip_blanks(newline), newline);
}

Test(lexer, tokens_are_cut_in_place)
{
	char line[] = "  fetch\tallow  GET,HEAD https://x.example/** ";
	char *cursor = line;
	const char *want[] = {"fetch", "allow", "GET,HEAD", "https://x.example/**"};

	for (size_t i = 0; i < AJ_ARRAY_SIZE(want); i++) {
		char *tok = aj_lexer_token(&cursor);

		cr_assert_not_null(tok, "token %zu missing", i);
		cr_assert_str_eq(tok, want[i]);
		/* The token lives in the line itself. */
		cr_assert(tok >= line && tok < line + sizeof(line));
	}
	cr_assert_null(aj_lexer_token(&cursor));
	/* At the end the cursor stays at the end: asking again is safe. */
	cr_assert_null(aj_lexer_token(&cursor));
	cr_assert_eq(*cursor, '\0');
}

Test(lexer, no_token_in_an_empty_or_blank_line)
{
	char empty[] = "", blank[] = " \t ";
	char *c1 = empty, *c2 = blank;

	cr_assert_null(aj_lexer_token(&c1));
	cr_assert_null(aj_lexer_token(&c2));
	cr_assert_eq(*c2, '\0');
}

Test(lexer, the_cursor_continues_after_one_token)
{
	char line[] = "env keep PATH HOME";
	char *cursor = line;

	cr_assert_str_eq(aj_lexer_token(&cursor), "env");
	/* The rest of the line, unsplit, is what a directive reads. */
	cr_assert_str_eq(cursor, "keep PATH HOME");
}

Test(lexer, numbers_are_decimal_digits_only)
{
	static const struct {
		const char *s;
		int rc;
		uint64_t v;
		size_t used; /* digits consumed */
	} cases[] = {
		{"0", 0, 0, 1},
		{"42", 0, 42, 2},
		{"007", 0, 7, 3},
		{"1024K", 0, 1024, 4},
		{"12 34", 0, 12, 2},
		{"9223372036854775807", 0, (uint64_t)INT64_MAX, 19},
		{"9223372036854775808", -ERANGE, 0, 0},
		{"18446744073709551616", -ERANGE, 0, 0},
		{"", -EINVAL, 0, 0},
		{"-1", -EINVAL, 0, 0},
		{"+1", -EINVAL, 0, 0},
		{" 1", -EINVAL, 0, 0},
		{"x1", -EINVAL, 0, 0},
	};

	for (size_t i = 0; i < AJ_ARRAY_SIZE(cases); i++) {
		const char *end = NULL;
		uint64_t v = 777;
		int r = aj_lexer_number(cases[i].s, &end, &v);

		cr_assert_eq(r, cases[i].rc, "'%s': rc %d", cases[i].s, r);
		if (r == 0) {
			cr_assert_eq(v, cases[i].v, "'%s': %llu", cases[i].s,
				     (unsigned long long)v);
			cr_assert_eq(end, cases[i].s + cases[i].used, "'%s': end", cases[i].s);
		} else {
			/* Outputs are written only on success. */
			cr_assert_eq(v, 777, "'%s': output written on failure", cases[i].s);
			cr_assert_null(end, "'%s': end written on failure", cases[i].s);
		}
	}
}

Test(lexer, hex_and_octal_do_not_slip_through)
{
	const char *end = NULL;
	uint64_t v = 0;

	/* "0x10" is the number 0 followed by text: the caller sees the 'x'. */
	cr_assert_eq(aj_lexer_number("0x10", &end, &v), 0);
	cr_assert_eq(v, 0);
	cr_assert_eq(*end, 'x');
	cr_assert_eq(aj_lexer_size("0x10", &v), -EINVAL);
	/* A leading zero is decimal, not octal. */
	cr_assert_eq(aj_lexer_size("010", &v), 0);
	cr_assert_eq(v, 10);
}

Test(lexer, sizes_take_one_upper_case_suffix)
{
	static const struct {
		const char *s;
		int rc;
		uint64_t v;
	} cases[] = {
		{"0", 0, 0},
		{"4096", 0, 4096},
		{"1K", 0, 1ull << 10},
		{"64M", 0, 64ull << 20},
		{"8G", 0, 8ull << 30},
		{"1T", 0, 1ull << 40},
		{"0K", 0, 0},
		{"8388607T", 0, 8388607ull << 40},
		/* 2^63 bytes or more: out of range, not wrapped. */
		{"8388608T", -ERANGE, 0},
		{"8589934592G", -ERANGE, 0},
		{"9223372036854775808", -ERANGE, 0},
		{"64m", -EINVAL, 0},
		{"64MB", -EINVAL, 0},
		{"64MiB", -EINVAL, 0},
		{"64 M", -EINVAL, 0},
		{"M", -EINVAL, 0},
		{"1P", -EINVAL, 0},
		{"1.5G", -EINVAL, 0},
		{"", -EINVAL, 0},
	};

	for (size_t i = 0; i < AJ_ARRAY_SIZE(cases); i++) {
		uint64_t v = 99;
		int r = aj_lexer_size(cases[i].s, &v);

		cr_assert_eq(r, cases[i].rc, "'%s': rc %d", cases[i].s, r);
		cr_assert_eq(v, r == 0 ? cases[i].v : 99, "'%s': %llu", cases[i].s,
			     (unsigned long long)v);
	}
	cr_assert_eq(aj_lexer_size(NULL, NULL), -EINVAL);
}
