/*
 * `agentjail doctor`: which isolation layers this kernel and this caller can
 * apply, and what to change when one is missing.
 *
 * Every layer is probed by doing what the jail does, not guessed from the
 * kernel version: a sysctl, an LSM or a seccomp filter around the caller can
 * refuse a feature the kernel has.  Anything that changes process state
 * (namespaces, mounts, no_new_privs, seccomp filters, dropping to the agent's
 * user) runs in a forked child that leaves its result in shared memory and
 * _exits, so aj_doctor() is safe to call from a library: the caller's
 * credentials, namespaces and filters are untouched.
 */
#include "config.h"

/* config.h defines it (AC_USE_SYSTEM_EXTENSIONS); a standalone build may not. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <jansson.h>
#include <linux/filter.h>
#include <linux/magic.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "supervisor.h"

/* Stable kernel ABI that older userspace headers may lack. */
#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#endif
#ifndef LANDLOCK_CREATE_RULESET_VERSION
#define LANDLOCK_CREATE_RULESET_VERSION (1U << 0)
#endif
#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

/* The profile's default `user`: run.c drops to it when started by root. */
#define AGENT_USER "nobody"
#define AGENT_FALLBACK_ID 65534

#define NAME_WIDTH 24
#define DETAIL_MAX 512
#define FIX_MAX 512

enum need {
	NEED_MANDATORY, /* no jail without it */
	NEED_PROFILE,   /* mandatory unless the profile says `optional KEYWORD` */
	NEED_OPTIONAL,  /* an extra or later feature: jails run without it */
};

/* Who is asking, worked out once in the parent: the children must not call
 * getpwnam() (the caller may have threads). */
struct doctor_ctx {
	bool root;
	bool drop; /* root: the jail probes run as the agent's user, as run.c does */
	char agent_name[64];
	uid_t agent_uid;
	gid_t agent_gid;
	/* In a probe child only: the channel to the parent that writes its
	 * uid/gid maps, as the supervisor does for the jail. */
	int sync_w, sync_r;
};

/* How far a probe child got before it failed. */
enum stage {
	STAGE_RUN,    /* forking or waiting for the child */
	STAGE_DROP,   /* becoming the agent's user */
	STAGE_USERNS, /* entering a user namespace and writing its maps */
	STAGE_SETUP,  /* what the layer needs first: other lines cover it */
	STAGE_PROBE,  /* the layer itself */
};

/*
 * What a probe child leaves for the parent, in a MAP_SHARED page so a
 * grandchild (pid 1 of a new pid namespace) can fill it too.  WHAT points to
 * a string literal: the child is a fork without exec, so the address means
 * the same in the parent, and the child never formats text.
 */
struct child_report {
	bool done; /* the child reached its end, pass or fail */
	enum stage stage;
	int errnum; /* 0, or the errno of WHAT */
	const char *what;
	int signal; /* a (grand)child was killed by this signal */
	/* The parent's own words for a failure it saw itself (writing the id
	 * maps), errno text included: printed as it is, instead of WHAT. */
	char detail[160];
};

typedef void (*child_fn)(const struct doctor_ctx *ctx, const void *arg, struct child_report *rep);

struct result {
	bool skipped; /* does not apply to this caller */
	bool available;
	char detail[DETAIL_MAX];
	char fix[FIX_MAX];
};

struct probe;
typedef void (*probe_fn)(const struct doctor_ctx *ctx, const struct probe *p, struct result *res);

/* A namespace type the jail unshares inside its user namespace. */
struct ns_kind {
	int flag;
	const char *unshare_call; /* literal for the child report */
	const char *config;       /* the kernel option that provides it */
	const char *max_sysctl;   /* its limit in /proc/sys/user/ */
};

enum mount_kind {
	MOUNT_PROC,
	MOUNT_SYSFS,
	MOUNT_SETATTR,
};

struct probe {
	const char *name;
	enum need need;
	const char *opt_out; /* NEED_PROFILE: the `optional` keyword */
	bool root_only;      /* only meaningful when started by root */
	probe_fn run;
	const struct ns_kind *ns;
	enum mount_kind mount;
};

/* ---- small helpers ------------------------------------------------------- */

