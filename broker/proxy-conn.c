/*
 * One client of the proxy: an unmodified tool's HTTP/1.1 connection to the
 * proxy port in the jail.  Requests are read with proxy-request.c (which
 * refuses anything two HTTP readers could take differently), one at a
 * time: each becomes a REQUEST on the proxy's channel (proxy.c) with the
 * client's fields minus the connection's own, and the broker's answer is
 * written back with framing of our own (Content-Length when the broker
 * knows the length, else chunked, or the end of the connection for an
 * HTTP/1.0 client).  A refusal is an HTTP answer that names why: the
 * status, `X-Agentjail-Error` (the broker's error code, or the reader's
 * name for a malformed request) and, when the broker's error names one,
 * `X-Agentjail-Rule` (the profile's file:line, or why no rule matched).
 *
 * Flow control: response bytes are granted back to the broker (WINDOW)
 * only once the client's socket took them, so a client that stops
 * reading holds at most one window of buffered bytes; a request body is
 * read from the client only while the channel has room.
 *
 * CONNECT host:port opens an intercepted tunnel: the proxy answers 200,
 * then speaks TLS with the jail's leaf for that host (proxy-tls.c), and
 * the requests inside, in origin-form, are read and answered exactly as
 * above, as https://host:port URLs.  A CONNECT that a `tunnel` rule
 * covers is relayed raw instead (proxy-relay.c takes the client over
 * once the upstream connection is open).  An Upgrade is answered 501
 * with `X-Agentjail-Error: tunnel_unsupported`.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "broker.h"
#include "http.h"
#include "log.h"
#include "proxy-request.h"
#include "proxy.h"
#include "util.h"

/* What is read from the client at once; a request's head is bounded by
 * the reader (proxy-request.h), not by this.  Every connection has one:
 * with 100 tunnels open, 64 KiB made 5 MiB of the broker's memory. */
#define IN_MAX 16384

/* Response bytes gathered before a WINDOW grant. */
#define GRANT_MIN 65536

enum state {
	C_READING, /* reading requests (and a request's body) */
	C_WAITING, /* the request is all read: its answer is due */
	C_CLOSING, /* the last answer goes out, then the connection closes */
};

struct aj_proxy_conn {
	struct aj_proxy *px;
	int fd;
	ev_io r, w;
	struct aj_proxy_request *reader;
	char in[IN_MAX]; /* the client's requests, plaintext */
	size_t in_len;
	struct aj_proxy_buf out;  /* the answers, plaintext */
	struct aj_proxy_buf wire; /* bytes for the socket as they are: the tunnel's
				     200 and, inside it, the ciphertext */
	struct aj_proxy_tls *tls; /* inside a CONNECT tunnel; else NULL */
	struct aj_proxy_tunnel *raw; /* a raw tunnel being opened; else NULL */
	bool tls_closed;          /* its close_notify is on the wire */
	char tunnel[300];         /* the CONNECT target, host:port, for the log and audit */
	/* A connection captured on port 443: TLS as this origin starts with
	 * the client's first bytes. */
	struct aj_proxy_authority captured_tls;
	bool tls_pending;
	bool captured; /* accepted on a captured port, not the proxy's */
	bool unread;              /* the reader failed: no head to name in the audit */
	enum state state;
	uint32_t id;       /* the request the broker has, 0: none */
	bool body_due;     /* the client is still sending the request's body */
	bool had_body;     /* the request had one */
	bool responded;    /* the status line is out */
	bool no_body;      /* the answer has none (HEAD, 204, 304) */
	bool chunked;      /* the answer's body is chunk-encoded */
	bool close_after;  /* close once this answer is out */
	bool head_method;  /* the request is a HEAD */
	unsigned version;  /* the request's: 10 or 11 */
	uint64_t ungranted; /* body bytes the client took, not yet granted back */
};

static void feed(struct aj_proxy_conn *c);
static void conn_free(struct aj_proxy_conn *c);

/* ---- output ------------------------------------------------------------------------ */

/* Write B to the socket from its offset: 1 all written, 0 the socket is
 * full (the write watcher runs), -1 the client is gone. */
static int
write_out(struct aj_proxy_conn *c, struct aj_proxy_buf *b)
{
	while (b->off < b->len) {
		ssize_t n = write(c->fd, b->data + b->off, b->len - b->off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			ev_io_start(aj_proxy_loop(c->px), &c->w);
			return 0;
		}
		if (n <= 0)
			return -1;
		b->off += (size_t)n;
	}
	b->off = b->len = 0;
	return 1;
}

