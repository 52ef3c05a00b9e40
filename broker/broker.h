/*
 * agentjail-broker's internal header: one section per file, in the order a
 * request travels.  Each file owns its state (a struct made by its _new
 * and private to it) and calls the files below it directly; it reaches
 * the files above it only through the hooks they registered.
 *
 *   main.c      the process: the fd contract, identity, confinement, wiring
 *   channel.c   the agent's channels: reading frames, the out-queue
 *   dispatch.c  the permit table {type, phases, handler}: answer_<operation>
 *   request.c   a request's life: headers, body, the decision, the answer
 *   limits.c    token buckets, requests in flight, request-body memory
 *   transfers.c the set of transfers: start, libcurl's rounds, finished ones
 *   transfer.c  one upstream transfer (libcurl easy handle per hop)
 *   deliver.c   response bodies in BODY frames or a sealed memfd
 *   pipe.c      response bodies through a pipe, spliced from upstream
 *   redirect.c  a redirect hop, decided like a new request
 *   curlev.c    libcurl's multi interface on the libev loop, its sockets
 *   egress.c    which addresses may be connected to
 *   audit.c     one audit record per request, to the supervisor
 *   http.c      upstream header lines (http.h)
 *   proxy-request.c  the proxy's reading of a client's requests (proxy-request.h)
 *   proxy-head.c     what such a request's head means: target, Host, framing fields
 *   tlsca.c     the jail's CA: leaf certificates, intercepted TLS's server side
 *   proxy.c     `proxy on`: the listeners in the jail, the proxy's own channel
 *   proxy-conn.c  one client of the proxy: HTTP/1.1 in, the channel's answers out
 *   proxy-relay.c  a raw tunnel (`tunnel` rules): its connect, the bytes both ways
 *   confine.c   the broker's own seccomp filter
 */
#ifndef AJ_BROKER_H
#define AJ_BROKER_H

#include <agentjail/protocol.h>
#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

#include "addr.h"
#include "policy.h"
#include "proto.h"
#include "url.h"

struct json_t;
struct aj_audit_log;
struct aj_curlev;
struct aj_egress;
struct aj_limits;
struct aj_req;
struct aj_requests;
struct aj_transfer;
struct aj_transfers;
struct ssl_st;  /* OpenSSL's SSL */
struct x509_st; /* OpenSSL's X509 */

/* Response body bytes an agent may receive before it grants more
 * (WELCOME's "window", and every request's starting credit). */
#define AJ_BROKER_WINDOW 262144

/* ---- broker/channel.c: the agent's channels ---------------------------------- */

struct aj_channel;
struct aj_channels;

/* How the channel layer reaches the protocol layer above it. */
struct aj_channel_hooks {
	/* C got a slot: CONNECTED for a channel opened with CONNECT (its
	 * HELLO is due soon), false for the inherited one. */
	void (*opened)(struct aj_channel *c, bool connected, void *arg);
	/* One message of LEN bytes was read on C, with FD passed alongside
	 * (owned by the hook; -1: none; AJ_CHANNEL_BAD_FDS: more than one
	 * came, all closed).  LEN is the message's real length (MSG_TRUNC):
	 * over a frame's size, only the first bytes are at MSG. */
	void (*frame)(struct aj_channel *c, const uint8_t *msg, size_t len, int fd, void *arg);
	/* C is closing: forget everything about it (its data pointer too). */
	void (*closing)(struct aj_channel *c, void *arg);
	/* C's queued frames are out and its socket has room again. */
	void (*drained)(struct aj_channel *c, void *arg);
	/* The last channel closed: no agent process holds a channel. */
	void (*all_closed)(void *arg);
};

#define AJ_CHANNEL_BAD_FDS (-2)

/* The broker serves at most this many channels at once; this many more wait
 * (their HELLO unread) for a slot, and more are refused. */
#define AJ_CHANNELS_MAX 64
#define AJ_CHANNELS_WAITING_MAX 64

/* Answers queued for an agent that does not read them, per channel,
 * before the broker stops reading that channel. */
#define AJ_CHANNEL_QUEUE_MAX (256 * 1024)

struct aj_channels *aj_channels_new(struct ev_loop *loop, const struct aj_channel_hooks *hooks,
				    void *arg);
