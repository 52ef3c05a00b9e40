/*
 * Integration tests: tools that ignore the proxy variables, served through
 * the broker's DNS stub and the captured ports 80 and 443 (`proxy on`,
 * docs/PROFILES.md#tools-that-ignore-the-proxy).
 *
 * Everything runs in a network namespace of the test's own (netlab: only
 * lo, its resolv.conf naming a test DNS server on 127.0.0.1), where real
 * sites are played by HTTPS and HTTP servers on 127.0.0.1:443 and :80
 * (tests/integration/servers/dns-lab).  In the jail, Node's own http and
 * https clients, curl and Python without a proxy, and glibc's resolver
 * resolve through the stub and connect to the addresses it gives out.
 *
 * Suite: proxy_dns.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"

static char *scratch;

static void
setup(void)
{
	scratch = aj_test_scratch();
	chmod(scratch, 01777);
}

static void
teardown(void)
{
	aj_test_rmrf(scratch);
	free(scratch);
}

TestSuite(proxy_dns, .init = setup, .fini = teardown, .timeout = 180);

#define SHOW(r) "status %d\n--- out:\n%s\n--- err:\n%s", (r).status, (r).out, (r).err
#define str aj_test_json_str

/* The lab's output, and its audit records in *AUDIT. */
static void
run_lab(struct aj_result *r, json_t **audit)
{
	char lab[4096];

	snprintf(lab, sizeof(lab), "%s/lab", scratch);
	cr_assert_eq(mkdir(lab, 01777), 0);
	chmod(lab, 01777);
	aj_test_netlab(r, "dns-lab", lab);
	*audit = aj_test_json_lines(lab, "audit.jsonl");
}

Test(proxy_dns, tools_without_a_proxy_reach_allowed_names_only)
{
	struct aj_result r;
	json_t *audit, *last;

	run_lab(&r, &audit);
	cr_assert_eq(r.status, 0, SHOW(r));
	/* Node's own clients (no proxy variable read before Node 24): HTTPS
	 * through the captured 443 with the jail's CA, HTTP through 80, and
	 * a path no rule allows answered like any refusal. */
	cr_assert_not_null(strstr(r.out, "case node-https: exit=0 200 - hello\n"), SHOW(r));
	cr_assert_not_null(strstr(r.out, "case node-http: exit=0 200 - hello\n"), SHOW(r));
	cr_assert_not_null(strstr(r.out, "case node-denied-path: exit=0 403 denied no-hello\n"),
			   SHOW(r));
	/* curl told to use no proxy connects to the stub's address. */
	cr_assert_not_null(strstr(r.out, "case curl-no-proxy: exit=0 200 127.1.0.1\n"), SHOW(r));
	cr_assert_not_null(strstr(r.out, "case python-no-proxy: exit=0 200\n"), SHOW(r));
	/* glibc: the allowed name has the stub's address; a name no rule
	 * names does not resolve (the lab's server would say 127.0.0.1). */
	cr_assert_not_null(strstr(r.out, "case resolver: exit=0 127.1.0.1       STREAM api.test "
					 "evil.test: none\n"),
			   SHOW(r));
	/* A name a tunnel rule allows on 443: relayed raw, TLS end to end
	 * with the server's own certificate. */
	cr_assert_not_null(strstr(r.out, "case pinned-raw: exit=0 200 127.1.0.1\n"), SHOW(r));
	/* The jail's own 127.0.0.1:443 is not an address the stub gave: the
	 * connection is closed before any TLS. */
	cr_assert_not_null(strstr(r.out, "case own-loopback: exit=0 curl: (35)"), SHOW(r));
	/* Only what the rules allow reached the servers. */
	cr_assert_not_null(strstr(r.out, "tls requests 4\nweb requests 1\n"), SHOW(r));

	/* Decided and audited under the names, like the proxy's requests. */
	cr_assert_eq(json_array_size(audit), 7, "%zu records", json_array_size(audit));
	cr_assert_str_eq(str(json_array_get(audit, 0), "url"), "https://api.test/page.html");
	cr_assert_str_eq(str(json_array_get(audit, 0), "decision"), "allowed");
	cr_assert_str_eq(str(json_array_get(audit, 0), "via"), "proxy");
	cr_assert_str_eq(str(json_array_get(audit, 1), "url"), "http://plain.test/page.html");
	cr_assert_str_eq(str(json_array_get(audit, 2), "url"), "https://api.test/secret");
	cr_assert_str_eq(str(json_array_get(audit, 2), "decision"), "denied");
	last = json_array_get(audit, 5);
	cr_assert_str_eq(str(last, "method"), "DNS");
	cr_assert_str_eq(str(last, "url"), "dns:evil.test");
	cr_assert_str_eq(str(last, "decision"), "denied");
	cr_assert_str_eq(str(last, "via"), "dns");
	cr_assert_str_eq(str(last, "rule"), "no fetch rule names this host");
	/* The raw tunnel's own record. */
	last = json_array_get(audit, 6);
	cr_assert_str_eq(str(last, "kind"), "tunnel");
	cr_assert_str_eq(str(last, "decision"), "allowed");
	json_decref(audit);
	aj_test_result_free(&r);
}
