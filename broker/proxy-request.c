/*
 * The proxy's request reader (see proxy-request.h).
 *
 * http-parser (nodejs/http-parser 2.9) tokenises: the method from its
 * table, the request target, the fields, Content-Length and chunk sizes,
 * keep-alive.  It was written to be lenient where a proxy must not be, and
 * Debian builds it with HTTP_PARSER_STRICT=0 besides.  As installed, it
 * takes a bare LF as a line end, folds obs-fold lines into the value,
 * takes spaces inside and after a field name, skips runs of spaces in the
 * request line, takes HTTP/2.0 and HTTP/0.9, "gzip, chunked", "Chunked"
 * and two Transfer-Encodings, "3 anything" as a chunk size and any two
 * bytes as the CRLF after a chunk's data, and reads a CONNECT's
 * Content-Length as nothing.  What it refuses well: unknown methods,
 * control characters in values, a malformed or second Content-Length, a
 * CR not followed by LF in the head.  So this file owns the lines: it cuts
 * the stream into lines itself, checks each one, and hands http-parser
 * only whole lines it accepted (the head at once, the chunked framing a
 * line at a time) and body bytes it counted.  Then both readers agree on
 * every byte, or the request is refused.
 */
#include "config.h"

#include <errno.h>
#include <http_parser.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "field.h"
#include "proxy-head.h"
#include "proxy-request.h"
#include "url.h"
#include "util.h"

#if HTTP_PARSER_VERSION_MAJOR != 2 || HTTP_PARSER_VERSION_MINOR < 9
#error "http-parser 2.9 or later (2.x) is needed"
#endif

/* More hex digits than a 64-bit size has is not a size. */
#define CHUNK_SIZE_DIGITS_MAX 16

/* Where the reader is in the stream. */
enum phase {
	PHASE_HEAD,       /* the request line and the fields, into p->head */
	PHASE_BODY,       /* p->remaining bytes of content: the Content-Length, or a chunk's */
	PHASE_CHUNK_SIZE, /* a chunk-size line, into p->line */
	PHASE_CHUNK_END,  /* the CRLF after a chunk's data */
	PHASE_TRAILER,    /* the trailer section, a line at a time */
	PHASE_END,        /* the request ended: END is due */
	PHASE_STOPPED,    /* nothing more is HTTP, or nothing more may come */
	PHASE_FAILED,
};

struct aj_proxy_request {
	http_parser hp;
	struct aj_proxy_binding binding;

	enum phase phase;
	/* The head as received: request line, fields, empty line. */
	char head[AJ_PROXY_REQUEST_LINE_MAX + AJ_PROXY_REQUEST_FIELDS_MAX];
	size_t head_len;
	size_t line_start;   /* the line being read */
	size_t fields_start; /* after the request line; 0 while it is read */
	/* A line of the chunked framing. */
	char line[AJ_PROXY_REQUEST_CHUNK_LINE_MAX];
	size_t line_len;
	size_t trailer_bytes;
	size_t n_trailers;
	uint64_t remaining;

	/* What http-parser reported, for the request being parsed. */
	const char *target;
	size_t target_len;
	struct aj_proxy_field fields[AJ_PROXY_REQUEST_FIELD_COUNT_MAX];
	size_t n_fields;
	bool headers_done, message_done, chunk_header;
	uint64_t chunk_size;
	size_t body_seen;

	/* The fields the request's meaning depends on. */
	struct aj_proxy_head_fields special;

	struct aj_proxy_head h;
	enum aj_proxy_request_error error;
	char message[256];
};

