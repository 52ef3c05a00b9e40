/*
 * What a request's head means (see proxy-head.h).  The authority, wherever
 * it is spelled (a CONNECT target, an absolute URL, a Host field, the
 * connection's origin), goes through the one URL normaliser (common/url.c),
 * so that the proxy compares, and the rules later match, one spelling.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "proxy-head.h"
#include "url.h"

static bool
is_named(const struct aj_proxy_field *f, const char *name)
{
	return f->name_len == strlen(name) && strncasecmp(f->name, name, f->name_len) == 0;
}

static bool
value_is(const struct aj_proxy_field *f, const char *value)
{
	return f->value_len == strlen(value) && memcmp(f->value, value, f->value_len) == 0;
}

enum aj_proxy_request_error
aj_proxy_head_check_fields(const struct aj_proxy_field *fields, size_t n,
			   struct aj_proxy_head_fields *out, char *err, size_t errlen)
{
	struct aj_proxy_head_fields found = {0};

	for (size_t i = 0; i < n; i++) {
		const struct aj_proxy_field *f = &fields[i];

		if (is_named(f, "Host")) {
			if (found.host != NULL)
				return aj_err(err, errlen, AJ_PROXY_REQUEST_E_HOST_TWICE,
					      "two Host fields");
			found.host = f;
		} else if (is_named(f, "Content-Length")) {
			if (found.length != NULL)
				return aj_err(err, errlen, AJ_PROXY_REQUEST_E_LENGTH_TWICE,
					      "two Content-Length fields");
			if (found.coding != NULL)
				return aj_err(err, errlen, AJ_PROXY_REQUEST_E_LENGTH_AND_CODING,
					      "Content-Length with Transfer-Encoding");
			found.length = f;
		} else if (is_named(f, "Transfer-Encoding")) {
			if (found.length != NULL)
				return aj_err(err, errlen, AJ_PROXY_REQUEST_E_LENGTH_AND_CODING,
					      "Content-Length with Transfer-Encoding");
			/* Two fields make a list: "chunked, chunked". */
			if (found.coding != NULL)
				return aj_err(err, errlen, AJ_PROXY_REQUEST_E_CODING,
					      "two Transfer-Encoding fields");
			found.coding = f;
			/* Every client sends it so; "Chunked", "chunked,"
			 * and "gzip, chunked" are where readers part. */
			if (f->value != NULL && !value_is(f, "chunked"))
				return aj_err(err, errlen, AJ_PROXY_REQUEST_E_CODING,
					      "a Transfer-Encoding other than \"chunked\"");
		} else if (is_named(f, "Expect")) {
			if (f->value != NULL &&
			    (f->value_len != 12 || strncasecmp(f->value, "100-continue", 12) != 0))
				return aj_err(err, errlen, AJ_PROXY_REQUEST_E_EXPECT,
					      "an Expect other than 100-continue");
			found.expect_continue = true;
		} else if (is_named(f, "Upgrade") && found.upgrade == NULL) {
			found.upgrade = f;
		}
	}
	*out = found;
	return AJ_PROXY_REQUEST_OK;
}

enum aj_proxy_request_error
aj_proxy_head_read_framing(struct aj_proxy_head *h, const struct aj_proxy_head_fields *f,
			   bool tunnel, uint64_t length, char *err, size_t errlen)
{
	/* RFC 9112 6.1: faulty framing, whatever the length says. */
	if (f->coding != NULL && h->version == 10)
		return aj_err(err, errlen, AJ_PROXY_REQUEST_E_CODING,
			      "Transfer-Encoding in HTTP/1.0");
	/* What follows the head is the tunnel's: a body would be tunnel
	 * bytes to one side and content to the other. */
	if (tunnel && (f->coding != NULL || (f->length != NULL && length > 0)))
		return aj_err(err, errlen, AJ_PROXY_REQUEST_E_TUNNEL_BODY,
			      "a CONNECT or Upgrade request with a body");
	h->chunked = f->coding != NULL;
	h->content_length = f->length != NULL ? length : 0;
	/* RFC 9110 10.1.1: an HTTP/1.0 client does not wait for a 100. */
	h->expect_continue = f->expect_continue && h->version == 11;
	if (f->upgrade != NULL) {
		h->upgrade = f->upgrade->value;
		h->upgrade_len = f->upgrade->value_len;
	}
	return AJ_PROXY_REQUEST_OK;
}

static bool
same_authority(const struct aj_proxy_authority *a, const struct aj_proxy_authority *b)
{
	return strcmp(a->host, b->host) == 0 && a->port == b->port;
}

/* "CONNECT host:port" (RFC 9110 9.3.6): the port is not optional. */
static enum aj_proxy_request_error
read_authority_form(struct aj_proxy_head *h, const struct aj_proxy_binding *b, const char *s,
		    size_t len, char *err, size_t errlen)
{
	struct aj_proxy_authority *a = &h->authority;
	char why[160];

	if (b->bound)
		return aj_err(err, errlen, AJ_PROXY_REQUEST_E_TARGET, "CONNECT inside a tunnel");
	if (aj_url_parse_authority(s, len, 0, a->host, &a->kind, &a->port, why, sizeof(why)) < 0)
		return aj_err(err, errlen, AJ_PROXY_REQUEST_E_TARGET, "CONNECT target: %s", why);
	if (a->port == 0)
		return aj_err(err, errlen, AJ_PROXY_REQUEST_E_TARGET,
			      "CONNECT target without a port");
	h->form = AJ_PROXY_TARGET_AUTHORITY;
	return AJ_PROXY_REQUEST_OK;
}

