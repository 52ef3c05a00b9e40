/*
 * Unit tests for supervisor/seccomp.c: guards on the group table, the
 * built filter read back (pfc text and a small BPF simulator, no
 * privileges), and live checks in a child forked inside the test that
 * loads the filter and tries the call.
 */
#include "config.h"

#include <errno.h>
#include <linux/netlink.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include "supervisor.h"

#define X32_SYSCALL_BIT 0x40000000u

/* The escape hatches THREATS.md and the design name; each must be in the
 * deny group, never merely absent (absent means ENOSYS, and the escape
 * tests want to see the jail refuse). */
/* clang-format off */
static const char *const must_deny[] = {
	"io_uring_setup", "io_uring_enter", "io_uring_register", "ptrace", "process_vm_readv",
	"process_vm_writev", "pidfd_getfd", "kcmp", "bpf", "perf_event_open", "keyctl",
	"add_key", "request_key", "userfaultfd", "mount", "umount2", "pivot_root", "chroot",
	"move_mount", "open_tree", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
	"unshare", "setns", "kexec_load", "kexec_file_load", "init_module", "finit_module",
	"delete_module", "iopl", "ioperm", "acct", "swapon", "swapoff", "reboot", "syslog",
	"quotactl", "open_by_handle_at", "name_to_handle_at",
};
/* clang-format on */

/* Decided by argument in seccomp.c, so no plain group may list them. */
/* clang-format off */
static const char *const arg_checked[] = {
	"socket", "socketpair", "clone", "clone3", "ioctl", "personality",
};
/* clang-format on */

/* ---- helpers ------------------------------------------------------------- */

/* Group I of the allow table, or the deny group for I == n. */
static const struct aj_syscall_group *
group_at(size_t i)
{
	return i < aj_seccomp_n_allow_groups ? &aj_seccomp_allow_groups[i] : &aj_seccomp_deny_group;
}

static const struct aj_syscall_group *
group_listing(const char *name)
{
	for (size_t i = 0; i <= aj_seccomp_n_allow_groups; i++)
		for (const char *const *s = group_at(i)->syscalls; *s != NULL; s++)
			if (strcmp(*s, name) == 0)
				return group_at(i);
	return NULL;
}

static void *
build_opts(const struct aj_seccomp_opts *opts)
{
	char err[256] = "";
	void *ctx = NULL;
	int r = aj_seccomp_build(opts, &ctx, err, sizeof(err));

	cr_assert_eq(r, 0, "aj_seccomp_build: %d (%s)", r, err);
	cr_assert_not_null(ctx);
	return ctx;
}

static void *
build(bool allow_unix)
{
	struct aj_seccomp_opts opts = {.allow_unix_sockets = allow_unix};

	return build_opts(&opts);
}

/* Export through a tmpfile into a NUL-terminated heap buffer. */
static char *
export_filter(void *ctx, bool bpf, size_t *len)
{
	FILE *f = tmpfile();
	char *buf;
	long n;
	int rc;

	cr_assert_not_null(f);
	rc = bpf ? seccomp_export_bpf(ctx, fileno(f)) : seccomp_export_pfc(ctx, fileno(f));
	cr_assert_eq(rc, 0, "export: %d", rc);
	n = lseek(fileno(f), 0, SEEK_END);
	cr_assert_gt(n, 0);
	buf = malloc((size_t)n + 1);
	cr_assert_not_null(buf);
	cr_assert_eq(pread(fileno(f), buf, (size_t)n, 0), n);
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return buf;
}

/*
 * Run a classic-BPF seccomp program the way the kernel would, for the
 * instructions libseccomp emits (loads from seccomp_data, AND, jumps,
 * returns).  Anything else is reported as an impossible action so a new
 * libseccomp that emits more fails loudly instead of passing quietly.
 */
#define SIM_UNSUPPORTED 0xdeadbeefu

static uint32_t
sim_run(const struct sock_filter *prog, size_t n, const struct seccomp_data *d)
{
	uint32_t a = 0;

	for (size_t pc = 0; pc < n; pc++) {
		const struct sock_filter *in = &prog[pc];
		bool jump;

		switch (in->code) {
		case BPF_LD | BPF_W | BPF_ABS:
			if (in->k % 4 != 0 || in->k + 4 > sizeof(*d))
				return SIM_UNSUPPORTED;
			memcpy(&a, (const char *)d + in->k, 4);
			continue;
		case BPF_ALU | BPF_AND | BPF_K:
			a &= in->k;
			continue;
		case BPF_RET | BPF_K:
			return in->k;
		case BPF_JMP | BPF_JA:
			pc += in->k;
			continue;
		case BPF_JMP | BPF_JEQ | BPF_K:
			jump = a == in->k;
			break;
		case BPF_JMP | BPF_JGT | BPF_K:
			jump = a > in->k;
			break;
		case BPF_JMP | BPF_JGE | BPF_K:
			jump = a >= in->k;
			break;
		case BPF_JMP | BPF_JSET | BPF_K:
			jump = (a & in->k) != 0;
			break;
		default:
			return SIM_UNSUPPORTED;
		}
		pc += jump ? in->jt : in->jf;
	}
	return SIM_UNSUPPORTED; /* fell off the end: the kernel would reject it */
}

struct sim {
	struct sock_filter *prog;
	size_t n;
};

static struct sim
sim_of(const struct aj_seccomp_opts *opts)
{
	void *ctx = build_opts(opts);
	size_t len;
	struct sim s;

	s.prog = (struct sock_filter *)export_filter(ctx, true, &len);
	cr_assert_eq(len % sizeof(struct sock_filter), 0);
	s.n = len / sizeof(struct sock_filter);
	cr_assert_leq(s.n, BPF_MAXINSNS, "the kernel takes at most %d instructions", BPF_MAXINSNS);
	aj_seccomp_free(ctx);
	return s;
}

