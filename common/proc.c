/*
 * Who a process is, from /proc (common/proc.h).
 */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "proc.h"

int
aj_proc_open(pid_t pid)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d", (int)pid);
	return open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
}

void
aj_proc_read_task(int dir, char *comm, size_t comm_len, char *exe, size_t exe_len)
{
	ssize_t n;
	int fd;

	comm[0] = exe[0] = '\0';
	fd = openat(dir, "comm", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, comm, comm_len - 1);
		comm[n > 0 ? n : 0] = '\0';
		comm[strcspn(comm, "\n")] = '\0'; /* the kernel's own terminator */
		close(fd);
	}
	/* The link as it is, newlines included (escaped later): a path is
	 * not cut short where its owner chose. */
	n = readlinkat(dir, "exe", exe, exe_len - 1);
	exe[n > 0 ? n : 0] = '\0';
}
