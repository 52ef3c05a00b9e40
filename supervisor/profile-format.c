/*
 * The resolved profile printed back: the canonical text (what `profile
 * show` prints and the policy's sha256 covers) and the JSON of `profile
 * show --json`.  Both depend only on the policy, never on the layout of
 * the files that produced it.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sha2.h>

#include "addr.h"
#include "log.h"
#include "supervisor.h"
#include "tunnel.h"

/*
 * The canonical text re-parses to the same policy: it is what `profile show`
 * prints and what the audit hash covers, so it depends only on the policy,
 * never on how the files that produced it were laid out.
 */
int
aj_profile_format_text(const struct aj_profile *pr, char **out)
{
	char *buf = NULL;
	size_t size = 0, i;
	FILE *f;
	int bad = 0;

	f = open_memstream(&buf, &size);
	if (f == NULL)
		return -ENOMEM;
	bad |= fprintf(f, "hostname %s\n", pr->hostname) < 0;
	bad |= fprintf(f, "user %s\n", pr->user) < 0;
	bad |= fprintf(f, "broker-user %s\n", pr->broker_user) < 0;
	if (pr->n_env_keep > 0) {
		bad |= fputs("env keep", f) < 0;
		for (i = 0; i < pr->n_env_keep; i++)
			bad |= fprintf(f, " %s", pr->env_keep[i]) < 0;
		bad |= fputc('\n', f) < 0;
	}
	for (i = 0; i < pr->n_env_set; i++)
		bad |= fprintf(f, "env set %s\n", pr->env_set[i]) < 0;
	for (i = 0; i < AJ_RLIMIT__COUNT; i++) {
		if (!pr->rlimits[i].set)
			continue;
		if (pr->rlimits[i].value == AJ_RLIM_UNLIMITED)
			bad |= fprintf(f, "rlimit %s unlimited\n", aj_profile_rlimit_name(i)) < 0;
		else
			bad |= fprintf(f, "rlimit %s %llu\n", aj_profile_rlimit_name(i),
				       (unsigned long long)pr->rlimits[i].value) < 0;
	}
	bad |= fprintf(f, "tmpfs-size %llu\n", (unsigned long long)pr->tmpfs_size) < 0;
	bad |= fprintf(f, "socket unix %s\n", pr->allow_unix_sockets ? "allow" : "deny") < 0;
	bad |= fprintf(f, "socket inet %s\n", pr->loopback_sockets ? "loopback" : "deny") < 0;
	if (pr->proxy_port != 0)
		bad |= fprintf(f, "proxy on port %u\n", (unsigned)pr->proxy_port) < 0;
	else
		bad |= fprintf(f, "proxy off\n") < 0;
	for (i = 0; i < pr->fetch.n_tunnels; i++) {
		char text[1024];

		aj_tunnel_rule_text(&pr->fetch.tunnels[i], text, sizeof(text));
		bad |= fprintf(f, "tunnel %s\n", text) < 0;
	}
	bad |= fprintf(f, "on-violation %s\n", pr->kill_on_violation ? "kill" : "deny") < 0;
	for (i = 0; i < aj_profile_n_layers; i++)
		if (pr->optional_layers & aj_profile_layers[i].bit)
			bad |= fprintf(f, "optional %s\n", aj_profile_layers[i].name) < 0;
	for (i = 0; i < pr->fetch.n_rules; i++) {
		char text[AJ_URL_MAX + 400];
		aj_profile_rule_text(&pr->fetch.rules[i], text, sizeof(text));
		bad |= fprintf(f, "%s\n", text) < 0;
	}
	bad |= fprintf(f, "fetch limit") < 0;
	for (i = 0; i < AJ_LIMIT__COUNT; i++) {
		char value[32];

		aj_policy_format_limit(i, pr->fetch.limits.value[i], value, sizeof(value));
		bad |= fprintf(f, " %s %s", aj_policy_limit_name(i), value) < 0;
	}
	bad |= fprintf(f, "\n") < 0;
	for (i = 0; i < pr->fetch.n_addresses; i++) {
		char text[64];

		aj_cidr_format(&pr->fetch.addresses[i], text, sizeof(text));
		bad |= fprintf(f, "fetch address allow %s\n", text) < 0;
	}
	if (pr->fetch.ca_file != NULL)
		bad |= fprintf(f, "fetch ca %s\n", pr->fetch.ca_file) < 0;
	bad |= fclose(f) != 0;
	if (bad) {
		free(buf);
		return -ENOMEM;
	}
	*out = buf;
	return 0;
}

int
aj_profile_sha256(const struct aj_profile *pr, char hex[65])
{
	static const char digits[] = "0123456789abcdef";
	uint8_t md[SHA256_DIGEST_LENGTH];
	SHA2_CTX ctx;
	char *text;
	int r;

	r = aj_profile_format_text(pr, &text);
	if (r < 0)
		return r;
	SHA256Init(&ctx);
	SHA256Update(&ctx, (const uint8_t *)text, strlen(text));
	SHA256Final(md, &ctx);
	free(text);
	for (size_t i = 0; i < sizeof(md); i++) {
		hex[2 * i] = digits[md[i] >> 4];
		hex[2 * i + 1] = digits[md[i] & 0xf];
	}
	hex[64] = '\0';
	return 0;
}

/* jansson refuses strings that are not UTF-8 (a file name or an env value
 * may be anything); escape those rather than fail the whole document. */
static json_t *
json_str(const char *s)
{
	json_t *j = json_string(s);
	char *esc;
	size_t n;

	if (j != NULL)
		return j;
	n = strlen(s) * 4 + 1;
	esc = malloc(n);
	if (esc == NULL)
		return NULL;
	aj_log_escape(s, esc, n);
	j = json_string(esc);
	free(esc);
	return j;
}