static const struct {
	int status;
	const char *name;
} errors[] = {
	[AJ_PROXY_REQUEST_OK] = {200, "ok"},
	[AJ_PROXY_REQUEST_E_SYNTAX] = {400, "syntax"},
	[AJ_PROXY_REQUEST_E_METHOD] = {501, "method"},
	[AJ_PROXY_REQUEST_E_VERSION] = {505, "version"},
	[AJ_PROXY_REQUEST_E_TARGET] = {400, "target"},
	[AJ_PROXY_REQUEST_E_LINE_TOO_LONG] = {414, "line_too_long"},
	[AJ_PROXY_REQUEST_E_FIELDS_TOO_LARGE] = {431, "fields_too_large"},
	[AJ_PROXY_REQUEST_E_BARE_LF] = {400, "bare_lf"},
	[AJ_PROXY_REQUEST_E_OBS_FOLD] = {400, "obs_fold"},
	[AJ_PROXY_REQUEST_E_CONTROL] = {400, "control_character"},
	[AJ_PROXY_REQUEST_E_FIELD] = {400, "field"},
	[AJ_PROXY_REQUEST_E_LENGTH] = {400, "content_length"},
	[AJ_PROXY_REQUEST_E_LENGTH_TWICE] = {400, "content_length_twice"},
	[AJ_PROXY_REQUEST_E_LENGTH_AND_CODING] = {400, "content_length_and_transfer_encoding"},
	/* RFC 9112 6.1: a transfer coding the server does not understand. */
	[AJ_PROXY_REQUEST_E_CODING] = {501, "transfer_encoding"},
	[AJ_PROXY_REQUEST_E_CHUNK] = {400, "chunk"},
	[AJ_PROXY_REQUEST_E_HOST_MISSING] = {400, "host_missing"},
	[AJ_PROXY_REQUEST_E_HOST_TWICE] = {400, "host_twice"},
	[AJ_PROXY_REQUEST_E_HOST_INVALID] = {400, "host_invalid"},
	[AJ_PROXY_REQUEST_E_HOST_MISMATCH] = {400, "host_mismatch"},
	[AJ_PROXY_REQUEST_E_MISDIRECTED] = {421, "misdirected"},
	[AJ_PROXY_REQUEST_E_TUNNEL_BODY] = {400, "tunnel_body"},
	[AJ_PROXY_REQUEST_E_EXPECT] = {417, "expect"},
};

int
aj_proxy_request_error_status(enum aj_proxy_request_error e)
{
	return (size_t)e < AJ_ARRAY_SIZE(errors) ? errors[e].status : 400;
}

const char *
aj_proxy_request_error_name(enum aj_proxy_request_error e)
{
	return (size_t)e < AJ_ARRAY_SIZE(errors) ? errors[e].name : "syntax";
}

/* Only the first refusal counts: a later one is its consequence. */
static bool refuse(struct aj_proxy_request *p, enum aj_proxy_request_error error, const char *fmt,
		   ...) __attribute__((format(printf, 3, 4)));

static bool
refuse(struct aj_proxy_request *p, enum aj_proxy_request_error error, const char *fmt, ...)
{
	va_list ap;

	if (p->error != AJ_PROXY_REQUEST_OK)
		return false;
	va_start(ap, fmt);
	vsnprintf(p->message, sizeof(p->message), fmt, ap);
	va_end(ap);
	p->error = error;
	p->phase = PHASE_FAILED;
	return false;
}

static bool
is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static bool
is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* ---- http-parser's callbacks: they record, the checks come after -------- */

static int
on_url(http_parser *hp, const char *at, size_t len)
{
	struct aj_proxy_request *p = hp->data;

	/* Always one piece: the head is handed over whole. */
	if (p->target == NULL)
		p->target = at;
	p->target_len = (size_t)(at + len - p->target);
	return 0;
}

static int
on_header_field(http_parser *hp, const char *at, size_t len)
{
	struct aj_proxy_request *p = hp->data;
	struct aj_proxy_field *f;

	/* http-parser takes "Ho st" and "Host " as names; RFC 9112 5.1 says
	 * reject, because some server would read "Host". */
	if (!aj_field_is_token(at, len)) {
		refuse(p, AJ_PROXY_REQUEST_E_FIELD, "a field name that is not a token");
		return -1;
	}
	if (p->phase == PHASE_TRAILER) {
		if (++p->n_trailers <= AJ_PROXY_REQUEST_FIELD_COUNT_MAX)
			return 0;
		refuse(p, AJ_PROXY_REQUEST_E_FIELDS_TOO_LARGE, "more than %d trailer fields",
		       AJ_PROXY_REQUEST_FIELD_COUNT_MAX);
		return -1;
	}
	if (p->n_fields == AJ_PROXY_REQUEST_FIELD_COUNT_MAX) {
		refuse(p, AJ_PROXY_REQUEST_E_FIELDS_TOO_LARGE, "more than %d fields",
		       AJ_PROXY_REQUEST_FIELD_COUNT_MAX);
		return -1;
	}
	f = &p->fields[p->n_fields++];
	f->name = at;
	f->name_len = len;
	f->value = NULL;
	f->value_len = 0;
	return 0;
}