/* Closes every channel (without calling the hooks). */
void aj_channels_free(struct aj_channels *set);

/* Serve FD (non-blocking; taken over): a slot now, a place in the waiting
 * line (CONNECTED channels only), or one rate_limited record and close. */
void aj_channels_open(struct aj_channels *set, int fd, bool connected);

/* Accept on FD, the broker socket's listener (non-blocking; taken over):
 * each connection is served as a CONNECTED channel.  -EEXIST when one is
 * already there.  The listener does not keep the broker alive: it serves
 * while a channel is open (the inherited one included). */
int aj_channels_listen(struct aj_channels *set, int fd);

/* Serve FD as the broker's own channel (the proxy's): like any other, but
 * it keeps no agent's slot and does not keep the broker alive. */
void aj_channels_open_internal(struct aj_channels *set, int fd);

/* Read every throttled channel again. */
void aj_channels_unthrottle(struct aj_channels *set);

/* Close C now; its hooks' closing() runs first, the next waiting channel
 * gets the slot. */
void aj_channel_close(struct aj_channel *c);

/* The protocol layer's state for C. */
void aj_channel_set_data(struct aj_channel *c, void *data);
void *aj_channel_data(const struct aj_channel *c);

/* Queue or send one complete frame (with FD passed alongside if >= 0;
 * the channel takes it).  Frames leave in order. */
void aj_channel_send(struct aj_channel *c, const uint8_t *frame, size_t len, int fd);

/* Serialize OBJ (the reference is taken) into a frame and send it. */
void aj_channel_send_json(struct aj_channel *c, uint8_t type, uint32_t id, struct json_t *obj,
			  int fd);

/* An ERROR record for request ID (0: the channel). */
void aj_channel_send_error(struct aj_channel *c, uint32_t id, const char *code, const char *rule,
			   const char *msg);

/* BODY frames straight to the socket: 0, -EAGAIN when the socket is full or
 * frames are queued (nothing was sent; the caller pauses and is resumed
 * through drained()), or -EPIPE when the agent is gone.  Once part of the
 * data went, the rest queues. */
int aj_channel_send_body(struct aj_channel *c, uint32_t id, const void *data, size_t len, bool end);

/* Frames wait for room: a body must not overtake them. */
bool aj_channel_is_backlogged(const struct aj_channel *c);

/* Stop reading C (the profile's rate) until aj_channels_unthrottle(). */
void aj_channel_throttle(struct aj_channel *c);
bool aj_channel_is_throttled(const struct aj_channel *c);
/* Is C the broker's own channel (the proxy's: aj_channels_open_internal())? */
bool aj_channel_is_internal(const struct aj_channel *c);
/* Who made C (a CONNECTed channel): the pid in the broker's pid namespace
 * (0: unknown: the door, the proxy's), comm and executable ("" when
 * unknown or not ours to read). */
void aj_channel_peer(const struct aj_channel *c, pid_t *pid, const char **comm,
		     const char **exe);

/* The set C belongs to (CONNECT opens a new channel in it). */
struct aj_channels *aj_channel_set(const struct aj_channel *c);

/* ---- broker/dispatch.c: the permit table --------------------------------------- */

struct aj_dispatch;

/* Frames from the channels are decoded here and handed to the handler the
 * permit table names for their type and the channel's phase.  DOOR_MAKER
 * is the pid that made the inherited pair (the jail's init: a CONNECT must
 * not pass the agent's end of it back). */
struct aj_dispatch *aj_dispatch_new(struct ev_loop *loop, struct aj_requests *requests,
				    pid_t door_maker);
void aj_dispatch_free(struct aj_dispatch *d);

/* The channel hooks that feed it (main.c registers them with ARG = D). */
extern const struct aj_channel_hooks aj_dispatch_hooks;

/* A channel broke the protocol since the start: the broker's exit status
 * says so. */
bool aj_dispatch_saw_protocol_error(const struct aj_dispatch *d);

/* ---- broker/request.c: a request's life ------------------------------------------ */

/* The requests open on one channel, unordered. */
struct aj_req_table {
	struct aj_req *reqs[AJ_PROTO_MAX_IN_FLIGHT];
	size_t n;
};