static void set_text(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
set_text(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

/* Read a sysctl or other one-number file.  Returns 0 or -errno. */
static int
read_long(const char *path, long *out)
{
	char buf[64];
	char *end;
	FILE *f;
	long v;

	f = fopen(path, "re");
	if (f == NULL)
		return -errno;
	if (fgets(buf, sizeof(buf), f) == NULL) {
		fclose(f);
		return -EIO;
	}
	fclose(f);
	errno = 0;
	v = strtol(buf, &end, 10);
	if (errno != 0 || end == buf)
		return -EINVAL;
	*out = v;
	return 0;
}

/* First line of a small text file without its newline.  Returns 0 or -errno. */
static int
read_line(const char *path, char *out, size_t len)
{
	FILE *f;

	f = fopen(path, "re");
	if (f == NULL)
		return -errno;
	if (fgets(out, (int)len, f) == NULL)
		out[0] = '\0';
	fclose(f);
	out[strcspn(out, "\n")] = '\0';
	return 0;
}

/* ---- probe children: async-signal-safe code only ------------------------- */

static int
child_fail(struct child_report *rep, enum stage stage, const char *what)
{
	rep->stage = stage;
	rep->errnum = errno;
	rep->what = what;
	return -1;
}

/* Become the agent's host user the way spawn.c does before the jail exists. */
static int
drop_to_agent(const struct doctor_ctx *ctx, struct child_report *rep)
{
	if (setgroups(0, NULL) < 0)
		return child_fail(rep, STAGE_DROP, "setgroups(0, NULL)");
	if (setresgid(ctx->agent_gid, ctx->agent_gid, ctx->agent_gid) < 0)
		return child_fail(rep, STAGE_DROP, "setresgid");
	if (setresuid(ctx->agent_uid, ctx->agent_uid, ctx->agent_uid) < 0)
		return child_fail(rep, STAGE_DROP, "setresuid");
	return 0;
}

/* A new user namespace whose maps the parent writes, as userns.c does for the
 * jail.  (Writing them from here would need dumpable set again after the drop
 * to nobody, exposing this fork of the caller to every nobody process.) */
static int
enter_userns(const struct doctor_ctx *ctx, struct child_report *rep)
{
	char answer = 0;

	if (unshare(CLONE_NEWUSER) < 0)
		return child_fail(rep, STAGE_USERNS, "unshare(CLONE_NEWUSER)");
	if (write(ctx->sync_w, "u", 1) != 1 || read(ctx->sync_r, &answer, 1) != 1 ||
	    answer != 'k') {
		errno = EPERM; /* the parent records the real reason */
		return child_fail(rep, STAGE_USERNS, "writing the uid/gid maps");
	}
	return 0;
}

static int
wait_child(pid_t pid, int *status)
{
	while (waitpid(pid, status, 0) < 0) {
		if (errno != EINTR)
			return -1;
	}
	return 0;
}

static void
child_userns(const struct doctor_ctx *ctx, const void *arg, struct child_report *rep)
{
	(void)enter_userns(ctx, rep);
}

static void
child_ns(const struct doctor_ctx *ctx, const void *arg, struct child_report *rep)
{
	const struct ns_kind *ns = arg;

	if (enter_userns(ctx, rep) < 0)
		return;
	if (unshare(ns->flag) < 0)
		child_fail(rep, STAGE_PROBE, ns->unshare_call);
}

/* Pid 1 of the new pid namespace: the mounts the jail's init makes. */
static void
grandchild_mount(enum mount_kind kind, struct child_report *rep)
{
	struct mount_attr nosuid = {.attr_set = MOUNT_ATTR_NOSUID};

	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		child_fail(rep, STAGE_SETUP, "making / private (MS_REC|MS_PRIVATE)");
		return;
	}
	switch (kind) {
	case MOUNT_PROC:
		if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
			child_fail(rep, STAGE_PROBE, "mount proc on /proc");
		break;
	case MOUNT_SYSFS:
		if (mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY,
			  NULL) < 0)
			child_fail(rep, STAGE_PROBE, "mount sysfs on /sys");
		break;
	case MOUNT_SETATTR:
		if (mount_setattr(AT_FDCWD, "/", AT_RECURSIVE, &nosuid, sizeof(nosuid)) < 0)
			child_fail(rep, STAGE_PROBE, "mount_setattr(/, AT_RECURSIVE, NOSUID)");
		break;
	}
}

static void
child_mount(const struct doctor_ctx *ctx, const void *arg, struct child_report *rep)
{
	const struct probe *p = arg;
	pid_t pid;
	int st;

	if (enter_userns(ctx, rep) < 0)
		return;
	/* A fresh sysfs needs a network namespace owned by our user namespace,
	 * a fresh proc a pid namespace: unshare what the jail has. */
	if (unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID) < 0) {
		child_fail(rep, STAGE_SETUP, "unshare(CLONE_NEWNS|CLONE_NEWNET|CLONE_NEWPID)");
		return;
	}
	pid = fork();
	if (pid < 0) {
		child_fail(rep, STAGE_SETUP, "fork into the new pid namespace");
		return;
	}
	if (pid == 0) {
		grandchild_mount(p->mount, rep);
		_exit(0);
	}
	if (wait_child(pid, &st) == 0 && WIFSIGNALED(st)) {
		rep->stage = STAGE_PROBE;
		rep->what = "pid 1 of the new pid namespace";
		rep->signal = WTERMSIG(st);
	}
}

static void
child_loopback(const struct doctor_ctx *ctx, const void *arg, struct child_report *rep)
{
	struct ifreq ifr;
	int fd;

	if (enter_userns(ctx, rep) < 0)
		return;
	if (unshare(CLONE_NEWNET) < 0) {
		child_fail(rep, STAGE_SETUP, "unshare(CLONE_NEWNET)");
		return;
	}
	/* Only a handle for the interface ioctls; the jail itself uses
	 * netlink and never holds an inet socket. */
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		child_fail(rep, STAGE_SETUP, "socket(AF_INET, SOCK_DGRAM)");
		return;
	}
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, "lo", 3);
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0) {
		child_fail(rep, STAGE_PROBE, "ioctl(SIOCGIFFLAGS, lo)");
	} else {
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
			child_fail(rep, STAGE_PROBE, "ioctl(SIOCSIFFLAGS, lo up)");
		else if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
			child_fail(rep, STAGE_PROBE, "ioctl(SIOCGIFFLAGS, lo)");
		else if (!(ifr.ifr_flags & IFF_UP)) {
			errno = EIO;
			child_fail(rep, STAGE_PROBE, "lo did not come up");
		}
	}
	close(fd);
}

static void
child_nnp(const struct doctor_ctx *ctx, const void *arg, struct child_report *rep)
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		child_fail(rep, STAGE_PROBE, "prctl(PR_SET_NO_NEW_PRIVS)");
		return;
	}
	if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1) {
		errno = EIO;
		child_fail(rep, STAGE_PROBE, "no_new_privs did not stick");
	}
}

/* Load a filter the way the jail does (no_new_privs, every thread).  With
 * NOTIFY, the filter asks for a user-notification listener; its only rule
 * matches a syscall number no architecture has, so it never fires. */
