/*
 * The proxy's request reader (broker/proxy-request.c): each target form,
 * keep-alive and pipelining, both body framings fed in every split, and
 * each smuggling or confusion case refused with its own error.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy-request.h"

#define MAX_REQUESTS 4

struct seen_head {
	bool tunnel;
	char method[16];
	enum aj_proxy_target form;
	char url[256];
	char host[256];
	unsigned port;
	unsigned version;
	bool keep_alive, expect_continue, chunked;
	uint64_t content_length;
	size_t n_fields;
	char upgrade[32];
};

/* Everything a reader said about one stream. */
struct transcript {
	struct seen_head heads[MAX_REQUESTS];
	size_t n_heads;
	char body[MAX_REQUESTS][256];
	size_t body_len[MAX_REQUESTS];
	size_t ends[MAX_REQUESTS]; /* stream offsets */
	size_t n_ends;
	size_t used;
	enum aj_proxy_request_event last; /* MORE, DONE or ERROR */
	enum aj_proxy_request_error error;
};

/* The origin of a TLS tunnel to example.org, and of a captured port-80
 * connection to it. */
static const struct aj_proxy_authority tls_origin = {"example.org", AJ_HOST_NAME, 443};
static const struct aj_proxy_authority plain_origin = {"example.org", AJ_HOST_NAME, 80};

static void
copy(char *dst, size_t dstlen, const char *s, size_t len)
{
	if (len >= dstlen)
		len = dstlen - 1;
	memcpy(dst, s, len);
	dst[len] = '\0';
}

static void
record_head(const struct aj_proxy_request *p, bool tunnel, struct transcript *t)
{
	const struct aj_proxy_head *h = aj_proxy_request_head(p);
	struct seen_head *s;

	cr_assert_lt(t->n_heads, MAX_REQUESTS);
	s = &t->heads[t->n_heads++];
	s->tunnel = tunnel;
	copy(s->method, sizeof(s->method), h->method, strlen(h->method));
	s->form = h->form;
	copy(s->url, sizeof(s->url), h->url.normalised, strlen(h->url.normalised));
	copy(s->host, sizeof(s->host), h->authority.host, strlen(h->authority.host));
	s->port = h->authority.port;
	s->version = h->version;
	s->keep_alive = h->keep_alive;
	s->expect_continue = h->expect_continue;
	s->chunked = h->chunked;
	s->content_length = h->content_length;
	s->n_fields = h->n_fields;
	if (h->upgrade != NULL)
		copy(s->upgrade, sizeof(s->upgrade), h->upgrade, h->upgrade_len);
}

/* Read IN[0..LEN) at POS of the stream until the reader wants more. */
static bool
read_piece(struct aj_proxy_request *p, const char *in, size_t len, struct transcript *t)
{
	size_t off = 0;

	for (;;) {
		struct aj_proxy_request_step step;
		enum aj_proxy_request_event ev =
			aj_proxy_request_read(p, in + off, len - off, &step);

		cr_assert_leq(step.used, len - off);
		off += step.used;
		t->used += step.used;
		switch (ev) {
		case AJ_PROXY_REQUEST_HEAD:
		case AJ_PROXY_REQUEST_TUNNEL:
			record_head(p, ev == AJ_PROXY_REQUEST_TUNNEL, t);
			break;
		case AJ_PROXY_REQUEST_BODY: {
			size_t r = t->n_heads - 1;

			cr_assert(step.body >= in && step.body + step.body_len <= in + len);
			cr_assert_leq(t->body_len[r] + step.body_len, sizeof(t->body[r]));
			memcpy(t->body[r] + t->body_len[r], step.body, step.body_len);
			t->body_len[r] += step.body_len;
			break;
		}
		case AJ_PROXY_REQUEST_END:
			cr_assert_lt(t->n_ends, MAX_REQUESTS);
			t->ends[t->n_ends++] = t->used;
			break;
		case AJ_PROXY_REQUEST_MORE:
			cr_assert_eq(off, len, "MORE with input left");
			t->last = ev;
			return true;
		case AJ_PROXY_REQUEST_DONE:
		case AJ_PROXY_REQUEST_ERROR:
			t->last = ev;
			t->error = aj_proxy_request_error(p, NULL);
			return false;
		}
	}
}

/* Feed S[0..LEN) in pieces of PIECE bytes (0: at once) to a new reader
 * for ORIGIN (NULL: the proxy port; SCHEME goes with it). */
static struct transcript
feed(const char *scheme, const struct aj_proxy_authority *origin, const char *s, size_t len,
     size_t piece)
{
	struct transcript t;
	struct aj_proxy_request *p;

	memset(&t, 0, sizeof(t));
	cr_assert_eq(aj_proxy_request_new(scheme, origin, &p), 0);
	for (size_t off = 0; off < len;) {
		size_t n = piece == 0 || piece > len - off ? len - off : piece;

		if (!read_piece(p, s + off, n, &t))
			break;
		off += n;
	}
	if (len == 0)
		read_piece(p, s, 0, &t);
	aj_proxy_request_free(p);
	return t;
}

static struct transcript
proxy(const char *s)
{
	return feed(NULL, NULL, s, strlen(s), 0);
}

static void
same_transcript(const struct transcript *a, const struct transcript *b, const char *how)
{
	cr_assert_eq(a->n_heads, b->n_heads, "%s", how);
	cr_assert(memcmp(a->heads, b->heads, sizeof(a->heads)) == 0, "%s", how);
	cr_assert(memcmp(a->body_len, b->body_len, sizeof(a->body_len)) == 0, "%s", how);
	for (size_t i = 0; i < a->n_heads; i++)
		cr_assert(memcmp(a->body[i], b->body[i], a->body_len[i]) == 0, "%s", how);
	cr_assert_eq(a->n_ends, b->n_ends, "%s", how);
	cr_assert(memcmp(a->ends, b->ends, sizeof(a->ends)) == 0, "%s", how);
	cr_assert_eq(a->last, b->last, "%s", how);
	cr_assert_eq(a->error, b->error, "%s", how);
}

