/*
 * The jail's syscall filter.  Default deny: a call nobody listed fails with
 * ENOSYS, which programs already treat as "this kernel is too old" and work
 * around.  Ordinary programs get named allow groups (modelled on the
 * moby/Docker default profile and systemd's @system-service), the known
 * escape hatches get an explicit EPERM (THREATS.md #3, #5, #6, #8-#10), and
 * a few calls are allowed only for harmless arguments.
 *
 * Building and loading are separate so the build can be tested without
 * privileges.  Only native x86_64 is accepted: i386 (`int $0x80`) and x32
 * (nr | __X32_SYSCALL_BIT) calls kill the process (THREATS.md #4).
 */
#include "config.h"

#include <errno.h>
#include <linux/filter.h>
#include <linux/netlink.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <seccomp.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "escape.h"
#include "supervisor.h"

/* The filter's answer to everything nobody listed.  glibc falls back on
 * ENOSYS (clone3 -> clone, faccessat2 -> faccessat, statx -> fstatat). */
#define AJ_SECCOMP_DEFAULT SCMP_ACT_ERRNO(ENOSYS)
#define AJ_SECCOMP_DENY SCMP_ACT_ERRNO(EPERM)

/* x86_64 has fewer than 512 syscalls; room to spare for the seen-set. */
#define AJ_SECCOMP_MAX_NR 1024

/* The kernel's SOCK_TYPE_MASK (not in the uapi headers): a socket type
 * without its SOCK_NONBLOCK/SOCK_CLOEXEC flags. */
#define AJ_SOCK_TYPE_MASK 0xf

/* Namespace flags clone() must not carry (THREATS.md #5).  CLONE_NEWTIME
 * is left out on purpose: for clone() its bit is part of CSIGNAL, the exit
 * signal, so refusing it would refuse ordinary forks. */
/* clang-format off */
static const struct {
	const char *name;
	uint64_t flag;
} clone_ns_flags[] = {
	{"CLONE_NEWNS", CLONE_NEWNS},     {"CLONE_NEWCGROUP", CLONE_NEWCGROUP},
	{"CLONE_NEWUTS", CLONE_NEWUTS},   {"CLONE_NEWIPC", CLONE_NEWIPC},
	{"CLONE_NEWUSER", CLONE_NEWUSER}, {"CLONE_NEWPID", CLONE_NEWPID},
	{"CLONE_NEWNET", CLONE_NEWNET},
};
/* clang-format on */

#define AJ_SYSCALLS(...) ((const char *const[]){__VA_ARGS__, NULL})

/*
 * What ordinary programs need: sh/bash, coreutils, python3, node, git, the
 * gcc/as/ld toolchain, make.  socket, socketpair, connect, sendto, sendmsg,
 * sendmmsg, clone, clone3, ioctl and personality are absent on purpose:
 * they are argument-checked below.
 * Every name must exist on x86_64 in libseccomp 2.5.4 (Linux 5.17 table).
 */
