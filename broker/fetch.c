/*
 * The broker's fetcher: libcurl's multi interface driven by the broker's
 * libev loop (one thread, no polling, no thread per request; libcurl's
 * resolver threads aside).
 *
 * What it guarantees, beyond "fetch the URL":
 *  - it fetches exactly the normalised URL the policy decided on, with
 *    Host and TLS SNI taken from it (CURLOPT_PATH_AS_IS: libcurl does not
 *    rewrite the path behind the matcher's back);
 *  - every address is checked right before the socket is made
 *    (CURLOPT_OPENSOCKETFUNCTION): the address checked is the address
 *    connected to, so DNS rebinding cannot slip a second answer in, and a
 *    refused address never sees a packet;
 *  - redirects are never followed by libcurl: each Location is normalised
 *    and decided like a new request (redirect());
 *  - limits hold whatever upstream does: response size, time, concurrency,
 *    rate; a slow reader pauses its transfer (WINDOW credit, or a full pipe)
 *    instead of making the broker buffer.
 *
 * "deliver":"pipe" sends the body through a pipe whose read end comes with
 * RESPONSE.  A plain-http body with a Content-Length of at least SPLICE_MIN
 * is taken over from libcurl once it has handed over its first bytes: the
 * rest moves from the socket into the pipe with splice(2), never through
 * the broker's memory, and the connection is closed at the end.  That is
 * what lets a big download through the broker keep pace with curl on the
 * host (BENCHMARKS.md); a copy through the broker costs half the speed.
 */
#include "config.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker.h"
#include "http.h"
#include "log.h"
#include "memfd.h"

/* Headers of one response the agent gets at most, in JSON bytes: well
 * inside a RESPONSE frame (AJ_PROTO_MAX_JSON), with room for the rest. */
#define RESPONSE_HEADER_BUDGET 12288

/* The host's own addresses, besides loopback: connecting to them is
 * connecting to a service on this machine. */
#define MAX_LOCAL_ADDRESSES 64

/* "deliver":"pipe": bodies from this size on are spliced (below it, the
 * connection is worth more kept for reuse than the copy costs), and the
 * pipe's capacity asked for (unprivileged users may get less: the kernel
 * bounds their pipes' total size; then the default 64 KiB serves). */
#define SPLICE_MIN (1u << 20)
#define PIPE_SIZE (1 << 20)

/* A request the agent ended by closing its pipe: finished without a word,
 * as after CANCEL. */
static const char CANCELLED[] = "cancelled";

struct aj_fetch {
	struct aj_req *req;
	CURL *easy;
	struct curl_slist *hdrs;
	char errbuf[CURL_ERROR_SIZE];
	const struct aj_fetch_rule *hop_rule; /* what allowed the current hop */
	unsigned hops;                        /* redirects followed so far */
	double deadline;                      /* ev_now() by which it must be done */
	uint64_t max_response;
	json_t *resp_headers; /* this hop's, filtered */
	size_t resp_header_bytes;
	char *location;
	bool headers_done;  /* this hop's header block has ended */
	bool redirecting;   /* this hop's answer is a redirect to follow */
	bool response_sent; /* RESPONSE went to the agent */
	bool paused;
	int64_t credit; /* response bytes the agent will still take */
	uint64_t bytes_out;
	uint64_t discarded; /* bytes of redirect bodies read and dropped */
	/* Response bytes gathered into one BODY frame: libcurl hands over
	 * 16 KiB at a time, a frame holds 64 KiB.  Sent when full, and at the
	 * end of every round of the event loop (flush_all()), so nothing
	 * waits for more data to arrive. */
	uint8_t *pending;
	size_t n_pending, pending_cap;
	struct aj_fetch *next_dirty; /* in F.dirty while n_pending > 0 */
	bool dirty;
	int memfd;           /* "deliver":"memfd": the body collects here */
	const char *error;   /* AJ_ERR_* a callback decided, or NULL */
	char why[160];       /* its message, for AJ_ERR_UPSTREAM */
	const char *refused; /* why an address was refused, or NULL */
	char refused_addr[INET6_ADDRSTRLEN];
	char address[INET6_ADDRSTRLEN]; /* the last address connected to */
	size_t rule_slot;               /* index of req->rule, for its counters */
	long status;                    /* kept when the easy handle goes early */

	/* "deliver":"pipe" */
	int pipe_w;      /* the write end, or -1 */
	ev_io pipe_io;   /* waits for room in the pipe */
	ev_io pipe_gone; /* the agent closed its end (EPOLLERR, seen as readable) */
	uint8_t *spill;  /* what libcurl handed over and the pipe could not take */
	size_t n_spill, spill_off, spill_cap;
	bool complete;   /* libcurl is done: END once the spill is out */
	bool te_chunked; /* upstream sent Transfer-Encoding (no splice) */
	bool splice_wanted;
	bool takeover_due;           /* in F.takeovers */
	unsigned takeover_tries;
	struct aj_fetch *next_takeover;
	int own_sock;                /* the connection taken over, or -1 */
	ev_io sock_io;
	ev_timer deadline_timer;
	uint64_t remaining; /* body bytes still to come on OWN_SOCK */
	uint64_t spliced;
};

/* A socket libcurl asked us to watch. */
struct sock_watch {
	ev_io io;
	curl_socket_t fd;
};

/* Requests per minute, as a token bucket refilled continuously. */
struct bucket {
	double tokens;
	double last;
};

static struct {
	struct ev_loop *loop;
	const struct aj_policy *policy;
	const struct aj_ca_bundle *ca;
	CURLM *multi;
	ev_timer timer;
	unsigned in_flight;
	unsigned *rule_in_flight; /* per rule, parallel to policy->rules */
	struct bucket *rule_rate;
	struct aj_cidr local[MAX_LOCAL_ADDRESSES];
	size_t n_local;
	struct aj_fetch *dirty;     /* fetches holding response bytes not sent yet */
	struct aj_fetch *takeovers; /* connections to take over after this round */
	int *conns;                 /* every upstream socket libcurl holds open */
	size_t n_conns, conns_cap;
	int adopting; /* the socket being taken over: libcurl's close leaves it open */
} F;

static void check_done(void);
static void flush_all(void);
static void take_over_all(void);

/* After libcurl has run (socket_action, or an unpause): what it handed
 * over goes out, connections due are taken over, finished transfers end. */
static void
after_libcurl(void)
{
	flush_all();
	take_over_all();
	check_done();
}

/* ---- libcurl <-> libev ------------------------------------------------------ */

static void
on_socket_event(struct ev_loop *loop, ev_io *w, int revents)
{
	struct sock_watch *s = (struct sock_watch *)w;
	int running, flags = (revents & EV_READ ? CURL_CSELECT_IN : 0) |
			     (revents & EV_WRITE ? CURL_CSELECT_OUT : 0);

	curl_multi_socket_action(F.multi, s->fd, flags, &running);
	after_libcurl();
}

