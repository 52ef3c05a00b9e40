/*
 * Test servers for the integration suite (see servers.h): spawning the
 * scripts, waiting for their ready files, stopping them, reading their logs.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "servers.h"

#ifndef AJ_SRCDIR
#define AJ_SRCDIR "."
#endif

#define SERVERS_WAIT_MS 10000
#define SERVERS_STOP_MS 5000
#define SERVERS_POLL_MS 10

extern char **environ;

static void
sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void
script_path(char *buf, size_t size, const char *name)
{
	const char *dir = getenv("AJ_TEST_SRCDIR");

	snprintf(buf, size, "%s/tests/integration/servers/%s", dir ? dir : AJ_SRCDIR, name);
}

static int
is_verbose(void)
{
	const char *v = getenv("AJ_TEST_VERBOSE");

	return v != NULL && *v != '\0';
}

/* Start ARGV[0] (looked up in PATH) with stdin from /dev/null and, unless
 * verbose, stdout to /dev/null and stderr to ERRPATH (or /dev/null).  The
 * child gets no fd of ours beyond 0-2, default signal dispositions and an
 * empty signal mask: whatever the test runner blocks or ignores, SIGTERM
 * must reach the server.  Returns the pid, or -1 with a message. */
static pid_t
servers_spawn(char *const *argv, const char *errpath)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t all, none;
	pid_t pid;
	int rc;

	sigfillset(&all);
	sigemptyset(&none);
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&attr);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	if (!is_verbose()) {
		posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
		posix_spawn_file_actions_addopen(&fa, 2, errpath ? errpath : "/dev/null",
						 O_WRONLY | O_CREAT | O_TRUNC, 0644);
	}
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	posix_spawnattr_setsigdefault(&attr, &all);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
	rc = posix_spawnp(&pid, argv[0], &fa, &attr, argv, environ);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0) {
		fprintf(stderr, "aj_server: cannot start %s: %s\n", argv[0], strerror(rc));
		return -1;
	}
	return pid;
}

/* Reap PID, waiting at most MS milliseconds (-1: no limit).  Returns its
 * wait status, -1 if it is still running, -2 if it is not our child
 * (already reaped, or SIGCHLD ignored). */
static int
servers_reap(pid_t pid, long ms)
{
	int st;

	for (long waited = 0;; waited += SERVERS_POLL_MS) {
		pid_t r = waitpid(pid, &st, ms < 0 ? 0 : WNOHANG);
		if (r == pid)
			return st;
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -2;
		if (waited >= ms)
			return -1;
		sleep_ms(SERVERS_POLL_MS);
	}
}

static void
describe_status(char *buf, size_t size, int st)
{
	if (st == -2)
		snprintf(buf, size, "vanished");
	else if (WIFEXITED(st))
		snprintf(buf, size, "exited with status %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(buf, size, "killed by signal %d", WTERMSIG(st));
	else
		snprintf(buf, size, "stopped");
}

/* Copy the server's error output, if it left any, to our stderr. */
static void
show_errors(const char *errpath)
{
	char line[1024];
	FILE *f = fopen(errpath, "re");

	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL)
		fprintf(stderr, "  | %s", line);
	fclose(f);
}

/* Read the port from READY, once the server has renamed it into place. */
static int
read_ready(const char *ready)
{
	FILE *f = fopen(ready, "re");
	int port = -1;

	if (f == NULL)
		return -1;
	if (fscanf(f, "%d", &port) != 1 || port <= 0 || port > 65535)
		port = -1;
	fclose(f);
	return port;
}

/* Start a server script, fill S and wait for its ready file.  ARGV has
 * the interpreter, script and options; the caller leaves room for
 * "--ready FILE --log FILE NULL" (5 slots) at index N. */
static int
servers_start(struct aj_server *s, const char *what, const char *addr, char **argv, int n,
	      const char *scratchdir)
{
	static unsigned seq;
	/* Room in s->log for the longest suffix. */
	char base[sizeof(s->log) - sizeof(".ready")], ready[512], errpath[512], why[64];
	pid_t pid;
	int st = -1;

	memset(s, 0, sizeof(*s));
	if (scratchdir == NULL)
		scratchdir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	if (snprintf(base, sizeof(base), "%s/%s-%ld-%u", scratchdir, what, (long)getpid(), ++seq) >=
	    (int)sizeof(base)) {
		fprintf(stderr, "aj_server: %s: scratch directory path too long\n", what);
		return -1;
	}
	snprintf(ready, sizeof(ready), "%s.ready", base);
	snprintf(errpath, sizeof(errpath), "%s.err", base);
	snprintf(s->log, sizeof(s->log), "%s.log", base);
	snprintf(s->addr, sizeof(s->addr), "%s", addr);
	unlink(ready);
	argv[n++] = "--ready";
	argv[n++] = ready;
	argv[n++] = "--log";
	argv[n++] = s->log;
	argv[n] = NULL;

	pid = servers_spawn(argv, errpath);
	if (pid < 0)
		return -1;
	for (long waited = 0; waited < SERVERS_WAIT_MS; waited += SERVERS_POLL_MS) {
		s->port = read_ready(ready);
		if (s->port > 0) {
			s->pid = pid;
			return 0;
		}
		st = servers_reap(pid, 0);
		if (st != -1)
			break;
		sleep_ms(SERVERS_POLL_MS);
	}
	if (st == -1) {
		kill(pid, SIGKILL);
		servers_reap(pid, -1);
		snprintf(why, sizeof(why), "not ready after %d s", SERVERS_WAIT_MS / 1000);
	} else {
		describe_status(why, sizeof(why), st);
	}
	fprintf(stderr, "aj_server: %s on %s: %s\n", what, addr, why);
	show_errors(errpath);
	s->port = 0;
	return -1;
}

