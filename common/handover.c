/*
 * The fetch policy's hand-over from the supervisor to the broker
 * (common/handover.h): one encoder, one decoder.
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "addr.h"
#include "handover.h"
#include "log.h"
#include "memfd.h"
#include "tunnel.h"

#define HANDOVER_MAGIC "AJPOLICY"
#define HANDOVER_VERSION 3

/* What precedes the records; the sizes make a broker of another build
 * refuse the policy instead of misreading it. */
struct header {
	char magic[8];
	uint32_t version;
	uint32_t rule_size;
	uint32_t cidr_size;
	uint32_t n_rules;
	uint32_t n_addresses;
	uint32_t path_len; /* without a NUL */
	uint32_t ca_len;   /* without a NUL; 0: no `fetch ca` */
	uint32_t has_ca;
	uint32_t secrets_len; /* bytes of the secrets' section; 0: none */
	uint32_t tunnel_size; /* the tunnel rules, after the ranges */
	uint32_t n_tunnels;
	uint32_t zero; /* 0: the limits follow without padding, so that every byte of
			  the header is one the encoder wrote */
	struct aj_fetch_limits limits;
};

/* Every byte of the header is a field: no padding to leak or to differ. */
_Static_assert(sizeof(struct header) == 8 + 12 * sizeof(uint32_t) + sizeof(struct aj_fetch_limits),
	       "struct header has padding");

/* The most bytes a policy within its bounds takes. */
#define HANDOVER_MAX                                                                               \
	(sizeof(struct header) + AJ_POLICY_MAX_RULES * sizeof(struct aj_fetch_rule) +              \
	 AJ_POLICY_MAX_ADDRESSES * sizeof(struct aj_cidr) +                                        \
	 AJ_TUNNEL_MAX_RULES * sizeof(struct aj_tunnel_rule) + AJ_POLICY_MAX_PATH +                \
	 2 * AJ_POLICY_MAX_CA + SECRETS_MAX)

/* The secrets' section: for each rule, in order, a uint32_t length (0
 * where the rule injects nothing) and that many bytes. */
#define SECRETS_MAX ((size_t)AJ_POLICY_MAX_RULES * (sizeof(uint32_t) + AJ_POLICY_MAX_SECRET))

static size_t
secrets_size(const struct aj_policy *p)
{
	size_t n = 0;

	if (p->secrets == NULL)
		return 0;
	for (size_t i = 0; i < p->n_rules; i++)
		n += sizeof(uint32_t) + (p->secrets[i] ? strlen(p->secrets[i]) : 0);
	return n;
}

int
aj_handover_encode(const struct aj_policy *p, uint8_t **out, size_t *len)
{
	size_t path_len = p->path ? strlen(p->path) : 0, ca_len = p->ca_pem ? strlen(p->ca_pem) : 0;
	size_t rules = p->n_rules * sizeof(*p->rules),
	       cidrs = p->n_addresses * sizeof(*p->addresses),
	       tunnels = p->n_tunnels * sizeof(*p->tunnels);
	struct header h = {
		.version = HANDOVER_VERSION,
		.rule_size = sizeof(struct aj_fetch_rule),
		.cidr_size = sizeof(struct aj_cidr),
		.tunnel_size = sizeof(struct aj_tunnel_rule),
		.n_rules = (uint32_t)p->n_rules,
		.n_tunnels = (uint32_t)p->n_tunnels,
		.n_addresses = (uint32_t)p->n_addresses,
		.path_len = (uint32_t)path_len,
		.ca_len = (uint32_t)ca_len,
		.has_ca = p->ca_pem != NULL,
		.secrets_len = (uint32_t)secrets_size(p),
		.limits = p->limits,
	};
	size_t total = sizeof(h) + rules + cidrs + tunnels + path_len + ca_len + h.secrets_len;
	uint8_t *buf = malloc(total), *w = buf;

	if (buf == NULL)
		return -ENOMEM;
	memcpy(h.magic, HANDOVER_MAGIC, sizeof(h.magic));
	memcpy(w, &h, sizeof(h));
	w += sizeof(h);
	if (rules > 0)
		memcpy(w, p->rules, rules);
	w += rules;
	if (cidrs > 0)
		memcpy(w, p->addresses, cidrs);
	w += cidrs;
	if (tunnels > 0)
		memcpy(w, p->tunnels, tunnels);
	w += tunnels;
	if (path_len > 0)
		memcpy(w, p->path, path_len);
	w += path_len;
	if (ca_len > 0)
		memcpy(w, p->ca_pem, ca_len);
	w += ca_len;
	for (size_t i = 0; h.secrets_len > 0 && i < p->n_rules; i++) {
		uint32_t n = p->secrets[i] ? (uint32_t)strlen(p->secrets[i]) : 0;

		memcpy(w, &n, sizeof(n));
		w += sizeof(n);
		if (n > 0)
			memcpy(w, p->secrets[i], n);
		w += n;
	}
	*out = buf;
	*len = total;
	return 0;
}

