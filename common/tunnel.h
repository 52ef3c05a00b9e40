/*
 * `tunnel allow|deny HOST:PORT [idle DURATION]`: the profile's rules for
 * raw TCP relays through the proxy (a CONNECT that a tunnel rule covers is
 * relayed as it is, not intercepted: broker/proxy-relay.c).  Parsing, the
 * canonical text and the pure decision; no allocation, no global state.
 * Hosts are read as the fetch rules' are (common/policy.c): exact, or
 * "*.suffix" for any name strictly below suffix, never an IP address.
 */
#ifndef AJ_TUNNEL_H
#define AJ_TUNNEL_H

#include <stddef.h>
#include <stdint.h>

/* How long a tunnel may carry nothing either way, by default and at most
 * (ms). */
#define AJ_TUNNEL_IDLE_DEFAULT (5u * 60 * 1000)
#define AJ_TUNNEL_IDLE_MAX (24ull * 3600 * 1000)

/* Tunnel rules in one policy. */
#define AJ_TUNNEL_MAX_RULES 256

struct aj_tunnel_rule {
	int allow;        /* 1 allow, 0 deny */
	char host[256];   /* as aj_fetch_rule's host: exact, or "*.suffix" */
	unsigned port;    /* required: 1-65535 */
	uint64_t idle_ms; /* "idle DURATION" (AJ_TUNNEL_IDLE_DEFAULT when not given) */
	char origin[512]; /* "file:line" of the rule, for audit and errors */
};

/* Parse "allow|deny HOST:PORT [idle DURATION]" (LINE is modified; ORIGIN
 * is not touched).  Returns 0 or -EINVAL with ERR. */
int aj_tunnel_parse_rule(char *line, struct aj_tunnel_rule *rule, char *err, size_t errlen);

/* The canonical text aj_tunnel_parse_rule() reads back:
 * "allow git.example.org:22 idle 300000ms". */
void aj_tunnel_rule_text(const struct aj_tunnel_rule *rule, char *out, size_t len);

/* Is RULE one the decision may take for granted (the hand-over's check)? */
const char *aj_tunnel_rule_invalid(const struct aj_tunnel_rule *rule);

/* Decide a CONNECT to HOST (normalised, of KIND: AJ_HOST_*) and PORT: deny
 * rules win over allow rules.  Returns 1 allowed, 0 denied by a rule, -1
 * no rule covers it; *DECIDED is the deciding rule's index (unset for -1). */
int aj_tunnel_decide(const struct aj_tunnel_rule *rules, size_t n, const char *host, int kind,
		     unsigned port, size_t *decided);

#endif /* AJ_TUNNEL_H */