/* The URL S (NUL-terminated), normalised, and its authority. */
static enum aj_proxy_request_error
normalise_url(struct aj_proxy_head *h, const char *s, char *err, size_t errlen)
{
	char why[160];

	if (aj_url_normalise(s, &h->url, why, sizeof(why)) < 0)
		return aj_err(err, errlen, AJ_PROXY_REQUEST_E_TARGET, "request target: %s", why);
	memcpy(h->authority.host, h->url.host, sizeof(h->authority.host));
	h->authority.kind = h->url.host_kind;
	h->authority.port = h->url.port;
	return AJ_PROXY_REQUEST_OK;
}

/* "GET /path": the connection's origin, which the proxy port has none of
 * (it would be a request for the proxy itself). */
static enum aj_proxy_request_error
read_origin_form(struct aj_proxy_head *h, const struct aj_proxy_binding *b, const char *s,
		 size_t len, char *err, size_t errlen)
{
	const struct aj_proxy_authority *o = &b->origin;
	bool v6 = o->kind == AJ_HOST_IPV6;
	char url[AJ_URL_MAX + 300];
	int n;

	if (!b->bound)
		return aj_err(err, errlen, AJ_PROXY_REQUEST_E_TARGET,
			      "a path without a host on the proxy port (send an absolute URL)");
	n = snprintf(url, sizeof(url), "%s://%s%s%s:%u%.*s", b->scheme, v6 ? "[" : "", o->host,
		     v6 ? "]" : "", o->port, (int)len, s);
	if (n < 0 || (size_t)n >= sizeof(url))
		return aj_err(err, errlen, AJ_PROXY_REQUEST_E_TARGET, "request target too long");
	h->form = AJ_PROXY_TARGET_ORIGIN;
	return normalise_url(h, url, err, errlen);
}

/* "GET http://host/path": on a bound connection, only for its origin. */
static enum aj_proxy_request_error
read_absolute_form(struct aj_proxy_head *h, const struct aj_proxy_binding *b, const char *s,
		   size_t len, char *err, size_t errlen)
{
	char url[AJ_URL_MAX];
	enum aj_proxy_request_error e;

	if (len >= sizeof(url))
		return aj_err(err, errlen, AJ_PROXY_REQUEST_E_TARGET, "request target too long");
	memcpy(url, s, len);
	url[len] = '\0';
	e = normalise_url(h, url, err, errlen);
	if (e != AJ_PROXY_REQUEST_OK)
		return e;
	if (b->bound &&
	    (strcmp(h->url.scheme, b->scheme) != 0 || !same_authority(&h->authority, &b->origin)))
		return aj_err(err, errlen, AJ_PROXY_REQUEST_E_MISDIRECTED,
			      "a request for another origin than the connection's");
	h->form = AJ_PROXY_TARGET_ABSOLUTE;
	return AJ_PROXY_REQUEST_OK;
}

/* The Host field names the target's authority, spelled by the same
 * normaliser, or the request is refused: the rules would see one host and
 * a server upstream could serve another. */
static enum aj_proxy_request_error
check_host(const struct aj_proxy_head *h, const struct aj_proxy_field *f, char *err, size_t errlen)
{
	struct aj_proxy_authority a;
	unsigned default_port;
	char why[160];

	if (f == NULL) {
		/* HTTP/1.0 predates Host: the connection's origin it is. */
		if (h->form == AJ_PROXY_TARGET_ORIGIN && h->version == 11)
			return aj_err(err, errlen, AJ_PROXY_REQUEST_E_HOST_MISSING,
				      "no Host field");
		return AJ_PROXY_REQUEST_OK;
	}
	/* Without a port, a CONNECT's Host can only mean the port asked for. */
	default_port = h->form == AJ_PROXY_TARGET_AUTHORITY
			       ? h->authority.port
			       : aj_url_scheme_port(h->url.scheme, strlen(h->url.scheme), NULL);
	if (aj_url_parse_authority(f->value, f->value_len, default_port, a.host, &a.kind, &a.port,
				   why, sizeof(why)) < 0)
		return aj_err(err, errlen, AJ_PROXY_REQUEST_E_HOST_INVALID, "Host: %s", why);
	if (same_authority(&a, &h->authority))
		return AJ_PROXY_REQUEST_OK;
	if (h->form == AJ_PROXY_TARGET_ORIGIN)
		return aj_err(err, errlen, AJ_PROXY_REQUEST_E_MISDIRECTED,
			      "the Host field names another origin than the connection's");
	return aj_err(err, errlen, AJ_PROXY_REQUEST_E_HOST_MISMATCH,
		      "the Host field names another host or port than the request target");
}

enum aj_proxy_request_error
aj_proxy_head_read_target(struct aj_proxy_head *h, const struct aj_proxy_binding *b, bool connect,
			  const char *target, size_t len, const struct aj_proxy_field *host,
			  char *err, size_t errlen)
{
	enum aj_proxy_request_error e;

	if (len == 0)
		return aj_err(err, errlen, AJ_PROXY_REQUEST_E_TARGET, "no request target");
	/* A fragment never belongs in a request (RFC 9112 3.2); the URL
	 * normaliser would drop it, a server might not. */
	if (memchr(target, '#', len) != NULL)
		e = aj_err(err, errlen, AJ_PROXY_REQUEST_E_TARGET, "a '#' in the request target");
	else if (connect)
		e = read_authority_form(h, b, target, len, err, errlen);
	else if (target[0] == '/')
		e = read_origin_form(h, b, target, len, err, errlen);
	else if (target[0] == '*')
		e = aj_err(err, errlen, AJ_PROXY_REQUEST_E_TARGET, "asterisk-form (OPTIONS *)");
	else
		e = read_absolute_form(h, b, target, len, err, errlen);
	if (e != AJ_PROXY_REQUEST_OK)
		return e;
	return check_host(h, host, err, errlen);
}
