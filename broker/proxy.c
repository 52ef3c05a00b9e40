/*
 * The proxy (`proxy on`): listening sockets in the jail's network
 * namespace (made by the jail's init, passed at AJ_FD_PROXY), and one
 * channel to the broker's own protocol layer on a socketpair inside this
 * process.  Every request a tool sends through the proxy becomes a
 * REQUEST on that channel: the decision, the limits, the redirect checks,
 * the egress checks, the fetch and the audit are the native ones, with no
 * second copy of any of them.  proxy-conn.c speaks HTTP to the clients.
 *
 * The channel is the broker's internal one: it does not keep the broker
 * alive (the broker serves while an agent process holds a channel of its
 * own, the inherited door included).  If it ends (the broker refused
 * something of ours: a bug), the proxy stops: its connections close and
 * its listeners too, so tools see a refused connection, not a hang.
 */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker.h"
#include "fds.h"
#include "log.h"
#include "proxy-request.h"
#include "proxy.h"

/* Client connections served at once; more are closed as they come. */
#define PROXY_CONNS_MAX 1024

/* Frames queued for the broker past which connections stop reading
 * request bodies from their clients. */
#define PROXY_QUEUE_MAX (1024 * 1024)

struct qframe {
	struct qframe *next;
	size_t len;
	uint8_t data[];
};

struct aj_proxy {
	struct ev_loop *loop;
	const struct aj_proxy_conn_hooks *conn;
	struct aj_tlsca *ca;
	struct aj_proxy_relay *relay;
	struct aj_audit_log *audit;
	/* The proxy port's listeners, then those of the captured ports. */
	int listen_fd[AJ_PROXY_LISTENERS + 2];
	ev_io accept_w[AJ_PROXY_LISTENERS + 2];
	unsigned captured_port[AJ_PROXY_LISTENERS + 2]; /* 80 or 443; 0: the proxy port */
	size_t n_listen;
	const struct aj_dns_stub *stub; /* names the captured connections' addresses */
	int chan;
	ev_io chan_r, chan_w;
	struct qframe *head, *tail;
	size_t queued;
	bool welcomed;
	uint32_t next_id;
	struct {
		uint32_t id;
		struct aj_proxy_conn *conn;
	} open[AJ_PROTO_MAX_IN_FLIGHT];
	size_t n_open;
	struct aj_proxy_conn *conns[PROXY_CONNS_MAX];
	size_t n_conns;
	struct aj_proxy_conn *waiting[PROXY_CONNS_MAX]; /* for room on the channel */
	size_t n_waiting;
};

struct ev_loop *
aj_proxy_loop(const struct aj_proxy *px)
{
	return px->loop;
}

struct aj_tlsca *
aj_proxy_ca(const struct aj_proxy *px)
{
	return px->ca;
}

struct aj_proxy_relay *
aj_proxy_relay(const struct aj_proxy *px)
{
	return px->relay;
}

void
aj_proxy_refused(struct aj_proxy *px, const char *method, const char *url, const char *code)
{
	aj_audit_log_write_proxy(px->audit, method ? method : "", url ? url : "", code);
}

bool
aj_proxy_buf_append(struct aj_proxy_buf *b, const void *data, size_t len)
{
	if (len == 0)
		return true;
	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap : 16384;
		char *grown;

		while (cap < b->len + len)
			cap *= 2;
		grown = realloc(b->data, cap);
		if (grown == NULL)
			return false;
		b->data = grown;
		b->cap = cap;
	}
	memcpy(b->data + b->len, data, len);
	b->len += len;
	return true;
}

void
aj_proxy_buf_free(struct aj_proxy_buf *b)
{
	free(b->data);
	*b = (struct aj_proxy_buf){0};
}

/* ---- the channel --------------------------------------------------------------- */

static void stop(struct aj_proxy *px, const char *why);

static bool
send_now(struct aj_proxy *px, const uint8_t *frame, size_t len)
{
	ssize_t n = send(px->chan, frame, len, MSG_NOSIGNAL | MSG_DONTWAIT);

	if (n == (ssize_t)len)
		return true;
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS))
		return false;
	stop(px, "the broker's channel broke");
	return true; /* nothing to keep */
}

