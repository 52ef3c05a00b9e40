/*
 * Unit tests for passing fds (common/fdpass.c) over a real socketpair: one
 * fd arrives close-on-exec with its message; a message carrying more than
 * one (or more than fit) leaves none open in the receiver and says so.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fdpass.h"

static int sv[2] = {-1, -1};

static void
setup(void)
{
	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
}

static void
teardown(void)
{
	if (sv[0] >= 0)
		close(sv[0]);
	if (sv[1] >= 0)
		close(sv[1]);
	sv[0] = sv[1] = -1;
}

TestSuite(fdpass, .init = setup, .fini = teardown);

static int
open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	cr_assert_not_null(d);
	for (struct dirent *e; (e = readdir(d)) != NULL;)
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1; /* the DIR's own */
}

/* Send LEN bytes with N copies of FD in one SCM_RIGHTS message (what a
 * hostile sender may do; aj_fdpass_send never sends more than one). */
static void
send_copies(int sock, const char *data, size_t len, int fd, int n)
{
	union {
		char buf[CMSG_SPACE(16 * sizeof(int))];
		struct cmsghdr align;
	} control;
	struct iovec iov = {.iov_base = (void *)data, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	struct cmsghdr *cm;

	cr_assert_leq(n, 16);
	memset(&control, 0, sizeof(control));
	mh.msg_control = control.buf;
	mh.msg_controllen = CMSG_SPACE((size_t)n * sizeof(int));
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN((size_t)n * sizeof(int));
	for (int i = 0; i < n; i++)
		memcpy(CMSG_DATA(cm) + (size_t)i * sizeof(int), &fd, sizeof(int));
	cr_assert_eq(sendmsg(sock, &mh, 0), (ssize_t)len, "sendmsg: %s", strerror(errno));
}

Test(fdpass, one_fd_arrives_with_its_message)
{
	int p[2], fd = -2;
	bool bad = true;
	char buf[16] = "";
	ssize_t n;

	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	cr_assert_eq(aj_fdpass_send(sv[0], "CONNECT", 7, p[1], 0), 7);
	close(p[1]);
	n = aj_fdpass_recv(sv[1], buf, sizeof(buf), 0, &fd, &bad);
	cr_assert_eq(n, 7);
	cr_assert_eq(memcmp(buf, "CONNECT", 7), 0);
	cr_assert_not(bad);
	cr_assert_geq(fd, 0);
	cr_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC, "a received fd is not close-on-exec");
	/* It is the pipe that was sent. */
	cr_assert_eq(write(fd, "z", 1), 1);
	cr_assert_eq(read(p[0], buf, 1), 1);
	cr_assert_eq(buf[0], 'z');
	close(fd);
	close(p[0]);
}

Test(fdpass, a_message_without_an_fd)
{
	int fd = -2;
	bool bad = true;
	char buf[16];

	cr_assert_eq(aj_fdpass_send(sv[0], "HELLO", 5, -1, 0), 5);
	cr_assert_eq(aj_fdpass_recv(sv[1], buf, sizeof(buf), 0, &fd, &bad), 5);
	cr_assert_eq(fd, -1);
	cr_assert_not(bad);
}

/* Every fd of a bad message is closed: once the test's own copy of the
 * pipe's write end is closed too, the read end sees end of file. */
static void
expect_all_closed(int copies)
{
	int p[2], fd = -2, before;
	bool bad = false;
	char buf[16];

	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	send_copies(sv[0], "two", 3, p[1], copies);
	close(p[1]);
	before = open_fds();
	cr_assert_eq(aj_fdpass_recv(sv[1], buf, sizeof(buf), 0, &fd, &bad), 3);
	cr_assert_eq(fd, -1, "%d fds: one was kept", copies);
	cr_assert(bad, "%d fds: not reported", copies);
	cr_assert_eq(open_fds(), before, "%d fds: some were left open", copies);
	cr_assert_eq(read(p[0], buf, 1), 0, "%d fds: a copy of the write end is still open",
		     copies);
	close(p[0]);
}

Test(fdpass, two_fds_are_all_closed_and_reported)
{
	expect_all_closed(2);
}

Test(fdpass, more_fds_than_fit_are_all_closed_and_reported)
{
	/* The receiver has room for four: the rest are cut (MSG_CTRUNC). */
	expect_all_closed(4);
	expect_all_closed(5);
	expect_all_closed(16);
}

Test(fdpass, the_next_message_is_clean_after_a_bad_one)
{
	int p[2], fd = -2;
	bool bad = false;
	char buf[16];

	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	send_copies(sv[0], "bad", 3, p[1], 2);
	cr_assert_eq(aj_fdpass_send(sv[0], "good", 4, p[1], 0), 4);
	close(p[1]);
	cr_assert_eq(aj_fdpass_recv(sv[1], buf, sizeof(buf), 0, &fd, &bad), 3);
	cr_assert(bad);
	cr_assert_eq(fd, -1);
	cr_assert_eq(aj_fdpass_recv(sv[1], buf, sizeof(buf), 0, &fd, &bad), 4);
	cr_assert_not(bad, "a bad message spoils the next one");
	cr_assert_geq(fd, 0);
	close(fd);
	close(p[0]);
}

Test(fdpass, truncated_payload_reports_its_real_length)
{
	int fd = -2;
	bool bad = true;
	char buf[4];

	cr_assert_eq(aj_fdpass_send(sv[0], "0123456789", 10, -1, 0), 10);
	/* SEQPACKET keeps boundaries: MSG_TRUNC says how long it was. */
	cr_assert_eq(aj_fdpass_recv(sv[1], buf, sizeof(buf), MSG_TRUNC, &fd, &bad), 10);
	cr_assert_eq(memcmp(buf, "0123", 4), 0);
	cr_assert_eq(fd, -1);
	cr_assert_not(bad);
}

Test(fdpass, errors_are_negative_errno)
{
	int fd = -2;
	bool bad = true;
	char buf[4];

	/* Nothing to read on a non-blocking receive. */
	cr_assert_eq(aj_fdpass_recv(sv[1], buf, sizeof(buf), MSG_DONTWAIT, &fd, &bad), -EAGAIN);
	cr_assert_eq(fd, -1);
	cr_assert_not(bad);
	/* The peer gone: end of file for the receiver; EPIPE, not SIGPIPE, for
	 * the sender (MSG_NOSIGNAL). */
	close(sv[0]);
	sv[0] = -1;
	cr_assert_eq(aj_fdpass_recv(sv[1], buf, sizeof(buf), 0, &fd, &bad), 0);
	cr_assert_eq(aj_fdpass_send(sv[1], "x", 1, -1, 0), -EPIPE);
	cr_assert_eq(aj_fdpass_send(-1, "x", 1, -1, 0), -EBADF);
}
