/*
 * The agent side of the broker protocol: a private channel (CONNECT, HELLO,
 * WELCOME) and requests over it, one at a time: the request body streamed
 * out in BODY frames, the response streamed in with flow control, or
 * handed over as a sealed memfd.
 *
 * Each operation is sent by an ask_<operation>() here and answered by the
 * broker's answer_<operation>() (broker/dispatch.c): one grep finds both
 * ends of HELLO, CONNECT, REQUEST, BODY, WINDOW and CANCEL.
 *
 * The broker is trusted no more than it must be: every frame is decoded
 * with its length checked, the JSON members are type-checked, the body
 * may not outrun the credit granted or the length announced, and a memfd
 * is believed only once sealed.  Anything unexpected is reported as the
 * broker being unavailable rather than believed, and ends the channel.
 */
#include "config.h"

#include <agentjail/client.h>
#include <agentjail/protocol.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "fdpass.h"
#include "field.h"
#include "fds.h"
#include "log.h"
#include "memfd.h"
#include "proto.h"

struct aj_client {
	int fd;               /* our end of the private channel; -1 once it is dead */
	uint32_t last_id;     /* ids are never reused: late frames of a cancelled
			       * request cannot be taken for the next one's */
	uint32_t window;      /* WELCOME "window": response bytes in flight per request */
	uint32_t max_payload; /* WELCOME "max_payload": largest BODY we send */
	char why[200];        /* why the channel is dead */
	uint8_t out[AJ_PROTO_HEADER_SIZE + AJ_PROTO_MAX_JSON];
	/* One byte more than the largest frame: a longer message shows as
	 * truncated (MSG_TRUNC) instead of being cut silently. */
	uint8_t in[AJ_PROTO_HEADER_SIZE + AJ_PROTO_MAX_PAYLOAD + 1];
	uint8_t body[AJ_PROTO_MAX_PAYLOAD]; /* request body read from an fd */
};

/* One frame from the broker. */
struct frame {
	struct aj_frame hdr;
	const uint8_t *payload; /* into the client's buffer */
	int fd;                 /* a passed fd (close-on-exec), or -1 */
};

static void
result_init(struct aj_fetch_result *res)
{
	memset(res, 0, sizeof(*res));
	res->length = -1;
	res->body_fd = -1;
}

/* An error record; STATUS stays, so an ERROR after RESPONSE keeps it. */
static void
set_error(struct aj_fetch_result *res, const char *code, const char *message)
{
	snprintf(res->code, sizeof(res->code), "%s", code);
	snprintf(res->message, sizeof(res->message), "%s", message);
	res->rule[0] = '\0';
}

/* The channel cannot be trusted any more: close it, remember why, and
 * report the current request as broker_unavailable. */
static void
kill_channel(struct aj_client *c, struct aj_fetch_result *res, const char *why)
{
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
		snprintf(c->why, sizeof(c->why), "%s", why);
	}
	if (res != NULL)
		set_error(res, AJ_ERR_UNAVAILABLE, why);
}

static int
send_frame(struct aj_client *c, uint8_t type, uint16_t flags, uint32_t id, const void *payload,
	   size_t len)
{
	struct aj_frame hdr = {.version = AJ_PROTO_VERSION,
			       .type = type,
			       .flags = flags,
			       .id = id,
			       .length = (uint32_t)len};
	uint8_t head[AJ_PROTO_HEADER_SIZE];
	struct iovec iov[2] = {{.iov_base = head, .iov_len = sizeof(head)},
			       {.iov_base = (void *)payload, .iov_len = len}};
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = len > 0 ? 2 : 1};
	ssize_t n;

	if (len > AJ_PROTO_MAX_PAYLOAD)
		return -EMSGSIZE;
	aj_proto_encode_header(&hdr, head);
	do
		n = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return (size_t)n == sizeof(head) + len ? 0 : -EPIPE;
}

/* Serialize OBJ (a reference taken) into one frame and send it. */
static int
send_json(struct aj_client *c, uint8_t type, uint32_t id, json_t *obj)
{
	int n = obj ? aj_proto_frame_json(type, id, obj, c->out, sizeof(c->out)) : -ENOMEM;

	json_decref(obj);
	if (n < 0)
		return n;
	return send_frame(c, type, 0, id, c->out + AJ_PROTO_HEADER_SIZE,
			  (size_t)n - AJ_PROTO_HEADER_SIZE);
}

/* WINDOW: CREDIT more response bytes of request ID were consumed.  A
 * failure to send shows on the next read. */
static void
ask_window(struct aj_client *c, uint32_t id, uint32_t credit)
{
	uint8_t le[AJ_PROTO_WINDOW_SIZE];

	aj_proto_window_encode(credit, le);
	(void)send_frame(c, AJ_MSG_WINDOW, 0, id, le, sizeof(le));
}

/* Abandon request ID.  A failure to send shows on the next read. */
static void
ask_cancel(struct aj_client *c, uint32_t id)
{
	if (c->fd >= 0)
		(void)send_frame(c, AJ_MSG_CANCEL, 0, id, NULL, 0);
}

