/*
 * Unit tests for the policy's hand-over to the broker (common/handover.c):
 * what the supervisor loaded arrives whole, and anything the decoder has
 * not checked is refused.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addr.h"
#include "handover.h"
#include "memfd.h"
#include "supervisor.h"
#include "tunnel.h"

static const char rich_profile[] =
	"fetch allow GET,HEAD https://docs.example.org/** max-body 64K credentials\n"
	"fetch allow POST https://api.example.com:8443/v1/erasure query none sensitive-query\n"
	"fetch deny * https://*.example.net/private/**\n"
	"fetch limit response 50M timeout 10s concurrency 8 rate 600/min redirects 0\n"
	"fetch address allow 127.0.0.2\n"
	"fetch address allow fd00::/8\n"
	"socket inet loopback\n"
	"proxy on\n"
	"tunnel allow git.example.org:22 idle 1m\n"
	"tunnel deny *.example.net:22\n";

static struct aj_profile *
load(const char *text)
{
	struct aj_profile *p = NULL;
	char err[512] = "";

	cr_assert_eq(aj_profile_parse_string("t", "/etc/t.profile", text, &p, err, sizeof(err)), 0,
		     "%s", err);
	return p;
}

static void
assert_same(const struct aj_policy *a, const struct aj_policy *b)
{
	cr_assert_str_eq(a->path, b->path);
	cr_assert_eq(a->n_rules, b->n_rules);
	cr_assert_eq(a->n_addresses, b->n_addresses);
	cr_assert_eq(a->n_tunnels, b->n_tunnels);
	for (size_t i = 0; i < a->n_tunnels; i++)
		cr_assert_eq(memcmp(&a->tunnels[i], &b->tunnels[i], sizeof(a->tunnels[i])), 0,
			     "tunnel %zu", i);
	cr_assert_eq(memcmp(&a->limits, &b->limits, sizeof(a->limits)), 0);
	for (size_t i = 0; i < a->n_rules; i++)
		cr_assert_eq(memcmp(&a->rules[i], &b->rules[i], sizeof(a->rules[i])), 0, "rule %zu",
			     i);
	for (size_t i = 0; i < a->n_addresses; i++)
		cr_assert_eq(memcmp(&a->addresses[i], &b->addresses[i], sizeof(a->addresses[i])),
			     0);
	cr_assert_eq(a->ca_pem == NULL, b->ca_pem == NULL);
	if (a->ca_pem != NULL)
		cr_assert_str_eq(a->ca_pem, b->ca_pem);
	cr_assert_null(b->ca_file, "the CA's path stays with the supervisor");
}

static int
decode(const uint8_t *buf, size_t len, char *err, size_t errlen)
{
	struct aj_policy p = {0};
	int r = aj_handover_decode(buf, len, &p, err, errlen);

	aj_policy_clear(&p);
	return r;
}

Test(handover, round_trip)
{
	struct aj_profile *pr = load(rich_profile);
	struct aj_policy back = {0};
	uint8_t *buf;
	size_t len;
	char err[256] = "";

	cr_assert_eq(pr->fetch.n_rules, 3);
	cr_assert_eq(pr->fetch.n_tunnels, 2);
	cr_assert_eq(aj_handover_encode(&pr->fetch, &buf, &len), 0);
	cr_assert_eq(aj_handover_decode(buf, len, &back, err, sizeof(err)), 0, "%s", err);
	assert_same(&pr->fetch, &back);
	aj_policy_clear(&back);
	free(buf);
	aj_profile_free(pr);
}

Test(handover, empty_policy)
{
	struct aj_profile *pr = load("");
	struct aj_policy back = {0};
	uint8_t *buf;
	size_t len;
	char err[256] = "";

	cr_assert_eq(aj_handover_encode(&pr->fetch, &buf, &len), 0);
	cr_assert_eq(aj_handover_decode(buf, len, &back, err, sizeof(err)), 0, "%s", err);
	assert_same(&pr->fetch, &back);
	cr_assert_eq(back.limits.set, (1u << AJ_LIMIT__COUNT) - 1, "defaults travel too");
	aj_policy_clear(&back);
	free(buf);
	aj_profile_free(pr);
}

Test(handover, through_a_sealed_memfd)
{
	struct aj_profile *pr = load(rich_profile);
	struct aj_policy back = {0};
	char err[256] = "";
	int fd = aj_handover_write(&pr->fetch);

	cr_assert_geq(fd, 0);
	cr_assert(aj_memfd_is_sealed(fd));
	cr_assert_eq(aj_handover_read(fd, &back, err, sizeof(err)), 0, "%s", err);
	assert_same(&pr->fetch, &back);
	aj_policy_clear(&back);
	close(fd);
	aj_profile_free(pr);
}

Test(handover, an_unsealed_file_is_refused)
{
	struct aj_profile *pr = load(rich_profile);
	struct aj_policy back = {0};
	uint8_t *buf;
	size_t len;
	char err[256] = "";
	int fd = aj_memfd_new("t");

	cr_assert_geq(fd, 0);
	cr_assert_eq(aj_handover_encode(&pr->fetch, &buf, &len), 0);
	cr_assert_eq(write(fd, buf, len), (ssize_t)len);
	cr_assert_eq(aj_handover_read(fd, &back, err, sizeof(err)), -EPERM);
	cr_assert_str_eq(err, "the policy is not a sealed memfd");
	close(fd);
	free(buf);
	aj_profile_free(pr);
}

/* The header's layout, as the encoder writes it (handover.c). */
struct header {
	char magic[8];
	uint32_t version, rule_size, cidr_size, n_rules, n_addresses, path_len, ca_len, has_ca;
	uint32_t secrets_len, tunnel_size, n_tunnels, zero;
	struct aj_fetch_limits limits;
};

