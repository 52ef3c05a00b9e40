/*
 * The supervisor's internal header: one section per source file of
 * supervisor/ (the jail and the process lifecycle).  Structs that only one
 * file needs stay private to that file.
 */
#ifndef AJ_SUPERVISOR_H
#define AJ_SUPERVISOR_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <sys/types.h>

#include <agentjail/agentjail.h>

struct termios;
struct winsize;

#include "fds.h"
#include "log.h"
#include "util.h"

/* ---- supervisor/profile.c: the profile parser (pure: no side effects) ----- */

enum aj_rlimit_kind {
	AJ_RLIMIT_NOFILE,
	AJ_RLIMIT_NPROC,
	AJ_RLIMIT_AS,
	AJ_RLIMIT_FSIZE,
	AJ_RLIMIT_CPU,
	AJ_RLIMIT_CORE,
	AJ_RLIMIT__COUNT
};

#define AJ_RLIM_UNLIMITED UINT64_MAX

/* Layers a profile may mark optional: when the kernel cannot apply one, the
 * run continues without it and says so.  Every other layer is mandatory. */
enum aj_layer {
	AJ_LAYER_CGROUPNS = 1u << 0, /* new cgroup namespace */
	AJ_LAYER_SYSFS = 1u << 1,    /* a fresh sysfs showing the jail's own network */
};

#include "policy.h"

/* A file a profile was read from, as it was when read: its real path
 * (absolute) and identity. */
struct aj_profile_file {
	char *path;
	dev_t dev;
	ino_t ino;
};

/* Free N FILES; NULL is a no-op. */
void aj_profile_files_free(struct aj_profile_file *files, size_t n);

/* `proxy on` without a port: the usual one of HTTP proxies (squid's). */
#define AJ_PROXY_DEFAULT_PORT 3128
/* Its sockets in the jail (the DNS stub's, the captures', the listeners on
 * 127.0.0.1 and ::1): AJ_PROXY_SOCKETS, common/fds.h. */
#define AJ_PROXY_FDS_NONE {-1, -1, -1, -1, -1}
_Static_assert(AJ_PROXY_SOCKETS == 5, "AJ_PROXY_FDS_NONE lists AJ_PROXY_SOCKETS -1s");

struct aj_profile {
	char *name;        /* as asked for */
	char *path;        /* the top file */
	char *hostname;    /* `hostname NAME`, default "agentjail" */
	char *user;        /* `user NAME`: host user when started by root, default "nobody" */
	char *broker_user; /* `broker-user NAME`: the broker's, the same way */
	char **env_keep;   /* `env keep NAME...`: sorted, unique */
	size_t n_env_keep;
	char **env_set; /* `env set NAME=VALUE`: "NAME=VALUE", sorted by NAME */
	size_t n_env_set;
	struct {
		bool set;
		uint64_t value; /* AJ_RLIM_UNLIMITED for "unlimited" */
	} rlimits[AJ_RLIMIT__COUNT];
	uint64_t tmpfs_size;      /* `tmpfs-size SIZE`: bytes, default 64 MiB */
	bool allow_unix_sockets;  /* `socket unix allow|deny`, default deny */
	bool loopback_sockets;    /* `socket inet loopback|deny`, default deny */
	uint16_t proxy_port;      /* `proxy on [port N]`: the proxy's port; 0: `proxy off` */
	bool kill_on_violation;   /* `on-violation kill|deny`, default deny */
	unsigned optional_layers; /* `optional LAYER`: AJ_LAYER_* bits */
	struct aj_policy fetch;   /* `fetch ...`: the broker's part (common/policy.h) */
	bool from_string;         /* aj_profile_load_string(): PATH is a name, no file */
	char **warnings;          /* "file:line: warning: ..." for lines that parse but are easy to
				   * get wrong (`profile check` prints them) */
	size_t n_warnings;
	struct aj_profile_file *files; /* every file read: the top one first, then its
					* includes, each once; none for a profile from a
					* string without a file */
	size_t n_files;
};

/* The layers `optional` may name, sorted by name. */
struct aj_profile_layer {
	const char *name;
	unsigned bit; /* AJ_LAYER_* */
};
extern const struct aj_profile_layer aj_profile_layers[];
extern const size_t aj_profile_n_layers;

/* "fetch allow GET,HEAD https://host[:port]/path ...": the canonical text
 * of a rule, for sorting, the hash and `profile show`. */
void aj_profile_rule_text(const struct aj_fetch_rule *r, char *out, size_t len);

/* Name and resource of an rlimit kind ("nofile", RLIMIT_NOFILE). */
const char *aj_profile_rlimit_name(enum aj_rlimit_kind kind);
int aj_profile_rlimit_resource(enum aj_rlimit_kind kind);

