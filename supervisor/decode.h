/*
 * Names for a refused system call and its arguments, for the violation
 * event and the end-of-run line.  Pure and allocation-free: everything
 * written comes from const tables or numbers, never from the agent's
 * memory (a pointer argument could change under us, or not be readable).
 */
#ifndef AJ_DECODE_H
#define AJ_DECODE_H

#include <stddef.h>
#include <stdint.h>
#include <linux/seccomp.h> /* struct seccomp_data */

/* The name of x86_64 system call NR ("socket"), or NULL if not one of the
 * calls agentjail reports.  Covers at least: socket, socketpair, ioctl, clone,
 * clone3, io_uring_setup, io_uring_enter, io_uring_register, ptrace,
 * process_vm_readv, process_vm_writev, process_madvise, pidfd_getfd, kcmp, bpf,
 * perf_event_open, keyctl, add_key, request_key, userfaultfd, mount, umount2,
 * pivot_root, chroot, move_mount, open_tree, fsopen, fsconfig, fsmount, fspick,
 * mount_setattr, unshare, setns, kexec_load, kexec_file_load, init_module,
 * finit_module, delete_module, iopl, ioperm, reboot, acct, swapon, swapoff,
 * syslog, quotactl, quotactl_fd, settimeofday, clock_settime, fanotify_init,
 * open_by_handle_at, name_to_handle_at, uselib, lookup_dcookie, nfsservctl,
 * personality.  An x32 number (nr | __X32_SYSCALL_BIT) is not one of them. */
const char *aj_decode_syscall_name(int nr);

/* Write the decoded arguments of D as a JSON object's members (without the
 * braces) into OUT, e.g. for socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC, 0):
 *   "family":"AF_INET","type":"SOCK_STREAM","flags":["SOCK_CLOEXEC"],"protocol":0
 * For ioctl: "fd":0,"request":"TIOCSTI" (the request compared as 32 bits; unknown ones as
 *   "0x5412"; when the upper 32 bits are non-zero add "request_raw":"0x100005412").
 * For clone: "flags":["CLONE_NEWUSER","CLONE_NEWNET",...] (every set flag by name; the low byte
 *   is the exit signal: "exit_signal":"SIGCHLD", left out when 0; "flags_raw" when the upper
 *   32 bits, which clone() ignores, are non-zero); for unshare/setns the same flag decoding
 *   (setns: "fd":N,"nstype":[...]).
 * For socketpair: like socket.  For ptrace: "request":"PTRACE_ATTACH","pid":N.
 * For personality: "persona":"0x400000".  For mount: no strings (pointers cannot be read
 *   safely): "flags":["MS_BIND",...].  For every other call: "args":["0x…", …] with all
 *   six args in hex.
 * Flag arrays are always present (possibly []); bits without a name come last, as one hex
 * string.  Unknown enumeration values are "AF_123", "SOCK_9", "PTRACE_99", "SIG40".
 * D->arch must be AUDIT_ARCH_X86_64: for any other ABI (whose numbers mean other calls)
 * only "args" is written.
 * The output is always valid JSON member text, always NUL-terminated (when OUTLEN > 0), and
 * truncated cleanly when OUTLEN is too small: whole members only, up to the last one that fits.
 * Returns the length written (excluding NUL). */
size_t aj_decode_args(const struct seccomp_data *d, char *out, size_t outlen);

/* A short human summary for the end-of-run line, e.g. "socket AF_INET",
 * "ioctl TIOCSTI", "clone CLONE_NEWUSER|CLONE_NEWNET", "io_uring_setup".  For
 * clone/unshare/setns only the namespace flags are listed (why it was refused);
 * an unknown call is "syscall 999", a foreign ABI "syscall 102 (arch 0x40000003)".
 * Same truncation rule, the units being the call's name (an unknown call's text is one
 * unit), then each further word or |-separated name.
 * Returns the length. */
size_t aj_decode_summary(const struct seccomp_data *d, char *out, size_t outlen);

#endif /* AJ_DECODE_H */
