/*
 * "deliver":"pipe": the response body goes through a pipe whose read end
 * comes with RESPONSE; EOF then BODY END, or EOF then ERROR when it is
 * incomplete.  The pipe is the flow control: when it is full, libcurl is
 * paused; when the agent closes its end, the request is cancelled at once.
 *
 * A plain-http body with a Content-Length of at least SPLICE_MIN is taken
 * over from libcurl once it has handed over its first bytes: the rest
 * moves from the socket into the pipe with splice(2), never through the
 * broker's memory, and the connection is closed at the end.  That is what
 * lets a big download through the broker keep pace with curl on the host
 * (BENCHMARKS.md); a copy through the broker costs half the speed.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "transfer.h"

/* Bodies from this size on are spliced (below it, the connection is worth
 * more kept for reuse than the copy costs), and the pipe's capacity asked
 * for (unprivileged users may get less: the kernel bounds their pipes'
 * total size; then the default 64 KiB serves). */
#define SPLICE_MIN (1u << 20)
#define PIPE_SIZE (1 << 20)

/* How often a takeover is tried again while libcurl holds bytes it has not
 * handed over yet. */
#define TAKEOVER_TRIES 64

static void splice_more(struct aj_transfer *t);

/* Write what waits in the spill.  0 once it is all out, -EAGAIN while the
 * pipe is full, -EPIPE when the agent closed its end, or -errno. */
static int
drain_spill(struct aj_pipe_out *p)
{
	while (p->spill_off < p->n_spill) {
		ssize_t n = write(p->w, p->spill + p->spill_off, p->n_spill - p->spill_off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p->spill_off += (size_t)n;
	}
	p->n_spill = p->spill_off = 0;
	return 0;
}

/* The pipe broke under a write or a splice (ERR, a negative errno). */
static void
pipe_failed(struct aj_transfer *t, int err)
{
	if (err == -EPIPE)
		aj_transfer_finish(t, aj_transfer_cancelled, "allowed", NULL);
	else
		aj_transfer_fail(t, AJ_ERR_UPSTREAM, NULL, "allowed", "writing the body pipe: %s",
				 strerror(-err));
}

/* The agent closed its end: noticed at once, even while upstream sends
 * nothing (a write would notice only when there is something to write).
 * epoll reports a pipe's write end without readers as an error, which
 * libev hands to a read watcher. */
static void
on_pipe_gone(struct ev_loop *loop, ev_io *w, int revents)
{
	aj_transfer_finish(w->data, aj_transfer_cancelled, "allowed", NULL);
}

/* EOF for the agent. */
static void
close_pipe(struct aj_transfer *t)
{
	struct aj_pipe_out *p = &t->pipe;

	ev_io_stop(t->set->loop, &p->room);
	ev_io_stop(t->set->loop, &p->gone);
	close(p->w);
	p->w = -1;
}

/* The whole body is in the pipe: EOF, then END on the channel. */
static void
end_body(struct aj_transfer *t)
{
	close_pipe(t);
	aj_deliver_end(t);
	aj_transfer_finish(t, NULL, "allowed", NULL);
}

static void
on_pipe_room(struct ev_loop *loop, ev_io *w, int revents)
{
	struct aj_transfer *t = w->data;
	int rc = drain_spill(&t->pipe);

	if (rc == -EAGAIN)
		return;
	if (rc < 0) {
		pipe_failed(t, rc);
		return;
	}
	if (t->pipe.sock >= 0) {
		splice_more(t);
		return;
	}
	ev_io_stop(loop, w);
	if (t->pipe.complete) {
		end_body(t);
	} else if (t->paused && t->easy != NULL) {
		/* libcurl kept the chunk that did not fit: it comes again now. */
		aj_transfer_unpause(t);
		aj_curlev_after(t->set->curl);
	}
}

static void
on_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
	aj_transfer_fail_timeout(w->data);
}

/* A pipe for the body: its read end goes with RESPONSE.  Returns that fd,
 * or -errno. */
static int
open_pipe(struct aj_transfer *t)
{
	struct aj_pipe_out *p = &t->pipe;
	struct ev_loop *loop = t->set->loop;
	int fds[2];

	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	(void)fcntl(fds[1], F_SETPIPE_SZ, PIPE_SIZE);
	if (fcntl(fds[1], F_SETFL, O_NONBLOCK) < 0) {
		int err = -errno;

		close(fds[0]);
		close(fds[1]);
		return err;
	}
	p->w = fds[1];
	/* The time limit holds while the body waits for the agent, too (after
	 * libcurl is done with a body the pipe has not taken yet, or after a
	 * takeover): libcurl's own timer is gone then. */
	ev_timer_init(&p->deadline, on_deadline,
		      t->deadline > ev_now(loop) ? t->deadline - ev_now(loop) : 0.0, 0.0);
	p->deadline.data = t;
	ev_timer_start(loop, &p->deadline);
	ev_io_init(&p->room, on_pipe_room, p->w, EV_WRITE);
	p->room.data = t;
	ev_io_init(&p->gone, on_pipe_gone, p->w, EV_READ);
	p->gone.data = t;
	ev_io_start(loop, &p->gone);
	return fds[0];
}