/*
 * Parse profile text from memory (the unit-testable core of
 * aj_profile_load).  PATH names the text in messages and anchors relative
 * includes; includes are resolved through the same search as
 * aj_profile_load().  Same returns as aj_profile_load().
 */
int aj_profile_parse_string(const char *name, const char *path, const char *text,
			    struct aj_profile **out, char *err, size_t errlen);

/* ---- supervisor/trust.c: may a file be trusted to hold policy? ----------- */

/*
 * PATH (a file or a directory), every directory it passes through and
 * every symlink on the way must be owned by root or the effective uid and
 * not writable by group or others; a sticky directory (as /tmp) may be
 * world-writable.  Returns 0, -EPERM with WHY naming the component and
 * what is wrong ("/srv/p is writable by others (mode 0777)"), or another
 * -errno (the path cannot be inspected: -ENOENT, -ENOTDIR, -ELOOP, ...)
 * with WHY naming the component.
 */
int aj_trust_check(const char *path, char *why, size_t whylen);

/* ---- supervisor/run-options.c: the options of one run (opaque in public) -- */

struct aj_run_env {
	char *name;
	char *value;
};

struct aj_run_options {
	const struct aj_profile *profile; /* not owned */
	char **argv;                      /* owned, NULL-terminated */
	double timeout_sec;               /* 0: no limit */
	bool forward_signals;
	char *broker_path; /* NULL: the installed one */
	bool quiet;
	aj_event_fn on_event;
	void *on_event_arg;
	int events_fd;          /* -1: none; not owned */
	int audit_fd;           /* -1: none; not owned */
	char *cwd;              /* NULL: the caller's, if the jail sees it */
	struct aj_run_env *env; /* additions, in order; a name appears once */
	size_t n_env;
	int stdio[3]; /* -1: the caller's own */
	bool pty;     /* a terminal among them: the agent gets its own (supervisor/pty.c) */
};

/* Check every option before anything starts.  Returns 0, or -EINVAL,
 * -EBADF, -ENOENT, -ENOTDIR or -EACCES with ERR naming the option. */
int aj_run_options_check(const struct aj_run_options *opts, char *err, size_t errlen);

/* ---- supervisor/seccomp.c: the jail's syscall filter ----------------------- */

struct aj_syscall_group {
	const char *name;            /* "@file-io" */
	const char *help;            /* one line: why the agent needs (or must not have) it */
	const char *const *syscalls; /* NULL-terminated */
};

/* The allow groups and the explicit EPERM group, for docs and tests. */
extern const struct aj_syscall_group aj_seccomp_allow_groups[];
extern const size_t aj_seccomp_n_allow_groups;
extern const struct aj_syscall_group aj_seccomp_deny_group;

struct aj_seccomp_opts {
	bool allow_unix_sockets; /* socket(AF_UNIX, ...) allowed */
	bool loopback_sockets;   /* TCP and UDP sockets allowed (`socket inet loopback`) */
	bool notify_violations;  /* escape attempts (and, with LOOPBACK_SOCKETS, where
				    connect and send* are headed) go to a user-notification
				    listener */
};

/* Build the filter without loading it (unit-testable without privileges).
 * *OUT is a new libseccomp context (scmp_filter_ctx) the caller releases.
 * Returns 0, -ENOMEM, or -EINVAL with ERR naming the rule that failed. */
int aj_seccomp_build(const struct aj_seccomp_opts *opts, void **out, char *err, size_t errlen);

/* Load a built filter into the calling thread (sets no_new_privs). */
int aj_seccomp_load(void *ctx);

/* Release a built filter; NULL is a no-op. */
void aj_seccomp_free(void *ctx);

/* The same filter, compiled by libseccomp at build time (seccomp-gen writes
 * seccomp-prebuilt.c), so a run only loads it.  test_seccomp proves the
 * embedded programs equal what aj_seccomp_build() produces. */
struct sock_fprog;
#define AJ_SECCOMP_VARIANT_UNIX 1u     /* allow_unix_sockets */
#define AJ_SECCOMP_VARIANT_LOOPBACK 2u /* loopback_sockets */
#define AJ_SECCOMP_VARIANT_NOTIFY 4u   /* notify_violations */
#define AJ_SECCOMP_VARIANTS 8u         /* every combination of the three */
extern const struct sock_fprog *const aj_seccomp_prebuilt_variants[AJ_SECCOMP_VARIANTS];
const struct sock_fprog *aj_seccomp_prebuilt(const struct aj_seccomp_opts *opts);

/* Load PROG into the calling process (sets no_new_privs first; TSYNC).
 * Returns 0 or -errno. */
int aj_seccomp_load_prebuilt(const struct sock_fprog *prog);

/* Load PROG, whose escape attempts notify, into the calling
 * (single-threaded) process and return the listener fd (close-on-exec),
 * or -errno: -EINVAL/-EOPNOTSUPP/-ENOSYS when the kernel lacks user
 * notification. */
