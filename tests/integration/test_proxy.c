/*
 * Integration tests: `proxy on`, the broker's HTTP proxy inside the jail
 * (docs/PROFILES.md#proxy).
 *
 * Unmodified tools (curl, Python's urllib, http.client and requests) run
 * in a real jail with nothing but the environment agentjail sets, against
 * a real HTTP server this test starts on the host's 127.0.0.1.  What the
 * profile allows arrives byte for byte (bodies both ways, both framings,
 * keep-alive, Expect, redirects seen by the client); what it does not is
 * refused with the HTTP status and the X-Agentjail-Error and
 * X-Agentjail-Rule headers, audited like a native request.  The agent's
 * own servers on the jail's loopback stay direct.
 *
 * Suite: proxy.
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
static struct aj_server http;

static void
setup(void)
{
	scratch = aj_test_scratch();
	/* The jail's user writes results here; sticky, so that the profiles
	 * in it stay trusted. */
	chmod(scratch, 01777);
	cr_assert_eq(aj_server_start_http(&http, "127.0.0.1", NULL, scratch), 0,
		     "cannot start the test HTTP server");
	setenv("URL", http.url, 1);
}

static void
teardown(void)
{
	aj_server_stop(&http);
	aj_test_rmrf(scratch);
	free(scratch);
}

TestSuite(proxy, .init = setup, .fini = teardown, .timeout = 120);

/* The base every profile here starts with: the proxy on its default port
 * (`proxy on` is line 4, the test's own lines start at 5). */
#define BASE                                                                                       \
	"env keep PATH URL\nenv set ASAN_OPTIONS=detect_leaks=0\nsocket inet loopback\n"

/* A profile: BASE, `proxy on` unless the test's lines say otherwise, then
 * the test's lines (formatted). */
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
	return aj_test_write_file(scratch, "proxy.profile", text);
}

/* Run SCRIPT (sh) in a jail with PROFILE; $URL is the test server.  The
 * audit records go to scratch/audit.jsonl, the events to
 * scratch/events.jsonl. */
static void
in_jail(struct aj_result *res, const char *profile, const char *script)
{
	aj_test_jail_sh_records(res, scratch, profile, script);
}

#define SHOW(r) "status %d\n--- out:\n%s\n--- err:\n%s", (r).status, (r).out, (r).err

/* The audit records of the last run, as a JSON array. */
#define audit_records() aj_test_json_lines(scratch, "audit.jsonl")

#define str aj_test_json_str

static long long
num(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	cr_assert(json_is_integer(v), "no integer %s", key);
	return json_integer_value(v);
}

/* OUT has LINE as a whole line. */
#define assert_line(out, line) cr_assert(aj_test_has_line(out, line), "no line '%s' in:\n%s", line, out)

/* ---- the environment --------------------------------------------------------------- */

/* Every variable of the table (supervisor/proxy-env.c), exactly; the rule
 * names the host's 127.0.0.1, so that one goes through the proxy. */
Test(proxy, the_environment_points_the_tools_at_the_proxy)
{
	char *prof = write_profile("fetch allow GET %s/**\n", http.url);
	struct aj_result r;

	in_jail(&r, prof, "env | grep -i -e proxy -e JAVA_TOOL | LC_ALL=C sort");
	cr_assert_eq(r.status, 0, SHOW(r));
	cr_assert_str_eq(r.out,
			 "AGENTJAIL_PROXY=http://127.0.0.1:3128\n"
			 "ALL_PROXY=http://127.0.0.1:3128\n"
			 "GRPC_PROXY=http://127.0.0.1:3128\n"
			 "HTTPS_PROXY=http://127.0.0.1:3128\n"
			 "HTTP_PROXY=http://127.0.0.1:3128\n"
			 "JAVA_TOOL_OPTIONS=-Dhttp.proxyHost=127.0.0.1 -Dhttp.proxyPort=3128 "
			 "-Dhttps.proxyHost=127.0.0.1 -Dhttps.proxyPort=3128\n"
			 "NODE_USE_ENV_PROXY=1\n"
			 "NO_PROXY=localhost,::1\n"
			 "PIP_PROXY=http://127.0.0.1:3128\n"
			 "YARN_HTTPS_PROXY=http://127.0.0.1:3128\n"
			 "YARN_HTTP_PROXY=http://127.0.0.1:3128\n"
			 "all_proxy=http://127.0.0.1:3128\n"
			 "grpc_proxy=http://127.0.0.1:3128\n"
			 "http_proxy=http://127.0.0.1:3128\n"
			 "https_proxy=http://127.0.0.1:3128\n"
			 "no_proxy=localhost,::1\n"
			 "npm_config_https_proxy=http://127.0.0.1:3128\n"
			 "npm_config_proxy=http://127.0.0.1:3128\n",
			 SHOW(r));
	aj_test_result_free(&r);
	free(prof);
}

