/*
 * The wire-protocol codec: frame headers, REQUEST payloads and JSON
 * metadata.  Everything here is pure (no I/O) and treats its input as
 * hostile: sizes are checked before anything is used or allocated, and
 * every refusal says what was wrong.
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "field.h"
#include "log.h"
#include "proto.h"

/* Room for an untrusted string echoed in a message, after escaping. */
#define SHOWN_MAX 64

static const char *const type_names[] = {
	[AJ_MSG_HELLO] = "HELLO",   [AJ_MSG_WELCOME] = "WELCOME",   [AJ_MSG_REQUEST] = "REQUEST",
	[AJ_MSG_BODY] = "BODY",     [AJ_MSG_RESPONSE] = "RESPONSE", [AJ_MSG_WINDOW] = "WINDOW",
	[AJ_MSG_CANCEL] = "CANCEL", [AJ_MSG_ERROR] = "ERROR",       [AJ_MSG_CONNECT] = "CONNECT",
	[AJ_MSG_LISTEN] = "LISTEN",
};

const char *
aj_proto_type_name(unsigned type)
{
	if (type == 0 || type > AJ_MSG__MAX)
		return NULL;
	return type_names[type];
}

static void
put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void
put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static uint16_t
get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t
get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void
aj_proto_encode_header(const struct aj_frame *hdr, uint8_t out[AJ_PROTO_HEADER_SIZE])
{
	out[0] = hdr->version;
	out[1] = hdr->type;
	put_le16(out + 2, hdr->flags);
	put_le32(out + 4, hdr->id);
	put_le32(out + 8, hdr->length);
	put_le32(out + 12, 0);
}

/* The flags each type may carry: END marks the last chunk of a body, and
 * only REQUEST (no body follows) and BODY have a body to end. */
static uint16_t
allowed_flags(uint8_t type)
{
	return type == AJ_MSG_REQUEST || type == AJ_MSG_BODY ? AJ_FLAG_END : 0;
}

int
aj_proto_decode(const uint8_t *buf, size_t len, struct aj_frame *out, const uint8_t **payload,
		char *err, size_t errlen)
{
	struct aj_frame f;
	const char *name;
	size_t have;

	if (len < AJ_PROTO_HEADER_SIZE)
		return aj_err(err, errlen, -EBADMSG,
			      "frame of %zu bytes is shorter than the %d-byte header", len,
			      AJ_PROTO_HEADER_SIZE);
	f.version = buf[0];
	f.type = buf[1];
	f.flags = get_le16(buf + 2);
	f.id = get_le32(buf + 4);
	f.length = get_le32(buf + 8);
	have = len - AJ_PROTO_HEADER_SIZE;

	/* The size first: a peer speaking another version still has to be
	 * answered, but never with a read past what arrived. */
	if (f.length > AJ_PROTO_MAX_PAYLOAD)
		return aj_err(err, errlen, -EBADMSG, "length %u exceeds the %d-byte limit",
			      f.length, AJ_PROTO_MAX_PAYLOAD);
	if (have < f.length)
		return aj_err(err, errlen, -EBADMSG,
			      "frame is truncated: length %u but only %zu payload bytes", f.length,
			      have);
	if (have > f.length)
		return aj_err(err, errlen, -EBADMSG, "%zu trailing bytes after the %u-byte payload",
			      have - f.length, f.length);
	if (f.version != AJ_PROTO_VERSION)
		return aj_err(err, errlen, -EBADMSG,
			      "version %u is not supported (this broker speaks %d)", f.version,
			      AJ_PROTO_VERSION);
	name = aj_proto_type_name(f.type);
	if (name == NULL)
		return aj_err(err, errlen, -EBADMSG, "unknown message type %u", f.type);
	/* Reserved bytes are zero so that a later version can give them a
	 * meaning without old peers silently misreading them. */
	if (get_le32(buf + 12) != 0)
		return aj_err(err, errlen, -EBADMSG, "reserved bytes are not zero");
	if ((f.flags & ~allowed_flags(f.type)) != 0)
		return aj_err(err, errlen, -EBADMSG, "flags 0x%04x not allowed for %s", f.flags,
			      name);
	switch (f.type) {
	case AJ_MSG_HELLO:
	case AJ_MSG_WELCOME:
	case AJ_MSG_CONNECT:
	case AJ_MSG_LISTEN:
		if (f.id != 0)
			return aj_err(err, errlen, -EBADMSG, "%s needs id 0, not %u", name, f.id);
		break;
	case AJ_MSG_ERROR:
		break; /* 0: the channel failed; N: request N did */
	default:
		if (f.id == 0)
			return aj_err(err, errlen, -EBADMSG, "%s needs a non-zero id", name);
		break;
	}
	if (f.type == AJ_MSG_WINDOW && f.length != AJ_PROTO_WINDOW_SIZE)
		return aj_err(err, errlen, -EBADMSG, "WINDOW payload of %u bytes (must be 4)",
			      f.length);
	if (f.type == AJ_MSG_CANCEL && f.length != 0)
		return aj_err(err, errlen, -EBADMSG, "CANCEL payload of %u bytes (must be empty)",
			      f.length);
	if ((f.type == AJ_MSG_CONNECT || f.type == AJ_MSG_LISTEN) && f.length != 0)
		return aj_err(err, errlen, -EBADMSG, "%s payload of %u bytes (must be empty)", name,
			      f.length);

	*out = f;
	*payload = buf + AJ_PROTO_HEADER_SIZE;
	return 0;
}

