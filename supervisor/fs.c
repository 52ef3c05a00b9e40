/*
 * The jail's view of the filesystem.  The host tree is shared (the agent
 * works on the caller's files), but every place where a host service keeps
 * its sockets is replaced by a private, size-limited tmpfs, /proc belongs to
 * the jail's pid namespace with its kernel knobs read-only or masked, /sys
 * shows the jail's own network, and no mount honours setuid bits.
 *
 * Runs in the jail's init, in its own mount namespace, before capabilities
 * are dropped.  Every failure is fatal to the run.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define MNT_SAFE (MS_NOSUID | MS_NODEV)

/* Kernel interfaces the agent may read but never write (as Docker's
 * readonlyPaths). */
static const char *const proc_readonly[] = {
	"/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus", "/proc/fs",
};

/* Files that leak kernel memory or host-wide state: replaced by /dev/null. */
static const char *const proc_masked_files[] = {
	"/proc/kcore",         "/proc/keys",        "/proc/key-users", "/proc/timer_list",
	"/proc/latency_stats", "/proc/sched_debug", "/proc/kallsyms",  "/proc/kpagecount",
	"/proc/kpageflags",    "/proc/kpagecgroup", "/proc/config.gz",
};

/* Directories with hardware and driver state: replaced by an empty tmpfs. */
static const char *const proc_masked_dirs[] = {
	"/proc/acpi",
	"/proc/scsi",
	"/proc/asound",
	"/proc/driver",
};