static int
on_header_value(http_parser *hp, const char *at, size_t len)
{
	struct aj_proxy_request *p = hp->data;
	struct aj_proxy_field *f;

	if (p->phase == PHASE_TRAILER || p->n_fields == 0)
		return 0;
	/* http-parser drops the blanks before a value, not those after. */
	while (len > 0 && is_blank(at[len - 1]))
		len--;
	f = &p->fields[p->n_fields - 1];
	f->value = at;
	f->value_len = len;
	return 0;
}

static int
on_headers_complete(http_parser *hp)
{
	((struct aj_proxy_request *)hp->data)->headers_done = true;
	return 0;
}

static int
on_body(http_parser *hp, const char *at, size_t len)
{
	((struct aj_proxy_request *)hp->data)->body_seen += len;
	return 0;
}

static int
on_chunk_header(http_parser *hp)
{
	struct aj_proxy_request *p = hp->data;

	p->chunk_header = true;
	p->chunk_size = hp->content_length;
	return 0;
}

static int
on_message_complete(http_parser *hp)
{
	((struct aj_proxy_request *)hp->data)->message_done = true;
	return 0;
}

static const http_parser_settings settings = {
	.on_url = on_url,
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_chunk_header = on_chunk_header,
	.on_message_complete = on_message_complete,
};

/* http-parser's verdict, where none of the checks here came first. */
static enum aj_proxy_request_error
parser_error(enum http_errno e)
{
	switch (e) {
	case HPE_INVALID_METHOD:
		return AJ_PROXY_REQUEST_E_METHOD;
	case HPE_INVALID_VERSION:
		return AJ_PROXY_REQUEST_E_VERSION;
	case HPE_INVALID_URL:
	case HPE_INVALID_HOST:
	case HPE_INVALID_PORT:
	case HPE_INVALID_PATH:
	case HPE_INVALID_QUERY_STRING:
	case HPE_INVALID_FRAGMENT:
		return AJ_PROXY_REQUEST_E_TARGET;
	case HPE_INVALID_HEADER_TOKEN:
		return AJ_PROXY_REQUEST_E_FIELD;
	case HPE_INVALID_CONTENT_LENGTH:
	case HPE_UNEXPECTED_CONTENT_LENGTH:
		return AJ_PROXY_REQUEST_E_LENGTH;
	case HPE_INVALID_TRANSFER_ENCODING:
		return AJ_PROXY_REQUEST_E_CODING;
	case HPE_INVALID_CHUNK_SIZE:
		return AJ_PROXY_REQUEST_E_CHUNK;
	case HPE_HEADER_OVERFLOW:
		return AJ_PROXY_REQUEST_E_FIELDS_TOO_LARGE;
	default:
		return AJ_PROXY_REQUEST_E_SYNTAX;
	}
}

/* Hand S[0..N), checked here, to http-parser, which must take all of it.
 * False: refused by a callback, or see refuse_as_parser(). */
static bool
execute(struct aj_proxy_request *p, const char *s, size_t n)
{
	size_t took = http_parser_execute(&p->hp, &settings, s, n);

	return took == n && HTTP_PARSER_ERRNO(&p->hp) == HPE_OK && p->error == AJ_PROXY_REQUEST_OK;
}

/* http-parser's verdict, once the checks here had their say. */
static bool
refuse_as_parser(struct aj_proxy_request *p)
{
	enum http_errno e = HTTP_PARSER_ERRNO(&p->hp);
	enum aj_proxy_request_error mine = parser_error(e);

	if (e == HPE_OK)
		return refuse(p, AJ_PROXY_REQUEST_E_SYNTAX, "http-parser stopped early");
	/* Its size errors inside the framing are chunk errors. */
	if (p->phase == PHASE_CHUNK_SIZE && mine == AJ_PROXY_REQUEST_E_LENGTH)
		mine = AJ_PROXY_REQUEST_E_CHUNK;
	return refuse(p, mine, "http-parser: %s", http_errno_description(e));
}