int
aj_proto_frame(uint8_t type, uint16_t flags, uint32_t id, const void *payload, size_t len,
	       uint8_t *buf, size_t cap)
{
	struct aj_frame f = {
		.version = AJ_PROTO_VERSION,
		.type = type,
		.flags = flags,
		.id = id,
		.length = (uint32_t)len,
	};

	if (len > AJ_PROTO_MAX_PAYLOAD || cap < AJ_PROTO_HEADER_SIZE ||
	    cap - AJ_PROTO_HEADER_SIZE < len)
		return -EMSGSIZE;
	aj_proto_encode_header(&f, buf);
	if (len > 0)
		memcpy(buf + AJ_PROTO_HEADER_SIZE, payload, len);
	return (int)(AJ_PROTO_HEADER_SIZE + len);
}

int
aj_proto_frame_json(uint8_t type, uint32_t id, const struct json_t *obj, uint8_t *buf, size_t cap)
{
	const size_t flags = JSON_COMPACT;
	size_t need, got;
	char *tmp;
	int r;

	if (obj == NULL || !json_is_object(obj))
		return -EINVAL;
	/* Measure first: json_dumpb leaves a too-small buffer undefined, and
	 * BUF must stay untouched on failure. */
	need = json_dumpb(obj, NULL, 0, flags);
	if (need == 0)
		return -ENOMEM;
	if (need > AJ_PROTO_MAX_JSON)
		return -EMSGSIZE;
	if (cap < AJ_PROTO_HEADER_SIZE || cap - AJ_PROTO_HEADER_SIZE < need)
		return -EMSGSIZE;
	tmp = malloc(need);
	if (tmp == NULL)
		return -ENOMEM;
	got = json_dumpb(obj, tmp, need, flags);
	if (got != need) {
		free(tmp);
		return -ENOMEM;
	}
	r = aj_proto_frame(type, 0, id, tmp, need, buf, cap);
	free(tmp);
	return r;
}

/* Offset of the first byte that is not well-formed UTF-8 (overlong forms,
 * surrogates and code points above U+10FFFF included), or LEN. */
static size_t
utf8_bad_offset(const uint8_t *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		uint8_t c = s[i];
		size_t n, k;
		uint32_t cp;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return i;
		}
		if (len - i <= n)
			return i;
		for (k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return i;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return i;
		i += n + 1;
	}
	return len;
}

int
aj_proto_parse_json(const uint8_t *payload, size_t len, struct json_t **out, char *err,
		    size_t errlen)
{
	char shown[SHOWN_MAX * 4];
	json_error_t jerr;
	const uint8_t *nul;
	json_t *root;
	size_t bad;

	if (len > AJ_PROTO_MAX_JSON)
		return aj_err(err, errlen, -EBADMSG,
			      "JSON payload of %zu bytes exceeds the %d-byte limit", len,
			      AJ_PROTO_MAX_JSON);
	if (len == 0)
		return aj_err(err, errlen, -EBADMSG, "empty JSON payload");
	/* Checked here too, not only by jansson, so the message is the same
	 * whichever JSON library a peer is tested against. */
	bad = utf8_bad_offset(payload, len);
	if (bad < len)
		return aj_err(err, errlen, -EBADMSG, "invalid UTF-8 at byte %zu", bad);
	/* JSON text never holds a raw NUL, and jansson would read one as the
	 * end of input and say something confusing. */
	nul = memchr(payload, '\0', len);
	if (nul != NULL)
		return aj_err(err, errlen, -EBADMSG, "NUL byte at byte %zu",
			      (size_t)(nul - payload));
	/* Duplicate keys are refused: two parsers disagreeing on which one
	 * wins is how a checked value differs from the used one.  jansson
	 * already insists on nothing but whitespace after the value. */
	root = json_loadb((const char *)payload, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY,
			  &jerr);
	if (root == NULL) {
		aj_log_escape(jerr.text, shown, sizeof(shown));
		return aj_err(err, errlen, -EBADMSG, "invalid JSON at byte %d: %s", jerr.position,
			      shown);
	}
	if (!json_is_object(root)) {
		json_decref(root);
		return aj_err(err, errlen, -EBADMSG, "JSON payload is not an object");
	}
	*out = root;
	return 0;
}

