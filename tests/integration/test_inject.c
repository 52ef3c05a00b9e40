/*
 * Integration tests: credentials the agent never sees, `fetch allow ...
 * inject NAME file:PATH|env:VAR` (docs/PROFILES.md#credentials-the-agent-never-sees).
 *
 * A real jail fetches from a real HTTP server this test starts on the
 * host's 127.0.0.1, natively (`agentjail fetch`) and through the proxy
 * (curl), and the server answers with the sha256 of the header it got
 * (/header-sha256/NAME), so that what reached the upstream is checked on
 * the host while the agent only ever sees a hash.  Then the secret is
 * searched for everywhere the agent could look: its environment, every
 * process's environment and command line it can see, the secret's file,
 * the jail's own mounts and every file changed during the run, and the
 * audit and the events.
 *
 * Suite: inject.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"
#include "servers.h"

/* Made up for each test (Criterion runs them side by side: a concurrent
 * test's key file, made during this one's run, must not look like this
 * one's leak), recognisable anywhere. */
static char secret[64], secret_env[64];
#define SECRET secret
#define SECRET_ENV secret_env

static char *scratch, *keyfile;
static struct aj_server http, other;
static char secret_sha[65], env_sha[65];

static void
hex_sha256(const char *text, char out[65])
{
	unsigned char md[SHA256_DIGEST_LENGTH];

	SHA256((const unsigned char *)text, strlen(text), md);
	for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* "PREFIX-<16 random hex digits>-never-in-the-jail" into OUT. */
static void
make_secret(char out[64], const char *prefix)
{
	unsigned char r[8];
	FILE *f = fopen("/dev/urandom", "re");

	cr_assert_not_null(f);
	cr_assert_eq(fread(r, 1, sizeof(r), f), sizeof(r));
	fclose(f);
	snprintf(out, 64, "%s-%02x%02x%02x%02x%02x%02x%02x%02x-never-in-the-jail", prefix, r[0],
		 r[1], r[2], r[3], r[4], r[5], r[6], r[7]);
}

static void
setup(void)
{
	make_secret(secret, "sk-test");
	make_secret(secret_env, "tok-env");
	scratch = aj_test_scratch();
	chmod(scratch, 01777);
	cr_assert_eq(aj_server_start_http(&http, "127.0.0.1", NULL, scratch), 0,
		     "cannot start the test HTTP server");
	setenv("URL", http.url, 1);
	/* Another origin. */
	cr_assert_eq(aj_server_start_http(&other, "127.0.0.1", NULL, scratch), 0,
		     "cannot start the second test HTTP server");
	setenv("OTHER", other.url, 1);
	/* As a user keeps an API key: a line in a file only they can read. */
	{
		char text[80];

		snprintf(text, sizeof(text), "%s\n", SECRET);
		keyfile = aj_test_write_file(scratch, "api-key", text);
	}
	chmod(keyfile, 0600);
	hex_sha256(SECRET, secret_sha);
	hex_sha256(SECRET_ENV, env_sha);
	setenv("AJ_TEST_TOKEN", SECRET_ENV, 1);
}

static void
teardown(void)
{
	unsetenv("AJ_TEST_TOKEN");
	aj_server_stop(&http);
	aj_server_stop(&other);
	aj_test_rmrf(scratch);
	free(keyfile);
	free(scratch);
}

TestSuite(inject, .init = setup, .fini = teardown, .timeout = 600);

#define BASE                                                                                       \
	"env keep PATH URL OTHER AJ\nenv set ASAN_OPTIONS=detect_leaks=0\nsocket inet loopback\n"  \
	"proxy on\n"

/* BASE (4 lines), then the test's lines from line 5. */
static char *
write_profile(const char *fmt, ...)
{
	va_list ap;
	char *path;

	va_start(ap, fmt);
	path = aj_test_vwrite_profile(scratch, "inject.profile", BASE, fmt, ap);
	va_end(ap);
	return path;
}

static void
in_jail(struct aj_result *res, const char *profile, const char *script)
{
	aj_test_jail_sh_records(res, scratch, profile, script);
}

#define SHOW(r) "status %d\n--- out:\n%s\n--- err:\n%s", (r).status, (r).out, (r).err
#define str aj_test_json_str

/* Neither the audit nor the events nor anything the run printed holds
 * TEXT. */
static void
assert_nowhere_outside(const struct aj_result *r, const char *text)
{
	static const char *const files[] = {"audit.jsonl", "events.jsonl"};

	cr_assert_null(strstr(r->out, text), "the secret in the jail's output");
	cr_assert_null(strstr(r->err, text), "the secret in the jail's stderr");
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char path[4096], *body;

		snprintf(path, sizeof(path), "%s/%s", scratch, files[i]);
		body = aj_test_slurp_if_exists(path);
		cr_assert_null(strstr(body, text), "the secret in %s", files[i]);
		free(body);
	}
}

/* The header reaches the upstream for a request the rule decides, native
 * or through the proxy, and replaces what the agent sent. */
