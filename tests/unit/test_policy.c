/*
 * Unit tests for the fetch policy (common/policy.c): method lists, URL
 * patterns, host/port/scheme/method/path matching, deny over allow and
 * default deny (THREATS 14-15).
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

static struct aj_fetch_rule *
rules_new(size_t n)
{
	struct aj_fetch_rule *r = calloc(n, sizeof(*r));

	cr_assert_not_null(r);
	return r;
}

static void
rule_set(struct aj_fetch_rule *r, int allow, const char *methods, const char *pattern)
{
	char err[256] = "";

	r->allow = allow;
	cr_assert_eq(aj_policy_parse_methods(methods, &r->methods, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(aj_policy_parse_pattern(pattern, r, err, sizeof(err)), 0, "'%s': %s", pattern,
		     err);
	snprintf(r->origin, sizeof(r->origin), "test:%s", pattern);
}

/* Decision for METHOD on URL under RULES, with *DECIDED. */
static int
decide(const struct aj_fetch_rule *rules, size_t n, const char *method, const char *url,
       size_t *decided)
{
	static struct aj_url u;
	char err[256] = "";

	cr_assert_eq(aj_url_normalise(url, &u, err, sizeof(err)), 0, "'%s': %s", url, err);
	return aj_policy_decide(rules, n, aj_policy_method_bit(method), &u, decided);
}

Test(policy, methods)
{
	static const struct {
		const char *in;
		int rc;
		unsigned bits;
	} cases[] = {
		{"GET", 0, AJ_METHOD_GET},
		{"GET,HEAD", 0, AJ_METHOD_GET | AJ_METHOD_HEAD},
		{"OPTIONS,DELETE,PATCH,PUT,POST", 0,
		 AJ_METHOD_OPTIONS | AJ_METHOD_DELETE | AJ_METHOD_PATCH | AJ_METHOD_PUT |
			 AJ_METHOD_POST},
		{"*", 0, AJ_METHOD_ALL},
		{"get", -EINVAL, 0},
		{"GET, HEAD", -EINVAL, 0},
		{"GET,", -EINVAL, 0},
		{",GET", -EINVAL, 0},
		{"", -EINVAL, 0},
		{"GET,GET", -EINVAL, 0},
		{"CONNECT", -EINVAL, 0},
		{"TRACE", -EINVAL, 0},
		{"GET,*", -EINVAL, 0},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unsigned bits = 12345;
		char err[256] = "";
		int rc = aj_policy_parse_methods(cases[i].in, &bits, err, sizeof(err));

		cr_expect_eq(rc, cases[i].rc, "'%s': %d %s", cases[i].in, rc, err);
		if (cases[i].rc == 0)
			cr_expect_eq(bits, cases[i].bits, "'%s'", cases[i].in);
		else
			cr_expect_eq(bits, 12345, "'%s' wrote its output", cases[i].in);
	}
	cr_expect_eq(aj_policy_method_bit("GET"), AJ_METHOD_GET);
	cr_expect_eq(aj_policy_method_bit("OPTIONS"), AJ_METHOD_OPTIONS);
	cr_expect_eq(aj_policy_method_bit("get"), 0);
	cr_expect_eq(aj_policy_method_bit("CONNECT"), 0);
	cr_expect_eq(aj_policy_method_bit(""), 0);
}

