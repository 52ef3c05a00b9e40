/*
 * Unit tests for the violation decoder (supervisor/decode.c): exact text for
 * each call family, names for the unknown, and clean truncation at every
 * buffer size (the result must still be JSON).
 */
#include "config.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <linux/audit.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include "decode.h"

static struct seccomp_data
call(int nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3)
{
	return (struct seccomp_data){
		.nr = nr,
		.arch = AUDIT_ARCH_X86_64,
		.args = {a0, a1, a2, a3, 0, 0},
	};
}

static void
expect_args(struct seccomp_data d, const char *want)
{
	char buf[1024];
	size_t n = aj_decode_args(&d, buf, sizeof(buf));

	cr_assert_str_eq(buf, want);
	cr_assert_eq(n, strlen(want));
}

static void
expect_summary(struct seccomp_data d, const char *want)
{
	char buf[256];
	size_t n = aj_decode_summary(&d, buf, sizeof(buf));

	cr_assert_str_eq(buf, want);
	cr_assert_eq(n, strlen(want));
}

Test(decode, syscall_names)
{
	static const struct {
		int nr;
		const char *name;
	} want[] = {
/* clang-format off */
#define N(x) {SYS_##x, #x}
		N(socket), N(socketpair), N(ioctl), N(clone), N(clone3), N(io_uring_setup),
		N(io_uring_enter), N(io_uring_register), N(ptrace), N(process_vm_readv),
		N(process_vm_writev), N(process_madvise), N(pidfd_getfd), N(kcmp), N(bpf),
		N(perf_event_open), N(keyctl), N(add_key), N(request_key), N(userfaultfd), N(mount),
		N(umount2), N(pivot_root), N(chroot), N(move_mount), N(open_tree), N(fsopen),
		N(fsconfig), N(fsmount), N(fspick), N(mount_setattr), N(unshare), N(setns),
		N(kexec_load), N(kexec_file_load), N(init_module), N(finit_module),
		N(delete_module), N(iopl), N(ioperm), N(reboot), N(acct), N(swapon), N(swapoff),
		N(syslog), N(quotactl), N(quotactl_fd), N(settimeofday), N(clock_settime),
		N(fanotify_init), N(open_by_handle_at), N(name_to_handle_at), N(uselib),
		N(lookup_dcookie), N(nfsservctl), N(personality),
#undef N
		/* clang-format on */
	};

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const char *got = aj_decode_syscall_name(want[i].nr);
		cr_assert_not_null(got, "%s", want[i].name);
		cr_assert_str_eq(got, want[i].name);
	}
	cr_assert_eq(SYS_socket, 41);
	cr_assert_str_eq(aj_decode_syscall_name(41), "socket");
}

Test(decode, unknown_syscall)
{
	cr_assert_null(aj_decode_syscall_name(SYS_getpid));
	cr_assert_null(aj_decode_syscall_name(-1));
	cr_assert_null(aj_decode_syscall_name(100000));
	/* x32 numbers are another ABI, even for a call we know. */
	cr_assert_null(aj_decode_syscall_name(SYS_socket | 0x40000000));

	expect_args(call(SYS_getpid, 1, 0, 0, 0),
		    "\"args\":[\"0x1\",\"0x0\",\"0x0\",\"0x0\",\"0x0\",\"0x0\"]");
	expect_summary(call(SYS_getpid, 0, 0, 0, 0), "syscall 39");
	expect_summary(call(999, 0, 0, 0, 0), "syscall 999");
}

Test(decode, foreign_arch_is_not_decoded)
{
	/* i386 102 is socketcall; decoded as x86_64 it would be getuid, and an
	 * i386 41 is not socket. */
	struct seccomp_data d = call(SYS_socket, AF_INET, SOCK_STREAM, 0, 0);

	d.arch = AUDIT_ARCH_I386;
	expect_args(d, "\"args\":[\"0x2\",\"0x1\",\"0x0\",\"0x0\",\"0x0\",\"0x0\"]");
	expect_summary(d, "syscall 41 (arch 0x40000003)");
}

