/*
 * Response bodies in BODY frames (the default, "deliver":"stream") and in
 * a sealed memfd ("deliver":"memfd").
 *
 * Frames flow within the agent's credit (WELCOME's window, then WINDOW
 * grants): out of credit, or with the channel's socket full, the transfer
 * pauses and libcurl stops reading from upstream, so a slow reader never
 * makes the broker buffer.  Bytes are gathered into 64 KiB frames and
 * sent when a frame is full and at the end of every round of the event
 * loop.  A memfd collects the whole body (within the response limit) and
 * goes to the agent sealed, with RESPONSE, once the body is complete.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "memfd.h"
#include "transfer.h"

/* ---- frames ------------------------------------------------------------------------ */

static void
mark_dirty(struct aj_transfer *t)
{
	if (t->frames.dirty)
		return;
	t->frames.dirty = true;
	t->frames.next_dirty = t->set->dirty;
	t->set->dirty = t;
}

static void
forget_dirty(struct aj_transfer *t)
{
	for (struct aj_transfer **link = &t->set->dirty; *link != NULL;
	     link = &(*link)->frames.next_dirty) {
		if (*link == t) {
			*link = t->frames.next_dirty;
			break;
		}
	}
	t->frames.dirty = false;
}

/* Send the gathered bytes as one BODY frame (the last one if END).
 * Returns 0, or -EAGAIN when the agent's socket is full (kept for later). */
static int
flush(struct aj_transfer *t, bool end)
{
	struct aj_frames_out *fo = &t->frames;
	struct aj_req *r = t->req;
	int rc;

	if (fo->n_pending == 0 && !end)
		return 0;
	rc = aj_channel_send_body(r->ch, r->id, fo->pending, fo->n_pending, end);
	if (rc == -EAGAIN && end) {
		/* The last frame queues: the request is over either way. */
		uint8_t *frame = malloc(AJ_PROTO_HEADER_SIZE + fo->n_pending);
		int n = frame ? aj_proto_frame(AJ_MSG_BODY, AJ_FLAG_END, r->id, fo->pending,
					       fo->n_pending, frame,
					       AJ_PROTO_HEADER_SIZE + fo->n_pending)
			      : -ENOMEM;

		if (n > 0)
			aj_channel_send(r->ch, frame, (size_t)n, -1);
		free(frame);
		rc = 0;
	}
	if (rc == -EAGAIN)
		return rc;
	fo->n_pending = 0; /* sent, or the agent is gone */
	return 0;
}

void
aj_deliver_end(struct aj_transfer *t)
{
	(void)flush(t, true);
}

void
aj_deliver_flush_all(struct aj_transfers *set)
{
	struct aj_transfer **link = &set->dirty;

	while (*link != NULL) {
		struct aj_transfer *t = *link;

		if (flush(t, false) == 0) {
			t->frames.dirty = false;
			*link = t->frames.next_dirty;
		} else {
			link = &t->frames.next_dirty;
		}
	}
}

/* Keep LEN bytes for the next frame (the buffer sized to what is
 * gathered: a small answer costs little).  Returns 0 or -ENOMEM. */
static int
gather(struct aj_transfer *t, const char *data, size_t len)
{
	struct aj_frames_out *fo = &t->frames;

	if (fo->n_pending + len > fo->pending_cap) {
		size_t cap = fo->pending_cap ? fo->pending_cap : 16384;
		uint8_t *grown;

		while (cap < fo->n_pending + len)
			cap *= 2;
		if (cap > AJ_PROTO_MAX_PAYLOAD)
			cap = AJ_PROTO_MAX_PAYLOAD;
		grown = realloc(fo->pending, cap);
		if (grown == NULL)
			return -ENOMEM;
		fo->pending = grown;
		fo->pending_cap = cap;
	}
	memcpy(fo->pending + fo->n_pending, data, len);
	fo->n_pending += len;
	mark_dirty(t);
	return 0;
}

static size_t
pause_transfer(struct aj_transfer *t)
{
	t->paused = true;
	return CURL_WRITEFUNC_PAUSE;
}

static size_t
frames_data(struct aj_transfer *t, const char *data, size_t len)
{
	struct aj_frames_out *fo = &t->frames;
	struct aj_req *r = t->req;

	/* Out of credit: libcurl keeps this chunk and stops reading from
	 * upstream until WINDOW (the credit may go below zero by at most one
	 * frame, so a chunk larger than the window cannot stall forever). */
	if (fo->credit <= 0)
		return pause_transfer(t);
	if (fo->n_pending + len > AJ_PROTO_MAX_PAYLOAD && flush(t, false) == -EAGAIN)
		return pause_transfer(t);
	if (len > AJ_PROTO_MAX_PAYLOAD) {
		/* (Only after a pause does libcurl hand over more at once.) */
		int rc = aj_channel_send_body(r->ch, r->id, data, len, false);

		if (rc == -EAGAIN)
			return pause_transfer(t);
		if (rc < 0)
			return 0;
	} else if (gather(t, data, len) < 0) {
		return 0;
	}
	fo->credit -= (int64_t)len;
	t->bytes_out += len;
	return len;
}