/* A good encoding of the rich profile that a test may spoil. */
struct sample {
	struct aj_profile *pr;
	uint8_t *buf;
	size_t len;
};

static struct sample
sample(void)
{
	struct sample s = {.pr = load(rich_profile)};

	cr_assert_eq(aj_handover_encode(&s.pr->fetch, &s.buf, &s.len), 0);
	return s;
}

static void
sample_free(struct sample *s)
{
	free(s->buf);
	aj_profile_free(s->pr);
}

static struct header *
hdr(struct sample *s)
{
	return (struct header *)s->buf;
}

static struct aj_fetch_rule *
rule(struct sample *s, size_t i)
{
	return (struct aj_fetch_rule *)(s->buf + sizeof(struct header)) + i;
}

static void
refused(struct sample *s, const char *want)
{
	char err[256] = "";

	cr_assert_eq(decode(s->buf, s->len, err, sizeof(err)), -EBADMSG, "accepted; want '%s'",
		     want);
	cr_assert_str_eq(err, want);
	sample_free(s);
}

Test(handover, wrong_build_is_refused)
{
	struct sample s = sample();

	hdr(&s)->magic[0] = 'X';
	refused(&s, "the policy comes from another build of agentjail");
	s = sample();
	hdr(&s)->version = 2; /* before the secrets of `inject` met the tunnel rules */
	refused(&s, "the policy comes from another build of agentjail");
	s = sample();
	hdr(&s)->version = 4;
	refused(&s, "the policy comes from another build of agentjail");
	s = sample();
	hdr(&s)->tunnel_size++;
	refused(&s, "the policy comes from another build of agentjail");
	s = sample();
	hdr(&s)->rule_size--;
	refused(&s, "the policy comes from another build of agentjail");
	s = sample();
	hdr(&s)->cidr_size++;
	refused(&s, "the policy comes from another build of agentjail");
}