int aj_seccomp_load_prebuilt_listener(const struct sock_fprog *prog);

/* ---- supervisor/env.c: the agent's environment ----------------------------- */

/*
 * Build the agent's environment from ENVIRON: only the variables named in
 * the profile's keep list, then the profile's `env set` entries, then
 * AGENTJAIL_FD=<broker fd> and AGENTJAIL=1.  *OUT is a new NULL-terminated
 * array freed with aj_env_free().  Returns 0 or -ENOMEM.
 */
int aj_env_build(const struct aj_profile *profile, char *const *environ_in, int broker_fd,
		 char ***out);
/* Set NAME=VALUE in *ENV (built by aj_env_build), replacing a variable of
 * that name.  Returns 0 or -ENOMEM (*ENV unchanged). */
int aj_env_set(char ***env, const char *name, const char *value);
void aj_env_free(char **env);

/* `proxy on`: point the common tools at the proxy (supervisor/proxy-env.c,
 * one table); a variable the profile sets itself is left as it says. */
int aj_proxy_env_apply(const struct aj_profile *profile, char ***env);

/* ---- supervisor/steps.c: the setup steps, for one clear failure line ------- */

/* Every step that can fail before the command starts.  The failure line is
 * "agentjail: <step>: <error>[: detail] (<fix>)". */
enum aj_step {
	AJ_STEP_NONE,
	AJ_STEP_BROKER,
	AJ_STEP_CLONE,
	AJ_STEP_IDMAP,
	AJ_STEP_DOOR,
	AJ_STEP_HOSTNAME,
	AJ_STEP_MOUNT_PRIVATE,
	AJ_STEP_TMPFS,
	AJ_STEP_PROC,
	AJ_STEP_SYSFS,
	AJ_STEP_MASK,
	AJ_STEP_NOSUID,
	AJ_STEP_LOOPBACK,
	AJ_STEP_LINKS,
	AJ_STEP_CAPS,
	AJ_STEP_SECCOMP,
	AJ_STEP_RLIMIT,
	AJ_STEP_CWD,
	AJ_STEP_PTY,
	AJ_STEP_PROXY,
	AJ_STEP_TRUST,
	AJ_STEP_HIDE,
	AJ_STEP_EXEC,
	AJ_STEP__COUNT
};

const char *aj_step_name(enum aj_step step);
/* The likely fix for STEP failing with ERRNUM (positive), or NULL. */
const char *aj_step_hint(enum aj_step step, int errnum);

/* ---- supervisor/userns.c: uid/gid maps written from the parent ------------- */

/* Deny setgroups in PID's user namespace (where the kernel has the file:
 * none before 3.19) and map UID and GID to the same host ids, one id each.
 * Returns 0 or -errno with ERR naming the file. */
int aj_userns_write_maps(pid_t pid, uid_t uid, gid_t gid, char *err, size_t errlen);

/* ---- supervisor/netns.c: loopback through libnl-route ---------------------- */

/* Bring `lo` UP in the current network namespace and check it is the only
 * link.  Returns 0, -ENETDOWN/-EEXIST with ERR (a link other than lo), or
 * another -errno. */
int aj_netns_setup_loopback(char *err, size_t errlen);

/* ---- supervisor/fs.c: the jail's filesystem view --------------------------- */

struct aj_fs_plan {
	uint64_t tmpfs_size;
	const char *xdg_runtime_dir; /* NULL when unset */
	bool sysfs_optional;
	bool quiet;
	const char *const *readonly_paths; /* NULL-terminated, absolute and resolved
					    * (realpath); missing ones are skipped;
					    * their ancestors cannot be renamed */
	const char *const *hidden_paths;   /* files an empty one is bound over (the
					    * secrets of `inject`), NULL-terminated,
					    * resolved; missing ones are skipped */
	int *bundle_fd; /* `proxy on`: make AJ_JAIL_CA_BUNDLE, and leave an fd on it
			   here for the CA to add; NULL: no trust bundle */
	const char *hostname; /* the jail's, added to its /etc/hosts */
};

/* The jail's own files, on its private /run: its hosts file, and with
 * `proxy on` its trust bundle (the CA variables name it; the system
 * bundles are this file in the jail). */
#define AJ_JAIL_RUN_DIR "/run/agentjail"

#define AJ_JAIL_CA_BUNDLE AJ_JAIL_RUN_DIR "/ca-certificates.crt"

/* In a fresh mount namespace: private propagation, a minimal /dev, private
 * tmpfs on /tmp, /var/tmp, /run, /dev/shm and $XDG_RUNTIME_DIR, a fresh
 * /proc with its dangerous parts read-only or masked and nested user
 * namespaces limited to 0, READONLY_PATHS read-only and every directory
 * above them a mount point (so the agent cannot rename or remove one), a
 * fresh read-only /sys, nosuid on every mount.  On failure returns -errno with *STEP and ERR set. */
