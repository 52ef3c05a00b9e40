/*
 * Refused system calls in words: the arguments of a seccomp notification
 * decoded into JSON members for the violation event, and a one-line summary
 * for the end of the run.
 *
 * Only numbers are decoded.  A pointer argument points into the agent's
 * memory, which it may change between our read and any later use (and
 * which we may not be able to read at all), so paths and structs are shown
 * as raw hex or not at all.  Every string written comes from a const table
 * below, which is what makes the output safe JSON without escaping.
 *
 * Nothing is allocated: the monitor calls this from its event loop, once per
 * refused call, into a caller-owned buffer.
 */
#include "config.h"

#include <inttypes.h>
#include <linux/audit.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include "decode.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/*
 * The output buffer.  Text is added in units (a JSON member, a summary
 * word); a unit that does not fit is rolled back and everything after it is
 * dropped, so a short buffer holds a clean prefix instead of a torn token.
 */
struct out {
	char *buf;
	size_t cap;
	size_t len;
	size_t mark; /* where the unit being written started */
	bool failed; /* sticky: once a unit did not fit, nothing more is written */
};

static void
out_init(struct out *o, char *buf, size_t cap)
{
	*o = (struct out){.buf = buf, .cap = cap};
	if (cap > 0)
		buf[0] = '\0';
}

static void
out_put(struct out *o, const char *s)
{
	size_t n = strlen(s);

	/* cap - len is never 0 once cap > 0: one byte stays for the NUL. */
	if (o->failed || o->cap == 0 || n >= o->cap - o->len) {
		o->failed = true;
		return;
	}
	memcpy(o->buf + o->len, s, n + 1);
	o->len += n;
}

static void out_printf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
out_printf(struct out *o, const char *fmt, ...)
{
	char tmp[64]; /* the longest is a prefix and a 64-bit number */
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	out_put(o, tmp);
}

static void
unit_begin(struct out *o)
{
	o->mark = o->len;
}

static void
unit_end(struct out *o)
{
	if (!o->failed)
		return;
	o->len = o->mark;
	if (o->cap > 0)
		o->buf[o->len] = '\0';
}

/*
 * Name tables.  An enumeration (AF_*, PTRACE_*) matches on value; a flag
 * matches when (bits & mask) == value, mask defaulting to value, which lets
 * a multi-bit field like MS_MGC_VAL sit in the same table as single bits.
 */
struct name {
	uint64_t value;
	uint64_t mask;
	const char *name;
};

struct names {
	const struct name *v;
	size_t n;
};

/* clang-format off */
#define NAME(x) {(uint64_t)(x), 0, #x}
#define NAMES(t) {(t), ARRAY_SIZE(t)}

/* AF_UNIX before its aliases AF_LOCAL/AF_FILE, AF_NETLINK before AF_ROUTE. */
static const struct name family_names[] = {
	NAME(AF_UNSPEC), NAME(AF_UNIX), NAME(AF_INET), NAME(AF_AX25), NAME(AF_IPX),
	NAME(AF_APPLETALK), NAME(AF_NETROM), NAME(AF_BRIDGE), NAME(AF_ATMPVC), NAME(AF_X25),
	NAME(AF_INET6), NAME(AF_ROSE), NAME(AF_DECnet), NAME(AF_NETBEUI), NAME(AF_SECURITY),
	NAME(AF_KEY), NAME(AF_NETLINK), NAME(AF_PACKET), NAME(AF_ASH), NAME(AF_ECONET),
	NAME(AF_ATMSVC), NAME(AF_RDS), NAME(AF_SNA), NAME(AF_IRDA), NAME(AF_PPPOX),
	NAME(AF_WANPIPE), NAME(AF_LLC), NAME(AF_IB), NAME(AF_MPLS), NAME(AF_CAN), NAME(AF_TIPC),
	NAME(AF_BLUETOOTH), NAME(AF_IUCV), NAME(AF_RXRPC), NAME(AF_ISDN), NAME(AF_PHONET),
	NAME(AF_IEEE802154), NAME(AF_CAIF), NAME(AF_ALG), NAME(AF_NFC), NAME(AF_VSOCK),
	NAME(AF_KCM), NAME(AF_QIPCRTR), NAME(AF_SMC), NAME(AF_XDP), NAME(AF_MCTP),
};

/* The kernel keeps the kind in the low four bits of type (SOCK_TYPE_MASK)
 * and the creation flags above them. */
#define SOCK_TYPE_MASK 0xfu

