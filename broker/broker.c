/*
 * agentjail-broker: the agent's one door (docs/PROTOCOL.md).
 *
 * This file speaks the wire protocol -- handshake, framing, permit table,
 * error records -- and decides each request with the profile's rules on the
 * normalised URL; broker/fetch.c performs the allowed ones.  Everything the
 * agent sends is untrusted: each frame is decoded with its length checked
 * before use, a malformed one ends the channel with one ERROR record, and
 * nothing here can take the supervisor down with it.
 *
 *   agentjail-broker --supervisor PID [--user UID:GID] [--policy NAME]
 *
 * Started by the supervisor with posix_spawn: the inherited channel at fd
 * 3, the resolved policy (a sealed memfd) at 4, the audit pipe at 5.
 * Before reading anything it ties its life to the supervisor's, (started
 * by root) becomes UID:GID with no supplementary groups, which clears every
 * capability, and loads its own seccomp filter (broker/confine.c): no exec,
 * ptrace, mount, namespaces, kernel modules.
 */
#include "config.h"

#include <agentjail/exitcodes.h>
#include <agentjail/protocol.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <grp.h>
#include <jansson.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "broker.h"
#include "fdpass.h"
#include "handover.h"
#include "fds.h"
#include "log.h"
#include "util.h"

#if defined(__SANITIZE_ADDRESS__)
/* ASan builds: LeakSanitizer's exit-time check ptraces the process, which
 * the broker's own filter refuses; it would turn every exit into a
 * failure.  The unit tests and the fuzzers check these code paths for
 * leaks instead. */
const char *__asan_default_options(void);
const char *
__asan_default_options(void)
{
	return "detect_leaks=0";
}
#endif

/* Where Debian keeps the system's CA certificates (package ca-certificates). */
#define SYSTEM_CA_BUNDLE "/etc/ssl/certs/ca-certificates.crt"

/* Response body bytes the agent may receive before it grants more. */
#define INITIAL_WINDOW 262144

/* Answers queued for an agent that does not read them, per channel,
 * before the broker stops reading that channel. */
#define OUT_QUEUE_MAX (256 * 1024)

/* What a queued answer carrying a descriptor (a memfd, a pipe) counts
 * against OUT_QUEUE_MAX besides its bytes: a descriptor costs the broker
 * more than its frame (a pipe holds a body, and descriptors are few): about
 * 16 wait per channel before the broker stops reading it. */
#define QUEUED_FD_COST (OUT_QUEUE_MAX / 16)

static size_t
queued_cost(size_t len, int fd)
{
	return len + (fd >= 0 ? QUEUED_FD_COST : 0);
}

/* A channel must say HELLO this soon after it opens. */
#define HELLO_DEADLINE 10.0

/* Which message types the agent may send in each phase (OpenSSH's
 * monitor_permit, as a table). */
static const bool permitted[2][AJ_MSG__MAX + 1] = {
	[PHASE_HELLO] = {[AJ_MSG_HELLO] = true, [AJ_MSG_CONNECT] = true},
	[PHASE_READY] = {[AJ_MSG_CONNECT] = true,
			 [AJ_MSG_REQUEST] = true,
			 [AJ_MSG_BODY] = true,
			 [AJ_MSG_WINDOW] = true,
			 [AJ_MSG_CANCEL] = true},
};

/* Channels served at once: the inherited one plus those agent processes
 * opened with CONNECT (each its own socketpair, so concurrent clients
 * never read each other's answers). */
#define MAX_CHANNELS 64

/* Channels beyond those wait (their HELLO unread) for a slot, up to this
 * many; more are refused. */
#define MAX_WAITING 64

struct broker {
	struct aj_policy policy;
	struct aj_ca_bundle ca;
	pid_t supervisor;
	struct ev_loop *loop;
	struct channel channels[MAX_CHANNELS];
	size_t n_open;
	int waiting[MAX_WAITING]; /* CONNECTed channels without a slot yet, oldest first */
	size_t n_waiting;
	int exit_status;
	size_t body_bytes, body_budget; /* request bodies held, and at most */
	/* Every REQUEST, whatever becomes of it, takes a token of the
	 * profile's rate; without one the broker stops reading until one is
	 * due (back-pressure: no answer, no audit line to flood the disk). */
	double tokens, tokens_at;
	ev_timer throttle;
};

static int
fail(const char *what)
{
	aj_log_error("%s: %s", what, strerror(errno));
	return AJ_EXIT_SETUP;
}

static bool
has_no_capabilities(void)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[2];

	if (syscall(SYS_capget, &hdr, data) < 0)
		return false;
	for (int i = 0; i < 2; i++)
		if (data[i].effective || data[i].permitted || data[i].inheritable)
			return false;
	return true;
}

static int
become(const char *spec)
{
	unsigned uid, gid;
	char end;

	if (sscanf(spec, "%u:%u%c", &uid, &gid, &end) != 2 || uid == 0 || gid == 0) {
		errno = EINVAL;
		return -1;
	}
	if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0)
		return -1;
	return 0;
}

/* ---- sending -------------------------------------------------------------- */

static void on_writable(struct ev_loop *loop, ev_io *w, int revents);

/* One frame, with FD alongside when >= 0, never blocking.  Returns bytes
 * sent or -errno. */