static struct sim
sim_new(bool allow_unix)
{
	struct aj_seccomp_opts opts = {.allow_unix_sockets = allow_unix};

	return sim_of(&opts);
}

static uint32_t
sim_call(const struct sim *s, uint32_t arch, int nr, uint64_t a0, uint64_t a1)
{
	struct seccomp_data d = {.nr = nr, .arch = arch, .args = {a0, a1}};

	return sim_run(s->prog, s->n, &d);
}

static uint32_t
sim_call3(const struct sim *s, uint32_t arch, int nr, uint64_t a0, uint64_t a1, uint64_t a2)
{
	struct seccomp_data d = {.nr = nr, .arch = arch, .args = {a0, a1, a2}};

	return sim_run(s->prog, s->n, &d);
}

#define ALLOW SECCOMP_RET_ALLOW
#define KILL SECCOMP_RET_KILL_PROCESS
#define ERRNO(e) (SECCOMP_RET_ERRNO | (e))

/* Fork; the child loads the filter and its exit code is PROBE's answer.
 * Returns the raw wait status. */
static int
run_filtered(bool allow_unix, int (*probe)(void))
{
	void *ctx = build(allow_unix);
	int status;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		/* A KILL_PROCESS death must not leave a core file behind. */
		struct rlimit no_core = {0, 0};
		(void)setrlimit(RLIMIT_CORE, &no_core);
		if (aj_seccomp_load(ctx) < 0)
			_exit(200);
		_exit(probe());
	}
	aj_seccomp_free(ctx);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(!(WIFEXITED(status) && WEXITSTATUS(status) == 200),
		  "the child could not load the filter");
	return status;
}

/* The probe's errno (0 for success) from the child's exit status. */
static void
expect_exit(int status, int want, const char *what)
{
	cr_assert(WIFEXITED(status), "%s: child died by signal %d", what,
		  WIFSIGNALED(status) ? WTERMSIG(status) : -1);
	cr_assert_eq(WEXITSTATUS(status), want, "%s: got %d (%s), want %d (%s)", what,
		     WEXITSTATUS(status), strerror(WEXITSTATUS(status)), want, strerror(want));
}

static void
expect_sigsys(int status, const char *what)
{
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS,
		  "%s: want death by SIGSYS, got %s %d", what,
		  WIFSIGNALED(status) ? "signal" : "exit",
		  WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
}

static int
errno_of(long r)
{
	return r < 0 ? errno : 0;
}

/* ---- the table ----------------------------------------------------------- */

static void
free_params(struct criterion_test_params *p)
{
	cr_free(p->params);
}

/* One test per group (the allow groups, then the deny group). */
ParameterizedTestParameters(seccomp, group_is_sound)
{
	size_t n = aj_seccomp_n_allow_groups + 1;
	size_t *idx = cr_malloc(n * sizeof(*idx));

	for (size_t i = 0; i < n; i++)
		idx[i] = i;
	return cr_make_param_array(size_t, idx, n, free_params);
}

ParameterizedTest(size_t *idx, seccomp, group_is_sound)
{
	const struct aj_syscall_group *g = group_at(*idx);
	bool deny = *idx == aj_seccomp_n_allow_groups;
	struct sim s = sim_new(false);

	cr_assert_not_null(g->name);
	cr_assert_eq(g->name[0], '@', "group names start with @: %s", g->name);
	cr_assert(g->help != NULL && g->help[0] != '\0', "%s has no help line", g->name);
	cr_assert_null(strchr(g->help, '\n'), "%s: the help is one line", g->name);
	cr_assert(g->syscalls != NULL && g->syscalls[0] != NULL, "%s is empty", g->name);
	for (const char *const *name = g->syscalls; *name != NULL; name++) {
		int nr = seccomp_syscall_resolve_name_arch(SCMP_ARCH_X86_64, *name);

		cr_assert_geq(nr, 0, "%s: %s is not an x86_64 syscall in libseccomp", g->name,
			      *name);
		/* The built filter says what the table says, whatever the args. */
		cr_assert_eq(sim_call(&s, AUDIT_ARCH_X86_64, nr, 0, 0), deny ? ERRNO(EPERM) : ALLOW,
			     "%s: %s", g->name, *name);
		cr_assert_eq(sim_call(&s, AUDIT_ARCH_X86_64, nr, ~0ULL, ~0ULL),
			     deny ? ERRNO(EPERM) : ALLOW, "%s: %s", g->name, *name);
	}
	free(s.prog);
}

Test(seccomp, no_syscall_in_two_places)
{
	for (size_t i = 0; i <= aj_seccomp_n_allow_groups; i++)
		for (const char *const *a = group_at(i)->syscalls; *a != NULL; a++)
			for (size_t j = i; j <= aj_seccomp_n_allow_groups; j++)
				for (const char *const *b = group_at(j)->syscalls; *b != NULL; b++)
					cr_assert(a == b || strcmp(*a, *b) != 0,
						  "%s is listed in %s and in %s", *a,
						  group_at(i)->name, group_at(j)->name);
}

Test(seccomp, escape_hatches_are_denied)
{
	for (size_t i = 0; i < AJ_ARRAY_SIZE(must_deny); i++)
		cr_assert_eq(group_listing(must_deny[i]), &aj_seccomp_deny_group,
			     "%s must be in %s", must_deny[i], aj_seccomp_deny_group.name);
}

Test(seccomp, argument_checked_calls_are_in_no_group)
{
	for (size_t i = 0; i < AJ_ARRAY_SIZE(arg_checked); i++) {
		const struct aj_syscall_group *g = group_listing(arg_checked[i]);
		cr_assert_null(g, "%s is decided by argument, but %s lists it", arg_checked[i],
			       g != NULL ? g->name : "");
	}
}

