/*
 * The `agentjail` command: a thin front over libagentjail.  It parses the
 * command line, loads the profile, and maps library results to exit
 * statuses (README.md, "Exit codes").
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "supervisor.h"

static const char usage_text[] =
	"usage: agentjail run [--profile NAME|PATH] [--timeout SECONDS] "
	"[--events FILE|fd:N|-]\n"
	"                     [--audit FILE|fd:N|-] [--quiet] [--no-pty] -- CMD [ARGS...]\n"
	"       agentjail profile check NAME|PATH\n"
	"       agentjail profile show NAME|PATH [--json]\n"
	"       agentjail doctor [--json]\n"
	"       agentjail fetch [-X METHOD] [-H 'Name: value']... [-o FILE] [-i]\n"
	"                       [-d DATA | --data-binary DATA|@FILE] URL\n"
	"       agentjail connect HOST:PORT\n"
	"       agentjail --help | --version\n";

static const char help_text[] =
	"\n"
	"Run CMD in a jail with no network of its own: new user, network, mount, pid,\n"
	"ipc, uts and cgroup namespaces; only `lo`; every capability dropped;\n"
	"no_new_privs; a default-deny seccomp filter.  The agent's one way out is\n"
	"the broker socket whose fd number is in $AGENTJAIL_FD.\n"
	"\n"
	"run options:\n"
	"  -p, --profile NAME|PATH  the policy (default: \"default\"); NAME is searched in\n"
	"                           $XDG_CONFIG_HOME/agentjail/profiles,\n"
	"                           /etc/agentjail/profiles, then " AJ_PROFILEDIR ";\n"
	"                           a file in this directory is ./NAME.profile\n"
	"  -t, --timeout SECONDS    kill the jail after SECONDS (exit status 124)\n"
	"  -e, --events FILE|fd:N|- write the event stream (JSON lines: start, violation,\n"
	"                           fetch, broker_exit, exit) to FILE (appended), fd N or\n"
	"                           stdout\n"
	"  -a, --audit FILE|fd:N|-  write the broker's audit records (one JSON line per\n"
	"                           request) to FILE (appended), fd N or stdout\n"
	"  -q, --quiet              no notices on stderr, no violation summary\n"
	"      --no-pty             share the caller's terminal instead of giving CMD a\n"
	"                           pseudo-terminal of its own (the default when stdin,\n"
	"                           stdout or stderr is a terminal: CMD gets job control,\n"
	"                           /dev/tty and resizes, and cannot change the caller's\n"
	"                           terminal; ^Z stops the whole jail, fg continues it)\n"
	"\n"
	"profile check   validate a profile; errors are printed as file:line: message\n"
	"profile show    print the resolved policy and its sha256 (--json for JSON)\n"
	"doctor          report which isolation layers this kernel and caller can apply\n"
	"fetch           (inside a jail) ask the broker for URL; the body goes to stdout\n"
	"                or FILE, after the status line and headers with -i.  -d DATA\n"
	"                sends DATA as a form, --data-binary DATA|@FILE|@- as is; both\n"
	"                imply POST.  Exit: 0 2xx, 22 4xx/5xx, 10 other HTTP status,\n"
	"                1 local error, 3 denied, 4 timeout, 5 too large, 6 broker\n"
	"                unavailable, 7 upstream error, 8 bad request, 9 rate limited\n"
	"connect         (inside a jail with `proxy on`) relay stdin and stdout through a\n"
	"                raw tunnel to HOST:PORT, which a `tunnel allow` rule must allow:\n"
	"                ssh -o ProxyCommand='agentjail connect %h:%p' ...  Exit: 0 when\n"
	"                the tunnel closed, the fetch's statuses when it was refused\n"
	"                (3 denied, 4 timeout, 6 no proxy, 7 upstream, 9 too many)\n"
	"\n"
	"Exit status: CMD's own status; 128+N if CMD was killed by signal N; 123 killed\n"
	"for a violation (on-violation kill); 124 timeout;\n"
	"125 agentjail failed before CMD started; 126 CMD cannot be executed; 127 CMD\n"
	"not found; 2 usage error.  See agentjail(1).\n";

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int
usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "agentjail: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n%s", usage_text);
	return AJ_EXIT_USAGE;
}

static int
parse_timeout(const char *s, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !isfinite(v) || v <= 0 || v > 1e9)
		return -EINVAL;
	*out = v;
	return 0;
}

/* Library messages can quote profile text and paths, which someone else
 * may have written: escape them before they reach a terminal. */
static void
print_error(const char *msg)
{
	char safe[4096];

	aj_log_escape(msg, safe, sizeof(safe));
	fprintf(stderr, "agentjail: %s\n", safe);
}

/* A build that is not installed has no AJ_PROFILEDIR: its own profiles are
 * in the source tree, which is not searched (the search path holds no
 * directory that an agent could write to), so the message says how to name
 * one there. */