/* Whether the rest of this body may be spliced: plain http/1, a length
 * announced and within the limit, no transfer coding, the request body all
 * sent (the connection carries nothing else any more). */
static bool
can_splice(struct aj_transfer *t)
{
	struct aj_req *r = t->req;
	curl_off_t length = -1, sent = -1;
	long version = 0;

	if (strcmp(r->url.scheme, "http") != 0 || r->method_bit == AJ_METHOD_HEAD ||
	    t->te_chunked || t->status == 204 || t->status == 304)
		return false;
	if (curl_easy_getinfo(t->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length) != CURLE_OK ||
	    length < (curl_off_t)SPLICE_MIN || (uint64_t)length > t->max_response)
		return false;
	if (curl_easy_getinfo(t->easy, CURLINFO_HTTP_VERSION, &version) != CURLE_OK ||
	    (version != CURL_HTTP_VERSION_1_0 && version != CURL_HTTP_VERSION_1_1))
		return false;
	return curl_easy_getinfo(t->easy, CURLINFO_SIZE_UPLOAD_T, &sent) == CURLE_OK &&
	       sent == (curl_off_t)r->body_len;
}

static int
pipe_begin(struct aj_transfer *t)
{
	int fd = open_pipe(t);

	if (fd < 0) {
		t->error = AJ_ERR_UPSTREAM;
		snprintf(t->why, sizeof(t->why), "no pipe for the body: %s", strerror(-fd));
		return -1;
	}
	t->pipe.splice_wanted = can_splice(t);
	aj_transfer_send_response(t, fd);
	return 0;
}

/* LEN body bytes from libcurl into the pipe; what does not fit waits in
 * the spill, and libcurl is paused until it is out. */
static size_t
pipe_data(struct aj_transfer *t, const char *data, size_t len)
{
	struct aj_pipe_out *p = &t->pipe;
	ssize_t n;

	if (p->n_spill > 0) {
		t->paused = true;
		return CURL_WRITEFUNC_PAUSE;
	}
	do
		n = write(p->w, data, len);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno != EAGAIN) {
		t->error = errno == EPIPE ? aj_transfer_cancelled : AJ_ERR_UPSTREAM;
		snprintf(t->why, sizeof(t->why), "writing the body pipe: %s", strerror(errno));
		return 0;
	}
	if (n < 0)
		n = 0;
	if ((size_t)n < len) {
		size_t rest = len - (size_t)n;

		if (rest > p->spill_cap) {
			uint8_t *grown = realloc(p->spill, rest);

			if (grown == NULL)
				return 0;
			p->spill = grown;
			p->spill_cap = rest;
		}
		memcpy(p->spill, data + n, rest);
		p->n_spill = rest;
		ev_io_start(t->set->loop, &p->room);
	}
	t->bytes_out += len;
	/* Taken over at the end of this round of the loop, when libcurl has
	 * handed over all it read: libcurl reads no more until then. */
	if (p->splice_wanted && !p->takeover_due) {
		p->takeover_due = true;
		p->next_takeover = t->set->takeovers;
		t->set->takeovers = t;
		curl_easy_pause(t->easy, CURLPAUSE_RECV);
	}
	return len;
}

/* libcurl is done: END once the spill is out (on_pipe_room()). */
static void
pipe_complete(struct aj_transfer *t)
{
	if (t->pipe.w < 0) {
		/* No pipe was opened (the answer ended before its body). */
		aj_deliver_frames.complete(t);
		return;
	}
	aj_transfer_remember(t);
	aj_transfer_release_easy(t);
	t->pipe.complete = true;
	if (t->pipe.n_spill == 0)
		end_body(t);
}

/* The pipe ends first, as before END: the agent reads it to EOF, then the
 * ERROR. */
static void
pipe_abort(struct aj_transfer *t)
{
	if (t->pipe.w >= 0)
		close_pipe(t);
}

static uint64_t
pipe_undelivered(const struct aj_transfer *t)
{
	return t->frames.n_pending + (t->pipe.n_spill - t->pipe.spill_off);
}

static void
forget_takeover(struct aj_transfer *t)
{
	for (struct aj_transfer **link = &t->set->takeovers; *link != NULL;
	     link = &(*link)->pipe.next_takeover) {
		if (*link == t) {
			*link = t->pipe.next_takeover;
			break;
		}
	}
	t->pipe.takeover_due = false;
}

static void
pipe_release(struct aj_transfer *t)
{
	struct aj_pipe_out *p = &t->pipe;

	if (p->takeover_due)
		forget_takeover(t);
	if (p->w >= 0)
		close_pipe(t);
	free(p->spill);
	ev_timer_stop(t->set->loop, &p->deadline);
	if (p->sock >= 0) {
		ev_io_stop(t->set->loop, &p->sock_io);
		close(p->sock);
	}
	aj_deliver_frames.release(t);
}