static int
on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct sock_watch *s = socketp;
	int events = (what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0);
	if (what == CURL_POLL_REMOVE) {
		if (s != NULL) {
			ev_io_stop(F.loop, &s->io);
			free(s);
			curl_multi_assign(F.multi, fd, NULL);
		}
		return 0;
	}
	if (s == NULL) {
		s = calloc(1, sizeof(*s));
		if (s == NULL)
			return -1;
		s->fd = fd;
		curl_multi_assign(F.multi, fd, s);
	} else {
		ev_io_stop(F.loop, &s->io);
	}
	ev_io_init(&s->io, on_socket_event, fd, events);
	ev_io_start(F.loop, &s->io);
	return 0;
}

static void
on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	int running;

	curl_multi_socket_action(F.multi, CURL_SOCKET_TIMEOUT, 0, &running);
	after_libcurl();
}

static int
on_timer_change(CURLM *multi, long timeout_ms, void *userp)
{
	ev_timer_stop(F.loop, &F.timer);
	if (timeout_ms >= 0) {
		ev_timer_set(&F.timer, (double)timeout_ms / 1000.0, 0.0);
		ev_timer_start(F.loop, &F.timer);
	}
	return 0;
}

/* ---- addresses -------------------------------------------------------------- */

static void
cidr_of(const struct sockaddr *sa, struct aj_cidr *c)
{
	memset(c, 0, sizeof(*c));
	c->family = sa->sa_family;
	if (sa->sa_family == AF_INET) {
		memcpy(c->addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		c->prefix = 32;
	} else {
		memcpy(c->addr, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
		c->prefix = 128;
	}
}

static void
collect_local_addresses(void)
{
	struct ifaddrs *list, *i;

	if (getifaddrs(&list) < 0)
		return;
	for (i = list; i != NULL && F.n_local < MAX_LOCAL_ADDRESSES; i = i->ifa_next)
		if (i->ifa_addr != NULL &&
		    (i->ifa_addr->sa_family == AF_INET || i->ifa_addr->sa_family == AF_INET6))
			cidr_of(i->ifa_addr, &F.local[F.n_local++]);
	freeifaddrs(list);
}

/* Why the broker must not connect to SA for F, or NULL. */
static const char *
address_refused(const struct aj_fetch *f, const struct sockaddr *sa)
{
	const struct aj_policy *p = F.policy;
	const char *reason = aj_addr_special(sa);

	if (reason == NULL) {
		for (size_t i = 0; i < F.n_local; i++)
			if (aj_cidr_contains(&F.local[i], sa))
				reason = "an address of this host";
	}
	if (reason == NULL)
		return NULL;
	/* Named explicitly: a `fetch address allow` range... */
	for (size_t i = 0; i < p->n_addresses; i++)
		if (aj_cidr_contains(&p->addresses[i], sa))
			return NULL;
	/* ...or the IP literal of the rule that allowed this hop. */
	if (f->req->url.host_kind != AJ_HOST_NAME &&
	    strcmp(f->hop_rule->host, f->req->url.host) == 0) {
		char text[INET6_ADDRSTRLEN];

		aj_addr_format(sa, text, sizeof(text));
		if (strcmp(text, f->req->url.host) == 0)
			return NULL;
	}
	return reason;
}

/* Every connection libcurl makes starts here: the one place an address is
 * checked, right before the socket exists. */
static curl_socket_t
on_open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct aj_fetch *f = clientp;
	const char *why;
	int fd;

	if (purpose != CURLSOCKTYPE_IPCXN || (a->family != AF_INET && a->family != AF_INET6))
		return CURL_SOCKET_BAD;
	why = address_refused(f, &a->addr);
	if (why != NULL) {
		f->refused = why;
		aj_addr_format(&a->addr, f->refused_addr, sizeof(f->refused_addr));
		return CURL_SOCKET_BAD;
	}
	fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
	if (fd >= 0)
		aj_addr_format(&a->addr, f->address, sizeof(f->address));
	/* Known, so that a takeover can find a transfer's connection (a
	 * reused one is announced to on_socket() by no one); when the list
	 * cannot grow, that connection is simply never taken over. */
	if (fd >= 0 && F.n_conns == F.conns_cap) {
		size_t cap = F.conns_cap ? 2 * F.conns_cap : 16;
		int *grown = realloc(F.conns, cap * sizeof(*grown));

		if (grown != NULL) {
			F.conns = grown;
			F.conns_cap = cap;
		}
	}
	if (fd >= 0 && F.n_conns < F.conns_cap)
		F.conns[F.n_conns++] = fd;
	return fd;
}

/* (No easy handle here: libcurl may close a kept connection long after
 * the transfer that opened it.) */
static int
on_close_socket(void *clientp, curl_socket_t fd)
{
	for (size_t i = 0; i < F.n_conns; i++) {
		if (F.conns[i] == fd) {
			F.conns[i] = F.conns[--F.n_conns];
			break;
		}
	}
	if (fd == F.adopting) {
		F.adopting = -1; /* libcurl let go of it: it is the fetch's now */
		return 0;
	}
	return close(fd);
}

/* ---- answers to the agent ---------------------------------------------------- */

static void
send_response(struct aj_fetch *f, int fd)
{
	const size_t flags = JSON_COMPACT | JSON_ENSURE_ASCII;
	struct aj_req *r = f->req;
	curl_off_t length = -1;
	long status = 0;
	json_t *obj;

	curl_easy_getinfo(f->easy, CURLINFO_RESPONSE_CODE, &status);
	if (f->memfd >= 0)
		length = (curl_off_t)f->bytes_out;
	else if (r->method_bit != AJ_METHOD_HEAD && status != 204 && status != 304)
		curl_easy_getinfo(f->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
	obj = json_pack("{s:i, s:o, s:o, s:s}", "status", (int)status, "headers",
			f->resp_headers ? json_incref(f->resp_headers) : json_array(), "length",
			length >= 0 ? json_integer((json_int_t)length) : json_null(), "url",
			r->url.normalised);
	/* The answer always goes out: what does not fit in a frame (headers
	 * were budgeted, but the URL escapes too) is left out, headers
	 * first, then the URL (the agent knows what it asked for). */
	if (obj != NULL && json_dumpb(obj, NULL, 0, flags) > AJ_PROTO_MAX_JSON)
		json_object_set_new(obj, "headers", json_array());
	if (obj != NULL && json_dumpb(obj, NULL, 0, flags) > AJ_PROTO_MAX_JSON)
		json_object_set_new(obj, "url", json_null());
	f->response_sent = true;
	aj_channel_send_json(r->ch, AJ_MSG_RESPONSE, r->id, obj, fd);
}

/* ---- "deliver":"pipe" -------------------------------------------------------- */

static void finish(struct aj_fetch *f, const char *error, const char *decision, const char *rule);
static void fail(struct aj_fetch *f, const char *code, const char *rule, const char *decision,
		 const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void fail_timeout(struct aj_fetch *f);
static void end_body(struct aj_fetch *f);
static void splice_more(struct aj_fetch *f);
static void unpause(struct aj_fetch *f);

/* The status and address of the answer, kept before the easy handle goes
 * (finish() reports them). */
static void
remember(struct aj_fetch *f)
{
	char *ip = NULL;

	if (f->easy == NULL)
		return;
	if (f->headers_done)
		curl_easy_getinfo(f->easy, CURLINFO_RESPONSE_CODE, &f->status);
	/* A reused connection did not pass through on_open_socket. */
	if (f->address[0] == '\0' &&
	    curl_easy_getinfo(f->easy, CURLINFO_PRIMARY_IP, &ip) == CURLE_OK && ip != NULL)
		snprintf(f->address, sizeof(f->address), "%s", ip);
}

/* Write what waits in the spill.  0 once it is all out, -EAGAIN while the
 * pipe is full, -EPIPE when the agent closed its end, or -errno. */
static int
drain_spill(struct aj_fetch *f)
{
	while (f->spill_off < f->n_spill) {
		ssize_t n = write(f->pipe_w, f->spill + f->spill_off, f->n_spill - f->spill_off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		f->spill_off += (size_t)n;
	}
	f->n_spill = f->spill_off = 0;
	return 0;
}

/* The pipe broke under a write or a splice (ERR, a negative errno). */
static void
pipe_failed(struct aj_fetch *f, int err)
{
	if (err == -EPIPE)
		finish(f, CANCELLED, "allowed", NULL);
	else
		fail(f, AJ_ERR_UPSTREAM, NULL, "allowed", "writing the body pipe: %s",
		     strerror(-err));
}

/* The agent closed its end: noticed at once, even while upstream sends
 * nothing (a write would notice only when there is something to write).
 * epoll reports a pipe's write end without readers as an error, which
 * libev hands to a read watcher. */
static void
on_pipe_gone(struct ev_loop *loop, ev_io *w, int revents)
{
	finish(w->data, CANCELLED, "allowed", NULL);
}

/* EOF for the agent. */
static void
close_pipe(struct aj_fetch *f)
{
	ev_io_stop(F.loop, &f->pipe_io);
	ev_io_stop(F.loop, &f->pipe_gone);
	close(f->pipe_w);
	f->pipe_w = -1;
}

static void
on_pipe_room(struct ev_loop *loop, ev_io *w, int revents)
{
	struct aj_fetch *f = w->data;
	int rc = drain_spill(f);

	if (rc == -EAGAIN)
		return;
	if (rc < 0) {
		pipe_failed(f, rc);
		return;
	}
	if (f->own_sock >= 0) {
		splice_more(f);
		return;
	}
	ev_io_stop(loop, &f->pipe_io);
	if (f->complete) {
		end_body(f);
	} else if (f->paused && f->easy != NULL) {
		/* libcurl kept the chunk that did not fit: it comes again now. */
		unpause(f);
		after_libcurl();
	}
}

/* A pipe for the body: its read end goes with RESPONSE.  Returns that fd,
 * or -errno. */
static int
open_pipe(struct aj_fetch *f)
{
	int p[2];

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	(void)fcntl(p[1], F_SETPIPE_SZ, PIPE_SIZE);
	if (fcntl(p[1], F_SETFL, O_NONBLOCK) < 0) {
		int err = -errno;

		close(p[0]);
		close(p[1]);
		return err;
	}
	f->pipe_w = p[1];
	/* The time limit holds while the body waits for the agent, too (after
	 * libcurl is done with a body the pipe has not taken yet, or after a
	 * takeover): libcurl's own timer is gone then. */
	ev_timer_set(&f->deadline_timer,
		     f->deadline > ev_now(F.loop) ? f->deadline - ev_now(F.loop) : 0.0, 0.0);
	ev_timer_start(F.loop, &f->deadline_timer);
	ev_io_init(&f->pipe_io, on_pipe_room, p[1], EV_WRITE);
	f->pipe_io.data = f;
	ev_io_init(&f->pipe_gone, on_pipe_gone, p[1], EV_READ);
	f->pipe_gone.data = f;
	ev_io_start(F.loop, &f->pipe_gone);
	return p[0];
}

/* LEN body bytes from libcurl into the pipe; what does not fit waits in
 * the spill, and libcurl is paused until it is out.  Returns what
 * on_data() returns. */
static size_t
pipe_data(struct aj_fetch *f, const char *data, size_t len)
{
	ssize_t n;

	if (f->n_spill > 0) {
		f->paused = true;
		return CURL_WRITEFUNC_PAUSE;
	}
	do
		n = write(f->pipe_w, data, len);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno != EAGAIN) {
		f->error = errno == EPIPE ? CANCELLED : AJ_ERR_UPSTREAM;
		snprintf(f->why, sizeof(f->why), "writing the body pipe: %s", strerror(errno));
		return 0;
	}
	if (n < 0)
		n = 0;
	if ((size_t)n < len) {
		size_t rest = len - (size_t)n;

		if (rest > f->spill_cap) {
			uint8_t *grown = realloc(f->spill, rest);

			if (grown == NULL)
				return 0;
			f->spill = grown;
			f->spill_cap = rest;
		}
		memcpy(f->spill, data + n, rest);
		f->n_spill = rest;
		ev_io_start(F.loop, &f->pipe_io);
	}
	f->bytes_out += len;
	/* Taken over at the end of this round of the loop, when libcurl has
	 * handed over all it read: libcurl reads no more until then. */
	if (f->splice_wanted && !f->takeover_due) {
		f->takeover_due = true;
		f->next_takeover = F.takeovers;
		F.takeovers = f;
		curl_easy_pause(f->easy, CURLPAUSE_RECV);
	}
	return len;
}

/* Whether the rest of this body may be spliced: plain http/1, a length
 * announced and within the limit, no transfer coding, the request body all
 * sent (the connection carries nothing else any more). */
static bool
can_splice(struct aj_fetch *f)
{
	struct aj_req *r = f->req;
	curl_off_t length = -1, sent = -1;
	long version = 0;

	if (strcmp(r->url.scheme, "http") != 0 || r->method_bit == AJ_METHOD_HEAD ||
	    f->te_chunked || f->status == 204 || f->status == 304)
		return false;
	if (curl_easy_getinfo(f->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length) != CURLE_OK ||
	    length < (curl_off_t)SPLICE_MIN || (uint64_t)length > f->max_response)
		return false;
	if (curl_easy_getinfo(f->easy, CURLINFO_HTTP_VERSION, &version) != CURLE_OK ||
	    (version != CURL_HTTP_VERSION_1_0 && version != CURL_HTTP_VERSION_1_1))
		return false;
	return curl_easy_getinfo(f->easy, CURLINFO_SIZE_UPLOAD_T, &sent) == CURLE_OK &&
	       sent == (curl_off_t)r->body_len;
}

static void
on_upstream(struct ev_loop *loop, ev_io *w, int revents)
{
	splice_more(w->data);
}

static void
on_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
	fail_timeout(w->data);
}

/* Whether the socket FD is this transfer's connection: its two ends are
 * the ones libcurl reports (a descriptor seen earlier could since have
 * been closed and reused). */
static bool
is_connection_of(int fd, CURL *easy)
{
	long port[2] = {-1, -1};
	char *ip[2] = {NULL, NULL};

	if (curl_easy_getinfo(easy, CURLINFO_LOCAL_IP, &ip[0]) != CURLE_OK ||
	    curl_easy_getinfo(easy, CURLINFO_LOCAL_PORT, &port[0]) != CURLE_OK ||
	    curl_easy_getinfo(easy, CURLINFO_PRIMARY_IP, &ip[1]) != CURLE_OK ||
	    curl_easy_getinfo(easy, CURLINFO_PRIMARY_PORT, &port[1]) != CURLE_OK)
		return false;
	for (int end = 0; end < 2; end++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		char text[INET6_ADDRSTRLEN];
		const void *addr;
		unsigned p;

		if ((end == 0 ? getsockname(fd, (struct sockaddr *)&ss, &len)
			      : getpeername(fd, (struct sockaddr *)&ss, &len)) < 0)
			return false;
		if (ss.ss_family == AF_INET) {
			addr = &((struct sockaddr_in *)&ss)->sin_addr;
			p = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		} else if (ss.ss_family == AF_INET6) {
			addr = &((struct sockaddr_in6 *)&ss)->sin6_addr;
			p = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
		} else {
			return false;
		}
		if (inet_ntop(ss.ss_family, addr, text, sizeof(text)) == NULL || ip[end] == NULL ||
		    strcmp(text, ip[end]) != 0 || (long)p != port[end])
			return false;
	}
	return true;
}

/* Take the connection over from libcurl: only when libcurl holds no byte
 * of the body it has not handed over (what it read is what the pipe got),
 * so the rest of the body is exactly what is left on the socket.
 * Otherwise libcurl simply goes on.
 *
 * What this relies on in libcurl (7.88; checked byte for byte by
 * test_fetch.c on the libcurl the suite runs with): it counts every body
 * byte it reads in CURLINFO_SIZE_DOWNLOAD_T, and closes a connection whose
 * transfer is removed unfinished without reading from it.  Were either to
 * change, the spliced body would miss bytes, and the request would end in
 * an error (a short body, the time limit), not in a wrong success, unless
 * upstream sent more than its Content-Length. */
static void
take_over(struct aj_fetch *f)
{
	curl_off_t got = -1, length = -1;
	int conn = -1;

	if (curl_easy_getinfo(f->easy, CURLINFO_SIZE_DOWNLOAD_T, &got) != CURLE_OK ||
	    curl_easy_getinfo(f->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length) != CURLE_OK ||
	    got < 0 || length <= got) {
		f->splice_wanted = false; /* all read already, or nothing to go on */
		unpause(f);
		return;
	}
	if ((uint64_t)got != f->bytes_out) {
		/* libcurl read more than it handed over (the pipe was full):
		 * it hands the rest over now, and a later chunk tries again. */
		f->splice_wanted = ++f->takeover_tries < 64;
		unpause(f);
		return;
	}
	for (size_t i = 0; i < F.n_conns && conn < 0; i++)
		if (is_connection_of(F.conns[i], f->easy))
			conn = F.conns[i];
	f->splice_wanted = false;
	if (conn < 0) {
		unpause(f);
		return;
	}
	f->remaining = (uint64_t)(length - got);
	remember(f);
	/* libcurl closes the connection as it lets go of the unfinished
	 * transfer (not put back for reuse, FORBID_REUSE or not), and
	 * without reading from it: that close is the hand-over
	 * (on_close_socket()).  If it kept the connection instead, the body
	 * cannot be had: the request fails rather than guess. */
	F.adopting = conn;
	curl_easy_setopt(f->easy, CURLOPT_FORBID_REUSE, 1L);
	curl_multi_remove_handle(F.multi, f->easy);
	curl_easy_cleanup(f->easy);
	f->easy = NULL;
	f->paused = false;
	if (F.adopting >= 0) {
		F.adopting = -1;
		fail(f, AJ_ERR_UPSTREAM, f->hop_rule->origin, "allowed",
		     "the connection could not be taken over from libcurl");
		return;
	}
	f->own_sock = conn;
	ev_io_init(&f->sock_io, on_upstream, f->own_sock, EV_READ);
	f->sock_io.data = f;
	if (f->n_spill > 0)
		ev_io_start(F.loop, &f->pipe_io); /* the spill first */
	else
		splice_more(f);
}

static void
take_over_all(void)
{
	while (F.takeovers != NULL) {
		struct aj_fetch *f = F.takeovers;

		F.takeovers = f->next_takeover;
		f->takeover_due = false;
		take_over(f);
	}
}

static void
forget_takeover(struct aj_fetch *f)
{
	for (struct aj_fetch **link = &F.takeovers; *link != NULL;
	     link = &(*link)->next_takeover) {
		if (*link == f) {
			*link = f->next_takeover;
			break;
		}
	}
	f->takeover_due = false;
}

/* Move what the socket has into the pipe, until one of them blocks; at
 * most a few MiB per call, so that other requests get their turn. */
static void
splice_more(struct aj_fetch *f)
{
	for (int round = 0; round < 8; round++) {
		size_t want = f->remaining < PIPE_SIZE ? (size_t)f->remaining : PIPE_SIZE;
		ssize_t n;
		int queued = 0;

		if (f->remaining == 0) {
			end_body(f);
			return;
		}
		n = splice(f->own_sock, NULL, f->pipe_w, NULL, want,
			   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n > 0) {
			f->remaining -= (uint64_t)n;
			f->bytes_out += (uint64_t)n;
			f->spliced += (uint64_t)n;
			continue;
		}
		if (n == 0) {
			fail(f, AJ_ERR_UPSTREAM, f->hop_rule->origin, "allowed",
			     "the connection closed after %llu of %llu body bytes",
			     (unsigned long long)f->bytes_out,
			     (unsigned long long)(f->bytes_out + f->remaining));
			return;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN) {
			if (errno == EPIPE)
				pipe_failed(f, -EPIPE);
			else
				fail(f, AJ_ERR_UPSTREAM, f->hop_rule->origin, "allowed",
				     "reading the body: %s", strerror(errno));
			return;
		}
		/* Which side blocks: bytes waiting on the socket mean the
		 * pipe is full. */
		if (ioctl(f->own_sock, FIONREAD, &queued) == 0 && queued > 0) {
			ev_io_stop(F.loop, &f->sock_io);
			ev_io_start(F.loop, &f->pipe_io);
		} else {
			ev_io_stop(F.loop, &f->pipe_io);
			ev_io_start(F.loop, &f->sock_io);
		}
		return;
	}
	if (f->remaining == 0) {
		end_body(f);
		return;
	}
	/* More may be there: the socket's watcher brings us back. */
	ev_io_stop(F.loop, &f->pipe_io);
	ev_io_start(F.loop, &f->sock_io);
}

/* ---- libcurl callbacks ------------------------------------------------------- */

static bool
is_redirect(long status)
{
	return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

/* A Content-Length beside a transfer coding is not the body's length
 * (RFC 9112, 6.3; libcurl ignores it too): the agent does not see it. */
static void
drop_content_length(json_t *headers)
{
	for (size_t i = json_array_size(headers); i-- > 0;) {
		const char *name = json_string_value(json_array_get(json_array_get(headers, i), 0));

		if (name != NULL && strcasecmp(name, "Content-Length") == 0)
			json_array_remove(headers, i);
	}
}

/* Returns 0, or -1 when the request cannot go on (F->error says why). */
static int
end_of_headers(struct aj_fetch *f)
{
	struct aj_req *r = f->req;
	long status = 0;

	curl_easy_getinfo(f->easy, CURLINFO_RESPONSE_CODE, &status);
	if (status >= 100 && status < 200) {
		/* An interim answer: the real one follows. */
		json_decref(f->resp_headers);
		f->resp_headers = NULL;
		f->resp_header_bytes = 0;
		f->te_chunked = false;
		return 0;
	}
	f->headers_done = true;
	if (f->te_chunked)
		drop_content_length(f->resp_headers);
	/* "redirects 0" hands the 3xx itself to the agent. */
	if (is_redirect(status) && f->location != NULL &&
	    aj_policy_limit(&r->limits, &F.policy->limits, AJ_LIMIT_REDIRECTS) > 0) {
		f->redirecting = true;
		return 0;
	}
	if (r->pipe) {
		int fd = open_pipe(f);

		if (fd < 0) {
			f->error = AJ_ERR_UPSTREAM;
			snprintf(f->why, sizeof(f->why), "no pipe for the body: %s",
				 strerror(-fd));
			return -1;
		}
		f->status = status;
		f->splice_wanted = can_splice(f);
		send_response(f, fd);
	} else if (f->memfd < 0) {
		send_response(f, -1);
	}
	return 0;
}

static size_t
on_header(char *data, size_t size, size_t n, void *userp)
{
	struct aj_fetch *f = userp;
	struct aj_http_field h;

	if (f->headers_done) /* trailers */
		return size * n;
	switch (aj_http_parse_line(data, size * n, &h)) {
	case AJ_HTTP_STATUS:
		/* A new header block (after an interim answer). */
		json_decref(f->resp_headers);
		f->resp_headers = NULL;
		f->resp_header_bytes = 0;
		free(f->location);
		f->location = NULL;
		f->te_chunked = false;
		return size * n;
	case AJ_HTTP_END:
		return end_of_headers(f) < 0 ? 0 : size * n;
	case AJ_HTTP_SKIP:
		return size * n;
	case AJ_HTTP_FIELD:
		break;
	}
	if (h.name_len == 17 && strncasecmp(h.name, "Transfer-Encoding", 17) == 0)
		f->te_chunked = true;
	if (h.name_len == 8 && strncasecmp(h.name, "Location", 8) == 0) {
		free(f->location);
		f->location = strndup(h.value, h.value_len);
	}
	if (aj_http_hop_by_hop(h.name, h.name_len))
		return size * n;
	if (f->resp_headers == NULL)
		f->resp_headers = json_array();
	/* Over the budget (in JSON bytes, escapes included): left out rather
	 * than failing the whole answer. */
	if (f->resp_headers != NULL && json_array_size(f->resp_headers) < AJ_PROTO_MAX_HEADERS) {
		json_t *pair =
			json_pack("[s#, s#]", h.name, (int)h.name_len, h.value, (int)h.value_len);
		/* NULL when not UTF-8: such a header is left out too. */
		size_t bytes =
			pair ? json_dumpb(pair, NULL, 0, JSON_COMPACT | JSON_ENSURE_ASCII) + 1 : 0;

		if (pair != NULL && f->resp_header_bytes + bytes <= RESPONSE_HEADER_BUDGET) {
			json_array_append_new(f->resp_headers, pair);
			f->resp_header_bytes += bytes;
		} else {
			json_decref(pair);
		}
	}
	return size * n;
}

/* Send the gathered bytes as one BODY frame (the last one if END).
 * Returns 0, or -EAGAIN when the agent's socket is full (kept for later). */
static int
flush(struct aj_fetch *f, bool end)
{
	int rc;

	if (f->n_pending == 0 && !end)
		return 0;
	rc = aj_channel_send_body(f->req->ch, f->req->id, f->pending, f->n_pending, end);
	if (rc == -EAGAIN && end) {
		/* The last frame queues: the request is over either way. */
		uint8_t *frame = malloc(AJ_PROTO_HEADER_SIZE + f->n_pending);
		int n = frame ? aj_proto_frame(AJ_MSG_BODY, AJ_FLAG_END, f->req->id, f->pending,
					       f->n_pending, frame,
					       AJ_PROTO_HEADER_SIZE + f->n_pending)
			      : -ENOMEM;

		if (n > 0)
			aj_channel_send(f->req->ch, frame, (size_t)n, -1);
		free(frame);
		rc = 0;
	}
	if (rc == -EAGAIN)
		return rc;
	f->n_pending = 0; /* sent, or the agent is gone */
	return 0;
}

/* The end of a round of the event loop: what libcurl handed over goes out
 * now rather than waiting for a full frame. */
static void
flush_all(void)
{
	struct aj_fetch **link = &F.dirty;

	while (*link != NULL) {
		struct aj_fetch *f = *link;

		if (flush(f, false) == 0) {
			f->dirty = false;
			*link = f->next_dirty;
		} else {
			link = &f->next_dirty;
		}
	}
}

static void
forget_dirty(struct aj_fetch *f)
{
	for (struct aj_fetch **link = &F.dirty; *link != NULL; link = &(*link)->next_dirty) {
		if (*link == f) {
			*link = f->next_dirty;
			break;
		}
	}
	f->dirty = false;
}

static size_t
on_data(char *data, size_t size, size_t n, void *userp)
{
	struct aj_fetch *f = userp;
	struct aj_req *r = f->req;
	size_t len = size * n;
	int rc;

	if (f->redirecting) {
		/* The body of a redirect is not the agent's; it is bounded all
		 * the same. */
		f->discarded += len;
		if (f->discarded > f->max_response) {
			f->error = AJ_ERR_TOO_LARGE;
			return 0;
		}
		return len;
	}
	if (f->bytes_out + len > f->max_response) {
		f->error = AJ_ERR_TOO_LARGE;
		return 0;
	}
	if (f->memfd >= 0) {
		for (size_t done = 0; done < len;) {
			ssize_t w = write(f->memfd, data + done, len - done);

			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				return 0;
			done += (size_t)w;
		}
		f->bytes_out += len;
		return len;
	}
	if (f->pipe_w >= 0)
		return pipe_data(f, data, len);
	/* Out of credit: libcurl keeps this chunk and stops reading from
	 * upstream until WINDOW (the credit may go below zero by at most one
	 * frame, so a chunk larger than the window cannot stall forever). */
	if (f->credit <= 0) {
		f->paused = true;
		return CURL_WRITEFUNC_PAUSE;
	}
	if (f->n_pending + len > AJ_PROTO_MAX_PAYLOAD && flush(f, false) == -EAGAIN) {
		f->paused = true;
		return CURL_WRITEFUNC_PAUSE;
	}
	if (len > AJ_PROTO_MAX_PAYLOAD) {
		/* (Only after a pause does libcurl hand over more at once.) */
		rc = aj_channel_send_body(r->ch, r->id, data, len, false);
		if (rc == -EAGAIN) {
			f->paused = true;
			return CURL_WRITEFUNC_PAUSE;
		}
		if (rc < 0)
			return 0;
	} else {
		/* Sized to what is gathered: a small answer costs little. */
		if (f->n_pending + len > f->pending_cap) {
			size_t cap = f->pending_cap ? f->pending_cap : 16384;
			uint8_t *grown;

			while (cap < f->n_pending + len)
				cap *= 2;
			if (cap > AJ_PROTO_MAX_PAYLOAD)
				cap = AJ_PROTO_MAX_PAYLOAD;
			grown = realloc(f->pending, cap);
			if (grown == NULL)
				return 0;
			f->pending = grown;
			f->pending_cap = cap;
		}
		memcpy(f->pending + f->n_pending, data, len);
		f->n_pending += len;
		if (!f->dirty) {
			f->dirty = true;
			f->next_dirty = F.dirty;
			F.dirty = f;
		}
	}
	f->credit -= (int64_t)len;
	f->bytes_out += len;
	return len;
}

/* ---- one hop ----------------------------------------------------------------- */

static bool
is_credential(const char *name)
{
	return strcasecmp(name, "Cookie") == 0 || strcasecmp(name, "Authorization") == 0;
}

static int
setup_hop(struct aj_fetch *f)
{
	struct aj_req *r = f->req;
	double left = f->deadline - ev_now(F.loop);
	struct curl_blob ca = {
		.data = F.ca->pem, .len = F.ca->len, .flags = CURL_BLOB_NOCOPY};
	bool credentials = (r->options & AJ_RULE_CREDENTIALS) != 0;
	CURL *e = curl_easy_init();

	if (e == NULL)
		return -1;
	f->easy = e;
	f->headers_done = f->redirecting = false;
	f->refused = NULL;
	f->errbuf[0] = '\0';
	/* Headers: the agent's (filtered in broker.c; credentials only where
	 * this hop's rule allows them), and empty values to keep libcurl from
	 * adding Expect or its own Accept. */
	curl_slist_free_all(f->hdrs);
	f->hdrs = curl_slist_append(NULL, "Expect:");
	for (size_t i = 0; f->hdrs != NULL && i < r->n_headers; i++) {
		char *line;

		if (is_credential(r->headers[i][0]) && !credentials)
			continue;
		if (asprintf(&line, "%s: %s", r->headers[i][0], r->headers[i][1]) < 0)
			return -1;
		f->hdrs = curl_slist_append(f->hdrs, line);
		free(line);
	}
	if (f->hdrs == NULL)
		return -1;
	curl_easy_setopt(e, CURLOPT_URL, r->url.normalised);
	curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	/* Every request resolves afresh: whatever a name says now, the address
	 * connected to is the one checked (on_open_socket). */
	curl_easy_setopt(e, CURLOPT_DNS_CACHE_TIMEOUT, 0L);
	/* No proxy from the environment, no netrc, no cookie engine. */
	curl_easy_setopt(e, CURLOPT_PROXY, "");
	curl_easy_setopt(e, CURLOPT_NETRC, (long)CURL_NETRC_IGNORED);
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, f->hdrs);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(e, CURLOPT_CAINFO, NULL);
	curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
	/* libcurl copies the blob into every handle: only where TLS needs it. */
	if (strcmp(r->url.scheme, "https") == 0)
		curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &ca);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, f);
	curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, on_close_socket);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, f);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, f);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, f->errbuf);
	curl_easy_setopt(e, CURLOPT_PRIVATE, f);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_BUFFERSIZE, (long)AJ_PROTO_MAX_PAYLOAD);
	curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)f->max_response);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, left > 0.001 ? (long)(left * 1000.0) : 1L);
	if (r->method_bit == AJ_METHOD_HEAD) {
		curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	} else if (r->method_bit != AJ_METHOD_GET) {
		if (r->method_bit != AJ_METHOD_POST)
			curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->method);
		/* Methods that carry a body always say how long it is. */
		if (r->body_len > 0 ||
		    (r->method_bit & (AJ_METHOD_POST | AJ_METHOD_PUT | AJ_METHOD_PATCH))) {
			curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body ? (char *)r->body : "");
			curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
		}
	}
	if (curl_multi_add_handle(F.multi, e) != CURLM_OK)
		return -1;
	return 0;
}

