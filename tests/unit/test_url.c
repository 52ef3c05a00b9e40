/*
 * Unit tests for the URL normaliser (common/url.c): one table row per
 * encoding trick from THREATS 14-15, so that what the policy matches is
 * exactly what the broker fetches.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "url.h"

struct ok_case {
	const char *in;
	const char *normalised;
	const char *host;
	int kind;
	unsigned port;
	const char *path;
	const char *query;
};

static const struct ok_case ok_cases[] = {
	{"http://example.org/", "http://example.org/", "example.org", AJ_HOST_NAME, 80, "/", ""},
	{"HTTP://EXAMPLE.ORG:80/", "http://example.org/", "example.org", AJ_HOST_NAME, 80, "/", ""},
	{"https://example.org:443/x", "https://example.org/x", "example.org", AJ_HOST_NAME, 443,
	 "/x", ""},
	{"https://example.org:80/x", "https://example.org:80/x", "example.org", AJ_HOST_NAME, 80,
	 "/x", ""},
	{"http://example.org:443/", "http://example.org:443/", "example.org", AJ_HOST_NAME, 443,
	 "/", ""},
	{"http://example.org:00080/", "http://example.org/", "example.org", AJ_HOST_NAME, 80, "/",
	 ""},
	{"HtTpS://Www.Example.ORG./", "https://www.example.org/", "www.example.org", AJ_HOST_NAME,
	 443, "/", ""},
	{"http://example.org", "http://example.org/", "example.org", AJ_HOST_NAME, 80, "/", ""},
	{"http://example.org?q=1", "http://example.org/?q=1", "example.org", AJ_HOST_NAME, 80, "/",
	 "q=1"},
	{"http://example.org/a/../b", "http://example.org/b", "example.org", AJ_HOST_NAME, 80, "/b",
	 ""},
	{"http://example.org/a/./b/.", "http://example.org/a/b/", "example.org", AJ_HOST_NAME, 80,
	 "/a/b/", ""},
	{"http://example.org/a/b/..", "http://example.org/a/", "example.org", AJ_HOST_NAME, 80,
	 "/a/", ""},
	{"http://example.org/a/..", "http://example.org/", "example.org", AJ_HOST_NAME, 80, "/",
	 ""},
	{"http://example.org/./", "http://example.org/", "example.org", AJ_HOST_NAME, 80, "/", ""},
	{"http://example.org/x#frag", "http://example.org/x", "example.org", AJ_HOST_NAME, 80, "/x",
	 ""},
	{"http://example.org#/../../etc", "http://example.org/", "example.org", AJ_HOST_NAME, 80,
	 "/", ""},
	/* The query as servers read it: an encoded unreserved character is
	 * that character, every other encoding has one spelling. */
	{"http://example.org/x?%61ction=delete", "http://example.org/x?action=delete",
	 "example.org", AJ_HOST_NAME, 80, "/x", "action=delete"},
	{"http://example.org/x?action=%64el%65te", "http://example.org/x?action=delete",
	 "example.org", AJ_HOST_NAME, 80, "/x", "action=delete"},
	{"http://example.org/x?q=%7e%2D%2e%5F", "http://example.org/x?q=~-._", "example.org",
	 AJ_HOST_NAME, 80, "/x", "q=~-._"},
	{"http://example.org/x?q=a%3db%26c&r=%2b", "http://example.org/x?q=a%3Db%26c&r=%2B",
	 "example.org", AJ_HOST_NAME, 80, "/x", "q=a%3Db%26c&r=%2B"},
	{"http://example.org/x?a=1&&%61=2", "http://example.org/x?a=1&&a=2", "example.org",
	 AJ_HOST_NAME, 80, "/x", "a=1&&a=2"},
	/* The query's encodings in one spelling: upper-case hex. */
	{"http://example.org/x?a=%2f#f?g", "http://example.org/x?a=%2F", "example.org",
	 AJ_HOST_NAME, 80, "/x", "a=%2F"},
	{"http://example.org/%41%62", "http://example.org/Ab", "example.org", AJ_HOST_NAME, 80,
	 "/Ab", ""},
	{"http://example.org/%7e%7E", "http://example.org/~~", "example.org", AJ_HOST_NAME, 80,
	 "/~~", ""},
	{"http://example.org/%3a%3A", "http://example.org/%3A%3A", "example.org", AJ_HOST_NAME, 80,
	 "/%3A%3A", ""},
	{"http://example.org/a%2eb", "http://example.org/a.b", "example.org", AJ_HOST_NAME, 80,
	 "/a.b", ""},
	{"http://example.org/a%20b", "http://example.org/a%20b", "example.org", AJ_HOST_NAME, 80,
	 "/a%20b", ""},
	{"http://example.org/?", "http://example.org/?", "example.org", AJ_HOST_NAME, 80, "/", ""},
	{"http://127.0.0.1:8080/", "http://127.0.0.1:8080/", "127.0.0.1", AJ_HOST_IPV4, 8080, "/",
	 ""},
	{"http://0.0.0.0/", "http://0.0.0.0/", "0.0.0.0", AJ_HOST_IPV4, 80, "/", ""},
	{"http://255.255.255.255/", "http://255.255.255.255/", "255.255.255.255", AJ_HOST_IPV4, 80,
	 "/", ""},
	{"http://[::1]/", "http://[::1]/", "::1", AJ_HOST_IPV6, 80, "/", ""},
	{"http://[0:0:0:0:0:0:0:1]:8080/", "http://[::1]:8080/", "::1", AJ_HOST_IPV6, 8080, "/",
	 ""},
	{"http://[FD00:EC2::254]/", "http://[fd00:ec2::254]/", "fd00:ec2::254", AJ_HOST_IPV6, 80,
	 "/", ""},
	{"http://[::ffff:127.0.0.1]/", "http://[::ffff:127.0.0.1]/", "::ffff:127.0.0.1",
	 AJ_HOST_IPV6, 80, "/", ""},
	{"http://[::FFFF:7f00:1]/", "http://[::ffff:127.0.0.1]/", "::ffff:127.0.0.1", AJ_HOST_IPV6,
	 80, "/", ""},
	{"http://a-b.c0.example/", "http://a-b.c0.example/", "a-b.c0.example", AJ_HOST_NAME, 80,
	 "/", ""},
	{"http://cafe.be/", "http://cafe.be/", "cafe.be", AJ_HOST_NAME, 80, "/", ""},
	{"http://example.org/a:b@c!$&'()*+,=", "http://example.org/a:b@c!$&'()*+,=", "example.org",
	 AJ_HOST_NAME, 80, "/a:b@c!$&'()*+,=", ""},
};