/* One request from the agent, from REQUEST to its last frame. */
struct aj_req {
	struct aj_requests *set;
	const struct aj_policy *policy;
	struct aj_limits *limits_of; /* where its body memory is counted */
	struct aj_channel *ch;
	struct aj_req_table *table;
	uint32_t id;
	char method[16];
	unsigned method_bit;
	struct aj_url url;                /* the current hop, normalised */
	const struct aj_fetch_rule *rule; /* what allowed the first hop (its origin) */
	struct aj_fetch_limits limits;    /* of every allow rule matching any hop, merged */
	unsigned options;                 /* AJ_RULE_*, merged the same way */
	size_t inject[AJ_POLICY_MAX_INJECT]; /* the current hop's `inject` rules, by index */
	size_t n_inject;
	char *(*headers)[2];              /* the agent's, filtered, owned */
	size_t n_headers;
	uint8_t *body; /* the request body, collected before the fetch */
	size_t body_len, body_cap;
	bool body_open;               /* BODY frames still expected */
	bool body_refused;            /* answered: drop the rest until END */
	bool memfd;                   /* "deliver":"memfd" */
	bool pipe;                    /* "deliver":"pipe" */
	bool no_redirects;            /* "redirects":"none": a 3xx is the answer */
	long long declared_length;    /* the agent's Content-Length, or -1 */
	double started;               /* ev_now() at REQUEST */
	ev_timer body_timer;          /* the body must be complete by the time limit */
	struct aj_transfer *transfer; /* transfer.c's, once started; else NULL */
};

struct aj_requests *aj_requests_new(struct ev_loop *loop, const struct aj_policy *policy,
				    struct aj_limits *limits, struct aj_audit_log *audit,
				    struct aj_transfers *transfers);
void aj_requests_free(struct aj_requests *set);

/* The operations, named as the client's requests are (agent/client.c). */

/* REQUEST (frame F, PAYLOAD) on C's TABLE.  Returns 0, or -EBADMSG with
 * ERR when the channel must end (not JSON, a reused id, too many open). */
int aj_req_request(struct aj_requests *set, struct aj_channel *c, struct aj_req_table *table,
		   const struct aj_frame *f, const uint8_t *payload, char *err, size_t errlen);
/* BODY for request F->id.  Same returns. */
int aj_req_body(struct aj_req_table *table, const struct aj_frame *f, const uint8_t *payload,
		char *err, size_t errlen);
/* WINDOW: the agent consumed CREDIT more bytes of F->id's body. */
void aj_req_window(struct aj_req_table *table, uint32_t id, uint32_t credit);
/* CANCEL: abandon request ID; nothing more is sent for it. */
void aj_req_cancel(struct aj_req_table *table, uint32_t id);

/* The channel has room again: resume the transfers it paused. */
void aj_req_table_resume(struct aj_req_table *table);
/* The channel is gone: every request on it is abandoned. */
void aj_req_table_abandon(struct aj_req_table *table);

/* An answered request's end: forget and free it (its transfer is gone). */
void aj_req_finish(struct aj_req *r);

/* The record's own rules, for every layer that holds a request (inline:
 * the transfer layer below uses them without calling up into request.c). */

/* The limit of KIND for R: its rules', else the profile's. */
static inline uint64_t
aj_req_limit(const struct aj_req *r, enum aj_limit_kind kind)
{
	return aj_policy_limit(&r->limits, &r->policy->limits, kind);
}

/* May header NAME of R go upstream on this hop?  Credentials need every
 * matching rule's `credentials` option, an override header (another
 * method, host or path: aj_policy_override_headers) its `pass-header`. */
static inline bool
aj_req_header_allowed(const struct aj_req *r, const char *name)
{
	bool credential = strcasecmp(name, "Cookie") == 0 || strcasecmp(name, "Authorization") == 0;
	int override = aj_policy_override_header(name);

	if (credential)
		return (r->options & AJ_RULE_CREDENTIALS) != 0;
	return override < 0 || (r->options & AJ_RULE_PASS(override)) != 0;
}

/* ---- broker/limits.c: how much, how often ------------------------------------------ */

/* Requests per minute, as a token bucket refilled continuously. */
struct aj_bucket {
	double tokens;
	double last; /* ev_now() of the last use; 0: never used (full) */
};

