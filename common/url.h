/*
 * The one URL normaliser of agentjail.  The broker matches the profile's
 * rules against the normalised form and fetches exactly that form, so the
 * matcher and the fetcher can never disagree about what a URL means.
 * Pure functions: no allocation, no global state.
 */
#ifndef AJ_URL_H
#define AJ_URL_H

#include <stddef.h>

/* Longest URL accepted, including its terminating NUL. */
#define AJ_URL_MAX 8192

enum { AJ_HOST_NAME = 1, AJ_HOST_IPV4 = 2, AJ_HOST_IPV6 = 3 };

struct aj_url {
	char scheme[6];              /* "http" or "https" */
	char host[256];              /* lower-case DNS name without trailing dot, or an IP
					literal: IPv4 canonical dotted quad, IPv6 canonical
					RFC 5952 form without brackets */
	int host_kind;               /* AJ_HOST_NAME, AJ_HOST_IPV4, AJ_HOST_IPV6 */
	unsigned port;               /* explicit or the scheme's default (80/443) */
	char path[AJ_URL_MAX];       /* normalised, starts with '/' */
	char query[AJ_URL_MAX];      /* after '?', normalised (aj_url_normalise_query), "" if
					none */
	int has_query;               /* 1 if the URL had a '?', even an empty query */
	char normalised[AJ_URL_MAX]; /* scheme://host[:port if not default]path[?query];
					IPv6 hosts in brackets here */
};

/* Parse and normalise IN into OUT (written only on success).  Returns 0, or
 * -EINVAL with a message in ERR for every URL that is malformed or that
 * could mean different things to different parsers (userinfo, non-http(s)
 * schemes, non-canonical IP literals, encoded slashes or dot segments...). */
int aj_url_normalise(const char *in, struct aj_url *out, char *err, size_t errlen);

/* Building blocks shared with the policy pattern parser (common/policy.c),
 * so that patterns and URLs go through the same code. */

/* Parse the authority S[0..LEN) ("host", "host:port", "[v6]:port"; no
 * userinfo) into HOST (256 bytes), *KIND and *PORT (DEFAULT_PORT when
 * absent).  Returns 0 or -EINVAL. */
int aj_url_parse_authority(const char *s, size_t len, unsigned default_port, char *host, int *kind,
			   unsigned *port, char *err, size_t errlen);

/* In a pattern, '*' is a glob character and every dot segment is refused. */
#define AJ_URL_PATH_PATTERN 1u

/* Normalise the path S[0..LEN) (empty or starting with '/') into OUT of
 * OUTLEN bytes.  Returns 0 or -EINVAL. */
int aj_url_normalise_path(const char *s, size_t len, unsigned flags, char *out, size_t outlen,
			  char *err, size_t errlen);

/* Normalise the query S[0..LEN) (what follows '?') into OUT of OUTLEN
 * bytes, as servers read it: percent-encoded unreserved characters are
 * decoded ("%61ction" is "action"), every other encoding is spelled with
 * upper-case hex; a malformed encoding, or an encoded '=' or '&' in a
 * parameter's name (read as a separator by some servers and not by
 * others), is refused.  Also used for a rule's query pattern, so that both
 * sides are compared in one spelling.  Returns 0 or -EINVAL with ERR. */
int aj_url_normalise_query(const char *s, size_t len, char *out, size_t outlen, char *err,
			   size_t errlen);

/* 80 for "http", 443 for "https", 0 for anything else.  S[0..LEN) is
 * compared case-insensitively; the lower-case name goes to SCHEME (6 bytes)
 * when it is known. */
/* Only printable ASCII without spaces in S (LEN bytes): what a URL or a URL
 * pattern may hold.  WHAT names it in the message.  Returns 0 or -EINVAL. */
int aj_url_check_bytes(const char *s, size_t len, const char *what, char *err, size_t errlen);

unsigned aj_url_scheme_port(const char *s, size_t len, char *scheme);

#endif /* AJ_URL_H */