Test(policy, patterns)
{
	static const struct {
		const char *in;
		const char *scheme, *host, *path;
		unsigned port;
	} ok[] = {
		{"https://*.example.org:8443/docs/**", "https", "*.example.org", "/docs/**", 8443},
		{"HTTPS://Example.ORG./", "https", "example.org", "/", 443},
		{"http://example.org:80", "http", "example.org", "/", 80},
		{"http://[::FFFF:7f00:1]/x", "http", "::ffff:127.0.0.1", "/x", 80},
		{"http://127.0.0.2:8080/*/raw", "http", "127.0.0.2", "/*/raw", 8080},
		{"http://example.org/%7euser/%3a", "http", "example.org", "/~user/%3A", 80},
	};
	static const struct {
		const char *in, *why;
	} bad[] = {
		{"ftp://example.org/", "http or https"},
		{"example.org/", "must look like"},
		{"http://example.org/?q=1", "query not allowed"},
		{"http://example.org/#x", "fragment not allowed"},
		{"http://user@example.org/", "userinfo"},
		{"http://*/", "only allowed as a leading"},
		{"http://*example.org/", "only allowed as a leading"},
		{"http://a.*.org/", "only allowed as a leading"},
		{"http://*./", "empty host"},
		{"http://*.127.0.0.1/", "not an IP"},
		{"http://*.[::1]/", "not an IP"},
		{"http://127.1/", "non-canonical IPv4"},
		{"http://example.org:22:1/", "not a decimal"},
		{"http://example.org/a/../b", "dot segment not allowed in a URL pattern"},
		{"http://example.org/./b", "dot segment not allowed in a URL pattern"},
		{"http://example.org/%2e%2e/b", "encoded dot segment"},
		{"http://example.org/a%2Fb", "encoded slash"},
		{"http://example.org//b", "empty path segment"},
		{"http://example.org/***", "ambiguous"},
		{"http://example.org/a b", "space"},
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct aj_fetch_rule *r = rules_new(1);
		char err[256] = "";

		cr_expect_eq(aj_policy_parse_pattern(ok[i].in, r, err, sizeof(err)), 0, "'%s': %s",
			     ok[i].in, err);
		cr_expect_str_eq(r->scheme, ok[i].scheme, "'%s'", ok[i].in);
		cr_expect_str_eq(r->host, ok[i].host, "'%s'", ok[i].in);
		cr_expect_str_eq(r->path, ok[i].path, "'%s'", ok[i].in);
		cr_expect_eq(r->port, ok[i].port, "'%s'", ok[i].in);
		free(r);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct aj_fetch_rule *r = rules_new(1);
		char err[256] = "";

		cr_expect_eq(aj_policy_parse_pattern(bad[i].in, r, err, sizeof(err)), -EINVAL,
			     "'%s' accepted", bad[i].in);
		cr_expect(strstr(err, bad[i].why) != NULL, "'%s': got '%s', want '%s'", bad[i].in,
			  err, bad[i].why);
		cr_expect_eq(r->host[0], '\0', "'%s' wrote its output", bad[i].in);
		free(r);
	}
}

struct decide_case {
	const char *method, *url;
	int allowed;
};

static void
check_table(const struct aj_fetch_rule *r, size_t n, const struct decide_case *c, size_t nc)
{
	for (size_t i = 0; i < nc; i++) {
		size_t d = 0;

		cr_expect_eq(decide(r, n, c[i].method, c[i].url, &d), c[i].allowed, "%s %s",
			     c[i].method, c[i].url);
		if (!c[i].allowed && d != (size_t)-1)
			cr_expect_eq(r[d].allow, 0, "%s %s decided by an allow rule", c[i].method,
				     c[i].url);
	}
}

Test(policy, hosts_ports_schemes)
{
	struct aj_fetch_rule *r = rules_new(3);
	static const struct decide_case cases[] = {
		{"GET", "https://api.example.org/", 1},
		{"GET", "https://API.Example.org./", 1},
		{"GET", "https://a.b.example.org/x", 1},
		{"GET", "https://example.org/", 0},               /* suffix itself */
		{"GET", "https://evil-example.org/", 0},          /* not below the suffix */
		{"GET", "https://api.example.org.evil.test/", 0}, /* suffix not at the end */
		{"GET", "https://api.example.org:22/", 0},        /* port must match */
		{"GET", "https://api.example.org:8443/", 0},
		{"GET", "http://api.example.org/", 0},     /* scheme must match */
		{"GET", "http://api.example.org:443/", 0}, /* scheme, even on 443 */
		{"GET", "http://exact.test/", 1},
		{"GET", "http://exact.test:80/", 1},
		{"GET", "http://sub.exact.test/", 0},
		{"GET", "http://exact.test:8080/", 0},
		{"GET", "http://127.0.0.2:8080/", 1},
		{"GET", "http://127.0.0.1:8080/", 0},
		{"GET", "http://[::ffff:127.0.0.2]:8080/", 0}, /* mapped is not the v4 rule */
	};

	rule_set(&r[0], 1, "*", "https://*.example.org/**");
	rule_set(&r[1], 1, "*", "http://exact.test/**");
	rule_set(&r[2], 1, "*", "http://127.0.0.2:8080/**");
	check_table(r, 3, cases, sizeof(cases) / sizeof(cases[0]));
	free(r);
}

