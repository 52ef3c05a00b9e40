/*
 * A request's life in the broker, from REQUEST to its answer: the payload
 * parsed, the URL normalised (one parser: what is matched is what is
 * fetched), the method and the body checked, the agent's headers filtered,
 * the policy's decision taken (aj_policy_judge(), the one decision function,
 * also for redirect hops), the body collected within its limits, and the
 * transfer started (broker/transfer.c).  A request refused on the way gets
 * one ERROR and one audit record, and is answered exactly once.
 */
#include "config.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "broker.h"
#include "field.h"
#include "http.h"
#include "log.h"
#include "util.h"

struct aj_requests {
	struct ev_loop *loop;
	const struct aj_policy *policy;
	struct aj_limits *limits;
	struct aj_audit_log *audit;
	struct aj_transfers *transfers;
	/* The profile-wide rate stops reading a channel that overdrew it;
	 * this timer reads them all again when a token is due. */
	ev_timer throttle;
	struct aj_channels *throttled; /* the set of the channels to read again */
};

/* Headers the broker never relays as the agent wrote them, besides the
 * connection's own (aj_field_is_hop_by_hop): the proxy's and those it sets
 * itself. */
static const char *const dropped_headers[] = {
	"Proxy-Authorization",
	"Proxy-Authenticate",
	"Content-Length",
	"Expect",
};

/* ---- the request table of a channel -------------------------------------------- */

static struct aj_req *
find_req(const struct aj_req_table *t, uint32_t id)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->reqs[i]->id == id)
			return t->reqs[i];
	return NULL;
}

void
aj_req_finish(struct aj_req *r)
{
	struct aj_req_table *t = r->table;

	for (size_t i = 0; i < t->n; i++) {
		if (t->reqs[i] == r) {
			t->reqs[i] = t->reqs[--t->n];
			break;
		}
	}
	ev_timer_stop(r->set->loop, &r->body_timer);
	aj_req_drop_body(r);
	for (size_t i = 0; i < r->n_headers; i++) {
		free(r->headers[i][0]);
		free(r->headers[i][1]);
	}
	free(r->headers);
	free(r);
}

void
aj_req_table_abandon(struct aj_req_table *t)
{
	while (t->n > 0) {
		struct aj_req *r = t->reqs[t->n - 1];

		if (r->transfer != NULL)
			aj_transfer_cancel(r->transfer); /* finishes R */
		else
			aj_req_finish(r);
	}
}

void
aj_req_table_resume(struct aj_req_table *t)
{
	/* Resuming never finishes a transfer on the spot (libcurl reports
	 * that later), so the table stays as it is. */
	for (size_t i = 0; i < t->n; i++)
		if (t->reqs[i]->transfer != NULL && !aj_transfer_resume(t->reqs[i]->transfer))
			break;
}

/* ---- answers ----------------------------------------------------------------- */

/* A request refused before any transfer: the answer and the audit record. */
static void
refuse(struct aj_req *r, const char *code, const char *rule, const char *msg)
{
	struct aj_audit_entry e = {
		.req = r,
		.decision = strcmp(code, AJ_ERR_DENIED) == 0 ? "denied" : "refused",
		.rule = rule,
		.error = code,
	};

	aj_channel_send_error(r->ch, r->id, code, rule, msg);
	aj_audit_log_write(r->set->audit, &e);
}

/* The request is answered while its body is still coming: what is left of
 * the body is read and dropped until END. */
static void
refuse_body(struct aj_req *r, const char *code, const char *rule, const char *msg)
{
	ev_timer_stop(r->set->loop, &r->body_timer);
	refuse(r, code, rule, msg);
	r->body_refused = true;
	aj_req_drop_body(r);
	if (!r->body_open)
		aj_req_finish(r);
}