static ssize_t
send_frame(int sock, const uint8_t *frame, size_t len, int fd)
{
	return aj_fdpass_send(sock, frame, len, fd, MSG_DONTWAIT);
}

static void
want_writable(struct channel *c)
{
	if (!ev_is_active(&c->wio))
		ev_io_start(c->broker->loop, &c->wio);
}

void
aj_channel_send(struct channel *c, const uint8_t *frame, size_t len, int fd)
{
	struct outframe *o;

	if (c->fd < 0) {
		if (fd >= 0)
			close(fd);
		return;
	}
	if (c->out_head == NULL) {
		ssize_t n = send_frame(c->fd, frame, len, fd);

		if (n >= 0 || n != -EAGAIN) {
			/* Sent, or the agent went away (its end is closed: the
			 * read side will notice). */
			if (fd >= 0)
				close(fd);
			return;
		}
	}
	/* The socket is full: keep the frame until it has room.  Only
	 * control frames queue (at most two per open request); bodies pause
	 * their transfer instead. */
	o = malloc(sizeof(*o) + len);
	if (o == NULL) {
		if (fd >= 0)
			close(fd);
		return;
	}
	o->next = NULL;
	o->fd = fd;
	o->len = len;
	memcpy(o->data, frame, len);
	c->out_bytes += queued_cost(len, fd);
	/* An agent that sends but does not read answers is not read either,
	 * until it catches up: the queue stays bounded. */
	if (c->out_bytes > OUT_QUEUE_MAX && ev_is_active(&c->io))
		ev_io_stop(c->broker->loop, &c->io);
	if (c->out_tail != NULL)
		c->out_tail->next = o;
	else
		c->out_head = o;
	c->out_tail = o;
	want_writable(c);
}

static void
drop_queue(struct channel *c)
{
	while (c->out_head != NULL) {
		struct outframe *o = c->out_head;

		c->out_head = o->next;
		if (o->fd >= 0)
			close(o->fd);
		free(o);
	}
	c->out_tail = NULL;
	c->out_bytes = 0;
}

static void
on_writable(struct ev_loop *loop, ev_io *w, int revents)
{
	struct channel *c = w->data;

	while (c->out_head != NULL) {
		struct outframe *o = c->out_head;
		ssize_t n = send_frame(c->fd, o->data, o->len, o->fd);

		if (n == -EAGAIN)
			return;
		c->out_head = o->next;
		if (c->out_head == NULL)
			c->out_tail = NULL;
		c->out_bytes -= queued_cost(o->len, o->fd);
		if (o->fd >= 0)
			close(o->fd);
		free(o);
	}
	ev_io_stop(loop, w);
	if (!ev_is_active(&c->io) && !c->throttled)
		ev_io_start(loop, &c->io);
	aj_fetch_resume(c);
}

/* One BODY frame straight from the caller's bytes (header and payload
 * gathered by sendmsg: no copy).  Returns bytes sent or -errno. */
