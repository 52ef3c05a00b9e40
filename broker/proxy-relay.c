/*
 * Raw tunnels (`tunnel allow HOST:PORT`, common/tunnel.h): a CONNECT that
 * a tunnel rule covers is relayed as TCP bytes, not intercepted.  The
 * connection (proxy-conn.c) asks here what the rules say, has the upstream
 * connection opened, and once it is, hands its client socket over: from
 * then on this file owns both ends and relays between them.
 *
 * The upstream connection is made by libcurl with CURLOPT_CONNECT_ONLY, on
 * a multi handle of the relay's own (curlev.c) and with the fetches'
 * options: libcurl's resolver, every address checked right before its
 * socket exists (CURLOPT_OPENSOCKETFUNCTION, egress.c: the address checked
 * is the address connected to), no proxy from the environment, the
 * profile's `fetch limit timeout` for resolving and connecting.  So a
 * tunnel is resolved, checked and connected by the same code a fetch is,
 * with no resolver or address check of its own; only the bytes after the
 * connect are relayed here (the socket is taken from libcurl as
 * deliver-by-pipe takes one: aj_curlev_take_connection()).
 *
 * Bounds: RELAY_BUF bytes buffered per direction (a side that does not
 * read stops the other side being read), the rule's idle time (nothing
 * either way for that long closes the tunnel), at most the profile's
 * `fetch limit concurrency` tunnels at once (counted apart from fetches:
 * a tunnel lives long), and never more than RELAY_MAX.  The byte limits
 * of fetches (response, max-body) do not apply: a tunnel carries a
 * protocol the broker does not read, and its audit record has both counts.
 *
 * Half-close: the end of one side's stream becomes shutdown(SHUT_WR) of
 * the other once what was buffered is written, so `ssh` and `git` see
 * EOF as they would on a direct connection; the tunnel closes when both
 * directions are over, or at once when either side resets.
 */
#include "config.h"

#include <curl/curl.h>
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker.h"
#include "log.h"
#include "proxy-request.h"
#include "proxy.h"
#include "tunnel.h"

/* Bytes buffered per direction. */
#define RELAY_BUF 65536

/* Tunnels at once, whatever the profile says. */
#define RELAY_MAX 256

enum { SIDE_CLIENT, SIDE_UPSTREAM };

/* Bytes on their way to one side. */
struct lane {
	char buf[RELAY_BUF];
	size_t off, len;
	bool eof;       /* the other side ended its stream */
	bool shut;      /* and this side got shutdown(SHUT_WR) */
	uint64_t bytes; /* written to this side */
};

struct aj_proxy_tunnel {
	struct aj_proxy_relay *relay;
	struct aj_proxy_tunnel *next;
	const struct aj_tunnel_rule *rule;
	char host[256];
	int kind;
	unsigned port;
	char target[300];               /* "host:port", for the log and the audit */
	char address[INET6_ADDRSTRLEN]; /* connected to */
	const char *refused;            /* why an address was refused, or NULL */
	char refused_addr[INET6_ADDRSTRLEN];
	CURL *easy; /* while connecting */
	char errbuf[CURL_ERROR_SIZE];
	aj_proxy_relay_opened_fn opened;
	void *arg;
	int fd[2];
	ev_io r[2], w[2];
	struct lane to[2]; /* to[S]: the bytes for side S */
	size_t owed;       /* of to[SIDE_CLIENT]'s bytes, the proxy's own (its 200) */
	ev_timer idle;
	double started, last;
};

struct aj_proxy_relay {
	struct ev_loop *loop;
	const struct aj_policy *policy;
	struct aj_egress *egress;
	struct aj_audit_log *audit;
	struct aj_curlev *curl;
	struct aj_proxy_tunnel *tunnels;
	size_t n_tunnels;
};

/* ---- the tunnels' list and their end ------------------------------------------- */

static void
unlink_tunnel(struct aj_proxy_tunnel *t)
{
	struct aj_proxy_relay *r = t->relay;

	for (struct aj_proxy_tunnel **p = &r->tunnels; *p != NULL; p = &(*p)->next) {
		if (*p == t) {
			*p = t->next;
			r->n_tunnels--;
			return;
		}
	}
}

/* Bytes the upstream sent the client (not the proxy's own 200). */
static uint64_t
tunnel_bytes_in(const struct aj_proxy_tunnel *t)
{
	return t->to[SIDE_CLIENT].bytes > t->owed ? t->to[SIDE_CLIENT].bytes - t->owed : 0;
}

