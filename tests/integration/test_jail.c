/*
 * Integration tests: the real `agentjail` binary, real jails.
 *
 * Every check is an attempt made from inside a jail (mostly through the
 * static `try` helper) whose result is asserted exactly; see
 * /work/shared/THREATS.md for the attacks behind them.  Expectations that
 * depend on who runs the suite use agent_uid(): started by root, the agent
 * runs as `nobody`; started by anyone else, as the caller.
 *
 * Suites: jail (isolation, identity, fds/env, lifecycle, exit codes),
 * escape (threat checks), profile_cli (profile check/show errors),
 * practical (real tools work under the default filter), doctor.
 *
 * Nothing here sends traffic anywhere but to loopback listeners the test
 * opened itself.
 */
#include "config.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define TRY aj_test_bin("tests/integration/try")
#define AJ aj_test_bin("agentjail")

/* Self-contained: the shipped profiles may be unreadable to the
 * unprivileged run (see run-suite). */
#define PROFILE_BODY(host)                                                                         \
	"hostname " host "\nuser nobody\nenv keep PATH HOME LANG TERM\nrlimit core 0\n"

/* A PATH that reaches system tools whoever runs the suite (root's PATH may
 * start with directories nobody can read). */
#define SYS_PATH "PATH=/usr/local/bin:/usr/bin:/bin"

static char *scratch;   /* this test's scratch directory */
static char *prof;      /* default self-contained profile */
static char *prof_unix; /* the same with `socket unix allow` */

/* What a test leaves on the host, cleaned up by teardown() even when an
 * assertion ends the test early: background children and host paths
 * outside the scratch dir. */
static pid_t children[8];
static int n_children;
static char *host_paths[4];
static int n_host_paths;

static void
track_child(pid_t pid)
{
	if (n_children < 8)
		children[n_children++] = pid;
}

static void
track_host_path(const char *path)
{
	if (n_host_paths < 4)
		host_paths[n_host_paths++] = strdup(path);
}

static void
setup(void)
{
	scratch = aj_test_scratch();
	prof = aj_test_write_file(scratch, "jail.profile", PROFILE_BODY("agentjail"));
	prof_unix = aj_test_write_file(scratch, "unix.profile",
				       PROFILE_BODY("agentjail") "socket unix allow\n");
}

/* For tests whose jail writes into the scratch dir (as `nobody` under root).
 * Sticky, as /tmp: the profiles in it stay trusted (no one else can rename
 * or remove them). */
static void
setup_writable(void)
{
	setup();
	cr_assert_eq(chmod(scratch, 01777), 0, "chmod %s: %s", scratch, strerror(errno));
}

static void
teardown(void)
{
	/* Only our own children that are still running: waitpid() never
	 * touches anyone else's process. */
	for (int i = 0; i < n_children; i++) {
		if (waitpid(children[i], NULL, WNOHANG) == 0) {
			kill(children[i], SIGKILL);
			waitpid(children[i], NULL, 0);
		}
	}
	n_children = 0;
	for (int i = 0; i < n_host_paths; i++) {
		aj_test_rmrf(host_paths[i]);
		free(host_paths[i]);
	}
	n_host_paths = 0;
	aj_test_rmrf(scratch);
	free(scratch);
	free(prof);
	free(prof_unix);
}

/* ---- helpers --------------------------------------------------------------- */

static uid_t
agent_uid(void)
{
	return geteuid() == 0 ? 65534 : getuid();
}

