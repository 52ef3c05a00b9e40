/*
 * The broker's own seccomp filter.  The broker parses untrusted input from
 * both sides (the agent's frames, later the internet's answers), so a bug
 * in it must not become a way to run programs, attach to processes, mount,
 * load kernel code or build namespaces.  It needs the network and files,
 * so this is a deny list over an allow default (the jail's filter is the
 * allow list); the bad-architecture action kills, which also ends i386 and
 * x32 calls.
 */
#include "config.h"

/* Before seccomp.h: its <elf.h> defines EV_NONE, which libev (in broker.h)
 * declares as an enum constant. */
#include "broker.h"

#include <errno.h>
#include <linux/sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

static const char *const refused[] = {
	/* running other programs */
	"execve",
	"execveat",
	/* reaching into other processes */
	"ptrace",
	"process_vm_readv",
	"process_vm_writev",
	"process_madvise",
	"pidfd_getfd",
	"kcmp",
	/* the mount table, old and new API */
	"mount",
	"umount2",
	"pivot_root",
	"chroot",
	"move_mount",
	"open_tree",
	"fsopen",
	"fsconfig",
	"fsmount",
	"fspick",
	"mount_setattr",
	/* namespaces */
	"unshare",
	"setns",
	/* kernel code and kernel-wide state */
	"kexec_load",
	"kexec_file_load",
	"init_module",
	"finit_module",
	"delete_module",
	"bpf",
	"perf_event_open",
	"iopl",
	"ioperm",
	"reboot",
	"swapon",
	"swapoff",
	"acct",
	"syslog",
	"quotactl",
	"settimeofday",
	"clock_settime",
	/* exploit helpers: keyrings, userfaultfd, io_uring (bypasses seccomp) */
	"keyctl",
	"add_key",
	"request_key",
	"userfaultfd",
	"io_uring_setup",
	"io_uring_enter",
	"io_uring_register",
	/* file handles bypass path lookup */
	"open_by_handle_at",
	"name_to_handle_at",
};

static const unsigned long clone_ns_flags[] = {
	CLONE_NEWNS,   CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC,
	CLONE_NEWUSER, CLONE_NEWPID,    CLONE_NEWNET,
};

int
aj_broker_confine(char *err, size_t errlen)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	int rc = ctx ? 0 : -ENOMEM;
	const char *what = "seccomp_init";

	if (rc == 0) {
		what = "attributes";
		rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
	}
	if (rc == 0)
		rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 1);
	for (size_t i = 0; rc == 0 && i < sizeof(refused) / sizeof(refused[0]); i++) {
		int nr = seccomp_syscall_resolve_name(refused[i]);

		what = refused[i];
		rc = nr == __NR_SCMP_ERROR ? -EINVAL
					   : seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
	}
	for (size_t i = 0; rc == 0 && i < sizeof(clone_ns_flags) / sizeof(clone_ns_flags[0]); i++) {
		what = "clone";
		rc = seccomp_rule_add(
			ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
			SCMP_A0(SCMP_CMP_MASKED_EQ, clone_ns_flags[i], clone_ns_flags[i]));
	}
	if (rc == 0) {
		/* clone3's flags are behind a pointer: refuse it, libc falls
		 * back to clone. */
		what = "clone3";
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	}
	if (rc == 0) {
		what = "ioctl";
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1,
				      SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffff, TIOCSTI));
	}
	if (rc == 0) {
		what = "loading";
		rc = seccomp_load(ctx);
	}
	if (ctx != NULL)
		seccomp_release(ctx);
	if (rc < 0)
		snprintf(err, errlen, "seccomp (%s): %s", what, strerror(-rc));
	return rc;
}
