/*
 * Unit tests for the broker's channels (broker/channel.c), in-process on
 * real SOCK_SEQPACKET pairs and a real libev loop: messages and passed fds
 * reach the hook exactly, answers queue instead of blocking, an agent that
 * does not read is not read either, and the slots, the waiting line and
 * the refusal beyond it hold.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker.h"
#include "broker_fixture.h"
#include "fdpass.h"
#include "util.h"

/* What the hooks saw. */
static struct {
	int opened, opened_connected, frames, closing, drained, all_closed;
	uint8_t last[AJ_PROTO_HEADER_SIZE + AJ_PROTO_MAX_PAYLOAD + 1];
	size_t last_len;
	int last_fd;
	struct aj_channel *channel; /* the last one opened */
	struct ev_loop *loop;
} seen;

static void
on_opened(struct aj_channel *c, bool connected, void *arg)
{
	seen.opened++;
	seen.opened_connected += connected;
	seen.channel = c;
}

static void
on_frame(struct aj_channel *c, const uint8_t *msg, size_t len, int fd, void *arg)
{
	seen.frames++;
	seen.last_len = len;
	memcpy(seen.last, msg, len < sizeof(seen.last) ? len : sizeof(seen.last));
	if (seen.last_fd >= 0)
		close(seen.last_fd);
	seen.last_fd = fd;
	ev_break(seen.loop, EVBREAK_ALL);
}

static void
on_closing(struct aj_channel *c, void *arg)
{
	seen.closing++;
}

static void
on_drained(struct aj_channel *c, void *arg)
{
	seen.drained++;
	ev_break(seen.loop, EVBREAK_ALL);
}

static void
on_all_closed(void *arg)
{
	seen.all_closed++;
}

static const struct aj_channel_hooks hooks = {on_opened, on_frame, on_closing, on_drained,
					      on_all_closed};

static struct aj_channels *
setup(void)
{
	memset(&seen, 0, sizeof(seen));
	seen.last_fd = -1;
	seen.loop = fixture_loop();
	return aj_channels_new(seen.loop, &hooks, NULL);
}

static void
teardown(struct aj_channels *set)
{
	if (seen.last_fd >= 0)
		close(seen.last_fd);
	aj_channels_free(set);
	ev_loop_destroy(seen.loop);
}

Test(channel, a_message_reaches_the_hook_whole)
{
	struct aj_channels *set = setup();
	int fds[2];

	fixture_pair(fds);
	aj_channels_open(set, fds[0], false);
	cr_assert_eq(seen.opened, 1);
	cr_assert_eq(seen.opened_connected, 0);
	fixture_send_json(fds[1], AJ_MSG_HELLO, 0, 0, "{\"version\":1}");
	fixture_turn(seen.loop, 2.0);
	cr_assert_eq(seen.frames, 1);
	cr_assert_eq(seen.last_len, AJ_PROTO_HEADER_SIZE + 13);
	cr_assert_eq(memcmp(seen.last + AJ_PROTO_HEADER_SIZE, "{\"version\":1}", 13), 0);
	cr_assert_eq(seen.last_fd, -1);
	close(fds[1]);
	teardown(set);
}