/* The ENOSYS probe below needs a syscall nobody lists. */
Test(seccomp, vhangup_is_unlisted)
{
	cr_assert_null(group_listing("vhangup"));
}

/* ---- the built filter, read back ----------------------------------------- */

Test(seccomp, build_rejects_missing_arguments)
{
	char err[128] = "";
	void *ctx = NULL;

	cr_assert_eq(aj_seccomp_build(NULL, &ctx, err, sizeof(err)), -EINVAL);
	cr_assert_neq(err[0], '\0');
	cr_assert_null(ctx);
	aj_seccomp_free(NULL);
	cr_assert_eq(aj_seccomp_load(NULL), -EINVAL);
}

Test(seccomp, pfc_shows_attributes)
{
	for (int unix_ok = 0; unix_ok < 2; unix_ok++) {
		void *ctx = build(unix_ok);
		size_t len;
		char *pfc = export_filter(ctx, false, &len);
		const char *arch;
		uint32_t v = 0;

		cr_assert_not_null(
			strstr(pfc, "# invalid architecture action\naction KILL_PROCESS;"),
			"bad-arch action is not KILL_PROCESS:\n%s", pfc);
		cr_assert_not_null(strstr(pfc, "# default action\n  action ERRNO(38);"),
				   "default action is not ERRNO(ENOSYS)");
		arch = strstr(pfc, "# filter for arch ");
		cr_assert_not_null(arch);
		cr_assert(strncmp(arch, "# filter for arch x86_64 ", 25) == 0, "%.40s", arch);
		cr_assert_null(strstr(arch + 1, "# filter for arch "), "only x86_64 is filtered");
		cr_assert_not_null(strstr(pfc, "# filter for syscall \"io_uring_setup\""));
		cr_assert_null(strstr(pfc, "\"clone3\""), "clone3 is left to the default");
		free(pfc);
		cr_assert_eq(seccomp_attr_get(ctx, SCMP_FLTATR_ACT_BADARCH, &v), 0);
		cr_assert_eq(v, SCMP_ACT_KILL_PROCESS);
		cr_assert_eq(seccomp_attr_get(ctx, SCMP_FLTATR_CTL_NNP, &v), 0);
		cr_assert_eq(v, 1);
		cr_assert_eq(seccomp_attr_get(ctx, SCMP_FLTATR_CTL_TSYNC, &v), 0);
		cr_assert_eq(v, 1);
		aj_seccomp_free(ctx);
	}
}

/*
 * libseccomp 2.5.4's pfc text does not print its x32 check, so read the
 * BPF: after the arch compare the program must send nr >= 0x40000000
 * (except -1) to KILL_PROCESS before any syscall compare.
 */
Test(seccomp, bpf_kills_x32_and_foreign_arches)
{
	struct sim s = sim_new(false);
	bool found = false;

	for (size_t pc = 0; pc + 2 < s.n && !found; pc++) {
		const struct sock_filter *in = &s.prog[pc];
		if (in->code == (BPF_JMP | BPF_JGE | BPF_K) && in->k == X32_SYSCALL_BIT)
			found = true;
	}
	cr_assert(found, "no nr >= __X32_SYSCALL_BIT compare in the BPF");
	cr_assert_eq(sim_call(&s, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT | __NR_getpid, 0, 0), KILL);
	cr_assert_eq(sim_call(&s, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT | __NR_socket, AF_INET, 0),
		     KILL);
	cr_assert_eq(sim_call(&s, AUDIT_ARCH_X86_64, 0x7fffffff, 0, 0), KILL);
	/* i386: 102 is socketcall there, getuid here. */
	cr_assert_eq(sim_call(&s, AUDIT_ARCH_I386, 102, 1, 0), KILL);
	cr_assert_eq(sim_call(&s, AUDIT_ARCH_I386, 20, 0, 0), KILL);
	cr_assert_eq(sim_call(&s, AUDIT_ARCH_X86_64, __NR_getpid, 0, 0), ALLOW);
	/* An unknown native number gets the default. */
	cr_assert_eq(sim_call(&s, AUDIT_ARCH_X86_64, 1000, 0, 0), ERRNO(ENOSYS));
	free(s.prog);
}

