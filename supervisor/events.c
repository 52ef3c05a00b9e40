/*
 * The event stream: one JSON object per line, to an fd and/or a callback.
 * Every event carries the jail id, a sequence number, its type and the
 * time.  This is what an orchestrator consumes and an auditor reads
 * (docs/EVENTS.md), so each line is queued whole or counted as lost
 * (supervisor/output.c).
 */
#include "config.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "supervisor.h"

struct aj_events {
	struct aj_output *out; /* NULL: none; not owned */
	aj_event_fn cb;
	void *cb_arg;
	char jail_id[33];
	unsigned long long seq;
};

int
aj_events_new(struct aj_output *out, aj_event_fn cb, void *cb_arg, struct aj_events **evp)
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
	ev->out = out;
	ev->cb = cb;
	ev->cb_arg = cb_arg;
	*evp = ev;
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
	if (ev->out != NULL) {
		line[len] = '\n'; /* json_dumps' NUL becomes the line end */
		/* Queued, never waited for: a reader that stalls (or an agent
		 * that stopped the terminal) must not stop the supervisor.
		 * What cannot be written is counted (the exit event). */
		aj_output_line(ev->out, line, len + 1);
	}
	free(line);
}
