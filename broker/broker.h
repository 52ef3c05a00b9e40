/*
 * agentjail-broker's internal header: one section per file.
 */
#ifndef AJ_BROKER_H
#define AJ_BROKER_H

#include <agentjail/protocol.h>
#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "policy.h"
#include "proto.h"
#include "url.h"

struct json_t;

/* ---- broker/broker.c: channels and frames --------------------------------- */

/* The CA certificates the broker verifies upstream TLS with: the system's
 * and the profile's `fetch ca`, PEM, read before it is confined. */
struct aj_ca_bundle {
	char *pem;
	size_t len;
};

/* A control frame waiting for room in the channel's socket buffer. */
struct outframe {
	struct outframe *next;
	int fd; /* passed with the frame (memfd hand-over), or -1 */
	size_t len;
	uint8_t data[];
};

enum phase {
	PHASE_HELLO, /* only HELLO is permitted */
	PHASE_READY, /* requests and their frames */
};

struct aj_req;

struct channel {
	struct broker *broker;
	int fd;    /* -1: slot free */
	ev_io io;  /* readable */
	ev_io wio; /* writable, while frames wait or transfers are paused */
	enum phase phase;
	struct aj_req *reqs[AJ_PROTO_MAX_IN_FLIGHT]; /* open requests, unordered */
	size_t n_reqs;
	struct outframe *out_head, *out_tail;
	size_t out_bytes; /* queued */
	bool throttled;   /* not read until the profile's rate allows */
	ev_timer hello;   /* the HELLO deadline */
};

/* One request from the agent, from REQUEST to its last frame. */
struct aj_req {
	struct channel *ch;
	uint32_t id;
	char method[16];
	unsigned method_bit;
	struct aj_url url;                /* the current hop, normalised */
	const struct aj_fetch_rule *rule; /* what allowed the first hop (its origin) */
	struct aj_fetch_limits limits;    /* of every allow rule matching any hop, merged */
	unsigned options;                 /* AJ_RULE_*, merged the same way */
	char *(*headers)[2];              /* the agent's, filtered, owned */
	size_t n_headers;
	uint8_t *body; /* the request body, collected before the fetch */
	size_t body_len, body_cap;
	bool body_open;            /* BODY frames still expected */
	bool body_refused;         /* too large: drop the rest until END */
	bool memfd;                /* "deliver":"memfd" */
	bool pipe;                 /* "deliver":"pipe" */
	long long declared_length; /* the agent's Content-Length, or -1 */
	double started;            /* ev_now() at REQUEST */
	ev_timer body_timer;       /* the body must be complete by the time limit */
	struct aj_fetch *fetch;    /* fetch.c's state once started, else NULL */
};

/* Queue or send one complete frame (with FD passed alongside if >= 0;
 * the channel takes it).  Frames leave in order. */
void aj_channel_send(struct channel *c, const uint8_t *frame, size_t len, int fd);

/* Serialize OBJ (a reference is taken) into a frame and send it. */
void aj_channel_send_json(struct channel *c, uint8_t type, uint32_t id, struct json_t *obj, int fd);

void aj_channel_send_error(struct channel *c, uint32_t id, const char *code, const char *rule,
			   const char *msg);

/* A BODY frame straight to the socket: 0, or -EAGAIN when the socket is
 * full or control frames are waiting (the caller pauses and is resumed by
 * aj_fetch_resume()), or -EPIPE. */
int aj_channel_send_body(struct channel *c, uint32_t id, const void *data, size_t len, bool end);

/* Free R's request body (keeping the broker's count of body bytes). */
void aj_req_drop_body(struct aj_req *r);

/* The request is over: forget and free it (its fetch must be gone). */
void aj_req_finish(struct aj_req *r);

/* ---- broker/fetch.c: libcurl's multi interface on the libev loop ---------- */

/* Once, before the broker is confined: libcurl's global state, the host's
 * own addresses.  Returns 0 or -1 with a message on stderr. */
int aj_fetch_init(struct ev_loop *loop, const struct aj_policy *policy,
		  const struct aj_ca_bundle *ca);

/* Start R (decided allowed, body complete).  Limits (concurrency, rate)
 * may answer it at once; either way R is answered and finished in time. */
void aj_fetch_start(struct aj_req *r);

/* WINDOW: the agent consumed CREDIT more bytes. */
void aj_fetch_window(struct aj_req *r, uint32_t credit);

/* The channel has room again: resume its paused transfers. */
void aj_fetch_resume(struct channel *c);

/* CANCEL, or the channel went away: stop R's transfer now, answer nothing. */
void aj_fetch_cancel(struct aj_req *r);

/* ---- broker/audit.c: one JSON line per request ------------------------------ */

/* Where audit lines go (the supervisor's pipe), or -1. */
void aj_audit_init(int fd);

struct aj_audit_record {
	const struct aj_req *req;
	const char *decision; /* "allowed" or "denied" */
	const char *rule;     /* "file:line", or a reason */
	const char *address;  /* connected address, or NULL */
	int status;           /* HTTP status, or 0 */
	uint64_t bytes_out;   /* response body bytes sent to the agent */
	const char *error;    /* AJ_ERR_* code, or NULL */
	const char *url;      /* the URL at the end (after redirects), or NULL: req->url */
	unsigned redirects;
	unsigned hop;      /* 0: the URL the agent asked for; N: the Nth redirect's */
	bool intermediate; /* a hop that redirected: the request goes on */
	uint64_t spliced;  /* of BYTES_OUT, moved by splice(2) ("deliver":"pipe") */
};

void aj_audit(const struct aj_audit_record *rec);

/* ---- broker/confine.c ------------------------------------------------------ */

/* Load the broker's own seccomp filter (needs no_new_privs or CAP_SYS_ADMIN;
 * sets no_new_privs).  Returns 0 or -errno with ERR. */
int aj_broker_confine(char *err, size_t errlen);

#endif /* AJ_BROKER_H */