/* Write what is buffered; false when the client is gone (C is freed). */
static bool
flush(struct aj_proxy_conn *c)
{
	int r = write_out(c, &c->wire);

	if (r == 1 && c->tls != NULL && c->out.len > 0) {
		/* Plaintext goes out only as records, behind what is on the
		 * wire already. */
		if (aj_proxy_tls_write(c->tls, c->out.data, c->out.len, &c->wire) < 0)
			r = -1;
		c->out.off = c->out.len = 0;
		if (r == 1)
			r = write_out(c, &c->wire);
	} else if (r == 1 && c->tls == NULL) {
		r = write_out(c, &c->out);
	}
	if (r == 1 && c->state == C_CLOSING && c->id == 0 && c->tls != NULL && !c->tls_closed) {
		c->tls_closed = true;
		if (aj_proxy_tls_close(c->tls, &c->wire) < 0)
			r = -1;
		else
			r = write_out(c, &c->wire);
	}
	if (r < 0) {
		conn_free(c);
		return false;
	}
	if (r == 0)
		return true;
	ev_io_stop(aj_proxy_loop(c->px), &c->w);
	/* Everything the client was given it took: the broker may send more. */
	if (c->id != 0 && c->ungranted > 0) {
		uint8_t le[AJ_PROTO_WINDOW_SIZE];
		uint32_t n = c->ungranted > UINT32_MAX ? UINT32_MAX : (uint32_t)c->ungranted;

		aj_proto_window_encode(n, le);
		aj_proxy_send(c->px, AJ_MSG_WINDOW, 0, c->id, le, sizeof(le));
		c->ungranted -= n;
	}
	if (c->state == C_CLOSING && c->id == 0) {
		conn_free(c);
		return false;
	}
	return true;
}

/* Queue LEN bytes of an answer; false when out of memory (C is freed). */
static bool
append(struct aj_proxy_conn *c, const void *data, size_t len)
{
	if (!aj_proxy_buf_append(&c->out, data, len)) {
		conn_free(c);
		return false;
	}
	return true;
}

/* A refusal written by the proxy itself: STATUS, CODE in X-Agentjail-Error,
 * RULE (or NULL) in X-Agentjail-Rule, MESSAGE as a one-line body.  The
 * connection closes after it when CLOSE.  False when C is gone. */
static bool
refuse(struct aj_proxy_conn *c, int status, const char *code, const char *rule,
       const char *message, bool close)
{
	if (close)
		c->close_after = true;
	c->responded = true;
	if (!aj_proxy_answer_refusal(&c->out, status, code, rule, message, !c->head_method,
				     c->close_after)) {
		conn_free(c);
		return false;
	}
	return true;
}

/* A refusal of the proxy's own, before the broker saw the request: in the
 * audit too, with the request's method and URL where they were read. The
 * connection closes after it. */
static bool
refuse_own(struct aj_proxy_conn *c, int status, const char *code, const char *message)
{
	const struct aj_proxy_head *h = aj_proxy_request_head(c->reader);
	char url[320];

	if (c->tls == NULL && c->tunnel[0] != '\0') {
		snprintf(url, sizeof(url), "https://%s", c->tunnel);
		aj_proxy_refused(c->px, "CONNECT", url, code);
	} else if (c->unread || h == NULL || h->form == AJ_PROXY_TARGET_AUTHORITY) {
		aj_proxy_refused(c->px, c->unread || h == NULL ? NULL : h->method, NULL, code);
	} else {
		aj_proxy_refused(c->px, h->method, h->url.normalised, code);
	}
	return refuse(c, status, code, NULL, message, true);
}

/* ---- a request ------------------------------------------------------------------- */

/* The head of a request: it goes to the broker as REQUEST.  False when C
 * is gone. */
