/*
 * Unit tests for sealed memfds (common/memfd.c): what a receiver accepts
 * as "nobody can change this any more" is exactly the seal set, and a
 * sealed memfd cannot be written, grown, shrunk or unsealed.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "memfd.h"

Test(memfd, of_holds_the_bytes_sealed_and_rewound)
{
	static const char data[] = "the resolved policy";
	char buf[64] = "";
	struct stat st;
	int fd = aj_memfd_of("aj-test", data, sizeof(data));

	cr_assert_geq(fd, 0, "aj_memfd_of: %s", strerror(-fd));
	cr_assert(aj_memfd_is_sealed(fd));
	cr_assert_eq(fcntl(fd, F_GET_SEALS) & AJ_MEMFD_SEALS, AJ_MEMFD_SEALS);
	cr_assert_eq(fstat(fd, &st), 0);
	cr_assert_eq(st.st_size, (off_t)sizeof(data));
	/* Rewound: the receiver reads from the start. */
	cr_assert_eq(read(fd, buf, sizeof(buf)), (ssize_t)sizeof(data));
	cr_assert_str_eq(buf, data);
	cr_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC, "not close-on-exec");
	close(fd);
}

Test(memfd, sealed_cannot_change)
{
	int fd = aj_memfd_of("aj-test", "abc", 3);
	void *map;

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "x", 1), -1);
	cr_assert_eq(errno, EPERM);
	cr_assert_eq(ftruncate(fd, 1), -1, "shrunk");
	cr_assert_eq(errno, EPERM);
	cr_assert_eq(ftruncate(fd, 4096), -1, "grown");
	cr_assert_eq(errno, EPERM);
	/* F_SEAL_SEAL: the seals cannot be changed either. */
	cr_assert_eq(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE), -1);
	cr_assert_eq(errno, EPERM);
	/* No writable shared mapping either (F_SEAL_WRITE). */
	map = mmap(NULL, 3, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	cr_assert_eq(map, MAP_FAILED, "a writable shared mapping of a sealed memfd");
	close(fd);
}

Test(memfd, empty_data_is_a_sealed_empty_file)
{
	struct stat st;
	int fd = aj_memfd_of("aj-test", "", 0);

	cr_assert_geq(fd, 0);
	cr_assert(aj_memfd_is_sealed(fd));
	cr_assert_eq(fstat(fd, &st), 0);
	cr_assert_eq(st.st_size, 0);
	close(fd);
}

Test(memfd, unsealed_is_refused)
{
	int fd = aj_memfd_new("aj-test");

	cr_assert_geq(fd, 0, "aj_memfd_new: %s", strerror(-fd));
	/* A memfd that the sender can still change is not sealed. */
	cr_assert_not(aj_memfd_is_sealed(fd));
	cr_assert_eq(write(fd, "abc", 3), 3);
	cr_assert_not(aj_memfd_is_sealed(fd));
	cr_assert_eq(aj_memfd_seal(fd), 0);
	cr_assert(aj_memfd_is_sealed(fd));
	cr_assert_eq(lseek(fd, 0, SEEK_CUR), 0, "aj_memfd_seal did not rewind");
	close(fd);
}

Test(memfd, a_partial_seal_set_is_refused)
{
	static const int partial[] = {
		F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW,  /* still writable */
		F_SEAL_SEAL | F_SEAL_WRITE | F_SEAL_GROW,   /* can shrink */
		F_SEAL_SEAL | F_SEAL_WRITE | F_SEAL_SHRINK, /* can grow */
		F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW, /* the set is not final */
	};

	for (size_t i = 0; i < sizeof(partial) / sizeof(partial[0]); i++) {
		int fd = aj_memfd_new("aj-test");

		cr_assert_geq(fd, 0);
		cr_assert_eq(fcntl(fd, F_ADD_SEALS, partial[i]), 0, "seals 0x%x", partial[i]);
		cr_assert_not(aj_memfd_is_sealed(fd), "seals 0x%x taken as sealed", partial[i]);
		close(fd);
	}
}

Test(memfd, what_cannot_be_sealed_is_refused)
{
	int p[2], fd;

	/* A pipe or a plain file carries no seals at all. */
	cr_assert_eq(pipe(p), 0);
	cr_assert_not(aj_memfd_is_sealed(p[0]));
	cr_assert_eq(aj_memfd_seal(p[1]), -EINVAL);
	close(p[0]);
	close(p[1]);
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	cr_assert_not(aj_memfd_is_sealed(fd));
	close(fd);
	/* A closed fd is not sealed either. */
	cr_assert_not(aj_memfd_is_sealed(-1));
	/* A memfd made without MFD_ALLOW_SEALING is born with F_SEAL_SEAL only. */
	fd = memfd_create("aj-test", MFD_CLOEXEC);
	cr_assert_geq(fd, 0);
	cr_assert_not(aj_memfd_is_sealed(fd));
	cr_assert_eq(aj_memfd_seal(fd), -EPERM);
	close(fd);
}