struct bad_case {
	const char *in;
	const char *why;
};

static const struct bad_case bad_cases[] = {
	/* Paths servers read differently than the matcher would: refused. */
	{"http://example.org/...", "must not end in '.'"},
	{"http://example.org/private./a", "must not end in '.'"},
	{"http://example.org/a;x/b", "path parameters"},
	{"http://example.org/a%3Bx/b", "path parameters"},
	{"http://example.org/a%3bx/b", "path parameters"},
	{"", "empty URL"},
	{"example.org/", "no scheme"},
	{":x", "no scheme"},
	{"ftp://example.org/", "scheme 'ftp' not allowed"},
	{"file:///etc/passwd", "scheme 'file' not allowed"},
	{"gopher://example.org/", "scheme 'gopher' not allowed"},
	{"httpx://example.org/", "scheme 'httpx' not allowed"},
	{"http:example.org/", "no '//' authority"},
	{"http:/example.org/", "no '//' authority"},
	{"http:///x", "empty host"},
	{"http://user@example.org/", "userinfo"},
	{"http://user:pw@example.org/", "userinfo"},
	{"http://example.org@evil.example/", "userinfo"},
	{"http://@example.org/", "userinfo"},
	{"http://exa mple.org/", "space, control"},
	{"http://example.org/\t", "space, control"},
	{"http://example.org/\r\nX: y", "space, control"},
	{"http://example.org/\x7f", "space, control"},
	{"http://ex\xc3\xa4mple.org/", "non-ASCII"},
	{"http://exa%6dple.org/", "percent-encoding not allowed in host"},
	{"http://exa_mple.org/", "invalid character in host"},
	{"http://example..org/", "empty label"},
	{"http://.example.org/", "empty label"},
	{"http://example.org../", "empty label"},
	{"http://./", "empty host"},
	{"http://2130706433/", "non-canonical IPv4"},
	{"http://0x7f.1/", "non-canonical IPv4"},
	{"http://0x7f000001/", "non-canonical IPv4"},
	{"http://0177.0.0.1/", "non-canonical IPv4"},
	{"http://127.1/", "non-canonical IPv4"},
	{"http://127.0.1/", "non-canonical IPv4"},
	{"http://127.0.0.01/", "non-canonical IPv4"},
	{"http://127.0.0.256/", "non-canonical IPv4"},
	{"http://1.2.3.4.5/", "non-canonical IPv4"},
	{"http://169.254.169.254./", NULL}, /* accepted: trailing dot removed */
	{"http://example.0x10/", "non-canonical IPv4"},
	{"http://[::1%25eth0]/", "zone id"},
	{"http://[fe80::1%eth0]/", "zone id"},
	{"http://[::1/", "unterminated IPv6"},
	{"http://[::g]/", "invalid IPv6"},
	{"http://[v1.x]/", "invalid IPv6"},
	{"http://[127.0.0.1]/", "invalid IPv6"},
	{"http://[::1]x/", "after IPv6"},
	{"http://example.org:/", "empty port"},
	{"http://example.org:0/", "port 0"},
	{"http://example.org:65536/", "out of range"},
	{"http://example.org:99999999999999999999/", "out of range"},
	{"http://example.org:+80/", "not a decimal"},
	{"http://example.org:-1/", "not a decimal"},
	{"http://example.org:80:80/", "not a decimal"},
	{"http://example.org/%2e%2e/etc", "encoded dot segment"},
	{"http://example.org/a/%2E%2e", "encoded dot segment"},
	{"http://example.org/a/.%2e/b", "encoded dot segment"},
	{"http://example.org/a/%2e/b", "encoded dot segment"},
	{"http://example.org/a%2Fb", "encoded slash"},
	{"http://example.org/a%2fb", "encoded slash"},
	{"http://example.org/a%5Cb", "encoded backslash"},
	{"http://example.org/a%5cb", "encoded backslash"},
	{"http://example.org/a\\b", "backslash not allowed"},
	{"http://example.org\\evil/", "invalid character in host"},
	{"http://example.org/a%00b", "encoded NUL"},
	{"http://example.org/a%zz", "malformed percent-encoding"},
	{"http://example.org/a%4", "malformed percent-encoding"},
	{"http://example.org/a%", "malformed percent-encoding"},
	{"http://example.org/x?a=%g1", "malformed percent-encoding in query"},
	{"http://example.org/x?a=%", "malformed percent-encoding in query"},
	/* THREATS 14, issue 9: a name with an encoded separator is read as
	 * "action=delete" by one server and as the name "action=delete" by
	 * another. */
	{"http://example.org/x?action%3Ddelete", "holds an encoded '=' or '&'"},
	{"http://example.org/x?action%3ddelete", "holds an encoded '=' or '&'"},
	{"http://example.org/x?a=1&b%26action=delete", "holds an encoded '=' or '&'"},
	{"http://example.org/x?%26=1", "holds an encoded '=' or '&'"},
	{"http://example.org//etc", "empty path segment"},
	{"http://example.org/a//b", "empty path segment"},
	{"http://example.org/..", "climbs above the root"},
	{"http://example.org/a/../../b", "climbs above the root"},
	{"http://example.org/a{b}", "not allowed in path"},
	{"http://example.org/a|b", "not allowed in path"},
};

