/*
 * The broker's side of the wire protocol (docs/PROTOCOL.md): every frame
 * an agent sends is decoded with its length checked before use, then
 * handed to the one handler the permit table names for its type, if the
 * channel's phase permits it (OpenSSH's monitor table: type, phases and
 * handler in one row).  The handlers are named for the operations of the
 * client (agent/client.c): its ask_hello() is answered by answer_hello(),
 * its ask_request() by answer_request(), and so on.
 *
 * A malformed or unpermitted frame ends that channel with one ERROR
 * record and one log line; the other channels go on.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <agentjail/exitcodes.h>

#include "broker.h"
#include "log.h"

/* A channel must say HELLO this soon after CONNECT. */
#define HELLO_DEADLINE 10.0

enum phase {
	PHASE_HELLO = 1u << 0, /* only HELLO (and CONNECT) */
	PHASE_READY = 1u << 1, /* requests and their frames */
};

struct aj_dispatch {
	struct ev_loop *loop;
	struct aj_requests *requests;
	pid_t door_maker;
	bool protocol_error;
};

/* The protocol's state of one channel. */
struct session {
	struct aj_dispatch *d;
	struct aj_channel *c;
	enum phase phase;
	ev_timer hello; /* the HELLO deadline of a CONNECTed channel */
	bool inherited; /* the door every process of the jail shares */
	unsigned long frames; /* read so far, the current one included */
	struct aj_req_table reqs;
};

typedef void answer_fn(struct session *s, const struct aj_frame *f, const uint8_t *payload, int fd);

static answer_fn answer_hello, answer_connect, answer_listen, answer_request, answer_body,
	answer_window, answer_cancel;

/* Which message the agent may send in which phase, and who answers it.
 * A type that is not here (WELCOME, RESPONSE, ERROR) is never permitted. */
static const struct permit {
	uint8_t type;
	unsigned phases;
	bool takes_fd; /* the types that may carry a descriptor */
	answer_fn *answer;
} permits[] = {
	{AJ_MSG_HELLO, PHASE_HELLO, false, answer_hello},
	{AJ_MSG_CONNECT, PHASE_HELLO | PHASE_READY, true, answer_connect},
	{AJ_MSG_LISTEN, PHASE_HELLO, true, answer_listen},
	{AJ_MSG_REQUEST, PHASE_READY, false, answer_request},
	{AJ_MSG_BODY, PHASE_READY, false, answer_body},
	{AJ_MSG_WINDOW, PHASE_READY, false, answer_window},
	{AJ_MSG_CANCEL, PHASE_READY, false, answer_cancel},
};

static const struct permit *
permit_of(uint8_t type)
{
	for (size_t i = 0; i < sizeof(permits) / sizeof(permits[0]); i++)
		if (permits[i].type == type)
			return &permits[i];
	return NULL;
}

/* The channel is over: one record for the agent, one line for the log
 * (escaped: the reason may quote what the agent sent), then close it.
 * Other channels are not affected. */
static void
end_channel(struct session *s, const char *reason)
{
	char safe[512];

	/* The record goes out even if answers are queued: best effort,
	 * blocking for it would let the agent stall the broker. */
	aj_channel_send_error(s->c, 0, AJ_ERR_BAD_REQUEST, NULL, reason);
	aj_log_escape(reason, safe, sizeof(safe));
	aj_log_error("protocol error, closing the channel: %s", safe);
	s->d->protocol_error = true;
	aj_channel_close(s->c);
}

static void
on_hello_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
	end_channel(w->data, "no HELLO within 10 seconds of CONNECT");
}

/* ---- the answers -------------------------------------------------------------- */

