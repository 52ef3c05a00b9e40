/*
 * The agent's own terminal.  When the agent's stdin, stdout or stderr is a
 * terminal, the agent does not get the caller's: the jail's init makes a
 * pseudo-terminal in the jail's devpts, the agent's terminal fds become its
 * slave (and its controlling terminal), and the supervisor relays between
 * the master and the caller's terminal, as `script` and tmux do.
 *
 * Whatever the agent does to its terminal (tcflow(TCOOFF), new modes, a
 * foreground process group, flushing) then happens to its own; the caller's
 * terminal is changed only by the supervisor, which puts it in raw mode
 * while the agent runs (keys, ^C and ^Z included, go to the agent's line
 * discipline) and restores it when the agent stops or ends.  Nothing here
 * blocks: both sides are non-blocking descriptions of our own, and each
 * direction has a bounded buffer; a side that takes nothing holds back the
 * other (the agent's writes wait, as on any slow terminal).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "supervisor.h"

/* Bytes held per direction.  A terminal takes a few KiB at a time; this
 * covers a burst without holding the agent back. */
#define RELAY_BOUND (64 * 1024)

struct relay {
	char buf[RELAY_BOUND];
	size_t len;
};

struct aj_pty {
	int master;    /* owned, non-blocking */
	int term_fd;   /* the caller's terminal whose modes and size we follow (not owned) */
	int in_fd;     /* owned: our reading description of the caller's stdin, or -1 */
	int out_fd;    /* owned: our writing description of the caller's output, or -1 */
	dev_t out_dev; /* the terminal OUT_FD writes to */
	struct termios saved; /* TERM_FD's modes before raw */
	bool raw;
	bool master_done; /* the agent's side is gone (EIO), or broke */
	bool in_done;     /* the caller's stdin gave EOF or an error */
	bool out_failed;  /* the caller's terminal takes nothing more */
	struct relay to_agent, to_caller;
	unsigned long long lost; /* the agent's bytes never written to the caller */
};

unsigned
aj_pty_terminals(const int stdio[3])
{
	unsigned mask = 0;

	for (int i = 0; i < 3; i++)
		if (isatty(stdio[i] >= 0 ? stdio[i] : i))
			mask |= 1u << i;
	return mask;
}

/* A description of FD's file that we alone use, non-blocking, without
 * becoming our controlling terminal. */
static int
reopen_nonblocking(int fd, int mode)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	return open(path, mode | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
}

int
aj_pty_new(int master, const int stdio[3], unsigned terminals, struct aj_pty **out)
{
	struct aj_pty *p;
	struct stat st;
	int in, outfd, r;

	if (terminals == 0 || master < 0)
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return -ENOMEM;
	p->master = master;
	p->in_fd = p->out_fd = -1;
	in = stdio[0] >= 0 ? stdio[0] : 0;
	/* The agent's output goes where its stdout goes if that is a
	 * terminal, else where its stderr does. */
	outfd = (terminals & 2) ? (stdio[1] >= 0 ? stdio[1] : 1) : (stdio[2] >= 0 ? stdio[2] : 2);
	p->term_fd = (terminals & 1) ? in : outfd;
	if (fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK) < 0)
		goto fail;
	if (terminals & 1) {
		p->in_fd = reopen_nonblocking(in, O_RDONLY);
		if (p->in_fd < 0)
			goto fail;
	} else {
		p->in_done = true;
	}
	if (terminals & 6) {
		p->out_fd = reopen_nonblocking(outfd, O_WRONLY);
		if (p->out_fd < 0 || fstat(p->out_fd, &st) < 0)
			goto fail;
		p->out_dev = st.st_rdev;
	} else {
		p->out_failed = true;
	}
	if (tcgetattr(p->term_fd, &p->saved) < 0)
		goto fail;
	*out = p;
	return 0;
fail:
	r = -errno;
	p->master = -1; /* the caller's still */
	aj_pty_free(p);
	return r;
}

void
aj_pty_free(struct aj_pty *p)
{
	if (p == NULL)
		return;
	aj_pty_leave(p);
	if (p->master >= 0)
		close(p->master);
	if (p->in_fd >= 0)
		close(p->in_fd);
	if (p->out_fd >= 0)
		close(p->out_fd);
	free(p);
}

int
aj_pty_enter(struct aj_pty *p)
{
	struct termios raw = p->saved;

	/* Raw only when the caller types into the agent's terminal; output
	 * alone keeps the caller's modes. */
	if (p->in_fd < 0 || p->raw)
		return 0;
	cfmakeraw(&raw);
	raw.c_cc[VMIN] = 1;
	raw.c_cc[VTIME] = 0;
	if (tcsetattr(p->term_fd, TCSANOW, &raw) < 0)
		return -errno;
	p->raw = true;
	return 0;
}