Test(handover, sizes_must_add_up)
{
	struct sample s = sample();
	char err[256];

	cr_assert_eq(decode(s.buf, 3, err, sizeof(err)), -EBADMSG);
	cr_assert_str_eq(err, "the policy is cut short");
	cr_assert_eq(decode(s.buf, s.len - 1, err, sizeof(err)), -EBADMSG);
	sample_free(&s);
	s = sample();
	hdr(&s)->n_rules = AJ_POLICY_MAX_RULES + 1;
	refused(&s, "the policy is over its bounds");
	s = sample();
	hdr(&s)->n_addresses = AJ_POLICY_MAX_ADDRESSES + 1;
	refused(&s, "the policy is over its bounds");
	s = sample();
	hdr(&s)->n_tunnels = AJ_TUNNEL_MAX_RULES + 1;
	refused(&s, "the policy is over its bounds");
	s = sample();
	hdr(&s)->path_len = 0;
	refused(&s, "the policy is over its bounds");
	s = sample();
	hdr(&s)->ca_len = 5; /* without has_ca */
	refused(&s, "the policy is over its bounds");
	s = sample();
	hdr(&s)->n_rules--;
	{
		char want[128];

		snprintf(want, sizeof(want), "the policy is %zu bytes, not %zu", s.len,
			 s.len - sizeof(struct aj_fetch_rule));
		refused(&s, want);
	}
}

Test(handover, limits_must_be_complete_and_in_range)
{
	struct sample s = sample();

	hdr(&s)->limits.set &= ~(1u << AJ_LIMIT_TIMEOUT);
	refused(&s, "the policy's limits are incomplete");
	s = sample();
	hdr(&s)->limits.value[AJ_LIMIT_CONCURRENCY] = 0;
	refused(&s, "the policy's limits are incomplete");
	s = sample();
	rule(&s, 0)->limits.set |= 1u << AJ_LIMIT__COUNT;
	refused(&s, "the policy holds a rule with a limit out of range");
	s = sample();
	rule(&s, 0)->limits.set |= 1u << AJ_LIMIT_RATE;
	rule(&s, 0)->limits.value[AJ_LIMIT_RATE] = UINT64_MAX;
	refused(&s, "the policy holds a rule with a limit out of range");
}

Test(handover, every_rule_field_is_checked)
{
	struct sample s = sample();

	rule(&s, 1)->allow = 2;
	refused(&s, "the policy holds a rule that is neither allow nor deny");
	s = sample();
	rule(&s, 1)->methods = 0;
	refused(&s, "the policy holds a rule without methods");
	s = sample();
	rule(&s, 1)->methods |= 1u << 10;
	refused(&s, "the policy holds a rule without methods");
	s = sample();
	memcpy(rule(&s, 0)->scheme, "ftp", 4);
	refused(&s, "the policy holds a rule whose scheme is not http or https");
	s = sample();
	memset(rule(&s, 0)->scheme, 'h', sizeof(rule(&s, 0)->scheme));
	refused(&s, "the policy holds a rule whose scheme is not http or https");
	s = sample();
	memset(rule(&s, 0)->host, 'a', sizeof(rule(&s, 0)->host));
	refused(&s, "the policy holds a rule without a host");
	s = sample();
	rule(&s, 0)->host[0] = '\0';
	refused(&s, "the policy holds a rule without a host");
	s = sample();
	rule(&s, 0)->port = 65536;
	refused(&s, "the policy holds a rule whose port is out of range");
	s = sample();
	rule(&s, 0)->path[0] = 'x';
	refused(&s, "the policy holds a rule whose path does not start with '/'");
	s = sample();
	memset(rule(&s, 0)->path, '/', sizeof(rule(&s, 0)->path));
	refused(&s, "the policy holds a rule whose path does not start with '/'");
	s = sample();
	memset(rule(&s, 2)->origin, 'o', sizeof(rule(&s, 2)->origin));
	refused(&s, "the policy holds a rule with an unterminated query or origin");
	s = sample();
	rule(&s, 2)->options = 4;
	refused(&s, "the policy holds a rule with an unknown option");
	s = sample();
	memcpy(rule(&s, 0)->inject_name, "x-api-key", 10);
	refused(&s, "the policy holds a rule with a malformed inject");
	s = sample();
	memcpy(rule(&s, 0)->inject_name, "Host", 5);
	memcpy(rule(&s, 0)->inject_source, "env:X", 6);
	refused(&s, "the policy holds a rule injecting a header it may not");
}