/* One frame, with at most one passed fd.  Returns 1, 0 on EOF, -EBADMSG
 * with WHY for anything malformed, or -errno. */
static int
recv_frame(struct aj_client *c, struct frame *out, char *why, size_t whylen)
{
	char err[200];
	bool bad_fds;
	int fd;
	ssize_t n = aj_fdpass_recv(c->fd, c->in, sizeof(c->in), MSG_TRUNC, &fd, &bad_fds);

	if (n < 0)
		return (int)n;
	out->fd = -1;
	if (bad_fds || (size_t)n > sizeof(c->in)) {
		if (fd >= 0)
			close(fd);
		snprintf(why, whylen, "the broker sent %s",
			 bad_fds ? "more than one file descriptor" : "a frame over the size limit");
		return -EBADMSG;
	}
	if (n == 0 && fd < 0)
		return 0;
	if (aj_proto_decode(c->in, (size_t)n, &out->hdr, &out->payload, err, sizeof(err)) < 0) {
		if (fd >= 0)
			close(fd);
		snprintf(why, whylen, "the broker sent a malformed frame: %s", err);
		return -EBADMSG;
	}
	out->fd = fd;
	return 1;
}

/* ---- JSON from the broker: every member's type is checked ------------ */

/* A string member without NUL bytes; NULL if absent or null.  -EBADMSG
 * if it is there with another type. */
static int
get_string(json_t *obj, const char *key, const char **out)
{
	json_t *v = json_object_get(obj, key);

	*out = NULL;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
		return -EBADMSG;
	*out = json_string_value(v);
	return 0;
}

/* An integer member in [MIN, MAX]; -EBADMSG if absent, null or otherwise. */
static int
get_int(json_t *obj, const char *key, json_int_t min, json_int_t max, json_int_t *out)
{
	json_t *v = json_object_get(obj, key);

	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
		return -EBADMSG;
	*out = json_integer_value(v);
	return 0;
}

/* An ERROR payload into RES.  Returns 0 or -EBADMSG with WHY. */
static int
take_error(const struct frame *f, struct aj_fetch_result *res, char *why, size_t whylen)
{
	const char *code, *message, *rule;
	json_t *obj;
	int r;

	if (aj_proto_parse_json(f->payload, f->hdr.length, &obj, why, whylen) < 0)
		return -EBADMSG;
	r = get_string(obj, "code", &code);
	if (r == 0)
		r = get_string(obj, "message", &message);
	if (r == 0)
		r = get_string(obj, "rule", &rule);
	if (r == 0 && (code == NULL || code[0] == '\0' || strlen(code) >= sizeof(res->code)))
		r = -EBADMSG;
	if (r < 0) {
		snprintf(why, whylen, "the broker sent an ERROR without a proper code");
	} else {
		set_error(res, code, message ? message : "");
		snprintf(res->rule, sizeof(res->rule), "%s", rule ? rule : "");
	}
	json_decref(obj);
	return r;
}

/*
 * A RESPONSE payload: status, headers, length, url into RES and HEADERS
 * (pointing into *OBJ, which the caller releases).  Returns 0 or -EBADMSG
 * with WHY.
 */
static int
take_response(const struct frame *f, struct aj_fetch_result *res, json_t **obj,
	      struct aj_client_header *headers, size_t *n_headers, char *why, size_t whylen)
{
	json_t *hdrs, *length, *h;
	const char *url;
	json_int_t status, len;
	size_t i;

	*n_headers = 0;
	if (aj_proto_parse_json(f->payload, f->hdr.length, obj, why, whylen) < 0)
		return -EBADMSG;
	if (get_int(*obj, "status", 100, 599, &status) < 0) {
		snprintf(why, whylen, "the broker sent a RESPONSE without a valid status");
		return -EBADMSG;
	}
	length = json_object_get(*obj, "length");
	if (length == NULL || json_is_null(length)) {
		len = -1;
	} else if (get_int(*obj, "length", 0, INT64_MAX, &len) < 0) {
		snprintf(why, whylen, "the broker sent a RESPONSE with an invalid length");
		return -EBADMSG;
	}
	if (get_string(*obj, "url", &url) < 0 || (url != NULL && strlen(url) > AJ_PROTO_MAX_URL)) {
		snprintf(why, whylen, "the broker sent a RESPONSE with an invalid url");
		return -EBADMSG;
	}
	hdrs = json_object_get(*obj, "headers");
	if (hdrs != NULL &&
	    (!json_is_array(hdrs) || json_array_size(hdrs) > AJ_PROTO_MAX_HEADERS)) {
		snprintf(why, whylen,
			 "the broker sent RESPONSE headers that are not a list of "
			 "at most %d",
			 AJ_PROTO_MAX_HEADERS);
		return -EBADMSG;
	}
	json_array_foreach(hdrs, i, h)
	{
		json_t *name = json_array_get(h, 0), *value = json_array_get(h, 1);

		if (!json_is_array(h) || json_array_size(h) != 2 || !json_is_string(name) ||
		    !json_is_string(value) ||
		    strlen(json_string_value(name)) != json_string_length(name) ||
		    strlen(json_string_value(value)) != json_string_length(value) ||
		    strlen(json_string_value(name)) > AJ_PROTO_MAX_HEADER_NAME ||
		    json_string_length(value) > AJ_PROTO_MAX_HEADER_VALUE ||
		    !aj_field_is_token(json_string_value(name), json_string_length(name)) ||
		    !aj_field_is_value(json_string_value(value), json_string_length(value))) {
			snprintf(why, whylen, "the broker sent an invalid RESPONSE header #%zu",
				 i + 1);
			return -EBADMSG;
		}
		headers[i].name = json_string_value(name);
		headers[i].value = json_string_value(value);
	}
	*n_headers = json_array_size(hdrs);
	res->status = (int)status;
	res->length = len;
	snprintf(res->url, sizeof(res->url), "%s", url ? url : "");
	return 0;
}