void
aj_pty_leave(struct aj_pty *p)
{
	/* TCSANOW: TCSADRAIN would wait for a terminal that may never drain. */
	if (p->raw && tcsetattr(p->term_fd, TCSANOW, &p->saved) == 0)
		p->raw = false;
}

bool
aj_pty_is_raw_on(const struct aj_pty *p, int fd)
{
	struct stat st;

	return p != NULL && p->raw && fstat(fd, &st) == 0 && S_ISCHR(st.st_mode) &&
	       st.st_rdev == p->out_dev;
}

void
aj_pty_resize(struct aj_pty *p)
{
	struct winsize ws;

	/* The kernel signals the agent's foreground process group. */
	if (ioctl(p->term_fd, TIOCGWINSZ, &ws) == 0)
		(void)ioctl(p->master, TIOCSWINSZ, &ws);
}

/* Read what FD has into R's free room.  Returns false at EOF or on an
 * error other than "nothing now". */
static bool
fill(int fd, struct relay *r)
{
	while (r->len < sizeof(r->buf)) {
		ssize_t n = read(fd, r->buf + r->len, sizeof(r->buf) - r->len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return true;
		if (n <= 0)
			return false;
		r->len += (size_t)n;
	}
	return true;
}

/* Write what R holds to FD, as much as it takes now.  SIGPIPE cannot
 * happen on a terminal; false on an error other than "no room". */
static bool
spill(int fd, struct relay *r)
{
	while (r->len > 0) {
		ssize_t n = write(fd, r->buf, r->len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return true;
		if (n <= 0)
			return false;
		memmove(r->buf, r->buf + n, r->len - (size_t)n);
		r->len -= (size_t)n;
	}
	return true;
}

void
aj_pty_relay(struct aj_pty *p)
{
	bool progress = true;

	while (progress) {
		size_t before_in = p->to_agent.len, before_out = p->to_caller.len;

		if (!p->in_done && !fill(p->in_fd, &p->to_agent))
			p->in_done = true;
		if (!p->master_done && !spill(p->master, &p->to_agent))
			p->to_agent.len = 0; /* the agent's side is gone */
		if (!p->master_done && !fill(p->master, &p->to_caller))
			p->master_done = true; /* EIO: no slave is open any more */
		if (!p->out_failed && !spill(p->out_fd, &p->to_caller))
			p->out_failed = true;
		if (p->out_failed) {
			p->lost += p->to_caller.len;
			p->to_caller.len = 0;
		}
		progress = p->to_agent.len != before_in || p->to_caller.len != before_out;
	}
}

void
aj_pty_wants(const struct aj_pty *p, struct aj_pty_wants *w)
{
	w->read_caller = !p->in_done && p->to_agent.len < sizeof(p->to_agent.buf);
	w->write_master = !p->master_done && p->to_agent.len > 0;
	w->read_master = !p->master_done && p->to_caller.len < sizeof(p->to_caller.buf);
	w->write_caller = !p->out_failed && p->to_caller.len > 0;
}

void
aj_pty_fds(const struct aj_pty *p, int *caller_in, int *caller_out, int *master)
{
	*caller_in = p->in_fd;
	*caller_out = p->out_fd;
	*master = p->master;
}

void
aj_pty_drain(struct aj_pty *p, int ms)
{
	struct timespec start, now;

	clock_gettime(CLOCK_MONOTONIC, &start);
	/* No more keys for an agent that is gone. */
	p->in_done = true;
	p->to_agent.len = 0;
	for (;;) {
		struct pollfd pfd[2];
		int k = 0;
		long left;

		aj_pty_relay(p);
		if (!p->master_done && p->to_caller.len < sizeof(p->to_caller.buf))
			pfd[k++] = (struct pollfd){.fd = p->master, .events = POLLIN};
		if (!p->out_failed && p->to_caller.len > 0)
			pfd[k++] = (struct pollfd){.fd = p->out_fd, .events = POLLOUT};
		if (k == 0)
			break;
		clock_gettime(CLOCK_MONOTONIC, &now);
		left = ms - ((now.tv_sec - start.tv_sec) * 1000 +
			     (now.tv_nsec - start.tv_nsec) / 1000000);
		if (left <= 0 || poll(pfd, (nfds_t)k, (int)left) <= 0)
			break;
	}
	p->lost += p->to_caller.len;
	p->to_caller.len = 0;
}

unsigned long long
aj_pty_lost(const struct aj_pty *p)
{
	return p != NULL ? p->lost : 0;
}