Test(decode, socket)
{
	expect_args(call(SYS_socket, AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0, 0),
		    "\"family\":\"AF_INET\",\"type\":\"SOCK_STREAM\","
		    "\"flags\":[\"SOCK_CLOEXEC\"],\"protocol\":0");
	expect_args(call(SYS_socket, AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 9, 0),
		    "\"family\":\"AF_NETLINK\",\"type\":\"SOCK_RAW\","
		    "\"flags\":[\"SOCK_NONBLOCK\",\"SOCK_CLOEXEC\"],\"protocol\":9");
	expect_args(
		call(SYS_socket, AF_PACKET, SOCK_PACKET, 768, 0),
		"\"family\":\"AF_PACKET\",\"type\":\"SOCK_PACKET\",\"flags\":[],\"protocol\":768");
	expect_summary(call(SYS_socket, AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0, 0),
		       "socket AF_INET");
}

Test(decode, socket_families)
{
	static const struct {
		int family;
		const char *name;
	} want[] = {
/* clang-format off */
#define F(x) {x, #x}
		F(AF_UNSPEC),    F(AF_UNIX),      F(AF_INET),   F(AF_INET6), F(AF_NETLINK),
		F(AF_PACKET),    F(AF_VSOCK),     F(AF_ALG),    F(AF_KEY),   F(AF_BLUETOOTH),
		F(AF_CAN),       F(AF_TIPC),      F(AF_XDP),    F(AF_RDS),   F(AF_LLC),
		F(AF_X25),       F(AF_AX25),      F(AF_APPLETALK), F(AF_IPX), F(AF_NFC),
		F(AF_QIPCRTR),   F(AF_SMC),       F(AF_MCTP),
#undef F
		/* clang-format on */
	};

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		char expect[64];
		snprintf(expect, sizeof(expect), "socket %s", want[i].name);
		expect_summary(call(SYS_socket, want[i].family, SOCK_DGRAM, 0, 0), expect);
	}
}

Test(decode, socket_unknowns)
{
	/* Unknown family, type and flag bits; the upper halves are ignored,
	 * as the kernel does. */
	expect_args(
		call(SYS_socket, 123, 0x100 | 9, 0, 0),
		"\"family\":\"AF_123\",\"type\":\"SOCK_9\",\"flags\":[\"0x100\"],\"protocol\":0");
	expect_args(call(SYS_socket, 0xffffffff00000002ull, 0x500000000ull | SOCK_DGRAM, -1, 0),
		    "\"family\":\"AF_INET\",\"type\":\"SOCK_DGRAM\",\"flags\":[],\"protocol\":-1");
	expect_summary(call(SYS_socket, 123, SOCK_STREAM, 0, 0), "socket AF_123");
}

Test(decode, socketpair)
{
	expect_args(call(SYS_socketpair, AF_INET6, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, 0x7ffd0000),
		    "\"family\":\"AF_INET6\",\"type\":\"SOCK_SEQPACKET\","
		    "\"flags\":[\"SOCK_NONBLOCK\"],\"protocol\":0");
	expect_summary(call(SYS_socketpair, AF_VSOCK, SOCK_STREAM, 0, 0), "socketpair AF_VSOCK");
}

Test(decode, ioctl)
{
	expect_args(call(SYS_ioctl, 0, TIOCSTI, 0x7ffd0000, 0), "\"fd\":0,\"request\":\"TIOCSTI\"");
	expect_args(call(SYS_ioctl, 1, TIOCLINUX, 0, 0), "\"fd\":1,\"request\":\"TIOCLINUX\"");
	expect_args(call(SYS_ioctl, 2, TIOCSCTTY, 0, 0), "\"fd\":2,\"request\":\"TIOCSCTTY\"");
	expect_args(call(SYS_ioctl, 0, TIOCGWINSZ, 0, 0), "\"fd\":0,\"request\":\"TIOCGWINSZ\"");
	expect_args(call(SYS_ioctl, 0, TIOCSWINSZ, 0, 0), "\"fd\":0,\"request\":\"TIOCSWINSZ\"");
	expect_args(call(SYS_ioctl, 7, FIONREAD, 0, 0), "\"fd\":7,\"request\":\"FIONREAD\"");
	expect_summary(call(SYS_ioctl, 0, TIOCSTI, 0, 0), "ioctl TIOCSTI");
}