Test(seccomp, bpf_argument_rules)
{
	struct sim s = sim_new(false), u = sim_new(true);
	const uint32_t x = AUDIT_ARCH_X86_64;
	const uint64_t hi = 1ULL << 32;
	const uint64_t ns[] = {CLONE_NEWNS,   CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC,
			       CLONE_NEWUSER, CLONE_NEWPID,    CLONE_NEWNET};

	cr_assert_eq(sim_call(&s, x, __NR_socket, AF_INET, 0), ERRNO(EPERM));
	cr_assert_eq(sim_call(&s, x, __NR_socket, AF_UNIX, 0), ERRNO(EPERM));
	cr_assert_eq(sim_call(&u, x, __NR_socket, AF_UNIX, 0), ALLOW);
	cr_assert_eq(sim_call(&u, x, __NR_socket, AF_INET, 0), ERRNO(EPERM));
	cr_assert_eq(sim_call(&u, x, __NR_socket, AF_NETLINK, 0), ERRNO(EPERM));
	cr_assert_eq(sim_call3(&u, x, __NR_socket, AF_NETLINK, SOCK_RAW, NETLINK_AUDIT),
		     ERRNO(EPERM));
	cr_assert_eq(sim_call(&u, x, __NR_socket, hi | AF_UNIX, 0), ERRNO(EPERM));
	/* `socket unix deny` keeps the seqpacket kind, the broker socket's,
	 * whatever its flags; every other type is refused. */
	cr_assert_eq(sim_call(&s, x, __NR_socket, AF_UNIX, SOCK_SEQPACKET), ALLOW);
	cr_assert_eq(sim_call(&s, x, __NR_socket, AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC), ALLOW);
	cr_assert_eq(sim_call(&s, x, __NR_socket, AF_UNIX,
			      SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK),
		     ALLOW);
	cr_assert_eq(sim_call(&s, x, __NR_socket, AF_UNIX, SOCK_STREAM), ERRNO(EPERM));
	cr_assert_eq(sim_call(&s, x, __NR_socket, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC),
		     ERRNO(EPERM));
	cr_assert_eq(sim_call(&s, x, __NR_socket, AF_UNIX, SOCK_DGRAM), ERRNO(EPERM));
	cr_assert_eq(sim_call(&s, x, __NR_socket, AF_UNIX, SOCK_RAW), ERRNO(EPERM));
	cr_assert_eq(sim_call(&s, x, __NR_socket, AF_UNIX, 15), ERRNO(EPERM));
	cr_assert_eq(sim_call(&s, x, __NR_socket, hi | AF_UNIX, SOCK_SEQPACKET), ERRNO(EPERM));
	cr_assert_eq(sim_call(&s, x, __NR_socketpair, AF_UNIX, SOCK_STREAM), ALLOW);
	cr_assert_eq(sim_call(&s, x, __NR_socketpair, AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC),
		     ALLOW);
	cr_assert_eq(sim_call(&s, x, __NR_socketpair, AF_INET, SOCK_STREAM), ERRNO(EPERM));
	/* A datagram pair could sendto() any host socket path. */
	cr_assert_eq(sim_call(&s, x, __NR_socketpair, AF_UNIX, SOCK_DGRAM), ERRNO(EPERM));
	cr_assert_eq(sim_call(&s, x, __NR_socketpair, AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK),
		     ERRNO(EPERM));
	cr_assert_eq(sim_call(&u, x, __NR_socketpair, AF_UNIX, SOCK_DGRAM), ERRNO(EPERM));
	cr_assert_eq(sim_call(&s, x, __NR_socketpair, AF_UNIX, SOCK_RAW), ERRNO(EPERM));
	cr_assert_eq(sim_call(&s, x, __NR_socketpair, hi | AF_UNIX, SOCK_STREAM), ERRNO(EPERM));

	cr_assert_eq(sim_call(&s, x, __NR_clone, SIGCHLD, 0), ALLOW);
	cr_assert_eq(sim_call(&s, x, __NR_clone, CLONE_VM | CLONE_VFORK | SIGCHLD, 0), ALLOW);
	cr_assert_eq(sim_call(&s, x, __NR_clone,
			      CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
				      CLONE_SYSVSEM | CLONE_SETTLS | CLONE_PARENT_SETTID |
				      CLONE_CHILD_CLEARTID,
			      0),
		     ALLOW);
	/* CLONE_NEWTIME's bit is the exit signal for clone(). */
	cr_assert_eq(sim_call(&s, x, __NR_clone, CLONE_NEWTIME, 0), ALLOW);
	for (size_t i = 0; i < AJ_ARRAY_SIZE(ns); i++) {
		cr_assert_eq(sim_call(&s, x, __NR_clone, ns[i] | SIGCHLD, 0), ERRNO(EPERM),
			     "flag %#llx", (unsigned long long)ns[i]);
		cr_assert_eq(sim_call(&s, x, __NR_clone, ns[i] | CLONE_NEWNET, 0), ERRNO(EPERM));
	}
	cr_assert_eq(sim_call(&s, x, __NR_clone3, 0, 0), ERRNO(ENOSYS));

	cr_assert_eq(sim_call(&s, x, __NR_ioctl, 0, TIOCSTI), ERRNO(EPERM));
	cr_assert_eq(sim_call(&s, x, __NR_ioctl, 0, hi | TIOCSTI), ERRNO(EPERM));
	cr_assert_eq(sim_call(&s, x, __NR_ioctl, 0, ~0ULL << 32 | TIOCSTI), ERRNO(EPERM));
	cr_assert_eq(sim_call(&s, x, __NR_ioctl, 0, TIOCLINUX), ERRNO(EPERM));
	cr_assert_eq(sim_call(&s, x, __NR_ioctl, 0, hi | TIOCLINUX), ERRNO(EPERM));
	/* Everything around them is allowed, including the neighbours. */
	for (uint64_t cmd = TIOCSTI - 40; cmd < TIOCLINUX + 40; cmd++)
		if (cmd != TIOCSTI && cmd != TIOCLINUX)
			cr_assert_eq(sim_call(&s, x, __NR_ioctl, 0, cmd), ALLOW, "cmd %#llx",
				     (unsigned long long)cmd);
	cr_assert_eq(sim_call(&s, x, __NR_ioctl, 0, TCGETS), ALLOW);
	cr_assert_eq(sim_call(&s, x, __NR_ioctl, 0, hi | FIONREAD), ALLOW);
	cr_assert_eq(sim_call(&s, x, __NR_ioctl, 0, 0), ALLOW);
	cr_assert_eq(sim_call(&s, x, __NR_ioctl, 0, 0xffffffff), ALLOW);
	cr_assert_eq(sim_call(&s, x, __NR_ioctl, 0, 0xc0045878 /* FIFREEZE-like */), ALLOW);

	cr_assert_eq(sim_call(&s, x, __NR_personality, PER_LINUX, 0), ALLOW);
	cr_assert_eq(sim_call(&s, x, __NR_personality, 0xffffffff, 0), ALLOW);
	cr_assert_eq(sim_call(&s, x, __NR_personality, ~0ULL, 0), ALLOW);
	cr_assert_eq(sim_call(&s, x, __NR_personality, READ_IMPLIES_EXEC, 0), ERRNO(EPERM));
	cr_assert_eq(sim_call(&s, x, __NR_personality, hi | READ_IMPLIES_EXEC, 0), ERRNO(EPERM));
	cr_assert_eq(sim_call(&s, x, __NR_personality, ADDR_NO_RANDOMIZE, 0), ERRNO(EPERM));
	cr_assert_eq(sim_call(&s, x, __NR_personality, PER_LINUX32, 0), ERRNO(EPERM));
	cr_assert_eq(sim_call(&s, x, __NR_personality, 1, 0), ERRNO(EPERM));
	cr_assert_eq(sim_call(&s, x, __NR_personality, 0xfffffffe, 0), ERRNO(EPERM));
	free(s.prog);
	free(u.prog);
}

