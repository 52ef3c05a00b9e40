/*
 * The protocol codec's internal half: what the broker and the client library
 * share beyond the public <agentjail/protocol.h>.  Building frames, the JSON
 * metadata (jansson types) and the REQUEST parser live here, so the public
 * headers carry no third-party type and libagentjail exports nothing an
 * embedder would need jansson, or our parser's structs, to call.
 */
#ifndef AJ_PROTO_H
#define AJ_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include <agentjail/protocol.h>

/*
 * Build a frame: header + payload into BUF (capacity CAP); returns the frame
 * size or -EMSGSIZE (LEN over AJ_PROTO_MAX_PAYLOAD, or the frame does not
 * fit in CAP; BUF is then untouched).  TYPE, FLAGS and ID are not checked
 * here: the receiver's aj_proto_decode() does that.
 */
int aj_proto_frame(uint8_t type, uint16_t flags, uint32_t id, const void *payload, size_t len,
		   uint8_t *buf, size_t cap);

struct json_t;

/*
 * Serialize OBJ compactly and frame it (TYPE, ID, no flags).  Returns the
 * frame size, -EMSGSIZE (the JSON is over AJ_PROTO_MAX_JSON or the frame
 * does not fit in CAP), -EINVAL (OBJ is not an object) or -ENOMEM.  BUF is
 * written only on success.
 */
int aj_proto_frame_json(uint8_t type, uint32_t id, const struct json_t *obj, uint8_t *buf,
			size_t cap);

/*
 * Parse a metadata payload into a JSON object (a new reference), enforcing
 * AJ_PROTO_MAX_JSON, UTF-8, no duplicate keys and "one object, nothing after
 * it".  Returns 0 or -EBADMSG with ERR; *OUT is written only on success.
 */
int aj_proto_parse_json(const uint8_t *payload, size_t len, struct json_t **out, char *err,
			size_t errlen);

/*
 * A parsed REQUEST payload:
 *   {"method":"GET","url":"https://...","headers":[["Accept","text/html"],...],
 *    "deliver":"stream"}
 * ("headers" and "deliver" ("stream", "memfd" or "pipe") optional).  Unknown
 * members, wrong types, a method that is not 1-15 uppercase letters, a URL
 * that is empty, longer than AJ_PROTO_MAX_URL or holds a control character,
 * space or non-ASCII byte, more than AJ_PROTO_MAX_HEADERS headers, a header
 * name that is not an RFC 9110 token (1-AJ_PROTO_MAX_HEADER_NAME chars), a
 * header value longer than AJ_PROTO_MAX_HEADER_VALUE bytes or holding CR, LF
 * or NUL (or any control char but tab), a payload over AJ_PROTO_MAX_JSON,
 * invalid UTF-8 or JSON that is not one object: all -EBADMSG with ERR saying
 * which.  -ENOMEM when out of memory.
 */
struct aj_proto_request {
	char method[16];
	char *url;           /* owned */
	char *(*headers)[2]; /* owned array of {name, value} */
	size_t n_headers;
	int deliver_memfd; /* "deliver":"memfd": the body as a sealed memfd */
	int deliver_pipe;  /* "deliver":"pipe": the body through a pipe */
	int no_redirects;  /* "redirects":"none": a 3xx is the answer (the proxy's clients
			      follow redirects themselves) */
};

/* WINDOW's payload: the credit, 4 bytes little-endian.  The client and the
 * proxy write it, the broker reads it. */
#define AJ_PROTO_WINDOW_SIZE 4
void aj_proto_window_encode(uint32_t credit, uint8_t out[AJ_PROTO_WINDOW_SIZE]);
uint32_t aj_proto_window_decode(const uint8_t in[AJ_PROTO_WINDOW_SIZE]);

/* Parse PAYLOAD into *OUT (written only on success; release it with
 * aj_proto_request_clear()).  Returns 0, -EBADMSG with ERR, or -ENOMEM. */
int aj_proto_parse_request(const uint8_t *payload, size_t len, struct aj_proto_request *out,
			   char *err, size_t errlen);

/* Free what R owns and zero it; safe on a zeroed struct. */
void aj_proto_request_clear(struct aj_proto_request *r);

#endif /* AJ_PROTO_H */
