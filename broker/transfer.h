/*
 * The state of one upstream transfer, shared by the files that carry it,
 * bottom up: transfer.c (the easy handle, the answer's headers, the end),
 * deliver.c (BODY frames, memfd), pipe.c (the pipe and the splice),
 * redirect.c (the next hop), transfers.c (the set that drives them).
 * Nothing outside those five includes this header.
 */
#ifndef AJ_TRANSFER_H
#define AJ_TRANSFER_H

#include <curl/curl.h>
#include <jansson.h>
#include <netinet/in.h>

#include "broker.h"

/* A request the agent ended by closing its pipe: finished without a word,
 * as after CANCEL. */
extern const char aj_transfer_cancelled[];

/* How the response body reaches the agent ("deliver" in REQUEST). */
struct aj_delivery {
	/* RESPONSE announces the body's size (the memfd's), not upstream's
	 * Content-Length. */
	bool announces_size;
	/* The transfer starts: 0, or -1 with T->why. */
	int (*start)(struct aj_transfer *t);
	/* The final answer's header block ended: RESPONSE now (frames, pipe)
	 * or at the end (memfd).  Returns 0, or -1 with T->error set. */
	int (*begin)(struct aj_transfer *t);
	/* LEN body bytes from libcurl; returns what libcurl's write callback
	 * returns (LEN, 0 to fail, CURL_WRITEFUNC_PAUSE). */
	size_t (*data)(struct aj_transfer *t, const char *data, size_t len);
	/* libcurl finished the body: end it (now, or once it is all out). */
	void (*complete)(struct aj_transfer *t);
	/* The transfer fails: before its ERROR goes out. */
	void (*abort)(struct aj_transfer *t);
	/* Bytes counted in bytes_out that never reached the agent. */
	uint64_t (*undelivered)(const struct aj_transfer *t);
	/* Free what the delivery holds. */
	void (*release)(struct aj_transfer *t);
};

extern const struct aj_delivery aj_deliver_frames, aj_deliver_memfd, aj_deliver_pipe;

/* BODY frames: gathered, within the agent's credit. */
struct aj_frames_out {
	int64_t credit; /* response bytes the agent will still take */
	/* Response bytes gathered into one BODY frame: libcurl hands over
	 * 16 KiB at a time, a frame holds 64 KiB.  Sent when full, and at the
	 * end of every round of the event loop (aj_deliver_flush_all()), so
	 * nothing waits for more data to arrive. */
	uint8_t *pending;
	size_t n_pending, pending_cap;
	struct aj_transfer *next_dirty; /* in the set's dirty list while n_pending > 0 */
	bool dirty;
};

/* "deliver":"pipe". */
struct aj_pipe_out {
	int w;          /* the write end, or -1 */
	ev_io room;     /* waits for room in the pipe */
	ev_io gone;     /* the agent closed its end (EPOLLERR, seen as readable) */
	uint8_t *spill; /* what libcurl handed over and the pipe could not take */
	size_t n_spill, spill_off, spill_cap;
	bool complete; /* libcurl is done: END once the spill is out */
	bool splice_wanted;
	bool takeover_due; /* in the set's takeover list */
	unsigned takeover_tries;
	struct aj_transfer *next_takeover;
	int sock; /* the connection taken over from libcurl, or -1 */
	ev_io sock_io;
	ev_timer deadline;  /* the time limit, once libcurl's own timer is gone */
	uint64_t remaining; /* body bytes still to come on SOCK */
	uint64_t spliced;
};