int aj_fs_setup(const struct aj_fs_plan *plan, enum aj_step *step, char *err, size_t errlen);

/* ---- supervisor/secrets.c: the secrets of `inject` rules --------------------- */

struct aj_secrets;

/* Read the secret of every rule of P that injects one (a file, or a
 * variable of our environment).  Returns 0 with *OUT, or -errno with ERR
 * naming the rule and the source (never a value). */
int aj_secrets_load(const struct aj_policy *p, struct aj_secrets **out, char *err,
		    size_t errlen);

/* The values, one per rule of the policy (NULL where none), for the
 * broker's hand-over. */
char *const *aj_secrets_values(const struct aj_secrets *s);

/* The files the secrets were read from, resolved, NULL-terminated: hidden
 * in the jail. */
const char *const *aj_secrets_hidden(const struct aj_secrets *s);

/* Would ENVP (the jail's environment) carry a secret: a variable a rule
 * reads it from, or its value inside any variable?  Returns 0 or -EPERM
 * with ERR naming the rule and the variable. */
int aj_secrets_check_env(const struct aj_secrets *s, const struct aj_policy *p, char *const *envp,
			 char *err, size_t errlen);

/* Wipe and free; NULL is fine. */
void aj_secrets_free(struct aj_secrets *s);

/* In the jail's init, first thing: wipe this process's copy of the
 * values, and of the variables they came from in its environment (init
 * is a clone of the supervisor, never exec'd).  NULL is fine. */
void aj_secrets_forget(struct aj_secrets *s);

/* ---- supervisor/protect.c: what the agent must not swap ------------------- */

struct aj_protect;
struct aj_events;

/*
 * The paths to protect in the jail (see struct aj_fs_plan): the user's
 * profile directory ($XDG_CONFIG_HOME/agentjail), every file PROFILE was
 * read from, and the events and audit files when EVENTS_FD and AUDIT_FD
 * (not owned; -1: none) are regular files.  MAKE_CONFIG (the agent runs as
 * the caller): first create $XDG_CONFIG_HOME/agentjail/profiles (0700)
 * below a trusted parent, so that it is protected too.  PROFILE and the
 * fds must outlive *OUT.  Returns 0 or -ENOMEM.
 */
int aj_protect_new(const struct aj_profile *profile, int events_fd, int audit_fd, bool make_config,
		   struct aj_protect **out);
/* NULL-terminated, absolute, resolved; valid while PP lives. */
const char *const *aj_protect_paths(const struct aj_protect *pp);
/* After the run: for each record file and profile file whose path no
 * longer names that file, one warning line on stderr (whatever --quiet
 * says: it is evidence, not a notice) and a `file_replaced` event. */
void aj_protect_check(const struct aj_protect *pp, struct aj_events *events);
void aj_protect_free(struct aj_protect *pp);

/* ---- supervisor/caps.c: capabilities, securebits, no_new_privs ------------- */

/* Empty every capability set and the bounding set, lock the securebits,
 * set no_new_privs, then read back and verify.  Returns 0 or -errno. */
int aj_caps_drop_all(char *err, size_t errlen);

/* ---- supervisor/rlimits.c ------------------------------------------------- */

int aj_rlimits_apply(const struct aj_profile *profile, char *err, size_t errlen);

/* ---- supervisor/spawn.c: clone into namespaces, the jail's init ----------- */

struct aj_spawn_plan {
	const struct aj_profile *profile;
	char *const *argv;
	char **envp;                             /* built by aj_env_build */
	const struct sock_fprog *seccomp;        /* the filter, loaded in the jail */
	const struct sock_fprog *seccomp_notify; /* the same with notifying escape
						  * attempts; NULL: do not notify */
	uid_t uid;                               /* the host uid/gid the agent runs as */
	gid_t gid;
	bool drop_privileges; /* started by root: become UID/GID before cloning */
	const char *cwd;      /* NULL: start in / */
	bool cwd_required;    /* CWD was asked for: failing to enter it is fatal */
	const int *stdio;     /* NULL, or 3 fds for the agent's 0, 1, 2 (-1: inherit) */
	const char *xdg_runtime_dir;
	const char *const *readonly_paths; /* see struct aj_fs_plan */
	const char *const *hidden_paths;   /* see struct aj_fs_plan */
	struct aj_secrets *secrets;        /* wiped by init (aj_secrets_forget), or NULL */
	bool quiet;
	/* The agent's own terminal (supervisor/pty.c): bit I set when the
	 * agent's fd I becomes its slave; the slave starts with the caller's
	 * modes and size. */
	unsigned pty_stdio;
	const struct termios *pty_termios;
	const struct winsize *pty_winsize;
	/* The caller sits at a terminal: when the agent stops (^Z) or
	 * SIGTSTP comes, the jail stops as a whole and init says STOPPED;
	 * SIGCONT resumes it. */
	bool job_control;
};

