/*
 * What a request's head means, for the proxy's request reader
 * (proxy-request.c) alone: the fields framing and addressing depend on,
 * the target's form, the origin it names, and whether the Host field names
 * the same one.  Pure functions over what http-parser tokenised; each
 * returns AJ_PROXY_REQUEST_OK or the refusal, with a message in ERR.
 * Nothing but proxy-request.c includes this header.
 */
#ifndef AJ_PROXY_HEAD_H
#define AJ_PROXY_HEAD_H

#include "proxy-request.h"

/* The origin a connection is bound to; none on the proxy port. */
struct aj_proxy_binding {
	bool bound;
	char scheme[6]; /* "http" or "https" */
	struct aj_proxy_authority origin;
};

/* The fields framing and addressing depend on, each found once. */
struct aj_proxy_head_fields {
	const struct aj_proxy_field *host, *length, *coding, *upgrade;
	bool expect_continue;
};

/* Find them in FIELDS[0..N) into *OUT and check what a field alone can
 * tell (two Hosts, Content-Lengths or Transfer-Encodings, both framings,
 * a coding other than "chunked", an Expect other than 100-continue).  A
 * value may be NULL: http-parser stopped before it, and it is not
 * checked. */
enum aj_proxy_request_error aj_proxy_head_check_fields(const struct aj_proxy_field *fields,
						       size_t n, struct aj_proxy_head_fields *out,
						       char *err, size_t errlen);

/* H's framing (chunked, content_length, expect_continue, upgrade) from F,
 * H->version and LENGTH (the Content-Length as http-parser read it); a
 * TUNNEL's head (CONNECT, Upgrade) carries no body. */
enum aj_proxy_request_error aj_proxy_head_read_framing(struct aj_proxy_head *h,
						       const struct aj_proxy_head_fields *f,
						       bool tunnel, uint64_t length, char *err,
						       size_t errlen);

/* H's form, authority and URL from the request target TARGET[0..LEN)
 * (authority-form when CONNECT) on a connection bound as B, then the Host
 * field HOST (NULL: none) checked against them. */
enum aj_proxy_request_error aj_proxy_head_read_target(struct aj_proxy_head *h,
						      const struct aj_proxy_binding *b,
						      bool connect, const char *target, size_t len,
						      const struct aj_proxy_field *host, char *err,
						      size_t errlen);

#endif /* AJ_PROXY_HEAD_H */