/* ---- local I/O --------------------------------------------------------- */

static int
write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t w = write(fd, p, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd pfd = {.fd = fd, .events = POLLOUT};

			(void)poll(&pfd, 1, -1);
			continue;
		}
		if (w < 0)
			return -errno;
		if (w == 0)
			return -EIO;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* Up to CAP bytes of FD, short only at its end.  Returns the count or -errno. */
static ssize_t
read_full(int fd, uint8_t *buf, size_t cap)
{
	size_t got = 0;

	while (got < cap) {
		ssize_t n = read(fd, buf + got, cap - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd pfd = {.fd = fd, .events = POLLIN};

			(void)poll(&pfd, 1, -1);
			continue;
		}
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/* SIZE bytes of MEMFD, from offset 0 (its file offset is shared with the
 * broker's and means nothing), to OUT_FD. */
static int
copy_memfd(int memfd, int out_fd, uint64_t size, uint8_t *buf, size_t cap)
{
	off_t off = 0;

	while ((uint64_t)off < size) {
		size_t want = size - (uint64_t)off > (1u << 30) ? (1u << 30)
								: (size_t)(size - (uint64_t)off);
		ssize_t n = sendfile(out_fd, memfd, &off, want);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EINVAL || errno == ENOSYS))
			break; /* OUT_FD cannot take sendfile: copy by hand */
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd pfd = {.fd = out_fd, .events = POLLOUT};

			(void)poll(&pfd, 1, -1);
			continue;
		}
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO; /* sealed against shrinking: cannot happen */
	}
	while ((uint64_t)off < size) {
		size_t want = size - (uint64_t)off > cap ? cap : (size_t)(size - (uint64_t)off);
		ssize_t n = pread(memfd, buf, want, off);
		int r;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		r = write_all(out_fd, buf, (size_t)n);
		if (r < 0)
			return r;
		off += n;
	}
	return 0;
}

/* ---- the channel ------------------------------------------------------- */

/* A private channel: one end of a fresh socketpair goes to the broker
 * over the shared fd (CONNECT), so no other process of the jail can read
 * this client's answers.  Returns our end, or -errno. */
static int
ask_connect(int shared)
{
	uint8_t frame[AJ_PROTO_HEADER_SIZE];
	int sv[2];
	ssize_t n;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	if (aj_proto_frame(AJ_MSG_CONNECT, 0, 0, NULL, 0, frame, sizeof(frame)) < 0) {
		close(sv[0]);
		close(sv[1]);
		return -EMSGSIZE;
	}
	n = aj_fdpass_send(shared, frame, sizeof(frame), sv[1], 0);
	close(sv[1]);
	if (n != (ssize_t)sizeof(frame)) {
		close(sv[0]);
		return n < 0 ? (int)n : -EIO;
	}
	return sv[0];
}

/* $AGENTJAIL_FD, or -1. */
static int
env_fd(void)
{
	const char *env = getenv(AJ_FD_DOOR_ENV);
	char *end;
	long v;

	if (env == NULL || *env == '\0')
		return -1;
	errno = 0;
	v = strtol(env, &end, 10);
	if (errno != 0 || *end != '\0' || v < 0 || v > INT_MAX)
		return -1;
	return (int)v;
}

/* Is FD a unix seqpacket socket (the door, presumably), not some other
 * file a child got at that number after its parent closed the door? */
static bool
is_seqpacket(int fd)
{
	int type = 0, domain = 0;
	socklen_t len = sizeof(int);

	return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_SEQPACKET &&
	       getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 && domain == AF_UNIX;
}

/* A channel of its own on the broker socket ($AGENTJAIL_SOCKET): our end,
 * or -errno (-EBADF: no such variable). */
static int
dial_broker_socket(void)
{
	const char *path = getenv(AJ_BROKER_SOCKET_ENV);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd, e;

	if (path == NULL || *path == '\0')
		return -EBADF;
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (const struct sockaddr *)&sa, sizeof(sa)) == 0)
		return fd;
	e = errno;
	close(fd);
	return -e;
}

/* The default way to the broker: CONNECT on the door ($AGENTJAIL_FD) when
 * this process has it, else the broker socket (its parent closed the
 * door, as Python's subprocess and Node's spawn do by default). */
