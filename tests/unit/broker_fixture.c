/*
 * The broker's unit-test fixture (broker_fixture.h).
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker_fixture.h"
#include "fdpass.h"
#include "proto.h"
#include "supervisor.h"

struct aj_policy *
fixture_policy(const char *text)
{
	struct aj_profile *pr = NULL;
	struct aj_policy *p = calloc(1, sizeof(*p));
	char err[512] = "";

	cr_assert_not_null(p);
	cr_assert_eq(
		aj_profile_parse_string("test", "/t/test.profile", text, &pr, err, sizeof(err)), 0,
		"%s", err);
	*p = pr->fetch; /* taken whole: the profile no longer owns it */
	memset(&pr->fetch, 0, sizeof(pr->fetch));
	aj_profile_free(pr);
	return p;
}

void
fixture_policy_free(struct aj_policy *p)
{
	aj_policy_clear(p);
	free(p);
}

struct ev_loop *
fixture_loop(void)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOENV);

	cr_assert_not_null(loop);
	return loop;
}

void
fixture_pair(int fds[2])
{
	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds), 0);
	cr_assert_eq(fcntl(fds[0], F_SETFL, O_NONBLOCK), 0);
}

static void
on_enough(struct ev_loop *loop, ev_timer *w, int revents)
{
	ev_break(loop, EVBREAK_ALL);
}

void
fixture_turn(struct ev_loop *loop, double seconds)
{
	ev_timer t;

	ev_timer_init(&t, on_enough, seconds, 0.);
	ev_timer_start(loop, &t);
	ev_run(loop, 0);
	ev_timer_stop(loop, &t);
}

void
fixture_send(int sock, uint8_t type, uint16_t flags, uint32_t id, const void *payload, size_t len,
	     int fd)
{
	uint8_t buf[AJ_PROTO_HEADER_SIZE + AJ_PROTO_MAX_PAYLOAD];
	int n = aj_proto_frame(type, flags, id, payload, len, buf, sizeof(buf));

	cr_assert_gt(n, 0);
	cr_assert_eq(aj_fdpass_send(sock, buf, (size_t)n, fd, 0), n);
}

void
fixture_send_json(int sock, uint8_t type, uint16_t flags, uint32_t id, const char *json)
{
	fixture_send(sock, type, flags, id, json, strlen(json), -1);
}

int
fixture_recv(int sock, struct aj_frame *f, char *payload, size_t cap, int *fd)
{
	uint8_t buf[AJ_PROTO_HEADER_SIZE + AJ_PROTO_MAX_PAYLOAD];
	const uint8_t *p;
	bool bad;
	char err[256];
	ssize_t n = aj_fdpass_recv(sock, buf, sizeof(buf), MSG_DONTWAIT, fd, &bad);

	if (n == -EAGAIN)
		return 0;
	if (n <= 0)
		return -1;
	cr_assert(!bad);
	cr_assert_eq(aj_proto_decode(buf, (size_t)n, f, &p, err, sizeof(err)), 0, "%s", err);
	cr_assert_lt(f->length, cap);
	memcpy(payload, p, f->length);
	payload[f->length] = '\0';
	return 1;
}
