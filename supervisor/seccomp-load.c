/*
 * Loading the jail's seccomp filter at run time.  The filter itself is
 * compiled from the table in seccomp.c by libseccomp at build time
 * (seccomp-gen writes seccomp-prebuilt.c); this file only picks the right
 * program and hands it to the kernel, so no run builds a filter (building
 * costs start-up time on every run).  libseccomp is still linked: the
 * supervisor's violation listener (violations.c) uses its user-notification
 * helpers.
 */
#include "config.h"

#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "supervisor.h"

const struct sock_fprog *
aj_seccomp_prebuilt(const struct aj_seccomp_opts *opts)
{
	unsigned i = (opts->allow_unix_sockets ? AJ_SECCOMP_VARIANT_UNIX : 0) |
		     (opts->loopback_sockets ? AJ_SECCOMP_VARIANT_LOOPBACK : 0) |
		     (opts->notify_violations ? AJ_SECCOMP_VARIANT_NOTIFY : 0);

	return aj_seccomp_prebuilt_variants[i];
}

int
aj_seccomp_load_prebuilt(const struct sock_fprog *prog)
{
	/* The same attributes the libseccomp context carries: no_new_privs
	 * first (the kernel requires it without CAP_SYS_ADMIN), and TSYNC so
	 * every thread of the caller is covered. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, prog);
	if (r < 0)
		return -errno;
	/* TSYNC: a positive result names a thread that could not sync. */
	return r == 0 ? 0 : -ESRCH;
}

int
aj_seccomp_load_prebuilt_listener(const struct sock_fprog *prog)
{
	long fd;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	/* No TSYNC: the kernel refuses it together with a listener, and the
	 * jail's init, the only caller, has one thread.  WAIT_KILLABLE_RECV
	 * (Linux 5.19): once the supervisor holds a notification, only a
	 * fatal signal interrupts the waiting task, so an attempt cannot be
	 * withdrawn half-way (exact counts; nothing runs before a kill). */
	fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
		     SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
		     prog);
	if (fd < 0 && errno == EINVAL)
		fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER,
			     prog);
	if (fd < 0)
		return -errno;
	return (int)fd;
}
