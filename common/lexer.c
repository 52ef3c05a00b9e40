/*
 * Tokens and numbers of profile lines.  Decimal digits only: no sign, no
 * spaces, no hex, so "0x10" or "-1" cannot slip through as something the
 * author did not mean.  Values stay below 2^63 so they survive JSON
 * (jansson integers are signed) and never collide with "unlimited".
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "lexer.h"

static bool
is_blank(char c)
{
	return c == ' ' || c == '\t';
}

char *
aj_lexer_skip_blanks(char *p)
{
	while (is_blank(*p))
		p++;
	return p;
}

/* '#' starts a comment only at the start or after a blank, so a value like
 * `a#b` survives. */
void
aj_lexer_strip_comment(char *line)
{
	char *p, *end;

	for (p = line; *p != '\0'; p++) {
		if (*p == '#' && (p == line || is_blank(p[-1]))) {
			*p = '\0';
			break;
		}
	}
	end = line + strlen(line);
	while (end > line && is_blank(end[-1]))
		*--end = '\0';
}

char *
aj_lexer_token(char **cursor)
{
	char *p = *cursor, *tok;

	while (is_blank(*p))
		p++;
	if (*p == '\0') {
		*cursor = p;
		return NULL;
	}
	tok = p;
	while (*p != '\0' && !is_blank(*p))
		p++;
	if (*p != '\0')
		*p++ = '\0';
	*cursor = p;
	return tok;
}

int
aj_lexer_number(const char *s, const char **end, uint64_t *out)
{
	uint64_t v = 0;
	const char *p = s;

	if (*p < '0' || *p > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned d = (unsigned)(*p - '0');

		if (v > ((uint64_t)INT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*end = p;
	*out = v;
	return 0;
}

/* Only upper-case suffixes: "64m" would read as 64 minutes as easily as
 * 64 MiB. */
int
aj_lexer_size(const char *s, uint64_t *out)
{
	const char *end;
	uint64_t v, mult = 1;
	int r;

	if (s == NULL)
		return -EINVAL;
	r = aj_lexer_number(s, &end, &v);
	if (r < 0)
		return r;
	switch (*end) {
	case '\0':
		break;
	case 'K':
		mult = 1ull << 10;
		break;
	case 'M':
		mult = 1ull << 20;
		break;
	case 'G':
		mult = 1ull << 30;
		break;
	case 'T':
		mult = 1ull << 40;
		break;
	default:
		return -EINVAL;
	}
	if (*end != '\0' && end[1] != '\0')
		return -EINVAL;
	if (v > (uint64_t)INT64_MAX / mult)
		return -ERANGE;
	*out = v * mult;
	return 0;
}
