/*
 * Integration tests: HTTPS through `proxy on`, TLS intercepted with the
 * jail's own CA (docs/PROFILES.md#https-through-the-proxy).
 *
 * Unmodified clients (curl, Python's urllib, requests and ssl) open
 * `CONNECT host:port` tunnels in a real jail; the broker answers as that
 * host with a leaf of the CA it made at start, which the jail trusts
 * through its bundle, decides each request inside by the rules, and
 * fetches it from a real HTTPS server this test starts on the host's
 * 127.0.0.1 with a CA of its own, verified for real.
 *
 * Suite: proxy_tls.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"
#include "servers.h"

static char *scratch;
static char certs[4096], root[4096];
static struct aj_server tls;

static void
setup(void)
{
	static const char *const hosts[] = {"127.0.0.1", "localhost", NULL};

	scratch = aj_test_scratch();
	chmod(scratch, 01777);
	snprintf(certs, sizeof(certs), "%s/certs", scratch);
	cr_assert_eq(aj_make_ca(certs, hosts), 0);
	snprintf(root, sizeof(root), "%s/root", scratch);
	cr_assert_eq(aj_server_start_files(&tls, "127.0.0.1", certs, root, scratch), 0,
		     "cannot start the test HTTPS server");
	setenv("URL", tls.url, 1);
}

static void
teardown(void)
{
	aj_server_stop(&tls);
	aj_test_rmrf(scratch);
	free(scratch);
}

TestSuite(proxy_tls, .init = setup, .fini = teardown, .timeout = 120);

/* A profile: the proxy on, the test server's CA trusted by the broker
 * (line 5), then the test's lines (from line 6). */
