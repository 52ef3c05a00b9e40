/*
 * The jail's view of the filesystem.  The host tree is shared (the agent
 * works on the caller's files), but every place where a host service keeps
 * its sockets is replaced by a private, size-limited tmpfs, /dev holds only
 * harmless devices, /proc belongs to the jail's pid namespace with its
 * kernel knobs read-only or masked, /sys shows the jail's own network, the
 * profile locations and the run's records are read-only and cannot be
 * moved away, no mount honours setuid bits, and with `proxy on` the jail's
 * trust bundle (the system's certificates and the broker's CA) is at the
 * usual paths.
 *
 * Runs in the jail's init, in its own mount namespace, before capabilities
 * are dropped.  Every failure is fatal to the run.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "supervisor.h"

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

/* A caller-supplied directory we may create: absolute, no "." or ".."
 * components (so it cannot walk out of the private /run). */
static bool
is_plain_absolute(const char *path)
{
	if (path[0] != '/')
		return false;
	for (const char *p = path; *p != '\0'; p++) {
		if (p[0] == '/' && p[1] == '.' &&
		    (p[2] == '/' || p[2] == '\0' || (p[2] == '.' && (p[3] == '/' || p[3] == '\0'))))
			return false;
	}
	return true;
}

static int
setup_private_tmpfs(const struct aj_fs_plan *plan, char *err, size_t errlen)
{
	static const struct {
		const char *path;
		const char *mode;
	} dirs[] = {
		{"/tmp", "1777"},
		{"/var/tmp", "1777"},
		{"/run", "0755"},
		{"/var/run", "0755"},
	};
	char done[AJ_ARRAY_SIZE(dirs)][4096];
	size_t n_done = 0;
	const char *xdg = plan->xdg_runtime_dir;
	char real[4096];
	int r;

	for (size_t i = 0; i < AJ_ARRAY_SIZE(dirs); i++) {
		bool seen = false;

		/* Cover the real directory: a symlinked /tmp must not leave
		 * the host's in view; /var/run -> /run is covered once. */
		if (realpath(dirs[i].path, real) == NULL || !is_dir(real))
			continue;
		for (size_t j = 0; j < n_done; j++)
			seen = seen || strcmp(done[j], real) == 0;
		if (seen)
			continue;
		r = mount_tmpfs(real, plan->tmpfs_size, dirs[i].mode, err, errlen);
		if (r < 0)
			return r;
		snprintf(done[n_done++], sizeof(done[0]), "%s", real);
	}
	if (xdg == NULL || xdg[0] == '\0')
		return 0;
	if (!is_plain_absolute(xdg))
		return aj_err(
			err, errlen, -EINVAL,
			"XDG_RUNTIME_DIR must be an absolute path without . or .. components");
	/* Under /run it now lives on the private tmpfs: recreate it there so
	 * programs that expect it find an empty one.  Elsewhere, cover it. */
	if (strncmp(xdg, "/run/", 5) == 0) {
		r = mkdir_p(xdg, 0700);
		if (r < 0)
			return aj_err(err, errlen, r, "creating %s: %s", xdg, strerror(-r));
		return 0;
	}
	if (realpath(xdg, real) != NULL && is_dir(real))
		return mount_tmpfs(real, plan->tmpfs_size, "0700", err, errlen);
	return 0;
}

/* A minimal /dev, as bubblewrap's --dev: the harmless character devices
 * bound from the host, a private devpts instance, a private /dev/shm.
 * Everything else (the caller's other terminals, /dev/fuse, /dev/net/tun,
 * kvm, sound, serial lines) is gone. */