static void
load_filter(bool notify, struct child_report *rep)
{
	struct sock_filter insns[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x7fffffff, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {.len = AJ_ARRAY_SIZE(insns), .filter = insns};
	unsigned long flags = SECCOMP_FILTER_FLAG_TSYNC;
	long r;

	if (!notify) {
		prog.len = 1;
		prog.filter = &insns[3];
	} else {
		/* TSYNC and NEW_LISTENER both claim the return value. */
		flags = SECCOMP_FILTER_FLAG_NEW_LISTENER;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		child_fail(rep, STAGE_PROBE, "prctl(PR_SET_NO_NEW_PRIVS)");
		return;
	}
	r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
	if (r < 0)
		child_fail(rep, STAGE_PROBE,
			   notify ? "seccomp(SET_MODE_FILTER, NEW_LISTENER)"
				  : "seccomp(SET_MODE_FILTER, TSYNC)");
	else if (notify)
		close((int)r);
}

static void
child_seccomp(const struct doctor_ctx *ctx, const void *arg, struct child_report *rep)
{
	load_filter(false, rep);
}

static void
child_seccomp_notify(const struct doctor_ctx *ctx, const void *arg, struct child_report *rep)
{
	load_filter(true, rep);
}

/* ---- running a child ----------------------------------------------------- */

/* The parent's half of enter_userns(): wait until the child has unshared
 * (or exited without doing so), then write its maps with the jail's own
 * writer.  Returns 0 or -errno with DETAIL saying what failed. */
static int
serve_maps(pid_t pid, bool as_agent, const struct doctor_ctx *ctx, int rfd, int wfd, char *detail,
	   size_t len)
{
	uid_t uid = as_agent ? ctx->agent_uid : geteuid();
	gid_t gid = as_agent ? ctx->agent_gid : getegid();
	ssize_t n;
	char c;
	int r;

	do
		n = read(rfd, &c, 1);
	while (n < 0 && errno == EINTR);
	if (n != 1)
		return 0; /* the probe needed no user namespace, or died */
	r = aj_userns_write_maps(pid, uid, gid, detail, len);
	if (write(wfd, r == 0 ? "k" : "n", 1) != 1 && r == 0) {
		r = -errno;
		snprintf(detail, len, "answering the probe: %s", strerror(-r));
	}
	return r;
}

/* Run FN in a forked child, as the agent's user when AS_AGENT and the caller
 * is root.  *OUT is the child's report; the caller's state is unchanged. */
static void
run_child(const struct doctor_ctx *ctx, bool as_agent, child_fn fn, const void *arg,
	  struct child_report *out)
{
	struct child_report *rep;
	char map_detail[sizeof(out->detail)] = "";
	int up[2] = {-1, -1}, down[2] = {-1, -1};
	int st = 0, map_r;
	pid_t pid;

	memset(out, 0, sizeof(*out));
	rep = mmap(NULL, sizeof(*rep), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (rep == MAP_FAILED) {
		child_fail(out, STAGE_RUN, "mmap");
		return;
	}
	memset(rep, 0, sizeof(*rep));
	if (pipe2(up, O_CLOEXEC) < 0 || pipe2(down, O_CLOEXEC) < 0) {
		child_fail(out, STAGE_RUN, "pipe2");
		goto out;
	}
	pid = fork();
	if (pid < 0) {
		child_fail(out, STAGE_RUN, "fork");
		goto out;
	}
	if (pid == 0) {
		struct doctor_ctx mine = *ctx;

		close(up[0]);
		close(down[1]);
		mine.drop = ctx->drop && as_agent;
		mine.sync_w = up[1];
		mine.sync_r = down[0];
		if (!mine.drop || drop_to_agent(&mine, rep) == 0)
			fn(&mine, arg, rep);
		rep->done = true;
		_exit(0);
	}
	close(up[1]);
	close(down[0]);
	up[1] = down[0] = -1;
	map_r = serve_maps(pid, ctx->drop && as_agent, ctx, up[0], down[1], map_detail,
			   sizeof(map_detail));
	/* Unanswered, the child reads EOF instead of waiting for us forever. */
	close(down[1]);
	down[1] = -1;
	/* With SIGCHLD ignored, waitpid() waits for the child and then fails
	 * with ECHILD: the shared report is still complete, so trust it. */
	if (wait_child(pid, &st) == 0 && WIFSIGNALED(st) && !rep->done)
		rep->signal = WTERMSIG(st);
	*out = *rep;
	if (map_r < 0) {
		out->stage = STAGE_USERNS;
		out->errnum = -map_r;
		out->what = NULL;
		snprintf(out->detail, sizeof(out->detail), "%s", map_detail);
	} else if (!out->done && out->signal == 0) {
		out->stage = STAGE_RUN;
		out->what = "the probe process";
		out->errnum = ECHILD;
	}
out:
	for (int i = 0; i < 2; i++) {
		if (up[i] >= 0)
			close(up[i]);
		if (down[i] >= 0)
			close(down[i]);
	}
	munmap(rep, sizeof(*rep));
}

static bool
child_ok(const struct child_report *rep)
{
	return rep->done && rep->errnum == 0 && rep->signal == 0;
}

/* "what: error" for a failed child, in RES->detail. */
static void
describe_failure(const struct doctor_ctx *ctx, const struct child_report *rep, struct result *res)
{
	const char *what = rep->what != NULL ? rep->what : "the probe";

	if (rep->signal == 0 && rep->detail[0] != '\0') {
		set_text(res->detail, sizeof(res->detail), "%s", rep->detail);
		return;
	}
	if (rep->signal == 0 && rep->stage == STAGE_DROP) {
		set_text(res->detail, sizeof(res->detail), "becoming %s (uid %u): %s: %s",
			 ctx->agent_name, (unsigned)ctx->agent_uid, what, strerror(rep->errnum));
		return;
	}
	if (rep->signal == 0) {
		set_text(res->detail, sizeof(res->detail), "%s: %s", what, strerror(rep->errnum));
		return;
	}
	set_text(res->detail, sizeof(res->detail), "%s was killed by signal %d (%s)", what,
		 rep->signal, strsignal(rep->signal));
	/* SIGSYS is how a seccomp filter kills; ours never does in a probe. */
	if (rep->signal == SIGSYS)
		set_text(
			res->fix, sizeof(res->fix),
			"a seccomp filter around the caller (a container?) kills it: run agentjail "
			"outside that sandbox");
}

/* ---- user namespaces ----------------------------------------------------- */

/* Name the knob that refuses user namespaces to this identity. */
static void
explain_userns(int errnum, bool privileged, struct result *res)
{
	long v;

	if (read_long("/proc/sys/user/max_user_namespaces", &v) == 0 && v == 0) {
		set_text(res->fix, sizeof(res->fix),
			 "user namespaces are disabled by user.max_user_namespaces=0: "
			 "`sysctl -w user.max_user_namespaces=15000` (persist it in "
			 "/etc/sysctl.d/)");
		return;
	}
	if (errnum == ENOSPC) {
		set_text(res->fix, sizeof(res->fix),
			 "the user namespace limit is reached: raise `sysctl "
			 "user.max_user_namespaces`");
		return;
	}
	if (errnum == EUSERS) {
		set_text(res->fix, sizeof(res->fix),
			 "the caller is already 32 user namespaces deep: run agentjail from a "
			 "shallower namespace");
		return;
	}
	/* Root has CAP_SYS_ADMIN, which these two sysctls exempt. */
	if (!privileged && read_long("/proc/sys/kernel/unprivileged_userns_clone", &v) == 0 &&
	    v == 0) {
		set_text(res->fix, sizeof(res->fix),
			 "unprivileged user namespaces are off: "
			 "`sysctl -w kernel.unprivileged_userns_clone=1` (persist it in "
			 "/etc/sysctl.d/)");
		return;
	}
	if (!privileged &&
	    read_long("/proc/sys/kernel/apparmor_restrict_unprivileged_userns", &v) == 0 &&
	    v != 0) {
		set_text(res->fix, sizeof(res->fix),
			 "AppArmor restricts unprivileged user namespaces: "
			 "`sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`, or an "
			 "AppArmor "
			 "profile for agentjail with the `userns,` rule");
		return;
	}
	if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) == 2) {
		set_text(res->fix, sizeof(res->fix),
			 "the caller runs under a seccomp filter (a container?) that may refuse "
			 "user namespaces: run agentjail outside it, or allow unshare/clone "
			 "with CLONE_NEWUSER there");
		return;
	}
	if (errnum == EPERM)
		set_text(res->fix, sizeof(res->fix),
			 "no sysctl refuses it: run agentjail outside a chroot, and check the "
			 "LSM (SELinux, AppArmor) denials in the kernel log");
}