static ssize_t
send_body_frame(int sock, uint32_t id, const uint8_t *data, size_t len, bool last)
{
	struct aj_frame hdr = {.version = AJ_PROTO_VERSION,
			       .type = AJ_MSG_BODY,
			       .flags = last ? AJ_FLAG_END : 0,
			       .id = id,
			       .length = (uint32_t)len};
	uint8_t head[AJ_PROTO_HEADER_SIZE];
	struct iovec iov[2] = {{.iov_base = head, .iov_len = sizeof(head)},
			       {.iov_base = (void *)data, .iov_len = len}};
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
	ssize_t n;

	aj_proto_encode_header(&hdr, head);
	do
		n = sendmsg(sock, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

int
aj_channel_send_body(struct channel *c, uint32_t id, const void *data, size_t len, bool end)
{
	static uint8_t buf[AJ_PROTO_HEADER_SIZE + AJ_PROTO_MAX_PAYLOAD];
	const uint8_t *p = data;

	if (c->fd < 0)
		return -EPIPE;
	if (c->out_head != NULL) {
		want_writable(c);
		return -EAGAIN;
	}
	do {
		size_t chunk = len < AJ_PROTO_MAX_PAYLOAD ? len : AJ_PROTO_MAX_PAYLOAD;
		bool last = end && chunk == len;
		ssize_t sent =
			c->out_head != NULL ? -EAGAIN : send_body_frame(c->fd, id, p, chunk, last);

		if (sent == -EAGAIN && p == data) {
			want_writable(c);
			return -EAGAIN; /* nothing went: the caller keeps it all */
		}
		if (sent == -EAGAIN) {
			/* Part went: the rest waits in the queue, in order. */
			int n = aj_proto_frame(AJ_MSG_BODY, last ? AJ_FLAG_END : 0, id, p, chunk,
					       buf, sizeof(buf));

			if (n < 0)
				return -EPIPE;
			aj_channel_send(c, buf, (size_t)n, -1);
		} else if (sent < 0) {
			return -EPIPE;
		}
		p += chunk;
		len -= chunk;
	} while (len > 0);
	return 0;
}

void
aj_channel_send_json(struct channel *c, uint8_t type, uint32_t id, json_t *obj, int fd)
{
	static uint8_t buf[AJ_PROTO_HEADER_SIZE + AJ_PROTO_MAX_JSON];
	int n = obj ? aj_proto_frame_json(type, id, obj, buf, sizeof(buf)) : -ENOMEM;

	json_decref(obj);
	if (n < 0 && type == AJ_MSG_ERROR) {
		/* Never leave a request unanswered because the answer did
		 * not fit: a short fixed record instead. */
		static const char fallback[] = "{\"code\":\"upstream_error\",\"message\":"
					       "\"the broker's answer did not fit in a frame\"}";
		n = aj_proto_frame(AJ_MSG_ERROR, 0, id, fallback, sizeof(fallback) - 1, buf,
				   sizeof(buf));
	}
	if (n > 0)
		aj_channel_send(c, buf, (size_t)n, fd);
	else if (fd >= 0)
		close(fd);
}

void
aj_channel_send_error(struct channel *c, uint32_t id, const char *code, const char *rule,
		      const char *msg)
{
	json_t *obj = json_pack("{s:s, s:s}", "code", code, "message", msg);

	if (obj != NULL && rule != NULL)
		json_object_set_new(obj, "rule", json_string(rule));
	aj_channel_send_json(c, AJ_MSG_ERROR, id, obj, -1);
}

/* ---- requests --------------------------------------------------------------- */

static struct aj_req *
find_req(struct channel *c, uint32_t id)
{
	for (size_t i = 0; i < c->n_reqs; i++)
		if (c->reqs[i]->id == id)
			return c->reqs[i];
	return NULL;
}

void
aj_req_drop_body(struct aj_req *r)
{
	r->ch->broker->body_bytes -= r->body_cap;
	free(r->body);
	r->body = NULL;
	r->body_cap = 0;
}

static void
free_req(struct aj_req *r)
{
	ev_timer_stop(r->ch->broker->loop, &r->body_timer);
	aj_req_drop_body(r);
	for (size_t i = 0; i < r->n_headers; i++) {
		free(r->headers[i][0]);
		free(r->headers[i][1]);
	}
	free(r->headers);
	free(r);
}

void
aj_req_finish(struct aj_req *r)
{
	struct channel *c = r->ch;

	for (size_t i = 0; i < c->n_reqs; i++) {
		if (c->reqs[i] == r) {
			c->reqs[i] = c->reqs[--c->n_reqs];
			break;
		}
	}
	free_req(r);
}

static void open_channel(struct broker *b, int fd, bool deadline);

/* The channel is gone: every request on it is abandoned. */
static void
close_channel(struct channel *c)
{
	struct broker *b = c->broker;

	while (c->n_reqs > 0) {
		struct aj_req *r = c->reqs[c->n_reqs - 1];

		if (r->fetch != NULL)
			aj_fetch_cancel(r); /* finishes R */
		else
			aj_req_finish(r);
	}
	ev_io_stop(b->loop, &c->io);
	ev_io_stop(b->loop, &c->wio);
	ev_timer_stop(b->loop, &c->hello);
	drop_queue(c);
	close(c->fd);
	c->fd = -1;
	b->n_open--;
	/* The slot goes to the channel that has waited longest. */
	if (b->n_waiting > 0) {
		int next = b->waiting[0];

		memmove(b->waiting, b->waiting + 1, --b->n_waiting * sizeof(int));
		open_channel(b, next, true);
	}
	/* The last channel gone: every agent-side end is closed. */
	if (b->n_open == 0)
		ev_break(b->loop, EVBREAK_ALL);
}

/* The channel is over: one record for the agent, one line for the log
 * (escaped: the reason may quote what the agent sent), then close it.
 * Other channels are not affected. */
static void
end_channel(struct channel *c, const char *reason)
{
	char safe[512];

	/* The record goes out even if answers are queued: best effort,
	 * blocking for it would let the agent stall the broker. */
	aj_channel_send_error(c, 0, AJ_ERR_BAD_REQUEST, NULL, reason);
	aj_log_escape(reason, safe, sizeof(safe));
	aj_log_error("protocol error, closing the channel: %s", safe);
	c->broker->exit_status = AJ_BROKER_EXIT_PROTOCOL;
	close_channel(c);
}

static void on_readable(struct ev_loop *loop, ev_io *w, int revents);

static void
on_hello_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct channel *c = w->data;

	end_channel(c, "no HELLO within 10 seconds of CONNECT");
}

/* A new channel on FD.  DEADLINE: it must say HELLO soon (channels opened
 * with CONNECT; the inherited one waits for as long as the agent likes). */
static void
open_channel(struct broker *b, int fd, bool deadline)
{
	for (size_t i = 0; i < MAX_CHANNELS; i++) {
		struct channel *c = &b->channels[i];

		if (c->fd >= 0)
			continue;
		memset(c, 0, sizeof(*c));
		c->broker = b;
		c->fd = fd;
		c->phase = PHASE_HELLO;
		ev_io_init(&c->io, on_readable, fd, EV_READ);
		c->io.data = c;
		ev_io_init(&c->wio, on_writable, fd, EV_WRITE);
		c->wio.data = c;
		ev_timer_init(&c->hello, on_hello_deadline, HELLO_DEADLINE, 0.);
		c->hello.data = c;
		if (deadline)
			ev_timer_start(b->loop, &c->hello);
		ev_io_start(b->loop, &c->io);
		b->n_open++;
		return;
	}
	/* Full: the new channel waits for a slot... */
	if (deadline && b->n_waiting < MAX_WAITING) {
		b->waiting[b->n_waiting++] = fd;
		return;
	}
	/* ...or, when too many wait, hears why (one try, never queued: it is
	 * not a channel of ours) and is closed. */
	{
		static const char why[] = "{\"code\":\"rate_limited\",\"message\":"
					  "\"too many channels open at once\"}";
		uint8_t frame[AJ_PROTO_HEADER_SIZE + sizeof(why)];
		int n = aj_proto_frame(AJ_MSG_ERROR, 0, 0, why, sizeof(why) - 1, frame,
				       sizeof(frame));

		if (n > 0)
			(void)send_frame(fd, frame, (size_t)n, -1);
	}
	close(fd);
}

/* CONNECT: the fd must be one end of an AF_UNIX SOCK_SEQPACKET pair; any
 * other kind of file would have the broker write frames into it. */
static void
handle_connect(struct channel *c, int fd)
{
	int type = 0, domain = 0;
	socklen_t len = sizeof(int);

	if (fd < 0) {
		end_channel(c, "CONNECT without a socket (SCM_RIGHTS)");
		return;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_SEQPACKET ||
	    getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0 || domain != AF_UNIX) {
		close(fd);
		end_channel(c, "CONNECT with something that is not a unix seqpacket socket");
		return;
	}
	/* The agent's end of the inherited channel (its peer is the
	 * supervisor, which made the pair) would have the broker talk to
	 * itself and close the channel every process of the jail shares. */
	{
		struct ucred cred;
		socklen_t clen = sizeof(cred);

		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0 ||
		    cred.pid == c->broker->supervisor || cred.pid == getpid()) {
			close(fd);
			end_channel(c, "CONNECT with a socket that is not a new pair");
			return;
		}
	}
	if (fcntl(fd, F_SETFL, O_NONBLOCK) < 0) {
		close(fd);
		return;
	}
	open_channel(c->broker, fd, true);
}

