/*
 * Unit tests for the secrets of `inject` rules (supervisor/secrets.c): read
 * from a file or the environment, checked, never quoted, and kept out of
 * the jail's environment by name and by value.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "supervisor.h"

static char dir[] = "/tmp/aj-test-secrets-XXXXXX";

static void
setup(void)
{
	cr_assert_not_null(mkdtemp(dir));
}

static void
teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(secrets, .init = setup, .fini = teardown);

static char *
key_file(const char *name, const char *text, size_t len)
{
	char *path;
	FILE *f;

	cr_assert(asprintf(&path, "%s/%s", dir, name) > 0);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	cr_assert_eq(fwrite(text, 1, len, f), len);
	fclose(f);
	return path;
}

/* A profile of FMT, formatted, as its one rule. */
static struct aj_profile *profile(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static struct aj_profile *
profile(const char *fmt, ...)
{
	struct aj_profile *p = NULL;
	char text[1024], err[512] = "";
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	cr_assert_eq(aj_profile_parse_string("t", "/etc/t.profile", text, &p, err, sizeof(err)), 0,
		     "%s", err);
	return p;
}

static int
load(const struct aj_profile *p, struct aj_secrets **s, char *err, size_t errlen)
{
	err[0] = '\0';
	return aj_secrets_load(&p->fetch, s, err, errlen);
}

Test(secrets, a_file_whole_but_its_last_newline)
{
	static const struct {
		const char *text, *want;
	} cases[] = {
		{"sk-abc\n", "sk-abc"},
		{"sk-abc\r\n", "sk-abc"},
		{"sk-abc", "sk-abc"},
		{"Bearer a b", "Bearer a b"},
	};
	char err[512];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *path = key_file("key", cases[i].text, strlen(cases[i].text));
		struct aj_profile *p = profile("fetch allow GET https://a.test/ inject k file:%s\n", path);
		struct aj_secrets *s;

		cr_assert_eq(load(p, &s, err, sizeof(err)), 0, "%s", err);
		cr_assert_str_eq(aj_secrets_values(s)[0], cases[i].want);
		cr_assert_str_eq(aj_secrets_hidden(s)[0], path);
		cr_assert_null(aj_secrets_hidden(s)[1]);
		aj_secrets_free(s);
		aj_profile_free(p);
		free(path);
	}
}

Test(secrets, what_cannot_be_a_header_is_refused_unquoted)
{
	static const struct {
		const char *text;
		size_t len;
		const char *why;
	} cases[] = {
		{"", 0, "the value must be 1 to 8192 bytes (it is 0)"},
		{"\n", 1, "the value must be 1 to 8192 bytes (it is 0)"},
		{"two\nlines\n", 10, "(0x0a at offset 3)"},
		{"nul\0byte", 8, "not a regular text file"},
		{" padded", 7, "begins or ends with white space"},
	};
	char err[512];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *path = key_file("key", cases[i].text, cases[i].len);
		struct aj_profile *p = profile("fetch allow GET https://a.test/ inject k file:%s\n", path);
		struct aj_secrets *s = (struct aj_secrets *)1;

		cr_assert_lt(load(p, &s, err, sizeof(err)), 0, "case %zu", i);
		cr_assert_null(s);
		cr_assert_not_null(strstr(err, "/etc/t.profile:1: inject k: "), "%s", err);
		cr_assert_not_null(strstr(err, cases[i].why), "%s", err);
		cr_assert_null(strstr(err, "lines"), "%s", err);
		aj_profile_free(p);
		free(path);
	}
}

Test(secrets, too_large_missing_or_not_a_file)
{
	char big[8200], err[512], *path;
	struct aj_profile *p;
	struct aj_secrets *s;

	memset(big, 'a', sizeof(big));
	path = key_file("big", big, sizeof(big));
	p = profile("fetch allow GET https://a.test/ inject k file:%s\n", path);
	cr_assert_eq(load(p, &s, err, sizeof(err)), -EFBIG);
	cr_assert_not_null(strstr(err, "big: larger than a header may be"), "%s", err);
	aj_profile_free(p);
	free(path);

	p = profile("fetch allow GET https://a.test/ inject k file:%s/none\n", dir);
	cr_assert_eq(load(p, &s, err, sizeof(err)), -ENOENT);
	cr_assert_not_null(strstr(err, "/none: No such file or directory"), "%s", err);
	aj_profile_free(p);

	p = profile("fetch allow GET https://a.test/ inject k file:%s\n", dir);
	cr_assert_eq(load(p, &s, err, sizeof(err)), -EBADMSG);
	cr_assert_not_null(strstr(err, "not a regular text file"), "%s", err);
	aj_profile_free(p);
}