/* clang-format off */
const struct aj_syscall_group aj_seccomp_allow_groups[] = {
	{
		"@default",
		"what every process does before main(): TLS, robust futexes, rseq, exit",
		AJ_SYSCALLS("arch_prctl", "exit", "exit_group", "futex", "futex_waitv",
		            "get_robust_list", "getrandom", "membarrier", "restart_syscall",
		            "rseq", "rt_sigreturn", "sched_yield", "set_robust_list",
		            "set_tid_address", "uname", "getcpu"),
	},
	{
		"@memory",
		"heap, mappings and locks of the process's own memory (malloc, JITs, dlopen)",
		AJ_SYSCALLS("brk", "madvise", "mincore", "mlock", "mlock2", "mlockall", "mmap",
		            "mprotect", "mremap", "msync", "munlock", "munlockall", "munmap",
		            "pkey_alloc", "pkey_free", "pkey_mprotect"),
	},
	{
		"@basic-io",
		"read and write fds the program already holds, incl. zero-copy (cat, cp, shutil)",
		AJ_SYSCALLS("close", "close_range", "copy_file_range", "dup", "dup2", "dup3",
		            "lseek", "pread64", "preadv", "preadv2", "pwrite64", "pwritev",
		            "pwritev2", "read", "readv", "sendfile", "splice", "tee", "vmsplice",
		            "write", "writev"),
	},
	{
		"@file-system",
		"open, stat, list, create, rename and remove files; the mount namespace decides which",
		AJ_SYSCALLS("access", "chdir", "chmod", "chown", "creat", "faccessat", "faccessat2",
		            "fadvise64", "fallocate", "fchdir", "fchmod", "fchmodat", "fchown",
		            "fchownat", "fcntl", "flock", "fstat", "fstatfs", "ftruncate",
		            "futimesat", "getcwd", "getdents", "getdents64", "inotify_add_watch",
		            "inotify_init", "inotify_init1", "inotify_rm_watch", "lchown", "link",
		            "linkat", "lstat", "mkdir", "mkdirat", "mknod", "mknodat", "newfstatat",
		            "open", "openat", "openat2", "readahead", "readlink", "readlinkat",
		            "rename", "renameat", "renameat2", "rmdir", "stat", "statfs", "statx",
		            "symlink", "symlinkat", "truncate", "umask", "unlink", "unlinkat",
		            "utime", "utimensat", "utimes"),
	},
	{
		"@xattr",
		"extended attributes: ls and cp -a read ACLs and security labels through them",
		AJ_SYSCALLS("fgetxattr", "flistxattr", "fremovexattr", "fsetxattr", "getxattr",
		            "lgetxattr", "listxattr", "llistxattr", "lremovexattr", "lsetxattr",
		            "removexattr", "setxattr"),
	},
	{
		"@sync",
		"flush files to disk (git, package managers, editors saving safely)",
		AJ_SYSCALLS("fdatasync", "fsync", "sync", "sync_file_range", "syncfs"),
	},
	{
		"@io-event",
		"wait on many fds at once: event loops in node, python asyncio, make -j",
		AJ_SYSCALLS("epoll_create", "epoll_create1", "epoll_ctl", "epoll_pwait",
		            "epoll_pwait2", "epoll_wait", "eventfd", "eventfd2", "poll", "ppoll",
		            "pselect6", "select"),
	},
	{
		"@aio",
		"legacy Linux AIO (libaio users); unlike io_uring each request is a plain "
		"read/write/fsync/poll on an fd the caller already holds",
		AJ_SYSCALLS("io_cancel", "io_destroy", "io_getevents", "io_pgetevents", "io_setup",
		            "io_submit"),
	},
	{
		"@ipc",
		"pipes, memfds, SysV and POSIX IPC (shell pipelines, multiprocessing); "
		"the objects live in the jail's own IPC namespace",
		AJ_SYSCALLS("memfd_create", "mq_getsetattr", "mq_notify", "mq_open",
		            "mq_timedreceive", "mq_timedsend", "mq_unlink", "msgctl", "msgget",
		            "msgrcv", "msgsnd", "pipe", "pipe2", "semctl", "semget", "semop",
		            "semtimedop", "shmat", "shmctl", "shmdt", "shmget"),
	},
	{
		"@process",
		"start, run, signal and reap programs; the pid namespace limits whom they reach",
		AJ_SYSCALLS("execve", "execveat", "fork", "getpgid", "getpgrp", "getpid", "getppid",
		            "getsid", "gettid", "kill", "pidfd_open", "pidfd_send_signal", "prctl",
		            "rt_sigqueueinfo", "rt_tgsigqueueinfo", "setpgid", "setsid", "tgkill",
		            "tkill", "vfork", "wait4", "waitid"),
	},
	{
		"@signal",
		"install handlers, mask and wait for signals (every shell and runtime)",
		AJ_SYSCALLS("pause", "rt_sigaction", "rt_sigpending", "rt_sigprocmask",
		            "rt_sigsuspend", "rt_sigtimedwait", "sigaltstack", "signalfd",
		            "signalfd4"),
	},
	{
		"@clock",
		"read the clocks and sleep (usually through the vDSO, the syscall is the fallback)",
		AJ_SYSCALLS("clock_getres", "clock_gettime", "clock_nanosleep", "gettimeofday",
		            "nanosleep", "time"),
	},
	{
		"@timer",
		"timers and alarms: timeouts in event loops, sleep(1), make's job control",
		AJ_SYSCALLS("alarm", "getitimer", "setitimer", "timer_create", "timer_delete",
		            "timer_getoverrun", "timer_gettime", "timer_settime", "timerfd_create",
		            "timerfd_gettime", "timerfd_settime"),
	},
	{
		"@credentials",
		"ask who we are (id, git, python's os module read these at startup)",
		AJ_SYSCALLS("capget", "getegid", "geteuid", "getgid", "getgroups", "getresgid",
		            "getresuid", "getuid"),
	},
	{
		"@setuid",
		"drop to ids the process already holds; with every capability gone and "
		"no_new_privs set nothing can be gained (daemons and test suites 'drop privileges')",
		AJ_SYSCALLS("capset", "setfsgid", "setfsuid", "setgid", "setgroups", "setregid",
		            "setresgid", "setresuid", "setreuid", "setuid"),
	},
	{
		"@resources",
		"limits, usage, priorities and CPU affinity of the jail's own processes "
		"(nproc, ulimit, nice, thread pools sizing themselves)",
		AJ_SYSCALLS("getpriority", "getrlimit", "getrusage", "ioprio_get", "ioprio_set",
		            "prlimit64", "sched_get_priority_max", "sched_get_priority_min",
		            "sched_getaffinity", "sched_getattr", "sched_getparam",
		            "sched_getscheduler", "sched_rr_get_interval", "sched_setaffinity",
		            "sched_setattr", "sched_setparam", "sched_setscheduler", "setpriority",
		            "setrlimit", "sysinfo", "times"),
	},
	{
		"@network-io",
		"use sockets the jail already holds (the broker fd) or may create; creating "
		"one, and naming a destination, are argument-checked, and the network "
		"namespace holds only lo",
		AJ_SYSCALLS("accept", "accept4", "bind", "getpeername", "getsockname",
		            "getsockopt", "listen", "recvfrom", "recvmmsg", "recvmsg",
		            "setsockopt", "shutdown"),
	},
	{
		"@sandbox",
		"let a program sandbox itself further (nested seccomp, Landlock); these "
		"can only take privileges away",
		AJ_SYSCALLS("landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self",
		            "seccomp"),
	},
};
/* clang-format on */