static void
answer_hello(struct session *s, const struct aj_frame *f, const uint8_t *payload, int fd)
{
	char err[256];
	json_t *hello = NULL, *version;

	if (aj_proto_parse_json(payload, f->length, &hello, err, sizeof(err)) < 0) {
		end_channel(s, err);
		return;
	}
	version = json_object_get(hello, "version");
	if (!json_is_integer(version) || json_integer_value(version) != AJ_PROTO_VERSION) {
		json_decref(hello);
		end_channel(s, "HELLO: this broker speaks protocol version 1");
		return;
	}
	json_decref(hello);
	ev_timer_stop(s->d->loop, &s->hello);
	s->phase = PHASE_READY;
	aj_channel_send_json(s->c, AJ_MSG_WELCOME, 0,
			     json_pack("{s:i, s:s, s:i, s:i, s:i}", "version", AJ_PROTO_VERSION,
				       "broker", "agentjail-broker/" PACKAGE_VERSION, "max_payload",
				       AJ_PROTO_MAX_PAYLOAD, "max_in_flight",
				       AJ_PROTO_MAX_IN_FLIGHT, "window", AJ_BROKER_WINDOW),
			     -1);
}

/* CONNECT: the fd must be one end of a new AF_UNIX SOCK_SEQPACKET pair;
 * any other kind of file would have the broker write frames into it. */
static void
answer_connect(struct session *s, const struct aj_frame *f, const uint8_t *payload, int fd)
{
	int type = 0, domain = 0;
	socklen_t len = sizeof(int);
	struct ucred cred;
	socklen_t clen = sizeof(cred);

	if (fd < 0) {
		end_channel(s, "CONNECT without a socket (SCM_RIGHTS)");
		return;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_SEQPACKET ||
	    getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0 || domain != AF_UNIX) {
		close(fd);
		end_channel(s, "CONNECT with something that is not a unix seqpacket socket");
		return;
	}
	/* The agent's end of the inherited channel (a socketpair carries the
	 * credentials of the process that made it: the jail's init) would
	 * have the broker talk to itself and close the channel every process
	 * of the jail shares. */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0 ||
	    cred.pid == s->d->door_maker || cred.pid == getpid()) {
		close(fd);
		end_channel(s, "CONNECT with a socket that is not a new pair");
		return;
	}
	if (fcntl(fd, F_SETFL, O_NONBLOCK) < 0) {
		close(fd);
		return;
	}
	aj_channels_open(aj_channel_set(s->c), fd, true);
}

/* LISTEN: the jail's init hands over the listener of the broker socket
 * (AJ_BROKER_SOCKET_PATH), which it bound in the jail's /run.  Only as the
 * first frame of the inherited channel: init sends it before the agent
 * exists, so no process of the jail can send one there first. */
static void
answer_listen(struct session *s, const struct aj_frame *f, const uint8_t *payload, int fd)
{
	int type = 0, domain = 0, listening = 0;
	socklen_t len = sizeof(int);

	if (!s->inherited || s->frames != 1) {
		if (fd >= 0)
			close(fd);
		end_channel(s, "LISTEN is only the jail's init's, before anything else");
		return;
	}
	if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 ||
	    type != SOCK_SEQPACKET || getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0 ||
	    domain != AF_UNIX || getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0 ||
	    !listening || fcntl(fd, F_SETFL, O_NONBLOCK) < 0 ||
	    aj_channels_listen(aj_channel_set(s->c), fd) < 0) {
		if (fd >= 0)
			close(fd);
		end_channel(s, "LISTEN without a listening unix seqpacket socket");
	}
}

static void
answer_request(struct session *s, const struct aj_frame *f, const uint8_t *payload, int fd)
{
	char err[512];

	if (aj_req_request(s->d->requests, s->c, &s->reqs, f, payload, err, sizeof(err)) < 0)
		end_channel(s, err);
}

static void
answer_body(struct session *s, const struct aj_frame *f, const uint8_t *payload, int fd)
{
	char err[256];

	if (aj_req_body(&s->reqs, f, payload, err, sizeof(err)) < 0)
		end_channel(s, err);
}

static void
answer_window(struct session *s, const struct aj_frame *f, const uint8_t *payload, int fd)
{
	aj_req_window(&s->reqs, f->id, aj_proto_window_decode(payload));
}