static bool
is_dir(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int
mount_tmpfs(const char *path, uint64_t size, const char *mode, char *err, size_t errlen)
{
	char opts[96];

	snprintf(opts, sizeof(opts), "size=%" PRIu64 ",mode=%s", size, mode);
	if (mount("tmpfs", path, "tmpfs", MNT_SAFE, opts) < 0)
		return aj_err(err, errlen, -errno, "tmpfs on %s: %s", path, strerror(errno));
	return 0;
}

static int
set_readonly(const char *path)
{
	struct mount_attr attr = {.attr_set = MOUNT_ATTR_RDONLY};
	return mount_setattr(AT_FDCWD, path, AT_RECURSIVE, &attr, sizeof(attr));
}

static int
mkdir_p(const char *path, mode_t mode)
{
	char buf[4096];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int
setup_private_tmpfs(const struct aj_fs_plan *plan, char *err, size_t errlen)
{
	static const struct {
		const char *path;
		const char *mode;
	} dirs[] = {
		{"/tmp", "1777"},     {"/var/tmp", "1777"}, {"/run", "0755"},
		{"/var/run", "0755"}, {"/dev/shm", "1777"},
	};
	const char *xdg = plan->xdg_runtime_dir;
	int r;

	for (size_t i = 0; i < AJ_ARRAY_SIZE(dirs); i++) {
		/* /var/run is usually a symlink to /run, already covered. */
		if (!is_dir(dirs[i].path))
			continue;
		r = mount_tmpfs(dirs[i].path, plan->tmpfs_size, dirs[i].mode, err, errlen);
		if (r < 0)
			return r;
	}
	if (xdg == NULL || xdg[0] != '/')
		return 0;
	/* Under /run it now lives on the private tmpfs: recreate it there so
	 * programs that expect it find an empty one.  Elsewhere, cover it. */
	if (strncmp(xdg, "/run/", 5) == 0) {
		r = mkdir_p(xdg, 0700);
		if (r < 0)
			return aj_err(err, errlen, r, "creating %s: %s", xdg, strerror(-r));
		return 0;
	}
	if (is_dir(xdg))
		return mount_tmpfs(xdg, plan->tmpfs_size, "0700", err, errlen);
	return 0;
}

static int
setup_proc(char *err, size_t errlen)
{

	if (mount("proc", "/proc", "proc", MNT_SAFE | MS_NOEXEC, NULL) < 0)
		return aj_err(err, errlen, -errno, "mount proc on /proc: %s", strerror(errno));
	return 0;
}

static int
mask_proc(char *err, size_t errlen)
{
	for (size_t i = 0; i < AJ_ARRAY_SIZE(proc_readonly); i++) {
		const char *p = proc_readonly[i];
		if (access(p, F_OK) < 0)
			continue;
		if (mount(p, p, NULL, MS_BIND | MS_REC, NULL) < 0 || set_readonly(p) < 0)
			return aj_err(err, errlen, -errno, "read-only %s: %s", p, strerror(errno));
	}
	for (size_t i = 0; i < AJ_ARRAY_SIZE(proc_masked_files); i++) {
		const char *p = proc_masked_files[i];
		if (access(p, F_OK) < 0)
			continue;
		if (mount("/dev/null", p, NULL, MS_BIND, NULL) < 0 || set_readonly(p) < 0)
			return aj_err(err, errlen, -errno, "masking %s: %s", p, strerror(errno));
	}
	for (size_t i = 0; i < AJ_ARRAY_SIZE(proc_masked_dirs); i++) {
		const char *p = proc_masked_dirs[i];
		if (!is_dir(p))
			continue;
		if (mount("tmpfs", p, "tmpfs", MNT_SAFE | MS_NOEXEC | MS_RDONLY,
			  "size=4k,mode=0555") < 0)
			return aj_err(err, errlen, -errno, "masking %s: %s", p, strerror(errno));
	}
	return 0;
}

/* A fresh sysfs lists the network devices of the mounting process's network
 * namespace: only lo.  When the kernel refuses it and the profile allows,
 * the host's network devices are hidden by masking instead. */
static int
setup_sys(const struct aj_fs_plan *plan, enum aj_step *step, char *err, size_t errlen)
{
	static const char *const net_dirs[] = {"/sys/class/net", "/sys/devices/virtual/net"};

	if (mount("sysfs", "/sys", "sysfs", MNT_SAFE | MS_NOEXEC | MS_RDONLY, NULL) == 0)
		return 0;
	if (!plan->sysfs_optional) {
		*step = AJ_STEP_SYSFS;
		return aj_err(err, errlen, -errno, "mount sysfs on /sys: %s", strerror(errno));
	}
	if (!plan->quiet)
		fprintf(stderr,
			"agentjail: notice: a fresh /sys is refused (%s); masking "
			"/sys/class/net instead (profile: optional sysfs)\n",
			strerror(errno));
	for (size_t i = 0; i < AJ_ARRAY_SIZE(net_dirs); i++) {
		if (!is_dir(net_dirs[i]))
			continue;
		if (mount("tmpfs", net_dirs[i], "tmpfs", MNT_SAFE | MS_NOEXEC | MS_RDONLY,
			  "size=4k,mode=0555") < 0) {
			*step = AJ_STEP_MASK;
			return aj_err(err, errlen, -errno, "masking %s: %s", net_dirs[i],
				      strerror(errno));
		}
	}
	return 0;
}

int
aj_fs_setup(const struct aj_fs_plan *plan, enum aj_step *step, char *err, size_t errlen)
{
	struct mount_attr nosuid = {.attr_set = MOUNT_ATTR_NOSUID};
	int r;

	/* Nothing mounted here may propagate back to the host, nor the
	 * reverse: the jail's view is fixed once set up. */
	*step = AJ_STEP_MOUNT_PRIVATE;
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return aj_err(err, errlen, -errno, "mount --make-rprivate /: %s", strerror(errno));

	*step = AJ_STEP_TMPFS;
	r = setup_private_tmpfs(plan, err, errlen);
	if (r < 0)
		return r;

	*step = AJ_STEP_PROC;
	r = setup_proc(err, errlen);
	if (r < 0)
		return r;
	*step = AJ_STEP_MASK;
	r = mask_proc(err, errlen);
	if (r < 0)
		return r;

	r = setup_sys(plan, step, err, errlen);
	if (r < 0)
		return r;

	/* no_new_privs already makes setuid bits inert; nosuid on every mount
	 * is the second, independent layer (THREATS.md #17). */
	*step = AJ_STEP_NOSUID;
	if (mount_setattr(AT_FDCWD, "/", AT_RECURSIVE, &nosuid, sizeof(nosuid)) < 0)
		return aj_err(err, errlen, -errno, "mount_setattr nosuid on /: %s",
			      strerror(errno));
	*step = AJ_STEP_NONE;
	return 0;
}