const size_t aj_seccomp_n_allow_groups = AJ_ARRAY_SIZE(aj_seccomp_allow_groups);

/*
 * Explicit EPERM rather than the default ENOSYS: a program that probes for
 * these learns "not permitted", and the escape tests can tell a refusal by
 * the jail from a kernel that lacks the call.  The list, with the reason
 * for each line, is common/escape.c: the broker's own filter refuses the
 * same calls.
 */
const struct aj_syscall_group aj_seccomp_deny_group = {
	"@escape",
	"known ways around the jail or into kernel attack surface; refused with EPERM",
	aj_escape_syscalls,
};

/* One build in progress: where rules go, where errors go, and which
 * syscalls already have their rules (each must be decided exactly once). */
struct build {
	scmp_filter_ctx ctx;
	uint32_t violation; /* escape attempts: EPERM, or a user notification */
	char *err;
	size_t errlen;
	uint64_t seen[AJ_SECCOMP_MAX_NR / 64];
};

/* libseccomp's codes stay inside this file: the contract promises only
 * -ENOMEM and -EINVAL from a build. */
static int
scmp_rc(int rc)
{
	return rc == -ENOMEM ? -ENOMEM : -EINVAL;
}

static int
build_fail(struct build *b, int rc, const char *what)
{
	return aj_err(b->err, b->errlen, scmp_rc(rc), "seccomp: adding the rule for %s failed: %s",
		      what, strerror(-rc));
}

/* Resolve NAME and record that its rules are being written now.  A name
 * libseccomp does not know, or that x86_64 lacks (libseccomp answers a
 * negative pseudo number for other arches' calls), is a bug in the table:
 * a rule for it would silently do nothing. */