static void
audit(struct aj_proxy_tunnel *t, const char *decision, const char *rule, int status,
      const char *error)
{
	struct aj_audit_tunnel rec = {
		.target = t->target,
		.decision = decision,
		.rule = rule,
		.address = t->address[0] ? t->address : NULL,
		.status = status,
		.bytes_in = t->to[SIDE_UPSTREAM].bytes,
		.bytes_out = tunnel_bytes_in(t),
		.duration_ms = (uint64_t)((ev_now(t->relay->loop) - t->started) * 1000.0),
		.error = error,
	};

	aj_audit_log_write_tunnel(t->relay->audit, &rec);
}

/* Forget T now: its easy handle, its sockets, its watchers. */
static void
tunnel_free(struct aj_proxy_tunnel *t)
{
	struct ev_loop *loop = t->relay->loop;

	unlink_tunnel(t);
	if (t->easy != NULL) {
		curl_multi_remove_handle(aj_curlev_multi(t->relay->curl), t->easy);
		curl_easy_cleanup(t->easy);
	}
	for (int s = 0; s < 2; s++) {
		ev_io_stop(loop, &t->r[s]);
		ev_io_stop(loop, &t->w[s]);
		if (t->fd[s] >= 0)
			close(t->fd[s]);
	}
	ev_timer_stop(loop, &t->idle);
	free(t);
}

/* The relay is over (WHY: how, for the log; NULL: both sides closed; CODE
 * the record's error, an AJ_ERR_* code): one record, then T is gone. */
static void
tunnel_end(struct aj_proxy_tunnel *t, const char *code, const char *why)
{
	uint64_t in = tunnel_bytes_in(t);

	aj_log_info("proxy: tunnel to %s (%s) closed: %llu bytes out, %llu in%s%s", t->target,
		    t->address, (unsigned long long)t->to[SIDE_UPSTREAM].bytes,
		    (unsigned long long)in, why ? ": " : "", why ? why : "");
	audit(t, "allowed", t->rule->origin, 200, code);
	tunnel_free(t);
}

/* ---- relaying ----------------------------------------------------------------------- */

static void update(struct aj_proxy_tunnel *t);

/* Write what is buffered for side S; false when T ended. */
static bool
drain(struct aj_proxy_tunnel *t, int s)
{
	struct lane *l = &t->to[s];

	while (l->off < l->len) {
		ssize_t n = send(t->fd[s], l->buf + l->off, l->len - l->off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return true;
		if (n <= 0) {
			tunnel_end(t, AJ_ERR_UPSTREAM,
				   s == SIDE_CLIENT ? "the client went away"
						    : "the upstream connection broke");
			return false;
		}
		l->off += (size_t)n;
		l->bytes += (uint64_t)n;
		t->last = ev_now(t->relay->loop);
	}
	l->off = l->len = 0;
	if (l->eof && !l->shut) {
		/* The other side's end of stream, passed on. */
		l->shut = true;
		(void)shutdown(t->fd[s], SHUT_WR);
	}
	return true;
}

/* Read from side S into the lane of the other; false when T ended. */
static bool
fill(struct aj_proxy_tunnel *t, int s)
{
	struct lane *l = &t->to[!s];

	while (l->len < RELAY_BUF && !l->eof) {
		ssize_t n = recv(t->fd[s], l->buf + l->len, RELAY_BUF - l->len, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n < 0) {
			tunnel_end(t, AJ_ERR_UPSTREAM,
				   s == SIDE_CLIENT ? "the client reset its connection"
						    : "the upstream reset the connection");
			return false;
		}
		if (n == 0)
			l->eof = true;
		l->len += (size_t)n;
		t->last = ev_now(t->relay->loop);
	}
	return true;
}

/* Watch what can move now; end T when both directions are over. */
static void
update(struct aj_proxy_tunnel *t)
{
	struct ev_loop *loop = t->relay->loop;

	if (t->to[SIDE_CLIENT].shut && t->to[SIDE_UPSTREAM].shut) {
		tunnel_end(t, NULL, NULL);
		return;
	}
	for (int s = 0; s < 2; s++) {
		const struct lane *in = &t->to[!s], *out = &t->to[s];

		if (in->len < RELAY_BUF && !in->eof)
			ev_io_start(loop, &t->r[s]);
		else
			ev_io_stop(loop, &t->r[s]);
		if (out->len > out->off)
			ev_io_start(loop, &t->w[s]);
		else
			ev_io_stop(loop, &t->w[s]);
	}
}

static void
on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
	struct aj_proxy_tunnel *t = w->data;
	int s = w == &t->r[SIDE_CLIENT] ? SIDE_CLIENT : SIDE_UPSTREAM;

	(void)loop;
	(void)revents;
	if (fill(t, s) && drain(t, !s))
		update(t);
}

