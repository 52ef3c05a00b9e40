/*
 * The agent side of the broker protocol (docs/PROTOCOL.md): what
 * `agentjail fetch` uses, for C programs running inside a jail.
 *
 * One fetch:      aj_client_fetch().
 * Many fetches:   aj_client_open() once (a private channel to the broker),
 *                 aj_client_request() per fetch, aj_client_close().
 *
 * Errors follow the convention of <agentjail/agentjail.h>: 0 or a negative
 * errno, a message into the caller's ERR buffer where there is one, outputs
 * written only on success.  An answer from the broker, even a refusal
 * ("denied"), is a success: a result record, not an error of the call.
 *
 * A client is used by one thread at a time and runs one request at a time.
 * It never trusts the broker further than the protocol allows: a frame that
 * is malformed or out of place ends the channel and is reported as
 * "broker_unavailable".
 */
#ifndef AGENTJAIL_CLIENT_H
#define AGENTJAIL_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <agentjail/protocol.h>

#ifdef __cplusplus
extern "C" {
#endif

struct aj_fetch_result {
	int status;        /* the HTTP status of a response, or 0 */
	char code[32];     /* "" for a response, else the error code (AJ_ERR_*) */
	char message[512]; /* the broker's message (escaped on output by the caller) */
	char rule[512];    /* for "denied": the rule that decided */

	/* Set once a RESPONSE arrived.  An ERROR after it (the body is
	 * incomplete) sets CODE and keeps STATUS. */
	char url[AJ_PROTO_MAX_URL + 1]; /* the normalised URL finally fetched (after redirects) */
	int64_t length;                 /* the announced body length; -1 if unknown */
	uint64_t received; /* body bytes received (written, discarded, or in BODY_FD) */
	int body_fd;       /* memfd delivery with out_fd -1: the sealed memfd, owned by the
			    * caller; else -1 */
};

struct aj_client;

/*
 * Open a private channel to the broker on FD: a fresh socketpair whose
 * other end goes to the broker in CONNECT, then HELLO and WELCOME.  With
 * FD -1, the door of $AGENTJAIL_FD when this process has it (a unix
 * seqpacket socket at that number), else a connection to the broker
 * socket of $AGENTJAIL_SOCKET (for a process whose parent closed fd 3).
 * Returns 0 with *OUT a new client (release it with aj_client_close()),
 * or:
 *   -EBADF         no broker socket: FD is -1 and neither $AGENTJAIL_FD nor
 *                  $AGENTJAIL_SOCKET is set, or FD is not an open socket
 *                  (not inside a jail?)
 *   -ECONNREFUSED  the broker is gone or did not answer HELLO properly
 *   -EAGAIN        the broker serves too many channels (rate_limited)
 *   -EPROTO        the broker refused the handshake (another ERROR)
 *   -EINVAL        OUT is NULL
 *   -ENOMEM, or socketpair()'s -EMFILE/-ENFILE
 */
int aj_client_open(int fd, struct aj_client **out);

/* Close the channel and free C; NULL is a no-op.  A memfd already handed
 * over in a result stays open. */
void aj_client_close(struct aj_client *c);

/* One response header, valid only during the callback. */
struct aj_client_header {
	const char *name;
	const char *value;
};

/*
 * Called once when the RESPONSE arrives, before any body byte is written:
 * RES holds status, url and length; HEADERS the response's N header fields
 * in order.  Return 0 to receive the body, or a negative errno to abandon
 * the request (it is cancelled and aj_client_request() returns that value).
 */
typedef int (*aj_client_response_fn)(const struct aj_fetch_result *res,
				     const struct aj_client_header *headers, size_t n, void *arg);

/* struct aj_client_req flags. */
#define AJ_CLIENT_MEMFD 0x0001   /* "deliver":"memfd": the broker hands over a sealed memfd */
#define AJ_CLIENT_BODY_FD 0x0002 /* the request body is read from BODY_FD to its end */
#define AJ_CLIENT_PIPE 0x0004    /* "deliver":"pipe": the body comes through a pipe */

struct aj_client_req {
	const char *method;         /* default "GET" */
	const char *url;            /* required */
	const char *const *headers; /* NULL or a NULL-terminated list of "Name: value" */
	const void *body;           /* the request body (BODY_LEN bytes), or NULL */
	size_t body_len;
	int body_fd;                       /* with AJ_CLIENT_BODY_FD; not closed */
	int out_fd;                        /* the response body goes here; -1: discarded (or, with
					    * AJ_CLIENT_MEMFD, kept in res->body_fd).  Not closed. */
	unsigned flags;                    /* AJ_CLIENT_* */
	aj_client_response_fn on_response; /* optional */
	void *arg;                         /* for ON_RESPONSE */
};

/* A GET with no headers and no body whose response body is discarded. */
void aj_client_req_init(struct aj_client_req *req);

/*
 * Perform REQ over C and wait for its end.  The request body is sent in
 * BODY frames of at most max_payload bytes (an empty body: REQUEST with
 * END).  Response BODY payloads are written to REQ->out_fd as they arrive,
 * and the consumed bytes granted back (WINDOW), so a body of any size flows
 * through a fixed buffer.  With AJ_CLIENT_MEMFD the memfd's seals
 * (F_SEAL_SEAL, F_SEAL_SHRINK, F_SEAL_GROW, F_SEAL_WRITE) and its size
 * (== length) are checked; it is then copied to out_fd and closed, or, when
 * out_fd is -1, handed over in RES->body_fd (offset 0).  With AJ_CLIENT_PIPE
 * the body is read from the pipe the broker hands over, to its end and never
 * past the length announced, and moved to out_fd with splice(2) where the
 * kernel allows it (the fastest way for a big body: it never passes through
 * this process's memory); AJ_CLIENT_MEMFD and AJ_CLIENT_PIPE together are
 * -EINVAL.
 *
 * Returns 0 with *RES filled: a complete response (CODE ""), or an error
 * record (CODE "denied", "upstream_error", ...; STATUS kept when the error
 * came after the RESPONSE).  "broker_unavailable" (EOF, a socket error, a
 * malformed or out-of-place frame) also ends the channel: later requests on
 * C fail the same way at once.  Otherwise *RES is untouched, ERR says why,
 * and the return is:
 *   -EINVAL    a bad argument: no client, URL or result record, a header
 *              without "Name:", more than 64 headers, both BODY and
 *              AJ_CLIENT_BODY_FD, unknown flags
 *   -EMSGSIZE  the method, URL and headers do not fit one metadata frame
 *   -ENOMEM
 *   -errno     reading BODY_FD or writing OUT_FD failed (ERR says which);
 *              the request is cancelled, C stays usable
 *   the ON_RESPONSE callback's negative return (the request is cancelled)
 * During the request, ON_RESPONSE sees the result so far (not yet *RES).
 */
int aj_client_request(struct aj_client *c, const struct aj_client_req *req,
		      struct aj_fetch_result *res, char *err, size_t errlen);

/*
 * Fetch URL with METHOD through the broker on FD (-1: $AGENTJAIL_FD) on a
 * channel of its own.  HEADERS is NULL or a NULL-terminated list of "Name:
 * value" strings.  The response body is written to OUT_FD (-1: discarded).
 * Returns 0 with *RES filled (a response, or an error record: code
 * "denied", "upstream_error", ..., "broker_unavailable" when the broker is
 * gone or there is none, "rate_limited" when it serves too many channels);
 * otherwise *RES is untouched, ERR says why, and the return is what
 * aj_client_request() returns (-EINVAL for a header without ':', -errno
 * when writing the body fails, ...).
 */
int aj_client_fetch(int fd, const char *method, const char *url, const char *const *headers,
		    int out_fd, struct aj_fetch_result *res, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif /* AGENTJAIL_CLIENT_H */