Test(policy, methods_match)
{
	struct aj_fetch_rule *r = rules_new(1);
	static const struct decide_case cases[] = {
		{"GET", "http://example.org/", 1},     {"HEAD", "http://example.org/", 1},
		{"POST", "http://example.org/", 0},    {"DELETE", "http://example.org/", 0},
		{"CONNECT", "http://example.org/", 0}, {"get", "http://example.org/", 0},
	};

	rule_set(&r[0], 1, "GET,HEAD", "http://example.org/**");
	check_table(r, 1, cases, sizeof(cases) / sizeof(cases[0]));
	free(r);
}

Test(policy, path_globs)
{
	struct aj_fetch_rule *r = rules_new(3);
	static const struct decide_case cases[] = {
		{"GET", "http://example.org/docs", 1},
		{"GET", "http://example.org/docs/", 1},
		{"GET", "http://example.org/docs/a", 1},
		{"GET", "http://example.org/docs/a/b", 1},
		{"GET", "http://example.org/docsx", 0},
		{"GET", "http://example.org/doc", 0},
		{"GET", "http://example.org/x/../docs/a", 1},
		{"GET", "http://example.org/docs/../secret", 0},
		{"GET", "http://example.org/repo/r1/raw", 1},
		{"GET", "http://example.org/repo//raw", 0}, /* refused by the normaliser anyway */
		{"GET", "http://example.org/repo/r1/r2/raw", 0}, /* '*' does not cross '/' */
		{"GET", "http://example.org/repo/r1/raw/x", 0},
		{"GET", "http://example.org/files/a.txt", 1},
		{"GET", "http://example.org/files/x/y/z.txt", 1},
		{"GET", "http://example.org/files/.txt", 1},
		{"GET", "http://example.org/files/a.txt/x", 0},
		{"GET", "http://example.org/", 0},
	};

	rule_set(&r[0], 1, "GET", "http://example.org/docs/**");
	rule_set(&r[1], 1, "GET", "http://example.org/repo/*/raw");
	rule_set(&r[2], 1, "GET", "http://example.org/files/**.txt");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct aj_url u;
		char err[256];
		size_t d;

		if (aj_url_normalise(cases[i].url, &u, err, sizeof(err)) != 0) {
			cr_expect_eq(cases[i].allowed, 0, "%s refused: %s", cases[i].url, err);
			continue;
		}
		cr_expect_eq(aj_policy_decide(r, 3, AJ_METHOD_GET, &u, &d), cases[i].allowed, "%s",
			     cases[i].url);
	}
	free(r);
}

Test(policy, glob_root_and_star)
{
	struct aj_fetch_rule *r = rules_new(2);
	size_t d;

	rule_set(&r[0], 1, "GET", "http://a.test/**");
	rule_set(&r[1], 1, "GET", "http://b.test/*");
	cr_expect_eq(decide(r, 2, "GET", "http://a.test", &d), 1);
	cr_expect_eq(decide(r, 2, "GET", "http://a.test/x/y/z", &d), 1);
	cr_expect_eq(decide(r, 2, "GET", "http://b.test/", &d), 1);
	cr_expect_eq(decide(r, 2, "GET", "http://b.test/x", &d), 1);
	cr_expect_eq(decide(r, 2, "GET", "http://b.test/x/", &d), 0);
	free(r);
}

