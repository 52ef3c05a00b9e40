/*
 * Unit tests for what the request layer (broker/request.c) decides with:
 * the one decision function (aj_policy_judge(), common/policy.c), used for
 * the first hop of a request and for every redirect, and the record's rule
 * of which headers may go upstream (broker/broker.h).
 */
#include "config.h"

#include <criterion/criterion.h>
#include <string.h>

#include "broker.h"
#include "broker_fixture.h"

static struct aj_policy_decision
decide(const struct aj_policy *p, const char *method, const char *url)
{
	struct aj_policy_decision d;
	struct aj_url u;
	char err[256];

	cr_assert_eq(aj_url_normalise(url, &u, err, sizeof(err)), 0, "%s", err);
	aj_policy_judge(p, aj_policy_method_bit(method), &u, &d);
	return d;
}

Test(request, no_rule_is_default_deny_naming_the_profile)
{
	struct aj_policy *p = fixture_policy("fetch allow GET https://a.example/**\n");
	struct aj_policy_decision d = decide(p, "GET", "https://b.example/");

	cr_assert_not(d.allowed);
	cr_assert_null(d.rule);
	cr_assert_eq(d.slot, (size_t)-1);
	cr_assert_str_eq(d.rule_text,
			 "/t/test.profile: no 'fetch allow' rule matches (default deny)");
	d = decide(p, "POST", "https://a.example/x");
	cr_assert_not(d.allowed, "the method is part of the match");
	fixture_policy_free(p);
}

Test(request, deny_wins_and_every_allow_rule_adds_its_limits)
{
	struct aj_policy *p = fixture_policy("fetch allow GET https://a.example/** timeout 5s\n"
					     "fetch allow GET https://a.example/big/** response 1M "
					     "credentials\n"
					     "fetch deny GET https://a.example/big/secret\n");
	struct aj_policy_decision d = decide(p, "GET", "https://a.example/big/file");

	cr_assert(d.allowed);
	cr_assert_not_null(d.rule);
	cr_assert_str_eq(d.rule_text, d.rule->origin);
	cr_assert_eq(d.rule, &p->rules[d.slot]);
	cr_assert_eq(d.limits.value[AJ_LIMIT_TIMEOUT], 5000, "from the broader rule");
	cr_assert_eq(d.limits.value[AJ_LIMIT_RESPONSE], 1u << 20, "from the narrower one");
	cr_assert_eq(d.options & AJ_RULE_CREDENTIALS, 0, "credentials only if every rule says so");
	d = decide(p, "GET", "https://a.example/big/secret");
	cr_assert_not(d.allowed);
	cr_assert_str_eq(d.rule_text, "/t/test.profile:3");
	fixture_policy_free(p);
}

Test(request, credentials_pass_only_where_the_rules_allow)
{
	struct aj_req r = {0};
	struct aj_policy *p = fixture_policy("");

	cr_assert(aj_req_header_allowed(&r, "Accept"));
	cr_assert_not(aj_req_header_allowed(&r, "Authorization"));
	cr_assert_not(aj_req_header_allowed(&r, "cookie"));
	r.options = AJ_RULE_CREDENTIALS;
	cr_assert(aj_req_header_allowed(&r, "Authorization"));
	cr_assert(aj_req_header_allowed(&r, "Cookie"));
	fixture_policy_free(p);
}

/* Issue 9: headers that make a server read another method, host or path
 * than the rules decided pass only with `pass-header`. */
Test(request, override_headers_pass_only_with_pass_header)
{
	struct aj_req r = {0};
	int i = aj_policy_override_header("X-HTTP-Method-Override");

	cr_assert_geq(i, 0);
	for (size_t k = 0; k < AJ_POLICY_N_OVERRIDE_HEADERS; k++)
		cr_assert_not(aj_req_header_allowed(&r, aj_policy_override_headers[k]), "%s",
			      aj_policy_override_headers[k]);
	cr_assert_not(aj_req_header_allowed(&r, "x-forwarded-host"), "any spelling");
	r.options = AJ_RULE_PASS(i);
	cr_assert(aj_req_header_allowed(&r, "X-HTTP-Method-Override"));
	cr_assert_not(aj_req_header_allowed(&r, "X-HTTP-Method"), "one header, not the class");
	cr_assert(aj_req_header_allowed(&r, "X-Requested-With"));
}
