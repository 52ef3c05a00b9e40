#include "config.h"

/*
 * The profile parser: turns a profile file and its includes into one
 * immutable struct aj_profile, and prints that policy back as canonical text
 * (what the audit hash covers) or JSON.
 *
 * Parsing is pure: it reads files and nothing else, so the supervisor can
 * validate the whole policy before it creates a single namespace.  Every
 * input is bounded (file size, line length, include depth and count, list
 * lengths) because a profile may come from somewhere the operator did not
 * write it, and `profile check` must answer quickly even for hostile text.
 */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <sha2.h>

#include <agentjail/protocol.h>

#include "supervisor.h"
#include "addr.h"
#include "lexer.h"
#include "policy.h"
#include "tunnel.h"

#ifndef AJ_PROFILEDIR
#define AJ_PROFILEDIR "/usr/local/share/agentjail/profiles"
#endif

#define PROFILE_MAX_BYTES (1024 * 1024) /* one file */
#define PROFILE_MAX_LINE 4096           /* bytes, without the newline */
#define PROFILE_MAX_DEPTH 16            /* files on the include stack */
#define PROFILE_MAX_INCLUDES 128        /* include directives per load */
#define PROFILE_MAX_WARNINGS 64
#define PROFILE_MAX_ENV 256 /* distinct names, keep and set each */
#define HOSTNAME_MAX 64
#define USER_MAX 32
#define TMPFS_MIN (1024 * 1024)

#define DEFAULT_HOSTNAME "agentjail"
#define DEFAULT_USER "nobody"
#define DEFAULT_TMPFS_SIZE (64ull * 1024 * 1024)

#define RL_EXPECT_COUNT "a number or 'unlimited'"
#define RL_EXPECT_SIZE "a size like 512M, or 'unlimited'"
#define RL_EXPECT_SECONDS "seconds like 60 or 60s, or 'unlimited'"

static const struct {
	const char *name;
	int resource;
	enum { RL_COUNT, RL_SIZE, RL_SECONDS } unit;
	const char *expect; /* for "invalid value" messages */
} rlimit_kinds[AJ_RLIMIT__COUNT] = {
	[AJ_RLIMIT_NOFILE] = {"nofile", RLIMIT_NOFILE, RL_COUNT, RL_EXPECT_COUNT},
	[AJ_RLIMIT_NPROC] = {"nproc", RLIMIT_NPROC, RL_COUNT, RL_EXPECT_COUNT},
	[AJ_RLIMIT_AS] = {"as", RLIMIT_AS, RL_SIZE, RL_EXPECT_SIZE},
	[AJ_RLIMIT_FSIZE] = {"fsize", RLIMIT_FSIZE, RL_SIZE, RL_EXPECT_SIZE},
	[AJ_RLIMIT_CPU] = {"cpu", RLIMIT_CPU, RL_SECONDS, RL_EXPECT_SECONDS},
	[AJ_RLIMIT_CORE] = {"core", RLIMIT_CORE, RL_SIZE, RL_EXPECT_SIZE},
};

/* Sorted by name: the canonical text and JSON list them in this order. */
const struct aj_profile_layer aj_profile_layers[] = {
	{"cgroupns", AJ_LAYER_CGROUPNS},
	{"sysfs", AJ_LAYER_SYSFS},
};
const size_t aj_profile_n_layers = AJ_ARRAY_SIZE(aj_profile_layers);

/* Layers every jail has; naming them in `optional` is a mistake worth a clear
 * answer rather than "unknown layer", since the user clearly meant them. */
static const char *const core_layers[] = {
	"userns", "netns", "mountns", "pidns", "ipcns", "utsns", "seccomp", "caps",
};

/* Variables aj_env_build() sets itself: a profile may neither pass the host's
 * value through nor forge them. */
static const char *const reserved_env[] = {AJ_FD_DOOR_ENV, AJ_BROKER_SOCKET_ENV, "AGENTJAIL"};

/* One scalar setting and where it came from, so a conflict can name both
 * places and an including file can tell its own values from inherited ones. */
struct slot {
	bool set;
	bool own;         /* set by this file, not inherited from an include */
	char *text;       /* the value as written: messages, string settings */
	uint64_t num;     /* the parsed value: numeric settings compare on this */
	const char *file; /* interned in struct ctx */
	unsigned line;
};

struct env_var {
	char *name;
	struct slot value; /* text is VALUE */
};

/* What one file (with its includes merged) says. */
struct layer {
	struct slot hostname, user, broker_user, tmpfs_size, socket_unix, socket_inet, proxy,
	    on_violation;
	struct slot rlimits[AJ_RLIMIT__COUNT];
	char **env_keep;
	size_t n_env_keep;
	struct env_var *env_set;
	size_t n_env_set;
	unsigned optional;
	struct aj_fetch_rule *fetch; /* in the order read; includes after the file's own */
	size_t n_fetch;
	struct slot fetch_limits[AJ_LIMIT__COUNT];
	struct slot fetch_ca; /* text: the absolute path */
	struct aj_cidr *addresses;
	size_t n_addresses;
	struct aj_tunnel_rule *tunnels; /* in the order read; includes after the file's own */
	size_t n_tunnels;
};

struct file_id {
	bool known;
	dev_t dev;
	ino_t ino;
};

struct frame {
	const char *path;
	struct file_id id;
};

struct interned {
	struct interned *next;
	char s[];
};

/* State of one aj_profile_load() / aj_profile_parse_string() call. */
struct ctx {
	struct frame stack[PROFILE_MAX_DEPTH];
	size_t depth;
	unsigned n_includes;
	struct interned *strings; /* paths that slots and frames point into */
	/* The top of aj_profile_load_string(): its name is no file's path, so
	 * its includes have no directory to be relative to. */
	const char *no_dir;
	char *err;
	size_t errlen;
	char **warnings; /* "path:line: warning: ...", handed to the profile */
	size_t n_warnings;
	struct aj_profile_file *files; /* every file read, handed to the profile */
	size_t n_files;
};

/* An included file's settings, merged when its includer has been read. */
struct included {
	struct layer *layer;
	unsigned line; /* of the include directive */
};

/* The file being parsed and the line being looked at. */
struct parser {
	struct ctx *ctx;
	struct layer *layer; /* this file's own directives */
	struct included *includes;
	size_t n_includes;
	const char *path;
	unsigned line;
};

static int parse_file(struct ctx *ctx, const char *path, struct file_id id, char *text, size_t len,
		      struct layer **out);