static void
probe_userns(const struct doctor_ctx *ctx, const struct probe *p, struct result *res)
{
	struct child_report rep;
	bool as_agent = p->root_only;

	run_child(ctx, as_agent, child_userns, NULL, &rep);
	res->available = child_ok(&rep);
	if (as_agent)
		set_text(res->detail, sizeof(res->detail), "as %s (uid %u)", ctx->agent_name,
			 (unsigned)ctx->agent_uid);
	if (res->available)
		return;
	describe_failure(ctx, &rep, res);
	/* A failed drop already names the user. */
	if (as_agent && rep.stage != STAGE_DROP) {
		char detail[DETAIL_MAX];

		memcpy(detail, res->detail, sizeof(detail));
		set_text(res->detail, sizeof(res->detail), "as %s: %s", ctx->agent_name, detail);
	}
	if (rep.stage == STAGE_DROP)
		set_text(res->fix, sizeof(res->fix),
			 "the user `%s` must exist and be usable; or name another with the "
			 "profile's `user` directive",
			 ctx->agent_name);
	else if (rep.stage == STAGE_USERNS)
		explain_userns(rep.errnum, ctx->root && !as_agent, res);
}

/* The fix for a jail probe that failed before reaching its own layer;
 * returns false when the layer itself failed. */
static bool
explain_prerequisite(const struct doctor_ctx *ctx, const struct child_report *rep,
		     struct result *res)
{
	if (rep->signal != 0)
		return true;
	if (rep->stage == STAGE_PROBE)
		return false;
	if (rep->stage == STAGE_DROP)
		set_text(res->fix, sizeof(res->fix), "see the `user namespaces (agent)` line");
	else if (rep->stage == STAGE_USERNS)
		set_text(res->fix, sizeof(res->fix),
			 "needs user namespaces: see the `user namespaces%s` line",
			 ctx->drop ? " (agent)" : "");
	return true;
}

/* Why unsharing NS failed inside a working user namespace. */
static void
explain_ns(const struct ns_kind *ns, int errnum, struct result *res)
{
	char path[96];
	long v;

	set_text(path, sizeof(path), "/proc/sys/user/%s", ns->max_sysctl);
	if (errnum == EINVAL)
		set_text(res->fix, sizeof(res->fix), "a kernel built with %s=y", ns->config);
	else if (errnum == ENOSPC || (read_long(path, &v) == 0 && v == 0))
		set_text(res->fix, sizeof(res->fix), "raise `sysctl user.%s` (0 disables them)",
			 ns->max_sysctl);
	else if (errnum == EPERM &&
		 read_long("/proc/sys/kernel/apparmor_restrict_unprivileged_userns", &v) == 0 &&
		 v != 0)
		set_text(res->fix, sizeof(res->fix),
			 "AppArmor leaves new user namespaces without capabilities: "
			 "`sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`, or an "
			 "AppArmor "
			 "profile for agentjail with the `userns,` rule");
}

