/*
 * The URL normaliser (see url.h).  Everything that two HTTP stacks might
 * read differently is either rewritten to one canonical spelling or
 * refused, because the broker decides on the normalised string and then
 * fetches that same string.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "url.h"

/* Untrusted text quoted in a message is cut to this many bytes, then
 * escaped, so a hostile URL can neither flood nor forge a log line. */
#define QUOTE_MAX 64

struct quoted {
	char s[QUOTE_MAX * 4 + 8];
};

static const char *
quote(const char *s, size_t len, struct quoted *q)
{
	char cut[QUOTE_MAX + 1];

	if (len > QUOTE_MAX)
		len = QUOTE_MAX;
	memcpy(cut, s, len);
	cut[len] = '\0';
	aj_log_escape(cut, q->s, sizeof(q->s));
	return q->s;
}

static bool
is_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static int
hex_value(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool
is_unreserved(int c)
{
	return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

/* RFC 3986 pchar without pct-encoded: unreserved, sub-delims, ':' and '@'. */
static bool
is_pchar(int c)
{
	return is_unreserved(c) || strchr("!$&'()*+,;=:@", c) != NULL;
}

static char
lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

unsigned
aj_url_scheme_port(const char *s, size_t len, char *scheme)
{
	unsigned port = 0;

	if (len == 4 && strncasecmp(s, "http", 4) == 0)
		port = 80;
	else if (len == 5 && strncasecmp(s, "https", 5) == 0)
		port = 443;
	if (port != 0 && scheme != NULL) {
		for (size_t i = 0; i < len; i++)
			scheme[i] = lower(s[i]);
		scheme[len] = '\0';
	}
	return port;
}

/* A label that inet_aton() or a WHATWG parser would read as a number:
 * decimal, octal (leading 0) or hex (0x...).  A host whose last label is
 * such a number is an IP literal to some parser, so it must be canonical. */
static bool
is_numeric_label(const char *s, size_t len)
{
	size_t i = 0;

	if (len == 0)
		return false;
	if (len >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		for (i = 2; i < len; i++)
			if (hex_value(s[i]) < 0)
				return false;
		return true;
	}
	for (i = 0; i < len; i++)
		if (!is_digit(s[i]))
			return false;
	return true;
}

/* Exactly four decimal octets 0-255 without leading zeros. */
static bool
is_canonical_ipv4(const char *s)
{
	int parts = 0;

	while (parts < 4) {
		unsigned v = 0;
		size_t n = 0;

		while (is_digit(s[n])) {
			v = v * 10 + (unsigned)(s[n] - '0');
			if (++n > 3)
				return false;
		}
		if (n == 0 || v > 255 || (n > 1 && s[0] == '0'))
			return false;
		s += n;
		parts++;
		if (parts < 4) {
			if (*s != '.')
				return false;
			s++;
		}
	}
	return *s == '\0';
}

static int
parse_ipv6(const char *s, size_t len, char *host, char *err, size_t errlen)
{
	char buf[INET6_ADDRSTRLEN + 16];
	struct in6_addr a;
	struct quoted q;

	if (memchr(s, '%', len) != NULL)
		return aj_err(err, errlen, -EINVAL, "IPv6 zone id not allowed in host '[%s]'",
			      quote(s, len, &q));
	if (len >= sizeof(buf) || len == 0)
		return aj_err(err, errlen, -EINVAL, "invalid IPv6 literal '[%s]'",
			      quote(s, len, &q));
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (inet_pton(AF_INET6, buf, &a) != 1)
		return aj_err(err, errlen, -EINVAL, "invalid IPv6 literal '[%s]'",
			      quote(s, len, &q));
	/* Re-printing gives the one RFC 5952 spelling of the address. */
	if (inet_ntop(AF_INET6, &a, host, 256) == NULL)
		return aj_err(err, errlen, -EINVAL, "invalid IPv6 literal '[%s]'",
			      quote(s, len, &q));
	return 0;
}

static int
parse_name(const char *s, size_t len, char *host, int *kind, char *err, size_t errlen)
{
	char buf[256];
	size_t label = 0, last = 0;
	struct quoted q;

	if (len == 0)
		return aj_err(err, errlen, -EINVAL, "empty host");
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '%')
			return aj_err(err, errlen, -EINVAL,
				      "percent-encoding not allowed in host '%s'",
				      quote(s, len, &q));
		if (!is_alpha(s[i]) && !is_digit(s[i]) && s[i] != '-' && s[i] != '.')
			return aj_err(err, errlen, -EINVAL, "invalid character in host '%s'",
				      quote(s, len, &q));
	}
	/* "example.org." and "example.org" are the same name to DNS. */
	if (s[len - 1] == '.')
		len--;
	if (len > 253)
		return aj_err(err, errlen, -EINVAL, "host name longer than 253 bytes");
	if (len == 0)
		return aj_err(err, errlen, -EINVAL, "empty host");
	for (size_t i = 0; i <= len; i++) {
		if (i == len || s[i] == '.') {
			if (i == label)
				return aj_err(err, errlen, -EINVAL, "empty label in host '%s'",
					      quote(s, len, &q));
			if (i - label > 63)
				return aj_err(err, errlen, -EINVAL,
					      "label longer than 63 bytes in host '%s'",
					      quote(s, len, &q));
			last = label;
			label = i + 1;
		}
		if (i < len)
			buf[i] = lower(s[i]);
	}
	buf[len] = '\0';
	if (is_canonical_ipv4(buf)) {
		*kind = AJ_HOST_IPV4;
	} else if (is_numeric_label(buf + last, len - last)) {
		/* "2130706433", "0x7f.1", "0177.0.0.1", "127.1": resolvers
		 * read these as 127.0.0.1, a matcher would read a name. */
		return aj_err(err, errlen, -EINVAL,
			      "non-canonical IPv4 literal '%s' (use a dotted quad of decimal "
			      "octets without leading zeros)",
			      quote(s, len, &q));
	} else {
		*kind = AJ_HOST_NAME;
	}
	memcpy(host, buf, len + 1);
	return 0;
}