/* Take one token if there is one (a rule's rate: refuse without). */
bool aj_bucket_take(struct aj_bucket *b, uint64_t per_minute, double now);
/* Take one token whatever is left (a request already read) and return the
 * seconds until the next whole token, 0 when one is left. */
double aj_bucket_charge(struct aj_bucket *b, uint64_t per_minute, double now);

struct aj_limits *aj_limits_new(const struct aj_policy *policy);
void aj_limits_free(struct aj_limits *l);

/* The profile-wide rate: every REQUEST read takes a token; the return is
 * how long the broker must stop reading that channel (0: not at all). */
double aj_limits_charge_request(struct aj_limits *l, double now);

/* Start a request under rule SLOT with effective LIMITS: the profile's
 * and the rule's concurrency, the rule's own rate.  Returns 0, or -EAGAIN
 * with WHY ("more than 64 requests in flight"). */
int aj_limits_start(struct aj_limits *l, size_t slot, const struct aj_fetch_limits *limits,
		    double now, char *why, size_t whylen);
/* A redirect hop moves the request from rule *SLOT to rule TO (TO's
 * concurrency and rate apply; *SLOT becomes TO once it counts there).
 * Same returns. */
int aj_limits_move(struct aj_limits *l, size_t *slot, size_t to,
		   const struct aj_fetch_limits *limits, double now, char *why, size_t whylen);
/* The request under rule SLOT is over. */
void aj_limits_end(struct aj_limits *l, size_t slot);

/* Request bodies held at once, all channels together.  Reserve returns
 * false when BYTES more would pass the budget. */
bool aj_limits_body_reserve(struct aj_limits *l, size_t bytes);
void aj_limits_body_release(struct aj_limits *l, size_t bytes);

/* Free R's request body (keeping the count of body memory right). */
static inline void
aj_req_drop_body(struct aj_req *r)
{
	aj_limits_body_release(r->limits_of, r->body_cap);
	free(r->body);
	r->body = NULL;
	r->body_cap = 0;
}

/* ---- broker/transfer.c: one upstream transfer --------------------------------------- */

/* The CA certificates the broker verifies upstream TLS with: the system's
 * and the profile's `fetch ca`, PEM, read before it is confined. */
struct aj_ca_bundle {
	char *pem;
	size_t len;
};

/* How a transfer reaches the request layer above it. */
struct aj_transfer_hooks {
	/* R's transfer is over and R answered: R may be freed. */
	void (*finished)(struct aj_req *r, void *arg);
};

/* Once, before the broker is confined (it sets libcurl up). */
struct aj_transfers *aj_transfers_new(struct ev_loop *loop, const struct aj_policy *policy,
				      const struct aj_ca_bundle *ca, struct aj_limits *limits,
				      struct aj_audit_log *audit, struct aj_egress *egress);
void aj_transfers_set_hooks(struct aj_transfers *set, const struct aj_transfer_hooks *hooks,
			    void *arg);
void aj_transfers_free(struct aj_transfers *set);

/* Start R (decided allowed, its body complete).  Limits may answer it at
 * once; either way R is answered and finished in time. */
void aj_transfer_start(struct aj_transfers *set, struct aj_req *r);
/* WINDOW for R's transfer. */
void aj_transfer_window(struct aj_transfer *t, uint32_t credit);
/* The channel has room: resume T if it paused for it.  Returns false when
 * T paused again (the channel is full: resume no more). */
bool aj_transfer_resume(struct aj_transfer *t);
/* CANCEL, or the channel went away: stop now, answer nothing. */
void aj_transfer_cancel(struct aj_transfer *t);

/* ---- broker/curlev.c: libcurl's multi interface on the libev loop ------------------ */

struct aj_curlev_hooks {
	/* After every round of libcurl work, before finished transfers are
	 * reported: what libcurl handed over goes out. */
	void (*after_round)(void *arg);
	/* The transfer of EASY is done with RESULT. */
	void (*done)(void *easy, int result, void *arg);
};

/* Once, before the broker is confined (libcurl's global state). */
struct aj_curlev *aj_curlev_new(struct ev_loop *loop, const struct aj_curlev_hooks *hooks,
				void *arg);