static bool
terminated(const char *s, size_t size)
{
	return memchr(s, '\0', size) != NULL;
}

static bool
limits_valid(const struct aj_fetch_limits *l)
{
	if (l->set & ~((1u << AJ_LIMIT__COUNT) - 1))
		return false;
	for (int k = 0; k < AJ_LIMIT__COUNT; k++)
		if ((l->set & (1u << k)) && !aj_policy_limit_is_valid(k, l->value[k]))
			return false;
	return true;
}

/* What the matcher and the fetcher take for granted of a rule. */
static const char *
rule_invalid(const struct aj_fetch_rule *r)
{
	char why[256];

	if (r->allow != 0 && r->allow != 1)
		return "a rule that is neither allow nor deny";
	if (r->methods == 0 || (r->methods & ~AJ_METHOD_ALL))
		return "a rule without methods";
	if (!terminated(r->scheme, sizeof(r->scheme)) ||
	    (strcmp(r->scheme, "http") != 0 && strcmp(r->scheme, "https") != 0))
		return "a rule whose scheme is not http or https";
	if (!terminated(r->host, sizeof(r->host)) || r->host[0] == '\0')
		return "a rule without a host";
	if (r->port == 0 || r->port > 65535)
		return "a rule whose port is out of range";
	if (!terminated(r->path, sizeof(r->path)) || r->path[0] != '/')
		return "a rule whose path does not start with '/'";
	if (!terminated(r->query, sizeof(r->query)) || !terminated(r->origin, sizeof(r->origin)))
		return "a rule with an unterminated query or origin";
	if (!limits_valid(&r->limits))
		return "a rule with a limit out of range";
	if (r->options & ~AJ_RULE_ALL)
		return "a rule with an unknown option";
	if (!terminated(r->inject_name, sizeof(r->inject_name)) ||
	    !terminated(r->inject_source, sizeof(r->inject_source)) ||
	    (r->inject_name[0] != '\0') != (r->inject_source[0] != '\0') ||
	    (r->inject_name[0] != '\0' && !r->allow))
		return "a rule with a malformed inject";
	if (r->inject_name[0] != '\0' && !aj_policy_inject_name_ok(r->inject_name, why, sizeof(why)))
		return "a rule injecting a header it may not";
	return NULL;
}

static bool
cidr_valid(const struct aj_cidr *c)
{
	return (c->family == AF_INET && c->prefix <= 32) ||
	       (c->family == AF_INET6 && c->prefix <= 128);
}

/* LEN bytes at P as a new string, or NULL. */
static char *
string_of(const uint8_t *p, size_t len)
{
	char *s = malloc(len + 1);

	if (s != NULL) {
		memcpy(s, p, len);
		s[len] = '\0';
	}
	return s;
}

/* The secrets' section (LEN bytes at BUF) into P->secrets: exactly one
 * secret for each rule that injects, none for the others. */
