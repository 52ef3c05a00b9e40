/*
 * The fetch policy (see policy.h): parsing of method lists and URL patterns,
 * and the deny-over-allow, default-deny decision over normalised URLs.
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "field.h"
#include "lexer.h"
#include "log.h"
#include "util.h"
#include "policy.h"
#include "tunnel.h"

static const struct {
	const char *name;
	unsigned bit;
} methods[] = {
	{"GET", AJ_METHOD_GET},         {"HEAD", AJ_METHOD_HEAD},   {"POST", AJ_METHOD_POST},
	{"PUT", AJ_METHOD_PUT},         {"PATCH", AJ_METHOD_PATCH}, {"DELETE", AJ_METHOD_DELETE},
	{"OPTIONS", AJ_METHOD_OPTIONS},
};

static unsigned
method_bit_n(const char *s, size_t len)
{
	for (size_t i = 0; i < AJ_ARRAY_SIZE(methods); i++)
		if (strlen(methods[i].name) == len && memcmp(methods[i].name, s, len) == 0)
			return methods[i].bit;
	return 0;
}

unsigned
aj_policy_method_bit(const char *method)
{
	return method_bit_n(method, strlen(method));
}

int
aj_policy_parse_methods(const char *s, unsigned *out, char *err, size_t errlen)
{
	unsigned bits = 0;
	char esc[64 * 4 + 8], cut[65];

	if (strcmp(s, "*") == 0) {
		*out = AJ_METHOD_ALL;
		return 0;
	}
	for (;;) {
		size_t len = strcspn(s, ",");
		unsigned bit = method_bit_n(s, len);

		if (len == 0)
			return aj_err(err, errlen, -EINVAL, "empty method in method list");
		if (bit == 0) {
			size_t n = len < 64 ? len : 64;

			memcpy(cut, s, n);
			cut[n] = '\0';
			aj_log_escape(cut, esc, sizeof(esc));
			return aj_err(err, errlen, -EINVAL,
				      "unknown method '%s' (GET, HEAD, POST, PUT, PATCH, DELETE, "
				      "OPTIONS or *)",
				      esc);
		}
		if (bits & bit)
			return aj_err(err, errlen, -EINVAL, "duplicate method in method list");
		bits |= bit;
		if (s[len] == '\0')
			break;
		s += len + 1;
	}
	*out = bits;
	return 0;
}

int
aj_policy_parse_pattern(const char *pattern, struct aj_fetch_rule *rule, char *err, size_t errlen)
{
	char host[256], path[AJ_URL_MAX], scheme[6];
	const char *colon, *auth, *p;
	size_t len, alen;
	unsigned defport, port;
	int kind, rc;
	bool wild = false;

	len = strnlen(pattern, AJ_URL_MAX);
	if (len >= AJ_URL_MAX)
		return aj_err(err, errlen, -EINVAL, "URL pattern longer than %d bytes",
			      AJ_URL_MAX - 1);
	rc = aj_url_check_bytes(pattern, len, "URL pattern", err, errlen);
	if (rc < 0)
		return rc;
	if (strchr(pattern, '#') != NULL)
		return aj_err(err, errlen, -EINVAL, "fragment not allowed in a URL pattern");
	if (strchr(pattern, '?') != NULL)
		return aj_err(err, errlen, -EINVAL, "query not allowed in a URL pattern");
	if (strstr(pattern, "***") != NULL)
		return aj_err(err, errlen, -EINVAL, "'***' in a URL pattern is ambiguous");
	colon = strchr(pattern, ':');
	if (colon == NULL || strncmp(colon + 1, "//", 2) != 0)
		return aj_err(err, errlen, -EINVAL,
			      "URL pattern must look like "
			      "'https://host[:port]/path'");
	defport = aj_url_scheme_port(pattern, (size_t)(colon - pattern), scheme);
	if (defport == 0)
		return aj_err(err, errlen, -EINVAL, "URL pattern scheme must be http or https");
	auth = colon + 3;
	p = auth + strcspn(auth, "/");
	alen = (size_t)(p - auth);
	/* "*." then a name: anything strictly below that name.  A bare "*" or
	 * a '*' elsewhere in the host would be too easy to get wrong. */
	if (alen >= 2 && auth[0] == '*' && auth[1] == '.') {
		wild = true;
		auth += 2;
		alen -= 2;
	}
	if (memchr(auth, '*', alen) != NULL)
		return aj_err(err, errlen, -EINVAL,
			      "'*' in a pattern host is only allowed as a leading '*.'");
	if (alen == 0)
		return aj_err(err, errlen, -EINVAL, "URL pattern has an empty host");
	rc = aj_url_parse_authority(auth, alen, defport, host, &kind, &port, err, errlen);
	if (rc < 0)
		return rc;
	if (wild && kind != AJ_HOST_NAME)
		return aj_err(err, errlen, -EINVAL,
			      "'*.' can only precede a DNS name, not an IP address");
	rc = aj_url_normalise_path(p, len - (size_t)(p - pattern), AJ_URL_PATH_PATTERN, path,
				   sizeof(path), err, errlen);
	if (rc < 0)
		return rc;
	strcpy(rule->scheme, scheme);
	if (wild) {
		rule->host[0] = '*';
		rule->host[1] = '.';
		strcpy(rule->host + 2, host);
	} else {
		strcpy(rule->host, host);
	}
	rule->port = port;
	strcpy(rule->path, path);
	return 0;
}

