/*
 * The options of one run, as an opaque builder (minijail's minijail_new()
 * and setters): embedders never see the struct, so it can grow without
 * breaking a program built against an older libagentjail.  Setters only
 * store; aj_run_options_check() judges the whole set once, before aj_run()
 * starts anything, so every refusal has a message and nothing is left
 * half-started.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "supervisor.h"

/* A timeout past this is a mistake (ev_timer takes a double of seconds). */
#define TIMEOUT_MAX 1e9

int
aj_run_options_new(struct aj_run_options **out)
{
	struct aj_run_options *o;

	if (out == NULL)
		return -EINVAL;
	o = calloc(1, sizeof(*o));
	if (o == NULL)
		return -ENOMEM;
	o->events_fd = -1;
	o->audit_fd = -1;
	o->pty = true;
	for (size_t i = 0; i < 3; i++)
		o->stdio[i] = -1;
	*out = o;
	return 0;
}

static void
free_argv(char **argv)
{
	for (char **a = argv; a != NULL && *a != NULL; a++)
		free(*a);
	free(argv);
}

void
aj_run_options_free(struct aj_run_options *opts)
{
	if (opts == NULL)
		return;
	free_argv(opts->argv);
	free(opts->broker_path);
	free(opts->cwd);
	for (size_t i = 0; i < opts->n_env; i++) {
		free(opts->env[i].name);
		free(opts->env[i].value);
	}
	free(opts->env);
	free(opts);
}

int
aj_run_options_set_profile(struct aj_run_options *opts, const struct aj_profile *profile)
{
	if (opts == NULL)
		return -EINVAL;
	opts->profile = profile;
	return 0;
}

int
aj_run_options_set_argv(struct aj_run_options *opts, char *const argv[])
{
	size_t n = 0;
	char **copy;

	if (opts == NULL)
		return -EINVAL;
	while (argv != NULL && argv[n] != NULL)
		n++;
	copy = calloc(n + 1, sizeof(*copy));
	if (copy == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		copy[i] = strdup(argv[i]);
		if (copy[i] == NULL) {
			free_argv(copy);
			return -ENOMEM;
		}
	}
	free_argv(opts->argv);
	opts->argv = copy;
	return 0;
}

int
aj_run_options_set_timeout(struct aj_run_options *opts, double seconds)
{
	if (opts == NULL)
		return -EINVAL;
	opts->timeout_sec = seconds;
	return 0;
}

int
aj_run_options_set_forward_signals(struct aj_run_options *opts, bool on)
{
	if (opts == NULL)
		return -EINVAL;
	opts->forward_signals = on;
	return 0;
}

/* Replace *SLOT with a copy of S (NULL: none). */
static int
set_string(char **slot, const char *s)
{
	char *copy = NULL;

	if (s != NULL && (copy = strdup(s)) == NULL)
		return -ENOMEM;
	free(*slot);
	*slot = copy;
	return 0;
}

int
aj_run_options_set_broker_path(struct aj_run_options *opts, const char *path)
{
	if (opts == NULL)
		return -EINVAL;
	return set_string(&opts->broker_path, path);
}

int
aj_run_options_set_pty(struct aj_run_options *opts, bool on)
{
	if (opts == NULL)
		return -EINVAL;
	opts->pty = on;
	return 0;
}

int
aj_run_options_set_quiet(struct aj_run_options *opts, bool on)
{
	if (opts == NULL)
		return -EINVAL;
	opts->quiet = on;
	return 0;
}

int
aj_run_options_set_event_callback(struct aj_run_options *opts, aj_event_fn fn, void *arg)
{
	if (opts == NULL)
		return -EINVAL;
	opts->on_event = fn;
	opts->on_event_arg = arg;
	return 0;
}

int
aj_run_options_set_events_fd(struct aj_run_options *opts, int fd)
{
	if (opts == NULL)
		return -EINVAL;
	opts->events_fd = fd;
	return 0;
}

int
aj_run_options_set_audit_fd(struct aj_run_options *opts, int fd)
{
	if (opts == NULL)
		return -EINVAL;
	opts->audit_fd = fd;
	return 0;
}

int
aj_run_options_set_cwd(struct aj_run_options *opts, const char *path)
{
	if (opts == NULL)
		return -EINVAL;
	return set_string(&opts->cwd, path);
}

int
aj_run_options_add_env(struct aj_run_options *opts, const char *name, const char *value)
{
	struct aj_run_env *grown;
	char *n, *v;

	if (opts == NULL || name == NULL || value == NULL)
		return -EINVAL;
	n = strdup(name);
	v = strdup(value);
	if (n == NULL || v == NULL) {
		free(n);
		free(v);
		return -ENOMEM;
	}
	/* A name given twice: the later value, as setenv(3) would. */
	for (size_t i = 0; i < opts->n_env; i++) {
		if (strcmp(opts->env[i].name, name) == 0) {
			free(n);
			free(opts->env[i].value);
			opts->env[i].value = v;
			return 0;
		}
	}
	grown = realloc(opts->env, (opts->n_env + 1) * sizeof(*grown));
	if (grown == NULL) {
		free(n);
		free(v);
		return -ENOMEM;
	}
	opts->env = grown;
	opts->env[opts->n_env].name = n;
	opts->env[opts->n_env++].value = v;
	return 0;
}

