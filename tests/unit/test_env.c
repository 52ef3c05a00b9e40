/*
 * Unit tests for the agent's environment (supervisor/env.c) and the fd
 * layout the agent inherits (supervisor/fds.c).
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

#include "internal.h"

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
	char *in[] = {"PATH=/bin", "HOME=/h", "AWS_SECRET_ACCESS_KEY=s3cr3t", "SSH_AUTH_SOCK=/run/x",
	              "PATHX=no", NULL};
	char **out = NULL;

	cr_assert_eq(aj_env_build(p, in, 3, &out), 0);
	cr_assert_str_eq(find(out, "PATH"), "/bin");
	cr_assert_str_eq(find(out, "HOME"), "/h");
	cr_assert_null(find(out, "AWS_SECRET_ACCESS_KEY"));
	cr_assert_null(find(out, "SSH_AUTH_SOCK"));
	cr_assert_null(find(out, "PATHX"), "a prefix match must not keep a variable");
	cr_assert_str_eq(find(out, "AGENTJAIL_FD"), "3");
	cr_assert_str_eq(find(out, "AGENTJAIL"), "1");
	cr_assert_eq(count(out), 4);
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
	cr_assert_eq(count(out), 4, "LANG must appear once");
	aj_env_free(out);
	aj_profile_free(p);
}

Test(env, callers_agentjail_variables_never_leak)
{
	struct aj_profile *p = profile_from("env keep PATH\n");
	char *in[] = {"AGENTJAIL_FD=9", "AGENTJAIL=0", "PATH=/bin", NULL};
	char **out = NULL;

	cr_assert_eq(aj_env_build(p, in, 3, &out), 0);
	cr_assert_str_eq(find(out, "AGENTJAIL_FD"), "3");
	cr_assert_str_eq(find(out, "AGENTJAIL"), "1");
	cr_assert_eq(count(out), 3);
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
	cr_assert_eq(count(out), 2);
	aj_env_free(out);
	cr_assert_eq(aj_env_build(p, NULL, 3, &out), 0);
	cr_assert_eq(count(out), 2);
	aj_env_free(out);
	aj_env_free(NULL);
	aj_profile_free(p);
}

/* Run aj_fds_prepare_agent in a child with BROKER and SYNC at the given
 * numbers plus a leaked fd; the child reports which fds survive. */
static void
check_fd_layout(int broker_at, int sync_at)
{
	pid_t pid = fork();
	int st;

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int sv[2], leak, sync_fd;
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
			_exit(10);
		/* Park both ends high first, so placing one cannot clobber
		 * the other. */
		int hi0 = fcntl(sv[0], F_DUPFD_CLOEXEC, 50), hi1 = fcntl(sv[1], F_DUPFD_CLOEXEC, 50);
		close(sv[0]);
		close(sv[1]);
		if (hi0 < 0 || hi1 < 0 || dup3(hi0, broker_at, O_CLOEXEC) < 0 ||
		    dup3(hi1, sync_at, O_CLOEXEC) < 0)
			_exit(11);
		close(hi0);
		close(hi1);
		leak = open("/dev/null", O_RDONLY); /* not close-on-exec: leaked */
		if (leak < 0 || leak == broker_at || leak == sync_at)
			leak = fcntl(0, F_DUPFD, 40);
		sync_fd = sync_at;
		if (aj_fds_prepare_agent(broker_at, &sync_fd) < 0)
			_exit(12);
		if (sync_fd != AJ_BROKER_FD + 1)
			_exit(13);
		if (fcntl(AJ_BROKER_FD, F_GETFD) != 0)
			_exit(14); /* broker fd must survive exec */
		if (fcntl(AJ_BROKER_FD + 1, F_GETFD) != FD_CLOEXEC)
			_exit(15); /* the setup channel must close on exec */
		if (fcntl(leak, F_GETFD) >= 0 || errno != EBADF)
			_exit(16);
		for (int fd = AJ_BROKER_FD + 2; fd < 64; fd++)
			if (fcntl(fd, F_GETFD) >= 0)
				_exit(17);
		_exit(0);
	}
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st));
	cr_assert_eq(WEXITSTATUS(st), 0, "layout broker=%d sync=%d failed at check %d", broker_at,
	             sync_at, WEXITSTATUS(st));
}

Test(fds, broker_and_sync_anywhere)
{
	check_fd_layout(9, 10);
	check_fd_layout(3, 4);
	check_fd_layout(4, 3);
	check_fd_layout(4, 9);
	check_fd_layout(3, 20);
	check_fd_layout(20, 3);
}