/* Glob match of TEXT[0..N) against PAT[0..M) by dynamic programming over
 * the text positions: linear per pattern token, so no pattern can make the
 * broker backtrack exponentially. */
static bool
glob_match_sep(const char *pat, size_t m, const char *text, size_t n, char sep)
{
	bool a[AJ_URL_MAX + 1], b[AJ_URL_MAX + 1];
	bool *cur = a, *nxt = b, *t;

	if (n > AJ_URL_MAX)
		return false;
	memset(cur, 0, (n + 1) * sizeof(bool));
	cur[0] = true;
	for (size_t k = 0; k < m;) {
		if (pat[k] == '*') {
			bool cross = k + 1 < m && pat[k + 1] == '*';

			nxt[0] = cur[0];
			for (size_t j = 1; j <= n; j++)
				nxt[j] = cur[j] || (nxt[j - 1] && (cross || text[j - 1] != sep));
			k += cross ? 2 : 1;
		} else {
			nxt[0] = false;
			for (size_t j = 1; j <= n; j++)
				nxt[j] = cur[j - 1] && text[j - 1] == pat[k];
			k++;
		}
		t = cur;
		cur = nxt;
		nxt = t;
	}
	return cur[n];
}

static bool
glob_match(const char *pat, size_t m, const char *text, size_t n)
{
	return glob_match_sep(pat, m, text, n, '/');
}

/* A rule's query pattern: none given, any query (or none) matches;
 * "none", no query at all; else a glob over the whole query as sent, where
 * '*' stays within one parameter (never crosses '&'). */
static bool
query_match(const struct aj_fetch_rule *r, const struct aj_url *url)
{
	if (r->query[0] == '\0')
		return true;
	if (strcmp(r->query, "none") == 0)
		return !url->has_query || url->query[0] == '\0';
	return url->has_query &&
	       glob_match_sep(r->query, strlen(r->query), url->query, strlen(url->query), '&');
}

static bool
path_match(const char *pat, const char *path)
{
	size_t m = strlen(pat), n = strlen(path);

	if (glob_match(pat, m, path, n))
		return true;
	/* "/docs/" + "**" means "the docs tree", which includes "/docs". */
	return m >= 3 && strcmp(pat + m - 3, "/**") == 0 && glob_match(pat, m - 3, path, n);
}

bool
aj_policy_is_host_match(const char *pat, const char *host, int kind)
{
	size_t hl, sl;

	if (pat[0] != '*')
		return strcmp(pat, host) == 0;
	if (kind != AJ_HOST_NAME)
		return false;
	/* Strictly below the suffix: "a.example.org", never "example.org"
	 * nor "evil-example.org". */
	hl = strlen(host);
	sl = strlen(pat + 1);
	return hl > sl && strcmp(host + hl - sl, pat + 1) == 0;
}

static bool
host_match(const char *pat, const struct aj_url *url)
{
	return aj_policy_is_host_match(pat, url->host, url->host_kind);
}

bool
aj_policy_names_host(const struct aj_policy *p, const char *name)
{
	for (size_t i = 0; i < p->n_rules; i++)
		if (p->rules[i].allow && aj_policy_is_host_match(p->rules[i].host, name, AJ_HOST_NAME))
			return true;
	/* A raw tunnel to port 443, which a captured connection can be. */
	for (size_t i = 0; i < p->n_tunnels; i++)
		if (p->tunnels[i].allow && p->tunnels[i].port == 443 &&
		    aj_policy_is_host_match(p->tunnels[i].host, name, AJ_HOST_NAME))
			return true;
	return false;
}

static bool
rule_match_but_query(const struct aj_fetch_rule *r, unsigned method_bit, const struct aj_url *url)
{
	return (r->methods & method_bit) != 0 && strcmp(r->scheme, url->scheme) == 0 &&
	       r->port == url->port && host_match(r->host, url) &&
	       path_match(r->path, url->path);
}

