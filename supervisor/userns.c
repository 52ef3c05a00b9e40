/*
 * The jail's user namespace maps exactly one host uid and gid, written from
 * the parent.  setgroups is denied first: the kernel requires it for an
 * unprivileged gid map, and it keeps the agent from dropping groups that
 * deny it access.  One writer serves the jail (spawn.c) and the doctor's
 * probes, so what doctor reports is what a run does.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "supervisor.h"

static int
write_proc_file(pid_t pid, const char *file, const char *text, char *err, size_t errlen)
{
	char path[64];
	size_t len = strlen(text);
	ssize_t n;
	int fd, r = 0;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return aj_err(err, errlen, -errno, "open %s: %s", path, strerror(errno));
	n = write(fd, text, len);
	if (n < 0)
		r = aj_err(err, errlen, -errno, "write %s: %s", path, strerror(errno));
	else if ((size_t)n != len)
		r = aj_err(err, errlen, -EIO, "write %s: short write", path);
	close(fd);
	return r;
}

int
aj_userns_write_maps(pid_t pid, uid_t uid, gid_t gid, char *err, size_t errlen)
{
	char line[64];
	int r;

	r = write_proc_file(pid, "setgroups", "deny", err, errlen);
	/* Kernels before 3.19 have no setgroups file: they let an
	 * unprivileged gid map be written without it, and the agent cannot
	 * drop groups there either (setgroups needs CAP_SETGID in the
	 * parent's namespace), so there is nothing to deny. */
	if (r == -ENOENT && err != NULL && errlen > 0)
		err[0] = '\0';
	else if (r < 0)
		return r;
	snprintf(line, sizeof(line), "%u %u 1\n", (unsigned)uid, (unsigned)uid);
	r = write_proc_file(pid, "uid_map", line, err, errlen);
	if (r < 0)
		return r;
	snprintf(line, sizeof(line), "%u %u 1\n", (unsigned)gid, (unsigned)gid);
	return write_proc_file(pid, "gid_map", line, err, errlen);
}
