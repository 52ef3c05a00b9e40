/*
 * The agent's channels: the inherited socket, the private pairs opened
 * with CONNECT and the connections to the jail's broker socket
 * (AJ_BROKER_SOCKET_PATH, its listener handed over with LISTEN).  This file owns the slots, reads one message at a time
 * (at most one passed fd), and sends frames without ever blocking: a frame
 * that does not fit waits in the channel's queue, bounded, and an agent
 * that sends without reading its answers is not read either until it
 * catches up.  What the frames mean is the protocol layer's
 * (broker/dispatch.c), reached through the hooks.
 */
#include "config.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "broker.h"
#include "fdpass.h"
#include "log.h"
#include "proc.h"

/* What a queued answer carrying a descriptor (a memfd, a pipe) counts
 * against AJ_CHANNEL_QUEUE_MAX besides its bytes: a descriptor costs the
 * broker more than its frame (a pipe holds a body, and descriptors are
 * few): about 16 wait per channel before the broker stops reading it. */
#define QUEUED_FD_COST (AJ_CHANNEL_QUEUE_MAX / 16)

/* A frame waiting for room in the channel's socket buffer. */
struct outframe {
	struct outframe *next;
	int fd; /* passed with the frame, or -1 */
	size_t len;
	uint8_t data[];
};

struct aj_channel {
	struct aj_channels *set;
	int fd;    /* -1: the slot is free */
	ev_io io;  /* readable */
	ev_io wio; /* writable, while frames wait or transfers are paused */
	struct outframe *out_head, *out_tail;
	size_t out_bytes; /* queued, with QUEUED_FD_COST per descriptor */
	bool throttled;   /* not read until aj_channels_unthrottle() */
	bool internal;    /* the broker's own (the proxy's): not counted in n_open */
	void *data;       /* the protocol layer's */
	/* Who made the channel (a CONNECTed pair's peer), read when it
	 * opened: 0 and "" when unknown. */
	pid_t peer_pid;
	char peer_comm[16];
	char *peer_exe; /* NULL: unknown */
};

struct aj_channels {
	struct ev_loop *loop;
	const struct aj_channel_hooks *hooks;
	void *arg;
	struct aj_channel slots[AJ_CHANNELS_MAX];
	size_t n_open;
	int waiting[AJ_CHANNELS_WAITING_MAX]; /* CONNECTed fds without a slot, oldest first */
	ev_io listener; /* the broker socket's, once LISTEN brought it; fd -1 before */
	size_t n_waiting;
	/* One byte more than the largest frame: a longer message shows as
	 * truncated (MSG_TRUNC) instead of being cut silently. */
	uint8_t in[AJ_PROTO_HEADER_SIZE + AJ_PROTO_MAX_PAYLOAD + 1];
	uint8_t out[AJ_PROTO_HEADER_SIZE + AJ_PROTO_MAX_PAYLOAD];
};

static size_t
queued_cost(size_t len, int fd)
{
	return len + (fd >= 0 ? QUEUED_FD_COST : 0);
}

/* One frame, with FD alongside when >= 0, never blocking.  Returns bytes
 * sent or -errno. */
static ssize_t
send_frame(int sock, const uint8_t *frame, size_t len, int fd)
{
	return aj_fdpass_send(sock, frame, len, fd, MSG_DONTWAIT);
}

static void
want_writable(struct aj_channel *c)
{
	if (!ev_is_active(&c->wio))
		ev_io_start(c->set->loop, &c->wio);
}

/* Read C when nothing holds it back: neither the profile's rate nor a
 * queue of answers the agent has not taken. */
static void
update_reading(struct aj_channel *c)
{
	bool read = !c->throttled && c->out_bytes <= AJ_CHANNEL_QUEUE_MAX;

	if (read && !ev_is_active(&c->io))
		ev_io_start(c->set->loop, &c->io);
	else if (!read && ev_is_active(&c->io))
		ev_io_stop(c->set->loop, &c->io);
}

void
aj_channel_send(struct aj_channel *c, const uint8_t *frame, size_t len, int fd)
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
	/* The socket is full: keep the frame until it has room.  Control
	 * frames queue (at most two per open request); bodies pause their
	 * transfer instead, but for the rest of one already begun. */
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
	update_reading(c);
	if (c->out_tail != NULL)
		c->out_tail->next = o;
	else
		c->out_head = o;
	c->out_tail = o;
	want_writable(c);
}

static void
drop_queue(struct aj_channel *c)
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
	struct aj_channel *c = w->data;
	struct aj_channels *set = c->set;

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
	update_reading(c);
	set->hooks->drained(c, set->arg);
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
aj_channel_send_body(struct aj_channel *c, uint32_t id, const void *data, size_t len, bool end)
{
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
					       c->set->out, sizeof(c->set->out));

			if (n < 0)
				return -EPIPE;
			aj_channel_send(c, c->set->out, (size_t)n, -1);
		} else if (sent < 0) {
			return -EPIPE;
		}
		p += chunk;
		len -= chunk;
	} while (len > 0);
	return 0;
}

