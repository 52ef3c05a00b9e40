/*
 * A redirect hop.  libcurl never follows a Location itself: each one is
 * resolved against the URL the hop fetched, normalised, and decided by
 * the one decision function (aj_policy_judge(), common/policy.c) exactly like
 * a new request; every rule that matches the new URL adds its
 * restrictions to the request's, and the request moves to the rule that
 * allowed the hop (its concurrency and rate).  Each hop that redirects
 * gets an audit record of its own.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "transfer.h"

/* One audit record for a hop that answered with a redirect (the request
 * goes on; its final record comes later). */
static void
audit_hop(struct aj_transfer *t)
{
	struct aj_audit_entry e = {
		.req = t->req,
		.decision = "allowed",
		.rule = t->hop_rule->origin,
		.redirects = t->hops,
		.hop = t->hops,
		.intermediate = true,
		.injected = t->injected[0] ? t->injected : NULL,
	};

	aj_transfer_remember(t);
	e.status = (int)t->status;
	e.address = t->address[0] ? t->address : NULL;
	aj_audit_log_write(t->set->audit, &e);
}

/* LOCATION resolved against BASE (relative references are common) into
 * *NEXT.  Returns 0, or -1 with ERR. */
static int
resolve(const char *base, const char *location, struct aj_url *next, char *err, size_t errlen)
{
	CURLU *u = curl_url();
	char *target = NULL;
	int r = -1;

	if (u != NULL && curl_url_set(u, CURLUPART_URL, base, 0) == CURLUE_OK &&
	    curl_url_set(u, CURLUPART_URL, location, CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_URL, &target, 0) == CURLUE_OK)
		r = aj_url_normalise(target, next, err, errlen) < 0 ? -1 : 0;
	else
		snprintf(err, errlen, "not a URL");
	curl_free(target);
	curl_url_cleanup(u);
	return r;
}

void
aj_redirect(struct aj_transfer *t)
{
	struct aj_req *r = t->req;
	uint64_t max = aj_transfer_limit(t, AJ_LIMIT_REDIRECTS);
	char err[512], safe[256], rule[600], why[256];
	struct aj_url next;
	struct aj_policy_decision d;
	long status = 0;

	curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
	if (t->hops >= max) {
		aj_transfer_fail(t, AJ_ERR_UPSTREAM, NULL, "allowed", "more than %llu redirects",
				 (unsigned long long)max);
		return;
	}
	aj_log_escape(t->location, safe, sizeof(safe));
	if (resolve(r->url.normalised, t->location, &next, err, sizeof(err)) < 0) {
		snprintf(rule, sizeof(rule), "redirect hop %u", t->hops + 1);
		aj_transfer_fail(t, AJ_ERR_DENIED, rule, "denied",
				 "redirect hop %u to '%s' refused: %s", t->hops + 1, safe, err);
		return;
	}
	audit_hop(t);
	t->hops++;
	t->injected[0] = '\0'; /* until the next hop is set up */
	/* 303, and 301/302 after POST, continue as GET without a body (as
	 * browsers do); 307 and 308 repeat the request as it was. */
	if (status == 303 ||
	    ((status == 301 || status == 302) && r->method_bit == AJ_METHOD_POST)) {
		if (r->method_bit != AJ_METHOD_HEAD) {
			r->method_bit = AJ_METHOD_GET;
			snprintf(r->method, sizeof(r->method), "GET");
		}
		aj_req_drop_body(r);
		r->body_len = 0;
	}
	/* From here on the request is about NEXT: its audit record names it,
	 * and every rule matching it adds its restrictions. */
	aj_log_escape(next.normalised, safe, sizeof(safe));
	aj_policy_judge(t->set->policy, r->method_bit, &next, &d);
	aj_policy_tighten(&r->limits, &r->options, &d.limits, d.options);
	/* A secret is for its origin: once a hop leaves it, none is injected
	 * again, even on a way back. */
	if (strcmp(next.scheme, r->url.scheme) != 0 || strcmp(next.host, r->url.host) != 0 ||
	    next.port != r->url.port)
		t->left_origin = true;
	r->url = next;
	/* What aj_transfer_remember() kept was the last hop's. */
	t->headers_done = false;
	t->status = 0;
	t->address[0] = '\0';
	if (d.ambiguous[0] != '\0') {
		aj_transfer_fail(t, AJ_ERR_DENIED, d.rule_text, "denied",
				 "redirect hop %u to %s %s is refused: %s", t->hops, r->method,
				 safe, d.ambiguous);
		return;
	}
	if (!d.allowed) {
		aj_transfer_fail(t, AJ_ERR_DENIED, d.rule_text, "denied",
				 "redirect hop %u to %s %s is denied", t->hops, r->method, safe);
		return;
	}
	t->hop_rule = d.rule;
	memcpy(r->inject, d.inject, sizeof(r->inject));
	r->n_inject = d.n_inject;
	if (r->body_len > aj_transfer_limit(t, AJ_LIMIT_MAX_BODY)) {
		aj_transfer_fail(t, AJ_ERR_TOO_LARGE, t->hop_rule->origin, "allowed",
				 "redirect hop %u: the request body is over the limit of %llu "
				 "bytes",
				 t->hops,
				 (unsigned long long)aj_transfer_limit(t, AJ_LIMIT_MAX_BODY));
		return;
	}
	/* The request now counts against the rule that allowed this hop. */
	if (aj_limits_move(t->set->limits, &t->rule_slot, d.slot, &r->limits, ev_now(t->set->loop),
			   why, sizeof(why)) < 0) {
		aj_transfer_fail(t, AJ_ERR_RATE_LIMITED, t->hop_rule->origin, "allowed",
				 "redirect hop %u: %s", t->hops, why);
		return;
	}
	t->max_response = aj_transfer_limit(t, AJ_LIMIT_RESPONSE);
	aj_transfer_release_easy(t);
	json_decref(t->resp_headers);
	t->resp_headers = NULL;
	t->resp_header_bytes = 0;
	free(t->location);
	t->location = NULL;
	if (aj_transfer_setup_hop(t) < 0)
		aj_transfer_fail(t, AJ_ERR_UPSTREAM, NULL, "allowed", "out of memory");
}
