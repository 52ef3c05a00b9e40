/*
 * Unit tests for the wire-protocol codec (common/proto.c): every message
 * type round-trips, every malformed frame and REQUEST payload is refused
 * with the exact reason, and the JSON helpers keep their limits.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <agentjail/protocol.h>

#include "proto.h"

/* A raw 16-byte header with every field under the test's control. */
static void
raw_header(uint8_t *b, uint8_t version, uint8_t type, uint16_t flags, uint32_t id, uint32_t length,
	   uint32_t reserved)
{
	b[0] = version;
	b[1] = type;
	b[2] = (uint8_t)flags;
	b[3] = (uint8_t)(flags >> 8);
	for (int i = 0; i < 4; i++) {
		b[4 + i] = (uint8_t)(id >> (8 * i));
		b[8 + i] = (uint8_t)(length >> (8 * i));
		b[12 + i] = (uint8_t)(reserved >> (8 * i));
	}
}

/* Decode LEN bytes of BUF and require -EBADMSG with exactly WANT. */
static void
expect_bad(const uint8_t *buf, size_t len, const char *want)
{
	struct aj_frame f = {.version = 0xaa};
	const uint8_t *payload = (const uint8_t *)"untouched";
	char err[256] = "";

	cr_assert_eq(aj_proto_decode(buf, len, &f, &payload, err, sizeof(err)), -EBADMSG,
		     "expected refusal: %s", want);
	cr_assert_str_eq(err, want);
	cr_assert_eq(f.version, 0xaa, "output written on failure");
	cr_assert_str_eq((const char *)payload, "untouched");
}

static void
expect_bad_header(uint8_t version, uint8_t type, uint16_t flags, uint32_t id, uint32_t length,
		  uint32_t reserved, const char *want)
{
	uint8_t buf[AJ_PROTO_HEADER_SIZE + 8] = {0};

	cr_assert_leq(length, 8);
	raw_header(buf, version, type, flags, id, length, reserved);
	expect_bad(buf, AJ_PROTO_HEADER_SIZE + length, want);
}

Test(proto, type_names)
{
	static const char *const want[] = {NULL,       "HELLO",  "WELCOME", "REQUEST", "BODY",
					   "RESPONSE", "WINDOW", "CANCEL",  "ERROR"};

	for (unsigned t = 0; t < 9; t++) {
		if (want[t] == NULL)
			cr_assert_null(aj_proto_type_name(t));
		else
			cr_assert_str_eq(aj_proto_type_name(t), want[t]);
	}
	cr_assert_str_eq(aj_proto_type_name(AJ_MSG_CONNECT), "CONNECT");
	cr_assert_str_eq(aj_proto_type_name(AJ_MSG_LISTEN), "LISTEN");
	cr_assert_null(aj_proto_type_name(11));
	cr_assert_null(aj_proto_type_name(256));
	cr_assert_null(aj_proto_type_name(~0u));
}

Test(proto, header_layout)
{
	struct aj_frame f = {
		.version = 1, .type = 4, .flags = 0x0201, .id = 0x04030201, .length = 0x0a0b0c0d};
	static const uint8_t want[16] = {1,    4,    0x01, 0x02, 0x01, 0x02, 0x03, 0x04,
					 0x0d, 0x0c, 0x0b, 0x0a, 0,    0,    0,    0};
	uint8_t out[16];

	memset(out, 0xff, sizeof(out));
	aj_proto_encode_header(&f, out);
	cr_assert_arr_eq(out, want, 16);
}

Test(proto, round_trip_every_type)
{
	static const struct {
		uint8_t type;
		uint16_t flags;
		uint32_t id;
		const char *payload;
		size_t len;
	} cases[] = {
		{AJ_MSG_HELLO, 0, 0, "{\"version\":1,\"client\":\"t\"}", 26},
		{AJ_MSG_WELCOME, 0, 0, "{\"version\":1}", 13},
		{AJ_MSG_REQUEST, 0, 1, "{\"method\":\"GET\",\"url\":\"https://x/\"}", 35},
		{AJ_MSG_REQUEST, AJ_FLAG_END, 7, "{}", 2},
		{AJ_MSG_BODY, 0, 1, "\0\1\2\3", 4},
		{AJ_MSG_BODY, AJ_FLAG_END, UINT32_MAX, "", 0},
		{AJ_MSG_RESPONSE, 0, 3, "{\"status\":200}", 14},
		{AJ_MSG_WINDOW, 0, 5, "\0\0\1\0", 4},
		{AJ_MSG_CANCEL, 0, 9, "", 0},
		{AJ_MSG_ERROR, 0, 0, "{\"code\":\"bad_request\"}", 22},
		{AJ_MSG_ERROR, 0, 42, "{\"code\":\"denied\"}", 17},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t buf[128], again[16];
		struct aj_frame f;
		const uint8_t *payload = NULL;
		char err[256] = "";
		int n;

		n = aj_proto_frame(cases[i].type, cases[i].flags, cases[i].id, cases[i].payload,
				   cases[i].len, buf, sizeof(buf));
		cr_assert_eq(n, (int)(16 + cases[i].len));
		cr_assert_eq(aj_proto_decode(buf, (size_t)n, &f, &payload, err, sizeof(err)), 0,
			     "case %zu: %s", i, err);
		cr_assert_eq(f.version, AJ_PROTO_VERSION);
		cr_assert_eq(f.type, cases[i].type);
		cr_assert_eq(f.flags, cases[i].flags);
		cr_assert_eq(f.id, cases[i].id);
		cr_assert_eq(f.length, cases[i].len);
		cr_assert_eq(payload, buf + 16);
		cr_assert_eq(memcmp(payload, cases[i].payload, cases[i].len), 0);
		aj_proto_encode_header(&f, again);
		cr_assert_arr_eq(again, buf, 16);
	}
}

