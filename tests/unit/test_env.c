/*
 * Unit tests for the agent's environment (supervisor/env.c).  The fds the
 * agent inherits are checked from inside real jails (tests/integration).
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "supervisor.h"

static struct aj_profile *
profile_from(const char *text)
{
	struct aj_profile *p = NULL;
	char err[512];
	int r = aj_profile_parse_string("t", "/nonexistent/t.profile", text, &p, err, sizeof(err));

	cr_assert_eq(r, 0, "parse failed: %s", err);
	return p;
}

static const char *
find(char **env, const char *name)
{
	size_t n = strlen(name);

	for (char **e = env; *e; e++)
		if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
			return *e + n + 1;
	return NULL;
}

static size_t
count(char **env)
{
	size_t n = 0;
	while (env[n])
		n++;
	return n;
}

Test(env, keeps_only_listed_variables)
{
	struct aj_profile *p = profile_from("env keep PATH HOME\n");
	char *in[] = {
		"PATH=/bin", "HOME=/h", "AWS_SECRET_ACCESS_KEY=s3cr3t", "SSH_AUTH_SOCK=/run/x",
		"PATHX=no",  NULL};
	char **out = NULL;

	cr_assert_eq(aj_env_build(p, in, 3, &out), 0);
	cr_assert_str_eq(find(out, "PATH"), "/bin");
	cr_assert_str_eq(find(out, "HOME"), "/h");
	cr_assert_null(find(out, "AWS_SECRET_ACCESS_KEY"));
	cr_assert_null(find(out, "SSH_AUTH_SOCK"));
	cr_assert_null(find(out, "PATHX"), "a prefix match must not keep a variable");
	cr_assert_str_eq(find(out, "AGENTJAIL_FD"), "3");
	cr_assert_str_eq(find(out, "AGENTJAIL_SOCKET"), "/run/agentjail/broker.sock");
	cr_assert_str_eq(find(out, "AGENTJAIL"), "1");
	cr_assert_eq(count(out), 5);
	aj_env_free(out);
	aj_profile_free(p);
}

Test(env, set_overrides_kept_value)
{
	struct aj_profile *p = profile_from("env keep LANG PATH\nenv set LANG=C.UTF-8\n");
	char *in[] = {"LANG=de_DE", "PATH=/bin", NULL};
	char **out = NULL;

	cr_assert_eq(aj_env_build(p, in, 3, &out), 0);
	cr_assert_str_eq(find(out, "LANG"), "C.UTF-8");
	cr_assert_eq(count(out), 5, "LANG must appear once");
	aj_env_free(out);
	aj_profile_free(p);
}

Test(env, callers_agentjail_variables_never_leak)
{
	struct aj_profile *p = profile_from("env keep PATH\n");
	char *in[] = {"AGENTJAIL_FD=9", "AGENTJAIL=0", "AGENTJAIL_SOCKET=/tmp/x", "PATH=/bin", NULL};
	char **out = NULL;

	cr_assert_eq(aj_env_build(p, in, 3, &out), 0);
	cr_assert_str_eq(find(out, "AGENTJAIL_FD"), "3");
	cr_assert_str_eq(find(out, "AGENTJAIL_SOCKET"), "/run/agentjail/broker.sock");
	cr_assert_str_eq(find(out, "AGENTJAIL"), "1");
	cr_assert_eq(count(out), 4);
	aj_env_free(out);
	aj_profile_free(p);
}

Test(env, empty_input_and_malformed_entries)
{
	struct aj_profile *p = profile_from("env keep PATH\n");
	char *in[] = {"PATH", "=x", NULL};
	char **out = NULL;

	cr_assert_eq(aj_env_build(p, in, 3, &out), 0);
	cr_assert_null(find(out, "PATH"));
	cr_assert_eq(count(out), 3);
	aj_env_free(out);
	cr_assert_eq(aj_env_build(p, NULL, 3, &out), 0);
	cr_assert_eq(count(out), 3);
	aj_env_free(out);
	aj_env_free(NULL);
	aj_profile_free(p);
}

Test(env, set_replaces_by_name_or_appends)
{
	struct aj_profile *p = profile_from("env keep PATH\nenv set LANG=C\n");
	char *in[] = {"PATH=/bin", NULL};
	char **out = NULL;

	cr_assert_eq(aj_env_build(p, in, 3, &out), 0);
	cr_assert_eq(aj_env_set(&out, "PATH", "/usr/bin"), 0);
	cr_assert_eq(aj_env_set(&out, "LANG", "C.UTF-8"), 0);
	cr_assert_eq(aj_env_set(&out, "NEW", "a=b"), 0);
	cr_assert_str_eq(find(out, "PATH"), "/usr/bin");
	cr_assert_str_eq(find(out, "LANG"), "C.UTF-8");
	cr_assert_str_eq(find(out, "NEW"), "a=b");
	cr_assert_str_eq(find(out, "AGENTJAIL_FD"), "3");
	/* PATH, LANG, AGENTJAIL_FD, AGENTJAIL_SOCKET, AGENTJAIL, NEW: replaced,
	 * not repeated. */
	cr_assert_eq(count(out), 6);
	aj_env_free(out);
	aj_profile_free(p);
}