static bool
feed(struct aj_proxy_request *p, const char *s, size_t n)
{
	return execute(p, s, n) || refuse_as_parser(p);
}

/* ---- lines ---------------------------------------------------------------- */

/* Every line, of the head or of the chunked framing: CRLF at its end and
 * no other control character but HT (RFC 9112 2.2, 5.5).  A bare LF is a
 * line end to some readers and not to others; a NUL ends a string in C. */
static bool
check_line(struct aj_proxy_request *p, const char *s, size_t n)
{
	if (n < 2 || s[n - 2] != '\r')
		return refuse(p, AJ_PROXY_REQUEST_E_BARE_LF, "a line ends in LF without CR");
	for (size_t i = 0; i + 2 < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return refuse(p, AJ_PROXY_REQUEST_E_CONTROL,
				      "control character 0x%02x in a line of the request", c);
	}
	return true;
}

/* A field line, of the head or of the trailers.  obs-fold (RFC 9112 5.2)
 * continues the previous value for one reader and starts a nameless field
 * for another; whitespace before the first field is the same trick. */
static bool
check_field_line(struct aj_proxy_request *p, const char *s)
{
	if (is_blank(s[0]))
		return refuse(p, AJ_PROXY_REQUEST_E_OBS_FOLD,
			      "a field line starts with a space or tab (obs-fold)");
	return true;
}

/* RFC 9112 3: method SP request-target SP HTTP-version, one space each.
 * http-parser skips runs of spaces, where another reader could find an
 * empty target, or a second target; it also takes any HTTP/x.y, and
 * HTTP/0.9's line without a version. */
static bool
check_request_line(struct aj_proxy_request *p, const char *s, size_t n)
{
	const char *sp1 = memchr(s, ' ', n), *sp2, *version;
	size_t version_len;

	if (memchr(s, '\t', n) != NULL)
		return refuse(p, AJ_PROXY_REQUEST_E_SYNTAX, "a tab in the request line");
	if (sp1 == NULL || sp1 == s)
		return refuse(p, AJ_PROXY_REQUEST_E_SYNTAX,
			      "no method and target in the request line");
	sp2 = memchr(sp1 + 1, ' ', n - (size_t)(sp1 + 1 - s));
	if (sp2 == NULL)
		return refuse(p, AJ_PROXY_REQUEST_E_VERSION, "a request line without a version");
	version = sp2 + 1;
	version_len = n - (size_t)(version - s);
	if (sp2 == sp1 + 1 || memchr(version, ' ', version_len) != NULL)
		return refuse(
			p, AJ_PROXY_REQUEST_E_SYNTAX,
			"the request line is not method, target and version, one space apart");
	if (version_len != 8 ||
	    (memcmp(version, "HTTP/1.1", 8) != 0 && memcmp(version, "HTTP/1.0", 8) != 0))
		return refuse(p, AJ_PROXY_REQUEST_E_VERSION, "not HTTP/1.1 or HTTP/1.0");
	return true;
}

/* ---- the head ------------------------------------------------------------- */

static bool
reading_request_line(const struct aj_proxy_request *p)
{
	return p->fields_start == 0;
}

/* Is there room for N more bytes of the head's current line (COMPLETE: the
 * line ends with them)?  Refused as soon as the bound is certain to be
 * passed, without waiting for the line's end. */
static bool
head_has_room(struct aj_proxy_request *p, size_t n, bool complete)
{
	size_t line = p->head_len - p->line_start + n;
	size_t fields = p->head_len - p->fields_start + n;

	if (reading_request_line(p)) {
		if (line > AJ_PROXY_REQUEST_LINE_MAX ||
		    (!complete && line == AJ_PROXY_REQUEST_LINE_MAX))
			return refuse(p, AJ_PROXY_REQUEST_E_LINE_TOO_LONG,
				      "request line longer than %d bytes",
				      AJ_PROXY_REQUEST_LINE_MAX);
	} else if (fields > AJ_PROXY_REQUEST_FIELDS_MAX ||
		   (!complete && fields == AJ_PROXY_REQUEST_FIELDS_MAX)) {
		return refuse(p, AJ_PROXY_REQUEST_E_FIELDS_TOO_LARGE,
			      "header fields larger than %d bytes", AJ_PROXY_REQUEST_FIELDS_MAX);
	}
	return true;
}