static char *
write_profile(const char *fmt, ...)
{
	char body[4096], text[8400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(body, sizeof(body), fmt, ap);
	va_end(ap);
	snprintf(text, sizeof(text),
		 "env keep PATH URL\nenv set ASAN_OPTIONS=detect_leaks=0\nsocket inet loopback\n"
		 "proxy on\nfetch ca %s/ca.pem\n%s",
		 certs, body);
	return aj_test_write_file(scratch, "tls.profile", text);
}

static void
in_jail(struct aj_result *res, const char *profile, const char *script)
{
	char audit[4096];

	snprintf(audit, sizeof(audit), "%s/audit.jsonl", scratch);
	aj_test_jail_sh(res, profile, audit, NULL, script);
}

#define SHOW(r) "status %d\n--- out:\n%s\n--- err:\n%s", (r).status, (r).out, (r).err

/* The audit records of the last run, as a JSON array. */
#define audit_records() aj_test_json_lines(scratch, "audit.jsonl")

#define str aj_test_json_str

/* ---- decided like a native request -------------------------------------------------- */

Test(proxy_tls, https_through_the_proxy_is_decided_by_the_rules)
{
	char *prof = write_profile("fetch allow GET %s/page.html\nfetch allow POST %s/echo\n",
				   tls.url, tls.url);
	struct aj_result r;
	char want[2048];
	json_t *audit;

	in_jail(&r, prof,
		"curl -sS \"$URL/page.html\" | grep -c Hello; "
		"curl -sS --data-binary @/etc/services \"$URL/echo\" | "
		"python3 -c 'import json, sys; print(json.load(sys.stdin)[\"body_length\"])'; "
		"curl -sS -D - -o /dev/null \"$URL/secret\" | tr -d '\\r' | grep '^HTTP\\|^X-Agentjail'");
	cr_assert_eq(r.status, 0, SHOW(r));
	{
		struct stat st;

		cr_assert_eq(stat("/etc/services", &st), 0);
		snprintf(want, sizeof(want),
			 "1\n%lld\nHTTP/1.1 200 Connection established\nHTTP/1.1 403 Forbidden\n"
			 "X-Agentjail-Error: denied\n"
			 "X-Agentjail-Rule: %s/tls.profile: no 'fetch allow' rule matches (default "
			 "deny)\n",
			 (long long)st.st_size, scratch);
	}
	cr_assert_str_eq(r.out, want, SHOW(r));
	cr_assert_eq(aj_server_log_count(&tls, "GET /page.html"), 1);
	cr_assert_eq(aj_server_log_count(&tls, "/secret"), 0);

	audit = audit_records();
	cr_assert_eq(json_array_size(audit), 3);
	snprintf(want, sizeof(want), "%s/page.html", tls.url);
	cr_assert_str_eq(str(json_array_get(audit, 0), "url"), want);
	cr_assert_str_eq(str(json_array_get(audit, 0), "via"), "proxy");
	cr_assert_str_eq(str(json_array_get(audit, 0), "decision"), "allowed");
	cr_assert_str_eq(str(json_array_get(audit, 2), "decision"), "denied");
	json_decref(audit);
	aj_test_result_free(&r);
	free(prof);
}

/* Python's clients, one with the strict X.509 checks (a peer's users hit
 * leaves those refuse); the leaf names the tunnel's host. */
Test(proxy_tls, python_clients_accept_the_leaf_even_strictly)
{
	char *prof = write_profile("fetch allow GET %s/**\n", tls.url);
	struct aj_result r;

	in_jail(&r, prof,
		"/usr/bin/python3 -c \"import os, ssl, socket, urllib.request, requests\n"
		"u = os.environ['URL']\n"
		"print(requests.get(u + '/page.html', timeout=20).status_code)\n"
		"c = ssl.create_default_context()\n"
		"c.verify_flags |= ssl.VERIFY_X509_STRICT\n"
		"print(urllib.request.urlopen(u + '/page.html', context=c, timeout=20).status)\n"
		"port = int(u.rsplit(':', 1)[1])\n"
		"s = socket.create_connection(('127.0.0.1', 3128))\n"
		"s.sendall(b'CONNECT 127.0.0.1:%d HTTP/1.1\\\\r\\\\nHost: 127.0.0.1:%d\\\\r\\\\n\\\\r\\\\n'"
		" % (port, port))\n"
		"print(s.recv(100).decode().strip())\n"
		"t = c.wrap_socket(s, server_hostname='127.0.0.1')\n"
		"cert = t.getpeercert()\n"
		"print(cert['subjectAltName'], t.selected_alpn_protocol(), t.version() >= 'TLSv1.2')\n"
		"print(dict(x[0] for x in cert['issuer'])['organizationName'])\"");
	cr_assert_eq(r.status, 0, SHOW(r));
	cr_assert_str_eq(r.out,
			 "200\n200\nHTTP/1.1 200 Connection established\n"
			 "(('IP Address', '127.0.0.1'),) None True\nagentjail\n",
			 SHOW(r));
	aj_test_result_free(&r);
	free(prof);
}

/* A name: the leaf says it, the broker resolves it itself. */
Test(proxy_tls, a_tunnel_to_a_name)
{
	char *prof = write_profile("fetch allow GET https://localhost:%d/page.html\n"
				   "fetch address allow 127.0.0.1\n",
				   tls.port);
	struct aj_result r;
	char cmd[512];

	snprintf(cmd, sizeof(cmd),
		 "curl -sS https://localhost:%d/page.html | grep -c Hello && "
		 "curl -sS -v -o /dev/null https://localhost:%d/page.html 2>&1 | "
		 "grep -o 'subjectAltName: host \"localhost\" matched cert.s \"localhost\"'",
		 tls.port, tls.port);
	in_jail(&r, prof, cmd);
	cr_assert_eq(r.status, 0, SHOW(r));
	cr_assert_str_eq(r.out,
			 "1\nsubjectAltName: host \"localhost\" matched cert's \"localhost\"\n",
			 SHOW(r));
	aj_test_result_free(&r);
	free(prof);
}

/* ---- the checks that stay real --------------------------------------------------- */

/* The client's server name must be the CONNECT host: a tunnel opened to
 * one host cannot carry a TLS session for another. */
Test(proxy_tls, a_server_name_other_than_the_tunnels_is_refused)
{
	char *prof = write_profile("fetch allow GET %s/**\n", tls.url);
	struct aj_result r;

	in_jail(&r, prof,
		"/usr/bin/python3 -c \"import socket, ssl\n"
		"s = socket.create_connection(('127.0.0.1', 3128))\n"
		"s.sendall(b'CONNECT a.example:443 HTTP/1.1\\\\r\\\\nHost: a.example:443\\\\r\\\\n\\\\r\\\\n')\n"
		"print(s.recv(100).decode().strip())\n"
		"try:\n"
		"    ssl.create_default_context().wrap_socket(s, server_hostname='b.example')\n"
		"    print('handshake done')\n"
		"except (ssl.SSLError, OSError) as e:\n"
		"    print('refused')\"");
	cr_assert_eq(r.status, 0, SHOW(r));
	cr_assert_str_eq(r.out, "HTTP/1.1 200 Connection established\nrefused\n", SHOW(r));
	cr_assert_not_null(strstr(r.err, "proxy: the TLS tunnel to a.example:443 ended: the "
					 "client's server name (SNI) is b.example, but the tunnel is "
					 "to a.example"),
			   SHOW(r));
	{
		json_t *audit = audit_records(), *rec;

		cr_assert_eq(json_array_size(audit), 1);
		rec = json_array_get(audit, 0);
		cr_assert_str_eq(str(rec, "method"), "CONNECT");
		cr_assert_str_eq(str(rec, "url"), "https://a.example:443");
		cr_assert_str_eq(str(rec, "decision"), "refused");
		cr_assert_str_eq(str(rec, "error"), "tunnel_server_name");
		json_decref(audit);
	}
	aj_test_result_free(&r);
	free(prof);
}

/* The broker still verifies the server: without the test CA (`fetch ca`)
 * the same request fails upstream, whatever the jail trusts. */
Test(proxy_tls, the_upstream_is_verified_for_real)
{
	char text[1024], *prof;
	struct aj_result r;

	snprintf(text, sizeof(text),
		 "env keep PATH URL\nsocket inet loopback\nproxy on\nfetch allow GET %s/**\n",
		 tls.url);
	prof = aj_test_write_file(scratch, "noca.profile", text);
	in_jail(&r, prof,
		"curl -sS -o /dev/null -D - \"$URL/page.html\" | tr -d '\\r' | "
		"grep '^HTTP\\|^X-Agentjail-Error'");
	cr_assert_eq(r.status, 0, SHOW(r));
	cr_assert_str_eq(r.out,
			 "HTTP/1.1 200 Connection established\nHTTP/1.1 502 Bad Gateway\n"
			 "X-Agentjail-Error: upstream_error\n",
			 SHOW(r));
	cr_assert_eq(aj_server_log_count(&tls, "/page.html"), 0);
	aj_test_result_free(&r);
	free(prof);
}

/* ---- the jail's trust ----------------------------------------------------------- */

/* Every CA variable names the jail's bundle; the system bundle is that
 * file, read-only: the host's certificates and one more, the jail's CA
 * (its certificate only, no key). */
Test(proxy_tls, the_jail_trusts_its_ca_through_the_usual_paths)
{
	char *prof = write_profile("fetch allow GET %s/**\n", tls.url);
	struct aj_result r;
	char want[512];
	FILE *f = fopen("/etc/ssl/certs/ca-certificates.crt", "re");
	char line[256];
	int host_certs = 0;

	cr_assert_not_null(f, "this host has no /etc/ssl/certs/ca-certificates.crt");
	while (fgets(line, sizeof(line), f) != NULL)
		host_certs += strncmp(line, "-----BEGIN CERTIFICATE-----", 27) == 0;
	fclose(f);

	in_jail(&r, prof,
		"b=/run/agentjail/ca-certificates.crt; "
		"for v in SSL_CERT_FILE CURL_CA_BUNDLE REQUESTS_CA_BUNDLE PIP_CERT "
		"NODE_EXTRA_CA_CERTS GIT_SSL_CAINFO AWS_CA_BUNDLE CARGO_HTTP_CAINFO DENO_CERT "
		"npm_config_cafile BUNDLE_SSL_CA_CERT NIX_SSL_CERT_FILE; do "
		"eval \"[ \\\"\\$$v\\\" = $b ]\" || echo \"$v differs\"; done; "
		"cmp $b /etc/ssl/certs/ca-certificates.crt && echo same; "
		"grep -c 'BEGIN CERTIFICATE' $b; grep -c PRIVATE $b; "
		"awk '/BEGIN CERT/{p=\"\"} {p=p $0 \"\\n\"} END{printf \"%s\", p}' $b | "
		"openssl x509 -noout -subject -ext basicConstraints | tr -d ' ' | cut -c1-38; "
		"echo x >> $b 2>/dev/null || echo read-only; "
		"echo x >> /etc/ssl/certs/ca-certificates.crt 2>/dev/null || echo read-only");
	cr_assert_eq(r.status, 0, SHOW(r));
	snprintf(want, sizeof(want),
		 "same\n%d\n0\nsubject=O=agentjail,CN=agentjailjailCA\nX509v3BasicConstraints:"
		 "critical\nCA:TRUE,pathlen:0\nread-only\nread-only\n",
		 host_certs + 1);
	cr_assert_str_eq(r.out, want, SHOW(r));
	aj_test_result_free(&r);
	free(prof);
}

/* A CA of its own for every jail. */
Test(proxy_tls, each_jail_has_a_ca_of_its_own)
{
	char *prof = write_profile("fetch allow GET %s/**\n", tls.url);
	struct aj_result a, b;
	const char *script = "awk '/BEGIN CERT/{p=\"\"} {p=p $0 \"\\n\"} END{printf \"%s\", p}' "
			     "/run/agentjail/ca-certificates.crt | "
			     "openssl x509 -noout -fingerprint -sha256";

	in_jail(&a, prof, script);
	in_jail(&b, prof, script);
	cr_assert_eq(a.status, 0, SHOW(a));
	cr_assert_eq(b.status, 0, SHOW(b));
	cr_assert(strncmp(a.out, "sha256 Fingerprint=", 19) == 0, SHOW(a));
	cr_assert_str_neq(a.out, b.out);
	aj_test_result_free(&a);
	aj_test_result_free(&b);
	free(prof);
}

/* The CA's key lives in the broker's memory only: no private key anything
 * the jail can read holds after a tunnel was made (the jail's own mounts
 * whole, every file changed during the run) is the CA's (other keys may
 * come and go on the host meanwhile: each is compared with the CA's
 * public key), and the broker is no process of the jail's (its /proc
 * shows none). */
Test(proxy_tls, the_cas_key_is_nowhere_in_the_jail)
{
	char *prof = write_profile("fetch allow GET %s/**\n", tls.url);
	struct aj_result r;

	in_jail(&r, prof,
		"touch /tmp/.begin; curl -sS -o /dev/null -w '%{http_code}\\n' \"$URL/page.html\"; "
		"awk '/BEGIN CERT/{p=\"\"} {p=p $0 \"\\n\"} END{printf \"%s\", p}' "
		"/run/agentjail/ca-certificates.crt | openssl x509 -noout -pubkey > /dev/shm/ca.pub; "
		"{ grep -r -l -s -a --devices=skip 'PRIVATE KE[Y]' /tmp /run /dev; "
		"find / \\( -path /proc -o -path /sys \\) -prune -o -type f -newer /tmp/.begin "
		"-print0 2>/dev/null | xargs -0 -r grep -l -s -a 'PRIVATE KE[Y]'; } | "
		"while read -r f; do openssl pkey -in \"$f\" -pubout 2>/dev/null | "
		"cmp -s - /dev/shm/ca.pub && echo \"the CA's key in $f\"; done; "
		"grep -c 'BEGIN PUBLIC KEY' /dev/shm/ca.pub; "
		"cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' ' | grep -c 'agentjail-broke[r]'; "
		"echo searched");
	cr_assert_eq(r.status, 0, SHOW(r));
	cr_assert_str_eq(r.out, "200\n1\n0\nsearched\n", SHOW(r));
	aj_test_result_free(&r);
	free(prof);
}

/* ---- real tools ------------------------------------------------------------------ */

/* What git, pip and npm fetch, as files of the test server (a bare
 * repository, a package index, a registry), under the name localhost as
 * real registries have names (npm cannot check an IP literal's
 * certificate through a proxy); the profile allows /files/ alone. */
static char *
tools_profile(void)
{
	char cmd[8192], url[128];
	const char *src = getenv("AJ_TEST_SRCDIR");

	snprintf(cmd, sizeof(cmd), "python3 -B '%s/tests/integration/servers/tool-fixtures' '%s' "
		 "https://localhost:%d",
		 src ? src : AJ_SRCDIR, root, tls.port);
	cr_assert_eq(system(cmd), 0, "%s", cmd);
	snprintf(url, sizeof(url), "https://localhost:%d", tls.port);
	setenv("URL", url, 1);
	return write_profile("fetch allow GET https://localhost:%d/files/**\n"
			     "fetch allow GET https://localhost:%d/files/** query **\n"
			     "fetch address allow 127.0.0.1\n",
			     tls.port, tls.port);
}

/* Each tool in a fresh home of its own, configured no further. */
#define TOOL_HOME "cd \"$(mktemp -d)\" && export HOME=\"$PWD\" && "

Test(proxy_tls, git_clones_over_https)
{
	char *prof = tools_profile();
	struct aj_result r;

	in_jail(&r, prof, TOOL_HOME "git clone -q \"$URL/files/repo.git\" && cat repo/README");
	cr_assert_eq(r.status, 0, SHOW(r));
	cr_assert_str_eq(r.out, "hello from the test repository\n", SHOW(r));
	/* Not even git's look-up of its own host name left the jail. */
	cr_assert_null(strstr(r.err, "violation"), SHOW(r));
	cr_assert_gt(aj_server_log_count(&tls, "GET /files/repo.git/objects/"), 0);
	aj_test_result_free(&r);
	free(prof);
}

Test(proxy_tls, pip_installs_from_an_https_index)
{
	char *prof = tools_profile();
	struct aj_result r;

	in_jail(&r, prof,
		TOOL_HOME "/usr/bin/python3 -m venv v && "
			  "v/bin/pip install -q --no-cache-dir --no-deps --index-url "
			  "\"$URL/files/simple/\" agentjail-probe && "
			  "v/bin/python -c 'import agentjail_probe'");
	cr_assert_eq(r.status, 0, SHOW(r));
	cr_assert_str_eq(r.out, "probe 1.0\n", SHOW(r));
	cr_assert_eq(aj_server_log_count(&tls, "GET /files/agentjail_probe-1.0-py3-none-any.whl"),
		     1);
	aj_test_result_free(&r);
	free(prof);
}

Test(proxy_tls, npm_installs_from_an_https_registry)
{
	char *prof = tools_profile();
	struct aj_result r;

	in_jail(&r, prof,
		TOOL_HOME "npm install --no-audit --no-fund --no-update-notifier --registry "
			  "\"$URL/files/npm/\" agentjail-probe >/dev/null && "
			  "node -e 'console.log(require(\"agentjail-probe\"))'");
	cr_assert_eq(r.status, 0, SHOW(r));
	cr_assert_str_eq(r.out, "probe 1.0.0\n", SHOW(r));
	cr_assert_eq(aj_server_log_count(&tls, "GET /files/npm/agentjail-probe-1.0.0.tgz"), 1);
	aj_test_result_free(&r);
	free(prof);
}