/* Another port; a variable the profile sets keeps its value; without a
 * rule naming a loopback host all of them stay direct; off: nothing. */
Test(proxy, the_port_the_profile_and_no_proxy)
{
	char *prof = write_profile("proxy on port 8181\nenv set PIP_PROXY=http://pip.example:1\n"
				   "fetch allow GET http://pypi.example/**\n");
	struct aj_result r;

	in_jail(&r, prof,
		"echo \"$http_proxy $PIP_PROXY $NO_PROXY\"; "
		"python3 -c \"import socket; s = socket.socket(); s.connect(('127.0.0.1', 8181)); "
		"t = socket.socket(socket.AF_INET6); t.connect(('::1', 8181)); print('listening')\"");
	cr_assert_eq(r.status, 0, SHOW(r));
	cr_assert_str_eq(r.out,
			 "http://127.0.0.1:8181 http://pip.example:1 localhost,127.0.0.1,::1\n"
			 "listening\n",
			 SHOW(r));
	aj_test_result_free(&r);
	free(prof);

	prof = write_profile("proxy off\nfetch allow GET %s/**\n", http.url);
	in_jail(&r, prof, "env | grep -ic proxy; exit 0");
	cr_assert_str_eq(r.out, "0\n", SHOW(r));
	aj_test_result_free(&r);
	free(prof);
}

/* ---- allowed requests -------------------------------------------------------------- */

Test(proxy, curl_gets_an_allowed_page_audited_via_the_proxy)
{
	char *prof = write_profile("fetch allow GET,HEAD %s/page.html\n", http.url);
	struct aj_result r;
	json_t *audit, *rec;

	in_jail(&r, prof, "curl -sS \"$URL/page.html\" && curl -sS -I \"$URL/page.html\" | head -1");
	cr_assert_eq(r.status, 0, SHOW(r));
	cr_assert_not_null(strstr(r.out, "<h1>Hello from the test site</h1>"), SHOW(r));
	assert_line(r.out, "HTTP/1.1 200 OK\r");
	cr_assert_eq(aj_server_log_count(&http, "GET /page.html"), 1);
	cr_assert_eq(aj_server_log_count(&http, "HEAD /page.html"), 1);

	audit = audit_records();
	cr_assert_eq(json_array_size(audit), 2);
	rec = json_array_get(audit, 0);
	cr_assert_str_eq(str(rec, "decision"), "allowed");
	cr_assert_str_eq(str(rec, "method"), "GET");
	cr_assert_str_eq(str(rec, "via"), "proxy");
	cr_assert_eq(num(rec, "status"), 200);
	cr_assert_str_eq(str(rec, "address"), "127.0.0.1");
	cr_assert_not_null(strstr(str(rec, "rule"), "proxy.profile:5"), "%s", str(rec, "rule"));
	cr_assert_str_eq(str(json_array_get(audit, 1), "method"), "HEAD");
	json_decref(audit);
	aj_test_result_free(&r);
	free(prof);
}

/* Both listeners of the jail's loopback answer. */
Test(proxy, the_ipv6_listener_answers_too)
{
	char *prof = write_profile("fetch allow GET %s/page.html\n", http.url);
	struct aj_result r;

	in_jail(&r, prof, "curl -sS -x 'http://[::1]:3128' \"$URL/page.html\"");
	cr_assert_eq(r.status, 0, SHOW(r));
	cr_assert_not_null(strstr(r.out, "<h1>Hello from the test site</h1>"), SHOW(r));
	aj_test_result_free(&r);
	free(prof);
}