Test(channel, one_passed_fd_is_handed_over_more_are_closed)
{
	struct aj_channels *set = setup();
	int fds[2], spare[2];

	fixture_pair(fds);
	aj_channels_open(set, fds[0], false);
	cr_assert_eq(pipe2(spare, O_CLOEXEC), 0);
	fixture_send(fds[1], AJ_MSG_CONNECT, 0, 0, NULL, 0, spare[0]);
	fixture_turn(seen.loop, 2.0);
	cr_assert_geq(seen.last_fd, 0);
	cr_assert_eq(fcntl(seen.last_fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC, "close-on-exec");
	{
		/* Two descriptors in one message: neither stays open. */
		union {
			char buf[CMSG_SPACE(2 * sizeof(int))];
			struct cmsghdr align;
		} control = {0};
		uint8_t frame[AJ_PROTO_HEADER_SIZE];
		struct iovec iov = {.iov_base = frame, .iov_len = sizeof(frame)};
		struct msghdr mh = {.msg_iov = &iov,
				    .msg_iovlen = 1,
				    .msg_control = control.buf,
				    .msg_controllen = sizeof(control.buf)};
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		int two[2] = {spare[0], spare[1]};

		cr_assert_eq(aj_proto_frame(AJ_MSG_CONNECT, 0, 0, NULL, 0, frame, sizeof(frame)),
			     AJ_PROTO_HEADER_SIZE);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(two));
		memcpy(CMSG_DATA(cm), two, sizeof(two));
		cr_assert_eq(sendmsg(fds[1], &mh, 0), (ssize_t)sizeof(frame));
	}
	close(seen.last_fd);
	seen.last_fd = -1;
	fixture_turn(seen.loop, 2.0);
	cr_assert_eq(seen.frames, 2);
	cr_assert_eq(seen.last_fd, AJ_CHANNEL_BAD_FDS);
	seen.last_fd = -1;
	close(spare[0]);
	close(spare[1]);
	close(fds[1]);
	teardown(set);
}

Test(channel, an_overlong_message_shows_its_real_length)
{
	struct aj_channels *set = setup();
	size_t big = AJ_PROTO_HEADER_SIZE + AJ_PROTO_MAX_PAYLOAD + 100;
	uint8_t *msg = calloc(1, big);
	int fds[2], sz = 1 << 20;

	fixture_pair(fds);
	cr_assert_eq(setsockopt(fds[1], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz)), 0);
	aj_channels_open(set, fds[0], false);
	cr_assert_eq(send(fds[1], msg, big, 0), (ssize_t)big);
	fixture_turn(seen.loop, 2.0);
	cr_assert_eq(seen.last_len, big, "MSG_TRUNC: the length sent, not the buffer's");
	free(msg);
	close(fds[1]);
	teardown(set);
}

Test(channel, the_agent_closing_closes_the_channel)
{
	struct aj_channels *set = setup();
	int fds[2];

	fixture_pair(fds);
	aj_channels_open(set, fds[0], false);
	close(fds[1]);
	fixture_turn(seen.loop, 0.5);
	cr_assert_eq(seen.closing, 1);
	cr_assert_eq(seen.all_closed, 1);
	teardown(set);
}

/* Fill the broker's side of the pair with BODY frames of request 999
 * until a send would block. */
static void
fill(int fd)
{
	static const uint8_t body[4000];
	static uint8_t buf[AJ_PROTO_HEADER_SIZE + sizeof(body)];
	int n = aj_proto_frame(AJ_MSG_BODY, 0, 999, body, sizeof(body), buf, sizeof(buf));

	while (send(fd, buf, (size_t)n, MSG_DONTWAIT) > 0)
		;
	cr_assert_eq(errno, EAGAIN);
}

/* Read what the agent has; returns the ERROR frames' ids in order into
 * IDS (from *N on). */
static void
drain(int sock, uint32_t *ids, int *n)
{
	static char payload[AJ_PROTO_MAX_PAYLOAD + 1];
	struct aj_frame f;
	int fd;

	while (fixture_recv(sock, &f, payload, sizeof(payload), &fd) == 1)
		if (f.type == AJ_MSG_ERROR)
			ids[(*n)++] = f.id;
}

Test(channel, answers_queue_and_leave_in_order_once_there_is_room)
{
	struct aj_channels *set = setup();
	uint8_t frame[64];
	uint32_t ids[8];
	int fds[2], n, got = 0;

	fixture_pair(fds);
	aj_channels_open(set, fds[0], false);
	fill(fds[0]);
	cr_assert_not(aj_channel_is_backlogged(seen.channel));
	for (uint32_t id = 1; id <= 3; id++) {
		n = aj_proto_frame(AJ_MSG_ERROR, 0, id, "{}", 2, frame, sizeof(frame));
		aj_channel_send(seen.channel, frame, (size_t)n, -1);
	}
	cr_assert(aj_channel_is_backlogged(seen.channel));
	cr_assert_eq(aj_channel_send_body(seen.channel, 9, "x", 1, false), -EAGAIN,
		     "a body never overtakes queued frames");
	/* The agent reads its queue empty: the answers follow, in order. */
	for (int i = 0; i < 100 && seen.drained == 0; i++) {
		drain(fds[1], ids, &got);
		fixture_turn(seen.loop, 0.05);
	}
	drain(fds[1], ids, &got);
	cr_assert_eq(got, 3);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(ids[i], (uint32_t)i + 1, "in order");
	cr_assert_eq(seen.drained, 1);
	cr_assert_not(aj_channel_is_backlogged(seen.channel));
	close(fds[1]);
	teardown(set);
}

