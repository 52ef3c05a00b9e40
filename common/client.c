/*
 * The agent side of the broker protocol: one fetch at a time over the
 * inherited socket.  The broker is trusted no more than it must be: every
 * frame is decoded with its length checked, and anything unexpected is
 * reported as the broker being unavailable rather than believed.
 */
#include "config.h"

#include <agentjail/client.h>
#include <agentjail/protocol.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"

static void
set_error(struct aj_fetch_result *res, const char *code, const char *message)
{
	res->status = 0;
	snprintf(res->code, sizeof(res->code), "%s", code);
	snprintf(res->message, sizeof(res->message), "%s", message);
	res->rule[0] = '\0';
}

static int
send_frame_json(int fd, uint8_t type, uint16_t flags, uint32_t id, json_t *obj)
{
	static uint8_t buf[AJ_PROTO_HEADER_SIZE + AJ_PROTO_MAX_JSON];
	int n = obj ? aj_proto_frame_json(type, id, obj, buf, sizeof(buf)) : -ENOMEM;

	json_decref(obj);
	if (n < 0)
		return n;
	if (flags != 0) {
		struct aj_frame hdr = {.version = AJ_PROTO_VERSION,
				       .type = type,
				       .flags = flags,
				       .id = id,
				       .length = (uint32_t)n - AJ_PROTO_HEADER_SIZE};
		aj_proto_encode_header(&hdr, buf);
	}
	return send(fd, buf, (size_t)n, MSG_NOSIGNAL) == n ? 0 : -errno;
}

/* One frame from the broker; 0 on EOF, 1 with *F and *PAYLOAD, -errno. */
static int
recv_frame(int fd, uint8_t *buf, size_t cap, struct aj_frame *f, const uint8_t **payload)
{
	char err[256];
	ssize_t n;

	do
		n = recv(fd, buf, cap, MSG_TRUNC);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return n == 0 ? 0 : -errno;
	if ((size_t)n > cap)
		return -EMSGSIZE;
	if (aj_proto_decode(buf, (size_t)n, f, payload, err, sizeof(err)) < 0)
		return -EBADMSG;
	return 1;
}

/* A private channel: one end of a fresh socketpair goes to the broker
 * over the shared fd (CONNECT), so no other process of the jail can read
 * this client's answers.  Returns our end, or -errno. */
static int
open_channel(int shared)
{
	uint8_t frame[AJ_PROTO_HEADER_SIZE];
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} control;
	struct iovec iov = {.iov_base = frame, .iov_len = sizeof(frame)};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = control.buf,
			    .msg_controllen = sizeof(control.buf)};
	struct cmsghdr *cm;
	int sv[2], r;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	if (aj_proto_frame(AJ_MSG_CONNECT, 0, 0, NULL, 0, frame, sizeof(frame)) < 0) {
		close(sv[0]);
		close(sv[1]);
		return -EMSGSIZE;
	}
	memset(&control, 0, sizeof(control));
	cm = CMSG_FIRSTHDR(&mh);
	if (cm == NULL) {
		close(sv[0]);
		close(sv[1]);
		return -EINVAL;
	}
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &sv[1], sizeof(int));
	r = sendmsg(shared, &mh, MSG_NOSIGNAL) == (ssize_t)sizeof(frame) ? 0 : -errno;
	close(sv[1]);
	if (r < 0) {
		close(sv[0]);
		return r;
	}
	return sv[0];
}

static void
copy_string(json_t *obj, const char *key, char *out, size_t len)
{
	const char *s = json_string_value(json_object_get(obj, key));

	snprintf(out, len, "%s", s ? s : "");
}

static int
fetch_on(int fd, const char *method, const char *url, const char *const *headers, int out_fd,
	 struct aj_fetch_result *res)
{
	static uint8_t buf[AJ_PROTO_HEADER_SIZE + AJ_PROTO_MAX_PAYLOAD + 1];
	json_t *req, *hdrs;
	struct aj_frame f;
	const uint8_t *payload;
	char err[256];
	int r;

