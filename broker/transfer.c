/*
 * One upstream transfer: an easy handle per hop on the multi interface
 * (broker/curlev.c), its answer's header block, its body handed to the
 * delivery (broker/deliver.c, broker/pipe.c), and its end: one audit
 * record, one answer.  The set of transfers that drives them is
 * broker/transfers.c.
 *
 * What it guarantees, beyond "fetch the URL":
 *  - it fetches exactly the normalised URL the policy decided on, with
 *    Host and TLS SNI taken from it (CURLOPT_PATH_AS_IS: libcurl does not
 *    rewrite the path behind the matcher's back);
 *  - every address is checked right before the socket is made
 *    (on_open_socket(), broker/egress.c): the address checked is the
 *    address connected to, and a refused address never sees a packet;
 *  - redirects are never followed by libcurl: each Location is decided
 *    like a new request (broker/redirect.c);
 *  - limits hold whatever upstream does: response size, time, concurrency,
 *    rate; a slow reader pauses its transfer instead of making the broker
 *    buffer (broker/deliver.c, broker/pipe.c).
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "field.h"
#include "http.h"
#include "log.h"
#include "transfer.h"

/* Headers of one response the agent gets at most, in JSON bytes: well
 * inside a RESPONSE frame (AJ_PROTO_MAX_JSON), with room for the rest. */
#define RESPONSE_HEADER_BUDGET 12288

const char aj_transfer_cancelled[] = "cancelled";

uint64_t
aj_transfer_limit(const struct aj_transfer *t, enum aj_limit_kind kind)
{
	return aj_req_limit(t->req, kind);
}

/* ---- libcurl's callbacks ----------------------------------------------------- */

/* Every connection libcurl makes starts here: the one place an address is
 * checked, right before the socket exists. */
static curl_socket_t
on_open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct aj_transfer *t = clientp;

	return aj_curlev_open_socket(t->set->curl, t->set->egress, (int)purpose, a,
				     t->req->url.host, t->req->url.host_kind, t->hop_rule->host,
				     &t->refused, t->refused_addr, t->address);
}

static int
on_close_socket(void *clientp, curl_socket_t fd)
{
	return aj_curlev_close_socket(clientp, fd);
}