/* ---- supervisor/jobctl.c: the jail stopped and continued as one job ------- */

#define AJ_JOBCTL_MAX 1024

/* What init stopped (on init's stack: init allocates nothing). */
struct aj_jobctl {
	bool active; /* the jail is stopped */
	bool overflow; /* more than AJ_JOBCTL_MAX: all were stopped with kill(-1) */
	size_t n;
	pid_t pids[AJ_JOBCTL_MAX];
};

/* In the jail's init: stop every process of the jail that runs, and
 * remember which. */
void aj_jobctl_stop(struct aj_jobctl *j);
/* Continue what aj_jobctl_stop() stopped, and the agent's process group. */
void aj_jobctl_continue(struct aj_jobctl *j, pid_t agent);

/* ---- supervisor/setup-channel.c: supervisor <-> the jail's init ---------- */

enum aj_setup_type {
	AJ_SETUP_GO = 1,   /* supervisor -> init: maps written (first), the broker runs (second;
			      with `proxy on`, carrying the broker's CA certificate, a memfd) */
	AJ_SETUP_FAILURE,  /* init -> supervisor: a setup step failed */
	AJ_SETUP_DOOR,     /* init -> supervisor: the broker's end of the door (+ fd) */
	AJ_SETUP_LISTENER, /* init -> supervisor: the seccomp listener (+ fd), or none */
	AJ_SETUP_EXECUTED, /* init -> supervisor: the command runs */
	AJ_SETUP_AGENT_STATUS, /* init -> supervisor: the agent's raw wait status, as init exits */
	AJ_SETUP_PTY,          /* init -> supervisor: the master of the agent's terminal (+ fd) */
	AJ_SETUP_STOPPED,      /* init -> supervisor: the jail is stopped as a whole */
	AJ_SETUP_PROXY, /* init -> supervisor: a proxy listening socket (+ fd), before the door */
};

struct aj_setup_msg {
	int32_t type; /* enum aj_setup_type */
	int32_t step; /* enum aj_step */
	int32_t err;  /* positive errno; the wait status for AGENT_STATUS */
	char detail[240];
};

/* Send MSG, with PASSED (SCM_RIGHTS) unless it is -1.  0 or -errno. */
int aj_setup_send(int fd, const struct aj_setup_msg *msg, int passed);
/* Receive one message; a passed fd lands in *PASSED (close-on-exec), else
 * -1.  Returns 1, 0 on EOF, or -errno (-EPROTO for a broken message). */
int aj_setup_recv(int fd, struct aj_setup_msg *msg, int *passed);

/* ---- supervisor/init.c: the jail's init (pid 1 of the jail) --------------- */

/* The signals the supervisor forwards to init, and init to the agent. */
#define AJ_INIT_N_FORWARDED 9
extern const int aj_init_forwarded_signals[AJ_INIT_N_FORWARDED];

/* In the new namespaces, as the jail's pid 1: set the jail up as PLAN says,
 * talking to the supervisor over SYNC_FD, run the command and reap until
 * it exits.  Never returns. */
_Noreturn void aj_init_run(const struct aj_spawn_plan *plan, int sync_fd);

struct aj_jail {
	pid_t pid;       /* jail init, in the supervisor's pid namespace */
	int pidfd;       /* owned */
	int listener_fd; /* owned: seccomp user notifications, or -1 */
	int sync_fd;     /* owned: init reports the agent's raw status here, or -1 */
	int exec_errno;  /* 0, or why the command could not be executed */
	int door_fd;     /* owned until aj_spawn_jail_go(): the broker's end of the door */
	int pty_fd;      /* owned: the master of the agent's terminal, or -1 */
	int proxy_fds[AJ_PROXY_SOCKETS]; /* in the order of common/fds.h (the captures, then
					    the listeners); owned until the broker has them,
					    or -1 */
	int ca_fd; /* `proxy on`: owned until aj_spawn_jail_go() hands it to init: the
		      broker's CA certificate (a sealed memfd), for the jail's trust */
};

/* Start the jail and wait for its door: returns 0 with JAIL->door_fd the
 * broker's end of the socketpair that init made in the jail's network
 * namespace (owned by JAIL until aj_spawn_jail_go() closes it), or -errno
 * with ERR holding the one-line report and nothing left running.  The jail
 * goes on setting itself up, but starts no command before
 * aj_spawn_jail_go(). */
int aj_spawn_jail(const struct aj_spawn_plan *plan, struct aj_jail *jail, char *err, size_t errlen);

