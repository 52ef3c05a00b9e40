/*
 * The escape system calls: known ways around a sandbox or into kernel
 * attack surface.  One list, refused by the jail's filter (its @escape
 * group, supervisor/seccomp.c) and by the broker's own (broker/confine.c).
 */
#ifndef AJ_ESCAPE_H
#define AJ_ESCAPE_H

/* NULL-terminated names, as libseccomp resolves them on x86_64. */
extern const char *const aj_escape_syscalls[];

#endif /* AJ_ESCAPE_H */