static int
setup_dev(const struct aj_fs_plan *plan, char *err, size_t errlen)
{
	static const char *const nodes[] = {"null", "zero", "full", "random", "urandom", "tty"};
	static const struct {
		const char *name;
		const char *target;
	} links[] = {
		{"/dev/fd", "/proc/self/fd"},       {"/dev/stdin", "/proc/self/fd/0"},
		{"/dev/stdout", "/proc/self/fd/1"}, {"/dev/stderr", "/proc/self/fd/2"},
		{"/dev/ptmx", "pts/ptmx"},
	};
	struct mount_attr ro = {.attr_set = MOUNT_ATTR_RDONLY};
	char src[64], dst[64];
	int host, r = 0;

	/* The host's nodes stay reachable through this fd once covered. */
	host = open("/dev", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (host < 0)
		return aj_err(err, errlen, -errno, "open /dev: %s", strerror(errno));
	if (mount("tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "size=64k,mode=0755") < 0) {
		r = aj_err(err, errlen, -errno, "tmpfs on /dev: %s", strerror(errno));
		goto out;
	}
	for (size_t i = 0; i < AJ_ARRAY_SIZE(nodes); i++) {
		int fd;

		snprintf(src, sizeof(src), "/proc/self/fd/%d/%s", host, nodes[i]);
		snprintf(dst, sizeof(dst), "/dev/%s", nodes[i]);
		if (faccessat(host, nodes[i], F_OK, 0) < 0)
			continue;
		fd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
		if (fd < 0 || close(fd) < 0 || mount(src, dst, NULL, MS_BIND, NULL) < 0) {
			r = aj_err(err, errlen, -errno, "binding %s: %s", dst, strerror(errno));
			goto out;
		}
	}
	if (mkdir("/dev/pts", 0755) < 0 || mkdir("/dev/shm", 01777) < 0 ||
	    mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
		  "newinstance,ptmxmode=0666,mode=0620") < 0) {
		r = aj_err(err, errlen, -errno, "devpts on /dev/pts: %s", strerror(errno));
		goto out;
	}
	for (size_t i = 0; i < AJ_ARRAY_SIZE(links); i++) {
		if (symlink(links[i].target, links[i].name) < 0) {
			r = aj_err(err, errlen, -errno, "symlink %s: %s", links[i].name,
				   strerror(errno));
			goto out;
		}
	}
	r = mount_tmpfs("/dev/shm", plan->tmpfs_size, "1777", err, errlen);
	if (r < 0)
		goto out;
	/* Populated: nothing more may be created in /dev itself. */
	if (mount_setattr(AT_FDCWD, "/dev", 0, &ro, sizeof(ro)) < 0)
		r = aj_err(err, errlen, -errno, "read-only /dev: %s", strerror(errno));
out:
	close(host);
	return r;
}

/* The length of the first D components of PATH ("/a/b/c", 2: 4, "/a/b"),
 * or 0 when PATH has no more than D components: a path is not its own
 * ancestor. */
static size_t
ancestor_len(const char *path, unsigned d)
{
	const char *p = path;

	for (unsigned i = 0; i < d; i++) {
		p = strchr(p + 1, '/');
		if (p == NULL)
			return 0;
	}
	return (size_t)(p - path);
}

static bool
is_visible(const char *path)
{
	return path[0] == '/' && access(path, F_OK) == 0;
}

/*
 * Read-only is not enough: an agent that can write a parent directory
 * renames it and puts a forged tree at the old path.  But the kernel
 * refuses to rename or remove a mount point of the caller's mount namespace
 * (EBUSY), so every ancestor of a protected path (but "/") is bound onto
 * itself, writable as it was: the agent's project stays writable, its
 * directories stay where they are.  Shallowest first, each once, before
 * the read-only binds (which would otherwise be copied by the recursive
 * ones, harmlessly but needlessly).
 */
static int
pin_ancestors(const char *const *paths, char *err, size_t errlen)
{
	char dir[4096];
	bool deeper = true;

	for (unsigned d = 1; deeper; d++) {
		deeper = false;
		for (size_t i = 0; paths[i] != NULL; i++) {
			size_t len = is_visible(paths[i]) ? ancestor_len(paths[i], d) : 0;
			bool seen = false;

			if (len == 0 || len >= sizeof(dir))
				continue;
			deeper = true;
			for (size_t j = 0; j < i && !seen; j++)
				seen = is_visible(paths[j]) && ancestor_len(paths[j], d) == len &&
				       strncmp(paths[j], paths[i], len) == 0;
			if (seen)
				continue;
			memcpy(dir, paths[i], len);
			dir[len] = '\0';
			if (mount(dir, dir, NULL, MS_BIND | MS_REC, NULL) < 0)
				return aj_err(err, errlen, -errno, "pinning %s: %s", dir,
					      strerror(errno));
		}
	}
	return 0;
}

/* Profile files and directories the agent could otherwise rewrite for the
 * next run, and the records of this one: read-only inside the jail, and
 * where they are, they stay (pin_ancestors). */
static int
protect_paths(const struct aj_fs_plan *plan, char *err, size_t errlen)
{
	int r;

	if (plan->readonly_paths == NULL)
		return 0;
	r = pin_ancestors(plan->readonly_paths, err, errlen);
	if (r < 0)
		return r;
	for (const char *const *p = plan->readonly_paths; *p != NULL; p++) {
		if (!is_visible(*p))
			continue;
		if (mount(*p, *p, NULL, MS_BIND | MS_REC, NULL) < 0 || set_readonly(*p) < 0)
			return aj_err(err, errlen, -errno, "read-only %s: %s", *p, strerror(errno));
	}
	return 0;
}

/* The whole of the host's regular file REAL (ST its stat), at most MAX
 * bytes, into a new buffer with SPARE bytes more room (*TEXT, *LEN): read
 * before the private tmpfs covers anything. */
static int
read_host_file(const char *real, const struct stat *st, size_t max, size_t spare, char **text,
	       size_t *len, char *err, size_t errlen)
{
	FILE *f;
	int e;

	if ((uint64_t)st->st_size > max)
		return aj_err(err, errlen, -EFBIG, "%s is larger than %zu bytes", real, max);
	f = fopen(real, "re");
	*text = f != NULL ? malloc((size_t)st->st_size + spare + 1) : NULL;
	if (*text == NULL) {
		e = f == NULL ? errno : ENOMEM;
		if (f != NULL)
			fclose(f);
		return aj_err(err, errlen, -e, "reading %s: %s", real, strerror(e));
	}
	*len = fread(*text, 1, (size_t)st->st_size, f);
	fclose(f);
	return 0;
}

/* ---- `proxy on`: the jail's trust --------------------------------------------------- */

/* Where the distributions keep their bundle of trusted certificates (the
 * list Go's crypto/x509 searches); symlinks among them lead to one file. */
static const char *const system_bundles[] = {
	"/etc/ssl/certs/ca-certificates.crt",                /* Debian, Ubuntu, Arch, Gentoo */
	"/etc/pki/tls/certs/ca-bundle.crt",                  /* Fedora, RHEL 6 */
	"/etc/ssl/ca-bundle.pem",                            /* openSUSE */
	"/etc/pki/tls/cacert.pem",                           /* OpenELEC */
	"/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", /* CentOS, RHEL 7+ */
	"/etc/ssl/cert.pem",                                 /* Alpine */
	"/usr/lib/ssl/cert.pem",                             /* OpenSSL's own default */
};

/* A bundle larger than this is not a bundle. */
#define SYSTEM_BUNDLE_MAX (16u << 20)

struct trust {
	char targets[AJ_ARRAY_SIZE(system_bundles)][4096]; /* real paths, each once */
	size_t n_targets;
	char *text; /* the first one's certificates */
	size_t len;
};

static void
trust_free(struct trust *t)
{
	free(t->text);
	t->text = NULL;
}

/* Before the private tmpfs covers anything: the host's bundles, where
 * they are, and the certificates of the first. */
static int
trust_find(struct trust *t, char *err, size_t errlen)
{
	*t = (struct trust){0};
	for (size_t i = 0; i < AJ_ARRAY_SIZE(system_bundles); i++) {
		char real[4096];
		struct stat st;
		bool seen = false;

		if (realpath(system_bundles[i], real) == NULL || stat(real, &st) < 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		for (size_t j = 0; j < t->n_targets; j++)
			seen = seen || strcmp(t->targets[j], real) == 0;
		if (seen)
			continue;
		snprintf(t->targets[t->n_targets++], sizeof(t->targets[0]), "%s", real);
		if (t->text == NULL) {
			int r = read_host_file(real, &st, SYSTEM_BUNDLE_MAX, 0, &t->text, &t->len,
					       err, errlen);

			if (r < 0)
				return r;
		}
	}
	return 0;
}

/* After the private /run: PATH, a file of the jail's own there holding
 * TEXT (LEN bytes), read-only, and bound read-only over the N files
 * TARGETS.  FD (or NULL) gets an fd left open on it to write more (the
 * file's own mount stays writable for that fd only: it was opened before
 * the binds); WHAT names the file in errors. */
static int
jail_file(const char *path, const char *what, const char *text, size_t len,
	  const char (*targets)[4096], size_t n, int *fd, char *err, size_t errlen)
{
	char dir[4096];
	int r, own;

	snprintf(dir, sizeof(dir), "%s", path);
	*strrchr(dir, '/') = '\0';
	if (!is_dir("/run"))
		return aj_err(err, errlen, -ENOENT,
			      "%s lives in the private /run, and this host has no /run directory",
			      what);
	r = mkdir_p(dir, 0755);
	if (r < 0)
		return aj_err(err, errlen, r, "creating %s: %s", dir, strerror(-r));
	own = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (own < 0)
		return aj_err(err, errlen, -errno, "creating %s: %s", path, strerror(errno));
	if (len > 0 && write(own, text, len) != (ssize_t)len)
		r = aj_err(err, errlen, -EIO, "writing %s: %s", path, strerror(errno));
	else if (mount(path, path, NULL, MS_BIND, NULL) < 0 || set_readonly(path) < 0)
		r = aj_err(err, errlen, -errno, "read-only %s: %s", path, strerror(errno));
	for (size_t i = 0; r == 0 && i < n; i++)
		if (mount(path, targets[i], NULL, MS_BIND, NULL) < 0 || set_readonly(targets[i]) < 0)
			r = aj_err(err, errlen, -errno, "%s on %s: %s", what, targets[i],
				   strerror(errno));
	if (r < 0 || fd == NULL)
		close(own);
	else
		*fd = own;
	return r;
}

/* ---- the jail's own name -------------------------------------------------------- */

/* The host's /etc/hosts with the jail's host name added (127.0.1.1 and
 * ::1, as Debian names a host): a program that looks its own name up (git
 * for a committer without an address, getfqdn, sudo) finds it without a
 * DNS query, which the jail's network could not answer and which would
 * be reported as an escape attempt. */
struct hosts {
	char target[1][4096]; /* the host's file, real path */
	size_t n_targets;
	char *text;
	size_t len;
};

#define HOSTS_MAX (1u << 20)

/* Before the private tmpfs: the host's file, if it has one. */
static int
hosts_find(struct hosts *h, const char *name, char *err, size_t errlen)
{
	size_t n, spare = 2 * strlen(name) + 64;
	struct stat st;
	int extra, r;

	*h = (struct hosts){0};
	if (realpath("/etc/hosts", h->target[0]) == NULL || stat(h->target[0], &st) < 0 ||
	    !S_ISREG(st.st_mode))
		return 0;
	r = read_host_file(h->target[0], &st, HOSTS_MAX, spare, &h->text, &n, err, errlen);
	if (r < 0)
		return r;
	extra = snprintf(h->text + n, spare + 1,
			 "%s# agentjail: the jail's own name\n127.0.1.1\t%s\n::1\t%s\n",
			 n > 0 && h->text[n - 1] != '\n' ? "\n" : "", name, name);
	h->len = n + ((size_t)extra < spare ? (size_t)extra : spare);
	h->n_targets = 1;
	return 0;
}

/* `proxy on`: the jail's resolver is the broker's DNS stub on its own
 * 127.0.0.1:53, where a resolver without a resolv.conf looks too; the
 * host's file (and the servers it names, which the jail cannot reach)
 * stays outside. */
static const char jail_resolv_conf[] =
	"# agentjail: the broker's DNS stub (docs/PROFILES.md#tools-that-ignore-the-proxy)\n"
	"nameserver 127.0.0.1\n";

/* Before the private tmpfs: where the host's resolv.conf really is, into
 * TARGET ("" when the host has none). */
static void
resolv_find(char target[4096])
{
	if (realpath("/etc/resolv.conf", target) == NULL)
		target[0] = '\0';
}

/* After the private tmpfs: TARGET, if it lies in a private mount now (a
 * systemd-resolved link into /run), made there so a file can be bound
 * over it. */
static int
resolv_target_make(const char *target, char *err, size_t errlen)
{
	char dir[4096];
	int fd, r;

	if (is_visible(target))
		return 0;
	snprintf(dir, sizeof(dir), "%s", target);
	*strrchr(dir, '/') = '\0';
	r = mkdir_p(dir, 0755);
	if (r < 0)
		return aj_err(err, errlen, r, "creating %s: %s", dir, strerror(-r));
	fd = open(target, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return aj_err(err, errlen, -errno, "creating %s: %s", target, strerror(errno));
	close(fd);
	return 0;
}

/* THREATS.md #5: the filter refuses namespace creation; the limit makes
 * the kernel refuse it too.  Written while init still holds
 * CAP_SYS_RESOURCE in the jail's user namespace, before /proc/sys is made
 * read-only. */
static int
forbid_nested_userns(char *err, size_t errlen)
{
	int fd = open("/proc/sys/user/max_user_namespaces", O_WRONLY | O_CLOEXEC);

	if (fd < 0 || write(fd, "0\n", 2) != 2) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return aj_err(err, errlen, -e, "user.max_user_namespaces=0: %s", strerror(e));
	}
	close(fd);
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
	/* The host's /sys stays, but read-only, with its network hidden. */
	if (set_readonly("/sys") < 0) {
		*step = AJ_STEP_MASK;
		return aj_err(err, errlen, -errno, "read-only /sys: %s", strerror(errno));
	}
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

/* The files of injected secrets, each covered by one empty read-only file
 * of the jail's own: the agent learns neither their text nor their size,
 * and no path reaches what is below (a hard link to the covered name is
 * made across filesystems: EXDEV). */
static int
hide_files(const char *const *paths, char *err, size_t errlen)
{
	char(*targets)[4096];
	size_t n = 0, max = 0;
	int r;

	while (paths[max] != NULL)
		max++;
	if (max == 0)
		return 0;
	targets = calloc(max, sizeof(*targets));
	if (targets == NULL)
		return aj_err(err, errlen, -ENOMEM, "out of memory");
	for (size_t i = 0; i < max; i++)
		if (is_visible(paths[i]) && strlen(paths[i]) < sizeof(*targets))
			snprintf(targets[n++], sizeof(*targets), "%s", paths[i]);
	r = n == 0 ? 0
		   : jail_file(AJ_JAIL_RUN_DIR "/hidden", "an empty file over a secret's", "", 0,
			       (const char(*)[4096])targets, n, NULL, err, errlen);
	free(targets);
	return r;
}

int
aj_fs_setup(const struct aj_fs_plan *plan, enum aj_step *step, char *err, size_t errlen)
{
	struct mount_attr nosuid = {.attr_set = MOUNT_ATTR_NOSUID};
	struct trust trust = {0};
	struct hosts hosts = {0};
	char resolv[1][4096] = {""};
	int r;

	/* Nothing mounted here may propagate back to the host, nor the
	 * reverse: the jail's view is fixed once set up. */
	*step = AJ_STEP_MOUNT_PRIVATE;
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return aj_err(err, errlen, -errno, "mount --make-rprivate /: %s", strerror(errno));

	*step = AJ_STEP_HOSTNAME;
	r = hosts_find(&hosts, plan->hostname, err, errlen);
	if (r == 0 && plan->bundle_fd != NULL) {
		*step = AJ_STEP_TRUST;
		r = trust_find(&trust, err, errlen);
		resolv_find(resolv[0]);
	}
	if (r < 0) {
		free(hosts.text);
		trust_free(&trust);
		return r;
	}
	*step = AJ_STEP_TMPFS;
	r = setup_dev(plan, err, errlen);
	if (r == 0)
		r = setup_private_tmpfs(plan, err, errlen);
	if (r == 0 && hosts.n_targets > 0) {
		*step = AJ_STEP_HOSTNAME;
		r = jail_file(AJ_JAIL_RUN_DIR "/hosts", "the jail's hosts file", hosts.text, hosts.len,
			      hosts.target, hosts.n_targets, NULL, err, errlen);
	}
	if (r == 0 && plan->bundle_fd != NULL) {
		*step = AJ_STEP_TRUST;
		r = jail_file(AJ_JAIL_CA_BUNDLE, "the jail's trust bundle", trust.text, trust.len,
			      trust.targets, trust.n_targets, plan->bundle_fd, err, errlen);
	}
	if (r == 0 && plan->bundle_fd != NULL) {
		*step = AJ_STEP_PROXY;
		if (resolv[0][0] != '\0')
			r = resolv_target_make(resolv[0], err, errlen);
		if (r == 0)
			r = jail_file(AJ_JAIL_RUN_DIR "/resolv.conf", "the jail's resolv.conf",
				      jail_resolv_conf, sizeof(jail_resolv_conf) - 1, resolv,
				      resolv[0][0] != '\0', NULL, err, errlen);
	}
	free(hosts.text);
	trust_free(&trust);
	if (r == 0 && plan->hidden_paths != NULL) {
		*step = AJ_STEP_HIDE;
		r = hide_files(plan->hidden_paths, err, errlen);
	}
	if (r < 0)
		return r;

	*step = AJ_STEP_PROC;
	r = setup_proc(err, errlen);
	if (r < 0)
		return r;
	*step = AJ_STEP_MASK;
	r = forbid_nested_userns(err, errlen);
	if (r == 0)
		r = mask_proc(err, errlen);
	if (r == 0)
		r = protect_paths(plan, err, errlen);
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