static int
load_profile(const char *name, struct aj_profile **out)
{
	char err[1024], msg[2048], *shipped = NULL;
	int r = aj_profile_load(name, out, err, sizeof(err));

	if (r == 0)
		return 0;
	if (r == -ENOENT && strchr(name, '/') == NULL && access(AJ_PROFILEDIR, F_OK) != 0 &&
	    asprintf(&shipped, "%s/%s.profile", AJ_SRCPROFILEDIR, name) < 0)
		shipped = NULL;
	if (shipped != NULL && access(shipped, R_OK) == 0) {
		snprintf(msg, sizeof(msg),
			 "%s; this agentjail is not installed (there is no %s), so the profiles "
			 "of its source tree are not searched: give the path, %s",
			 err, AJ_PROFILEDIR, shipped);
		print_error(msg);
	} else {
		print_error(err);
	}
	free(shipped);
	return r;
}

/* The broker lives beside the command in a build tree, in libexec once
 * installed; AGENTJAIL_BROKER overrides both (tests, packaging). */
static const char *
find_broker(char *buf, size_t len)
{
	const char *env = getenv("AGENTJAIL_BROKER");
	ssize_t n;
	char *slash;

	if (env != NULL && env[0] != '\0')
		return env;
	n = readlink("/proc/self/exe", buf, len - 1);
	if (n > 0) {
		buf[n] = '\0';
		slash = strrchr(buf, '/');
		if (slash != NULL && (size_t)(slash - buf) + sizeof("/agentjail-broker") <= len) {
			strcpy(slash, "/agentjail-broker");
			if (access(buf, X_OK) == 0)
				return buf;
		}
	}
	return NULL;
}

/* --events FILE | fd:N | - : where the JSON lines go.  A file is appended
 * to (several runs can share one log) and created private. */
static int
open_events(const char *spec, int *fd)
{
	char *end;
	long n;

	if (strcmp(spec, "-") == 0) {
		*fd = STDOUT_FILENO;
		return 0;
	}
	if (strncmp(spec, "fd:", 3) == 0) {
		errno = 0;
		n = strtol(spec + 3, &end, 10);
		if (errno != 0 || end == spec + 3 || *end != '\0' || n < 0 || n > INT_MAX)
			return -EINVAL;
		if (fcntl((int)n, F_GETFD) < 0)
			return -errno;
		*fd = (int)n;
		return 0;
	}
	if (spec[0] == '\0')
		return -EINVAL;
	*fd = open(spec, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0600);
	return *fd < 0 ? -errno : 0;
}

/* The options of one `agentjail run`, gathered before anything is set up. */
struct run_args {
	const char *profile, *events, *audit;
	double timeout;
	bool quiet;
	bool no_pty;
	char **argv;
};

/* The library's options from the command line.  Returns 0, or the exit
 * status to leave with (a usage error or a setup failure, already said). */
static int
run_options(const struct run_args *a, const char *broker, struct aj_run_options **out)
{
	struct aj_run_options *opts = NULL;
	int r, fd;

	if (aj_run_options_new(&opts) < 0)
		goto nomem;
	r = aj_run_options_set_argv(opts, a->argv);
	r = r ? r : aj_run_options_set_timeout(opts, a->timeout);
	r = r ? r : aj_run_options_set_forward_signals(opts, true);
	r = r ? r : aj_run_options_set_quiet(opts, a->quiet);
	r = r ? r : aj_run_options_set_pty(opts, !a->no_pty);
	r = r ? r : aj_run_options_set_broker_path(opts, broker);
	if (r < 0)
		goto nomem;
	if (a->events != NULL) {
		r = open_events(a->events, &fd);
		if (r == -EINVAL) {
			aj_run_options_free(opts);
			return usage_error("--events: expected FILE, fd:N or -, got '%s'",
					   a->events);
		}
		if (r < 0) {
			fprintf(stderr, "agentjail: --events %s: %s\n", a->events, strerror(-r));
			aj_run_options_free(opts);
			return AJ_EXIT_SETUP;
		}
		(void)aj_run_options_set_events_fd(opts, fd);
	}
	if (a->audit != NULL) {
		r = open_events(a->audit, &fd);
		if (r == -EINVAL) {
			aj_run_options_free(opts);
			return usage_error("--audit: expected FILE, fd:N or -, got '%s'", a->audit);
		}
		if (r < 0) {
			fprintf(stderr, "agentjail: --audit %s: %s\n", a->audit, strerror(-r));
			aj_run_options_free(opts);
			return AJ_EXIT_SETUP;
		}
		(void)aj_run_options_set_audit_fd(opts, fd);
	}
	*out = opts;
	return 0;
nomem:
	fprintf(stderr, "agentjail: out of memory\n");
	aj_run_options_free(opts);
	return AJ_EXIT_SETUP;
}