static void
handle_hello(struct channel *c, const uint8_t *payload, size_t len)
{
	char err[256];
	json_t *hello = NULL, *version;

	if (aj_proto_parse_json(payload, len, &hello, err, sizeof(err)) < 0) {
		end_channel(c, err);
		return;
	}
	version = json_object_get(hello, "version");
	if (!json_is_integer(version) || json_integer_value(version) != AJ_PROTO_VERSION) {
		json_decref(hello);
		end_channel(c, "HELLO: this broker speaks protocol version 1");
		return;
	}
	json_decref(hello);
	ev_timer_stop(c->broker->loop, &c->hello);
	c->phase = PHASE_READY;
	aj_channel_send_json(c, AJ_MSG_WELCOME, 0,
			     json_pack("{s:i, s:s, s:i, s:i, s:i}", "version", AJ_PROTO_VERSION,
				       "broker", "agentjail-broker/" PACKAGE_VERSION, "max_payload",
				       AJ_PROTO_MAX_PAYLOAD, "max_in_flight",
				       AJ_PROTO_MAX_IN_FLIGHT, "window", INITIAL_WINDOW),
			     -1);
}

static void
on_throttle_end(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct broker *b = w->data;

	for (size_t i = 0; i < MAX_CHANNELS; i++) {
		struct channel *c = &b->channels[i];

		if (c->fd < 0 || !c->throttled)
			continue;
		c->throttled = false;
		if (c->out_bytes <= OUT_QUEUE_MAX && !ev_is_active(&c->io))
			ev_io_start(loop, &c->io);
	}
}

/* One REQUEST read on C: its token of the profile's rate.  Out of tokens,
 * the broker stops reading C (only C: the others may still say HELLO or
 * send the bodies of requests already taken) until the next one is due. */
static void
charge_request(struct broker *b, struct channel *c)
{
	double rate = (double)b->policy.limits.value[AJ_LIMIT_RATE] / 60.0; /* per second */
	double now = ev_now(b->loop);

	if (b->tokens_at == 0)
		b->tokens = rate * 60.0;
	else
		b->tokens += (now - b->tokens_at) * rate;
	if (b->tokens > rate * 60.0)
		b->tokens = rate * 60.0;
	b->tokens_at = now;
	b->tokens -= 1.0;
	if (b->tokens >= 1.0)
		return;
	c->throttled = true;
	ev_io_stop(b->loop, &c->io);
	if (!ev_is_active(&b->throttle)) {
		ev_timer_set(&b->throttle, (1.0 - b->tokens) / rate, 0.);
		ev_timer_start(b->loop, &b->throttle);
	}
}

/* Headers the broker never relays as the agent wrote them: the
 * connection's own (hop-by-hop, RFC 9110 7.6.1) and those it sets itself. */
static const char *const dropped_headers[] = {
	"Connection",
	"Keep-Alive",
	"Proxy-Connection",
	"Proxy-Authorization",
	"Proxy-Authenticate",
	"TE",
	"Trailer",
	"Transfer-Encoding",
	"Upgrade",
	"Content-Length",
	"Expect",
};

static bool
header_in_list(const char *name, const char *list)
{
	/* LIST is a Connection header value: comma-separated names. */
	size_t n = strlen(name);

	while (*list != '\0') {
		size_t len;

		list += strspn(list, " \t,");
		len = strcspn(list, " \t,");
		if (len == n && strncasecmp(list, name, n) == 0)
			return true;
		list += len;
	}
	return false;
}