int
aj_url_parse_authority(const char *s, size_t len, unsigned default_port, char *host, int *kind,
		       unsigned *port, char *err, size_t errlen)
{
	char h[256];
	const char *p = NULL;
	size_t hlen, plen = 0;
	unsigned v = 0;
	int k = AJ_HOST_NAME, rc;
	struct quoted q;

	if (memchr(s, '@', len) != NULL)
		return aj_err(err, errlen, -EINVAL, "userinfo ('@') not allowed in URL authority");
	if (len > 0 && s[0] == '[') {
		const char *close = memchr(s, ']', len);

		if (close == NULL)
			return aj_err(err, errlen, -EINVAL, "unterminated IPv6 literal '%s'",
				      quote(s, len, &q));
		rc = parse_ipv6(s + 1, (size_t)(close - s - 1), h, err, errlen);
		if (rc < 0)
			return rc;
		k = AJ_HOST_IPV6;
		hlen = (size_t)(close + 1 - s);
		if (hlen < len && s[hlen] != ':')
			return aj_err(err, errlen, -EINVAL,
				      "unexpected text after IPv6 literal in '%s'",
				      quote(s, len, &q));
	} else {
		const char *colon = memchr(s, ':', len);

		hlen = colon != NULL ? (size_t)(colon - s) : len;
		rc = parse_name(s, hlen, h, &k, err, errlen);
		if (rc < 0)
			return rc;
	}
	if (hlen < len) {
		p = s + hlen + 1;
		plen = len - hlen - 1;
		if (plen == 0)
			return aj_err(err, errlen, -EINVAL, "empty port");
		for (size_t i = 0; i < plen; i++) {
			if (!is_digit(p[i]))
				return aj_err(err, errlen, -EINVAL,
					      "port '%s' is not a decimal number",
					      quote(p, plen, &q));
			v = v * 10 + (unsigned)(p[i] - '0');
			if (v > 65535)
				return aj_err(err, errlen, -EINVAL, "port '%s' out of range",
					      quote(p, plen, &q));
		}
		if (v == 0)
			return aj_err(err, errlen, -EINVAL, "port 0 not allowed");
	} else {
		v = default_port;
	}
	strcpy(host, h);
	*kind = k;
	*port = v;
	return 0;
}