	hdrs = json_array();
	for (const char *const *h = headers; h && *h; h++) {
		const char *colon = strchr(*h, ':');
		const char *value;

		if (colon == NULL || colon == *h) {
			json_decref(hdrs);
			return -EINVAL;
		}
		for (value = colon + 1; *value == ' ' || *value == '\t'; value++)
			;
		json_array_append_new(hdrs, json_pack("[s#, s]", *h, (int)(colon - *h), value));
	}
	if (send_frame_json(fd, AJ_MSG_HELLO, 0, 0,
			    json_pack("{s:i, s:s}", "version", AJ_PROTO_VERSION, "client",
				      "agentjail-fetch/" PACKAGE_VERSION)) < 0) {
		json_decref(hdrs);
		set_error(res, AJ_ERR_UNAVAILABLE, "the broker is gone (sending HELLO)");
		return 0;
	}
	r = recv_frame(fd, buf, sizeof(buf) - 1, &f, &payload);
	if (r <= 0 || f.type != AJ_MSG_WELCOME) {
		json_decref(hdrs);
		set_error(res, AJ_ERR_UNAVAILABLE, "the broker did not answer HELLO");
		return 0;
	}
	req = json_pack("{s:s, s:s, s:o}", "method", method, "url", url, "headers", hdrs);
	if (send_frame_json(fd, AJ_MSG_REQUEST, AJ_FLAG_END, 1, req) < 0) {
		set_error(res, AJ_ERR_UNAVAILABLE, "the broker is gone (sending the request)");
		return 0;
	}
	for (;;) {
		json_t *meta = NULL;

		r = recv_frame(fd, buf, sizeof(buf) - 1, &f, &payload);
		if (r <= 0) {
			set_error(res, AJ_ERR_UNAVAILABLE,
				  r == 0 ? "the broker closed the channel"
					 : "the broker sent a malformed frame");
			return 0;
		}
		if (f.id != 1 && !(f.type == AJ_MSG_ERROR && f.id == 0))
			continue; /* not ours: this client has one request */
		switch (f.type) {
		case AJ_MSG_ERROR:
			if (aj_proto_parse_json(payload, f.length, &meta, err, sizeof(err)) < 0) {
				set_error(res, AJ_ERR_UNAVAILABLE, err);
				return 0;
			}
			copy_string(meta, "code", res->code, sizeof(res->code));
			copy_string(meta, "message", res->message, sizeof(res->message));
			copy_string(meta, "rule", res->rule, sizeof(res->rule));
			json_decref(meta);
			if (res->code[0] == '\0')
				snprintf(res->code, sizeof(res->code), "%s", AJ_ERR_UPSTREAM);
			return 0;
		case AJ_MSG_RESPONSE:
			if (aj_proto_parse_json(payload, f.length, &meta, err, sizeof(err)) < 0) {
				set_error(res, AJ_ERR_UNAVAILABLE, err);
				return 0;
			}
			res->status = (int)json_integer_value(json_object_get(meta, "status"));
			json_decref(meta);
			break;
		case AJ_MSG_BODY: {
			size_t done = 0;
			uint8_t credit[4];
			uint8_t frame[AJ_PROTO_HEADER_SIZE + 4];

			while (done < f.length) {
				ssize_t w = write(out_fd, payload + done, f.length - done);
				if (w < 0 && errno == EINTR)
					continue;
				if (w <= 0)
					return -errno;
				done += (size_t)w;
			}
			if (f.flags & AJ_FLAG_END)
				return 0;
			/* Consumed: the broker may send as much again. */
			credit[0] = (uint8_t)f.length;
			credit[1] = (uint8_t)(f.length >> 8);
			credit[2] = (uint8_t)(f.length >> 16);
			credit[3] = (uint8_t)(f.length >> 24);
			if (aj_proto_frame(AJ_MSG_WINDOW, 0, 1, credit, 4, frame, sizeof(frame)) >
			    0)
				(void)send(fd, frame, sizeof(frame), MSG_NOSIGNAL);
			break;
		}
		default:
			break;
		}
	}
}

int
aj_client_fetch(int fd, const char *method, const char *url, const char *const *headers, int out_fd,
		struct aj_fetch_result *res)
{
	const char *env = getenv("AGENTJAIL_FD");
	int ch, r;

	memset(res, 0, sizeof(*res));
	for (const char *const *h = headers; h && *h; h++)
		if (strchr(*h, ':') == NULL || **h == ':')
			return -EINVAL;
	if (fd < 0)
		fd = env ? atoi(env) : -1;
	if (fd < 0) {
		set_error(res, AJ_ERR_UNAVAILABLE, "AGENTJAIL_FD is not set: not inside a jail?");
		return 0;
	}
	ch = open_channel(fd);
	if (ch < 0) {
		set_error(res, AJ_ERR_UNAVAILABLE, "the broker is gone (opening a channel)");
		return 0;
	}
	r = fetch_on(ch, method, url, headers, out_fd, res);
	close(ch);
	return r;
}