static const struct name socktype_names[] = {
	NAME(SOCK_STREAM), NAME(SOCK_DGRAM), NAME(SOCK_RAW), NAME(SOCK_RDM),
	NAME(SOCK_SEQPACKET), NAME(SOCK_DCCP), NAME(SOCK_PACKET),
};

static const struct name sockflag_names[] = {
	NAME(SOCK_NONBLOCK), NAME(SOCK_CLOEXEC),
};

/* The terminal ioctls are why ioctl is filtered at all (TIOCSTI and
 * TIOCLINUX push input into the caller's terminal); the rest are common
 * enough to be worth a name in a report. */
static const struct name ioctl_names[] = {
	NAME(TCGETS), NAME(TCSETS), NAME(TCSETSW), NAME(TCSETSF), NAME(TCSBRK), NAME(TCXONC),
	NAME(TCFLSH), NAME(TIOCEXCL), NAME(TIOCNXCL), NAME(TIOCSCTTY), NAME(TIOCGPGRP),
	NAME(TIOCSPGRP), NAME(TIOCOUTQ), NAME(TIOCSTI), NAME(TIOCGWINSZ), NAME(TIOCSWINSZ),
	NAME(TIOCMGET), NAME(TIOCMSET), NAME(FIONREAD), NAME(TIOCLINUX), NAME(TIOCCONS),
	NAME(FIONBIO), NAME(TIOCNOTTY), NAME(TIOCSETD), NAME(TIOCGETD), NAME(TIOCSBRK),
	NAME(TIOCCBRK), NAME(TIOCGSID), NAME(TIOCGPTN), NAME(TIOCSPTLCK), NAME(TIOCGPTPEER),
	NAME(FIONCLEX), NAME(FIOCLEX), NAME(FIOASYNC),
	NAME(SIOCADDRT), NAME(SIOCDELRT), NAME(SIOCGIFCONF), NAME(SIOCGIFFLAGS),
	NAME(SIOCSIFFLAGS), NAME(SIOCGIFADDR), NAME(SIOCSIFADDR), NAME(SIOCGIFINDEX),
};

/* Ascending bit order, so the namespace flags read as in the kernel's
 * headers.  CLONE_NEWTIME shares its bit with CSIGNAL: it means a time
 * namespace to unshare/setns, but part of the exit signal to clone. */
static const struct name clone_names[] = {
	NAME(CLONE_NEWTIME), NAME(CLONE_VM), NAME(CLONE_FS), NAME(CLONE_FILES),
	NAME(CLONE_SIGHAND), NAME(CLONE_PIDFD), NAME(CLONE_PTRACE), NAME(CLONE_VFORK),
	NAME(CLONE_PARENT), NAME(CLONE_THREAD), NAME(CLONE_NEWNS), NAME(CLONE_SYSVSEM),
	NAME(CLONE_SETTLS), NAME(CLONE_PARENT_SETTID), NAME(CLONE_CHILD_CLEARTID),
	NAME(CLONE_DETACHED), NAME(CLONE_UNTRACED), NAME(CLONE_CHILD_SETTID),
	NAME(CLONE_NEWCGROUP), NAME(CLONE_NEWUTS), NAME(CLONE_NEWIPC), NAME(CLONE_NEWUSER),
	NAME(CLONE_NEWPID), NAME(CLONE_NEWNET), NAME(CLONE_IO), NAME(CLONE_CLEAR_SIGHAND),
	NAME(CLONE_INTO_CGROUP),
};
/* clang-format on */

/* The legacy clone() keeps the exit signal in the low byte of its flags. */
#define CLONE_CSIGNAL 0xffu

/* The flags that make a namespace: what the summary shows, since they are
 * why clone/unshare/setns get refused. */
#define CLONE_NS_MASK                                                                              \
	((uint64_t)(CLONE_NEWTIME | CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC |  \
		    CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET))

/* clang-format off */
/* MS_MGC_VAL first: mount(2) strips that old magic from the top 16 bits
 * before reading the rest, so its bits must not be read as MS_NOUSER etc. */