Test(proto, max_payload_accepted)
{
	size_t len = AJ_PROTO_HEADER_SIZE + AJ_PROTO_MAX_PAYLOAD;
	uint8_t *buf = calloc(1, len);
	struct aj_frame f;
	const uint8_t *payload;
	char err[256] = "";

	cr_assert_not_null(buf);
	raw_header(buf, 1, AJ_MSG_BODY, 0, 1, AJ_PROTO_MAX_PAYLOAD, 0);
	cr_assert_eq(aj_proto_decode(buf, len, &f, &payload, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(f.length, AJ_PROTO_MAX_PAYLOAD);
	free(buf);
}

Test(proto, truncated_header)
{
	uint8_t buf[16];

	raw_header(buf, 1, AJ_MSG_HELLO, 0, 0, 0, 0);
	expect_bad(buf, 10, "frame of 10 bytes is shorter than the 16-byte header");
	expect_bad(buf, 0, "frame of 0 bytes is shorter than the 16-byte header");
	expect_bad(buf, 15, "frame of 15 bytes is shorter than the 16-byte header");
}

Test(proto, length_mismatch)
{
	uint8_t buf[32] = {0};

	raw_header(buf, 1, AJ_MSG_BODY, 0, 1, 10, 0);
	expect_bad(buf, 16 + 4, "frame is truncated: length 10 but only 4 payload bytes");
	raw_header(buf, 1, AJ_MSG_BODY, 0, 1, 2, 0);
	expect_bad(buf, 16 + 8, "6 trailing bytes after the 2-byte payload");
	raw_header(buf, 1, AJ_MSG_BODY, 0, 1, 0, 0);
	expect_bad(buf, 16 + 1, "1 trailing bytes after the 0-byte payload");
}

Test(proto, oversize_length)
{
	uint8_t buf[16];

	raw_header(buf, 1, AJ_MSG_BODY, 0, 1, 70000, 0);
	expect_bad(buf, 16, "length 70000 exceeds the 65536-byte limit");
	raw_header(buf, 1, AJ_MSG_BODY, 0, 1, AJ_PROTO_MAX_PAYLOAD + 1, 0);
	expect_bad(buf, 16, "length 65537 exceeds the 65536-byte limit");
	raw_header(buf, 1, AJ_MSG_BODY, 0, 1, UINT32_MAX, 0);
	expect_bad(buf, 16, "length 4294967295 exceeds the 65536-byte limit");
}

Test(proto, unknown_type)
{
	expect_bad_header(1, 0, 0, 0, 0, 0, "unknown message type 0");
	expect_bad_header(1, 11, 0, 0, 0, 0, "unknown message type 11");
	expect_bad_header(1, 255, 0, 1, 0, 0, "unknown message type 255");
}

Test(proto, bad_version)
{
	expect_bad_header(2, AJ_MSG_HELLO, 0, 0, 0, 0,
			  "version 2 is not supported (this broker speaks 1)");
	expect_bad_header(0, AJ_MSG_HELLO, 0, 0, 0, 0,
			  "version 0 is not supported (this broker speaks 1)");
}

Test(proto, reserved_not_zero)
{
	expect_bad_header(1, AJ_MSG_HELLO, 0, 0, 0, 1, "reserved bytes are not zero");
	expect_bad_header(1, AJ_MSG_BODY, 0, 1, 0, 0x80000000u, "reserved bytes are not zero");
}

Test(proto, bad_flags)
{
	expect_bad_header(1, AJ_MSG_BODY, 0x0002, 1, 0, 0, "flags 0x0002 not allowed for BODY");
	expect_bad_header(1, AJ_MSG_REQUEST, 0x8001, 1, 0, 0,
			  "flags 0x8001 not allowed for REQUEST");
	expect_bad_header(1, AJ_MSG_HELLO, AJ_FLAG_END, 0, 0, 0,
			  "flags 0x0001 not allowed for HELLO");
	expect_bad_header(1, AJ_MSG_WELCOME, AJ_FLAG_END, 0, 0, 0,
			  "flags 0x0001 not allowed for WELCOME");
	expect_bad_header(1, AJ_MSG_RESPONSE, AJ_FLAG_END, 1, 0, 0,
			  "flags 0x0001 not allowed for RESPONSE");
	expect_bad_header(1, AJ_MSG_WINDOW, AJ_FLAG_END, 1, 4, 0,
			  "flags 0x0001 not allowed for WINDOW");
	expect_bad_header(1, AJ_MSG_CANCEL, AJ_FLAG_END, 1, 0, 0,
			  "flags 0x0001 not allowed for CANCEL");
	expect_bad_header(1, AJ_MSG_ERROR, 0xffff, 0, 0, 0, "flags 0xffff not allowed for ERROR");
}

Test(proto, id_rules)
{
	uint8_t buf[16];
	struct aj_frame f;
	const uint8_t *payload;
	char err[256];

	expect_bad_header(1, AJ_MSG_HELLO, 0, 5, 0, 0, "HELLO needs id 0, not 5");
	expect_bad_header(1, AJ_MSG_WELCOME, 0, 1, 0, 0, "WELCOME needs id 0, not 1");
	expect_bad_header(1, AJ_MSG_REQUEST, 0, 0, 0, 0, "REQUEST needs a non-zero id");
	expect_bad_header(1, AJ_MSG_BODY, 0, 0, 0, 0, "BODY needs a non-zero id");
	expect_bad_header(1, AJ_MSG_RESPONSE, 0, 0, 0, 0, "RESPONSE needs a non-zero id");
	expect_bad_header(1, AJ_MSG_WINDOW, 0, 0, 4, 0, "WINDOW needs a non-zero id");
	expect_bad_header(1, AJ_MSG_CANCEL, 0, 0, 0, 0, "CANCEL needs a non-zero id");
	/* ERROR: 0 for the channel, N for request N */
	raw_header(buf, 1, AJ_MSG_ERROR, 0, 0, 0, 0);
	cr_assert_eq(aj_proto_decode(buf, 16, &f, &payload, err, sizeof(err)), 0);
	cr_assert_eq(f.id, 0);
	raw_header(buf, 1, AJ_MSG_ERROR, 0, 77, 0, 0);
	cr_assert_eq(aj_proto_decode(buf, 16, &f, &payload, err, sizeof(err)), 0);
	cr_assert_eq(f.id, 77);
}

Test(proto, fixed_sizes)
{
	expect_bad_header(1, AJ_MSG_WINDOW, 0, 1, 3, 0, "WINDOW payload of 3 bytes (must be 4)");
	expect_bad_header(1, AJ_MSG_WINDOW, 0, 1, 0, 0, "WINDOW payload of 0 bytes (must be 4)");
	expect_bad_header(1, AJ_MSG_WINDOW, 0, 1, 8, 0, "WINDOW payload of 8 bytes (must be 4)");
	expect_bad_header(1, AJ_MSG_CANCEL, 0, 1, 1, 0,
			  "CANCEL payload of 1 bytes (must be empty)");
	expect_bad_header(1, AJ_MSG_CONNECT, 0, 0, 2, 0,
			  "CONNECT payload of 2 bytes (must be empty)");
	expect_bad_header(1, AJ_MSG_CONNECT, 0, 3, 0, 0, "CONNECT needs id 0, not 3");
	expect_bad_header(1, AJ_MSG_LISTEN, 0, 0, 1, 0, "LISTEN payload of 1 bytes (must be empty)");
	expect_bad_header(1, AJ_MSG_LISTEN, 0, 2, 0, 0, "LISTEN needs id 0, not 2");
}

Test(proto, frame_size_limits)
{
	uint8_t small[20], *big;

	memset(small, 0xee, sizeof(small));
	cr_assert_eq(aj_proto_frame(AJ_MSG_BODY, 0, 1, "12345", 5, small, sizeof(small)),
		     -EMSGSIZE);
	cr_assert_eq(small[0], 0xee, "buffer written on failure");
	cr_assert_eq(aj_proto_frame(AJ_MSG_BODY, 0, 1, "1234", 4, small, sizeof(small)), 20);
	cr_assert_eq(aj_proto_frame(AJ_MSG_CANCEL, 0, 1, NULL, 0, small, 15), -EMSGSIZE);
	cr_assert_eq(aj_proto_frame(AJ_MSG_CANCEL, 0, 1, NULL, 0, small, 16), 16);
	big = calloc(1, 16 + AJ_PROTO_MAX_PAYLOAD + 1);
	cr_assert_not_null(big);
	cr_assert_eq(aj_proto_frame(AJ_MSG_BODY, 0, 1, big, AJ_PROTO_MAX_PAYLOAD + 1, big,
				    16 + AJ_PROTO_MAX_PAYLOAD + 1),
		     -EMSGSIZE);
	free(big);
}

/* ---- REQUEST payloads ---------------------------------------------------- */

static void
expect_request_bad(const char *json, const char *want)
{
	struct aj_proto_request r = {.method = "UNTOUCHED"};
	char err[512] = "";

	cr_assert_eq(
		aj_proto_parse_request((const uint8_t *)json, strlen(json), &r, err, sizeof(err)),
		-EBADMSG, "accepted: %s", json);
	cr_assert_str_eq(err, want, "got `%s` for %.200s", err, json);
	cr_assert_str_eq(r.method, "UNTOUCHED");
	cr_assert_null(r.url);
}

static void
expect_request_bad_n(const uint8_t *payload, size_t len, const char *want)
{
	struct aj_proto_request r = {0};
	char err[512] = "";

	cr_assert_eq(aj_proto_parse_request(payload, len, &r, err, sizeof(err)), -EBADMSG);
	cr_assert_str_eq(err, want);
	cr_assert_null(r.url);
}

Test(proto, request_valid_without_headers)
{
	static const char json[] = "{\"method\":\"GET\",\"url\":\"https://example.com/a?b=c\"}";
	struct aj_proto_request r = {0};
	char err[256] = "";

	cr_assert_eq(
		aj_proto_parse_request((const uint8_t *)json, strlen(json), &r, err, sizeof(err)),
		0, "%s", err);
	cr_assert_str_eq(r.method, "GET");
	cr_assert_str_eq(r.url, "https://example.com/a?b=c");
	cr_assert_eq(r.n_headers, 0);
	cr_assert_null(r.headers);
	aj_proto_request_clear(&r);
	cr_assert_null(r.url);
	aj_proto_request_clear(&r); /* twice is fine */
}

Test(proto, request_valid_with_headers)
{
	static const char json[] =
		" {\"headers\":[[\"Accept\",\"*/*\"],[\"X-Tab\",\"a\\tb\"],[\"Empty\",\"\"],"
		"[\"!#$%&'*+-.^_`|~09az\",\"caf\\u00e9 \xe2\x82\xac\"],[\"accept\",\"x\"]],"
		"\"url\":\"http://h:8080/p\",\"method\":\"PROPFIND\"}\n";
	struct aj_proto_request r = {0};
	char err[256] = "";

	cr_assert_eq(
		aj_proto_parse_request((const uint8_t *)json, strlen(json), &r, err, sizeof(err)),
		0, "%s", err);
	cr_assert_str_eq(r.method, "PROPFIND");
	cr_assert_str_eq(r.url, "http://h:8080/p");
	cr_assert_eq(r.n_headers, 5);
	cr_assert_str_eq(r.headers[0][0], "Accept");
	cr_assert_str_eq(r.headers[0][1], "*/*");
	cr_assert_str_eq(r.headers[1][1], "a\tb");
	cr_assert_str_eq(r.headers[2][1], "");
	cr_assert_str_eq(r.headers[3][0], "!#$%&'*+-.^_`|~09az");
	cr_assert_str_eq(r.headers[3][1], "caf\xc3\xa9 \xe2\x82\xac");
	cr_assert_str_eq(r.headers[4][0], "accept");
	aj_proto_request_clear(&r);
	cr_assert_eq(r.n_headers, 0);
	cr_assert_null(r.headers);
}

/* "deliver": how the body comes back; one of three words, nothing else. */
Test(proto, request_deliver)
{
	static const struct {
		const char *word;
		int memfd, pipe;
	} ok[] = {{"stream", 0, 0}, {"memfd", 1, 0}, {"pipe", 0, 1}};
	static const char *const bad[] = {"\"Pipe\"", "\"\"", "\"fifo\"", "1", "null", "[\"pipe\"]"};
	char json[256], err[256];

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct aj_proto_request r = {0};

		snprintf(json, sizeof(json),
			 "{\"method\":\"GET\",\"url\":\"http://x/\",\"deliver\":\"%s\"}",
			 ok[i].word);
		cr_assert_eq(aj_proto_parse_request((const uint8_t *)json, strlen(json), &r, err,
						    sizeof(err)),
			     0, "%s: %s", ok[i].word, err);
		cr_assert_eq(r.deliver_memfd, ok[i].memfd, "%s", ok[i].word);
		cr_assert_eq(r.deliver_pipe, ok[i].pipe, "%s", ok[i].word);
		aj_proto_request_clear(&r);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(json, sizeof(json),
			 "{\"method\":\"GET\",\"url\":\"http://x/\",\"deliver\":%s}", bad[i]);
		expect_request_bad(json, "\"deliver\" must be \"stream\", \"memfd\" or \"pipe\"");
	}
}

Test(proto, request_redirects)
{
	static const struct {
		const char *member; /* "" : not given */
		int none;
	} ok[] = {{"", 0}, {",\"redirects\":\"follow\"", 0}, {",\"redirects\":\"none\"", 1}};
	static const char *const bad[] = {"\"None\"", "\"\"", "\"manual\"", "0", "false", "null"};
	char json[256], err[256];

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct aj_proto_request r = {0};

		snprintf(json, sizeof(json), "{\"method\":\"GET\",\"url\":\"http://x/\"%s}",
			 ok[i].member);
		cr_assert_eq(aj_proto_parse_request((const uint8_t *)json, strlen(json), &r, err,
						    sizeof(err)),
			     0, "%s: %s", json, err);
		cr_assert_eq(r.no_redirects, ok[i].none, "%s", json);
		aj_proto_request_clear(&r);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(json, sizeof(json),
			 "{\"method\":\"GET\",\"url\":\"http://x/\",\"redirects\":%s}", bad[i]);
		expect_request_bad(json, "\"redirects\" must be \"follow\" or \"none\"");
	}
}