/* S read at once, a byte at a time and cut in two at every offset: one
 * transcript. */
static struct transcript
every_split(const char *scheme, const struct aj_proxy_authority *origin, const char *s)
{
	size_t len = strlen(s);
	struct transcript whole = feed(scheme, origin, s, len, 0);
	struct transcript bytes = feed(scheme, origin, s, len, 1);
	char how[32];

	same_transcript(&whole, &bytes, "one byte at a time");
	for (size_t cut = 1; cut < len; cut++) {
		struct transcript t;
		struct aj_proxy_request *p;

		memset(&t, 0, sizeof(t));
		cr_assert_eq(aj_proxy_request_new(scheme, origin, &p), 0);
		if (read_piece(p, s, cut, &t))
			read_piece(p, s + cut, len - cut, &t);
		aj_proxy_request_free(p);
		snprintf(how, sizeof(how), "cut at %zu", cut);
		same_transcript(&whole, &t, how);
	}
	return whole;
}

/* S is refused with ERROR, read at once and a byte at a time. */
static void
refused_as(const char *scheme, const struct aj_proxy_authority *origin, const char *s, size_t len,
	   enum aj_proxy_request_error error)
{
	struct transcript whole = feed(scheme, origin, s, len, 0);
	struct transcript bytes = feed(scheme, origin, s, len, 1);

	cr_assert_eq(whole.last, AJ_PROXY_REQUEST_ERROR, "not refused: %s", s);
	cr_assert_eq(whole.error, error, "%s: %s, not %s", s,
		     aj_proxy_request_error_name(whole.error), aj_proxy_request_error_name(error));
	cr_assert_eq(bytes.error, error, "byte at a time: %s", s);
}

static void
refused(const char *s, enum aj_proxy_request_error error)
{
	refused_as(NULL, NULL, s, strlen(s), error);
}

/* Each of BAD[0..N) refused with ERROR. */
static void
refused_each(const char *const *bad, size_t n, enum aj_proxy_request_error error)
{
	for (size_t i = 0; i < n; i++)
		refused(bad[i], error);
}

#define REFUSED_EACH(bad, error) refused_each(bad, sizeof(bad) / sizeof(bad[0]), error)

static void
refused_in_tunnel(const char *s, enum aj_proxy_request_error error)
{
	refused_as("https", &tls_origin, s, strlen(s), error);
}

/* ---- what is read ----------------------------------------------------------- */

Test(proxy_request, absolute_form)
{
	struct transcript t = proxy("GET http://Example.ORG:80/a/./b?x=%61 HTTP/1.1\r\n"
				    "Host: example.org\r\n"
				    "User-Agent: curl/7.88\r\n\r\n");

	cr_assert_eq(t.n_heads, 1);
	cr_assert_str_eq(t.heads[0].method, "GET");
	cr_assert_eq(t.heads[0].form, AJ_PROXY_TARGET_ABSOLUTE);
	cr_assert_str_eq(t.heads[0].url, "http://example.org/a/b?x=a");
	cr_assert_str_eq(t.heads[0].host, "example.org");
	cr_assert_eq(t.heads[0].port, 80);
	cr_assert_eq(t.heads[0].version, 11);
	cr_assert(t.heads[0].keep_alive);
	cr_assert_eq(t.heads[0].n_fields, 2);
	cr_assert_eq(t.n_ends, 1);
	cr_assert_eq(t.ends[0], t.used);
	cr_assert_eq(t.last, AJ_PROXY_REQUEST_MORE);
}

Test(proxy_request, fields_as_sent)
{
	static const char req[] = "GET http://example.org/ HTTP/1.1\r\n"
				  "Host: example.org\r\n"
				  "X-Blanks: \t a b \t\r\n"
				  "X-Empty:\r\n\r\n";
	struct aj_proxy_request *p;
	struct aj_proxy_request_step step;
	const struct aj_proxy_head *h;

	cr_assert_eq(aj_proxy_request_new(NULL, NULL, &p), 0);
	cr_assert_eq(aj_proxy_request_read(p, req, strlen(req), &step), AJ_PROXY_REQUEST_HEAD);
	h = aj_proxy_request_head(p);
	cr_assert_eq(h->n_fields, 3);
	cr_assert_eq(h->fields[1].name_len, 8);
	cr_assert(memcmp(h->fields[1].name, "X-Blanks", 8) == 0);
	cr_assert_eq(h->fields[1].value_len, 3);
	cr_assert(memcmp(h->fields[1].value, "a b", 3) == 0);
	cr_assert_eq(h->fields[2].value_len, 0);
	cr_assert_not_null(h->fields[2].value);
	cr_assert_eq(aj_proxy_request_read(p, req + step.used, 0, &step), AJ_PROXY_REQUEST_END);
	aj_proxy_request_free(p);
}

Test(proxy_request, absolute_form_without_host_and_https)
{
	struct transcript t = proxy("GET https://example.org:8443/x HTTP/1.1\r\n\r\n");

	cr_assert_eq(t.n_heads, 1);
	cr_assert_str_eq(t.heads[0].url, "https://example.org:8443/x");
	cr_assert_eq(t.heads[0].port, 8443);
}

Test(proxy_request, host_compared_normalised)
{
	struct transcript t =
		proxy("GET http://example.org/ HTTP/1.1\r\nHost: EXAMPLE.org.:80\r\n\r\n");

	cr_assert_eq(t.n_heads, 1);
	t = proxy("GET http://[::1]:8080/ HTTP/1.1\r\nHost: [0:0::1]:8080\r\n\r\n");
	cr_assert_eq(t.n_heads, 1);
	cr_assert_str_eq(t.heads[0].host, "::1");
}