static void
release(struct aj_fetch *f)
{
	if (f->easy != NULL) {
		curl_multi_remove_handle(F.multi, f->easy);
		curl_easy_cleanup(f->easy);
		f->easy = NULL;
	}
}

/* The request is over, one way or the other: audit, free, finish. */
static void
finish(struct aj_fetch *f, const char *error, const char *decision, const char *rule)
{
	struct aj_req *r = f->req;
	struct aj_audit_record rec = {
		.req = r,
		.decision = decision,
		.rule = rule != NULL ? rule : f->hop_rule->origin,
		.address = f->address[0] ? f->address : NULL,
		.bytes_out = f->bytes_out,
		.error = error,
		.redirects = f->hops,
		.hop = f->hops,
	};

	remember(f);
	rec.address = f->address[0] ? f->address : NULL;
	rec.status = (int)f->status;
	/* Gathered but never sent (the request failed): not delivered. */
	if (error != NULL && f->memfd < 0)
		rec.bytes_out -= f->n_pending + (f->n_spill - f->spill_off);
	rec.spliced = f->spliced;
	aj_audit(&rec);
	release(f);
	F.in_flight--;
	F.rule_in_flight[f->rule_slot]--;
	if (f->dirty)
		forget_dirty(f);
	free(f->pending);
	curl_slist_free_all(f->hdrs);
	json_decref(f->resp_headers);
	free(f->location);
	if (f->memfd >= 0)
		close(f->memfd);
	if (f->takeover_due)
		forget_takeover(f);
	if (f->pipe_w >= 0)
		close_pipe(f);
	free(f->spill);
	ev_timer_stop(F.loop, &f->deadline_timer);
	if (f->own_sock >= 0) {
		ev_io_stop(F.loop, &f->sock_io);
		close(f->own_sock);
	}
	r->fetch = NULL;
	free(f);
	aj_req_finish(r);
}

