/*
 * Integration tests: `tunnel` rules and `agentjail connect` (raw TCP
 * through the proxy, docs/PROFILES.md#tunnel).
 *
 * Real jails, and real servers the test starts on the host's 127.0.0.1: a
 * TCP server of its own (a banner, then every byte echoed until the
 * client's end of stream, then "END": so the client's half-close must
 * arrive, and the answer after it must still come back), and for the
 * acceptance test an sshd with a configuration, a host key and an
 * authorized key made here, which `git clone` reaches over ssh with
 * `ProxyCommand=agentjail connect %h:%p`.
 *
 * Suite: tunnel.
 */
#include "config.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static char *scratch;
static pid_t echo_pid;
static int echo_port;
static char accepts[4096]; /* one line per connection the echo server took */

#define BANNER "hello from the host\n"

/* The echo server's one connection at a time: the banner, every byte
 * back, and "END" once the client ended its stream. */
static void
echo_serve(int fd)
{
	char buf[65536];
	ssize_t n;
	int log = open(accepts, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);

	if (log >= 0) {
		(void)!write(log, "accept\n", 7);
		close(log);
	}
	(void)!write(fd, BANNER, strlen(BANNER));
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(fd, buf + off, (size_t)(n - off));

			if (w <= 0)
				return;
			off += w;
		}
	(void)!write(fd, "END\n", 4);
	shutdown(fd, SHUT_WR);
}

