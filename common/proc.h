/*
 * Who a process is, read from /proc: its command name and executable, for
 * the records that name the process behind a violation (the supervisor)
 * or a request (the broker).
 */
#ifndef AJ_PROC_H
#define AJ_PROC_H

#include <stddef.h>
#include <sys/types.h>

/* /proc/PID as a directory fd (O_PATH), or -1.  Whatever is read through
 * it belongs to that process, even if the pid is reused meanwhile: a
 * caller that must know the process is still the one it meant checks
 * that after opening, before reading. */
int aj_proc_open(pid_t pid);

/* The comm (COMM, COMM_LEN bytes, the kernel's newline dropped) and the
 * executable's path (EXE, EXE_LEN; as the link says, newlines included)
 * of the process whose /proc directory is DIR; "" for what cannot be
 * read (the executable of another user's process, a process gone). */
void aj_proc_read_task(int dir, char *comm, size_t comm_len, char *exe, size_t exe_len);

#endif /* AJ_PROC_H */
