/*
 * Where the broker may connect (THREATS.md #14).  libcurl hands every
 * address to the transfer right before the socket is made
 * (CURLOPT_OPENSOCKETFUNCTION, broker/transfer.c), and this decides: an
 * ordinary public address passes; a special one (loopback, private,
 * link-local, cloud metadata, the IPv6 forms that embed them: common/addr.c)
 * or one of this host's own addresses passes only when the profile names
 * it, with a `fetch address allow` range or as the IP literal of the rule
 * that allowed the hop.  The address checked is the address connected to,
 * so DNS rebinding cannot slip a second answer in.  A tunnel
 * (broker/proxy-relay.c) is checked by the same function, with its rule's
 * host.
 */
#include "config.h"

#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"

/* The host's own addresses kept, besides loopback: connecting to them is
 * connecting to a service on this machine. */
#define MAX_LOCAL_ADDRESSES 64

struct aj_egress {
	const struct aj_policy *policy;
	struct aj_cidr local[MAX_LOCAL_ADDRESSES];
	size_t n_local;
};

static void
cidr_of(const struct sockaddr *sa, struct aj_cidr *c)
{
	memset(c, 0, sizeof(*c));
	c->family = sa->sa_family;
	if (sa->sa_family == AF_INET) {
		memcpy(c->addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		c->prefix = 32;
	} else {
		memcpy(c->addr, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
		c->prefix = 128;
	}
}

/* Read once, at start: an address the host gains later is not known
 * (a limit of MAX_LOCAL_ADDRESSES too). */
static void
collect_local_addresses(struct aj_egress *e)
{
	struct ifaddrs *list, *i;

	if (getifaddrs(&list) < 0)
		return;
	for (i = list; i != NULL && e->n_local < MAX_LOCAL_ADDRESSES; i = i->ifa_next)
		if (i->ifa_addr != NULL &&
		    (i->ifa_addr->sa_family == AF_INET || i->ifa_addr->sa_family == AF_INET6))
			cidr_of(i->ifa_addr, &e->local[e->n_local++]);
	freeifaddrs(list);
}

struct aj_egress *
aj_egress_new(const struct aj_policy *policy)
{
	struct aj_egress *e = calloc(1, sizeof(*e));

	if (e == NULL)
		return NULL;
	e->policy = policy;
	collect_local_addresses(e);
	return e;
}

void
aj_egress_free(struct aj_egress *e)
{
	free(e);
}

const char *
aj_egress_refused(const struct aj_egress *e, const struct sockaddr *sa, const struct aj_url *url,
		  const struct aj_fetch_rule *rule)
{
	return aj_egress_refused_host(e, sa, url->host, url->host_kind, rule->host);
}

const char *
aj_egress_refused_host(const struct aj_egress *e, const struct sockaddr *sa, const char *host,
		       int host_kind, const char *rule_host)
{
	const struct aj_policy *p = e->policy;
	const char *reason = aj_addr_special(sa);

	if (reason == NULL) {
		for (size_t i = 0; i < e->n_local; i++)
			if (aj_cidr_contains(&e->local[i], sa))
				reason = "an address of this host";
	}
	if (reason == NULL)
		return NULL;
	/* Named explicitly: a `fetch address allow` range... */
	for (size_t i = 0; i < p->n_addresses; i++)
		if (aj_cidr_contains(&p->addresses[i], sa))
			return NULL;
	/* ...or the IP literal of the rule that allowed this hop. */
	if (host_kind != AJ_HOST_NAME && strcmp(rule_host, host) == 0) {
		char text[INET6_ADDRSTRLEN];

		aj_addr_format(sa, text, sizeof(text));
		if (strcmp(text, host) == 0)
			return NULL;
	}
	return reason;
}