Test(decode, ioctl_unknown)
{
	expect_args(call(SYS_ioctl, 3, 0x1234, 0, 0), "\"fd\":3,\"request\":\"0x1234\"");
	expect_args(call(SYS_ioctl, 3, 0xc0105500, 0, 0), "\"fd\":3,\"request\":\"0xc0105500\"");
	expect_args(call(SYS_ioctl, 0xffffffff, 0x1234, 0, 0), "\"fd\":-1,\"request\":\"0x1234\"");
	expect_summary(call(SYS_ioctl, 3, 0x1234, 0, 0), "ioctl 0x1234");
}

Test(decode, ioctl_high_bits)
{
	/* The kernel reads cmd as 32 bits: this is TIOCSTI, and the junk above
	 * it is worth reporting. */
	expect_args(call(SYS_ioctl, 0, 0x100005412ull, 0, 0),
		    "\"fd\":0,\"request\":\"TIOCSTI\",\"request_raw\":\"0x100005412\"");
	expect_args(call(SYS_ioctl, 0, 0xffffffff00001234ull, 0, 0),
		    "\"fd\":0,\"request\":\"0x1234\",\"request_raw\":\"0xffffffff00001234\"");
	expect_summary(call(SYS_ioctl, 0, 0x100005412ull, 0, 0), "ioctl TIOCSTI");
}

Test(decode, clone)
{
	expect_args(call(SYS_clone, CLONE_NEWUSER | CLONE_NEWNET | SIGCHLD, 0, 0, 0),
		    "\"flags\":[\"CLONE_NEWUSER\",\"CLONE_NEWNET\"],\"exit_signal\":\"SIGCHLD\"");
	expect_args(call(SYS_clone,
			 CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
				 CLONE_SYSVSEM | CLONE_SETTLS | CLONE_PARENT_SETTID |
				 CLONE_CHILD_CLEARTID | CLONE_NEWPID,
			 0, 0, 0),
		    "\"flags\":[\"CLONE_VM\",\"CLONE_FS\",\"CLONE_FILES\",\"CLONE_SIGHAND\","
		    "\"CLONE_THREAD\",\"CLONE_SYSVSEM\",\"CLONE_SETTLS\",\"CLONE_PARENT_SETTID\","
		    "\"CLONE_CHILD_CLEARTID\",\"CLONE_NEWPID\"]");
	/* 0x80 in clone() is part of the signal, not CLONE_NEWTIME. */
	expect_args(call(SYS_clone, CLONE_NEWNS | 0x80 | 40, 0, 0, 0),
		    "\"flags\":[\"CLONE_NEWNS\"],\"exit_signal\":\"SIG168\"");
	/* clone() ignores the upper half; it is shown raw. */
	expect_args(call(SYS_clone, 0x100000000ull | CLONE_NEWUTS | SIGCHLD, 0, 0, 0),
		    "\"flags\":[\"CLONE_NEWUTS\"],\"exit_signal\":\"SIGCHLD\","
		    "\"flags_raw\":\"0x104000011\"");
	expect_summary(call(SYS_clone, CLONE_NEWUSER | CLONE_NEWNET | SIGCHLD, 0, 0, 0),
		       "clone CLONE_NEWUSER|CLONE_NEWNET");
	expect_summary(call(SYS_clone, CLONE_VM | CLONE_NEWNS | CLONE_THREAD, 0, 0, 0),
		       "clone CLONE_NEWNS");
	expect_summary(call(SYS_clone, CLONE_VM | SIGCHLD, 0, 0, 0), "clone");
	expect_summary(call(SYS_clone3, 0x7ffd0000, 88, 0, 0), "clone3");
	expect_args(call(SYS_clone3, 0x7ffd0000, 88, 0, 0),
		    "\"args\":[\"0x7ffd0000\",\"0x58\",\"0x0\",\"0x0\",\"0x0\",\"0x0\"]");
}

