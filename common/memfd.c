/*
 * Sealed memfds (common/memfd.h).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "memfd.h"

int
aj_memfd_new(const char *name)
{
	int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);

	return fd < 0 ? -errno : fd;
}

int
aj_memfd_seal(int fd)
{
	if (fcntl(fd, F_ADD_SEALS, AJ_MEMFD_SEALS) < 0 || lseek(fd, 0, SEEK_SET) < 0)
		return -errno;
	return 0;
}

bool
aj_memfd_is_sealed(int fd)
{
	int seals = fcntl(fd, F_GET_SEALS);

	return seals >= 0 && (seals & AJ_MEMFD_SEALS) == AJ_MEMFD_SEALS;
}

int
aj_memfd_of(const char *name, const void *data, size_t len)
{
	const char *p = data;
	int fd = aj_memfd_new(name), r;

	if (fd < 0)
		return fd;
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = n < 0 ? -errno : -EIO;
			close(fd);
			return r;
		}
		p += n;
		len -= (size_t)n;
	}
	r = aj_memfd_seal(fd);
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}