enum line_end { LINE_FAILED, LINE_NEXT, LINE_LAST };

/* The head's current line is complete: check it.  LINE_LAST: it was the
 * empty line that ends the head. */
static enum line_end
end_head_line(struct aj_proxy_request *p)
{
	const char *s = p->head + p->line_start;
	size_t n = p->head_len - p->line_start;

	if (!check_line(p, s, n))
		return LINE_FAILED;
	if (reading_request_line(p)) {
		/* RFC 9112 2.2: empty lines before a request are skipped
		 * (some clients end a body with an extra CRLF). */
		if (n == 2) {
			p->head_len = 0;
			return LINE_NEXT;
		}
		if (!check_request_line(p, s, n - 2))
			return LINE_FAILED;
		p->fields_start = p->head_len;
	} else if (n == 2) {
		return LINE_LAST;
	} else if (!check_field_line(p, s)) {
		return LINE_FAILED;
	}
	p->line_start = p->head_len;
	return LINE_NEXT;
}

/* Forget the previous request's parse. */
static void
begin_request(struct aj_proxy_request *p)
{
	http_parser_init(&p->hp, HTTP_REQUEST);
	p->hp.data = p;
	p->target = NULL;
	p->target_len = 0;
	p->n_fields = 0;
	p->headers_done = p->message_done = p->chunk_header = false;
	memset(&p->special, 0, sizeof(p->special));
	memset(&p->h, 0, sizeof(p->h));
}

/* A refusal proxy-head.c explained in WHY. */
static bool
passed(struct aj_proxy_request *p, enum aj_proxy_request_error e, const char *why)
{
	return e == AJ_PROXY_REQUEST_OK || refuse(p, e, "%s", why);
}

static bool
is_tunnel(const struct aj_proxy_request *p)
{
	return p->hp.method == HTTP_CONNECT || p->special.upgrade != NULL;
}

/* The head is complete in p->head: parse it and check what it means. */
static bool
parse_head(struct aj_proxy_request *p)
{
	struct aj_proxy_head *h = &p->h;
	bool parsed;
	char why[sizeof(p->message)];

	begin_request(p);
	parsed = execute(p, p->head, p->head_len);
	/* Before http-parser's verdict: its vaguer error for the same field
	 * (a second Content-Length) must not hide the one here. */
	if (!passed(p,
		    aj_proxy_head_check_fields(p->fields, p->n_fields, &p->special, why,
					       sizeof(why)),
		    why))
		return false;
	if (!parsed)
		return refuse_as_parser(p);
	if (!p->headers_done)
		return refuse(p, AJ_PROXY_REQUEST_E_SYNTAX, "http-parser missed the head's end");
	if (p->hp.http_major != 1 || p->hp.http_minor > 1)
		return refuse(p, AJ_PROXY_REQUEST_E_VERSION, "http-parser read another version");
	if ((p->special.coding != NULL) != ((p->hp.flags & F_CHUNKED) != 0))
		return refuse(p, AJ_PROXY_REQUEST_E_SYNTAX,
			      "http-parser read the framing otherwise");
	/* A value for each field, for the checks and for the caller. */
	for (size_t i = 0; i < p->n_fields; i++)
		if (p->fields[i].value == NULL)
			p->fields[i].value = "";
	h->method = http_method_str((enum http_method)p->hp.method);
	h->version = p->hp.http_minor == 0 ? 10 : 11;
	h->keep_alive = http_should_keep_alive(&p->hp) != 0;
	h->fields = p->fields;
	h->n_fields = p->n_fields;
	return passed(p,
		      aj_proxy_head_read_framing(h, &p->special, is_tunnel(p), p->hp.content_length,
						 why, sizeof(why)),
		      why) &&
	       passed(p,
		      aj_proxy_head_read_target(h, &p->binding, p->hp.method == HTTP_CONNECT,
						p->target, p->target_len, p->special.host, why,
						sizeof(why)),
		      why);
}