/* Keep what may go upstream of the agent's headers.  Returns 0, or -1
 * with MSG (a Host header that names another authority). */
static int
filter_headers(struct aj_req *r, struct aj_proto_request *req, char *msg, size_t msglen)
{
	const char *connection = "";
	char authority[300];
	bool v6 = r->url.host_kind == AJ_HOST_IPV6;
	bool credentials = (r->options & AJ_RULE_CREDENTIALS) != 0;

	if (r->url.port == aj_url_scheme_port(r->url.scheme, strlen(r->url.scheme), NULL))
		snprintf(authority, sizeof(authority), "%s%s%s", v6 ? "[" : "", r->url.host,
			 v6 ? "]" : "");
	else
		snprintf(authority, sizeof(authority), "%s%s%s:%u", v6 ? "[" : "", r->url.host,
			 v6 ? "]" : "", r->url.port);
	r->declared_length = -1;
	for (size_t i = 0; i < req->n_headers; i++) {
		const char *name = req->headers[i][0], *value = req->headers[i][1];
		char *end;

		if (strcasecmp(name, "Connection") == 0)
			connection = value;
		/* Message framing is the broker's: a smuggling attempt (CL.TE,
		 * TE.CL, two lengths) is refused, not quietly repaired. */
		if (strcasecmp(name, "Transfer-Encoding") == 0) {
			snprintf(msg, msglen,
				 "Transfer-Encoding is refused: the broker frames "
				 "the body itself");
			return -1;
		}
		if (strcasecmp(name, "Content-Length") == 0) {
			bool twice = r->declared_length >= 0;

			errno = 0;
			r->declared_length = strtoll(value, &end, 10);
			if (twice || value[0] < '0' || value[0] > '9' || errno != 0 ||
			    *end != '\0') {
				snprintf(msg, msglen,
					 "Content-Length must appear once, as a plain number");
				return -1;
			}
		}
	}
	for (size_t i = 0; i < req->n_headers; i++) {
		const char *name = req->headers[i][0], *value = req->headers[i][1];
		bool drop = header_in_list(name, connection);

		for (size_t k = 0; k < AJ_ARRAY_SIZE(dropped_headers); k++)
			drop |= strcasecmp(name, dropped_headers[k]) == 0;
		if (strcasecmp(name, "Host") == 0) {
			/* Domain fronting: the Host is the URL's, always. */
			if (strcasecmp(value, authority) != 0) {
				char esc[300];

				aj_log_escape(value, esc, sizeof(esc));
				snprintf(msg, msglen,
					 "Host header '%s' does not name the URL's authority '%s'",
					 esc, authority);
				return -1;
			}
			drop = true;
		}
		if (!credentials &&
		    (strcasecmp(name, "Cookie") == 0 || strcasecmp(name, "Authorization") == 0))
			drop = true;
		if (drop)
			continue;
		r->headers[r->n_headers][0] = req->headers[i][0];
		r->headers[r->n_headers][1] = req->headers[i][1];
		req->headers[i][0] = req->headers[i][1] = NULL;
		r->n_headers++;
	}
	return 0;
}

/* The body is complete: an announced length must be its length. */
static int
check_length(const struct aj_req *r, char *msg, size_t msglen)
{
	if (r->declared_length < 0 || (unsigned long long)r->declared_length == r->body_len)
		return 0;
	snprintf(msg, msglen, "Content-Length %lld does not match the body (%zu bytes)",
		 r->declared_length, r->body_len);
	return -1;
}

/* A request refused before any fetch: the answer and the audit record. */
static void
refuse(struct aj_req *r, const char *code, const char *rule, const char *msg)
{
	struct aj_audit_record rec = {
		.req = r,
		.decision = strcmp(code, AJ_ERR_DENIED) == 0 ? "denied" : "refused",
		.rule = rule,
		.error = code,
	};

	aj_channel_send_error(r->ch, r->id, code, rule, msg);
	aj_audit(&rec);
}

static void on_body_deadline(struct ev_loop *loop, ev_timer *w, int revents);

