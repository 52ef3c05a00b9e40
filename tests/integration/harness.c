/*
 * Integration-test harness (see harness.h).
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#ifndef AJ_BUILDDIR
#define AJ_BUILDDIR "."
#endif

const char *
aj_test_bin(const char *name)
{
	static char buf[8][4096];
	static int slot;
	char *p = buf[slot++ % 8];
	const char *dir = getenv("AJ_TEST_BUILDDIR");

	snprintf(p, sizeof(buf[0]), "%s/%s", dir ? dir : AJ_BUILDDIR, name);
	return p;
}

static void
append(char **buf, size_t *len, const char *data, size_t n)
{
	*buf = realloc(*buf, *len + n + 1);
	memcpy(*buf + *len, data, n);
	*len += n;
	(*buf)[*len] = '\0';
}

void
aj_test_exec(const char *const *argv, int keep_fd, struct aj_result *res)
{
	int out[2], err[2], st;
	size_t olen = 0, elen = 0;
	pid_t pid;

	res->out = calloc(1, 1);
	res->err = calloc(1, 1);
	if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0)
		abort();
	pid = fork();
	if (pid < 0)
		abort();
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDONLY);
		dup2(devnull, 0);
		dup2(out[1], 1);
		dup2(err[1], 2);
		if (keep_fd >= 0)
			fcntl(keep_fd, F_SETFD, 0);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(out[1]);
	close(err[1]);
	struct pollfd p[2] = {{.fd = out[0], .events = POLLIN}, {.fd = err[0], .events = POLLIN}};
	int open_fds = 2;
	while (open_fds > 0) {
		char buf[4096];
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			abort();
		}
		for (int i = 0; i < 2; i++) {
			if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP)))
				continue;
			ssize_t n = read(p[i].fd, buf, sizeof(buf));
			if (n <= 0) {
				close(p[i].fd);
				p[i].fd = -1;
				open_fds--;
			} else if (i == 0) {
				append(&res->out, &olen, buf, (size_t)n);
			} else {
				append(&res->err, &elen, buf, (size_t)n);
			}
		}
	}
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	res->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* `agentjail run`, then the N_FIRST arguments of FIRST, then those of AP
 * up to its NULL. */
static void
run_agentjail(struct aj_result *res, int keep_fd, const char *const *first, int n_first, va_list ap)
{
	const char *argv[64];
	int n = 0;

	argv[n++] = aj_test_bin("agentjail");
	argv[n++] = "run";
	for (int i = 0; i < n_first; i++)
		argv[n++] = first[i];
	for (const char *a; (a = va_arg(ap, const char *)) != NULL && n < 63;)
		argv[n++] = a;
	argv[n] = NULL;
	aj_test_exec(argv, keep_fd, res);
}

void
aj_test_run(struct aj_result *res, int keep_fd, ...)
{
	va_list ap;

	va_start(ap, keep_fd);
	run_agentjail(res, keep_fd, NULL, 0, ap);
	va_end(ap);
}

void
aj_test_jail(struct aj_result *res, const char *profile, ...)
{
	const char *first[] = {"--profile", profile, "--"};
	va_list ap;

	va_start(ap, profile);
	run_agentjail(res, -1, first, 3, ap);
	va_end(ap);
}

void
aj_test_jail_sh(struct aj_result *res, const char *profile, const char *audit, const char *events,
		const char *script)
{
	const char *argv[16];
	int n = 0;

	argv[n++] = aj_test_bin("agentjail");
	argv[n++] = "run";
	argv[n++] = "--profile";
	argv[n++] = profile;
	if (audit != NULL) {
		(void)truncate(audit, 0);
		argv[n++] = "--audit";
		argv[n++] = audit;
	}
	if (events != NULL) {
		(void)truncate(events, 0);
		argv[n++] = "--events";
		argv[n++] = events;
	}
	argv[n++] = "--";
	argv[n++] = "/bin/sh";
	argv[n++] = "-c";
	argv[n++] = script;
	argv[n] = NULL;
	setenv("AJ", aj_test_bin("agentjail"), 1);
	setenv("TRY", aj_test_bin("tests/integration/try"), 1);
	aj_test_exec(argv, -1, res);
}

void
aj_test_jail_sh_records(struct aj_result *res, const char *dir, const char *profile,
			const char *script)
{
	char audit[4096], events[4096];

	snprintf(audit, sizeof(audit), "%s/audit.jsonl", dir);
	snprintf(events, sizeof(events), "%s/events.jsonl", dir);
	aj_test_jail_sh(res, profile, audit, events, script);
}

void
aj_test_netlab(struct aj_result *res, const char *lab, const char *dir)
{
	const char *src = getenv("AJ_TEST_SRCDIR") ? getenv("AJ_TEST_SRCDIR") : AJ_SRCDIR;
	char script[4096], *resolv;

	resolv = aj_test_write_file(dir, "netlab-resolv.conf", "nameserver 127.0.0.1\n");
	snprintf(script, sizeof(script), "%s/tests/integration/servers/%s", src, lab);
	{
		const char *argv[] = {aj_test_bin("tests/integration/netlab"),
				      "--resolv",
				      resolv,
				      "--",
				      "/bin/sh",
				      script,
				      aj_test_bin("agentjail"),
				      dir,
				      NULL};
		aj_test_exec(argv, -1, res);
	}
	free(resolv);
}