static bool
rule_match(const struct aj_fetch_rule *r, unsigned method_bit, const struct aj_url *url)
{
	return rule_match_but_query(r, method_bit, url) && query_match(r, url);
}

int
aj_policy_decide(const struct aj_fetch_rule *rules, size_t n, unsigned method_bit,
		 const struct aj_url *url, size_t *decided)
{
	size_t allow = (size_t)-1;

	for (size_t i = 0; i < n; i++) {
		if (!rule_match(&rules[i], method_bit, url))
			continue;
		if (!rules[i].allow) {
			*decided = i;
			return 0;
		}
		if (allow == (size_t)-1)
			allow = i;
	}
	*decided = allow;
	return allow != (size_t)-1;
}

/* ---- limits and rule options ---------------------------------------------- */

static const struct {
	const char *name;
	uint64_t fallback; /* the profile-wide default */
	uint64_t max;      /* larger values are typos, not policies */
} limit_kinds[AJ_LIMIT__COUNT] = {
	[AJ_LIMIT_MAX_BODY] = {"max-body", 1ull << 20, 1ull << 40},
	[AJ_LIMIT_RESPONSE] = {"response", 64ull << 20, 1ull << 40},
	[AJ_LIMIT_TIMEOUT] = {"timeout", 30000, 24ull * 3600 * 1000},
	[AJ_LIMIT_CONCURRENCY] = {"concurrency", 64, 4096},
	[AJ_LIMIT_RATE] = {"rate", 6000, 1000000},
	[AJ_LIMIT_REDIRECTS] = {"redirects", 5, 20},
};

const char *
aj_policy_limit_name(enum aj_limit_kind kind)
{
	return (unsigned)kind < AJ_LIMIT__COUNT ? limit_kinds[kind].name : NULL;
}

static int
limit_kind(const char *key)
{
	for (int k = 0; k < AJ_LIMIT__COUNT; k++)
		if (strcmp(key, limit_kinds[k].name) == 0)
			return k;
	return -1;
}

static int
parse_limit_value(enum aj_limit_kind kind, const char *value, uint64_t *out)
{
	const char *end;
	uint64_t v, mult = 1;
	int r;

	if (kind == AJ_LIMIT_MAX_BODY || kind == AJ_LIMIT_RESPONSE)
		return aj_lexer_size(value, out);
	r = aj_lexer_number(value, &end, &v);
	if (r < 0)
		return r;
	if (kind == AJ_LIMIT_TIMEOUT) {
		if (strcmp(end, "ms") == 0)
			mult = 1;
		else if (*end == '\0' || strcmp(end, "s") == 0)
			mult = 1000;
		else if (strcmp(end, "m") == 0)
			mult = 60000;
		else
			return -EINVAL;
	} else if (kind == AJ_LIMIT_RATE) {
		if (strcmp(end, "/min") == 0)
			mult = 1;
		else if (strcmp(end, "/s") == 0)
			mult = 60;
		else
			return -EINVAL;
	} else if (*end != '\0') {
		return -EINVAL;
	}
	if (v > UINT64_MAX / mult)
		return -ERANGE;
	*out = v * mult;
	return 0;
}

static const char *const limit_expect[AJ_LIMIT__COUNT] = {
	[AJ_LIMIT_MAX_BODY] = "a size such as 64K or 10M",
	[AJ_LIMIT_RESPONSE] = "a size such as 64K or 10M",
	[AJ_LIMIT_TIMEOUT] = "a duration such as 500ms, 30s or 2m",
	[AJ_LIMIT_CONCURRENCY] = "a number of requests",
	[AJ_LIMIT_RATE] = "a rate such as 600/min or 10/s",
	[AJ_LIMIT_REDIRECTS] = "a number of hops",
};

bool
aj_policy_limit_is_valid(enum aj_limit_kind kind, uint64_t value)
{
	if ((unsigned)kind >= AJ_LIMIT__COUNT || value > limit_kinds[kind].max)
		return false;
	/* Zero redirects means "never follow"; zero of anything else would
	 * refuse every request, which `fetch deny` says more clearly. */
	return value > 0 || kind == AJ_LIMIT_REDIRECTS;
}