static void
on_writable(struct ev_loop *loop, ev_io *w, int revents)
{
	struct aj_proxy_tunnel *t = w->data;
	int s = w == &t->w[SIDE_CLIENT] ? SIDE_CLIENT : SIDE_UPSTREAM;

	(void)loop;
	(void)revents;
	/* Room in the lane: the other side may be read again. */
	if (drain(t, s) && fill(t, !s) && drain(t, s))
		update(t);
}

/* Nothing either way for the rule's idle time closes the tunnel (libev's
 * idiom: the timer re-arms itself for what is left). */
static void
on_idle(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct aj_proxy_tunnel *t = w->data;
	double idle = (double)t->rule->idle_ms / 1000.0, left = t->last + idle - ev_now(loop);

	(void)revents;
	if (left > 0) {
		w->repeat = left;
		ev_timer_again(loop, w);
		return;
	}
	aj_log_warn("proxy: tunnel to %s idle for %.0f s: closed", t->target, idle);
	tunnel_end(t, AJ_ERR_TIMEOUT, "idle");
}

int
aj_proxy_relay_take(struct aj_proxy_tunnel *t, int fd, const void *to_upstream, size_t up_len,
		    const void *to_client, size_t client_len)
{
	struct ev_loop *loop = t->relay->loop;

	t->fd[SIDE_CLIENT] = fd;
	if (up_len > RELAY_BUF || client_len > RELAY_BUF) {
		tunnel_end(t, AJ_ERR_TOO_LARGE,
			   "the client sent more than the tunnel buffers before it was open");
		return -E2BIG;
	}
	/* Either may be none (a captured connection is owed no 200). */
	if (up_len > 0)
		memcpy(t->to[SIDE_UPSTREAM].buf, to_upstream, up_len);
	t->to[SIDE_UPSTREAM].len = up_len;
	if (client_len > 0)
		memcpy(t->to[SIDE_CLIENT].buf, to_client, client_len);
	t->to[SIDE_CLIENT].len = client_len;
	for (int s = 0; s < 2; s++) {
		ev_io_init(&t->r[s], on_readable, t->fd[s], EV_READ);
		t->r[s].data = t;
		ev_io_init(&t->w[s], on_writable, t->fd[s], EV_WRITE);
		t->w[s].data = t;
	}
	t->last = ev_now(loop);
	ev_init(&t->idle, on_idle);
	t->idle.repeat = (double)t->rule->idle_ms / 1000.0;
	t->idle.data = t;
	ev_timer_again(loop, &t->idle);
	/* What the client is owed (the 200) is not the tunnel's: the
	 * audit's counts leave it out. */
	t->owed = client_len;
	if (drain(t, SIDE_UPSTREAM) && drain(t, SIDE_CLIENT))
		update(t);
	return 0;
}

/* ---- opening ------------------------------------------------------------------------ */

static curl_socket_t
on_open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct aj_proxy_tunnel *t = clientp;

	return aj_curlev_open_socket(t->relay->curl, t->relay->egress, (int)purpose, a, t->host,
				     t->kind, t->rule->host, &t->refused, t->refused_addr,
				     t->address);
}

static int
on_close_socket(void *clientp, curl_socket_t fd)
{
	return aj_curlev_close_socket(clientp, fd);
}

/* The connect failed: the client is told why (through OPENED), the
 * audit too, and T is gone. */
static void
open_failed(struct aj_proxy_tunnel *t, CURLcode rc)
{
	char message[1024];
	const char *code = AJ_ERR_UPSTREAM, *rule = t->rule->origin, *decision = "allowed";
	int status = 502;

	if (t->refused != NULL && t->address[0] == '\0') {
		code = AJ_ERR_DENIED;
		rule = "address check";
		decision = "denied";
		status = 403;
		snprintf(message, sizeof(message),
			 "%s resolves to %s, %s: refused (a profile may allow it with 'fetch "
			 "address allow %s')",
			 t->host, t->refused_addr, t->refused, t->refused_addr);
	} else if (rc == CURLE_OPERATION_TIMEDOUT) {
		code = AJ_ERR_TIMEOUT;
		status = 504;
		snprintf(message, sizeof(message), "connecting to %s took longer than %llu ms",
			 t->target,
			 (unsigned long long)t->relay->policy->limits.value[AJ_LIMIT_TIMEOUT]);
	} else {
		snprintf(message, sizeof(message), "connecting to %s: %s: %s", t->target,
			 curl_easy_strerror(rc), t->errbuf[0] ? t->errbuf : "no detail");
	}
	aj_log_warn("proxy: tunnel to %s refused: %s", t->target, message);
	audit(t, decision, rule, status, code);
	t->opened(t->arg, code, status, rule, message);
	tunnel_free(t);
}