static bool
start_request(struct aj_proxy_conn *c, const struct aj_proxy_head *h)
{
	json_t *headers = NULL, *req;
	bool body = h->chunked || h->content_length > 0;

	c->version = h->version;
	c->head_method = strcmp(h->method, "HEAD") == 0;
	c->close_after = !h->keep_alive;
	c->responded = c->no_body = c->chunked = false;
	c->had_body = c->body_due = body;
	c->ungranted = 0;
	if (aj_proxy_fields_json(h, &headers) == -E2BIG) {
		c->body_due = false;
		return refuse_own(c, 431, "too_many_fields",
				  "more header fields than the broker relays (64)") &&
		       flush(c);
	}
	req = json_pack("{s:s, s:s, s:o, s:s}", "method", h->method, "url", h->url.normalised,
			"headers", headers ? headers : json_array(), "redirects", "none");
	c->id = aj_proxy_open_id(c->px, c);
	if (c->id == 0) {
		json_decref(req);
		c->body_due = false;
		return refuse_own(c, 503, AJ_ERR_RATE_LIMITED,
				  "too many requests through the proxy at once (256)") &&
		       flush(c);
	}
	aj_proxy_send_json(c->px, AJ_MSG_REQUEST, body ? 0 : AJ_FLAG_END, c->id, req);
	if (body && h->expect_continue)
		return append(c, "HTTP/1.1 100 Continue\r\n\r\n", 25) && flush(c);
	return true;
}

static void
send_body(struct aj_proxy_conn *c, const char *data, size_t len, bool end)
{
	do {
		size_t n = len < AJ_PROTO_MAX_PAYLOAD ? len : AJ_PROTO_MAX_PAYLOAD;

		if (c->id != 0)
			aj_proxy_send(c->px, AJ_MSG_BODY, end && n == len ? AJ_FLAG_END : 0, c->id,
				      data, n);
		data += n;
		len -= n;
	} while (len > 0);
}

/* The answer is complete: the next request may be read. */
static void
request_done(struct aj_proxy_conn *c)
{
	if (c->id != 0)
		aj_proxy_close_id(c->px, c->id, c->body_due);
	c->id = 0;
	if (c->close_after || c->body_due) {
		c->state = C_CLOSING;
		(void)flush(c);
		return;
	}
	c->state = C_READING;
	if (!flush(c))
		return;
	feed(c);
}

/* ---- input -------------------------------------------------------------------------- */

/* The client has said all it will (end of file, or the end of its TLS
 * session): a request it cut short is abandoned, an idle connection
 * closes once its answers are out. */
static void
client_done(struct aj_proxy_conn *c)
{
	if (c->id == 0) {
		c->state = C_CLOSING;
		ev_io_stop(aj_proxy_loop(c->px), &c->r);
		(void)flush(c);
		return;
	}
	conn_free(c);
}

/* Inside a tunnel: decrypt what the client sent into IN while there is
 * room, and send what the TLS engine has to say.  False when C is gone. */
static bool
pump_tls(struct aj_proxy_conn *c)
{
	while (c->in_len < IN_MAX) {
		ssize_t n = aj_proxy_tls_read(c->tls, c->in + c->in_len, IN_MAX - c->in_len,
					      &c->wire);

		if (n > 0) {
			c->in_len += (size_t)n;
			continue;
		}
		if (n == 0)
			break;
		if (n == -ECONNRESET) {
			client_done(c);
			return false;
		}
		/* Loud: a tool that does not trust the jail's CA, or a server
		 * name that is not the tunnel's, ends here. */
		if (n == -EPROTO) {
			char url[320];

			aj_log_error("proxy: the TLS tunnel to %s ended: %s", c->tunnel,
				     aj_proxy_tls_error(c->tls));
			snprintf(url, sizeof(url), "https://%s", c->tunnel);
			aj_proxy_refused(c->px, "CONNECT", url,
					 aj_proxy_tls_refused_name(c->tls) ? "tunnel_server_name"
									  : "tunnel_handshake");
		}
		/* The alert that says why goes out if the socket takes it now. */
		(void)write_out(c, &c->wire);
		conn_free(c);
		return false;
	}
	return c->wire.len == 0 || flush(c);
}

/* Speak TLS as ORIGIN's host, the reader bound to https://host:port: after
 * a CONNECT (ANSWER: the 200 goes out first; the bytes after the head in
 * IN, from OFF, are the client's first TLS bytes), or at once on a
 * captured port-443 connection. */
