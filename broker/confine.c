/*
 * The broker's own seccomp filter.  The broker parses untrusted input from
 * both sides (the agent's frames, the internet's answers), so a bug
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

#include "escape.h"
#include "util.h"

/* Besides the escape calls (common/escape.c): the broker never runs a
 * program. */
static const char *const refused[] = {"execve", "execveat"};

static const unsigned long clone_ns_flags[] = {
	CLONE_NEWNS,   CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC,
	CLONE_NEWUSER, CLONE_NEWPID,    CLONE_NEWNET,
};

/* Refuse NAME with EPERM.  Returns 0 or a libseccomp -errno. */
static int
refuse(scmp_filter_ctx ctx, const char *name)
{
	int nr = seccomp_syscall_resolve_name(name);

	return nr == __NR_SCMP_ERROR ? -EINVAL
				     : seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
}

int
aj_confine(char *err, size_t errlen)
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
	for (size_t i = 0; rc == 0 && i < AJ_ARRAY_SIZE(refused); i++) {
		what = refused[i];
		rc = refuse(ctx, what);
	}
	for (size_t i = 0; rc == 0 && aj_escape_syscalls[i] != NULL; i++) {
		what = aj_escape_syscalls[i];
		rc = refuse(ctx, what);
	}
	for (size_t i = 0; rc == 0 && i < AJ_ARRAY_SIZE(clone_ns_flags); i++) {
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