/* What follows an ordinary head: its body, or its end. */
static bool
start_body(struct aj_proxy_request *p)
{
	if (p->h.chunked) {
		p->phase = PHASE_CHUNK_SIZE;
	} else if (p->h.content_length > 0) {
		p->phase = PHASE_BODY;
		p->remaining = p->h.content_length;
	} else if (p->message_done) {
		p->phase = PHASE_END;
	} else {
		return refuse(p, AJ_PROXY_REQUEST_E_SYNTAX, "http-parser expects a body");
	}
	return true;
}

static enum aj_proxy_request_event
end_head(struct aj_proxy_request *p)
{
	if (!parse_head(p))
		return AJ_PROXY_REQUEST_ERROR;
	if (is_tunnel(p)) {
		p->phase = PHASE_STOPPED;
		return AJ_PROXY_REQUEST_TUNNEL;
	}
	if (!start_body(p))
		return AJ_PROXY_REQUEST_ERROR;
	return AJ_PROXY_REQUEST_HEAD;
}

/* Take the bytes of IN[0..LEN) after *USED up to and with the next LF
 * into BUF at *FILL, if HAS_ROOM lets them in (its bound for the line).
 * Returns 1 when a line ended, 0 when the input did, -1 when refused. */
static int
take_line(struct aj_proxy_request *p, char *buf, size_t *fill, const char *in, size_t len,
	  size_t *used, bool (*has_room)(struct aj_proxy_request *p, size_t n, bool complete))
{
	const char *at = in + *used;
	const char *lf = memchr(at, '\n', len - *used);
	size_t n = lf != NULL ? (size_t)(lf - at) + 1 : len - *used;

	if (!has_room(p, n, lf != NULL))
		return -1;
	memcpy(buf + *fill, at, n);
	*fill += n;
	*used += n;
	return lf != NULL;
}

/* Take IN[0..LEN) into the head, a line at a time. */
static enum aj_proxy_request_event
read_head(struct aj_proxy_request *p, const char *in, size_t len, size_t *used)
{
	while (*used < len) {
		int line = take_line(p, p->head, &p->head_len, in, len, used, head_has_room);

		if (line < 0)
			return AJ_PROXY_REQUEST_ERROR;
		if (line == 0)
			break;
		switch (end_head_line(p)) {
		case LINE_FAILED:
			return AJ_PROXY_REQUEST_ERROR;
		case LINE_LAST:
			return end_head(p);
		case LINE_NEXT:
			break;
		}
	}
	return AJ_PROXY_REQUEST_MORE;
}

/* ---- the body ------------------------------------------------------------- */

/* N content bytes at S, passed through http-parser to keep it in step. */
static bool
take_body(struct aj_proxy_request *p, const char *s, size_t n)
{
	p->body_seen = 0;
	p->message_done = false;
	if (!feed(p, s, n))
		return false;
	if (p->body_seen != n)
		return refuse(p, AJ_PROXY_REQUEST_E_SYNTAX, "http-parser read the body otherwise");
	p->remaining -= n;
	if (p->remaining > 0)
		return true;
	if (p->h.chunked) {
		p->phase = PHASE_CHUNK_END;
		return true;
	}
	if (!p->message_done)
		return refuse(p, AJ_PROXY_REQUEST_E_SYNTAX, "http-parser expects more body");
	p->phase = PHASE_END;
	return true;
}

/* Content bytes: what IN[0..LEN) holds of what is left of the
 * Content-Length or of the chunk. */
static enum aj_proxy_request_event
read_body(struct aj_proxy_request *p, const char *in, size_t len,
	  struct aj_proxy_request_step *step)
{
	size_t n = p->remaining < len ? (size_t)p->remaining : len;

	if (!take_body(p, in, n))
		return AJ_PROXY_REQUEST_ERROR;
	step->used += n;
	step->body = in;
	step->body_len = n;
	return AJ_PROXY_REQUEST_BODY;
}

static size_t
skip_blanks(const char *s, size_t n, size_t i)
{
	while (i < n && is_blank(s[i]))
		i++;
	return i;
}

static size_t
skip_token(const char *s, size_t n, size_t i)
{
	while (i < n && aj_field_is_tchar((unsigned char)s[i]))
		i++;
	return i;
}

/* A quoted-string from S[I] (a '"'); I itself when it does not end.  The
 * line holds no control character (check_line). */
