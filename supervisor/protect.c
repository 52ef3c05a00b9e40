/*
 * What the agent must not swap: the files of the policy (the profile files
 * a run read, the user's profile directory) and the records of the run
 * (the events and audit files).  Before the jail, their paths, which fs.c
 * makes read-only and immovable inside it; after the run, a check that each
 * path still names the file it named, said loudly when not (the agent is
 * not the only one who could move them: anything on the host can).
 */
#include "config.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "supervisor.h"

/* A record file: its path at the start and the descriptor written. */
struct record {
	const char *what; /* "events", "audit" */
	int fd;           /* not owned */
	char path[PATH_MAX];
};

struct aj_protect {
	const struct aj_profile *profile; /* not owned */
	struct record records[2];
	char **owned; /* the strings LIST points to */
	const char **list;
	size_t n;
};

/* Where FD's file is now (the kernel's name for it), into OUT; "" if it
 * has no absolute path. */
static void
fd_path(int fd, char *out, size_t len)
{
	char link[64];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, out, len - 1);
	if (n > 0 && out[0] == '/')
		out[n] = '\0';
	else
		out[0] = '\0';
}

/* The path of FD if it is a regular file, into OUT; else "". */
static void
regular_file_path(int fd, char *out, size_t len)
{
	struct stat st;

	out[0] = '\0';
	if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
		fd_path(fd, out, len);
}

/* Add PATH, resolved, if it exists. */
static int
add_path(struct aj_protect *pp, const char *path)
{
	char real[PATH_MAX];

	if (path[0] == '\0' || realpath(path, real) == NULL)
		return 0;
	pp->owned[pp->n] = strdup(real);
	if (pp->owned[pp->n] == NULL)
		return -ENOMEM;
	pp->list[pp->n] = pp->owned[pp->n];
	pp->n++;
	return 0;
}

/* $XDG_CONFIG_HOME, or ~/.config when it is unset or not absolute, into
 * OUT; false when there is neither. */
static bool
config_home(char *out, size_t len)
{
	const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");

	if (xdg != NULL && xdg[0] == '/')
		return (size_t)snprintf(out, len, "%s", xdg) < len;
	if (home != NULL && home[0] == '/')
		return (size_t)snprintf(out, len, "%s/.config", home) < len;
	return false;
}

/*
 * The agent runs as the caller when the caller is not root: the ownership
 * rule of trust.c cannot tell its files from the caller's, so a profile
 * directory that does not exist yet is one it could create, unprotected,
 * for the next run to search.  Made here (0700), to be protected like an
 * existing one, below a parent that passes the trust rule.  Failing
 * quietly is safe: what the supervisor cannot create, the agent (the same
 * user, with less) cannot either.
 */
static void
make_config_dir(const char *config)
{
	static const char *const tail[] = {"", "/agentjail", "/agentjail/profiles"};
	char path[PATH_MAX], parent[PATH_MAX], why[PATH_MAX + 128];
	struct stat st;

	for (size_t i = 0; i < AJ_ARRAY_SIZE(tail); i++) {
		char *slash;

		if ((size_t)snprintf(path, sizeof(path), "%s%s", config, tail[i]) >= sizeof(path))
			return;
		if (lstat(path, &st) == 0)
			continue;
		if (errno != ENOENT)
			return;
		memcpy(parent, path, strlen(path) + 1);
		slash = strrchr(parent, '/');
		if (slash == NULL)
			return;
		slash[slash == parent ? 1 : 0] = '\0';
		if (aj_trust_check(parent, why, sizeof(why)) < 0 || mkdir(path, 0700) < 0)
			return;
	}
}

int
aj_protect_new(const struct aj_profile *profile, int events_fd, int audit_fd, bool make_config,
	       struct aj_protect **out)
{
	struct aj_protect *pp;
	char config[PATH_MAX - 16], dir[PATH_MAX];
	size_t max = profile->n_files + 3;
	int r = 0;

	pp = calloc(1, sizeof(*pp));
	if (pp == NULL)
		return -ENOMEM;
	pp->profile = profile;
	pp->owned = calloc(max, sizeof(*pp->owned));
	pp->list = calloc(max + 1, sizeof(*pp->list));
	if (pp->owned == NULL || pp->list == NULL) {
		aj_protect_free(pp);
		return -ENOMEM;
	}
	pp->records[0] = (struct record){.what = "events", .fd = events_fd};
	pp->records[1] = (struct record){.what = "audit", .fd = audit_fd};