static void
probe_ns(const struct doctor_ctx *ctx, const struct probe *p, struct result *res)
{
	struct child_report rep;

	run_child(ctx, true, child_ns, p->ns, &rep);
	res->available = child_ok(&rep);
	if (res->available)
		return;
	describe_failure(ctx, &rep, res);
	if (!explain_prerequisite(ctx, &rep, res))
		explain_ns(p->ns, rep.errnum, res);
	if (p->need == NEED_PROFILE) {
		size_t n = strlen(res->fix);

		set_text(res->fix + n, sizeof(res->fix) - n, "%s `optional %s` to the profile",
			 n > 0 ? "; or add" : "add", p->opt_out);
	}
}

/* ---- mounts -------------------------------------------------------------- */

static void
probe_mount(const struct doctor_ctx *ctx, const struct probe *p, struct result *res)
{
	struct child_report rep;

	run_child(ctx, true, child_mount, p, &rep);
	res->available = child_ok(&rep);
	if (res->available)
		return;
	describe_failure(ctx, &rep, res);
	if (explain_prerequisite(ctx, &rep, res))
		return;
	switch (p->mount) {
	case MOUNT_PROC:
		/* The kernel lets a user namespace mount proc only where the
		 * whole of the host's proc is already visible. */
		if (rep.errnum == EPERM)
			set_text(res->fix, sizeof(res->fix),
				 "something is mounted over part of /proc (a container runtime "
				 "masking it?): see `findmnt -R /proc`");
		break;
	case MOUNT_SYSFS:
		set_text(res->fix, sizeof(res->fix),
			 "%sor add `optional sysfs` to the profile (the jail then masks "
			 "/sys/class/net instead)",
			 rep.errnum == EPERM ? "something is mounted over part of /sys: see "
					       "`findmnt -R /sys`; "
					     : "");
		break;
	case MOUNT_SETATTR:
		if (rep.errnum == ENOSYS)
			set_text(res->fix, sizeof(res->fix),
				 "the new mount API needs Linux 5.12 or newer");
		break;
	}
}

/* ---- network, no_new_privs ----------------------------------------------- */

static void
probe_loopback(const struct doctor_ctx *ctx, const struct probe *p, struct result *res)
{
	struct child_report rep;

	run_child(ctx, true, child_loopback, NULL, &rep);
	res->available = child_ok(&rep);
	if (res->available)
		return;
	describe_failure(ctx, &rep, res);
	if (!explain_prerequisite(ctx, &rep, res))
		set_text(res->fix, sizeof(res->fix),
			 "a kernel with CONFIG_NET_NS=y and IPv4 (CONFIG_INET=y)");
}

static void
probe_nnp(const struct doctor_ctx *ctx, const struct probe *p, struct result *res)
{
	struct child_report rep;

	run_child(ctx, false, child_nnp, NULL, &rep);
	res->available = child_ok(&rep);
	if (res->available)
		return;
	describe_failure(ctx, &rep, res);
	set_text(res->fix, sizeof(res->fix), "no_new_privs needs Linux 3.5 or newer");
}

/* ---- seccomp ------------------------------------------------------------- */

/* Read-only queries: they change nothing in the calling process. */
static int
seccomp_action_avail(uint32_t action)
{
	if (syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action) < 0)
		return -errno;
	return 0;
}

static void
probe_seccomp(const struct doctor_ctx *ctx, const struct probe *p, struct result *res)
{
	struct child_report rep;
	int mode, r;

	mode = prctl(PR_GET_SECCOMP, 0, 0, 0, 0);
	if (mode < 0) {
		set_text(res->detail, sizeof(res->detail), "prctl(PR_GET_SECCOMP): %s",
			 strerror(errno));
		set_text(res->fix, sizeof(res->fix),
			 "a kernel built with CONFIG_SECCOMP=y and CONFIG_SECCOMP_FILTER=y");
		return;
	}
	r = seccomp_action_avail(SECCOMP_RET_ERRNO);
	if (r < 0) {
		set_text(res->detail, sizeof(res->detail), "SECCOMP_RET_ERRNO: %s", strerror(-r));
		set_text(res->fix, sizeof(res->fix),
			 "a kernel (4.14+) built with CONFIG_SECCOMP_FILTER=y");
		return;
	}
	/* The filter's bad-architecture action: without it libseccomp refuses
	 * to build the jail's filter. */
	r = seccomp_action_avail(SECCOMP_RET_KILL_PROCESS);
	if (r < 0) {
		set_text(res->detail, sizeof(res->detail), "SECCOMP_RET_KILL_PROCESS: %s",
			 strerror(-r));
		set_text(res->fix, sizeof(res->fix), "Linux 4.14 or newer");
		return;
	}
	run_child(ctx, false, child_seccomp, NULL, &rep);
	if (!child_ok(&rep)) {
		describe_failure(ctx, &rep, res);
		if (mode == 2)
			set_text(res->fix, sizeof(res->fix),
				 "the caller's own seccomp filter refuses new filters: run "
				 "agentjail "
				 "outside that sandbox");
		return;
	}
	res->available = true;
	set_text(res->detail, sizeof(res->detail), "errno and kill_process actions%s",
		 mode == 2 ? "; the caller already runs under a seccomp filter" : "");
}

static void
probe_seccomp_notify(const struct doctor_ctx *ctx, const struct probe *p, struct result *res)
{
	struct seccomp_notif_sizes sizes;
	struct child_report rep;
	int r;

	if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sizes) < 0) {
		set_text(res->detail, sizeof(res->detail), "SECCOMP_GET_NOTIF_SIZES: %s",
			 strerror(errno));
		set_text(res->fix, sizeof(res->fix),
			 "Linux 5.0 or newer with CONFIG_SECCOMP_FILTER=y; without it violations "
			 "are refused silently");
		return;
	}
	r = seccomp_action_avail(SECCOMP_RET_USER_NOTIF);
	if (r < 0) {
		set_text(res->detail, sizeof(res->detail), "SECCOMP_RET_USER_NOTIF: %s",
			 strerror(-r));
		set_text(res->fix, sizeof(res->fix), "Linux 5.0 or newer");
		return;
	}
	run_child(ctx, false, child_seccomp_notify, NULL, &rep);
	if (!child_ok(&rep)) {
		describe_failure(ctx, &rep, res);
		if (rep.errnum == EBUSY)
			set_text(res->fix, sizeof(res->fix),
				 "a seccomp filter around the caller already has a listener (a "
				 "container runtime?): run agentjail outside it");
		return;
	}
	res->available = true;
	set_text(res->detail, sizeof(res->detail), "listener works (notif %u bytes, resp %u bytes)",
		 (unsigned)sizes.seccomp_notif, (unsigned)sizes.seccomp_notif_resp);
}