static void
on_done(void *easy, int result, void *arg)
{
	struct aj_proxy_tunnel *t = NULL;
	curl_socket_t fd = CURL_SOCKET_BAD;

	(void)arg;
	curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&t);
	if (t == NULL)
		return;
	if (result != CURLE_OK) {
		open_failed(t, (CURLcode)result);
		return;
	}
	if (curl_easy_getinfo(easy, CURLINFO_ACTIVESOCKET, &fd) != CURLE_OK ||
	    fd == CURL_SOCKET_BAD || aj_curlev_take_connection(t->relay->curl, easy, fd) < 0) {
		/* (Taken or not, the easy handle is gone.) */
		t->easy = fd == CURL_SOCKET_BAD ? t->easy : NULL;
		snprintf(t->errbuf, sizeof(t->errbuf), "libcurl kept the connection");
		open_failed(t, CURLE_COULDNT_CONNECT);
		return;
	}
	t->easy = NULL;
	t->fd[SIDE_UPSTREAM] = fd;
	aj_log_info("proxy: tunnel to %s open (%s, rule %s)", t->target, t->address,
		    t->rule->origin);
	t->opened(t->arg, NULL, 200, t->rule->origin, NULL);
}

static void
on_after_round(void *arg)
{
	(void)arg;
}

static const struct aj_curlev_hooks curlev_hooks = {
	.after_round = on_after_round,
	.done = on_done,
};

/* What the tunnel rules say of CONNECT HOST:PORT: 1 allowed, 0 denied
 * (*RULE the deciding rule either way), -1 no tunnel rule covers it. */
static int
decide(struct aj_proxy_relay *r, const char *host, int kind, unsigned port,
       const struct aj_tunnel_rule **rule)
{
	const struct aj_policy *p = r->policy;
	size_t slot = 0;
	int d = aj_tunnel_decide(p->tunnels, p->n_tunnels, host, kind, port, &slot);

	if (d >= 0)
		*rule = &p->tunnels[slot];
	return d;
}

/* Does the CONNECT ask for a raw tunnel only ("X-Agentjail-Tunnel: raw",
 * as `agentjail connect` does): denied, not intercepted, without a rule? */
static bool
wants_raw(const struct aj_proxy_head *h)
{
	for (size_t i = 0; i < h->n_fields; i++)
		if (h->fields[i].name_len == 18 &&
		    strncasecmp(h->fields[i].name, "X-Agentjail-Tunnel", 18) == 0 &&
		    h->fields[i].value_len == 3 && strncmp(h->fields[i].value, "raw", 3) == 0)
			return true;
	return false;
}

/* A tunnel refused before it was opened: the log, the record, NO. */
static void
refused(struct aj_proxy_relay *r, const char *target, struct aj_proxy_relay_refusal *no)
{
	struct aj_audit_tunnel rec = {
		.target = target,
		.decision = "denied",
		.rule = no->rule,
		.status = no->status,
		.error = no->code,
	};

	aj_log_warn("proxy: tunnel to %s refused: %s (rule %s)", target, no->why, no->rule);
	aj_audit_log_write_tunnel(r->audit, &rec);
}

static struct aj_proxy_tunnel *open_tunnel(struct aj_proxy_relay *r, const char *host, int kind,
					   unsigned port, const struct aj_tunnel_rule *rule,
					   aj_proxy_relay_opened_fn opened, void *arg);

int
aj_proxy_relay_connect(struct aj_proxy_relay *r, const struct aj_proxy_head *h,
		       aj_proxy_relay_opened_fn opened, void *arg, struct aj_proxy_tunnel **out,
		       struct aj_proxy_relay_refusal *no)
{
	return aj_proxy_relay_connect_to(r, &h->authority, wants_raw(h), opened, arg, out, no);
}

int
aj_proxy_relay_connect_to(struct aj_proxy_relay *r, const struct aj_proxy_authority *a,
			  bool raw_only, aj_proxy_relay_opened_fn opened, void *arg,
			  struct aj_proxy_tunnel **out, struct aj_proxy_relay_refusal *no)
{
	const struct aj_tunnel_rule *rule = NULL;
	int d = decide(r, a->host, a->kind, a->port, &rule);
	char target[300];