/* Escape an untrusted JSON string for a message, cut to SHOWN_MAX bytes. */
static const char *
show(const char *s, char *buf, size_t buflen)
{
	char cut[SHOWN_MAX + 1];

	snprintf(cut, sizeof(cut), "%s", s);
	aj_log_escape(cut, buf, buflen);
	return buf;
}

static int
check_method(json_t *v, char method[16], char *err, size_t errlen)
{
	char shown[SHOWN_MAX * 4 + 1];
	const char *s;
	size_t n, i;

	if (!json_is_string(v))
		return aj_err(err, errlen, -EBADMSG, "\"method\" must be a string");
	s = json_string_value(v);
	n = json_string_length(v);
	for (i = 0; i < n; i++)
		if (s[i] < 'A' || s[i] > 'Z')
			break;
	if (n == 0 || n > 15 || i < n)
		return aj_err(err, errlen, -EBADMSG, "method \"%s\" is not 1-15 uppercase letters",
			      show(s, shown, sizeof(shown)));
	memcpy(method, s, n + 1);
	return 0;
}

static int
check_url(json_t *v, char *err, size_t errlen)
{
	const unsigned char *s;
	size_t n, i;

	if (!json_is_string(v))
		return aj_err(err, errlen, -EBADMSG, "\"url\" must be a string");
	s = (const unsigned char *)json_string_value(v);
	n = json_string_length(v);
	if (n == 0)
		return aj_err(err, errlen, -EBADMSG, "url is empty");
	if (n > AJ_PROTO_MAX_URL)
		return aj_err(err, errlen, -EBADMSG, "url of %zu bytes exceeds the %d-byte limit",
			      n, AJ_PROTO_MAX_URL);
	/* Only printable ASCII: a URL with spaces, controls or raw UTF-8 is
	 * read differently by different parsers (and by humans in a log). */
	for (i = 0; i < n; i++)
		if (s[i] <= 0x20 || s[i] >= 0x7f)
			return aj_err(err, errlen, -EBADMSG,
				      "url holds a control character, space or non-ASCII byte "
				      "(0x%02x at byte %zu)",
				      s[i], i);
	return 0;
}

static int
check_header(json_t *pair, size_t idx, char *err, size_t errlen)
{
	char shown[SHOWN_MAX * 4 + 1];
	json_t *name = json_array_get(pair, 0), *value = json_array_get(pair, 1);
	const unsigned char *s;
	size_t n, i;

	if (!json_is_array(pair) || json_array_size(pair) != 2 || !json_is_string(name) ||
	    !json_is_string(value))
		return aj_err(err, errlen, -EBADMSG,
			      "header %zu is not an array of two strings [name, value]", idx);
	s = (const unsigned char *)json_string_value(name);
	n = json_string_length(name);
	if (n == 0 || n > AJ_PROTO_MAX_HEADER_NAME)
		return aj_err(err, errlen, -EBADMSG, "header %zu: name of %zu bytes (must be 1-%d)",
			      idx, n, AJ_PROTO_MAX_HEADER_NAME);
	if (!aj_field_is_token((const char *)s, n))
		return aj_err(err, errlen, -EBADMSG,
			      "header %zu: name \"%s\" is not an RFC 9110 token", idx,
			      show((const char *)s, shown, sizeof(shown)));
	s = (const unsigned char *)json_string_value(value);
	n = json_string_length(value);
	if (n > AJ_PROTO_MAX_HEADER_VALUE)
		return aj_err(err, errlen, -EBADMSG,
			      "header %zu: value of %zu bytes exceeds the %d-byte limit", idx, n,
			      AJ_PROTO_MAX_HEADER_VALUE);
	/* CR and LF would split the header into two (request smuggling);
	 * other controls are refused by HTTP itself. */
	if (!aj_field_is_value((const char *)s, n)) {
		for (i = 0; aj_field_is_value((const char *)s + i, 1); i++)
			;
		return aj_err(err, errlen, -EBADMSG,
			      "header %zu: value holds control character 0x%02x", idx, s[i]);
	}
	return 0;
}

void
aj_proto_request_clear(struct aj_proto_request *r)
{
	size_t i;

	if (r == NULL)
		return;
	for (i = 0; i < r->n_headers; i++) {
		free(r->headers[i][0]);
		free(r->headers[i][1]);
	}
	free(r->headers);
	free(r->url);
	memset(r, 0, sizeof(*r));
}