static const struct name mount_names[] = {
	{MS_MGC_VAL, MS_MGC_MSK, "MS_MGC_VAL"},
	NAME(MS_RDONLY), NAME(MS_NOSUID), NAME(MS_NODEV), NAME(MS_NOEXEC),
	NAME(MS_SYNCHRONOUS), NAME(MS_REMOUNT), NAME(MS_MANDLOCK), NAME(MS_DIRSYNC),
	NAME(MS_NOSYMFOLLOW), NAME(MS_NOATIME), NAME(MS_NODIRATIME), NAME(MS_BIND), NAME(MS_MOVE),
	NAME(MS_REC), NAME(MS_SILENT), NAME(MS_POSIXACL), NAME(MS_UNBINDABLE), NAME(MS_PRIVATE),
	NAME(MS_SLAVE), NAME(MS_SHARED), NAME(MS_RELATIME), NAME(MS_KERNMOUNT), NAME(MS_I_VERSION),
	NAME(MS_STRICTATIME), NAME(MS_LAZYTIME), NAME(MS_ACTIVE), NAME(MS_NOUSER),
};

static const struct name ptrace_names[] = {
	NAME(PTRACE_TRACEME), NAME(PTRACE_PEEKTEXT), NAME(PTRACE_PEEKDATA),
	NAME(PTRACE_PEEKUSER), NAME(PTRACE_POKETEXT), NAME(PTRACE_POKEDATA),
	NAME(PTRACE_POKEUSER), NAME(PTRACE_CONT), NAME(PTRACE_KILL), NAME(PTRACE_SINGLESTEP),
	NAME(PTRACE_GETREGS), NAME(PTRACE_SETREGS), NAME(PTRACE_GETFPREGS),
	NAME(PTRACE_SETFPREGS), NAME(PTRACE_ATTACH), NAME(PTRACE_DETACH),
	NAME(PTRACE_GETFPXREGS), NAME(PTRACE_SETFPXREGS), NAME(PTRACE_SYSCALL),
	NAME(PTRACE_ARCH_PRCTL), NAME(PTRACE_SYSEMU), NAME(PTRACE_SYSEMU_SINGLESTEP),
	NAME(PTRACE_SINGLEBLOCK), NAME(PTRACE_SETOPTIONS), NAME(PTRACE_GETEVENTMSG),
	NAME(PTRACE_GETSIGINFO), NAME(PTRACE_SETSIGINFO), NAME(PTRACE_GETREGSET),
	NAME(PTRACE_SETREGSET), NAME(PTRACE_SEIZE), NAME(PTRACE_INTERRUPT), NAME(PTRACE_LISTEN),
	NAME(PTRACE_PEEKSIGINFO), NAME(PTRACE_GETSIGMASK), NAME(PTRACE_SETSIGMASK),
	NAME(PTRACE_SECCOMP_GET_FILTER), NAME(PTRACE_SECCOMP_GET_METADATA),
	NAME(PTRACE_GET_SYSCALL_INFO), NAME(PTRACE_GET_RSEQ_CONFIGURATION),
};

/* Standard signals only (no aliases such as SIGIOT); real-time ones are
 * shown by number. */
static const struct name signal_names[] = {
	NAME(SIGHUP), NAME(SIGINT), NAME(SIGQUIT), NAME(SIGILL), NAME(SIGTRAP), NAME(SIGABRT),
	NAME(SIGBUS), NAME(SIGFPE), NAME(SIGKILL), NAME(SIGUSR1), NAME(SIGSEGV), NAME(SIGUSR2),
	NAME(SIGPIPE), NAME(SIGALRM), NAME(SIGTERM), NAME(SIGSTKFLT), NAME(SIGCHLD),
	NAME(SIGCONT), NAME(SIGSTOP), NAME(SIGTSTP), NAME(SIGTTIN), NAME(SIGTTOU), NAME(SIGURG),
	NAME(SIGXCPU), NAME(SIGXFSZ), NAME(SIGVTALRM), NAME(SIGPROF), NAME(SIGWINCH), NAME(SIGIO),
	NAME(SIGPWR), NAME(SIGSYS),
};
/* clang-format on */

static const struct names families = NAMES(family_names);
static const struct names socktypes = NAMES(socktype_names);
static const struct names sockflags = NAMES(sockflag_names);
static const struct names ioctls = NAMES(ioctl_names);
static const struct names clone_flags = NAMES(clone_names);
static const struct names mount_flags = NAMES(mount_names);
static const struct names ptrace_requests = NAMES(ptrace_names);
static const struct names signals = NAMES(signal_names);

static const char *
lookup(const struct names *t, uint64_t v)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->v[i].value == v)
			return t->v[i].name;
	return NULL;
}

/* A flag entry's bits if it is set in REST, else 0. */
static uint64_t
flag_match(const struct name *f, uint64_t rest)
{
	uint64_t mask = f->mask ? f->mask : f->value;

	return (rest & mask) == f->value ? mask : 0;
}

