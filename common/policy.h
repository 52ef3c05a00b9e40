/*
 * The broker's fetch policy: URL patterns from the profile and the pure
 * decision "may this method fetch this normalised URL".  No allocation, no
 * global state; patterns go through the same normaliser as URLs (url.h).
 */
#ifndef AJ_POLICY_H
#define AJ_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

/* Limits a profile sets for all fetches (`fetch limit KEY VALUE...`) or
 * for the requests one rule decides (`fetch allow ... KEY VALUE`). */
enum aj_limit_kind {
	AJ_LIMIT_MAX_BODY,    /* "max-body SIZE": request body bytes */
	AJ_LIMIT_RESPONSE,    /* "response SIZE": response body bytes */
	AJ_LIMIT_TIMEOUT,     /* "timeout DURATION": whole request, in ms */
	AJ_LIMIT_CONCURRENCY, /* "concurrency N": requests in flight */
	AJ_LIMIT_RATE,        /* "rate N/min": requests started per minute */
	AJ_LIMIT_REDIRECTS,   /* "redirects N": hops followed */
	AJ_LIMIT__COUNT
};

struct aj_fetch_limits {
	uint64_t value[AJ_LIMIT__COUNT];
	unsigned set; /* bit (1 << kind) for each value given */
};

/* Rule options without a value. */
#define AJ_RULE_CREDENTIALS 1u     /* "credentials": Cookie and Authorization pass */
#define AJ_RULE_SENSITIVE_QUERY 2u /* "sensitive-query": the query is never logged */
/* "pass-header NAME": the override header NAME (aj_policy_override_headers,
 * entry I) goes upstream. */
#define AJ_RULE_PASS(i) (1u << (8 + (i)))
#define AJ_RULE_PASS_ALL (((1u << AJ_POLICY_N_OVERRIDE_HEADERS) - 1) << 8)
/* Every option bit a rule may carry. */
#define AJ_RULE_ALL (AJ_RULE_CREDENTIALS | AJ_RULE_SENSITIVE_QUERY | AJ_RULE_PASS_ALL)

/* Headers with which a client can make a server read another request than
 * the one the rules decided: another method (X-HTTP-Method-Override...),
 * another host or prefix (X-Forwarded-Host, Forwarded...), another path
 * (X-Original-URL...).  The broker drops them unless every allow rule
 * matching the hop says `pass-header NAME`. */
#define AJ_POLICY_N_OVERRIDE_HEADERS 11
extern const char *const aj_policy_override_headers[AJ_POLICY_N_OVERRIDE_HEADERS];

/* The index of NAME (case-insensitive) in aj_policy_override_headers, or -1. */
int aj_policy_override_header(const char *name);

/* Bytes of an `inject` source ("file:/home/me/.config/anthropic/key") and of
 * the secret it names (the supervisor refuses a larger one). */
#define AJ_POLICY_MAX_SOURCE 1024
#define AJ_POLICY_MAX_SECRET 8192
/* Headers injected into one request, at most. */
#define AJ_POLICY_MAX_INJECT 8

struct aj_fetch_rule {
	int allow;                     /* 1 allow, 0 deny */
	unsigned methods;              /* AJ_METHOD_* bits; "*" means all of them */
	char scheme[6];                /* "http" or "https" */
	char host[256];                /* exact name/IP (normalised as in aj_url), or "*.suffix"
					  (any name strictly below suffix, never suffix itself,
					  never IPs) */
	unsigned port;                 /* explicit or scheme default */
	char path[AJ_URL_MAX];         /* glob over the normalised path: '*' within one segment,
					  '**' across segments (incl. empty); other chars literal;
					  a trailing slash-star-star also matches the bare
					  prefix dir */
	char query[256];               /* "query PATTERN": "" any, "none", or a glob over the query
					  ('*' within one parameter, '**' across '&') */
	struct aj_fetch_limits limits; /* this rule's own, over the profile's */
	unsigned options;              /* AJ_RULE_* */
	char inject_name[64];          /* "inject NAME SOURCE": the header the broker sets from
					  a secret, or "" */
	char inject_source[AJ_POLICY_MAX_SOURCE]; /* "file:PATH" or "env:NAME": where the
						     supervisor reads the secret (never
						     the secret itself), or "" */
	char origin[512];              /* "file:line" of the rule, for audit and errors */
};

