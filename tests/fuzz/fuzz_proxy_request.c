/*
 * libFuzzer target for the proxy's request reader (broker/proxy-request.c).
 * The first byte picks the connection (the proxy port, a TLS tunnel to
 * example.org, a captured port-80 connection to it), the next two a cut;
 * the rest is the stream.  It is read at once, cut in two, and a byte at a
 * time: the three readings must say the same (heads, body bytes, where
 * each request ends, the error), and each must keep the framing: no body
 * byte beyond a Content-Length or outside the input, no head whose URL or
 * host the normaliser would spell otherwise, no field a header line could
 * not carry.
 */
#include "config.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "field.h"
#include "proxy-request.h"
#include "url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What a reading said, in a form that does not depend on where the input
 * was cut: body bytes are summed up per request. */
struct transcript {
	char text[16384];
	size_t len;
	bool overflow;
	uint64_t body_bytes;  /* of the current request */
	uint32_t body_hash;   /* FNV-1a of its body */
	size_t request_start; /* stream offset of its first byte */
	bool chunked;
	uint64_t content_length;
};

static void say(struct transcript *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
say(struct transcript *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (t->overflow)
		return;
	va_start(ap, fmt);
	n = vsnprintf(t->text + t->len, sizeof(t->text) - t->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(t->text) - t->len)
		t->overflow = true;
	else
		t->len += (size_t)n;
}

static void
check_field(const struct aj_proxy_field *f)
{
	if (!aj_field_is_token(f->name, f->name_len))
		abort();
	if (f->value == NULL || !aj_field_is_value(f->value, f->value_len))
		abort();
	if (f->value_len > 0 &&
	    (f->value[0] == ' ' || f->value[0] == '\t' || f->value[f->value_len - 1] == ' ' ||
	     f->value[f->value_len - 1] == '\t'))
		abort();
	if (memchr(f->value, '\r', f->value_len) != NULL ||
	    memchr(f->value, '\n', f->value_len) != NULL)
		abort();
}

/* What the head says is spelled as the normaliser spells it. */
static void
check_head(const struct aj_proxy_head *h, bool tunnel)
{
	struct aj_proxy_authority a;
	struct aj_url u;
	char err[256], host[260];

	if (h->version != 10 && h->version != 11)
		abort();
	if ((strcmp(h->method, "CONNECT") == 0) != (h->form == AJ_PROXY_TARGET_AUTHORITY))
		abort();
	if (h->form == AJ_PROXY_TARGET_AUTHORITY && !tunnel)
		abort();
	if (tunnel && (h->chunked || h->content_length > 0))
		abort();
	if (h->chunked && h->content_length != 0)
		abort();
	/* An IPv6 host is kept without its brackets. */
	snprintf(host, sizeof(host), h->authority.kind == AJ_HOST_IPV6 ? "[%s]" : "%s",
		 h->authority.host);
	if (aj_url_parse_authority(host, strlen(host), h->authority.port, a.host, &a.kind, &a.port,
				   err, sizeof(err)) < 0)
		abort();
	if (strcmp(a.host, h->authority.host) != 0 || a.kind != h->authority.kind)
		abort();
	if (h->form != AJ_PROXY_TARGET_AUTHORITY) {
		if (aj_url_normalise(h->url.normalised, &u, err, sizeof(err)) < 0)
			abort();
		if (strcmp(u.normalised, h->url.normalised) != 0)
			abort();
		if (strcmp(h->url.host, h->authority.host) != 0 || h->url.port != h->authority.port)
			abort();
	}
	if (h->n_fields > AJ_PROXY_REQUEST_FIELD_COUNT_MAX)
		abort();
	for (size_t i = 0; i < h->n_fields; i++)
		check_field(&h->fields[i]);
}

static void
say_head(struct transcript *t, const struct aj_proxy_head *h, bool tunnel)
{
	say(t, "%s %s %d %s %s:%u %u ka=%d ex=%d ch=%d cl=%llu up=%.*s n=%zu\n",
	    tunnel ? "TUNNEL" : "HEAD", h->method, (int)h->form, h->url.normalised,
	    h->authority.host, h->authority.port, h->version, h->keep_alive, h->expect_continue,
	    h->chunked, (unsigned long long)h->content_length, (int)h->upgrade_len,
	    h->upgrade != NULL ? h->upgrade : "", h->n_fields);
	for (size_t i = 0; i < h->n_fields; i++)
		say(t, " %.*s=%.*s\n", (int)h->fields[i].name_len, h->fields[i].name,
		    (int)h->fields[i].value_len, h->fields[i].value);
	t->body_bytes = 0;
	t->body_hash = 2166136261u;
	t->chunked = h->chunked;
	t->content_length = h->content_length;
}

static void
take_body(struct transcript *t, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		t->body_hash = (t->body_hash ^ (unsigned char)s[i]) * 16777619u;
	t->body_bytes += n;
	if (!t->chunked && t->body_bytes > t->content_length)
		abort();
}

/* Read IN[0..LEN), at offset POS of the stream.  False once the reader
 * reads no more. */
static bool
read_piece(struct aj_proxy_request *p, const char *in, size_t len, size_t *pos,
	   struct transcript *t)
{
	size_t off = 0;
	int idle_calls = 0;

	for (;;) {
		struct aj_proxy_request_step step;
		enum aj_proxy_request_event ev =
			aj_proxy_request_read(p, in + off, len - off, &step);
		const char *msg;
		enum aj_proxy_request_error e;

		if (step.used > len - off)
			abort();
		/* Every call takes input or says something new: at most
		 * HEAD, then END, without a byte in between. */
		idle_calls = step.used == 0 ? idle_calls + 1 : 0;
		if (idle_calls > 3)
			abort();
		off += step.used;
		*pos += step.used;
		switch (ev) {
		case AJ_PROXY_REQUEST_HEAD:
		case AJ_PROXY_REQUEST_TUNNEL:
			check_head(aj_proxy_request_head(p), ev == AJ_PROXY_REQUEST_TUNNEL);
			say_head(t, aj_proxy_request_head(p), ev == AJ_PROXY_REQUEST_TUNNEL);
			break;
		case AJ_PROXY_REQUEST_BODY:
			if (step.body_len == 0 || step.body < in ||
			    step.body + step.body_len != in + off)
				abort();
			take_body(t, step.body, step.body_len);
			/* The framing is never shorter than what it frames. */
			if (t->body_bytes > *pos - t->request_start)
				abort();
			break;
		case AJ_PROXY_REQUEST_END:
			if (!t->chunked && t->body_bytes != t->content_length)
				abort();
			say(t, "END %zu %llu %08x\n", *pos, (unsigned long long)t->body_bytes,
			    t->body_hash);
			t->request_start = *pos;
			break;
		case AJ_PROXY_REQUEST_MORE:
			if (off != len)
				abort();
			return true;
		case AJ_PROXY_REQUEST_DONE:
			if (step.used != 0 || !aj_proxy_request_is_idle(p))
				abort();
			say(t, "DONE %zu\n", *pos);
			return false;
		case AJ_PROXY_REQUEST_ERROR:
			e = aj_proxy_request_error(p, &msg);
			if (e == AJ_PROXY_REQUEST_OK || msg[0] == '\0' ||
			    aj_proxy_request_error_status(e) < 400 ||
			    aj_proxy_request_error_status(e) > 505)
				abort();
			for (const char *c = msg; *c != '\0'; c++)
				if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
					abort();
			say(t, "ERROR %s\n", aj_proxy_request_error_name(e));
			return false;
		default:
			abort();
		}
	}
}

/* Read S[0..LEN): its first CUT bytes, then pieces of PIECE bytes (0: the
 * rest at once).  WANT: what another reading said. */
static void
reading(const struct transcript *want, struct transcript *t, int mode, const char *s, size_t len,
	size_t cut, size_t piece)
{
	static const struct aj_proxy_authority tls = {"example.org", AJ_HOST_NAME, 443};
	static const struct aj_proxy_authority plain = {"example.org", AJ_HOST_NAME, 80};
	struct aj_proxy_request *p;
	size_t pos = 0, from = 0, to = cut;
	int rc;

	memset(t, 0, sizeof(*t));
	if (mode == 1)
		rc = aj_proxy_request_new("https", &tls, &p);
	else if (mode == 2)
		rc = aj_proxy_request_new("http", &plain, &p);
	else
		rc = aj_proxy_request_new(NULL, NULL, &p);
	if (rc < 0)
		abort();
	while (read_piece(p, s + from, to - from, &pos, t) && to < len) {
		from = to;
		to = piece == 0 || piece > len - from ? len : from + piece;
	}
	aj_proxy_request_free(p);
	if (want != NULL && (want->overflow != t->overflow || want->len != t->len ||
			     memcmp(want->text, t->text, t->len) != 0)) {
		fprintf(stderr, "readings differ:\n--- at once\n%.*s--- cut\n%.*s", (int)want->len,
			want->text, (int)t->len, t->text);
		abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct transcript whole, other;
	const char *s = (const char *)data + 3;
	size_t len, at;
	int mode;

	if (size < 3)
		return 0;
	mode = data[0] % 3;
	len = size - 3;
	at = ((size_t)data[1] | (size_t)data[2] << 8) % (len + 1);
	reading(NULL, &whole, mode, s, len, len, 0);
	reading(&whole, &other, mode, s, len, at, 0);
	reading(&whole, &other, mode, s, len, len > 0 ? 1 : 0, 1);
	return 0;
}
