/*
 * The agent's environment is built, never inherited: only the variables the
 * profile keeps, then the profile's own settings, then the broker fd.  A
 * secret in the caller's environment reaches the agent only if a profile
 * names it.  An embedder's additions (aj_run_options_add_env) come last, set
 * by name, so they replace what the profile said.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <agentjail/protocol.h>

#include "supervisor.h"

static bool
name_matches(const char *entry, const char *name)
{
	size_t n = strlen(name);
	return strncmp(entry, name, n) == 0 && entry[n] == '=';
}

static bool
is_kept(const struct aj_profile *profile, const char *entry)
{
	for (size_t i = 0; i < profile->n_env_keep; i++)
		if (name_matches(entry, profile->env_keep[i]))
			return true;
	return false;
}

static bool
is_overridden(const struct aj_profile *profile, const char *entry)
{
	for (size_t i = 0; i < profile->n_env_set; i++) {
		const char *eq = strchr(profile->env_set[i], '=');
		size_t n = eq ? (size_t)(eq - profile->env_set[i]) : strlen(profile->env_set[i]);
		if (strncmp(entry, profile->env_set[i], n) == 0 && entry[n] == '=')
			return true;
	}
	return false;
}

void
aj_env_free(char **env)
{
	if (env == NULL)
		return;
	for (char **e = env; *e != NULL; e++)
		free(*e);
	free(env);
}

int
aj_env_build(const struct aj_profile *profile, char *const *environ_in, int broker_fd, char ***out)
{
	size_t n_in = 0, n = 0;
	char **env;

	for (char *const *e = environ_in; e && *e; e++)
		n_in++;
	/* kept + set + AGENTJAIL_FD + AGENTJAIL_SOCKET + AGENTJAIL + NULL */
	env = calloc(n_in + profile->n_env_set + 4, sizeof(*env));
	if (env == NULL)
		return -ENOMEM;

	for (char *const *e = environ_in; e && *e; e++) {
		if (strchr(*e, '=') == NULL || !is_kept(profile, *e) || is_overridden(profile, *e))
			continue;
		/* The caller's own AGENTJAIL_* never leak into a nested jail. */
		if (name_matches(*e, AJ_FD_DOOR_ENV) || name_matches(*e, AJ_BROKER_SOCKET_ENV) ||
		    name_matches(*e, "AGENTJAIL"))
			continue;
		if ((env[n++] = strdup(*e)) == NULL)
			goto nomem;
	}
	for (size_t i = 0; i < profile->n_env_set; i++)
		if ((env[n++] = strdup(profile->env_set[i])) == NULL)
			goto nomem;
	if (asprintf(&env[n], AJ_FD_DOOR_ENV "=%d", broker_fd) < 0) {
		env[n] = NULL;
		goto nomem;
	}
	n++;
	if ((env[n++] = strdup(AJ_BROKER_SOCKET_ENV "=" AJ_BROKER_SOCKET_PATH)) == NULL)
		goto nomem;
	if ((env[n++] = strdup("AGENTJAIL=1")) == NULL)
		goto nomem;
	env[n] = NULL;
	*out = env;
	return 0;
nomem:
	aj_env_free(env);
	return -ENOMEM;
}

int
aj_env_set(char ***env, const char *name, const char *value)
{
	char *entry, **grown;
	size_t n, i;

	if (asprintf(&entry, "%s=%s", name, value) < 0)
		return -ENOMEM;
	for (n = 0; (*env)[n] != NULL; n++)
		;
	for (i = 0; i < n; i++) {
		if (name_matches((*env)[i], name)) {
			free((*env)[i]);
			(*env)[i] = entry;
			return 0;
		}
	}
	grown = realloc(*env, (n + 2) * sizeof(*grown));
	if (grown == NULL) {
		free(entry);
		return -ENOMEM;
	}
	grown[n] = entry;
	grown[n + 1] = NULL;
	*env = grown;
	return 0;
}
