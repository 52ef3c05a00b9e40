/*
 * What the agent inherits: fds 0, 1, 2 and the broker at AJ_BROKER_FD.  The
 * setup channel survives until execve closes it (close-on-exec), so an exec
 * failure can still be reported.  Everything else the caller leaked is
 * closed (runc CVE-2024-21626 was a leaked directory fd).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

int
aj_fds_prepare_agent(int broker_fd, int *sync_fd)
{
	int sync_target = AJ_BROKER_FD + 1;

	/* Move the setup channel out of the way first, so placing the broker
	 * fd cannot clobber it. */
	if (*sync_fd != sync_target) {
		if (broker_fd == sync_target) {
			int tmp = fcntl(broker_fd, F_DUPFD_CLOEXEC, sync_target + 1);
			if (tmp < 0)
				return -errno;
			broker_fd = tmp;
		}
		if (dup3(*sync_fd, sync_target, O_CLOEXEC) < 0)
			return -errno;
		*sync_fd = sync_target;
	}
	if (broker_fd != AJ_BROKER_FD) {
		if (dup2(broker_fd, AJ_BROKER_FD) < 0)
			return -errno;
	} else if (fcntl(AJ_BROKER_FD, F_SETFD, 0) < 0) {
		return -errno;
	}
	if (syscall(SYS_close_range, sync_target + 1, ~0U, 0) < 0)
		return -errno;
	return 0;
}