/* Fail R with CODE; after RESPONSE the ERROR takes the final BODY's place. */
static void
fail(struct aj_fetch *f, const char *code, const char *rule, const char *decision, const char *fmt,
     ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* The pipe ends first, as before END: the agent reads it to EOF,
	 * then the ERROR. */
	if (f->pipe_w >= 0)
		close_pipe(f);
	aj_channel_send_error(f->req->ch, f->req->id, code, rule, msg);
	finish(f, code, decision, rule);
}

static bool take_token(struct bucket *b, uint64_t per_minute, double now);

/* One audit record for a hop that answered with a redirect (the request
 * goes on; its final record comes later). */
static void
audit_hop(struct aj_fetch *f)
{
	struct aj_audit_record rec = {
		.req = f->req,
		.decision = "allowed",
		.rule = f->hop_rule->origin,
		.redirects = f->hops,
		.hop = f->hops,
		.intermediate = true,
	};

	remember(f);
	rec.status = (int)f->status;
	rec.address = f->address[0] ? f->address : NULL;
	aj_audit(&rec);
}

/* The hop answered with a redirect: decide the next URL like a new
 * request, then fetch it, or end the request. */
static void
redirect(struct aj_fetch *f)
{
	struct aj_req *r = f->req;
	const struct aj_policy *p = F.policy;
	uint64_t max = aj_policy_limit(&r->limits, &p->limits, AJ_LIMIT_REDIRECTS);
	char err[512], safe[256], rule[600];
	struct aj_url next;
	struct aj_fetch_limits hop_limits;
	unsigned hop_options;
	size_t decided = (size_t)-1;
	long status = 0;
	CURLU *u;
	char *target = NULL;
	int ok, allowed;

	curl_easy_getinfo(f->easy, CURLINFO_RESPONSE_CODE, &status);
	if (f->hops >= max) {
		fail(f, AJ_ERR_UPSTREAM, NULL, "allowed", "more than %llu redirects",
		     (unsigned long long)max);
		return;
	}
	/* Relative references resolve against the URL this hop fetched. */
	u = curl_url();
	ok = u != NULL && curl_url_set(u, CURLUPART_URL, r->url.normalised, 0) == CURLUE_OK &&
	     curl_url_set(u, CURLUPART_URL, f->location, CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK &&
	     curl_url_get(u, CURLUPART_URL, &target, 0) == CURLUE_OK;
	curl_url_cleanup(u);
	aj_log_escape(f->location, safe, sizeof(safe));
	if (!ok || aj_url_normalise(target, &next, err, sizeof(err)) < 0) {
		curl_free(target);
		snprintf(rule, sizeof(rule), "redirect hop %u", f->hops + 1);
		fail(f, AJ_ERR_DENIED, rule, "denied", "redirect hop %u to '%s' refused: %s",
		     f->hops + 1, safe, ok ? err : "not a URL");
		return;
	}
	curl_free(target);
	audit_hop(f);
	f->hops++;
	/* 303, and 301/302 after POST, continue as GET without a body (as
	 * browsers do); 307 and 308 repeat the request as it was. */
	if (status == 303 ||
	    ((status == 301 || status == 302) && r->method_bit == AJ_METHOD_POST)) {
		if (r->method_bit != AJ_METHOD_HEAD) {
			r->method_bit = AJ_METHOD_GET;
			snprintf(r->method, sizeof(r->method), "GET");
		}
		aj_req_drop_body(r);
		r->body_len = 0;
	}
	/* From here on the request is about NEXT: its audit record names it,
	 * and every rule matching it adds its restrictions. */
	aj_log_escape(next.normalised, safe, sizeof(safe));
	allowed = aj_policy_decide(p->rules, p->n_rules, r->method_bit, &next, &decided);
	aj_policy_effective(p->rules, p->n_rules, r->method_bit, &next, &hop_limits, &hop_options);
	aj_policy_tighten(&r->limits, &r->options, &hop_limits, hop_options);
	r->url = next;
	/* What remember() kept was the last hop's. */
	f->headers_done = false;
	f->status = 0;
	f->address[0] = '\0';
	if (!allowed) {
		if (decided == (size_t)-1)
			snprintf(rule, sizeof(rule),
				 "%s: no 'fetch allow' rule matches (default deny)", p->path);
		else
			snprintf(rule, sizeof(rule), "%s", p->rules[decided].origin);
		fail(f, AJ_ERR_DENIED, rule, "denied", "redirect hop %u to %s %s is denied",
		     f->hops, r->method, safe);
		return;
	}
	f->hop_rule = &p->rules[decided];
	if (r->body_len > aj_policy_limit(&r->limits, &p->limits, AJ_LIMIT_MAX_BODY)) {
		fail(f, AJ_ERR_TOO_LARGE, f->hop_rule->origin, "allowed",
		     "redirect hop %u: the request body is over the limit of %llu bytes", f->hops,
		     (unsigned long long)aj_policy_limit(&r->limits, &p->limits,
							 AJ_LIMIT_MAX_BODY));
		return;
	}
	/* The request now counts against the rule that allowed this hop. */
	if ((size_t)decided != f->rule_slot) {
		uint64_t most = aj_policy_limit(&r->limits, &p->limits, AJ_LIMIT_CONCURRENCY);

		if (F.rule_in_flight[decided] >= most) {
			fail(f, AJ_ERR_RATE_LIMITED, f->hop_rule->origin, "allowed",
			     "redirect hop %u: more than %llu requests in flight", f->hops,
			     (unsigned long long)most);
			return;
		}
		F.rule_in_flight[f->rule_slot]--;
		F.rule_in_flight[decided]++;
		f->rule_slot = decided;
	}
	if ((f->hop_rule->limits.set & (1u << AJ_LIMIT_RATE)) &&
	    !take_token(&F.rule_rate[decided], f->hop_rule->limits.value[AJ_LIMIT_RATE],
			ev_now(F.loop))) {
		fail(f, AJ_ERR_RATE_LIMITED, f->hop_rule->origin, "allowed",
		     "redirect hop %u: more than %llu requests per minute", f->hops,
		     (unsigned long long)f->hop_rule->limits.value[AJ_LIMIT_RATE]);
		return;
	}
	f->max_response = aj_policy_limit(&r->limits, &p->limits, AJ_LIMIT_RESPONSE);
	release(f);
	json_decref(f->resp_headers);
	f->resp_headers = NULL;
	f->resp_header_bytes = 0;
	free(f->location);
	f->location = NULL;
	if (setup_hop(f) < 0)
		fail(f, AJ_ERR_UPSTREAM, NULL, "allowed", "out of memory");
}

static void
seal_and_send(struct aj_fetch *f)
{
	int fd = f->memfd;

	if (aj_memfd_seal(fd) < 0) {
		fail(f, AJ_ERR_UPSTREAM, NULL, "allowed", "sealing the response memfd failed");
		return;
	}
	f->memfd = -1; /* the channel owns it now */
	send_response(f, fd);
	finish(f, NULL, "allowed", NULL);
}

static void
fail_timeout(struct aj_fetch *f)
{
	struct aj_req *r = f->req;

	fail(f, AJ_ERR_TIMEOUT, f->hop_rule->origin, "allowed",
	     "no complete answer from %s within the time limit of %.3g s", r->url.host,
	     (double)aj_policy_limit(&r->limits, &F.policy->limits, AJ_LIMIT_TIMEOUT) / 1000.0);
}

/* The whole body is in the pipe: EOF, then END on the channel. */
static void
end_body(struct aj_fetch *f)
{
	close_pipe(f);
	(void)flush(f, true);
	finish(f, NULL, "allowed", NULL);
}

static void
transfer_done(struct aj_fetch *f, CURLcode rc)
{
	struct aj_req *r = f->req;
	char host[300];

	if (rc == CURLE_OK && f->redirecting) {
		redirect(f);
		return;
	}
	if (rc == CURLE_OK) {
		if (f->memfd >= 0) {
			seal_and_send(f);
			return;
		}
		if (f->pipe_w >= 0) {
			/* END once the spill is out (on_pipe_room()). */
			remember(f);
			release(f);
			f->complete = true;
			if (f->n_spill == 0)
				end_body(f);
			return;
		}
		if (!f->response_sent)
			send_response(f, -1);
		(void)flush(f, true);
		finish(f, NULL, "allowed", NULL);
		return;
	}
	snprintf(host, sizeof(host), "%s", r->url.host);
	if (f->error == CANCELLED)
		finish(f, CANCELLED, "allowed", NULL);
	else if (f->error != NULL && strcmp(f->error, AJ_ERR_UPSTREAM) == 0)
		fail(f, AJ_ERR_UPSTREAM, f->hop_rule->origin, "allowed", "%s", f->why);
	else if (f->error != NULL || rc == CURLE_FILESIZE_EXCEEDED)
		fail(f, AJ_ERR_TOO_LARGE, f->hop_rule->origin, "allowed",
		     "the response is over the limit of %llu bytes",
		     (unsigned long long)f->max_response);
	else if (rc == CURLE_OPERATION_TIMEDOUT)
		fail_timeout(f);
	else if (f->refused != NULL && f->address[0] == '\0')
		fail(f, AJ_ERR_DENIED, "address check", "denied",
		     "%s resolves to %s, %s: refused (a profile may allow it with 'fetch "
		     "address allow %s')",
		     host, f->refused_addr, f->refused, f->refused_addr);
	else
		fail(f, AJ_ERR_UPSTREAM, f->hop_rule->origin, "allowed", "%s: %s",
		     curl_easy_strerror(rc), f->errbuf[0] ? f->errbuf : "no detail");
}

static void
check_done(void)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(F.multi, &left)) != NULL) {
		struct aj_fetch *f = NULL;

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&f);
		if (f != NULL)
			transfer_done(f, m->data.result);
	}
}