Test(policy, deny_over_allow_any_order)
{
	struct aj_fetch_rule *r = rules_new(2);
	size_t d = 99;

	rule_set(&r[0], 1, "*", "https://*.example.org/**");
	rule_set(&r[1], 0, "POST", "https://*.example.org/admin/**");
	cr_expect_eq(decide(r, 2, "GET", "https://x.example.org/admin/a", &d), 1);
	cr_expect_eq(d, 0);
	cr_expect_eq(decide(r, 2, "POST", "https://x.example.org/admin/a", &d), 0);
	cr_expect_eq(d, 1);
	cr_expect_eq(decide(r, 2, "POST", "https://x.example.org/admin", &d), 0);
	cr_expect_eq(d, 1);
	cr_expect_eq(decide(r, 2, "POST", "https://x.example.org/other", &d), 1);
	cr_expect_eq(d, 0);

	/* Same rules, deny first. */
	rule_set(&r[0], 0, "POST", "https://*.example.org/admin/**");
	rule_set(&r[1], 1, "*", "https://*.example.org/**");
	cr_expect_eq(decide(r, 2, "POST", "https://x.example.org/admin/a", &d), 0);
	cr_expect_eq(d, 0);
	cr_expect_eq(decide(r, 2, "GET", "https://x.example.org/admin/a", &d), 1);
	cr_expect_eq(d, 1);
	free(r);
}

Test(policy, default_deny)
{
	struct aj_fetch_rule *r = rules_new(1);
	size_t d = 0;

	cr_expect_eq(decide(r, 0, "GET", "http://example.org/", &d), 0);
	cr_expect_eq(d, (size_t)-1);
	rule_set(&r[0], 1, "GET", "http://example.org/docs/**");
	cr_expect_eq(decide(r, 1, "GET", "http://other.test/docs/", &d), 0);
	cr_expect_eq(d, (size_t)-1);
	cr_expect_eq(decide(r, 1, "GET", "http://example.org/", &d), 0);
	cr_expect_eq(d, (size_t)-1);
	/* A method the broker does not know has bit 0 and matches nothing. */
	cr_expect_eq(decide(r, 1, "TRACE", "http://example.org/docs/", &d), 0);
	cr_expect_eq(d, (size_t)-1);
	free(r);
}

/* Whole rule lines, as the profile and the broker read them. */
static void
rule_line(struct aj_fetch_rule *r, const char *line)
{
	char copy[1024], err[256] = "";

	snprintf(copy, sizeof(copy), "%s", line);
	cr_assert_eq(aj_policy_parse_rule(copy, r, err, sizeof(err)), 0, "'%s': %s", line, err);
}

Test(policy, query_rules)
{
	struct aj_fetch_rule *r = rules_new(3);
	size_t d;

	rule_line(&r[0], "allow GET https://api.test/search query q=*");
	rule_line(&r[1], "allow GET https://api.test/page query none");
	rule_line(&r[2], "deny GET https://api.test/search query **token=**");
	cr_expect_eq(decide(r, 3, "GET", "https://api.test/search?q=cats", &d), 1);
	/* '*' stays within one parameter. */
	cr_expect_eq(decide(r, 3, "GET", "https://api.test/search?q=cats&x=1", &d), 0);
	cr_expect_eq(decide(r, 3, "GET", "https://api.test/search", &d), 0);
	cr_expect_eq(decide(r, 3, "GET", "https://api.test/page", &d), 1);
	cr_expect_eq(decide(r, 3, "GET", "https://api.test/page?", &d), 1);
	cr_expect_eq(decide(r, 3, "GET", "https://api.test/page?a=1", &d), 0);
	/* Deny wins, '**' crosses '&'. */
	cr_expect_eq(decide(r, 3, "GET", "https://api.test/search?q=token=1", &d), 0);
	cr_expect_eq(d, 2);
	free(r);
}