/* Bodies arrive whole, with a Content-Length or chunked. */
Test(proxy, response_bodies_arrive_byte_for_byte)
{
	char *prof = write_profile("fetch allow GET %s/bytes/**\n", http.url);
	struct aj_result r;

	in_jail(&r, prof,
		"for q in 3000000 '300001?chunked=1' 0; do curl -sS \"$URL/bytes/$q\" | "
		"python3 -c \"import sys; d = sys.stdin.buffer.read(); "
		"print(len(d), d == bytes(i % 251 for i in range(len(d))))\"; done");
	cr_assert_eq(r.status, 0, SHOW(r));
	cr_assert_str_eq(r.out, "3000000 True\n300001 True\n0 True\n", SHOW(r));
	aj_test_result_free(&r);
	free(prof);
}

/* A request body with a Content-Length, chunked, and behind Expect. */
Test(proxy, request_bodies_with_a_length_chunked_and_expect)
{
	char *prof = write_profile("fetch allow POST,PUT %s/echo\n", http.url);
	struct aj_result r;

	in_jail(&r, prof,
		"cd \"$(mktemp -d)\" && head -c 200000 /dev/urandom > body && "
		"sha=$(sha256sum body | cut -d' ' -f1) && "
		"show='import json, sys; e = json.load(sys.stdin); "
		"print(e[\"method\"], e[\"body_length\"], e[\"body_sha256\"] == sys.argv[1])' && "
		"curl -sS --data-binary @body \"$URL/echo\" | python3 -c \"$show\" $sha && "
		"curl -sS -X PUT -H 'Transfer-Encoding: chunked' --data-binary @body \"$URL/echo\" | "
		"python3 -c \"$show\" $sha && "
		"curl -sS -v -H 'Expect: 100-continue' --data-binary @body \"$URL/echo\" 2>err | "
		"python3 -c \"$show\" $sha && grep -c '^< HTTP/1.1 100 Continue' err");
	cr_assert_eq(r.status, 0, SHOW(r));
	cr_assert_str_eq(r.out, "POST 200000 True\nPUT 200000 True\nPOST 200000 True\n1\n",
			 SHOW(r));
	aj_test_result_free(&r);
	free(prof);
}

/* Several requests on one connection to the proxy (Python's http.client
 * keeps it open: the same local port each time). */
Test(proxy, keep_alive_carries_several_requests)
{
	char *prof = write_profile("fetch allow GET,POST %s/**\n", http.url);
	struct aj_result r;

	in_jail(&r, prof,
		"python3 -c \"import http.client, os\n"
		"c = http.client.HTTPConnection('127.0.0.1', 3128, timeout=20)\n"
		"ports = set()\n"
		"for m, p, b in [('GET', '/page.html', None), ('POST', '/echo', b'x' * 5000),\n"
		"                ('GET', '/bytes/70000?chunked=1', None), ('GET', '/status/404', None),\n"
		"                ('GET', '/page.html', None)]:\n"
		"    c.request(m, os.environ['URL'] + p, body=b)\n"
		"    a = c.getresponse()\n"
		"    print(a.status, len(a.read()))\n"
		"    ports.add(c.sock.getsockname()[1])\n"
		"print(len(ports), 'connection')\"");
	cr_assert_eq(r.status, 0, SHOW(r));
	cr_assert(strncmp(r.out, "200 114\n", 8) == 0, SHOW(r));
	assert_line(r.out, "200 70000");
	assert_line(r.out, "404 11");
	assert_line(r.out, "1 connection");
	cr_assert_eq(aj_server_log_count(&http, "GET /page.html"), 2);
	aj_test_result_free(&r);
	free(prof);
}

/* The broker does not follow a redirect for the proxy's clients: they
 * see it, and each hop they follow is decided again. */