Test(proto, request_clear_zeroed)
{
	struct aj_proto_request r = {0};

	aj_proto_request_clear(&r);
	aj_proto_request_clear(NULL);
}

Test(proto, request_bad_members)
{
	expect_request_bad("{\"method\":\"GET\",\"url\":\"https://x/\",\"body\":\"\"}",
			   "unknown member \"body\" in REQUEST");
	expect_request_bad("{\"method\":\"GET\",\"url\":\"https://x/\",\"\\u001b[31m\":1}",
			   "unknown member \"\\x1b[31m\" in REQUEST");
	expect_request_bad("{\"url\":\"https://x/\"}", "REQUEST needs \"method\"");
	expect_request_bad("{\"method\":\"GET\"}", "REQUEST needs \"url\"");
	expect_request_bad("{}", "REQUEST needs \"method\"");
	expect_request_bad("{\"method\":1,\"url\":\"https://x/\"}", "\"method\" must be a string");
	expect_request_bad("{\"method\":\"GET\",\"url\":null}", "\"url\" must be a string");
	expect_request_bad("{\"method\":\"GET\",\"url\":\"https://x/\",\"headers\":{}}",
			   "\"headers\" must be an array");
	expect_request_bad("{\"method\":\"GET\",\"url\":\"https://x/\",\"headers\":null}",
			   "\"headers\" must be an array");
}