static int
open_default_channel(void)
{
	int door = env_fd(), r;

	if (door >= 0 && is_seqpacket(door)) {
		r = ask_connect(door);
		if (r >= 0 || r == -EMFILE || r == -ENFILE)
			return r;
	}
	r = dial_broker_socket();
	if (r == -EBADF)
		return door >= 0 ? -ECONNREFUSED : -EBADF;
	/* No socket file, or nobody listening: the broker is gone. */
	return r == -ENOENT ? -ECONNREFUSED : r;
}

/* WELCOME: version 1 and the limits this client obeys. */
static int
take_welcome(struct aj_client *c, const struct frame *f)
{
	char why[256];
	json_int_t version, window, max_payload;
	json_t *obj;
	int r;

	if (aj_proto_parse_json(f->payload, f->hdr.length, &obj, why, sizeof(why)) < 0)
		return -EBADMSG;
	r = get_int(obj, "version", AJ_PROTO_VERSION, AJ_PROTO_VERSION, &version);
	if (r == 0)
		r = get_int(obj, "window", 1, UINT32_MAX, &window);
	if (r == 0)
		r = get_int(obj, "max_payload", 1, AJ_PROTO_MAX_PAYLOAD, &max_payload);
	json_decref(obj);
	if (r < 0)
		return r;
	c->window = (uint32_t)window;
	c->max_payload = (uint32_t)max_payload;
	return 0;
}

/* HELLO, then WELCOME or an ERROR.  Returns 0 or a negative errno as
 * aj_client_open() documents. */
static int
ask_hello(struct aj_client *c)
{
	struct aj_fetch_result res;
	struct frame f;
	char why[256];
	int r;

	/* A refusal (rate_limited) may already be waiting, and the broker may
	 * have closed its end after it: read the answer even if HELLO cannot
	 * be sent. */
	(void)send_json(c, AJ_MSG_HELLO, 0,
			json_pack("{s:i, s:s}", "version", AJ_PROTO_VERSION, "client",
				  "libagentjail/" PACKAGE_VERSION));
	r = recv_frame(c, &f, why, sizeof(why));
	if (r <= 0)
		return r == -ENOMEM ? r : -ECONNREFUSED;
	if (f.fd >= 0)
		close(f.fd);
	if (f.fd < 0 && f.hdr.type == AJ_MSG_WELCOME)
		return take_welcome(c, &f) < 0 ? -ECONNREFUSED : 0;
	if (f.fd < 0 && f.hdr.type == AJ_MSG_ERROR && f.hdr.id == 0 &&
	    take_error(&f, &res, why, sizeof(why)) == 0)
		return strcmp(res.code, AJ_ERR_RATE_LIMITED) == 0 ? -EAGAIN : -EPROTO;
	return -ECONNREFUSED;
}

int
aj_client_open(int fd, struct aj_client **out)
{
	struct aj_client *c;
	int r;

	if (out == NULL)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	c->fd = fd >= 0 ? ask_connect(fd) : open_default_channel();
	if (c->fd < 0) {
		/* Not a socket, or nobody at the other end. */
		r = c->fd;
		free(c);
		return r == -EMFILE || r == -ENFILE || r == -ENOMEM ? r
		       : r == -EBADF || r == -ENOTSOCK              ? -EBADF
								    : -ECONNREFUSED;
	}
	r = ask_hello(c);
	if (r < 0) {
		aj_client_close(c);
		return r;
	}
	*out = c;
	return 0;
}

void
aj_client_close(struct aj_client *c)
{
	if (c == NULL)
		return;
	if (c->fd >= 0)
		close(c->fd);
	free(c);
}

void
aj_client_req_init(struct aj_client_req *req)
{
	memset(req, 0, sizeof(*req));
	req->method = "GET";
	req->body_fd = -1;
	req->out_fd = -1;
}

/* ---- one request --------------------------------------------------------- */

/* "Name: value" strings as the protocol's [[name, value], ...]. */
static int
build_headers(const char *const *headers, json_t **out)
{
	json_t *list = json_array();
	size_t n = 0;

	if (list == NULL)
		return -ENOMEM;
	for (const char *const *h = headers; h && *h; h++) {
		const char *colon = strchr(*h, ':');
		const char *value;

		if (colon == NULL || colon == *h || ++n > AJ_PROTO_MAX_HEADERS) {
			json_decref(list);
			return -EINVAL;
		}
		for (value = colon + 1; *value == ' ' || *value == '\t'; value++)
			;
		if (json_array_append_new(list,
					  json_pack("[s#, s]", *h, (int)(colon - *h), value)) < 0) {
			json_decref(list);
			return -ENOMEM;
		}
	}
	*out = list;
	return 0;
}

/*
 * While the body goes out, the broker may already have refused the request
 * (too_large, denied): take any waiting frame without blocking.  Returns 1
 * when the request is over (RES says why), 0 to go on.
 */