static int perr(const struct parser *p, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* "path:line: message" into the caller's buffer. */
static int
perr(const struct parser *p, int errnum, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return aj_err(p->ctx->err, p->ctx->errlen, errnum, "%s:%u: %s", p->path, p->line, msg);
}

/* A line that parses but is easy to get wrong: "path:line: warning: ..."
 * for `profile check` (at most PROFILE_MAX_WARNINGS; memory trouble drops
 * a warning, never the profile). */
static void
pwarn(const struct parser *p, const char *fmt, ...)
{
	char *line = NULL, *text = NULL, **grown;
	va_list ap;
	int n;

	if (p->ctx->n_warnings == PROFILE_MAX_WARNINGS)
		return;
	va_start(ap, fmt);
	n = vasprintf(&text, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	grown = realloc(p->ctx->warnings, (p->ctx->n_warnings + 1) * sizeof(*grown));
	if (grown == NULL || asprintf(&line, "%s:%u: warning: %s", p->path, p->line, text) < 0) {
		if (grown != NULL)
			p->ctx->warnings = grown;
		free(text);
		return;
	}
	free(text);
	p->ctx->warnings = grown;
	p->ctx->warnings[p->ctx->n_warnings++] = line;
}

static int
nomem(struct ctx *ctx)
{
	return aj_err(ctx->err, ctx->errlen, -ENOMEM, "out of memory");
}

static const char *
intern(struct ctx *ctx, const char *s)
{
	size_t len = strlen(s);
	struct interned *n = malloc(sizeof(*n) + len + 1);

	if (n == NULL)
		return NULL;
	memcpy(n->s, s, len + 1);
	n->next = ctx->strings;
	ctx->strings = n;
	return n->s;
}

static void
ctx_clear(struct ctx *ctx)
{
	struct interned *n, *next;

	for (n = ctx->strings; n != NULL; n = next) {
		next = n->next;
		free(n);
	}
	ctx->strings = NULL;
	for (size_t i = 0; i < ctx->n_warnings; i++)
		free(ctx->warnings[i]);
	free(ctx->warnings);
	ctx->warnings = NULL;
	ctx->n_warnings = 0;
	aj_profile_files_free(ctx->files, ctx->n_files);
	ctx->files = NULL;
	ctx->n_files = 0;
}

static void
slot_clear(struct slot *s)
{
	free(s->text);
	memset(s, 0, sizeof(*s));
}

static void
layer_free(struct layer *l)
{
	size_t i;

	if (l == NULL)
		return;
	slot_clear(&l->hostname);
	slot_clear(&l->user);
	slot_clear(&l->broker_user);
	slot_clear(&l->tmpfs_size);
	slot_clear(&l->socket_unix);
	slot_clear(&l->socket_inet);
	slot_clear(&l->proxy);
	slot_clear(&l->on_violation);
	for (i = 0; i < AJ_RLIMIT__COUNT; i++)
		slot_clear(&l->rlimits[i]);
	for (i = 0; i < l->n_env_keep; i++)
		free(l->env_keep[i]);
	free(l->env_keep);
	free(l->fetch);
	free(l->addresses);
	free(l->tunnels);
	slot_clear(&l->fetch_ca);
	for (size_t k = 0; k < AJ_LIMIT__COUNT; k++)
		slot_clear(&l->fetch_limits[k]);
	for (i = 0; i < l->n_env_set; i++) {
		free(l->env_set[i].name);
		slot_clear(&l->env_set[i].value);
	}
	free(l->env_set);
	free(l);
}

/* ---- value syntax ---------------------------------------------------------- */

const char *
aj_profile_rlimit_name(enum aj_rlimit_kind kind)
{
	if ((unsigned)kind >= AJ_RLIMIT__COUNT)
		return NULL;
	return rlimit_kinds[kind].name;
}

int
aj_profile_rlimit_resource(enum aj_rlimit_kind kind)
{
	if ((unsigned)kind >= AJ_RLIMIT__COUNT)
		return -EINVAL;
	return rlimit_kinds[kind].resource;
}

static bool
is_env_name(const char *s)
{
	if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
		return false;
	for (s++; *s != '\0'; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		      (*s >= '0' && *s <= '9') || *s == '_'))
			return false;
	return true;
}

static bool
is_reserved_env(const char *name)
{
	size_t i;

	for (i = 0; i < AJ_ARRAY_SIZE(reserved_env); i++)
		if (strcmp(name, reserved_env[i]) == 0)
			return true;
	return false;
}

static bool
is_alnum(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* Directives with a fixed argument count end with this check, so a typo like
 * `hostname my box` is reported instead of half-applied. */
static int
no_more(const struct parser *p, char **cursor, const char *directive)
{
	char *extra = aj_lexer_token(cursor);

	if (extra != NULL)
		return perr(p, -EINVAL, "%s: unexpected argument '%s'", directive, extra);
	return 0;
}

/* ---- settings and conflicts ------------------------------------------------ */

static bool
slot_equal(const struct slot *a, const struct slot *b, bool numeric)
{
	if (numeric)
		return a->num == b->num;
	return strcmp(a->text, b->text) == 0;
}

/*
 * A value this file states itself.  It wins over what an include said (that
 * is what including is for), but the same file saying two different things is
 * a mistake: neither can be assumed to be the one the author meant.
 */
static int
set_own(const struct parser *p, struct slot *s, const char *what, const char *text, uint64_t num,
	bool numeric)
{
	struct slot next = {.set = true, .own = true, .num = num, .file = p->path, .line = p->line};
	char *copy;

	if (s->set && s->own) {
		if (numeric ? s->num == num : strcmp(s->text, text) == 0)
			return 0;
		return perr(p, -EINVAL, "conflicting '%s' (already set to '%s' at %s:%u)", what,
			    s->text, s->file, s->line);
	}
	copy = strdup(text);
	if (copy == NULL)
		return nomem(p->ctx);
	free(s->text);
	next.text = copy;
	*s = next;
	return 0;
}

/*
 * A value an include brought in: the including file's own value wins.  Two
 * includes of the same file disagreeing is reported rather than settled by
 * their order, so the resolved policy (and its hash) never depends on the
 * order of include lines; the author settles it by stating the value.
 */
static int
merge_slot(const struct parser *p, struct slot *dst, struct slot *src, const char *what,
	   bool numeric)
{
	if (!src->set)
		return 0;
	if (dst->set && dst->own)
		return 0;
	if (dst->set) {
		if (slot_equal(dst, src, numeric))
			return 0;
		return perr(p, -EINVAL,
			    "conflicting '%s' from includes: '%s' at %s:%u, '%s' at %s:%u "
			    "(set it in %s to choose)",
			    what, dst->text, dst->file, dst->line, src->text, src->file, src->line,
			    p->path);
	}
	*dst = *src;
	dst->own = false;
	src->text = NULL; /* moved */
	src->set = false;
	return 0;
}

static int
env_keep_add(const struct parser *p, struct layer *l, const char *name)
{
	char **grown, *copy;
	size_t i;

	for (i = 0; i < l->n_env_keep; i++)
		if (strcmp(l->env_keep[i], name) == 0)
			return 0;
	if (l->n_env_keep == PROFILE_MAX_ENV)
		return perr(p, -EINVAL, "env keep: more than %d variables", PROFILE_MAX_ENV);
	copy = strdup(name);
	if (copy == NULL)
		return nomem(p->ctx);
	grown = realloc(l->env_keep, (l->n_env_keep + 1) * sizeof(*grown));
	if (grown == NULL) {
		free(copy);
		return nomem(p->ctx);
	}
	grown[l->n_env_keep++] = copy;
	l->env_keep = grown;
	return 0;
}

/* The slot for NAME, created empty when absent. */
static int
env_set_slot(const struct parser *p, struct layer *l, const char *name, struct slot **out)
{
	struct env_var *grown;
	char *copy;
	size_t i;

	for (i = 0; i < l->n_env_set; i++) {
		if (strcmp(l->env_set[i].name, name) == 0) {
			*out = &l->env_set[i].value;
			return 0;
		}
	}
	if (l->n_env_set == PROFILE_MAX_ENV)
		return perr(p, -EINVAL, "env set: more than %d variables", PROFILE_MAX_ENV);
	copy = strdup(name);
	if (copy == NULL)
		return nomem(p->ctx);
	grown = realloc(l->env_set, (l->n_env_set + 1) * sizeof(*grown));
	if (grown == NULL) {
		free(copy);
		return nomem(p->ctx);
	}
	l->env_set = grown;
	memset(&grown[l->n_env_set], 0, sizeof(grown[0]));
	grown[l->n_env_set].name = copy;
	*out = &grown[l->n_env_set++].value;
	return 0;
}

static int fetch_add(const struct parser *p, struct layer *l, const struct aj_fetch_rule *rule);
static int address_add(const struct parser *p, struct layer *l, const struct aj_cidr *c);
static int tunnel_add(const struct parser *p, struct layer *l, const struct aj_tunnel_rule *rule);

static int
merge_layer(const struct parser *p, struct layer *dst, struct layer *src)
{
	char what[32], *label;
	struct slot *s;
	size_t i;
	int r;

	if ((r = merge_slot(p, &dst->hostname, &src->hostname, "hostname", false)) < 0 ||
	    (r = merge_slot(p, &dst->user, &src->user, "user", false)) < 0 ||
	    (r = merge_slot(p, &dst->broker_user, &src->broker_user, "broker-user", false)) < 0 ||
	    (r = merge_slot(p, &dst->tmpfs_size, &src->tmpfs_size, "tmpfs-size", true)) < 0 ||
	    (r = merge_slot(p, &dst->socket_unix, &src->socket_unix, "socket unix", true)) < 0 ||
	    (r = merge_slot(p, &dst->socket_inet, &src->socket_inet, "socket inet", true)) < 0 ||
	    (r = merge_slot(p, &dst->proxy, &src->proxy, "proxy", true)) < 0 ||
	    (r = merge_slot(p, &dst->on_violation, &src->on_violation, "on-violation", true)) < 0)
		return r;
	for (i = 0; i < AJ_RLIMIT__COUNT; i++) {
		snprintf(what, sizeof(what), "rlimit %s", rlimit_kinds[i].name);
		r = merge_slot(p, &dst->rlimits[i], &src->rlimits[i], what, true);
		if (r < 0)
			return r;
	}
	for (i = 0; i < src->n_env_keep; i++)
		if ((r = env_keep_add(p, dst, src->env_keep[i])) < 0)
			return r;
	for (i = 0; i < src->n_fetch; i++)
		if ((r = fetch_add(p, dst, &src->fetch[i])) < 0)
			return r;
	for (i = 0; i < AJ_LIMIT__COUNT; i++) {
		snprintf(what, sizeof(what), "fetch limit %s", aj_policy_limit_name(i));
		if ((r = merge_slot(p, &dst->fetch_limits[i], &src->fetch_limits[i], what, true)) <
		    0)
			return r;
	}
	if ((r = merge_slot(p, &dst->fetch_ca, &src->fetch_ca, "fetch ca", false)) < 0)
		return r;
	for (i = 0; i < src->n_addresses; i++)
		if ((r = address_add(p, dst, &src->addresses[i])) < 0)
			return r;
	for (i = 0; i < src->n_tunnels; i++)
		if ((r = tunnel_add(p, dst, &src->tunnels[i])) < 0)
			return r;
	for (i = 0; i < src->n_env_set; i++) {
		if ((r = env_set_slot(p, dst, src->env_set[i].name, &s)) < 0)
			return r;
		if (asprintf(&label, "env set %s", src->env_set[i].name) < 0)
			return nomem(p->ctx);
		r = merge_slot(p, s, &src->env_set[i].value, label, false);
		free(label);
		if (r < 0)
			return r;
	}
	dst->optional |= src->optional;
	return 0;
}

/* ---- finding and reading files --------------------------------------------- */

void
aj_profile_files_free(struct aj_profile_file *files, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(files[i].path);
	free(files);
}

static void
free_strv(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/*
 * The search path, most specific first: only directories an agent cannot
 * have written (nothing relative to the current directory, which is usually
 * the agent's project); each file found is checked by aj_trust_check() too.
 */
static int
search_dirs(char ***out, size_t *n_out)
{
	const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
	char **dirs;
	size_t n = 0;
	int r;

	dirs = calloc(3, sizeof(*dirs));
	if (dirs == NULL)
		return -ENOMEM;
	/* XDG says a relative XDG_CONFIG_HOME is invalid and must be ignored. */
	if (xdg != NULL && xdg[0] == '/') {
		r = asprintf(&dirs[n++], "%s/agentjail/profiles", xdg);
		if (r < 0) {
			dirs[--n] = NULL;
			goto fail;
		}
	} else if (home != NULL && home[0] != '\0') {
		r = asprintf(&dirs[n++], "%s/.config/agentjail/profiles", home);
		if (r < 0) {
			dirs[--n] = NULL;
			goto fail;
		}
	}
	if ((dirs[n++] = strdup("/etc/agentjail/profiles")) == NULL)
		goto fail;
	if ((dirs[n++] = strdup(AJ_PROFILEDIR)) == NULL)
		goto fail;
	*out = dirs;
	*n_out = n;
	return 0;
fail:
	free_strv(dirs, n);
	return -ENOMEM;
}

/*
 * Read PATH whole.  Returns 0, -ENOENT (absent: the caller words the
 * message, since it knows where else it looked) or another -errno with ERR
 * set.  *TEXT is NUL-terminated; NUL bytes inside are found by the parser.
 */
static int
read_profile(struct ctx *ctx, const char *path, char **text, size_t *len, struct file_id *id)
{
	struct stat st;
	char *buf;
	size_t n = 0;
	ssize_t got;
	int fd, r;

	/* O_NONBLOCK: a FIFO planted under a profile name must not hang us
	 * in open(); it is refused below as not a regular file. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		r = -errno;
		if (r == -ENOENT || r == -ENOTDIR)
			return -ENOENT;
		return aj_err(ctx->err, ctx->errlen, r, "cannot open '%s': %s", path, strerror(-r));
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		close(fd);
		return aj_err(ctx->err, ctx->errlen, r, "cannot read '%s': %s", path, strerror(-r));
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return aj_err(ctx->err, ctx->errlen, -EINVAL, "%s: not a regular file", path);
	}
	/* One byte more than allowed, to tell "exactly 1 MiB" from "more". */
	buf = malloc(PROFILE_MAX_BYTES + 2);
	if (buf == NULL) {
		close(fd);
		return nomem(ctx);
	}
	while (n <= PROFILE_MAX_BYTES) {
		got = read(fd, buf + n, PROFILE_MAX_BYTES + 1 - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			r = -errno;
			close(fd);
			free(buf);
			return aj_err(ctx->err, ctx->errlen, r, "cannot read '%s': %s", path,
				      strerror(-r));
		}
		if (got == 0)
			break;
		n += (size_t)got;
	}
	close(fd);
	if (n > PROFILE_MAX_BYTES) {
		free(buf);
		return aj_err(ctx->err, ctx->errlen, -EINVAL, "%s: file is larger than 1 MiB",
			      path);
	}
	buf[n] = '\0';
	id->known = true;
	id->dev = st.st_dev;
	id->ino = st.st_ino;
	*text = buf;
	*len = n;
	return 0;
}

static char *
dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		return strdup(".");
	if (slash == path)
		return strdup("/");
	return strndup(path, (size_t)(slash - path));
}

static char *
path_join(const char *dir, const char *name, const char *suffix)
{
	char *s;

	if (asprintf(&s, "%s%s%s%s", dir, strcmp(dir, "/") == 0 ? "" : "/", name, suffix) < 0)
		return NULL;
	return s;
}

/* Remember a file this load read (once), for the run: it protects the
 * file in the jail and, after the run, says so if the path no longer
 * names it. */
static int
note_file(struct ctx *ctx, const char *path, struct file_id id)
{
	struct aj_profile_file *grown;
	char real[PATH_MAX];

	for (size_t i = 0; i < ctx->n_files; i++)
		if (ctx->files[i].dev == id.dev && ctx->files[i].ino == id.ino)
			return 0;
	grown = realloc(ctx->files, (ctx->n_files + 1) * sizeof(*grown));
	if (grown == NULL)
		return nomem(ctx);
	ctx->files = grown;
	grown[ctx->n_files].path = strdup(realpath(path, real) != NULL ? real : path);
	if (grown[ctx->n_files].path == NULL)
		return nomem(ctx);
	grown[ctx->n_files].dev = id.dev;
	grown[ctx->n_files++].ino = id.ino;
	return 0;
}

/* A profile decides what the next jail may do: one that someone else (or,
 * through a writable directory, an earlier jail) could have written is
 * refused, never skipped, so a planted file is neither used nor silently
 * replaced by another policy. */
static int
check_trusted(struct ctx *ctx, const char *where, const char *path)
{
	char why[PATH_MAX + 128];
	int r = aj_trust_check(path, why, sizeof(why));

	if (r == -EPERM)
		return aj_err(ctx->err, ctx->errlen, r,
			      "%s%sprofile '%s' is not trusted: %s; make it owned by you or root "
			      "and not group/other-writable",
			      where ? where : "", where ? ": " : "", path, why);
	if (r < 0)
		return aj_err(ctx->err, ctx->errlen, r, "%s%sprofile '%s' cannot be checked: %s",
			      where ? where : "", where ? ": " : "", path, why);
	return 0;
}

/* read_profile(), then check_trusted() and note_file(); *TEXT only on
 * success. */
static int
read_trusted(struct ctx *ctx, const char *where, const char *path, char **text, size_t *len,
	     struct file_id *id)
{
	int r = read_profile(ctx, path, text, len, id);

	if (r < 0)
		return r;
	r = check_trusted(ctx, where, path);
	if (r == 0)
		r = note_file(ctx, path, *id);
	if (r < 0) {
		free(*text);
		*text = NULL;
	}
	return r;
}

/*
 * Resolve and read NAME the way `include` and aj_profile_load() do: a path
 * when it contains a '/' (relative to BASE_DIR when BASE_DIR is given),
 * otherwise NAME.profile in the search path only (never beside the
 * including file: that directory is often the agent's).  Every file read
 * must pass check_trusted().  On -ENOENT, ERR says where we looked
 * (prefixed with WHERE, when given).
 */
static int
find_profile(struct ctx *ctx, const char *where, const char *name, const char *base_dir,
	     char **path_out, char **text, size_t *len, struct file_id *id)
{
	char **dirs = NULL, *path, *list = NULL;
	size_t n_dirs = 0, i, used = 0, need, suffix_len = strlen(".profile");
	int r;

	if (strchr(name, '/') != NULL) {
		if (name[0] == '/' || base_dir == NULL)
			path = strdup(name);
		else /* "./x.profile" beside D is D/x.profile, as messages say */
			path = path_join(base_dir, name + (strncmp(name, "./", 2) == 0 ? 2 : 0), "");
		if (path == NULL)
			return nomem(ctx);
		r = read_trusted(ctx, where, path, text, len, id);
		if (r == 0) {
			*path_out = path;
			return 0;
		}
		if (r == -ENOENT)
			aj_err(ctx->err, ctx->errlen, r, "%s%sprofile '%s' not found",
			       where ? where : "", where ? ": " : "", path);
		free(path);
		return r;
	}

	if (search_dirs(&dirs, &n_dirs) < 0)
		return nomem(ctx);
	for (i = 0; i < n_dirs; i++) {
		path = path_join(dirs[i], name, ".profile");
		if (path == NULL) {
			r = nomem(ctx);
			goto out;
		}
		r = read_trusted(ctx, where, path, text, len, id);
		if (r == 0) {
			*path_out = path;
			goto out;
		}
		free(path);
		/* Only absence falls through to the next directory: an
		 * unreadable or untrusted profile that shadows another must
		 * not be silently replaced by a different policy. */
		if (r != -ENOENT)
			goto out;
	}
	for (i = 0; i < n_dirs; i++)
		used += strlen(dirs[i]) + 2;
	list = malloc(used + 1);
	if (list == NULL) {
		r = nomem(ctx);
		goto out;
	}
	list[0] = '\0';
	for (i = 0, need = 0; i < n_dirs; i++)
		need += (size_t)sprintf(list + need, "%s%s", i ? ", " : "", dirs[i]);
	/* "x.profile" was meant as a file (x.profile.profile was looked for):
	 * say how to name it, since without a '/' it is never a path. */
	if (strlen(name) > suffix_len && strcmp(name + strlen(name) - suffix_len, ".profile") == 0)
		r = aj_err(ctx->err, ctx->errlen, -ENOENT,
			   "%s%sprofile '%s' not found (searched: %s); a path needs a '/': to "
			   "%s, say ./%s",
			   where ? where : "", where ? ": " : "", name, list,
			   base_dir != NULL ? "include the file beside this profile"
					    : "use the file in this directory",
			   name);
	else
		r = aj_err(ctx->err, ctx->errlen, -ENOENT,
			   "%s%sprofile '%s' not found (searched: %s)", where ? where : "",
			   where ? ": " : "", name, list);
	free(list);
out:
	free_strv(dirs, n_dirs);
	return r;
}

/* ---- directives ------------------------------------------------------------ */

/* "include cycle: a -> b -> a", from the stack entry START that the new
 * include would repeat.  Built on the heap: this runs deep in recursion. */
static int
report_cycle(const struct parser *p, size_t start)
{
	struct ctx *ctx = p->ctx;
	char *chain = NULL;
	size_t size = 0, i;
	FILE *f;
	int r;

	f = open_memstream(&chain, &size);
	if (f == NULL)
		return nomem(ctx);
	for (i = start; i < ctx->depth; i++)
		fprintf(f, "%s -> ", ctx->stack[i].path);
	fputs(ctx->stack[start].path, f);
	if (fclose(f) != 0) {
		free(chain);
		return nomem(ctx);
	}
	r = perr(p, -ELOOP, "include cycle: %s", chain);
	free(chain);
	return r;
}

static int
do_include(struct parser *p, char *rest)
{
	struct ctx *ctx = p->ctx;
	char *name, *where = NULL, *dir = NULL, *path = NULL, *text = NULL;
	const char *ipath;
	struct layer *child = NULL;
	struct included *grown;
	struct file_id id = {0};
	size_t len, start;
	int r;

	name = aj_lexer_token(&rest);
	if (name == NULL)
		return perr(p, -EINVAL, "include: missing NAME");
	if ((r = no_more(p, &rest, "include")) < 0)
		return r;
	/* A diamond of includes re-reads shared files; this bounds the
	 * work a small hostile profile can cause to a fixed number of files. */
	if (++ctx->n_includes > PROFILE_MAX_INCLUDES)
		return perr(p, -ELOOP, "include: more than %d includes in one profile",
			    PROFILE_MAX_INCLUDES);

	dir = p->path == ctx->no_dir ? NULL : dir_of(p->path);
	if ((dir == NULL && p->path != ctx->no_dir) ||
	    asprintf(&where, "%s:%u", p->path, p->line) < 0) {
		free(dir);
		return nomem(ctx);
	}
	r = find_profile(ctx, where, name, dir, &path, &text, &len, &id);
	free(where);
	free(dir);
	if (r < 0)
		return r;

	for (start = 0; start < ctx->depth; start++) {
		const struct frame *f = &ctx->stack[start];

		if (f->id.known && id.known ? f->id.dev == id.dev && f->id.ino == id.ino
					    : strcmp(f->path, path) == 0)
			break;
	}
	if (start < ctx->depth) {
		r = report_cycle(p, start);
		goto out;
	}
	if (ctx->depth == PROFILE_MAX_DEPTH) {
		r = perr(p, -ELOOP, "include: nested more than %d files deep", PROFILE_MAX_DEPTH);
		goto out;
	}

	ipath = intern(ctx, path);
	if (ipath == NULL) {
		r = nomem(ctx);
		goto out;
	}
	r = parse_file(ctx, ipath, id, text, len, &child);
	if (r < 0)
		goto out;
	grown = realloc(p->includes, (p->n_includes + 1) * sizeof(*grown));
	if (grown == NULL) {
		r = nomem(ctx);
		goto out;
	}
	p->includes = grown;
	p->includes[p->n_includes].layer = child;
	p->includes[p->n_includes++].line = p->line;
	child = NULL;
out:
	layer_free(child);
	free(text);
	free(path);
	return r;
}

static int
do_hostname(struct parser *p, char *rest)
{
	char *name = aj_lexer_token(&rest);
	size_t len, i;
	int r;

	if (name == NULL)
		return perr(p, -EINVAL, "hostname: missing NAME");
	if ((r = no_more(p, &rest, "hostname")) < 0)
		return r;
	len = strlen(name);
	if (len > HOSTNAME_MAX)
		return perr(p, -EINVAL, "hostname: '%s' is longer than %d characters", name,
			    HOSTNAME_MAX);
	for (i = 0; i < len; i++)
		if (!is_alnum(name[i]) && name[i] != '.' && name[i] != '-')
			return perr(p, -EINVAL,
				    "hostname: invalid character in '%s' (letters, digits, '.' "
				    "and '-' only)",
				    name);
	if (name[0] == '-')
		return perr(p, -EINVAL, "hostname: '%s' must not start with '-'", name);
	return set_own(p, &p->layer->hostname, "hostname", name, 0, false);
}

/* A host user name or id: `user` (the agent's) and `broker-user`. */
static int
user_slot(struct parser *p, char *rest, const char *what, struct slot *slot)
{
	char *name = aj_lexer_token(&rest);
	size_t len, i;
	int r;

	if (name == NULL)
		return perr(p, -EINVAL, "%s: missing NAME", what);
	if ((r = no_more(p, &rest, what)) < 0)
		return r;
	len = strlen(name);
	if (len > USER_MAX)
		return perr(p, -EINVAL, "%s: '%s' is longer than %d characters", what, name,
			    USER_MAX);
	for (i = 0; i < len; i++)
		if (!is_alnum(name[i]) && name[i] != '.' && name[i] != '_' && name[i] != '-')
			return perr(p, -EINVAL,
				    "%s: invalid character in '%s' (letters, digits, '.', '_' "
				    "and '-' only)",
				    what, name);
	/* A leading '-' would read as an option to anything the name is
	 * ever handed to. */
	if (name[0] == '-')
		return perr(p, -EINVAL, "%s: '%s' must not start with '-'", what, name);
	return set_own(p, slot, what, name, 0, false);
}

static int
do_user(struct parser *p, char *rest)
{
	return user_slot(p, rest, "user", &p->layer->user);
}

/* broker-user NAME: the host user the broker runs as when agentjail is
 * started by root; a user of its own keeps the agent's uid from owning
 * anything of the broker's. */
static int
do_broker_user(struct parser *p, char *rest)
{
	return user_slot(p, rest, "broker-user", &p->layer->broker_user);
}

static int
do_env(struct parser *p, char *rest)
{
	char *action = aj_lexer_token(&rest), *name, *eq, *label;
	struct slot *s;
	int r;

	if (action == NULL)
		return perr(p, -EINVAL, "env: missing 'keep' or 'set'");
	if (strcmp(action, "keep") == 0) {
		name = aj_lexer_token(&rest);
		if (name == NULL)
			return perr(p, -EINVAL, "env keep: missing variable names");
		for (; name != NULL; name = aj_lexer_token(&rest)) {
			if (!is_env_name(name))
				return perr(p, -EINVAL, "env keep: invalid variable name '%s'",
					    name);
			if (is_reserved_env(name))
				return perr(p, -EINVAL,
					    "env keep: '%s' is reserved (agentjail sets it)", name);
			if ((r = env_keep_add(p, p->layer, name)) < 0)
				return r;
		}
		return 0;
	}
	if (strcmp(action, "set") == 0) {
		/* VALUE is the rest of the line, spaces included: a value is
		 * often a command line or a path list. */
		rest = aj_lexer_skip_blanks(rest);
		if (*rest == '\0')
			return perr(p, -EINVAL, "env set: missing NAME=VALUE");
		eq = strchr(rest, '=');
		if (eq == NULL)
			return perr(p, -EINVAL, "env set: expected NAME=VALUE, got '%s'", rest);
		*eq = '\0';
		name = rest;
		if (!is_env_name(name))
			return perr(p, -EINVAL, "env set: invalid variable name '%s'", name);
		if (is_reserved_env(name))
			return perr(p, -EINVAL, "env set: '%s' is reserved (agentjail sets it)",
				    name);
		if ((r = env_set_slot(p, p->layer, name, &s)) < 0)
			return r;
		if (asprintf(&label, "env set %s", name) < 0)
			return nomem(p->ctx);
		r = set_own(p, s, label, eq + 1, 0, false);
		free(label);
		return r;
	}
	return perr(p, -EINVAL, "env: unknown action '%s' (expected 'keep' or 'set')", action);
}

static int
do_rlimit(struct parser *p, char *rest)
{
	char *kind = aj_lexer_token(&rest), *value, what[32];
	const char *end;
	uint64_t v = 0;
	size_t k;
	int r;

	if (kind == NULL)
		return perr(p, -EINVAL, "rlimit: missing KIND and VALUE");
	for (k = 0; k < AJ_RLIMIT__COUNT; k++)
		if (strcmp(kind, rlimit_kinds[k].name) == 0)
			break;
	if (k == AJ_RLIMIT__COUNT)
		return perr(p, -EINVAL,
			    "rlimit: unknown kind '%s' (expected nofile, nproc, as, fsize, cpu "
			    "or core)",
			    kind);
	snprintf(what, sizeof(what), "rlimit %s", rlimit_kinds[k].name);
	value = aj_lexer_token(&rest);
	if (value == NULL)
		return perr(p, -EINVAL, "%s: missing VALUE", what);
	if ((r = no_more(p, &rest, what)) < 0)
		return r;

	if (strcmp(value, "unlimited") == 0) {
		v = AJ_RLIM_UNLIMITED;
		r = 0;
	} else if (rlimit_kinds[k].unit == RL_SIZE) {
		r = aj_lexer_size(value, &v);
	} else {
		r = aj_lexer_number(value, &end, &v);
		if (r == 0 && rlimit_kinds[k].unit == RL_SECONDS && *end == 's')
			end++;
		if (r == 0 && *end != '\0')
			r = -EINVAL;
	}
	if (r == -ERANGE)
		return perr(p, -EINVAL, "%s: value '%s' is too large", what, value);
	if (r < 0)
		return perr(p, -EINVAL, "%s: invalid value '%s' (expected %s)", what, value,
			    rlimit_kinds[k].expect);
	return set_own(p, &p->layer->rlimits[k], what, value, v, true);
}

static int
do_tmpfs_size(struct parser *p, char *rest)
{
	char *value = aj_lexer_token(&rest);
	uint64_t v;
	int r;

	if (value == NULL)
		return perr(p, -EINVAL, "tmpfs-size: missing SIZE");
	if ((r = no_more(p, &rest, "tmpfs-size")) < 0)
		return r;
	r = aj_lexer_size(value, &v);
	if (r == -ERANGE)
		return perr(p, -EINVAL, "tmpfs-size: value '%s' is too large", value);
	if (r < 0)
		return perr(p, -EINVAL,
			    "tmpfs-size: invalid size '%s' (expected a number with an optional "
			    "K, M, G or T suffix)",
			    value);
	/* Below a megabyte the agent cannot even unpack a small tarball in
	 * /tmp; such a value is a typo (a forgotten suffix), not a policy. */
	if (v < TMPFS_MIN)
		return perr(p, -EINVAL, "tmpfs-size: '%s' is below the minimum of 1M", value);
	return set_own(p, &p->layer->tmpfs_size, "tmpfs-size", value, v, true);
}

/* The one setting of each configurable socket family: its words, which
 * of them is the default (0), and the profile's slot. */
static const struct {
	const char *family;
	const char *words[2]; /* [0] the default */
	size_t slot;
} socket_families[] = {
	{"unix", {"deny", "allow"}, offsetof(struct layer, socket_unix)},
	{"inet", {"deny", "loopback"}, offsetof(struct layer, socket_inet)},
};

/* socket unix deny|allow, socket inet deny|loopback. */
static int
do_socket(struct parser *p, char *rest)
{
	char *family = aj_lexer_token(&rest), *action, what[32];
	size_t i;
	int r;

	if (family == NULL)
		return perr(p, -EINVAL, "socket: missing 'unix allow|deny' or 'inet loopback|deny'");
	for (i = 0; i < AJ_ARRAY_SIZE(socket_families); i++)
		if (strcmp(family, socket_families[i].family) == 0)
			break;
	if (i == AJ_ARRAY_SIZE(socket_families))
		return perr(p, -EINVAL,
			    "socket: unknown family '%s' (only 'unix' and 'inet' can be configured; "
			    "other families are always denied)",
			    family);
	snprintf(what, sizeof(what), "socket %s", family);
	action = aj_lexer_token(&rest);
	if (action == NULL)
		return perr(p, -EINVAL, "%s: missing '%s' or '%s'", what,
			    socket_families[i].words[1], socket_families[i].words[0]);
	if ((r = no_more(p, &rest, what)) < 0)
		return r;
	for (size_t w = 0; w < 2; w++)
		if (strcmp(action, socket_families[i].words[w]) == 0)
			return set_own(p,
				       (struct slot *)((char *)p->layer + socket_families[i].slot),
				       what, action, w, true);
	return perr(p, -EINVAL, "%s: expected '%s' or '%s', got '%s'", what,
		    socket_families[i].words[1], socket_families[i].words[0], action);
}

/* proxy off | proxy on [port N]: the broker's HTTP proxy inside the jail.
 * The slot holds the port, 0 for off. */
static int
do_proxy(struct parser *p, char *rest)
{
	char *word = aj_lexer_token(&rest), *port, text[32];
	const char *end;
	uint64_t v = AJ_PROXY_DEFAULT_PORT;
	int r;

	if (word == NULL)
		return perr(p, -EINVAL, "proxy: missing 'on' or 'off'");
	if (strcmp(word, "off") == 0) {
		if ((r = no_more(p, &rest, "proxy off")) < 0)
			return r;
		return set_own(p, &p->layer->proxy, "proxy", "off", 0, true);
	}
	if (strcmp(word, "on") != 0)
		return perr(p, -EINVAL, "proxy: expected 'on' or 'off', got '%s'", word);
	port = aj_lexer_token(&rest);
	if (port != NULL) {
		if (strcmp(port, "port") != 0)
			return perr(p, -EINVAL, "proxy on: unexpected argument '%s' (expected 'port N')",
				    port);
		port = aj_lexer_token(&rest);
		if (port == NULL)
			return perr(p, -EINVAL, "proxy on port: missing N");
		if (aj_lexer_number(port, &end, &v) < 0 || *end != '\0' || v < 1 || v > 65535)
			return perr(p, -EINVAL,
				    "proxy on port: expected a port from 1 to 65535, got '%s'", port);
		if ((r = no_more(p, &rest, "proxy on port")) < 0)
			return r;
	}
	snprintf(text, sizeof(text), "on port %llu", (unsigned long long)v);
	return set_own(p, &p->layer->proxy, "proxy", text, v, true);
}

/* on-violation deny|kill: what an escape attempt costs the agent. */
static int
do_on_violation(struct parser *p, char *rest)
{
	char *action = aj_lexer_token(&rest);
	int r;

	if (action == NULL)
		return perr(p, -EINVAL, "on-violation: missing 'deny' or 'kill'");
	if ((r = no_more(p, &rest, "on-violation")) < 0)
		return r;
	if (strcmp(action, "deny") != 0 && strcmp(action, "kill") != 0)
		return perr(p, -EINVAL, "on-violation: expected 'deny' or 'kill', got '%s'",
			    action);
	return set_own(p, &p->layer->on_violation, "on-violation", action,
		       strcmp(action, "kill") == 0, true);
}

static int
do_optional(struct parser *p, char *rest)
{
	char *layer = aj_lexer_token(&rest);
	size_t i;
	int r;

	if (layer == NULL)
		return perr(p, -EINVAL, "optional: missing LAYER");
	if ((r = no_more(p, &rest, "optional")) < 0)
		return r;
	for (i = 0; i < aj_profile_n_layers; i++) {
		if (strcmp(layer, aj_profile_layers[i].name) == 0) {
			p->layer->optional |= aj_profile_layers[i].bit;
			return 0;
		}
	}
	for (i = 0; i < AJ_ARRAY_SIZE(core_layers); i++)
		if (strcmp(layer, core_layers[i]) == 0)
			return perr(p, -EINVAL,
				    "%s cannot be optional: it is part of the jail's core "
				    "isolation",
				    layer);
	return perr(p, -EINVAL, "optional: unknown layer '%s' (expected cgroupns or sysfs)", layer);
}

/* The whole of a small regular file, NUL-terminated.  Returns 0, -EFBIG
 * past MAX bytes, or -errno. */
static int
read_small_file(const char *path, size_t max, char **out, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	struct stat st;
	char *buf;
	size_t n = 0;
	ssize_t got;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	buf = malloc(max + 2);
	if (buf == NULL) {
		close(fd);
		return -ENOMEM;
	}
	while ((got = read(fd, buf + n, max + 1 - n)) > 0 && n + (size_t)got <= max)
		n += (size_t)got;
	close(fd);
	if (got < 0) {
		free(buf);
		return -EIO;
	}
	if (got > 0) {
		free(buf);
		return -EFBIG;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
}

static int
fetch_add(const struct parser *p, struct layer *l, const struct aj_fetch_rule *rule)
{
	struct aj_fetch_rule *grown;

	if (l->n_fetch == AJ_POLICY_MAX_RULES)
		return perr(p, -EINVAL, "fetch: more than %d rules", AJ_POLICY_MAX_RULES);
	grown = realloc(l->fetch, (l->n_fetch + 1) * sizeof(*grown));
	if (grown == NULL)
		return nomem(p->ctx);
	grown[l->n_fetch++] = *rule;
	l->fetch = grown;
	return 0;
}

static int
address_add(const struct parser *p, struct layer *l, const struct aj_cidr *c)
{
	struct aj_cidr *grown;

	for (size_t i = 0; i < l->n_addresses; i++)
		if (memcmp(&l->addresses[i], c, sizeof(*c)) == 0)
			return 0;
	if (l->n_addresses == AJ_POLICY_MAX_ADDRESSES)
		return perr(p, -EINVAL, "fetch address: more than %d ranges",
			    AJ_POLICY_MAX_ADDRESSES);
	grown = realloc(l->addresses, (l->n_addresses + 1) * sizeof(*grown));
	if (grown == NULL)
		return nomem(p->ctx);
	grown[l->n_addresses++] = *c;
	l->addresses = grown;
	return 0;
}

/* fetch limit KEY VALUE [KEY VALUE]...: limits for every fetch (a rule's
 * own limits win for the requests it decides). */
static int
do_fetch_limit(struct parser *p, char *rest)
{
	struct aj_fetch_limits seen = {0};
	char *key, err[512];
	int r, n = 0;

	while ((key = aj_lexer_token(&rest)) != NULL) {
		char *value = aj_lexer_token(&rest);
		int k;

		if (aj_policy_parse_limit(key, value, &seen, err, sizeof(err)) < 0)
			return perr(p, -EINVAL, "fetch limit: %s", err);
		for (k = 0; k < AJ_LIMIT__COUNT; k++)
			if (strcmp(key, aj_policy_limit_name(k)) == 0)
				break;
		r = set_own(p, &p->layer->fetch_limits[k], key, value, seen.value[k], true);
		if (r < 0)
			return r;
		n++;
	}
	if (n == 0)
		return perr(p, -EINVAL,
			    "fetch limit: expected KEY VALUE pairs (max-body, "
			    "response, timeout, concurrency, rate, redirects)");
	return 0;
}

/* fetch address allow CIDR: the broker may connect to these addresses even
 * though they are loopback, private, link-local... (SSRF checks). */
static int
do_fetch_address(struct parser *p, char *rest)
{
	char *action = aj_lexer_token(&rest), *range = aj_lexer_token(&rest), err[256];
	struct aj_cidr c;
	int r;

	if (action == NULL || strcmp(action, "allow") != 0 || range == NULL)
		return perr(p, -EINVAL, "fetch address: expected 'allow ADDRESS[/PREFIX]'");
	if ((r = no_more(p, &rest, "fetch address")) < 0)
		return r;
	if (aj_cidr_parse(range, &c, err, sizeof(err)) < 0)
		return perr(p, -EINVAL, "fetch address: %s", err);
	return address_add(p, p->layer, &c);
}

/* fetch ca FILE: a PEM file of CA certificates the broker trusts besides
 * the system's (private PKI, tests).  Read now, so a missing or unreadable
 * file is an error of the profile, with its line. */
static int
do_fetch_ca(struct parser *p, char *rest)
{
	char *file = aj_lexer_token(&rest), *dir, *path, *text = NULL;
	size_t len = 0;
	int r;

	if (file == NULL)
		return perr(p, -EINVAL, "fetch ca: missing FILE");
	if ((r = no_more(p, &rest, "fetch ca")) < 0)
		return r;
	if (p->path == p->ctx->no_dir && file[0] != '/')
		return perr(p, -EINVAL,
			    "fetch ca: '%s' must be an absolute path in a profile given as text",
			    file);
	dir = dir_of(p->path);
	path = file[0] == '/' || dir == NULL ? strdup(file) : path_join(dir, file, "");
	free(dir);
	if (path == NULL)
		return nomem(p->ctx);
	r = read_small_file(path, AJ_POLICY_MAX_CA, &text, &len);
	if (r == 0 && strstr(text, "-----BEGIN CERTIFICATE-----") == NULL)
		r = -EBADMSG;
	free(text);
	if (r < 0) {
		r = perr(p, -EINVAL, "fetch ca: %s: %s", path,
			 r == -EBADMSG ? "no PEM certificate in it"
			 : r == -EFBIG ? "larger than 1 MiB"
				       : strerror(-r));
		free(path);
		return r;
	}
	r = set_own(p, &p->layer->fetch_ca, "fetch ca", path, 0, false);
	free(path);
	return r;
}

/* fetch allow|deny METHODS URL-PATTERN [OPTION...]: the broker's rules
 * (deny wins; nothing matching means denied); fetch limit|address|ca. */
/* A deny rule's query pattern is matched against the whole query: a
 * pattern that does not begin and end with '**' lets a request with one
 * more parameter before or after it through, which is rarely what a deny
 * rule means. */
static void
warn_query_pattern(const struct parser *p, const struct aj_fetch_rule *r)
{
	size_t len = strlen(r->query), a = 0, b = len;

	if (r->allow || len == 0 || strcmp(r->query, "none") == 0 ||
	    (len >= 4 && strncmp(r->query, "**", 2) == 0 && strcmp(r->query + len - 2, "**") == 0))
		return;
	while (a < len && r->query[a] == '*')
		a++;
	while (b > a && r->query[b - 1] == '*')
		b--;
	pwarn(p,
	      "fetch deny: the query pattern '%s' must match the whole query, so a request "
	      "that adds a parameter before or after it is not denied (to deny it anywhere "
	      "in the query: query **%.*s**)",
	      r->query, (int)(b - a), r->query + a);
}

/* An `inject ... file:PATH` names the file as the profile wrote it: "~/"
 * is the caller's home (HOME), a relative path is the profile's
 * directory's, as for `fetch ca`.  What the policy (and its hash) then
 * holds is the absolute path; the file is read only when a jail starts
 * (supervisor/secrets.c), never by `profile show`. */
static int
resolve_inject_file(struct parser *p, struct aj_fetch_rule *rule)
{
	const char *file = rule->inject_source + 5, *home = getenv("HOME");
	char *path = NULL, *dir;

	if (strncmp(rule->inject_source, "file:", 5) != 0 || file[0] == '/')
		return 0;
	if (strncmp(file, "~/", 2) == 0) {
		if (home == NULL || home[0] != '/')
			return perr(p, -EINVAL,
				    "fetch: inject %s: '~' needs HOME, which is not an absolute "
				    "path here",
				    rule->inject_name);
		path = path_join(home, file + 2, "");
	} else if (p->path == p->ctx->no_dir) {
		return perr(p, -EINVAL,
			    "fetch: inject %s: '%s' must be an absolute path or start with '~/' in "
			    "a profile given as text",
			    rule->inject_name, file);
	} else {
		/* Absolute whatever the profile's path: the supervisor reads
		 * the file later, from wherever it runs. */
		char real[PATH_MAX];

		dir = dir_of(p->path);
		if (dir == NULL)
			return nomem(p->ctx);
		if (dir[0] != '/' && realpath(dir, real) == NULL) {
			free(dir);
			return perr(p, -EINVAL, "fetch: inject %s: cannot make '%s' absolute",
				    rule->inject_name, file);
		}
		path = path_join(dir[0] == '/' ? dir : real, file, "");
		free(dir);
	}
	if (path == NULL)
		return nomem(p->ctx);
	if (strlen(path) + 5 >= sizeof(rule->inject_source)) {
		free(path);
		return perr(p, -EINVAL, "fetch: inject %s: the path is longer than %zu bytes",
			    rule->inject_name, sizeof(rule->inject_source) - 6);
	}
	snprintf(rule->inject_source, sizeof(rule->inject_source), "file:%s", path);
	free(path);
	return 0;
}

/* A secret is only as safe as the connection it travels on and the hosts
 * it goes to: say so where a rule hands it to more than one origin's
 * owner or sends it in clear. */
static void
warn_inject(const struct parser *p, const struct aj_fetch_rule *r)
{
	if (strcmp(r->scheme, "http") == 0 && strcmp(r->host, "127.0.0.1") != 0 &&
	    strcmp(r->host, "::1") != 0)
		pwarn(p,
		      "fetch allow: inject %s on an http:// rule sends the secret in clear to "
		      "whoever is on the path to %s; use https",
		      r->inject_name, r->host);
	if (r->host[0] == '*')
		pwarn(p,
		      "fetch allow: inject %s on %s gives the secret to every host below %s, "
		      "whoever runs it; name the host",
		      r->inject_name, r->host, r->host + 2);
}

static int
do_fetch(struct parser *p, char *rest)
{
	static const struct {
		const char *word;
		int (*fn)(struct parser *p, char *rest);
	} subs[] = {
		{"limit", do_fetch_limit},
		{"address", do_fetch_address},
		{"ca", do_fetch_ca},
	};
	struct aj_fetch_rule rule;
	char err[512];
	size_t n;
	int r;

	rest += strspn(rest, " \t");
	n = strcspn(rest, " \t");
	for (size_t i = 0; i < AJ_ARRAY_SIZE(subs); i++)
		if (strlen(subs[i].word) == n && strncmp(rest, subs[i].word, n) == 0)
			return subs[i].fn(p, rest + n);
	if (!((n == 5 && strncmp(rest, "allow", 5) == 0) ||
	      (n == 4 && strncmp(rest, "deny", 4) == 0)))
		return perr(p, -EINVAL, "fetch: expected allow, deny, limit, address or ca");
	/* The whole line, action first: the broker reads the same text. */
	memset(&rule, 0, sizeof(rule));
	if (aj_policy_parse_rule(rest, &rule, err, sizeof(err)) < 0)
		/* (The parser cut REST after the action word.) */
		return perr(p, -EINVAL, "fetch %s: %s", rest, err);
	snprintf(rule.origin, sizeof(rule.origin), "%s:%u", p->path, p->line);
	warn_query_pattern(p, &rule);
	if (rule.inject_name[0] != '\0' && (r = resolve_inject_file(p, &rule)) < 0)
		return r;
	if (rule.inject_name[0] != '\0')
		warn_inject(p, &rule);
	return fetch_add(p, p->layer, &rule);
}

static int
tunnel_add(const struct parser *p, struct layer *l, const struct aj_tunnel_rule *rule)
{
	struct aj_tunnel_rule *grown;

	if (l->n_tunnels == AJ_TUNNEL_MAX_RULES)
		return perr(p, -EINVAL, "tunnel: more than %d rules", AJ_TUNNEL_MAX_RULES);
	grown = realloc(l->tunnels, (l->n_tunnels + 1) * sizeof(*grown));
	if (grown == NULL)
		return nomem(p->ctx);
	grown[l->n_tunnels++] = *rule;
	l->tunnels = grown;
	return 0;
}

/* tunnel allow|deny HOST:PORT [idle DURATION]: a CONNECT through the proxy
 * to HOST:PORT is relayed as raw TCP (common/tunnel.h). */
static int
do_tunnel(struct parser *p, char *rest)
{
	struct aj_tunnel_rule rule;
	char err[512];

	memset(&rule, 0, sizeof(rule));
	rest = aj_lexer_skip_blanks(rest);
	if (aj_tunnel_parse_rule(rest, &rule, err, sizeof(err)) < 0)
		/* (The parser cut REST after the action word.) */
		return perr(p, -EINVAL, "tunnel%s%s: %s", *rest ? " " : "", rest, err);
	snprintf(rule.origin, sizeof(rule.origin), "%s:%u", p->path, p->line);
	return tunnel_add(p, p->layer, &rule);
}

static const struct {
	const char *name;
	int (*fn)(struct parser *p, char *rest);
} directives[] = {
	{"include", do_include},
	{"hostname", do_hostname},
	{"user", do_user},
	{"broker-user", do_broker_user},
	{"env", do_env},
	{"rlimit", do_rlimit},
	{"tmpfs-size", do_tmpfs_size},
	{"socket", do_socket},
	{"proxy", do_proxy},
	{"tunnel", do_tunnel},
	{"optional", do_optional},
	{"fetch", do_fetch},
	{"on-violation", do_on_violation},
};

/* ---- files ----------------------------------------------------------------- */

static int
parse_line(struct parser *p, char *line)
{
	char *cursor = line, *word;
	size_t i;

	for (i = 0; line[i] != '\0'; i++) {
		unsigned char c = (unsigned char)line[i];

		if (c == '\r')
			return perr(p, -EINVAL,
				    "carriage return in line (DOS line endings are not "
				    "supported)");
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return perr(p, -EINVAL, "control character 0x%02x in line", c);
	}
	aj_lexer_strip_comment(line);
	word = aj_lexer_token(&cursor);
	if (word == NULL)
		return 0;
	for (i = 0; i < AJ_ARRAY_SIZE(directives); i++)
		if (strcmp(word, directives[i].name) == 0)
			return directives[i].fn(p, cursor);
	return perr(p, -EINVAL, "unknown directive '%s'", word);
}

/*
 * Parse one file's TEXT (LEN bytes, NUL-terminated, modified in place) and,
 * recursively, its includes.  PATH must outlive CTX (interned).
 */
static int
parse_file(struct ctx *ctx, const char *path, struct file_id id, char *text, size_t len,
	   struct layer **out)
{
	struct parser p = {.ctx = ctx, .path = path, .line = 0};
	char *line = text, *nl, *nul;
	size_t linelen, i;
	int r = 0;

	if (len > PROFILE_MAX_BYTES)
		return aj_err(ctx->err, ctx->errlen, -EINVAL, "%s: file is larger than 1 MiB",
			      path);
	/* A NUL would silently end the text early: everything after it would
	 * be ignored policy. */
	nul = memchr(text, '\0', len);
	if (nul != NULL) {
		p.line = 1;
		for (line = text; line < nul; line++)
			p.line += *line == '\n';
		return perr(&p, -EINVAL, "NUL byte in line");
	}
	p.layer = calloc(1, sizeof(*p.layer));
	if (p.layer == NULL)
		return nomem(ctx);
	ctx->stack[ctx->depth].path = path;
	ctx->stack[ctx->depth].id = id;
	ctx->depth++;

	for (line = text; line < text + len; line = nl + 1) {
		p.line++;
		nl = memchr(line, '\n', (size_t)(text + len - line));
		if (nl == NULL)
			nl = text + len;
		linelen = (size_t)(nl - line);
		if (linelen > PROFILE_MAX_LINE) {
			r = perr(&p, -EINVAL, "line longer than %d bytes", PROFILE_MAX_LINE);
			break;
		}
		*nl = '\0';
		if ((r = parse_line(&p, line)) < 0)
			break;
	}
	/* Includes are merged only now, when every value this file states
	 * itself is known: those win wherever they appear in the file, and
	 * a disagreement between two includes that this file settles is no
	 * error. */
	for (i = 0; i < p.n_includes; i++) {
		if (r == 0) {
			p.line = p.includes[i].line;
			r = merge_layer(&p, p.layer, p.includes[i].layer);
		}
		layer_free(p.includes[i].layer);
	}
	free(p.includes);

	ctx->depth--;
	if (r < 0) {
		layer_free(p.layer);
		return r;
	}
	*out = p.layer;
	return 0;
}

/* ---- the resolved profile -------------------------------------------------- */

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
cmp_env_var(const void *a, const void *b)
{
	return strcmp(((const struct env_var *)a)->name, ((const struct env_var *)b)->name);
}

void
aj_profile_free(struct aj_profile *profile)
{
	if (profile == NULL)
		return;
	free(profile->name);
	free(profile->path);
	free(profile->hostname);
	free(profile->user);
	free(profile->broker_user);
	free_strv(profile->env_keep, profile->n_env_keep);
	free_strv(profile->env_set, profile->n_env_set);
	aj_policy_clear(&profile->fetch);
	free_strv(profile->warnings, profile->n_warnings);
	aj_profile_files_free(profile->files, profile->n_files);
	free(profile);
}

/* "fetch allow GET,HEAD https://host[:port]/path ...": the canonical text
 * of a rule, for sorting, the hash and `profile show`. */
void
aj_profile_rule_text(const struct aj_fetch_rule *r, char *out, size_t len)
{
	size_t n = (size_t)snprintf(out, len, "fetch ");

	aj_policy_rule_text(r, out + n, len - n);
}

static int
cmp_tunnel(const void *a, const void *b)
{
	char ta[1024], tb[1024];

	aj_tunnel_rule_text(a, ta, sizeof(ta));
	aj_tunnel_rule_text(b, tb, sizeof(tb));
	return strcmp(ta, tb);
}

static int
cmp_cidr(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct aj_cidr));
}

static int
cmp_rule(const void *a, const void *b)
{
	char ta[AJ_URL_MAX + 400], tb[AJ_URL_MAX + 400];

	aj_profile_rule_text(a, ta, sizeof(ta));
	aj_profile_rule_text(b, tb, sizeof(tb));
	return strcmp(ta, tb);
}

/* Defaults fill what no file said; sets are sorted so the result (and its
 * hash) does not depend on the order of lines or includes. */
static int
build_profile(struct layer *l, const char *name, const char *path, struct aj_profile **out)
{
	struct aj_profile *pr;
	size_t i;

	pr = calloc(1, sizeof(*pr));
	if (pr == NULL)
		return -ENOMEM;
	pr->name = strdup(name);
	pr->path = strdup(path);
	pr->hostname = strdup(l->hostname.set ? l->hostname.text : DEFAULT_HOSTNAME);
	pr->user = strdup(l->user.set ? l->user.text : DEFAULT_USER);
	pr->broker_user = strdup(l->broker_user.set ? l->broker_user.text : DEFAULT_USER);
	if (pr->name == NULL || pr->path == NULL || pr->hostname == NULL || pr->user == NULL ||
	    pr->broker_user == NULL)
		goto fail;

	/* env_keep_add() already made the names unique. */
	if (l->n_env_keep > 0)
		qsort(l->env_keep, l->n_env_keep, sizeof(*l->env_keep), cmp_str);
	pr->env_keep = calloc(l->n_env_keep + 1, sizeof(*pr->env_keep));
	if (pr->env_keep == NULL)
		goto fail;
	for (i = 0; i < l->n_env_keep; i++) {
		pr->env_keep[i] = l->env_keep[i];
		l->env_keep[i] = NULL;
	}
	pr->n_env_keep = l->n_env_keep;

	if (l->n_env_set > 0)
		qsort(l->env_set, l->n_env_set, sizeof(*l->env_set), cmp_env_var);
	pr->env_set = calloc(l->n_env_set + 1, sizeof(*pr->env_set));
	if (pr->env_set == NULL)
		goto fail;
	for (i = 0; i < l->n_env_set; i++) {
		if (asprintf(&pr->env_set[i], "%s=%s", l->env_set[i].name,
			     l->env_set[i].value.text) < 0) {
			pr->env_set[i] = NULL;
			goto fail;
		}
		pr->n_env_set = i + 1;
	}

	for (i = 0; i < AJ_RLIMIT__COUNT; i++) {
		pr->rlimits[i].set = l->rlimits[i].set;
		pr->rlimits[i].value = l->rlimits[i].num;
	}
	/* Core dumps off unless asked for: a dump of an agent's memory holds
	 * its prompts and tokens, and lands in a directory the host may read. */
	if (!pr->rlimits[AJ_RLIMIT_CORE].set) {
		pr->rlimits[AJ_RLIMIT_CORE].set = true;
		pr->rlimits[AJ_RLIMIT_CORE].value = 0;
	}
	pr->tmpfs_size = l->tmpfs_size.set ? l->tmpfs_size.num : DEFAULT_TMPFS_SIZE;
	pr->allow_unix_sockets = l->socket_unix.set && l->socket_unix.num != 0;
	pr->loopback_sockets = l->socket_inet.set && l->socket_inet.num != 0;
	pr->proxy_port = l->proxy.set ? (uint16_t)l->proxy.num : 0;
	pr->kill_on_violation = l->on_violation.set && l->on_violation.num != 0;
	pr->optional_layers = l->optional;
	/* Rules are decided as a set (deny wins, order does not matter):
	 * sorted by their text, the policy hash ignores the file layout. */
	if (l->n_fetch > 0)
		qsort(l->fetch, l->n_fetch, sizeof(*l->fetch), cmp_rule);
	pr->fetch.path = strdup(path);
	if (pr->fetch.path == NULL)
		goto fail;
	pr->fetch.rules = l->fetch;
	pr->fetch.n_rules = l->n_fetch;
	l->fetch = NULL;
	l->n_fetch = 0;
	for (i = 0; i < AJ_LIMIT__COUNT; i++) {
		if (!l->fetch_limits[i].set)
			continue;
		pr->fetch.limits.value[i] = l->fetch_limits[i].num;
		pr->fetch.limits.set |= 1u << i;
	}
	aj_policy_limit_defaults(&pr->fetch.limits);
	if (l->n_addresses > 0)
		qsort(l->addresses, l->n_addresses, sizeof(*l->addresses), cmp_cidr);
	pr->fetch.addresses = l->addresses;
	pr->fetch.n_addresses = l->n_addresses;
	l->addresses = NULL;
	l->n_addresses = 0;
	if (l->n_tunnels > 0)
		qsort(l->tunnels, l->n_tunnels, sizeof(*l->tunnels), cmp_tunnel);
	pr->fetch.tunnels = l->tunnels;
	pr->fetch.n_tunnels = l->n_tunnels;
	l->tunnels = NULL;
	l->n_tunnels = 0;
	if (l->fetch_ca.set) {
		size_t len;

		pr->fetch.ca_file = strdup(l->fetch_ca.text);
		if (pr->fetch.ca_file == NULL ||
		    read_small_file(pr->fetch.ca_file, AJ_POLICY_MAX_CA, &pr->fetch.ca_pem, &len) <
			    0)
			goto fail;
	}
	*out = pr;
	return 0;
fail:
	aj_profile_free(pr);
	return -ENOMEM;
}

/* Settings that only make sense together, checked once everything is
 * merged: the error names the line that needs the other. */
static int
check_together(struct ctx *ctx, const struct layer *l)
{
	if (l->proxy.set && l->proxy.num != 0 && !(l->socket_inet.set && l->socket_inet.num != 0)) {
		snprintf(ctx->err, ctx->errlen,
			 "%s:%u: proxy on needs 'socket inet loopback' (tools reach the proxy "
			 "with TCP sockets): add that line",
			 l->proxy.file, l->proxy.line);
		return -EINVAL;
	}
	/* A tunnel is a CONNECT through the proxy: without it, a rule would
	 * silently do nothing. */
	if (l->n_tunnels > 0 && !(l->proxy.set && l->proxy.num != 0)) {
		snprintf(ctx->err, ctx->errlen,
			 "%s: a tunnel rule needs 'proxy on' (tunnels go through the proxy)",
			 l->tunnels[0].origin);
		return -EINVAL;
	}
	return 0;
}

/* FILES (N_FILES; ownership taken) are those read to find the top file. */
static int
load_top(const char *name, const char *path, bool from_string, struct file_id id, char *text,
	 size_t len, struct aj_profile_file *files, size_t n_files, struct aj_profile **out,
	 char *err, size_t errlen)
{
	struct ctx ctx = {.err = err, .errlen = errlen, .files = files, .n_files = n_files};
	struct aj_profile *pr = NULL;
	struct layer *l = NULL;
	const char *ipath;
	int r;

	ipath = intern(&ctx, path);
	if (ipath == NULL) {
		r = nomem(&ctx);
		goto out;
	}
	if (from_string)
		ctx.no_dir = ipath;
	r = parse_file(&ctx, ipath, id, text, len, &l);
	if (r < 0)
		goto out;
	r = check_together(&ctx, l);
	if (r < 0)
		goto out;
	r = build_profile(l, name, path, &pr);
	if (r < 0) {
		r = nomem(&ctx);
		goto out;
	}
	pr->from_string = from_string;
	pr->warnings = ctx.warnings;
	pr->n_warnings = ctx.n_warnings;
	ctx.warnings = NULL;
	ctx.n_warnings = 0;
	pr->files = ctx.files;
	pr->n_files = ctx.n_files;
	ctx.files = NULL;
	ctx.n_files = 0;
	*out = pr;
out:
	layer_free(l);
	ctx_clear(&ctx);
	return r;
}

int
aj_profile_parse_string(const char *name, const char *path, const char *text,
			struct aj_profile **out, char *err, size_t errlen)
{
	struct file_id id = {0};
	struct stat st;
	size_t len;
	char *copy;
	int r;

	if (path == NULL || text == NULL || out == NULL)
		return aj_err(err, errlen, -EINVAL, "no profile text");
	len = strlen(text);
	if (len > PROFILE_MAX_BYTES)
		return aj_err(err, errlen, -EINVAL, "%s: file is larger than 1 MiB", path);
	/* If PATH names a real file, an include of that file is a cycle too. */
	if (stat(path, &st) == 0) {
		id.known = true;
		id.dev = st.st_dev;
		id.ino = st.st_ino;
	}
	copy = strdup(text);
	if (copy == NULL)
		return aj_err(err, errlen, -ENOMEM, "out of memory");
	r = load_top(name != NULL ? name : path, path, false, id, copy, len, NULL, 0, out, err,
		     errlen);
	free(copy);
	return r;
}

int
aj_profile_load(const char *name_or_path, struct aj_profile **out, char *err, size_t errlen)
{
	struct ctx ctx = {.err = err, .errlen = errlen};
	struct file_id id = {0};
	char *path = NULL, *text = NULL;
	size_t len = 0;
	int r;

	if (name_or_path == NULL || name_or_path[0] == '\0' || out == NULL)
		return aj_err(err, errlen, -EINVAL, "empty profile name");
	r = find_profile(&ctx, NULL, name_or_path, NULL, &path, &text, &len, &id);
	if (r < 0) {
		ctx_clear(&ctx);
		return r;
	}
	r = load_top(name_or_path, path, false, id, text, len, ctx.files, ctx.n_files, out, err,
		     errlen);
	free(text);
	free(path);
	return r;
}

int
aj_profile_load_string(const char *name, const char *text, struct aj_profile **out, char *err,
		       size_t errlen)
{
	struct file_id id = {0};
	size_t len;
	char *copy;
	int r;

	if (name == NULL || name[0] == '\0' || text == NULL || out == NULL)
		return aj_err(err, errlen, -EINVAL,
			      "a profile from text needs a name and the text");
	len = strlen(text);
	if (len > PROFILE_MAX_BYTES)
		return aj_err(err, errlen, -EINVAL, "%s: profile is larger than 1 MiB", name);
	/* Not a file: no identity for the include-cycle check, which then
	 * compares by path (an include never resolves to NAME's "path"). */
	copy = strdup(text);
	if (copy == NULL)
		return aj_err(err, errlen, -ENOMEM, "out of memory");
	r = load_top(name, name, true, id, copy, len, NULL, 0, out, err, errlen);
	free(copy);
	return r;
}

const char *
aj_profile_name(const struct aj_profile *profile)
{
	return profile != NULL ? profile->name : NULL;
}

const char *
aj_profile_path(const struct aj_profile *profile)
{
	return profile != NULL ? profile->path : NULL;
}