Test(proto, request_nested_where_strings_belong)
{
	expect_request_bad("{\"method\":{\"a\":\"GET\"},\"url\":\"https://x/\"}",
			   "\"method\" must be a string");
	expect_request_bad("{\"method\":\"GET\",\"url\":[\"https://x/\"]}",
			   "\"url\" must be a string");
	expect_request_bad("{\"method\":\"GET\",\"url\":\"https://x/\",\"headers\":[[\"A\",{}]]}",
			   "header 0 is not an array of two strings [name, value]");
	expect_request_bad("{\"method\":\"GET\",\"url\":\"https://x/"
			   "\",\"headers\":[[\"A\",\"b\"],[[\"A\"],\"b\"]]}",
			   "header 1 is not an array of two strings [name, value]");
	expect_request_bad("{\"method\":\"GET\",\"url\":\"https://x/\",\"headers\":[\"A: b\"]}",
			   "header 0 is not an array of two strings [name, value]");
	expect_request_bad("{\"method\":\"GET\",\"url\":\"https://x/\",\"headers\":[[\"A\"]]}",
			   "header 0 is not an array of two strings [name, value]");
	expect_request_bad(
		"{\"method\":\"GET\",\"url\":\"https://x/\",\"headers\":[[\"A\",\"b\",\"c\"]]}",
		"header 0 is not an array of two strings [name, value]");
}