static size_t
skip_quoted(const char *s, size_t n, size_t i)
{
	for (size_t j = i + 1; j < n; j++) {
		if (s[j] == '"')
			return j + 1;
		if (s[j] == '\\')
			j++;
	}
	return i;
}

/* RFC 9112 7.1.1: chunk-size *( BWS ";" BWS ext-name [ BWS "=" BWS
 * ext-val ] ) and nothing else, in S[0..N) (without the CRLF).  http-parser
 * skips whatever follows the size. */
static bool
is_chunk_size_line(const char *s, size_t n)
{
	size_t i = 0, j;

	while (i < n && is_hex(s[i]))
		i++;
	if (i == 0 || i > CHUNK_SIZE_DIGITS_MAX)
		return false;
	while (i < n) {
		i = skip_blanks(s, n, i);
		if (i == n || s[i] != ';')
			return false;
		i = skip_blanks(s, n, i + 1);
		j = skip_token(s, n, i);
		if (j == i)
			return false;
		i = skip_blanks(s, n, j);
		if (i == n || s[i] != '=') {
			i = j;
			continue;
		}
		i = skip_blanks(s, n, i + 1);
		j = i < n && s[i] == '"' ? skip_quoted(s, n, i) : skip_token(s, n, i);
		if (j == i)
			return false;
		i = j;
	}
	return true;
}

static bool
end_chunk_size(struct aj_proxy_request *p)
{
	if (!is_chunk_size_line(p->line, p->line_len - 2))
		return refuse(p, AJ_PROXY_REQUEST_E_CHUNK, "a malformed chunk-size line");
	p->chunk_header = false;
	if (!feed(p, p->line, p->line_len))
		return false;
	if (!p->chunk_header)
		return refuse(p, AJ_PROXY_REQUEST_E_SYNTAX, "http-parser missed a chunk size");
	if (p->chunk_size == 0) {
		p->phase = PHASE_TRAILER;
		p->trailer_bytes = 0;
		p->n_trailers = 0;
	} else {
		p->phase = PHASE_BODY;
		p->remaining = p->chunk_size;
	}
	return true;
}

/* Trailer fields are checked like the head's and not reported: the proxy
 * forwards a request's content, not its trailers. */
static bool
end_trailer_line(struct aj_proxy_request *p)
{
	p->trailer_bytes += p->line_len;
	if (p->trailer_bytes > AJ_PROXY_REQUEST_FIELDS_MAX)
		return refuse(p, AJ_PROXY_REQUEST_E_FIELDS_TOO_LARGE,
			      "trailer fields larger than %d bytes", AJ_PROXY_REQUEST_FIELDS_MAX);
	if (p->line_len > 2 && !check_field_line(p, p->line))
		return false;
	p->message_done = false;
	if (!feed(p, p->line, p->line_len))
		return false;
	if (p->line_len == 2) {
		if (!p->message_done)
			return refuse(p, AJ_PROXY_REQUEST_E_SYNTAX,
				      "http-parser missed the body's end");
		p->phase = PHASE_END;
	}
	return true;
}

/* A chunked body's line is complete in p->line. */
static bool
end_chunked_line(struct aj_proxy_request *p)
{
	if (!check_line(p, p->line, p->line_len))
		return false;
	switch (p->phase) {
	case PHASE_CHUNK_SIZE:
		return end_chunk_size(p);
	case PHASE_CHUNK_END:
		/* Only "\r\n" fits (chunked_line_max). */
		if (!feed(p, p->line, p->line_len))
			return false;
		p->phase = PHASE_CHUNK_SIZE;
		return true;
	default:
		return end_trailer_line(p);
	}
}

/* The longest line the phase allows, and the refusal past it. */
static bool
chunked_line_has_room(struct aj_proxy_request *p, size_t n, bool complete)
{
	size_t line = p->line_len + n;
	/* The CRLF after a chunk's data: a longer "line" means data past
	 * the chunk's size. */
	size_t max = p->phase == PHASE_CHUNK_END ? 2 : AJ_PROXY_REQUEST_CHUNK_LINE_MAX;

	if (line < max || (complete && line == max))
		return true;
	if (p->phase == PHASE_TRAILER)
		return refuse(p, AJ_PROXY_REQUEST_E_FIELDS_TOO_LARGE,
			      "a trailer line longer than %d bytes",
			      AJ_PROXY_REQUEST_CHUNK_LINE_MAX);
	if (p->phase == PHASE_CHUNK_END)
		return refuse(p, AJ_PROXY_REQUEST_E_CHUNK, "chunk data longer than its size");
	return refuse(p, AJ_PROXY_REQUEST_E_CHUNK, "a chunk-size line longer than %d bytes",
		      AJ_PROXY_REQUEST_CHUNK_LINE_MAX);
}