	/* The user's profile directory (the system's and the installed ones
	 * belong to root, which no agent is). */
	if (config_home(config, sizeof(config))) {
		if (make_config)
			make_config_dir(config);
		snprintf(dir, sizeof(dir), "%s/agentjail", config);
		r = add_path(pp, dir);
	}
	/* Every profile file this run's policy came from, wherever it is. */
	for (size_t i = 0; r == 0 && i < profile->n_files; i++)
		r = add_path(pp, profile->files[i].path);
	/* The records of this very run must not be the agent's to edit. */
	for (size_t i = 0; r == 0 && i < AJ_ARRAY_SIZE(pp->records); i++) {
		struct record *rec = &pp->records[i];
		regular_file_path(rec->fd, rec->path, sizeof(rec->path));
		r = add_path(pp, rec->path);
	}
	if (r < 0) {
		aj_protect_free(pp);
		return r;
	}
	*out = pp;
	return 0;
}

const char *const *
aj_protect_paths(const struct aj_protect *pp)
{
	return pp->list;
}

/* Does PATH still name the file DEV:INO?  NULL if so, else why not:
 * "missing" or "other". */
static const char *
path_changed(const char *path, dev_t dev, ino_t ino)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return "missing";
	if (st.st_dev != dev || st.st_ino != ino)
		return "other";
	return NULL;
}

static void
report_record(const struct record *rec, struct aj_events *events)
{
	char now[PATH_MAX], safe_path[PATH_MAX * 2], safe_now[PATH_MAX * 2];
	const char *changed;
	struct stat st;

	if (rec->path[0] == '\0' || fstat(rec->fd, &st) < 0)
		return;
	changed = path_changed(rec->path, st.st_dev, st.st_ino);
	if (changed == NULL)
		return;
	fd_path(rec->fd, now, sizeof(now));
	/* A deleted file's link ends in " (deleted)"; st_nlink says it. */
	if (st.st_nlink == 0)
		now[0] = '\0';
	aj_log_escape(rec->path, safe_path, sizeof(safe_path));
	aj_log_escape(now, safe_now, sizeof(safe_now));
	if (now[0] != '\0')
		aj_log_warn("warning: %s file %s was replaced during the run; this run's "
			    "records are at %s",
			    rec->what, safe_path, safe_now);
	else
		aj_log_warn("warning: %s file %s was replaced during the run; the file "
			    "this run wrote was deleted",
			    rec->what, safe_path);
	aj_events_emit(events, "file_replaced",
		       json_pack("{s:s, s:s, s:s, s:o}", "file", rec->what, "path", rec->path,
				 "at_path", changed, "moved_to",
				 now[0] != '\0' ? json_string(now) : json_null()));
}

static void
report_profile_file(const struct aj_profile_file *f, struct aj_events *events)
{
	char safe[PATH_MAX * 2];
	const char *changed = path_changed(f->path, f->dev, f->ino);

	if (changed == NULL)
		return;
	aj_log_escape(f->path, safe, sizeof(safe));
	aj_log_warn("warning: profile file %s was %s during the run; the next run would "
		    "read %s",
		    safe, strcmp(changed, "missing") == 0 ? "removed" : "replaced",
		    strcmp(changed, "missing") == 0 ? "no file there" : "a different file");
	aj_events_emit(events, "file_replaced",
		       json_pack("{s:s, s:s, s:s, s:n}", "file", "profile", "path", f->path,
				 "at_path", changed, "moved_to"));
}

void
aj_protect_check(const struct aj_protect *pp, struct aj_events *events)
{
	for (size_t i = 0; i < AJ_ARRAY_SIZE(pp->records); i++)
		report_record(&pp->records[i], events);
	for (size_t i = 0; i < pp->profile->n_files; i++)
		report_profile_file(&pp->profile->files[i], events);
}

void
aj_protect_free(struct aj_protect *pp)
{
	if (pp == NULL)
		return;
	for (size_t i = 0; pp->owned != NULL && i < pp->n; i++)
		free(pp->owned[i]);
	free(pp->owned);
	free(pp->list);
	free(pp);
}
