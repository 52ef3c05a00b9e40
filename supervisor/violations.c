/*
 * Loud violations.  The jail's filter sends every escape attempt (a network
 * socket, io_uring, ptrace, a namespace, a mount, TIOCSTI, ...) to the
 * supervisor through seccomp user notification.  Each one is decoded into
 * one `violation` event and answered EPERM, or, with `on-violation kill`,
 * ends the whole jail.
 *
 * Nothing here trusts the agent: the notification's pid may be reused and
 * /proc data may change, so the notification is checked valid before /proc
 * is read and again before it is answered; pointer arguments are never
 * read.  An agent looping on a refused call cannot flood the stream: per
 * kind of attempt, a few events a second are written in full and the rest
 * counted into `violation_repeated` events; the counts stay exact.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "decode.h"
#include "proc.h"
#include "supervisor.h"

/* Full events per kind of attempt per second, and in all; the rest are
 * counted. */
#define BURST_PER_SECOND 5
#define GLOBAL_PER_SECOND 50
/* Distinct kinds tracked; later kinds share one "other" slot. */
#define MAX_KINDS 64

struct kind {
	char summary[96];
	unsigned long long total;
	unsigned long long unreported; /* counted but not yet in any event */
	unsigned window_events;        /* full events in the current window */
	long long window_start;        /* seconds */
};

struct aj_violations {
	int fd;
	struct aj_events *events;
	bool kill;
	void (*kill_fn)(void *arg);
	void *kill_arg;
	long long window_start; /* all kinds together */
	unsigned window_events;
	struct seccomp_notif *req;
	struct seccomp_notif_resp *resp;
	struct kind kinds[MAX_KINDS + 1];
	size_t n_kinds;
	unsigned long long total;
};

/* Linux 6.6: the notifying task and the supervisor wake each other on the
 * current CPU (as a synchronous call), not through the scheduler's
 * choice; a notification's round trip takes about half as long.  Older
 * headers and kernels lack it (EINVAL): the flag is only an optimisation. */
#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (1UL << 0)
#endif

int
aj_violations_new(int listener_fd, struct aj_events *events, bool kill, void (*kill_fn)(void *),
		  void *kill_arg, struct aj_violations **out)
{
	struct aj_violations *v = calloc(1, sizeof(*v));

	if (v == NULL)
		return -ENOMEM;
	if (seccomp_notify_alloc(&v->req, &v->resp) != 0) {
		free(v);
		return -ENOMEM;
	}
	v->fd = listener_fd;
	(void)ioctl(listener_fd, SECCOMP_IOCTL_NOTIF_SET_FLAGS, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP);
	v->events = events;
	v->kill = kill;
	v->kill_fn = kill_fn;
	v->kill_arg = kill_arg;
	*out = v;
	return 0;
}

void
aj_violations_free(struct aj_violations *v)
{
	if (v == NULL)
		return;
	seccomp_notify_free(v->req, v->resp);
	free(v);
}

unsigned long long
aj_violations_total(const struct aj_violations *v)
{
	return v ? v->total : 0;
}

static long long
now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec;
}

static struct kind *
kind_of(struct aj_violations *v, const char *summary)
{
	for (size_t i = 0; i < v->n_kinds; i++)
		if (strcmp(v->kinds[i].summary, summary) == 0)
			return &v->kinds[i];
	if (v->n_kinds == MAX_KINDS) {
		struct kind *other = &v->kinds[MAX_KINDS];
		snprintf(other->summary, sizeof(other->summary), "other");
		return other;
	}
	snprintf(v->kinds[v->n_kinds].summary, sizeof(v->kinds[0].summary), "%s", summary);
	return &v->kinds[v->n_kinds++];
}

/* comm and exe of the attempting task.  /proc/<pid> is opened first, then
 * the notification is checked still valid: only then is the directory
 * known to belong to that task and not to a later one with a reused pid;
 * what is read through it afterwards comes from that task. */
static void
read_task(int listener, const struct seccomp_notif *req, char *comm, size_t comm_len, char *exe,
	  size_t exe_len)
{
	int dir = aj_proc_open((pid_t)req->pid);

	comm[0] = exe[0] = '\0';
	if (dir < 0)
		return;
	if (ioctl(listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &req->id) == 0)
		aj_proc_read_task(dir, comm, comm_len, exe, exe_len);
	close(dir);
}

static void
flush_kind(struct aj_violations *v, struct kind *k)
{
	if (k->unreported == 0)
		return;
	aj_events_emit(v->events, "violation_repeated",
		       json_pack("{s:s, s:I, s:I}", "summary", k->summary, "count",
				 (json_int_t)k->unreported, "total", (json_int_t)k->total));
	k->unreported = 0;
}

void
aj_violations_flush(struct aj_violations *v)
{
	if (v == NULL)
		return;
	for (size_t i = 0; i <= MAX_KINDS; i++)
		flush_kind(v, &v->kinds[i]);
}

/* The event for one attempt: the call, its decoded arguments (ARGS, JSON
 * members), who. */
static void
emit_violation(struct aj_violations *v, const struct seccomp_notif *req, const char *summary,
	       const char *args, const char *comm, const char *exe, const char *action)
{
	char text[700];
	const char *name = aj_decode_syscall_name(req->data.nr);
	json_t *fields, *decoded;

	snprintf(text, sizeof(text), "{%s}", args);
	decoded = json_loads(text, 0, NULL);
	fields = json_pack("{s:s, s:I, s:s, s:o, s:I, s:s, s:s, s:s}", "syscall",
			   name ? name : "unknown", "nr", (json_int_t)req->data.nr, "summary",
			   summary, "args", decoded ? decoded : json_object(), "pid",
			   (json_int_t)req->pid, "comm", comm, "exe", exe, "action", action);
	aj_events_emit(v->events, "violation", fields);
}

