/*
 * The proxy's two halves, for each other alone (broker.h has its entry):
 *
 *   proxy.c       the listening sockets in the jail, and the proxy's own
 *                 channel to the broker: one in-process client of the
 *                 broker's protocol (docs/PROTOCOL.md) on a socketpair, so
 *                 a request through the proxy is decided, limited, fetched
 *                 and audited by exactly the code a native request is
 *   proxy-conn.c  one client connection: HTTP/1.1 requests read with
 *                 proxy-request.c, each turned into a REQUEST on that
 *                 channel, the answer written back as HTTP/1.1; after a
 *                 CONNECT, the same inside TLS
 *   proxy-tls.c   that TLS: the server side of an intercepted tunnel,
 *                 with the jail's leaf for the CONNECT host (tlsca.c)
 *   proxy-answer.c  the heads the proxy writes: its refusals, the broker's
 *                 answers with the proxy's framing
 *   proxy-relay.c a CONNECT a `tunnel` rule covers: the upstream
 *                 connection (libcurl's connect, the egress checks) and
 *                 the raw relay between it and the client
 *
 * Ids: the channel's request ids come from a counter that only grows, so a
 * frame still on its way for a cancelled request can never be taken for
 * a later one (it names an id no connection holds, and is dropped).
 */
#ifndef AJ_PROXY_H
#define AJ_PROXY_H

#include <ev.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct aj_proxy;
struct aj_proxy_conn;
struct aj_proxy_tls;
struct aj_tlsca;

/* Bytes on their way out, written from OFF. */
struct aj_proxy_buf {
	char *data;
	size_t len, off, cap;
};

/* Append LEN bytes; false when out of memory. */
bool aj_proxy_buf_append(struct aj_proxy_buf *b, const void *data, size_t len);
void aj_proxy_buf_free(struct aj_proxy_buf *b);

/* ---- proxy.c, for the connections ----------------------------------------------- */

struct ev_loop *aj_proxy_loop(const struct aj_proxy *px);
/* The jail's CA, for the tunnels' TLS. */
struct aj_tlsca *aj_proxy_ca(const struct aj_proxy *px);
/* The raw tunnels (`tunnel` rules). */
struct aj_proxy_relay *aj_proxy_relay(const struct aj_proxy *px);
/* A refusal of the proxy's own (CODE, as in X-Agentjail-Error) goes to
 * the audit: METHOD and URL as far as they were read (NULL: not). */
void aj_proxy_refused(struct aj_proxy *px, const char *method, const char *url, const char *code);

/* A request id for C: 0 when AJ_PROTO_MAX_IN_FLIGHT are open (the
 * channel would end past that). */
uint32_t aj_proxy_open_id(struct aj_proxy *px, struct aj_proxy_conn *c);
/* The request ID is over (answered, or cancelled: then CANCEL is sent). */
void aj_proxy_close_id(struct aj_proxy *px, uint32_t id, bool cancel);

/* Frames to the broker, in order.  They queue while the channel is full;
 * aj_proxy_is_backlogged() tells a connection to stop reading its client
 * for a while (it is resumed through aj_proxy_conn_resume()). */
void aj_proxy_send(struct aj_proxy *px, uint8_t type, uint16_t flags, uint32_t id,
		   const void *payload, size_t len);
void aj_proxy_send_json(struct aj_proxy *px, uint8_t type, uint16_t flags, uint32_t id,
			json_t *obj);
bool aj_proxy_is_backlogged(const struct aj_proxy *px);
void aj_proxy_wait_for_room(struct aj_proxy *px, struct aj_proxy_conn *c);

/* C closed: forget it (its ids were closed first). */
void aj_proxy_conn_gone(struct aj_proxy *px, struct aj_proxy_conn *c);

/* ---- proxy-conn.c, for the proxy (aj_proxy_conn_hooks) --------------------------- */

struct aj_proxy_authority;