int
aj_policy_parse_limit(const char *key, const char *value, struct aj_fetch_limits *limits, char *err,
		      size_t errlen)
{
	int k = limit_kind(key);
	char esc[256];
	uint64_t v;
	int r;

	if (k < 0) {
		aj_log_escape(key, esc, sizeof(esc));
		return aj_err(err, errlen, -EINVAL,
			      "unknown limit '%s' (max-body, response, timeout, concurrency, rate, "
			      "redirects)",
			      esc);
	}
	if (value == NULL)
		return aj_err(err, errlen, -EINVAL, "%s: missing value (%s)", key, limit_expect[k]);
	if (limits->set & (1u << k))
		return aj_err(err, errlen, -EINVAL, "%s given twice", key);
	aj_log_escape(value, esc, sizeof(esc));
	r = parse_limit_value((enum aj_limit_kind)k, value, &v);
	if (r == -ERANGE || (r == 0 && v > limit_kinds[k].max))
		return aj_err(err, errlen, -EINVAL, "%s: '%s' is too large", key, esc);
	if (r < 0)
		return aj_err(err, errlen, -EINVAL, "%s: invalid value '%s' (expected %s)", key,
			      esc, limit_expect[k]);
	if (!aj_policy_limit_is_valid((enum aj_limit_kind)k, v))
		return aj_err(err, errlen, -EINVAL,
			      "%s: must be above zero (use 'fetch deny' to "
			      "refuse requests)",
			      key);
	limits->value[k] = v;
	limits->set |= 1u << k;
	return 0;
}

void
aj_policy_format_limit(enum aj_limit_kind kind, uint64_t value, char *out, size_t len)
{
	if (kind == AJ_LIMIT_TIMEOUT)
		snprintf(out, len, "%llums", (unsigned long long)value);
	else if (kind == AJ_LIMIT_RATE)
		snprintf(out, len, "%llu/min", (unsigned long long)value);
	else
		snprintf(out, len, "%llu", (unsigned long long)value);
}

uint64_t
aj_policy_limit(const struct aj_fetch_limits *own, const struct aj_fetch_limits *global,
		enum aj_limit_kind kind)
{
	if (own != NULL && (own->set & (1u << kind)))
		return own->value[kind];
	if (global->set & (1u << kind))
		return global->value[kind];
	return limit_kinds[kind].fallback;
}

void
aj_policy_tighten(struct aj_fetch_limits *acc, unsigned *acc_options,
		  const struct aj_fetch_limits *more, unsigned more_options)
{
	for (int k = 0; k < AJ_LIMIT__COUNT; k++) {
		if (!(more->set & (1u << k)))
			continue;
		if (!(acc->set & (1u << k)) || more->value[k] < acc->value[k])
			acc->value[k] = more->value[k];
		acc->set |= 1u << k;
	}
	/* Secrecy if any rule asks for it; credentials and override headers
	 * only if all allow them. */
	*acc_options = (*acc_options & more_options & (AJ_RULE_CREDENTIALS | AJ_RULE_PASS_ALL)) |
		       ((*acc_options | more_options) & AJ_RULE_SENSITIVE_QUERY);
}

void
aj_policy_effective(const struct aj_fetch_rule *rules, size_t n, unsigned method_bit,
		    const struct aj_url *url, struct aj_fetch_limits *limits, unsigned *options)
{
	bool first = true;

	memset(limits, 0, sizeof(*limits));
	*options = 0;
	for (size_t i = 0; i < n; i++) {
		if (!rules[i].allow || !rule_match(&rules[i], method_bit, url))
			continue;
		if (first) {
			*limits = rules[i].limits;
			*options = rules[i].options;
			first = false;
		} else {
			aj_policy_tighten(limits, options, &rules[i].limits, rules[i].options);
		}
	}
}

void
aj_policy_limit_defaults(struct aj_fetch_limits *global)
{
	for (int k = 0; k < AJ_LIMIT__COUNT; k++) {
		if (!(global->set & (1u << k)))
			global->value[k] = limit_kinds[k].fallback;
		global->set |= 1u << k;
	}
}

/* Each changes what a server may take the request to be, beyond its
 * method, URL and body, which the rules decided. */
const char *const aj_policy_override_headers[AJ_POLICY_N_OVERRIDE_HEADERS] = {
	/* another method (Rails, Express's method-override, Google APIs...) */
	"X-HTTP-Method-Override",
	"X-HTTP-Method",
	"X-Method-Override",
	/* another host, scheme, port or prefix than the URL's (frameworks
	 * behind a proxy build links, redirects and routes from them) */
	"X-Forwarded-Host",
	"Forwarded",
	"X-Forwarded-For",
	"X-Forwarded-Proto",
	"X-Forwarded-Port",
	"X-Forwarded-Prefix",
	/* another path (IIS, Symfony, Zend) */
	"X-Original-URL",
	"X-Rewrite-URL",
};

int
aj_policy_override_header(const char *name)
{
	for (int i = 0; i < AJ_POLICY_N_OVERRIDE_HEADERS; i++)
		if (strcasecmp(name, aj_policy_override_headers[i]) == 0)
			return i;
	return -1;
}

static const struct {
	const char *name;
	unsigned bit;
} rule_flags[] = {
	{"credentials", AJ_RULE_CREDENTIALS},
	{"sensitive-query", AJ_RULE_SENSITIVE_QUERY},
};

