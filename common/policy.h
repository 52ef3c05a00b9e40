/*
 * The broker's fetch policy: URL patterns from the profile and the pure
 * decision "may this method fetch this normalised URL".  No allocation, no
 * global state; patterns go through the same normaliser as URLs (url.h).
 */
#ifndef AJ_POLICY_H
#define AJ_POLICY_H

#include <stddef.h>

#include "url.h"

enum {
	AJ_METHOD_GET = 1,
	AJ_METHOD_HEAD = 2,
	AJ_METHOD_POST = 4,
	AJ_METHOD_PUT = 8,
	AJ_METHOD_PATCH = 16,
	AJ_METHOD_DELETE = 32,
	AJ_METHOD_OPTIONS = 64
};

#define AJ_METHOD_ALL 127u

struct aj_fetch_rule {
	int allow;             /* 1 allow, 0 deny */
	unsigned methods;      /* AJ_METHOD_* bits; "*" means all of them */
	char scheme[6];        /* "http" or "https" */
	char host[256];        /* exact name/IP (normalised as in aj_url), or "*.suffix"
				  (any name strictly below suffix, never suffix itself,
				  never IPs) */
	unsigned port;         /* explicit or scheme default */
	char path[AJ_URL_MAX]; /* glob over the normalised path: '*' within one segment,
				  '**' across segments (incl. empty); other chars literal;
				  a trailing slash-star-star also matches the bare
				  prefix dir */
	char origin[512];      /* "file:line" of the rule, for audit and errors */
};

/* Parse "GET,HEAD" (comma list, case-sensitive uppercase, no spaces, no
 * duplicates) or "*" into *OUT.  Returns 0 or -EINVAL. */
int aj_policy_parse_methods(const char *s, unsigned *out, char *err, size_t errlen);

/* Parse a URL pattern "scheme://host[:port]/path-glob" (host possibly
 * "*.suffix", path e.g. "/docs/" followed by "**") into RULE's scheme, host,
 * port and path (other fields untouched).  The non-glob parts go through
 * aj_url's rules; dot segments, queries, fragments, userinfo and "***" are
 * refused.  Returns 0 or -EINVAL. */
int aj_policy_parse_pattern(const char *pattern, struct aj_fetch_rule *rule, char *err,
			    size_t errlen);

/* Decide: deny rules win over allow rules; no match means denied.  Returns
 * 1 (allowed) or 0 (denied); *DECIDED is the index of the deciding rule (the
 * first matching deny, else the first matching allow), or (size_t)-1 when no
 * rule matched. */
int aj_policy_decide(const struct aj_fetch_rule *rules, size_t n, unsigned method_bit,
		     const struct aj_url *url, size_t *decided);

/* The AJ_METHOD_* bit of METHOD ("GET"), or 0. */
unsigned aj_policy_method_bit(const char *method);

#endif /* AJ_POLICY_H */