/* Answer the notified call: ERROR (-errno), or 0 to let it run, the
 * kernel answering.  Only a notification that is still valid. */
static void
answer(struct aj_violations *v, int error)
{
	memset(v->resp, 0, sizeof(*v->resp));
	v->resp->id = v->req->id;
	v->resp->error = error;
	v->resp->flags = error == 0 ? SECCOMP_USER_NOTIF_FLAG_CONTINUE : 0;
	if (ioctl(v->fd, SECCOMP_IOCTL_NOTIF_ID_VALID, &v->req->id) == 0)
		(void)ioctl(v->fd, SECCOMP_IOCTL_NOTIF_SEND, v->resp);
}

/* What the notified call is: an escape attempt (the call itself, refused
 * with EPERM), a destination outside the jail (reported, the kernel
 * answers: destinations.c), or a destination inside it (just continued:
 * false).  SUMMARY and ARGS describe a violation. */
static bool
classify(struct aj_violations *v, char *summary, size_t summary_len, char *args,
	 size_t args_len, int *error)
{
	struct aj_destination d;

	if (!aj_destination_watched(v->req->data.nr)) {
		aj_decode_summary(&v->req->data, summary, summary_len);
		aj_decode_args(&v->req->data, args, args_len);
		*error = -EPERM;
		return true;
	}
	*error = 0;
	if (aj_destination_read(v->fd, v->req, &d) <= 0)
		return false;
	aj_destination_summary(&d, summary, summary_len);
	aj_destination_args(&d, args, args_len);
	return true;
}

int
aj_violations_handle(struct aj_violations *v)
{
	char summary[96], args[512], comm[64], exe[512], safe_comm[256], safe_exe[1024];
	int error;
	struct pollfd pfd = {.fd = v->fd, .events = POLLIN};
	struct kind *k;
	long long now;
	bool full;

	/* Receiving blocks until a notification arrives, and none ever will
	 * once the jail is gone (POLLHUP): look first. */
	if (poll(&pfd, 1, 0) < 0)
		return errno == EINTR ? 0 : -errno;
	if (!(pfd.revents & POLLIN))
		return (pfd.revents & (POLLHUP | POLLERR | POLLNVAL)) ? -EPIPE : 0;

	/* The ioctl directly: libseccomp 2.5 turns every error into
	 * -ECANCELED, and ENOENT (the task took a signal and withdrew its
	 * call between poll and here) must mean "nothing to do", not "the
	 * listener broke". */
	memset(v->req, 0, sizeof(*v->req));
	if (ioctl(v->fd, SECCOMP_IOCTL_NOTIF_RECV, v->req) < 0)
		return (errno == ENOENT || errno == EINTR || errno == EAGAIN) ? 0 : -errno;

	if (!classify(v, summary, sizeof(summary), args, sizeof(args), &error)) {
		answer(v, 0);
		return 0;
	}
	v->total++;
	k = kind_of(v, summary);
	k->total++;
	now = now_seconds();
	if (now != k->window_start) {
		/* A new second: room for full events again.  Counts are
		 * written by aj_violations_flush() alone (a 1 s timer and the
		 * exit), so at most once a second per summary. */
		k->window_start = now;
		k->window_events = 0;
	}
	if (now != v->window_start) {
		v->window_start = now;
		v->window_events = 0;
	}
	/* Full events: a few per kind and a bounded number overall per
	 * second, so varying the arguments cannot flood the stream either. */
	full = v->kill ||
	       (k->window_events < BURST_PER_SECOND && v->window_events < GLOBAL_PER_SECOND);
	if (full) {
		k->window_events++;
		v->window_events++;
		/* Only for events written in full: a loop costs no /proc. */
		read_task(v->fd, v->req, comm, sizeof(comm), exe, sizeof(exe));
	} else {
		k->unreported++;
	}

	/* on-violation kill: the jail dies before anything is written (a
	 * stalled reader must not buy the agent time), and the attempting
	 * task is never answered. */
	if (v->kill && v->kill_fn != NULL)
		v->kill_fn(v->kill_arg);
	if (full) {
		aj_log_escape(comm, safe_comm, sizeof(safe_comm));
		aj_log_escape(exe, safe_exe, sizeof(safe_exe));
		emit_violation(v, v->req, summary, args, safe_comm, safe_exe,
			       v->kill ? "kill" : "deny");
	}
	if (v->kill)
		return 1;
	/* An attempt fails with EPERM for the agent either way (an
	 * invalid notification's task is gone or withdrew the call). */
	answer(v, error);
	return 0;
}

int
aj_violations_describe(const struct aj_violations *v, char *out, size_t len)
{
	size_t n = 0;

	out[0] = '\0';
	for (size_t i = 0; i <= MAX_KINDS && n < len; i++) {
		const struct kind *k = &v->kinds[i];
		int w;

		if (k->total == 0)
			continue;
		w = snprintf(out + n, len - n, "%s%s x%llu", n ? ", " : "", k->summary, k->total);
		if (w < 0)
			break;
		n += (size_t)w;
	}
	return 0;
}

json_t *
aj_violations_counts(const struct aj_violations *v)
{
	json_t *counts = json_object();

	for (size_t i = 0; v != NULL && counts != NULL && i <= MAX_KINDS; i++)
		if (v->kinds[i].total > 0)
			json_object_set_new(counts, v->kinds[i].summary,
					    json_integer((json_int_t)v->kinds[i].total));
	return counts;
}