static void
on_body_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct aj_req *r = w->data;

	/* The broker is not reading this channel (rate): not the agent's
	 * delay; look again once it reads. */
	if (aj_channel_is_throttled(r->ch)) {
		ev_timer_set(w, 1.0, 0.);
		ev_timer_start(loop, w);
		return;
	}
	refuse_body(r, AJ_ERR_TIMEOUT, r->rule->origin,
		    "the request body did not arrive within the time limit");
}

static void
on_throttle_end(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct aj_requests *set = w->data;

	aj_channels_unthrottle(set->throttled);
}

/* One REQUEST read on C: its token of the profile's rate.  Out of tokens,
 * the broker stops reading C (only C: the others may still say HELLO or
 * send the bodies of requests already taken) until the next one is due:
 * back-pressure, no answer, no audit line to flood the disk. */
static void
charge_request(struct aj_requests *set, struct aj_channel *c)
{
	double wait = aj_limits_charge_request(set->limits, ev_now(set->loop));

	if (wait <= 0)
		return;
	aj_channel_throttle(c);
	set->throttled = aj_channel_set(c);
	if (!ev_is_active(&set->throttle)) {
		ev_timer_set(&set->throttle, wait, 0.);
		ev_timer_start(set->loop, &set->throttle);
	}
}

/* ---- the agent's headers --------------------------------------------------------- */

static bool
header_in_list(const char *name, const char *list)
{
	/* LIST is a Connection header value: comma-separated names. */
	size_t n = strlen(name);

	while (*list != '\0') {
		size_t len;

		list += strspn(list, " \t,");
		len = strcspn(list, " \t,");
		if (len == n && strncasecmp(list, name, n) == 0)
			return true;
		list += len;
	}
	return false;
}

static bool
is_dropped(const char *name, const char *connection)
{
	if (aj_field_is_hop_by_hop(name, strlen(name)) || header_in_list(name, connection))
		return true;
	for (size_t k = 0; k < AJ_ARRAY_SIZE(dropped_headers); k++)
		if (strcasecmp(name, dropped_headers[k]) == 0)
			return true;
	return false;
}

/* Message framing is the broker's: a smuggling attempt (CL.TE, TE.CL, two
 * lengths) is refused, not quietly repaired.  Sets R's declared length.
 * Returns 0, or -1 with MSG. */
static int
check_framing(struct aj_req *r, const struct aj_proto_request *req, char *msg, size_t msglen)
{
	r->declared_length = -1;
	for (size_t i = 0; i < req->n_headers; i++) {
		const char *name = req->headers[i][0], *value = req->headers[i][1];
		char *end;

		if (strcasecmp(name, "Transfer-Encoding") == 0) {
			snprintf(msg, msglen,
				 "Transfer-Encoding is refused: the broker frames "
				 "the body itself");
			return -1;
		}
		if (strcasecmp(name, "Content-Length") == 0) {
			bool twice = r->declared_length >= 0;

			errno = 0;
			r->declared_length = strtoll(value, &end, 10);
			if (twice || value[0] < '0' || value[0] > '9' || errno != 0 ||
			    *end != '\0') {
				snprintf(msg, msglen,
					 "Content-Length must appear once, as a plain number");
				return -1;
			}
		}
	}
	return 0;
}

/* Keep what may go upstream of the agent's headers (taken from REQ).
 * Returns 0, or -1 with MSG (a Host header that names another authority:
 * domain fronting). */