/* The pipe opens when the answer's header block is in (pipe_begin()). */
static int
pipe_start(struct aj_transfer *t)
{
	return 0;
}

const struct aj_delivery aj_deliver_pipe = {
	.start = pipe_start,
	.begin = pipe_begin,
	.data = pipe_data,
	.complete = pipe_complete,
	.abort = pipe_abort,
	.undelivered = pipe_undelivered,
	.release = pipe_release,
};

/* ---- the takeover and the splice ------------------------------------------------ */

static void
on_upstream(struct ev_loop *loop, ev_io *w, int revents)
{
	splice_more(w->data);
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
take_over(struct aj_transfer *t)
{
	struct aj_pipe_out *p = &t->pipe;
	curl_off_t got = -1, length = -1;
	int conn;

	if (curl_easy_getinfo(t->easy, CURLINFO_SIZE_DOWNLOAD_T, &got) != CURLE_OK ||
	    curl_easy_getinfo(t->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length) != CURLE_OK ||
	    got < 0 || length <= got) {
		p->splice_wanted = false; /* all read already, or nothing to go on */
		aj_transfer_unpause(t);
		return;
	}
	if ((uint64_t)got != t->bytes_out) {
		/* libcurl read more than it handed over (the pipe was full):
		 * it hands the rest over now, and a later chunk tries again. */
		p->splice_wanted = ++p->takeover_tries < TAKEOVER_TRIES;
		aj_transfer_unpause(t);
		return;
	}
	conn = aj_curlev_connection_of(t->set->curl, t->easy);
	p->splice_wanted = false;
	if (conn < 0) {
		aj_transfer_unpause(t);
		return;
	}
	p->remaining = (uint64_t)(length - got);
	aj_transfer_remember(t);
	/* If libcurl kept the connection instead of closing it, the body
	 * cannot be had: the request fails rather than guess. */
	if (aj_curlev_take_connection(t->set->curl, t->easy, conn) < 0) {
		t->easy = NULL;
		t->paused = false;
		aj_transfer_fail(t, AJ_ERR_UPSTREAM, t->hop_rule->origin, "allowed",
				 "the connection could not be taken over from libcurl");
		return;
	}
	t->easy = NULL;
	t->paused = false;
	p->sock = conn;
	ev_io_init(&p->sock_io, on_upstream, p->sock, EV_READ);
	p->sock_io.data = t;
	if (p->n_spill > 0)
		ev_io_start(t->set->loop, &p->room); /* the spill first */
	else
		splice_more(t);
}

void
aj_pipe_take_over_all(struct aj_transfers *set)
{
	while (set->takeovers != NULL) {
		struct aj_transfer *t = set->takeovers;

		set->takeovers = t->pipe.next_takeover;
		t->pipe.takeover_due = false;
		take_over(t);
	}
}

/* Move what the socket has into the pipe, until one of them blocks; at
 * most a few MiB per call, so that other requests get their turn. */
static void
splice_more(struct aj_transfer *t)
{
	struct aj_pipe_out *p = &t->pipe;
	struct ev_loop *loop = t->set->loop;

	for (int round = 0; round < 8; round++) {
		size_t want = p->remaining < PIPE_SIZE ? (size_t)p->remaining : PIPE_SIZE;
		ssize_t n;
		int queued = 0;

		if (p->remaining == 0) {
			end_body(t);
			return;
		}
		n = splice(p->sock, NULL, p->w, NULL, want, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n > 0) {
			p->remaining -= (uint64_t)n;
			t->bytes_out += (uint64_t)n;
			p->spliced += (uint64_t)n;
			continue;
		}
		if (n == 0) {
			aj_transfer_fail(t, AJ_ERR_UPSTREAM, t->hop_rule->origin, "allowed",
					 "the connection closed after %llu of %llu body bytes",
					 (unsigned long long)t->bytes_out,
					 (unsigned long long)(t->bytes_out + p->remaining));
			return;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN) {
			if (errno == EPIPE)
				pipe_failed(t, -EPIPE);
			else
				aj_transfer_fail(t, AJ_ERR_UPSTREAM, t->hop_rule->origin, "allowed",
						 "reading the body: %s", strerror(errno));
			return;
		}
		/* Which side blocks: bytes waiting on the socket mean the
		 * pipe is full. */
		if (ioctl(p->sock, FIONREAD, &queued) == 0 && queued > 0) {
			ev_io_stop(loop, &p->sock_io);
			ev_io_start(loop, &p->room);
		} else {
			ev_io_stop(loop, &p->room);
			ev_io_start(loop, &p->sock_io);
		}
		return;
	}
	if (p->remaining == 0) {
		end_body(t);
		return;
	}
	/* More may be there: the socket's watcher brings us back. */
	ev_io_stop(loop, &p->room);
	ev_io_start(loop, &p->sock_io);
}
