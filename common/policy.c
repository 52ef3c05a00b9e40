/*
 * The fetch policy (see policy.h): parsing of method lists and URL patterns,
 * and the deny-over-allow, default-deny decision over normalised URLs.
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "internal.h"
#include "policy.h"

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
glob_match(const char *pat, size_t m, const char *text, size_t n)
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
				nxt[j] = cur[j] || (nxt[j - 1] && (cross || text[j - 1] != '/'));
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
path_match(const char *pat, const char *path)
{
	size_t m = strlen(pat), n = strlen(path);

	if (glob_match(pat, m, path, n))
		return true;
	/* "/docs/" + "**" means "the docs tree", which includes "/docs". */
	return m >= 3 && strcmp(pat + m - 3, "/**") == 0 && glob_match(pat, m - 3, path, n);
}

static bool
host_match(const char *pat, const struct aj_url *url)
{
	size_t hl, sl;

	if (pat[0] != '*')
		return strcmp(pat, url->host) == 0;
	if (url->host_kind != AJ_HOST_NAME)
		return false;
	/* Strictly below the suffix: "a.example.org", never "example.org"
	 * nor "evil-example.org". */
	hl = strlen(url->host);
	sl = strlen(pat + 1);
	return hl > sl && strcmp(url->host + hl - sl, pat + 1) == 0;
}

static bool
rule_match(const struct aj_fetch_rule *r, unsigned method_bit, const struct aj_url *url)
{
	return (r->methods & method_bit) != 0 && strcmp(r->scheme, url->scheme) == 0 &&
	       r->port == url->port && host_match(r->host, url) && path_match(r->path, url->path);
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