struct aj_proxy_conn_hooks {
	/* Serve the accepted client FD (non-blocking; taken over): a client
	 * of the proxy port (CAPTURED NULL), or a connection captured on port
	 * 80 or 443 of an address the DNS stub gave the name in CAPTURED, to
	 * be served as plain HTTP of, or a TLS tunnel to, that origin.  NULL:
	 * out of memory (FD closed). */
	struct aj_proxy_conn *(*accepted)(struct aj_proxy *px, int fd,
					  const struct aj_proxy_authority *captured);
	/* Close now, answering nothing more (the proxy is going away). */
	void (*close)(struct aj_proxy_conn *c);
	/* The broker's answer to C's request: RESPONSE's object, BODY bytes
	 * (END: the last), ERROR's object.  After the last BODY or an ERROR
	 * the id is closed by the connection. */
	void (*response)(struct aj_proxy_conn *c, json_t *resp);
	void (*body)(struct aj_proxy_conn *c, const uint8_t *data, size_t len, bool end);
	void (*error)(struct aj_proxy_conn *c, json_t *err);
	/* The channel to the broker has room again. */
	void (*resume)(struct aj_proxy_conn *c);
};

/* ---- proxy-answer.c, for the connections -------------------------------------------- */

/* Append the formatted text (up to 511 bytes); false when out of memory. */
bool aj_proxy_buf_appendf(struct aj_proxy_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* A refusal of the proxy's own onto OUT: STATUS, CODE in
 * X-Agentjail-Error, RULE (or NULL) in X-Agentjail-Rule (a control byte
 * in it goes out as '?'), MESSAGE as a one-line body (its length in
 * Content-Length; the body itself only WITH_BODY: not for a HEAD), and
 * `Connection: close` when CLOSE.  False when out of memory. */
bool aj_proxy_answer_refusal(struct aj_proxy_buf *out, int status, const char *code,
			     const char *rule, const char *message, bool with_body, bool close);

/* How an answer's body goes to the client. */
struct aj_proxy_framing {
	bool no_body;     /* none (HEAD, 1xx, 204, 304) */
	bool chunked;     /* chunk-encoded */
	bool close_after; /* in: the client's request said so; out: also when the end of
			     the body is the close (an HTTP/1.0 client, no length) */
};

/* The head of the broker's RESPONSE (its object) for a client of HTTP
 * VERSION (10 or 11) that asked with HEAD_METHOD or not, onto OUT; *F
 * says how the body follows.  False when out of memory. */
bool aj_proxy_answer_response(struct aj_proxy_buf *out, json_t *resp, unsigned version,
			      bool head_method, struct aj_proxy_framing *f);

/* ---- proxy-fields.c, for the connections -------------------------------------------- */

struct aj_proxy_head;

/* H's end-to-end fields as REQUEST's "headers" (a new array in *OUT): not
 * Host, Content-Length, Expect (the broker sets them), the hop-by-hop
 * ones, Proxy-*, nor those the Connection field names.  Returns 0,
 * -E2BIG past AJ_PROTO_MAX_HEADERS, or -ENOMEM. */
int aj_proxy_fields_json(const struct aj_proxy_head *h, json_t **out);

/* ---- proxy-tls.c, for the connections --------------------------------------------- */

/* The server side of a tunnel to HOST (the CONNECT host, as the URL
 * normaliser spells it), before its handshake.  Returns 0, or
 * aj_tlsca_server_ssl()'s errors with ERR. */
int aj_proxy_tls_new(struct aj_tlsca *ca, const char *host, struct aj_proxy_tls **out, char *err,
		     size_t errlen);
void aj_proxy_tls_free(struct aj_proxy_tls *t);

/* Ciphertext the client sent.  0 or -ENOMEM. */
int aj_proxy_tls_received(struct aj_proxy_tls *t, const void *data, size_t len);
/* Ciphertext and plaintext not yet read out: the connection stops reading
 * its socket while this is large. */
size_t aj_proxy_tls_backlog(const struct aj_proxy_tls *t);
/* Up to LEN bytes of plaintext into BUF, the handshake first; what the
 * engine has to send goes onto WIRE.  Returns the bytes, 0 when more
 * ciphertext is needed, -ECONNRESET when the client closed the session,
 * -EPROTO when the handshake or the session failed (aj_proxy_tls_error()
 * says why), -ENOMEM. */
ssize_t aj_proxy_tls_read(struct aj_proxy_tls *t, void *buf, size_t len, struct aj_proxy_buf *wire);
/* Plaintext for the client, encrypted onto WIRE.  0, -EPROTO, -ENOMEM. */
int aj_proxy_tls_write(struct aj_proxy_tls *t, const void *data, size_t len,
		       struct aj_proxy_buf *wire);
/* The session's end (close_notify) onto WIRE, if it was established. */
int aj_proxy_tls_close(struct aj_proxy_tls *t, struct aj_proxy_buf *wire);
bool aj_proxy_tls_is_open(const struct aj_proxy_tls *t);
/* Did the server-name check (tlsca.c) end the handshake? */
bool aj_proxy_tls_refused_name(const struct aj_proxy_tls *t);
const char *aj_proxy_tls_error(const struct aj_proxy_tls *t);

/* ---- proxy-relay.c, for the connections ------------------------------------------- */

struct aj_audit_log;
struct aj_egress;
struct aj_policy;
struct aj_proxy_relay;
struct aj_proxy_tunnel;
struct aj_tunnel_rule;

/* (aj_proxy_relay_new and _free: broker.h.) */

/* The upstream connection's outcome: CODE NULL when it is open (the
 * caller then hands its client over with aj_proxy_relay_take()); else
 * the error code, HTTP STATUS, RULE (file:line or a reason) and MESSAGE
 * the client gets, and the tunnel is gone (audited). */
typedef void (*aj_proxy_relay_opened_fn)(void *arg, const char *code, int status, const char *rule,
					 const char *message);

/* How to answer a tunnel refused at once. */
struct aj_proxy_relay_refusal {
	int status;       /* 403, or 503 past the limit of tunnels */
	const char *code; /* AJ_ERR_DENIED or AJ_ERR_RATE_LIMITED */
	const char *rule; /* "file:line" or "default deny" */
	const char *why;
};

struct aj_proxy_head;

/* CONNECT H (its authority, normalised): -1 when no tunnel rule covers it
 * and the client did not ask for a raw tunnel only ("X-Agentjail-Tunnel:
 * raw"): it is for interception; 0 refused (a deny rule, no rule, too many
 * tunnels: audited, *NO says how to answer); 1 the tunnel is being opened
 * (*OUT): the upstream connection as a fetch's would be (resolver, address
 * checks, the profile's timeout), then OPENED(ARG) once, later, from the
 * loop. */
int aj_proxy_relay_connect(struct aj_proxy_relay *r, const struct aj_proxy_head *h,
			   aj_proxy_relay_opened_fn opened, void *arg, struct aj_proxy_tunnel **out,
			   struct aj_proxy_relay_refusal *no);
/* The same for the authority A (a captured port-443 connection's name:443:
 * no head), RAW_ONLY as the header would say. */
int aj_proxy_relay_connect_to(struct aj_proxy_relay *r, const struct aj_proxy_authority *a,
			      bool raw_only, aj_proxy_relay_opened_fn opened, void *arg,
			      struct aj_proxy_tunnel **out, struct aj_proxy_relay_refusal *no);
/* The client went away before OPENED: forget the tunnel (OPENED is not
 * called). */
void aj_proxy_relay_cancel(struct aj_proxy_tunnel *t);
/* After OPENED said open: relay between the client FD (non-blocking;
 * taken over) and the upstream.  TO_UPSTREAM are bytes the client sent
 * after its CONNECT, TO_CLIENT the bytes it is owed first (the 200); at
 * most 64 KiB each.  Returns 0, or -E2BIG (the tunnel ended, FD closed). */
int aj_proxy_relay_take(struct aj_proxy_tunnel *t, int fd, const void *to_upstream, size_t up_len,
			const void *to_client, size_t client_len);

#endif /* AJ_PROXY_H */