Test(inject, the_secret_reaches_the_upstream_native_and_through_the_proxy)
{
	char *prof = write_profile("fetch allow GET %s/header-sha256/x-api-key inject x-api-key "
				   "file:%s\nfetch allow GET %s/header-sha256/*\n",
				   http.url, keyfile, http.url);
	struct aj_result r;
	char want[512];
	json_t *audit;

	in_jail(&r, prof,
		"\"$AJ\" fetch \"$URL/header-sha256/x-api-key\"; "
		"\"$AJ\" fetch -H 'x-api-key: placeholder' \"$URL/header-sha256/x-api-key\"; "
		"curl -sS -H 'x-api-key: placeholder' \"$URL/header-sha256/x-api-key\"; "
		"curl -sS \"$URL/header-sha256/X-Api-Key\"");
	cr_assert_eq(r.status, 0, SHOW(r));
	/* The last path is another rule's (paths are case-sensitive): it
	 * injects nothing. */
	snprintf(want, sizeof(want), "%s\n%s\n%s\nabsent\n", secret_sha, secret_sha, secret_sha);
	cr_assert_str_eq(r.out, want, SHOW(r));

	audit = aj_test_json_lines(scratch, "audit.jsonl");
	cr_assert_eq(json_array_size(audit), 4);
	for (size_t i = 0; i < 3; i++)
		cr_assert_str_eq(str(json_array_get(audit, i), "injected"), "x-api-key");
	cr_assert_str_eq(str(json_array_get(audit, 2), "via"), "proxy");
	cr_assert_null(json_object_get(json_array_get(audit, 3), "injected"));
	json_decref(audit);
	assert_nowhere_outside(&r, SECRET);
	aj_test_result_free(&r);
	free(prof);
}

/* The agent's own header of that name goes, in any case and spelled with
 * '_' for '-' (servers behind CGI, WSGI or Rack read X_Api_Key as
 * X-Api-Key): the upstream gets the injected one alone. */
Test(inject, the_agents_spellings_of_the_header_go)
{
	char *prof = write_profile("fetch allow GET %s/header-names inject x-api-key file:%s\n",
				   http.url, keyfile);
	struct aj_result r;

	in_jail(&r, prof,
		"\"$AJ\" fetch -H 'X_API_KEY: mine' -H 'x-Api-Key: mine too' -H 'X-Other: kept' "
		"\"$URL/header-names\" | tr ',' '\\n' | grep -c -x -e 'x-api-key' -e 'x_api_key'; "
		"\"$AJ\" fetch -H 'X-Other: kept' \"$URL/header-names\" | tr ',' '\\n' | "
		"grep -x 'x-other'");
	cr_assert_eq(r.status, 0, SHOW(r));
	cr_assert_str_eq(r.out, "1\nx-other\n", SHOW(r));
	aj_test_result_free(&r);
	free(prof);
}

/* A redirect within the origin keeps the secret; one to another origin
 * (another port) never gets it, nor does the
 * way back after it. */
Test(inject, a_redirect_to_another_origin_never_carries_it)
{
	char *prof = write_profile(
		"fetch allow GET %s/** inject Authorization env:AJ_TEST_TOKEN\n"
		"fetch allow GET %s/**\n",
		http.url, other.url);
	struct aj_result r;
	char want[512];
	json_t *audit;

	in_jail(&r, prof,
		"H=/header-sha256/Authorization; "
		"\"$AJ\" fetch \"$URL/redirect/302?to=$H\"; "
		"\"$AJ\" fetch \"$URL/redirect/302?to=$OTHER$H\"; "
		"\"$AJ\" fetch \"$URL/redirect/302?to=$OTHER/redirect/302?to=$URL$H\"; "
		"curl -sSL \"$URL/redirect/302?to=$OTHER$H\"");
	cr_assert_eq(r.status, 0, SHOW(r));
	snprintf(want, sizeof(want), "%s\nabsent\nabsent\nabsent\n", env_sha);
	cr_assert_str_eq(r.out, want, SHOW(r));
	audit = aj_test_json_lines(scratch, "audit.jsonl");
	/* 2 + 2 + 3 records for the native fetches, 2 for curl's requests. */
	cr_assert_eq(json_array_size(audit), 9, "%zu records", json_array_size(audit));
	cr_assert_str_eq(str(json_array_get(audit, 1), "injected"), "Authorization");
	cr_assert_null(json_object_get(json_array_get(audit, 3), "injected"));
	cr_assert_null(json_object_get(json_array_get(audit, 6), "injected"));
	cr_assert_str_eq(str(json_array_get(audit, 7), "injected"), "Authorization");
	cr_assert_null(json_object_get(json_array_get(audit, 8), "injected"));
	json_decref(audit);
	assert_nowhere_outside(&r, SECRET_ENV);
	aj_test_result_free(&r);
	free(prof);
}

/* Everything the agent can read: its environment, every visible
 * process's environment and command line, the secret's file (an empty
 * one covers it), the jail's own mounts whole, and every file on the
 * host's tree changed since the run began. */