/* The tunnel rules follow the rules and the address ranges. */
static struct aj_tunnel_rule *
tunnel(struct sample *s, size_t i)
{
	return (struct aj_tunnel_rule *)(s->buf + sizeof(struct header) +
					 hdr(s)->n_rules * sizeof(struct aj_fetch_rule) +
					 hdr(s)->n_addresses * sizeof(struct aj_cidr)) +
	       i;
}

Test(handover, every_tunnel_rule_field_is_checked)
{
	struct sample s = sample();

	tunnel(&s, 0)->allow = 2;
	refused(&s, "the policy holds a tunnel rule that is neither allow nor deny");
	s = sample();
	memset(tunnel(&s, 0)->host, 'a', sizeof(tunnel(&s, 0)->host));
	refused(&s, "the policy holds a tunnel rule without a host");
	s = sample();
	tunnel(&s, 1)->host[0] = '\0';
	refused(&s, "the policy holds a tunnel rule without a host");
	s = sample();
	tunnel(&s, 1)->port = 0;
	refused(&s, "the policy holds a tunnel rule whose port is out of range");
	s = sample();
	tunnel(&s, 0)->idle_ms = 0;
	refused(&s, "the policy holds a tunnel rule whose idle time is out of range");
	s = sample();
	memset(tunnel(&s, 1)->origin, 'o', sizeof(tunnel(&s, 1)->origin));
	refused(&s, "the policy holds a tunnel rule with an unterminated origin");
}

Test(handover, address_ranges_are_checked)
{
	struct sample s = sample();
	struct aj_cidr *c = (struct aj_cidr *)(s.buf + sizeof(struct header) +
					       3 * sizeof(struct aj_fetch_rule));

	c[0].family = AF_UNIX;
	refused(&s, "the policy holds a bad address range");
	s = sample();
	c = (struct aj_cidr *)(s.buf + sizeof(struct header) + 3 * sizeof(struct aj_fetch_rule));
	c[0].prefix = 129;
	refused(&s, "the policy holds a bad address range");
}

Test(handover, text_without_nul_bytes)
{
	struct sample s = sample();

	s.buf[s.len - 1] = '\0'; /* the last byte of the path */
	refused(&s, "the policy's text holds a NUL byte");
}

/* ---- the secrets of `inject` rules ---------------------------------------------- */

static const char inject_profile[] =
	"fetch allow GET https://docs.example.org/**\n"
	"fetch allow POST https://api.example.com/v1/** inject x-api-key file:/etc/t/key\n"
	"fetch allow GET https://api.example.com/v1/models inject authorization env:TOKEN\n";

/* The profile's policy with SECRETS (one per sorted rule) attached. */
static struct aj_profile *
with_secrets(char *secrets[3])
{
	struct aj_profile *pr = load(inject_profile);

	cr_assert_eq(pr->fetch.n_rules, 3);
	pr->fetch.secrets = calloc(3, sizeof(char *));
	for (size_t i = 0; i < 3; i++)
		pr->fetch.secrets[i] = secrets[i] ? strdup(secrets[i]) : NULL;
	return pr;
}

/* Which sorted rule injects NAME. */
static size_t
slot_of(const struct aj_policy *p, const char *name)
{
	for (size_t i = 0; i < p->n_rules; i++)
		if (strcmp(p->rules[i].inject_name, name) == 0)
			return i;
	cr_assert_fail("no rule injects %s", name);
	return 0;
}