static int
check_early_answer(struct aj_client *c, uint32_t id, struct aj_fetch_result *res)
{
	struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
	struct frame f;
	char why[256];
	int r;

	while (poll(&pfd, 1, 0) > 0) {
		r = recv_frame(c, &f, why, sizeof(why));
		if (r <= 0) {
			kill_channel(c, res,
				     r == 0          ? "the broker closed the channel"
				     : r == -EBADMSG ? why
						     : "reading from the broker failed");
			return 1;
		}
		if (f.fd >= 0) {
			close(f.fd);
			kill_channel(c, res, "the broker passed a file descriptor out of place");
			return 1;
		}
		if (f.hdr.id != id && f.hdr.id != 0)
			continue; /* a late frame of an abandoned request */
		if (f.hdr.type != AJ_MSG_ERROR) {
			kill_channel(c, res,
				     "the broker answered before the request body was sent");
			return 1;
		}
		if (take_error(&f, res, why, sizeof(why)) < 0) {
			kill_channel(c, res, why);
			return 1;
		}
		if (f.hdr.id == 0) {
			/* The channel itself failed; the broker closes it. */
			close(c->fd);
			c->fd = -1;
			snprintf(c->why, sizeof(c->why), "the broker closed the channel (%s)",
				 res->code);
			return 1;
		}
		ask_cancel(c, id); /* the rest of the body is not wanted */
		return 1;
	}
	return 0;
}

/* Sends a BODY frame; a failure ends the channel.  Returns 0 or 1 (over). */
static int
ask_body(struct aj_client *c, uint32_t id, const void *p, size_t len, bool last,
	  struct aj_fetch_result *res)
{
	if (check_early_answer(c, id, res))
		return 1;
	if (send_frame(c, AJ_MSG_BODY, last ? AJ_FLAG_END : 0, id, p, len) < 0) {
		kill_channel(c, res, "the broker is gone (sending the request body)");
		return 1;
	}
	return 0;
}

/* REQUEST and the body after it.  Returns 0 (the answer is next), 1 (over:
 * RES says why) or -errno. */
static int
ask_request(struct aj_client *c, uint32_t id, const struct aj_client_req *req, json_t *meta,
	     struct aj_fetch_result *res)
{
	const size_t chunk = c->max_payload;
	ssize_t n = 0;
	bool end;
	int r;

	if (req->flags & AJ_CLIENT_BODY_FD) {
		/* Read ahead: an empty body is a REQUEST with END. */
		n = read_full(req->body_fd, c->body, chunk);
		if (n < 0) {
			json_decref(meta);
			snprintf(res->message, sizeof(res->message), "reading the request body: %s",
				 strerror((int)-n));
			return (int)n;
		}
	}
	r = aj_proto_frame_json(AJ_MSG_REQUEST, id, meta, c->out, sizeof(c->out));
	json_decref(meta);
	if (r < 0)
		return r == -EMSGSIZE ? r : -ENOMEM;
	end = (req->flags & AJ_CLIENT_BODY_FD) ? n == 0 : req->body_len == 0;
	r = send_frame(c, AJ_MSG_REQUEST, end ? AJ_FLAG_END : 0, id, c->out + AJ_PROTO_HEADER_SIZE,
		       (size_t)r - AJ_PROTO_HEADER_SIZE);
	if (r < 0) {
		kill_channel(c, res, "the broker is gone (sending the request)");
		return 1;
	}
	if (end)
		return 0;
	if (req->flags & AJ_CLIENT_BODY_FD) {
		/* A short read means the end: the last frame says so. */
		for (;;) {
			bool last = (size_t)n < chunk;

			if (ask_body(c, id, c->body, (size_t)n, last, res))
				return 1;
			if (last)
				return 0;
			n = read_full(req->body_fd, c->body, chunk);
			if (n < 0) {
				ask_cancel(c, id);
				snprintf(res->message, sizeof(res->message),
					 "reading the request body: %s", strerror((int)-n));
				return (int)n;
			}
			if (n == 0) /* it ended on a full chunk */
				return ask_body(c, id, NULL, 0, true, res);
		}
	}
	for (size_t off = 0; off < req->body_len; off += chunk) {
		size_t len = req->body_len - off < chunk ? req->body_len - off : chunk;

		if (ask_body(c, id, (const uint8_t *)req->body + off, len,
			      off + len == req->body_len, res))
			return 1;
	}
	return 0;
}

/* The RESPONSE of a memfd delivery: check the fd, then copy or hand it
 * over.  Returns 0 (RES complete or an error record) or -errno. */
static int
take_memfd(struct aj_client *c, int memfd, const struct aj_client_req *req,
	   struct aj_fetch_result *res)
{
	struct stat st;
	int r;

	/* Sealed before its size and contents are believed. */
	if (!aj_memfd_is_sealed(memfd) || fstat(memfd, &st) < 0 ||
	    !S_ISREG(st.st_mode) || res->length < 0 || st.st_size != res->length) {
		close(memfd);
		kill_channel(c, res,
			     "the broker's memfd is not sealed or its size is not the length");
		return 0;
	}
	res->received = (uint64_t)st.st_size;
	if (req->out_fd < 0) {
		(void)lseek(memfd, 0, SEEK_SET);
		res->body_fd = memfd;
		return 0;
	}
	r = copy_memfd(memfd, req->out_fd, (uint64_t)st.st_size, c->body, sizeof(c->body));
	close(memfd);
	if (r < 0)
		snprintf(res->message, sizeof(res->message), "writing the response body: %s",
			 strerror(-r));
	return r;
}