Test(proxy, redirects_reach_the_client_and_each_hop_is_decided)
{
	char *prof = write_profile("fetch allow GET %s/redirect/**\nfetch allow GET %s/page.html\n",
				   http.url, http.url);
	struct aj_result r;
	char want[1024];
	json_t *audit;

	in_jail(&r, prof,
		"curl -sS -o /dev/null -w '%{http_code} %{redirect_url}\\n' "
		"\"$URL/redirect/302?to=/page.html\"; "
		"curl -sSL \"$URL/redirect/301?to=/page.html\" | grep -c Hello; "
		"curl -sSL -o /dev/null -w '%{http_code} %{num_redirects}\\n' -D - "
		"\"$URL/redirect/307?to=/secret\" | tr -d '\\r' | grep -e '^X-Agentjail' -e '^[0-9]'");
	cr_assert_eq(r.status, 0, SHOW(r));
	snprintf(want, sizeof(want),
		 "302 %s/page.html\n1\nX-Agentjail-Error: denied\n"
		 "X-Agentjail-Rule: %s/proxy.profile: no 'fetch allow' rule matches (default deny)\n"
		 "403 1\n",
		 http.url, scratch);
	cr_assert_str_eq(r.out, want, SHOW(r));
	cr_assert_eq(aj_server_log_count(&http, "GET /secret"), 0);

	/* Every hop is a request of its own: no redirect followed by the
	 * broker. */
	audit = audit_records();
	cr_assert_eq(json_array_size(audit), 5, "%zu records", json_array_size(audit));
	for (size_t i = 0; i < json_array_size(audit); i++)
		cr_assert_eq(num(json_array_get(audit, i), "redirects"), 0);
	cr_assert_eq(num(json_array_get(audit, 0), "status"), 302);
	cr_assert_str_eq(str(json_array_get(audit, 4), "decision"), "denied");
	json_decref(audit);
	aj_test_result_free(&r);
	free(prof);
}

/* Python's own clients find the proxy in the environment alone. */
Test(proxy, python_urllib_and_requests_use_the_proxy)
{
	char *prof = write_profile("fetch allow GET %s/page.html\n", http.url);
	struct aj_result r;

	/* Debian's python3 and python3-requests (scripts/setup). */
	in_jail(&r, prof,
		"/usr/bin/python3 -c \"import os, urllib.request, urllib.error, requests\n"
		"u = os.environ['URL']\n"
		"print(urllib.request.urlopen(u + '/page.html', timeout=20).status)\n"
		"print(requests.get(u + '/page.html', timeout=20).text.count('Hello'))\n"
		"try:\n"
		"    urllib.request.urlopen(u + '/secret', timeout=20)\n"
		"except urllib.error.HTTPError as e:\n"
		"    print(e.code, e.headers['X-Agentjail-Error'])\n"
		"a = requests.post(u + '/page.html', data=b'x', timeout=20)\n"
		"print(a.status_code, a.headers['X-Agentjail-Error'])\"");
	cr_assert_eq(r.status, 0, SHOW(r));
	cr_assert_str_eq(r.out, "200\n1\n403 denied\n403 denied\n", SHOW(r));
	aj_test_result_free(&r);
	free(prof);
}

/* Twenty clients at once, more than the broker's own requests in flight
 * on one channel would be if the proxy did not queue: each gets its own
 * answer whole. */
Test(proxy, many_clients_at_once_each_get_their_answer)
{
	char *prof = write_profile("fetch allow GET %s/bytes/**\n", http.url);
	struct aj_result r;

	in_jail(&r, prof,
		"cd \"$(mktemp -d)\" && for i in $(seq 1 20); do "
		"curl -sS -o $i \"$URL/bytes/$((100000 + i))\" & done; wait; "
		"python3 -c \"import os\n"
		"ok = sum(open(str(i), 'rb').read() == bytes(j % 251 for j in range(100000 + i))\n"
		"         for i in range(1, 21))\n"
		"print(ok, 'whole')\"");
	cr_assert_eq(r.status, 0, SHOW(r));
	cr_assert_str_eq(r.out, "20 whole\n", SHOW(r));
	aj_test_result_free(&r);
	free(prof);
}

/* A client that goes away mid-answer or mid-body costs nobody else: the
 * next request is served. */
Test(proxy, a_client_gone_midway_leaves_the_proxy_serving)
{
	char *prof = write_profile("fetch allow GET,POST %s/**\n", http.url);
	struct aj_result r;

	in_jail(&r, prof,
		"python3 -c \"import socket, os\n"
		"u = os.environ['URL'].encode()\n"
		"s = socket.create_connection(('127.0.0.1', 3128))\n"
		"s.sendall(b'GET ' + u + b'/bytes/20000000 HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n')\n"
		"s.recv(1000); s.close()\n"
		"s = socket.create_connection(('127.0.0.1', 3128))\n"
		"s.sendall(b'POST ' + u + b'/echo HTTP/1.1\\r\\nHost: x\\r\\nContent-Length: 100000\\r\\n"
		"\\r\\n' + b'x' * 500)\n"
		"s.close()\"; "
		"curl -sS -o /dev/null -w '%{http_code}\\n' \"$URL/page.html\"");
	cr_assert_eq(r.status, 0, SHOW(r));
	cr_assert_str_eq(r.out, "200\n", SHOW(r));
	aj_test_result_free(&r);
	free(prof);
}