static gid_t
agent_gid(void)
{
	struct passwd *pw;

	if (geteuid() != 0)
		return getgid();
	pw = getpwnam("nobody");
	cr_assert_not_null(pw, "no user 'nobody' on this host");
	return pw->pw_gid;
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
sleep_ms(int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static char *
path_in(const char *dir, const char *name)
{
	char *p;

	cr_assert_geq(asprintf(&p, "%s/%s", dir, name), 0);
	return p;
}

static char *
write_profile(const char *name, const char *text)
{
	return aj_test_write_file(scratch, name, text);
}

static bool
file_exists(const char *path)
{
	return access(path, F_OK) == 0;
}

/* Failure context: SHOW(r) alone, or "...%s..." SHOWFMT, args, SHOWARGS(r). */
#define SHOWFMT "status %d\n--- stdout:\n%s\n--- stderr:\n%s"
#define SHOWARGS(r) (r).status, (r).out, (r).err
#define SHOW(r) SHOWFMT, SHOWARGS(r)

/* Run `try VERB ARGS...` in a jail with PROFILE. */
#define JAIL_TRY(res, profile, ...) aj_test_jail(res, profile, TRY, __VA_ARGS__, NULL)

/* The jail answers VERB with exactly LINE and STATUS. */
static void
expect_try(const char *profile, const char *verb, const char *line, int status)
{
	struct aj_result r;

	JAIL_TRY(&r, profile, verb);
	cr_assert_eq(r.status, status, "try %s: want status %d; " SHOWFMT, verb, status,
		     SHOWARGS(r));
	cr_assert(aj_test_has_line(r.out, line), "try %s: want line '%s'; " SHOWFMT, verb, line,
		  SHOWARGS(r));
	aj_test_result_free(&r);
}

/* The value after "KEY:" on a line of /proc/PID/status text, or NULL. */
static const char *
status_field(const char *text, const char *key)
{
	size_t n = strlen(key);

	for (const char *p = text; p && *p;) {
		if (strncmp(p, key, n) == 0 && p[n] == ':') {
			p += n + 1;
			while (*p == ' ' || *p == '\t')
				p++;
			return p;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return NULL;
}

/* Split OUT in place at lines "@@"; returns the number of sections. */
static int
split_sections(char *out, char **sec, int max)
{
	int n = 0;
	char *p = out;

	sec[n++] = p;
	while (n < max && (p = strstr(p, "@@\n")) != NULL) {
		if (p != out && p[-1] != '\n') {
			p += 3;
			continue;
		}
		*p = '\0';
		p += 3;
		sec[n++] = p;
	}
	return n;
}

/* Each line of TEXT (modified in place) into LINES; returns the count of
 * non-empty lines. */
static int
split_lines(char *text, char **lines, int max)
{
	int n = 0;
	char *save = NULL;

	for (char *l = strtok_r(text, "\n", &save); l && n < max; l = strtok_r(NULL, "\n", &save))
		lines[n++] = l;
	return n;
}

static bool
has_opt(const char *opts, const char *opt)
{
	size_t n = strlen(opt);

	for (const char *p = opts; p && *p;) {
		const char *c = strchr(p, ',');
		size_t len = c ? (size_t)(c - p) : strlen(p);
		if (len == n && strncmp(p, opt, n) == 0)
			return true;
		p = c ? c + 1 : NULL;
	}
	return false;
}

/* Start ARGV in the background, stdin from /dev/null, output to LOG. */
static pid_t
spawn_bg(const char *const *argv, const char *log)
{
	pid_t pid = fork();

	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		int in = open("/dev/null", O_RDONLY);
		int out = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (in < 0 || out < 0)
			_exit(99);
		dup2(in, 0);
		dup2(out, 1);
		dup2(out, 2);
		execv(argv[0], (char *const *)argv);
		_exit(98);
	}
	track_child(pid);
	return pid;
}

/* `agentjail run --profile prof -- CMD...` in the background. */
static pid_t
spawn_jail_bg(const char *log, const char *const *cmd)
{
	const char *argv[32];
	int n = 0;

	argv[n++] = AJ;
	argv[n++] = "run";
	argv[n++] = "--profile";
	argv[n++] = prof;
	argv[n++] = "--";
	for (; *cmd && n < 31; cmd++)
		argv[n++] = *cmd;
	argv[n] = NULL;
	return spawn_bg(argv, log);
}

/* Wait up to MS for PID to exit; false (and PID killed and reaped) if it
 * did not. */
static bool
wait_exit(pid_t pid, int ms, int *wstatus)
{
	double end = now() + ms / 1000.0;

	for (;;) {
		pid_t r = waitpid(pid, wstatus, WNOHANG);
		if (r == pid)
			return true;
		cr_assert_eq(r, 0, "waitpid(%d): %s", (int)pid, strerror(errno));
		if (now() > end)
			break;
		sleep_ms(10);
	}
	kill(pid, SIGKILL);
	waitpid(pid, wstatus, 0);
	return false;
}

/* Will PID survive SIG and pass it on?  agentjail blocks the signals it
 * forwards as soon as a run starts (they are held during setup and read
 * through a signalfd later), so the SigBlk bit is the sign; SigCgt is
 * accepted too, for a supervisor that installs a handler instead.  The
 * momentary all-signals block inside posix_spawn() only happens after
 * agentjail's own block is in place, so it cannot fool this check. */
static bool
handles_signal(pid_t pid, int sig)
{
	char path[64], buf[4096];
	const char *blk, *cgt;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	blk = status_field(buf, "SigBlk");
	cgt = status_field(buf, "SigCgt");
	return (blk && (strtoull(blk, NULL, 16) & (1ULL << (sig - 1)))) ||
	       (cgt && (strtoull(cgt, NULL, 16) & (1ULL << (sig - 1))));
}

/* Wait up to 5 s until the supervisor PID is watching SIG: from then on a
 * signal is forwarded rather than killing agentjail itself. */
static void
wait_supervisor_ready(pid_t pid, int sig)
{
	double end = now() + 5;

	while (!handles_signal(pid, sig)) {
		int st;
		cr_assert_eq(waitpid(pid, &st, WNOHANG), 0,
			     "agentjail exited early (status 0x%x) before handling signal %d", st,
			     sig);
		cr_assert_lt(now(), end, "agentjail never started holding signal %d", sig);
		sleep_ms(10);
	}
}

static void
wait_file(const char *path, pid_t pid)
{
	double end = now() + 10;

	while (!file_exists(path)) {
		int st;
		cr_assert_eq(waitpid(pid, &st, WNOHANG), 0,
			     "agentjail exited (status 0x%x) before %s", st, path);
		cr_assert_lt(now(), end, "%s never appeared", path);
		sleep_ms(10);
	}
}

/* ---- suite jail: network namespace ------------------------------------------ */

Test(jail, only_loopback_exists_and_is_up, .init = setup, .fini = teardown, .timeout = 60)
{
	struct aj_result r;
	char *sec[8], *lines[256];
	int nsec, n;

	aj_test_jail(&r, prof, "/bin/sh", "-c",
		     "ls -1 /sys/class/net && echo @@ && cat /sys/class/net/lo/flags && echo @@ && "
		     "cat /proc/net/dev && echo @@ && cat /proc/net/route && echo @@ && "
		     "cat /proc/net/ipv6_route",
		     NULL);
	cr_assert_eq(r.status, 0, SHOW(r));
	nsec = split_sections(r.out, sec, 8);
	cr_assert_eq(nsec, 5, "want 5 sections; " SHOW(r));

	/* /sys/class/net: lo and nothing else */
	cr_assert_str_eq(sec[0], "lo\n", "/sys/class/net lists more than lo");

	/* lo is IFF_UP */
	cr_assert_eq(strncmp(sec[1], "0x", 2), 0, "lo flags: '%s'", sec[1]);
	cr_assert(strtoul(sec[1], NULL, 16) & 0x1, "lo is not up: flags %s", sec[1]);

	/* /proc/net/dev: two header lines, then exactly one interface: lo */
	n = split_lines(sec[2], lines, 256);
	cr_assert_eq(n, 3, "/proc/net/dev has %d lines, want 2 headers + lo", n);
	{
		char *iface = lines[2], *colon = strchr(iface, ':');
		cr_assert_not_null(colon, "/proc/net/dev line '%s'", iface);
		*colon = '\0';
		while (*iface == ' ')
			iface++;
		cr_assert_str_eq(iface, "lo");
	}

	/* /proc/net/route: the header and no route at all */
	n = split_lines(sec[3], lines, 256);
	cr_assert_geq(n, 1, "empty /proc/net/route");
	cr_assert_eq(strncmp(lines[0], "Iface", 5), 0, "route header: '%s'", lines[0]);
	cr_assert_eq(n, 1, "IPv4 routes exist in the jail: '%s'", n > 1 ? lines[1] : "");

	/* /proc/net/ipv6_route: loopback-device entries only (::1 among them) */
	n = split_lines(sec[4], lines, 256);
	cr_assert_geq(n, 1, "no IPv6 routes at all: lo has no ::1?");
	{
		bool has_v6_loopback = false;
		for (int i = 0; i < n; i++) {
			const char *dev = strrchr(lines[i], ' ');
			cr_assert_not_null(dev, "ipv6_route line '%s'", lines[i]);
			cr_assert_str_eq(dev + 1, "lo",
					 "IPv6 route on a device other than lo: '%s'", lines[i]);
			if (strncmp(lines[i], "00000000000000000000000000000001 80 ", 36) == 0)
				has_v6_loopback = true;
		}
		cr_assert(has_v6_loopback, "no ::1/128 route on lo");
	}
	aj_test_result_free(&r);
}

/* ---- suite jail: capabilities, no_new_privs, seccomp -------------------------- */

Test(jail, caps_zero_nnp_seccomp, .init = setup, .fini = teardown, .timeout = 60)
{
	static const char *const caps[] = {"CapEff", "CapPrm", "CapInh", "CapBnd", "CapAmb"};
	struct aj_result r;
	const char *v;

	aj_test_jail(&r, prof, "/bin/sh", "-c", "cat /proc/self/status", NULL);
	cr_assert_eq(r.status, 0, SHOW(r));
	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		v = status_field(r.out, caps[i]);
		cr_assert_not_null(v, "no %s in /proc/self/status; " SHOWFMT, caps[i], SHOWARGS(r));
		cr_assert_eq(strtoull(v, NULL, 16), 0ULL, "%s is not zero: %.16s", caps[i], v);
	}
	v = status_field(r.out, "NoNewPrivs");
	cr_assert_not_null(v, SHOW(r));
	cr_assert_eq(atoi(v), 1, "NoNewPrivs: %.4s", v);
	v = status_field(r.out, "Seccomp");
	cr_assert_not_null(v, SHOW(r));
	cr_assert_eq(atoi(v), 2, "Seccomp (2 = filter): %.4s", v);
	aj_test_result_free(&r);
}

/* ---- suite jail: identity --------------------------------------------------- */

Test(jail, identity_uid_gid, .init = setup, .fini = teardown, .timeout = 60)
{
	struct aj_result r;
	char want[64];

	aj_test_jail(&r, prof, "/bin/sh", "-c", "id -u; id -g", NULL);
	cr_assert_eq(r.status, 0, SHOW(r));
	snprintf(want, sizeof(want), "%u\n%u\n", (unsigned)agent_uid(), (unsigned)agent_gid());
	cr_assert_str_eq(r.out, want, "euid %u: " SHOWFMT, (unsigned)geteuid(), SHOWARGS(r));
	aj_test_result_free(&r);
}

Test(jail, hostname_default_and_from_profile, .init = setup, .fini = teardown, .timeout = 60)
{
	struct aj_result r;
	char *foo = write_profile("foo.profile", PROFILE_BODY("foo"));

	aj_test_jail(&r, prof, "uname", "-n", NULL);
	cr_assert_eq(r.status, 0, SHOW(r));
	cr_assert_str_eq(r.out, "agentjail\n", SHOW(r));
	aj_test_result_free(&r);

	aj_test_jail(&r, foo, "uname", "-n", NULL);
	cr_assert_eq(r.status, 0, SHOW(r));
	cr_assert_str_eq(r.out, "foo\n", SHOW(r));
	aj_test_result_free(&r);
	free(foo);
}

/* ---- suite jail: host processes --------------------------------------------- */

Test(jail, host_processes_invisible_and_unkillable, .init = setup, .fini = teardown, .timeout = 60)
{
	const char *sleep_argv[] = {"/bin/sleep", "60", NULL};
	char *log = path_in(scratch, "sleep.log");
	struct aj_result r;
	pid_t host = spawn_bg(sleep_argv, log);
	bool saw_init = false, saw_self = false;
	int count = 0, st;
	char *save = NULL;

	JAIL_TRY(&r, prof, "procs");
	cr_assert_eq(r.status, 0, SHOW(r));
	cr_assert_eq(strncmp(r.out, "procs", 5), 0, SHOW(r));
	for (char *tok = strtok_r(r.out + 5, " \n", &save); tok;
	     tok = strtok_r(NULL, " \n", &save)) {
		char *colon = strchr(tok, ':');
		cr_assert_not_null(colon, "procs token '%s'", tok);
		*colon = '\0';
		count++;
		if (strcmp(tok, "1") == 0)
			saw_init = true;
		if (strcmp(colon + 1, "try") == 0)
			saw_self = true;
		cr_assert_str_neq(colon + 1, "sleep", "host sleep visible in the jail as pid %s",
				  tok);
	}
	cr_assert(saw_init, "no pid 1 in the jail's /proc");
	cr_assert(saw_self, "try does not see itself");
	cr_assert_leq(count, 3, "more processes than init and the agent are visible: %d", count);
	aj_test_result_free(&r);

	JAIL_TRY(&r, prof, "kill-all");
	cr_assert(r.status == 0 || r.status == 1, "try kill-all: " SHOW(r));
	cr_assert(aj_test_has_line(r.out, "kill-all ok") ||
			  aj_test_has_line(r.out, "kill-all ESRCH"),
		  SHOW(r));
	aj_test_result_free(&r);
	sleep_ms(50);
	cr_assert_eq(waitpid(host, &st, WNOHANG), 0, "the host sleep died (status 0x%x)", st);
	cr_assert_eq(kill(host, 0), 0, "the host sleep is gone: %s", strerror(errno));

	kill(host, SIGKILL);
	waitpid(host, &st, 0);
	free(log);
}

/* ---- suite jail: fds, environment, cwd -------------------------------------- */

Test(jail, leaked_fd_is_closed, .init = setup, .fini = teardown, .timeout = 60)
{
	char *leak_path = path_in(scratch, "leaked-file");
	/* deliberately no O_CLOEXEC; harness clears it anyway for keep_fd */
	int fd = open(leak_path, O_CREAT | O_RDWR, 0600);
	const char *argv1[] = {AJ, "run", "--profile", prof, "--", TRY, "fds", NULL};
	const char *argv2[] = {AJ, "run", "--profile", prof, "--", TRY, "fd-links", NULL};
	struct aj_result r;

	cr_assert_geq(fd, 0, "open %s: %s", leak_path, strerror(errno));
	aj_test_exec(argv1, fd, &r);
	cr_assert_eq(r.status, 0, SHOW(r));
	cr_assert_str_eq(r.out, "fds 0 1 2 3\n", "leaked fd %d: " SHOWFMT, fd, SHOWARGS(r));
	aj_test_result_free(&r);

	aj_test_exec(argv2, fd, &r);
	cr_assert_eq(r.status, 0, SHOW(r));
	cr_assert_not_null(strstr(r.out, " 3:socket:["), "fd 3 is not a socket: " SHOW(r));
	cr_assert_null(strstr(r.out, "leaked-file"),
		       "the leaked file is open in the jail: " SHOW(r));
	cr_assert_not_null(strstr(r.out, " 0:/dev/null"), "stdin is not /dev/null: " SHOW(r));
	aj_test_result_free(&r);
	close(fd);
	free(leak_path);
}

Test(jail, broker_fd_is_not_a_directory, .init = setup, .fini = teardown, .timeout = 60)
{
	/* runc CVE-2024-21626: an inherited fd must not be a way into the host
	 * tree.  The only inherited fd is the broker socket. */
	struct aj_result r;

	aj_test_jail(&r, prof, TRY, "fchdir", "3", NULL);
	cr_assert_eq(r.status, 1, SHOW(r));
	cr_assert(aj_test_has_line(r.out, "fchdir ENOTDIR"), SHOW(r));
	aj_test_result_free(&r);
}

/* Issue 9.3: a socket answers network ioctls (SIOCGIFCONF, SIOCGIFNAME,
 * SIOCGIFHWADDR) from the namespace it was made in.  Made by the
 * supervisor, the door listed the host's interfaces and MAC addresses;
 * made by the jail's init, every descriptor the agent holds knows only lo.
 * (The host here has more than lo: eth0 at least, or the check is idle.) */
Test(jail, no_descriptor_shows_the_host_network, .init = setup, .fini = teardown, .timeout = 60)
{
	struct aj_result r;
	const char *line;
	int lo_lines = 0;

	aj_test_jail(&r, prof, TRY, "net-ifs", NULL);
	cr_assert_eq(r.status, 0, SHOW(r));
	cr_assert(aj_test_has_line(r.out, "net-ifs 3 held"), "the door is not fd 3: " SHOW(r));
	for (line = r.out; *line != '\0';
	     line += strcspn(line, "\n") + (line[strcspn(line, "\n")] != '\0')) {
		char one[128], what[16], name[32];
		int fd;

		snprintf(one, sizeof(one), "%.*s", (int)strcspn(line, "\n"), line);
		if (sscanf(one, "net-ifs %d %15s %31s", &fd, what, name) != 3)
			continue;
		cr_assert_str_eq(name, "lo", "fd %d shows an interface of the host (%s)\n" SHOWFMT,
				 fd, name, SHOWARGS(r));
		lo_lines++;
	}
	/* The ioctls do answer on the door: the check above saw something. */
	cr_assert(aj_test_has_line(r.out, "net-ifs 3 if lo"), SHOW(r));
	cr_assert_gt(lo_lines, 0, SHOW(r));
	aj_test_result_free(&r);
}

Test(jail, broker_fd_refuses_openat, .init = setup, .fini = teardown, .timeout = 60)
{
	struct aj_result r;

	aj_test_jail(&r, prof, TRY, "openat", "3", "etc", NULL);
	cr_assert_eq(r.status, 1, SHOW(r));
	cr_assert(aj_test_has_line(r.out, "openat ENOTDIR"), SHOW(r));
	aj_test_result_free(&r);
}

Test(jail, secret_env_does_not_reach_cmd, .init = setup, .fini = teardown, .timeout = 60)
{
	struct aj_result r;

	cr_assert_eq(setenv("AJ_SECRET_TOKEN", "hunter2", 1), 0);
	aj_test_jail(&r, prof, "/usr/bin/env", NULL);
	cr_assert_eq(r.status, 0, SHOW(r));
	cr_assert_null(strstr(r.out, "AJ_SECRET_TOKEN"), "secret name leaked: " SHOW(r));
	cr_assert_null(strstr(r.out, "hunter2"), "secret value leaked: " SHOW(r));
	cr_assert(aj_test_has_line(r.out, "AGENTJAIL_FD=3"), SHOW(r));
	cr_assert(aj_test_has_line(r.out, "AGENTJAIL=1"), SHOW(r));
	aj_test_result_free(&r);
}

Test(jail, cwd_is_kept_when_visible, .init = setup, .fini = teardown, .timeout = 60)
{
	char real[PATH_MAX], want[PATH_MAX + 16];
	struct aj_result r;

	cr_assert_not_null(realpath(scratch, real));
	cr_assert_eq(chdir(scratch), 0, "chdir %s: %s", scratch, strerror(errno));
	JAIL_TRY(&r, prof, "readlink", "/proc/self/cwd");
	cr_assert_eq(r.status, 0, SHOW(r));
	snprintf(want, sizeof(want), "readlink %s\n", real);
	cr_assert_str_eq(r.out, want, SHOW(r));
	cr_assert_null(strstr(r.err, "not visible"), SHOW(r));
	aj_test_result_free(&r);
}

Test(jail, cwd_in_host_tmp_is_not_reachable, .init = setup, .fini = teardown, .timeout = 60)
{
	char dir[] = "/tmp/aj-it-cwd-XXXXXX";
	struct aj_result r;

	cr_assert_not_null(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
	track_host_path(dir);
	chmod(dir, 0755);
	cr_assert_eq(chdir(dir), 0);
	JAIL_TRY(&r, prof, "readlink", "/proc/self/cwd");
	cr_assert_eq(chdir("/"), 0);
	rmdir(dir);
	cr_assert_eq(r.status, 0, SHOW(r));
	cr_assert_str_eq(r.out, "readlink /\n", "host /tmp dir reachable as cwd: " SHOW(r));
	cr_assert_not_null(strstr(r.err, "not visible"), "no notice about the cwd: " SHOW(r));
	aj_test_result_free(&r);
}

/* ---- suite jail: exit codes and signals ------------------------------------- */

Test(jail, exit_status_propagates, .init = setup, .fini = teardown, .timeout = 60)
{
	struct aj_result r;

	aj_test_jail(&r, prof, "/bin/sh", "-c", "exit 42", NULL);
	cr_assert_eq(r.status, 42, SHOW(r));
	aj_test_result_free(&r);

	aj_test_jail(&r, prof, "/bin/true", NULL);
	cr_assert_eq(r.status, 0, SHOW(r));
	aj_test_result_free(&r);
}

Test(jail, death_by_signal_is_128_plus_n, .init = setup, .fini = teardown, .timeout = 60)
{
	struct aj_result r;

	aj_test_jail(&r, prof, "/bin/sh", "-c", "kill -TERM $$", NULL);
	cr_assert_eq(r.status, 143, SHOW(r));
	aj_test_result_free(&r);
}

Test(jail, missing_command_is_127, .init = setup, .fini = teardown, .timeout = 60)
{
	struct aj_result r;

	aj_test_jail(&r, prof, "/nonexistent-aj-dir/aj-no-such-cmd", NULL);
	cr_assert_eq(r.status, 127, SHOW(r));
	cr_assert_not_null(strstr(r.err, "aj-no-such-cmd"), SHOW(r));
	aj_test_result_free(&r);

	/* Looked up along PATH. */
	cr_assert_eq(setenv("PATH", "/usr/local/bin:/usr/bin:/bin", 1), 0);
	aj_test_jail(&r, prof, "aj-no-such-cmd-4711", NULL);
	cr_assert_eq(r.status, 127, SHOW(r));
	cr_assert_not_null(strstr(r.err, "aj-no-such-cmd-4711: command not found"), SHOW(r));
	aj_test_result_free(&r);

	/* A PATH directory the agent cannot search (root's PATH seen by
	 * `nobody`) makes execvp report EACCES; a shell says "not found",
	 * and so does agentjail. */
	{
		char *locked = path_in(scratch, "locked");
		char *path_env;

		cr_assert_eq(mkdir(locked, 0), 0, "mkdir: %s", strerror(errno));
		cr_assert_geq(asprintf(&path_env, "%s:/usr/bin:/bin", locked), 0);
		cr_assert_eq(setenv("PATH", path_env, 1), 0);
		aj_test_jail(&r, prof, "aj-no-such-cmd-4711", NULL);
		cr_assert_eq(r.status, 127, SHOW(r));
		aj_test_result_free(&r);
		rmdir(locked);
		free(path_env);
		free(locked);
	}
}

Test(jail, non_executable_is_126, .init = setup, .fini = teardown, .timeout = 60)
{
	char *path = aj_test_write_file(scratch, "notexec.sh", "#!/bin/sh\necho ran\n");
	struct aj_result r;

	cr_assert_eq(chmod(path, 0644), 0);
	aj_test_jail(&r, prof, path, NULL);
	cr_assert_eq(r.status, 126, SHOW(r));
	cr_assert_not_null(strstr(r.err, "notexec.sh"), SHOW(r));
	cr_assert_null(strstr(r.out, "ran"), SHOW(r));
	aj_test_result_free(&r);
	free(path);
}

static void
expect_forwarded(int sig, int want)
{
	const char *cmd[] = {"sleep", "30", NULL};
	char *log = path_in(scratch, "bg.log");
	pid_t pid = spawn_jail_bg(log, cmd);
	double t0;
	int st;

	wait_supervisor_ready(pid, sig);
	t0 = now();
	cr_assert_eq(kill(pid, sig), 0);
	cr_assert(wait_exit(pid, 5000, &st), "agentjail still running 5 s after signal %d", sig);
	cr_assert_lt(now() - t0, 5.0);
	{
		char *text = aj_test_slurp_if_exists(log);
		cr_assert(WIFEXITED(st),
			  "agentjail itself died of signal %d (not forwarded); log: %s",
			  WIFSIGNALED(st) ? WTERMSIG(st) : -1, text);
		cr_assert_eq(WEXITSTATUS(st), want, "signal %d: log: %s", sig, text);
		free(text);
	}
	free(log);
}

Test(jail, sigterm_to_supervisor_is_143, .init = setup, .fini = teardown, .timeout = 60)
{
	expect_forwarded(SIGTERM, 143);
}

Test(jail, sigint_to_supervisor_is_130, .init = setup, .fini = teardown, .timeout = 60)
{
	expect_forwarded(SIGINT, 130);
}

Test(jail, sigusr1_reaches_agent_trap, .init = setup_writable, .fini = teardown, .timeout = 60)
{
	char *ready = path_in(scratch, "ready");
	char *log = path_in(scratch, "bg.log");
	char *script;
	pid_t pid;
	int st;

	cr_assert_geq(asprintf(&script, "trap 'exit 7' USR1; : > '%s'; while :; do sleep 0.1; done",
			       ready),
		      0);
	{
		const char *cmd[] = {"/bin/sh", "-c", script, NULL};
		pid = spawn_jail_bg(log, cmd);
	}
	wait_file(ready, pid);
	wait_supervisor_ready(pid, SIGUSR1);
	cr_assert_eq(kill(pid, SIGUSR1), 0);
	cr_assert(wait_exit(pid, 5000, &st), "agentjail still running 5 s after SIGUSR1");
	cr_assert(WIFEXITED(st), "agentjail died of signal %d",
		  WIFSIGNALED(st) ? WTERMSIG(st) : -1);
	cr_assert_eq(WEXITSTATUS(st), 7);
	free(script);
	free(ready);
	free(log);
}

/* ---- suite jail: timeout ------------------------------------------------------ */

Test(jail, timeout_kills_with_124, .init = setup, .fini = teardown, .timeout = 60)
{
	const char *argv[] = {AJ,    "run", "--profile", prof, "--timeout",
			      "0.5", "--",  "sleep",     "30", NULL};
	struct aj_result r;
	double t0 = now(), dt;

	aj_test_exec(argv, -1, &r);
	dt = now() - t0;
	cr_assert_eq(r.status, 124, SHOW(r));
	cr_assert_lt(dt, 5.0, "took %.2fs", dt);
	cr_assert_geq(dt, 0.4, "killed before the timeout: %.2fs", dt);
	cr_assert_not_null(strstr(r.err, "timeout"), SHOW(r));
	aj_test_result_free(&r);
}

Test(jail, bad_timeout_is_usage_error, .init = setup_writable, .fini = teardown, .timeout = 60)
{
	char *marker = path_in(scratch, "ran");
	const char *argv[] = {AJ,    "run", "--profile",  prof,   "--timeout",
			      "abc", "--",  "/bin/touch", marker, NULL};
	struct aj_result r;

	aj_test_exec(argv, -1, &r);
	cr_assert_eq(r.status, 2, SHOW(r));
	cr_assert_not_null(strstr(r.err, "--timeout"), SHOW(r));
	cr_assert(!file_exists(marker), "the command ran despite the usage error");
	aj_test_result_free(&r);
	free(marker);
}

/* ---- suite jail: the supervisor's death takes the jail with it ---------------- */

/* The jailed command is `sleep 3171.5`: host-wide, by /proc, the processes
 * with that argument (argv[1]) are the jail's. */
#define MARKER "3171.5"
#define MARKERS_MAX 16

Test(jail, sigkill_of_supervisor_leaves_nothing, .init = setup, .fini = teardown, .timeout = 60)
{
	const char *cmd[] = {"sleep", MARKER, NULL};
	char *log = path_in(scratch, "bg.log");
	pid_t pids[MARKERS_MAX], aj;
	double end;
	int n, st;

	cr_assert_eq(aj_test_procs_with_arg(MARKER, pids, MARKERS_MAX), 0,
		     "a 'sleep " MARKER "' is already running");
	aj = spawn_jail_bg(log, cmd);
	for (end = now() + 5; (n = aj_test_procs_with_arg(MARKER, pids, MARKERS_MAX)) == 0;
	     sleep_ms(10)) {
		if (now() > end || waitpid(aj, &st, WNOHANG) != 0) {
			char *text = aj_test_slurp_if_exists(log);
			kill(aj, SIGKILL);
			waitpid(aj, &st, 0);
			cr_assert_fail("the jailed sleep never appeared; log: %s", text);
		}
	}
	cr_assert_eq(n, 1, "%d marker processes", n);
	cr_assert_eq(kill(aj, SIGKILL), 0);
	cr_assert_eq(waitpid(aj, &st, 0), aj);
	for (end = now() + 5;
	     (n = aj_test_procs_with_arg(MARKER, pids, MARKERS_MAX)) > 0 && now() < end;)
		sleep_ms(20);
	for (int i = 0; i < n && i < MARKERS_MAX; i++)
		kill(pids[i], SIGKILL);
	cr_assert_eq(n, 0, "the jailed sleep (pid %d) outlived the supervisor by 5 s",
		     n ? (int)pids[0] : 0);
	free(log);
}

/* ---- suite escape: egress ---------------------------------------------------- */

static int
loopback_listener(int type, int *port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0, "socket: %s", strerror(errno));
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "bind: %s", strerror(errno));
	if (type == SOCK_STREAM)
		cr_assert_eq(listen(fd, 8), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	*port = ntohs(sa.sin_port);
	return fd;
}

/* Wait up to 1 s for FD to become readable (a control attempt's arrival). */
static bool
readable(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	return poll(&p, 1, 1000) == 1;
}

Test(escape, tcp_to_host_loopback_fails, .init = setup, .fini = teardown, .timeout = 60)
{
	struct aj_result r;
	char port[16];
	int p, l = loopback_listener(SOCK_STREAM, &p), c;

	snprintf(port, sizeof(port), "%d", p);
	JAIL_TRY(&r, prof, "connect-tcp", "127.0.0.1", port);
	cr_assert_eq(r.status, 1, SHOW(r));
	cr_assert(aj_test_has_line(r.out, "connect-tcp EPERM"), SHOW(r));
	aj_test_result_free(&r);
	cr_assert_eq(accept4(l, NULL, NULL, SOCK_CLOEXEC), -1, "the listener saw a connection");
	cr_assert_eq(errno, EAGAIN, "accept: %s", strerror(errno));

	/* Control: the same attempt from the host does arrive. */
	{
		const char *argv[] = {TRY, "connect-tcp", "127.0.0.1", port, NULL};
		aj_test_exec(argv, -1, &r);
		cr_assert(aj_test_has_line(r.out, "connect-tcp ok"), "control: " SHOW(r));
		aj_test_result_free(&r);
	}
	cr_assert(readable(l), "control connection never arrived");
	c = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	cr_assert_geq(c, 0, "control accept: %s", strerror(errno));
	close(c);
	close(l);
}

Test(escape, udp_to_host_loopback_fails, .init = setup, .fini = teardown, .timeout = 60)
{
	struct aj_result r;
	char port[16], buf[16];
	int p, u = loopback_listener(SOCK_DGRAM, &p);

	snprintf(port, sizeof(port), "%d", p);
	JAIL_TRY(&r, prof, "sendto-udp", "127.0.0.1", port);
	cr_assert_eq(r.status, 1, SHOW(r));
	cr_assert(aj_test_has_line(r.out, "sendto-udp EPERM"), SHOW(r));
	aj_test_result_free(&r);
	cr_assert_eq(recv(u, buf, sizeof(buf), 0), -1, "the UDP socket got a datagram");
	cr_assert_eq(errno, EAGAIN, "recv: %s", strerror(errno));

	{
		const char *argv[] = {TRY, "sendto-udp", "127.0.0.1", port, NULL};
		aj_test_exec(argv, -1, &r);
		cr_assert(aj_test_has_line(r.out, "sendto-udp ok"), "control: " SHOW(r));
		aj_test_result_free(&r);
	}
	cr_assert(readable(u), "control datagram never arrived");
	cr_assert_eq(recv(u, buf, sizeof(buf), 0), 1);
	close(u);
}

/* ---- suite escape: sockets --------------------------------------------------- */

#define EXPECT_TRY(suite, name, verb, line, status)                                                \
	Test(suite, name, .init = setup, .fini = teardown, .timeout = 60)                          \
	{                                                                                          \
		expect_try(prof, verb, line, status);                                              \
	}

EXPECT_TRY(escape, socket_inet_eperm, "socket-inet", "socket-inet EPERM", 1)
EXPECT_TRY(escape, socket_inet_udp_eperm, "socket-inet-udp", "socket-inet-udp EPERM", 1)
EXPECT_TRY(escape, socket_inet6_eperm, "socket-inet6", "socket-inet6 EPERM", 1)
EXPECT_TRY(escape, socket_raw_eperm, "socket-raw", "socket-raw EPERM", 1)
EXPECT_TRY(escape, socket_packet_eperm, "socket-packet", "socket-packet EPERM", 1)
EXPECT_TRY(escape, socket_netlink_eperm, "socket-netlink", "socket-netlink EPERM", 1)
EXPECT_TRY(escape, socket_netlink_audit_eperm, "socket-netlink-audit", "socket-netlink-audit EPERM",
	   1)
EXPECT_TRY(escape, socket_vsock_eperm, "socket-vsock", "socket-vsock EPERM", 1)
EXPECT_TRY(escape, socket_alg_eperm, "socket-alg", "socket-alg EPERM", 1)
EXPECT_TRY(escape, socket_unix_eperm_by_default, "socket-unix", "socket-unix EPERM", 1)
EXPECT_TRY(escape, socketpair_unix_works, "socketpair-unix", "socketpair-unix ok", 0)
EXPECT_TRY(escape, io_uring_setup_eperm, "io_uring_setup", "io_uring_setup EPERM", 1)

Test(escape, socket_unix_allowed_by_profile, .init = setup, .fini = teardown, .timeout = 60)
{
	expect_try(prof_unix, "socket-unix", "socket-unix ok", 0);
	/* Network families stay denied whatever the profile says about unix. */
	expect_try(prof_unix, "socket-inet", "socket-inet EPERM", 1);
	expect_try(prof_unix, "socket-netlink", "socket-netlink EPERM", 1);
}

/* Listen on the unix socket PATH (or "@name": abstract). */
static int
unix_listener(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	socklen_t len;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0);
	if (path[0] == '@') {
		strncpy(sa.sun_path + 1, path + 1, sizeof(sa.sun_path) - 2);
		len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
	} else {
		strncpy(sa.sun_path, path, sizeof(sa.sun_path) - 1);
		len = sizeof(sa);
	}
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, len), 0, "bind %s: %s", path,
		     strerror(errno));
	if (path[0] != '@')
		chmod(path, 0777); /* so only the jail's view can stop the agent */
	cr_assert_eq(listen(fd, 8), 0);
	return fd;
}

