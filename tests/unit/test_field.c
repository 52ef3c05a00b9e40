/*
 * Unit tests for RFC 9110 field syntax (common/field.c), the one rule the
 * REQUEST parser, the upstream header reader and the client share.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <string.h>

#include "field.h"

static bool
token(const char *s)
{
	return aj_field_is_token(s, strlen(s));
}

static bool
value(const char *s)
{
	return aj_field_is_value(s, strlen(s));
}

Test(field, tokens)
{
	cr_assert(token("Content-Type"));
	cr_assert(token("x!#$%&'*+-.^_`|~9"));
	cr_assert_not(token(""));
	cr_assert_not(token(" Host"), "a leading blank is obsolete folding");
	cr_assert_not(token("Host:"));
	cr_assert_not(token("a b"));
	cr_assert_not(token("na\xc3\xafve"), "no bytes beyond ASCII");
	cr_assert_not(aj_field_is_token("a\0b", 3), "no NUL inside");
	for (unsigned c = 0; c < 256; c++)
		if (c < 0x21 || c >= 0x7f || strchr("\"(),/:;<=>?@[\\]{}", (int)c) != NULL)
			cr_assert_not(aj_field_is_tchar((unsigned char)c), "0x%02x", c);
}

Test(field, values)
{
	cr_assert(value(""));
	cr_assert(value("text/html; q=0.9\tnext"));
	cr_assert(value("caf\xc3\xa9"), "obs-text is a value's, not a token's");
	cr_assert_not(value("a\r\nInjected: yes"));
	cr_assert_not(value("a\nb"));
	cr_assert_not(value("a\x7f"));
	cr_assert_not(aj_field_is_value("a\0b", 3));
}