/* Headers an `inject` may not set: the broker sets them itself, or drops
 * them (the connection's own, the proxy's), or they would make the server
 * read another request than the one the rules decided. */
static const char *const inject_refused[] = {"Host", "Content-Length", "Expect"};

bool
aj_policy_inject_name_ok(const char *name, char *why, size_t len)
{
	size_t n = strlen(name);

	if (n == 0 || n >= sizeof(((struct aj_fetch_rule *)0)->inject_name) ||
	    !aj_field_is_token(name, n)) {
		snprintf(why, len, "not a header name (a token of at most %zu characters)",
			 sizeof(((struct aj_fetch_rule *)0)->inject_name) - 1);
		return false;
	}
	for (size_t i = 0; i < AJ_ARRAY_SIZE(inject_refused); i++)
		if (strcasecmp(name, inject_refused[i]) == 0)
			goto refused;
	if (aj_field_is_hop_by_hop(name, n) || strncasecmp(name, "Proxy-", 6) == 0 ||
	    aj_policy_override_header(name) >= 0)
		goto refused;
	return true;
refused:
	snprintf(why, len, "the broker never lets a request carry a %s it was not decided with",
		 name);
	return false;
}

bool
aj_policy_secret_ok(const char *value, size_t len, char *why, size_t whylen)
{
	if (len == 0 || len > AJ_POLICY_MAX_SECRET) {
		snprintf(why, whylen, "the value must be 1 to %d bytes (it is %zu)",
			 AJ_POLICY_MAX_SECRET, len);
		return false;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)value[i];

		if ((c < 0x20 && c != '\t') || c >= 0x7f) {
			snprintf(why, whylen,
				 "the value holds a byte a header cannot carry (0x%02x at offset "
				 "%zu): only visible ASCII, space and tab",
				 c, i);
			return false;
		}
	}
	if (value[0] == ' ' || value[0] == '\t' || value[len - 1] == ' ' ||
	    value[len - 1] == '\t') {
		snprintf(why, whylen, "the value begins or ends with white space, which a "
				      "header loses");
		return false;
	}
	return true;
}

const char *
aj_policy_secret(const struct aj_policy *p, size_t slot)
{
	if (p->secrets == NULL || slot >= p->n_rules || p->rules[slot].inject_name[0] == '\0')
		return NULL;
	return p->secrets[slot];
}

/* "inject NAME SOURCE": the header NAME set from the secret at SOURCE,
 * "file:PATH" or "env:VAR". */
static int
parse_inject(char **cursor, struct aj_fetch_rule *rule, char *err, size_t errlen)
{
	const char *name = aj_lexer_token(cursor), *source = aj_lexer_token(cursor);
	char why[256], esc[256];
	size_t len;

	if (!rule->allow)
		return aj_err(err, errlen, -EINVAL, "'inject' only makes sense on an allow rule");
	if (name == NULL || source == NULL)
		return aj_err(err, errlen, -EINVAL,
			      "inject: expected NAME SOURCE (e.g. 'inject x-api-key "
			      "file:~/.config/anthropic/key' or 'inject Authorization "
			      "env:GITHUB_AUTH')");
	if (rule->inject_name[0] != '\0')
		return aj_err(err, errlen, -EINVAL, "inject given twice (one header per rule)");
	aj_log_escape(name, esc, sizeof(esc));
	if (!aj_policy_inject_name_ok(name, why, sizeof(why)))
		return aj_err(err, errlen, -EINVAL, "inject: '%s': %s", esc, why);
	len = strlen(source);
	aj_log_escape(source, esc, sizeof(esc));
	if (len >= sizeof(rule->inject_source))
		return aj_err(err, errlen, -EINVAL, "inject: the source is longer than %zu bytes",
			      sizeof(rule->inject_source) - 1);
	if (strncmp(source, "file:", 5) == 0) {
		if (source[5] == '\0')
			return aj_err(err, errlen, -EINVAL, "inject: 'file:' names no file");
	} else if (strncmp(source, "env:", 4) == 0) {
		bool ok = (source[4] >= 'A' && source[4] <= 'Z') ||
			  (source[4] >= 'a' && source[4] <= 'z') || source[4] == '_';

		for (size_t i = 5; ok && i < len; i++)
			ok = (source[i] >= 'A' && source[i] <= 'Z') ||
			     (source[i] >= 'a' && source[i] <= 'z') ||
			     (source[i] >= '0' && source[i] <= '9') || source[i] == '_';
		if (!ok)
			return aj_err(err, errlen, -EINVAL,
				      "inject: '%s' is not a variable name", esc + 4);
	} else {
		return aj_err(err, errlen, -EINVAL,
			      "inject: the source '%s' must be file:PATH or env:VARIABLE", esc);
	}
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)source[i] < 0x20 || source[i] == 0x7f)
			return aj_err(err, errlen, -EINVAL,
				      "inject: the source holds a control character");
	memcpy(rule->inject_name, name, strlen(name) + 1);
	memcpy(rule->inject_source, source, len + 1);
	return 0;
}