/* THREATS 14, issue 9: queries are matched as servers read them. */
Test(policy, query_rules_see_the_decoded_query)
{
	struct aj_fetch_rule *r = rules_new(2);
	size_t d;

	rule_line(&r[0], "allow GET https://api.test/** query **");
	rule_line(&r[1], "deny * https://api.test/** query **action=delete**");
	cr_expect_eq(decide(r, 2, "GET", "https://api.test/x?action=delete", &d), 0);
	cr_expect_eq(decide(r, 2, "GET", "https://api.test/x?%61ction=delete", &d), 0);
	cr_expect_eq(decide(r, 2, "GET", "https://api.test/x?action=%64elete", &d), 0);
	cr_expect_eq(decide(r, 2, "GET", "https://api.test/x?action=view", &d), 1);
	free(r);
	/* The pattern is read in the same spelling as the URL. */
	r = rules_new(1);
	rule_line(&r[0], "deny GET https://api.test/** query **%61ction=%2f**");
	cr_expect_str_eq(r[0].query, "**action=%2F**");
	cr_expect_eq(decide(r, 1, "GET", "https://api.test/x?action=%2F", &d), 0);
	cr_expect_eq(d, 0);
	free(r);
}

static struct aj_policy_decision
judge(struct aj_fetch_rule *rules, size_t n, const char *method, const char *url)
{
	struct aj_policy p = {.path = "/t.profile", .rules = rules, .n_rules = n};
	struct aj_policy_decision d;
	struct aj_url u;
	char err[256];

	cr_assert_eq(aj_url_normalise(url, &u, err, sizeof(err)), 0, "%s", err);
	aj_policy_judge(&p, aj_policy_method_bit(method), &u, &d);
	return d;
}

Test(policy, a_repeated_parameter_a_rule_names_is_ambiguous)
{
	struct aj_fetch_rule *r = rules_new(2);
	struct aj_policy_decision d;

	rule_line(&r[0], "allow GET https://api.test/** query **");
	rule_line(&r[1], "deny GET https://api.test/** query **action=delete**");
	snprintf(r[1].origin, sizeof(r[1].origin), "/t.profile:2");
	/* Which one the server keeps decides whether the rule applies. */
	d = judge(r, 2, "GET", "https://api.test/x?action=view&action=delete");
	cr_expect_not(d.allowed);
	cr_expect_str_eq(d.ambiguous,
			 "query parameter 'action' is given twice with different values, and the "
			 "rule at /t.profile:2 decides on it (servers read such a query "
			 "differently)");
	cr_expect_str_eq(d.rule_text, "/t.profile:2");
	/* The same value twice, or a parameter no rule names: decided. */
	d = judge(r, 2, "GET", "https://api.test/x?action=view&action=view");
	cr_expect(d.allowed);
	cr_expect_str_eq(d.ambiguous, "");
	d = judge(r, 2, "GET", "https://api.test/x?page=1&page=2");
	cr_expect(d.allowed);
	/* A rule for another path does not count. */
	d = judge(r, 2, "GET", "https://other.test/x?action=a&action=b");
	cr_expect_not(d.allowed);
	cr_expect_str_eq(d.ambiguous, "");
	free(r);
}

Test(policy, override_headers_pass_only_where_every_rule_says_so)
{
	struct aj_fetch_rule *r = rules_new(2);
	struct aj_policy_decision d;
	int i = aj_policy_override_header("x-http-method-override");

	cr_assert_geq(i, 0);
	cr_expect_str_eq(aj_policy_override_headers[i], "X-HTTP-Method-Override");
	cr_expect_eq(aj_policy_override_header("Accept"), -1);
	rule_line(&r[0], "allow GET https://api.test/** pass-header X-HTTP-Method-Override");
	rule_line(&r[1], "allow GET https://api.test/v2/**");
	d = judge(r, 2, "GET", "https://api.test/v1/x");
	cr_expect(d.options & AJ_RULE_PASS(i));
	/* Overlapping rules: only if all say it. */
	d = judge(r, 2, "GET", "https://api.test/v2/x");
	cr_expect_not(d.options & AJ_RULE_PASS(i));
	free(r);
}