/* The broker runs on JAIL->door_fd (closed here): let the jail start the
 * command and wait until it runs (0), or a setup step failed (-errno, ERR
 * set, nothing left running).  If the command itself cannot be executed,
 * returns 0 with JAIL->exec_errno set; the jail is then exiting on its own. */
int aj_spawn_jail_go(struct aj_jail *jail, char *err, size_t errlen);

/* Kill and reap a jail that aj_spawn_jail() started, closing what it holds. */
void aj_spawn_jail_abort(struct aj_jail *jail);
/* Close JAIL's proxy listeners (the broker has its copies). */
void aj_spawn_jail_close_proxy(struct aj_jail *jail);

/* After the jail's init has exited: the agent's raw wait status, as init
 * sent it on SYNC_FD.  False when there is none (init was killed). */
bool aj_spawn_agent_status(int sync_fd, int *wait_status);

/* ---- supervisor/process.c: starting and stopping the supervisor's children - */

/* posix_spawn PATH (searched on the PATH of environ when SEARCH) in a new
 * session, with default signal dispositions and an empty signal mask, the
 * N_FDS descriptors FDS placed at AJ_FD_DOOR, AJ_FD_DOOR + 1, ...
 * (inheritable; the contract is common/fds.h), STDIO (NULL, or three fds,
 * -1 for "keep this one") placed at 0, 1 and 2, and every other fd above 2
 * closed.  FG_TTY -1: in a new session; else in a new process group of
 * the caller's session, made the foreground of the terminal FG_TTY (the
 * caller's controlling terminal).  Returns 0 or a positive errno,
 * posix_spawn's convention. */
int aj_process_spawn(const char *path, char *const argv[], char *const envp[], const int *fds,
		     size_t n_fds, const int *stdio, int fg_tty, bool search, pid_t *pid);

/* SIGKILL the child PID (through PIDFD when it is >= 0) and wait until it
 * is reaped; *INFO (may be NULL) is how it ended.  PIDFD is not closed.  A
 * PID <= 0 with no PIDFD is ignored, never kill(0) or kill(-1). */
void aj_process_kill_and_reap(pid_t pid, int pidfd, siginfo_t *info);

/* ---- supervisor/identity.c: who the agent and the broker run as ----------- */

/* Started by root: the profile's `user` and `broker-user`, never uid 0.
 * Otherwise: the caller, for both. */
struct aj_identity {
	uid_t uid; /* the agent's host uid and gid */
	gid_t gid;
	uid_t broker_uid;
	gid_t broker_gid;
	bool drop; /* started by root: become uid/gid before anything runs */
};

/* Resolve PROFILE's users into *OUT (written only on success).  Returns 0,
 * -EPERM (set-user-ID, or a user that is root), -ENOENT (no such user) or
 * -EINVAL (an id out of range), with ERR. */
int aj_identity_resolve(const struct aj_profile *profile, struct aj_identity *out, char *err,
			size_t errlen);

/* ---- supervisor/launch.c: the broker's launch ------------------------------ */

/* A running broker, as the supervisor holds it. */
struct aj_broker {
	pid_t pid;
	int pidfd;  /* watched and stopped through it */
	int log_fd; /* the read end of its stderr (non-blocking): relayed, never shared */
	int ca_fd;  /* `proxy on`: the read end of its CA pipe until aj_launch_take_ca(), or -1 */
};

/* Start the broker program PATH (NULL: the installed one) as ID's broker
 * user, with DOOR (its end of the agent's socketpair), the fetch policy of
 * PROFILE handed over in a sealed memfd, AUDIT_END (the audit pipe's
 * write end) and the N_PROXY sockets PROXY (common/fds.h: the DNS stub's
 * and the captures' at AJ_FD_DNS, then the listeners at AJ_FD_PROXY, with
 * the CA pipe before them); no fd is closed.  Its stdin and stdout are /dev/null and
 * its stderr a pipe the supervisor relays, so it never holds the caller's
 * terminal.  SECRETS (aj_secrets_values(), or NULL) go to it with the
 * policy.  Returns 0 with *BROKER (owned by the caller; stop it with
 * aj_launch_stop()), or -errno with ERR naming the step; nothing is left
 * running. */
int aj_launch_broker(const char *path, const struct aj_profile *profile, char *const *secrets,
		     const struct aj_identity *id, int door, int audit_end, const int *proxy,
		     size_t n_proxy, struct aj_broker *broker, char *err, size_t errlen);

/* `proxy on`: the certificate of the CA the broker made for the jail's
 * tunnels (AJ_FD_PROXY_CA), checked to be one PEM certificate, as a sealed
 * memfd in *OUT for the jail's trust.  Returns 0, or -errno with ERR (the
 * broker failed before it sent one, or sent something else). */