/* Bounds of one policy, checked by the profile parser and again by the
 * broker when the policy is handed over (common/handover.h). */
#define AJ_POLICY_MAX_RULES 256     /* fetch rules */
#define AJ_POLICY_MAX_ADDRESSES 256 /* `fetch address allow` ranges */
#define AJ_POLICY_MAX_CA (1u << 20) /* bytes of a `fetch ca` file */
#define AJ_POLICY_MAX_PATH 4096     /* bytes of the profile's path */

struct aj_cidr;
struct aj_tunnel_rule;

/* The fetch policy: everything the broker decides with.  Built by the
 * profile parser (supervisor/profile.c) as part of struct aj_profile and
 * handed to the broker whole (common/handover.h).  Owns its arrays and
 * strings. */
struct aj_policy {
	char *path;                  /* the top profile file, named in "default deny" */
	struct aj_fetch_rule *rules; /* `fetch allow|deny ...`, sorted */
	size_t n_rules;
	struct aj_fetch_limits limits; /* `fetch limit ...`, every value set (defaults) */
	struct aj_cidr *addresses;     /* `fetch address allow ...`, sorted */
	size_t n_addresses;
	char *ca_file; /* `fetch ca FILE`: absolute path, or NULL */
	char *ca_pem;  /* its text, read when the profile was loaded, or NULL */
	/* The values of the rules' `inject` sources, one per rule (NULL where
	 * a rule injects nothing), or NULL: never in a profile, only in what
	 * the supervisor hands over at run time (supervisor/secrets.c) and
	 * the broker decodes. */
	char **secrets;
	struct aj_tunnel_rule *tunnels; /* `tunnel allow|deny ...`, sorted (common/tunnel.h) */
	size_t n_tunnels;
};

/* Free what P owns and zero it; safe on a zeroed struct. */
void aj_policy_clear(struct aj_policy *p);

/* The name of a limit ("max-body"), or NULL. */
const char *aj_policy_limit_name(enum aj_limit_kind kind);

/* Is VALUE one a limit of KIND may have (within its maximum, above zero
 * but for redirects)? */
bool aj_policy_limit_is_valid(enum aj_limit_kind kind, uint64_t value);

/* Parse one limit: KEY ("timeout") and VALUE ("30s") into LIMITS.  Sizes take
 * K/M/G suffixes, durations ms/s/m (a bare number is seconds), rates "N/min"
 * or "N/s".  A key given twice, an unknown key, zero where zero makes no
 * sense: -EINVAL with ERR. */
int aj_policy_parse_limit(const char *key, const char *value, struct aj_fetch_limits *limits,
			  char *err, size_t errlen);

/* The canonical text of one limit value: "1048576", "30000ms", "600/min". */
void aj_policy_format_limit(enum aj_limit_kind kind, uint64_t value, char *out, size_t len);

/* Parse a rule: "allow|deny METHODS URL-PATTERN [OPTION...]" where an option
 * is a limit ("max-body 64K"), a flag ("credentials", "sensitive-query";
 * allow rules only) or "inject NAME file:PATH|env:VAR" (allow rules; PATH
 * as written: the profile parser makes it absolute).  LINE is modified (split into tokens).  ORIGIN is not
 * touched.  Returns 0 or -EINVAL with ERR. */
int aj_policy_parse_rule(char *line, struct aj_fetch_rule *rule, char *err, size_t errlen);

/* The canonical text of a rule, as aj_policy_parse_rule() reads it back:
 * "allow GET,HEAD https://host[:port]/path max-body 65536 credentials". */
void aj_policy_rule_text(const struct aj_fetch_rule *rule, char *out, size_t len);

/* The limit that applies to a request whose own limits are OWN (NULL:
 * none): OWN's value, else GLOBAL's, else the default. */