Test(channel, an_agent_that_does_not_read_is_not_read)
{
	struct aj_channels *set = setup();
	static const uint8_t body[4000];
	uint8_t frame[AJ_PROTO_HEADER_SIZE + sizeof(body)];
	int fds[2], n;

	fixture_pair(fds);
	aj_channels_open(set, fds[0], false);
	fill(fds[0]);
	n = aj_proto_frame(AJ_MSG_ERROR, 0, 1, body, sizeof(body), frame, sizeof(frame));
	for (size_t queued = 0; queued <= AJ_CHANNEL_QUEUE_MAX; queued += (size_t)n)
		aj_channel_send(seen.channel, frame, (size_t)n, -1);
	fixture_send_json(fds[1], AJ_MSG_HELLO, 0, 0, "{\"version\":1}");
	fixture_turn(seen.loop, 0.3);
	cr_assert_eq(seen.frames, 0, "over the queue's bound the channel is not read");
	close(fds[1]);
	teardown(set);
}

Test(channel, a_throttled_channel_waits_until_unthrottled)
{
	struct aj_channels *set = setup();
	int fds[2];

	fixture_pair(fds);
	aj_channels_open(set, fds[0], false);
	aj_channel_throttle(seen.channel);
	cr_assert(aj_channel_is_throttled(seen.channel));
	fixture_send_json(fds[1], AJ_MSG_HELLO, 0, 0, "{\"version\":1}");
	fixture_turn(seen.loop, 0.3);
	cr_assert_eq(seen.frames, 0);
	aj_channels_unthrottle(set);
	cr_assert_not(aj_channel_is_throttled(seen.channel));
	fixture_turn(seen.loop, 2.0);
	cr_assert_eq(seen.frames, 1);
	close(fds[1]);
	teardown(set);
}

Test(channel, slots_then_a_waiting_line_then_a_refusal)
{
	struct aj_channels *set = setup();
	int agents[AJ_CHANNELS_MAX + AJ_CHANNELS_WAITING_MAX + 1];
	struct aj_channel *first = NULL;
	struct aj_frame f;
	char payload[512];
	int fds[2], fd;

	for (size_t i = 0; i < AJ_ARRAY_SIZE(agents); i++) {
		fixture_pair(fds);
		agents[i] = fds[1];
		aj_channels_open(set, fds[0], true);
		if (i == 0)
			first = seen.channel;
	}
	cr_assert_eq(seen.opened, AJ_CHANNELS_MAX, "the rest wait");
	/* The one beyond the line hears why, and is closed. */
	cr_assert_eq(
		fixture_recv(agents[AJ_ARRAY_SIZE(agents) - 1], &f, payload, sizeof(payload), &fd),
		1);
	cr_assert_eq(f.type, AJ_MSG_ERROR);
	cr_assert_not_null(strstr(payload, "\"rate_limited\""), "%s", payload);
	cr_assert_eq(
		fixture_recv(agents[AJ_ARRAY_SIZE(agents) - 1], &f, payload, sizeof(payload), &fd),
		-1);
	/* A closed slot goes to the one that waited longest. */
	aj_channel_close(first);
	cr_assert_eq(seen.opened, AJ_CHANNELS_MAX + 1);
	cr_assert_eq(seen.all_closed, 0);
	for (size_t i = 0; i < AJ_ARRAY_SIZE(agents); i++)
		close(agents[i]);
	teardown(set);
}