static int
decode_secrets(const uint8_t *buf, size_t len, struct aj_policy *p, char *err, size_t errlen)
{
	char why[256];
	size_t off = 0;

	if (len == 0) {
		for (size_t i = 0; i < p->n_rules; i++)
			if (p->rules[i].inject_name[0] != '\0')
				return aj_err(err, errlen, -EBADMSG,
					      "the policy lacks the secret of the rule at %s",
					      p->rules[i].origin);
		return 0;
	}
	p->secrets = calloc(p->n_rules ? p->n_rules : 1, sizeof(*p->secrets));
	if (p->secrets == NULL)
		return aj_err(err, errlen, -ENOMEM, "out of memory");
	for (size_t i = 0; i < p->n_rules; i++) {
		uint32_t n;

		if (len - off < sizeof(n))
			return aj_err(err, errlen, -EBADMSG, "the policy's secrets are cut short");
		memcpy(&n, buf + off, sizeof(n));
		off += sizeof(n);
		if (n > len - off)
			return aj_err(err, errlen, -EBADMSG, "the policy's secrets are cut short");
		if ((n > 0) != (p->rules[i].inject_name[0] != '\0'))
			return aj_err(err, errlen, -EBADMSG,
				      "the policy's secrets do not match its rules (at %s)",
				      p->rules[i].origin);
		if (n > 0 && !aj_policy_secret_ok((const char *)buf + off, n, why, sizeof(why)))
			return aj_err(err, errlen, -EBADMSG,
				      "the secret of the rule at %s is invalid: %s",
				      p->rules[i].origin, why);
		if (n > 0 && (p->secrets[i] = string_of(buf + off, n)) == NULL)
			return aj_err(err, errlen, -ENOMEM, "out of memory");
		off += n;
	}
	if (off != len)
		return aj_err(err, errlen, -EBADMSG, "the policy's secrets are longer than its rules");
	return 0;
}

int
aj_handover_decode(const uint8_t *buf, size_t len, struct aj_policy *out, char *err, size_t errlen)
{
	struct aj_policy p = {0};
	struct header h;
	size_t rules, cidrs, tunnels, need;
	const uint8_t *r;
	const char *why;
	int rc;

	if (len < sizeof(h))
		return aj_err(err, errlen, -EBADMSG, "the policy is cut short");
	memcpy(&h, buf, sizeof(h));
	if (memcmp(h.magic, HANDOVER_MAGIC, sizeof(h.magic)) != 0 ||
	    h.version != HANDOVER_VERSION || h.rule_size != sizeof(struct aj_fetch_rule) ||
	    h.cidr_size != sizeof(struct aj_cidr) || h.tunnel_size != sizeof(struct aj_tunnel_rule))
		return aj_err(err, errlen, -EBADMSG,
			      "the policy comes from another build of agentjail");
	if (h.n_rules > AJ_POLICY_MAX_RULES || h.n_addresses > AJ_POLICY_MAX_ADDRESSES ||
	    h.n_tunnels > AJ_TUNNEL_MAX_RULES ||
	    h.path_len == 0 || h.path_len > AJ_POLICY_MAX_PATH || h.ca_len > AJ_POLICY_MAX_CA ||
	    h.has_ca > 1 || (!h.has_ca && h.ca_len > 0))
		return aj_err(err, errlen, -EBADMSG, "the policy is over its bounds");
	rules = (size_t)h.n_rules * sizeof(struct aj_fetch_rule);
	cidrs = (size_t)h.n_addresses * sizeof(struct aj_cidr);
	if (h.secrets_len > SECRETS_MAX || h.zero != 0)
		return aj_err(err, errlen, -EBADMSG, "the policy is over its bounds");
	tunnels = (size_t)h.n_tunnels * sizeof(struct aj_tunnel_rule);
	need = sizeof(h) + rules + cidrs + tunnels + h.path_len + h.ca_len + h.secrets_len;
	if (len != need)
		return aj_err(err, errlen, -EBADMSG, "the policy is %zu bytes, not %zu", len, need);
	if (h.limits.set != (1u << AJ_LIMIT__COUNT) - 1 || !limits_valid(&h.limits))
		return aj_err(err, errlen, -EBADMSG, "the policy's limits are incomplete");
	p.limits = h.limits;
	r = buf + sizeof(h);
	p.n_rules = h.n_rules;
	p.rules = calloc(h.n_rules ? h.n_rules : 1, sizeof(*p.rules));
	p.n_addresses = h.n_addresses;
	p.addresses = calloc(h.n_addresses ? h.n_addresses : 1, sizeof(*p.addresses));
	p.n_tunnels = h.n_tunnels;
	p.tunnels = calloc(h.n_tunnels ? h.n_tunnels : 1, sizeof(*p.tunnels));
	if (p.rules == NULL || p.addresses == NULL || p.tunnels == NULL)
		goto nomem;
	memcpy(p.rules, r, rules);
	r += rules;
	memcpy(p.addresses, r, cidrs);
	r += cidrs;
	memcpy(p.tunnels, r, tunnels);
	r += tunnels;
	for (size_t i = 0; i < p.n_rules; i++) {
		if ((why = rule_invalid(&p.rules[i])) != NULL) {
			aj_policy_clear(&p);
			return aj_err(err, errlen, -EBADMSG, "the policy holds %s", why);
		}
	}
	for (size_t i = 0; i < p.n_tunnels; i++) {
		if ((why = aj_tunnel_rule_invalid(&p.tunnels[i])) != NULL) {
			aj_policy_clear(&p);
			return aj_err(err, errlen, -EBADMSG, "the policy holds %s", why);
		}
	}
	for (size_t i = 0; i < p.n_addresses; i++) {
		if (!cidr_valid(&p.addresses[i])) {
			aj_policy_clear(&p);
			return aj_err(err, errlen, -EBADMSG,
				      "the policy holds a bad address range");
		}
	}
	if (memchr(r, '\0', (size_t)h.path_len + h.ca_len) != NULL) {
		aj_policy_clear(&p);
		return aj_err(err, errlen, -EBADMSG, "the policy's text holds a NUL byte");
	}
	p.path = string_of(r, h.path_len);
	if (h.has_ca)
		p.ca_pem = string_of(r + h.path_len, h.ca_len);
	if (p.path == NULL || (h.has_ca && p.ca_pem == NULL))
		goto nomem;
	r += h.path_len + h.ca_len;
	rc = decode_secrets(r, h.secrets_len, &p, err, errlen);
	if (rc < 0) {
		aj_policy_clear(&p);
		return rc;
	}
	*out = p;
	return 0;
nomem:
	aj_policy_clear(&p);
	return aj_err(err, errlen, -ENOMEM, "out of memory");
}