/* Append SEG[0..N) to OUT at *O, keeping room for the NUL. */
static int
append(char *out, size_t outlen, size_t *o, const char *seg, size_t n, char *err, size_t errlen)
{
	if (*o + n >= outlen)
		return aj_err(err, errlen, -EINVAL, "normalised path too long");
	memcpy(out + *o, seg, n);
	*o += n;
	out[*o] = '\0';
	return 0;
}

/* Normalise one segment S[0..LEN) into SEG (never longer than LEN).  Sets
 * *ENCODED when a percent-encoding was decoded, so that "%2e" cannot pass
 * for a harmless name here and become ".." at the server. */
static int
normalise_segment(const char *s, size_t len, char *seg, size_t *seglen, bool *encoded, char *err,
		  size_t errlen)
{
	size_t o = 0;
	struct quoted q;

	*encoded = false;
	for (size_t i = 0; i < len; i++) {
		int c = (unsigned char)s[i];

		if (c == '%') {
			int hi, lo, v;

			if (i + 2 >= len)
				return aj_err(err, errlen, -EINVAL,
					      "malformed percent-encoding in path segment '%s'",
					      quote(s, len, &q));
			hi = hex_value(s[i + 1]);
			lo = hex_value(s[i + 2]);
			if (hi < 0 || lo < 0)
				return aj_err(err, errlen, -EINVAL,
					      "malformed percent-encoding in path segment '%s'",
					      quote(s, len, &q));
			v = hi * 16 + lo;
			if (v == '/')
				return aj_err(err, errlen, -EINVAL,
					      "encoded slash (%%2F) not allowed in path");
			if (v == '\\')
				return aj_err(err, errlen, -EINVAL,
					      "encoded backslash (%%5C) not allowed in path");
			if (v == 0)
				return aj_err(err, errlen, -EINVAL,
					      "encoded NUL (%%00) not allowed in path");
			if (is_unreserved(v)) {
				seg[o++] = (char)v;
				*encoded = true;
			} else {
				seg[o++] = '%';
				seg[o++] = "0123456789ABCDEF"[hi];
				seg[o++] = "0123456789ABCDEF"[lo];
			}
			i += 2;
		} else if (c == '\\') {
			return aj_err(err, errlen, -EINVAL, "backslash not allowed in path");
		} else if (is_pchar(c)) {
			seg[o++] = (char)c;
		} else {
			return aj_err(err, errlen, -EINVAL,
				      "character '%c' not allowed in path (percent-encode it)", c);
		}
	}
	*seglen = o;
	return 0;
}

