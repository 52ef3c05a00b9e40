/*
 * The proxy's reading of a client's HTTP/1.1 requests: what an unmodified
 * tool (curl, pip, git, npm) sends to the proxy port, inside an intercepted
 * TLS tunnel, or on a captured port-80 connection.  Pure and incremental:
 * the caller hands over the bytes it read, in any pieces, and gets back one
 * event at a time (a head, body bytes, the end of a request), so that the
 * requests of one connection are cut exactly where the client cut them.
 *
 * Every byte comes from the agent.  A request that two HTTP readers could
 * frame or address differently (the broker here, a server upstream) is
 * refused with an error of its own; aj_proxy_request_error_status() names
 * the status that answers it.  No I/O, no global state.
 */
#ifndef AJ_PROXY_REQUEST_H
#define AJ_PROXY_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "url.h"

/* The bounds on what a client may send before its body (RFC 9112 3, 5).
 * The request line, CRLF included; longer is refused with 414. */
#define AJ_PROXY_REQUEST_LINE_MAX 8192
/* The field lines after the request line, the empty line included, and
 * again the trailer section of a chunked body; larger is refused with 431. */
#define AJ_PROXY_REQUEST_FIELDS_MAX 16384
/* Fields in a head or in a trailer section; more is refused with 431. */
#define AJ_PROXY_REQUEST_FIELD_COUNT_MAX 100
/* A chunk-size line with its extensions, or one trailer line, CRLF
 * included. */
#define AJ_PROXY_REQUEST_CHUNK_LINE_MAX 4096

enum aj_proxy_request_event {
	AJ_PROXY_REQUEST_MORE,   /* the input is all read: call again with more */
	AJ_PROXY_REQUEST_HEAD,   /* a request's head (aj_proxy_request_head()); its body
				    and its END follow */
	AJ_PROXY_REQUEST_TUNNEL, /* the head of a CONNECT or of a request that asks for an
				    Upgrade: what follows it is not HTTP, and is not read */
	AJ_PROXY_REQUEST_BODY,   /* body bytes, decoded from chunks, in step->body */
	AJ_PROXY_REQUEST_END,    /* the request ended: step->used ends exactly there */
	AJ_PROXY_REQUEST_DONE,   /* the connection holds no further request (after a
				    tunnel's head, or after the END of a request that
				    was not keep-alive); nothing is read */
	AJ_PROXY_REQUEST_ERROR,  /* aj_proxy_request_error(); nothing more is read */
};

/* Why a request was refused.  Each has its own status and name. */
enum aj_proxy_request_error {
	AJ_PROXY_REQUEST_OK,
	AJ_PROXY_REQUEST_E_SYNTAX,            /* no well-formed request line or framing */
	AJ_PROXY_REQUEST_E_METHOD,            /* a method http-parser does not know */
	AJ_PROXY_REQUEST_E_VERSION,           /* not HTTP/1.0 or HTTP/1.1 */
	AJ_PROXY_REQUEST_E_TARGET,            /* a target that is not a URL or authority the
						 normaliser accepts, or not of a form allowed
						 on this connection */
	AJ_PROXY_REQUEST_E_LINE_TOO_LONG,     /* AJ_PROXY_REQUEST_LINE_MAX */
	AJ_PROXY_REQUEST_E_FIELDS_TOO_LARGE,  /* AJ_PROXY_REQUEST_FIELDS_MAX, _FIELD_COUNT_MAX */
	AJ_PROXY_REQUEST_E_BARE_LF,           /* a line ending in LF without CR */
	AJ_PROXY_REQUEST_E_OBS_FOLD,          /* a field line starting with SP or HT */
	AJ_PROXY_REQUEST_E_CONTROL,           /* NUL, a CR not before LF, another control
						 character but HT, in a line of the head or of
						 the chunked framing */
	AJ_PROXY_REQUEST_E_FIELD,             /* a field line without a token and a colon */
	AJ_PROXY_REQUEST_E_LENGTH,            /* a Content-Length that is not a number */
	AJ_PROXY_REQUEST_E_LENGTH_TWICE,      /* two Content-Length fields, even equal */
	AJ_PROXY_REQUEST_E_LENGTH_AND_CODING, /* Content-Length with Transfer-Encoding */
	AJ_PROXY_REQUEST_E_CODING,            /* a Transfer-Encoding other than one
						 "chunked", or any in HTTP/1.0 */
	AJ_PROXY_REQUEST_E_CHUNK,             /* a malformed chunk-size line or chunk end */
	AJ_PROXY_REQUEST_E_HOST_MISSING,      /* HTTP/1.1 origin-form without Host */
	AJ_PROXY_REQUEST_E_HOST_TWICE,        /* more than one Host field */
	AJ_PROXY_REQUEST_E_HOST_INVALID,      /* a Host the URL normaliser refuses */
	AJ_PROXY_REQUEST_E_HOST_MISMATCH,     /* a Host that is not the target's authority */
	AJ_PROXY_REQUEST_E_MISDIRECTED,       /* on a connection bound to one origin, a
						 request for another */
	AJ_PROXY_REQUEST_E_TUNNEL_BODY,       /* a CONNECT or Upgrade request with a body */
	AJ_PROXY_REQUEST_E_EXPECT,            /* an Expect other than 100-continue */
};