/* Every matching allow rule that injects sets its header, whichever rule
 * decides; one header from two sources cannot be decided. */
Test(policy, injects_of_every_matching_rule)
{
	struct aj_fetch_rule *r = rules_new(4);
	struct aj_policy_decision d;

	rule_line(&r[0], "allow GET https://api.test/**");
	rule_line(&r[1], "allow GET https://api.test/v1/** inject x-api-key file:/k");
	rule_line(&r[2], "allow GET https://api.test/v1/models inject Authorization env:T");
	rule_line(&r[3], "allow GET https://api.test/v1/** inject X-API-Key file:/k");
	d = judge(r, 3, "GET", "https://api.test/v1/models");
	cr_assert(d.allowed);
	cr_assert_eq(d.n_inject, 2);
	cr_expect_eq(d.inject[0], 1);
	cr_expect_eq(d.inject[1], 2);
	d = judge(r, 3, "GET", "https://api.test/v2/x");
	cr_assert(d.allowed);
	cr_expect_eq(d.n_inject, 0);
	/* The same header from the same source: once. */
	d = judge(r, 4, "GET", "https://api.test/v1/x");
	cr_assert(d.allowed);
	cr_expect_eq(d.n_inject, 1);
	/* From another source: refused, both rules named. */
	rule_line(&r[3], "allow GET https://api.test/v1/** inject X-API-Key env:OTHER");
	snprintf(r[1].origin, sizeof(r[1].origin), "/t.profile:2");
	snprintf(r[3].origin, sizeof(r[3].origin), "/t.profile:4");
	d = judge(r, 4, "GET", "https://api.test/v1/x");
	cr_expect_not(d.allowed);
	cr_expect_eq(d.n_inject, 0);
	cr_expect_str_eq(d.ambiguous, "the rules at /t.profile:2 and /t.profile:4 both match and "
				      "inject X-API-Key from different sources");
	free(r);
}

Test(policy, secrets_a_header_can_carry)
{
	char why[256], big[AJ_POLICY_MAX_SECRET + 2];

	cr_expect(aj_policy_secret_ok("Bearer abc.def", 14, why, sizeof(why)));
	cr_expect(aj_policy_secret_ok("a\tb", 3, why, sizeof(why)));
	cr_expect_not(aj_policy_secret_ok("", 0, why, sizeof(why)));
	cr_expect_not(aj_policy_secret_ok("a\r\nb", 4, why, sizeof(why)));
	cr_expect_str_eq(why, "the value holds a byte a header cannot carry (0x0d at offset 1): "
			      "only visible ASCII, space and tab");
	cr_expect_not(aj_policy_secret_ok("ab ", 3, why, sizeof(why)));
	cr_expect_not(aj_policy_secret_ok("\xc3\xa9", 2, why, sizeof(why)));
	memset(big, 'a', sizeof(big));
	cr_expect(aj_policy_secret_ok(big, AJ_POLICY_MAX_SECRET, why, sizeof(why)));
	cr_expect_not(aj_policy_secret_ok(big, AJ_POLICY_MAX_SECRET + 1, why, sizeof(why)));
}

Test(policy, rule_lines_read_back_to_themselves)
{
	static const char *const lines[] = {
		"allow GET,HEAD https://docs.test/** query none",
		"allow POST https://api.test/v1/erasure max-body 65536 timeout 10000ms credentials",
		"allow GET https://api.test/search query q=* response 1024 rate 60/min "
		"sensitive-query",
		"deny GET,HEAD,POST,PUT,PATCH,DELETE,OPTIONS http://x.test:8080/a",
		"allow POST https://api.test/v2/** pass-header X-HTTP-Method-Override "
		"pass-header X-Forwarded-Host",
		"allow POST https://api.test/v1/** inject x-api-key file:/home/u/.config/key",
		"allow GET https://api.test/v1/** credentials inject Authorization env:API_TOKEN",
	};
	struct aj_fetch_rule r;
	char text[2048];

	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		memset(&r, 0, sizeof(r));
		rule_line(&r, lines[i]);
		aj_policy_rule_text(&r, text, sizeof(text));
		cr_expect_str_eq(text, lines[i]);
	}
}