void aj_curlev_free(struct aj_curlev *cv);
/* The multi handle (a CURLM *). */
void *aj_curlev_multi(struct aj_curlev *cv);
/* Run after_round() and report finished transfers: after an unpause. */
void aj_curlev_after(struct aj_curlev *cv);

/* CURLOPT_OPENSOCKETFUNCTION/CLOSESOCKETFUNCTION for every easy handle:
 * the socket libcurl asked for, made and remembered (the connections a
 * pipe transfer may take over). */
int aj_curlev_socket(struct aj_curlev *cv, int family, int type, int protocol);
int aj_curlev_close_socket(struct aj_curlev *cv, int fd);
/* The body of every CURLOPT_OPENSOCKETFUNCTION (ADDR: libcurl's struct
 * curl_sockaddr, PURPOSE its curlsocktype), the one place an address is
 * checked, right before the socket exists: an address E refuses for a
 * connection to HOST (of HOST_KIND) that a rule whose host is RULE_HOST
 * allowed gets no socket (-1; *REFUSED says why, REFUSED_ADDR which);
 * else aj_curlev_socket()'s, its address in ADDRESS (both
 * INET6_ADDRSTRLEN bytes). */
int aj_curlev_open_socket(struct aj_curlev *cv, const struct aj_egress *e, int purpose, void *addr,
			  const char *host, int host_kind, const char *rule_host,
			  const char **refused, char *refused_addr, char *address);
/* The connection EASY's transfer runs on (its two ends are what libcurl
 * reports), or -1. */
int aj_curlev_connection_of(struct aj_curlev *cv, void *easy);
/* Take FD away from libcurl: removing EASY (unfinished) makes libcurl
 * close it, which now leaves it open.  Returns 0, or -EBUSY when libcurl
 * kept the connection (it was not closed). */
int aj_curlev_take_connection(struct aj_curlev *cv, void *easy, int fd);

/* ---- broker/egress.c: where the broker may connect --------------------------------- */

/* Once, before the broker is confined: the host's own addresses. */
struct aj_egress *aj_egress_new(const struct aj_policy *policy);
void aj_egress_free(struct aj_egress *e);

/* Why SA must not be connected to for a hop to URL that RULE allowed, or
 * NULL.  Special addresses (loopback, private, metadata, this host's own)
 * pass only when a `fetch address allow` range holds them or the rule
 * names exactly this IP literal. */
const char *aj_egress_refused(const struct aj_egress *e, const struct sockaddr *sa,
			      const struct aj_url *url, const struct aj_fetch_rule *rule);
/* The same for a connection to HOST (normalised, of HOST_KIND: AJ_HOST_*)
 * that a rule whose host is RULE_HOST allowed (a tunnel's). */
const char *aj_egress_refused_host(const struct aj_egress *e, const struct sockaddr *sa,
				   const char *host, int host_kind, const char *rule_host);

/* ---- broker/audit.c: one audit record per request ----------------------------------- */

/* Records go to FD (the supervisor's pipe; not owned), or nowhere (-1). */
struct aj_audit_log *aj_audit_log_new(struct ev_loop *loop, int fd);
void aj_audit_log_free(struct aj_audit_log *log);

struct aj_audit_entry {
	const struct aj_req *req;
	const char *decision; /* "allowed", "denied" or "refused" */
	const char *rule;     /* "file:line", or a reason */
	const char *address;  /* connected address, or NULL */
	int status;           /* HTTP status, or 0 */
	uint64_t bytes_out;   /* response body bytes sent to the agent */
	const char *error;    /* AJ_ERR_* code, or NULL */
	unsigned redirects;
	unsigned hop;      /* 0: the URL the agent asked for; N: the Nth redirect's */
	bool intermediate; /* a hop that redirected: the request goes on */
	uint64_t spliced;  /* of BYTES_OUT, moved by splice(2) ("deliver":"pipe") */
	const char *injected; /* the headers `inject` rules set on this hop ("a,b"), or NULL */
};

void aj_audit_log_write(struct aj_audit_log *log, const struct aj_audit_entry *e);
/* What the proxy refused itself, before any request reached the broker
 * (a malformed request, a tunnel it would not open or whose handshake
 * failed): decision "refused", request 0, ERROR the code the client got
 * in X-Agentjail-Error, URL as far as it was read ("" if not at all). */