static void
handle_request(struct channel *c, const struct aj_frame *f, const uint8_t *payload)
{
	struct broker *b = c->broker;
	struct aj_proto_request req = {0};
	char err[512], msg[AJ_URL_MAX + 1200], rule[600], safe_url[256];
	size_t decided = (size_t)-1;
	struct aj_req *r;
	int allowed;
	json_t *json = NULL;

	/* Not JSON at all ends the channel; JSON that is not a valid request
	 * fails that request only. */
	if (aj_proto_parse_json(payload, f->length, &json, err, sizeof(err)) < 0) {
		end_channel(c, err);
		return;
	}
	json_decref(json);
	if (find_req(c, f->id) != NULL) {
		end_channel(c, "REQUEST reuses the id of a request still open");
		return;
	}
	if (c->n_reqs == AJ_PROTO_MAX_IN_FLIGHT) {
		end_channel(c, "more requests open than max_in_flight");
		return;
	}
	charge_request(b, c);
	r = calloc(1, sizeof(*r));
	if (r == NULL) {
		aj_channel_send_error(c, f->id, AJ_ERR_UPSTREAM, NULL, "out of memory");
		return;
	}
	r->ch = c;
	r->id = f->id;
	ev_init(&r->body_timer, on_body_deadline);
	r->body_timer.data = r;
	r->started = ev_now(b->loop);
	r->body_open = !(f->flags & AJ_FLAG_END);
	c->reqs[c->n_reqs++] = r;
	/* From here on R is answered exactly once; while its body is still
	 * coming, it stays in the table so the BODY frames find it. */
	if (aj_proto_parse_request(payload, f->length, &req, err, sizeof(err)) < 0) {
		snprintf(r->method, sizeof(r->method), "?");
		refuse(r, AJ_ERR_BAD_REQUEST, NULL, err);
		goto done;
	}
	snprintf(r->method, sizeof(r->method), "%s", req.method);
	r->memfd = req.deliver_memfd;
	r->pipe = req.deliver_pipe;
	/* One URL parser: what is matched is what is fetched. */
	if (aj_url_normalise(req.url, &r->url, err, sizeof(err)) < 0) {
		/* The audit keeps what was asked for (escaped, short, without
		 * its query): a malformed URL is often a probe. */
		char raw[300];

		snprintf(raw, sizeof(raw), "%.*s", (int)strcspn(req.url, "?#"), req.url);
		aj_log_escape(raw, r->url.normalised, 512);
		refuse(r, AJ_ERR_BAD_REQUEST, NULL, err);
		goto done;
	}
	r->method_bit = aj_policy_method_bit(req.method);
	/* Quoted short and escaped: an answer must stay well inside a frame. */
	aj_log_escape(r->url.normalised, safe_url, sizeof(safe_url));
	if (r->method_bit == 0) {
		snprintf(msg, sizeof(msg), "method %s is not one a rule can allow", req.method);
		refuse(r, AJ_ERR_BAD_REQUEST, NULL, msg);
		goto done;
	}
	if (r->body_open && (r->method_bit & (AJ_METHOD_GET | AJ_METHOD_HEAD))) {
		/* A body on GET is how requests get smuggled past a proxy. */
		snprintf(msg, sizeof(msg), "%s with a body is refused", req.method);
		refuse(r, AJ_ERR_BAD_REQUEST, NULL, msg);
		goto done;
	}
	allowed = aj_policy_decide(b->policy.rules, b->policy.n_rules, r->method_bit, &r->url,
				   &decided);
	if (decided == (size_t)-1)
		snprintf(rule, sizeof(rule), "%s: no 'fetch allow' rule matches (default deny)",
			 b->policy.path);
	else
		snprintf(rule, sizeof(rule), "%s", b->policy.rules[decided].origin);
	if (!allowed) {
		if (decided == (size_t)-1)
			snprintf(msg, sizeof(msg), "no fetch rule allows %s %s", req.method,
				 safe_url);
		else
			snprintf(msg, sizeof(msg), "%s %s is denied by a fetch deny rule",
				 req.method, safe_url);
		refuse(r, AJ_ERR_DENIED, rule, msg);
		goto done;
	}
	r->rule = &b->policy.rules[decided];
	aj_policy_effective(b->policy.rules, b->policy.n_rules, r->method_bit, &r->url, &r->limits,
			    &r->options);
	r->headers = req.n_headers ? calloc(req.n_headers, sizeof(*r->headers)) : NULL;
	if (req.n_headers && r->headers == NULL) {
		refuse(r, AJ_ERR_UPSTREAM, NULL, "out of memory");
		goto done;
	}
	if (filter_headers(r, &req, msg, sizeof(msg)) < 0 ||
	    (!r->body_open && r->declared_length > 0 && check_length(r, msg, sizeof(msg)) < 0)) {
		refuse(r, AJ_ERR_BAD_REQUEST, NULL, msg);
		goto done;
	}
	aj_proto_request_clear(&req);
	if (!r->body_open) {
		aj_fetch_start(r);
		return;
	}
	/* The body must arrive within the request's time limit. */
	ev_timer_set(&r->body_timer,
		     (double)aj_policy_limit(&r->limits, &b->policy.limits, AJ_LIMIT_TIMEOUT) /
			     1000.0,
		     0.);
	ev_timer_start(b->loop, &r->body_timer);
	return;
done:
	aj_proto_request_clear(&req);
	/* Answered: what is left of its body is read and dropped. */
	r->body_refused = true;
	if (!r->body_open)
		aj_req_finish(r);
}

/* The request is answered while its body is still coming: what is left of
 * the body is read and dropped until END. */
static void
refuse_body(struct aj_req *r, const char *code, const char *rule, const char *msg)
{
	ev_timer_stop(r->ch->broker->loop, &r->body_timer);
	refuse(r, code, rule, msg);
	r->body_refused = true;
	aj_req_drop_body(r);
	if (!r->body_open)
		aj_req_finish(r);
}

static void
on_body_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct aj_req *r = w->data;

	/* The broker is not reading this channel (rate): not the agent's
	 * delay; look again once it reads. */
	if (r->ch->throttled) {
		ev_timer_set(w, 1.0, 0.);
		ev_timer_start(loop, w);
		return;
	}
	refuse_body(r, AJ_ERR_TIMEOUT, r->rule->origin,
		    "the request body did not arrive within the time limit");
}