/* The jail (default profile) gets DENIED, with unix sockets allowed gets
 * ALLOWED; the listener sees nothing; the same connect from the host does
 * arrive. */
static void
check_unix_unreachable(const char *path, const char *denied, const char *allowed)
{
	int l = unix_listener(path), c;
	struct aj_result r;

	JAIL_TRY(&r, prof, "connect-unix", path);
	cr_assert_eq(r.status, 1, SHOW(r));
	cr_assert(aj_test_has_line(r.out, denied), "%s (default profile): " SHOWFMT, path,
		  SHOWARGS(r));
	aj_test_result_free(&r);

	JAIL_TRY(&r, prof_unix, "connect-unix", path);
	cr_assert_eq(r.status, 1, SHOW(r));
	cr_assert(aj_test_has_line(r.out, allowed), "%s (socket unix allow): " SHOWFMT, path,
		  SHOWARGS(r));
	aj_test_result_free(&r);

	cr_assert_eq(accept4(l, NULL, NULL, SOCK_CLOEXEC), -1, "%s saw a connection", path);
	cr_assert_eq(errno, EAGAIN, "accept: %s", strerror(errno));

	{
		const char *argv[] = {TRY, "connect-unix", path, NULL};
		aj_test_exec(argv, -1, &r);
		cr_assert(aj_test_has_line(r.out, "connect-unix ok"), "control: " SHOW(r));
		aj_test_result_free(&r);
	}
	c = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	cr_assert_geq(c, 0, "control accept on %s: %s", path, strerror(errno));
	close(c);
	close(l);
}