static void
check_ok(const struct ok_case *c)
{
	struct aj_url u, again;
	char err[256] = "";
	int rc;

	rc = aj_url_normalise(c->in, &u, err, sizeof(err));
	cr_expect_eq(rc, 0, "'%s' refused: %s", c->in, err);
	if (rc != 0)
		return;
	cr_expect_str_eq(u.normalised, c->normalised, "'%s'", c->in);
	cr_expect_str_eq(u.host, c->host, "'%s'", c->in);
	cr_expect_eq(u.host_kind, c->kind, "'%s'", c->in);
	cr_expect_eq(u.port, c->port, "'%s'", c->in);
	cr_expect_str_eq(u.path, c->path, "'%s'", c->in);
	cr_expect_str_eq(u.query, c->query, "'%s'", c->in);
	/* The normalised form is a fixed point, or the fetcher would see a
	 * different URL than the matcher did. */
	cr_expect_eq(aj_url_normalise(u.normalised, &again, err, sizeof(err)), 0, "%s", err);
	cr_expect_str_eq(again.normalised, u.normalised);
}

Test(url, normalises)
{
	for (size_t i = 0; i < sizeof(ok_cases) / sizeof(ok_cases[0]); i++)
		check_ok(&ok_cases[i]);
}

Test(url, refuses)
{
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *c = &bad_cases[i];
		struct aj_url u;
		char err[256] = "";
		int rc;

		memset(&u, 0x5a, sizeof(u));
		rc = aj_url_normalise(c->in, &u, err, sizeof(err));
		if (c->why == NULL) {
			cr_expect_eq(rc, 0, "'%s' refused: %s", c->in, err);
			continue;
		}
		cr_expect_eq(rc, -EINVAL, "'%s' accepted as '%s'", c->in,
			     rc == 0 ? u.normalised : "");
		cr_expect(strstr(err, c->why) != NULL, "'%s': got '%s', want '%s'", c->in, err,
			  c->why);
		/* Outputs are written only on success. */
		if (rc != 0)
			cr_expect_eq(((unsigned char *)&u)[0], 0x5a);
	}
}