static void
handle_body(struct channel *c, const struct aj_frame *f, const uint8_t *payload)
{
	struct broker *b = c->broker;
	struct aj_req *r = find_req(c, f->id);
	uint64_t limit;
	char msg[160];

	if (r == NULL || !r->body_open) {
		end_channel(c, "BODY for a request that is not sending one");
		return;
	}
	if (f->flags & AJ_FLAG_END)
		r->body_open = false;
	if (r->body_refused) {
		if (!r->body_open)
			aj_req_finish(r);
		return;
	}
	limit = aj_policy_limit(&r->limits, &b->policy.limits, AJ_LIMIT_MAX_BODY);
	if (r->body_len + f->length > limit) {
		snprintf(msg, sizeof(msg), "the request body is over the limit of %llu bytes",
			 (unsigned long long)limit);
		refuse_body(r, AJ_ERR_TOO_LARGE, r->rule->origin, msg);
		return;
	}
	if (r->body_len + f->length > r->body_cap) {
		size_t cap = r->body_cap ? r->body_cap : 16384;
		uint8_t *grown;

		while (cap < r->body_len + f->length)
			cap *= 2;
		/* All channels' bodies together stay within the budget. */
		if (b->body_bytes + (cap - r->body_cap) > b->body_budget) {
			refuse_body(r, AJ_ERR_RATE_LIMITED, NULL,
				    "the broker holds too many request bodies at once");
			return;
		}
		grown = realloc(r->body, cap);
		if (grown == NULL) {
			refuse_body(r, AJ_ERR_UPSTREAM, NULL, "out of memory");
			return;
		}
		b->body_bytes += cap - r->body_cap;
		r->body = grown;
		r->body_cap = cap;
	}
	memcpy(r->body + r->body_len, payload, f->length);
	r->body_len += f->length;
	if (!r->body_open) {
		ev_timer_stop(b->loop, &r->body_timer);
		if (check_length(r, msg, sizeof(msg)) < 0) {
			refuse(r, AJ_ERR_BAD_REQUEST, NULL, msg);
			aj_req_finish(r);
			return;
		}
		aj_fetch_start(r);
	}
}

static void
handle_frame(struct channel *c, const uint8_t *buf, size_t len, int fd)
{
	struct aj_frame f;
	const uint8_t *payload;
	struct aj_req *r;
	char err[256];

	if (aj_proto_decode(buf, len, &f, &payload, err, sizeof(err)) < 0) {
		if (fd >= 0)
			close(fd);
		end_channel(c, err);
		return;
	}
	/* At most one fd per message, and only where the type says so. */
	if (fd >= 0 && f.type != AJ_MSG_CONNECT) {
		close(fd);
		end_channel(c, "a file descriptor is only accepted with CONNECT");
		return;
	}
	if (!permitted[c->phase][f.type]) {
		if (fd >= 0)
			close(fd);
		snprintf(err, sizeof(err), "%s is not permitted %s", aj_proto_type_name(f.type),
			 c->phase == PHASE_HELLO ? "before HELLO" : "after HELLO");
		end_channel(c, err);
		return;
	}
	switch (f.type) {
	case AJ_MSG_CONNECT:
		handle_connect(c, fd);
		break;
	case AJ_MSG_HELLO:
		handle_hello(c, payload, f.length);
		break;
	case AJ_MSG_REQUEST:
		handle_request(c, &f, payload);
		break;
	case AJ_MSG_BODY:
		handle_body(c, &f, payload);
		break;
	case AJ_MSG_WINDOW:
		/* A late frame for a finished request is normal. */
		r = find_req(c, f.id);
		if (r != NULL && r->fetch != NULL)
			aj_fetch_window(r, (uint32_t)payload[0] | (uint32_t)payload[1] << 8 |
						   (uint32_t)payload[2] << 16 |
						   (uint32_t)payload[3] << 24);
		break;
	case AJ_MSG_CANCEL:
		r = find_req(c, f.id);
		if (r == NULL)
			break;
		if (r->fetch != NULL) {
			aj_fetch_cancel(r);
		} else if (r->body_open) {
			/* Nothing more is sent for it (not even an ERROR), and
			 * frames arrive in order: no BODY of it can follow. */
			if (!r->body_refused) {
				struct aj_audit_record rec = {.req = r,
							      .decision = "allowed",
							      .rule = r->rule->origin,
							      .error = "cancelled"};
				aj_audit(&rec);
			}
			aj_req_finish(r);
		}
		break;
	default:
		break;
	}
}

/* One message and at most one passed fd (close-on-exec).  More fds, or a
 * truncated control message, end the channel. */
static void
on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
	struct channel *c = w->data;
	/* One byte more than the largest frame: a longer message shows as
	 * truncated (MSG_TRUNC) instead of being cut silently. */
	static uint8_t buf[AJ_PROTO_HEADER_SIZE + AJ_PROTO_MAX_PAYLOAD + 1];
	bool bad_fds;
	int fd;
	ssize_t n =
		aj_fdpass_recv(c->fd, buf, sizeof(buf), MSG_TRUNC | MSG_DONTWAIT, &fd, &bad_fds);

	if (n < 0) {
		if (n == -EAGAIN)
			return;
		close_channel(c);
		return;
	}
	if (n == 0) {
		if (fd >= 0)
			close(fd);
		/* This channel's agent side is closed. */
		close_channel(c);
		return;
	}
	if (bad_fds) {
		end_channel(c, "more than one file descriptor in a message");
		return;
	}
	if ((size_t)n > sizeof(buf) - 1) {
		if (fd >= 0)
			close(fd);
		end_channel(c, "frame longer than the 65536-byte payload limit");
		return;
	}
	handle_frame(c, buf, (size_t)n, fd);
}