static int
frames_begin(struct aj_transfer *t)
{
	aj_transfer_send_response(t, -1);
	return 0;
}

/* libcurl is done: RESPONSE if none went yet (a body-less answer), then
 * END. */
static void
frames_complete(struct aj_transfer *t)
{
	if (!t->response_sent)
		aj_transfer_send_response(t, -1);
	aj_deliver_end(t);
	aj_transfer_finish(t, NULL, "allowed", NULL);
}

/* Nothing to set up: the body goes where it is asked to. */
static int
nothing_to_start(struct aj_transfer *t)
{
	return 0;
}

/* Nothing to close before the ERROR: it takes the final BODY's place. */
static void
nothing_to_abort(struct aj_transfer *t)
{
}

static uint64_t
frames_undelivered(const struct aj_transfer *t)
{
	return t->frames.n_pending;
}

static void
frames_release(struct aj_transfer *t)
{
	if (t->frames.dirty)
		forget_dirty(t);
	free(t->frames.pending);
	t->frames.pending = NULL;
}

void
aj_deliver_window(struct aj_transfer *t, uint32_t credit)
{
	/* Bounded: a huge grant cannot overflow the counter. */
	if (t->frames.credit < INT64_MAX / 2)
		t->frames.credit += credit;
	if (t->paused && t->frames.credit > 0 && !aj_channel_is_backlogged(t->req->ch))
		aj_transfer_unpause(t);
}

bool
aj_deliver_resume(struct aj_transfer *t)
{
	/* Bytes gathered before the socket filled go first. */
	if (aj_channel_is_backlogged(t->req->ch) || flush(t, false) == -EAGAIN)
		return false;
	if (!t->paused || t->frames.credit <= 0)
		return true;
	aj_transfer_unpause(t);
	/* Paused again with credit left: the socket is full. */
	return !(t->paused && t->frames.credit > 0);
}

const struct aj_delivery aj_deliver_frames = {
	.start = nothing_to_start,
	.begin = frames_begin,
	.data = frames_data,
	.complete = frames_complete,
	.abort = nothing_to_abort,
	.undelivered = frames_undelivered,
	.release = frames_release,
};

/* ---- memfd -------------------------------------------------------------------------- */

/* The body collects in a memfd of its own from the first byte. */
static int
memfd_start(struct aj_transfer *t)
{
	int fd = aj_memfd_new("agentjail-response");

	if (fd < 0) {
		snprintf(t->why, sizeof(t->why), "memfd_create: %s", strerror(-fd));
		return -1;
	}
	t->memfd = fd;
	return 0;
}

static int
memfd_begin(struct aj_transfer *t)
{
	return 0; /* RESPONSE goes with the memfd, at the end */
}

static size_t
memfd_data(struct aj_transfer *t, const char *data, size_t len)
{
	for (size_t done = 0; done < len;) {
		ssize_t w = write(t->memfd, data + done, len - done);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return 0;
		done += (size_t)w;
	}
	t->bytes_out += len;
	return len;
}

/* The whole body is in: seal it and hand it over with RESPONSE. */
static void
memfd_complete(struct aj_transfer *t)
{
	int fd = t->memfd;

	if (aj_memfd_seal(fd) < 0) {
		aj_transfer_fail(t, AJ_ERR_UPSTREAM, NULL, "allowed",
				 "sealing the response memfd failed");
		return;
	}
	t->memfd = -1; /* the channel owns it now */
	aj_transfer_send_response(t, fd);
	aj_transfer_finish(t, NULL, "allowed", NULL);
}

static uint64_t
memfd_undelivered(const struct aj_transfer *t)
{
	return 0;
}

static void
memfd_release(struct aj_transfer *t)
{
	if (t->memfd >= 0)
		close(t->memfd);
	t->memfd = -1;
}

const struct aj_delivery aj_deliver_memfd = {
	.announces_size = true,
	.start = memfd_start,
	.begin = memfd_begin,
	.data = memfd_data,
	.complete = memfd_complete,
	.abort = nothing_to_abort,
	.undelivered = memfd_undelivered,
	.release = memfd_release,
};