static void
start_tls(struct aj_proxy_conn *c, struct aj_proxy_authority origin, size_t off, bool answer)
{
	static const char established[] = "HTTP/1.1 200 Connection established\r\n\r\n";
	struct aj_proxy_request *inside = NULL;
	char err[256] = "out of memory";
	int r;

	snprintf(c->tunnel, sizeof(c->tunnel), origin.kind == AJ_HOST_IPV6 ? "[%s]:%u" : "%s:%u",
		 origin.host, origin.port);
	r = aj_proxy_tls_new(aj_proxy_ca(c->px), origin.host, &c->tls, err, sizeof(err));
	if (r == 0)
		r = aj_proxy_request_new("https", &origin, &inside);
	if (r < 0) {
		aj_proxy_tls_free(c->tls);
		c->tls = NULL;
		if (refuse_own(c, r == -EINVAL ? 400 : 503, "tunnel", err)) {
			c->state = C_CLOSING;
			(void)flush(c);
		}
		return;
	}
	aj_proxy_request_free(c->reader);
	c->reader = inside;
	/* The 200 goes out as it is, behind what is still queued of an
	 * earlier answer; after it, everything is TLS. */
	if (!aj_proxy_buf_append(&c->wire, c->out.data + c->out.off, c->out.len - c->out.off) ||
	    (answer && !aj_proxy_buf_append(&c->wire, established, sizeof(established) - 1)) ||
	    aj_proxy_tls_received(c->tls, c->in + off, c->in_len - off) < 0) {
		conn_free(c);
		return;
	}
	c->out.off = c->out.len = 0;
	c->in_len = 0;
	c->state = C_READING;
	if (flush(c))
		feed(c);
}

/* The relay's word on a raw tunnel: refused (the client is told why), or
 * open (the client, its bytes and the 200 go to the relay). */
static void
raw_opened(void *arg, const char *code, int status, const char *rule, const char *message)
{
	static const char established[] = "HTTP/1.1 200 Connection established\r\n\r\n";
	struct aj_proxy_conn *c = arg;
	struct aj_proxy_tunnel *t = c->raw;
	int fd = c->fd;

	c->raw = NULL;
	/* A captured connection expects TLS, not an HTTP answer: it is
	 * closed (the relay audited why). */
	if (code != NULL && c->captured) {
		conn_free(c);
		return;
	}
	if (code != NULL) {
		if (refuse(c, status, code, rule, message, true)) {
			c->state = C_CLOSING;
			(void)flush(c);
		}
		return;
	}
	if (!c->captured && !aj_proxy_buf_append(&c->out, established, sizeof(established) - 1)) {
		aj_proxy_relay_cancel(t);
		conn_free(c);
		return;
	}
	ev_io_stop(aj_proxy_loop(c->px), &c->r);
	ev_io_stop(aj_proxy_loop(c->px), &c->w);
	c->fd = -1;
	(void)aj_proxy_relay_take(t, fd, c->in, c->in_len, c->out.data + c->out.off,
				  c->out.len - c->out.off);
	conn_free(c);
}

/* CONNECT to what a `tunnel` rule covers (or, from a client that asked
 * for a raw tunnel only, to anything): refused, or opened as a raw tunnel
 * (the bytes after the head, from OFF, wait for it).  False when it is
 * for interception. */
static bool
open_raw(struct aj_proxy_conn *c, size_t off)
{
	const struct aj_proxy_head *h = aj_proxy_request_head(c->reader);
	struct aj_proxy_relay_refusal no;
	int d = aj_proxy_relay(c->px) == NULL
			? -1
			: aj_proxy_relay_connect(aj_proxy_relay(c->px), h, raw_opened, c, &c->raw, &no);

	if (d < 0)
		return false;
	if (d > 0) {
		memmove(c->in, c->in + off, c->in_len - off);
		c->in_len -= off;
		c->state = C_WAITING;
		ev_io_stop(aj_proxy_loop(c->px), &c->r);
	} else if (refuse(c, no.status, no.code, no.rule, no.why, true)) {
		c->state = C_CLOSING;
		(void)flush(c);
	}
	return true;
}

/* A captured port-443 connection to a name a `tunnel` rule covers on 443
 * (a client that pins certificates and ignores the proxy): a raw tunnel,
 * its first bytes waiting for it, as after a CONNECT.  A tunnel rule that
 * denies it, or too many tunnels, closes it.  False when no tunnel rule
 * covers it: it is for interception. */
static bool
captured_raw(struct aj_proxy_conn *c)
{
	struct aj_proxy_relay_refusal no;
	int d = aj_proxy_relay(c->px) == NULL
			? -1
			: aj_proxy_relay_connect_to(aj_proxy_relay(c->px), &c->captured_tls, false,
						    raw_opened, c, &c->raw, &no);

	if (d < 0)
		return false;
	if (d == 0)
		conn_free(c);
	else {
		c->state = C_WAITING;
		ev_io_stop(aj_proxy_loop(c->px), &c->r);
	}
	return true;
}

/* Take the reader's events from what is buffered until it wants more or
 * a request waits for its answer. */