static bool
is_redirect(long status)
{
	return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

/* A Content-Length beside a transfer coding is not the body's length
 * (RFC 9112, 6.3; libcurl ignores it too): the agent does not see it. */
static void
drop_content_length(json_t *headers)
{
	for (size_t i = json_array_size(headers); i-- > 0;) {
		const char *name = json_string_value(json_array_get(json_array_get(headers, i), 0));

		if (name != NULL && strcasecmp(name, "Content-Length") == 0)
			json_array_remove(headers, i);
	}
}

/* A new header block (after an interim answer): forget the last one. */
static void
forget_headers(struct aj_transfer *t)
{
	json_decref(t->resp_headers);
	t->resp_headers = NULL;
	t->resp_header_bytes = 0;
	t->te_chunked = false;
}

/* Returns 0, or -1 when the request cannot go on (T->error says why). */
static int
end_of_headers(struct aj_transfer *t)
{
	long status = 0;

	curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
	if (status >= 100 && status < 200) {
		/* An interim answer: the real one follows. */
		forget_headers(t);
		return 0;
	}
	t->headers_done = true;
	t->status = status;
	if (t->te_chunked)
		drop_content_length(t->resp_headers);
	/* "redirects 0" hands the 3xx itself to the agent. */
	if (is_redirect(status) && t->location != NULL && !t->req->no_redirects &&
	    aj_transfer_limit(t, AJ_LIMIT_REDIRECTS) > 0) {
		t->redirecting = true;
		return 0;
	}
	return t->via->begin(t);
}

/* Keep NAME: VALUE for the agent, within the header budget (in JSON bytes,
 * escapes included): left out rather than failing the whole answer. */
static void
keep_header(struct aj_transfer *t, const struct aj_http_field *h)
{
	json_t *pair;
	size_t bytes;

	if (t->resp_headers == NULL)
		t->resp_headers = json_array();
	if (t->resp_headers == NULL || json_array_size(t->resp_headers) >= AJ_PROTO_MAX_HEADERS)
		return;
	pair = json_pack("[s#, s#]", h->name, (int)h->name_len, h->value, (int)h->value_len);
	/* NULL when not UTF-8: such a header is left out too. */
	bytes = pair ? json_dumpb(pair, NULL, 0, JSON_COMPACT | JSON_ENSURE_ASCII) + 1 : 0;
	if (pair != NULL && t->resp_header_bytes + bytes <= RESPONSE_HEADER_BUDGET) {
		json_array_append_new(t->resp_headers, pair);
		t->resp_header_bytes += bytes;
	} else {
		json_decref(pair);
	}
}

static size_t
on_header(char *data, size_t size, size_t n, void *userp)
{
	struct aj_transfer *t = userp;
	struct aj_http_field h;

	if (t->headers_done) /* trailers */
		return size * n;
	switch (aj_http_parse_line(data, size * n, &h)) {
	case AJ_HTTP_STATUS:
		forget_headers(t);
		free(t->location);
		t->location = NULL;
		return size * n;
	case AJ_HTTP_END:
		return end_of_headers(t) < 0 ? 0 : size * n;
	case AJ_HTTP_SKIP:
		return size * n;
	case AJ_HTTP_FIELD:
		break;
	}
	if (h.name_len == 17 && strncasecmp(h.name, "Transfer-Encoding", 17) == 0)
		t->te_chunked = true;
	if (h.name_len == 8 && strncasecmp(h.name, "Location", 8) == 0) {
		free(t->location);
		t->location = strndup(h.value, h.value_len);
	}
	if (!aj_field_is_hop_by_hop(h.name, h.name_len))
		keep_header(t, &h);
	return size * n;
}

static size_t
on_data(char *data, size_t size, size_t n, void *userp)
{
	struct aj_transfer *t = userp;
	size_t len = size * n;

	if (t->redirecting) {
		/* The body of a redirect is not the agent's; it is bounded all
		 * the same. */
		t->discarded += len;
		if (t->discarded > t->max_response) {
			t->error = AJ_ERR_TOO_LARGE;
			return 0;
		}
		return len;
	}
	if (t->bytes_out + len > t->max_response) {
		t->error = AJ_ERR_TOO_LARGE;
		return 0;
	}
	return t->via->data(t, data, len);
}

/* ---- the answer ------------------------------------------------------------------ */

void
aj_transfer_send_response(struct aj_transfer *t, int fd)
{
	const size_t flags = JSON_COMPACT | JSON_ENSURE_ASCII;
	struct aj_req *r = t->req;
	curl_off_t length = -1;
	long status = 0;
	json_t *obj;

	curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
	if (t->via->announces_size)
		length = (curl_off_t)t->bytes_out;
	else if (r->method_bit != AJ_METHOD_HEAD && status != 204 && status != 304)
		curl_easy_getinfo(t->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
	obj = json_pack("{s:i, s:o, s:o, s:s}", "status", (int)status, "headers",
			t->resp_headers ? json_incref(t->resp_headers) : json_array(), "length",
			length >= 0 ? json_integer((json_int_t)length) : json_null(), "url",
			r->url.normalised);
	/* The answer always goes out: what does not fit in a frame (headers
	 * were budgeted, but the URL escapes too) is left out, headers
	 * first, then the URL (the agent knows what it asked for). */
	if (obj != NULL && json_dumpb(obj, NULL, 0, flags) > AJ_PROTO_MAX_JSON)
		json_object_set_new(obj, "headers", json_array());
	if (obj != NULL && json_dumpb(obj, NULL, 0, flags) > AJ_PROTO_MAX_JSON)
		json_object_set_new(obj, "url", json_null());
	t->response_sent = true;
	aj_channel_send_json(r->ch, AJ_MSG_RESPONSE, r->id, obj, fd);
}

void
aj_transfer_remember(struct aj_transfer *t)
{
	char *ip = NULL;

	if (t->easy == NULL)
		return;
	if (t->headers_done)
		curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &t->status);
	/* A reused connection did not pass through on_open_socket. */
	if (t->address[0] == '\0' &&
	    curl_easy_getinfo(t->easy, CURLINFO_PRIMARY_IP, &ip) == CURLE_OK && ip != NULL)
		snprintf(t->address, sizeof(t->address), "%s", ip);
}

void
aj_transfer_release_easy(struct aj_transfer *t)
{
	if (t->easy != NULL) {
		curl_multi_remove_handle(aj_curlev_multi(t->set->curl), t->easy);
		curl_easy_cleanup(t->easy);
		t->easy = NULL;
	}
}

void
aj_transfer_unpause(struct aj_transfer *t)
{
	t->paused = false;
	/* May call on_data at once, which may pause again. */
	curl_easy_pause(t->easy, CURLPAUSE_CONT);
}

/* A hop's header list, wiped first: it may hold an injected secret. */
static void
free_headers(struct curl_slist *list)
{
	for (struct curl_slist *l = list; l != NULL; l = l->next)
		explicit_bzero(l->data, strlen(l->data));
	curl_slist_free_all(list);
}

void
aj_transfer_finish(struct aj_transfer *t, const char *error, const char *decision, const char *rule)
{
	struct aj_transfers *set = t->set;
	struct aj_req *r = t->req;
	struct aj_audit_entry e = {
		.req = r,
		.decision = decision,
		.rule = rule != NULL ? rule : t->hop_rule->origin,
		.bytes_out = t->bytes_out,
		.error = error,
		.redirects = t->hops,
		.hop = t->hops,
		.spliced = t->pipe.spliced,
		.injected = t->injected[0] ? t->injected : NULL,
	};

	aj_transfer_remember(t);
	e.address = t->address[0] ? t->address : NULL;
	e.status = (int)t->status;
	/* Gathered but never sent (the request failed): not delivered. */
	if (error != NULL)
		e.bytes_out -= t->via->undelivered(t);
	aj_audit_log_write(set->audit, &e);
	aj_transfer_release_easy(t);
	aj_limits_end(set->limits, t->rule_slot);
	t->via->release(t);
	free_headers(t->hdrs);
	json_decref(t->resp_headers);
	free(t->location);
	r->transfer = NULL;
	free(t);
	set->hooks->finished(r, set->hooks_arg);
}

void
aj_transfer_fail(struct aj_transfer *t, const char *code, const char *rule, const char *decision,
		 const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	t->via->abort(t);
	aj_channel_send_error(t->req->ch, t->req->id, code, rule, msg);
	aj_transfer_finish(t, code, decision, rule);
}

void
aj_transfer_fail_timeout(struct aj_transfer *t)
{
	aj_transfer_fail(t, AJ_ERR_TIMEOUT, t->hop_rule->origin, "allowed",
			 "no complete answer from %s within the time limit of %.3g s",
			 t->req->url.host, (double)aj_transfer_limit(t, AJ_LIMIT_TIMEOUT) / 1000.0);
}

/* ---- one hop ------------------------------------------------------------------- */

/* Is A the header B, in case and with '-' and '_' alike?  Servers behind
 * CGI, WSGI, Rack or PHP read X_Api_Key as X-Api-Key (HTTP_X_API_KEY). */
static bool
same_header(const char *a, const char *b)
{
	for (;; a++, b++) {
		int x = *a == '_' ? '-' : tolower((unsigned char)*a);
		int y = *b == '_' ? '-' : tolower((unsigned char)*b);

		if (x != y)
			return false;
		if (x == '\0')
			return true;
	}
}

/* Does one of the N rules at SLOTS inject the header NAME (or a spelling a
 * server may read as it)? */
static bool
injects(const struct aj_policy *p, const size_t *slots, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (same_header(p->rules[slots[i]].inject_name, name))
			return true;
	return false;
}

/* "NAME: SECRET" of the rule at SLOT onto T's headers, NAME into
 * T->injected; the line is wiped once libcurl has its copy (the list is
 * wiped when freed: free_headers). */
static int
append_secret(struct aj_transfer *t, size_t slot)
{
	const char *name = t->set->policy->rules[slot].inject_name,
		   *secret = aj_policy_secret(t->set->policy, slot);
	size_t len, used = strlen(t->injected);
	char *line;

	if (secret == NULL) /* decoded with the policy: cannot be */
		return -1;
	len = strlen(name) + 2 + strlen(secret) + 1;
	line = malloc(len);
	if (line == NULL)
		return -1;
	snprintf(line, len, "%s: %s", name, secret);
	t->hdrs = curl_slist_append(t->hdrs, line);
	explicit_bzero(line, len);
	free(line);
	snprintf(t->injected + used, sizeof(t->injected) - used, "%s%s", used ? "," : "", name);
	return 0;
}

int
aj_transfer_setup_hop(struct aj_transfer *t)
{
	struct aj_req *r = t->req;
	double left = t->deadline - ev_now(t->set->loop);
	struct curl_blob ca = {
		.data = t->set->ca->pem, .len = t->set->ca->len, .flags = CURL_BLOB_NOCOPY};
	CURL *e = curl_easy_init();
	size_t n_inject;

	if (e == NULL)
		return -1;
	t->easy = e;
	t->headers_done = t->redirecting = false;
	t->refused = NULL;
	t->errbuf[0] = '\0';
	/* Headers: the agent's (filtered by broker/request.c, credentials only
	 * where this hop's rules allow them), and empty values to keep libcurl
	 * from adding Expect or its own Accept. */
	free_headers(t->hdrs);
	t->hdrs = curl_slist_append(NULL, "Expect:");
	n_inject = t->left_origin ? 0 : r->n_inject;
	for (size_t i = 0; t->hdrs != NULL && i < r->n_headers; i++) {
		char *line;

		/* The agent's own (a placeholder) gives way to the secret. */
		if (!aj_req_header_allowed(r, r->headers[i][0]) ||
		    injects(t->set->policy, r->inject, n_inject, r->headers[i][0]))
			continue;
		if (asprintf(&line, "%s: %s", r->headers[i][0], r->headers[i][1]) < 0)
			return -1;
		t->hdrs = curl_slist_append(t->hdrs, line);
		free(line);
	}
	t->injected[0] = '\0';
	for (size_t i = 0; t->hdrs != NULL && i < n_inject; i++)
		if (append_secret(t, r->inject[i]) < 0)
			return -1;
	if (t->hdrs == NULL)
		return -1;
	curl_easy_setopt(e, CURLOPT_URL, r->url.normalised);
	curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	/* Every request resolves afresh: whatever a name says now, the address
	 * connected to is the one checked (on_open_socket). */
	curl_easy_setopt(e, CURLOPT_DNS_CACHE_TIMEOUT, 0L);
	/* No proxy from the environment, no netrc, no cookie engine. */
	curl_easy_setopt(e, CURLOPT_PROXY, "");
	curl_easy_setopt(e, CURLOPT_NETRC, (long)CURL_NETRC_IGNORED);
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->hdrs);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(e, CURLOPT_CAINFO, NULL);
	curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
	/* libcurl copies the blob into every handle: only where TLS needs it. */
	if (strcmp(r->url.scheme, "https") == 0)
		curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &ca);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, t);
	curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, on_close_socket);
	curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, t->set->curl);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
	curl_easy_setopt(e, CURLOPT_PRIVATE, t);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_BUFFERSIZE, (long)AJ_PROTO_MAX_PAYLOAD);
	curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)t->max_response);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, left > 0.001 ? (long)(left * 1000.0) : 1L);
	if (r->method_bit == AJ_METHOD_HEAD) {
		curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	} else if (r->method_bit != AJ_METHOD_GET) {
		if (r->method_bit != AJ_METHOD_POST)
			curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->method);
		/* Methods that carry a body always say how long it is. */
		if (r->body_len > 0 ||
		    (r->method_bit & (AJ_METHOD_POST | AJ_METHOD_PUT | AJ_METHOD_PATCH))) {
			curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body ? (char *)r->body : "");
			curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
		}
	}
	if (curl_multi_add_handle(aj_curlev_multi(t->set->curl), e) != CURLM_OK)
		return -1;
	return 0;
}
