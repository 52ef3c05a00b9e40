/*
 * agentjail — the embedding API.
 *
 * An orchestrator links libagentjail to load a profile and run a command in a
 * jail, exactly as the `agentjail` command does.  The library keeps no global
 * mutable state, never calls exit(), and reports every failure as a negative
 * errno value plus a human message written into a caller-supplied buffer.
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
 * searched in ./profiles, $XDG_CONFIG_HOME/agentjail/profiles (default
 * ~/.config/agentjail/profiles), /etc/agentjail/profiles, then the installed
 * profiles directory.  On success *OUT is a new profile owned by the caller.
 * Returns 0, -ENOENT (not found), -EINVAL (syntax or value error: ERR holds
 * "file:line: message"), -ELOOP (include cycle), -ENOMEM or another -errno
 * from reading the file.
 */
int aj_profile_load(const char *name_or_path, struct aj_profile **out, char *err, size_t errlen);

/* Free a profile; NULL is a no-op. */
void aj_profile_free(struct aj_profile *profile);

/* The name the profile was asked for, and the path of its top file. */
const char *aj_profile_name(const struct aj_profile *profile);
const char *aj_profile_path(const struct aj_profile *profile);

/*
 * The resolved policy as canonical text (one directive per line, sorted where
 * order has no meaning) or as a JSON object.  *OUT is a new string the caller
 * frees.  Returns 0 or -ENOMEM.
 */
int aj_profile_format_text(const struct aj_profile *profile, char **out);
int aj_profile_format_json(const struct aj_profile *profile, char **out);

/* sha256 of the canonical text, as 64 lower-case hex digits and a NUL. */
int aj_profile_sha256(const struct aj_profile *profile, char hex[65]);

/* Receives each event of a run as one JSON object (docs/EVENTS.md), without
 * a trailing newline, on the thread that called aj_run(). */
typedef void (*aj_event_fn)(const char *json_line, void *arg);

/* How to run one jailed command. */
struct aj_run_options {
	const struct aj_profile *profile; /* required */
	char *const *argv;                /* required: argv[0] is the command */
	double timeout_sec;               /* 0: no limit */
	/* Forward SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1/2, SIGWINCH and
	 * SIGCONT to the agent; they are held (blocked) while aj_run sets up. */
	bool forward_signals;
	const char *broker_path; /* agentjail-broker binary; NULL: the installed one */
	bool quiet;              /* no notices on stderr (errors still go to ERR) */
	aj_event_fn on_event;    /* each event of the run (docs/EVENTS.md); NULL: none */
	void *on_event_arg;
	bool events_to_fd; /* also write the events, one per line, to EVENTS_FD */
	int events_fd;     /* not closed by aj_run */
	bool audit_to_fd;  /* write the broker's audit records, one per line, to AUDIT_FD */
	int audit_fd;      /* not closed by aj_run */
};

/*
 * Run OPTS->argv in a new jail and wait for it.  On return 0, *STATUS is the
 * agentjail exit status: the agent's exit code, 128+N if it died by signal N,
 * or one of the AJ_EXIT_* codes of <agentjail/exitcodes.h> (AJ_EXIT_TIMEOUT,
 * AJ_EXIT_VIOLATION, AJ_EXIT_CANNOT_EXEC, AJ_EXIT_NOT_FOUND).  When a setup step fails before the
 * command starts, returns a negative errno, fills ERR with one line naming the
 * step, the error and the likely fix, and leaves nothing running.
 */
int aj_run(const struct aj_run_options *opts, int *status, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif /* AGENTJAIL_H */
