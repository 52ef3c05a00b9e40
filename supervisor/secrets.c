/*
 * The secrets of the profile's `inject` rules (docs/PROFILES.md,
 * "Credentials the agent never sees"): read by the supervisor on the host
 * when a jail starts, from a file or from the caller's environment, and
 * handed to the broker with the policy (common/handover.h), which sets the
 * header on the requests those rules decide.  Nothing of them reaches the
 * jail: the supervisor refuses to start one whose environment would carry
 * a secret (by name or by value), and the files they come from are hidden
 * in it (an empty file bound over each, supervisor/fs.c).  The values are
 * never printed: errors name the rule and the source, never the text.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "supervisor.h"

struct aj_secrets {
	size_t n;       /* the policy's rules */
	char **values;  /* one per rule, NULL where it injects nothing */
	char **hidden;  /* the files read, resolved, NULL-terminated */
	size_t n_hidden;
	const char **vars; /* the variables read (names, the policy's), n_vars of them */
	size_t n_vars;
};

void
aj_secrets_free(struct aj_secrets *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; s->values != NULL && i < s->n; i++) {
		if (s->values[i] != NULL)
			explicit_bzero(s->values[i], strlen(s->values[i]));
		free(s->values[i]);
	}
	for (size_t i = 0; s->hidden != NULL && i < s->n_hidden; i++)
		free(s->hidden[i]);
	free(s->values);
	free(s->hidden);
	free(s->vars);
	free(s);
}

void
aj_secrets_forget(struct aj_secrets *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->n; i++)
		if (s->values[i] != NULL)
			explicit_bzero(s->values[i], strlen(s->values[i]));
	/* Our copy of the environment we were started with. */
	for (size_t i = 0; i < s->n_vars; i++) {
		char *v = getenv(s->vars[i]);

		if (v != NULL)
			explicit_bzero(v, strlen(v));
	}
}

/* The secret in the file PATH (one trailing newline is not part of it),
 * into *OUT; its resolved path into *REAL.  Returns 0 or -errno / -EFBIG
 * / -EBADMSG (not a regular file). */
static int
read_secret_file(const char *path, char **out, char **real)
{
	char resolved[PATH_MAX], *buf;
	struct stat st;
	ssize_t n;
	int fd, e;

	if (realpath(path, resolved) == NULL)
		return -errno;
	/* Resolved: a link put there since is refused, not followed. */
	fd = open(resolved, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		e = -errno;
		close(fd);
		return e;
	}
	if (!S_ISREG(st.st_mode) || st.st_nlink != 1) {
		close(fd);
		return S_ISREG(st.st_mode) ? -EMLINK : -EBADMSG;
	}
	/* The value, a newline, and one byte to see that it is too long. */
	buf = malloc(AJ_POLICY_MAX_SECRET + 3);
	if (buf == NULL) {
		close(fd);
		return -ENOMEM;
	}
	n = read(fd, buf, AJ_POLICY_MAX_SECRET + 3);
	e = n < 0 ? -errno : 0;
	close(fd);
	if (e == 0 && (size_t)n > AJ_POLICY_MAX_SECRET + 2)
		e = -EFBIG;
	if (e == 0) {
		if (n > 0 && buf[n - 1] == '\n')
			n--;
		if (n > 0 && buf[n - 1] == '\r')
			n--;
		buf[n] = '\0';
		if (memchr(buf, '\0', (size_t)n) != NULL)
			e = -EBADMSG;
	}
	if (e == 0 && (*real = strdup(resolved)) == NULL)
		e = -ENOMEM;
	if (e < 0) {
		explicit_bzero(buf, AJ_POLICY_MAX_SECRET + 3);
		free(buf);
		return e;
	}
	*out = buf;
	return 0;
}