static int
cmd_run(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"profile", required_argument, NULL, 'p'},
		{"timeout", required_argument, NULL, 't'},
		{"quiet", no_argument, NULL, 'q'},
		{"events", required_argument, NULL, 'e'},
		{"audit", required_argument, NULL, 'a'},
		{"no-pty", no_argument, NULL, 'T'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct run_args a = {.profile = "default"};
	struct aj_run_options *opts = NULL;
	struct aj_profile *profile = NULL;
	char err[1024], broker[PATH_MAX];
	int c, status, r;

	argv[0] = "agentjail run"; /* how getopt names us in its messages */
	optind = 1;
	while ((c = getopt_long(argc, argv, "+p:t:qe:a:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'a':
			a.audit = optarg;
			break;
		case 'e':
			a.events = optarg;
			break;
		case 'p':
			a.profile = optarg;
			break;
		case 't':
			if (parse_timeout(optarg, &a.timeout) < 0)
				return usage_error(
					"--timeout: '%s' is not a positive number of seconds",
					optarg);
			break;
		case 'q':
			a.quiet = true;
			break;
		case 'T':
			a.no_pty = true;
			break;
		case 'h':
			printf("%s%s", usage_text, help_text);
			return 0;
		default:
			fprintf(stderr, "%s", usage_text);
			return AJ_EXIT_USAGE;
		}
	}
	if (optind >= argc)
		return usage_error("run: no command given");
	a.argv = argv + optind;

	/* The fds first, as before the library took options: a bad --events
	 * is a usage error even when the profile is bad too. */
	r = run_options(&a, find_broker(broker, sizeof(broker)), &opts);
	if (r != 0)
		return r;
	if (load_profile(a.profile, &profile) < 0) {
		aj_run_options_free(opts);
		return AJ_EXIT_SETUP;
	}
	(void)aj_run_options_set_profile(opts, profile);
	r = aj_run(opts, &status, err, sizeof(err));
	aj_run_options_free(opts);
	aj_profile_free(profile);
	if (r < 0) {
		print_error(err);
		return AJ_EXIT_SETUP;
	}
	return status;
}

static int
cmd_profile(int argc, char **argv)
{
	struct aj_profile *profile = NULL;
	bool json = false;
	const char *name = NULL;
	char *text = NULL, hex[65];
	int r;

	if (argc < 2)
		return usage_error("profile: expected 'check' or 'show'");
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0 && strcmp(argv[1], "show") == 0)
			json = true;
		else if (argv[i][0] == '-' && argv[i][1] != '\0')
			return usage_error("profile: unknown option '%s'", argv[i]);
		else if (name == NULL)
			name = argv[i];
		else
			return usage_error("profile: unexpected argument '%s'", argv[i]);
	}
	if (name == NULL)
		return usage_error("profile %s: a profile name or path is required", argv[1]);
	if (strcmp(argv[1], "check") != 0 && strcmp(argv[1], "show") != 0)
		return usage_error("profile: unknown subcommand '%s'", argv[1]);

	if (load_profile(name, &profile) < 0)
		return AJ_EXIT_FAILURE;
	if (strcmp(argv[1], "check") == 0) {
		for (size_t i = 0; i < profile->n_warnings; i++)
			print_error(profile->warnings[i]);
		printf("%s: ok\n", aj_profile_path(profile));
		aj_profile_free(profile);
		return 0;
	}
	r = json ? aj_profile_format_json(profile, &text) : aj_profile_format_text(profile, &text);
	if (r == 0 && !json)
		r = aj_profile_sha256(profile, hex);
	if (r < 0) {
		fprintf(stderr, "agentjail: formatting the profile: %s\n", strerror(-r));
		aj_profile_free(profile);
		return AJ_EXIT_FAILURE;
	}
	if (json)
		printf("%s\n", text);
	else
		printf("# profile %s (%s)\n%s# sha256 %s\n", aj_profile_name(profile),
		       aj_profile_path(profile), text, hex);
	free(text);
	aj_profile_free(profile);
	return 0;
}

static int
cmd_doctor(int argc, char **argv)
{
	bool json = false;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = true;
		else
			return usage_error("doctor: unexpected argument '%s'", argv[i]);
	}
	return aj_doctor(json, stdout) == 0 ? 0 : AJ_EXIT_FAILURE;
}

int
main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "%s", usage_text);
		return AJ_EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		printf("%s%s", usage_text, help_text);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("agentjail %s\n", PACKAGE_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "run") == 0)
		return cmd_run(argc - 1, argv + 1);
	if (strcmp(argv[1], "profile") == 0)
		return cmd_profile(argc - 1, argv + 1);
	if (strcmp(argv[1], "doctor") == 0)
		return cmd_doctor(argc - 1, argv + 1);
	if (strcmp(argv[1], "fetch") == 0)
		return aj_fetch_command(argc - 1, argv + 1, usage_text, help_text, usage_error);
	if (strcmp(argv[1], "connect") == 0)
		return aj_connect_command(argc - 1, argv + 1, usage_text, help_text, usage_error);
	return usage_error("unknown command '%s'", argv[1]);
}