void
aj_channel_send_json(struct aj_channel *c, uint8_t type, uint32_t id, json_t *obj, int fd)
{
	uint8_t *buf = c->set->out;
	int n = obj ? aj_proto_frame_json(type, id, obj, buf,
					  AJ_PROTO_HEADER_SIZE + AJ_PROTO_MAX_JSON)
		    : -ENOMEM;

	json_decref(obj);
	if (n < 0 && type == AJ_MSG_ERROR) {
		/* Never leave a request unanswered because the answer did
		 * not fit: a short fixed record instead. */
		static const char fallback[] = "{\"code\":\"upstream_error\",\"message\":"
					       "\"the broker's answer did not fit in a frame\"}";
		n = aj_proto_frame(AJ_MSG_ERROR, 0, id, fallback, sizeof(fallback) - 1, buf,
				   sizeof(c->set->out));
	}
	if (n > 0)
		aj_channel_send(c, buf, (size_t)n, fd);
	else if (fd >= 0)
		close(fd);
}

void
aj_channel_send_error(struct aj_channel *c, uint32_t id, const char *code, const char *rule,
		      const char *msg)
{
	json_t *obj = json_pack("{s:s, s:s}", "code", code, "message", msg);

	if (obj != NULL && rule != NULL)
		json_object_set_new(obj, "rule", json_string(rule));
	aj_channel_send_json(c, AJ_MSG_ERROR, id, obj, -1);
}

bool
aj_channel_is_backlogged(const struct aj_channel *c)
{
	return c->out_head != NULL;
}

void
aj_channel_throttle(struct aj_channel *c)
{
	c->throttled = true;
	update_reading(c);
}

bool
aj_channel_is_throttled(const struct aj_channel *c)
{
	return c->throttled;
}

bool
aj_channel_is_internal(const struct aj_channel *c)
{
	return c->internal;
}

void
aj_channels_unthrottle(struct aj_channels *set)
{
	for (size_t i = 0; i < AJ_CHANNELS_MAX; i++) {
		struct aj_channel *c = &set->slots[i];

		if (c->fd < 0 || !c->throttled)
			continue;
		c->throttled = false;
		update_reading(c);
	}
}

void
aj_channel_set_data(struct aj_channel *c, void *data)
{
	c->data = data;
}

void *
aj_channel_data(const struct aj_channel *c)
{
	return c->data;
}

struct aj_channels *
aj_channel_set(const struct aj_channel *c)
{
	return c->set;
}

/* ---- opening, reading, closing ------------------------------------------------ */

static void on_readable(struct ev_loop *loop, ev_io *w, int revents);

/* A slot for FD, or NULL when every slot is taken. */
static struct aj_channel *
take_slot(struct aj_channels *set, int fd)
{
	for (size_t i = 0; i < AJ_CHANNELS_MAX; i++) {
		struct aj_channel *c = &set->slots[i];

		if (c->fd >= 0)
			continue;
		memset(c, 0, sizeof(*c));
		c->set = set;
		c->fd = fd;
		ev_io_init(&c->io, on_readable, fd, EV_READ);
		c->io.data = c;
		ev_io_init(&c->wio, on_writable, fd, EV_WRITE);
		c->wio.data = c;
		ev_io_start(set->loop, &c->io);
		set->n_open++;
		return c;
	}
	return NULL;
}

/* The process that made C's socket pair (SO_PEERCRED: the one that sent
 * it with CONNECT; the inherited door's is the jail's init): its pid in
 * our pid namespace, its comm and, where we may read it, its executable.
 * Read now, while it waits for our answer. */
static void
note_peer(struct aj_channel *c)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	char comm[16], exe[4096], safe[4096];
	int dir;

	if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || cred.pid <= 0)
		return;
	c->peer_pid = cred.pid;
	dir = aj_proc_open(cred.pid);
	if (dir < 0)
		return;
	aj_proc_read_task(dir, comm, sizeof(comm), exe, sizeof(exe));
	close(dir);
	/* Written into records as text: escaped, as the violations' are. */
	aj_log_escape(comm, c->peer_comm, sizeof(c->peer_comm));
	aj_log_escape(exe, safe, sizeof(safe));
	if (safe[0] != '\0')
		c->peer_exe = strdup(safe);
}

void
aj_channel_peer(const struct aj_channel *c, pid_t *pid, const char **comm, const char **exe)
{
	*pid = c->peer_pid;
	*comm = c->peer_comm;
	*exe = c->peer_exe != NULL ? c->peer_exe : "";
}

