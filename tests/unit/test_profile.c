/*
 * Unit tests for supervisor/profile.c: the grammar, every error message, include
 * resolution and cycles, override rules, sizes, and the canonical text, hash
 * and JSON that audit records and `profile show` rely on.
 */
#include "config.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "lexer.h"
#include "supervisor.h"
#include "tunnel.h"

#ifndef AJ_SRCDIR
#define AJ_SRCDIR "."
#endif
#ifndef AJ_PROFILEDIR
#define AJ_PROFILEDIR "/usr/local/share/agentjail/profiles"
#endif

/* Criterion runs each test in its own process, so this per-test state (and
 * the chdir some tests do) cannot leak between tests. */
static char tmpdir[] = "/tmp/aj-test-profile-XXXXXX";

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void
setup(void)
{
	cr_assert_not_null(mkdtemp(tmpdir));
}

static void
teardown(void)
{
	nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(profile, .init = setup, .fini = teardown);

/* tmpdir/REL, with parent directories; returns the new full path. */
static char *
write_file(const char *rel, const char *content)
{
	char *path, *slash;
	FILE *f;

	cr_assert(asprintf(&path, "%s/%s", tmpdir, rel) > 0);
	for (slash = strchr(path + strlen(tmpdir) + 1, '/'); slash != NULL;
	     slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		mkdir(path, 0700);
		*slash = '/';
	}
	f = fopen(path, "w");
	cr_assert_not_null(f, "%s", path);
	fputs(content, f);
	fclose(f);
	return path;
}

static char *
tmp_path(const char *rel)
{
	char *path;

	cr_assert(asprintf(&path, "%s/%s", tmpdir, rel) > 0);
	return path;
}

/* NAME in a directory of the search path ($XDG_CONFIG_HOME/agentjail/
 * profiles, set here): where `include NAME` finds a file.  A file's own
 * directory is not searched. */
static char *
write_named(const char *name, const char *content)
{
	char *xdg = tmp_path("xdg"), *rel, *path;

	setenv("XDG_CONFIG_HOME", xdg, 1);
	cr_assert(asprintf(&rel, "xdg/agentjail/profiles/%s", name) > 0);
	path = write_file(rel, content);
	free(rel);
	free(xdg);
	return path;
}

static struct aj_profile *
parse_ok(const char *text)
{
	struct aj_profile *p = NULL;
	char err[1024] = "";
	int r;

	r = aj_profile_parse_string("t", "t.profile", text, &p, err, sizeof(err));
	cr_assert_eq(r, 0, "parse failed (%d): %s", r, err);
	cr_assert_not_null(p);
	return p;
}

/* Parse TEXT as "t.profile" and expect exactly WANT_RC and WANT_MSG. */
static void
parse_err(const char *text, int want_rc, const char *want_msg)
{
	struct aj_profile *p = (struct aj_profile *)0x1;
	char err[1024] = "";
	int r;

	r = aj_profile_parse_string("t", "t.profile", text, &p, err, sizeof(err));
	cr_assert_eq(r, want_rc, "rc %d, want %d for <<%s>>: %s", r, want_rc, text, err);
	cr_assert_str_eq(err, want_msg, "for <<%s>>", text);
	cr_assert_eq(p, (struct aj_profile *)0x1, "output written on failure");
}

static struct aj_profile *
load_ok(const char *name)
{
	struct aj_profile *p = NULL;
	char err[1024] = "";
	int r;

	r = aj_profile_load(name, &p, err, sizeof(err));
	cr_assert_eq(r, 0, "load '%s' failed (%d): %s", name, r, err);
	return p;
}

static int
load_err(const char *name, char *err, size_t errlen)
{
	struct aj_profile *p = (struct aj_profile *)0x1;
	int r;

	err[0] = '\0';
	r = aj_profile_load(name, &p, err, errlen);
	cr_assert_neq(r, 0, "load '%s' succeeded", name);
	cr_assert_eq(p, (struct aj_profile *)0x1, "output written on failure");
	return r;
}

static char *
text_of(const struct aj_profile *p)
{
	char *s = NULL;

	cr_assert_eq(aj_profile_format_text(p, &s), 0);
	return s;
}

/* ---- valid profiles -------------------------------------------------------- */

Test(profile, empty_gives_defaults)
{
	struct aj_profile *p = parse_ok("");
	size_t i;

	cr_assert_str_eq(aj_profile_name(p), "t");
	cr_assert_str_eq(aj_profile_path(p), "t.profile");
	cr_assert_str_eq(p->hostname, "agentjail");
	cr_assert_str_eq(p->user, "nobody");
	cr_assert_eq(p->n_env_keep, 0);
	cr_assert_eq(p->n_env_set, 0);
	cr_assert_eq(p->tmpfs_size, 64ull << 20);
	cr_assert(!p->allow_unix_sockets);
	cr_assert(!p->loopback_sockets);
	cr_assert(!p->kill_on_violation);
	cr_assert_eq(p->optional_layers, 0);
	for (i = 0; i < AJ_RLIMIT__COUNT; i++)
		cr_assert_eq(p->rlimits[i].set, i == AJ_RLIMIT_CORE, "rlimit %zu", i);
	cr_assert_eq(p->rlimits[AJ_RLIMIT_CORE].value, 0);
	aj_profile_free(p);
}

Test(profile, every_directive)
{
	struct aj_profile *p = parse_ok("# a comment\n"
					"\n"
					"   \t \n"
					"  # indented comment\n"
					"hostname\tbox-1.example   # trailing comment\n"
					"user 1000\n"
					"env keep PATH HOME\n"
					"env keep TERM PATH _X9\n"
					"env set GREETING=hello world  \n"
					"env set EMPTY=\n"
					"env set EQ=a=b#c\n"
					"rlimit nofile 64\n"
					"rlimit nproc unlimited\n"
					"rlimit as 1G\n"
					"rlimit fsize 0\n"
					"rlimit cpu 60s\n"
					"rlimit core unlimited\n"
					"tmpfs-size 1M\n"
					"socket unix allow\n"
					"optional sysfs\n"
					"optional cgroupns\n"
					"optional sysfs");

	cr_assert_str_eq(p->hostname, "box-1.example");
	cr_assert_str_eq(p->user, "1000");
	cr_assert_eq(p->n_env_keep, 4);
	cr_assert_str_eq(p->env_keep[0], "HOME");
	cr_assert_str_eq(p->env_keep[1], "PATH");
	cr_assert_str_eq(p->env_keep[2], "TERM");
	cr_assert_str_eq(p->env_keep[3], "_X9");
	cr_assert_eq(p->n_env_set, 3);
	cr_assert_str_eq(p->env_set[0], "EMPTY=");
	cr_assert_str_eq(p->env_set[1], "EQ=a=b#c");
	cr_assert_str_eq(p->env_set[2], "GREETING=hello world");
	cr_assert_eq(p->rlimits[AJ_RLIMIT_NOFILE].value, 64);
	cr_assert_eq(p->rlimits[AJ_RLIMIT_NPROC].value, AJ_RLIM_UNLIMITED);
	cr_assert_eq(p->rlimits[AJ_RLIMIT_AS].value, 1ull << 30);
	cr_assert(p->rlimits[AJ_RLIMIT_FSIZE].set);
	cr_assert_eq(p->rlimits[AJ_RLIMIT_FSIZE].value, 0);
	cr_assert_eq(p->rlimits[AJ_RLIMIT_CPU].value, 60);
	cr_assert_eq(p->rlimits[AJ_RLIMIT_CORE].value, AJ_RLIM_UNLIMITED);
	cr_assert_eq(p->tmpfs_size, 1ull << 20);
	cr_assert(p->allow_unix_sockets);
	cr_assert_eq(p->optional_layers, AJ_LAYER_CGROUPNS | AJ_LAYER_SYSFS);
	aj_profile_free(p);
}

Test(profile, same_value_twice_is_fine)
{
	struct aj_profile *p = parse_ok("hostname a\nhostname a\n"
					"tmpfs-size 1024K\ntmpfs-size 1M\n"
					"rlimit cpu 60\nrlimit cpu 60s\n"
					"env set A=1\nenv set A=1\n"
					"socket unix deny\nsocket unix deny\n");

	cr_assert_str_eq(p->hostname, "a");
	cr_assert_eq(p->tmpfs_size, 1ull << 20);
	cr_assert_eq(p->n_env_set, 1);
	aj_profile_free(p);
}

Test(profile, line_of_exactly_4096_bytes)
{
	char *text = malloc(4096 + 2);
	struct aj_profile *p;

	memset(text, ' ', 4096);
	memcpy(text, "hostname x", 10);
	strcpy(text + 4096, "\n");
	p = parse_ok(text);
	cr_assert_str_eq(p->hostname, "x");
	aj_profile_free(p);
	free(text);
}

Test(profile, limits_at_the_edges)
{
	struct aj_profile *p =
		parse_ok("hostname "
			 "a234567890123456789012345678901234567890123456789012345678901234\n"
			 "user u2345678901234567890123456789012\n"
			 "rlimit nofile 9223372036854775807\n");

	cr_assert_eq(strlen(p->hostname), 64);
	cr_assert_eq(strlen(p->user), 32);
	cr_assert_eq(p->rlimits[AJ_RLIMIT_NOFILE].value, (uint64_t)INT64_MAX);
	aj_profile_free(p);
}

/* ---- error messages -------------------------------------------------------- */

Test(profile, error_unknown_directive)
{
	parse_err("\n# c\nxyz 1\n", -EINVAL, "t.profile:3: unknown directive 'xyz'");
	parse_err("Hostname a", -EINVAL, "t.profile:1: unknown directive 'Hostname'");
}

Test(profile, error_hostname)
{
	parse_err("hostname", -EINVAL, "t.profile:1: hostname: missing NAME");
	parse_err("hostname # x", -EINVAL, "t.profile:1: hostname: missing NAME");
	parse_err("hostname a b", -EINVAL, "t.profile:1: hostname: unexpected argument 'b'");
	parse_err("hostname "
		  "a2345678901234567890123456789012345678901234567890123456789012345",
		  -EINVAL,
		  "t.profile:1: hostname: "
		  "'a2345678901234567890123456789012345678901234567890123456789012345' is "
		  "longer than 64 characters");
	parse_err("hostname a_b", -EINVAL,
		  "t.profile:1: hostname: invalid character in 'a_b' (letters, digits, '.' "
		  "and '-' only)");
	parse_err("hostname -a", -EINVAL, "t.profile:1: hostname: '-a' must not start with '-'");
}

Test(profile, error_user)
{
	parse_err("user", -EINVAL, "t.profile:1: user: missing NAME");
	parse_err("user a b", -EINVAL, "t.profile:1: user: unexpected argument 'b'");
	parse_err("user u23456789012345678901234567890123", -EINVAL,
		  "t.profile:1: user: 'u23456789012345678901234567890123' is longer than 32 "
		  "characters");
	parse_err("user a:b", -EINVAL,
		  "t.profile:1: user: invalid character in 'a:b' (letters, digits, '.', '_' "
		  "and '-' only)");
	parse_err("user -x", -EINVAL, "t.profile:1: user: '-x' must not start with '-'");
}

Test(profile, error_env)
{
	parse_err("env", -EINVAL, "t.profile:1: env: missing 'keep' or 'set'");
	parse_err("env drop A", -EINVAL,
		  "t.profile:1: env: unknown action 'drop' (expected 'keep' or 'set')");
	parse_err("env keep", -EINVAL, "t.profile:1: env keep: missing variable names");
	parse_err("env keep A 1B", -EINVAL, "t.profile:1: env keep: invalid variable name '1B'");
	parse_err("env keep A-B", -EINVAL, "t.profile:1: env keep: invalid variable name 'A-B'");
	parse_err("env keep AGENTJAIL_FD", -EINVAL,
		  "t.profile:1: env keep: 'AGENTJAIL_FD' is reserved (agentjail sets it)");
	parse_err("env set", -EINVAL, "t.profile:1: env set: missing NAME=VALUE");
	parse_err("env set FOO", -EINVAL, "t.profile:1: env set: expected NAME=VALUE, got 'FOO'");
	parse_err("env set =x", -EINVAL, "t.profile:1: env set: invalid variable name ''");
	parse_err("env set A B=x", -EINVAL, "t.profile:1: env set: invalid variable name 'A B'");
	parse_err("env set AGENTJAIL_FD=4", -EINVAL,
		  "t.profile:1: env set: 'AGENTJAIL_FD' is reserved (agentjail sets it)");
	parse_err("env set AGENTJAIL=0", -EINVAL,
		  "t.profile:1: env set: 'AGENTJAIL' is reserved (agentjail sets it)");
}

Test(profile, error_rlimit)
{
	parse_err("rlimit", -EINVAL, "t.profile:1: rlimit: missing KIND and VALUE");
	parse_err("rlimit stack 1", -EINVAL,
		  "t.profile:1: rlimit: unknown kind 'stack' (expected nofile, nproc, as, "
		  "fsize, cpu or core)");
	parse_err("rlimit nofile", -EINVAL, "t.profile:1: rlimit nofile: missing VALUE");
	parse_err("rlimit nofile 1 2", -EINVAL,
		  "t.profile:1: rlimit nofile: unexpected argument '2'");
	parse_err("rlimit nofile 4K", -EINVAL,
		  "t.profile:1: rlimit nofile: invalid value '4K' (expected a number or "
		  "'unlimited')");
	parse_err("rlimit nproc -1", -EINVAL,
		  "t.profile:1: rlimit nproc: invalid value '-1' (expected a number or "
		  "'unlimited')");
	parse_err("rlimit as 1X", -EINVAL,
		  "t.profile:1: rlimit as: invalid value '1X' (expected a size like 512M, or "
		  "'unlimited')");
	parse_err("rlimit cpu 1m", -EINVAL,
		  "t.profile:1: rlimit cpu: invalid value '1m' (expected seconds like 60 or "
		  "60s, or 'unlimited')");
	parse_err("rlimit cpu s", -EINVAL,
		  "t.profile:1: rlimit cpu: invalid value 's' (expected seconds like 60 or "
		  "60s, or 'unlimited')");
	parse_err("rlimit nofile 9223372036854775808", -EINVAL,
		  "t.profile:1: rlimit nofile: value '9223372036854775808' is too large");
	parse_err("rlimit core 8388608T", -EINVAL,
		  "t.profile:1: rlimit core: value '8388608T' is too large");
}

Test(profile, error_tmpfs_size)
{
	parse_err("tmpfs-size", -EINVAL, "t.profile:1: tmpfs-size: missing SIZE");
	parse_err("tmpfs-size 1M 2M", -EINVAL, "t.profile:1: tmpfs-size: unexpected argument '2M'");
	parse_err("tmpfs-size 64m", -EINVAL,
		  "t.profile:1: tmpfs-size: invalid size '64m' (expected a number with an "
		  "optional K, M, G or T suffix)");
	parse_err("tmpfs-size 1023K", -EINVAL,
		  "t.profile:1: tmpfs-size: '1023K' is below the minimum of 1M");
	parse_err("tmpfs-size 99999999999T", -EINVAL,
		  "t.profile:1: tmpfs-size: value '99999999999T' is too large");
}

Test(profile, error_socket)
{
	parse_err("socket", -EINVAL,
		  "t.profile:1: socket: missing 'unix allow|deny' or 'inet loopback|deny'");
	parse_err("socket packet allow", -EINVAL,
		  "t.profile:1: socket: unknown family 'packet' (only 'unix' and 'inet' can be "
		  "configured; other families are always denied)");
	parse_err("socket unix", -EINVAL, "t.profile:1: socket unix: missing 'allow' or 'deny'");
	parse_err("socket unix maybe", -EINVAL,
		  "t.profile:1: socket unix: expected 'allow' or 'deny', got 'maybe'");
	parse_err("socket unix allow now", -EINVAL,
		  "t.profile:1: socket unix: unexpected argument 'now'");
	parse_err("socket inet", -EINVAL, "t.profile:1: socket inet: missing 'loopback' or 'deny'");
	parse_err("socket inet allow", -EINVAL,
		  "t.profile:1: socket inet: expected 'loopback' or 'deny', got 'allow'");
	parse_err("socket inet loopback\nsocket inet deny", -EINVAL,
		  "t.profile:2: conflicting 'socket inet' (already set to 'loopback' at "
		  "t.profile:1)");
}

Test(profile, socket_inet_loopback)
{
	struct aj_profile *p = parse_ok("socket inet loopback\n");

	cr_assert(p->loopback_sockets);
	cr_assert(!p->allow_unix_sockets, "the families are separate settings");
	aj_profile_free(p);
	p = parse_ok("socket inet deny\nsocket unix allow\n");
	cr_assert(!p->loopback_sockets);
	cr_assert(p->allow_unix_sockets);
	aj_profile_free(p);
}

Test(profile, proxy)
{
	struct aj_profile *p = parse_ok("socket inet loopback\nproxy on\n");
	char *text = NULL;

	cr_assert_eq(p->proxy_port, AJ_PROXY_DEFAULT_PORT);
	cr_assert_eq(aj_profile_format_text(p, &text), 0);
	cr_assert_not_null(strstr(text, "\nproxy on port 3128\n"), "%s", text);
	free(text);
	aj_profile_free(p);
	p = parse_ok("socket inet loopback\nproxy on port 8080\n");
	cr_assert_eq(p->proxy_port, 8080);
	cr_assert_eq(aj_profile_format_json(p, &text), 0);
	cr_assert_not_null(strstr(text, "\"proxy\": {\n    \"on\": true,\n    \"port\": 8080\n  }"),
			   "%s", text);
	free(text);
	aj_profile_free(p);
	p = parse_ok("proxy off\n");
	cr_assert_eq(p->proxy_port, 0);
	cr_assert_eq(aj_profile_format_text(p, &text), 0);
	cr_assert_not_null(strstr(text, "\nproxy off\n"), "%s", text);
	free(text);
	aj_profile_free(p);
	p = parse_ok("");
	cr_assert_eq(p->proxy_port, 0, "off unless a profile turns it on");
	aj_profile_free(p);
}

#define PROXY_ON "socket inet loopback\nproxy on\n"

Test(profile, tunnel)
{
	struct aj_profile *p = parse_ok(PROXY_ON "tunnel allow git.example.org:22\n"
					"tunnel allow *.example.com:2222 idle 90s\n"
					"tunnel deny [::1]:22\n"
					"tunnel allow 127.0.0.1:8022 idle 250ms\n");
	char *text = NULL;

	cr_assert_eq(p->fetch.n_tunnels, 4);
	/* Sorted by their text, as fetch rules are. */
	cr_assert_str_eq(p->fetch.tunnels[0].host, "*.example.com");
	cr_assert_eq(p->fetch.tunnels[0].port, 2222);
	cr_assert_eq(p->fetch.tunnels[0].idle_ms, 90000);
	cr_assert_str_eq(p->fetch.tunnels[0].origin, "t.profile:4");
	cr_assert_str_eq(p->fetch.tunnels[1].host, "127.0.0.1");
	cr_assert_eq(p->fetch.tunnels[1].idle_ms, 250);
	cr_assert_str_eq(p->fetch.tunnels[2].host, "git.example.org");
	cr_assert_eq(p->fetch.tunnels[2].allow, 1);
	cr_assert_eq(p->fetch.tunnels[2].idle_ms, AJ_TUNNEL_IDLE_DEFAULT);
	cr_assert_str_eq(p->fetch.tunnels[3].host, "::1");
	cr_assert_eq(p->fetch.tunnels[3].allow, 0);
	cr_assert_eq(aj_profile_format_text(p, &text), 0);
	cr_assert_not_null(strstr(text, "\nproxy on port 3128\n"
					"tunnel allow *.example.com:2222 idle 90000ms\n"
					"tunnel allow 127.0.0.1:8022 idle 250ms\n"
					"tunnel allow git.example.org:22\n"
					"tunnel deny [::1]:22\n"),
			   "%s", text);
	free(text);
	cr_assert_eq(aj_profile_format_json(p, &text), 0);
	cr_assert_not_null(strstr(text, "\"rule\": \"deny [::1]:22\",\n      \"origin\": "
					"\"t.profile:5\""),
			   "%s", text);
	free(text);
	aj_profile_free(p);
}

/* The hash covers the tunnel rules: one more, one other port, or another
 * idle time is another policy; the order of the lines is not. */
Test(profile, tunnel_rules_are_in_the_hash)
{
	const char *texts[] = {
		PROXY_ON,
		PROXY_ON "tunnel allow git.example.org:22\n",
		PROXY_ON "tunnel allow git.example.org:2222\n",
		PROXY_ON "tunnel allow git.example.org:22 idle 1m\n",
		PROXY_ON "tunnel deny git.example.org:22\n",
	};
	char hex[5][65], again[65];
	struct aj_profile *p;

	for (size_t i = 0; i < 5; i++) {
		p = parse_ok(texts[i]);
		cr_assert_eq(aj_profile_sha256(p, hex[i]), 0);
		aj_profile_free(p);
		for (size_t j = 0; j < i; j++)
			cr_assert_str_neq(hex[i], hex[j], "%zu and %zu", i, j);
	}
	p = parse_ok(PROXY_ON "tunnel allow b.example:22\ntunnel allow a.example:22\n");
	cr_assert_eq(aj_profile_sha256(p, hex[0]), 0);
	aj_profile_free(p);
	p = parse_ok(PROXY_ON "tunnel allow a.example:22\ntunnel allow b.example:22\n");
	cr_assert_eq(aj_profile_sha256(p, again), 0);
	aj_profile_free(p);
	cr_assert_str_eq(hex[0], again);
}

Test(profile, error_tunnel)
{
	parse_err(PROXY_ON "tunnel", -EINVAL, "t.profile:3: tunnel: missing 'allow' or 'deny'");
	parse_err(PROXY_ON "tunnel permit a.example:22", -EINVAL,
		  "t.profile:3: tunnel permit: expected 'allow' or 'deny', got 'permit'");
	parse_err(PROXY_ON "tunnel allow", -EINVAL, "t.profile:3: tunnel allow: expected HOST:PORT");
	parse_err(PROXY_ON "tunnel allow git.example.org", -EINVAL,
		  "t.profile:3: tunnel allow: 'git.example.org': expected HOST:PORT (the port is "
		  "required)");
	parse_err(PROXY_ON "tunnel allow [::1]", -EINVAL,
		  "t.profile:3: tunnel allow: '[::1]': expected HOST:PORT (the port is required)");
	parse_err(PROXY_ON "tunnel allow a.example:0", -EINVAL,
		  "t.profile:3: tunnel allow: port 0 not allowed");
	parse_err(PROXY_ON "tunnel allow a.example:65536", -EINVAL,
		  "t.profile:3: tunnel allow: port '65536' out of range");
	parse_err(PROXY_ON "tunnel allow a.example:", -EINVAL,
		  "t.profile:3: tunnel allow: empty port");
	parse_err(PROXY_ON "tunnel allow *:22", -EINVAL,
		  "t.profile:3: tunnel allow: '*' in a tunnel host is only allowed as a leading '*.'");
	parse_err(PROXY_ON "tunnel allow a.*.example:22", -EINVAL,
		  "t.profile:3: tunnel allow: '*' in a tunnel host is only allowed as a leading '*.'");
	parse_err(PROXY_ON "tunnel allow *.10.0.0.1:22", -EINVAL,
		  "t.profile:3: tunnel allow: '*.' can only precede a DNS name, not an IP address");
	parse_err(PROXY_ON "tunnel allow ssh://a.example:22", -EINVAL,
		  "t.profile:3: tunnel allow: 'ssh://a.example:22': expected HOST:PORT, not a URL");
	parse_err(PROXY_ON "tunnel allow user@a.example:22", -EINVAL,
		  "t.profile:3: tunnel allow: 'user@a.example:22': expected HOST:PORT, not a URL");
	parse_err(PROXY_ON "tunnel allow a.example:22 idle", -EINVAL,
		  "t.profile:3: tunnel allow: idle: missing DURATION");
	parse_err(PROXY_ON "tunnel allow a.example:22 idle 0", -EINVAL,
		  "t.profile:3: tunnel allow: idle: expected a duration from 1ms to 24h, got '0'");
	parse_err(PROXY_ON "tunnel allow a.example:22 idle 2d", -EINVAL,
		  "t.profile:3: tunnel allow: idle: expected a duration from 1ms to 24h, got '2d'");
	parse_err(PROXY_ON "tunnel allow a.example:22 idle 1m idle 2m", -EINVAL,
		  "t.profile:3: tunnel allow: 'idle' given twice");
	parse_err(PROXY_ON "tunnel allow a.example:22 fast", -EINVAL,
		  "t.profile:3: tunnel allow: unknown option 'fast' (expected 'idle')");
	parse_err(PROXY_ON "tunnel deny a.example:22 idle 1m", -EINVAL,
		  "t.profile:3: tunnel deny: 'idle' is an option of allow rules");
	/* Tunnels go through the proxy: a rule without it would do nothing. */
	parse_err("tunnel allow a.example:22\n", -EINVAL,
		  "t.profile:1: a tunnel rule needs 'proxy on' (tunnels go through the proxy)");
}

Test(profile, error_proxy)
{
	parse_err("proxy", -EINVAL, "t.profile:1: proxy: missing 'on' or 'off'");
	parse_err("proxy maybe", -EINVAL, "t.profile:1: proxy: expected 'on' or 'off', got 'maybe'");
	parse_err("proxy off now", -EINVAL, "t.profile:1: proxy off: unexpected argument 'now'");
	parse_err("socket inet loopback\nproxy on 8080", -EINVAL,
		  "t.profile:2: proxy on: unexpected argument '8080' (expected 'port N')");
	parse_err("socket inet loopback\nproxy on port", -EINVAL,
		  "t.profile:2: proxy on port: missing N");
	parse_err("socket inet loopback\nproxy on port 0", -EINVAL,
		  "t.profile:2: proxy on port: expected a port from 1 to 65535, got '0'");
	parse_err("socket inet loopback\nproxy on port 65536", -EINVAL,
		  "t.profile:2: proxy on port: expected a port from 1 to 65535, got '65536'");
	parse_err("socket inet loopback\nproxy on port 80 x", -EINVAL,
		  "t.profile:2: proxy on port: unexpected argument 'x'");
	parse_err("socket inet loopback\nproxy on\nproxy off", -EINVAL,
		  "t.profile:3: conflicting 'proxy' (already set to 'on port 3128' at t.profile:2)");
	/* The listeners are TCP sockets in the jail: the mode must allow them. */
	parse_err("proxy on\n", -EINVAL,
		  "t.profile:1: proxy on needs 'socket inet loopback' (tools reach the proxy with "
		  "TCP sockets): add that line");
	parse_err("socket inet deny\nproxy on port 9000\n", -EINVAL,
		  "t.profile:2: proxy on needs 'socket inet loopback' (tools reach the proxy with "
		  "TCP sockets): add that line");
}

Test(profile, on_violation)
{
	struct aj_profile *p = parse_ok("on-violation kill\n");
	char *text = NULL;

	cr_assert(p->kill_on_violation);
	cr_assert_eq(aj_profile_format_text(p, &text), 0);
	cr_assert_not_null(strstr(text, "\non-violation kill\n"), "%s", text);
	free(text);
	aj_profile_free(p);
	p = parse_ok("on-violation deny\non-violation deny\n");
	cr_assert(!p->kill_on_violation);
	aj_profile_free(p);
}

Test(profile, error_on_violation)
{
	parse_err("on-violation", -EINVAL, "t.profile:1: on-violation: missing 'deny' or 'kill'");
	parse_err("on-violation maybe", -EINVAL,
		  "t.profile:1: on-violation: expected 'deny' or 'kill', got 'maybe'");
	parse_err("on-violation kill now", -EINVAL,
		  "t.profile:1: on-violation: unexpected argument 'now'");
	parse_err("on-violation kill\non-violation deny", -EINVAL,
		  "t.profile:2: conflicting 'on-violation' (already set to 'kill' at t.profile:1)");
}

Test(profile, error_optional)
{
	static const char *const core[] = {"userns", "netns", "mountns", "pidns",
					   "ipcns",  "utsns", "seccomp", "caps"};
	char text[64], want[160];
	size_t i;

	parse_err("optional", -EINVAL, "t.profile:1: optional: missing LAYER");
	parse_err("optional sysfs cgroupns", -EINVAL,
		  "t.profile:1: optional: unexpected argument 'cgroupns'");
	parse_err("optional firewall", -EINVAL,
		  "t.profile:1: optional: unknown layer 'firewall' (expected cgroupns or "
		  "sysfs)");
	for (i = 0; i < AJ_ARRAY_SIZE(core); i++) {
		snprintf(text, sizeof(text), "optional %s", core[i]);
		snprintf(want, sizeof(want),
			 "t.profile:1: %s cannot be optional: it is part of the jail's core "
			 "isolation",
			 core[i]);
		parse_err(text, -EINVAL, want);
	}
}

/* The pattern and method messages are the policy module's; only the
 * prefix is the parser's. */
static void
parse_err_prefix(const char *text, int want, const char *prefix)
{
	struct aj_profile *p = NULL;
	char err[512] = "";
	int r = aj_profile_parse_string("t", "t.profile", text, &p, err, sizeof(err));

	cr_assert_eq(r, want, "'%s': %d (%s)", text, r, err);
	cr_assert_null(p);
	cr_assert_eq(strncmp(err, prefix, strlen(prefix)), 0, "'%s': %s", text, err);
	cr_assert_gt(strlen(err), strlen(prefix), "no reason after the prefix");
}

Test(profile, fetch_rules)
{
	struct aj_profile *p = parse_ok("fetch deny * https://docs.example.org/private/**\n"
					"fetch allow GET,HEAD https://DOCS.example.org./**\n"
					"fetch allow POST http://api.example.com:8080/v1/*\n");
	char *text = NULL;

	cr_assert_eq(p->fetch.n_rules, 3);
	cr_assert_eq(aj_profile_format_text(p, &text), 0);
	/* Sorted by text, normalised (host case, trailing dot, default port). */
	cr_assert_not_null(strstr(text, "fetch allow GET,HEAD https://docs.example.org/**\n"
					"fetch allow POST http://api.example.com:8080/v1/*\n"
					"fetch deny GET,HEAD,POST,PUT,PATCH,DELETE,OPTIONS "
					"https://docs.example.org/private/**\n"),
			   "%s", text);
	free(text);
	aj_profile_free(p);
}

Test(profile, error_fetch)
{
	parse_err("fetch", -EINVAL,
		  "t.profile:1: fetch: expected allow, deny, limit, address or ca");
	parse_err("fetch permit GET https://x.org/", -EINVAL,
		  "t.profile:1: fetch: expected allow, deny, limit, address or ca");
	parse_err("fetch allow GET", -EINVAL,
		  "t.profile:1: fetch allow: expected METHODS URL-PATTERN");
	parse_err("fetch allow GET https://x.org/ max-body", -EINVAL,
		  "t.profile:1: fetch allow: max-body: missing value (a size such as 64K or 10M)");
	parse_err(
		"fetch allow GET https://x.org/ max-body 64Q", -EINVAL,
		"t.profile:1: fetch allow: max-body: invalid value '64Q' (expected a size such as "
		"64K or 10M)");
	parse_err("fetch allow GET https://x.org/ timeout 5s timeout 6s", -EINVAL,
		  "t.profile:1: fetch allow: timeout given twice");
	parse_err("fetch allow GET https://x.org/ rate 0/min", -EINVAL,
		  "t.profile:1: fetch allow: rate: must be above zero (use 'fetch deny' to refuse "
		  "requests)");
	parse_err("fetch allow GET https://x.org/ rate 10", -EINVAL,
		  "t.profile:1: fetch allow: rate: invalid value '10' (expected a rate such as "
		  "600/min or 10/s)");
	parse_err("fetch allow GET https://x.org/ colour blue", -EINVAL,
		  "t.profile:1: fetch allow: unknown option 'colour' (query, max-body, response, "
		  "timeout, concurrency, rate, redirects, credentials, sensitive-query, "
		  "pass-header, inject)");
	parse_err("fetch deny GET https://x.org/ credentials", -EINVAL,
		  "t.profile:1: fetch deny: 'credentials' only makes sense on an allow rule");
	parse_err("fetch deny GET https://x.org/ timeout 5s", -EINVAL,
		  "t.profile:1: fetch deny: limits only make sense on an allow rule");
	parse_err(
		"fetch limit", -EINVAL,
		"t.profile:1: fetch limit: expected KEY VALUE pairs (max-body, response, timeout, "
		"concurrency, rate, redirects)");
	parse_err("fetch limit response", -EINVAL,
		  "t.profile:1: fetch limit: response: missing value (a size such as 64K or 10M)");
	parse_err("fetch limit redirects 21", -EINVAL,
		  "t.profile:1: fetch limit: redirects: '21' is too large");
	parse_err("fetch limit timeout 5s\nfetch limit timeout 6s\n", -EINVAL,
		  "t.profile:2: conflicting 'timeout' (already set to '5s' at t.profile:1)");
	parse_err(
		"fetch address allow 10.0.0.1/8", -EINVAL,
		"t.profile:1: fetch address: 10.0.0.1/8: host bits set; did you mean 10.0.0.0/8?");
	parse_err("fetch address deny 10.0.0.0/8", -EINVAL,
		  "t.profile:1: fetch address: expected 'allow ADDRESS[/PREFIX]'");
	parse_err("fetch ca", -EINVAL, "t.profile:1: fetch ca: missing FILE");
	parse_err("fetch ca /nonexistent/ca.pem", -EINVAL,
		  "t.profile:1: fetch ca: /nonexistent/ca.pem: No such file or directory");
	parse_err("fetch ca /etc/hostname", -EINVAL,
		  "t.profile:1: fetch ca: /etc/hostname: no PEM certificate in it");
	parse_err_prefix("fetch allow GET ftp://x.org/", -EINVAL, "t.profile:1: fetch allow: ");
	parse_err_prefix("fetch allow FETCH https://x.org/", -EINVAL, "t.profile:1: fetch allow: ");
}

/* `inject ... file:PATH`: "~/" is HOME's, a relative path the profile's
 * directory's; the policy (and its hash) holds the absolute path, and the
 * file is not read when the profile is (only when a jail starts). */
Test(profile, inject_sources_are_resolved_not_read)
{
	struct aj_profile *p;
	char *t, *file, *want, err[1024];

	setenv("HOME", "/home/someone", 1);
	p = parse_ok("fetch allow POST https://api.test/v1/** inject x-api-key file:~/.key\n"
		     "fetch allow GET https://api.test/v1/** inject authorization env:TOKEN\n");
	cr_assert_eq(p->fetch.n_rules, 2);
	t = text_of(p);
	cr_assert(strstr(t, "fetch allow POST https://api.test/v1/** inject x-api-key "
			    "file:/home/someone/.key\n") != NULL,
		  "%s", t);
	cr_assert(strstr(t, "inject authorization env:TOKEN\n") != NULL, "%s", t);
	free(t);
	aj_profile_free(p);

	setenv("HOME", "relative", 1);
	parse_err("fetch allow GET https://api.test/ inject k file:~/key\n", -EINVAL,
		  "t.profile:1: fetch: inject k: '~' needs HOME, which is not an absolute path "
		  "here");

	{
		struct aj_profile *q = NULL;

		cr_assert_eq(aj_profile_load_string("embedded",
						    "fetch allow GET https://api.test/ inject k "
						    "file:../key\n",
						    &q, err, sizeof(err)),
			     -EINVAL);
		cr_assert_str_eq(err, "embedded:1: fetch: inject k: '../key' must be an absolute "
				      "path or start with '~/' in a profile given as text");
	}
	/* A relative profile path: the file is still named absolutely. */
	p = parse_ok("fetch allow GET https://api.test/ inject k file:key\n");
	cr_assert_eq(p->fetch.rules[0].inject_source[5], '/', "%s", p->fetch.rules[0].inject_source);
	aj_profile_free(p);
	file = write_file("d/p.profile", "fetch allow GET https://api.test/ inject k file:sub/key\n");
	p = load_ok(file);
	cr_assert(asprintf(&want, "file:%s/d/sub/key", tmpdir) > 0);
	cr_assert_str_eq(p->fetch.rules[0].inject_source, want);
	free(want);
	free(file);
	aj_profile_free(p);
}

Test(profile, fetch_limits_and_options)
{
	struct aj_profile *p =
		parse_ok("fetch allow POST https://api.example.com/v1/erasure max-body 64K "
			 "credentials timeout 2m\n"
			 "fetch limit response 50M timeout 30s concurrency 64 rate 10/s\n"
			 "fetch address allow 127.0.0.2\n"
			 "fetch address allow 10.0.0.0/8\n");
	char *t = text_of(p), *again;
	struct aj_profile *q;

	cr_assert_eq(p->fetch.n_rules, 1);
	cr_assert_eq(p->fetch.rules[0].limits.value[AJ_LIMIT_MAX_BODY], 65536);
	cr_assert_eq(p->fetch.rules[0].limits.value[AJ_LIMIT_TIMEOUT], 120000);
	cr_assert_eq(p->fetch.rules[0].options, AJ_RULE_CREDENTIALS);
	cr_assert_eq(p->fetch.limits.value[AJ_LIMIT_RESPONSE], 50u << 20);
	cr_assert_eq(p->fetch.limits.value[AJ_LIMIT_RATE], 600);
	/* Defaults fill the rest. */
	cr_assert_eq(p->fetch.limits.value[AJ_LIMIT_MAX_BODY], 1u << 20);
	cr_assert_eq(p->fetch.limits.value[AJ_LIMIT_REDIRECTS], 5);
	cr_assert_eq(p->fetch.n_addresses, 2);
	cr_assert(strstr(t, "fetch allow POST https://api.example.com/v1/erasure max-body 65536 "
			    "timeout 120000ms credentials\n") != NULL,
		  "%s", t);
	cr_assert(strstr(t, "fetch limit max-body 1048576 response 52428800 timeout 30000ms "
			    "concurrency 64 rate 600/min redirects 5\n") != NULL,
		  "%s", t);
	cr_assert(strstr(t, "fetch address allow 10.0.0.0/8\nfetch address allow 127.0.0.2\n") !=
			  NULL,
		  "%s", t);
	/* The canonical text reads back to itself. */
	q = parse_ok(t);
	again = text_of(q);
	cr_assert_str_eq(t, again);
	free(again);
	free(t);
	aj_profile_free(q);
	aj_profile_free(p);
}

Test(profile, error_conflicts_in_one_file)
{
	parse_err("hostname a\n\nhostname b\n", -EINVAL,
		  "t.profile:3: conflicting 'hostname' (already set to 'a' at t.profile:1)");
	parse_err("user a\nuser b\n", -EINVAL,
		  "t.profile:2: conflicting 'user' (already set to 'a' at t.profile:1)");
	parse_err("tmpfs-size 1M\ntmpfs-size 2M\n", -EINVAL,
		  "t.profile:2: conflicting 'tmpfs-size' (already set to '1M' at t.profile:1)");
	parse_err("socket unix deny\nsocket unix allow\n", -EINVAL,
		  "t.profile:2: conflicting 'socket unix' (already set to 'deny' at "
		  "t.profile:1)");
	parse_err("rlimit nofile 64\nrlimit nproc 1\nrlimit nofile unlimited\n", -EINVAL,
		  "t.profile:3: conflicting 'rlimit nofile' (already set to '64' at "
		  "t.profile:1)");
	parse_err("env set A=1\nenv set B=1\nenv set A=1 \nenv set A=2\n", -EINVAL,
		  "t.profile:4: conflicting 'env set A' (already set to '1' at t.profile:1)");
}

Test(profile, error_line_bytes)
{
	char *text = malloc(4097 + 16);

	memset(text, ' ', 4097);
	memcpy(text, "hostname x", 10);
	strcpy(text + 4097, "\n");
	parse_err(text, -EINVAL, "t.profile:1: line longer than 4096 bytes");
	free(text);
	parse_err("hostname a\r\n", -EINVAL,
		  "t.profile:1: carriage return in line (DOS line endings are not supported)");
	parse_err("\nhostname \x1b[2Ja\n", -EINVAL, "t.profile:2: control character 0x1b in line");
}

Test(profile, error_nul_byte)
{
	static const char text[] = "hostname a\n\nuser b\0ad\n";
	char *path = tmp_path("nul.profile"), err[512], want[600];
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f);
	fwrite(text, 1, sizeof(text) - 1, f);
	fclose(f);
	cr_assert_eq(load_err(path, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s:3: NUL byte in line", path);
	cr_assert_str_eq(err, want);
	free(path);
}

Test(profile, error_file_too_large)
{
	size_t n = 1024 * 1024;
	char *text = malloc(n + 2), *path = tmp_path("big.profile"), err[512], want[600];
	struct aj_profile *p = NULL;
	FILE *f;

	/* Exactly 1 MiB of comment lines is allowed... */
	memset(text, '#', n);
	for (size_t i = 63; i < n; i += 64)
		text[i] = '\n';
	text[n] = '\0';
	cr_assert_eq(aj_profile_parse_string("t", "t.profile", text, &p, err, sizeof(err)), 0, "%s",
		     err);
	aj_profile_free(p);
	/* ...one byte more is not, from memory or from a file. */
	text[n] = '#';
	text[n + 1] = '\0';
	parse_err(text, -EINVAL, "t.profile: file is larger than 1 MiB");
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fwrite(text, 1, n + 1, f);
	fclose(f);
	cr_assert_eq(load_err(path, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s: file is larger than 1 MiB", path);
	cr_assert_str_eq(err, want);
	free(text);
	free(path);
}

Test(profile, error_not_a_regular_file)
{
	char *dir = tmp_path("d.profile"), err[512], want[600];

	cr_assert_eq(mkdir(dir, 0700), 0);
	cr_assert_eq(load_err(dir, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s: not a regular file", dir);
	cr_assert_str_eq(err, want);
	free(dir);
}

Test(profile, error_not_found)
{
	char err[2048], want[2048], *xdg = tmp_path("xdg");

	setenv("XDG_CONFIG_HOME", xdg, 1);
	cr_assert_eq(load_err("no-such-profile", err, sizeof(err)), -ENOENT);
	snprintf(want, sizeof(want),
		 "profile 'no-such-profile' not found (searched: "
		 "%s/agentjail/profiles, /etc/agentjail/profiles, %s)",
		 xdg, AJ_PROFILEDIR);
	cr_assert_str_eq(err, want);

	/* Without XDG_CONFIG_HOME, the XDG default under $HOME. */
	unsetenv("XDG_CONFIG_HOME");
	setenv("HOME", "/home/someone", 1);
	cr_assert_eq(load_err("no-such-profile", err, sizeof(err)), -ENOENT);
	snprintf(want, sizeof(want),
		 "profile 'no-such-profile' not found (searched: "
		 "/home/someone/.config/agentjail/profiles, /etc/agentjail/profiles, %s)",
		 AJ_PROFILEDIR);
	cr_assert_str_eq(err, want);

	cr_assert_eq(load_err("/nonexistent/x.profile", err, sizeof(err)), -ENOENT);
	cr_assert_str_eq(err, "profile '/nonexistent/x.profile' not found");
	cr_assert_eq(load_err("", err, sizeof(err)), -EINVAL);
	cr_assert_str_eq(err, "empty profile name");
	free(xdg);
}

Test(profile, error_include_syntax_and_not_found)
{
	char *top = write_file("a/top.profile", "hostname a\ninclude nope\n");
	char err[2048], want[2048], *dir = tmp_path("a");

	setenv("XDG_CONFIG_HOME", "/nonexistent-xdg", 1);
	cr_assert_eq(load_err(top, err, sizeof(err)), -ENOENT);
	snprintf(want, sizeof(want),
		 "%s:2: profile 'nope' not found (searched: "
		 "/nonexistent-xdg/agentjail/profiles, /etc/agentjail/profiles, %s)",
		 top, AJ_PROFILEDIR);
	cr_assert_str_eq(err, want);
	free(top);

	top = write_file("a/top2.profile", "include sub/x.profile\n");
	cr_assert_eq(load_err(top, err, sizeof(err)), -ENOENT);
	snprintf(want, sizeof(want), "%s:1: profile '%s/sub/x.profile' not found", top, dir);
	cr_assert_str_eq(err, want);

	parse_err("include", -EINVAL, "t.profile:1: include: missing NAME");
	parse_err("include a b", -EINVAL, "t.profile:1: include: unexpected argument 'b'");
	free(top);
	free(dir);
}

/* NAME ending in .profile was meant as a file (the search looked for
 * NAME.profile.profile): the message says that a path needs a '/', and the
 * path it suggests is the file. */
Test(profile, error_not_found_file_name_needs_a_slash)
{
	char err[2048], want[2048], *here = tmp_path("c"), *file;
	struct aj_profile *p = NULL;

	setenv("XDG_CONFIG_HOME", "/nonexistent-xdg", 1);
	file = write_file("c/here.profile", "hostname here\n");
	cr_assert_eq(chdir(here), 0);
	cr_assert_eq(load_err("here.profile", err, sizeof(err)), -ENOENT);
	snprintf(want, sizeof(want),
		 "profile 'here.profile' not found (searched: "
		 "/nonexistent-xdg/agentjail/profiles, /etc/agentjail/profiles, %s); a path "
		 "needs a '/': to use the file in this directory, say ./here.profile",
		 AJ_PROFILEDIR);
	cr_assert_str_eq(err, want);
	cr_assert_eq(aj_profile_load("./here.profile", &p, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(aj_profile_path(p), "./here.profile");
	aj_profile_free(p);

	/* Other names, and ".profile" alone, are names: no such advice. */
	cr_assert_eq(load_err("here", err, sizeof(err)), -ENOENT);
	cr_assert_null(strstr(err, "a path needs"), "%s", err);
	cr_assert_eq(load_err("here.profiles", err, sizeof(err)), -ENOENT);
	cr_assert_null(strstr(err, "a path needs"), "%s", err);
	cr_assert_eq(load_err(".profile", err, sizeof(err)), -ENOENT);
	cr_assert_null(strstr(err, "a path needs"), "%s", err);
	free(file);
	free(here);
}

/* In an include, a path is relative to the including file's directory. */
Test(profile, error_include_file_name_needs_a_slash)
{
	char *top = write_file("d/top.profile", "include base.profile\n");
	char *base = write_file("d/base.profile", "hostname base\n");
	char *top2 = write_file("d/top2.profile", "include ./base.profile\n");
	char err[2048], want[2048], *dir = tmp_path("d");
	struct aj_profile *p = NULL;

	setenv("XDG_CONFIG_HOME", "/nonexistent-xdg", 1);
	cr_assert_eq(load_err(top, err, sizeof(err)), -ENOENT);
	snprintf(want, sizeof(want),
		 "%s:1: profile 'base.profile' not found (searched: "
		 "/nonexistent-xdg/agentjail/profiles, /etc/agentjail/profiles, %s); a path "
		 "needs a '/': to include the file beside this profile, say ./base.profile",
		 top, AJ_PROFILEDIR);
	cr_assert_str_eq(err, want);
	cr_assert_eq(aj_profile_load(top2, &p, err, sizeof(err)), 0, "%s", err);
	aj_profile_free(p);
	free(top);
	free(top2);
	free(base);
	free(dir);
}

Test(profile, error_inside_include_names_that_file)
{
	char *top = write_named("top.profile", "hostname a\ninclude base\n");
	char *base = write_named("base.profile", "user x\n\nrlimit nofile lots\n");
	char err[1024], want[1024];

	cr_assert_eq(load_err(top, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want),
		 "%s:3: rlimit nofile: invalid value 'lots' (expected a number or 'unlimited')",
		 base);
	cr_assert_str_eq(err, want);
	free(top);
	free(base);
}

/* ---- includes -------------------------------------------------------------- */

/* A NAME is looked up only along the search path: never beside the
 * including file (often the agent's project) nor in ./profiles, where an
 * earlier jail could have planted it.  A file beside is included by path,
 * relative to the including file. */
Test(profile, include_name_is_never_looked_up_beside_the_includer)
{
	char *top = write_file("a/top.profile", "include base\ninclude sub/extra.profile\n");
	char *beside = write_file("a/base.profile", "hostname planted-beside\n");
	char *extra = write_file("a/sub/extra.profile", "include ../b/other\n");
	char *other = write_file("a/b/other", "user from-other\n");
	char *decoy = write_file("profiles/base.profile", "hostname planted-in-cwd\n");
	char *base = write_named("base.profile", "hostname from-search-path\n");
	char *by_path = write_file("a/by-path.profile", "include ./base.profile\n");
	struct aj_profile *p;

	cr_assert_eq(chdir(tmpdir), 0);
	p = load_ok(top);
	cr_assert_str_eq(p->hostname, "from-search-path");
	cr_assert_str_eq(p->user, "from-other");
	cr_assert_str_eq(aj_profile_path(p), top);
	aj_profile_free(p);
	p = load_ok(by_path);
	cr_assert_str_eq(p->hostname, "planted-beside");
	aj_profile_free(p);
	free(by_path);
	free(base);
	free(top);
	free(beside);
	free(extra);
	free(other);
	free(decoy);
}

/* A profile anyone could have written is refused with its name and why,
 * whether named by path, by name or in an include; one refused in the
 * search path is never passed over for a file further down. */
Test(profile, untrusted_files_are_refused)
{
	char *f = write_file("open/x.profile", "hostname x\n"), *dir = tmp_path("open");
	char *top = write_file("top.profile", "include ./open/x.profile\n");
	char *named = write_named("n.profile", "hostname n\n");
	char *sdir = tmp_path("xdg/agentjail/profiles");
	char err[2048], want[2048];

	cr_assert_eq(chmod(dir, 0777), 0);
	cr_assert_eq(load_err(f, err, sizeof(err)), -EPERM);
	snprintf(want, sizeof(want),
		 "profile '%s' is not trusted: %s is writable by group and others (mode 0777); "
		 "make it owned by you or root and not group/other-writable",
		 f, dir);
	cr_assert_str_eq(err, want);
	cr_assert_eq(load_err(top, err, sizeof(err)), -EPERM);
	snprintf(want, sizeof(want),
		 "%s:1: profile '%s/open/x.profile' is not trusted: %s is writable by group "
		 "and others (mode 0777); make it owned by you or root and not "
		 "group/other-writable",
		 top, tmpdir, dir);
	cr_assert_str_eq(err, want);
	cr_assert_eq(chmod(sdir, 0775), 0);
	cr_assert_eq(load_err("n", err, sizeof(err)), -EPERM);
	snprintf(want, sizeof(want),
		 "profile '%s' is not trusted: %s is writable by group (mode 0775); make it "
		 "owned by you or root and not group/other-writable",
		 named, sdir);
	cr_assert_str_eq(err, want);
	/* The file itself, too. */
	cr_assert_eq(chmod(sdir, 0755), 0);
	cr_assert_eq(chmod(named, 0646), 0);
	cr_assert_eq(load_err("n", err, sizeof(err)), -EPERM);
	cr_assert_not_null(strstr(err, "is writable by others (mode 0646)"), "%s", err);
	free(sdir);
	free(named);
	free(top);
	free(dir);
	free(f);
}

/* A run protects, and checks after, every file a profile was read from:
 * each once, by its real path. */
Test(profile, files_read_are_listed_once)
{
	char *base = write_named("base.profile", "hostname b\n");
	char *mid = write_named("mid.profile", "include base\n");
	char *top = write_file("t/top.profile", "include mid\ninclude base\n");
	struct aj_profile *p;
	struct stat st;

	p = load_ok(top);
	cr_assert_eq(p->n_files, 3);
	cr_assert_str_eq(p->files[0].path, top);
	cr_assert_str_eq(p->files[1].path, mid);
	cr_assert_str_eq(p->files[2].path, base);
	cr_assert_eq(stat(base, &st), 0);
	cr_assert_eq(p->files[2].ino, st.st_ino);
	aj_profile_free(p);
	free(top);
	free(mid);
	free(base);
}

Test(profile, include_falls_back_to_search_path)
{
	char *top = write_file("a/top.profile", "include shared\n");
	char *shared = write_file("xdg/agentjail/profiles/shared.profile", "hostname shared\n");
	char *xdg = tmp_path("xdg");
	struct aj_profile *p;

	setenv("XDG_CONFIG_HOME", xdg, 1);
	p = load_ok(top);
	cr_assert_str_eq(p->hostname, "shared");
	aj_profile_free(p);
	free(top);
	free(shared);
	free(xdg);
}

Test(profile, load_by_name_from_search_path)
{
	char *cwd_prof = write_file("profiles/mine.profile", "hostname cwd\n");
	char *xdg_prof = write_file("xdg/agentjail/profiles/mine.profile", "hostname xdg\n");
	char *only_xdg = write_file("xdg/agentjail/profiles/other.profile", "hostname other\n");
	char *xdg = tmp_path("xdg");
	struct aj_profile *p;

	setenv("XDG_CONFIG_HOME", xdg, 1);
	cr_assert_eq(chdir(tmpdir), 0);
	/* ./profiles (the agent's project, usually) is not searched. */
	p = load_ok("mine");
	cr_assert_str_eq(p->hostname, "xdg");
	cr_assert_str_eq(aj_profile_name(p), "mine");
	cr_assert_str_eq(aj_profile_path(p), xdg_prof);
	aj_profile_free(p);
	p = load_ok("other");
	cr_assert_str_eq(p->hostname, "other");
	aj_profile_free(p);
	free(cwd_prof);
	free(xdg_prof);
	free(only_xdg);
	free(xdg);
}

Test(profile, include_cycle)
{
	char *a = write_named("a.profile", "hostname a\ninclude b\n");
	char *b = write_named("b.profile", "\ninclude a\n");
	char err[2048], want[2048];

	cr_assert_eq(load_err(a, err, sizeof(err)), -ELOOP);
	snprintf(want, sizeof(want), "%s:2: include cycle: %s -> %s -> %s", b, a, b, a);
	cr_assert_str_eq(err, want);
	free(a);
	free(b);
}

Test(profile, include_cycle_below_the_top_and_self)
{
	char *top = write_named("top.profile", "include a\n");
	char *a = write_named("a.profile", "include b\n");
	char *b = write_named("b.profile", "include ./a.profile\n");
	char *self = write_named("self.profile", "include ./self.profile\n");
	char err[2048], want[2048];

	cr_assert_eq(load_err(top, err, sizeof(err)), -ELOOP);
	snprintf(want, sizeof(want), "%s:1: include cycle: %s -> %s -> %s", b, a, b, a);
	cr_assert_str_eq(err, want);
	cr_assert_eq(load_err(self, err, sizeof(err)), -ELOOP);
	snprintf(want, sizeof(want), "%s:1: include cycle: %s -> %s", self, self, self);
	cr_assert_str_eq(err, want);
	free(top);
	free(a);
	free(b);
	free(self);
}

/* f0 includes f1 ... includes f(N-1): N files on the include stack. */
static char *
write_chain(int n)
{
	char name[32], body[64], *path, *first = NULL;
	int i;

	for (i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "f%d.profile", i);
		if (i + 1 < n)
			snprintf(body, sizeof(body), "include f%d\n", i + 1);
		else
			snprintf(body, sizeof(body), "hostname deep\n");
		path = write_named(name, body);
		if (i == 0)
			first = path;
		else
			free(path);
	}
	return first;
}

Test(profile, include_depth_16_is_allowed)
{
	char *top = write_chain(16);
	struct aj_profile *p = load_ok(top);

	cr_assert_str_eq(p->hostname, "deep");
	aj_profile_free(p);
	free(top);
}

Test(profile, include_depth_17_is_refused)
{
	char *top = write_chain(17), *f15 = tmp_path("xdg/agentjail/profiles/f15.profile");
	char err[1024], want[1024];

	cr_assert_eq(load_err(top, err, sizeof(err)), -ELOOP);
	snprintf(want, sizeof(want), "%s:1: include: nested more than 16 files deep", f15);
	cr_assert_str_eq(err, want);
	free(top);
	free(f15);
}

Test(profile, include_count_is_bounded)
{
	char *text = NULL, *top, *base = write_named("base.profile", "hostname b\n");
	char err[1024], want[1024];
	size_t size = 0;
	FILE *f = open_memstream(&text, &size);
	int i;

	/* The same file included again is fine (a diamond), but there is a
	 * limit on how much work one profile can ask for. */
	for (i = 0; i < 129; i++)
		fputs("include base\n", f);
	fclose(f);
	top = write_named("top.profile", text);
	cr_assert_eq(load_err(top, err, sizeof(err)), -ELOOP);
	snprintf(want, sizeof(want), "%s:129: include: more than 128 includes in one profile", top);
	cr_assert_str_eq(err, want);
	free(text);
	free(top);
	free(base);
}

/* ---- override rules -------------------------------------------------------- */

Test(profile, including_file_wins_in_either_order)
{
	char *base = write_named("base.profile", "hostname base\nrlimit nofile 4096\n"
						"env set A=base\nenv keep PATH\n");
	char *after =
		write_named("after.profile", "include base\nrlimit nofile 64\nenv set A=top\n");
	char *before =
		write_named("before.profile", "rlimit nofile 64\nenv set A=top\ninclude base\n");
	struct aj_profile *p1 = load_ok(after), *p2 = load_ok(before);
	char *t1 = text_of(p1), *t2 = text_of(p2);

	cr_assert_eq(p1->rlimits[AJ_RLIMIT_NOFILE].value, 64);
	cr_assert_str_eq(p1->hostname, "base");
	cr_assert_str_eq(p1->env_set[0], "A=top");
	cr_assert_str_eq(t1, t2);
	free(t1);
	free(t2);
	aj_profile_free(p1);
	aj_profile_free(p2);
	free(base);
	free(after);
	free(before);
}

Test(profile, own_conflict_after_include_is_still_an_error)
{
	char *base = write_named("base.profile", "hostname base\n");
	char *top = write_named("top.profile", "include base\nhostname x\nhostname y\n");
	char err[1024], want[1024];

	cr_assert_eq(load_err(top, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s:3: conflicting 'hostname' (already set to 'x' at %s:2)",
		 top, top);
	cr_assert_str_eq(err, want);
	free(base);
	free(top);
}

Test(profile, diamond_includes_agree)
{
	char *base = write_named("base.profile", "hostname base\nenv keep PATH\n");
	char *b = write_named("b.profile", "include base\nenv keep HOME\n");
	char *c = write_named("c.profile", "include base\noptional sysfs\n");
	char *top = write_named("top.profile", "include b\ninclude c\n");
	struct aj_profile *p = load_ok(top);

	cr_assert_str_eq(p->hostname, "base");
	cr_assert_eq(p->n_env_keep, 2);
	cr_assert_eq(p->optional_layers, AJ_LAYER_SYSFS);
	aj_profile_free(p);
	free(base);
	free(b);
	free(c);
	free(top);
}

Test(profile, sibling_includes_that_disagree)
{
	char *b = write_named("b.profile", "rlimit nofile 64\n");
	char *c = write_named("c.profile", "\nrlimit nofile 128\n");
	char *top = write_named("top.profile", "include b\ninclude c\n");
	char *fixed = write_named("fixed.profile", "include b\ninclude c\nrlimit nofile 32\n");
	char err[2048], want[2048];
	struct aj_profile *p;

	/* Neither order of the include lines is a reason to pick one. */
	cr_assert_eq(load_err(top, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want),
		 "%s:2: conflicting 'rlimit nofile' from includes: '64' at %s:1, '128' at "
		 "%s:2 (set it in %s to choose)",
		 top, b, c, top);
	cr_assert_str_eq(err, want);
	/* Stating the value in the including file settles it. */
	p = load_ok(fixed);
	cr_assert_eq(p->rlimits[AJ_RLIMIT_NOFILE].value, 32);
	aj_profile_free(p);
	free(b);
	free(c);
	free(top);
	free(fixed);
}

/* ---- sizes and rlimit names ------------------------------------------------ */

Test(profile, parse_size)
{
	static const struct {
		const char *s;
		int rc;
		uint64_t v;
	} cases[] = {
		{"0", 0, 0},
		{"4096", 0, 4096},
		{"007", 0, 7},
		{"1K", 0, 1024},
		{"64M", 0, 64ull << 20},
		{"1G", 0, 1ull << 30},
		{"2T", 0, 2ull << 40},
		{"9223372036854775807", 0, (uint64_t)INT64_MAX},
		{"8388607T", 0, 8388607ull << 40},
		{"9223372036854775808", -ERANGE, 0},
		{"99999999999999999999999", -ERANGE, 0},
		{"8388608T", -ERANGE, 0},
		{"", -EINVAL, 0},
		{"K", -EINVAL, 0},
		{"1k", -EINVAL, 0},
		{"1KB", -EINVAL, 0},
		{"1MK", -EINVAL, 0},
		{"-1", -EINVAL, 0},
		{"+1", -EINVAL, 0},
		{" 1", -EINVAL, 0},
		{"1 ", -EINVAL, 0},
		{"1.5M", -EINVAL, 0},
		{"0x10", -EINVAL, 0},
	};
	size_t i;

	for (i = 0; i < AJ_ARRAY_SIZE(cases); i++) {
		uint64_t v = 12345;
		int r = aj_lexer_size(cases[i].s, &v);

		cr_assert_eq(r, cases[i].rc, "'%s': rc %d", cases[i].s, r);
		cr_assert_eq(v, r == 0 ? cases[i].v : 12345, "'%s': %llu", cases[i].s,
			     (unsigned long long)v);
	}
	cr_assert_eq(aj_lexer_size(NULL, NULL), -EINVAL);
}

Test(profile, rlimit_names_and_resources)
{
	cr_assert_str_eq(aj_profile_rlimit_name(AJ_RLIMIT_NOFILE), "nofile");
	cr_assert_str_eq(aj_profile_rlimit_name(AJ_RLIMIT_NPROC), "nproc");
	cr_assert_str_eq(aj_profile_rlimit_name(AJ_RLIMIT_AS), "as");
	cr_assert_str_eq(aj_profile_rlimit_name(AJ_RLIMIT_FSIZE), "fsize");
	cr_assert_str_eq(aj_profile_rlimit_name(AJ_RLIMIT_CPU), "cpu");
	cr_assert_str_eq(aj_profile_rlimit_name(AJ_RLIMIT_CORE), "core");
	cr_assert_null(aj_profile_rlimit_name(AJ_RLIMIT__COUNT));
	cr_assert_eq(aj_profile_rlimit_resource(AJ_RLIMIT_NOFILE), RLIMIT_NOFILE);
	cr_assert_eq(aj_profile_rlimit_resource(AJ_RLIMIT_NPROC), RLIMIT_NPROC);
	cr_assert_eq(aj_profile_rlimit_resource(AJ_RLIMIT_AS), RLIMIT_AS);
	cr_assert_eq(aj_profile_rlimit_resource(AJ_RLIMIT_FSIZE), RLIMIT_FSIZE);
	cr_assert_eq(aj_profile_rlimit_resource(AJ_RLIMIT_CPU), RLIMIT_CPU);
	cr_assert_eq(aj_profile_rlimit_resource(AJ_RLIMIT_CORE), RLIMIT_CORE);
	cr_assert_eq(aj_profile_rlimit_resource(AJ_RLIMIT__COUNT), -EINVAL);
}

/* ---- canonical text, hash, JSON -------------------------------------------- */

Test(profile, canonical_text)
{
	struct aj_profile *p = parse_ok("optional sysfs\n"
					"socket unix allow\n"
					"tmpfs-size 2M\n"
					"rlimit core 1K\n"
					"rlimit cpu 30s\n"
					"rlimit nofile unlimited\n"
					"env set Z=last one\n"
					"env set A=\n"
					"env keep TERM PATH\n"
					"user bob\n"
					"optional cgroupns\n"
					"hostname h\n");
	char *t = text_of(p);

	cr_assert_str_eq(t, "hostname h\n"
			    "user bob\n"
			    "broker-user nobody\n"
			    "env keep PATH TERM\n"
			    "env set A=\n"
			    "env set Z=last one\n"
			    "rlimit nofile unlimited\n"
			    "rlimit cpu 30\n"
			    "rlimit core 1024\n"
			    "tmpfs-size 2097152\n"
			    "socket unix allow\n"
			    "socket inet deny\n"
			    "proxy off\n"
			    "on-violation deny\n"
			    "optional cgroupns\n"
			    "optional sysfs\n"
			    "fetch limit max-body 1048576 response 67108864 timeout 30000ms "
			    "concurrency 64 rate 6000/min redirects 5\n");
	free(t);
	aj_profile_free(p);

	p = parse_ok("");
	t = text_of(p);
	cr_assert_str_eq(t, "hostname agentjail\n"
			    "user nobody\n"
			    "broker-user nobody\n"
			    "rlimit core 0\n"
			    "tmpfs-size 67108864\n"
			    "socket unix deny\n"
			    "socket inet deny\n"
			    "proxy off\n"
			    "on-violation deny\n"
			    "fetch limit max-body 1048576 response 67108864 timeout 30000ms "
			    "concurrency 64 rate 6000/min redirects 5\n");
	free(t);
	aj_profile_free(p);
}

Test(profile, canonical_text_reparses_to_itself)
{
	struct aj_profile *p = parse_ok("hostname h\nenv keep B A\nenv set X= spaced  out\n"
					"rlimit as unlimited\ntmpfs-size 3M\noptional sysfs\n");
	struct aj_profile *q;
	char *t1 = text_of(p), *t2;

	q = parse_ok(t1);
	t2 = text_of(q);
	cr_assert_str_eq(t1, t2);
	cr_assert_str_eq(q->env_set[0], "X= spaced  out");
	free(t1);
	free(t2);
	aj_profile_free(p);
	aj_profile_free(q);
}

/* An independent implementation to check against: coreutils' sha256sum. */
static void
sha256_hex(const char *s, char hex[65])
{
	char tmpl[] = "/tmp/aj-sha-XXXXXX", cmd[128];
	int fd = mkstemp(tmpl);
	FILE *f;

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, s, strlen(s)), (ssize_t)strlen(s));
	close(fd);
	snprintf(cmd, sizeof(cmd), "sha256sum %s", tmpl);
	f = popen(cmd, "r");
	cr_assert_not_null(f);
	cr_assert_not_null(fgets(hex, 65, f));
	pclose(f);
	unlink(tmpl);
	hex[64] = '\0';
}

Test(profile, sha256_is_of_the_canonical_text_and_order_independent)
{
	char *x1 = write_named("x1.profile", "env keep HOME\nenv set B=2\n");
	char *x2 = write_named("x2.profile", "env keep PATH\nenv set A=1\noptional sysfs\n");
	char *one = write_named("one.profile", "include x1\ninclude x2\nrlimit nofile 10\n"
					      "env keep TERM HOME\n");
	char *two = write_named("two.profile", "# same policy, another layout\n"
					      "env keep TERM\n"
					      "rlimit nofile 10\n"
					      "include x2\n"
					      "env keep HOME\n"
					      "include x1\n");
	struct aj_profile *p1 = load_ok(one), *p2 = load_ok(two), *p3;
	char h1[65], h2[65], h3[65], want[65], *t;

	cr_assert_eq(aj_profile_sha256(p1, h1), 0);
	cr_assert_eq(aj_profile_sha256(p2, h2), 0);
	cr_assert_str_eq(h1, h2);
	t = text_of(p1);
	sha256_hex(t, want);
	cr_assert_str_eq(h1, want);
	cr_assert_eq(strspn(h1, "0123456789abcdef"), 64);
	free(t);

	/* A different policy has a different hash. */
	p3 = parse_ok("env keep TERM HOME PATH\nenv set A=1\nenv set B=3\n"
		      "rlimit nofile 10\noptional sysfs\n");
	cr_assert_eq(aj_profile_sha256(p3, h3), 0);
	cr_assert_str_neq(h1, h3);
	aj_profile_free(p1);
	aj_profile_free(p2);
	aj_profile_free(p3);
	free(x1);
	free(x2);
	free(one);
	free(two);
}

Test(profile, json_output)
{
	struct aj_profile *p = parse_ok("hostname h\nenv keep PATH HOME\nenv set A=x y\n"
					"rlimit nofile 64\nrlimit as unlimited\n"
					"socket unix allow\noptional cgroupns\n");
	json_t *root, *v;
	json_error_t jerr;
	char *s = NULL, hex[65];

	cr_assert_eq(aj_profile_format_json(p, &s), 0);
	root = json_loads(s, 0, &jerr);
	cr_assert_not_null(root, "%s: %s", jerr.text, s);
	cr_assert(json_is_object(root));
	cr_assert_str_eq(json_string_value(json_object_get(root, "name")), "t");
	cr_assert_str_eq(json_string_value(json_object_get(root, "path")), "t.profile");
	cr_assert_eq(aj_profile_sha256(p, hex), 0);
	cr_assert_str_eq(json_string_value(json_object_get(root, "sha256")), hex);
	cr_assert_str_eq(json_string_value(json_object_get(root, "hostname")), "h");
	cr_assert_str_eq(json_string_value(json_object_get(root, "user")), "nobody");
	v = json_object_get(root, "env_keep");
	cr_assert(json_is_array(v));
	cr_assert_eq(json_array_size(v), 2);
	cr_assert_str_eq(json_string_value(json_array_get(v, 0)), "HOME");
	cr_assert_str_eq(json_string_value(json_array_get(v, 1)), "PATH");
	v = json_object_get(root, "env_set");
	cr_assert(json_is_object(v));
	cr_assert_eq(json_object_size(v), 1);
	cr_assert_str_eq(json_string_value(json_object_get(v, "A")), "x y");
	v = json_object_get(root, "rlimits");
	cr_assert(json_is_object(v));
	cr_assert_eq(json_object_size(v), 3);
	cr_assert_eq(json_integer_value(json_object_get(v, "nofile")), 64);
	cr_assert_str_eq(json_string_value(json_object_get(v, "as")), "unlimited");
	cr_assert(json_is_integer(json_object_get(v, "core")));
	cr_assert_eq(json_integer_value(json_object_get(v, "core")), 0);
	cr_assert_eq(json_integer_value(json_object_get(root, "tmpfs_size")), 64 << 20);
	cr_assert_str_eq(json_string_value(json_object_get(root, "socket_unix")), "allow");
	v = json_object_get(root, "optional");
	cr_assert(json_is_array(v));
	cr_assert_eq(json_array_size(v), 1);
	cr_assert_str_eq(json_string_value(json_array_get(v, 0)), "cgroupns");
	json_decref(root);
	free(s);
	aj_profile_free(p);
}

Test(profile, json_survives_non_utf8)
{
	struct aj_profile *p = parse_ok("env set A=\xff\xfe\n");
	json_t *root;
	char *s = NULL;

	cr_assert_eq(aj_profile_format_json(p, &s), 0);
	root = json_loads(s, 0, NULL);
	cr_assert_not_null(root);
	cr_assert_str_eq(json_string_value(json_object_get(json_object_get(root, "env_set"), "A")),
			 "\\xff\\xfe");
	json_decref(root);
	free(s);
	aj_profile_free(p);
}

/* ---- the shipped profiles -------------------------------------------------- */

Test(profile, shipped_default)
{
	static const char *const keep[] = {"HOME",  "LANG", "LC_ALL", "LOGNAME", "PATH",
					   "SHELL", "TERM", "TMPDIR", "TZ",      "USER"};
	struct aj_profile *p = load_ok(AJ_SRCDIR "/profiles/default.profile");
	size_t i;

	cr_assert_str_eq(p->hostname, "agentjail");
	cr_assert_str_eq(p->user, "nobody");
	cr_assert_eq(p->n_env_keep, AJ_ARRAY_SIZE(keep));
	for (i = 0; i < AJ_ARRAY_SIZE(keep); i++)
		cr_assert_str_eq(p->env_keep[i], keep[i]);
	cr_assert_eq(p->n_env_set, 0);
	cr_assert_eq(p->rlimits[AJ_RLIMIT_NOFILE].value, 4096);
	cr_assert_eq(p->rlimits[AJ_RLIMIT_NPROC].value, 4096);
	cr_assert(p->rlimits[AJ_RLIMIT_CORE].set);
	cr_assert_eq(p->rlimits[AJ_RLIMIT_CORE].value, 0);
	cr_assert(!p->rlimits[AJ_RLIMIT_AS].set);
	cr_assert_eq(p->tmpfs_size, 256ull << 20);
	cr_assert(!p->allow_unix_sockets);
	cr_assert_eq(p->optional_layers, 0);
	aj_profile_free(p);
}

Test(profile, shipped_offline_is_default_policy)
{
	struct aj_profile *d = load_ok(AJ_SRCDIR "/profiles/default.profile");
	struct aj_profile *o = load_ok(AJ_SRCDIR "/profiles/offline.profile");
	char hd[65], ho[65];

	cr_assert_eq(aj_profile_sha256(d, hd), 0);
	cr_assert_eq(aj_profile_sha256(o, ho), 0);
	cr_assert_str_eq(hd, ho);
	aj_profile_free(d);
	aj_profile_free(o);
}

/* METHOD URL under PROFILE's policy: allowed? */
static bool
allows(const struct aj_profile *p, const char *method, const char *url)
{
	struct aj_policy_decision d;
	struct aj_url u;
	char err[256];

	cr_assert_eq(aj_url_normalise(url, &u, err, sizeof(err)), 0, "%s: %s", url, err);
	aj_policy_judge(&p->fetch, aj_policy_method_bit(method), &u, &d);
	return d.allowed;
}

/* The tool profiles: the default's base, loopback sockets and the proxy,
 * and reads from their registries only. */
Test(profile, shipped_tool_profiles)
{
	static const struct {
		const char *name, *method, *url;
		bool allowed;
	} cases[] = {
		{"pip", "GET", "https://pypi.org/simple/requests/", true},
		{"pip", "GET", "https://files.pythonhosted.org/packages/ab/cd/x-1.0-py3-none-any.whl",
		 true},
		{"pip", "POST", "https://upload.pypi.org/legacy/", false},
		{"pip", "GET", "https://pypi.org/account/login/", false},
		{"npm", "GET", "https://registry.npmjs.org/left-pad", true},
		{"npm", "GET", "https://registry.npmjs.org/left-pad/-/left-pad-1.3.0.tgz", true},
		{"npm", "PUT", "https://registry.npmjs.org/left-pad", false},
		{"git", "GET", "https://github.com/git/git.git/info/refs?service=git-upload-pack", true},
		{"git", "POST", "https://github.com/git/git.git/git-upload-pack", true},
		{"git", "GET", "https://github.com/git/git.git/info/refs?service=git-receive-pack",
		 false},
		{"git", "POST", "https://github.com/git/git.git/git-receive-pack", false},
		{"git", "POST", "https://gitlab.com/a/b.git/git-upload-pack", true},
	};
	struct aj_profile *d = load_ok(AJ_SRCDIR "/profiles/default.profile");

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char path[4096];
		struct aj_profile *p;

		snprintf(path, sizeof(path), AJ_SRCDIR "/profiles/%s.profile", cases[i].name);
		p = load_ok(path);
		cr_expect_eq(p->proxy_port, 3128, "%s", cases[i].name);
		cr_expect(p->loopback_sockets, "%s", cases[i].name);
		cr_expect_str_eq(p->user, d->user);
		cr_expect_eq(p->tmpfs_size, d->tmpfs_size);
		cr_expect_eq(allows(p, cases[i].method, cases[i].url), cases[i].allowed, "%s: %s %s",
			     cases[i].name, cases[i].method, cases[i].url);
		aj_profile_free(p);
	}
	aj_profile_free(d);
}

Test(profile, free_and_accessors_accept_null)
{
	aj_profile_free(NULL);
	cr_assert_null(aj_profile_name(NULL));
	cr_assert_null(aj_profile_path(NULL));
}

/* Issue 9: `profile check` warns of a deny rule's query pattern that
 * other parameters escape. */
Test(profile, a_deny_query_pattern_others_escape_is_warned_of)
{
	struct aj_profile *p = parse_ok("fetch allow GET https://api.test/** query q=*\n"
					"fetch deny * https://api.test/** query **action=delete**\n"
					"fetch deny * https://api.test/** query action=delete\n"
					"fetch deny * https://api.test/** query none\n"
					"fetch deny * https://api.test/v2/** query *token=*\n");

	cr_assert_eq(p->n_warnings, 2);
	cr_assert_str_eq(
		p->warnings[0],
		"t.profile:3: warning: fetch deny: the query pattern 'action=delete' must "
		"match the whole query, so a request that adds a parameter before or after "
		"it is not denied (to deny it anywhere in the query: query "
		"**action=delete**)");
	cr_assert_str_eq(
		p->warnings[1],
		"t.profile:5: warning: fetch deny: the query pattern '*token=*' must match "
		"the whole query, so a request that adds a parameter before or after it is "
		"not denied (to deny it anywhere in the query: query **token=**)");
	aj_profile_free(p);
}

/* An inject that hands the secret to more than one origin's owner, or
 * sends it in clear, is warned of. */
Test(profile, a_risky_inject_is_warned_of)
{
	struct aj_profile *p = parse_ok(
		"fetch allow GET https://api.test/** inject k env:K\n"
		"fetch allow GET http://api.test/** inject k env:K\n"
		"fetch allow GET http://127.0.0.1:8080/** inject k env:K\n"
		"fetch allow GET https://*.s3.example/** inject k env:K\n");

	cr_assert_eq(p->n_warnings, 2);
	cr_assert_str_eq(p->warnings[0],
			 "t.profile:2: warning: fetch allow: inject k on an http:// rule sends the "
			 "secret in clear to whoever is on the path to api.test; use https");
	cr_assert_str_eq(p->warnings[1],
			 "t.profile:4: warning: fetch allow: inject k on *.s3.example gives the "
			 "secret to every host below s3.example, whoever runs it; name the host");
	aj_profile_free(p);
}
