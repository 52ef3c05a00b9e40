/*
 * The agentjail wire protocol, version 1: how an agent talks to its broker
 * over the inherited socket whose fd number is in $AGENTJAIL_FD.  The full
 * description, small enough to implement from any language, is
 * docs/PROTOCOL.md; this header is its C form.
 *
 * The socket is SOCK_SEQPACKET: every message is exactly one frame, a
 * 16-byte little-endian header followed by LENGTH payload bytes.  Metadata
 * payloads are one JSON object (UTF-8); body payloads are raw bytes.
 *
 * The functions follow the error convention of <agentjail/agentjail.h>
 * (agentjail(3)).  Building and parsing JSON payloads is left to the
 * caller's own JSON library: this header names no third-party type.
 */
#ifndef AGENTJAIL_PROTOCOL_H
#define AGENTJAIL_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AJ_PROTO_VERSION 1
#define AJ_PROTO_HEADER_SIZE 16

/* Bounds every implementation enforces before allocating anything. */
#define AJ_PROTO_MAX_PAYLOAD 65536 /* bytes after the header, any frame */
#define AJ_PROTO_MAX_JSON 16384    /* a metadata payload */
#define AJ_PROTO_MAX_URL 8192      /* bytes of a request's URL */
#define AJ_PROTO_MAX_HEADERS 64    /* header fields in a request or response */
#define AJ_PROTO_MAX_IN_FLIGHT 256 /* requests open at once on one channel */
#define AJ_PROTO_MAX_HEADER_NAME 256   /* bytes of a header field's name */
#define AJ_PROTO_MAX_HEADER_VALUE 8192 /* bytes of a header field's value */

enum aj_msg_type {
	AJ_MSG_HELLO = 1,    /* agent -> broker, id 0: {"version":1,"client":"..."} */
	AJ_MSG_WELCOME = 2,  /* broker -> agent, id 0: version and limits */
	AJ_MSG_REQUEST = 3,  /* agent -> broker: method, url, headers, body */
	AJ_MSG_BODY = 4,     /* either way: a chunk of a request or response body */
	AJ_MSG_RESPONSE = 5, /* broker -> agent: status and headers */
	AJ_MSG_WINDOW = 6,   /* agent -> broker: 4-byte LE credit for response bytes */
	AJ_MSG_CANCEL = 7,   /* agent -> broker: abandon a request */
	AJ_MSG_ERROR = 8,    /* broker -> agent: a request failed (id N) or the channel (id 0) */
	AJ_MSG_CONNECT = 9,  /* agent -> broker, id 0, empty, one fd (SCM_RIGHTS): a new channel */
	AJ_MSG_LISTEN = 10,  /* init -> broker, id 0, empty, one fd: the listener of
			      * AJ_BROKER_SOCKET_PATH; only the inherited channel's first frame */
	AJ_MSG__MAX = AJ_MSG_LISTEN,
};

/* Where a process of the jail that did not inherit the socket of
 * $AGENTJAIL_FD (its parent closed it) reaches the broker: a listening
 * AF_UNIX SOCK_SEQPACKET socket in the jail's private /run; each
 * connection is a channel of its own, as after CONNECT.  The path is also
 * in $AGENTJAIL_SOCKET. */
#define AJ_BROKER_SOCKET_PATH "/run/agentjail/broker.sock"
#define AJ_BROKER_SOCKET_ENV "AGENTJAIL_SOCKET"

/* Header flags. */
#define AJ_FLAG_END 0x0001 /* BODY: the last chunk; REQUEST: no body follows */

struct aj_frame {
	uint8_t version; /* AJ_PROTO_VERSION */
	uint8_t type;    /* enum aj_msg_type */
	uint16_t flags;  /* AJ_FLAG_* allowed for the type, else 0 */
	uint32_t id;     /* request id (>= 1); 0 for HELLO, WELCOME and channel errors */
	uint32_t length; /* payload bytes that follow */
	/* 4 reserved bytes, zero on the wire */
};

/* Stable error codes carried by ERROR frames ("code"). */
#define AJ_ERR_DENIED "denied"                 /* the policy refused it (with "rule") */
#define AJ_ERR_BAD_REQUEST "bad_request"       /* malformed frame, JSON or URL */
#define AJ_ERR_UPSTREAM "upstream_error"       /* DNS, connect, TLS, HTTP failure */
#define AJ_ERR_TIMEOUT "timeout"               /* a time limit was reached */
#define AJ_ERR_TOO_LARGE "too_large"           /* a size limit was reached */
#define AJ_ERR_RATE_LIMITED "rate_limited"     /* concurrency or rate limit */
#define AJ_ERR_UNAVAILABLE "broker_unavailable" /* (client side) no broker answers */

/*
 * Encode HDR into OUT (AJ_PROTO_HEADER_SIZE bytes).
 */
void aj_proto_encode_header(const struct aj_frame *hdr, uint8_t out[AJ_PROTO_HEADER_SIZE]);

/*
 * Decode one received message of LEN bytes.  Checks, before anything is
 * used: the size (header present, LENGTH == LEN - 16, LENGTH <=
 * AJ_PROTO_MAX_PAYLOAD), the version, a known type, zero reserved bytes,
 * flags allowed for the type, the id rule (0 exactly for HELLO, WELCOME and
 * channel errors), and fixed payload sizes (WINDOW: 4, CANCEL: 0).  On
 * success fills *OUT and *PAYLOAD (pointing into BUF) and returns 0; else
 * -EBADMSG with a reason in ERR.
 */
int aj_proto_decode(const uint8_t *buf, size_t len, struct aj_frame *out, const uint8_t **payload,
		    char *err, size_t errlen);

/* The name of a message type ("REQUEST"), or NULL. */
const char *aj_proto_type_name(unsigned type);

#ifdef __cplusplus
}
#endif

#endif /* AGENTJAIL_PROTOCOL_H */