/*
 * The kernel reads most arguments as C int or unsigned int: only the low
 * 32 bits count, whatever the agent left in the upper half of the register.
 */
static int64_t
arg_int(const struct seccomp_data *d, int i)
{
	return (int32_t)(uint32_t)d->args[i];
}

static uint32_t
arg_u32(const struct seccomp_data *d, int i)
{
	return (uint32_t)d->args[i];
}

/* An enumeration value by name, or PREFIX and the signed number. */
static void
put_enum(struct out *o, const struct names *t, int64_t v, const char *prefix)
{
	const char *name = lookup(t, (uint64_t)v);

	if (name)
		out_put(o, name);
	else
		out_printf(o, "%s%" PRId64, prefix, v);
}

/* JSON members.  Each is one unit, with its separating comma. */

static void
member_key(struct out *o, const char *key)
{
	unit_begin(o);
	if (o->len > 0)
		out_put(o, ",");
	out_printf(o, "\"%s\":", key);
}

static void
member_enum(struct out *o, const char *key, const struct names *t, int64_t v, const char *prefix)
{
	member_key(o, key);
	out_put(o, "\"");
	put_enum(o, t, v, prefix);
	out_put(o, "\"");
	unit_end(o);
}

static void
member_int(struct out *o, const char *key, int64_t v)
{
	member_key(o, key);
	out_printf(o, "%" PRId64, v);
	unit_end(o);
}

static void
member_hex(struct out *o, const char *key, uint64_t v)
{
	member_key(o, key);
	out_printf(o, "\"0x%" PRIx64 "\"", v);
	unit_end(o);
}

/* Every set flag by name; bits no entry names, as one hex string last, so
 * nothing the agent asked for disappears from the report. */
static void
member_flags(struct out *o, const char *key, const struct names *t, uint64_t v)
{
	const char *sep = "";

	member_key(o, key);
	out_put(o, "[");
	for (size_t i = 0; i < t->n; i++) {
		uint64_t bits = flag_match(&t->v[i], v);
		if (bits == 0)
			continue;
		out_printf(o, "%s\"%s\"", sep, t->v[i].name);
		sep = ",";
		v &= ~bits;
	}
	if (v != 0)
		out_printf(o, "%s\"0x%" PRIx64 "\"", sep, v);
	out_put(o, "]");
	unit_end(o);
}

/* Summary words.  Each is one unit with its leading separator. */

static void
word(struct out *o, const char *sep, const char *s)
{
	unit_begin(o);
	out_put(o, sep);
	out_put(o, s);
	unit_end(o);
}

static void
word_enum(struct out *o, const struct names *t, int64_t v, const char *prefix)
{
	unit_begin(o);
	out_put(o, " ");
	put_enum(o, t, v, prefix);
	unit_end(o);
}

static void
word_hex(struct out *o, const char *sep, uint64_t v)
{
	unit_begin(o);
	out_printf(o, "%s0x%" PRIx64, sep, v);
	unit_end(o);
}

/* " A|B|C" for the flags of V within MASK; nothing if none is set. */
static void
word_flags(struct out *o, const struct names *t, uint64_t v, uint64_t mask)
{
	const char *sep = " ";

	for (size_t i = 0; i < t->n; i++) {
		uint64_t bits = flag_match(&t->v[i], v);
		if (bits == 0 || (bits & mask) == 0)
			continue;
		word(o, sep, t->v[i].name);
		sep = "|";
		v &= ~bits;
	}
	if ((v & mask) != 0)
		word_hex(o, sep, v & mask);
}

/*
 * One decoder per call family: ARGS writes the JSON members, SUMMARY the
 * words after the call's name.  Argument types follow the kernel's
 * SYSCALL_DEFINE, which decides how many bits of each register count.
 */

/* socket(int family, int type, int protocol); socketpair adds a pointer. */
static void
args_socket(struct out *o, const struct seccomp_data *d)
{
	uint32_t type = arg_u32(d, 1);

	member_enum(o, "family", &families, arg_int(d, 0), "AF_");
	member_enum(o, "type", &socktypes, type & SOCK_TYPE_MASK, "SOCK_");
	member_flags(o, "flags", &sockflags, type & ~SOCK_TYPE_MASK);
	member_int(o, "protocol", arg_int(d, 2));
}

static void
summary_socket(struct out *o, const struct seccomp_data *d)
{
	word_enum(o, &families, arg_int(d, 0), "AF_");
}

