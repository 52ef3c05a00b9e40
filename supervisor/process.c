/*
 * The supervisor's children as processes: starting a program with the
 * descriptor contract of common/fds.h (the broker from the supervisor, the
 * agent from the jail's init), and the one way a child is stopped for good
 * (SIGKILL, then reaped), so no error path can leave a child running or a
 * zombie behind.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "supervisor.h"

/* The most descriptors of the contract a program is given (common/fds.h:
 * the broker's, from AJ_FD_DOOR to the proxy's last listener). */
#define MAX_PLACED (AJ_FD_PROXY + AJ_PROXY_LISTENERS - AJ_FD_DOOR)

/*
 * Where each descriptor comes from, in numbers that no placement can
 * overwrite: file actions run in order, so dup2(a, 4) before dup2(b, 5)
 * would hand the child the wrong file if a source were itself a target
 * ("b" == 4).  A source inside the target range is first duplicated above
 * it (close-on-exec, so the copy never reaches the program).  *MOVED
 * lists those copies for the caller to close; returns 0 or a positive
 * errno, posix_spawn's convention.
 */
static int
safe_sources(const int *src, size_t n, int top, int *out, int *moved, size_t *n_moved)
{
	*n_moved = 0;
	for (size_t i = 0; i < n; i++) {
		out[i] = src[i];
		if (src[i] < 0 || src[i] >= top)
			continue;
		out[i] = fcntl(src[i], F_DUPFD_CLOEXEC, top);
		if (out[i] < 0)
			return errno;
		moved[(*n_moved)++] = out[i];
	}
	return 0;
}

int
aj_process_spawn(const char *path, char *const argv[], char *const envp[], const int *fds,
		 size_t n_fds, const int *stdio, int fg_tty, bool search, pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	/* SRC[0..2]: stdio (-1: keep), then the contract's N_FDS. */
	int want[3 + MAX_PLACED], src[3 + MAX_PLACED], moved[3 + MAX_PLACED];
	size_t n_moved = 0;
	sigset_t none, all;
	int r;

	if (n_fds > MAX_PLACED)
		return EINVAL;
	for (size_t i = 0; i < 3; i++)
		want[i] = stdio != NULL ? stdio[i] : -1;
	for (size_t i = 0; i < n_fds; i++)
		want[3 + i] = fds[i];
	sigemptyset(&none);
	sigfillset(&all);
	r = safe_sources(want, 3 + n_fds, AJ_FD_DOOR + (int)n_fds, src, moved, &n_moved);
	if (r != 0)
		goto out;
	if ((r = posix_spawn_file_actions_init(&fa)) != 0)
		goto out;
	if ((r = posix_spawnattr_init(&attr)) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		goto out;
	}
	/* A session of its own, or a process group of its own in the
	 * foreground of FG_TTY (the caller is that terminal's session leader,
	 * as a shell is: the group is then not orphaned, so the terminal's
	 * stop signals (^Z) stop it). */
	r = posix_spawnattr_setflags(&attr, (fg_tty < 0 ? POSIX_SPAWN_SETSID : POSIX_SPAWN_SETPGROUP) |
						    POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	if (r == 0 && fg_tty >= 0)
		r = posix_spawnattr_setpgroup(&attr, 0);
	/* First, before any dup2 could reuse FG_TTY's number.  Signals are
	 * blocked until the exec, so tcsetpgrp raises no SIGTTOU. */
	if (r == 0 && fg_tty >= 0)
		r = posix_spawn_file_actions_addtcsetpgrp_np(&fa, fg_tty);
	if (r == 0)
		r = posix_spawnattr_setsigmask(&attr, &none);
	if (r == 0)
		r = posix_spawnattr_setsigdefault(&attr, &all);
	/* dup2 onto itself clears close-on-exec, as POSIX requires. */
	for (size_t i = 0; r == 0 && i < 3; i++)
		if (src[i] >= 0)
			r = posix_spawn_file_actions_adddup2(&fa, src[i], (int)i);
	for (size_t i = 0; r == 0 && i < n_fds; i++)
		r = posix_spawn_file_actions_adddup2(&fa, src[3 + i], AJ_FD_DOOR + (int)i);
	if (r == 0)
		r = posix_spawn_file_actions_addclosefrom_np(&fa, AJ_FD_DOOR + (int)n_fds);
	if (r == 0)
		r = search ? posix_spawnp(pid, path, &fa, &attr, argv, envp)
			   : posix_spawn(pid, path, &fa, &attr, argv, envp);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
out:
	for (size_t i = 0; i < n_moved; i++)
		close(moved[i]);
	return r;
}

void
aj_process_kill_and_reap(pid_t pid, int pidfd, siginfo_t *info)
{
	siginfo_t local;

	if (info == NULL)
		info = &local;
	memset(info, 0, sizeof(*info));
	/* Through the pidfd when there is one: a pid may have been reused,
	 * a pidfd cannot be.  SIGKILL to a child that already exited is a
	 * no-op, so callers need not know whether it did. */
	if (pidfd >= 0) {
		(void)syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
		while (waitid(P_PIDFD, (id_t)pidfd, info, WEXITED) < 0 && errno == EINTR)
			;
		return;
	}
	/* Never kill(0) or kill(-1): that would be our own group, or all. */
	if (pid <= 0)
		return;
	(void)kill(pid, SIGKILL);
	while (waitid(P_PID, (id_t)pid, info, WEXITED) < 0 && errno == EINTR)
		;
}
