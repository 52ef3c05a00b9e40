/*
 * The set of transfers (broker/transfers.c): a request's transfer started
 * within the limits, libcurl's rounds and their finished transfers (a
 * redirect goes on, a complete body ends, an error is answered), and the
 * operations the request layer passes down: WINDOW, room on the channel,
 * CANCEL.  One transfer's own life is broker/transfer.c.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transfer.h"

/* ---- the end of a hop ------------------------------------------------------------- */

static void
transfer_done(struct aj_transfer *t, CURLcode rc)
{
	char host[300];

	if (rc == CURLE_OK && t->redirecting) {
		aj_redirect(t);
		return;
	}
	if (rc == CURLE_OK) {
		t->via->complete(t);
		return;
	}
	snprintf(host, sizeof(host), "%s", t->req->url.host);
	if (t->error == aj_transfer_cancelled)
		aj_transfer_finish(t, aj_transfer_cancelled, "allowed", NULL);
	else if (t->error != NULL && strcmp(t->error, AJ_ERR_UPSTREAM) == 0)
		aj_transfer_fail(t, AJ_ERR_UPSTREAM, t->hop_rule->origin, "allowed", "%s", t->why);
	else if (t->error != NULL || rc == CURLE_FILESIZE_EXCEEDED)
		aj_transfer_fail(t, AJ_ERR_TOO_LARGE, t->hop_rule->origin, "allowed",
				 "the response is over the limit of %llu bytes",
				 (unsigned long long)t->max_response);
	else if (rc == CURLE_OPERATION_TIMEDOUT)
		aj_transfer_fail_timeout(t);
	else if (t->refused != NULL && t->address[0] == '\0')
		aj_transfer_fail(t, AJ_ERR_DENIED, "address check", "denied",
				 "%s resolves to %s, %s: refused (a profile may allow it with "
				 "'fetch address allow %s')",
				 host, t->refused_addr, t->refused, t->refused_addr);
	else
		aj_transfer_fail(t, AJ_ERR_UPSTREAM, t->hop_rule->origin, "allowed", "%s: %s",
				 curl_easy_strerror(rc), t->errbuf[0] ? t->errbuf : "no detail");
}

static void
on_done(void *easy, int result, void *arg)
{
	struct aj_transfer *t = NULL;

	curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&t);
	if (t != NULL)
		transfer_done(t, (CURLcode)result);
}

/* After libcurl has run: what it handed over goes out, connections due
 * are taken over (then curlev reports the finished transfers). */
static void
on_after_round(void *arg)
{
	struct aj_transfers *set = arg;

	aj_deliver_flush_all(set);
	aj_pipe_take_over_all(set);
}

static const struct aj_curlev_hooks curlev_hooks = {
	.after_round = on_after_round,
	.done = on_done,
};

/* ---- the API -------------------------------------------------------------------- */

void
aj_transfer_start(struct aj_transfers *set, struct aj_req *r)
{
	size_t slot = (size_t)(r->rule - set->policy->rules);
	struct aj_transfer *t;
	char msg[256];

	if (aj_limits_start(set->limits, slot, &r->limits, ev_now(set->loop), msg, sizeof(msg)) < 0)
		goto limited;
	t = calloc(1, sizeof(*t));
	if (t == NULL) {
		aj_limits_end(set->limits, slot);
		snprintf(msg, sizeof(msg), "out of memory");
		goto limited;
	}
	t->set = set;
	t->req = r;
	t->hop_rule = r->rule;
	t->rule_slot = slot;
	t->via = r->pipe ? &aj_deliver_pipe : r->memfd ? &aj_deliver_memfd : &aj_deliver_frames;
	t->memfd = -1;
	t->pipe.w = -1;
	t->pipe.sock = -1;
	t->frames.credit = AJ_BROKER_WINDOW;
	t->deadline = r->started + (double)aj_transfer_limit(t, AJ_LIMIT_TIMEOUT) / 1000.0;
	t->max_response = aj_transfer_limit(t, AJ_LIMIT_RESPONSE);
	r->transfer = t;
	if (t->via->start(t) < 0) {
		aj_transfer_fail(t, AJ_ERR_UPSTREAM, NULL, "allowed", "%s", t->why);
		return;
	}
	if (aj_transfer_setup_hop(t) < 0)
		aj_transfer_fail(t, AJ_ERR_UPSTREAM, NULL, "allowed", "out of memory");
	return;
limited : {
	struct aj_audit_entry e = {.req = r,
				   .decision = "allowed",
				   .rule = r->rule->origin,
				   .error = AJ_ERR_RATE_LIMITED};

	aj_channel_send_error(r->ch, r->id, AJ_ERR_RATE_LIMITED, r->rule->origin, msg);
	aj_audit_log_write(set->audit, &e);
	set->hooks->finished(r, set->hooks_arg);
}
}

void
aj_transfer_window(struct aj_transfer *t, uint32_t credit)
{
	if (t->via == &aj_deliver_frames)
		aj_deliver_window(t, credit);
	/* (A pipe is its own window; a memfd has none.) */
}

bool
aj_transfer_resume(struct aj_transfer *t)
{
	if (t->via != &aj_deliver_frames)
		return !aj_channel_is_backlogged(t->req->ch);
	return aj_deliver_resume(t);
}

void
aj_transfer_cancel(struct aj_transfer *t)
{
	aj_transfer_finish(t, aj_transfer_cancelled, "allowed", NULL);
}

struct aj_transfers *
aj_transfers_new(struct ev_loop *loop, const struct aj_policy *policy,
		 const struct aj_ca_bundle *ca, struct aj_limits *limits,
		 struct aj_audit_log *audit, struct aj_egress *egress)
{
	struct aj_transfers *set = calloc(1, sizeof(*set));

	if (set == NULL)
		return NULL;
	set->loop = loop;
	set->policy = policy;
	set->ca = ca;
	set->limits = limits;
	set->audit = audit;
	set->egress = egress;
	set->curl = aj_curlev_new(loop, &curlev_hooks, set);
	if (set->curl == NULL) {
		free(set);
		return NULL;
	}
	return set;
}

void
aj_transfers_set_hooks(struct aj_transfers *set, const struct aj_transfer_hooks *hooks, void *arg)
{
	set->hooks = hooks;
	set->hooks_arg = arg;
}

void
aj_transfers_free(struct aj_transfers *set)
{
	if (set == NULL)
		return;
	aj_curlev_free(set->curl);
	free(set);
}