uint64_t aj_policy_limit(const struct aj_fetch_limits *own, const struct aj_fetch_limits *global,
			 enum aj_limit_kind kind);

/* What applies to a request the policy allowed: the limits and options of
 * every allow rule that matches it, merged so that no rule's restriction
 * is lost whatever the rules' order: the smallest of each limit,
 * `sensitive-query` if any rule says it, `credentials` only if all do. */
void aj_policy_effective(const struct aj_fetch_rule *rules, size_t n, unsigned method_bit,
			 const struct aj_url *url, struct aj_fetch_limits *limits,
			 unsigned *options);

/* Merge MORE into ACC the same way (a redirect hop's rules into the
 * request's). */
void aj_policy_tighten(struct aj_fetch_limits *acc, unsigned *acc_options,
		       const struct aj_fetch_limits *more, unsigned more_options);

/* Fill what GLOBAL does not set with the defaults: max-body 1M, response
 * 64M, timeout 30s, concurrency 64, rate 6000/min, redirects 5. */
void aj_policy_limit_defaults(struct aj_fetch_limits *global);

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

/* What the policy P says of one hop of a request: its first, or a
 * redirect's. */
struct aj_policy_decision {
	bool allowed;
	size_t slot;                      /* index of the deciding rule, or (size_t)-1 */
	const struct aj_fetch_rule *rule; /* the deciding rule, or NULL (default deny) */
	char rule_text[600];              /* its "file:line", or the default-deny text */
	char ambiguous[1200];             /* why the query cannot be decided, or "" (then
					     ALLOWED is false and the request is refused as
					     malformed) */
	struct aj_fetch_limits limits;    /* every matching allow rule's, merged */
	unsigned options;
	/* The matching allow rules that `inject`, by index, one per header
	 * name (which rule decides does not matter: every one that matches
	 * sets its header; two that would set one header from different
	 * sources make the request AMBIGUOUS). */
	size_t inject[AJ_POLICY_MAX_INJECT];
	size_t n_inject;
};

/* The one decision function of the broker, for first hops and redirects:
 * aj_policy_decide() with the deciding rule named for the agent and the
 * audit, and aj_policy_effective() of the allowed.  A query that repeats
 * a parameter some matching rule's query pattern names, with different
 * values, cannot be decided (servers keep the first, the last, or all):
 * AMBIGUOUS says so; so does a request two rules would inject one header
 * into from different sources, or more than AJ_POLICY_MAX_INJECT headers. */
void aj_policy_judge(const struct aj_policy *p, unsigned method_bit, const struct aj_url *url,
		     struct aj_policy_decision *out);

/* Does the rule host PAT (exact, or "*.suffix": a name strictly below
 * suffix) cover HOST, normalised, of KIND (AJ_HOST_*)? */
bool aj_policy_is_host_match(const char *pat, const char *host, int kind);

/* Is NAME a header an `inject` may set (a token, and none the broker
 * sets or drops itself: Host, Content-Length, hop-by-hop...)?  WHY says
 * why not. */
bool aj_policy_inject_name_ok(const char *name, char *why, size_t len);

/* Is VALUE (LEN bytes) a secret an `inject` may carry: 1 to
 * AJ_POLICY_MAX_SECRET bytes of visible ASCII, space and tab, not
 * beginning or ending with white space?  WHY says why not, never quoting
 * the value. */
bool aj_policy_secret_ok(const char *value, size_t len, char *why, size_t whylen);

/* The secret of P's rule at SLOT for its `inject`, or NULL. */
const char *aj_policy_secret(const struct aj_policy *p, size_t slot);

/* Could any request to the DNS name NAME (normalised) be allowed: does an
 * allow rule name that host, whatever its scheme, port, path or method,
 * or a tunnel allow rule with port 443?  (The DNS stub answers the names
 * for which this is false NXDOMAIN.) */
bool aj_policy_names_host(const struct aj_policy *p, const char *name);

/* The AJ_METHOD_* bit of METHOD ("GET"), or 0. */
unsigned aj_policy_method_bit(const char *method);

#endif /* AJ_POLICY_H */