/* ---- landlock ------------------------------------------------------------ */

static void
probe_landlock(const struct doctor_ctx *ctx, const struct probe *p, struct result *res)
{
	char lsm[256];
	long abi;

	/* Only asks for the ABI version: no ruleset is created. */
	abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	if (abi >= 1) {
		res->available = true;
		set_text(res->detail, sizeof(res->detail), "ABI %ld", abi);
		return;
	}
	switch (errno) {
	case EOPNOTSUPP:
		set_text(res->detail, sizeof(res->detail), "built in but disabled at boot");
		if (read_line("/sys/kernel/security/lsm", lsm, sizeof(lsm)) == 0 && lsm[0] != '\0')
			set_text(res->fix, sizeof(res->fix),
				 "add landlock to the lsm= kernel parameter, keeping the active "
				 "ones: lsm=landlock,%s",
				 lsm);
		else
			set_text(res->fix, sizeof(res->fix),
				 "add landlock to the lsm= kernel parameter (keep the modules "
				 "listed "
				 "in /sys/kernel/security/lsm)");
		break;
	case ENOSYS:
		set_text(res->detail, sizeof(res->detail), "not in this kernel");
		set_text(res->fix, sizeof(res->fix),
			 "a kernel (5.13+) built with CONFIG_SECURITY_LANDLOCK=y");
		break;
	default:
		set_text(res->detail, sizeof(res->detail), "landlock_create_ruleset: %s",
			 strerror(errno));
		break;
	}
}

/* ---- cgroup v2 ----------------------------------------------------------- */

/* Undo mountinfo's octal escapes (\040 for a space) in place. */
static void
unescape_mountinfo(char *s)
{
	char *o = s;

	for (; *s != '\0'; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*o++ = (char)(((s[1] - '0') << 6) | ((s[2] - '0') << 3) | (s[3] - '0'));
			s += 3;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
}

/* The first cgroup2 mount point in mountinfo.  Returns 0 or -ENOENT. */
static int
find_cgroup2_mount(char *out, size_t len)
{
	char *line = NULL;
	size_t cap = 0;
	int r = -ENOENT;
	FILE *f;

	f = fopen("/proc/self/mountinfo", "re");
	if (f == NULL)
		return -errno;
	while (r < 0 && getline(&line, &cap, f) > 0) {
		/* id parent major:minor root mountpoint options... - fstype ... */
		char *sep = strstr(line, " - ");
		char *save = NULL, *tok, *mnt = NULL;
		int i;

		if (sep == NULL || strncmp(sep + 3, "cgroup2 ", 8) != 0)
			continue;
		*sep = '\0';
		tok = strtok_r(line, " ", &save);
		for (i = 0; tok != NULL && i < 4; i++) {
			mnt = tok;
			tok = strtok_r(NULL, " ", &save);
		}
		if (i == 4 && tok != NULL) {
			mnt = tok;
			unescape_mountinfo(mnt);
			set_text(out, len, "%s", mnt);
			r = 0;
		}
	}
	free(line);
	fclose(f);
	return r;
}

/* The caller's cgroup v2 path from /proc/self/cgroup's "0::" line. */
static int
own_cgroup2_path(char *out, size_t len)
{
	char line[4096];
	int r = -ENOENT;
	FILE *f;

	f = fopen("/proc/self/cgroup", "re");
	if (f == NULL)
		return -errno;
	while (r < 0 && fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "0::", 3) != 0)
			continue;
		line[strcspn(line, "\n")] = '\0';
		set_text(out, len, "%s", line + 3);
		r = 0;
	}
	fclose(f);
	return r;
}

