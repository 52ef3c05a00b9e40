/*
 * Unit tests for the setup steps (supervisor/steps.c): every step that can
 * fail has a name for the one failure line, and the hints that name a fix
 * are given for the errors they are about.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "supervisor.h"

Test(steps, every_step_has_its_own_name)
{
	for (int i = 0; i < AJ_STEP__COUNT; i++) {
		const char *name = aj_step_name((enum aj_step)i);

		cr_assert_not_null(name, "step %d", i);
		cr_assert_gt(strlen(name), 0, "step %d", i);
		/* The generic name is the fallback, only AJ_STEP_NONE's own. */
		if (i != AJ_STEP_NONE)
			cr_assert_str_neq(name, "setup", "step %d has no name of its own", i);
		for (int j = 0; j < i; j++)
			cr_assert_str_neq(name, aj_step_name((enum aj_step)j),
					  "steps %d and %d share a name", j, i);
	}
}

Test(steps, names_read_as_the_failure_line_says)
{
	cr_assert_str_eq(aj_step_name(AJ_STEP_NONE), "setup");
	cr_assert_str_eq(aj_step_name(AJ_STEP_CLONE), "creating the namespaces");
	cr_assert_str_eq(aj_step_name(AJ_STEP_SECCOMP), "loading the seccomp filter");
	cr_assert_str_eq(aj_step_name(AJ_STEP_EXEC), "executing the command");
}

Test(steps, out_of_range_is_setup)
{
	cr_assert_str_eq(aj_step_name(AJ_STEP__COUNT), "setup");
	cr_assert_str_eq(aj_step_name((enum aj_step) - 1), "setup");
	cr_assert_str_eq(aj_step_name((enum aj_step)1000), "setup");
	cr_assert_null(aj_step_hint(AJ_STEP__COUNT, EPERM));
	cr_assert_null(aj_step_hint((enum aj_step)1000, EPERM));
}

static void
expect_hint(enum aj_step step, int errnum, const char *needle)
{
	const char *hint = aj_step_hint(step, errnum);

	cr_assert_not_null(hint, "no hint for %s with %s", aj_step_name(step), strerror(errnum));
	cr_assert_not_null(strstr(hint, needle), "hint for %s with %s: '%s' lacks '%s'",
			   aj_step_name(step), strerror(errnum), hint, needle);
}

Test(steps, hints_follow_the_error)
{
	/* The namespaces: who refuses, which limit, what the kernel lacks. */
	expect_hint(AJ_STEP_CLONE, EPERM, "kernel.unprivileged_userns_clone");
	expect_hint(AJ_STEP_CLONE, EACCES, "agentjail doctor");
	expect_hint(AJ_STEP_CLONE, ENOSPC, "user.max_user_namespaces");
	expect_hint(AJ_STEP_CLONE, EUSERS, "user.max_user_namespaces");
	expect_hint(AJ_STEP_CLONE, EINVAL, "lacks a namespace type");
	expect_hint(AJ_STEP_CLONE, ENOMEM, "nesting limit");
	cr_assert_null(aj_step_hint(AJ_STEP_CLONE, EIO), "a hint for an error it is not about");

	expect_hint(AJ_STEP_SECCOMP, EINVAL, "CONFIG_SECCOMP_FILTER");
	cr_assert_null(aj_step_hint(AJ_STEP_SECCOMP, EPERM));

	/* The new mount API, wherever the mounts use it. */
	expect_hint(AJ_STEP_TMPFS, ENOSYS, "mount_setattr");
	expect_hint(AJ_STEP_MASK, ENOSYS, "mount_setattr");
	expect_hint(AJ_STEP_NOSUID, ENOSYS, "mount_setattr");
	cr_assert_null(aj_step_hint(AJ_STEP_TMPFS, EPERM));

	expect_hint(AJ_STEP_EXEC, ENOENT, "not found");
	expect_hint(AJ_STEP_EXEC, EACCES, "not executable");
	cr_assert_null(aj_step_hint(AJ_STEP_EXEC, E2BIG));
}

Test(steps, hints_that_hold_for_any_error)
{
	static const int errs[] = {EPERM, EINVAL, ENOENT, EIO};

	for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
		expect_hint(AJ_STEP_IDMAP, errs[i], "uid/gid map");
		expect_hint(AJ_STEP_PROC, errs[i], "findmnt -R /proc");
		expect_hint(AJ_STEP_SYSFS, errs[i], "optional sysfs");
		expect_hint(AJ_STEP_LOOPBACK, errs[i], "CONFIG_NET_NS");
		expect_hint(AJ_STEP_LINKS, errs[i], "route out");
		expect_hint(AJ_STEP_BROKER, errs[i], "AGENTJAIL_BROKER");
	}
}

Test(steps, steps_without_a_known_fix_have_no_hint)
{
	static const enum aj_step none[] = {AJ_STEP_NONE, AJ_STEP_HOSTNAME, AJ_STEP_MOUNT_PRIVATE,
					    AJ_STEP_CAPS, AJ_STEP_RLIMIT};

	for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++)
		cr_assert_null(aj_step_hint(none[i], EPERM), "%s", aj_step_name(none[i]));
}