void
aj_channels_open(struct aj_channels *set, int fd, bool connected)
{
	struct aj_channel *c = take_slot(set, fd);

	if (c != NULL) {
		/* The door's pair was made by the jail's init, for every
		 * process: its requests have no one process to name. */
		if (connected)
			note_peer(c);
		set->hooks->opened(c, connected, set->arg);
		return;
	}
	/* Full: the new channel waits for a slot... */
	if (connected && set->n_waiting < AJ_CHANNELS_WAITING_MAX) {
		set->waiting[set->n_waiting++] = fd;
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

void
aj_channels_open_internal(struct aj_channels *set, int fd)
{
	struct aj_channel *c = take_slot(set, fd);

	if (c == NULL) {
		close(fd);
		return;
	}
	c->internal = true;
	set->n_open--; /* an agent's channels alone keep the broker serving */
	set->hooks->opened(c, true, set->arg);
}

void
aj_channel_close(struct aj_channel *c)
{
	struct aj_channels *set = c->set;
	bool internal = c->internal;

	set->hooks->closing(c, set->arg);
	ev_io_stop(set->loop, &c->io);
	ev_io_stop(set->loop, &c->wio);
	drop_queue(c);
	close(c->fd);
	c->fd = -1;
	c->data = NULL;
	c->internal = false;
	free(c->peer_exe);
	c->peer_exe = NULL;
	if (!internal)
		set->n_open--;
	/* The slot goes to the channel that has waited longest. */
	if (set->n_waiting > 0) {
		int next = set->waiting[0];

		memmove(set->waiting, set->waiting + 1, --set->n_waiting * sizeof(int));
		aj_channels_open(set, next, true);
	}
	if (set->n_open == 0 && !internal)
		set->hooks->all_closed(set->arg);
}

/* Every connection waiting on the broker socket becomes a channel, as a
 * CONNECTed pair does (same slots, same queue for a slot, same HELLO
 * deadline); its peer credentials name the process that connected. */
static void
on_connection(struct ev_loop *loop, ev_io *w, int revents)
{
	struct aj_channels *set = w->data;
	int fd;

	while ((fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0)
		aj_channels_open(set, fd, true);
	if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
		aj_log_error("accepting on the broker socket: %s", strerror(errno));
}

int
aj_channels_listen(struct aj_channels *set, int fd)
{
	if (set->listener.fd >= 0)
		return -EEXIST;
	ev_io_init(&set->listener, on_connection, fd, EV_READ);
	set->listener.data = set;
	ev_io_start(set->loop, &set->listener);
	return 0;
}

/* One message and at most one passed fd (close-on-exec).  More fds, or a
 * truncated control message, are the protocol layer's to refuse: it gets
 * the message with fd -2. */
static void
on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
	struct aj_channel *c = w->data;
	struct aj_channels *set = c->set;
	bool bad_fds;
	int fd;
	ssize_t n = aj_fdpass_recv(c->fd, set->in, sizeof(set->in), MSG_TRUNC | MSG_DONTWAIT, &fd,
				   &bad_fds);

	if (n == -EAGAIN)
		return;
	if (n <= 0) {
		/* This channel's agent side is closed (or broke). */
		if (fd >= 0 && n == 0)
			close(fd);
		aj_channel_close(c);
		return;
	}
	if (bad_fds)
		fd = AJ_CHANNEL_BAD_FDS;
	set->hooks->frame(c, set->in, (size_t)n, fd, set->arg);
}

struct aj_channels *
aj_channels_new(struct ev_loop *loop, const struct aj_channel_hooks *hooks, void *arg)
{
	struct aj_channels *set = calloc(1, sizeof(*set));

	if (set == NULL)
		return NULL;
	set->loop = loop;
	set->hooks = hooks;
	set->arg = arg;
	for (size_t i = 0; i < AJ_CHANNELS_MAX; i++)
		set->slots[i].fd = -1;
	ev_io_init(&set->listener, on_connection, -1, EV_READ);
	return set;
}

void
aj_channels_free(struct aj_channels *set)
{
	if (set == NULL)
		return;
	for (size_t i = 0; i < AJ_CHANNELS_MAX; i++) {
		struct aj_channel *c = &set->slots[i];

		if (c->fd < 0)
			continue;
		ev_io_stop(set->loop, &c->io);
		ev_io_stop(set->loop, &c->wio);
		drop_queue(c);
		close(c->fd);
	}
	for (size_t i = 0; i < set->n_waiting; i++)
		close(set->waiting[i]);
	if (set->listener.fd >= 0) {
		ev_io_stop(set->loop, &set->listener);
		close(set->listener.fd);
	}
	free(set);
}