static int
filter_headers(struct aj_req *r, struct aj_proto_request *req, char *msg, size_t msglen)
{
	const char *connection = "";
	char authority[300];
	bool v6 = r->url.host_kind == AJ_HOST_IPV6;

	if (r->url.port == aj_url_scheme_port(r->url.scheme, strlen(r->url.scheme), NULL))
		snprintf(authority, sizeof(authority), "%s%s%s", v6 ? "[" : "", r->url.host,
			 v6 ? "]" : "");
	else
		snprintf(authority, sizeof(authority), "%s%s%s:%u", v6 ? "[" : "", r->url.host,
			 v6 ? "]" : "", r->url.port);
	for (size_t i = 0; i < req->n_headers; i++)
		if (strcasecmp(req->headers[i][0], "Connection") == 0)
			connection = req->headers[i][1];
	for (size_t i = 0; i < req->n_headers; i++) {
		const char *name = req->headers[i][0], *value = req->headers[i][1];
		bool drop = is_dropped(name, connection);

		if (strcasecmp(name, "Host") == 0) {
			/* The Host is the URL's, always. */
			if (strcasecmp(value, authority) != 0) {
				char esc[300];

				aj_log_escape(value, esc, sizeof(esc));
				snprintf(msg, msglen,
					 "Host header '%s' does not name the URL's authority '%s'",
					 esc, authority);
				return -1;
			}
			drop = true;
		}
		if (drop)
			continue;
		r->headers[r->n_headers][0] = req->headers[i][0];
		r->headers[r->n_headers][1] = req->headers[i][1];
		req->headers[i][0] = req->headers[i][1] = NULL;
		r->n_headers++;
	}
	return 0;
}

/* The body is complete: an announced length must be its length. */
static int
check_length(const struct aj_req *r, char *msg, size_t msglen)
{
	if (r->declared_length < 0 || (unsigned long long)r->declared_length == r->body_len)
		return 0;
	snprintf(msg, msglen, "Content-Length %lld does not match the body (%zu bytes)",
		 r->declared_length, r->body_len);
	return -1;
}

/* ---- the operations -------------------------------------------------------------- */

/* Decide R (parsed into REQ) and start it, or wait for its body.  Returns
 * false when R was refused. */
static bool
admit(struct aj_req *r, struct aj_proto_request *req)
{
	char err[512], msg[AJ_URL_MAX + 1200], safe_url[256];
	struct aj_policy_decision d;

	snprintf(r->method, sizeof(r->method), "%s", req->method);
	r->memfd = req->deliver_memfd;
	r->pipe = req->deliver_pipe;
	r->no_redirects = req->no_redirects;
	if (aj_url_normalise(req->url, &r->url, err, sizeof(err)) < 0) {
		/* The audit keeps what was asked for (escaped, short, without
		 * its query): a malformed URL is often a probe. */
		char raw[300];

		snprintf(raw, sizeof(raw), "%.*s", (int)strcspn(req->url, "?#"), req->url);
		aj_log_escape(raw, r->url.normalised, 512);
		refuse(r, AJ_ERR_BAD_REQUEST, NULL, err);
		return false;
	}
	r->method_bit = aj_policy_method_bit(req->method);
	/* Quoted short and escaped: an answer must stay well inside a frame. */
	aj_log_escape(r->url.normalised, safe_url, sizeof(safe_url));
	if (r->method_bit == 0) {
		snprintf(msg, sizeof(msg), "method %s is not one a rule can allow", req->method);
		refuse(r, AJ_ERR_BAD_REQUEST, NULL, msg);
		return false;
	}
	if (r->body_open && (r->method_bit & (AJ_METHOD_GET | AJ_METHOD_HEAD))) {
		/* A body on GET is how requests get smuggled past a proxy. */
		snprintf(msg, sizeof(msg), "%s with a body is refused", req->method);
		refuse(r, AJ_ERR_BAD_REQUEST, NULL, msg);
		return false;
	}
	aj_policy_judge(r->set->policy, r->method_bit, &r->url, &d);
	if (d.ambiguous[0] != '\0') {
		refuse(r, AJ_ERR_BAD_REQUEST, d.rule_text, d.ambiguous);
		return false;
	}
	if (!d.allowed) {
		if (d.rule == NULL)
			snprintf(msg, sizeof(msg), "no fetch rule allows %s %s", req->method,
				 safe_url);
		else
			snprintf(msg, sizeof(msg), "%s %s is denied by a fetch deny rule",
				 req->method, safe_url);
		refuse(r, AJ_ERR_DENIED, d.rule_text, msg);
		return false;
	}
	r->rule = d.rule;
	r->limits = d.limits;
	r->options = d.options;
	memcpy(r->inject, d.inject, sizeof(r->inject));
	r->n_inject = d.n_inject;
	r->headers = req->n_headers ? calloc(req->n_headers, sizeof(*r->headers)) : NULL;
	if (req->n_headers && r->headers == NULL) {
		refuse(r, AJ_ERR_UPSTREAM, NULL, "out of memory");
		return false;
	}
	if (check_framing(r, req, msg, sizeof(msg)) < 0 ||
	    filter_headers(r, req, msg, sizeof(msg)) < 0 ||
	    (!r->body_open && r->declared_length > 0 && check_length(r, msg, sizeof(msg)) < 0)) {
		refuse(r, AJ_ERR_BAD_REQUEST, NULL, msg);
		return false;
	}
	return true;
}