void aj_audit_log_write_proxy(struct aj_audit_log *log, const char *method, const char *url,
			      const char *error);
/* A name the DNS stub answered NXDOMAIN because no allow rule names it:
 * method "DNS", url "dns:NAME", decision "denied", via "dns". */
void aj_audit_log_write_dns(struct aj_audit_log *log, const char *name);

/* A raw tunnel (`tunnel` rules, broker/proxy-relay.c): one record when it
 * is refused or fails, or when it closes. */
struct aj_audit_tunnel {
	const char *target;   /* the CONNECT target, "host:port" */
	const char *decision; /* "allowed", "denied" or "refused" */
	const char *rule;     /* "file:line", or a reason */
	const char *address;  /* connected address, or NULL */
	int status;           /* what the client got: 200, 403, 502, 504 */
	uint64_t bytes_in;    /* client to upstream */
	uint64_t bytes_out;   /* upstream to client */
	uint64_t duration_ms;
	const char *error; /* AJ_ERR_* code, or NULL */
};

void aj_audit_log_write_tunnel(struct aj_audit_log *log, const struct aj_audit_tunnel *t);

/* ---- broker/tlsca.c: the jail's TLS interception authority ---------------------- */

struct aj_tlsca;

/* How long the CA, and so every leaf, is valid: the jail's life has no
 * bound of its own, so this is it (a jail running longer gets no more
 * leaves: -EKEYEXPIRED).  Certificates start AJ_TLSCA_BACKDATE seconds
 * before they are made: the jail reads the broker's own clock, so this
 * only spares a tool comparing against a rounded or cached time. */
#define AJ_TLSCA_DAYS 30
#define AJ_TLSCA_BACKDATE 3600

/* Leaves kept per CA, one per host.  Past it, a new host's leaf is signed
 * for each tunnel and not kept: nothing is refused, memory stays bounded
 * (a kept leaf is about 4 KiB). */
#define AJ_TLSCA_LEAVES_MAX 4096

/* A new CA for one jail: an EC P-256 key made in memory (it never leaves
 * the broker), a self-signed certificate "O=agentjail, CN=agentjail jail
 * CA <64 random bits>", valid AJ_TLSCA_DAYS, that may sign leaves only
 * (CA:TRUE, pathlen:0).  Returns 0, or -ENOMEM or -EIO with ERR. */
int aj_tlsca_new(struct aj_tlsca **out, char *err, size_t errlen);
/* Frees the keys (cleared as they go: tlsca.c).  Tunnels' SSLs may
 * outlive it: they hold their own references. */
void aj_tlsca_free(struct aj_tlsca *ca);

/* The CA's certificate, PEM, NUL-terminated, *LEN bytes (LEN may be
 * NULL): what the jail's trust bundle adds.  Owned by CA. */
const char *aj_tlsca_pem(const struct aj_tlsca *ca, size_t *len);

/* The leaf certificate for HOST (a DNS name as A-labels, or an IP literal,
 * IPv6 bare; normalised as common/url.c does: lower case, no trailing
 * dot), made at the first call and kept (AJ_TLSCA_LEAVES_MAX): the host in
 * the subject alternative name (and the CN when it fits), serverAuth,
 * valid to the CA's end.  Every leaf of a CA has the same key, made with
 * the CA: a key per host would guard nothing more, since all of them would
 * sit in this one process beside the CA's key.  Returns 0 with a new
 * reference in *OUT (X509_free), -EINVAL with ERR for a host no
 * certificate may name (empty, longer than 253 bytes, a wildcard, a port,
 * a character DNS names do not have), -EKEYEXPIRED, -ENOMEM or -EIO. */
int aj_tlsca_leaf(struct aj_tlsca *ca, const char *host, struct x509_st **out, char *err,
		  size_t errlen);

/* The server side of an intercepted tunnel to HOST (the CONNECT host;
 * aj_tlsca_leaf's names and returns), in accept state, with no fd or BIO
 * yet; the caller SSL_frees it.  TLS 1.2 or 1.3, no session resumption
 * (every handshake is a full one); ALPN selects http/1.1 when offered and
 * nothing otherwise (an h2-only client gets no ALPN).
 * It presents HOST's leaf and no other certificate: the handshake fails
 * (alert unrecognized_name) before any certificate is sent when the
 * client's server name (SNI) differs from HOST, is not a host name, or is
 * missing while HOST is a name.  Without SNI, an IP literal HOST is
 * served its leaf (clients send no SNI for addresses).  After a failed
 * handshake, aj_tlsca_refusal says whether this check refused it. */
