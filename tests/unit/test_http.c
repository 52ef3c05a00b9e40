/*
 * Upstream header lines (common/http.c): what is a field, and what is
 * skipped rather than relayed.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <string.h>

#include "field.h"
#include "http.h"

static enum aj_http_line
parse(const char *line, struct aj_http_field *f)
{
	return aj_http_parse_line(line, strlen(line), f);
}

Test(http, status_end_and_fields)
{
	struct aj_http_field f;

	cr_assert_eq(parse("HTTP/1.1 200 OK\r\n", &f), AJ_HTTP_STATUS);
	cr_assert_eq(parse("\r\n", &f), AJ_HTTP_END);
	cr_assert_eq(parse("\n", &f), AJ_HTTP_END);
	cr_assert_eq(parse("Content-Type:  text/html \t\r\n", &f), AJ_HTTP_FIELD);
	cr_assert_eq(f.name_len, 12);
	cr_assert(memcmp(f.name, "Content-Type", 12) == 0);
	cr_assert_eq(f.value_len, 9);
	cr_assert(memcmp(f.value, "text/html", 9) == 0);
	cr_assert_eq(parse("X-Tab: a\tb\r\n", &f), AJ_HTTP_FIELD);
	cr_assert_eq(parse("X-Empty:\r\n", &f), AJ_HTTP_FIELD);
	cr_assert_eq(f.value_len, 0);
}

Test(http, malformed_lines_are_skipped)
{
	static const char *const bad[] = {
		" folded: continuation\r\n",
		"\tfolded\r\n",
		": no name\r\n",
		"no colon at all\r\n",
		"Bad Name: x\r\n",
		"Na\"me: x\r\n",
		"X: a\rb\r\n",
		"X: a\x01b\r\n",
		"X: \x7f\r\n",
	};
	struct aj_http_field f;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(parse(bad[i], &f), AJ_HTTP_SKIP, "%s", bad[i]);
	/* A NUL inside the value. */
	cr_assert_eq(aj_http_parse_line("X: a\0b\r\n", 8, &f), AJ_HTTP_SKIP);
}

Test(http, hop_by_hop_names)
{
	cr_assert(aj_field_is_hop_by_hop("connection", 10));
	cr_assert(aj_field_is_hop_by_hop("Transfer-Encoding", 17));
	cr_assert(aj_field_is_hop_by_hop("TE", 2));
	cr_assert_not(aj_field_is_hop_by_hop("Content-Length", 14));
	cr_assert_not(aj_field_is_hop_by_hop("Set-Cookie", 10));
}