static int
parse_option(char **cursor, const char *word, struct aj_fetch_rule *rule, char *err, size_t errlen)
{
	char esc[256];

	for (size_t i = 0; i < AJ_ARRAY_SIZE(rule_flags); i++) {
		if (strcmp(word, rule_flags[i].name) != 0)
			continue;
		if (!rule->allow)
			return aj_err(err, errlen, -EINVAL,
				      "'%s' only makes sense on an allow rule", word);
		if (rule->options & rule_flags[i].bit)
			return aj_err(err, errlen, -EINVAL, "%s given twice", word);
		rule->options |= rule_flags[i].bit;
		return 0;
	}
	if (strcmp(word, "query") == 0) {
		const char *q = aj_lexer_token(cursor);
		size_t len = q ? strlen(q) : 0;

		if (q == NULL)
			return aj_err(err, errlen, -EINVAL,
				      "query: missing PATTERN (e.g. 'q=*', or 'none')");
		if (rule->query[0] != '\0')
			return aj_err(err, errlen, -EINVAL, "query given twice");
		if (len >= sizeof(rule->query))
			return aj_err(err, errlen, -EINVAL, "query: pattern longer than %zu bytes",
				      sizeof(rule->query) - 1);
		if (aj_url_check_bytes(q, len, "query pattern", err, errlen) < 0)
			return -EINVAL;
		if (strchr(q, '#') != NULL || strchr(q, '?') != NULL)
			return aj_err(err, errlen, -EINVAL,
				      "query: the pattern is what follows '?' (no '?' or '#')");
		/* Spelled as URLs' queries are, so that the two compare. */
		if (strcmp(q, "none") == 0)
			memcpy(rule->query, q, len + 1);
		else if (aj_url_normalise_query(q, len, rule->query, sizeof(rule->query), err,
						errlen) < 0)
			return -EINVAL;
		return 0;
	}
	if (strcmp(word, "pass-header") == 0) {
		const char *name = aj_lexer_token(cursor);
		int i = name ? aj_policy_override_header(name) : -1;

		if (!rule->allow)
			return aj_err(err, errlen, -EINVAL,
				      "'pass-header' only makes sense on an allow rule");
		if (name == NULL)
			return aj_err(err, errlen, -EINVAL, "pass-header: missing NAME");
		if (i < 0) {
			aj_log_escape(name, esc, sizeof(esc));
			return aj_err(
				err, errlen, -EINVAL,
				"pass-header: '%s' is not dropped by the broker (only "
				"override headers are: X-HTTP-Method-Override, X-Forwarded-Host, "
				"Forwarded, X-Original-URL, ...)",
				esc);
		}
		if (rule->options & AJ_RULE_PASS(i))
			return aj_err(err, errlen, -EINVAL, "pass-header %s given twice",
				      aj_policy_override_headers[i]);
		rule->options |= AJ_RULE_PASS(i);
		return 0;
	}
	if (strcmp(word, "inject") == 0)
		return parse_inject(cursor, rule, err, errlen);
	if (limit_kind(word) < 0) {
		aj_log_escape(word, esc, sizeof(esc));
		return aj_err(err, errlen, -EINVAL,
			      "unknown option '%s' (query, max-body, response, timeout, "
			      "concurrency, rate, redirects, credentials, sensitive-query, "
			      "pass-header, inject)",
			      esc);
	}
	if (!rule->allow)
		return aj_err(err, errlen, -EINVAL, "limits only make sense on an allow rule");
	return aj_policy_parse_limit(word, aj_lexer_token(cursor), &rule->limits, err, errlen);
}

int
aj_policy_parse_rule(char *line, struct aj_fetch_rule *rule, char *err, size_t errlen)
{
	char *cursor = line, *word;
	char *action = aj_lexer_token(&cursor), *method_list = aj_lexer_token(&cursor);
	char *pattern = aj_lexer_token(&cursor);
	struct aj_fetch_rule r;
	int rc;

	if (action == NULL)
		return aj_err(err, errlen, -EINVAL, "missing 'allow' or 'deny'");
	if (strcmp(action, "allow") != 0 && strcmp(action, "deny") != 0)
		return aj_err(err, errlen, -EINVAL, "expected 'allow' or 'deny'");
	if (method_list == NULL || pattern == NULL)
		return aj_err(err, errlen, -EINVAL, "expected METHODS URL-PATTERN");
	memset(&r, 0, sizeof(r));
	r.allow = strcmp(action, "allow") == 0;
	if ((rc = aj_policy_parse_methods(method_list, &r.methods, err, errlen)) < 0 ||
	    (rc = aj_policy_parse_pattern(pattern, &r, err, errlen)) < 0)
		return rc;
	while ((word = aj_lexer_token(&cursor)) != NULL)
		if ((rc = parse_option(&cursor, word, &r, err, errlen)) < 0)
			return rc;
	memcpy(r.origin, rule->origin, sizeof(r.origin));
	*rule = r;
	return 0;
}