static void
probe_cgroup2(const struct doctor_ctx *ctx, const struct probe *p, struct result *res)
{
	static const char *const files[] = {"", "/cgroup.procs", "/cgroup.subtree_control"};
	char mnt[1024], own[2048], dir[3072], path[3200], controllers[512], denied[256] = "";
	const char *delegate = ctx->root ? "a writable cgroup2 mount"
					 : "a delegated cgroup: `systemd-run --user --scope "
					   "-p Delegate=yes agentjail ...`";
	struct statfs sf;
	bool unified;
	size_t i;

	unified = statfs("/sys/fs/cgroup", &sf) == 0 && sf.f_type == CGROUP2_SUPER_MAGIC;
	if (unified)
		set_text(mnt, sizeof(mnt), "/sys/fs/cgroup");
	else if (find_cgroup2_mount(mnt, sizeof(mnt)) < 0) {
		set_text(res->detail, sizeof(res->detail), "no cgroup2 mount");
		set_text(res->fix, sizeof(res->fix),
			 "a unified hierarchy: boot with systemd.unified_cgroup_hierarchy=1, or "
			 "mount -t cgroup2 none /sys/fs/cgroup");
		return;
	}
	if (own_cgroup2_path(own, sizeof(own)) < 0) {
		set_text(res->detail, sizeof(res->detail),
			 "cgroup2 at %s, but /proc/self/cgroup has no 0:: line", mnt);
		return;
	}
	set_text(dir, sizeof(dir), "%s%s", mnt, strcmp(own, "/") == 0 ? "" : own);

	/* Creating the jail's own cgroup and moving it there needs all three. */
	for (i = 0; i < AJ_ARRAY_SIZE(files); i++) {
		set_text(path, sizeof(path), "%s%s", dir, files[i]);
		if (faccessat(AT_FDCWD, path, W_OK, AT_EACCESS) < 0) {
			size_t n = strlen(denied);

			set_text(denied + n, sizeof(denied) - n, "%s%s (%s)", n > 0 ? ", " : "",
				 files[i][0] != '\0' ? files[i] + 1 : "the directory",
				 strerror(errno));
		}
	}
	set_text(path, sizeof(path), "%s/cgroup.controllers", dir);
	if (read_line(path, controllers, sizeof(controllers)) < 0)
		controllers[0] = '\0';

	set_text(res->detail, sizeof(res->detail),
		 "cgroup2 at %s%s, own cgroup %s, controllers: %s%s%s", mnt,
		 unified ? "" : " (hybrid: the other controllers are on cgroup v1)", own,
		 controllers[0] != '\0' ? controllers : "none",
		 denied[0] != '\0' ? "; not writable: " : "", denied);
	if (denied[0] != '\0') {
		set_text(res->fix, sizeof(res->fix), "run agentjail in %s", delegate);
		return;
	}
	if (controllers[0] == '\0') {
		if (!unified)
			set_text(res->fix, sizeof(res->fix),
				 "a unified hierarchy, so the controllers move to cgroup v2: boot "
				 "with systemd.unified_cgroup_hierarchy=1");
		else
			set_text(res->fix, sizeof(res->fix),
				 "enable controllers for this cgroup in its parent's "
				 "cgroup.subtree_control, or run agentjail in %s",
				 delegate);
		return;
	}
	res->available = true;
}

/* ---- the table ----------------------------------------------------------- */

static const struct ns_kind ns_mount = {CLONE_NEWNS, "unshare(CLONE_NEWNS)", "CONFIG_NAMESPACES",
					"max_mnt_namespaces"};
static const struct ns_kind ns_pid = {CLONE_NEWPID, "unshare(CLONE_NEWPID)", "CONFIG_PID_NS",
				      "max_pid_namespaces"};
static const struct ns_kind ns_net = {CLONE_NEWNET, "unshare(CLONE_NEWNET)", "CONFIG_NET_NS",
				      "max_net_namespaces"};
static const struct ns_kind ns_ipc = {CLONE_NEWIPC, "unshare(CLONE_NEWIPC)", "CONFIG_IPC_NS",
				      "max_ipc_namespaces"};
static const struct ns_kind ns_uts = {CLONE_NEWUTS, "unshare(CLONE_NEWUTS)", "CONFIG_UTS_NS",
				      "max_uts_namespaces"};
static const struct ns_kind ns_cgroup = {CLONE_NEWCGROUP, "unshare(CLONE_NEWCGROUP)",
					 "CONFIG_CGROUPS", "max_cgroup_namespaces"};

/* In the order the jail applies them; the first missing mandatory layer is
 * the one the verdict names. */
static const struct probe probes[] = {
	{"user namespaces", NEED_MANDATORY, NULL, false, probe_userns, NULL, 0},
	{"user namespaces (agent)", NEED_MANDATORY, NULL, true, probe_userns, NULL, 0},
	{"mount namespace", NEED_MANDATORY, NULL, false, probe_ns, &ns_mount, 0},
	{"pid namespace", NEED_MANDATORY, NULL, false, probe_ns, &ns_pid, 0},
	{"network namespace", NEED_MANDATORY, NULL, false, probe_ns, &ns_net, 0},
	{"ipc namespace", NEED_MANDATORY, NULL, false, probe_ns, &ns_ipc, 0},
	{"uts namespace", NEED_MANDATORY, NULL, false, probe_ns, &ns_uts, 0},
	{"cgroup namespace", NEED_PROFILE, "cgroupns", false, probe_ns, &ns_cgroup, 0},
	{"fresh /proc", NEED_MANDATORY, NULL, false, probe_mount, NULL, MOUNT_PROC},
	{"fresh /sys", NEED_PROFILE, "sysfs", false, probe_mount, NULL, MOUNT_SYSFS},
	{"mount_setattr", NEED_MANDATORY, NULL, false, probe_mount, NULL, MOUNT_SETATTR},
	{"loopback in new netns", NEED_MANDATORY, NULL, false, probe_loopback, NULL, 0},
	{"no_new_privs", NEED_MANDATORY, NULL, false, probe_nnp, NULL, 0},
	{"seccomp filter", NEED_MANDATORY, NULL, false, probe_seccomp, NULL, 0},
	{"seccomp user notify", NEED_OPTIONAL, NULL, false, probe_seccomp_notify, NULL, 0},
	{"landlock", NEED_OPTIONAL, NULL, false, probe_landlock, NULL, 0},
	{"cgroup v2 delegation", NEED_OPTIONAL, NULL, false, probe_cgroup2, NULL, 0},
};

#define N_PROBES AJ_ARRAY_SIZE(probes)

/* ---- the report ---------------------------------------------------------- */

static void
ctx_init(struct doctor_ctx *ctx)
{
	struct passwd pw, *found = NULL;
	char buf[4096];

	memset(ctx, 0, sizeof(*ctx));
	ctx->root = geteuid() == 0;
	ctx->drop = ctx->root;
	if (ctx->root) {
		set_text(ctx->agent_name, sizeof(ctx->agent_name), "%s", AGENT_USER);
		ctx->agent_uid = AGENT_FALLBACK_ID;
		ctx->agent_gid = AGENT_FALLBACK_ID;
		if (getpwnam_r(AGENT_USER, &pw, buf, sizeof(buf), &found) == 0 && found != NULL) {
			ctx->agent_uid = pw.pw_uid;
			ctx->agent_gid = pw.pw_gid;
		}
	} else {
		ctx->agent_uid = geteuid();
		ctx->agent_gid = getegid();
		if (getpwuid_r(ctx->agent_uid, &pw, buf, sizeof(buf), &found) == 0 && found != NULL)
			set_text(ctx->agent_name, sizeof(ctx->agent_name), "%s", pw.pw_name);
		else
			set_text(ctx->agent_name, sizeof(ctx->agent_name), "uid %u",
				 (unsigned)ctx->agent_uid);
	}
	ctx->sync_w = -1;
	ctx->sync_r = -1;
}