int
aj_run_options_set_stdio(struct aj_run_options *opts, int in, int out, int err)
{
	if (opts == NULL)
		return -EINVAL;
	opts->stdio[0] = in;
	opts->stdio[1] = out;
	opts->stdio[2] = err;
	return 0;
}

/* ---- the check before a run ---------------------------------------------- */

/* FD, for WHAT, is open and can be used as WRITABLE (else readable). */
static int
check_fd(int fd, const char *what, bool writable, char *err, size_t errlen)
{
	int fl = fd >= 0 ? fcntl(fd, F_GETFL) : -1;
	int mode = fl & O_ACCMODE;
	struct stat st;

	if (fl < 0)
		return aj_err(err, errlen, -EBADF, "aj_run: %s: fd %d is not open", what, fd);
	/* An O_PATH fd can be neither read nor written; a directory fd in
	 * the jail would be a way out of its view of the filesystem (runc
	 * CVE-2024-21626: fchdir, openat). */
	if ((fl & O_PATH) || fstat(fd, &st) < 0 || S_ISDIR(st.st_mode))
		return aj_err(err, errlen, -EBADF,
			      "aj_run: %s: fd %d is a directory or an O_PATH descriptor", what, fd);
	if (writable ? mode == O_RDONLY : mode == O_WRONLY)
		return aj_err(err, errlen, -EBADF, "aj_run: %s: fd %d is open %s", what, fd,
			      writable ? "read-only" : "write-only");
	return 0;
}

/* The names agentjail sets itself (env.c): the agent must be able to trust
 * them, and a nested jail's supervisor reads them. */
static bool
is_reserved_env(const char *name)
{
	return strcmp(name, "AGENTJAIL") == 0 || strncmp(name, "AGENTJAIL_", 10) == 0;
}

static int
check_env(const struct aj_run_options *opts, char *err, size_t errlen)
{
	for (size_t i = 0; i < opts->n_env; i++) {
		const char *name = opts->env[i].name;
		char safe[128];

		aj_log_escape(name, safe, sizeof(safe));
		if (name[0] == '\0' || strchr(name, '=') != NULL)
			return aj_err(err, errlen, -EINVAL,
				      "aj_run: environment: '%s' is not a variable name (empty, or "
				      "holds '=')",
				      safe);
		if (is_reserved_env(name))
			return aj_err(
				err, errlen, -EINVAL,
				"aj_run: environment: %s is reserved: agentjail sets AGENTJAIL "
				"and AGENTJAIL_* itself",
				safe);
	}
	return 0;
}

/* The host's view first: an absolute path to a directory.  Whether the
 * agent's user can enter it inside the jail is known only there. */
static int
check_cwd(const char *cwd, char *err, size_t errlen)
{
	char safe[512];
	struct stat st;

	aj_log_escape(cwd, safe, sizeof(safe));
	if (cwd[0] != '/')
		return aj_err(err, errlen, -EINVAL,
			      "aj_run: working directory '%s' is not an absolute path", safe);
	if (stat(cwd, &st) < 0)
		return aj_err(err, errlen, -errno, "aj_run: working directory %s: %s", safe,
			      strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return aj_err(err, errlen, -ENOTDIR,
			      "aj_run: working directory %s is not a directory", safe);
	return 0;
}

int
aj_run_options_check(const struct aj_run_options *opts, char *err, size_t errlen)
{
	static const char *const stdio_names[3] = {"stdin", "stdout", "stderr"};
	int r;

	if (opts == NULL || opts->profile == NULL || opts->argv == NULL || opts->argv[0] == NULL)
		return aj_err(err, errlen, -EINVAL, "aj_run: a profile and a command are required");
	if (!(opts->timeout_sec >= 0 && opts->timeout_sec <= TIMEOUT_MAX))
		return aj_err(err, errlen, -EINVAL,
			      "aj_run: the timeout must be 0 (none) or a positive number of "
			      "seconds");
	if (opts->events_fd >= 0 &&
	    (r = check_fd(opts->events_fd, "events fd", true, err, errlen)) < 0)
		return r;
	if (opts->events_fd < -1)
		return aj_err(err, errlen, -EBADF, "aj_run: events fd %d is not an fd",
			      opts->events_fd);
	if (opts->audit_fd >= 0 &&
	    (r = check_fd(opts->audit_fd, "audit fd", true, err, errlen)) < 0)
		return r;
	if (opts->audit_fd < -1)
		return aj_err(err, errlen, -EBADF, "aj_run: audit fd %d is not an fd",
			      opts->audit_fd);
	for (size_t i = 0; i < 3; i++) {
		if (opts->stdio[i] < -1)
			return aj_err(err, errlen, -EBADF, "aj_run: %s: %d is not an fd",
				      stdio_names[i], opts->stdio[i]);
		if (opts->stdio[i] >= 0 &&
		    (r = check_fd(opts->stdio[i], stdio_names[i], i > 0, err, errlen)) < 0)
			return r;
	}
	if (opts->cwd != NULL && (r = check_cwd(opts->cwd, err, errlen)) < 0)
		return r;
	return check_env(opts, err, errlen);
}