static int
claim(struct build *b, const char *name, int *nr)
{
	int n = seccomp_syscall_resolve_name(name);

	if (n == __NR_SCMP_ERROR || n < 0)
		return aj_err(b->err, b->errlen, -EINVAL,
			      "seccomp: %s is not a system call on this architecture", name);
	if (n >= AJ_SECCOMP_MAX_NR)
		return aj_err(b->err, b->errlen, -EINVAL,
			      "seccomp: %s has number %d, beyond the table's range", name, n);
	if (b->seen[n / 64] & (UINT64_C(1) << (n % 64)))
		return aj_err(b->err, b->errlen, -EINVAL,
			      "seccomp: %s is listed twice; each call must be decided once", name);
	b->seen[n / 64] |= UINT64_C(1) << (n % 64);
	*nr = n;
	return 0;
}

static int
add_rule(struct build *b, const char *what, uint32_t action, int nr, unsigned int n_cmp,
	 const struct scmp_arg_cmp *cmp)
{
	int rc;

	/* libseccomp refuses a rule that repeats the default action
	 * (-EACCES); the default already says it, so the rule is kept in the
	 * source for the reader and for the day the default changes. */
	if (action == AJ_SECCOMP_DEFAULT)
		return 0;
	rc = seccomp_rule_add_array(b->ctx, action, nr, n_cmp, cmp);
	if (rc < 0)
		return build_fail(b, rc, what);
	return 0;
}

static int
add_group(struct build *b, const struct aj_syscall_group *group, uint32_t action)
{
	for (const char *const *name = group->syscalls; *name != NULL; name++) {
		int nr, r;

		r = claim(b, *name, &nr);
		if (r < 0)
			return r;
		r = add_rule(b, *name, action, nr, 0, NULL);
		if (r < 0)
			return r;
	}
	return 0;
}

/*
 * Give ACTION to every value of argument ARG whose low 32 bits are not in
 * SKIP.  libseccomp promises no order between overlapping rules with
 * different actions (an always-true rule even replaces the others), so
 * "EPERM for these, allow the rest" must be spelled as disjoint rules:
 * walk the bits from the top and, at each bit, emit the half that holds no
 * value of SKIP as one masked compare, descending into the half that does.
 * That is at most 32 rules per skipped value.  The top 32 bits are not
 * compared because the kernel truncates these arguments to unsigned int.
 */
static int
add_low32_complement(struct build *b, const char *what, uint32_t action, int nr, unsigned int arg,
		     const uint32_t *skip, size_t n_skip, int bit, uint32_t prefix)
{
	uint32_t mask = UINT32_C(0xffffffff) << bit;

	for (uint32_t half = 0; half < 2; half++) {
		uint32_t value = prefix | (half << bit);
		bool holds_skip = false;
		int r;

		for (size_t i = 0; i < n_skip; i++)
			if ((skip[i] & mask) == value)
				holds_skip = true;
		if (!holds_skip) {
			struct scmp_arg_cmp cmp = SCMP_CMP(arg, SCMP_CMP_MASKED_EQ, mask, value);
			r = add_rule(b, what, action, nr, 1, &cmp);
		} else if (bit > 0) {
			r = add_low32_complement(b, what, action, nr, arg, skip, n_skip, bit - 1,
						 value);
		} else {
			r = 0; /* exactly a skipped value: not ours to decide */
		}
		if (r < 0)
			return r;
	}
	return 0;
}

/*
 * A UDP socket of either inet family is refused without a report: glibc
 * opens one for every lookup that has more than one answer (getaddrinfo
 * sorts them by the source address a connect() would pick, RFC 6724;
 * `getent hosts localhost`, git finding the host's name, Python's
 * getaddrinfo) and for its resolver, and does without it.  A UDP socket
 * reaches nothing from the jail's lo-only namespace either way, so the
 * report would only be a false alarm, and kill such programs under
 * `on-violation kill`.  A stream, raw or any other kind stays an attempt.
 * The type is compared without SOCK_NONBLOCK/SOCK_CLOEXEC; the family and
 * the protocol (0 or PROTOCOL) on all 64 bits.  ACTION decides both inet
 * families of TYPE.
 */