static void
on_chan_writable(struct ev_loop *loop, ev_io *w, int revents)
{
	struct aj_proxy *px = w->data;

	(void)loop;
	(void)revents;
	while (px->head != NULL && px->chan >= 0) {
		struct qframe *q = px->head;

		if (!send_now(px, q->data, q->len))
			return;
		px->head = q->next;
		if (px->head == NULL)
			px->tail = NULL;
		px->queued -= q->len;
		free(q);
	}
	if (px->chan >= 0)
		ev_io_stop(px->loop, &px->chan_w);
	/* Room: the connections that waited read their clients again. */
	while (px->n_waiting > 0 && !aj_proxy_is_backlogged(px))
		px->conn->resume(px->waiting[--px->n_waiting]);
}

void
aj_proxy_send(struct aj_proxy *px, uint8_t type, uint16_t flags, uint32_t id, const void *payload,
	      size_t len)
{
	size_t cap = AJ_PROTO_HEADER_SIZE + len;
	struct qframe *q;
	int n;

	if (px->chan < 0)
		return;
	q = malloc(sizeof(*q) + cap);
	if (q == NULL) {
		stop(px, "out of memory");
		return;
	}
	n = aj_proto_frame(type, flags, id, payload, len, q->data, cap);
	if (n < 0) {
		free(q);
		stop(px, "a frame too large (a bug)");
		return;
	}
	q->len = (size_t)n;
	/* In order: straight out only when nothing waits before it. */
	if (px->head == NULL && send_now(px, q->data, q->len)) {
		free(q);
		return;
	}
	if (px->chan < 0) {
		free(q);
		return;
	}
	q->next = NULL;
	if (px->tail != NULL)
		px->tail->next = q;
	else
		px->head = q;
	px->tail = q;
	px->queued += q->len;
	ev_io_start(px->loop, &px->chan_w);
}

void
aj_proxy_send_json(struct aj_proxy *px, uint8_t type, uint16_t flags, uint32_t id, json_t *obj)
{
	char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;

	json_decref(obj);
	if (text == NULL) {
		stop(px, "out of memory");
		return;
	}
	aj_proxy_send(px, type, flags, id, text, strlen(text));
	free(text);
}

bool
aj_proxy_is_backlogged(const struct aj_proxy *px)
{
	return px->queued > PROXY_QUEUE_MAX;
}

void
aj_proxy_wait_for_room(struct aj_proxy *px, struct aj_proxy_conn *c)
{
	for (size_t i = 0; i < px->n_waiting; i++)
		if (px->waiting[i] == c)
			return;
	if (px->n_waiting < PROXY_CONNS_MAX)
		px->waiting[px->n_waiting++] = c;
}

/* ---- request ids ---------------------------------------------------------------- */

uint32_t
aj_proxy_open_id(struct aj_proxy *px, struct aj_proxy_conn *c)
{
	if (px->n_open == AJ_PROTO_MAX_IN_FLIGHT || px->chan < 0)
		return 0;
	if (++px->next_id == 0)
		px->next_id = 1;
	px->open[px->n_open].id = px->next_id;
	px->open[px->n_open].conn = c;
	px->n_open++;
	return px->next_id;
}

void
aj_proxy_close_id(struct aj_proxy *px, uint32_t id, bool cancel)
{
	for (size_t i = 0; i < px->n_open; i++) {
		if (px->open[i].id != id)
			continue;
		px->open[i] = px->open[--px->n_open];
		if (cancel)
			aj_proxy_send(px, AJ_MSG_CANCEL, 0, id, NULL, 0);
		return;
	}
}

static struct aj_proxy_conn *
conn_of(const struct aj_proxy *px, uint32_t id)
{
	for (size_t i = 0; i < px->n_open; i++)
		if (px->open[i].id == id)
			return px->open[i].conn;
	return NULL;
}

/* ---- frames from the broker ------------------------------------------------------ */

static void start_accepting(struct aj_proxy *px);