/* Move up to WANT bytes of the pipe PIPE_R (blocking) to OUT_FD (-1:
 * discarded).  Returns the count (0 at EOF), -EPROTO when reading the pipe
 * fails, or -errno of writing.  Spliced while OUT_FD takes it (*CAN_SPLICE
 * is cleared for good when not), else copied through BUF. */
static ssize_t
pipe_step(int pipe_r, int out_fd, size_t want, bool *can_splice, uint8_t *buf, size_t cap)
{
	ssize_t n;
	int r;

	for (;;) {
		if (out_fd >= 0 && *can_splice) {
			n = splice(pipe_r, NULL, out_fd, NULL, want, SPLICE_F_MOVE);
			if (n >= 0)
				return n;
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				/* OUT_FD is non-blocking and full (the pipe
				 * is blocking: it waits by itself). */
				struct pollfd pfd = {.fd = out_fd, .events = POLLOUT};

				(void)poll(&pfd, 1, -1);
				continue;
			}
			if (errno != EINVAL && errno != ENOSYS && errno != EBADF)
				return -errno;
			*can_splice = false; /* OUT_FD cannot take splice: copy by hand */
		}
		n = read(pipe_r, buf, want < cap ? want : cap);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -EPROTO;
		if (n > 0 && out_fd >= 0 && (r = write_all(out_fd, buf, (size_t)n)) < 0)
			return r;
		return n;
	}
}

/* The RESPONSE of a pipe delivery: the body is what the pipe carries to
 * its EOF, never more than the length announced; END or ERROR follows on
 * the channel (read_answer()).  Returns 0 (go on reading the channel; RES
 * may be an error record after kill_channel()) or -errno of OUT_FD. */
static int
take_pipe(struct aj_client *c, int pipe_r, const struct aj_client_req *req,
	  struct aj_fetch_result *res)
{
	bool can_splice = true;
	struct stat st;
	int fl = fcntl(pipe_r, F_GETFL);

	if (fl < 0 || (fl & O_ACCMODE) != O_RDONLY || fstat(pipe_r, &st) < 0 ||
	    !S_ISFIFO(st.st_mode) || fcntl(pipe_r, F_SETFL, fl & ~O_NONBLOCK) < 0) {
		close(pipe_r);
		kill_channel(c, res, "the broker's body pipe is not the read end of a pipe");
		return 0;
	}
	for (;;) {
		uint64_t left = res->length >= 0 ? (uint64_t)res->length - res->received
						 : (uint64_t)1 << 30;
		size_t want = left < ((size_t)1 << 20) ? (size_t)left : (size_t)1 << 20;
		ssize_t n;

		if (want == 0) {
			/* All announced bytes are in: the pipe must end here. */
			do
				n = read(pipe_r, c->body, 1);
			while (n < 0 && errno == EINTR);
			if (n == 0)
				break;
			close(pipe_r);
			kill_channel(c, res,
				     n > 0 ? "the broker sent more than the announced length"
					   : "reading the broker's body pipe failed");
			return 0;
		}
		n = pipe_step(pipe_r, req->out_fd, want, &can_splice, c->body, sizeof(c->body));
		if (n == 0)
			break;
		if (n == -EPROTO) {
			close(pipe_r);
			kill_channel(c, res, "reading the broker's body pipe failed");
			return 0;
		}
		if (n < 0) {
			close(pipe_r);
			ask_cancel(c, c->last_id);
			snprintf(res->message, sizeof(res->message),
				 "writing the response body: %s", strerror((int)-n));
			return (int)n;
		}
		res->received += (uint64_t)n;
	}
	close(pipe_r);
	return 0;
}

/* No body follows a HEAD request or these statuses, whatever the length
 * says (RFC 9110, 6.4.1). */
static bool
has_no_body(const struct aj_client_req *req, int status)
{
	return strcmp(req->method, "HEAD") == 0 || status < 200 || status == 204 || status == 304;
}

/* RESPONSE and BODY frames (or an ERROR) for request ID.  Returns 0 with
 * RES complete or an error record, or -errno (see aj_client_request). */
static int
read_answer(struct aj_client *c, uint32_t id, const struct aj_client_req *req,
	    struct aj_fetch_result *res)
{
	uint64_t credit = c->window, ungranted = 0;
	bool answered = false, piped = false;
	struct frame f;
	char why[256];
	int r;