static void
answer_cancel(struct session *s, const struct aj_frame *f, const uint8_t *payload, int fd)
{
	aj_req_cancel(&s->reqs, f->id);
}

/* ---- the channel hooks ---------------------------------------------------------- */

static void
on_frame(struct aj_channel *c, const uint8_t *msg, size_t len, int fd, void *arg)
{
	struct session *s = aj_channel_data(c);
	const struct permit *p;
	struct aj_frame f;
	const uint8_t *payload;
	char err[256];

	if (fd == AJ_CHANNEL_BAD_FDS) {
		end_channel(s, "more than one file descriptor in a message");
		return;
	}
	if (len > AJ_PROTO_HEADER_SIZE + AJ_PROTO_MAX_PAYLOAD) {
		if (fd >= 0)
			close(fd);
		end_channel(s, "frame longer than the 65536-byte payload limit");
		return;
	}
	if (aj_proto_decode(msg, len, &f, &payload, err, sizeof(err)) < 0) {
		if (fd >= 0)
			close(fd);
		end_channel(s, err);
		return;
	}
	s->frames++;
	p = permit_of(f.type);
	/* At most one fd per message, and only where the type says so. */
	if (fd >= 0 && (p == NULL || !p->takes_fd)) {
		close(fd);
		end_channel(s, "a file descriptor is only accepted with CONNECT or LISTEN");
		return;
	}
	if (p == NULL || !(p->phases & s->phase)) {
		if (fd >= 0)
			close(fd);
		snprintf(err, sizeof(err), "%s is not permitted %s", aj_proto_type_name(f.type),
			 s->phase == PHASE_HELLO ? "before HELLO" : "after HELLO");
		end_channel(s, err);
		return;
	}
	p->answer(s, &f, payload, fd);
}

static void
on_opened(struct aj_channel *c, bool connected, void *arg)
{
	struct aj_dispatch *d = arg;
	struct session *s = calloc(1, sizeof(*s));

	if (s == NULL) {
		aj_log_error("out of memory: refusing a channel");
		aj_channel_close(c);
		return;
	}
	s->d = d;
	s->c = c;
	s->phase = PHASE_HELLO;
	s->inherited = !connected;
	ev_timer_init(&s->hello, on_hello_deadline, HELLO_DEADLINE, 0.);
	s->hello.data = s;
	/* The inherited channel waits for as long as the agent likes. */
	if (connected)
		ev_timer_start(d->loop, &s->hello);
	aj_channel_set_data(c, s);
}

static void
on_closing(struct aj_channel *c, void *arg)
{
	struct aj_dispatch *d = arg;
	struct session *s = aj_channel_data(c);

	if (s == NULL)
		return;
	aj_req_table_abandon(&s->reqs);
	ev_timer_stop(d->loop, &s->hello);
	free(s);
}

static void
on_drained(struct aj_channel *c, void *arg)
{
	struct session *s = aj_channel_data(c);

	aj_req_table_resume(&s->reqs);
}

/* Every agent-side end is closed: the broker's work is done. */
static void
on_all_closed(void *arg)
{
	struct aj_dispatch *d = arg;

	ev_break(d->loop, EVBREAK_ALL);
}

const struct aj_channel_hooks aj_dispatch_hooks = {
	.opened = on_opened,
	.frame = on_frame,
	.closing = on_closing,
	.drained = on_drained,
	.all_closed = on_all_closed,
};

struct aj_dispatch *
aj_dispatch_new(struct ev_loop *loop, struct aj_requests *requests, pid_t door_maker)
{
	struct aj_dispatch *d = calloc(1, sizeof(*d));

	if (d == NULL)
		return NULL;
	d->loop = loop;
	d->requests = requests;
	d->door_maker = door_maker;
	return d;
}

void
aj_dispatch_free(struct aj_dispatch *d)
{
	free(d);
}

bool
aj_dispatch_saw_protocol_error(const struct aj_dispatch *d)
{
	return d->protocol_error;
}
