/*
 * The jail's DNS stub (`proxy on`): for the tools that ignore the proxy
 * variables and resolve names themselves (Go and Rust programs, Node's own
 * https before 24, anything calling connect()).  It answers on the jail's
 * 127.0.0.1:53, where the jail's resolv.conf points, with an address of
 * its own from 127.1.0.0/16 (one per name, for the jail's life); the
 * connections made to such an address on port 80 or 443 are captured by
 * the proxy (broker/proxy.c), which asks here for the name and serves them
 * as plain HTTP and as a TLS tunnel to that name.  The name, never the
 * address, is what the rules see and what the broker resolves and checks.
 *
 * A name no allow rule names (aj_policy_names_host: the rules could never
 * allow a request to it) is answered NXDOMAIN and audited, once per name;
 * past AJ_DNS_STUB_MAX_NAMES refused names, one record says the rest are
 * not audited one by one.  AAAA and other types get an empty answer:
 * the stub gives out IPv4 addresses only.  Nothing is ever resolved here:
 * the broker resolves names when it fetches, as for every request.
 */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker.h"
#include "dns.h"
#include "fds.h"
#include "log.h"

/* The addresses last for the jail's life; a resolver may keep them. */
#define ANSWER_TTL 3600


struct aj_dns_stub {
	struct ev_loop *loop;
	const struct aj_policy *policy;
	struct aj_audit_log *audit;
	int fd;
	ev_io r;
	/* Name I has the address AJ_DNS_STUB_NET + 1 + I. */
	char *names[AJ_DNS_STUB_MAX_NAMES];
	size_t n;
	/* The names refused (NXDOMAIN), each audited once; past the bound one
	 * record says that the rest are not. */
	char *refused[AJ_DNS_STUB_MAX_NAMES];
	size_t n_refused;
	bool refused_full;
};

/* I of NAME in the N names at TABLE, or -1. */
static ssize_t
find(char *const *table, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(table[i], name) == 0)
			return (ssize_t)i;
	return -1;
}

/* NAME, which no rule names: audited the first time. */
static void
note_refused(struct aj_dns_stub *s, const char *name)
{
	if (find(s->refused, s->n_refused, name) >= 0)
		return;
	if (s->n_refused == AJ_DNS_STUB_MAX_NAMES) {
		if (!s->refused_full)
			aj_audit_log_write_dns(s->audit,
					       "(more refused names: not audited one by one)");
		s->refused_full = true;
		return;
	}
	if ((s->refused[s->n_refused] = strdup(name)) == NULL)
		return;
	s->n_refused++;
	aj_audit_log_write_dns(s->audit, name);
}

/* The index of NAME's address, a new one if there is room: 0, -ENOENT
 * (no rule names it) or -ENOSPC. */
static int
index_of(struct aj_dns_stub *s, const char *name, size_t *index)
{
	ssize_t i = find(s->names, s->n, name);

	if (i >= 0) {
		*index = (size_t)i;
		return 0;
	}
	if (!aj_policy_names_host(s->policy, name)) {
		note_refused(s, name);
		return -ENOENT;
	}
	if (s->n == AJ_DNS_STUB_MAX_NAMES || (s->names[s->n] = strdup(name)) == NULL)
		return -ENOSPC;
	*index = s->n++;
	return 0;
}

/* The answer to the LEN bytes at MSG into OUT; its length, or 0: none. */
static size_t
answer(struct aj_dns_stub *s, const uint8_t *msg, size_t len, uint8_t *out, size_t cap)
{
	struct aj_dns_query q;
	size_t index;
	uint32_t addr;
	uint8_t a[4];
	int rcode = AJ_DNS_NOERROR, r;

	switch (aj_dns_parse_query(msg, len, &q, &rcode)) {
	case AJ_DNS_IGNORED:
		return 0;
	case AJ_DNS_BAD:
		return aj_dns_answer(msg, &q, rcode, NULL, 0, out, cap);
	case AJ_DNS_QUERY:
		break;
	}
	if (q.qclass != AJ_DNS_CLASS_IN)
		return aj_dns_answer(msg, &q, AJ_DNS_REFUSED, NULL, 0, out, cap);
	/* An IP literal is not a name to give an address for. */
	if (q.name[0] == '\0' || aj_dns_name_is_address(q.name))
		return aj_dns_answer(msg, &q, AJ_DNS_NXDOMAIN, NULL, 0, out, cap);
	r = index_of(s, q.name, &index);
	if (r == -ENOENT)
		return aj_dns_answer(msg, &q, AJ_DNS_NXDOMAIN, NULL, 0, out, cap);
	if (r < 0)
		return aj_dns_answer(msg, &q, AJ_DNS_REFUSED, NULL, 0, out, cap);
	if (q.qtype != AJ_DNS_TYPE_A)
		return aj_dns_answer(msg, &q, AJ_DNS_NOERROR, NULL, 0, out, cap);
	addr = htonl(AJ_DNS_STUB_NET + 1 + (uint32_t)index);
	memcpy(a, &addr, 4);
	return aj_dns_answer(msg, &q, AJ_DNS_NOERROR, a, ANSWER_TTL, out, cap);
}

static void
on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
	struct aj_dns_stub *s = w->data;
	uint8_t msg[AJ_DNS_MAX + 1], out[AJ_DNS_MAX];

	(void)loop;
	(void)revents;
	/* A bounded batch: a flood of queries cannot starve the rest. */
	for (int batch = 0; batch < 64; batch++) {
		struct sockaddr_storage from;
		socklen_t fromlen = sizeof(from);
		ssize_t n = recvfrom(s->fd, msg, sizeof(msg), 0, (struct sockaddr *)&from,
				     &fromlen);
		size_t len;

		if (n < 0)
			return; /* EAGAIN, or an ICMP error of an earlier answer */
		len = answer(s, msg, (size_t)n, out, sizeof(out));
		if (len > 0)
			(void)sendto(s->fd, out, len, MSG_DONTWAIT, (struct sockaddr *)&from,
				     fromlen);
	}
}

struct aj_dns_stub *
aj_dns_stub_new(struct ev_loop *loop, int fd, const struct aj_policy *policy,
		struct aj_audit_log *audit)
{
	struct aj_dns_stub *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->loop = loop;
	s->policy = policy;
	s->audit = audit;
	s->fd = fd;
	ev_io_init(&s->r, on_readable, fd, EV_READ);
	s->r.data = s;
	ev_io_start(loop, &s->r);
	return s;
}

const char *
aj_dns_stub_name_of(const struct aj_dns_stub *s, const struct sockaddr *local)
{
	const struct sockaddr_in *in = (const struct sockaddr_in *)local;
	uint32_t a, i;

	if (s == NULL || local->sa_family != AF_INET)
		return NULL;
	a = ntohl(in->sin_addr.s_addr);
	if ((a & AJ_DNS_STUB_MASK) != AJ_DNS_STUB_NET || (a & ~AJ_DNS_STUB_MASK) == 0)
		return NULL;
	i = (a & ~AJ_DNS_STUB_MASK) - 1;
	if (i >= s->n)
		return NULL;
	return s->names[i];
}

void
aj_dns_stub_free(struct aj_dns_stub *s)
{
	if (s == NULL)
		return;
	ev_io_stop(s->loop, &s->r);
	close(s->fd);
	for (size_t i = 0; i < s->n; i++)
		free(s->names[i]);
	for (size_t i = 0; i < s->n_refused; i++)
		free(s->refused[i]);
	free(s);
}