static void
on_frame(struct aj_proxy *px, const struct aj_frame *f, const uint8_t *payload)
{
	struct aj_proxy_conn *c;
	json_t *obj = NULL;
	char err[128];

	if (f->type == AJ_MSG_BODY) {
		c = conn_of(px, f->id);
		if (c != NULL)
			px->conn->body(c, payload, f->length, (f->flags & AJ_FLAG_END) != 0);
		return;
	}
	if (aj_proto_parse_json(payload, f->length, &obj, err, sizeof(err)) < 0) {
		stop(px, "the broker sent a frame the proxy cannot read");
		return;
	}
	if (f->type == AJ_MSG_WELCOME && !px->welcomed) {
		px->welcomed = true;
		start_accepting(px);
	} else if (f->type == AJ_MSG_ERROR && f->id == 0) {
		aj_log_error("proxy: the broker ended its channel: %s",
			     json_string_value(json_object_get(obj, "message")));
		stop(px, NULL);
	} else if ((f->type == AJ_MSG_RESPONSE || f->type == AJ_MSG_ERROR) &&
		   (c = conn_of(px, f->id)) != NULL) {
		if (f->type == AJ_MSG_RESPONSE)
			px->conn->response(c, obj);
		else
			px->conn->error(c, obj);
	}
	json_decref(obj);
}

static void
on_chan_readable(struct ev_loop *loop, ev_io *w, int revents)
{
	static uint8_t buf[AJ_PROTO_HEADER_SIZE + AJ_PROTO_MAX_PAYLOAD];
	struct aj_proxy *px = w->data;
	const uint8_t *payload;
	struct aj_frame f;
	char err[128];

	(void)loop;
	(void)revents;
	/* A bounded number per round: the clients' sockets get their turn. */
	for (int i = 0; i < 64 && px->chan >= 0; i++) {
		ssize_t n = recv(px->chan, buf, sizeof(buf), MSG_DONTWAIT);

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		if (n <= 0) {
			stop(px, n == 0 ? "the broker closed its channel" : "the broker's channel broke");
			return;
		}
		if (aj_proto_decode(buf, (size_t)n, &f, &payload, err, sizeof(err)) < 0) {
			stop(px, "the broker sent a malformed frame");
			return;
		}
		on_frame(px, &f, payload);
	}
}

/* ---- clients ----------------------------------------------------------------------- */

/* The connection FD accepted on a listener of PORT (0: the proxy port) to
 * its side, a captured one with the name of the address it was made to
 * (which the DNS stub gave out): the rules see that name.  A connection
 * to any other address (the jail's 127.0.0.1:443, an address the stub
 * never gave) has no name to be served as: closed. */
static struct aj_proxy_conn *
accepted(struct aj_proxy *px, int fd, unsigned port)
{
	struct aj_proxy_authority origin = {.kind = AJ_HOST_NAME, .port = port};
	struct sockaddr_storage local;
	socklen_t len = sizeof(local);
	const char *name;

	if (port == 0)
		return px->conn->accepted(px, fd, NULL);
	if (getsockname(fd, (struct sockaddr *)&local, &len) < 0 ||
	    (name = aj_dns_stub_name_of(px->stub, (struct sockaddr *)&local)) == NULL ||
	    strlen(name) >= sizeof(origin.host)) {
		close(fd);
		return NULL;
	}
	memcpy(origin.host, name, strlen(name) + 1);
	return px->conn->accepted(px, fd, &origin);
}

static void
on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	struct aj_proxy *px = w->data;

	(void)loop;
	(void)revents;
	for (int i = 0; i < 64; i++) {
		int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), one = 1;
		struct aj_proxy_conn *c;

		if (fd < 0)
			return; /* EAGAIN, or a connection reset before we took it */
		if (px->n_conns == PROXY_CONNS_MAX) {
			close(fd);
			continue;
		}
		/* An answer goes out in pieces as it comes (the head, then the
		 * body): Nagle would hold each piece for the client's delayed
		 * ACK, some 40 ms (measured: an intercepted 1 KiB fetch took
		 * 90 ms instead of 45). */
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c = accepted(px, fd, px->captured_port[(ev_io *)w - px->accept_w]);
		if (c != NULL)
			px->conns[px->n_conns++] = c;
	}
}