int
aj_server_start_http(struct aj_server *s, const char *addr, const char *certdir,
		     const char *scratchdir)
{
	return aj_server_start_files(s, addr, certdir, NULL, scratchdir);
}

int
aj_server_start_files(struct aj_server *s, const char *addr, const char *certdir,
		      const char *root, const char *scratchdir)
{
	char script[4096], cert[4096], key[4096];
	char *argv[16];
	int n = 0;

	script_path(script, sizeof(script), "httpd.py");
	argv[n++] = "python3";
	argv[n++] = "-B";
	argv[n++] = script;
	argv[n++] = "--bind";
	argv[n++] = (char *)addr;
	if (certdir != NULL) {
		snprintf(cert, sizeof(cert), "%s/server.pem", certdir);
		snprintf(key, sizeof(key), "%s/server.key", certdir);
		argv[n++] = "--tls";
		argv[n++] = cert;
		argv[n++] = key;
	}
	if (root != NULL) {
		argv[n++] = "--root";
		argv[n++] = (char *)root;
	}
	if (servers_start(s, "httpd", addr, argv, n, scratchdir) < 0)
		return -1;
	snprintf(s->url, sizeof(s->url), strchr(addr, ':') ? "%s://[%s]:%d" : "%s://%s:%d",
		 certdir ? "https" : "http", addr, s->port);
	return 0;
}

int
aj_server_start_dns(struct aj_server *s, const char *addr, int port, const char *const *zones,
		    const char *scratchdir)
{
	char script[4096], portstr[16];
	char **argv;
	size_t nzones = 0;
	int n = 0, rc;

	while (zones != NULL && zones[nzones] != NULL)
		nzones++;
	argv = calloc(2 * nzones + 16, sizeof(*argv));
	if (argv == NULL) {
		fprintf(stderr, "aj_server: dnsd: out of memory\n");
		return -1;
	}
	script_path(script, sizeof(script), "dnsd.py");
	snprintf(portstr, sizeof(portstr), "%d", port);
	argv[n++] = "python3";
	argv[n++] = "-B";
	argv[n++] = script;
	argv[n++] = "--bind";
	argv[n++] = (char *)addr;
	argv[n++] = "--port";
	argv[n++] = portstr;
	for (size_t i = 0; i < nzones; i++) {
		argv[n++] = "--zone";
		argv[n++] = (char *)zones[i];
	}
	rc = servers_start(s, "dnsd", addr, argv, n, scratchdir);
	free(argv);
	return rc;
}

void
aj_server_stop(struct aj_server *s)
{
	if (s == NULL || s->pid <= 0)
		return;
	kill(s->pid, SIGTERM);
	if (servers_reap(s->pid, SERVERS_STOP_MS) == -1) {
		kill(s->pid, SIGKILL);
		servers_reap(s->pid, -1);
	}
	s->pid = 0;
}

int
aj_make_ca(const char *dir, const char *const *hosts)
{
	posix_spawn_file_actions_t fa;
	char script[4096], why[64];
	char **argv;
	size_t nhosts = 0;
	pid_t pid;
	int n = 0, rc, st;

	while (hosts != NULL && hosts[nhosts] != NULL)
		nhosts++;
	argv = calloc(nhosts + 4, sizeof(*argv));
	if (argv == NULL) {
		fprintf(stderr, "aj_make_ca: out of memory\n");
		return -1;
	}
	script_path(script, sizeof(script), "mkca");
	argv[n++] = "/bin/sh";
	argv[n++] = script;
	argv[n++] = (char *)dir;
	for (size_t i = 0; i < nhosts; i++)
		argv[n++] = (char *)hosts[i];

	/* mkca is quiet unless it fails: its stderr is ours. */
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	if (!is_verbose())
		posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	free(argv);
	if (rc != 0) {
		fprintf(stderr, "aj_make_ca: cannot run %s: %s\n", script, strerror(rc));
		return -1;
	}
	st = servers_reap(pid, -1);
	if (st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	describe_status(why, sizeof(why), st);
	fprintf(stderr, "aj_make_ca: %s %s\n", script, why);
	return -1;
}

int
aj_server_log_count(const struct aj_server *s, const char *needle)
{
	char *line = NULL;
	size_t cap = 0;
	int count = 0;
	FILE *f;

	if (s->log[0] == '\0')
		return -1;
	f = fopen(s->log, "re");
	if (f == NULL)
		return errno == ENOENT ? 0 : -1;
	while (getline(&line, &cap, f) >= 0)
		if (strstr(line, needle) != NULL)
			count++;
	free(line);
	fclose(f);
	return count;
}