Test(proto, request_bad_method)
{
	expect_request_bad("{\"method\":\"get\",\"url\":\"https://x/\"}",
			   "method \"get\" is not 1-15 uppercase letters");
	expect_request_bad("{\"method\":\"\",\"url\":\"https://x/\"}",
			   "method \"\" is not 1-15 uppercase letters");
	expect_request_bad("{\"method\":\"ABCDEFGHIJKLMNOP\",\"url\":\"https://x/\"}",
			   "method \"ABCDEFGHIJKLMNOP\" is not 1-15 uppercase letters");
	expect_request_bad("{\"method\":\"GET \",\"url\":\"https://x/\"}",
			   "method \"GET \" is not 1-15 uppercase letters");
	expect_request_bad("{\"method\":\"G\\nET\",\"url\":\"https://x/\"}",
			   "method \"G\\x0aET\" is not 1-15 uppercase letters");
	/* 15 letters is the maximum */
	{
		static const char ok[] = "{\"method\":\"ABCDEFGHIJKLMNO\",\"url\":\"https://x/\"}";
		struct aj_proto_request r = {0};
		char err[256];

		cr_assert_eq(aj_proto_parse_request((const uint8_t *)ok, strlen(ok), &r, err,
						    sizeof(err)),
			     0);
		cr_assert_str_eq(r.method, "ABCDEFGHIJKLMNO");
		aj_proto_request_clear(&r);
	}
}