/* Take IN[0..LEN) as lines of the chunked framing, until body bytes or the
 * request's end are next. */
static enum aj_proxy_request_event
read_chunked(struct aj_proxy_request *p, const char *in, size_t len, size_t *used)
{
	while (*used < len && p->phase != PHASE_BODY && p->phase != PHASE_END) {
		int line =
			take_line(p, p->line, &p->line_len, in, len, used, chunked_line_has_room);

		if (line < 0)
			return AJ_PROXY_REQUEST_ERROR;
		if (line == 0)
			break;
		if (!end_chunked_line(p))
			return AJ_PROXY_REQUEST_ERROR;
		p->line_len = 0;
	}
	return AJ_PROXY_REQUEST_MORE;
}

/* ---- the API -------------------------------------------------------------- */

int
aj_proxy_request_new(const char *scheme, const struct aj_proxy_authority *origin,
		     struct aj_proxy_request **out)
{
	struct aj_proxy_request *p;
	char lower[6];

	if ((scheme == NULL) != (origin == NULL))
		return -EINVAL;
	if (scheme != NULL && aj_url_scheme_port(scheme, strlen(scheme), lower) == 0)
		return -EINVAL;
	if (origin != NULL &&
	    (origin->host[0] == '\0' || origin->port == 0 || origin->port > 65535))
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return -ENOMEM;
	if (origin != NULL) {
		p->binding.bound = true;
		strcpy(p->binding.scheme, lower);
		p->binding.origin = *origin;
	}
	p->phase = PHASE_HEAD;
	*out = p;
	return 0;
}

void
aj_proxy_request_free(struct aj_proxy_request *p)
{
	free(p);
}

/* The request ended: the next one starts with a new head, if one may
 * follow (RFC 9112 9.3). */
static enum aj_proxy_request_event
end_request(struct aj_proxy_request *p)
{
	p->phase = p->h.keep_alive ? PHASE_HEAD : PHASE_STOPPED;
	p->head_len = p->line_start = p->fields_start = 0;
	return AJ_PROXY_REQUEST_END;
}

enum aj_proxy_request_event
aj_proxy_request_read(struct aj_proxy_request *p, const char *in, size_t len,
		      struct aj_proxy_request_step *step)
{
	enum aj_proxy_request_event ev;

	memset(step, 0, sizeof(*step));
	for (;;) {
		const char *at = in + step->used;
		size_t left = len - step->used;

		switch (p->phase) {
		case PHASE_END:
			return end_request(p);
		case PHASE_STOPPED:
			return AJ_PROXY_REQUEST_DONE;
		case PHASE_FAILED:
			return AJ_PROXY_REQUEST_ERROR;
		default:
			break;
		}
		if (left == 0)
			return AJ_PROXY_REQUEST_MORE;
		if (p->phase == PHASE_HEAD)
			ev = read_head(p, at, left, &step->used);
		else if (p->phase == PHASE_BODY)
			ev = read_body(p, at, left, step);
		else
			ev = read_chunked(p, at, left, &step->used);
		if (ev != AJ_PROXY_REQUEST_MORE)
			return ev;
	}
}

const struct aj_proxy_head *
aj_proxy_request_head(const struct aj_proxy_request *p)
{
	return &p->h;
}

enum aj_proxy_request_error
aj_proxy_request_error(const struct aj_proxy_request *p, const char **message)
{
	if (message != NULL)
		*message = p->error != AJ_PROXY_REQUEST_OK ? p->message : "";
	return p->error;
}

bool
aj_proxy_request_is_idle(const struct aj_proxy_request *p)
{
	return (p->phase == PHASE_HEAD && p->head_len == 0) || p->phase == PHASE_STOPPED;
}