	for (;;) {
		r = recv_frame(c, &f, why, sizeof(why));
		if (r <= 0) {
			kill_channel(c, res,
				     r == 0          ? "the broker closed the channel"
				     : r == -EBADMSG ? why
						     : "reading from the broker failed");
			return 0;
		}
		if (f.hdr.type != AJ_MSG_RESPONSE && f.hdr.type != AJ_MSG_BODY &&
		    f.hdr.type != AJ_MSG_ERROR) {
			if (f.fd >= 0)
				close(f.fd);
			snprintf(why, sizeof(why), "the broker sent %s",
				 aj_proto_type_name(f.hdr.type));
			kill_channel(c, res, why);
			return 0;
		}
		if (f.hdr.id != id && f.hdr.id != 0) {
			/* A late frame of an abandoned request (its memfd too). */
			if (f.fd >= 0)
				close(f.fd);
			continue;
		}
		if (f.fd >= 0 && !(f.hdr.type == AJ_MSG_RESPONSE &&
				   (req->flags & (AJ_CLIENT_MEMFD | AJ_CLIENT_PIPE)) && !answered)) {
			close(f.fd);
			kill_channel(c, res, "the broker passed a file descriptor out of place");
			return 0;
		}
		if (f.hdr.type == AJ_MSG_ERROR) {
			if (take_error(&f, res, why, sizeof(why)) < 0) {
				kill_channel(c, res, why);
				return 0;
			}
			if (f.hdr.id == 0) {
				close(c->fd);
				c->fd = -1;
				snprintf(c->why, sizeof(c->why),
					 "the broker closed the channel (%s)", res->code);
			}
			return 0;
		}
		if (f.hdr.type == AJ_MSG_RESPONSE) {
			struct aj_client_header headers[AJ_PROTO_MAX_HEADERS];
			size_t n_headers;
			json_t *obj = NULL;

			if (answered) {
				kill_channel(c, res, "the broker sent a second RESPONSE");
				r = 0;
			} else if (take_response(&f, res, &obj, headers, &n_headers, why,
						 sizeof(why)) < 0) {
				kill_channel(c, res, why);
				r = 0;
			} else if ((req->flags & (AJ_CLIENT_MEMFD | AJ_CLIENT_PIPE)) && f.fd < 0) {
				kill_channel(c, res,
					     (req->flags & AJ_CLIENT_MEMFD)
						     ? "the broker sent no memfd with the RESPONSE"
						     : "the broker sent no pipe with the RESPONSE");
				r = 0;
			} else {
				answered = true;
				r = req->on_response
					    ? req->on_response(res, headers, n_headers, req->arg)
					    : 0;
				if (r < 0)
					ask_cancel(c, id);
				else if (r > 0)
					r = 0;
			}
			json_decref(obj);
			if (f.fd >= 0 && (r < 0 || res->code[0] != '\0')) {
				close(f.fd);
				return r;
			}
			if (r < 0 || res->code[0] != '\0')
				return r;
			if (f.fd >= 0 && (req->flags & AJ_CLIENT_MEMFD))
				return take_memfd(c, f.fd, req, res);
			if (f.fd >= 0) {
				r = take_pipe(c, f.fd, req, res);
				if (r < 0 || c->fd < 0)
					return r;
				piped = true;
			}
			continue;
		}

		/* BODY: within the credit granted and the length announced. */
		if (!answered) {
			kill_channel(c, res, "the broker sent BODY before RESPONSE");
			return 0;
		}
		if ((req->flags & AJ_CLIENT_MEMFD) || (piped && f.hdr.length > 0) ||
		    f.hdr.length > credit ||
		    (res->length >= 0 && res->received + f.hdr.length > (uint64_t)res->length)) {
			kill_channel(c, res,
				     (req->flags & AJ_CLIENT_MEMFD) ? "the broker sent BODY after a memfd"
				     : piped ? "the broker sent BODY bytes beside the pipe"
				     : f.hdr.length > credit
					     ? "the broker sent more than the window allows"
					     : "the broker sent more than the announced length");
			return 0;
		}
		credit -= f.hdr.length;
		res->received += f.hdr.length;
		if (req->out_fd >= 0 && f.hdr.length > 0) {
			r = write_all(req->out_fd, f.payload, f.hdr.length);
			if (r < 0) {
				ask_cancel(c, id);
				snprintf(res->message, sizeof(res->message),
					 "writing the response body: %s", strerror(-r));
				return r;
			}
		}
		if (f.hdr.flags & AJ_FLAG_END) {
			if (res->length >= 0 && res->received < (uint64_t)res->length &&
			    !has_no_body(req, res->status)) {
				snprintf(why, sizeof(why),
					 "the body ended after %llu of %lld bytes",
					 (unsigned long long)res->received, (long long)res->length);
				set_error(res, AJ_ERR_UPSTREAM, why);
			}
			return 0;
		}
		/* Consumed: grant it back once half the window is, so the
		 * broker never waits on a client that keeps up. */
		ungranted += f.hdr.length;
		if (ungranted >= (c->window + 1) / 2) {
			ask_window(c, id, (uint32_t)ungranted);
			credit += ungranted;
			ungranted = 0;
		}
	}
}