Test(policy, bad_rule_lines)
{
	static const struct {
		const char *line, *err;
	} cases[] = {
		{"allow GET https://a.test/ query",
		 "query: missing PATTERN (e.g. 'q=*', or 'none')"},
		{"allow GET https://a.test/ query a query b", "query given twice"},
		{"allow GET https://a.test/ query ?a", "query: the pattern is what follows '?' (no "
						       "'?' or '#')"},
		{"allow GET https://a.test/ timeout", "timeout: missing value (a duration such as "
						      "500ms, 30s or 2m)"},
		{"allow GET https://a.test/ concurrency 0", "concurrency: must be above zero (use "
							    "'fetch deny' to refuse requests)"},
		{"allow GET https://a.test/ query a%3Db=1",
		 "query parameter name 'a%3Db' holds an encoded '=' or '&' (servers read it "
		 "differently)"},
		{"allow GET https://a.test/ pass-header", "pass-header: missing NAME"},
		{"allow GET https://a.test/ pass-header Cookie",
		 "pass-header: 'Cookie' is not dropped by the broker (only override headers are: "
		 "X-HTTP-Method-Override, X-Forwarded-Host, Forwarded, X-Original-URL, ...)"},
		{"deny GET https://a.test/ pass-header Forwarded",
		 "'pass-header' only makes sense on an allow rule"},
		{"allow GET https://a.test/ pass-header forwarded pass-header Forwarded",
		 "pass-header Forwarded given twice"},
		{"allow GET https://a.test/ inject x-api-key",
		 "inject: expected NAME SOURCE (e.g. 'inject x-api-key file:~/.config/anthropic/key' "
		 "or 'inject Authorization env:GITHUB_AUTH')"},
		{"deny GET https://a.test/ inject x-api-key env:K",
		 "'inject' only makes sense on an allow rule"},
		{"allow GET https://a.test/ inject a env:K inject b env:L",
		 "inject given twice (one header per rule)"},
		{"allow GET https://a.test/ inject x:y env:K",
		 "inject: 'x:y': not a header name (a token of at most 63 characters)"},
		{"allow GET https://a.test/ inject Host env:K",
		 "inject: 'Host': the broker never lets a request carry a Host it was not decided "
		 "with"},
		{"allow GET https://a.test/ inject transfer-encoding env:K",
		 "inject: 'transfer-encoding': the broker never lets a request carry a "
		 "transfer-encoding it was not decided with"},
		{"allow GET https://a.test/ inject Proxy-Authorization env:K",
		 "inject: 'Proxy-Authorization': the broker never lets a request carry a "
		 "Proxy-Authorization it was not decided with"},
		{"allow GET https://a.test/ inject X-Forwarded-Host env:K",
		 "inject: 'X-Forwarded-Host': the broker never lets a request carry a "
		 "X-Forwarded-Host it was not decided with"},
		{"allow GET https://a.test/ inject k vault:x",
		 "inject: the source 'vault:x' must be file:PATH or env:VARIABLE"},
		{"allow GET https://a.test/ inject k file:", "inject: 'file:' names no file"},
		{"allow GET https://a.test/ inject k env:1X", "inject: '1X' is not a variable name"},
		{"allow GET https://a.test/ inject k env:A-B", "inject: 'A-B' is not a variable name"},
	};
	char copy[512], err[256];
	struct aj_fetch_rule r;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&r, 0, sizeof(r));
		snprintf(copy, sizeof(copy), "%s", cases[i].line);
		cr_expect_eq(aj_policy_parse_rule(copy, &r, err, sizeof(err)), -EINVAL, "%s",
			     cases[i].line);
		cr_expect_str_eq(err, cases[i].err, "%s", cases[i].line);
	}
}
