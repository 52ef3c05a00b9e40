/*
 * The tunnel rules (common/tunnel.h): `tunnel allow|deny HOST:PORT`.
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "lexer.h"
#include "log.h"
#include "policy.h"
#include "tunnel.h"

/* "HOST:PORT", "*.suffix:PORT" or "[v6]:PORT" into RULE's host and port:
 * through the URL parser's authority rules, as a fetch pattern's host. */
static int
parse_target(const char *s, struct aj_tunnel_rule *rule, char *err, size_t errlen)
{
	size_t len = strlen(s);
	const char *close = strrchr(s, ']'), *colon = strrchr(s, ':');
	char host[256];
	unsigned port;
	int kind, rc;
	bool wild = false;

	if (aj_url_check_bytes(s, len, "tunnel target", err, errlen) < 0)
		return -EINVAL;
	/* The port is required: the default of no scheme applies. */
	if (colon == NULL || (close != NULL && colon < close))
		return aj_err(err, errlen, -EINVAL,
			      "'%s': expected HOST:PORT (the port is required)", s);
	if (len >= 2 && s[0] == '*' && s[1] == '.') {
		wild = true;
		s += 2;
		len -= 2;
	}
	if (memchr(s, '*', len) != NULL)
		return aj_err(err, errlen, -EINVAL,
			      "'*' in a tunnel host is only allowed as a leading '*.'");
	if (len == 0 || *s == ':')
		return aj_err(err, errlen, -EINVAL, "the tunnel target has an empty host");
	if (strchr(s, '/') != NULL || strchr(s, '@') != NULL)
		return aj_err(err, errlen, -EINVAL, "'%s': expected HOST:PORT, not a URL", s);
	rc = aj_url_parse_authority(s, len, 0, host, &kind, &port, err, errlen);
	if (rc < 0)
		return rc;
	if (wild && kind != AJ_HOST_NAME)
		return aj_err(err, errlen, -EINVAL,
			      "'*.' can only precede a DNS name, not an IP address");
	if (wild && strlen(host) + 2 >= sizeof(rule->host))
		return aj_err(err, errlen, -EINVAL, "the tunnel host is too long");
	if (wild) {
		memcpy(rule->host, "*.", 2);
		memcpy(rule->host + 2, host, strlen(host) + 1);
	} else {
		memcpy(rule->host, host, strlen(host) + 1);
	}
	rule->port = port;
	return 0;
}

int
aj_tunnel_parse_rule(char *line, struct aj_tunnel_rule *rule, char *err, size_t errlen)
{
	char *cursor = line, *word;
	char *action = aj_lexer_token(&cursor), *target = aj_lexer_token(&cursor);
	struct aj_tunnel_rule r;
	bool idle_seen = false;
	int rc;

	if (action == NULL)
		return aj_err(err, errlen, -EINVAL, "missing 'allow' or 'deny'");
	if (strcmp(action, "allow") != 0 && strcmp(action, "deny") != 0)
		return aj_err(err, errlen, -EINVAL, "expected 'allow' or 'deny', got '%s'", action);
	if (target == NULL)
		return aj_err(err, errlen, -EINVAL, "expected HOST:PORT");
	memset(&r, 0, sizeof(r));
	r.allow = strcmp(action, "allow") == 0;
	r.idle_ms = AJ_TUNNEL_IDLE_DEFAULT;
	if ((rc = parse_target(target, &r, err, errlen)) < 0)
		return rc;
	while ((word = aj_lexer_token(&cursor)) != NULL) {
		struct aj_fetch_limits l = {0};
		char *value;

		if (strcmp(word, "idle") != 0)
			return aj_err(err, errlen, -EINVAL, "unknown option '%s' (expected 'idle')",
				      word);
		if (!r.allow)
			return aj_err(err, errlen, -EINVAL, "'idle' is an option of allow rules");
		if (idle_seen)
			return aj_err(err, errlen, -EINVAL, "'idle' given twice");
		value = aj_lexer_token(&cursor);
		if (value == NULL)
			return aj_err(err, errlen, -EINVAL, "idle: missing DURATION");
		/* A duration as the fetch limits read one (ms, s, m). */
		if (aj_policy_parse_limit("timeout", value, &l, err, errlen) < 0)
			return aj_err(err, errlen, -EINVAL,
				      "idle: expected a duration from 1ms to 24h, got '%s'", value);
		r.idle_ms = l.value[AJ_LIMIT_TIMEOUT];
		idle_seen = true;
	}
	memcpy(r.origin, rule->origin, sizeof(r.origin));
	*rule = r;
	return 0;
}

void
aj_tunnel_rule_text(const struct aj_tunnel_rule *r, char *out, size_t len)
{
	bool v6 = strchr(r->host, ':') != NULL;
	char idle[32] = "";

	if (r->allow && r->idle_ms != AJ_TUNNEL_IDLE_DEFAULT) {
		memcpy(idle, " idle ", 6);
		aj_policy_format_limit(AJ_LIMIT_TIMEOUT, r->idle_ms, idle + 6, sizeof(idle) - 6);
	}
	snprintf(out, len, "%s %s%s%s:%u%s", r->allow ? "allow" : "deny", v6 ? "[" : "", r->host,
		 v6 ? "]" : "", r->port, idle);
}

const char *
aj_tunnel_rule_invalid(const struct aj_tunnel_rule *r)
{
	if (r->allow != 0 && r->allow != 1)
		return "a tunnel rule that is neither allow nor deny";
	if (memchr(r->host, '\0', sizeof(r->host)) == NULL || r->host[0] == '\0')
		return "a tunnel rule without a host";
	if (r->port == 0 || r->port > 65535)
		return "a tunnel rule whose port is out of range";
	if (r->idle_ms == 0 || r->idle_ms > AJ_TUNNEL_IDLE_MAX)
		return "a tunnel rule whose idle time is out of range";
	if (memchr(r->origin, '\0', sizeof(r->origin)) == NULL)
		return "a tunnel rule with an unterminated origin";
	return NULL;
}

int
aj_tunnel_decide(const struct aj_tunnel_rule *rules, size_t n, const char *host, int kind,
		 unsigned port, size_t *decided)
{
	size_t allow = (size_t)-1;

	for (size_t i = 0; i < n; i++) {
		if (rules[i].port != port || !aj_policy_is_host_match(rules[i].host, host, kind))
			continue;
		if (!rules[i].allow) {
			*decided = i;
			return 0;
		}
		if (allow == (size_t)-1)
			allow = i;
	}
	if (allow == (size_t)-1)
		return -1;
	*decided = allow;
	return 1;
}