	if (d < 0 && !raw_only)
		return -1;
	if (d > 0 && (*out = open_tunnel(r, a->host, a->kind, a->port, rule, opened, arg)) != NULL)
		return 1;
	snprintf(target, sizeof(target), a->kind == AJ_HOST_IPV6 ? "[%s]:%u" : "%s:%u", a->host,
		 a->port);
	*no = (struct aj_proxy_relay_refusal){403, AJ_ERR_DENIED,
					      rule ? rule->origin : "default deny",
					      "a tunnel rule denies it"};
	if (d < 0)
		no->why = "no tunnel rule allows this host and port";
	if (d > 0) {
		no->status = 503;
		no->code = AJ_ERR_RATE_LIMITED;
		no->why = "too many tunnels open at once (the profile's fetch limit concurrency)";
	}
	refused(r, target, no);
	return 0;
}

static struct aj_proxy_tunnel *
open_tunnel(struct aj_proxy_relay *r, const char *host, int kind, unsigned port,
	    const struct aj_tunnel_rule *rule, aj_proxy_relay_opened_fn opened, void *arg)
{
	uint64_t max = r->policy->limits.value[AJ_LIMIT_CONCURRENCY];
	long timeout = (long)r->policy->limits.value[AJ_LIMIT_TIMEOUT];
	struct aj_proxy_tunnel *t;
	char url[320];

	if (r->n_tunnels >= (max < RELAY_MAX ? max : RELAY_MAX))
		return NULL;
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return NULL;
	t->relay = r;
	t->rule = rule;
	snprintf(t->host, sizeof(t->host), "%s", host);
	t->kind = kind;
	t->port = port;
	snprintf(t->target, sizeof(t->target), kind == AJ_HOST_IPV6 ? "[%s]:%u" : "%s:%u", host,
		 port);
	t->opened = opened;
	t->arg = arg;
	t->fd[0] = t->fd[1] = -1;
	t->started = ev_now(r->loop);
	t->easy = curl_easy_init();
	if (t->easy == NULL) {
		free(t);
		return NULL;
	}
	/* No HTTP is spoken: "http" only names libcurl's plain TCP connect. */
	snprintf(url, sizeof(url), "http://%s/", t->target);
	curl_easy_setopt(t->easy, CURLOPT_URL, url);
	curl_easy_setopt(t->easy, CURLOPT_CONNECT_ONLY, 1L);
	curl_easy_setopt(t->easy, CURLOPT_PROTOCOLS_STR, "http");
	/* As every fetch: resolved afresh, no proxy from the environment. */
	curl_easy_setopt(t->easy, CURLOPT_DNS_CACHE_TIMEOUT, 0L);
	curl_easy_setopt(t->easy, CURLOPT_PROXY, "");
	curl_easy_setopt(t->easy, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
	curl_easy_setopt(t->easy, CURLOPT_OPENSOCKETDATA, t);
	curl_easy_setopt(t->easy, CURLOPT_CLOSESOCKETFUNCTION, on_close_socket);
	curl_easy_setopt(t->easy, CURLOPT_CLOSESOCKETDATA, r->curl);
	curl_easy_setopt(t->easy, CURLOPT_ERRORBUFFER, t->errbuf);
	curl_easy_setopt(t->easy, CURLOPT_PRIVATE, t);
	curl_easy_setopt(t->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(t->easy, CURLOPT_TIMEOUT_MS, timeout);
	curl_easy_setopt(t->easy, CURLOPT_CONNECTTIMEOUT_MS, timeout);
	if (curl_multi_add_handle(aj_curlev_multi(r->curl), t->easy) != CURLM_OK) {
		curl_easy_cleanup(t->easy);
		free(t);
		return NULL;
	}
	t->next = r->tunnels;
	r->tunnels = t;
	r->n_tunnels++;
	return t;
}

void
aj_proxy_relay_cancel(struct aj_proxy_tunnel *t)
{
	audit(t, "allowed", t->rule->origin, 0, "cancelled");
	tunnel_free(t);
}

/* ---- life --------------------------------------------------------------------------- */

struct aj_proxy_relay *
aj_proxy_relay_new(struct ev_loop *loop, const struct aj_policy *policy, struct aj_egress *egress,
		   struct aj_audit_log *audit)
{
	struct aj_proxy_relay *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	r->loop = loop;
	r->policy = policy;
	r->egress = egress;
	r->audit = audit;
	r->curl = aj_curlev_new(loop, &curlev_hooks, r);
	if (r->curl == NULL) {
		free(r);
		return NULL;
	}
	return r;
}

void
aj_proxy_relay_free(struct aj_proxy_relay *r)
{
	if (r == NULL)
		return;
	while (r->tunnels != NULL)
		tunnel_end(r->tunnels, "cancelled", "the broker stops");
	aj_curlev_free(r->curl);
	free(r);
}