Test(proto, request_bad_url)
{
	char *json, *url;
	int n;

	expect_request_bad("{\"method\":\"GET\",\"url\":\"\"}", "url is empty");
	expect_request_bad(
		"{\"method\":\"GET\",\"url\":\"https://x/a b\"}",
		"url holds a control character, space or non-ASCII byte (0x20 at byte 11)");
	expect_request_bad(
		"{\"method\":\"GET\",\"url\":\"https://x/\\r\\nHost: y\"}",
		"url holds a control character, space or non-ASCII byte (0x0d at byte 10)");
	expect_request_bad(
		"{\"method\":\"GET\",\"url\":\"https://x/\\u007f\"}",
		"url holds a control character, space or non-ASCII byte (0x7f at byte 10)");
	expect_request_bad(
		"{\"method\":\"GET\",\"url\":\"https://\xc3\xa9.com/\"}",
		"url holds a control character, space or non-ASCII byte (0xc3 at byte 8)");

	url = malloc(AJ_PROTO_MAX_URL + 2);
	json = malloc(AJ_PROTO_MAX_URL + 64);
	cr_assert(url != NULL && json != NULL);
	memset(url, 'a', AJ_PROTO_MAX_URL + 1);
	url[AJ_PROTO_MAX_URL + 1] = '\0';
	n = snprintf(json, AJ_PROTO_MAX_URL + 64, "{\"method\":\"GET\",\"url\":\"%s\"}", url);
	expect_request_bad_n((const uint8_t *)json, (size_t)n,
			     "url of 8193 bytes exceeds the 8192-byte limit");
	/* exactly the limit is fine */
	url[AJ_PROTO_MAX_URL] = '\0';
	n = snprintf(json, AJ_PROTO_MAX_URL + 64, "{\"method\":\"GET\",\"url\":\"%s\"}", url);
	{
		struct aj_proto_request r = {0};
		char err[256] = "";

		cr_assert_eq(aj_proto_parse_request((const uint8_t *)json, (size_t)n, &r, err,
						    sizeof(err)),
			     0, "%s", err);
		cr_assert_eq(strlen(r.url), AJ_PROTO_MAX_URL);
		aj_proto_request_clear(&r);
	}
	free(url);
	free(json);
}

Test(proto, request_bad_header_name)
{
	char json[1024], name[300];

	expect_request_bad("{\"method\":\"GET\",\"url\":\"https://x/\",\"headers\":[[\"\",\"b\"]]}",
			   "header 0: name of 0 bytes (must be 1-256)");
	expect_request_bad(
		"{\"method\":\"GET\",\"url\":\"https://x/\",\"headers\":[[\"A B\",\"b\"]]}",
		"header 0: name \"A B\" is not an RFC 9110 token");
	expect_request_bad(
		"{\"method\":\"GET\",\"url\":\"https://x/\",\"headers\":[[\"Host:\",\"b\"]]}",
		"header 0: name \"Host:\" is not an RFC 9110 token");
	expect_request_bad(
		"{\"method\":\"GET\",\"url\":\"https://x/\",\"headers\":[[\"A\\r\\nB\",\"b\"]]}",
		"header 0: name \"A\\x0d\\x0aB\" is not an RFC 9110 token");
	expect_request_bad(
		"{\"method\":\"GET\",\"url\":\"https://x/\",\"headers\":[[\"\xc3\xa9\",\"b\"]]}",
		"header 0: name \"\\xc3\\xa9\" is not an RFC 9110 token");
	memset(name, 'n', 257);
	name[257] = '\0';
	snprintf(json, sizeof(json),
		 "{\"method\":\"GET\",\"url\":\"https://x/\",\"headers\":[[\"%s\",\"b\"]]}", name);
	expect_request_bad(json, "header 0: name of 257 bytes (must be 1-256)");
}

Test(proto, request_bad_header_value)
{
	char *json, *value;
	int n;

	expect_request_bad(
		"{\"method\":\"GET\",\"url\":\"https://x/\",\"headers\":[[\"A\",\"b\\r\\nX: y\"]]}",
		"header 0: value holds control character 0x0d");
	expect_request_bad(
		"{\"method\":\"GET\",\"url\":\"https://x/\",\"headers\":[[\"A\",\"b\\n\"]]}",
		"header 0: value holds control character 0x0a");
	expect_request_bad(
		"{\"method\":\"GET\",\"url\":\"https://x/\",\"headers\":[[\"A\",\"\\u0001\"]]}",
		"header 0: value holds control character 0x01");
	expect_request_bad(
		"{\"method\":\"GET\",\"url\":\"https://x/\",\"headers\":[[\"A\",\"\\u007f\"]]}",
		"header 0: value holds control character 0x7f");
	/* NUL never gets as far as the header check: jansson refuses \u0000 */
	expect_request_bad(
		"{\"method\":\"GET\",\"url\":\"https://x/\",\"headers\":[[\"A\",\"\\u0000\"]]}",
		"invalid JSON at byte 59: \\x5cu0000 is not allowed without JSON_ALLOW_NUL "
		"near '\"\\x5cu0000\"'");

	value = malloc(8194);
	json = malloc(8300);
	cr_assert(value != NULL && json != NULL);
	memset(value, 'v', 8193);
	value[8193] = '\0';
	n = snprintf(json, 8300,
		     "{\"method\":\"GET\",\"url\":\"https://x/\",\"headers\":[[\"A\",\"%s\"]]}",
		     value);
	expect_request_bad_n((const uint8_t *)json, (size_t)n,
			     "header 0: value of 8193 bytes exceeds the 8192-byte limit");
	free(value);
	free(json);
}