void
aj_policy_rule_text(const struct aj_fetch_rule *r, char *out, size_t len)
{
	char port[16] = "";
	bool v6 = strchr(r->host, ':') != NULL;
	size_t n;

	n = (size_t)snprintf(out, len, "%s ", r->allow ? "allow" : "deny");
	for (size_t i = 0, first = 1; i < AJ_ARRAY_SIZE(methods); i++) {
		if (!(r->methods & methods[i].bit))
			continue;
		n += (size_t)snprintf(out + (n < len ? n : len), n < len ? len - n : 0, "%s%s",
				      first ? "" : ",", methods[i].name);
		first = 0;
	}
	if (!((strcmp(r->scheme, "http") == 0 && r->port == 80) ||
	      (strcmp(r->scheme, "https") == 0 && r->port == 443)))
		snprintf(port, sizeof(port), ":%u", r->port);
	n += (size_t)snprintf(out + (n < len ? n : len), n < len ? len - n : 0, " %s://%s%s%s%s%s",
			      r->scheme, v6 ? "[" : "", r->host, v6 ? "]" : "", port, r->path);
	if (r->query[0] != '\0')
		n += (size_t)snprintf(out + (n < len ? n : len), n < len ? len - n : 0, " query %s",
				      r->query);
	for (int k = 0; k < AJ_LIMIT__COUNT; k++) {
		char value[32];

		if (!(r->limits.set & (1u << k)))
			continue;
		aj_policy_format_limit((enum aj_limit_kind)k, r->limits.value[k], value,
				       sizeof(value));
		n += (size_t)snprintf(out + (n < len ? n : len), n < len ? len - n : 0, " %s %s",
				      limit_kinds[k].name, value);
	}
	for (size_t i = 0; i < AJ_ARRAY_SIZE(rule_flags); i++)
		if (r->options & rule_flags[i].bit)
			n += (size_t)snprintf(out + (n < len ? n : len), n < len ? len - n : 0,
					      " %s", rule_flags[i].name);
	for (size_t i = 0; i < AJ_POLICY_N_OVERRIDE_HEADERS; i++)
		if (r->options & AJ_RULE_PASS(i))
			n += (size_t)snprintf(out + (n < len ? n : len), n < len ? len - n : 0,
					      " pass-header %s", aj_policy_override_headers[i]);
	/* The reference, never a secret: what the policy's hash covers. */
	if (r->inject_name[0] != '\0')
		snprintf(out + (n < len ? n : len), n < len ? len - n : 0, " inject %s %s",
			 r->inject_name, r->inject_source);
}

void
aj_policy_clear(struct aj_policy *p)
{
	free(p->path);
	free(p->rules);
	free(p->addresses);
	free(p->ca_file);
	free(p->ca_pem);
	for (size_t i = 0; p->secrets != NULL && i < p->n_rules; i++) {
		if (p->secrets[i] != NULL)
			explicit_bzero(p->secrets[i], strlen(p->secrets[i]));
		free(p->secrets[i]);
	}
	free(p->secrets);
	free(p->tunnels);
	memset(p, 0, sizeof(*p));
}

/* The next parameter of the query at *Q (advanced past it): its name
 * [*NAME, +*NAME_LEN) and value [*VALUE, +*VALUE_LEN) (empty without '=').
 * False at the end. */
static bool
next_param(const char **q, const char **name, size_t *name_len, const char **value,
	   size_t *value_len)
{
	const char *s = *q, *end, *eq;

	if (s == NULL)
		return false;
	end = strchr(s, '&');
	if (end == NULL)
		end = s + strlen(s);
	eq = memchr(s, '=', (size_t)(end - s));
	*name = s;
	*name_len = (size_t)((eq != NULL ? eq : end) - s);
	*value = eq != NULL ? eq + 1 : end;
	*value_len = (size_t)(end - *value);
	*q = *end == '&' ? end + 1 : NULL;
	return true;
}

/* A parameter RULE's query pattern names (the literal text of a piece's
 * name after its last '*': "**action=delete**" names "action") that
 * QUERY holds more than once with different values, into NAME (LEN
 * bytes); false if none. */
