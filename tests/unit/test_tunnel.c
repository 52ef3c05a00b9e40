/*
 * Unit tests for the tunnel rules (common/tunnel.c): parsing into the
 * normalised form, the canonical text read back, and the decision: the
 * port must match, "*.suffix" covers names strictly below it only, deny
 * wins over allow, and no rule is neither (THREATS 15: another port on an
 * allowed name is not allowed).
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "tunnel.h"
#include "url.h"

static struct aj_tunnel_rule
parse(const char *text)
{
	struct aj_tunnel_rule r = {0};
	char line[512], err[512] = "";

	snprintf(line, sizeof(line), "%s", text);
	cr_assert_eq(aj_tunnel_parse_rule(line, &r, err, sizeof(err)), 0, "'%s': %s", text, err);
	snprintf(r.origin, sizeof(r.origin), "test:%s", text);
	return r;
}

Test(tunnel, targets_are_normalised_and_read_back)
{
	static const struct {
		const char *in, *text;
	} cases[] = {
		{"allow Git.Example.ORG.:22", "allow git.example.org:22"},
		{"allow *.Example.com:2222 idle 90s", "allow *.example.com:2222 idle 90000ms"},
		{"deny [::1]:22", "deny [::1]:22"},
		{"allow 127.0.0.1:8022 idle 300s", "allow 127.0.0.1:8022"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct aj_tunnel_rule r = parse(cases[i].in), again;
		char text[512];

		aj_tunnel_rule_text(&r, text, sizeof(text));
		cr_assert_str_eq(text, cases[i].text);
		again = parse(text);
		cr_assert_str_eq(again.host, r.host);
		cr_assert_eq(again.port, r.port);
		cr_assert_eq(again.idle_ms, r.idle_ms);
		cr_assert_null(aj_tunnel_rule_invalid(&r));
	}
}

Test(tunnel, the_decision)
{
	struct aj_tunnel_rule rules[] = {
		parse("allow git.example.org:22"),
		parse("allow *.example.com:22"),
		parse("deny secret.example.com:22"),
		parse("allow 10.0.0.5:5432"),
	};
	size_t n = sizeof(rules) / sizeof(rules[0]), slot = 99;

	cr_assert_eq(aj_tunnel_decide(rules, n, "git.example.org", AJ_HOST_NAME, 22, &slot), 1);
	cr_assert_eq(slot, 0);
	/* Another port on an allowed name is not covered at all. */
	cr_assert_eq(aj_tunnel_decide(rules, n, "git.example.org", AJ_HOST_NAME, 2222, &slot), -1);
	cr_assert_eq(aj_tunnel_decide(rules, n, "a.example.com", AJ_HOST_NAME, 22, &slot), 1);
	cr_assert_eq(slot, 1);
	/* Strictly below the suffix, and not a look-alike. */
	cr_assert_eq(aj_tunnel_decide(rules, n, "example.com", AJ_HOST_NAME, 22, &slot), -1);
	cr_assert_eq(aj_tunnel_decide(rules, n, "evil-example.com", AJ_HOST_NAME, 22, &slot), -1);
	/* Deny wins, whatever the order. */
	cr_assert_eq(aj_tunnel_decide(rules, n, "secret.example.com", AJ_HOST_NAME, 22, &slot), 0);
	cr_assert_eq(slot, 2);
	cr_assert_eq(aj_tunnel_decide(rules, n, "10.0.0.5", AJ_HOST_IPV4, 5432, &slot), 1);
	cr_assert_eq(slot, 3);
	/* A wildcard never covers an address, a name never another. */
	cr_assert_eq(aj_tunnel_decide(rules, n, "10.0.0.6", AJ_HOST_IPV4, 5432, &slot), -1);
	cr_assert_eq(aj_tunnel_decide(rules, 0, "git.example.org", AJ_HOST_NAME, 22, &slot), -1);
}

Test(tunnel, invalid_rules_are_named)
{
	struct aj_tunnel_rule r = parse("allow a.example:22");

	r.allow = 2;
	cr_assert_str_eq(aj_tunnel_rule_invalid(&r),
			 "a tunnel rule that is neither allow nor deny");
	r = parse("allow a.example:22");
	r.port = 70000;
	cr_assert_str_eq(aj_tunnel_rule_invalid(&r), "a tunnel rule whose port is out of range");
	r = parse("allow a.example:22");
	r.idle_ms = AJ_TUNNEL_IDLE_MAX + 1;
	cr_assert_str_eq(aj_tunnel_rule_invalid(&r),
			 "a tunnel rule whose idle time is out of range");
}