/* A host as the URL normaliser spells it (common/url.h), and a port. */
struct aj_proxy_authority {
	char host[256];
	int kind; /* AJ_HOST_NAME, AJ_HOST_IPV4, AJ_HOST_IPV6 */
	unsigned port;
};

enum aj_proxy_target {
	AJ_PROXY_TARGET_ORIGIN,    /* "GET /path": the connection's origin */
	AJ_PROXY_TARGET_ABSOLUTE,  /* "GET http://host/path" */
	AJ_PROXY_TARGET_AUTHORITY, /* "CONNECT host:port" */
};

/* One field, as sent, hop-by-hop fields included (aj_field_is_hop_by_hop()
 * tells them).  Not NUL-terminated; the value without surrounding blanks. */
struct aj_proxy_field {
	const char *name;
	size_t name_len;
	const char *value;
	size_t value_len;
};

struct aj_proxy_head {
	const char *method; /* http-parser's spelling: "GET", "CONNECT"... */
	unsigned version;   /* 10 or 11 */
	enum aj_proxy_target form;
	/* The request's origin: the CONNECT target, the absolute URL's, or the
	 * connection's; a Host field named the same one. */
	struct aj_proxy_authority authority;
	struct aj_url url;       /* normalised; origin and absolute forms only */
	bool keep_alive;         /* another request may follow this one */
	bool expect_continue;    /* "Expect: 100-continue" in HTTP/1.1 */
	bool chunked;            /* the body comes in chunks */
	uint64_t content_length; /* the body's length unless chunked (0: none) */
	const char *upgrade;     /* the Upgrade field's value, NULL if none */
	size_t upgrade_len;
	const struct aj_proxy_field *fields;
	size_t n_fields;
};

/* What one call read. */
struct aj_proxy_request_step {
	size_t used;      /* bytes of the input taken; the rest is the next call's */
	const char *body; /* AJ_PROXY_REQUEST_BODY: inside the input */
	size_t body_len;
};

struct aj_proxy_request;

/* A reader for one connection.  SCHEME ("http", "https") and ORIGIN NULL:
 * the proxy port, where requests carry absolute URLs or are CONNECTs.
 * Otherwise a connection bound to that origin (a TLS tunnel after CONNECT,
 * a captured port-80 connection to a name): requests name it in
 * origin-form (or absolute-form), never another.  Returns 0, -EINVAL for
 * a scheme that is not http or https, or -ENOMEM. */
int aj_proxy_request_new(const char *scheme, const struct aj_proxy_authority *origin,
			 struct aj_proxy_request **out);
void aj_proxy_request_free(struct aj_proxy_request *p);

/* Read from IN[0..LEN) up to the next event and say how far in STEP.  Call
 * again with the input after step->used (possibly none) until it returns
 * MORE, DONE or ERROR: an event can be due without another byte (the END
 * of a request without a body). */
enum aj_proxy_request_event aj_proxy_request_read(struct aj_proxy_request *p, const char *in,
						  size_t len, struct aj_proxy_request_step *step);

/* The head of the current request, from its HEAD or TUNNEL event until
 * the call after its END (the next head overwrites it). */
const struct aj_proxy_head *aj_proxy_request_head(const struct aj_proxy_request *p);

/* Why reading stopped with ERROR, and a one-line message (*MESSAGE, may
 * be NULL) that quotes no byte of the request unescaped. */
enum aj_proxy_request_error aj_proxy_request_error(const struct aj_proxy_request *p,
						   const char **message);

/* The HTTP status that answers E, and a stable name for it
 * ("bare_lf"), for the response's error header and the audit. */
int aj_proxy_request_error_status(enum aj_proxy_request_error e);
const char *aj_proxy_request_error_name(enum aj_proxy_request_error e);

/* Between requests, or after the last one: a connection closed now cuts
 * no request short. */
bool aj_proxy_request_is_idle(const struct aj_proxy_request *p);

#endif /* AJ_PROXY_REQUEST_H */