static bool
repeated_named_param(const char *pattern, const char *query, char *name, size_t len)
{
	const char *pp = pattern, *pn, *pv;
	size_t pnl, pvl;

	while (next_param(&pp, &pn, &pnl, &pv, &pvl)) {
		const char *star = NULL, *qp = query, *qn, *qv, *first = NULL;
		size_t qnl, qvl, first_len = 0;

		for (const char *c = pn; c < pn + pnl; c++)
			if (*c == '*')
				star = c;
		if (star != NULL) {
			pnl -= (size_t)(star + 1 - pn);
			pn = star + 1;
		}
		if (pnl == 0)
			continue;
		while (next_param(&qp, &qn, &qnl, &qv, &qvl)) {
			if (qnl != pnl || memcmp(qn, pn, pnl) != 0)
				continue;
			if (first == NULL) {
				first = qv;
				first_len = qvl;
			} else if (qvl != first_len || memcmp(qv, first, qvl) != 0) {
				snprintf(name, len, "%.*s", (int)pnl, pn);
				return true;
			}
		}
	}
	return false;
}

/* The injects of every allow rule matching URL into OUT, one per header;
 * a conflict makes OUT ambiguous (and denied). */
static void
collect_injects(const struct aj_policy *p, unsigned method_bit, const struct aj_url *url,
		struct aj_policy_decision *out)
{
	for (size_t i = 0; i < p->n_rules; i++) {
		const struct aj_fetch_rule *r = &p->rules[i], *seen = NULL;

		if (!r->allow || r->inject_name[0] == '\0' || !rule_match(r, method_bit, url))
			continue;
		for (size_t j = 0; j < out->n_inject && seen == NULL; j++)
			if (strcasecmp(p->rules[out->inject[j]].inject_name, r->inject_name) == 0)
				seen = &p->rules[out->inject[j]];
		if (seen != NULL && strcmp(seen->inject_source, r->inject_source) == 0)
			continue;
		if (seen != NULL)
			snprintf(out->ambiguous, sizeof(out->ambiguous),
				 "the rules at %s and %s both match and inject %s from different "
				 "sources",
				 seen->origin, r->origin, r->inject_name);
		else if (out->n_inject == AJ_POLICY_MAX_INJECT)
			snprintf(out->ambiguous, sizeof(out->ambiguous),
				 "more than %d rules that inject a header match (the rule at %s "
				 "is one)",
				 AJ_POLICY_MAX_INJECT, r->origin);
		else {
			out->inject[out->n_inject++] = i;
			continue;
		}
		out->allowed = false;
		out->slot = i;
		out->rule = r;
		snprintf(out->rule_text, sizeof(out->rule_text), "%s", r->origin);
		out->n_inject = 0;
		return;
	}
}

void
aj_policy_judge(const struct aj_policy *p, unsigned method_bit, const struct aj_url *url,
		struct aj_policy_decision *out)
{
	size_t decided = (size_t)-1;

	out->ambiguous[0] = '\0';
	out->n_inject = 0;
	for (size_t i = 0; url->has_query && i < p->n_rules; i++) {
		const struct aj_fetch_rule *r = &p->rules[i];
		char name[64], safe[96];

		if (r->query[0] == '\0' || strcmp(r->query, "none") == 0 ||
		    !rule_match_but_query(r, method_bit, url) ||
		    !repeated_named_param(r->query, url->query, name, sizeof(name)))
			continue;
		aj_log_escape(name, safe, sizeof(safe));
		snprintf(out->ambiguous, sizeof(out->ambiguous),
			 "query parameter '%s' is given twice with different values, and the "
			 "rule at %s decides on it (servers read such a query differently)",
			 safe, r->origin);
		out->allowed = false;
		out->slot = i;
		out->rule = r;
		snprintf(out->rule_text, sizeof(out->rule_text), "%s", r->origin);
		memset(&out->limits, 0, sizeof(out->limits));
		out->options = 0;
		return;
	}

	out->allowed = aj_policy_decide(p->rules, p->n_rules, method_bit, url, &decided) == 1;
	out->slot = decided;
	out->rule = decided == (size_t)-1 ? NULL : &p->rules[decided];
	if (out->rule == NULL)
		snprintf(out->rule_text, sizeof(out->rule_text),
			 "%s: no 'fetch allow' rule matches (default deny)", p->path);
	else
		snprintf(out->rule_text, sizeof(out->rule_text), "%s", out->rule->origin);
	aj_policy_effective(p->rules, p->n_rules, method_bit, url, &out->limits, &out->options);
	if (out->allowed)
		collect_injects(p, method_bit, url, out);
}
