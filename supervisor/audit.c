/*
 * The supervisor's side of the broker's audit trail: the broker writes one
 * JSON line per request into a pipe; here each line is parsed (the broker
 * is less trusted than we are: it parses the internet), stamped with the
 * jail id and the policy's sha256, written to --audit, emitted as a `fetch`
 * event, and counted for the `exit` event.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"
#include "proc.h"
#include "supervisor.h"

struct aj_audit {
	int in;                /* the pipe's read end (owned) */
	struct aj_output *out; /* --audit, or NULL (not owned) */
	struct aj_events *events;
	char policy_sha256[65];
	char buf[AJ_AUDIT_LINE_MAX];
	size_t len;
	bool skipping; /* inside an overlong line */
	unsigned long long allowed, denied;
	char jail_pidns[64]; /* /proc/INIT/ns/pid's link: the jail's processes' */
};

/* The link of PID's pid namespace into OUT ("" when unknown). */
static void
pidns_of(pid_t pid, char out[64])
{
	char path[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)pid);
	n = pid > 0 ? readlink(path, out, 63) : -1;
	out[n > 0 ? n : 0] = '\0';
}

int
aj_audit_new(struct aj_output *out, struct aj_events *events, const char *policy_sha256,
	     pid_t jail_init, int *broker_end, struct aj_audit **outp)
{
	struct aj_audit *a = calloc(1, sizeof(*a));
	int p[2];

	if (a == NULL)
		return -ENOMEM;
	pidns_of(jail_init, a->jail_pidns);
	if (pipe2(p, O_CLOEXEC) < 0) {
		free(a);
		return -errno;
	}
	if (fcntl(p[0], F_SETFL, O_NONBLOCK) < 0) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		free(a);
		return -e;
	}
	a->in = p[0];
	a->out = out;
	a->events = events;
	snprintf(a->policy_sha256, sizeof(a->policy_sha256), "%s", policy_sha256);
	*broker_end = p[1];
	*outp = a;
	return 0;
}

int
aj_audit_fd(const struct aj_audit *a)
{
	return a->in;
}

static void
write_line(struct aj_audit *a, char *line, size_t len)
{
	line[len] = '\n';
	aj_output_line(a->out, line, len + 1);
}

/* Started by root, the broker runs as a user of its own and cannot read
 * the executable of the agent's processes: the supervisor can.  Only for
 * the process the broker named (the same pid and comm, still there). */
static void
complete_exe(const struct aj_audit *a, json_t *rec)
{
	json_t *pid = json_object_get(rec, "pid");
	const char *want = json_string_value(json_object_get(rec, "comm"));
	char comm[16], safe[16], exe[4096], safe_exe[4096], ns[64];
	ssize_t n;
	int dir;

	if (!json_is_integer(pid) || want == NULL || json_object_get(rec, "exe") != NULL ||
	    json_integer_value(pid) <= 0 || json_integer_value(pid) > 0x7fffffff ||
	    a->jail_pidns[0] == '\0')
		return;
	dir = aj_proc_open((pid_t)json_integer_value(pid));
	if (dir < 0)
		return;
	/* A process of this jail still (the pid is not reused by one of the
	 * host's), with the comm the broker saw. */
	n = readlinkat(dir, "ns/pid", ns, sizeof(ns) - 1);
	ns[n > 0 ? n : 0] = '\0';
	if (strcmp(ns, a->jail_pidns) != 0) {
		close(dir);
		return;
	}
	aj_proc_read_task(dir, comm, sizeof(comm), exe, sizeof(exe));
	close(dir);
	aj_log_escape(comm, safe, sizeof(safe));
	aj_log_escape(exe, safe_exe, sizeof(safe_exe));
	if (strcmp(safe, want) == 0 && safe_exe[0] != '\0')
		json_object_set_new(rec, "exe", json_string(safe_exe));
}
static void
handle_line(struct aj_audit *a, const char *line, size_t len)
{
	json_t *rec;
	bool final, allowed;
	char err[128], *text;

	/* The broker is less trusted than we are: a line that is not a record
	 * of the schema (common/audit.h) is dropped, never relayed. */
	if (aj_audit_decode(line, len, &rec, &final, &allowed, err, sizeof(err)) < 0) {
		aj_log_warn("the broker wrote an audit line that is not a record (%s); dropped",
			    err);
		return;
	}
	/* A request counts once: by its final record (a redirecting hop has
	 * one of its own, "final":false). */
	if (final) {
		if (allowed)
			a->allowed++;
		else
			a->denied++;
	}
	complete_exe(a, rec);
	json_object_set_new(rec, "jail", json_string(aj_events_jail_id(a->events)));
	json_object_set_new(rec, "policy_sha256", json_string(a->policy_sha256));
	if (a->out != NULL) {
		text = json_dumps(rec, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER);
		if (text != NULL)
			write_line(a, text, strlen(text));
		free(text);
	}
	json_object_del(rec, "jail"); /* every event carries it already */
	/* A raw relay's record is its own event type; "kind" says it in the
	 * audit file. */
	if (json_object_get(rec, "kind") != NULL) {
		json_object_del(rec, "kind");
		aj_events_emit(a->events, "tunnel", rec);
	} else {
		aj_events_emit(a->events, "fetch", rec);
	}
}

/* Whatever the pipe holds now; complete lines are handled.  Returns 1 at
 * EOF (the broker is gone), else 0. */
int
aj_audit_read(struct aj_audit *a)
{
	for (;;) {
		ssize_t n = read(a->in, a->buf + a->len, sizeof(a->buf) - a->len);
		char *nl;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n == 0;
		a->len += (size_t)n;
		while ((nl = memchr(a->buf, '\n', a->len)) != NULL) {
			size_t line = (size_t)(nl - a->buf);

			if (!a->skipping)
				handle_line(a, a->buf, line);
			a->skipping = false;
			memmove(a->buf, nl + 1, a->len - line - 1);
			a->len -= line + 1;
		}
		if (a->len == sizeof(a->buf)) {
			aj_log_warn("the broker wrote an audit line over %d bytes; dropped",
				    AJ_AUDIT_LINE_MAX);
			a->len = 0;
			a->skipping = true;
		}
	}
}

void
aj_audit_counts(const struct aj_audit *a, unsigned long long *allowed, unsigned long long *denied)
{
	*allowed = a ? a->allowed : 0;
	*denied = a ? a->denied : 0;
}

void
aj_audit_free(struct aj_audit *a)
{
	if (a == NULL)
		return;
	close(a->in);
	free(a);
}
