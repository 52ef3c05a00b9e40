/*
 * agentjail — the embedding API.
 *
 * An orchestrator links libagentjail to load a profile and run a command in a
 * jail, exactly as the `agentjail` command does.  The library keeps no global
 * mutable state and never calls exit().
 *
 * One error convention holds for every function of <agentjail/agentjail.h>
 * and <agentjail/client.h> (agentjail(3), ERRORS):
 *   - a function that can fail returns 0 on success or a negative errno
 *     value (-EINVAL, -ENOMEM, ...), and only the codes its comment lists;
 *   - where there is something to say beyond the code (a profile's
 *     "file:line: message", the setup step that failed), the message goes
 *     into a buffer the caller passes as ERR and ERRLEN (ERR may be NULL);
 *   - outputs are written only on success: on a negative return every
 *     output parameter is left as it was;
 *   - a function that cannot fail returns void, or the value it is asked
 *     for (aj_profile_name(), aj_profile_path(), aj_proto_type_name());
 *   - every _free/_close accepts NULL.
 *
 * aj_run() forks: call it from a single-threaded process (or from a process
 * whose other threads hold no locks the child could need), as with fork(2).
 */
#ifndef AGENTJAIL_H
#define AGENTJAIL_H

#include <stdbool.h>
#include <stddef.h>

#include <agentjail/exitcodes.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The resolved, immutable policy built from a profile file and its includes. */
struct aj_profile;

/*
 * Load NAME_OR_PATH: a path when it contains a '/', otherwise NAME.profile
 * searched in $XDG_CONFIG_HOME/agentjail/profiles (default
 * ~/.config/agentjail/profiles), /etc/agentjail/profiles, then the installed
 * profiles directory (`include NAME` searches the same, never the including
 * file's directory).  Every file read, and every directory on its path,
 * must be owned by root or the caller and not writable by group or others
 * (a sticky directory such as /tmp may be); an untrusted file is refused,
 * never skipped.  On success *OUT is a new profile owned by the caller.
 * Returns 0, -ENOENT (not found), -EINVAL (syntax or value error: ERR holds
 * "file:line: message"), -ELOOP (include cycle), -EPERM (a file is not
 * trusted: ERR names it and why), -ENOMEM or another -errno from reading
 * the file.
 */
int aj_profile_load(const char *name_or_path, struct aj_profile **out, char *err, size_t errlen);

/*
 * Load a profile from TEXT (at most 1 MiB), as if it were a file called NAME:
 * messages and rule origins say "NAME:LINE", and aj_profile_name() and
 * aj_profile_path() return NAME.  `include NAME` resolves through the search
 * of aj_profile_load(); a relative `include` path or `fetch ca` file is taken
 * from the current directory (there is no file to be relative to).  Returns
 * what aj_profile_load() returns, and -EINVAL for a NULL or empty NAME or a
 * NULL TEXT.
 */
int aj_profile_load_string(const char *name, const char *text, struct aj_profile **out, char *err,
			   size_t errlen);

/* Free a profile; NULL is a no-op. */
void aj_profile_free(struct aj_profile *profile);

/* The name the profile was asked for, and the path of its top file (NAME
 * for a profile loaded from a string).  Valid while PROFILE lives. */
const char *aj_profile_name(const struct aj_profile *profile);
const char *aj_profile_path(const struct aj_profile *profile);

/*
 * The resolved policy as canonical text (one directive per line, sorted where
 * order has no meaning) or as a JSON object.  *OUT is a new string the caller
 * frees.  Returns 0 or -ENOMEM.
 */
int aj_profile_format_text(const struct aj_profile *profile, char **out);
int aj_profile_format_json(const struct aj_profile *profile, char **out);

/* sha256 of the canonical text into HEX, as 64 lower-case hex digits and a
 * NUL.  Returns 0 or -ENOMEM. */
int aj_profile_sha256(const struct aj_profile *profile, char hex[65]);

/* Receives each event of a run as one JSON object (docs/EVENTS.md), without
 * a trailing newline, on the thread that called aj_run(). */
typedef void (*aj_event_fn)(const char *json_line, void *arg);

/*
 * How to run one jailed command: an opaque set of options, built with the
 * setters below and passed to aj_run().  It can gain options without
 * breaking a program built against an older version.  Setters copy strings
 * and arrays (the caller's may go away); they check only what they must to
 * store a value and return 0, -EINVAL (OPTS is NULL, or a required pointer
 * is) or -ENOMEM.  Everything else is checked by aj_run(), before anything
 * starts, with a message naming the option.  One options object may serve
 * many runs; it is not changed by aj_run().
 */
struct aj_run_options;

/* A new set of options with the defaults: no profile, no command, no
 * timeout, signals not forwarded, the installed broker, notices on stderr,
 * no event or audit output, the caller's working directory if the jail can
 * see it (else /), the caller's stdio.  Returns 0 or -ENOMEM. */
int aj_run_options_new(struct aj_run_options **out);

/* Free OPTS; NULL is a no-op.  Closes no fd. */
void aj_run_options_free(struct aj_run_options *opts);