/* ---- live: a child loads the filter and tries ---------------------------- */

static int
probe_socket_inet(void)
{
	return errno_of(socket(AF_INET, SOCK_STREAM, 0));
}

static int
probe_socket_unix(void)
{
	return errno_of(socket(AF_UNIX, SOCK_STREAM, 0));
}

static int
probe_socket_unix_seqpacket(void)
{
	return errno_of(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
}

static int
probe_socketpair_unix(void)
{
	int sv[2];
	return errno_of(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
}

static int
probe_socketpair_inet(void)
{
	int sv[2];
	return errno_of(socketpair(AF_INET, SOCK_STREAM, 0, sv));
}

Test(seccomp, live_sockets)
{
	expect_exit(run_filtered(false, probe_socket_inet), EPERM, "socket(AF_INET)");
	expect_exit(run_filtered(true, probe_socket_inet), EPERM, "socket(AF_INET), unix ok");
	expect_exit(run_filtered(false, probe_socket_unix), EPERM, "socket(AF_UNIX)");
	expect_exit(run_filtered(true, probe_socket_unix), 0, "socket(AF_UNIX), unix ok");
	expect_exit(run_filtered(false, probe_socket_unix_seqpacket), 0,
		    "socket(AF_UNIX, SOCK_SEQPACKET)");
	expect_exit(run_filtered(false, probe_socketpair_unix), 0, "socketpair(AF_UNIX)");
	expect_exit(run_filtered(false, probe_socketpair_inet), EPERM, "socketpair(AF_INET)");
}

static int
probe_io_uring(void)
{
	char params[120] = {0}; /* struct io_uring_params, zeroed */
	return errno_of(syscall(__NR_io_uring_setup, 1, params));
}

static int
probe_unshare_user(void)
{
	return errno_of(syscall(__NR_unshare, CLONE_NEWUSER));
}

/* Should a clone slip through, the copy leaves at once and the probe says
 * so with an exit code no errno uses. */
static int
reap_unexpected(long r)
{
	if (r == 0)
		_exit(0);
	if (r > 0) {
		(void)waitpid((pid_t)r, NULL, 0);
		return 250;
	}
	return errno;
}

static int
probe_clone_newnet(void)
{
	return reap_unexpected(syscall(__NR_clone, CLONE_NEWNET | SIGCHLD, 0, NULL, NULL, 0));
}

static int
probe_clone_plain(void)
{
	long r = syscall(__NR_clone, SIGCHLD, 0, NULL, NULL, 0);

	if (r == 0)
		_exit(0);
	if (r < 0)
		return errno;
	return waitpid((pid_t)r, NULL, 0) == r ? 0 : 251;
}

static int
probe_clone3(void)
{
	struct clone_args args = {.exit_signal = SIGCHLD};
	return reap_unexpected(syscall(__NR_clone3, &args, sizeof(args)));
}

Test(seccomp, live_namespaces_and_io_uring)
{
	expect_exit(run_filtered(false, probe_io_uring), EPERM, "io_uring_setup");
	expect_exit(run_filtered(false, probe_unshare_user), EPERM, "unshare(CLONE_NEWUSER)");
	expect_exit(run_filtered(false, probe_clone_newnet), EPERM, "clone(CLONE_NEWNET)");
	expect_exit(run_filtered(false, probe_clone_plain), 0, "clone(SIGCHLD)");
	expect_exit(run_filtered(false, probe_clone3), ENOSYS, "clone3");
}

/* A non-terminal fd: should the filter ever fail, nothing is pushed into
 * the terminal running the tests (the kernel would say ENOTTY). */
static int
devnull(void)
{
	int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		_exit(252);
	return fd;
}

static int
probe_tiocsti_high_bits(void)
{
	return errno_of(syscall(__NR_ioctl, devnull(), TIOCSTI | (1UL << 32), "x"));
}

static int
probe_tiocsti(void)
{
	return errno_of(ioctl(devnull(), TIOCSTI, "x"));
}

static int
probe_tioclinux(void)
{
	char sub = 0;
	return errno_of(ioctl(devnull(), TIOCLINUX, &sub));
}

/* An allowed ioctl reaches the kernel, whose answer for /dev/null is
 * ENOTTY; FIONREAD with high garbage works on a pipe. */
static int
probe_ioctl_allowed(void)
{
	int p[2], n = -1;

	if (ioctl(devnull(), TCGETS, &(char[64]){0}) == 0 || errno != ENOTTY)
		return 1;
	if (pipe(p) < 0 || write(p[1], "abc", 3) != 3)
		return 2;
	if (syscall(__NR_ioctl, p[0], FIONREAD | (1UL << 32), &n) < 0 || n != 3)
		return 3;
	return 0;
}

Test(seccomp, live_ioctl)
{
	expect_exit(run_filtered(false, probe_tiocsti_high_bits), EPERM, "TIOCSTI | 1<<32");
	expect_exit(run_filtered(false, probe_tiocsti), EPERM, "TIOCSTI");
	expect_exit(run_filtered(false, probe_tioclinux), EPERM, "TIOCLINUX");
	expect_exit(run_filtered(false, probe_ioctl_allowed), 0, "TCGETS, FIONREAD");
}

static int
probe_personality_rie(void)
{
	return errno_of(personality(READ_IMPLIES_EXEC));
}

static int
probe_personality_query(void)
{
	return errno_of(personality(0xffffffff));
}

static int
probe_vhangup(void)
{
	return errno_of(syscall(__NR_vhangup));
}

static int
probe_getpid(void)
{
	return syscall(__NR_getpid) > 0 ? 0 : errno;
}

Test(seccomp, live_personality_default_and_getpid)
{
	expect_exit(run_filtered(false, probe_personality_rie), EPERM, "personality(0x0400000)");
	expect_exit(run_filtered(false, probe_personality_query), 0, "personality(0xffffffff)");
	/* Unlisted and not denied: the default.  Unfiltered this is EPERM
	 * (no CAP_SYS_TTY_CONFIG), so ENOSYS can only come from the filter. */
	expect_exit(run_filtered(false, probe_vhangup), ENOSYS, "vhangup");
	expect_exit(run_filtered(false, probe_getpid), 0, "getpid");
}

/* Every member of the deny group answers EPERM.  All arguments are ~0:
 * invalid flags, fds, pointers and lengths for each of them, so even a
 * broken filter lets nothing happen. */
static int deny_nrs[128];
static size_t n_deny_nrs;

static int
probe_deny_group(void)
{
	for (size_t i = 0; i < n_deny_nrs; i++) {
		long r = syscall(deny_nrs[i], ~0UL, ~0UL, ~0UL, ~0UL, ~0UL, ~0UL);
		if (r != -1 || errno != EPERM)
			return (int)i + 1;
	}
	return 0;
}

Test(seccomp, live_deny_group_is_eperm)
{
	int status;

	n_deny_nrs = 0;
	for (const char *const *s = aj_seccomp_deny_group.syscalls; *s != NULL; s++) {
		cr_assert_lt(n_deny_nrs, AJ_ARRAY_SIZE(deny_nrs));
		deny_nrs[n_deny_nrs++] = seccomp_syscall_resolve_name_arch(SCMP_ARCH_X86_64, *s);
	}
	status = run_filtered(false, probe_deny_group);
	cr_assert(WIFEXITED(status));
	cr_assert_eq(WEXITSTATUS(status), 0, "%s did not answer EPERM",
		     WEXITSTATUS(status) > 0 && (size_t)WEXITSTATUS(status) <= n_deny_nrs
			     ? aj_seccomp_deny_group.syscalls[WEXITSTATUS(status) - 1]
			     : "?");
}

static int
probe_x32_getpid(void)
{
	(void)syscall(X32_SYSCALL_BIT | __NR_getpid);
	return 0;
}

/* i386 getpid (20) through the 32-bit gate.  The compat entry zeroes
 * r8-r11 on the way back. */
static long
int80_getpid(void)
{
	long ret = 20;

	__asm__ volatile("int $0x80" : "+a"(ret) : : "r8", "r9", "r10", "r11", "memory", "cc");
	return ret;
}

static int
probe_int80_getpid(void)
{
	(void)int80_getpid();
	return 0;
}

Test(seccomp, live_foreign_abis_are_killed)
{
	pid_t pid;
	int status;

	/* The kernel here may lack x32 entirely: seccomp still sees the
	 * number first, so the filter's answer is what is tested. */
	expect_sigsys(run_filtered(false, probe_x32_getpid), "x32 getpid");

	/* int $0x80 needs ia32 emulation; without it the gate faults and
	 * there is nothing for the filter to stop. */
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct rlimit no_core = {0, 0};
		(void)setrlimit(RLIMIT_CORE, &no_core);
		_exit(int80_getpid() == getpid() ? 0 : 1);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		cr_skip_test("no ia32 emulation in this kernel (int $0x80 unavailable)");
	expect_sigsys(run_filtered(false, probe_int80_getpid), "int $0x80 getpid");
}

/* ---- live: ordinary programs still run ----------------------------------- */

static const char *exec_path;
static char *const *exec_argv;

static int
probe_exec(void)
{
	execvp(exec_path, exec_argv);
	return 127;
}

/* Run ARGV under the filter with stdout captured; returns the status. */
static int
run_program(const char *path, char *const argv[], char *out, size_t outlen)
{
	int p[2], saved, status;
	ssize_t n;
	size_t used = 0;

	cr_assert_eq(pipe(p), 0);
	saved = dup(STDOUT_FILENO);
	cr_assert_geq(saved, 0);
	cr_assert_geq(dup2(p[1], STDOUT_FILENO), 0);
	close(p[1]);
	exec_path = path;
	exec_argv = argv;
	/* The pipe is small next to what these print, so waiting first is
	 * safe. */
	status = run_filtered(false, probe_exec);
	cr_assert_geq(dup2(saved, STDOUT_FILENO), 0);
	close(saved);
	while (used + 1 < outlen && (n = read(p[0], out + used, outlen - 1 - used)) > 0)
		used += (size_t)n;
	out[used] = '\0';
	close(p[0]);
	return status;
}

Test(seccomp, live_shell_and_coreutils, .timeout = 30)
{
	char *const argv[] = {"sh", "-c",
			      "ls / >/dev/null && cat /etc/hostname >/dev/null && echo ok", NULL};
	char out[64];
	int status = run_program("/bin/sh", argv, out, sizeof(out));

	expect_exit(status, 0, "sh");
	cr_assert_str_eq(out, "ok\n");
}

Test(seccomp, live_python, .timeout = 60)
{
	const char *py = access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
	char *const argv[] = {
		"python3", "-c",
		"import json,os,subprocess; print(subprocess.run([\"true\"]).returncode)", NULL};
	char out[64];
	int status = run_program(py, argv, out, sizeof(out));

	expect_exit(status, 0, "python3");
	cr_assert_str_eq(out, "0\n");
}

/* The filter the jail loads is compiled at build time (seccomp-gen); it must
 * be exactly what libseccomp builds from the table now. */
static void assert_variant_matches(bool allow_unix, bool loopback, bool notify);

/* Every prebuilt program equals what the table builds now. */
static void
assert_prebuilt_matches(bool allow_unix, bool notify)
{
	assert_variant_matches(allow_unix, false, notify);
	assert_variant_matches(allow_unix, true, notify);
}

static void
assert_variant_matches(bool allow_unix, bool loopback, bool notify)
{
	struct aj_seccomp_opts opts = {.allow_unix_sockets = allow_unix,
				       .loopback_sockets = loopback,
				       .notify_violations = notify};
	const struct sock_fprog *pre = aj_seccomp_prebuilt(&opts);
	void *ctx = NULL;
	char err[512];
	int fd = memfd_create("bpf", MFD_CLOEXEC);
	off_t size;
	struct sock_filter *insns;

	cr_assert_geq(fd, 0);
	cr_assert_eq(aj_seccomp_build(&opts, &ctx, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(seccomp_export_bpf((scmp_filter_ctx)ctx, fd), 0);
	aj_seccomp_free(ctx);
	size = lseek(fd, 0, SEEK_END);
	cr_assert_gt(size, 0);
	insns = malloc((size_t)size);
	cr_assert_eq(pread(fd, insns, (size_t)size, 0), size);
	close(fd);
	cr_assert_eq((size_t)pre->len, (size_t)size / sizeof(*insns),
		     "prebuilt filter has %u instructions, libseccomp builds %zu", pre->len,
		     (size_t)size / sizeof(*insns));
	cr_assert_eq(memcmp(pre->filter, insns, (size_t)size), 0,
		     "prebuilt filter differs from the table: rebuild seccomp-prebuilt.c");
	free(insns);
}

Test(seccomp, prebuilt_equals_table_deny_unix)
{
	assert_prebuilt_matches(false, false);
	assert_prebuilt_matches(false, true);
}

Test(seccomp, prebuilt_equals_table_allow_unix)
{
	assert_prebuilt_matches(true, false);
	assert_prebuilt_matches(true, true);
}

/* The prebuilt loader refuses AF_INET just like the libseccomp path. */
Test(seccomp, prebuilt_load_blocks_inet)
{
	struct aj_seccomp_opts opts = {.allow_unix_sockets = false};
	pid_t pid = fork();
	int st;

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		if (aj_seccomp_load_prebuilt(aj_seccomp_prebuilt(&opts)) != 0)
			_exit(10);
		if (socket(AF_INET, SOCK_STREAM, 0) >= 0)
			_exit(11);
		_exit(errno == EPERM ? 0 : 12);
	}
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st));
	cr_assert_eq(WEXITSTATUS(st), 0, "child check %d failed", WEXITSTATUS(st));
}

/* Issue 9: with escape attempts reported, glibc's NETLINK_ROUTE probe is a
 * plain EPERM and every other netlink protocol a reported attempt; the
 * narrower rule must win over the wider "not AF_UNIX". */
Test(seccomp, netlink_route_is_refused_without_a_report)
{
	struct aj_seccomp_opts opts = {.notify_violations = true};
	struct sim s = sim_of(&opts);
	const uint32_t x = AUDIT_ARCH_X86_64;

	cr_assert_eq(
		sim_call3(&s, x, __NR_socket, AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE),
		ERRNO(EPERM));
	cr_assert_eq(sim_call3(&s, x, __NR_socket, AF_NETLINK, SOCK_DGRAM, NETLINK_ROUTE),
		     ERRNO(EPERM));
	cr_assert_eq(sim_call3(&s, x, __NR_socket, AF_NETLINK, SOCK_RAW, NETLINK_AUDIT),
		     SECCOMP_RET_USER_NOTIF);
	cr_assert_eq(
		sim_call3(&s, x, __NR_socket, AF_NETLINK, SOCK_RAW, (1ULL << 32) | NETLINK_ROUTE),
		SECCOMP_RET_USER_NOTIF, "the whole 64-bit argument is compared");
	cr_assert_eq(sim_call3(&s, x, __NR_socket, AF_INET, SOCK_STREAM, 0),
		     SECCOMP_RET_USER_NOTIF);
	cr_assert_eq(sim_call3(&s, x, __NR_socket, AF_PACKET, SOCK_RAW, 0), SECCOMP_RET_USER_NOTIF);
	free(s.prog);
}

/* glibc's UDP probes (getaddrinfo's address sorting, its resolver) are a
 * plain EPERM; every other inet kind stays a reported attempt. */
Test(seccomp, udp_sockets_are_refused_without_a_report)
{
	struct aj_seccomp_opts opts = {.notify_violations = true};
	struct sim s = sim_of(&opts);
	const uint32_t x = AUDIT_ARCH_X86_64;
	const int flags = SOCK_CLOEXEC | SOCK_NONBLOCK;

	cr_assert_eq(sim_call3(&s, x, __NR_socket, AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0),
		     ERRNO(EPERM));
	cr_assert_eq(sim_call3(&s, x, __NR_socket, AF_INET6, SOCK_DGRAM | flags, IPPROTO_UDP),
		     ERRNO(EPERM));
	cr_assert_eq(sim_call3(&s, x, __NR_socket, AF_INET6, SOCK_DGRAM, 0), ERRNO(EPERM));
	cr_assert_eq(sim_call3(&s, x, __NR_socket, AF_INET, SOCK_DGRAM, IPPROTO_ICMP),
		     SECCOMP_RET_USER_NOTIF, "ping sockets are not the resolver's");
	cr_assert_eq(sim_call3(&s, x, __NR_socket, AF_INET, SOCK_DGRAM, (1ULL << 32) | 0),
		     SECCOMP_RET_USER_NOTIF, "the whole 64-bit protocol is compared");
	cr_assert_eq(sim_call3(&s, x, __NR_socket, AF_INET6, SOCK_STREAM | flags, 0),
		     SECCOMP_RET_USER_NOTIF);
	cr_assert_eq(sim_call3(&s, x, __NR_socket, AF_INET, SOCK_RAW, IPPROTO_UDP),
		     SECCOMP_RET_USER_NOTIF);
	cr_assert_eq(sim_call3(&s, x, __NR_socket, AF_PACKET, SOCK_DGRAM, 0),
		     SECCOMP_RET_USER_NOTIF);
	free(s.prog);
}

/* `socket inet loopback`: TCP and UDP are the agent's; raw, ICMP and other
 * families stay reported attempts.  Every call naming a destination goes
 * to the supervisor (it reports those leaving the jail's loopback), a
 * send() without one does not; without reporting they are plain calls. */
Test(seccomp, loopback_mode_allows_tcp_udp_and_watches_destinations)
{
	struct aj_seccomp_opts opts = {.notify_violations = true, .loopback_sockets = true};
	struct sim s = sim_of(&opts);
	const uint32_t x = AUDIT_ARCH_X86_64;
	const int flags = SOCK_CLOEXEC | SOCK_NONBLOCK;
	struct seccomp_data send_plain = {.nr = __NR_sendto, .arch = x, .args = {3, 0, 1, 0, 0, 0}};
	struct seccomp_data send_to = {.nr = __NR_sendto, .arch = x, .args = {3, 0, 1, 0, 1, 16}};
	struct seccomp_data send_high = {
		.nr = __NR_sendto, .arch = x, .args = {3, 0, 1, 0, 1ULL << 32, 16}};

	cr_assert_eq(sim_call3(&s, x, __NR_socket, AF_INET, SOCK_STREAM | flags, 0), ALLOW);
	cr_assert_eq(sim_call3(&s, x, __NR_socket, AF_INET6, SOCK_STREAM, IPPROTO_TCP), ALLOW);
	cr_assert_eq(sim_call3(&s, x, __NR_socket, AF_INET6, SOCK_DGRAM | flags, IPPROTO_UDP),
		     ALLOW);
	cr_assert_eq(sim_call3(&s, x, __NR_socket, AF_INET, SOCK_STREAM, IPPROTO_UDP),
		     SECCOMP_RET_USER_NOTIF, "a stream socket is TCP's only");
	cr_assert_eq(sim_call3(&s, x, __NR_socket, AF_INET, SOCK_RAW, IPPROTO_TCP),
		     SECCOMP_RET_USER_NOTIF);
	cr_assert_eq(sim_call3(&s, x, __NR_socket, AF_INET, SOCK_DGRAM, IPPROTO_ICMP),
		     SECCOMP_RET_USER_NOTIF);
	cr_assert_eq(sim_call3(&s, x, __NR_socket, AF_PACKET, SOCK_DGRAM, 0),
		     SECCOMP_RET_USER_NOTIF);
	cr_assert_eq(sim_call3(&s, x, __NR_connect, 3, 0, 16), SECCOMP_RET_USER_NOTIF);
	cr_assert_eq(sim_call3(&s, x, __NR_sendmsg, 3, 0, 0), SECCOMP_RET_USER_NOTIF);
	cr_assert_eq(sim_call3(&s, x, __NR_sendmmsg, 3, 0, 1), SECCOMP_RET_USER_NOTIF);
	cr_assert_eq(sim_run(s.prog, s.n, &send_plain), ALLOW);
	cr_assert_eq(sim_run(s.prog, s.n, &send_to), SECCOMP_RET_USER_NOTIF);
	cr_assert_eq(sim_run(s.prog, s.n, &send_high), SECCOMP_RET_USER_NOTIF,
		     "the whole 64-bit address pointer is compared");
	free(s.prog);

	opts.notify_violations = false;
	s = sim_of(&opts);
	cr_assert_eq(sim_call3(&s, x, __NR_socket, AF_INET, SOCK_STREAM, 0), ALLOW);
	cr_assert_eq(sim_call3(&s, x, __NR_connect, 3, 0, 16), ALLOW);
	cr_assert_eq(sim_run(s.prog, s.n, &send_to), ALLOW);
	cr_assert_eq(sim_call3(&s, x, __NR_socket, AF_INET, SOCK_RAW, 0), ERRNO(EPERM));
	free(s.prog);
}

/* The strict mode: no inet socket exists, so a destination is nobody's
 * business and the calls stay plain. */
Test(seccomp, strict_mode_does_not_watch_destinations)
{
	struct aj_seccomp_opts opts = {.notify_violations = true};
	struct sim s = sim_of(&opts);
	const uint32_t x = AUDIT_ARCH_X86_64;

	cr_assert_eq(sim_call3(&s, x, __NR_connect, 3, 0, 16), ALLOW);
	cr_assert_eq(sim_call3(&s, x, __NR_sendmsg, 3, 0, 0), ALLOW);
	cr_assert_eq(sim_call3(&s, x, __NR_socket, AF_INET, SOCK_STREAM, 0),
		     SECCOMP_RET_USER_NOTIF);
	free(s.prog);
}