int
aj_url_normalise_path(const char *s, size_t len, unsigned flags, char *out, size_t outlen,
		      char *err, size_t errlen)
{
	char seg[AJ_URL_MAX + 1];
	size_t o = 0, depth = 0, start = 1;
	bool pattern = (flags & AJ_URL_PATH_PATTERN) != 0;
	int rc;

	if (outlen < 2)
		return aj_err(err, errlen, -EINVAL, "path buffer too small");
	out[0] = '\0';
	if (len == 0)
		return append(out, outlen, &o, "/", 1, err, errlen);
	if (s[0] != '/')
		return aj_err(err, errlen, -EINVAL, "path does not start with '/'");
	if (len > AJ_URL_MAX)
		return aj_err(err, errlen, -EINVAL, "path too long");
	while (start <= len) {
		const char *slash = memchr(s + start, '/', len - start);
		size_t end = slash != NULL ? (size_t)(slash - s) : len;
		bool last = slash == NULL, encoded, dot, dotdot;
		size_t n = 0;

		if (end == start && !last)
			return aj_err(err, errlen, -EINVAL,
				      "empty path segment ('//') not allowed");
		rc = normalise_segment(s + start, end - start, seg, &n, &encoded, err, errlen);
		if (rc < 0)
			return rc;
		dot = n == 1 && seg[0] == '.';
		dotdot = n == 2 && seg[0] == '.' && seg[1] == '.';
		if ((dot || dotdot) && encoded)
			return aj_err(err, errlen, -EINVAL,
				      "encoded dot segment not allowed in path");
		if ((dot || dotdot) && pattern)
			return aj_err(err, errlen, -EINVAL,
				      "dot segment not allowed in a URL pattern");
		/* Servers disagree about these, so a rule could be matched on
		 * one path and served another: Tomcat, Jetty and Spring cut a
		 * segment at ';' (path parameters), Windows servers drop a
		 * trailing '.'.  Refused rather than guessed. */
		if (!dot && !dotdot &&
		    (memchr(seg, ';', n) != NULL || memmem(seg, n, "%3B", 3) != NULL))
			return aj_err(err, errlen, -EINVAL,
				      "';' (path parameters) not allowed in a path segment");
		if (!dot && !dotdot && n > 0 && seg[n - 1] == '.')
			return aj_err(
				err, errlen, -EINVAL,
				"a path segment must not end in '.' (servers disagree about it)");
		if (dotdot) {
			/* Climbing above the root means the client and the
			 * server disagree about where the path points. */
			if (depth == 0)
				return aj_err(err, errlen, -EINVAL,
					      "'..' climbs above the root of the path");
			depth--;
			o = (size_t)(strrchr(out, '/') - out);
			out[o] = '\0';
		} else if (!dot) {
			rc = append(out, outlen, &o, "/", 1, err, errlen);
			if (rc == 0)
				rc = append(out, outlen, &o, seg, n, err, errlen);
			if (rc < 0)
				return rc;
			depth++;
		}
		/* RFC 3986 5.2.4: "/a/." and "/a/b/.." keep the trailing '/'. */
		if (last && (dot || dotdot)) {
			rc = append(out, outlen, &o, "/", 1, err, errlen);
			if (rc < 0)
				return rc;
		}
		start = end + 1;
	}
	return 0;
}

/* Does the parameter name S[0..LEN) hold an encoded '=' or '&' (in the
 * normalised, upper-case form)?  Servers disagree about such a name: one
 * reads "a%3Db" as the name "a=b", another, decoding first, as a=b. */
static bool
name_has_encoded_separator(const char *s, size_t len)
{
	for (size_t i = 0; i + 2 < len; i++)
		if (s[i] == '%' &&
		    ((s[i + 1] == '3' && s[i + 2] == 'D') || (s[i + 1] == '2' && s[i + 2] == '6')))
			return true;
	return false;
}

int
aj_url_normalise_query(const char *s, size_t len, char *out, size_t outlen, char *err,
		       size_t errlen)
{
	size_t o = 0, piece = 0;
	struct quoted q;

	if (len >= outlen)
		return aj_err(err, errlen, -EINVAL, "query too long");
	for (size_t i = 0; i <= len; i++) {
		int c = i < len ? (unsigned char)s[i] : '&';

		if (c == '&') {
			/* One parameter ends: its name is what precedes the
			 * first '=' (all of it without one). */
			const char *eq = memchr(out + piece, '=', o - piece);
			size_t name = (size_t)((eq != NULL ? eq : out + o) - (out + piece));

			if (name_has_encoded_separator(out + piece, name))
				return aj_err(
					err, errlen, -EINVAL,
					"query parameter name '%s' holds an encoded '=' or '&' "
					"(servers read it differently)",
					quote(out + piece, name, &q));
			if (i < len)
				out[o++] = '&';
			piece = o;
			continue;
		}
		if (c != '%') {
			out[o++] = (char)c;
			continue;
		}
		if (i + 2 >= len || hex_value(s[i + 1]) < 0 || hex_value(s[i + 2]) < 0)
			return aj_err(err, errlen, -EINVAL, "malformed percent-encoding in query");
		c = hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]);
		/* As in the path: what need not be encoded is decoded, the rest
		 * keeps one spelling (upper-case hex), so a rule sees what the
		 * server will ("%61ction" is "action"). */
		if (is_unreserved(c)) {
			out[o++] = (char)c;
		} else {
			out[o++] = '%';
			out[o++] = "0123456789ABCDEF"[c >> 4];
			out[o++] = "0123456789ABCDEF"[c & 15];
		}
		i += 2;
	}
	out[o] = '\0';
	return 0;
}