Test(handover, secrets_travel_with_their_rules)
{
	struct aj_profile *pr = load(inject_profile);
	size_t key = slot_of(&pr->fetch, "x-api-key"), auth = slot_of(&pr->fetch, "authorization");
	char *secrets[3] = {NULL, NULL, NULL};
	struct aj_policy back = {0};
	uint8_t *buf;
	size_t len;
	char err[256] = "";

	aj_profile_free(pr);
	secrets[key] = "sk-one";
	secrets[auth] = "Bearer two";
	pr = with_secrets(secrets);
	cr_assert_eq(aj_handover_encode(&pr->fetch, &buf, &len), 0);
	cr_assert_eq(aj_handover_decode(buf, len, &back, err, sizeof(err)), 0, "%s", err);
	assert_same(&pr->fetch, &back);
	cr_assert_str_eq(aj_policy_secret(&back, key), "sk-one");
	cr_assert_str_eq(aj_policy_secret(&back, auth), "Bearer two");
	cr_assert_null(aj_policy_secret(&back, 3 - key - auth));
	cr_assert_null(aj_policy_secret(&back, 3));
	aj_policy_clear(&back);
	free(buf);
	aj_profile_free(pr);
}

/* The inject profile with SECRETS (NULL: none at all) is refused with an
 * error holding WANT. */
static void
secrets_refused(char *secrets[3], const char *want)
{
	struct aj_profile *pr = secrets ? with_secrets(secrets) : load(inject_profile);
	uint8_t *buf;
	size_t len;
	char err[256] = "";

	cr_assert_eq(aj_handover_encode(&pr->fetch, &buf, &len), 0);
	cr_assert_eq(decode(buf, len, err, sizeof(err)), -EBADMSG);
	cr_assert_not_null(strstr(err, want), "%s", err);
	free(buf);
	aj_profile_free(pr);
}

Test(handover, a_rule_that_injects_needs_its_secret)
{
	struct aj_profile *pr = load(inject_profile);
	size_t key = slot_of(&pr->fetch, "x-api-key"), auth = slot_of(&pr->fetch, "authorization");
	char *secrets[3] = {NULL, NULL, NULL};

	aj_profile_free(pr);
	secrets_refused(NULL, "the policy lacks the secret of the rule at");
	/* One missing. */
	secrets[key] = "sk-one";
	secrets_refused(secrets, "the policy's secrets do not match its rules");
	/* One for a rule that injects nothing. */
	secrets[auth] = "two";
	secrets[3 - key - auth] = "three";
	secrets_refused(secrets, "the policy's secrets do not match its rules");
}

Test(handover, a_secret_a_header_cannot_carry_is_refused)
{
	static const char *const bad[] = {"two\r\nX-Evil: 1", " padded", "tab\x01", "\x80x"};
	struct aj_profile *pr = load(inject_profile);
	size_t key = slot_of(&pr->fetch, "x-api-key"), auth = slot_of(&pr->fetch, "authorization");

	aj_profile_free(pr);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *secrets[3] = {NULL, NULL, NULL};
		uint8_t *buf;
		size_t len;
		char err[256] = "";

		secrets[key] = "sk-one";
		secrets[auth] = (char *)bad[i];
		pr = with_secrets(secrets);
		cr_assert_eq(aj_handover_encode(&pr->fetch, &buf, &len), 0);
		cr_assert_eq(decode(buf, len, err, sizeof(err)), -EBADMSG, "case %zu", i);
		cr_assert_not_null(strstr(err, "is invalid: "), "%s", err);
		cr_assert_null(strstr(err, bad[i]), "the message quotes the secret: %s", err);
		/* Cut anywhere in the secrets: refused, never read past. */
		for (size_t cut = 1; cut < 24; cut++)
			cr_assert_eq(decode(buf, len - cut, err, sizeof(err)), -EBADMSG);
		free(buf);
		aj_profile_free(pr);
	}
}