static int
add_inet_rules(struct build *b, int nr, int type, int protocol, uint32_t action)
{
	static const int families[] = {AF_INET, AF_INET6};
	const int protocols[] = {0, protocol};
	int r = 0;

	for (size_t f = 0; r == 0 && f < AJ_ARRAY_SIZE(families); f++)
		for (size_t p = 0; r == 0 && p < AJ_ARRAY_SIZE(protocols); p++) {
			struct scmp_arg_cmp cmp[3] = {
				SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)families[f], 0),
				SCMP_A1(SCMP_CMP_MASKED_EQ, AJ_SOCK_TYPE_MASK, (scmp_datum_t)type),
				SCMP_A2(SCMP_CMP_EQ, (scmp_datum_t)protocols[p], 0),
			};
			r = add_rule(b, "socket(AF_INET*)", action, nr, 3, cmp);
		}
	return r;
}

/*
 * socket(): only AF_UNIX, and only when the profile says so (THREATS.md
 * #1, #12, #18) but for the seqpacket kind; everything else is EPERM, the answer "no permission"
 * rather than "no such call".  The compare is on all 64 bits, so a domain
 * with high garbage is refused even when its low half says AF_UNIX.
 */
static int
add_socket_rules(struct build *b, const struct aj_seccomp_opts *opts)
{
	/* EQ and NE ignore the second datum; it is spelled out so that
	 * clang's -Wmissing-field-initializers stays quiet. */
	struct scmp_arg_cmp is_unix = SCMP_A0(SCMP_CMP_EQ, AF_UNIX, 0);
	struct scmp_arg_cmp not_unix = SCMP_A0(SCMP_CMP_NE, AF_UNIX, 0);
	struct scmp_arg_cmp route[2] = {SCMP_A0(SCMP_CMP_EQ, AF_NETLINK, 0),
					SCMP_A2(SCMP_CMP_EQ, NETLINK_ROUTE, 0)};
	int nr, r, type;

	r = claim(b, "socket", &nr);
	if (r < 0)
		return r;
	/* AF_UNIX is a routine refusal (glibc asks nscd through one), not an
	 * escape attempt: it never becomes a violation.  Under `socket unix
	 * deny` the seqpacket kind stays allowed, for the broker socket
	 * (AJ_BROKER_SOCKET_PATH) of processes that did not inherit the
	 * door: the services that authority leaks through (THREATS.md #12:
	 * docker, ssh-agent, D-Bus, X11, gpg-agent) listen on stream
	 * sockets, which a seqpacket one cannot connect to (EPROTOTYPE), and
	 * the datagram kind, which can send to any socket path, is refused.
	 * One rule per type (the low four bits, the kernel's mask), so the
	 * rules are disjoint and their order does not matter. */
	if (opts->allow_unix_sockets)
		r = add_rule(b, "socket(AF_UNIX)", SCMP_ACT_ALLOW, nr, 1, &is_unix);
	else
		for (r = 0, type = 0; r == 0 && type <= AJ_SOCK_TYPE_MASK; type++) {
			struct scmp_arg_cmp cmp[2] = {
				is_unix,
				SCMP_A1(SCMP_CMP_MASKED_EQ, AJ_SOCK_TYPE_MASK, (scmp_datum_t)type),
			};

			r = add_rule(b, type == SOCK_SEQPACKET ? "socket(AF_UNIX, SOCK_SEQPACKET)"
							       : "socket(AF_UNIX, !SOCK_SEQPACKET)",
				     type == SOCK_SEQPACKET ? SCMP_ACT_ALLOW : AJ_SECCOMP_DENY, nr, 2,
				     cmp);
		}
	/* Nor is NETLINK_ROUTE: glibc's getaddrinfo (AI_ADDRCONFIG) and
	 * if_nameindex list the interfaces through one, and do without it.
	 * Reporting it would be a false alarm (and kill such programs under
	 * `on-violation kill`); any other netlink protocol is an attempt.
	 * libseccomp tests this rule before the wider one below (its EQ
	 * comparisons come before NE): test_seccomp's simulator checks it. */
	if (r == 0)
		r = add_rule(b, "socket(AF_NETLINK, NETLINK_ROUTE)", AJ_SECCOMP_DENY, nr, 2, route);
	/* `socket inet loopback`: TCP and UDP, in the jail's lo-only
	 * namespace (where their bytes are headed: add_destination_rules). */
	if (r == 0)
		r = add_inet_rules(b, nr, SOCK_DGRAM, IPPROTO_UDP,
				   opts->loopback_sockets ? SCMP_ACT_ALLOW : AJ_SECCOMP_DENY);
	if (r == 0 && opts->loopback_sockets)
		r = add_inet_rules(b, nr, SOCK_STREAM, IPPROTO_TCP, SCMP_ACT_ALLOW);
	if (r == 0)
		r = add_rule(b, "socket(!AF_UNIX)", b->violation, nr, 1, &not_unix);
	return r;
}

