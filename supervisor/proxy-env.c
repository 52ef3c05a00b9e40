/*
 * `proxy on`: the variables that point the common tools at the proxy, one
 * table (docs/PROFILES.md#proxy lists it for users).  The proxy listens on
 * the jail's own loopback; the jail's own servers stay direct (NO_PROXY
 * lists localhost, 127.0.0.1 and ::1), except a loopback address an allow
 * rule names: that is a service on the host's loopback, which only the
 * broker reaches, so it goes through the proxy.
 * A variable the profile sets itself (`env set`) keeps the profile's value,
 * and an embedder's additions come after these.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "supervisor.h"

/* What each variable holds: the proxy's URL, the jail's trust bundle, or
 * a fixed text. */
enum proxy_value { PROXY_URL, NO_PROXY_LIST, ONE, JAVA_OPTIONS, CA_BUNDLE };

static const struct {
	const char *name;
	enum proxy_value value;
} proxy_vars[] = {
	/* curl, wget, Python (urllib, requests, pip, uv), git, Go, Rust
	 * (reqwest), Ruby: both cases, as tools differ. */
	{"HTTP_PROXY", PROXY_URL},
	{"HTTPS_PROXY", PROXY_URL},
	{"http_proxy", PROXY_URL},
	{"https_proxy", PROXY_URL},
	{"ALL_PROXY", PROXY_URL},
	{"all_proxy", PROXY_URL},
	/* gRPC's own names. */
	{"GRPC_PROXY", PROXY_URL},
	{"grpc_proxy", PROXY_URL},
	/* The jail's own servers (127.0.0.1, ::1) are not the proxy's. */
	{"NO_PROXY", NO_PROXY_LIST},
	{"no_proxy", NO_PROXY_LIST},
	/* Node 24+ (and 22.21+) honour the variables above only when asked. */
	{"NODE_USE_ENV_PROXY", ONE},
	/* npm, yarn, pip read their own names first. */
	{"npm_config_proxy", PROXY_URL},
	{"npm_config_https_proxy", PROXY_URL},
	{"YARN_HTTP_PROXY", PROXY_URL},
	{"YARN_HTTPS_PROXY", PROXY_URL},
	{"PIP_PROXY", PROXY_URL},
	/* agentjail's own: `agentjail connect` finds the proxy here. */
	{"AGENTJAIL_PROXY", PROXY_URL},
	/* The JVM: system properties. */
	{"JAVA_TOOL_OPTIONS", JAVA_OPTIONS},
	/* The jail's trust (the system's certificates and the broker's CA),
	 * for the tools that read a bundle of their own before, or instead
	 * of, the system's: OpenSSL (Python's ssl, Ruby), curl, requests,
	 * pip, Node (added to its built-in roots), git, the AWS SDKs, cargo,
	 * Deno, npm, bundler, Nix. */
	{"SSL_CERT_FILE", CA_BUNDLE},
	{"CURL_CA_BUNDLE", CA_BUNDLE},
	{"REQUESTS_CA_BUNDLE", CA_BUNDLE},
	{"PIP_CERT", CA_BUNDLE},
	{"NODE_EXTRA_CA_CERTS", CA_BUNDLE},
	{"GIT_SSL_CAINFO", CA_BUNDLE},
	{"AWS_CA_BUNDLE", CA_BUNDLE},
	{"CARGO_HTTP_CAINFO", CA_BUNDLE},
	{"DENO_CERT", CA_BUNDLE},
	{"npm_config_cafile", CA_BUNDLE},
	{"BUNDLE_SSL_CA_CERT", CA_BUNDLE},
	{"NIX_SSL_CERT_FILE", CA_BUNDLE},
};

/* The jail's own names, direct unless a rule names them (then they mean
 * the host's). */
static const char *const loopback_names[] = {"localhost", "127.0.0.1", "::1"};

static bool
a_rule_names(const struct aj_profile *profile, const char *host)
{
	for (size_t i = 0; i < profile->fetch.n_rules; i++)
		if (profile->fetch.rules[i].allow && strcmp(profile->fetch.rules[i].host, host) == 0)
			return true;
	return false;
}

static void
no_proxy_list(const struct aj_profile *profile, char *out, size_t len)
{
	size_t used = 0;

	out[0] = '\0';
	for (size_t i = 0; i < AJ_ARRAY_SIZE(loopback_names); i++) {
		int n;

		if (a_rule_names(profile, loopback_names[i]))
			continue;
		n = snprintf(out + used, len - used, "%s%s", used ? "," : "", loopback_names[i]);
		if (n > 0 && (size_t)n < len - used)
			used += (size_t)n;
	}
}

static bool
profile_sets(const struct aj_profile *profile, const char *name)
{
	size_t n = strlen(name);

	for (size_t i = 0; i < profile->n_env_set; i++)
		if (strncmp(profile->env_set[i], name, n) == 0 && profile->env_set[i][n] == '=')
			return true;
	return false;
}

int
aj_proxy_env_apply(const struct aj_profile *profile, char ***env)
{
	unsigned port = profile->proxy_port;
	char url[64], java[256], no_proxy[64];
	int r = 0;

	if (port == 0)
		return 0;
	snprintf(url, sizeof(url), "http://127.0.0.1:%u", port);
	no_proxy_list(profile, no_proxy, sizeof(no_proxy));
	snprintf(java, sizeof(java),
		 "-Dhttp.proxyHost=127.0.0.1 -Dhttp.proxyPort=%u -Dhttps.proxyHost=127.0.0.1 "
		 "-Dhttps.proxyPort=%u",
		 port, port);
	for (size_t i = 0; r == 0 && i < AJ_ARRAY_SIZE(proxy_vars); i++) {
		const char *value = proxy_vars[i].value == PROXY_URL	   ? url
				    : proxy_vars[i].value == NO_PROXY_LIST ? no_proxy
				    : proxy_vars[i].value == ONE	   ? "1"
				    : proxy_vars[i].value == CA_BUNDLE	   ? AJ_JAIL_CA_BUNDLE
									   : java;

		if (!profile_sets(profile, proxy_vars[i].name))
			r = aj_env_set(env, proxy_vars[i].name, value);
	}
	return r;
}