/* ---- limits ----------------------------------------------------------------- */

static bool
take_token(struct bucket *b, uint64_t per_minute, double now)
{
	double cap = (double)per_minute;

	if (b->last == 0) {
		b->tokens = cap;
		b->last = now;
	}
	b->tokens += (now - b->last) * cap / 60.0;
	if (b->tokens > cap)
		b->tokens = cap;
	b->last = now;
	if (b->tokens < 1.0)
		return false;
	b->tokens -= 1.0;
	return true;
}

/* ---- the API ---------------------------------------------------------------- */

int
aj_fetch_init(struct ev_loop *loop, const struct aj_policy *policy, const struct aj_ca_bundle *ca)
{
	F.loop = loop;
	F.policy = policy;
	F.ca = ca;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "agentjail-broker[%d]: libcurl failed to initialise\n",
			(int)getpid());
		return -1;
	}
	F.adopting = -1;
	F.multi = curl_multi_init();
	F.rule_in_flight = calloc(policy->n_rules + 1, sizeof(*F.rule_in_flight));
	F.rule_rate = calloc(policy->n_rules + 1, sizeof(*F.rule_rate));
	if (F.multi == NULL || F.rule_in_flight == NULL || F.rule_rate == NULL) {
		fprintf(stderr, "agentjail-broker[%d]: out of memory\n", (int)getpid());
		return -1;
	}
	curl_multi_setopt(F.multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(F.multi, CURLMOPT_TIMERFUNCTION, on_timer_change);
	ev_init(&F.timer, on_timer);
	collect_local_addresses();
	return 0;
}