/* ---- refused --------------------------------------------------------------------- */

/* A path and a method no rule allows: 403 naming why, nothing sent. */
Test(proxy, a_denied_request_is_403_with_the_reason_and_audited)
{
	char *prof = write_profile("fetch allow GET %s/page.html\nfetch deny GET %s/page.*\n"
				   "fetch allow GET %s/bytes/**\n",
				   http.url, http.url, http.url);
	struct aj_result r;
	char want[2048];
	json_t *audit, *rec;

	in_jail(&r, prof,
		"for a in \"$URL/page.html\" \"-X POST $URL/bytes/1\"; do "
		"curl -sS -D - $a | tr -d '\\r' | grep -v -e '^Content-' -e '^$'; done");
	cr_assert_eq(r.status, 0, SHOW(r));
	snprintf(want, sizeof(want),
		 "HTTP/1.1 403 Forbidden\nX-Agentjail-Error: denied\n"
		 "X-Agentjail-Rule: %s/proxy.profile:6\n"
		 "agentjail: denied (rule %s/proxy.profile:6): GET %s/page.html is denied by a "
		 "fetch deny rule\n"
		 "HTTP/1.1 403 Forbidden\nX-Agentjail-Error: denied\n"
		 "X-Agentjail-Rule: %s/proxy.profile: no 'fetch allow' rule matches (default deny)\n"
		 "agentjail: denied (rule %s/proxy.profile: no 'fetch allow' rule matches (default "
		 "deny)): no fetch rule allows POST %s/bytes/1\n",
		 scratch, scratch, http.url, scratch, scratch, http.url);
	cr_assert_str_eq(r.out, want, SHOW(r));
	cr_assert_eq(aj_server_log_count(&http, "/page.html"), 0);
	cr_assert_eq(aj_server_log_count(&http, "/bytes"), 0);
	audit = audit_records();
	cr_assert_eq(json_array_size(audit), 2);
	rec = json_array_get(audit, 1);
	cr_assert_str_eq(str(rec, "decision"), "denied");
	cr_assert_str_eq(str(rec, "method"), "POST");
	cr_assert_str_eq(str(rec, "error"), "denied");
	cr_assert_str_eq(str(rec, "via"), "proxy");
	json_decref(audit);
	aj_test_result_free(&r);
	free(prof);
}

/* The rule's limits hold for the proxy's clients too, each with its
 * status: the time limit 504, an oversized answer 502, an oversized
 * request body 413. */
Test(proxy, the_rules_limits_answer_with_their_status)
{
	char *prof = write_profile("fetch allow GET %s/slow/** timeout 300ms\n"
				   "fetch allow GET %s/bytes/** response 4K\n"
				   "fetch allow POST %s/echo max-body 1K\n",
				   http.url, http.url, http.url);
	struct aj_result r;

	in_jail(&r, prof,
		"for a in \"$URL/slow/3000\" \"$URL/bytes/10000\" \"--data-binary @/etc/services "
		"$URL/echo\"; do curl -sS -o /dev/null -D - $a | tr -d '\\r' | "
		"grep -e '^HTTP' -e '^X-Agentjail-Error'; done");
	cr_assert_eq(r.status, 0, SHOW(r));
	cr_assert_str_eq(r.out,
			 "HTTP/1.1 504 Gateway Timeout\nX-Agentjail-Error: timeout\n"
			 "HTTP/1.1 502 Bad Gateway\nX-Agentjail-Error: too_large\n"
			 "HTTP/1.1 413 Content Too Large\nX-Agentjail-Error: too_large\n",
			 SHOW(r));
	aj_test_result_free(&r);
	free(prof);
}

/* Not a proxy request (no host in the target), and an Upgrade (a
 * WebSocket), which this proxy does not relay yet: refused with their
 * codes, nothing sent upstream. */