/* The secret of RULE into *OUT (and a file read into S's hidden list). */
static int
load_one(struct aj_secrets *s, const struct aj_fetch_rule *rule, char **out, char *err,
	 size_t errlen)
{
	const char *source = rule->inject_source;
	char why[256];
	int r;

	if (strncmp(source, "env:", 4) == 0) {
		const char *v = getenv(source + 4);

		if (v == NULL)
			return aj_err(err, errlen, -ENOENT,
				      "%s: inject %s: the variable %s is not set in the environment "
				      "agentjail was started with",
				      rule->origin, rule->inject_name, source + 4);
		if ((*out = strdup(v)) == NULL)
			return -ENOMEM;
		s->vars[s->n_vars++] = source + 4;
	} else {
		char *real = NULL;

		r = read_secret_file(source + 5, out, &real);
		if (r < 0)
			return aj_err(err, errlen, r, "%s: inject %s: %s: %s", rule->origin,
				      rule->inject_name, source + 5,
				      r == -EFBIG     ? "larger than a header may be"
				      : r == -EBADMSG ? "not a regular text file"
				      : r == -EMLINK  ? "it has more than one name (hard links): the "
							"jail could read it through another"
						      : strerror(-r));
		s->hidden[s->n_hidden++] = real;
	}
	if (!aj_policy_secret_ok(*out, strlen(*out), why, sizeof(why)))
		return aj_err(err, errlen, -EINVAL, "%s: inject %s: %s: %s", rule->origin,
			      rule->inject_name, source, why);
	return 0;
}

int
aj_secrets_load(const struct aj_policy *p, struct aj_secrets **out, char *err, size_t errlen)
{
	struct aj_secrets *s = calloc(1, sizeof(*s));
	int r = 0;

	*out = NULL;
	if (s == NULL)
		return -ENOMEM;
	s->values = calloc(p->n_rules + 1, sizeof(*s->values));
	s->hidden = calloc(p->n_rules + 1, sizeof(*s->hidden));
	s->vars = calloc(p->n_rules + 1, sizeof(*s->vars));
	if (s->values == NULL || s->hidden == NULL || s->vars == NULL)
		r = -ENOMEM;
	else
		s->n = p->n_rules;
	for (size_t i = 0; r == 0 && i < p->n_rules; i++)
		if (p->rules[i].inject_name[0] != '\0')
			r = load_one(s, &p->rules[i], &s->values[i], err, errlen);
	if (r < 0) {
		if (r == -ENOMEM)
			aj_err(err, errlen, r, "reading the secrets of inject rules: out of memory");
		aj_secrets_free(s);
		return r;
	}
	*out = s;
	return 0;
}

char *const *
aj_secrets_values(const struct aj_secrets *s)
{
	return s->values;
}

const char *const *
aj_secrets_hidden(const struct aj_secrets *s)
{
	return (const char *const *)s->hidden;
}

int
aj_secrets_check_env(const struct aj_secrets *s, const struct aj_policy *p, char *const *envp,
		     char *err, size_t errlen)
{
	for (size_t i = 0; i < s->n; i++) {
		const struct aj_fetch_rule *rule = &p->rules[i];
		const char *var = strncmp(rule->inject_source, "env:", 4) == 0
					  ? rule->inject_source + 4
					  : NULL;
		size_t var_len = var != NULL ? strlen(var) : 0;

		if (s->values[i] == NULL)
			continue;
		for (char *const *e = envp; *e != NULL; e++) {
			const char *eq = strchr(*e, '=');
			size_t name_len = eq != NULL ? (size_t)(eq - *e) : strlen(*e);

			if (var != NULL && name_len == var_len && strncmp(*e, var, var_len) == 0)
				return aj_err(err, errlen, -EPERM,
					      "%s: inject %s: the secret's variable %s would be "
					      "passed into the jail: take it out of the profile's "
					      "`env` lines and --env",
					      rule->origin, rule->inject_name, var);
			if (eq != NULL && strstr(eq + 1, s->values[i]) != NULL)
				return aj_err(err, errlen, -EPERM,
					      "%s: inject %s: the jail's environment would carry "
					      "the secret in %.*s: take that variable out of the "
					      "profile's `env` lines and --env",
					      rule->origin, rule->inject_name, (int)name_len, *e);
		}
	}
	return 0;
}