/*
 * connect(), sendto() with a destination, sendmsg() and sendmmsg() name
 * where a socket's bytes go.  Under `socket inet loopback`, with
 * violations reported, the supervisor hears of each one and lets the
 * kernel answer (destinations.c): it reports those headed out of the
 * jail's loopback, which the lo-only namespace refuses (ENETUNREACH).
 * Otherwise no inet socket exists and they are plain calls.
 */
static int
add_destination_rules(struct build *b, const struct aj_seccomp_opts *opts)
{
	static const char *const named[] = {"connect", "sendmsg", "sendmmsg"};
	bool watch = opts->loopback_sockets && opts->notify_violations;
	uint32_t action = watch ? SCMP_ACT_NOTIFY : SCMP_ACT_ALLOW;
	/* send() is sendto() without a destination: nothing to watch. */
	struct scmp_arg_cmp no_dest = SCMP_A4(SCMP_CMP_EQ, 0, 0);
	struct scmp_arg_cmp dest = SCMP_A4(SCMP_CMP_NE, 0, 0);
	int nr, r = 0;

	for (size_t i = 0; r == 0 && i < AJ_ARRAY_SIZE(named); i++) {
		r = claim(b, named[i], &nr);
		if (r == 0)
			r = add_rule(b, named[i], action, nr, 0, NULL);
	}
	if (r == 0)
		r = claim(b, "sendto", &nr);
	if (r == 0)
		r = add_rule(b, "sendto(no destination)", SCMP_ACT_ALLOW, nr, 1, &no_dest);
	if (r == 0)
		r = add_rule(b, "sendto(destination)", action, nr, 1, &dest);
	return r;
}

/* socketpair(): AF_UNIX is how pipelines of processes talk; nothing else
 * makes sense as a pair. */
static int
add_socketpair_rules(struct build *b)
{
	/* Only connected kinds: a datagram (or raw) socket from a pair can
	 * still sendto() any socket path on the host, which would bypass the
	 * ban on socket(AF_UNIX).  The type is compared without its
	 * SOCK_NONBLOCK/SOCK_CLOEXEC flags. */
	static const int connected[] = {SOCK_STREAM, SOCK_SEQPACKET};
	static const int unconnected[] = {SOCK_DGRAM, SOCK_RAW, SOCK_RDM, SOCK_PACKET};
	struct scmp_arg_cmp cmp[2] = {SCMP_A0(SCMP_CMP_EQ, AF_UNIX, 0)};
	struct scmp_arg_cmp not_unix = SCMP_A0(SCMP_CMP_NE, AF_UNIX, 0);
	int nr, r;

	r = claim(b, "socketpair", &nr);
	if (r < 0)
		return r;
	for (size_t i = 0; r == 0 && i < AJ_ARRAY_SIZE(connected); i++) {
		cmp[1] = (struct scmp_arg_cmp)SCMP_A1(SCMP_CMP_MASKED_EQ, AJ_SOCK_TYPE_MASK, connected[i]);
		r = add_rule(b, "socketpair(AF_UNIX, connected)", SCMP_ACT_ALLOW, nr, 2, cmp);
	}
	for (size_t i = 0; r == 0 && i < AJ_ARRAY_SIZE(unconnected); i++) {
		cmp[1] = (struct scmp_arg_cmp)SCMP_A1(SCMP_CMP_MASKED_EQ, AJ_SOCK_TYPE_MASK, unconnected[i]);
		r = add_rule(b, "socketpair(AF_UNIX, unconnected)", AJ_SECCOMP_DENY, nr, 2, cmp);
	}
	if (r == 0)
		r = add_rule(b, "socketpair(!AF_UNIX)", b->violation, nr, 1, &not_unix);
	return r;
}