Test(proxy, a_request_without_a_host_and_an_upgrade_are_refused)
{
	char *prof = write_profile("fetch allow GET %s/**\n", http.url);
	struct aj_result r;

	in_jail(&r, prof,
		"python3 -c \"import os, socket\n"
		"for req in [b'GET /page.html HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n',\n"
		"            b'GET ' + os.environ['URL'].encode() + b'/page.html HTTP/1.1\\r\\n'\n"
		"            b'Connection: Upgrade\\r\\nUpgrade: websocket\\r\\n\\r\\n']:\n"
		"    s = socket.create_connection(('127.0.0.1', 3128))\n"
		"    s.sendall(req)\n"
		"    print(s.recv(4096).decode().splitlines()[:2])\"");
	cr_assert_eq(r.status, 0, SHOW(r));
	cr_assert_str_eq(r.out,
			 "['HTTP/1.1 400 Bad Request', 'X-Agentjail-Error: target']\n"
			 "['HTTP/1.1 501 Not Implemented', 'X-Agentjail-Error: tunnel_unsupported']\n",
			 SHOW(r));
	cr_assert_eq(aj_server_log_count(&http, "/page.html"), 0);
	/* Refused by the proxy itself, and audited all the same. */
	{
		json_t *audit = audit_records(), *a, *b;
		char url[256];

		cr_assert_eq(json_array_size(audit), 2);
		a = json_array_get(audit, 0);
		b = json_array_get(audit, 1);
		cr_assert_str_eq(str(a, "decision"), "refused");
		cr_assert_str_eq(str(a, "error"), "target");
		cr_assert_str_eq(str(a, "url"), "");
		cr_assert_str_eq(str(a, "via"), "proxy");
		snprintf(url, sizeof(url), "%s/page.html", http.url);
		cr_assert_str_eq(str(b, "method"), "GET");
		cr_assert_str_eq(str(b, "url"), url);
		cr_assert_str_eq(str(b, "error"), "tunnel_unsupported");
		json_decref(audit);
	}
	aj_test_result_free(&r);
	free(prof);
}

/* ---- the jail's own loopback ------------------------------------------------------ */

/* The agent's own server on the jail's loopback is reached directly (it
 * is in NO_PROXY), beside the host's service that a rule names, which
 * goes through the proxy: both in one run. */
Test(proxy, the_agents_own_server_stays_direct)
{
	char *prof = write_profile("fetch allow GET %s/page.html\n", http.url);
	struct aj_result r;

	in_jail(&r, prof,
		"cd \"$(mktemp -d)\" && echo own > own.html && "
		"python3 -c \"import http.server, threading, subprocess, os\n"
		"class H(http.server.SimpleHTTPRequestHandler):\n"
		"    def log_message(self, *a): pass\n"
		"for addr, host in [('::1', '[::1]'), ('localhost', 'localhost')]:\n"
		"    http.server.ThreadingHTTPServer.address_family = 10 if addr == '::1' else 2\n"
		"    s = http.server.ThreadingHTTPServer((addr, 0), H)\n"
		"    threading.Thread(target=s.serve_forever, daemon=True).start()\n"
		"    u = 'http://%s:%d/own.html' % (host, s.server_address[1])\n"
		"    subprocess.run(['curl', '-sS', u], check=True)\n"
		"    s.shutdown()\n"
		"subprocess.run(['curl', '-sS', '-o', '/dev/null', '-w', '%{http_code}\\\\n',\n"
		"                os.environ['URL'] + '/page.html'], check=True)\"");
	cr_assert_eq(r.status, 0, SHOW(r));
	cr_assert_str_eq(r.out, "own\nown\n200\n", SHOW(r));
	/* Only the host's service went through the broker. */
	cr_assert_eq(aj_server_log_count(&http, "GET /page.html"), 1);
	aj_test_result_free(&r);
	free(prof);
}

/* The proxy's port is taken in the jail: the agent cannot put a listener
 * of its own there. */
Test(proxy, the_agent_cannot_take_the_proxy_port)
{
	char *prof = write_profile("fetch allow GET %s/**\n", http.url);
	struct aj_result r;

	in_jail(&r, prof,
		"python3 -c \"import socket\n"
		"for fam, addr in [(socket.AF_INET, '127.0.0.1'), (socket.AF_INET6, '::1')]:\n"
		"    s = socket.socket(fam)\n"
		"    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
		"    try:\n"
		"        s.bind((addr, 3128)); s.listen(); print('bound')\n"
		"    except OSError as e:\n"
		"        print(e.strerror)\"");
	cr_assert_eq(r.status, 0, SHOW(r));
	cr_assert_str_eq(r.out, "Address already in use\nAddress already in use\n", SHOW(r));
	aj_test_result_free(&r);
	free(prof);
}
