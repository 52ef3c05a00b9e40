/*
 * Job control for the jail as a whole, done by its init: when the agent
 * stops at a terminal the caller sits at (^Z), every other process of the
 * jail stops too, so nothing of the jail runs or reads while the caller's
 * shell has the terminal back; `fg` continues exactly what was stopped.
 *
 * Init stops each process it finds running in the jail's /proc (only the
 * jail's pid namespace is there), and remembers it: a process that was
 * already stopped (a job the jailed shell had stopped itself) stays
 * stopped when the jail continues.  The agent's process group is continued
 * too, as a shell's `fg` would (^Z stopped it, not init).  A cgroup freezer
 * would do this atomically; the jail has no cgroup of its own yet.
 *
 * Runs in init, which may be a fork of a multithreaded program: no
 * allocation, no stdio (getdents64 on a raw fd instead of opendir).
 */
#include "config.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "supervisor.h"

/* Passes over /proc: a process forked while one pass ran is found by the
 * next.  Fork does not complete with a stop signal pending, so a pass
 * that stops nothing new is the last. */
#define MAX_PASSES 8

struct linux_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

static bool
recorded(const struct aj_jobctl *j, pid_t pid)
{
	for (size_t i = 0; i < j->n; i++)
		if (j->pids[i] == pid)
			return true;
	return false;
}

/* The state letter of /proc/PID/stat ('R', 'S', 'T', ...), or 0. */
static char
proc_state(int proc, const char *pid)
{
	char path[32], buf[512], *close_paren;
	ssize_t n;
	int fd;

	if (strlen(pid) > 16)
		return 0;
	strcpy(path, pid);
	strcat(path, "/stat");
	fd = openat(proc, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* "pid (comm) S ...": comm may hold anything, even ") ". */
	close_paren = strrchr(buf, ')');
	return close_paren != NULL && close_paren[1] == ' ' ? close_paren[2] : 0;
}

/* One pass: stop what runs and is not recorded.  True if it stopped any. */
static bool
stop_pass(struct aj_jobctl *j, int proc)
{
	char buf[4096];
	bool stopped_any = false;
	long n;

	if (lseek(proc, 0, SEEK_SET) < 0)
		return false;
	while ((n = syscall(SYS_getdents64, proc, buf, sizeof(buf))) > 0) {
		for (long off = 0; off < n;) {
			struct linux_dirent64 *d = (struct linux_dirent64 *)(buf + off);
			char *end, state;
			long pid = strtol(d->d_name, &end, 10);

			off += d->d_reclen;
			if (*end != '\0' || pid <= 1 || pid == getpid() || recorded(j, (pid_t)pid))
				continue;
			state = proc_state(proc, d->d_name);
			/* Stopped already (by its own shell, or traced), or gone. */
			if (state == 0 || state == 'T' || state == 't' || state == 'Z' ||
			    state == 'X')
				continue;
			if (j->n == AJ_JOBCTL_MAX) {
				j->overflow = true;
				continue;
			}
			if (kill((pid_t)pid, SIGSTOP) == 0) {
				j->pids[j->n++] = (pid_t)pid;
				stopped_any = true;
			}
		}
	}
	return stopped_any;
}

void
aj_jobctl_stop(struct aj_jobctl *j)
{
	int proc = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	j->n = 0;
	j->overflow = false;
	j->active = true;
	if (proc < 0) {
		j->overflow = true;
	} else {
		for (int pass = 0; pass < MAX_PASSES && stop_pass(j, proc); pass++)
			;
		close(proc);
	}
	/* More processes than the table holds: stop all the same; they are
	 * then all continued together. */
	if (j->overflow)
		(void)kill(-1, SIGSTOP);
}

void
aj_jobctl_continue(struct aj_jobctl *j, pid_t agent)
{
	if (j->overflow)
		(void)kill(-1, SIGCONT);
	for (size_t i = 0; i < j->n; i++)
		(void)kill(j->pids[i], SIGCONT);
	/* What the terminal stopped with the agent (its foreground group). */
	if (kill(-agent, SIGCONT) < 0)
		(void)kill(agent, SIGCONT);
	j->n = 0;
	j->overflow = false;
	j->active = false;
}