int
aj_handover_write(const struct aj_policy *p)
{
	uint8_t *buf;
	size_t len;
	int r = aj_handover_encode(p, &buf, &len);

	if (r < 0)
		return r;
	r = aj_memfd_of("agentjail-policy", buf, len);
	/* The secrets stay in the memfd, which only the broker gets. */
	explicit_bzero(buf, len);
	free(buf);
	return r;
}

int
aj_handover_read(int fd, struct aj_policy *out, char *err, size_t errlen)
{
	struct stat st;
	uint8_t *buf;
	size_t done = 0;
	int r;

	/* Only the sealed memfd the supervisor made: nobody can have changed
	 * it since. */
	if (!aj_memfd_is_sealed(fd))
		return aj_err(err, errlen, -EPERM, "the policy is not a sealed memfd");
	if (fstat(fd, &st) < 0)
		return aj_err(err, errlen, -errno, "reading the policy: %s", strerror(errno));
	if (st.st_size < 0 || (uint64_t)st.st_size > HANDOVER_MAX)
		return aj_err(err, errlen, -EBADMSG, "the policy is over its bounds");
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL)
		return aj_err(err, errlen, -ENOMEM, "out of memory");
	while (done < (size_t)st.st_size) {
		ssize_t n = pread(fd, buf + done, (size_t)st.st_size - done, (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = n < 0 ? -errno : -EBADMSG;
			free(buf);
			return aj_err(err, errlen, r, "reading the policy: %s",
				      n < 0 ? strerror(-r) : "cut short");
		}
		done += (size_t)n;
	}
	r = aj_handover_decode(buf, done, out, err, errlen);
	explicit_bzero(buf, done);
	free(buf);
	return r;
}