Test(url, trailing_dot_ip)
{
	struct aj_url u;
	char err[256];

	cr_assert_eq(aj_url_normalise("http://169.254.169.254./", &u, err, sizeof(err)), 0);
	cr_expect_str_eq(u.host, "169.254.169.254");
	cr_expect_eq(u.host_kind, AJ_HOST_IPV4);
}

Test(url, length_limit)
{
	static char buf[AJ_URL_MAX + 16];
	struct aj_url *u = malloc(sizeof(*u));
	char err[256];
	size_t pre = strlen("http://example.org/");

	cr_assert_not_null(u);
	memcpy(buf, "http://example.org/", pre);
	memset(buf + pre, 'a', AJ_URL_MAX - 1 - pre);
	buf[AJ_URL_MAX - 1] = '\0';
	cr_expect_eq(aj_url_normalise(buf, u, err, sizeof(err)), 0, "%s", err);
	buf[AJ_URL_MAX - 1] = 'a';
	buf[AJ_URL_MAX] = '\0';
	cr_expect_eq(aj_url_normalise(buf, u, err, sizeof(err)), -EINVAL);
	cr_expect(strstr(err, "longer than") != NULL, "%s", err);
	/* Growing past the limit while normalising is refused too. */
	memcpy(buf, "http://example.org", pre - 1);
	memset(buf + pre - 1, 'a', AJ_URL_MAX - pre);
	buf[pre - 1] = '?';
	buf[AJ_URL_MAX - 1] = '\0';
	cr_expect_eq(aj_url_normalise(buf, u, err, sizeof(err)), -EINVAL);
	cr_expect(strstr(err, "normalised URL longer") != NULL, "%s", err);
	free(u);
}

Test(url, long_host)
{
	char buf[600], err[256];
	struct aj_url u;

	/* One 64-byte label. */
	snprintf(buf, sizeof(buf), "http://%064d.example/", 0);
	buf[7] = 'a';
	cr_expect_eq(aj_url_normalise(buf, &u, err, sizeof(err)), -EINVAL);
	cr_expect(strstr(err, "label longer than 63") != NULL, "%s", err);
	/* 254 bytes: three 63-byte labels and a 62-byte one. */
	strcpy(buf, "http://");
	for (int i = 0; i < 3; i++)
		strcat(buf, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.");
	memset(buf + strlen(buf), 'a', 62);
	strcpy(buf + 7 + 254, "/");
	cr_expect_eq(aj_url_normalise(buf, &u, err, sizeof(err)), -EINVAL);
	cr_expect(strstr(err, "longer than 253") != NULL, "%s", err);
	/* 253 bytes plus the trailing dot is fine. */
	strcpy(buf + 7 + 253, "./");
	cr_expect_eq(aj_url_normalise(buf, &u, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(strlen(u.host), 253);
}

Test(url, untrusted_text_escaped_in_messages)
{
	struct aj_url u;
	char err[512];

	cr_assert_eq(aj_url_normalise("ftp\\x://a/", &u, err, sizeof(err)), -EINVAL);
	cr_expect(strstr(err, "no scheme") != NULL, "%s", err);
	cr_assert_eq(aj_url_normalise("http://[::1%25\\ab]/", &u, err, sizeof(err)), -EINVAL);
	cr_expect(strstr(err, "\\x5c") != NULL, "%s", err);
}