static char *
request_with_headers(size_t count)
{
	size_t cap = 64 + count * 12;
	char *json = malloc(cap);
	size_t o;

	cr_assert_not_null(json);
	o = (size_t)snprintf(json, cap, "{\"method\":\"GET\",\"url\":\"https://x/\",\"headers\":[");
	for (size_t i = 0; i < count; i++)
		o += (size_t)snprintf(json + o, cap - o, "%s[\"A\",\"b\"]", i ? "," : "");
	snprintf(json + o, cap - o, "]}");
	return json;
}

Test(proto, request_header_count)
{
	struct aj_proto_request r = {0};
	char err[256] = "", *json;

	json = request_with_headers(AJ_PROTO_MAX_HEADERS);
	cr_assert_eq(
		aj_proto_parse_request((const uint8_t *)json, strlen(json), &r, err, sizeof(err)),
		0, "%s", err);
	cr_assert_eq(r.n_headers, AJ_PROTO_MAX_HEADERS);
	aj_proto_request_clear(&r);
	free(json);

	json = request_with_headers(AJ_PROTO_MAX_HEADERS + 1);
	expect_request_bad(json, "65 headers exceed the limit of 64");
	free(json);

	/* a huge count runs into the JSON size limit first */
	json = request_with_headers(100000);
	expect_request_bad(json, "JSON payload of 1000047 bytes exceeds the 16384-byte limit");
	free(json);
}

Test(proto, request_bad_json)
{
	static const uint8_t bad_utf8[] = "{\"method\":\"GET\",\"url\":\"https://x/\xff\"}";
	static const uint8_t overlong[] = "{\"method\":\"GET\",\"url\":\"\xc0\xaf\"}";
	static const uint8_t surrogate[] = "{\"method\":\"GET\",\"url\":\"\xed\xa0\x80\"}";
	static const uint8_t cut[] = "{\"method\":\"GET\",\"url\":\"\xe2\x82";
	static const uint8_t with_nul[] = "{\"method\":\"GET\",\"url\":\"a\"}\0";

	expect_request_bad_n(bad_utf8, sizeof(bad_utf8) - 1, "invalid UTF-8 at byte 33");
	expect_request_bad_n(overlong, sizeof(overlong) - 1, "invalid UTF-8 at byte 23");
	expect_request_bad_n(surrogate, sizeof(surrogate) - 1, "invalid UTF-8 at byte 23");
	expect_request_bad_n(cut, sizeof(cut) - 1, "invalid UTF-8 at byte 23");
	expect_request_bad_n(with_nul, sizeof(with_nul), "NUL byte at byte 26");
	expect_request_bad_n((const uint8_t *)"{\"method\":\"G\0T\"}", 16, "NUL byte at byte 12");
	expect_request_bad("{\"method\":\"GET\",\"method\":\"POST\",\"url\":\"https://x/\"}",
			   "invalid JSON at byte 24: duplicate object key near '\"method\"'");
	expect_request_bad("{\"method\":\"GET\",\"url\":\"https://x/\"}x",
			   "invalid JSON at byte 36: end of file expected near 'x'");
	expect_request_bad("{\"method\":\"GET\",\"url\":\"https://x/\"}{}",
			   "invalid JSON at byte 36: end of file expected near '{'");
	expect_request_bad("[\"GET\",\"https://x/\"]", "JSON payload is not an object");
	expect_request_bad("\"GET\"", "JSON payload is not an object");
	expect_request_bad("", "empty JSON payload");
	expect_request_bad("{\"method\":\"GET\",",
			   "invalid JSON at byte 16: string or '}' expected near end of file");
}

/* ---- JSON helpers --------------------------------------------------------- */