static void
feed(struct aj_proxy_conn *c)
{
	struct ev_loop *loop = aj_proxy_loop(c->px);
	size_t off = 0;

	if (c->tls != NULL && c->state == C_READING && !pump_tls(c))
		return;
	while (c->state == C_READING) {
		struct aj_proxy_request_step step = {0};
		enum aj_proxy_request_event ev =
			aj_proxy_request_read(c->reader, c->in + off, c->in_len - off, &step);
		const char *message = NULL;
		enum aj_proxy_request_error e;

		if (ev == AJ_PROXY_REQUEST_BODY)
			send_body(c, step.body, step.body_len, false);
		off += step.used;
		switch (ev) {
		case AJ_PROXY_REQUEST_MORE:
			break;
		case AJ_PROXY_REQUEST_HEAD:
			if (!start_request(c, aj_proxy_request_head(c->reader)))
				return;
			continue;
		case AJ_PROXY_REQUEST_BODY:
			if (aj_proxy_is_backlogged(c->px)) {
				/* Read on once the channel has room. */
				memmove(c->in, c->in + off, c->in_len - off);
				c->in_len -= off;
				ev_io_stop(loop, &c->r);
				aj_proxy_wait_for_room(c->px, c);
				return;
			}
			continue;
		case AJ_PROXY_REQUEST_END:
			if (c->body_due)
				send_body(c, "", 0, true);
			c->body_due = false;
			c->state = c->id != 0 ? C_WAITING : C_CLOSING;
			continue;
		case AJ_PROXY_REQUEST_DONE:
			c->state = C_CLOSING;
			continue;
		case AJ_PROXY_REQUEST_TUNNEL:
			if (c->id == 0 && c->tls == NULL &&
			    strcmp(aj_proxy_request_head(c->reader)->method, "CONNECT") == 0) {
				if (open_raw(c, off))
					return;
				if (aj_proxy_ca(c->px) != NULL) {
					start_tls(c, aj_proxy_request_head(c->reader)->authority,
						  off, true);
					return;
				}
			}
			if (c->id == 0 &&
			    !refuse_own(c, 501, "tunnel_unsupported",
					"Upgrade (WebSocket and the like) is not supported by this "
					"proxy yet"))
				return;
			c->state = C_CLOSING;
			continue;
		case AJ_PROXY_REQUEST_ERROR:
			e = aj_proxy_request_error(c->reader, &message);
			if (c->id != 0) {
				aj_proxy_close_id(c->px, c->id, true);
				c->id = 0;
			}
			c->body_due = false;
			c->unread = true;
			if (!c->responded &&
			    !refuse_own(c, aj_proxy_request_error_status(e), aj_proxy_request_error_name(e),
					message ? message : "malformed request"))
				return;
			c->state = C_CLOSING;
			continue;
		}
		break;
	}
	memmove(c->in, c->in + off, c->in_len - off);
	c->in_len -= off;
	if (c->state == C_READING)
		ev_io_start(loop, &c->r);
	else
		ev_io_stop(loop, &c->r);
	if (c->state == C_CLOSING && c->id == 0)
		(void)flush(c);
}

static void
on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
	struct aj_proxy_conn *c = w->data;
	ssize_t n;

	(void)revents;
	if (c->tls != NULL) {
		char cipher[16384];

		/* Read on once the plaintext already here is taken (feed). */
		if (aj_proxy_tls_backlog(c->tls) >= IN_MAX) {
			ev_io_stop(loop, &c->r);
			return;
		}
		n = read(c->fd, cipher, sizeof(cipher));
		if (n > 0 && aj_proxy_tls_received(c->tls, cipher, (size_t)n) < 0) {
			conn_free(c);
			return;
		}
	} else {
		if (c->in_len == IN_MAX) {
			/* The reader takes every byte it is given; this cannot stay. */
			ev_io_stop(loop, &c->r);
			return;
		}
		n = read(c->fd, c->in + c->in_len, IN_MAX - c->in_len);
		if (n > 0)
			c->in_len += (size_t)n;
		if (n > 0 && c->tls_pending) {
			c->tls_pending = false;
			if (!captured_raw(c))
				start_tls(c, c->captured_tls, 0, false);
			return;
		}
	}
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n == 0) {
		client_done(c);
		return;
	}
	if (n < 0) {
		conn_free(c);
		return;
	}
	feed(c);
}

static void
on_writable(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	(void)flush(w->data);
}

static void
conn_resume(struct aj_proxy_conn *c)
{
	if (c->state == C_READING) {
		ev_io_start(aj_proxy_loop(c->px), &c->r);
		feed(c);
	}
}

