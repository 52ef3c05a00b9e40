/*
 * The supervisor's output while a jail runs (its stderr lines, the event
 * stream, the audit log), written without ever blocking: the agent shares
 * the caller's terminal and may stop it (tcflow(TCOOFF)), or fill a pipe
 * both write to, and a supervisor blocked in write() would stop watching
 * the jail: no timeout, no signal forwarding, no end.
 *
 * Each output queues whole lines up to a bound and writes what the file
 * takes now; the monitor's loop writes the rest when the file has room.
 * A line that does not fit is counted, never silently dropped: the counts
 * reach the exit event and the caller's stderr (docs/EVENTS.md).
 *
 * Writing without blocking needs a non-blocking open file description,
 * and the caller's is shared (setting O_NONBLOCK on it would change the
 * caller's shell's terminal too).  So a terminal, pipe or FIFO is opened
 * again through /proc/self/fd, which gives a description of our own;
 * a socket is written with MSG_DONTWAIT; a regular file or block device
 * does not stall and is written as it is.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "supervisor.h"

struct aj_output {
	int fd;     /* where the bytes go: the caller's fd or OWN_FD */
	int own_fd; /* our own non-blocking description of it, or -1 */
	bool socket;
	bool poll_first; /* shared and blocking: write only what poll says fits */
	char *buf;       /* queued bytes, whole lines */
	size_t len, bound;
	unsigned long long lost_lines;
	bool failed; /* an error other than "no room": nothing more is written */
	bool crlf;   /* the file is a terminal in raw mode: a line ends "\r\n" */
};

/* A description of FD's file that we alone use, non-blocking; -1 if that
 * cannot be had (then FD is written as it is). */
static int
reopen_nonblocking(int fd)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	return open(path, O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
}

int
aj_output_new(int fd, size_t bound, struct aj_output **out)
{
	struct aj_output *o = calloc(1, sizeof(*o));
	struct stat st;
	int flags;

	if (o == NULL)
		return -ENOMEM;
	o->buf = malloc(bound);
	if (o->buf == NULL) {
		free(o);
		return -ENOMEM;
	}
	o->bound = bound;
	o->fd = fd;
	o->own_fd = -1;
	if (fstat(fd, &st) < 0) {
		/* Unknown: written as it is, like a file. */
	} else if (S_ISSOCK(st.st_mode)) {
		o->socket = true;
	} else if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		flags = fcntl(fd, F_GETFL);
		if (flags >= 0 && !(flags & O_NONBLOCK) && (flags & O_ACCMODE) != O_RDONLY) {
			o->own_fd = reopen_nonblocking(fd);
			if (o->own_fd >= 0)
				o->fd = o->own_fd;
			else
				o->poll_first = true;
		}
	}
	*out = o;
	return 0;
}

void
aj_output_free(struct aj_output *o)
{
	if (o == NULL)
		return;
	if (o->own_fd >= 0)
		close(o->own_fd);
	free(o->buf);
	free(o);
}

static unsigned long long
lines_in(const char *buf, size_t len)
{
	unsigned long long n = 0;

	for (const char *p = buf; (p = memchr(p, '\n', len - (size_t)(p - buf))) != NULL; p++)
		n++;
	return n;
}

/* One write of what is queued.  A reader that went away must cost an
 * error, not the run: SIGPIPE is held during the write and a pending one
 * consumed, so neither the supervisor nor an embedding program dies of it. */
static ssize_t
write_some(struct aj_output *o)
{
	sigset_t pipe_set, saved;
	struct timespec zero = {0, 0};
	ssize_t n;
	int e;

	if (o->socket)
		return send(o->fd, o->buf, o->len, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (o->poll_first) {
		/* Not ours to make non-blocking (the /proc reopen was
		 * refused): a write of at most PIPE_BUF after POLLOUT does
		 * not block on a pipe, and is the best we can do elsewhere. */
		struct pollfd pfd = {.fd = o->fd, .events = POLLOUT};

		if (poll(&pfd, 1, 0) != 1 || !(pfd.revents & POLLOUT)) {
			errno = (pfd.revents & (POLLERR | POLLHUP)) ? EPIPE : EAGAIN;
			return -1;
		}
	}
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &saved);
	n = write(o->fd, o->buf, o->poll_first && o->len > PIPE_BUF ? PIPE_BUF : o->len);
	e = errno;
	if (n < 0 && e == EPIPE && !sigismember(&saved, SIGPIPE))
		while (sigtimedwait(&pipe_set, NULL, &zero) == SIGPIPE)
			;
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
	errno = e;
	return n;
}

bool
aj_output_flush(struct aj_output *o)
{
	while (o->len > 0 && !o->failed) {
		ssize_t n = write_some(o);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return false;
		if (n <= 0) {
			/* The reader is gone or the file broken: what is queued
			 * can never be written. */
			o->failed = true;
			o->lost_lines += lines_in(o->buf, o->len);
			o->len = 0;
			break;
		}
		memmove(o->buf, o->buf + n, o->len - (size_t)n);
		o->len -= (size_t)n;
	}
	return true;
}

void
aj_output_set_crlf(struct aj_output *o, bool on)
{
	o->crlf = on;
}

/* LINE's bytes as they go to the file: with CRLF, each "\n" not after a
 * "\r" as "\r\n".  Returns the length, or SIZE_MAX if over ROOM. */
static size_t
copy_line(char *dst, size_t room, const char *line, size_t len, bool crlf)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		bool add_cr = crlf && line[i] == '\n' && (i == 0 || line[i - 1] != '\r');

		if (n + 1 + add_cr > room)
			return SIZE_MAX;
		if (add_cr)
			dst[n++] = '\r';
		dst[n++] = line[i];
	}
	return n;
}

void
aj_output_line(struct aj_output *o, const char *line, size_t len)
{
	size_t n = o->failed ? SIZE_MAX
			     : copy_line(o->buf + o->len, o->bound - o->len, line, len, o->crlf);

	if (n == SIZE_MAX) {
		o->lost_lines++;
		return;
	}
	o->len += n;
	(void)aj_output_flush(o);
}

int
aj_output_fd(const struct aj_output *o)
{
	return o->fd;
}

bool
aj_output_waiting(const struct aj_output *o)
{
	return o->len > 0 && !o->failed;
}

void
aj_output_drain(struct aj_output *const *outputs, size_t n, int ms)
{
	struct timespec start, now;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		struct pollfd pfds[8];
		size_t k = 0;
		long left;

		for (size_t i = 0; i < n && k < AJ_ARRAY_SIZE(pfds); i++)
			if (outputs[i] != NULL && !aj_output_flush(outputs[i]))
				pfds[k++] =
					(struct pollfd){.fd = outputs[i]->fd, .events = POLLOUT};
		if (k == 0)
			return;
		clock_gettime(CLOCK_MONOTONIC, &now);
		left = ms - ((now.tv_sec - start.tv_sec) * 1000 +
			     (now.tv_nsec - start.tv_nsec) / 1000000);
		if (left <= 0 || poll(pfds, k, (int)left) <= 0)
			break;
	}
	/* What is still queued will not be written: count it. */
	for (size_t i = 0; i < n; i++) {
		struct aj_output *o = outputs[i];

		if (o != NULL && o->len > 0) {
			o->lost_lines += lines_in(o->buf, o->len);
			o->len = 0;
		}
	}
}

unsigned long long
aj_output_lost(const struct aj_output *o)
{
	return o != NULL ? o->lost_lines : 0;
}