int aj_launch_take_ca(struct aj_broker *broker, int *out, char *err, size_t errlen);

/* Kill and reap a broker that aj_launch_broker() started, and close its
 * fds (BROKER is left as none: pid -1, fds -1). */
void aj_launch_stop(struct aj_broker *broker);

/* ---- supervisor/output.c: the run's output, never blocking ------------------ */

struct aj_output;

/* Write whole lines to FD (not owned) without blocking, queueing up to
 * BOUND bytes.  Returns 0 or -errno. */
int aj_output_new(int fd, size_t bound, struct aj_output **out);
void aj_output_free(struct aj_output *o);
/* Queue one whole line (newline included) and write what the file takes
 * now; a line that does not fit, or comes after a write error, is counted
 * as lost. */
void aj_output_line(struct aj_output *o, const char *line, size_t len);
/* Write what the file takes now; true when nothing is left waiting. */
bool aj_output_flush(struct aj_output *o);
/* The file is a terminal in raw mode (supervisor/pty.c): end lines with
 * "\r\n" from now on (ON), or with "\n" again. */
void aj_output_set_crlf(struct aj_output *o, bool on);
/* Lines wait for room in the file; the fd to watch for it. */
bool aj_output_waiting(const struct aj_output *o);
int aj_output_fd(const struct aj_output *o);
/* Write what the N OUTPUTS (NULL entries skipped) still hold, waiting at
 * most MS for room; what is left then is counted as lost. */
void aj_output_drain(struct aj_output *const *outputs, size_t n, int ms);
/* Lines that could not be written. */
unsigned long long aj_output_lost(const struct aj_output *o);

/* ---- supervisor/pty.c: the agent's own terminal, relayed ------------------ */

struct aj_pty;

/* Which of the agent's fds 0, 1, 2 (STDIO: the run's, -1 for the caller's
 * own) are terminals: bit I for fd I. */
unsigned aj_pty_terminals(const int stdio[3]);

/* Relay between MASTER (the agent's pseudo-terminal; owned on success) and
 * the caller's terminals among STDIO (TERMINALS as aj_pty_terminals said):
 * keys from stdin when it is one, the agent's output to stdout's terminal,
 * else stderr's.  Returns 0, or -errno (MASTER stays the caller's). */
int aj_pty_new(int master, const int stdio[3], unsigned terminals, struct aj_pty **out);
/* Restores the caller's modes, closes MASTER; NULL is a no-op. */
void aj_pty_free(struct aj_pty *p);
/* Raw mode on the caller's terminal while the agent runs (only when keys
 * are relayed), and back to the caller's modes.  Enter returns 0 or -errno. */
int aj_pty_enter(struct aj_pty *p);
void aj_pty_leave(struct aj_pty *p);
/* Is FD the terminal the agent's output goes to, now in raw mode (a line
 * written there needs "\r\n")? */
bool aj_pty_is_raw_on(const struct aj_pty *p, int fd);
/* The caller's window size to the agent's terminal (after SIGWINCH). */
void aj_pty_resize(struct aj_pty *p);
/* Move what both sides take now, never blocking. */
void aj_pty_relay(struct aj_pty *p);
/* What the relay waits for, and on which fds (-1: none). */
struct aj_pty_wants {
	bool read_caller, write_master, read_master, write_caller;
};
void aj_pty_wants(const struct aj_pty *p, struct aj_pty_wants *w);
void aj_pty_fds(const struct aj_pty *p, int *caller_in, int *caller_out, int *master);
/* The agent is gone: copy what its terminal still holds, waiting at most MS. */
void aj_pty_drain(struct aj_pty *p, int ms);
/* The agent's output bytes that could not be written to the caller. */
unsigned long long aj_pty_lost(const struct aj_pty *p);

/* ---- supervisor/monitor.c: the supervisor's libev loop --------------------- */

struct aj_monitor_plan {
	int jail_pidfd;
	int listener_fd; /* -1 if violations are not reported */
	int status_fd;   /* the jail's setup channel: the agent's raw status, or -1 */
	struct aj_events *events;
	struct aj_violations *violations; /* NULL if not reported */
	struct aj_audit *audit;           /* the broker's records, or NULL */
	int broker_pidfd;                 /* -1 if none */
	int broker_log_fd;                /* the broker's stderr, relayed to STDERR_OUT; -1 */
	struct aj_output *stderr_out;
	struct aj_output *const *outputs; /* written when they have room */
	size_t n_outputs;
	double timeout_sec;
	bool forward_signals;
	bool quiet;
	struct aj_pty *pty; /* the agent's own terminal, relayed; NULL: none */
	bool job_control;   /* init's STOPPED stops the supervisor (struct aj_spawn_plan) */
};