int
aj_req_request(struct aj_requests *set, struct aj_channel *c, struct aj_req_table *table,
	       const struct aj_frame *f, const uint8_t *payload, char *err, size_t errlen)
{
	struct aj_proto_request req = {0};
	struct aj_req *r;
	json_t *json = NULL;
	bool admitted;

	/* Not JSON at all ends the channel; JSON that is not a valid request
	 * fails that request only. */
	if (aj_proto_parse_json(payload, f->length, &json, err, errlen) < 0)
		return -EBADMSG;
	json_decref(json);
	if (find_req(table, f->id) != NULL)
		return aj_err(err, errlen, -EBADMSG,
			      "REQUEST reuses the id of a request still open");
	if (table->n == AJ_PROTO_MAX_IN_FLIGHT)
		return aj_err(err, errlen, -EBADMSG, "more requests open than max_in_flight");
	charge_request(set, c);
	r = calloc(1, sizeof(*r));
	if (r == NULL) {
		aj_channel_send_error(c, f->id, AJ_ERR_UPSTREAM, NULL, "out of memory");
		return 0;
	}
	r->set = set;
	r->policy = set->policy;
	r->limits_of = set->limits;
	r->ch = c;
	r->table = table;
	r->id = f->id;
	ev_init(&r->body_timer, on_body_deadline);
	r->body_timer.data = r;
	r->started = ev_now(set->loop);
	r->body_open = !(f->flags & AJ_FLAG_END);
	table->reqs[table->n++] = r;
	/* From here on R is answered exactly once; while its body is still
	 * coming, it stays in the table so the BODY frames find it. */
	if (aj_proto_parse_request(payload, f->length, &req, err, errlen) < 0) {
		snprintf(r->method, sizeof(r->method), "?");
		refuse(r, AJ_ERR_BAD_REQUEST, NULL, err);
		admitted = false;
	} else {
		admitted = admit(r, &req);
	}
	aj_proto_request_clear(&req);
	if (!admitted) {
		/* Answered: what is left of its body is read and dropped. */
		r->body_refused = true;
		if (!r->body_open)
			aj_req_finish(r);
		return 0;
	}
	if (!r->body_open) {
		aj_transfer_start(set->transfers, r);
		return 0;
	}
	/* The body must arrive within the request's time limit. */
	ev_timer_set(&r->body_timer, (double)aj_req_limit(r, AJ_LIMIT_TIMEOUT) / 1000.0, 0.);
	ev_timer_start(set->loop, &r->body_timer);
	return 0;
}