/* socket(AF_UNIX) is refused, so a datagram socketpair must be too: its
 * sockets could sendto() any host socket path (a syslog /dev/log, a
 * daemon's datagram socket) in a directory the jail can see. */
Test(escape, datagram_socketpair_cannot_reach_host_socket, .init = setup, .fini = teardown,
     .timeout = 60)
{
	char *path = path_in(scratch, "dgram.sock");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int l = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct aj_result r;
	char buf[8];

	cr_assert_geq(l, 0);
	strncpy(sa.sun_path, path, sizeof(sa.sun_path) - 1);
	cr_assert_eq(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0, "bind: %s", strerror(errno));
	chmod(path, 0777);

	JAIL_TRY(&r, prof_unix, "dgram-pair-sendto", path);
	cr_assert(aj_test_has_line(r.out, "dgram-pair-sendto EPERM"), SHOW(r));
	aj_test_result_free(&r);
	JAIL_TRY(&r, prof, "dgram-pair-sendto", path);
	cr_assert(aj_test_has_line(r.out, "dgram-pair-sendto EPERM"), SHOW(r));
	aj_test_result_free(&r);
	cr_assert_eq(recv(l, buf, sizeof(buf), 0), -1, "the host socket received a datagram");
	cr_assert_eq(errno, EAGAIN);

	{
		/* Control: outside the jail the same attempt arrives. */
		const char *argv[] = {TRY, "dgram-pair-sendto", path, NULL};
		aj_test_exec(argv, -1, &r);
		cr_assert(aj_test_has_line(r.out, "dgram-pair-sendto ok"), "control: " SHOW(r));
		aj_test_result_free(&r);
	}
	cr_assert_eq(recv(l, buf, sizeof(buf), 0), 1, "control datagram did not arrive");
	close(l);
	unlink(path);
	free(path);
}