/* The one-line verdict; returns whether jails can run at all. */
static bool
verdict(const struct result *res, char *out, size_t len)
{
	char need[128] = "";
	size_t i, n;

	for (i = 0; i < N_PROBES; i++) {
		if (res[i].skipped || res[i].available || probes[i].need != NEED_MANDATORY)
			continue;
		set_text(out, len, "agentjail cannot run jails here: %s", probes[i].name);
		return false;
	}
	for (i = 0; i < N_PROBES; i++) {
		if (res[i].skipped || res[i].available || probes[i].need != NEED_PROFILE)
			continue;
		n = strlen(need);
		set_text(need + n, sizeof(need) - n, "%s`optional %s`", n > 0 ? " and " : "",
			 probes[i].opt_out);
	}
	if (need[0] != '\0')
		set_text(out, len, "agentjail can run jails here, with %s in the profile", need);
	else
		set_text(out, len, "agentjail can run jails here");
	return true;
}

static int
print_text(FILE *fp, const struct doctor_ctx *ctx, const char *kernel, const struct result *res,
	   const char *final)
{
	char detail[DETAIL_MAX * 2];
	size_t i;

	fprintf(fp, "  %-*s %s\n", NAME_WIDTH, "kernel", kernel);
	if (ctx->root)
		fprintf(fp, "  %-*s root; the agent runs as %s (uid %u, gid %u)\n", NAME_WIDTH,
			"caller", ctx->agent_name, (unsigned)ctx->agent_uid,
			(unsigned)ctx->agent_gid);
	else
		fprintf(fp, "  %-*s %s (uid %u), not root; the agent runs as this user\n",
			NAME_WIDTH, "caller", ctx->agent_name, (unsigned)ctx->agent_uid);
	for (i = 0; i < N_PROBES; i++) {
		if (res[i].skipped)
			continue;
		fprintf(fp, "  %-*s %s%s", NAME_WIDTH, probes[i].name,
			res[i].available ? "yes" : "no ",
			probes[i].need == NEED_OPTIONAL ? " (optional)" : "");
		/* Paths from mountinfo and /proc/self/cgroup end up here. */
		aj_log_escape(res[i].detail, detail, sizeof(detail));
		if (detail[0] != '\0')
			fprintf(fp, " \u2014 %s", detail);
		if (!res[i].available && res[i].fix[0] != '\0')
			fprintf(fp, "; fix: %s", res[i].fix);
		fputc('\n', fp);
	}
	fprintf(fp, "%s\n", final);
	return fflush(fp) == 0 && !ferror(fp) ? 0 : -EIO;
}

static int
print_json(FILE *fp, const struct doctor_ctx *ctx, const char *kernel, const struct result *res,
	   const char *final, bool ok)
{
	json_t *root, *layers;
	size_t i;
	int r;

	layers = json_array();
	if (layers == NULL)
		return -ENOMEM;
	for (i = 0; i < N_PROBES; i++) {
		json_t *layer;

		if (res[i].skipped)
			continue;
		layer = json_pack("{s:s, s:b, s:b, s:s?, s:s?, s:s?}", "name", probes[i].name,
				  "available", res[i].available, "mandatory",
				  probes[i].need != NEED_OPTIONAL, "profile_optional",
				  probes[i].opt_out, "detail",
				  res[i].detail[0] != '\0' ? res[i].detail : NULL, "fix",
				  !res[i].available && res[i].fix[0] != '\0' ? res[i].fix : NULL);
		if (layer == NULL || json_array_append_new(layers, layer) < 0) {
			json_decref(layers);
			return -ENOMEM;
		}
	}
	root = json_pack("{s:s, s:b, s:s, s:I, s:o, s:b, s:s}", "kernel", kernel, "root", ctx->root,
			 "agent_user", ctx->agent_name, "agent_uid", (json_int_t)ctx->agent_uid,
			 "layers", layers, "ok", ok, "verdict", final);
	if (root == NULL)
		return -ENOMEM;
	r = json_dumpf(root, fp, JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
	json_decref(root);
	if (r < 0)
		return -EIO;
	fputc('\n', fp);
	return fflush(fp) == 0 && !ferror(fp) ? 0 : -EIO;
}

int
aj_doctor(bool json, void *fp)
{
	struct result res[N_PROBES];
	struct doctor_ctx ctx;
	struct utsname uts;
	char final[256];
	const char *kernel = "unknown";
	bool ok;
	size_t i;
	int r;

	ctx_init(&ctx);
	if (uname(&uts) == 0)
		kernel = uts.release;
	/* Probe everything before printing: the children are forks, and
	 * buffered output must not be in flight while they exist. */
	fflush(fp);
	memset(res, 0, sizeof(res));
	for (i = 0; i < N_PROBES; i++) {
		if (probes[i].root_only && !ctx.root) {
			res[i].skipped = true;
			continue;
		}
		probes[i].run(&ctx, &probes[i], &res[i]);
	}
	ok = verdict(res, final, sizeof(final));
	if (json)
		r = print_json(fp, &ctx, kernel, res, final, ok);
	else
		r = print_text(fp, &ctx, kernel, res, final);
	return ok && r == 0 ? 0 : 1;
}
