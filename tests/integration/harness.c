/*
 * Integration-test harness (see harness.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
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

void
aj_test_jail(struct aj_result *res, const char *profile, ...)
{
	const char *argv[64];
	int n = 0;
	va_list ap;

	argv[n++] = aj_test_bin("agentjail");
	argv[n++] = "run";
	argv[n++] = "--profile";
	argv[n++] = profile;
	argv[n++] = "--";
	va_start(ap, profile);
	for (const char *a; (a = va_arg(ap, const char *)) != NULL && n < 63;)
		argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;
	aj_test_exec(argv, -1, res);
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