void
aj_fetch_start(struct aj_req *r)
{
	const struct aj_policy *p = F.policy;
	size_t slot = (size_t)(r->rule - p->rules);
	uint64_t concurrency = aj_policy_limit(&r->limits, &p->limits, AJ_LIMIT_CONCURRENCY);
	uint64_t rate = aj_policy_limit(&r->limits, &p->limits, AJ_LIMIT_RATE);
	double now = ev_now(F.loop);
	struct aj_fetch *f;
	char msg[256];

	/* A rule's own limit bounds its requests; the profile's bounds all. */
	if (F.in_flight >= p->limits.value[AJ_LIMIT_CONCURRENCY] ||
	    F.rule_in_flight[slot] >= concurrency) {
		snprintf(msg, sizeof(msg), "more than %llu requests in flight",
			 (unsigned long long)(F.rule_in_flight[slot] >= concurrency
						      ? concurrency
						      : p->limits.value[AJ_LIMIT_CONCURRENCY]));
		goto limited;
	}
	/* (The profile-wide rate is the broker's reading pace: broker.c.) */
	if ((r->limits.set & (1u << AJ_LIMIT_RATE)) && !take_token(&F.rule_rate[slot], rate, now)) {
		snprintf(msg, sizeof(msg), "more than %llu requests per minute",
			 (unsigned long long)rate);
		goto limited;
	}
	f = calloc(1, sizeof(*f));
	if (f == NULL) {
		snprintf(msg, sizeof(msg), "out of memory");
		goto limited;
	}
	f->req = r;
	f->hop_rule = r->rule;
	f->rule_slot = slot;
	f->memfd = -1;
	f->pipe_w = -1;
	f->own_sock = -1;
	ev_init(&f->deadline_timer, on_deadline);
	f->deadline_timer.data = f;
	f->credit = 262144;
	f->deadline = r->started +
		      (double)aj_policy_limit(&r->limits, &p->limits, AJ_LIMIT_TIMEOUT) / 1000.0;
	f->max_response = aj_policy_limit(&r->limits, &p->limits, AJ_LIMIT_RESPONSE);
	r->fetch = f;
	F.in_flight++;
	F.rule_in_flight[slot]++;
	if (r->memfd) {
		f->memfd = aj_memfd_new("agentjail-response");
		if (f->memfd < 0) {
			fail(f, AJ_ERR_UPSTREAM, NULL, "allowed", "memfd_create: %s",
			     strerror(-f->memfd));
			return;
		}
	}
	if (setup_hop(f) < 0)
		fail(f, AJ_ERR_UPSTREAM, NULL, "allowed", "out of memory");
	return;
limited : {
	struct aj_audit_record rec = {.req = r,
				      .decision = "allowed",
				      .rule = r->rule->origin,
				      .error = AJ_ERR_RATE_LIMITED};

	aj_channel_send_error(r->ch, r->id, AJ_ERR_RATE_LIMITED, r->rule->origin, msg);
	aj_audit(&rec);
	aj_req_finish(r);
}
}

