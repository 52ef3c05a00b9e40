/*
 * Unit tests for the broker's limits (broker/limits.c): the one token
 * bucket, concurrency per rule and in all, a redirect's move to another
 * rule, the memory of request bodies.  The clock is the test's.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "broker.h"
#include "broker_fixture.h"

Test(limits, a_bucket_starts_full_and_refills_continuously)
{
	struct aj_bucket b = {0};

	for (int i = 0; i < 60; i++)
		cr_assert(aj_bucket_take(&b, 60, 100.0), "token %d of a full bucket", i);
	cr_assert_not(aj_bucket_take(&b, 60, 100.0), "empty after 60 at 60/min");
	cr_assert_not(aj_bucket_take(&b, 60, 100.5), "half a token is not one");
	cr_assert(aj_bucket_take(&b, 60, 101.0), "one per second at 60/min");
	cr_assert_not(aj_bucket_take(&b, 60, 101.0));
	/* Never more than a minute's worth, however long it rested. */
	for (int i = 0; i < 60; i++)
		cr_assert(aj_bucket_take(&b, 60, 10000.0));
	cr_assert_not(aj_bucket_take(&b, 60, 10000.0));
}

Test(limits, a_charge_always_takes_and_says_how_long_to_wait)
{
	struct aj_bucket b = {0};
	double wait;

	/* (Criterion's float assertions evaluate their argument twice.) */
	wait = aj_bucket_charge(&b, 120, 50.0);
	cr_assert_float_eq(wait, 0.0, 1e-9, "119 left");
	for (int i = 0; i < 118; i++)
		aj_bucket_charge(&b, 120, 50.0);
	/* One token left: the next charge empties the bucket... */
	wait = aj_bucket_charge(&b, 120, 50.0);
	cr_assert_float_eq(wait, 0.5, 1e-9, "a token per 0.5 s");
	/* ...and one beyond goes into debt, which takes longer to repay. */
	wait = aj_bucket_charge(&b, 120, 50.0);
	cr_assert_float_eq(wait, 1.0, 1e-9);
	wait = aj_bucket_charge(&b, 120, 51.0);
	cr_assert_float_eq(wait, 0.5, 1e-9, "a second repaid two");
}

Test(limits, concurrency_of_the_profile_and_of_a_rule)
{
	struct aj_policy *p = fixture_policy("fetch allow GET https://a.example/** concurrency 2\n"
					     "fetch allow GET https://b.example/**\n"
					     "fetch limit concurrency 3\n");
	struct aj_limits *l = aj_limits_new(p);
	size_t a = 0, b = 1;
	char why[128] = "";

	cr_assert_str_eq(p->rules[a].host, "a.example");
	cr_assert_eq(aj_limits_start(l, a, &p->rules[a].limits, 1.0, why, sizeof(why)), 0);
	cr_assert_eq(aj_limits_start(l, a, &p->rules[a].limits, 1.0, why, sizeof(why)), 0);
	cr_assert_eq(aj_limits_start(l, a, &p->rules[a].limits, 1.0, why, sizeof(why)), -EAGAIN);
	cr_assert_str_eq(why, "more than 2 requests in flight");
	cr_assert_eq(aj_limits_start(l, b, &p->rules[b].limits, 1.0, why, sizeof(why)), 0);
	cr_assert_eq(aj_limits_start(l, b, &p->rules[b].limits, 1.0, why, sizeof(why)), -EAGAIN);
	cr_assert_str_eq(why, "more than 3 requests in flight", "the profile's bounds all");
	aj_limits_end(l, a);
	cr_assert_eq(aj_limits_start(l, b, &p->rules[b].limits, 1.0, why, sizeof(why)), 0);
	aj_limits_free(l);
	fixture_policy_free(p);
}

Test(limits, a_rule_rate_refuses_without_a_token)
{
	struct aj_policy *p = fixture_policy("fetch allow GET https://a.example/** rate 2/min\n");
	struct aj_limits *l = aj_limits_new(p);
	char why[128] = "";

	cr_assert_eq(aj_limits_start(l, 0, &p->rules[0].limits, 1.0, why, sizeof(why)), 0);
	aj_limits_end(l, 0);
	cr_assert_eq(aj_limits_start(l, 0, &p->rules[0].limits, 1.0, why, sizeof(why)), 0);
	aj_limits_end(l, 0);
	cr_assert_eq(aj_limits_start(l, 0, &p->rules[0].limits, 1.0, why, sizeof(why)), -EAGAIN);
	cr_assert_str_eq(why, "more than 2 requests per minute");
	cr_assert_eq(aj_limits_start(l, 0, &p->rules[0].limits, 31.0, why, sizeof(why)), 0);
	aj_limits_free(l);
	fixture_policy_free(p);
}

Test(limits, the_profile_rate_paces_reading)
{
	struct aj_policy *p = fixture_policy("fetch limit rate 2/s\n");
	struct aj_limits *l = aj_limits_new(p);
	int charged = 0;

	/* 120 per minute: the bucket holds 120. */
	while (aj_limits_charge_request(l, 5.0) == 0)
		charged++;
	cr_assert_eq(charged, 119, "the 120th leaves less than a token");
	aj_limits_free(l);
	fixture_policy_free(p);
}

Test(limits, a_redirect_moves_the_request_to_the_rule_of_its_hop)
{
	struct aj_policy *p = fixture_policy("fetch allow GET https://a.example/**\n"
					     "fetch allow GET https://b.example/** concurrency 1 "
					     "rate 1/min\n");
	struct aj_limits *l = aj_limits_new(p);
	struct aj_fetch_limits merged = p->rules[1].limits;
	size_t slot = 0, other = 0;
	char why[128] = "";

	cr_assert_eq(aj_limits_start(l, 0, &p->rules[0].limits, 1.0, why, sizeof(why)), 0);
	cr_assert_eq(aj_limits_start(l, 0, &p->rules[0].limits, 1.0, why, sizeof(why)), 0);
	cr_assert_eq(aj_limits_move(l, &slot, 1, &merged, 1.0, why, sizeof(why)), 0);
	cr_assert_eq(slot, 1);
	/* b's one place is taken now. */
	cr_assert_eq(aj_limits_move(l, &other, 1, &merged, 1.0, why, sizeof(why)), -EAGAIN);
	cr_assert_str_eq(why, "more than 1 requests in flight");
	cr_assert_eq(other, 0, "a refused move leaves the request where it was");
	aj_limits_end(l, slot);
	/* Free again, but b's rate of one a minute is spent. */
	cr_assert_eq(aj_limits_move(l, &other, 1, &merged, 2.0, why, sizeof(why)), -EAGAIN);
	cr_assert_str_eq(why, "more than 1 requests per minute");
	cr_assert_eq(other, 1, "it counts under the rule it moved to");
	aj_limits_end(l, other);
	aj_limits_free(l);
	fixture_policy_free(p);
}

Test(limits, request_bodies_share_one_budget)
{
	struct aj_policy *p = fixture_policy("fetch allow POST https://a.example/x max-body 48M\n");
	struct aj_limits *l = aj_limits_new(p);

	/* Twice the largest max-body a rule allows. */
	cr_assert(aj_limits_body_reserve(l, 90u << 20));
	cr_assert_not(aj_limits_body_reserve(l, 7u << 20));
	cr_assert(aj_limits_body_reserve(l, 6u << 20));
	aj_limits_body_release(l, 96u << 20);
	cr_assert(aj_limits_body_reserve(l, 96u << 20));
	aj_limits_free(l);
	fixture_policy_free(p);
}