Test(inject, the_agent_finds_the_secret_nowhere)
{
	char *prof = write_profile(
		"fetch allow GET %s/header-sha256/x-api-key inject x-api-key file:%s\n"
		"fetch allow GET %s/header-sha256/authorization inject authorization "
		"env:AJ_TEST_TOKEN\n",
		http.url, keyfile, http.url);
	char script[4096], want[512];
	struct aj_result r;
	size_t half = strlen(SECRET) / 2, half_env = strlen(SECRET_ENV) / 2;

	/* The secrets never appear whole in the script (which is a command
	 * line the search reads): the shell joins their halves and hands
	 * them to grep on its stdin. */
	snprintf(script, sizeof(script),
		 "touch /tmp/.begin; K=%s; "
		 "secrets() { printf '%%s%%s\\n%%s%%s\\n' '%.*s' '%s' '%.*s' '%s'; }; "
		 "\"$AJ\" fetch \"$URL/header-sha256/x-api-key\"; "
		 "\"$AJ\" fetch \"$URL/header-sha256/authorization\"; "
		 "echo \"size $(wc -c < \"$K\")\"; "
		 /* The search finds what is there: a copy, counted, then removed. */
		 "secrets > /dev/shm/control; secrets | grep -c -F -f - /dev/shm/control; "
		 "rm /dev/shm/control; "
		 "env > /dev/shm/env; secrets | grep -c -F -f - /dev/shm/env; "
		 "for f in /proc/[0-9]*/environ /proc/[0-9]*/cmdline; do cat \"$f\"; echo; done "
		 "2>/dev/null > /dev/shm/procs; secrets | grep -c -a -F -f - /dev/shm/procs; "
		 "secrets | grep -r -l -s -a --devices=skip -F -f - /tmp /run /dev \"$(dirname "
		 "\"$K\")\"; "
		 "find / \\( -path /proc -o -path /sys \\) -prune -o -type f -newer /tmp/.begin "
		 "-print0 2>/dev/null > /dev/shm/changed; "
		 "secrets | xargs -0 -r -a /dev/shm/changed grep -l -s -a -F -f -; "
		 "echo searched",
		 keyfile, (int)half, SECRET, SECRET + half, (int)half_env, SECRET_ENV,
		 SECRET_ENV + half_env);
	in_jail(&r, prof, script);
	snprintf(want, sizeof(want), "%s\n%s\nsize 0\n2\n0\n0\nsearched\n", secret_sha, env_sha);
	cr_assert_str_eq(r.out, want, SHOW(r));
	assert_nowhere_outside(&r, SECRET);
	assert_nowhere_outside(&r, SECRET_ENV);
	aj_test_result_free(&r);
	free(prof);
}

/* A secret that would reach the jail's environment stops the run before
 * anything starts: by the variable's name, or by its value under another
 * name; an unreadable source too, with the rule's file:line. */
Test(inject, a_secret_the_jail_would_see_stops_the_run)
{
	char copy[96];
	const struct {
		const char *lines;
		const char *message;
	} cases[] = {
		{"env keep AJ_TEST_TOKEN\n", "inject.profile:6: inject authorization: the secret's "
					     "variable AJ_TEST_TOKEN would be passed into the jail"},
		{copy, "inject.profile:6: inject authorization: the jail's environment would carry the "
		       "secret in COPY"},
	};
	struct aj_result r;
	char *prof;

	snprintf(copy, sizeof(copy), "env set COPY=x%sx\n", SECRET_ENV);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		prof = write_profile("%sfetch allow GET %s/** inject authorization env:AJ_TEST_TOKEN\n",
				     cases[i].lines, http.url);
		in_jail(&r, prof, "echo started");
		cr_assert_neq(r.status, 0, SHOW(r));
		cr_assert_null(strstr(r.out, "started"), SHOW(r));
		cr_assert_not_null(strstr(r.err, cases[i].message), SHOW(r));
		cr_assert_null(strstr(r.err, SECRET_ENV), SHOW(r));
		aj_test_result_free(&r);
		free(prof);
	}

	prof = write_profile("fetch allow GET %s/** inject x-api-key file:%s/no-such-key\n",
			     http.url, scratch);
	in_jail(&r, prof, "echo started");
	cr_assert_neq(r.status, 0, SHOW(r));
	cr_assert_not_null(strstr(r.err, "inject.profile:5: inject x-api-key: "), SHOW(r));
	cr_assert_not_null(strstr(r.err, "/no-such-key: No such file or directory"), SHOW(r));
	aj_test_result_free(&r);
	free(prof);

	unsetenv("AJ_TEST_TOKEN");
	prof = write_profile("fetch allow GET %s/** inject authorization env:AJ_TEST_TOKEN\n",
			     http.url);
	in_jail(&r, prof, "echo started");
	cr_assert_neq(r.status, 0, SHOW(r));
	cr_assert_not_null(strstr(r.err, "inject.profile:5: inject authorization: the variable "
					 "AJ_TEST_TOKEN is not set"),
			   SHOW(r));
	setenv("AJ_TEST_TOKEN", SECRET_ENV, 1);
	aj_test_result_free(&r);
	free(prof);
}