void
aj_test_result_free(struct aj_result *res)
{
	free(res->out);
	free(res->err);
	res->out = res->err = NULL;
}

char *
aj_test_scratch(void)
{
	char *base = getenv("AJ_TEST_SCRATCH");
	char tmpl[4096];

	if (base == NULL)
		base = AJ_BUILDDIR "/tests/scratch";
	mkdir(base, 01777);
	chmod(base, 01777);
	snprintf(tmpl, sizeof(tmpl), "%s/t-XXXXXX", base);
	if (mkdtemp(tmpl) == NULL)
		abort();
	chmod(tmpl, 0755);
	return strdup(tmpl);
}

void
aj_test_rmrf(const char *path)
{
	const char *argv[] = {"/bin/rm", "-rf", "--", path, NULL};
	struct aj_result r;
	aj_test_exec(argv, -1, &r);
	aj_test_result_free(&r);
}

char *
aj_test_write_file(const char *dir, const char *name, const char *text)
{
	char *path;
	FILE *f;

	if (asprintf(&path, "%s/%s", dir, name) < 0)
		abort();
	f = fopen(path, "w");
	if (f == NULL)
		abort();
	fputs(text, f);
	fclose(f);
	return path;
}

char *
aj_test_vwrite_profile(const char *dir, const char *name, const char *base, const char *fmt,
		       va_list ap)
{
	char *body, *text, *path;

	if (vasprintf(&body, fmt, ap) < 0 || asprintf(&text, "%s%s", base, body) < 0)
		abort();
	path = aj_test_write_file(dir, name, text);
	free(body);
	free(text);
	return path;
}

char *
aj_test_slurp_fd(int fd)
{
	char *buf = NULL;
	size_t len = 0;
	ssize_t n;

	do {
		buf = realloc(buf, len + 65536 + 1);
		cr_assert_not_null(buf);
		n = read(fd, buf + len, 65536);
		if (n < 0 && errno == EINTR)
			continue;
		cr_assert_geq(n, 0, "read: %s", strerror(errno));
		len += (size_t)(n > 0 ? n : 0);
	} while (n != 0);
	buf[len] = '\0';
	return buf;
}

static char *
slurp_path(const char *path, bool missing_is_empty)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	char *text;

	if (fd < 0 && errno == ENOENT && missing_is_empty)
		return strdup("");
	cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
	text = aj_test_slurp_fd(fd);
	close(fd);
	return text;
}

char *
aj_test_slurp(const char *path)
{
	return slurp_path(path, false);
}

char *
aj_test_slurp_if_exists(const char *path)
{
	return slurp_path(path, true);
}

int
aj_test_procs_with_arg(const char *arg, pid_t *pids, int max)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	int n = 0;

	cr_assert_not_null(d, "/proc: %s", strerror(errno));
	while ((e = readdir(d)) != NULL) {
		char path[300], buf[4096];
		ssize_t len;
		size_t arg0;
		int fd;

		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/cmdline", e->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		len = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (len <= 0)
			continue;
		buf[len] = '\0';
		/* argv[0] NUL argv[1] NUL ... */
		arg0 = strlen(buf);
		if (arg0 + 1 >= (size_t)len || strcmp(buf + arg0 + 1, arg) != 0)
			continue;
		if (n < max)
			pids[n] = atoi(e->d_name);
		n++;
	}
	closedir(d);
	return n;
}

int
aj_test_broker_pid(const char *events, int ms)
{
	for (int waited = 0;; waited += 50) {
		char *text = aj_test_slurp_if_exists(events);
		const char *p = strstr(text, "\"broker\":");
		int pid = p != NULL ? atoi(p + 9) : 0;

		free(text);
		if (pid > 0 || waited >= ms)
			return pid;
		usleep(50000);
	}
}

bool
aj_test_has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = text; p && *p;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		if (len == n && strncmp(p, line, n) == 0)
			return true;
		p = nl ? nl + 1 : NULL;
	}
	return false;
}

static bool
is_sanitizer_line(const char *line, size_t len)
{
	static const char *const follow_ups[] = {
		"False positive error reports may follow",
		"For details see https://github.com/google/sanitizers/issues/189",
	};

	if (len >= 2 && line[0] == '=' && line[1] == '=')
		return true;
	for (size_t i = 0; i < sizeof(follow_ups) / sizeof(follow_ups[0]); i++)
		if (len == strlen(follow_ups[i]) && strncmp(line, follow_ups[i], len) == 0)
			return true;
	return false;
}

int
aj_test_count_own_lines(const char *text)
{
	int n = 0;

	for (const char *p = text; *p != '\0';) {
		const char *nl = strchrnul(p, '\n');
		if (!is_sanitizer_line(p, (size_t)(nl - p)))
			n++;
		p = *nl ? nl + 1 : nl;
	}
	return n;
}

json_t *
aj_test_json_lines(const char *dir, const char *name)
{
	char line[65536], path[4096];
	json_t *all = json_array();
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "re");

	cr_assert_not_null(f, "no %s", path);
	while (fgets(line, sizeof(line), f) != NULL) {
		json_error_t err;
		json_t *rec = json_loads(line, 0, &err);

		cr_assert_not_null(rec, "%s: not JSON: %s (%s)", path, line, err.text);
		json_array_append_new(all, rec);
	}
	fclose(f);
	return all;
}

const char *
aj_test_json_str(json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s ? s : "(none)";
}