/* ---- the broker's answer ---------------------------------------------------------- */

static void
conn_response(struct aj_proxy_conn *c, json_t *resp)
{
	struct aj_proxy_framing f = {.close_after = c->close_after};

	if (!aj_proxy_answer_response(&c->out, resp, c->version, c->head_method, &f)) {
		conn_free(c);
		return;
	}
	c->no_body = f.no_body;
	c->chunked = f.chunked;
	c->close_after = f.close_after;
	c->responded = true;
	(void)flush(c);
}

static void
conn_body(struct aj_proxy_conn *c, const uint8_t *data, size_t len, bool end)
{
	if (len > 0 && !c->no_body) {
		if (c->chunked && !aj_proxy_buf_appendf(&c->out, "%zx\r\n", len)) {
			conn_free(c);
			return;
		}
		if (!append(c, data, len) || (c->chunked && !append(c, "\r\n", 2)))
			return;
	}
	c->ungranted += len;
	if (end) {
		if (c->chunked && !c->no_body && !append(c, "0\r\n\r\n", 5))
			return;
		request_done(c);
		return;
	}
	if (c->ungranted >= GRANT_MIN || c->out.len > 0)
		(void)flush(c);
}

static void
conn_error(struct aj_proxy_conn *c, json_t *err)
{
	const char *code = json_string_value(json_object_get(err, "code"));
	const char *message = json_string_value(json_object_get(err, "message"));
	const char *rule = json_string_value(json_object_get(err, "rule"));
	int status = 502;

	if (c->responded) {
		/* Mid-body: the client must see the answer is incomplete. */
		aj_proxy_close_id(c->px, c->id, false);
		c->id = 0;
		conn_free(c);
		return;
	}
	if (code == NULL)
		code = AJ_ERR_UPSTREAM;
	if (strcmp(code, AJ_ERR_DENIED) == 0)
		status = 403;
	else if (strcmp(code, AJ_ERR_BAD_REQUEST) == 0)
		status = 400;
	else if (strcmp(code, AJ_ERR_TIMEOUT) == 0)
		status = 504;
	else if (strcmp(code, AJ_ERR_RATE_LIMITED) == 0)
		status = 429;
	else if (strcmp(code, AJ_ERR_TOO_LARGE) == 0)
		status = c->had_body ? 413 : 502;
	/* An answer before the body was all read: the rest is not read. */
	if (!refuse(c, status, code, rule, message ? message : code, c->body_due))
		return;
	request_done(c);
}

/* ---- life --------------------------------------------------------------------------- */

static struct aj_proxy_conn *
conn_new(struct aj_proxy *px, int fd, const struct aj_proxy_authority *captured)
{
	struct aj_proxy_conn *c = calloc(1, sizeof(*c));
	bool http = captured != NULL && captured->port == 80;

	/* The proxy port reads any form; a captured port-80 connection is
	 * bound to its name's origin, as a tunnel is. */
	if (c == NULL || aj_proxy_request_new(http ? "http" : NULL, http ? captured : NULL,
					      &c->reader) < 0) {
		free(c);
		close(fd);
		return NULL;
	}
	c->px = px;
	c->fd = fd;
	c->state = C_READING;
	ev_io_init(&c->r, on_readable, fd, EV_READ);
	c->r.data = c;
	ev_io_init(&c->w, on_writable, fd, EV_WRITE);
	c->w.data = c;
	ev_io_start(aj_proxy_loop(px), &c->r);
	c->captured = captured != NULL;
	if (captured != NULL && !http) {
		c->captured_tls = *captured;
		c->tls_pending = true;
	}
	return c;
}

static void
conn_free(struct aj_proxy_conn *c)
{
	struct ev_loop *loop = aj_proxy_loop(c->px);

	ev_io_stop(loop, &c->r);
	ev_io_stop(loop, &c->w);
	aj_proxy_conn_gone(c->px, c);
	if (c->raw != NULL)
		aj_proxy_relay_cancel(c->raw);
	if (c->fd >= 0)
		close(c->fd);
	aj_proxy_request_free(c->reader);
	aj_proxy_tls_free(c->tls);
	aj_proxy_buf_free(&c->out);
	aj_proxy_buf_free(&c->wire);
	free(c);
}

const struct aj_proxy_conn_hooks aj_proxy_conn_hooks = {
	.accepted = conn_new,
	.close = conn_free,
	.response = conn_response,
	.body = conn_body,
	.error = conn_error,
	.resume = conn_resume,
};
