/*
 * Integration-test harness: run the real `agentjail` binary (built in this
 * tree) with real jails, capture what it prints, and make scratch files in
 * a directory the jail can see (not /tmp: that is private in a jail).
 */
#ifndef AJ_TEST_HARNESS_H
#define AJ_TEST_HARNESS_H

#include <stdarg.h>
#include <stdbool.h>
#include <sys/types.h>

struct aj_result {
	int status; /* exit status, or 128+N if killed by signal N */
	char *out;  /* stdout, NUL-terminated */
	char *err;  /* stderr, NUL-terminated */
};

/* Path of a built program: AJ_BUILDDIR "/" NAME. */
const char *aj_test_bin(const char *name);

/* Run argv (NULL-terminated) with stdin from /dev/null; capture output.
 * KEEP_FD >= 0 is left open (not close-on-exec) in the child: a "leaked"
 * fd for the leak test. */
void aj_test_exec(const char *const *argv, int keep_fd, struct aj_result *res);

/* `agentjail run ARGS...` (NULL-terminated list), KEEP_FD as for
 * aj_test_exec. */
void aj_test_run(struct aj_result *res, int keep_fd, ...);

/* `agentjail run --profile PROFILE -- ARGS...` (NULL-terminated list). */
void aj_test_jail(struct aj_result *res, const char *profile, ...);

/* `agentjail run --profile PROFILE [--audit AUDIT] [--events EVENTS] --
 * /bin/sh -c SCRIPT`: AUDIT and EVENTS (NULL: not given) are emptied first,
 * not removed (a test may have made them writable for all).  The script
 * finds agentjail in $AJ and the try helper in $TRY, where the profile
 * keeps them. */
void aj_test_jail_sh(struct aj_result *res, const char *profile, const char *audit,
		     const char *events, const char *script);

/* aj_test_jail_sh with the records in DIR: the audit in DIR/audit.jsonl,
 * the events in DIR/events.jsonl (read them with aj_test_json_lines). */
void aj_test_jail_sh_records(struct aj_result *res, const char *dir, const char *profile,
			     const char *script);

/* tests/integration/servers/LAB AGENTJAIL DIR, a shell script, run in a
 * network namespace of the test's own (netlab: only lo; /etc/resolv.conf
 * naming 127.0.0.1, where the lab starts its DNS server). */
void aj_test_netlab(struct aj_result *res, const char *lab, const char *dir);

void aj_test_result_free(struct aj_result *res);

/* A fresh scratch directory visible inside jails (removed at exit by the
 * caller through aj_test_rmrf).  World-accessible parent so the same
 * suite runs as root and as an unprivileged user. */
char *aj_test_scratch(void);
void aj_test_rmrf(const char *path);

/* Write TEXT to DIR/NAME; returns the new path (malloc'd). */
char *aj_test_write_file(const char *dir, const char *name, const char *text);

/* DIR/NAME holding BASE then FMT formatted with AP (a test's profile:
 * its base lines, then the test's own); returns the new path (malloc'd). */
char *aj_test_vwrite_profile(const char *dir, const char *name, const char *base,
			     const char *fmt, va_list ap);

/* The whole text of the file at PATH, NUL-terminated (malloc'd: the caller
 * frees it).  A file that cannot be opened or read fails the test. */
char *aj_test_slurp(const char *path);

/* The same, but "" (malloc'd) for a file that does not exist (yet). */
char *aj_test_slurp_if_exists(const char *path);

/* What FD gives until end of file, NUL-terminated (malloc'd); a read error
 * fails the test.  FD stays open. */
char *aj_test_slurp_fd(int fd);

/* How many host processes (by /proc) have ARG as their first argument
 * (argv[1]); the pids of the first MAX of them go to PIDS (NULL when MAX is
 * 0).  A jailed process shows there too, under its host pid. */
int aj_test_procs_with_arg(const char *arg, pid_t *pids, int max);

/* The broker's pid, from the start event in the file EVENTS (`--events`),
 * waiting up to MS for it; 0 if none came. */
int aj_test_broker_pid(const char *events, int ms);

/* Lines of TEXT that are the program's own: in the sanitizer build the
 * ASan runtime adds warnings of its own (about the jail's separate
 * stacks), which are not agentjail's output. */
int aj_test_count_own_lines(const char *text);

/* The file DIR/NAME read as JSON Lines (the audit and the event stream):
 * an array of its records; a line that is not JSON fails the test. */
struct json_t *aj_test_json_lines(const char *dir, const char *name);

/* OBJ's string member KEY, or "(none)". */
const char *aj_test_json_str(struct json_t *obj, const char *key);

/* Does the text contain LINE as a whole line? */
bool aj_test_has_line(const char *text, const char *line);

#endif