/* ioctl(unsigned int fd, unsigned int cmd, unsigned long arg): the kernel
 * drops the upper half of cmd, so a TIOCSTI with junk above bit 31 is still
 * TIOCSTI.  The junk is shown too: it is a sign of someone probing the
 * filter. */
static void
args_ioctl(struct out *o, const struct seccomp_data *d)
{
	uint32_t req = arg_u32(d, 1);
	const char *name = lookup(&ioctls, req);

	member_int(o, "fd", arg_int(d, 0));
	member_key(o, "request");
	if (name)
		out_printf(o, "\"%s\"", name);
	else
		out_printf(o, "\"0x%" PRIx32 "\"", req);
	unit_end(o);
	if (d->args[1] >> 32)
		member_hex(o, "request_raw", d->args[1]);
}

static void
summary_ioctl(struct out *o, const struct seccomp_data *d)
{
	uint32_t req = arg_u32(d, 1);
	const char *name = lookup(&ioctls, req);

	if (name)
		word(o, " ", name);
	else
		word_hex(o, " ", req);
}

/* clone(unsigned long flags, ...): the kernel reads only the low 32 bits,
 * the lowest byte of which is the exit signal. */
static void
args_clone(struct out *o, const struct seccomp_data *d)
{
	uint32_t flags = arg_u32(d, 0);

	member_flags(o, "flags", &clone_flags, flags & ~CLONE_CSIGNAL);
	if (flags & CLONE_CSIGNAL)
		member_enum(o, "exit_signal", &signals, flags & CLONE_CSIGNAL, "SIG");
	if (d->args[0] >> 32)
		member_hex(o, "flags_raw", d->args[0]);
}

static void
summary_clone(struct out *o, const struct seccomp_data *d)
{
	word_flags(o, &clone_flags, arg_u32(d, 0) & ~CLONE_CSIGNAL, CLONE_NS_MASK);
}

/* unshare(unsigned long flags): all 64 bits count (unknown ones are EINVAL). */
static void
args_unshare(struct out *o, const struct seccomp_data *d)
{
	member_flags(o, "flags", &clone_flags, d->args[0]);
}

static void
summary_unshare(struct out *o, const struct seccomp_data *d)
{
	word_flags(o, &clone_flags, d->args[0], CLONE_NS_MASK);
}

/* setns(int fd, int nstype): nstype 0 means "whatever fd is". */
static void
args_setns(struct out *o, const struct seccomp_data *d)
{
	member_int(o, "fd", arg_int(d, 0));
	member_flags(o, "nstype", &clone_flags, arg_u32(d, 1));
}

static void
summary_setns(struct out *o, const struct seccomp_data *d)
{
	word_flags(o, &clone_flags, arg_u32(d, 1), CLONE_NS_MASK);
}

/* ptrace(long request, long pid, ...): the request is a full long; pid is
 * narrowed to pid_t by the kernel. */
static void
args_ptrace(struct out *o, const struct seccomp_data *d)
{
	member_enum(o, "request", &ptrace_requests, (int64_t)d->args[0], "PTRACE_");
	member_int(o, "pid", arg_int(d, 1));
}

static void
summary_ptrace(struct out *o, const struct seccomp_data *d)
{
	word_enum(o, &ptrace_requests, (int64_t)d->args[0], "PTRACE_");
}

/* personality(unsigned int persona): a bit mask plus an execution domain,
 * best read in hex next to <sys/personality.h>. */
static void
args_personality(struct out *o, const struct seccomp_data *d)
{
	member_hex(o, "persona", arg_u32(d, 0));
}

static void
summary_personality(struct out *o, const struct seccomp_data *d)
{
	word_hex(o, " ", arg_u32(d, 0));
}

/* mount(char *source, char *target, char *type, unsigned long flags, void
 * *data): the three strings are pointers into the agent, so only the flags. */
static void
args_mount(struct out *o, const struct seccomp_data *d)
{
	member_flags(o, "flags", &mount_flags, d->args[3]);
}

static void
summary_mount(struct out *o, const struct seccomp_data *d)
{
	word_flags(o, &mount_flags, d->args[3], UINT64_MAX);
}

/* Everything else: the raw registers, which is all that can be said safely. */
static void
args_raw(struct out *o, const struct seccomp_data *d)
{
	member_key(o, "args");
	for (size_t i = 0; i < ARRAY_SIZE(d->args); i++)
		out_printf(o, "%s\"0x%" PRIx64 "\"", i ? "," : "[", (uint64_t)d->args[i]);
	out_put(o, "]");
	unit_end(o);
}