Test(secrets, a_variable_and_the_environment_check)
{
	struct aj_profile *p = profile("fetch allow GET https://a.test/ inject authorization "
				       "env:%s\n",
				       "AJ_T_TOKEN");
	char *ok[] = {"PATH=/bin", "HOME=/h", NULL}, *by_name[] = {"PATH=/bin", "AJ_T_TOKEN=x", NULL},
	     *by_value[] = {"PATH=/bin", "OTHER=prefix-Bearer t0k3n-suffix", NULL};
	struct aj_secrets *s;
	char err[512];

	unsetenv("AJ_T_TOKEN");
	cr_assert_eq(load(p, &s, err, sizeof(err)), -ENOENT);
	cr_assert_str_eq(err, "/etc/t.profile:1: inject authorization: the variable AJ_T_TOKEN is "
			      "not set in the environment agentjail was started with");
	setenv("AJ_T_TOKEN", "Bearer t0k3n", 1);
	cr_assert_eq(load(p, &s, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(aj_secrets_values(s)[0], "Bearer t0k3n");
	cr_assert_null(aj_secrets_hidden(s)[0]);
	cr_assert_eq(aj_secrets_check_env(s, &p->fetch, ok, err, sizeof(err)), 0);
	cr_assert_eq(aj_secrets_check_env(s, &p->fetch, by_name, err, sizeof(err)), -EPERM);
	cr_assert_str_eq(err, "/etc/t.profile:1: inject authorization: the secret's variable "
			      "AJ_T_TOKEN would be passed into the jail: take it out of the "
			      "profile's `env` lines and --env");
	cr_assert_eq(aj_secrets_check_env(s, &p->fetch, by_value, err, sizeof(err)), -EPERM);
	cr_assert_str_eq(err, "/etc/t.profile:1: inject authorization: the jail's environment "
			      "would carry the secret in OTHER: take that variable out of the "
			      "profile's `env` lines and --env");
	aj_secrets_free(s);
	aj_profile_free(p);
	unsetenv("AJ_T_TOKEN");
}

Test(secrets, a_policy_without_inject_reads_nothing)
{
	struct aj_profile *p = profile("fetch allow GET https://a.test/%s\n", "");
	struct aj_secrets *s;
	char err[512];

	cr_assert_eq(load(p, &s, err, sizeof(err)), 0, "%s", err);
	cr_assert_null(aj_secrets_values(s)[0]);
	cr_assert_null(aj_secrets_hidden(s)[0]);
	aj_secrets_free(s);
	aj_secrets_free(NULL);
	aj_profile_free(p);
}

/* A key with a second name could be read through it in the jail, where
 * only the first is covered: refused. */
Test(secrets, a_file_with_two_names_is_refused)
{
	char *path = key_file("key", "sk-abc\n", 7), *other, err[512];
	struct aj_profile *p = profile("fetch allow GET https://a.test/ inject k file:%s\n", path);
	struct aj_secrets *s;

	cr_assert(asprintf(&other, "%s/other", dir) > 0);
	cr_assert_eq(link(path, other), 0);
	cr_assert_eq(load(p, &s, err, sizeof(err)), -EMLINK);
	cr_assert_not_null(strstr(err, "it has more than one name (hard links)"), "%s", err);
	cr_assert_null(strstr(err, "sk-abc"), "%s", err);
	aj_profile_free(p);
	free(other);
	free(path);
}

/* What init does first: its copy of the values and of their variables,
 * wiped. */
Test(secrets, forget_wipes_this_processs_copy)
{
	char *path = key_file("key", "sk-abc\n", 7), err[512];
	struct aj_profile *p = profile("fetch allow GET https://a.test/ inject k file:%s\n"
				       "fetch allow GET https://b.test/ inject k env:AJ_T_FORGET\n",
				       path);
	struct aj_secrets *s;
	char *const *v;

	setenv("AJ_T_FORGET", "tok-xyz", 1);
	cr_assert_eq(load(p, &s, err, sizeof(err)), 0, "%s", err);
	v = aj_secrets_values(s);
	aj_secrets_forget(s);
	for (size_t i = 0; i < 2; i++)
		cr_assert(v[i] == NULL || v[i][0] == '\0', "value %zu kept", i);
	cr_assert_eq(getenv("AJ_T_FORGET")[0], '\0', "the variable's text kept");
	aj_secrets_free(s);
	aj_profile_free(p);
	free(path);
	unsetenv("AJ_T_FORGET");
}