int aj_tlsca_server_ssl(struct aj_tlsca *ca, const char *host, struct ssl_st **out, char *err,
			size_t errlen);

/* Why the server-name check refused SSL's handshake ("the client's server
 * name (SNI) is a.example, but the tunnel is to b.example"; the agent's
 * text escaped), or NULL when it did not.  Owned by SSL. */
const char *aj_tlsca_refusal(const struct ssl_st *ssl);

/* ---- broker/proxy.c: `proxy on` ---------------------------------------------------- */

struct aj_proxy;

/* Serve the N listening sockets LISTEN_FDS (non-blocking; taken over),
 * speaking to the broker on CHAN: one end of a SOCK_SEQPACKET pair whose
 * other end is an internal channel (aj_channels_open_internal()).  CA
 * (kept by the caller, outliving the proxy) signs the leaves of the TLS
 * tunnels clients open with CONNECT; RELAY (kept by the caller, outliving
 * the proxy; proxy-relay.c) serves those a `tunnel` rule covers; the
 * proxy's own refusals go to AUDIT; CONN is aj_proxy_conn_hooks.  With
 * STUB (the jail's DNS stub, or NULL), CAPTURE_FDS are the listeners of
 * the captured ports 80 and 443 (taken over too): a connection to an
 * address STUB gave out is served as that name's.  NULL: out of memory. */
struct aj_proxy_conn_hooks;
struct aj_proxy_relay;
struct aj_dns_stub;
struct aj_proxy *aj_proxy_new(struct ev_loop *loop, int chan, const int *listen_fds, size_t n,
			      const int capture_fds[2], const struct aj_dns_stub *stub,
			      struct aj_tlsca *ca, struct aj_proxy_relay *relay,
			      struct aj_audit_log *audit, const struct aj_proxy_conn_hooks *conn);
/* The connections' side (proxy-conn.c), passed as CONN: the proxy calls
 * its connections through it only, as the channels call the protocol
 * layer through their hooks. */
extern const struct aj_proxy_conn_hooks aj_proxy_conn_hooks;
void aj_proxy_free(struct aj_proxy *px);

/* The raw tunnels of `tunnel` rules (broker/proxy-relay.c): once, before
 * the broker is confined (a libcurl multi handle of its own).  POLICY,
 * EGRESS and AUDIT outlive it.  NULL: out of memory, or libcurl. */
struct aj_proxy_relay *aj_proxy_relay_new(struct ev_loop *loop, const struct aj_policy *policy,
					  struct aj_egress *egress, struct aj_audit_log *audit);
/* Ends every tunnel (each audited); after aj_proxy_free(). */
void aj_proxy_relay_free(struct aj_proxy_relay *r);

/* ---- broker/dns-stub.c: the jail's resolver for the tools without a proxy ------------ */

/* Names given addresses (or refused) per jail, at most: past it a new
 * name is answered REFUSED. */
#define AJ_DNS_STUB_MAX_NAMES 4096

/* Answer the queries on the UDP socket FD (non-blocking; taken over) from
 * POLICY (which outlives the stub); refused names are audited to AUDIT.
 * NULL: out of memory. */
struct aj_dns_stub *aj_dns_stub_new(struct ev_loop *loop, int fd, const struct aj_policy *policy,
				    struct aj_audit_log *audit);
/* The name the stub gave the address LOCAL (a connection's own end), or
 * NULL: not one it gave out to a name the rules name.  S may be NULL. */
const char *aj_dns_stub_name_of(const struct aj_dns_stub *s, const struct sockaddr *local);
void aj_dns_stub_free(struct aj_dns_stub *s);

/* ---- broker/confine.c -------------------------------------------------------------- */

/* Load the broker's own seccomp filter (needs no_new_privs or CAP_SYS_ADMIN;
 * sets no_new_privs).  Returns 0 or -errno with ERR. */
int aj_confine(char *err, size_t errlen);

#endif /* AJ_BROKER_H */