int
aj_proto_parse_request(const uint8_t *payload, size_t len, struct aj_proto_request *out, char *err,
		       size_t errlen)
{
	char shown[SHOWN_MAX * 4 + 1];
	struct aj_proto_request req = {0};
	json_t *root, *v, *method = NULL, *url = NULL, *headers = NULL;
	const char *key;
	size_t i, n;
	int r;

	r = aj_proto_parse_json(payload, len, &root, err, errlen);
	if (r < 0)
		return r;
	json_object_foreach(root, key, v)
	{
		if (strcmp(key, "method") == 0) {
			method = v;
		} else if (strcmp(key, "url") == 0) {
			url = v;
		} else if (strcmp(key, "headers") == 0) {
			headers = v;
		} else if (strcmp(key, "deliver") == 0) {
			const char *d = json_string_value(v);

			if (d == NULL || (strcmp(d, "stream") != 0 && strcmp(d, "memfd") != 0 &&
					  strcmp(d, "pipe") != 0)) {
				r = aj_err(err, errlen, -EBADMSG,
					   "\"deliver\" must be \"stream\", \"memfd\" or \"pipe\"");
				goto out;
			}
			req.deliver_memfd = strcmp(d, "memfd") == 0;
			req.deliver_pipe = strcmp(d, "pipe") == 0;
		} else if (strcmp(key, "redirects") == 0) {
			const char *d = json_string_value(v);

			if (d == NULL || (strcmp(d, "follow") != 0 && strcmp(d, "none") != 0)) {
				r = aj_err(err, errlen, -EBADMSG,
					   "\"redirects\" must be \"follow\" or \"none\"");
				goto out;
			}
			req.no_redirects = strcmp(d, "none") == 0;
		} else {
			/* A member this broker does not know could be one the
			 * agent relies on: refuse rather than ignore it. */
			r = aj_err(err, errlen, -EBADMSG, "unknown member \"%s\" in REQUEST",
				   show(key, shown, sizeof(shown)));
			goto out;
		}
	}
	if (method == NULL || url == NULL) {
		r = aj_err(err, errlen, -EBADMSG, "REQUEST needs \"%s\"",
			   method == NULL ? "method" : "url");
		goto out;
	}
	if ((r = check_method(method, req.method, err, errlen)) < 0 ||
	    (r = check_url(url, err, errlen)) < 0)
		goto out;
	if (headers != NULL) {
		if (!json_is_array(headers)) {
			r = aj_err(err, errlen, -EBADMSG, "\"headers\" must be an array");
			goto out;
		}
		n = json_array_size(headers);
		if (n > AJ_PROTO_MAX_HEADERS) {
			r = aj_err(err, errlen, -EBADMSG, "%zu headers exceed the limit of %d", n,
				   AJ_PROTO_MAX_HEADERS);
			goto out;
		}
		for (i = 0; i < n; i++)
			if ((r = check_header(json_array_get(headers, i), i, err, errlen)) < 0)
				goto out;
	}

	/* Everything is checked: copy out. */
	r = -ENOMEM;
	req.url = strdup(json_string_value(url));
	if (req.url == NULL)
		goto out;
	n = headers != NULL ? json_array_size(headers) : 0;
	if (n > 0) {
		req.headers = calloc(n, sizeof(*req.headers));
		if (req.headers == NULL)
			goto out;
	}
	for (i = 0; i < n; i++) {
		json_t *pair = json_array_get(headers, i);

		req.headers[i][0] = strdup(json_string_value(json_array_get(pair, 0)));
		req.headers[i][1] = strdup(json_string_value(json_array_get(pair, 1)));
		req.n_headers++;
		if (req.headers[i][0] == NULL || req.headers[i][1] == NULL)
			goto out;
	}
	*out = req;
	memset(&req, 0, sizeof(req));
	r = 0;
out:
	if (r == -ENOMEM)
		aj_err(err, errlen, r, "out of memory");
	aj_proto_request_clear(&req);
	json_decref(root);
	return r;
}

void
aj_proto_window_encode(uint32_t credit, uint8_t out[AJ_PROTO_WINDOW_SIZE])
{
	out[0] = (uint8_t)credit;
	out[1] = (uint8_t)(credit >> 8);
	out[2] = (uint8_t)(credit >> 16);
	out[3] = (uint8_t)(credit >> 24);
}

uint32_t
aj_proto_window_decode(const uint8_t in[AJ_PROTO_WINDOW_SIZE])
{
	return (uint32_t)in[0] | (uint32_t)in[1] << 8 | (uint32_t)in[2] << 16 |
	       (uint32_t)in[3] << 24;
}