/* Run until the jail's init exits; reap it and the broker.  Returns 0 and
 * *STATUS (agent status, 128+N, AJ_EXIT_TIMEOUT or AJ_EXIT_VIOLATION) and
 * *AGENT_SIGNAL (N if the agent died by signal N, else 0), or -errno. */
int aj_monitor_run(const struct aj_monitor_plan *plan, int *status, int *agent_signal, char *err,
		   size_t errlen);

/* ---- supervisor/events.c: the JSON-lines event stream ------------------- */

struct json_t;
struct aj_events;

/* Events go to OUT (not owned; NULL: none) and/or CB.  Returns 0 or -errno. */
int aj_events_new(struct aj_output *out, aj_event_fn cb, void *cb_arg, struct aj_events **ev);
void aj_events_free(struct aj_events *ev);
const char *aj_events_jail_id(const struct aj_events *ev);
/* Emit one event of TYPE with the members of FIELDS (a JSON object; the
 * reference is taken).  EV may be NULL. */
void aj_events_emit(struct aj_events *ev, const char *type, struct json_t *fields);

/* ---- supervisor/audit.c: the broker's audit records -------------------- */

struct aj_audit;

/* Records go to OUT (not owned; NULL: only the event stream) and to EVENTS
 * as `fetch` events.  *BROKER_END is the pipe's write end for the broker
 * (close-on-exec; the caller closes it once the broker has it).
 * JAIL_INIT (0: none) names the jail's pid namespace, the only one whose
 * processes a record's missing "exe" is completed for. */
int aj_audit_new(struct aj_output *out, struct aj_events *events, const char *policy_sha256,
		 pid_t jail_init, int *broker_end, struct aj_audit **a);
int aj_audit_fd(const struct aj_audit *a);
/* Handle what the pipe holds; 1 at EOF. */
int aj_audit_read(struct aj_audit *a);
void aj_audit_counts(const struct aj_audit *a, unsigned long long *allowed,
		     unsigned long long *denied);
void aj_audit_free(struct aj_audit *a);

/* ---- supervisor/destinations.c: where a jailed socket's bytes go ---- */

struct seccomp_notif;

/* A destination outside the jail's loopback, as a watched call named it. */
struct aj_destination {
	const char *call; /* "connect", "sendto", "sendmsg", "sendmmsg" */
	int fd;           /* the agent's socket */
	int type;         /* SOCK_STREAM, SOCK_DGRAM, or -1: could not be read */
	int family;       /* AF_INET or AF_INET6 */
	char address[46]; /* INET6_ADDRSTRLEN */
	unsigned port;
};

/* Is system call NR one whose destination the jail's filter sends here
 * (connect, sendto, sendmsg, sendmmsg)? */
bool aj_destination_watched(int nr);

/* Read where the notified call REQ is headed.  Returns 1 with *OUT when
 * that is outside the jail's loopback (a violation: destinations.c says
 * which count), 0 when not or when it cannot be read.  The call is to be
 * continued either way: the kernel's routing answers it. */
int aj_destination_read(int listener, const struct seccomp_notif *req,
			struct aj_destination *out);

/* "connect 192.0.2.1:443", "sendto [2001:db8::1]:53": the violation's summary. */
void aj_destination_summary(const struct aj_destination *d, char *out, size_t len);

/* The violation's "args" members: "fd":3,"family":"AF_INET","type":"SOCK_STREAM",
 * "address":"192.0.2.1","port":443. */
void aj_destination_args(const struct aj_destination *d, char *out, size_t len);

/* KILL_FN(KILL_ARG) kills the jail (on-violation kill); it is called
 * before the event is written. */
/* ---- supervisor/violations.c: escape attempts, heard and answered -------- */

struct aj_violations;

int aj_violations_new(int listener_fd, struct aj_events *events, bool kill, void (*kill_fn)(void *),
		      void *kill_arg, struct aj_violations **out);
void aj_violations_free(struct aj_violations *v);
/* Receive and answer one notification; returns 1 when the jail must be
 * killed (on-violation kill), 0, or -errno when the listener broke. */
int aj_violations_handle(struct aj_violations *v);
/* Write the counts not yet reported (violation_repeated events). */
void aj_violations_flush(struct aj_violations *v);
unsigned long long aj_violations_total(const struct aj_violations *v);
/* "socket AF_INET x2, io_uring_setup x1" */
int aj_violations_describe(const struct aj_violations *v, char *out, size_t len);
/* {"socket AF_INET": 2, ...}: a new reference. */
struct json_t *aj_violations_counts(const struct aj_violations *v);

/* ---- supervisor/doctor.c --------------------------------------------------- */

/* Probe what this kernel and caller can apply; print a report as text or
 * JSON to FP.  Returns 0 when every mandatory layer is available, 1 if not. */
int aj_doctor(bool json, void *fp);

#endif /* AJ_SUPERVISOR_H */