static void
start_echo(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(s, 0);
	cr_assert_eq(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(listen(s, 16), 0);
	cr_assert_eq(getsockname(s, (struct sockaddr *)&sa, &len), 0);
	echo_port = ntohs(sa.sin_port);
	echo_pid = fork();
	cr_assert_geq(echo_pid, 0);
	if (echo_pid == 0) {
		for (;;) {
			int c = accept(s, NULL, NULL);

			if (c < 0)
				continue;
			echo_serve(c);
			close(c);
		}
	}
	close(s);
}

static void
setup(void)
{
	scratch = aj_test_scratch();
	/* The jail's user writes results here; sticky, so that the profiles
	 * in it stay trusted. */
	chmod(scratch, 01777);
	snprintf(accepts, sizeof(accepts), "%s/accepts", scratch);
	start_echo();
}

static void
teardown(void)
{
	if (echo_pid > 0) {
		kill(echo_pid, SIGKILL);
		waitpid(echo_pid, NULL, 0);
	}
	aj_test_rmrf(scratch);
	free(scratch);
}

TestSuite(tunnel, .init = setup, .fini = teardown, .timeout = 120);

/* Every profile starts with these 4 lines (the test's own from line 5). */
#define BASE "env keep PATH AJ S\nenv set ASAN_OPTIONS=detect_leaks=0\nsocket inet loopback\n"

static char *
write_profile(const char *fmt, ...)
{
	char body[4096], text[4400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(body, sizeof(body), fmt, ap);
	va_end(ap);
	snprintf(text, sizeof(text), "%s%s%s", BASE, strstr(body, "proxy ") ? "" : "proxy on\n",
		 body);
	return aj_test_write_file(scratch, "tunnel.profile", text);
}

/* SCRIPT (sh) in a jail with PROFILE; $S is the scratch directory.  The
 * audit goes to scratch/audit.jsonl, the events to scratch/events.jsonl. */
static void
in_jail(struct aj_result *res, const char *profile, const char *script)
{
	setenv("S", scratch, 1);
	aj_test_jail_sh_records(res, scratch, profile, script);
}

#define SHOW(r) "status %d\n--- out:\n%s\n--- err:\n%s", (r).status, (r).out, (r).err
#define str aj_test_json_str

static long long
num(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	cr_assert(json_is_integer(v), "no integer %s", key);
	return json_integer_value(v);
}

/* The only audit record of the last run (a tunnel's). */
static json_t *
the_record(void)
{
	json_t *recs = aj_test_json_lines(scratch, "audit.jsonl"), *rec;

	cr_assert_eq(json_array_size(recs), 1, "%zu audit records", json_array_size(recs));
	rec = json_incref(json_array_get(recs, 0));
	json_decref(recs);
	cr_assert_str_eq(str(rec, "kind"), "tunnel");
	cr_assert_str_eq(str(rec, "method"), "CONNECT");
	cr_assert_str_eq(str(rec, "via"), "proxy");
	return rec;
}

/* Connections the echo server took so far. */
static int
echo_accepts(void)
{
	char *text = aj_test_slurp_if_exists(accepts);
	int n = 0;

	for (char *p = text; (p = strstr(p, "accept\n")) != NULL; p++)
		n++;
	free(text);
	return n;
}

/* ---- relaying ---------------------------------------------------------------------- */

/* 300 KB each way (past every buffer on the way), the server's banner
 * before the client sends anything, and the answer the server gives only
 * after the client's end of stream: the half-close went through, and
 * the other direction stayed open after it. */
Test(tunnel, bytes_both_ways_and_the_half_close)
{
	char *prof = write_profile("tunnel allow 127.0.0.1:%d\n", echo_port);
	char script[1024], target[64];
	struct aj_result r;
	json_t *rec, *events;
	size_t i;
	bool seen = false;

	snprintf(target, sizeof(target), "127.0.0.1:%d", echo_port);
	snprintf(script, sizeof(script),
		 "head -c 300000 /dev/urandom > \"$S/in\" && "
		 "\"$AJ\" connect %s < \"$S/in\" > \"$S/out\" && "
		 "{ printf '%%s' '" BANNER "'; cat \"$S/in\"; echo END; } > \"$S/want\" && "
		 "cmp \"$S/want\" \"$S/out\" && echo same",
		 target);
	in_jail(&r, prof, script);
	cr_assert_eq(r.status, 0, SHOW(r));
	cr_assert(aj_test_has_line(r.out, "same"), SHOW(r));
	rec = the_record();
	cr_assert_str_eq(str(rec, "url"), target);
	cr_assert_str_eq(str(rec, "decision"), "allowed");
	snprintf(script, sizeof(script), "%s:5", prof);
	cr_assert_str_eq(str(rec, "rule"), script);
	cr_assert_str_eq(str(rec, "address"), "127.0.0.1");
	cr_assert_eq(num(rec, "status"), 200);
	cr_assert_eq(num(rec, "bytes_in"), 300000);
	cr_assert_eq(num(rec, "bytes_out"), 300000 + (long long)strlen(BANNER) + 4);
	cr_assert_geq(num(rec, "duration_ms"), 0);
	cr_assert_null(json_object_get(rec, "error"));
	json_decref(rec);
	/* The event stream has it as a `tunnel` event. */
	events = aj_test_json_lines(scratch, "events.jsonl");
	for (i = 0; i < json_array_size(events); i++) {
		json_t *e = json_array_get(events, i);

		if (strcmp(str(e, "type"), "tunnel") == 0) {
			cr_assert_str_eq(str(e, "url"), target);
			cr_assert_null(json_object_get(e, "kind"));
			seen = true;
		}
	}
	cr_assert(seen, "no tunnel event");
	json_decref(events);
	aj_test_result_free(&r);
	free(prof);
}

/* ---- refusals ---------------------------------------------------------------------- */

Test(tunnel, a_denied_tunnel_is_refused_named_and_audited)
{
	char *prof = write_profile("tunnel allow 127.0.0.1:%d\ntunnel deny 127.0.0.1:%d\n",
				   echo_port, echo_port);
	char script[512], want[256];
	struct aj_result r;
	json_t *rec;

	snprintf(script, sizeof(script), "\"$AJ\" connect 127.0.0.1:%d < /dev/null", echo_port);
	in_jail(&r, prof, script);
	cr_assert_eq(r.status, 3, SHOW(r));
	snprintf(want, sizeof(want), "403 denied (rule %s:6)", prof);
	cr_assert_not_null(strstr(r.err, want), SHOW(r));
	cr_assert_not_null(strstr(r.err, "a tunnel rule denies it"), SHOW(r));
	rec = the_record();
	cr_assert_str_eq(str(rec, "decision"), "denied");
	cr_assert_eq(num(rec, "status"), 403);
	cr_assert_str_eq(str(rec, "error"), "denied");
	snprintf(want, sizeof(want), "%s:6", prof);
	cr_assert_str_eq(str(rec, "rule"), want);
	json_decref(rec);
	cr_assert_eq(echo_accepts(), 0, "the server saw a connection");
	aj_test_result_free(&r);
	free(prof);
}

/* No rule for that port: `agentjail connect` asks for a raw tunnel only,
 * so it is denied by default rather than intercepted. */
Test(tunnel, another_port_is_denied_by_default)
{
	char *prof = write_profile("tunnel allow 127.0.0.1:%d\n", echo_port);
	char script[512];
	struct aj_result r;
	json_t *rec;

	snprintf(script, sizeof(script), "\"$AJ\" connect 127.0.0.1:%d < /dev/null",
		 echo_port == 65535 ? 65534 : echo_port + 1);
	in_jail(&r, prof, script);
	cr_assert_eq(r.status, 3, SHOW(r));
	cr_assert_not_null(strstr(r.err, "403 denied (rule default deny)"), SHOW(r));
	cr_assert_not_null(strstr(r.err, "no tunnel rule allows this host and port"), SHOW(r));
	rec = the_record();
	cr_assert_str_eq(str(rec, "decision"), "denied");
	cr_assert_str_eq(str(rec, "rule"), "default deny");
	json_decref(rec);
	aj_test_result_free(&r);
	free(prof);
}

/* A name the rule allows still resolves and is checked as a fetch's
 * would be: localhost is loopback, refused unless the profile names the
 * address; the server never sees the refused attempt. */
Test(tunnel, the_address_checks_still_apply)
{
	char *prof = write_profile("tunnel allow localhost:%d\n", echo_port);
	char script[512];
	struct aj_result r;
	json_t *rec;

	snprintf(script, sizeof(script), "\"$AJ\" connect localhost:%d < /dev/null", echo_port);
	in_jail(&r, prof, script);
	cr_assert_eq(r.status, 3, SHOW(r));
	cr_assert_not_null(strstr(r.err, "403 denied (rule address check)"), SHOW(r));
	cr_assert_not_null(strstr(r.err, "loopback: refused"), SHOW(r));
	rec = the_record();
	cr_assert_str_eq(str(rec, "decision"), "denied");
	cr_assert_str_eq(str(rec, "rule"), "address check");
	json_decref(rec);
	cr_assert_eq(echo_accepts(), 0, "the server saw a connection");
	aj_test_result_free(&r);
	free(prof);

	/* Named, the same tunnel goes through. */
	prof = write_profile("tunnel allow localhost:%d\nfetch address allow 127.0.0.1\n"
			     "fetch address allow ::1\n",
			     echo_port);
	in_jail(&r, prof, script);
	cr_assert_eq(r.status, 0, SHOW(r));
	cr_assert_str_eq(r.out, BANNER "END\n", SHOW(r));
	cr_assert_eq(echo_accepts(), 1);
	aj_test_result_free(&r);
	free(prof);
}

/* A tunnel that carries nothing for its rule's idle time is closed, and
 * its record says so. */
Test(tunnel, an_idle_tunnel_is_closed)
{
	char *prof = write_profile("tunnel allow 127.0.0.1:%d idle 500ms\n", echo_port);
	char script[512];
	struct aj_result r;
	json_t *rec;

	snprintf(script, sizeof(script), "sleep 5 | \"$AJ\" connect 127.0.0.1:%d; echo rc=$?",
		 echo_port);
	in_jail(&r, prof, script);
	cr_assert_eq(r.status, 0, SHOW(r));
	cr_assert_not_null(strstr(r.out, BANNER), SHOW(r));
	rec = the_record();
	cr_assert_str_eq(str(rec, "decision"), "allowed");
	cr_assert_str_eq(str(rec, "error"), "timeout");
	cr_assert_geq(num(rec, "duration_ms"), 450);
	cr_assert_lt(num(rec, "duration_ms"), 4000);
	json_decref(rec);
	aj_test_result_free(&r);
	free(prof);
}

Test(tunnel, connect_without_a_proxy_says_so)
{
	char *prof = write_profile("proxy off\n");
	struct aj_result r;

	in_jail(&r, prof, "\"$AJ\" connect git.example.org:22 < /dev/null");
	cr_assert_eq(r.status, 6, SHOW(r));
	cr_assert_not_null(strstr(r.err, "agentjail connect: no proxy in this jail"), SHOW(r));
	aj_test_result_free(&r);
	free(prof);
}

/* ---- the acceptance test: git over ssh --------------------------------------------- */

/* Run the shell command FMT (formatted) on the host; its status. */
static int
host_sh(const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

static int
free_port(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port;

	cr_assert_eq(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(getsockname(s, (struct sockaddr *)&sa, &len), 0);
	port = ntohs(sa.sin_port);
	close(s);
	return port;
}

/* Whether something listens on 127.0.0.1:PORT. */
static bool
listening(int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				 .sin_port = htons((uint16_t)port)};
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok = connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0;

	close(s);
	return ok;
}

/* sshd on 127.0.0.1:PORT with DIR/sshd_config, its output in DIR/sshd.log;
 * its pid, or 0 with WHY when it does not come up. */
static pid_t
start_sshd(const char *dir, int port, char *why, size_t whylen)
{
	char config[4200], log[4200], port_s[16];
	pid_t pid;

	snprintf(config, sizeof(config), "%s/sshd_config", dir);
	snprintf(log, sizeof(log), "%s/sshd.log", dir);
	snprintf(port_s, sizeof(port_s), "%d", port);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execl("/usr/sbin/sshd", "/usr/sbin/sshd", "-D", "-e", "-f", config, "-p", port_s,
		      (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 200; i++) {
		int st;

		if (listening(port))
			return pid;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			char *text = aj_test_slurp_if_exists(log);

			snprintf(why, whylen, "sshd exited at start: %.300s", text);
			free(text);
			return 0;
		}
		usleep(50000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	snprintf(why, whylen, "sshd did not listen within 10 s");
	return 0;
}

Test(tunnel, git_clones_over_ssh_through_agentjail_connect)
{
	struct passwd *pw = getpwuid(geteuid());
	char dir[2048], why[2600] = "", script[8192], user[64];
	char *prof, *log;
	int port = free_port();
	struct aj_result r;
	struct stat st;
	pid_t sshd;
	json_t *rec;

	if (access("/usr/sbin/sshd", X_OK) != 0 || access("/usr/bin/ssh", X_OK) != 0 ||
	    access("/usr/bin/ssh-keygen", X_OK) != 0) {
		teardown(); /* (a skipped test's .fini does not run) */
		cr_skip_test("openssh-server and openssh-client are not installed (scripts/setup)");
	}
	cr_assert_not_null(pw);
	snprintf(user, sizeof(user), "%s", pw->pw_name);
	/* sshd started by root wants its privilege separation directory
	 * (made at boot on a system that runs sshd; empty, root's). */
	if (geteuid() == 0 && stat("/run/sshd", &st) != 0)
		(void)mkdir("/run/sshd", 0755);
	snprintf(dir, sizeof(dir), "%s/ssh", scratch);
	cr_assert_eq(mkdir(dir, 0755), 0);
	/* Keys, the server's configuration (only this user, only this key),
	 * the client's known host, and a repository with one commit.  The
	 * client key is readable by the jail's user, which copies it into its
	 * own home (ssh wants a key of its own, readable by nobody else). */
	cr_assert_eq(
		host_sh("cd '%s' && ssh-keygen -q -t ed25519 -N '' -f hostkey && "
			"ssh-keygen -q -t ed25519 -N '' -f id && cp id.pub authorized_keys && "
			"printf '[127.0.0.1]:%d ' > known_hosts && cat hostkey.pub >> known_hosts",
			dir, port),
		0);
	cr_assert_eq(host_sh("cat > '%s/sshd_config' <<'EOF'\n"
			     "ListenAddress 127.0.0.1\n"
			     "HostKey %s/hostkey\n"
			     "AuthorizedKeysFile %s/authorized_keys\n"
			     "AllowUsers %s\n"
			     "PubkeyAuthentication yes\n"
			     "PasswordAuthentication no\n"
			     "KbdInteractiveAuthentication no\n"
			     "PermitRootLogin prohibit-password\n"
			     "UsePAM no\n"
			     "StrictModes no\n"
			     "PidFile none\n"
			     "EOF",
			     dir, dir, dir, user),
		     0);
	cr_assert_eq(
		host_sh("cd '%s' && git init -q --bare repo.git && git init -q work && "
			"cd work && echo 'cloned through the tunnel' > README && git add README "
			"&& git -c user.email=t@example.org -c user.name=t commit -q -m one && "
			"git push -q ../repo.git HEAD:refs/heads/main && "
			"git --git-dir=../repo.git symbolic-ref HEAD refs/heads/main && "
			"chmod -R a+rX '%s' && chmod 0600 '%s/hostkey'",
			dir, dir, dir),
		0);
	sshd = start_sshd(dir, port, why, sizeof(why));
	if (sshd == 0) {
		teardown();
		cr_skip_test("sshd cannot run here as %s: %s", user, why);
	}

	prof = write_profile("tunnel allow 127.0.0.1:%d\n", port);
	snprintf(script, sizeof(script),
		 "cd \"$(mktemp -d)\" && export HOME=\"$PWD\" && "
		 "cp '%s/id' \"$HOME/id\" && chmod 0600 \"$HOME/id\" && "
		 "export GIT_SSH_COMMAND=\"ssh -F none -o BatchMode=yes -o IdentitiesOnly=yes "
		 "-i $HOME/id -o UserKnownHostsFile='%s/known_hosts' -o StrictHostKeyChecking=yes "
		 "-o ProxyCommand='$AJ connect %%h:%%p'\" && "
		 "git clone -q 'ssh://%s@127.0.0.1:%d%s/repo.git' clone && cat clone/README",
		 dir, dir, user, port, dir);
	in_jail(&r, prof, script);
	kill(sshd, SIGTERM);
	waitpid(sshd, NULL, 0);
	log = aj_test_slurp_if_exists((snprintf(why, sizeof(why), "%s/sshd.log", dir), why));
	cr_assert_eq(r.status, 0, "status %d\n--- out:\n%s\n--- err:\n%s\n--- sshd:\n%s", r.status,
		     r.out, r.err, log);
	cr_assert_str_eq(r.out, "cloned through the tunnel\n", SHOW(r));
	cr_assert_not_null(strstr(log, "Accepted publickey for"), "%s", log);
	rec = the_record();
	cr_assert_str_eq(str(rec, "decision"), "allowed");
	cr_assert_gt(num(rec, "bytes_in"), 0);
	cr_assert_gt(num(rec, "bytes_out"), 0);
	json_decref(rec);
	free(log);
	aj_test_result_free(&r);
	free(prof);
}