int
aj_url_check_bytes(const char *s, size_t len, const char *what, char *err, size_t errlen)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= 0x20 || c >= 0x7f)
			return aj_err(err, errlen, -EINVAL,
				      "%s contains a space, control character or non-ASCII "
				      "byte (0x%02x at offset %zu)",
				      what, c, i);
	}
	return 0;
}

int
aj_url_normalise(const char *in, struct aj_url *out, char *err, size_t errlen)
{
	struct aj_url u;
	const char *colon, *auth, *end, *path, *qmark;
	size_t len, alen, plen, n;
	unsigned defport;
	int rc;
	struct quoted q;

	len = strnlen(in, AJ_URL_MAX);
	if (len >= AJ_URL_MAX)
		return aj_err(err, errlen, -EINVAL, "URL longer than %d bytes", AJ_URL_MAX - 1);
	if (len == 0)
		return aj_err(err, errlen, -EINVAL, "empty URL");
	rc = aj_url_check_bytes(in, len, "URL", err, errlen);
	if (rc < 0)
		return rc;
	memset(&u, 0, sizeof(u));

	colon = strchr(in, ':');
	if (colon == NULL || colon == in)
		return aj_err(err, errlen, -EINVAL, "URL has no scheme");
	for (const char *p = in; p < colon; p++)
		if (!is_alpha(*p) && !is_digit(*p) && *p != '+' && *p != '-' && *p != '.')
			return aj_err(err, errlen, -EINVAL, "URL has no scheme");
	defport = aj_url_scheme_port(in, (size_t)(colon - in), u.scheme);
	if (defport == 0)
		return aj_err(err, errlen, -EINVAL, "scheme '%s' not allowed (only http and https)",
			      quote(in, (size_t)(colon - in), &q));
	if (strncmp(colon + 1, "//", 2) != 0)
		return aj_err(err, errlen, -EINVAL, "URL has no '//' authority");

	/* The fragment never reaches the server: drop it first, so that a
	 * '?' or '/' inside it cannot be read as part of the URL. */
	end = strchr(in, '#');
	if (end == NULL)
		end = in + len;
	auth = colon + 3;
	path = auth;
	while (path < end && *path != '/' && *path != '?')
		path++;
	alen = (size_t)(path - auth);
	if (alen == 0)
		return aj_err(err, errlen, -EINVAL, "URL has an empty host");
	rc = aj_url_parse_authority(auth, alen, defport, u.host, &u.host_kind, &u.port, err,
				    errlen);
	if (rc < 0)
		return rc;

	qmark = memchr(path, '?', (size_t)(end - path));
	plen = (size_t)((qmark != NULL ? qmark : end) - path);
	rc = aj_url_normalise_path(path, plen, 0, u.path, sizeof(u.path), err, errlen);
	if (rc < 0)
		return rc;
	if (qmark != NULL) {
		size_t qlen = (size_t)(end - qmark - 1);

		rc = aj_url_normalise_query(qmark + 1, qlen, u.query, sizeof(u.query), err, errlen);
		if (rc < 0)
			return rc;
		u.has_query = 1;
	}

	if (u.port != defport)
		n = (size_t)snprintf(u.normalised, sizeof(u.normalised), "%s://%s%s%s:%u%s%s%s",
				     u.scheme, u.host_kind == AJ_HOST_IPV6 ? "[" : "", u.host,
				     u.host_kind == AJ_HOST_IPV6 ? "]" : "", u.port, u.path,
				     u.has_query ? "?" : "", u.query);
	else
		n = (size_t)snprintf(u.normalised, sizeof(u.normalised), "%s://%s%s%s%s%s%s",
				     u.scheme, u.host_kind == AJ_HOST_IPV6 ? "[" : "", u.host,
				     u.host_kind == AJ_HOST_IPV6 ? "]" : "", u.path,
				     u.has_query ? "?" : "", u.query);
	if (n >= sizeof(u.normalised))
		return aj_err(err, errlen, -EINVAL, "normalised URL longer than %d bytes",
			      AJ_URL_MAX - 1);
	memcpy(out, &u, sizeof(u));
	return 0;
}