typedef void (*decode_fn)(struct out *o, const struct seccomp_data *d);

/* The calls agentjail refuses by notification: the escape hatches of
 * seccomp.c's groups and the argument-checked calls.  A NULL decoder means
 * raw arguments and no summary words. */
static const struct call {
	int nr;
	const char *name;
	decode_fn args;
	decode_fn summary;
} calls[] = {
/* clang-format off */
#define CALL(x, a, s) {SYS_##x, #x, a, s}
#define RAW(x) {SYS_##x, #x, NULL, NULL}
	CALL(socket, args_socket, summary_socket),
	CALL(socketpair, args_socket, summary_socket),
	/* Their destinations are read by destinations.c, not here. */
	RAW(connect),
	RAW(sendto),
	RAW(sendmsg),
	RAW(sendmmsg),
	CALL(ioctl, args_ioctl, summary_ioctl),
	CALL(clone, args_clone, summary_clone),
	RAW(clone3), /* its flags are in a struct in the agent's memory */
	CALL(unshare, args_unshare, summary_unshare),
	CALL(setns, args_setns, summary_setns),
	CALL(ptrace, args_ptrace, summary_ptrace),
	CALL(personality, args_personality, summary_personality),
	CALL(mount, args_mount, summary_mount),
	RAW(io_uring_setup),
	RAW(io_uring_enter),
	RAW(io_uring_register),
	RAW(process_vm_readv),
	RAW(process_vm_writev),
	RAW(process_madvise),
	RAW(pidfd_getfd),
	RAW(kcmp),
	RAW(bpf),
	RAW(perf_event_open),
	RAW(keyctl),
	RAW(add_key),
	RAW(request_key),
	RAW(userfaultfd),
	RAW(umount2),
	RAW(pivot_root),
	RAW(chroot),
	RAW(move_mount),
	RAW(open_tree),
	RAW(fsopen),
	RAW(fsconfig),
	RAW(fsmount),
	RAW(fspick),
	RAW(mount_setattr),
	RAW(kexec_load),
	RAW(kexec_file_load),
	RAW(init_module),
	RAW(finit_module),
	RAW(delete_module),
	RAW(iopl),
	RAW(ioperm),
	RAW(reboot),
	RAW(acct),
	RAW(swapon),
	RAW(swapoff),
	RAW(syslog),
	RAW(quotactl),
	RAW(quotactl_fd),
	RAW(settimeofday),
	RAW(clock_settime),
	RAW(fanotify_init),
	RAW(open_by_handle_at),
	RAW(name_to_handle_at),
	RAW(uselib),
	RAW(lookup_dcookie),
	RAW(nfsservctl),
#undef CALL
#undef RAW
	/* clang-format on */
};

static const struct call *
find_call(int nr)
{
	for (size_t i = 0; i < ARRAY_SIZE(calls); i++)
		if (calls[i].nr == nr)
			return &calls[i];
	return NULL;
}

/* Numbers only mean these calls on native x86_64; an i386 102 is
 * socketcall, not getuid. */
static const struct call *
find_native_call(const struct seccomp_data *d)
{
	return d->arch == AUDIT_ARCH_X86_64 ? find_call(d->nr) : NULL;
}

const char *
aj_decode_syscall_name(int nr)
{
	const struct call *c = find_call(nr);

	return c ? c->name : NULL;
}

size_t
aj_decode_args(const struct seccomp_data *d, char *out, size_t outlen)
{
	const struct call *c = find_native_call(d);
	struct out o;

	out_init(&o, out, outlen);
	if (c && c->args)
		c->args(&o, d);
	else
		args_raw(&o, d);
	return o.len;
}

size_t
aj_decode_summary(const struct seccomp_data *d, char *out, size_t outlen)
{
	const struct call *c = find_native_call(d);
	struct out o;

	out_init(&o, out, outlen);
	if (c == NULL) {
		/* One unit: a bare "syscall" would say nothing. */
		unit_begin(&o);
		out_printf(&o, "syscall %d", d->nr);
		if (d->arch != AUDIT_ARCH_X86_64)
			out_printf(&o, " (arch 0x%" PRIx32 ")", d->arch);
		unit_end(&o);
		return o.len;
	}
	word(&o, "", c->name);
	if (c->summary)
		c->summary(&o, d);
	return o.len;
}