Test(proto, json_round_trip)
{
	json_t *obj =
		json_pack("{s:i, s:s, s:[i,i]}", "version", 1, "client", "caf\xc3\xa9", "n", 1, 2);
	json_t *back = NULL;
	uint8_t buf[256];
	struct aj_frame f;
	const uint8_t *payload;
	char err[256] = "";
	int n;

	cr_assert_not_null(obj);
	n = aj_proto_frame_json(AJ_MSG_HELLO, 0, obj, buf, sizeof(buf));
	cr_assert_gt(n, 16);
	cr_assert_eq(aj_proto_decode(buf, (size_t)n, &f, &payload, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(f.type, AJ_MSG_HELLO);
	cr_assert_eq(f.flags, 0);
	/* compact: no spaces */
	cr_assert_eq(f.length, strlen("{\"version\":1,\"client\":\"caf\xc3\xa9\",\"n\":[1,2]}"));
	cr_assert_eq(
		memcmp(payload, "{\"version\":1,\"client\":\"caf\xc3\xa9\",\"n\":[1,2]}", f.length),
		0);
	cr_assert_eq(aj_proto_parse_json(payload, f.length, &back, err, sizeof(err)), 0, "%s", err);
	cr_assert(json_equal(obj, back));
	json_decref(back);
	json_decref(obj);
}

Test(proto, json_frame_limits)
{
	json_t *obj = json_object(), *arr = json_array();
	uint8_t buf[64], *big;
	char *s;

	cr_assert(obj != NULL && arr != NULL);
	cr_assert_eq(aj_proto_frame_json(AJ_MSG_ERROR, 0, arr, buf, sizeof(buf)), -EINVAL);
	cr_assert_eq(aj_proto_frame_json(AJ_MSG_ERROR, 0, NULL, buf, sizeof(buf)), -EINVAL);
	cr_assert_eq(aj_proto_frame_json(AJ_MSG_ERROR, 0, obj, buf, sizeof(buf)), 18);
	cr_assert_eq(aj_proto_frame_json(AJ_MSG_ERROR, 0, obj, buf, 17), -EMSGSIZE);
	/* too large for the frame buffer: untouched */
	json_object_set_new(obj, "message",
			    json_string("0123456789012345678901234567890123456789"
					"0123456789"));
	memset(buf, 0xee, sizeof(buf));
	cr_assert_eq(aj_proto_frame_json(AJ_MSG_ERROR, 3, obj, buf, sizeof(buf)), -EMSGSIZE);
	cr_assert_eq(buf[0], 0xee);
	/* over AJ_PROTO_MAX_JSON even though the buffer is large */
	s = malloc(AJ_PROTO_MAX_JSON + 1);
	cr_assert_not_null(s);
	memset(s, 'x', AJ_PROTO_MAX_JSON);
	s[AJ_PROTO_MAX_JSON] = '\0';
	json_object_set_new(obj, "message", json_string(s));
	big = malloc(16 + AJ_PROTO_MAX_PAYLOAD);
	cr_assert_not_null(big);
	cr_assert_eq(aj_proto_frame_json(AJ_MSG_ERROR, 3, obj, big, 16 + AJ_PROTO_MAX_PAYLOAD),
		     -EMSGSIZE);
	free(big);
	free(s);
	json_decref(arr);
	json_decref(obj);
}

Test(proto, json_parse_rules)
{
	json_t *out = (json_t *)0x1;
	char err[256] = "";
	uint8_t *big;

	cr_assert_eq(aj_proto_parse_json((const uint8_t *)"[1]", 3, &out, err, sizeof(err)),
		     -EBADMSG);
	cr_assert_str_eq(err, "JSON payload is not an object");
	cr_assert_eq(out, (json_t *)0x1);
	cr_assert_eq(aj_proto_parse_json((const uint8_t *)"{\"a\":1,\"a\":2}", 13, &out, err,
					 sizeof(err)),
		     -EBADMSG);
	cr_assert_str_eq(err, "invalid JSON at byte 10: duplicate object key near '\"a\"'");
	cr_assert_eq(aj_proto_parse_json((const uint8_t *)"{} {}", 5, &out, err, sizeof(err)),
		     -EBADMSG);
	cr_assert_str_eq(err, "invalid JSON at byte 4: end of file expected near '{'");
	cr_assert_eq(
		aj_proto_parse_json((const uint8_t *)"{\"\xf5\":1}", 7, &out, err, sizeof(err)),
		-EBADMSG);
	cr_assert_str_eq(err, "invalid UTF-8 at byte 2");
	cr_assert_eq(aj_proto_parse_json((const uint8_t *)"{\"\xf4\x90\x80\x80\":1}", 10, &out, err,
					 sizeof(err)),
		     -EBADMSG);
	cr_assert_str_eq(err, "invalid UTF-8 at byte 2");
	cr_assert_eq(out, (json_t *)0x1);

	/* exactly the limit is accepted, one more byte is not */
	big = malloc(AJ_PROTO_MAX_JSON + 1);
	cr_assert_not_null(big);
	memset(big, ' ', AJ_PROTO_MAX_JSON + 1);
	big[0] = '{';
	big[AJ_PROTO_MAX_JSON - 1] = '}';
	cr_assert_eq(aj_proto_parse_json(big, AJ_PROTO_MAX_JSON, &out, err, sizeof(err)), 0, "%s",
		     err);
	cr_assert(json_is_object(out));
	json_decref(out);
	cr_assert_eq(aj_proto_parse_json(big, AJ_PROTO_MAX_JSON + 1, &out, err, sizeof(err)),
		     -EBADMSG);
	cr_assert_str_eq(err, "JSON payload of 16385 bytes exceeds the 16384-byte limit");
	free(big);

	/* deep nesting ends in an error, not a stack overflow */
	big = malloc(AJ_PROTO_MAX_JSON);
	cr_assert_not_null(big);
	big[0] = '{';
	big[1] = '"';
	big[2] = 'a';
	big[3] = '"';
	big[4] = ':';
	memset(big + 5, '[', AJ_PROTO_MAX_JSON - 5);
	cr_assert_eq(aj_proto_parse_json(big, AJ_PROTO_MAX_JSON, &out, err, sizeof(err)), -EBADMSG);
	cr_assert(strstr(err, "maximum parsing depth reached") != NULL, "%s", err);
	free(big);
}
