/*
 * How much and how often: the profile's rate (every REQUEST read), a
 * rule's own rate and concurrency, the profile-wide concurrency, and the
 * memory all request bodies may take together.  One token bucket serves
 * every rate.  No I/O, no clock of its own (the caller passes ev_now()),
 * so every limit is unit-testable.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "broker.h"

struct aj_limits {
	const struct aj_policy *policy;
	struct aj_bucket rate;    /* the profile's `rate` */
	unsigned in_flight;       /* requests being fetched, all rules */
	unsigned *rule_in_flight; /* per rule, parallel to policy->rules */
	struct aj_bucket *rule_rate;
	size_t body_bytes, body_budget; /* request bodies held, and at most */
};

static void
refill(struct aj_bucket *b, uint64_t per_minute, double now)
{
	double cap = (double)per_minute;

	if (b->last == 0)
		b->tokens = cap;
	else
		b->tokens += (now - b->last) * cap / 60.0;
	if (b->tokens > cap)
		b->tokens = cap;
	b->last = now;
}

bool
aj_bucket_take(struct aj_bucket *b, uint64_t per_minute, double now)
{
	refill(b, per_minute, now);
	if (b->tokens < 1.0)
		return false;
	b->tokens -= 1.0;
	return true;
}

double
aj_bucket_charge(struct aj_bucket *b, uint64_t per_minute, double now)
{
	refill(b, per_minute, now);
	b->tokens -= 1.0;
	if (b->tokens >= 1.0)
		return 0;
	return (1.0 - b->tokens) * 60.0 / (double)per_minute;
}

/* Request bodies held at once, all channels together: room for the
 * largest body a rule allows, twice, and never less than 64 MiB. */
static size_t
body_budget(const struct aj_policy *p)
{
	uint64_t largest = p->limits.value[AJ_LIMIT_MAX_BODY];

	for (size_t i = 0; i < p->n_rules; i++)
		if (p->rules[i].limits.set & (1u << AJ_LIMIT_MAX_BODY) &&
		    p->rules[i].limits.value[AJ_LIMIT_MAX_BODY] > largest)
			largest = p->rules[i].limits.value[AJ_LIMIT_MAX_BODY];
	return (size_t)(largest > (32u << 20) ? 2 * largest : 64u << 20);
}

struct aj_limits *
aj_limits_new(const struct aj_policy *policy)
{
	struct aj_limits *l = calloc(1, sizeof(*l));

	if (l == NULL)
		return NULL;
	l->policy = policy;
	l->rule_in_flight = calloc(policy->n_rules + 1, sizeof(*l->rule_in_flight));
	l->rule_rate = calloc(policy->n_rules + 1, sizeof(*l->rule_rate));
	if (l->rule_in_flight == NULL || l->rule_rate == NULL) {
		aj_limits_free(l);
		return NULL;
	}
	l->body_budget = body_budget(policy);
	return l;
}

void
aj_limits_free(struct aj_limits *l)
{
	if (l == NULL)
		return;
	free(l->rule_in_flight);
	free(l->rule_rate);
	free(l);
}

double
aj_limits_charge_request(struct aj_limits *l, double now)
{
	return aj_bucket_charge(&l->rate, l->policy->limits.value[AJ_LIMIT_RATE], now);
}

/* "more than N requests per minute" when rate LIMITS (if set) has no
 * token left in rule SLOT's bucket. */
static int
take_rule_token(struct aj_limits *l, size_t slot, const struct aj_fetch_limits *limits, double now,
		char *why, size_t whylen)
{
	if (!(limits->set & (1u << AJ_LIMIT_RATE)) ||
	    aj_bucket_take(&l->rule_rate[slot], limits->value[AJ_LIMIT_RATE], now))
		return 0;
	snprintf(why, whylen, "more than %llu requests per minute",
		 (unsigned long long)limits->value[AJ_LIMIT_RATE]);
	return -EAGAIN;
}

int
aj_limits_start(struct aj_limits *l, size_t slot, const struct aj_fetch_limits *limits, double now,
		char *why, size_t whylen)
{
	const struct aj_fetch_limits *global = &l->policy->limits;
	uint64_t concurrency = aj_policy_limit(limits, global, AJ_LIMIT_CONCURRENCY);
	int r;

	/* A rule's own limit bounds its requests; the profile's bounds all.
	 * (The profile-wide rate is the broker's reading pace instead.) */
	if (l->in_flight >= global->value[AJ_LIMIT_CONCURRENCY] ||
	    l->rule_in_flight[slot] >= concurrency) {
		snprintf(why, whylen, "more than %llu requests in flight",
			 (unsigned long long)(l->rule_in_flight[slot] >= concurrency
						      ? concurrency
						      : global->value[AJ_LIMIT_CONCURRENCY]));
		return -EAGAIN;
	}
	r = take_rule_token(l, slot, limits, now, why, whylen);
	if (r < 0)
		return r;
	l->in_flight++;
	l->rule_in_flight[slot]++;
	return 0;
}

int
aj_limits_move(struct aj_limits *l, size_t *slot, size_t to, const struct aj_fetch_limits *limits,
	       double now, char *why, size_t whylen)
{
	uint64_t most = aj_policy_limit(limits, &l->policy->limits, AJ_LIMIT_CONCURRENCY);

	if (to != *slot) {
		if (l->rule_in_flight[to] >= most) {
			snprintf(why, whylen, "more than %llu requests in flight",
				 (unsigned long long)most);
			return -EAGAIN;
		}
		l->rule_in_flight[*slot]--;
		l->rule_in_flight[to]++;
		*slot = to;
	}
	/* The target rule's own rate is charged for the hop. */
	return take_rule_token(l, to, &l->policy->rules[to].limits, now, why, whylen);
}

void
aj_limits_end(struct aj_limits *l, size_t slot)
{
	l->in_flight--;
	l->rule_in_flight[slot]--;
}

bool
aj_limits_body_reserve(struct aj_limits *l, size_t bytes)
{
	if (l->body_bytes + bytes > l->body_budget)
		return false;
	l->body_bytes += bytes;
	return true;
}

void
aj_limits_body_release(struct aj_limits *l, size_t bytes)
{
	l->body_bytes -= bytes;
}