int
aj_req_body(struct aj_req_table *table, const struct aj_frame *f, const uint8_t *payload, char *err,
	    size_t errlen)
{
	struct aj_req *r = find_req(table, f->id);
	uint64_t limit;
	char msg[160];

	if (r == NULL || !r->body_open)
		return aj_err(err, errlen, -EBADMSG, "BODY for a request that is not sending one");
	if (f->flags & AJ_FLAG_END)
		r->body_open = false;
	if (r->body_refused) {
		if (!r->body_open)
			aj_req_finish(r);
		return 0;
	}
	limit = aj_req_limit(r, AJ_LIMIT_MAX_BODY);
	if (r->body_len + f->length > limit) {
		snprintf(msg, sizeof(msg), "the request body is over the limit of %llu bytes",
			 (unsigned long long)limit);
		refuse_body(r, AJ_ERR_TOO_LARGE, r->rule->origin, msg);
		return 0;
	}
	if (r->body_len + f->length > r->body_cap) {
		size_t cap = r->body_cap ? r->body_cap : 16384;
		uint8_t *grown;

		while (cap < r->body_len + f->length)
			cap *= 2;
		/* All channels' bodies together stay within the budget. */
		if (!aj_limits_body_reserve(r->set->limits, cap - r->body_cap)) {
			refuse_body(r, AJ_ERR_RATE_LIMITED, NULL,
				    "the broker holds too many request bodies at once");
			return 0;
		}
		grown = realloc(r->body, cap);
		if (grown == NULL) {
			aj_limits_body_release(r->set->limits, cap - r->body_cap);
			refuse_body(r, AJ_ERR_UPSTREAM, NULL, "out of memory");
			return 0;
		}
		r->body = grown;
		r->body_cap = cap;
	}
	memcpy(r->body + r->body_len, payload, f->length);
	r->body_len += f->length;
	if (!r->body_open) {
		ev_timer_stop(r->set->loop, &r->body_timer);
		if (check_length(r, msg, sizeof(msg)) < 0) {
			refuse(r, AJ_ERR_BAD_REQUEST, NULL, msg);
			aj_req_finish(r);
			return 0;
		}
		aj_transfer_start(r->set->transfers, r);
	}
	return 0;
}

void
aj_req_window(struct aj_req_table *table, uint32_t id, uint32_t credit)
{
	/* A late frame for a finished request is normal. */
	struct aj_req *r = find_req(table, id);

	if (r != NULL && r->transfer != NULL)
		aj_transfer_window(r->transfer, credit);
}

void
aj_req_cancel(struct aj_req_table *table, uint32_t id)
{
	struct aj_req *r = find_req(table, id);

	if (r == NULL)
		return;
	if (r->transfer != NULL) {
		aj_transfer_cancel(r->transfer);
	} else if (r->body_open) {
		/* Nothing more is sent for it (not even an ERROR), and frames
		 * arrive in order: no BODY of it can follow. */
		if (!r->body_refused) {
			struct aj_audit_entry e = {.req = r,
						   .decision = "allowed",
						   .rule = r->rule->origin,
						   .error = "cancelled"};

			aj_audit_log_write(r->set->audit, &e);
		}
		aj_req_finish(r);
	}
}

/* ---- the set ---------------------------------------------------------------------- */

static void
on_transfer_finished(struct aj_req *r, void *arg)
{
	aj_req_finish(r);
}

static const struct aj_transfer_hooks transfer_hooks = {.finished = on_transfer_finished};

struct aj_requests *
aj_requests_new(struct ev_loop *loop, const struct aj_policy *policy, struct aj_limits *limits,
		struct aj_audit_log *audit, struct aj_transfers *transfers)
{
	struct aj_requests *set = calloc(1, sizeof(*set));

	if (set == NULL)
		return NULL;
	set->loop = loop;
	set->policy = policy;
	set->limits = limits;
	set->audit = audit;
	set->transfers = transfers;
	ev_init(&set->throttle, on_throttle_end);
	set->throttle.data = set;
	if (transfers != NULL)
		aj_transfers_set_hooks(transfers, &transfer_hooks, set);
	return set;
}

void
aj_requests_free(struct aj_requests *set)
{
	if (set == NULL)
		return;
	ev_timer_stop(set->loop, &set->throttle);
	free(set);
}