int
aj_profile_format_json(const struct aj_profile *pr, char **out)
{
	json_t *root, *keep, *set, *rl, *opt;
	char hex[65], *eq, *name, *s;
	size_t i;
	int bad = 0, r;

	r = aj_profile_sha256(pr, hex);
	if (r < 0)
		return r;
	root = json_object();
	keep = json_array();
	set = json_object();
	rl = json_object();
	opt = json_array();
	if (root == NULL || keep == NULL || set == NULL || rl == NULL || opt == NULL) {
		json_decref(root);
		json_decref(keep);
		json_decref(set);
		json_decref(rl);
		json_decref(opt);
		return -ENOMEM;
	}
	/* The _new setters take the reference even when they fail, so one
	 * error flag and one decref of ROOT clean up everything. */
	bad |= json_object_set_new(root, "name", json_str(pr->name));
	bad |= json_object_set_new(root, "path", json_str(pr->path));
	bad |= json_object_set_new(root, "sha256", json_string(hex));
	bad |= json_object_set_new(root, "hostname", json_str(pr->hostname));
	bad |= json_object_set_new(root, "user", json_str(pr->user));
	bad |= json_object_set_new(root, "broker_user", json_str(pr->broker_user));
	for (i = 0; i < pr->n_env_keep; i++)
		bad |= json_array_append_new(keep, json_str(pr->env_keep[i]));
	bad |= json_object_set_new(root, "env_keep", keep);
	for (i = 0; i < pr->n_env_set; i++) {
		eq = strchr(pr->env_set[i], '=');
		name = strndup(pr->env_set[i], (size_t)(eq - pr->env_set[i]));
		if (name == NULL) {
			bad = 1;
			continue;
		}
		bad |= json_object_set_new(set, name, json_str(eq + 1));
		free(name);
	}
	bad |= json_object_set_new(root, "env_set", set);
	for (i = 0; i < AJ_RLIMIT__COUNT; i++) {
		if (!pr->rlimits[i].set)
			continue;
		bad |= json_object_set_new(
			rl, aj_profile_rlimit_name(i),
			pr->rlimits[i].value == AJ_RLIM_UNLIMITED
				? json_string("unlimited")
				: json_integer((json_int_t)pr->rlimits[i].value));
	}
	bad |= json_object_set_new(root, "rlimits", rl);
	bad |= json_object_set_new(root, "tmpfs_size", json_integer((json_int_t)pr->tmpfs_size));
	bad |= json_object_set_new(root, "socket_unix",
				   json_string(pr->allow_unix_sockets ? "allow" : "deny"));
	bad |= json_object_set_new(root, "socket_inet",
				   json_string(pr->loopback_sockets ? "loopback" : "deny"));
	bad |= json_object_set_new(root, "proxy",
				   pr->proxy_port != 0
					   ? json_pack("{s:b, s:i}", "on", 1, "port", (int)pr->proxy_port)
					   : json_pack("{s:b}", "on", 0));
	bad |= json_object_set_new(root, "on_violation",
				   json_string(pr->kill_on_violation ? "kill" : "deny"));
	for (i = 0; i < aj_profile_n_layers; i++)
		if (pr->optional_layers & aj_profile_layers[i].bit)
			bad |= json_array_append_new(opt, json_string(aj_profile_layers[i].name));
	bad |= json_object_set_new(root, "optional", opt);
	{
		json_t *rules = json_array();
		char text[AJ_URL_MAX + 400];

		for (i = 0; rules != NULL && i < pr->fetch.n_rules; i++) {
			aj_profile_rule_text(&pr->fetch.rules[i], text, sizeof(text));
			bad |= json_array_append_new(
				rules, json_pack("{s:s, s:s}", "rule", text + strlen("fetch "),
						 "origin", pr->fetch.rules[i].origin));
		}
		bad |= json_object_set_new(root, "fetch", rules);
	}
	{
		json_t *tunnels = json_array();
		char text[1024];

		for (i = 0; tunnels != NULL && i < pr->fetch.n_tunnels; i++) {
			aj_tunnel_rule_text(&pr->fetch.tunnels[i], text, sizeof(text));
			bad |= json_array_append_new(
				tunnels, json_pack("{s:s, s:s}", "rule", text, "origin",
						   pr->fetch.tunnels[i].origin));
		}
		bad |= json_object_set_new(root, "tunnels", tunnels);
	}
	{
		json_t *limits = json_object(), *addrs = json_array();
		char text[64];

		for (i = 0; limits != NULL && i < AJ_LIMIT__COUNT; i++)
			bad |= json_object_set_new(
				limits, aj_policy_limit_name(i),
				json_integer((json_int_t)pr->fetch.limits.value[i]));
		bad |= json_object_set_new(root, "fetch_limits", limits);
		for (i = 0; addrs != NULL && i < pr->fetch.n_addresses; i++) {
			aj_cidr_format(&pr->fetch.addresses[i], text, sizeof(text));
			bad |= json_array_append_new(addrs, json_string(text));
		}
		bad |= json_object_set_new(root, "fetch_addresses", addrs);
		if (pr->fetch.ca_file != NULL)
			bad |= json_object_set_new(root, "fetch_ca",
						   json_pack("{s:s, s:s}", "path",
							     pr->fetch.ca_file, "pem",
							     pr->fetch.ca_pem));
	}
	s = bad ? NULL : json_dumps(root, JSON_INDENT(2));
	json_decref(root);
	if (s == NULL)
		return -ENOMEM;
	*out = s;
	return 0;
}