struct aj_transfer {
	struct aj_transfers *set;
	struct aj_req *req;
	const struct aj_delivery *via;
	CURL *easy;
	struct curl_slist *hdrs;
	char errbuf[CURL_ERROR_SIZE];
	const struct aj_fetch_rule *hop_rule; /* what allowed the current hop */
	size_t rule_slot;                     /* its index, for the limits */
	unsigned hops;                        /* redirects followed so far */
	bool left_origin;    /* a redirect led to another scheme, host or port: from
				then on no `inject` (a secret is for its origin) */
	/* The headers this hop's rules injected, "a,b" (names, never values),
	 * or "". */
	char injected[AJ_POLICY_MAX_INJECT * 64];
	double deadline;                      /* ev_now() by which it must be done */
	uint64_t max_response;
	/* This hop's answer. */
	json_t *resp_headers; /* filtered */
	size_t resp_header_bytes;
	char *location;
	bool headers_done; /* the header block has ended */
	bool redirecting;  /* the answer is a redirect to follow */
	bool te_chunked;   /* upstream sent Transfer-Encoding */
	bool response_sent;
	bool paused;
	long status;                    /* kept when the easy handle goes early */
	char address[INET6_ADDRSTRLEN]; /* the last address connected to */
	const char *refused;            /* why an address was refused, or NULL */
	char refused_addr[INET6_ADDRSTRLEN];
	const char *error; /* AJ_ERR_* a callback decided, or NULL */
	char why[160];     /* its message, for AJ_ERR_UPSTREAM */
	uint64_t bytes_out;
	uint64_t discarded; /* bytes of redirect bodies read and dropped */
	struct aj_frames_out frames;
	int memfd; /* "deliver":"memfd": the body collects here, or -1 */
	struct aj_pipe_out pipe;
};

struct aj_transfers {
	struct ev_loop *loop;
	const struct aj_policy *policy;
	const struct aj_ca_bundle *ca;
	struct aj_limits *limits;
	struct aj_audit_log *audit;
	struct aj_egress *egress;
	struct aj_curlev *curl;
	const struct aj_transfer_hooks *hooks;
	void *hooks_arg;
	struct aj_transfer *dirty;     /* holding response bytes not sent yet */
	struct aj_transfer *takeovers; /* connections to take over after this round */
};

/* ---- transfer.c ---- */

/* The limit of KIND for T's request. */
uint64_t aj_transfer_limit(const struct aj_transfer *t, enum aj_limit_kind kind);
/* RESPONSE with FD (-1: none) alongside. */
void aj_transfer_send_response(struct aj_transfer *t, int fd);
/* Keep the status and address of the answer before the easy handle goes. */
void aj_transfer_remember(struct aj_transfer *t);
/* Remove and clean up the easy handle, if any. */
void aj_transfer_release_easy(struct aj_transfer *t);
/* Set up the easy handle for the current hop (T->req->url) and add it.
 * Returns 0 or -1 (out of memory). */
int aj_transfer_setup_hop(struct aj_transfer *t);
/* Let libcurl go on after a pause. */
void aj_transfer_unpause(struct aj_transfer *t);
/* The request is over: audit, free, and tell the request layer. */
void aj_transfer_finish(struct aj_transfer *t, const char *error, const char *decision,
			const char *rule);
/* Fail with CODE; after RESPONSE the ERROR takes the final BODY's place. */
void aj_transfer_fail(struct aj_transfer *t, const char *code, const char *rule,
		      const char *decision, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
/* The time limit passed. */
void aj_transfer_fail_timeout(struct aj_transfer *t);

/* ---- deliver.c ---- */

/* The last BODY frame (END) with what is gathered; queued if need be. */
void aj_deliver_end(struct aj_transfer *t);
/* The end of a round of the event loop: gathered bytes go out now. */
void aj_deliver_flush_all(struct aj_transfers *set);
/* WINDOW, and room on the channel, for a frames transfer.  Resume returns
 * false when T paused again. */
void aj_deliver_window(struct aj_transfer *t, uint32_t credit);
bool aj_deliver_resume(struct aj_transfer *t);

/* ---- pipe.c ---- */

/* Take the connections due over from libcurl (after a round). */
void aj_pipe_take_over_all(struct aj_transfers *set);

/* ---- redirect.c ---- */

/* T's hop answered with a redirect: decide the next URL like a new
 * request, then fetch it, or end the request. */
void aj_redirect(struct aj_transfer *t);

#endif /* AJ_TRANSFER_H */