Test(proxy_request, connect_is_a_tunnel)
{
	static const char req[] = "CONNECT Example.org:443 HTTP/1.1\r\n"
				  "Host: example.org:443\r\n\r\n"
				  "\x16\x03\x01 the tunnel's bytes";
	struct transcript t = proxy(req);

	cr_assert_eq(t.n_heads, 1);
	cr_assert(t.heads[0].tunnel);
	cr_assert_str_eq(t.heads[0].method, "CONNECT");
	cr_assert_eq(t.heads[0].form, AJ_PROXY_TARGET_AUTHORITY);
	cr_assert_str_eq(t.heads[0].host, "example.org");
	cr_assert_eq(t.heads[0].port, 443);
	cr_assert_str_eq(t.heads[0].url, "");
	/* Not a byte of the tunnel is taken. */
	cr_assert_eq(t.used, strlen(req) - strlen("\x16\x03\x01 the tunnel's bytes"));
	cr_assert_eq(t.last, AJ_PROXY_REQUEST_DONE);
	cr_assert_eq(t.n_ends, 0);
}

Test(proxy_request, connect_forms)
{
	/* A Host without a port means the port asked for. */
	struct transcript t =
		proxy("CONNECT example.org:8443 HTTP/1.1\r\nHost: example.org\r\n\r\n");

	cr_assert_eq(t.heads[0].port, 8443);
	t = proxy("CONNECT [2001:db8::1]:443 HTTP/1.1\r\nHost: [2001:db8::1]:443\r\n\r\n");
	cr_assert_str_eq(t.heads[0].host, "2001:db8::1");
	t = proxy("CONNECT 192.0.2.1:443 HTTP/1.1\r\n\r\n");
	cr_assert_str_eq(t.heads[0].host, "192.0.2.1");
	/* Content-Length: 0 is no body. */
	t = proxy("CONNECT example.org:443 HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
	cr_assert(t.heads[0].tunnel);
}

Test(proxy_request, origin_form_in_a_tunnel)
{
	static const char req[] = "GET /path?q=1 HTTP/1.1\r\nHost: example.org\r\n\r\n";
	struct transcript t = feed("https", &tls_origin, req, strlen(req), 0);

	cr_assert_eq(t.n_heads, 1);
	cr_assert_eq(t.heads[0].form, AJ_PROXY_TARGET_ORIGIN);
	cr_assert_str_eq(t.heads[0].url, "https://example.org/path?q=1");
	cr_assert_eq(t.heads[0].port, 443);

	/* The port spelled out, and the absolute form of the same origin. */
	static const char port[] =
		"GET / HTTP/1.1\r\nHost: example.org:443\r\n\r\n"
		"GET https://example.org/abs HTTP/1.1\r\nHost: example.org\r\n\r\n";
	t = feed("https", &tls_origin, port, strlen(port), 0);
	cr_assert_eq(t.n_heads, 2);
	cr_assert_str_eq(t.heads[1].url, "https://example.org/abs");
}

Test(proxy_request, origin_form_captured_port_80)
{
	static const char req[] = "GET /index.html HTTP/1.1\r\nHost: Example.org\r\n\r\n";
	struct transcript t = feed("http", &plain_origin, req, strlen(req), 0);

	cr_assert_str_eq(t.heads[0].url, "http://example.org/index.html");
	cr_assert_eq(t.heads[0].port, 80);
}

Test(proxy_request, http10_origin_form_without_host)
{
	static const char req[] = "GET /old HTTP/1.0\r\n\r\n";
	struct transcript t = feed("http", &plain_origin, req, strlen(req), 0);

	cr_assert_eq(t.heads[0].version, 10);
	cr_assert_str_eq(t.heads[0].url, "http://example.org/old");
	/* No keep-alive asked for: the connection ends with it. */
	cr_assert(!t.heads[0].keep_alive);
	cr_assert_eq(t.n_ends, 1);
	cr_assert_eq(t.last, AJ_PROXY_REQUEST_DONE);
}

Test(proxy_request, pipelined_requests_end_where_they_end)
{
	static const char r1[] = "GET http://example.org/1 HTTP/1.1\r\nHost: example.org\r\n\r\n";
	static const char r2[] = "POST http://example.org/2 HTTP/1.1\r\nHost: example.org\r\n"
				 "Content-Length: 5\r\n\r\nhello";
	static const char r3[] = "\r\nHEAD http://example.org/3 HTTP/1.1\r\nHost: example.org\r\n"
				 "Connection: close\r\n\r\n";
	static const char r4[] = "GET http://example.org/never HTTP/1.1\r\n\r\n";
	char all[512];
	struct transcript t;

	snprintf(all, sizeof(all), "%s%s%s%s", r1, r2, r3, r4);
	t = every_split(NULL, NULL, all);
	cr_assert_eq(t.n_heads, 3);
	cr_assert_str_eq(t.heads[0].url, "http://example.org/1");
	cr_assert_str_eq(t.heads[1].method, "POST");
	cr_assert_eq(t.heads[1].content_length, 5);
	cr_assert_eq(t.body_len[0], 0);
	cr_assert_eq(t.body_len[1], 5);
	cr_assert(memcmp(t.body[1], "hello", 5) == 0);
	cr_assert_str_eq(t.heads[2].method, "HEAD");
	cr_assert(!t.heads[2].keep_alive);
	cr_assert_eq(t.n_ends, 3);
	cr_assert_eq(t.ends[0], strlen(r1));
	cr_assert_eq(t.ends[1], strlen(r1) + strlen(r2));
	cr_assert_eq(t.ends[2], strlen(r1) + strlen(r2) + strlen(r3));
	/* After Connection: close, the rest is not read. */
	cr_assert_eq(t.used, t.ends[2]);
	cr_assert_eq(t.last, AJ_PROXY_REQUEST_DONE);
}

Test(proxy_request, http10_keep_alive)
{
	struct transcript t =
		proxy("GET http://example.org/a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
		      "GET http://example.org/b HTTP/1.0\r\n\r\n");

	cr_assert_eq(t.n_heads, 2);
	cr_assert(t.heads[0].keep_alive);
	cr_assert_eq(t.last, AJ_PROXY_REQUEST_DONE);
}

Test(proxy_request, content_length_body_in_every_split)
{
	struct transcript t =
		every_split(NULL, NULL,
			    "PUT http://example.org/f HTTP/1.1\r\nHost: example.org\r\n"
			    "Content-Length: 11\r\n\r\nhello world"
			    "GET http://example.org/g HTTP/1.1\r\n\r\n");

	cr_assert_eq(t.n_heads, 2);
	cr_assert_eq(t.body_len[0], 11);
	cr_assert(memcmp(t.body[0], "hello world", 11) == 0);
	cr_assert_eq(t.n_ends, 2);
}

Test(proxy_request, chunked_with_extensions_and_trailers_in_every_split)
{
	static const char head[] = "POST http://example.org/up HTTP/1.1\r\nHost: example.org\r\n"
				   "Transfer-Encoding: chunked\r\n\r\n";
	static const char body[] = "5;name=value;q=\"a;\\\"b\"\r\nhello\r\n"
				   "6 ; tab\t=\tx\r\n world\r\n"
				   "00a\r\n, chunked!\r\n"
				   "0;last\r\nX-Checksum: abc\r\nX-Other: d\r\n\r\n";
	static const char next[] = "GET http://example.org/next HTTP/1.1\r\n\r\n";
	char all[512];
	struct transcript t;

	snprintf(all, sizeof(all), "%s%s%s", head, body, next);
	t = every_split(NULL, NULL, all);
	cr_assert_eq(t.n_heads, 2);
	cr_assert(t.heads[0].chunked);
	cr_assert_eq(t.heads[0].content_length, 0);
	cr_assert_eq(t.body_len[0], 21);
	cr_assert(memcmp(t.body[0], "hello world, chunked!", 21) == 0);
	cr_assert_eq(t.ends[0], strlen(head) + strlen(body));
	cr_assert_eq(t.ends[1], strlen(all));
}

Test(proxy_request, chunked_without_trailers)
{
	struct transcript t = every_split(NULL, NULL,
					  "POST http://example.org/ HTTP/1.1\r\n"
					  "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n");

	cr_assert_eq(t.n_ends, 1);
	cr_assert_eq(t.body_len[0], 0);
}

Test(proxy_request, expect_continue)
{
	struct transcript t = proxy("PUT http://example.org/f HTTP/1.1\r\nExpect: 100-Continue\r\n"
				    "Content-Length: 1\r\n\r\nx");

	cr_assert(t.heads[0].expect_continue);
	/* RFC 9110 10.1.1: ignored from an HTTP/1.0 client. */
	t = proxy("PUT http://example.org/f HTTP/1.0\r\nExpect: 100-continue\r\n"
		  "Content-Length: 1\r\n\r\nx");
	cr_assert(!t.heads[0].expect_continue);
	refused("PUT http://example.org/f HTTP/1.1\r\nExpect: 200-ok\r\n\r\n",
		AJ_PROXY_REQUEST_E_EXPECT);
}

Test(proxy_request, upgrade_is_reported_not_parsed)
{
	static const char req[] = "GET http://example.org/ws HTTP/1.1\r\nHost: example.org\r\n"
				  "Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
				  "\x81\x05hello";
	struct transcript t = proxy(req);

	cr_assert_eq(t.n_heads, 1);
	cr_assert(t.heads[0].tunnel);
	cr_assert_str_eq(t.heads[0].upgrade, "websocket");
	cr_assert_eq(t.used, strlen(req) - 7);
	cr_assert_eq(t.last, AJ_PROXY_REQUEST_DONE);
	/* Without "Connection: upgrade" too: some server may still switch. */
	t = proxy("GET http://example.org/ HTTP/1.1\r\nUpgrade: h2c\r\n\r\n");
	cr_assert(t.heads[0].tunnel);
	cr_assert_str_eq(t.heads[0].upgrade, "h2c");
}

Test(proxy_request, empty_lines_before_a_request)
{
	struct transcript t = proxy("\r\n\r\nGET http://example.org/ HTTP/1.1\r\n\r\n");

	cr_assert_eq(t.n_heads, 1);
}

Test(proxy_request, idle_only_between_requests)
{
	static const char req[] =
		"POST http://example.org/ HTTP/1.1\r\nContent-Length: 2\r\n\r\nab";
	struct aj_proxy_request *p;
	struct aj_proxy_request_step step;
	size_t head = strlen(req) - 2;

	cr_assert_eq(aj_proxy_request_new(NULL, NULL, &p), 0);
	cr_assert(aj_proxy_request_is_idle(p));
	cr_assert_eq(aj_proxy_request_read(p, req, 4, &step), AJ_PROXY_REQUEST_MORE);
	cr_assert(!aj_proxy_request_is_idle(p));
	cr_assert_eq(aj_proxy_request_read(p, req + 4, head - 4, &step), AJ_PROXY_REQUEST_HEAD);
	cr_assert_eq(aj_proxy_request_read(p, req + head, 1, &step), AJ_PROXY_REQUEST_BODY);
	cr_assert(!aj_proxy_request_is_idle(p));
	cr_assert_eq(aj_proxy_request_read(p, req + head + 1, 1, &step), AJ_PROXY_REQUEST_BODY);
	cr_assert_eq(aj_proxy_request_read(p, req, 0, &step), AJ_PROXY_REQUEST_END);
	cr_assert(aj_proxy_request_is_idle(p));
	cr_assert_eq(aj_proxy_request_read(p, req, 0, &step), AJ_PROXY_REQUEST_MORE);
	aj_proxy_request_free(p);
}

Test(proxy_request, new_checks_its_origin)
{
	struct aj_proxy_request *p = NULL;

	cr_assert_eq(aj_proxy_request_new("ftp", &tls_origin, &p), -EINVAL);
	cr_assert_eq(aj_proxy_request_new("https", NULL, &p), -EINVAL);
	cr_assert_eq(aj_proxy_request_new(NULL, &tls_origin, &p), -EINVAL);
	cr_assert_eq(aj_proxy_request_new("HTTPS", &tls_origin, &p), 0);
	aj_proxy_request_free(p);
	aj_proxy_request_free(NULL);
}

/* ---- what is refused -------------------------------------------------------- */

Test(proxy_request, length_with_transfer_encoding)
{
	refused("POST http://example.org/ HTTP/1.1\r\nContent-Length: 3\r\n"
		"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		AJ_PROXY_REQUEST_E_LENGTH_AND_CODING);
	refused("POST http://example.org/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
		"Content-Length: 3\r\n\r\n0\r\n\r\n",
		AJ_PROXY_REQUEST_E_LENGTH_AND_CODING);
}

Test(proxy_request, two_content_lengths)
{
	refused("POST http://example.org/ HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n"
		"\r\nabc",
		AJ_PROXY_REQUEST_E_LENGTH_TWICE);
	refused("POST http://example.org/ HTTP/1.1\r\nContent-Length: 3\r\ncontent-length: 4\r\n"
		"\r\nabcd",
		AJ_PROXY_REQUEST_E_LENGTH_TWICE);
}

Test(proxy_request, malformed_content_length)
{
	static const char *const bad[] = {"abc", "-1", "+1", "1 2", "1,1", "0x10", ""};
	char req[128];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(req, sizeof(req),
			 "POST http://example.org/ HTTP/1.1\r\nContent-Length: %s\r\n\r\n", bad[i]);
		refused(req, AJ_PROXY_REQUEST_E_LENGTH);
	}
}

Test(proxy_request, transfer_encoding_other_than_chunked)
{
	static const char *const bad[] = {
		"Transfer-Encoding: gzip, chunked\r\n",
		"Transfer-Encoding: gzip\r\n",
		"Transfer-Encoding: identity\r\n",
		"Transfer-Encoding: Chunked\r\n",
		"Transfer-Encoding: chunked, chunked\r\n",
		"Transfer-Encoding: chunked,\r\n",
		"Transfer-Encoding:\r\n",
		"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
		"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",
	};
	char req[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(req, sizeof(req), "POST http://example.org/ HTTP/1.1\r\n%s\r\n0\r\n\r\n",
			 bad[i]);
		refused(req, AJ_PROXY_REQUEST_E_CODING);
	}
	refused("POST http://example.org/ HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		AJ_PROXY_REQUEST_E_CODING);
}

Test(proxy_request, bare_lf)
{
	static const char *const bad[] = {
		"GET http://example.org/ HTTP/1.1\n\r\n",
		"GET http://example.org/ HTTP/1.1\r\nHost: example.org\n\r\n",
		"GET http://example.org/ HTTP/1.1\r\nHost: example.org\r\n\n",
		"\nGET http://example.org/ HTTP/1.1\r\n\r\n",
		"POST http://example.org/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n",
		"POST http://example.org/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\n",
		"POST http://example.org/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: "
		"y\n",
		"POST http://example.org/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\n",
	};

	REFUSED_EACH(bad, AJ_PROXY_REQUEST_E_BARE_LF);
}

Test(proxy_request, obs_fold)
{
	refused("GET http://example.org/ HTTP/1.1\r\nX-A: b\r\n c\r\n\r\n",
		AJ_PROXY_REQUEST_E_OBS_FOLD);
	refused("GET http://example.org/ HTTP/1.1\r\nX-A: b\r\n\tc\r\n\r\n",
		AJ_PROXY_REQUEST_E_OBS_FOLD);
	/* Whitespace between the request line and the first field. */
	refused("GET http://example.org/ HTTP/1.1\r\n Host: example.org\r\n\r\n",
		AJ_PROXY_REQUEST_E_OBS_FOLD);
	refused("POST http://example.org/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
		"0\r\nX: y\r\n z\r\n\r\n",
		AJ_PROXY_REQUEST_E_OBS_FOLD);
}

Test(proxy_request, control_characters_in_names_and_values)
{
	static const struct {
		const char *s;
		size_t len;
	} bad[] = {
#define BAD(lit) {lit, sizeof(lit) - 1}
		BAD("GET http://example.org/ HTTP/1.1\r\nX-A: a\0b\r\n\r\n"),
		BAD("GET http://example.org/ HTTP/1.1\r\nX\0A: b\r\n\r\n"),
		BAD("GET http://example.org/ HTTP/1.1\r\nX-A: a\rb\r\n\r\n"),
		BAD("GET http://example.org/ HTTP/1.1\r\nX\rA: b\r\n\r\n"),
		BAD("GET http://example.org/ HTTP/1.1\r\nX-A: a\x01z\r\n\r\n"),
		BAD("GET http://example.org/ HTTP/1.1\r\nX-A: a\x7fz\r\n\r\n"),
		BAD("GET http://example.org/\0 HTTP/1.1\r\n\r\n"),
		BAD("GET http://example.org/ HTTP/1.1\r\r\n\r\n"),
		BAD("POST http://example.org/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
		    "3;a=\"\0\"\r\nabc\r\n0\r\n\r\n"),
		BAD("POST http://example.org/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
		    "0\r\nX: \0\r\n\r\n"),
#undef BAD
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		refused_as(NULL, NULL, bad[i].s, bad[i].len, AJ_PROXY_REQUEST_E_CONTROL);
}

Test(proxy_request, malformed_field_lines)
{
	static const char *const bad[] = {
		"Ho st: example.org\r\n",
		"Host : example.org\r\n",
		": x\r\n",
		"NoColonHere\r\n",
		"X\"Y: z\r\n",
		"X(: z\r\n",
	};
	char req[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(req, sizeof(req), "GET http://example.org/ HTTP/1.1\r\n%s\r\n", bad[i]);
		refused(req, AJ_PROXY_REQUEST_E_FIELD);
	}
	refused("POST http://example.org/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
		"0\r\nBad Name: x\r\n\r\n",
		AJ_PROXY_REQUEST_E_FIELD);
}

Test(proxy_request, host_other_than_the_target)
{
	refused("GET http://example.org/ HTTP/1.1\r\nHost: evil.example\r\n\r\n",
		AJ_PROXY_REQUEST_E_HOST_MISMATCH);
	refused("GET http://example.org/ HTTP/1.1\r\nHost: example.org:8080\r\n\r\n",
		AJ_PROXY_REQUEST_E_HOST_MISMATCH);
	refused("GET https://example.org/ HTTP/1.1\r\nHost: example.org:80\r\n\r\n",
		AJ_PROXY_REQUEST_E_HOST_MISMATCH);
	refused("CONNECT example.org:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n",
		AJ_PROXY_REQUEST_E_HOST_MISMATCH);
	refused("CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:8443\r\n\r\n",
		AJ_PROXY_REQUEST_E_HOST_MISMATCH);
}

Test(proxy_request, host_the_normaliser_refuses)
{
	static const char *const bad[] = {
		"",     "user@example.org", "example.org:0", "example.org:x", "0x7f.1",
		"[::1", "exa mple.org",
	};
	char req[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(req, sizeof(req), "GET http://example.org/ HTTP/1.1\r\nHost: %s\r\n\r\n",
			 bad[i]);
		refused(req, AJ_PROXY_REQUEST_E_HOST_INVALID);
	}
}

Test(proxy_request, two_hosts)
{
	refused("GET http://example.org/ HTTP/1.1\r\nHost: example.org\r\nhost: "
		"example.org\r\n\r\n",
		AJ_PROXY_REQUEST_E_HOST_TWICE);
	refused("GET http://example.org/ HTTP/1.1\r\nHost: example.org\r\nHost: "
		"evil.example\r\n\r\n",
		AJ_PROXY_REQUEST_E_HOST_TWICE);
}

Test(proxy_request, origin_form_needs_host)
{
	refused_in_tunnel("GET / HTTP/1.1\r\nUser-Agent: x\r\n\r\n",
			  AJ_PROXY_REQUEST_E_HOST_MISSING);
}

Test(proxy_request, tunnel_requests_for_another_origin)
{
	static const char *const bad[] = {
		"GET / HTTP/1.1\r\nHost: evil.example\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: example.org:8443\r\n\r\n",
		"GET https://evil.example/ HTTP/1.1\r\nHost: evil.example\r\n\r\n",
		"GET http://example.org:443/ HTTP/1.1\r\nHost: example.org:443\r\n\r\n",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		refused_in_tunnel(bad[i], AJ_PROXY_REQUEST_E_MISDIRECTED);
	/* The absolute form and its Host disagree: a mismatch, as on the
	 * proxy port. */
	refused_in_tunnel("GET https://example.org/ HTTP/1.1\r\nHost: evil.example\r\n\r\n",
			  AJ_PROXY_REQUEST_E_HOST_MISMATCH);
}

Test(proxy_request, request_line_bounds)
{
	static const char pre[] = "GET http://example.org/", post[] = " HTTP/1.1\r\n";
	char *line = malloc(AJ_PROXY_REQUEST_LINE_MAX + 8);
	size_t fill = AJ_PROXY_REQUEST_LINE_MAX - strlen(pre) - strlen(post);
	struct transcript t;
	size_t len;

	/* Exactly the bound, CRLF included, then the empty line. */
	memcpy(line, pre, strlen(pre));
	memset(line + strlen(pre), 'a', fill);
	memcpy(line + strlen(pre) + fill, post, strlen(post));
	len = AJ_PROXY_REQUEST_LINE_MAX;
	memcpy(line + len, "\r\n", 2);
	t = feed(NULL, NULL, line, len + 2, 0);
	cr_assert_eq(t.n_heads, 1, "%s", aj_proxy_request_error_name(t.error));
	/* One byte more. */
	memmove(line + strlen(pre) + 1, line + strlen(pre), len + 2 - strlen(pre));
	refused_as(NULL, NULL, line, len + 3, AJ_PROXY_REQUEST_E_LINE_TOO_LONG);
	/* Refused before its end arrives. */
	refused_as(NULL, NULL, line, AJ_PROXY_REQUEST_LINE_MAX, AJ_PROXY_REQUEST_E_LINE_TOO_LONG);
	free(line);
}

Test(proxy_request, field_bounds)
{
	static const char line[] = "GET http://example.org/ HTTP/1.1\r\n";
	size_t cap = strlen(line) + AJ_PROXY_REQUEST_FIELDS_MAX + 8;
	char *req = malloc(cap);
	size_t fields = AJ_PROXY_REQUEST_FIELDS_MAX - 2, len;
	struct transcript t;

	/* One field filling the bound with the empty line. */
	len = (size_t)snprintf(req, cap, "%sX: ", line);
	memset(req + len, 'v', fields - 5);
	len += fields - 5;
	memcpy(req + len, "\r\n\r\n", 4);
	len += 4;
	cr_assert_eq(len, strlen(line) + AJ_PROXY_REQUEST_FIELDS_MAX);
	t = feed(NULL, NULL, req, len, 0);
	cr_assert_eq(t.n_heads, 1, "%s", aj_proxy_request_error_name(t.error));
	/* One byte more. */
	memmove(req + strlen(line) + 4, req + strlen(line) + 3, len - strlen(line) - 3);
	refused_as(NULL, NULL, req, len + 1, AJ_PROXY_REQUEST_E_FIELDS_TOO_LARGE);
	free(req);
}

Test(proxy_request, field_count_bound)
{
	char req[4096];
	size_t len = (size_t)snprintf(req, sizeof(req), "GET http://example.org/ HTTP/1.1\r\n");
	struct transcript t;

	for (int i = 0; i < AJ_PROXY_REQUEST_FIELD_COUNT_MAX; i++)
		len += (size_t)snprintf(req + len, sizeof(req) - len, "X-%d: v\r\n", i);
	memcpy(req + len, "\r\n", 3);
	t = feed(NULL, NULL, req, len + 2, 0);
	cr_assert_eq(t.n_heads, 1);
	cr_assert_eq(t.heads[0].n_fields, AJ_PROXY_REQUEST_FIELD_COUNT_MAX);
	snprintf(req + len, sizeof(req) - len, "X-last: v\r\n\r\n");
	refused(req, AJ_PROXY_REQUEST_E_FIELDS_TOO_LARGE);
}

Test(proxy_request, trailer_bounds)
{
	static const char head[] = "POST http://example.org/ HTTP/1.1\r\n"
				   "Transfer-Encoding: chunked\r\n\r\n0\r\n";
	char *req = malloc(64 * 1024);
	size_t len = (size_t)snprintf(req, 64 * 1024, "%s", head);

	/* A trailer line over its bound. */
	len += (size_t)snprintf(req + len, 64, "X: ");
	memset(req + len, 'v', AJ_PROXY_REQUEST_CHUNK_LINE_MAX);
	len += AJ_PROXY_REQUEST_CHUNK_LINE_MAX;
	memcpy(req + len, "\r\n\r\n", 5);
	refused(req, AJ_PROXY_REQUEST_E_FIELDS_TOO_LARGE);
	/* A trailer section over the fields' bound, in short lines. */
	len = strlen(head);
	while (len < strlen(head) + AJ_PROXY_REQUEST_FIELDS_MAX + 64)
		len += (size_t)snprintf(req + len, 1024, "X: %0490d\r\n", 0);
	memcpy(req + len, "\r\n", 3);
	refused(req, AJ_PROXY_REQUEST_E_FIELDS_TOO_LARGE);
	free(req);
}

Test(proxy_request, versions_other_than_1x)
{
	static const char *const bad[] = {
		"GET http://example.org/ HTTP/2.0\r\n\r\n",
		"GET http://example.org/ HTTP/1.2\r\n\r\n",
		"GET http://example.org/ HTTP/0.9\r\n\r\n",
		"GET http://example.org/ HTTP/01.1\r\n\r\n",
		"GET http://example.org/ http/1.1\r\n\r\n",
		"GET http://example.org/\r\n\r\n",
		"GET http://example.org/ HTTP/1.1x\r\n\r\n",
	};

	REFUSED_EACH(bad, AJ_PROXY_REQUEST_E_VERSION);
}

Test(proxy_request, malformed_request_lines)
{
	static const char *const bad[] = {
		"GET  http://example.org/ HTTP/1.1\r\n\r\n",
		"GET http://example.org/  HTTP/1.1\r\n\r\n",
		"GET http://example.org/ HTTP/1.1 \r\n\r\n",
		" GET http://example.org/ HTTP/1.1\r\n\r\n",
		"GET\thttp://example.org/ HTTP/1.1\r\n\r\n",
		"GET http://example.org/a b HTTP/1.1\r\n\r\n",
		"GET\r\n\r\n",
	};

	REFUSED_EACH(bad, AJ_PROXY_REQUEST_E_SYNTAX);
}

Test(proxy_request, unknown_methods)
{
	refused("FOO http://example.org/ HTTP/1.1\r\n\r\n", AJ_PROXY_REQUEST_E_METHOD);
	refused("get http://example.org/ HTTP/1.1\r\n\r\n", AJ_PROXY_REQUEST_E_METHOD);
	refused("GETS http://example.org/ HTTP/1.1\r\n\r\n", AJ_PROXY_REQUEST_E_METHOD);
}

Test(proxy_request, targets_refused)
{
	static const char *const bad[] = {
		"GET / HTTP/1.1\r\nHost: example.org\r\n\r\n",
		"GET http://user@example.org/ HTTP/1.1\r\n\r\n",
		"GET http://example.org/a#frag HTTP/1.1\r\n\r\n",
		"GET ftp://example.org/ HTTP/1.1\r\n\r\n",
		"GET http://example.org/a/../../b HTTP/1.1\r\n\r\n",
		"GET http://0x7f.1/ HTTP/1.1\r\n\r\n",
		"GET http://example.org/%2e%2e/x HTTP/1.1\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: example.org\r\n\r\n",
		"CONNECT example.org HTTP/1.1\r\n\r\n",
		"CONNECT example.org:443/x HTTP/1.1\r\n\r\n",
		"CONNECT user@example.org:443 HTTP/1.1\r\n\r\n",
		"GET http://example.org/\xff HTTP/1.1\r\n\r\n",
	};

	REFUSED_EACH(bad, AJ_PROXY_REQUEST_E_TARGET);
	refused_in_tunnel("CONNECT example.org:443 HTTP/1.1\r\n\r\n", AJ_PROXY_REQUEST_E_TARGET);
	refused_in_tunnel("GET //evil.example/ HTTP/1.1\r\nHost: example.org\r\n\r\n",
			  AJ_PROXY_REQUEST_E_TARGET);
}

Test(proxy_request, tunnels_carry_no_body)
{
	refused("CONNECT example.org:443 HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
		AJ_PROXY_REQUEST_E_TUNNEL_BODY);
	refused("CONNECT example.org:443 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		AJ_PROXY_REQUEST_E_TUNNEL_BODY);
	refused("POST http://example.org/ HTTP/1.1\r\nUpgrade: h2c\r\nContent-Length: 1\r\n\r\nx",
		AJ_PROXY_REQUEST_E_TUNNEL_BODY);
}

Test(proxy_request, malformed_chunks)
{
	static const char *const bad[] = {
		"5 \r\nhello\r\n0\r\n\r\n",      /* blank after the size */
		"5;\r\nhello\r\n0\r\n\r\n",      /* no extension name */
		"5;a=\r\nhello\r\n0\r\n\r\n",    /* no extension value */
		"5;a=\"b\r\nhello\r\n0\r\n\r\n", /* unterminated quoted-string */
		"5 x\r\nhello\r\n0\r\n\r\n",     /* junk after the size */
		"zz\r\n",
		";a\r\n",
		"-5\r\n",
		"5\r\nhelloXY0\r\n\r\n", /* data past the chunk's size */
		"5\r\nhello!\r\n0\r\n\r\n",
		"00000000000000005\r\nhello\r\n0\r\n\r\n", /* 17 digits */
		"ffffffffffffffff\r\n",                    /* more than anyone sends */
	};
	char req[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(
			req, sizeof(req),
			"POST http://example.org/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n%s",
			bad[i]);
		refused(req, AJ_PROXY_REQUEST_E_CHUNK);
	}
}

Test(proxy_request, chunk_line_bound)
{
	static const char head[] = "POST http://example.org/ HTTP/1.1\r\n"
				   "Transfer-Encoding: chunked\r\n\r\n5;x=";
	char *req = malloc(sizeof(head) + AJ_PROXY_REQUEST_CHUNK_LINE_MAX);

	memcpy(req, head, strlen(head));
	memset(req + strlen(head), 'v', AJ_PROXY_REQUEST_CHUNK_LINE_MAX);
	refused_as(NULL, NULL, req, strlen(head) + AJ_PROXY_REQUEST_CHUNK_LINE_MAX,
		   AJ_PROXY_REQUEST_E_CHUNK);
	free(req);
}

Test(proxy_request, nothing_after_an_error_or_a_tunnel)
{
	static const char bad[] = "GET http://example.org/ HTTP/1.1\n\r\n";
	struct aj_proxy_request *p;
	struct aj_proxy_request_step step;
	const char *msg;

	cr_assert_eq(aj_proxy_request_new(NULL, NULL, &p), 0);
	cr_assert_eq(aj_proxy_request_error(p, &msg), AJ_PROXY_REQUEST_OK);
	cr_assert_str_empty(msg);
	cr_assert_eq(aj_proxy_request_read(p, bad, strlen(bad), &step), AJ_PROXY_REQUEST_ERROR);
	cr_assert_eq(aj_proxy_request_error(p, &msg), AJ_PROXY_REQUEST_E_BARE_LF);
	cr_assert_str_not_empty(msg);
	cr_assert_eq(aj_proxy_request_read(p, "GET", 3, &step), AJ_PROXY_REQUEST_ERROR);
	cr_assert_eq(step.used, 0);
	aj_proxy_request_free(p);
}

Test(proxy_request, messages_escape_what_they_quote)
{
	static const char req[] = "GET http://example.org/ HTTP/1.1\r\nHost: ex\xff"
				  "ample.org\r\n\r\n";
	struct aj_proxy_request *p;
	struct aj_proxy_request_step step;
	const char *msg;

	cr_assert_eq(aj_proxy_request_new(NULL, NULL, &p), 0);
	cr_assert_eq(aj_proxy_request_read(p, req, strlen(req), &step), AJ_PROXY_REQUEST_ERROR);
	cr_assert_eq(aj_proxy_request_error(p, &msg), AJ_PROXY_REQUEST_E_HOST_INVALID);
	cr_assert_null(strchr(msg, '\xff'), "%s", msg);
	cr_assert_not_null(strstr(msg, "ex\\xffample.org"), "%s", msg);
	aj_proxy_request_free(p);
}

Test(proxy_request, statuses_and_names)
{
	cr_assert_eq(aj_proxy_request_error_status(AJ_PROXY_REQUEST_E_LINE_TOO_LONG), 414);
	cr_assert_eq(aj_proxy_request_error_status(AJ_PROXY_REQUEST_E_FIELDS_TOO_LARGE), 431);
	cr_assert_eq(aj_proxy_request_error_status(AJ_PROXY_REQUEST_E_VERSION), 505);
	cr_assert_eq(aj_proxy_request_error_status(AJ_PROXY_REQUEST_E_METHOD), 501);
	cr_assert_eq(aj_proxy_request_error_status(AJ_PROXY_REQUEST_E_CODING), 501);
	cr_assert_eq(aj_proxy_request_error_status(AJ_PROXY_REQUEST_E_EXPECT), 417);
	cr_assert_eq(aj_proxy_request_error_status(AJ_PROXY_REQUEST_E_MISDIRECTED), 421);
	cr_assert_eq(aj_proxy_request_error_status(AJ_PROXY_REQUEST_E_BARE_LF), 400);
	cr_assert_str_eq(aj_proxy_request_error_name(AJ_PROXY_REQUEST_E_BARE_LF), "bare_lf");
	/* Every error has a name of its own. */
	for (int a = AJ_PROXY_REQUEST_OK; a <= AJ_PROXY_REQUEST_E_EXPECT; a++)
		for (int b = a + 1; b <= AJ_PROXY_REQUEST_E_EXPECT; b++)
			cr_assert_str_neq(aj_proxy_request_error_name(a),
					  aj_proxy_request_error_name(b));
}