Test(decode, unshare_and_setns)
{
	expect_args(call(SYS_unshare, CLONE_NEWUSER | CLONE_NEWNS | CLONE_FS, 0, 0, 0),
		    "\"flags\":[\"CLONE_FS\",\"CLONE_NEWNS\",\"CLONE_NEWUSER\"]");
	expect_args(call(SYS_unshare, CLONE_NEWTIME | 0x1000000000ull, 0, 0, 0),
		    "\"flags\":[\"CLONE_NEWTIME\",\"0x1000000000\"]");
	expect_summary(call(SYS_unshare, CLONE_NEWUSER | CLONE_NEWNS | CLONE_FS, 0, 0, 0),
		       "unshare CLONE_NEWNS|CLONE_NEWUSER");
	expect_args(call(SYS_setns, 3, CLONE_NEWNET, 0, 0),
		    "\"fd\":3,\"nstype\":[\"CLONE_NEWNET\"]");
	expect_args(call(SYS_setns, 4, 0, 0, 0), "\"fd\":4,\"nstype\":[]");
	expect_summary(call(SYS_setns, 3, CLONE_NEWNET, 0, 0), "setns CLONE_NEWNET");
	expect_summary(call(SYS_setns, 3, 0, 0, 0), "setns");
}

Test(decode, ptrace)
{
	expect_args(call(SYS_ptrace, PTRACE_ATTACH, 1234, 0, 0),
		    "\"request\":\"PTRACE_ATTACH\",\"pid\":1234");
	expect_args(call(SYS_ptrace, PTRACE_SEIZE, 1, 0, 0),
		    "\"request\":\"PTRACE_SEIZE\",\"pid\":1");
	expect_args(call(SYS_ptrace, PTRACE_TRACEME, 0, 0, 0),
		    "\"request\":\"PTRACE_TRACEME\",\"pid\":0");
	expect_args(call(SYS_ptrace, 99, 5, 0, 0), "\"request\":\"PTRACE_99\",\"pid\":5");
	expect_summary(call(SYS_ptrace, PTRACE_ATTACH, 1234, 0, 0), "ptrace PTRACE_ATTACH");
}

Test(decode, personality)
{
	expect_args(call(SYS_personality, 0x400000, 0, 0, 0), "\"persona\":\"0x400000\"");
	expect_summary(call(SYS_personality, 0x400000, 0, 0, 0), "personality 0x400000");
}

Test(decode, mount)
{
	expect_args(call(SYS_mount, 0x7ffd0000, 0x7ffd1000, 0, MS_BIND | MS_REC),
		    "\"flags\":[\"MS_BIND\",\"MS_REC\"]");
	expect_args(call(SYS_mount, 0, 0, 0, MS_MGC_VAL | MS_RDONLY | MS_REMOUNT),
		    "\"flags\":[\"MS_MGC_VAL\",\"MS_RDONLY\",\"MS_REMOUNT\"]");
	expect_args(call(SYS_mount, 0, 0, 0, 0), "\"flags\":[]");
	expect_summary(call(SYS_mount, 0, 0, 0, MS_BIND | MS_REC), "mount MS_BIND|MS_REC");
	expect_summary(call(SYS_mount, 0, 0, 0, 0), "mount");
}

Test(decode, raw_args)
{
	struct seccomp_data d = call(SYS_io_uring_setup, 8, 0x7ffd0000, 0, 0);

	d.args[5] = UINT64_MAX;
	expect_args(d, "\"args\":[\"0x8\",\"0x7ffd0000\",\"0x0\",\"0x0\",\"0x0\","
		       "\"0xffffffffffffffff\"]");
	expect_summary(d, "io_uring_setup");
	expect_summary(call(SYS_bpf, 0, 0, 0, 0), "bpf");
}

/* Where a unit of FULL ends: a member's comma outside any array (names and
 * hex strings hold no commas or brackets), or a summary separator; an
 * unknown call's summary is a single unit. */
static bool
is_boundary(const char *full, size_t m, bool json)
{
	int depth = 0;

	if (m == 0 || full[m] == '\0')
		return true;
	if (!json)
		return (full[m] == ' ' || full[m] == '|') && strncmp(full, "syscall ", 8) != 0;
	for (size_t i = 0; i < m; i++)
		depth += full[i] == '[' ? 1 : full[i] == ']' ? -1 : 0;
	return full[m] == ',' && depth == 0;
}

/* The truncated text must be the longest prefix of FULL that ends at a
 * boundary and fits, and must be valid JSON inside braces. */