/* ---- the policy ---------------------------------------------------------------- */

/* Append the file at PATH (if it exists) to the CA bundle. */
static int
append_file(struct aj_ca_bundle *ca, const char *path)
{
	FILE *f = fopen(path, "re");
	char chunk[65536];
	size_t n;

	if (f == NULL)
		return errno == ENOENT ? 0 : -1;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		char *grown = realloc(ca->pem, ca->len + n + 1);

		if (grown == NULL) {
			fclose(f);
			return -1;
		}
		ca->pem = grown;
		memcpy(ca->pem + ca->len, chunk, n);
		ca->len += n;
		ca->pem[ca->len] = '\0';
	}
	fclose(f);
	return 0;
}

static int
append_text(struct aj_ca_bundle *ca, const char *text)
{
	size_t n = strlen(text);
	char *grown = realloc(ca->pem, ca->len + n + 2);

	if (grown == NULL)
		return -1;
	ca->pem = grown;
	ca->pem[ca->len++] = '\n';
	memcpy(ca->pem + ca->len, text, n + 1);
	ca->len += n;
	return 0;
}

/* Request bodies held at once, all channels together: room for the
 * largest body a rule allows, twice, and never less than 64 MiB. */
static size_t
body_budget(const struct aj_policy *p)
{
	uint64_t largest = p->limits.value[AJ_LIMIT_MAX_BODY];

	for (size_t i = 0; i < p->n_rules; i++)
		if (p->rules[i].limits.set & (1u << AJ_LIMIT_MAX_BODY) &&
		    p->rules[i].limits.value[AJ_LIMIT_MAX_BODY] > largest)
			largest = p->rules[i].limits.value[AJ_LIMIT_MAX_BODY];
	return (size_t)(largest > (32u << 20) ? 2 * largest : 64u << 20);
}

/* The resolved policy the supervisor loaded (common/handover.h), and the
 * CA certificates: the system's, then the profile's, read now, before the
 * broker is confined, and handed to libcurl from memory.  Any doubt
 * refuses to start (fail closed). */
static int
load_policy(struct broker *b)
{
	char err[256];
	int r = aj_handover_read(AJ_FD_POLICY, &b->policy, err, sizeof(err));

	close(AJ_FD_POLICY);
	if (r < 0) {
		aj_log_error("the policy is invalid: %s", err);
		return -1;
	}
	if (append_file(&b->ca, SYSTEM_CA_BUNDLE) < 0) {
		aj_log_error("the policy is invalid: reading " SYSTEM_CA_BUNDLE);
		return -1;
	}
	if (b->policy.ca_pem != NULL && append_text(&b->ca, b->policy.ca_pem) < 0) {
		aj_log_error("the policy is invalid: fetch_ca");
		return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	static struct broker b;
	int fd = AJ_FD_DOOR;
	pid_t supervisor = 0;
	const char *user = NULL;

	aj_log_init("agentjail-broker", true);
	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--supervisor") == 0)
			supervisor = (pid_t)atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--user") == 0)
			user = argv[i + 1];
	}
	/* Die with the supervisor; if it is already gone, leave now. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		return fail("PR_SET_PDEATHSIG");
	if (supervisor <= 0 || getppid() != supervisor)
		return AJ_EXIT_SETUP;
	b.supervisor = supervisor;
	if (user != NULL && become(user) < 0)
		return fail("dropping to the profile's user");
	if (geteuid() == 0 || !has_no_capabilities()) {
		errno = EPERM;
		return fail("refusing to serve with root identity or capabilities");
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return fail("PR_SET_NO_NEW_PRIVS");
	/* Re-arm: the identity change above cleared the death signal. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0 || getppid() != supervisor)
		return AJ_EXIT_SETUP;

	/* A body pipe whose reader is gone is an error to handle (EPIPE), not
	 * a reason to die. */
	signal(SIGPIPE, SIG_IGN);
	if (load_policy(&b) < 0)
		return AJ_EXIT_SETUP;
	b.body_budget = body_budget(&b.policy);
	aj_audit_init(fcntl(AJ_FD_AUDIT, F_GETFD) >= 0 ? AJ_FD_AUDIT : -1);
	b.loop = ev_default_loop(EVFLAG_AUTO | EVFLAG_NOENV);
	if (b.loop == NULL)
		return fail("ev_default_loop");
	if (aj_fetch_init(b.loop, &b.policy, &b.ca) < 0)
		return AJ_EXIT_SETUP;
	/* Confined before the first byte from the agent is read. */
	{
		char err[256];
		/* Silent: the supervisor reports it (one line, not a cascade
		 * when the jail fails for the same reason). */
		if (aj_broker_confine(err, sizeof(err)) < 0)
			return AJ_BROKER_EXIT_CONFINE;
	}
	for (size_t i = 0; i < MAX_CHANNELS; i++)
		b.channels[i].fd = -1;
	if (fcntl(fd, F_SETFL, O_NONBLOCK) < 0)
		return fail("O_NONBLOCK on the channel");
	ev_init(&b.throttle, on_throttle_end);
	b.throttle.data = &b;
	open_channel(&b, fd, false);
	ev_run(b.loop, 0);
	return b.exit_status;
}