/*
 * clone(): fork and threads yes, new namespaces no (THREATS.md #5).  One
 * EPERM rule per flag (they overlap only with each other, same action) and
 * one allow rule for "none of them", disjoint from all of those.  clone3()
 * passes its flags in memory seccomp cannot read, so it answers ENOSYS and
 * glibc falls back to clone().
 */
static int
add_clone_rules(struct build *b)
{
	uint64_t all = 0;
	struct scmp_arg_cmp none;
	int nr, nr3, r;

	r = claim(b, "clone", &nr);
	if (r < 0)
		return r;
	for (size_t i = 0; i < AJ_ARRAY_SIZE(clone_ns_flags); i++) {
		struct scmp_arg_cmp has =
			SCMP_A0(SCMP_CMP_MASKED_EQ, clone_ns_flags[i].flag, clone_ns_flags[i].flag);
		r = add_rule(b, clone_ns_flags[i].name, b->violation, nr, 1, &has);
		if (r < 0)
			return r;
		all |= clone_ns_flags[i].flag;
	}
	none = (struct scmp_arg_cmp)SCMP_A0(SCMP_CMP_MASKED_EQ, all, 0);
	r = add_rule(b, "clone without namespace flags", SCMP_ACT_ALLOW, nr, 1, &none);
	if (r < 0)
		return r;
	r = claim(b, "clone3", &nr3);
	if (r < 0)
		return r;
	return add_rule(b, "clone3", SCMP_ACT_ERRNO(ENOSYS), nr3, 0, NULL);
}

/*
 * ioctl(): terminals, sockets and files need it, but TIOCSTI pushes input
 * into the terminal of whoever reads it next (CVE-2017-5226) and TIOCLINUX
 * can do the same on a VT (CVE-2023-28100).  The kernel takes cmd as
 * unsigned int, so the compare looks at the low 32 bits only: TIOCSTI |
 * 1UL << 32 is still TIOCSTI (snapd CVE-2019-7303).
 */
static int
add_ioctl_rules(struct build *b)
{
	static const uint32_t refused[] = {TIOCSTI, TIOCLINUX};
	int nr, r;

	r = claim(b, "ioctl", &nr);
	if (r < 0)
		return r;
	for (size_t i = 0; i < AJ_ARRAY_SIZE(refused); i++) {
		struct scmp_arg_cmp is = SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffff, refused[i]);
		r = add_rule(b, i == 0 ? "ioctl(TIOCSTI)" : "ioctl(TIOCLINUX)", b->violation, nr, 1,
			     &is);
		if (r < 0)
			return r;
	}
	return add_low32_complement(b, "ioctl", SCMP_ACT_ALLOW, nr, 1, refused,
				    AJ_ARRAY_SIZE(refused), 31, 0);
}

/*
 * personality(): PER_LINUX and the 0xffffffff query only.  Flags such as
 * READ_IMPLIES_EXEC and ADDR_NO_RANDOMIZE weaken the agent's own exploit
 * mitigations (THREATS.md #10).  The kernel takes an unsigned int, hence
 * the 32-bit compares.
 */
static int
add_personality_rules(struct build *b)
{
	static const uint32_t allowed[] = {PER_LINUX, 0xffffffff};
	int nr, r;

	r = claim(b, "personality", &nr);
	if (r < 0)
		return r;
	for (size_t i = 0; i < AJ_ARRAY_SIZE(allowed); i++) {
		struct scmp_arg_cmp is = SCMP_A0(SCMP_CMP_MASKED_EQ, 0xffffffff, allowed[i]);
		r = add_rule(b, "personality", SCMP_ACT_ALLOW, nr, 1, &is);
		if (r < 0)
			return r;
	}
	return add_low32_complement(b, "personality", AJ_SECCOMP_DENY, nr, 0, allowed,
				    AJ_ARRAY_SIZE(allowed), 31, 0);
}

/* Every attribute is a decision, so every one is written down, defaults
 * included. */
