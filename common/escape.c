/*
 * The escape system calls (common/escape.h), with the reason for each
 * line.  Every name must exist on x86_64 in libseccomp 2.5.4; the jail's
 * table guards in tests/unit/test_seccomp.c check them.
 */
#include "config.h"

#include <stddef.h>

#include "escape.h"

/* clang-format off */
const char *const aj_escape_syscalls[] = {
	/* io_uring runs socket/connect/openat without passing syscall
	 * entry, so seccomp never sees them (THREATS.md #3). */
	"io_uring_setup", "io_uring_enter", "io_uring_register",
	/* Reaching into another process: ptrace and its relatives
	 * (THREATS.md #8); process_madvise acts on a foreign mm too. */
	"ptrace", "process_vm_readv", "process_vm_writev", "process_madvise",
	"pidfd_getfd", "kcmp",
	/* Exploit helpers and kernel surface no agent needs
	 * (THREATS.md #10): eBPF, perf, keyrings (not namespaced),
	 * userfaultfd (widens kernel races). */
	"bpf", "perf_event_open", "keyctl", "add_key", "request_key", "userfaultfd",
	/* Mount manipulation, old and new API (THREATS.md #6). */
	"mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "fsopen",
	"fsconfig", "fsmount", "fspick", "mount_setattr",
	/* Namespace re-entry or creation (THREATS.md #5); each filter
	 * handles clone and clone3 by argument. */
	"unshare", "setns",
	/* The kernel itself: modules, kexec, raw port I/O, reboot. */
	"kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
	"iopl", "ioperm", "reboot",
	/* Host-wide state that no namespace covers: accounting, swap,
	 * the kernel log, quotas, the wall clock, fs-wide monitoring. */
	"acct", "swapon", "swapoff", "syslog", "quotactl", "quotactl_fd",
	"settimeofday", "clock_settime", "fanotify_init",
	/* File handles bypass path lookup and mount boundaries
	 * ("Shocker", THREATS.md #9). */
	"open_by_handle_at", "name_to_handle_at",
	/* Long gone or privileged-only, denied as Docker does: a.out
	 * loader, oprofile cookies, the old NFS daemon interface. */
	"uselib", "lookup_dcookie", "nfsservctl",
	NULL,
};
/* clang-format on */