Test(escape, unix_socket_in_host_tmp_unreachable, .init = setup, .fini = teardown, .timeout = 60)
{
	char dir[] = "/tmp/aj-it-XXXXXX";
	char *sock;

	cr_assert_not_null(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
	track_host_path(dir);
	chmod(dir, 0755);
	sock = path_in(dir, "agent.sock");
	check_unix_unreachable(sock, "connect-unix EPERM", "connect-unix ENOENT");
	unlink(sock);
	rmdir(dir);
	free(sock);
}

Test(escape, unix_socket_in_host_run_unreachable, .init = setup, .fini = teardown, .timeout = 60)
{
	char dir[] = "/run/aj-it-XXXXXX";
	char *sock;

	if (access("/run", W_OK) != 0)
		cr_skip_test("/run is not writable by uid %u (only root can place a socket there)",
			     (unsigned)geteuid());
	cr_assert_not_null(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
	track_host_path(dir);
	chmod(dir, 0755);
	sock = path_in(dir, "agent.sock");
	check_unix_unreachable(sock, "connect-unix EPERM", "connect-unix ENOENT");
	unlink(sock);
	rmdir(dir);
	free(sock);
}

Test(escape, abstract_socket_in_host_netns_unreachable, .init = setup, .fini = teardown,
     .timeout = 60)
{
	char name[64];

	snprintf(name, sizeof(name), "@aj-it-%d-%ld", (int)getpid(), (long)time(NULL));
	check_unix_unreachable(name, "connect-unix EPERM", "connect-unix ECONNREFUSED");
}

/* ---- suite escape: kernel knobs, mounts ------------------------------------ */

Test(escape, core_pattern_not_writable, .init = setup, .fini = teardown, .timeout = 60)
{
	char *before = aj_test_slurp("/proc/sys/kernel/core_pattern"), *after;
	struct aj_result r;

	JAIL_TRY(&r, prof, "open-core-pattern-write");
	cr_assert_eq(r.status, 1, SHOW(r));
	cr_assert(aj_test_has_line(r.out, "open-core-pattern-write EROFS") ||
			  aj_test_has_line(r.out, "open-core-pattern-write EACCES"),
		  SHOW(r));
	aj_test_result_free(&r);
	after = aj_test_slurp("/proc/sys/kernel/core_pattern");
	cr_assert_str_eq(after, before, "core_pattern changed");
	free(before);
	free(after);
}

Test(escape, mounts_private_tmp_and_nosuid, .init = setup, .fini = teardown, .timeout = 60)
{
	struct aj_result r;
	char *lines[512], *last_tmp = NULL, *last_run = NULL, *last_shm = NULL, *last_psys = NULL;
	char *last_tmp_opts = NULL, *last_psys_opts = NULL, *copies[512];
	int n;

	aj_test_jail(&r, prof, "/bin/cat", "/proc/self/mountinfo", NULL);
	cr_assert_eq(r.status, 0, SHOW(r));
	n = split_lines(r.out, lines, 512);
	cr_assert_gt(n, 0, SHOW(r));
	for (int i = 0; i < n; i++) {
		/* ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER */
		char *copy = copies[i] = strdup(lines[i]), *save = NULL, *f[6] = {0},
		     *fstype = NULL;
		char *tok = strtok_r(copy, " ", &save);
		int k = 0;

		for (; tok && k < 6; tok = strtok_r(NULL, " ", &save))
			f[k++] = tok;
		for (; tok; tok = strtok_r(NULL, " ", &save))
			if (strcmp(tok, "-") == 0) {
				fstype = strtok_r(NULL, " ", &save);
				break;
			}
		cr_assert(k == 6 && fstype, "mountinfo line '%s'", lines[i]);
		cr_assert(has_opt(f[5], "nosuid"), "mount without nosuid: '%s'", lines[i]);
		if (strcmp(f[4], "/tmp") == 0) {
			last_tmp = fstype;
			last_tmp_opts = f[5];
		}
		if (strcmp(f[4], "/run") == 0)
			last_run = fstype;
		if (strcmp(f[4], "/dev/shm") == 0)
			last_shm = fstype;
		if (strcmp(f[4], "/proc/sys") == 0) {
			last_psys = fstype;
			last_psys_opts = f[5];
		}
	}
	cr_assert_not_null(last_tmp, "no mount on /tmp");
	cr_assert_str_eq(last_tmp, "tmpfs", "/tmp is %s", last_tmp);
	cr_assert(has_opt(last_tmp_opts, "nodev"), "/tmp: %s", last_tmp_opts);
	if (file_exists("/run")) {
		cr_assert_not_null(last_run, "no mount on /run");
		cr_assert_str_eq(last_run, "tmpfs");
	}
	if (file_exists("/dev/shm")) {
		cr_assert_not_null(last_shm, "no mount on /dev/shm");
		cr_assert_str_eq(last_shm, "tmpfs");
	}
	cr_assert_not_null(last_psys, "/proc/sys is not a separate (read-only) mount");
	cr_assert(has_opt(last_psys_opts, "ro"), "/proc/sys is writable: %s", last_psys_opts);
	for (int i = 0; i < n; i++)
		free(copies[i]);
	aj_test_result_free(&r);
}

Test(escape, host_tmp_is_private, .init = setup, .fini = teardown, .timeout = 60)
{
	char path[] = "/tmp/aj-it-file-XXXXXX";
	int fd = mkstemp(path);
	struct aj_result r;

	cr_assert_geq(fd, 0);
	track_host_path(path);
	fchmod(fd, 0644);
	close(fd);
	aj_test_jail(&r, prof, "/bin/sh", "-c", "test -e \"$1\" && echo visible || echo hidden",
		     "sh", path, NULL);
	unlink(path);
	cr_assert_eq(r.status, 0, SHOW(r));
	cr_assert_str_eq(r.out, "hidden\n", "%s is visible in the jail", path);
	aj_test_result_free(&r);
}

/* ---- suite escape: setuid ------------------------------------------------- */

Test(escape, setuid_root_binary_gains_nothing, .init = setup, .fini = teardown, .timeout = 60)
{
	const char *suid = getenv("AJ_TEST_SUID_ID");
	static const char *const flags[] = {"-u", "-ru"};
	struct stat st;
	char want[32];

	if (suid == NULL || suid[0] == '\0')
		cr_skip_test("AJ_TEST_SUID_ID is not set: it names a setuid-root copy of id(1), "
			     "which only root can make (tests/integration/run-suite does)");
	cr_assert_eq(stat(suid, &st), 0, "%s: %s", suid, strerror(errno));
	cr_assert(st.st_uid == 0 && (st.st_mode & S_ISUID), "%s is not setuid root", suid);
	snprintf(want, sizeof(want), "%u\n", (unsigned)agent_uid());
	for (size_t i = 0; i < 2; i++) {
		struct aj_result r;
		aj_test_jail(&r, prof, suid, flags[i], NULL);
		cr_assert_eq(r.status, 0, "id %s: " SHOWFMT, flags[i], SHOWARGS(r));
		cr_assert_str_neq(r.out, "0\n", "setuid root worked (id %s)", flags[i]);
		cr_assert_str_eq(r.out, want, "id %s: " SHOWFMT, flags[i], SHOWARGS(r));
		aj_test_result_free(&r);
	}
}

/* ---- suite escape: the threat list's try-syscall checks --------------------- */

EXPECT_TRY(escape, ptrace_attach_init_eperm, "ptrace-attach-1", "ptrace-attach-1 EPERM", 1)
EXPECT_TRY(escape, clone3_enosys, "clone3", "clone3 ENOSYS", 1)
EXPECT_TRY(escape, clone_newnet_eperm, "clone-newnet", "clone-newnet EPERM", 1)
EXPECT_TRY(escape, unshare_user_eperm, "unshare-user", "unshare-user EPERM", 1)
EXPECT_TRY(escape, unshare_net_eperm, "unshare-net", "unshare-net EPERM", 1)
EXPECT_TRY(escape, mount_tmpfs_eperm, "mount-tmpfs", "mount-tmpfs EPERM", 1)
EXPECT_TRY(escape, tiocsti_eperm, "tiocsti", "tiocsti EPERM", 1)
EXPECT_TRY(escape, tiocsti_high_bits_eperm, "tiocsti-high", "tiocsti-high EPERM", 1)
EXPECT_TRY(escape, personality_exec_eperm, "personality-exec", "personality-exec EPERM", 1)
EXPECT_TRY(escape, open_by_handle_at_eperm, "open_by_handle_at", "open_by_handle_at EPERM", 1)
EXPECT_TRY(escape, bpf_eperm, "bpf", "bpf EPERM", 1)
EXPECT_TRY(escape, userfaultfd_eperm, "userfaultfd", "userfaultfd EPERM", 1)
EXPECT_TRY(escape, keyctl_eperm, "keyctl", "keyctl EPERM", 1)

Test(escape, open_proc_1_mem_fails, .init = setup, .fini = teardown, .timeout = 60)
{
	struct aj_result r;

	JAIL_TRY(&r, prof, "open-proc-1-mem");
	cr_assert_eq(r.status, 1, SHOW(r));
	cr_assert(aj_test_has_line(r.out, "open-proc-1-mem EACCES") ||
			  aj_test_has_line(r.out, "open-proc-1-mem EPERM"),
		  SHOW(r));
	aj_test_result_free(&r);
}

static void
expect_sigsys(const char *verb)
{
	struct aj_result r;

	JAIL_TRY(&r, prof, verb);
	cr_assert_eq(r.status, 128 + SIGSYS, "try %s not killed by SIGSYS: " SHOWFMT, verb,
		     SHOWARGS(r));
	cr_assert_null(strstr(r.out, verb), "try %s returned: " SHOWFMT, verb, SHOWARGS(r));
	aj_test_result_free(&r);
}

Test(escape, x32_abi_killed, .init = setup, .fini = teardown, .timeout = 60)
{
	expect_sigsys("x32-getpid");
}

Test(escape, int80_getpid_killed, .init = setup, .fini = teardown, .timeout = 60)
{
	expect_sigsys("int80-getpid");
}

Test(escape, int80_socketcall_killed, .init = setup, .fini = teardown, .timeout = 60)
{
	expect_sigsys("int80-socketcall");
}

static void
expect_unshare_tool_fails(const char *flag)
{
	struct aj_result r;

	cr_assert_eq(access("/usr/bin/unshare", X_OK), 0, "/usr/bin/unshare is missing");
	aj_test_jail(&r, prof, "/usr/bin/unshare", flag, "true", NULL);
	cr_assert_neq(r.status, 0, "unshare %s true succeeded: " SHOWFMT, flag, SHOWARGS(r));
	cr_assert_not_null(strstr(r.err, "Operation not permitted"), SHOW(r));
	aj_test_result_free(&r);
}

Test(escape, unshare_tool_user_fails, .init = setup, .fini = teardown, .timeout = 60)
{
	expect_unshare_tool_fails("-U");
}

Test(escape, unshare_tool_net_fails, .init = setup, .fini = teardown, .timeout = 60)
{
	expect_unshare_tool_fails("-n");
}

/* ---- suite profile_cli ---------------------------------------------------------- */

/* `profile check` on TEXT (written as NAME) exits 1 with
 * "PATH:LINE: MESSAGE" (MESSAGE may be a prefix), and `run` refuses it
 * with 125 without running anything. */
static void
expect_bad_profile(const char *name, const char *text, int line, const char *message)
{
	char *path = write_profile(name, text), *marker = path_in(scratch, "ran"), *want;
	const char *check[] = {AJ, "profile", "check", path, NULL};
	const char *run[] = {AJ, "run", "--profile", path, "--", "/bin/touch", marker, NULL};
	struct aj_result r;

	cr_assert_geq(asprintf(&want, "%s:%d: %s", path, line, message), 0);
	aj_test_exec(check, -1, &r);
	cr_assert_eq(r.status, 1, SHOW(r));
	cr_assert_not_null(strstr(r.err, want), "want '%s'; " SHOWFMT, want, SHOWARGS(r));
	cr_assert_str_eq(r.out, "", SHOW(r));
	aj_test_result_free(&r);

	aj_test_exec(run, -1, &r);
	cr_assert_eq(r.status, 125, SHOW(r));
	cr_assert_not_null(strstr(r.err, want), "want '%s'; " SHOWFMT, want, SHOWARGS(r));
	cr_assert(!file_exists(marker), "the command ran under a bad profile");
	aj_test_result_free(&r);
	free(want);
	free(marker);
	free(path);
}

Test(profile_cli, unknown_directive, .init = setup_writable, .fini = teardown, .timeout = 60)
{
	expect_bad_profile("bad.profile", "hostname x\n\nfrobnicate yes\n", 3,
			   "unknown directive 'frobnicate'");
}

Test(profile_cli, rlimit_bad_value, .init = setup_writable, .fini = teardown, .timeout = 60)
{
	expect_bad_profile("bad.profile", "# limits\nrlimit nofile abc\n", 2,
			   "rlimit nofile: invalid value 'abc' (expected ");
}

Test(profile_cli, optional_core_layer, .init = setup_writable, .fini = teardown, .timeout = 60)
{
	expect_bad_profile("bad.profile", "optional netns\n", 1,
			   "netns cannot be optional: it is part of the jail's core isolation");
}

Test(profile_cli, unknown_fetch_option, .init = setup_writable, .fini = teardown, .timeout = 60)
{
	expect_bad_profile("bad.profile",
			   "hostname x\nfetch allow GET https://x.org/ colour blue\n", 2,
			   "fetch allow: unknown option 'colour'");
}

Test(profile_cli, conflicting_hostname, .init = setup_writable, .fini = teardown, .timeout = 60)
{
	char *path = path_in(scratch, "bad.profile"), *msg;

	cr_assert_geq(asprintf(&msg, "conflicting 'hostname' (already set to 'foo' at %s:1)", path),
		      0);
	expect_bad_profile("bad.profile", "hostname foo\nhostname bar\n", 2, msg);
	free(msg);
	free(path);
}

Test(profile_cli, include_cycle, .init = setup_writable, .fini = teardown, .timeout = 60)
{
	char *a, *b, *msg;
	const char *check[] = {AJ, "profile", "check", NULL, NULL};
	struct aj_result r;

	a = write_profile("a.profile", "# a\ninclude ./b.profile\n");
	b = write_profile("b.profile", "# b\n\ninclude ./a.profile\n");
	cr_assert_geq(asprintf(&msg, "%s:3: include cycle: %s -> %s -> %s", b, a, b, a), 0);
	check[3] = a;
	aj_test_exec(check, -1, &r);
	cr_assert_eq(r.status, 1, SHOW(r));
	cr_assert_not_null(strstr(r.err, msg), "want '%s'; " SHOWFMT, msg, SHOWARGS(r));
	aj_test_result_free(&r);

	aj_test_jail(&r, a, "/bin/true", NULL);
	cr_assert_eq(r.status, 125, SHOW(r));
	cr_assert_not_null(strstr(r.err, msg), "want '%s'; " SHOWFMT, msg, SHOWARGS(r));
	aj_test_result_free(&r);
	free(msg);
	free(a);
	free(b);
}

Test(profile_cli, missing_profile_name, .init = setup, .fini = teardown, .timeout = 60)
{
	const char *check[] = {AJ, "profile", "check", "aj-no-such-profile-4711", NULL};
	const char *want = "profile 'aj-no-such-profile-4711' not found (searched: ";
	struct aj_result r;

	aj_test_exec(check, -1, &r);
	cr_assert_eq(r.status, 1, SHOW(r));
	cr_assert_not_null(strstr(r.err, want), SHOW(r));
	aj_test_result_free(&r);

	aj_test_jail(&r, "aj-no-such-profile-4711", "/bin/true", NULL);
	cr_assert_eq(r.status, 125, SHOW(r));
	cr_assert_not_null(strstr(r.err, want), SHOW(r));
	aj_test_result_free(&r);
}

/* `agentjail ARGS...` run from DIR, with no profile directory of the user
 * (XDG_CONFIG_HOME is DIR too). */
static void
cli_in(struct aj_result *r, const char *dir, const char *args)
{
	char script[8192];
	const char *argv[] = {"/bin/sh", "-c", script, NULL};

	snprintf(script, sizeof(script), "cd '%s' && XDG_CONFIG_HOME='%s' exec '%s' %s", dir, dir,
		 AJ, args);
	aj_test_exec(argv, -1, r);
}

/* A profile file in the current directory, named without a '/', is a
 * name: the message says how to name the file. */
Test(profile_cli, file_name_without_a_slash, .init = setup, .fini = teardown, .timeout = 60)
{
	char *file = aj_test_write_file(scratch, "unknown.profile", PROFILE_BODY("agentjail"));
	struct aj_result r;

	cli_in(&r, scratch, "profile check unknown.profile");
	cr_assert_eq(r.status, 1, SHOW(r));
	cr_assert_not_null(strstr(r.err, "profile 'unknown.profile' not found (searched: "),
			   SHOW(r));
	cr_assert_not_null(strstr(r.err, "; a path needs a '/': to use the file in this "
					 "directory, say ./unknown.profile\n"),
			   SHOW(r));
	aj_test_result_free(&r);
	/* And what it says works. */
	cli_in(&r, scratch, "profile check ./unknown.profile");
	cr_assert_eq(r.status, 0, SHOW(r));
	cr_assert_str_eq(r.out, "./unknown.profile: ok\n", SHOW(r));
	aj_test_result_free(&r);
	free(file);
}

/* A build that is not installed does not search its source tree (no
 * directory an agent could write is searched), but when a shipped profile
 * is not found it names the file there. */
Test(profile_cli, uninstalled_build_names_its_profiles, .init = setup, .fini = teardown,
     .timeout = 60)
{
	char shipped[4096], want[8192];
	struct aj_result r;

	if (access(AJ_PROFILEDIR, F_OK) == 0 ||
	    access("/etc/agentjail/profiles/default.profile", F_OK) == 0)
		cr_skip_test("agentjail is installed here: the shipped profiles are found");
	snprintf(shipped, sizeof(shipped), "%s/profiles/default.profile", AJ_SRCDIR);
	snprintf(want, sizeof(want),
		 "profile 'default' not found (searched: %s/agentjail/profiles, "
		 "/etc/agentjail/profiles, %s); this agentjail is not installed (there is no "
		 "%s), so the profiles of its source tree are not searched: give the path, %s\n",
		 scratch, AJ_PROFILEDIR, AJ_PROFILEDIR, shipped);
	/* This user may not be able to read the source tree: then the message
	 * names nothing it cannot open. */
	if (access(shipped, R_OK) != 0)
		*strstr(want, "; this agentjail") = '\0';

	cli_in(&r, scratch, "profile check default");
	cr_assert_eq(r.status, 1, SHOW(r));
	cr_assert_not_null(strstr(r.err, want), "want: %s\n" SHOWFMT, want, SHOWARGS(r));
	if (access(shipped, R_OK) != 0)
		cr_assert_null(strstr(r.err, "not installed"), SHOW(r));
	aj_test_result_free(&r);
	cli_in(&r, scratch, "run --profile default -- /bin/true");
	cr_assert_eq(r.status, 125, SHOW(r));
	cr_assert_not_null(strstr(r.err, want), "want: %s\n" SHOWFMT, want, SHOWARGS(r));
	aj_test_result_free(&r);
	/* Only shipped profiles are named. */
	cli_in(&r, scratch, "profile check aj-no-such-profile-4711");
	cr_assert_eq(r.status, 1, SHOW(r));
	cr_assert_null(strstr(r.err, "not installed"), SHOW(r));
	aj_test_result_free(&r);
	if (access(shipped, R_OK) != 0)
		return;
	/* The path it names is the profile. */
	snprintf(want, sizeof(want), "profile check '%s'", shipped);
	cli_in(&r, scratch, want);
	cr_assert_eq(r.status, 0, SHOW(r));
	aj_test_result_free(&r);
}

Test(profile_cli, good_profile_checks, .init = setup, .fini = teardown, .timeout = 60)
{
	const char *check[] = {AJ, "profile", "check", prof, NULL};
	struct aj_result r;

	aj_test_exec(check, -1, &r);
	cr_assert_eq(r.status, 0, SHOW(r));
	cr_assert_str_eq(r.err, "", SHOW(r));
	aj_test_result_free(&r);
}

/* SHA-256 of LEN bytes of DATA, by sha256sum(1): no crypto library needed. */
static void
sha256_hex(const char *data, size_t len, char hex[65])
{
	char *path = path_in(scratch, "sha-input");
	const char *argv[] = {"/usr/bin/sha256sum", path, NULL};
	struct aj_result r;
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f);
	cr_assert_eq(fwrite(data, 1, len, f), len);
	fclose(f);
	aj_test_exec(argv, -1, &r);
	cr_assert_eq(r.status, 0, "sha256sum: " SHOW(r));
	cr_assert_eq(strspn(r.out, "0123456789abcdef"), 64u, SHOW(r));
	memcpy(hex, r.out, 64);
	hex[64] = '\0';
	aj_test_result_free(&r);
	unlink(path);
	free(path);
}

/* `profile show PATH`: "# profile ..." header, canonical text, "# sha256 HEX"
 * where HEX is the SHA-256 of the canonical text.  Returns HEX (static). */
static const char *
show_sha(const char *path)
{
	static char hex[65];
	const char *argv[] = {AJ, "profile", "show", path, NULL};
	struct aj_result r;
	char *body, *sha, computed[65];

	aj_test_exec(argv, -1, &r);
	cr_assert_eq(r.status, 0, SHOW(r));
	cr_assert_eq(strncmp(r.out, "# profile ", 10), 0, SHOW(r));
	body = strchr(r.out, '\n');
	cr_assert_not_null(body, SHOW(r));
	body++;
	sha = strstr(body, "# sha256 ");
	cr_assert_not_null(sha, "no sha256 line: " SHOW(r));
	cr_assert(sha == body || sha[-1] == '\n', SHOW(r));
	cr_assert_eq(strspn(sha + 9, "0123456789abcdef"), 64u, "sha256 is not 64 hex digits: %s",
		     sha);
	cr_assert_str_eq(sha + 9 + 64, "\n", "junk after the sha256 line: " SHOW(r));
	memcpy(hex, sha + 9, 64);
	hex[64] = '\0';
	sha256_hex(body, (size_t)(sha - body), computed);
	cr_assert_str_eq(hex, computed, "printed sha256 is not the canonical text's: " SHOW(r));
	cr_assert(aj_test_has_line(body, "hostname agentjail"), SHOW(r));
	cr_assert(aj_test_has_line(body, "socket unix deny"), SHOW(r));
	aj_test_result_free(&r);
	return hex;
}

Test(profile_cli, show_prints_sha256, .init = setup, .fini = teardown, .timeout = 60)
{
	char first[65];
	char *same;

	snprintf(first, sizeof(first), "%s", show_sha(prof));
	/* The hash names the policy, not the file: the same policy written
	 * differently hashes the same. */
	same = write_profile("same.profile", "# same policy, other layout\nrlimit core 0\n"
					     "env keep TERM LANG\nenv keep HOME PATH PATH\n"
					     "user nobody\nhostname agentjail\n");
	cr_assert_str_eq(show_sha(same), first);
	free(same);
}

Test(profile_cli, show_json_parses, .init = setup, .fini = teardown, .timeout = 60)
{
	const char *argv[] = {AJ, "profile", "show", prof, "--json", NULL};
	static const char *const keep[] = {"HOME", "LANG", "PATH", "TERM"};
	char sha[65];
	struct aj_result r;
	json_error_t jerr;
	json_t *root, *v;

	snprintf(sha, sizeof(sha), "%s", show_sha(prof));
	aj_test_exec(argv, -1, &r);
	cr_assert_eq(r.status, 0, SHOW(r));
	root = json_loads(r.out, 0, &jerr);
	cr_assert_not_null(root, "invalid JSON (%s at line %d): " SHOWFMT, jerr.text, jerr.line,
			   SHOWARGS(r));
	cr_assert(json_is_object(root));
	cr_assert_str_eq(json_string_value(json_object_get(root, "path")), prof);
	cr_assert_str_eq(json_string_value(json_object_get(root, "sha256")), sha);
	cr_assert_str_eq(json_string_value(json_object_get(root, "hostname")), "agentjail");
	cr_assert_str_eq(json_string_value(json_object_get(root, "user")), "nobody");
	cr_assert_str_eq(json_string_value(json_object_get(root, "socket_unix")), "deny");
	v = json_object_get(root, "env_keep");
	cr_assert(json_is_array(v) && json_array_size(v) == 4, SHOW(r));
	for (size_t i = 0; i < 4; i++)
		cr_assert_str_eq(json_string_value(json_array_get(v, i)), keep[i]);
	v = json_object_get(root, "rlimits");
	cr_assert(json_is_object(v), SHOW(r));
	cr_assert(json_is_integer(json_object_get(v, "core")), SHOW(r));
	cr_assert_eq(json_integer_value(json_object_get(v, "core")), 0);
	cr_assert(json_is_integer(json_object_get(root, "tmpfs_size")), SHOW(r));
	cr_assert_eq(json_integer_value(json_object_get(root, "tmpfs_size")), 64 * 1024 * 1024);
	v = json_object_get(root, "optional");
	cr_assert(json_is_array(v) && json_array_size(v) == 0, SHOW(r));
	cr_assert(json_is_object(json_object_get(root, "env_set")), SHOW(r));
	json_decref(root);
	aj_test_result_free(&r);
}

/* ---- suite doctor ---------------------------------------------------------------- */

Test(doctor, text_and_json, .timeout = 60)
{
	const char *text_argv[] = {AJ, "doctor", NULL};
	const char *json_argv[] = {AJ, "doctor", "--json", NULL};
	struct aj_result r;
	json_error_t jerr;
	json_t *root;
	char *last = NULL;

	aj_test_exec(text_argv, -1, &r);
	cr_assert_eq(r.status, 0, SHOW(r));
	/* the verdict is the report's last line */
	{
		size_t n = strlen(r.out);
		cr_assert(n > 1 && r.out[n - 1] == '\n', SHOW(r));
		r.out[n - 1] = '\0';
		last = strrchr(r.out, '\n');
		last = strdup(last ? last + 1 : r.out);
	}
	aj_test_result_free(&r);

	aj_test_exec(json_argv, -1, &r);
	cr_assert_eq(r.status, 0, SHOW(r));
	root = json_loads(r.out, 0, &jerr);
	cr_assert_not_null(root, "invalid JSON (%s): " SHOWFMT, jerr.text, SHOWARGS(r));
	cr_assert(json_is_true(json_object_get(root, "ok")), "\"ok\" is not true: " SHOW(r));
	cr_assert_eq(json_is_true(json_object_get(root, "root")), geteuid() == 0, SHOW(r));
	cr_assert(json_is_integer(json_object_get(root, "agent_uid")), SHOW(r));
	cr_assert_eq(json_integer_value(json_object_get(root, "agent_uid")),
		     (json_int_t)agent_uid(), SHOW(r));
	cr_assert(json_is_array(json_object_get(root, "layers")), SHOW(r));
	cr_assert_str_eq(json_string_value(json_object_get(root, "verdict")), last);
	json_decref(root);
	free(last);
	aj_test_result_free(&r);
}

/* ---- suite practical: real tools under the default filter ------------------------ */

/* Run SCRIPT with sh in the jail, cwd = the scratch dir, HOME = it too. */
static void
practical(struct aj_result *r, const char *script)
{
	char *home;

	cr_assert_eq(chdir(scratch), 0);
	cr_assert_geq(asprintf(&home, "HOME=%s", scratch), 0);
	aj_test_jail(r, prof, "/usr/bin/env", SYS_PATH, home, "/bin/sh", "-c", script, NULL);
	free(home);
}

Test(practical, shell_pipeline, .init = setup, .fini = teardown, .timeout = 60)
{
	struct aj_result r;

	aj_test_jail(&r, prof, "/bin/sh", "-c", "echo hi | tr a-z A-Z", NULL);
	cr_assert_eq(r.status, 0, SHOW(r));
	cr_assert_str_eq(r.out, "HI\n", SHOW(r));
	aj_test_result_free(&r);
}

Test(practical, coreutils, .init = setup_writable, .fini = teardown, .timeout = 60)
{
	struct aj_result r;

	practical(&r, "ls -la / | grep -q ' tmp$' && echo ls-ok && "
		      "printf 'b\\nc\\na\\n' > f && cp f g && mv g h && sort h && wc -l < h && "
		      "rm f h && test ! -e f && test ! -e g && test ! -e h && echo gone");
	cr_assert_eq(r.status, 0, SHOW(r));
	cr_assert_str_eq(r.out, "ls-ok\na\nb\nc\n3\ngone\n", SHOW(r));
	aj_test_result_free(&r);
}

Test(practical, python_threads_subprocess_tempfile, .init = setup_writable, .fini = teardown,
     .timeout = 60)
{
	static const char py[] =
		"import json, subprocess, threading, tempfile\n"
		"out = []\n"
		"lock = threading.Lock()\n"
		"def work(i):\n"
		"    r = subprocess.run(['echo', str(i)], capture_output=True, text=True, "
		"check=True)\n"
		"    with lock:\n"
		"        out.append(r.stdout.strip())\n"
		"ts = [threading.Thread(target=work, args=(i,)) for i in range(4)]\n"
		"for t in ts: t.start()\n"
		"for t in ts: t.join()\n"
		"with tempfile.TemporaryDirectory() as d, tempfile.NamedTemporaryFile('w+', dir=d) "
		"as "
		"f:\n"
		"    f.write('tmp'); f.flush(); f.seek(0); out.append(f.read())\n"
		"with tempfile.NamedTemporaryFile('w+') as f:\n"
		"    f.write('tmp2'); f.flush(); f.seek(0); out.append(f.read())\n"
		"print(json.dumps(sorted(out)))\n";
	struct aj_result r;
	char *home;

	cr_assert_eq(chdir(scratch), 0);
	cr_assert_geq(asprintf(&home, "HOME=%s", scratch), 0);
	aj_test_jail(&r, prof, "/usr/bin/env", SYS_PATH, home, "python3", "-c", py, NULL);
	cr_assert_eq(r.status, 0, SHOW(r));
	cr_assert_str_eq(r.out, "[\"0\", \"1\", \"2\", \"3\", \"tmp\", \"tmp2\"]\n", SHOW(r));
	aj_test_result_free(&r);
	free(home);
}

Test(practical, git_init_commit_log, .init = setup_writable, .fini = teardown, .timeout = 60)
{
	struct aj_result r;
	size_t hexlen;

	practical(&r, "mkdir repo && cd repo && git init -q && "
		      "git -c user.email=a@b -c user.name=n commit -q --allow-empty -m x && "
		      "git log --oneline");
	cr_assert_eq(r.status, 0, SHOW(r));
	hexlen = strspn(r.out, "0123456789abcdef");
	cr_assert_geq(hexlen, 7u, SHOW(r));
	cr_assert_str_eq(r.out + hexlen, " x\n", SHOW(r));
	aj_test_result_free(&r);
}

Test(practical, gcc_compile_and_run, .init = setup_writable, .fini = teardown, .timeout = 60)
{
	struct aj_result r;
	char *src =
		aj_test_write_file(scratch, "hello.c",
				   "#include <stdio.h>\n"
				   "int main(void) { puts(\"hello from the jail\"); return 0; }\n");

	practical(&r, "gcc -o hello hello.c && ./hello");
	cr_assert_eq(r.status, 0, SHOW(r));
	cr_assert_str_eq(r.out, "hello from the jail\n", SHOW(r));
	aj_test_result_free(&r);
	free(src);
}

/* ---- hardening found by review ------------------------------------------ */

/* /dev holds only harmless devices: no other terminal of the caller's, no
 * /dev/fuse, /dev/net/tun, kvm or sound devices. */
Test(escape, dev_is_minimal, .init = setup, .fini = teardown, .timeout = 60)
{
	struct aj_result r;

	aj_test_jail(&r, prof, "/bin/sh", "-c",
		     "ls -A /dev | tr '\\n' ' '; echo; echo x >/dev/null && head -c 4 /dev/urandom "
		     "| wc -c; ls -A /dev/pts | tr '\\n' ' '; echo; touch /dev/new 2>&1 | grep -c "
		     "'Read-only'",
		     NULL);
	cr_assert_eq(r.status, 0, SHOW(r));
	cr_assert(aj_test_has_line(r.out,
				   "fd full null ptmx pts random shm stderr stdin stdout tty "
				   "urandom zero "),
		  SHOW(r));
	cr_assert(aj_test_has_line(r.out, "4"), "/dev/urandom unreadable: " SHOW(r));
	cr_assert(aj_test_has_line(r.out, "ptmx "), "a private devpts holds only ptmx: " SHOW(r));
	cr_assert(aj_test_has_line(r.out, "1"), "/dev is writable: " SHOW(r));
	aj_test_result_free(&r);
}

/* The kernel refuses nested user namespaces too, not only the filter. */
Test(escape, nested_user_namespaces_limited_to_zero, .init = setup, .fini = teardown, .timeout = 60)
{
	struct aj_result r;

	aj_test_jail(&r, prof, "/bin/cat", "/proc/sys/user/max_user_namespaces", NULL);
	cr_assert_eq(r.status, 0, SHOW(r));
	cr_assert_str_eq(r.out, "0\n", SHOW(r));
	aj_test_result_free(&r);
}

/* The agent cannot rewrite the policy of the next run: the profile in use
 * is read-only inside the jail, and a profiles/default.profile it plants
 * in its working directory is never searched (by --profile or include). */
Test(escape, profiles_are_read_only_inside, .init = setup_writable, .fini = teardown, .timeout = 60)
{
	char *dir = path_in(scratch, "profiles");
	char *planted = path_in(dir, "default.profile");
	char *cfg = path_in(scratch, "agentjail"), *search = path_in(cfg, "profiles");
	char *top = aj_test_write_file(scratch, "top.profile", "include default\n");
	char cwd[4096], args[8192];
	struct aj_result r;

	cr_assert_eq(mkdir(dir, 0777), 0, "mkdir: %s", strerror(errno));
	cr_assert_eq(chmod(dir, 0777), 0);
	cr_assert_not_null(getcwd(cwd, sizeof(cwd)));
	cr_assert_eq(chdir(scratch), 0);
	aj_test_jail(&r, prof, "/bin/sh", "-c",
		     "printf 'hostname planted\\nuser nobody\\nenv keep PATH\\n' >profiles/default.profile; "
		     "echo p=$?; echo 'socket unix allow' >>\"$0\"; echo f=$?",
		     prof, NULL);
	cr_assert_eq(chdir(cwd), 0);
	cr_assert(aj_test_has_line(r.out, "p=0"), "could not plant: " SHOW(r));
	cr_assert(aj_test_has_line(r.out, "f=2"), "the profile in use is writable: " SHOW(r));
	cr_assert(file_exists(planted));
	aj_test_result_free(&r);

	/* The next run, from that directory, uses the user's default. */
	cr_assert_eq(mkdir(cfg, 0755), 0);
	cr_assert_eq(mkdir(search, 0755), 0);
	free(aj_test_write_file(search, "default.profile", PROFILE_BODY("trusted")));
	snprintf(args, sizeof(args), "run --profile default -- /bin/cat /proc/sys/kernel/hostname");
	cli_in(&r, scratch, args);
	cr_assert_eq(r.status, 0, SHOW(r));
	cr_assert_str_eq(r.out, "trusted\n", SHOW(r));
	aj_test_result_free(&r);
	snprintf(args, sizeof(args), "run --profile ./top.profile -- /bin/cat /proc/sys/kernel/hostname");
	cli_in(&r, scratch, args);
	cr_assert_eq(r.status, 0, SHOW(r));
	cr_assert_str_eq(r.out, "trusted\n", SHOW(r));
	aj_test_result_free(&r);
	/* Beside the including file is not searched either. */
	free(aj_test_write_file(scratch, "default.profile", "hostname beside\n"));
	cli_in(&r, scratch, args);
	cr_assert_eq(r.status, 0, SHOW(r));
	cr_assert_str_eq(r.out, "trusted\n", SHOW(r));
	aj_test_result_free(&r);
	free(top);
	free(search);
	free(cfg);
	free(planted);
	free(dir);
}

/* Issue 9: read-only is not enough when the agent can write the parent:
 * it renamed the directory and put forged records at the old path.  Every
 * directory above a record file is a mount point in the jail, so the
 * rename fails (EBUSY), and the records after the run are the
 * supervisor's. */
Test(escape, records_stay_where_they_are, .init = setup_writable, .fini = teardown, .timeout = 60)
{
	char *w = path_in(scratch, "w"), *rec = path_in(w, "rec");
	char *events = path_in(rec, "ev.json"), *audit = path_in(rec, "au.json"), *script, *text;
	struct aj_result r;

	/* Writable by the agent (nobody, under root) and not sticky: only the
	 * jail's view stops it. */
	cr_assert_eq(mkdir(w, 0777), 0);
	cr_assert_eq(chmod(w, 0777), 0);
	cr_assert_eq(mkdir(rec, 0777), 0);
	cr_assert_eq(chmod(rec, 0777), 0);
	cr_assert_geq(asprintf(&script,
			       "cd '%s' || exit 9; mv rec moved; echo mv=$?; mkdir fake; "
			       /* Spelled in two: the start event holds this
				* command line, and must hold no forged record. */
			       "echo '{\"type\":\"exit\",\"for''ged\":1}' >fake/ev.json; "
			       "mv -T fake rec; echo swap=$?; rmdir rec; echo rmdir=$?; "
			       "mv rec/ev.json rec/x; echo file=$?; mkdir rec/sub && mv rec/sub "
			       "rec/sub2; echo inside=$?",
			       w),
		      0);
	aj_test_jail_sh(&r, prof, audit, events, script);
	cr_assert_eq(r.status, 0, SHOW(r));
	cr_assert(aj_test_has_line(r.out, "mv=1"), "the records' directory moved: " SHOW(r));
	cr_assert(aj_test_has_line(r.out, "swap=1"), SHOW(r));
	cr_assert(aj_test_has_line(r.out, "rmdir=1"), SHOW(r));
	cr_assert(aj_test_has_line(r.out, "file=1"), SHOW(r));
	cr_assert(aj_test_has_line(r.out, "inside=0"), "the directory is no longer writable: " SHOW(r));
	cr_assert_not_null(strstr(r.err, "Device or resource busy"), SHOW(r));
	cr_assert_null(strstr(r.err, "warning:"), "nothing was replaced: " SHOW(r));
	text = aj_test_slurp(events);
	cr_assert_not_null(strstr(text, "\"type\":\"start\""), "%s", text);
	cr_assert_not_null(strstr(text, "\"type\":\"exit\""), "%s", text);
	cr_assert_null(strstr(text, "forged"), "%s", text);
	free(text);
	cr_assert(file_exists(audit));
	aj_test_result_free(&r);
	free(script);
	free(audit);
	free(events);
	free(rec);
	free(w);
}

/* Outside the jail nothing pins the records: if their path is made to
 * name another file during the run, agentjail says where the run's
 * records really are, on stderr (even with --quiet) and in the stream. */
Test(escape, replaced_records_are_reported, .init = setup_writable, .fini = teardown,
     .timeout = 60)
{
	char *rec = path_in(scratch, "rec"), *moved = path_in(scratch, "moved");
	char *events = path_in(rec, "ev.json"), *moved_events = path_in(moved, "ev.json");
	char *ready = path_in(scratch, "ready"), *go = path_in(scratch, "go");
	char *log = path_in(scratch, "bg.log"), *script, *text, want[8192];
	pid_t pid;
	int st;

	cr_assert_eq(mkdir(rec, 0755), 0);
	cr_assert_geq(asprintf(&script, ": >'%s'; while [ ! -e '%s' ]; do sleep 0.05; done", ready,
			       go),
		      0);
	{
		const char *argv[] = {AJ,     "run",	  "--profile", prof, "--events", events,
				      "--quiet", "--", "/bin/sh",   "-c", script,     NULL};
		pid = spawn_bg(argv, log);
	}
	wait_file(ready, pid);
	cr_assert_eq(rename(rec, moved), 0, "rename: %s", strerror(errno));
	cr_assert_eq(mkdir(rec, 0755), 0);
	free(aj_test_write_file(rec, "ev.json", "{\"type\":\"exit\",\"forged\":1}\n"));
	free(aj_test_write_file(scratch, "go", ""));
	cr_assert(wait_exit(pid, 10000, &st), "agentjail did not end");
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status 0x%x", st);
	text = aj_test_slurp(log);
	snprintf(want, sizeof(want),
		 "agentjail: warning: events file %s was replaced during the run; this run's "
		 "records are at %s",
		 events, moved_events);
	cr_assert(aj_test_has_line(text, want), "want: %s\n--- log:\n%s", want, text);
	free(text);
	text = aj_test_slurp(moved_events);
	snprintf(want, sizeof(want),
		 "\"type\":\"file_replaced\",\"jail\":");
	cr_assert_not_null(strstr(text, want), "%s", text);
	snprintf(want, sizeof(want), "\"file\":\"events\",\"path\":\"%s\",\"at_path\":\"other\","
		 "\"moved_to\":\"%s\"", events, moved_events);
	cr_assert_not_null(strstr(text, want), "want %s in\n%s", want, text);
	cr_assert_not_null(strstr(text, "\"type\":\"exit\""), "%s", text);
	free(text);
	free(script);
	free(log);
	free(go);
	free(ready);
	free(moved_events);
	free(events);
	free(moved);
	free(rec);
}

/* A profile file swapped from outside during the run: the next run would
 * read another policy, and agentjail says so. */
Test(escape, replaced_profile_is_reported, .init = setup_writable, .fini = teardown,
     .timeout = 60)
{
	char *pdir = path_in(scratch, "pd"), *p, *aside = path_in(scratch, "pd/aside.profile");
	char *ready = path_in(scratch, "ready"), *go = path_in(scratch, "go");
	char *log = path_in(scratch, "bg.log"), *script, *text, want[8192];
	pid_t pid;
	int st;

	cr_assert_eq(mkdir(pdir, 0755), 0);
	p = aj_test_write_file(pdir, "x.profile", PROFILE_BODY("agentjail"));
	cr_assert_geq(asprintf(&script, ": >'%s'; while [ ! -e '%s' ]; do sleep 0.05; done", ready,
			       go),
		      0);
	{
		const char *argv[] = {AJ,	 "run", "--profile", p,  "--quiet",
				      "--",	 "/bin/sh", "-c",   script, NULL};
		pid = spawn_bg(argv, log);
	}
	wait_file(ready, pid);
	cr_assert_eq(rename(p, aside), 0, "rename: %s", strerror(errno));
	free(aj_test_write_file(pdir, "x.profile", PROFILE_BODY("other") "socket unix allow\n"));
	free(aj_test_write_file(scratch, "go", ""));
	cr_assert(wait_exit(pid, 10000, &st), "agentjail did not end");
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status 0x%x", st);
	text = aj_test_slurp(log);
	snprintf(want, sizeof(want),
		 "agentjail: warning: profile file %s was replaced during the run; the next run "
		 "would read a different file",
		 p);
	cr_assert(aj_test_has_line(text, want), "want: %s\n--- log:\n%s", want, text);
	free(text);
	free(script);
	free(log);
	free(go);
	free(ready);
	free(aside);
	free(p);
	free(pdir);
}

/* The profile named by path, in a directory the agent can write: neither
 * it nor its directory can be moved aside for the next run.  (Started by
 * root, the agent does not own that directory and is refused anyway; as
 * the caller, only the pinning stops it.) */
Test(escape, profile_directory_stays, .init = setup_writable, .fini = teardown, .timeout = 60)
{
	char *pdir = path_in(scratch, "p"), *p, *script;
	struct aj_result r;

	cr_assert_eq(mkdir(pdir, 0755), 0);
	p = aj_test_write_file(pdir, "x.profile", PROFILE_BODY("agentjail"));
	cr_assert_geq(asprintf(&script,
			       "cd '%s' || exit 9; mv p p2; echo mv=$?; mv p/x.profile p/y; "
			       "echo file=$?",
			       scratch),
		      0);
	aj_test_jail_sh(&r, p, NULL, NULL, script);
	cr_assert_eq(r.status, 0, SHOW(r));
	cr_assert(aj_test_has_line(r.out, "mv=1"), "the profile's directory moved: " SHOW(r));
	cr_assert(aj_test_has_line(r.out, "file=1"), SHOW(r));
	if (geteuid() != 0)
		cr_assert_not_null(strstr(r.err, "Device or resource busy"), SHOW(r));
	cr_assert(file_exists(p));
	aj_test_result_free(&r);
	free(script);
	free(p);
	free(pdir);
}

/* A profile in a directory others can write is refused, naming it and
 * what is wrong; under a sticky directory (as /tmp) it is fine. */
Test(profile_cli, untrusted_profile_is_refused, .init = setup, .fini = teardown, .timeout = 60)
{
	char *open = path_in(scratch, "open"), *sticky = path_in(scratch, "sticky"), *p, *q;
	char want[8192];
	struct aj_result r;

	cr_assert_eq(mkdir(open, 0755), 0);
	cr_assert_eq(chmod(open, 0777), 0);
	cr_assert_eq(mkdir(sticky, 0755), 0);
	cr_assert_eq(chmod(sticky, 01777), 0);
	p = aj_test_write_file(open, "x.profile", PROFILE_BODY("agentjail"));
	q = aj_test_write_file(sticky, "x.profile", PROFILE_BODY("agentjail"));
	snprintf(want, sizeof(want),
		 "agentjail: profile '%s' is not trusted: %s is writable by group and others "
		 "(mode 0777); make it owned by you or root and not group/other-writable\n",
		 p, open);
	aj_test_jail(&r, p, "/bin/true", NULL);
	cr_assert_eq(r.status, 125, SHOW(r));
	cr_assert_str_eq(r.err, want, SHOW(r));
	aj_test_result_free(&r);
	{
		const char *check[] = {AJ, "profile", "check", p, NULL};
		aj_test_exec(check, -1, &r);
	}
	cr_assert_eq(r.status, 1, SHOW(r));
	cr_assert_str_eq(r.err, want, SHOW(r));
	aj_test_result_free(&r);
	aj_test_jail(&r, q, "/bin/true", NULL);
	cr_assert_eq(r.status, 0, SHOW(r));
	aj_test_result_free(&r);
	free(q);
	free(p);
	free(sticky);
	free(open);
}

/* As the caller, the agent could create a profile directory that does not
 * exist yet: agentjail makes it first (0700), and it is read-only inside. */
Test(escape, missing_config_dir_is_made_and_protected, .init = setup_writable,
     .fini = teardown, .timeout = 60)
{
	char *home = path_in(scratch, "cfg"), *search, args[8192];
	struct stat st;
	struct aj_result r;

	if (geteuid() == 0)
		cr_skip_test("started by root, the agent (nobody) cannot write the caller's config");
	cr_assert_eq(mkdir(home, 0755), 0);
	cr_assert_geq(asprintf(&search, "%s/agentjail/profiles", home), 0);
	snprintf(args, sizeof(args),
		 "run --profile '%s' -- /bin/sh -c \"mkdir -p '%s'; echo hostname x "
		 ">'%s/default.profile'; echo w=\\$?; mv '%s/agentjail' '%s/gone'; "
		 "echo mv=\\$?\"",
		 prof, search, search, home, home);
	cli_in(&r, home, args);
	cr_assert_eq(r.status, 0, SHOW(r));
	cr_assert(aj_test_has_line(r.out, "w=2"), "planted a profile: " SHOW(r));
	cr_assert(aj_test_has_line(r.out, "mv=1"), SHOW(r));
	cr_assert_eq(stat(search, &st), 0, "%s: %s", search, strerror(errno));
	cr_assert_eq(st.st_mode & 07777, 0700);
	aj_test_result_free(&r);
	free(search);
	free(home);
}

/* (uid_t)-1 means "unchanged" to setresuid: as a profile user it would
 * have left host root in place. */
Test(escape, out_of_range_user_is_refused, .init = setup, .fini = teardown, .timeout = 60)
{
	char *p = aj_test_write_file(scratch, "uid.profile", "user 4294967295\n");
	struct aj_result r;

	if (geteuid() != 0) {
		free(p);
		cr_skip("the user directive applies only when agentjail is started by root");
	}
	aj_test_jail(&r, p, "/bin/true", NULL);
	cr_assert_eq(r.status, 125, SHOW(r));
	cr_assert_not_null(strstr(r.err, "user id 4294967295 is out of range"), SHOW(r));
	aj_test_result_free(&r);
	free(p);
}