static void
start_accepting(struct aj_proxy *px)
{
	for (size_t i = 0; i < px->n_listen; i++)
		ev_io_start(px->loop, &px->accept_w[i]);
}

void
aj_proxy_conn_gone(struct aj_proxy *px, struct aj_proxy_conn *c)
{
	for (size_t i = 0; i < px->n_conns; i++)
		if (px->conns[i] == c) {
			px->conns[i] = px->conns[--px->n_conns];
			break;
		}
	for (size_t i = 0; i < px->n_waiting; i++)
		if (px->waiting[i] == c) {
			px->waiting[i] = px->waiting[--px->n_waiting];
			break;
		}
	/* A request it still had open is abandoned. */
	for (size_t i = px->n_open; i-- > 0;)
		if (px->open[i].conn == c)
			aj_proxy_close_id(px, px->open[i].id, true);
}

/* ---- life --------------------------------------------------------------------------- */

static void
stop(struct aj_proxy *px, const char *why)
{
	if (px->chan < 0)
		return;
	if (why != NULL)
		aj_log_error("proxy: %s; it stops", why);
	ev_io_stop(px->loop, &px->chan_r);
	ev_io_stop(px->loop, &px->chan_w);
	close(px->chan);
	px->chan = -1;
	for (size_t i = 0; i < px->n_listen; i++) {
		ev_io_stop(px->loop, &px->accept_w[i]);
		close(px->listen_fd[i]);
		px->listen_fd[i] = -1;
	}
	px->n_listen = 0;
	while (px->n_conns > 0)
		px->conn->close(px->conns[px->n_conns - 1]);
	while (px->head != NULL) {
		struct qframe *q = px->head;

		px->head = q->next;
		free(q);
	}
	px->tail = NULL;
	px->queued = 0;
	px->n_open = 0;
}

static void
add_listener(struct aj_proxy *px, int fd, unsigned captured_port)
{
	px->listen_fd[px->n_listen] = fd;
	px->captured_port[px->n_listen] = captured_port;
	ev_io_init(&px->accept_w[px->n_listen], on_accept, fd, EV_READ);
	px->accept_w[px->n_listen].data = px;
	px->n_listen++;
}

struct aj_proxy *
aj_proxy_new(struct ev_loop *loop, int chan, const int *listen_fds, size_t n,
	     const int capture_fds[2], const struct aj_dns_stub *stub, struct aj_tlsca *ca,
	     struct aj_proxy_relay *relay, struct aj_audit_log *audit,
	     const struct aj_proxy_conn_hooks *conn)
{
	static const char hello[] = "{\"version\":1,\"client\":\"agentjail-proxy/" PACKAGE_VERSION
				    "\"}";
	struct aj_proxy *px = calloc(1, sizeof(*px));

	if (px == NULL)
		return NULL;
	px->loop = loop;
	px->conn = conn;
	px->ca = ca;
	px->relay = relay;
	px->audit = audit;
	px->chan = chan;
	for (size_t i = 0; i < n && i < AJ_PROXY_LISTENERS; i++)
		add_listener(px, listen_fds[i], 0);
	px->stub = stub;
	if (stub != NULL) {
		add_listener(px, capture_fds[0], 80);
		add_listener(px, capture_fds[1], 443);
	}
	ev_io_init(&px->chan_r, on_chan_readable, chan, EV_READ);
	px->chan_r.data = px;
	ev_io_init(&px->chan_w, on_chan_writable, chan, EV_WRITE);
	px->chan_w.data = px;
	ev_io_start(loop, &px->chan_r);
	/* Clients are accepted once the broker has WELCOMEd the channel. */
	aj_proxy_send(px, AJ_MSG_HELLO, 0, 0, hello, sizeof(hello) - 1);
	return px;
}

void
aj_proxy_free(struct aj_proxy *px)
{
	if (px == NULL)
		return;
	stop(px, NULL);
	free(px);
}