/* The request into RES, which may hold a message on a negative return. */
static int
client_request(struct aj_client *c, const struct aj_client_req *req, struct aj_fetch_result *res)
{
	json_t *meta, *hdrs = NULL;
	uint32_t id;
	int r;

	result_init(res);
	if (c == NULL || req == NULL || req->url == NULL || req->method == NULL) {
		snprintf(res->message, sizeof(res->message),
			 "a client, a URL and a method are required");
		return -EINVAL;
	}
	if ((req->body != NULL && (req->flags & AJ_CLIENT_BODY_FD)) ||
	    (req->body == NULL && req->body_len > 0) ||
	    ((req->flags & AJ_CLIENT_BODY_FD) && req->body_fd < 0)) {
		snprintf(res->message, sizeof(res->message),
			 "the body: BODY or AJ_CLIENT_BODY_FD with a BODY_FD, not both");
		return -EINVAL;
	}
	if ((req->flags & ~(unsigned)(AJ_CLIENT_MEMFD | AJ_CLIENT_PIPE | AJ_CLIENT_BODY_FD)) ||
	    ((req->flags & AJ_CLIENT_MEMFD) && (req->flags & AJ_CLIENT_PIPE))) {
		snprintf(res->message, sizeof(res->message),
			 "flags: unknown, or AJ_CLIENT_MEMFD with AJ_CLIENT_PIPE");
		return -EINVAL;
	}
	r = build_headers(req->headers, &hdrs);
	if (r == -EINVAL)
		snprintf(res->message, sizeof(res->message),
			 "headers: one is not 'Name: value', or there are more than %d",
			 AJ_PROTO_MAX_HEADERS);
	if (r < 0)
		return r;
	if (c->fd < 0) {
		json_decref(hdrs);
		set_error(res, AJ_ERR_UNAVAILABLE, c->why);
		return 0;
	}
	meta = json_pack("{s:s, s:s, s:o}", "method", req->method, "url", req->url, "headers",
			 hdrs);
	/* "stream" is the default: said only when it is not, which older
	 * brokers also understand. */
	if (meta != NULL && (req->flags & (AJ_CLIENT_MEMFD | AJ_CLIENT_PIPE)) &&
	    json_object_set_new(meta, "deliver",
				json_string((req->flags & AJ_CLIENT_MEMFD) ? "memfd" : "pipe")) < 0) {
		json_decref(meta);
		meta = NULL;
	}
	if (meta == NULL)
		return -ENOMEM;
	if (++c->last_id == 0)
		c->last_id = 1;
	id = c->last_id;
	r = ask_request(c, id, req, meta, res);
	if (r == -EMSGSIZE)
		snprintf(res->message, sizeof(res->message),
			 "the method, URL and headers do not fit one request frame");
	if (r != 0)
		return r < 0 ? r : 0;
	r = read_answer(c, id, req, res);
	if (r < 0 && res->message[0] == '\0')
		snprintf(res->message, sizeof(res->message),
			 "the response callback abandoned the request");
	return r;
}

int
aj_client_request(struct aj_client *c, const struct aj_client_req *req, struct aj_fetch_result *res,
		  char *err, size_t errlen)
{
	/* Outputs only on success: the work is done in a copy. */
	struct aj_fetch_result tmp;
	int r;

	if (res == NULL)
		return aj_err(err, errlen, -EINVAL, "a result record is required");
	r = client_request(c, req, &tmp);
	if (r < 0) {
		if (tmp.body_fd >= 0)
			close(tmp.body_fd);
		return aj_err(err, errlen, r, "%s",
			      tmp.message[0] != '\0' ? tmp.message : strerror(-r));
	}
	*res = tmp;
	return 0;
}

int
aj_client_fetch(int fd, const char *method, const char *url, const char *const *headers, int out_fd,
		struct aj_fetch_result *res, char *err, size_t errlen)
{
	struct aj_client_req req;
	struct aj_client *c = NULL;
	int r;

	for (const char *const *h = headers; h && *h; h++)
		if (strchr(*h, ':') == NULL || **h == ':')
			return aj_err(err, errlen, -EINVAL, "headers: '%s' is not 'Name: value'",
				      *h);
	if (res == NULL)
		return aj_err(err, errlen, -EINVAL, "a result record is required");
	aj_client_req_init(&req);
	req.method = method;
	req.url = url;
	req.headers = headers;
	req.out_fd = out_fd;
	r = aj_client_open(fd, &c);
	if (r < 0) {
		if (r == -ENOMEM)
			return aj_err(err, errlen, r, "out of memory");
		/* No channel is an answer, not a failure of the call. */
		result_init(res);
		set_error(res, r == -EAGAIN ? AJ_ERR_RATE_LIMITED : AJ_ERR_UNAVAILABLE,
			  r == -EBADF ? "no broker socket ($AGENTJAIL_FD and $AGENTJAIL_SOCKET "
					"unset): not inside a jail?"
			  : r == -EAGAIN ? "the broker serves too many channels"
			  : r == -EMFILE || r == -ENFILE
				  ? "no file descriptor left for a channel"
				  : "the broker is gone (opening a channel)");
		return 0;
	}
	r = aj_client_request(c, &req, res, err, errlen);
	aj_client_close(c);
	return r;
}
