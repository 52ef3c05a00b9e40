/*
 * The event stream: one JSON object per line, to an fd and/or a callback.
 * Every event carries the jail id, a sequence number, its type and the
 * time.  This is what an orchestrator consumes and an auditor reads
 * (docs/EVENTS.md), so each line is written whole with one write().
 */
#include "config.h"

#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "supervisor.h"

/* How long one line may wait for a full, non-blocking output. */
#define WRITE_WAIT_MS 5000

struct aj_events {
	int fd; /* -1: none; not owned */
	aj_event_fn cb;
	void *cb_arg;
	char jail_id[33];
	unsigned long long seq;
	bool write_failed;
};

int
aj_events_new(int fd, aj_event_fn cb, void *cb_arg, struct aj_events **out)
{
	struct aj_events *ev = calloc(1, sizeof(*ev));
	unsigned char id[16];

	if (ev == NULL)
		return -ENOMEM;
	/* A random id: unique across hosts and runs without coordination. */
	if (getrandom(id, sizeof(id), 0) != (ssize_t)sizeof(id)) {
		free(ev);
		return -EIO;
	}
	for (size_t i = 0; i < sizeof(id); i++)
		snprintf(ev->jail_id + 2 * i, 3, "%02x", id[i]);
	ev->fd = fd;
	ev->cb = cb;
	ev->cb_arg = cb_arg;
	*out = ev;
	return 0;
}

void
aj_events_free(struct aj_events *ev)
{
	free(ev);
}

const char *
aj_events_jail_id(const struct aj_events *ev)
{
	return ev->jail_id;
}

static void
timestamp(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, len - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

/* Write the whole line.  A reader that went away must cost an error, not
 * the run: SIGPIPE is held during the write and a pending one consumed, so
 * neither the supervisor nor an embedding program dies of it. */
static int
write_all(int fd, const char *buf, size_t len)
{
	sigset_t pipe_set, saved;
	struct timespec zero = {0, 0};
	int r = 0, e = 0;

	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &saved);
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			/* Someone sharing the description (the agent, with
			 * --events -) made it non-blocking: wait a bounded
			 * time for room rather than lose the line. */
			struct pollfd pfd = {.fd = fd, .events = POLLOUT};
			if (poll(&pfd, 1, WRITE_WAIT_MS) == 1)
				continue;
			e = EAGAIN;
			r = -1;
			break;
		}
		if (n <= 0) {
			e = n < 0 ? errno : EIO;
			r = -1;
			break;
		}
		buf += n;
		len -= (size_t)n;
	}
	if (e == EPIPE && !sigismember(&saved, SIGPIPE))
		while (sigtimedwait(&pipe_set, NULL, &zero) == SIGPIPE)
			;
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
	errno = e;
	return r;
}

void
aj_events_emit(struct aj_events *ev, const char *type, json_t *fields)
{
	char when[40], *line;
	json_t *obj;
	size_t len;

	if (ev == NULL) {
		json_decref(fields);
		return;
	}
	timestamp(when, sizeof(when));
	obj = json_pack("{s:s, s:s, s:I, s:s}", "type", type, "jail", ev->jail_id, "seq",
			(json_int_t)++ev->seq, "time", when);
	if (obj == NULL) {
		json_decref(fields);
		return;
	}
	if (fields != NULL) {
		json_object_update(obj, fields);
		json_decref(fields);
	}
	line = json_dumps(obj, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER |
				       JSON_REAL_PRECISION(7));
	json_decref(obj);
	if (line == NULL)
		return;
	len = strlen(line);
	if (ev->cb != NULL)
		ev->cb(line, ev->cb_arg);
	if (ev->fd >= 0 && !ev->write_failed) {
		line[len] = '\n'; /* json_dumps' NUL becomes the line end */
		if (write_all(ev->fd, line, len + 1) < 0) {
			/* Said once, not per event: a closed reader must not
			 * flood stderr or stop the jail. */
			ev->write_failed = true;
			fprintf(stderr, "agentjail: writing events failed: %s\n", strerror(errno));
		}
	}
	free(line);
}