/* Required: the policy.  Not copied: PROFILE must outlive every aj_run()
 * with these options. */
int aj_run_options_set_profile(struct aj_run_options *opts, const struct aj_profile *profile);

/* Required: the command, a NULL-terminated vector (argv[0] is the program,
 * searched on the agent's PATH when it holds no '/').  Copied. */
int aj_run_options_set_argv(struct aj_run_options *opts, char *const argv[]);

/* Kill the jail after SECONDS (status AJ_EXIT_TIMEOUT); 0: no limit. */
int aj_run_options_set_timeout(struct aj_run_options *opts, double seconds);

/* Forward SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1/2, SIGWINCH, SIGCONT
 * and SIGTSTP to the agent; they are held (blocked) while aj_run() sets up,
 * and the caller's mask is restored when it returns.
 *
 * When the caller's own stdin (no aj_run_options_set_stdio for it) is a
 * terminal, the run is a shell's job: when the agent stops (^Z on its
 * terminal, or a stop signal) or, with forwarding, SIGTSTP comes, the
 * whole jail stops, the caller's terminal modes come back and the calling
 * process stops itself (SIGSTOP); SIGCONT to it continues the jail. */
int aj_run_options_set_forward_signals(struct aj_run_options *opts, bool on);

/* ON (the default): when the agent's stdin, stdout or stderr is a terminal,
 * the agent gets a pseudo-terminal of its own in the jail (its controlling
 * terminal, /dev/tty), relayed to the caller's terminal, which is in raw
 * mode while the agent runs when stdin is a terminal; whatever the agent
 * does to its terminal cannot change the caller's.  OFF: the agent shares
 * the caller's terminal fds as they are, and may change their modes or
 * stop their output (the supervisor itself never waits on them). */
int aj_run_options_set_pty(struct aj_run_options *opts, bool on);

/* The agentjail-broker program; NULL: the installed one.  Copied. */
int aj_run_options_set_broker_path(struct aj_run_options *opts, const char *path);

/* No notices on stderr (errors still go to aj_run()'s ERR). */
int aj_run_options_set_quiet(struct aj_run_options *opts, bool on);

/* Call FN(line, ARG) for each event of the run (docs/EVENTS.md); NULL: none. */
int aj_run_options_set_event_callback(struct aj_run_options *opts, aj_event_fn fn, void *arg);

/* Also write the events, one per line, to FD; -1: not.  Not closed. */
int aj_run_options_set_events_fd(struct aj_run_options *opts, int fd);

/* Write the broker's audit records, one JSON line each, to FD; -1: not.
 * Not closed. */
int aj_run_options_set_audit_fd(struct aj_run_options *opts, int fd);

/* The agent's working directory inside the jail: an absolute path that must
 * exist on the host (checked before anything starts) and be enterable in the
 * jail by the agent's user (else the run fails at "entering the working
 * directory": /tmp, /var/tmp, /run and /dev/shm are private in a jail).
 * NULL: the default.  Copied. */
int aj_run_options_set_cwd(struct aj_run_options *opts, const char *path);

/* Add NAME=VALUE to the agent's environment after the profile's `env`
 * rules (it replaces a kept or set variable of that name; a later call for
 * the same NAME replaces an earlier one).  aj_run() refuses an empty NAME,
 * one holding '=', and the names agentjail reserves: AGENTJAIL and
 * AGENTJAIL_*.  Copied. */
int aj_run_options_add_env(struct aj_run_options *opts, const char *name, const char *value);

/* The agent's standard input, output and error: each an open fd that
 * becomes the agent's 0, 1 or 2 (-1: the caller's own, the default).  The
 * fds stay the caller's: aj_run() does not close them, and the jail's init
 * holds no copy once the agent runs.  aj_run() refuses (-EBADF) an fd that
 * is not open, is O_PATH or a directory (it would let the agent step outside
 * the jail's view of the filesystem), or cannot be read (stdin) or written
 * (stdout, stderr). */
int aj_run_options_set_stdio(struct aj_run_options *opts, int in, int out, int err);

/*
 * Run OPTS's command in a new jail and wait for it.  On return 0, *STATUS is
 * the agentjail exit status: the agent's exit code, 128+N if it died by
 * signal N, or one of the AJ_EXIT_* codes of <agentjail/exitcodes.h>
 * (AJ_EXIT_TIMEOUT, AJ_EXIT_VIOLATION, AJ_EXIT_CANNOT_EXEC,
 * AJ_EXIT_NOT_FOUND).  Otherwise nothing is left running, *STATUS is
 * untouched, ERR holds one line and the return is:
 *   -EINVAL   an option is missing or invalid (ERR names it: "aj_run: ...")
 *   -EBADF    an events, audit or stdio fd is unusable
 *   -ENOENT, -ENOTDIR, -EACCES  the working directory cannot be used
 *   -EPERM, -ENOENT  the profile's users (started by root) or set-user-ID
 *   another negative errno  a setup step failed: ERR names the step, the
 *             error and the likely fix
 */
int aj_run(const struct aj_run_options *opts, int *status, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif /* AGENTJAIL_H */