static void
check_truncation(struct seccomp_data d, bool json)
{
	char full[1024];
	size_t full_len = json ? aj_decode_args(&d, full, sizeof(full))
			       : aj_decode_summary(&d, full, sizeof(full));

	cr_assert_eq(aj_decode_args(&d, NULL, 0), 0);
	cr_assert_eq(aj_decode_summary(&d, NULL, 0), 0);
	for (size_t outlen = 0; outlen <= full_len + 2; outlen++) {
		/* Exactly OUTLEN bytes on the heap, so ASan sees any overrun. */
		char *buf = malloc(outlen ? outlen : 1);
		size_t n =
			json ? aj_decode_args(&d, buf, outlen) : aj_decode_summary(&d, buf, outlen);

		if (outlen == 0) {
			cr_assert_eq(n, 0);
			free(buf);
			continue;
		}
		cr_assert_lt(n, outlen);
		cr_assert_eq(strlen(buf), n, "outlen %zu", outlen);
		cr_assert_eq(strncmp(buf, full, n), 0, "outlen %zu: %s", outlen, buf);
		cr_assert(is_boundary(full, n, json), "outlen %zu: torn at %zu: %s", outlen, n,
			  buf);
		/* Nothing longer would have fit. */
		for (size_t m = n + 1; m < outlen && m <= full_len; m++)
			cr_assert(!is_boundary(full, m, json),
				  "outlen %zu: stopped at %zu, %zu fits", outlen, n, m);
		if (json) {
			char wrapped[1100];
			json_error_t err;
			json_t *obj;

			snprintf(wrapped, sizeof(wrapped), "{%s}", buf);
			obj = json_loads(wrapped, 0, &err);
			cr_assert_not_null(obj, "outlen %zu: %s: %s", outlen, wrapped, err.text);
			json_decref(obj);
		}
		free(buf);
	}
	cr_assert_eq(full[full_len], '\0');
}

Test(decode, truncation)
{
	struct seccomp_data cases[] = {
		call(SYS_socket, AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK | 0x100, 0, 0),
		call(SYS_socket, 123, 9, -1, 0),
		call(SYS_ioctl, 0, 0x100005412ull, 0, 0),
		call(SYS_ioctl, -1, 0x1234, 0, 0),
		call(SYS_clone, CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWNS | SIGCHLD | (1ull << 40),
		     0, 0, 0),
		call(SYS_unshare, CLONE_NEWUSER | CLONE_NEWTIME | (1ull << 40), 0, 0, 0),
		call(SYS_setns, 3, CLONE_NEWNET | CLONE_NEWPID, 0, 0),
		call(SYS_ptrace, PTRACE_ATTACH, 1234, 0, 0),
		call(SYS_ptrace, -5, -1, 0, 0),
		call(SYS_personality, 0xffffffff, 0, 0, 0),
		call(SYS_mount, 0, 0, 0, MS_MGC_VAL | MS_BIND | MS_REC | (1ull << 40)),
		call(SYS_bpf, UINT64_MAX, 1, 2, 3),
		call(SYS_getpid, 0, 0, 0, 0),
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		check_truncation(cases[i], true);
		check_truncation(cases[i], false);
	}
	cases[0].arch = AUDIT_ARCH_I386;
	check_truncation(cases[0], true);
	check_truncation(cases[0], false);
}

Test(decode, every_output_parses)
{
	/* Every known call with assorted arguments: whatever the decoder
	 * says is JSON. */
	static const uint64_t vals[] = {0, 1, 0x80, 0x5412, 0xffffffff, 0x100005412ull, UINT64_MAX};
	char buf[1024], wrapped[1100];

	for (int nr = 0; nr < 512; nr++) {
		if (aj_decode_syscall_name(nr) == NULL)
			continue;
		for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
			struct seccomp_data d = call(nr, vals[i], vals[i], vals[i], vals[i]);
			json_error_t err;
			json_t *obj;

			aj_decode_args(&d, buf, sizeof(buf));
			snprintf(wrapped, sizeof(wrapped), "{%s}", buf);
			obj = json_loads(wrapped, 0, &err);
			cr_assert_not_null(obj, "%s: %s", wrapped, err.text);
			json_decref(obj);
		}
	}
}
