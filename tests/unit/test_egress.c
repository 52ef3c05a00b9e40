/*
 * Unit tests for the broker's egress checks (broker/egress.c): which
 * addresses a hop may connect to.  Only sockaddr values are classified
 * here; nothing is sent anywhere.
 */
#include "config.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "broker.h"
#include "broker_fixture.h"

static struct sockaddr_storage
addr(const char *text)
{
	struct sockaddr_storage ss = {0};
	struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;

	if (inet_pton(AF_INET, text, &v4->sin_addr) == 1)
		v4->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, text, &v6->sin6_addr) == 1)
		v6->sin6_family = AF_INET6;
	else
		cr_assert_fail("not an address: %s", text);
	return ss;
}

static struct aj_url
url(const char *text)
{
	struct aj_url u;
	char err[256];

	cr_assert_eq(aj_url_normalise(text, &u, err, sizeof(err)), 0, "%s", err);
	return u;
}

static const char *
refused(const struct aj_egress *e, const char *address, const char *to,
	const struct aj_fetch_rule *rule)
{
	struct sockaddr_storage ss = addr(address);
	struct aj_url u = url(to);

	return aj_egress_refused(e, (struct sockaddr *)&ss, &u, rule);
}

Test(egress, public_addresses_pass_special_ones_do_not)
{
	struct aj_policy *p = fixture_policy("fetch allow GET https://docs.example.org/**\n");
	struct aj_egress *e = aj_egress_new(p);
	const struct aj_fetch_rule *rule = &p->rules[0];
	const char *to = "https://docs.example.org/";

	cr_assert_null(refused(e, "8.8.8.8", to, rule));
	cr_assert_null(refused(e, "2001:4860:4860::8888", to, rule));
	cr_assert_str_eq(refused(e, "127.0.0.1", to, rule), "loopback");
	cr_assert_str_eq(refused(e, "169.254.169.254", to, rule), "cloud metadata");
	cr_assert_str_eq(refused(e, "10.1.2.3", to, rule), "private (RFC 1918)");
	cr_assert_str_eq(refused(e, "::ffff:127.0.0.1", to, rule), "IPv4-mapped loopback");
	aj_egress_free(e);
	fixture_policy_free(p);
}

Test(egress, a_range_the_profile_names_passes)
{
	struct aj_policy *p = fixture_policy("fetch allow GET https://db.internal/**\n"
					     "fetch address allow 10.0.0.0/8\n"
					     "fetch address allow ::1\n");
	struct aj_egress *e = aj_egress_new(p);
	const char *to = "https://db.internal/";

	cr_assert_null(refused(e, "10.200.0.1", to, &p->rules[0]));
	cr_assert_null(refused(e, "::1", to, &p->rules[0]));
	cr_assert_str_eq(refused(e, "127.0.0.1", to, &p->rules[0]), "loopback");
	cr_assert_str_eq(refused(e, "192.168.1.1", to, &p->rules[0]), "private (RFC 1918)");
	aj_egress_free(e);
	fixture_policy_free(p);
}

Test(egress, the_ip_literal_of_the_deciding_rule_passes_only_itself)
{
	struct aj_policy *p = fixture_policy("fetch allow GET http://127.0.0.2:8080/**\n"
					     "fetch allow GET https://*.example.org/**\n");
	struct aj_egress *e = aj_egress_new(p);
	const struct aj_fetch_rule *literal = &p->rules[0], *names = &p->rules[1];

	cr_assert_str_eq(literal->host, "127.0.0.2");
	cr_assert_null(refused(e, "127.0.0.2", "http://127.0.0.2:8080/x", literal));
	/* The literal's rule does not open another address... */
	cr_assert_str_eq(refused(e, "127.0.0.1", "http://127.0.0.2:8080/x", literal), "loopback");
	/* ...nor does a name that resolves to it under another rule. */
	cr_assert_str_eq(refused(e, "127.0.0.2", "https://a.example.org/", names), "loopback");
	aj_egress_free(e);
	fixture_policy_free(p);
}

/* The host's own addresses are read when the broker starts.  A test host
 * of its own: a network namespace (in a user namespace) whose only link,
 * lo, also holds an ordinary public address; no packet leaves it. */
static bool
own_network_with(const char *address)
{
	char cmd[256];
	uid_t uid = getuid();
	gid_t gid = getgid();
	FILE *f;

	if (unshare(CLONE_NEWUSER | CLONE_NEWNET) < 0)
		return false;
	f = fopen("/proc/self/setgroups", "w");
	if (f != NULL) {
		fputs("deny", f);
		fclose(f);
	}
	f = fopen("/proc/self/uid_map", "w");
	if (f == NULL || fprintf(f, "0 %u 1", (unsigned)uid) < 0 || fclose(f) != 0)
		return false;
	f = fopen("/proc/self/gid_map", "w");
	if (f == NULL || fprintf(f, "0 %u 1", (unsigned)gid) < 0 || fclose(f) != 0)
		return false;
	snprintf(cmd, sizeof(cmd), "ip link set lo up && ip addr add %s/32 dev lo", address);
	return system(cmd) == 0;
}

Test(egress, an_address_of_this_host_is_refused)
{
	struct aj_policy *p = fixture_policy("fetch allow GET https://docs.example.org/**\n");
	int status;
	pid_t pid = fork();

	/* In a child: a user namespace needs a single-threaded process. */
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct aj_egress *e;

		if (!own_network_with("8.8.4.4"))
			_exit(77);
		e = aj_egress_new(p);
		if (strcmp(refused(e, "8.8.4.4", "https://docs.example.org/", &p->rules[0]) ?: "",
			   "an address of this host") != 0 ||
		    refused(e, "8.8.8.8", "https://docs.example.org/", &p->rules[0]) != NULL)
			_exit(1);
		_exit(0);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	fixture_policy_free(p);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 77)
		cr_skip_test("cannot make a network namespace of its own here "
			     "(no user namespaces, or iproute2's `ip` missing)");
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "the host's own 8.8.4.4 was not refused as 'an address of this host'");
}