static int
set_attributes(struct build *b)
{
	/* clang-format off */
	static const struct {
		enum scmp_filter_attr attr;
		const char *name;
		uint32_t value;
	} attrs[] = {
		/* A foreign ABI (i386 int $0x80, where 102 is socketcall rather
		 * than getuid) is an attack, not a program to humour.  With
		 * only x86_64 in the filter libseccomp also sends x32 calls
		 * (nr >= __X32_SYSCALL_BIT) to this action (THREATS.md #4). */
		{SCMP_FLTATR_ACT_BADARCH, "ACT_BADARCH", SCMP_ACT_KILL_PROCESS},
		/* Load unprivileged, and no setuid binary gains anything. */
		{SCMP_FLTATR_CTL_NNP, "CTL_NNP", 1},
		/* Filter every thread, should a library have started one. */
		{SCMP_FLTATR_CTL_TSYNC, "CTL_TSYNC", 1},
		/* Refusals are answered, not written to the kernel log, which
		 * a probing program could otherwise flood. */
		{SCMP_FLTATR_CTL_LOG, "CTL_LOG", 0},
		/* Keep the kernel's speculative store bypass mitigation. */
		{SCMP_FLTATR_CTL_SSB, "CTL_SSB", 0},
		/* Priority order (the default): kernels since 5.11 cache the
		 * argument-free allows, so the common calls skip the filter. */
		{SCMP_FLTATR_CTL_OPTIMIZE, "CTL_OPTIMIZE", 1},
		/* seccomp_load() reports the kernel's errno, not -ECANCELED. */
		{SCMP_FLTATR_API_SYSRAWRC, "API_SYSRAWRC", 1},
	};
	/* clang-format on */

	for (size_t i = 0; i < AJ_ARRAY_SIZE(attrs); i++) {
		int rc = seccomp_attr_set(b->ctx, attrs[i].attr, attrs[i].value);
		if (rc < 0)
			return aj_err(b->err, b->errlen, scmp_rc(rc),
				      "seccomp: setting %s failed: %s", attrs[i].name,
				      strerror(-rc));
	}
	return 0;
}

int
aj_seccomp_build(const struct aj_seccomp_opts *opts, void **out, char *err, size_t errlen)
{
	struct build b = {.err = err, .errlen = errlen};
	int r;

	/* Escape attempts are refused either way; with notification the
	 * supervisor hears of each one and answers EPERM itself. */
	b.violation = opts != NULL && opts->notify_violations ? SCMP_ACT_NOTIFY : AJ_SECCOMP_DENY;

	if (opts == NULL || out == NULL)
		return aj_err(err, errlen, -EINVAL, "seccomp: no options or no output");
	/* The table and the x32 reasoning above are x86_64's. */
	if (seccomp_arch_native() != SCMP_ARCH_X86_64)
		return aj_err(err, errlen, -EINVAL,
			      "seccomp: the syscall table is written for x86_64 only");
	b.ctx = seccomp_init(AJ_SECCOMP_DEFAULT);
	if (b.ctx == NULL)
		return aj_err(err, errlen, -ENOMEM, "seccomp: cannot allocate a filter");

	r = set_attributes(&b);
	for (size_t i = 0; r == 0 && i < aj_seccomp_n_allow_groups; i++)
		r = add_group(&b, &aj_seccomp_allow_groups[i], SCMP_ACT_ALLOW);
	if (r == 0)
		r = add_group(&b, &aj_seccomp_deny_group, b.violation);
	if (r == 0)
		r = add_socket_rules(&b, opts);
	if (r == 0)
		r = add_socketpair_rules(&b);
	if (r == 0)
		r = add_destination_rules(&b, opts);
	if (r == 0)
		r = add_clone_rules(&b);
	if (r == 0)
		r = add_ioctl_rules(&b);
	if (r == 0)
		r = add_personality_rules(&b);
	if (r < 0) {
		seccomp_release(b.ctx);
		return r;
	}
	*out = b.ctx;
	return 0;
}

int
aj_seccomp_load(void *ctx)
{
	int rc;

	if (ctx == NULL)
		return -EINVAL;
	/* API_SYSRAWRC: a kernel refusal comes back as its own -errno. */
	rc = seccomp_load((scmp_filter_ctx)ctx);
	return rc < 0 ? rc : 0;
}

void
aj_seccomp_free(void *ctx)
{
	if (ctx != NULL)
		seccomp_release((scmp_filter_ctx)ctx);
}
