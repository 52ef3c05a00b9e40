/*
 * The names of the setup steps and the likely fix when one fails: the one
 * line a user reads when a jail cannot start.
 */
#include "config.h"

#include <errno.h>

#include "supervisor.h"

static const char *const step_names[AJ_STEP__COUNT] = {
	[AJ_STEP_NONE] = "setup",
	[AJ_STEP_BROKER] = "starting the broker",
	[AJ_STEP_CLONE] = "creating the namespaces",
	[AJ_STEP_IDMAP] = "writing the uid/gid maps",
	[AJ_STEP_DOOR] = "making the broker's door",
	[AJ_STEP_HOSTNAME] = "setting the hostname",
	[AJ_STEP_MOUNT_PRIVATE] = "making mounts private",
	[AJ_STEP_TMPFS] = "mounting private tmpfs",
	[AJ_STEP_PROC] = "mounting a fresh /proc",
	[AJ_STEP_SYSFS] = "mounting a fresh /sys",
	[AJ_STEP_MASK] = "masking kernel interfaces",
	[AJ_STEP_NOSUID] = "making every mount nosuid",
	[AJ_STEP_LOOPBACK] = "bringing up loopback",
	[AJ_STEP_LINKS] = "checking the network links",
	[AJ_STEP_CAPS] = "dropping capabilities",
	[AJ_STEP_SECCOMP] = "loading the seccomp filter",
	[AJ_STEP_RLIMIT] = "setting resource limits",
	[AJ_STEP_CWD] = "entering the working directory",
	[AJ_STEP_PTY] = "making the agent's terminal",
	[AJ_STEP_PROXY] = "opening the proxy's listening sockets",
	[AJ_STEP_TRUST] = "making the jail's trust bundle",
	[AJ_STEP_HIDE] = "hiding the files of injected secrets",
	[AJ_STEP_EXEC] = "executing the command",
};

const char *
aj_step_name(enum aj_step step)
{
	if ((unsigned)step >= AJ_STEP__COUNT || step_names[step] == NULL)
		return "setup";
	return step_names[step];
}

const char *
aj_step_hint(enum aj_step step, int errnum)
{
	switch (step) {
	case AJ_STEP_CLONE:
		if (errnum == EPERM || errnum == EACCES)
			return "user namespaces are refused to this caller: check "
			       "`sysctl kernel.unprivileged_userns_clone` (must be 1), "
			       "`sysctl kernel.apparmor_restrict_unprivileged_userns` (must be 0) "
			       "and that agentjail is not itself inside a seccomp sandbox; "
			       "`agentjail doctor` tells which";
		if (errnum == ENOSPC || errnum == EUSERS)
			return "the user or namespace limit is reached: raise "
			       "`sysctl user.max_user_namespaces` (0 disables them) or "
			       "user.max_net_namespaces";
		if (errnum == EINVAL)
			return "this kernel lacks a namespace type agentjail needs; "
			       "`agentjail doctor` tells which";
		if (errnum == ENOMEM)
			return "out of memory, or the pid namespace nesting limit is reached";
		return NULL;
	case AJ_STEP_IDMAP:
		return "the kernel refused the uid/gid map; with a `user` directive, "
		       "check that the user exists and is not root";
	case AJ_STEP_PROC:
		return "a fresh /proc needs the host /proc to be fully visible: "
		       "something is mounted over part of it (see `findmnt -R /proc`)";
	case AJ_STEP_SYSFS:
		return "a fresh /sys needs the host /sys to be fully visible; "
		       "or add `optional sysfs` to the profile to mask /sys/class/net instead";
	case AJ_STEP_LOOPBACK:
		return "the new network namespace could not configure `lo`: check that "
		       "the kernel has CONFIG_NET_NS and netlink route support";
	case AJ_STEP_LINKS:
		return "the new network namespace holds an interface besides lo; "
		       "refusing to run with a possible route out";
	case AJ_STEP_SECCOMP:
		if (errnum == EINVAL)
			return "the kernel lacks seccomp filtering (CONFIG_SECCOMP_FILTER)";
		return NULL;
	case AJ_STEP_TMPFS:
	case AJ_STEP_MASK:
	case AJ_STEP_NOSUID:
		if (errnum == ENOSYS)
			return "this kernel lacks the new mount API (mount_setattr, Linux 5.12+)";
		return NULL;
	case AJ_STEP_EXEC:
		if (errnum == ENOENT)
			return "the command was not found in the jail's PATH";
		if (errnum == EACCES)
			return "the command is not executable by the jail's user";
		return NULL;
	case AJ_STEP_CWD:
		if (errnum == ENOENT || errnum == ENOTDIR)
			return "the directory must exist inside the jail, where /tmp, /var/tmp, "
			       "/run, /dev/shm and $XDG_RUNTIME_DIR are private and empty";
		if (errnum == EACCES)
			return "the agent's user cannot enter it (started by root, the agent runs "
			       "as the profile's `user`)";
		return NULL;
	case AJ_STEP_PTY:
		return "the jail's devpts could not give a pseudo-terminal; pass --no-pty "
		       "(aj_run_options_set_pty) to share the caller's terminal instead";
	case AJ_STEP_PROXY:
		return "the proxy listens on 127.0.0.1 and ::1 in the jail's network namespace; "
		       "`proxy off` in the profile runs without it";
	case AJ_STEP_TRUST:
		return "with `proxy on` the jail trusts the broker's CA through " AJ_JAIL_CA_BUNDLE
		       " on its private /run, bound over the system bundles; `proxy off` in the "
		       "profile runs without it";
	case AJ_STEP_HIDE:
		return "the file an `inject ... file:PATH` reads is covered in the jail by an empty "
		       "one on its private /run; keep such files on a filesystem that allows bind "
		       "mounts";
	case AJ_STEP_BROKER:
		return "the agentjail-broker program could not start; check the installation "
		       "(or AGENTJAIL_BROKER)";
	default:
		return NULL;
	}
}