static void
unpause(struct aj_fetch *f)
{
	f->paused = false;
	/* May call on_data at once, which may pause again. */
	curl_easy_pause(f->easy, CURLPAUSE_CONT);
}

void
aj_fetch_window(struct aj_req *r, uint32_t credit)
{
	struct aj_fetch *f = r->fetch;

	if (r->pipe)
		return; /* the pipe is the window */
	/* Bounded: a huge grant cannot overflow the counter. */
	if (f->credit < INT64_MAX / 2)
		f->credit += credit;
	if (f->paused && f->credit > 0 && r->ch->out_head == NULL)
		unpause(f);
}

void
aj_fetch_resume(struct channel *c)
{
	/* Bytes gathered before the socket filled go first. */
	flush_all();
	/* Unpausing never finishes a transfer on the spot (libcurl reports
	 * that through check_done()), so the table stays as it is. */
	for (size_t i = 0; i < c->n_reqs && c->out_head == NULL; i++) {
		struct aj_fetch *f = c->reqs[i]->fetch;

		if (f == NULL || !f->paused || f->credit <= 0 || c->reqs[i]->pipe)
			continue;
		unpause(f);
		/* Paused again with credit left: the socket is full. */
		if (f->paused && f->credit > 0)
			break;
	}
}

void
aj_fetch_cancel(struct aj_req *r)
{
	finish(r->fetch, "cancelled", "allowed", NULL);
}
