/*
 * Address ranges from profiles and the table of special addresses (see
 * addr.h).  The tables follow the IANA special-purpose address registries;
 * each lookup takes the longest matching prefix, so the order of a table
 * does not matter and a narrow entry (169.254.169.254/32) wins over the
 * wide one around it (169.254.0.0/16).
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "addr.h"

/* How an IPv4 address reached us: on its own or inside an IPv6 address.
 * Each IPv4 entry has one reason per way, so that the audit record says
 * "NAT64 of loopback" rather than only "loopback". */
enum embed { EMBED_NONE, EMBED_MAPPED, EMBED_NAT64, EMBED_6TO4, EMBED__COUNT };

struct range4 {
	uint8_t net[4];
	unsigned prefix;
	const char *why[EMBED__COUNT];
};

#define V4(a, b, c, d, len, r)                                                                     \
	{                                                                                          \
		{a, b, c, d}, len,                                                                 \
		{                                                                                  \
			r, "IPv4-mapped " r, "NAT64 of " r, "6to4 of " r                           \
		}                                                                                  \
	}

static const struct range4 special4[] = {
	V4(0, 0, 0, 0, 32, "unspecified"),
	V4(0, 0, 0, 0, 8, "this network (0.0.0.0/8)"),
	V4(10, 0, 0, 0, 8, "private (RFC 1918)"),
	V4(100, 64, 0, 0, 10, "shared address space (RFC 6598)"),
	V4(100, 100, 100, 200, 32, "cloud metadata"), /* Alibaba Cloud */
	V4(127, 0, 0, 0, 8, "loopback"),
	/* A public address, but on Azure it reaches the host platform's
	 * agent channel, a classic SSRF target. */
	V4(168, 63, 129, 16, 32, "cloud platform (Azure WireServer)"),
	V4(169, 254, 0, 0, 16, "link-local"),
	V4(169, 254, 169, 254, 32, "cloud metadata"), /* AWS, GCP, Azure, OpenStack... */
	V4(169, 254, 170, 2, 32, "cloud metadata"),   /* AWS ECS task credentials */
	V4(172, 16, 0, 0, 12, "private (RFC 1918)"),
	V4(192, 0, 0, 0, 24, "IETF protocol assignments (192.0.0.0/24)"),
	V4(192, 0, 2, 0, 24, "documentation"),
	V4(192, 88, 99, 0, 24, "6to4 relay anycast (deprecated)"),
	V4(192, 168, 0, 0, 16, "private (RFC 1918)"),
	V4(198, 18, 0, 0, 15, "benchmarking"),
	V4(198, 51, 100, 0, 24, "documentation"),
	V4(203, 0, 113, 0, 24, "documentation"),
	V4(224, 0, 0, 0, 4, "multicast"),
	V4(240, 0, 0, 0, 4, "reserved"),
	V4(255, 255, 255, 255, 32, "broadcast"),
};

struct range6 {
	uint8_t net[16];
	unsigned prefix;
	const char *why;
};

static const struct range6 special6[] = {
	/* Only 2000::/3 is allocated for global unicast: whatever else has no
	 * narrower entry below is reserved (e.g. ::ffff:0:0:0/96, 5f00::/16). */
	{{0x00}, 3, "reserved"},
	{{0x40}, 2, "reserved"},
	{{0x80}, 1, "reserved"},
	{{0}, 128, "unspecified"},
	{{[15] = 1}, 128, "loopback"},
	/* ::a.b.c.d: routed through automatic tunnels on old stacks. */
	{{0}, 96, "IPv4-compatible (deprecated)"},
	{{0x00, 0x64, 0xff, 0x9b, 0x00, 0x01}, 48, "NAT64 local-use (64:ff9b:1::/48)"},
	{{0x01, 0x00}, 64, "discard-only (100::/64)"},
	{{0x20, 0x01}, 23, "IETF protocol assignments (2001::/23)"},
	/* The embedded client address is obfuscated and the relay is
	 * chosen by the client, so there is nothing to judge: refuse. */
	{{0x20, 0x01}, 32, "Teredo"},
	{{0x20, 0x01, 0x00, 0x02}, 48, "benchmarking"},
	{{0x20, 0x01, 0x00, 0x10}, 28, "reserved (ORCHID)"},
	{{0x20, 0x01, 0x0d, 0xb8}, 32, "documentation"},
	{{0x3f, 0xff}, 20, "documentation"},
	{{0xfc}, 7, "unique local (fc00::/7)"},
	/* fd00:ec2::254 */
	{{0xfd, 0x00, 0x0e, 0xc2, [14] = 0x02, 0x54}, 128, "cloud metadata (AWS)"},
	{{0xfe, 0x80}, 10, "link-local"},
	{{0xfe, 0xc0}, 10, "site-local (deprecated)"},
	{{0xff}, 8, "multicast"},
};

/* IPv6 prefixes whose packets end up at an embedded IPv4 address: these
 * are judged by that address, so a public one stays allowed. */
static const struct {
	uint8_t net[16];
	unsigned prefix;
	unsigned offset; /* of the IPv4 address in the IPv6 one */
	enum embed kind;
} embedded6[] = {
	{{[10] = 0xff, 0xff}, 96, 12, EMBED_MAPPED},     /* ::ffff:a.b.c.d */
	{{0x00, 0x64, 0xff, 0x9b}, 96, 12, EMBED_NAT64}, /* 64:ff9b::a.b.c.d */
	{{0x20, 0x02}, 16, 2, EMBED_6TO4},               /* 2002:AABB:CCDD::/48 */
};

/* Do the first PREFIX bits of A and NET agree? */
static bool
prefix_match(const uint8_t *a, const uint8_t *net, unsigned prefix)
{
	unsigned bytes = prefix / 8, bits = prefix % 8;

	if (memcmp(a, net, bytes) != 0)
		return false;
	if (bits == 0)
		return true;
	return ((a[bytes] ^ net[bytes]) & (0xff << (8 - bits))) == 0;
}

/* Copy SA's address into BYTES (16) and return its family, or 0. */
static int
sockaddr_bytes(const struct sockaddr *sa, uint8_t *bytes)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)sa;

		memcpy(bytes, &sin->sin_addr, 4);
		return AF_INET;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)sa;

		memcpy(bytes, &sin6->sin6_addr, 16);
		return AF_INET6;
	}
	return 0;
}

static const char *
special_v4(const uint8_t *a, enum embed kind)
{
	const struct range4 *best = NULL;

	for (size_t i = 0; i < sizeof(special4) / sizeof(special4[0]); i++)
		if (prefix_match(a, special4[i].net, special4[i].prefix) &&
		    (best == NULL || special4[i].prefix > best->prefix))
			best = &special4[i];
	return best != NULL ? best->why[kind] : NULL;
}

static const char *
special_v6(const uint8_t *a)
{
	const struct range6 *best = NULL;

	for (size_t i = 0; i < sizeof(embedded6) / sizeof(embedded6[0]); i++)
		if (prefix_match(a, embedded6[i].net, embedded6[i].prefix))
			return special_v4(a + embedded6[i].offset, embedded6[i].kind);
	for (size_t i = 0; i < sizeof(special6) / sizeof(special6[0]); i++)
		if (prefix_match(a, special6[i].net, special6[i].prefix) &&
		    (best == NULL || special6[i].prefix > best->prefix))
			best = &special6[i];
	return best != NULL ? best->why : NULL;
}

const char *
aj_addr_special(const struct sockaddr *sa)
{
	uint8_t a[16] = {0};

	switch (sockaddr_bytes(sa, a)) {
	case AF_INET:
		return special_v4(a, EMBED_NONE);
	case AF_INET6:
		return special_v6(a);
	default:
		return "not an IP address";
	}
}

void
aj_addr_format(const struct sockaddr *sa, char *out, size_t len)
{
	char buf[INET6_ADDRSTRLEN];
	uint8_t a[16] = {0};
	int family = sockaddr_bytes(sa, a);

	if (len == 0)
		return;
	if (family == 0 || inet_ntop(family, a, buf, sizeof(buf)) == NULL)
		snprintf(buf, sizeof(buf), "(not an IP address)");
	snprintf(out, len, "%s", buf);
}

bool
aj_cidr_contains(const struct aj_cidr *c, const struct sockaddr *sa)
{
	static const uint8_t mapped[12] = {[10] = 0xff, 0xff};
	uint8_t a[16] = {0};
	int family = sockaddr_bytes(sa, a);

	/* ::ffff:a.b.c.d is a.b.c.d on the wire, so a rule naming the IPv4
	 * range must cover it too. */
	if (family == AF_INET6 && c->family == AF_INET && memcmp(a, mapped, 12) == 0) {
		memmove(a, a + 12, 4);
		family = AF_INET;
	}
	return family != 0 && family == c->family && prefix_match(a, c->addr, c->prefix);
}

void
aj_cidr_format(const struct aj_cidr *c, char *out, size_t len)
{
	char buf[INET6_ADDRSTRLEN];
	unsigned full = c->family == AF_INET ? 32 : 128;

	if (len == 0)
		return;
	if (inet_ntop(c->family, c->addr, buf, sizeof(buf)) == NULL)
		snprintf(buf, sizeof(buf), "(invalid)");
	if (c->prefix == full)
		snprintf(out, len, "%s", buf);
	else
		snprintf(out, len, "%s/%u", buf, c->prefix);
}

/* Like aj_err() (log.c), kept local so that this module stands alone. */
static int
fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* Parse the prefix length P ("8"): decimal, no sign, no leading zero. */
static int
parse_prefix(const char *s, const char *p, unsigned max, unsigned *out, char *err, size_t errlen)
{
	unsigned v = 0;

	if (*p == '\0')
		return fail(err, errlen, "%s: missing prefix length after '/'", s);
	for (const char *q = p; *q != '\0'; q++) {
		if (*q < '0' || *q > '9')
			return fail(err, errlen, "%s: prefix length is not a decimal number", s);
		v = v * 10 + (unsigned)(*q - '0');
		if (v > max)
			return fail(err, errlen, "%s: prefix length out of range (0-%u)", s, max);
	}
	if (p[0] == '0' && p[1] != '\0')
		return fail(err, errlen, "%s: prefix length has a leading zero", s);
	*out = v;
	return 0;
}

/* Clear the bits of A beyond PREFIX. */
static void
mask_host_bits(uint8_t *a, unsigned prefix, unsigned full)
{
	for (unsigned bit = prefix; bit < full; bit++)
		a[bit / 8] &= (uint8_t) ~(0x80u >> (bit % 8));
}

int
aj_cidr_parse(const char *s, struct aj_cidr *out, char *err, size_t errlen)
{
	struct aj_cidr c, net;
	char addr[INET6_ADDRSTRLEN], fmt[AJ_CIDR_STRLEN];
	const char *slash;
	size_t alen, len = strnlen(s, AJ_CIDR_STRLEN);
	unsigned full;
	int rc;

	if (len == 0)
		return fail(err, errlen, "empty address range");
	if (len >= AJ_CIDR_STRLEN)
		return fail(err, errlen, "address range longer than %d characters",
			    AJ_CIDR_STRLEN - 1);
	/* Refuse odd bytes before S is quoted in any message, so that a
	 * profile cannot forge a log line through it. */
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '%')
			return fail(err, errlen, "zone id ('%%') not allowed in an address range");
		if (strchr("0123456789abcdefABCDEF.:/", ch) == NULL)
			return fail(err, errlen,
				    "invalid character 0x%02x at offset %zu in an address range",
				    ch, i);
	}

	memset(&c, 0, sizeof(c));
	slash = strchr(s, '/');
	alen = slash != NULL ? (size_t)(slash - s) : len;
	if (alen == 0)
		return fail(err, errlen, "%s: missing address before '/'", s);
	c.family = memchr(s, ':', alen) != NULL ? AF_INET6 : AF_INET;
	full = c.family == AF_INET ? 32 : 128;
	/* Too long to be an address: leave ADDR empty so inet_pton() fails. */
	addr[0] = '\0';
	if (alen < sizeof(addr)) {
		memcpy(addr, s, alen);
		addr[alen] = '\0';
	}
	/* inet_pton() takes only four decimal octets without leading zeros:
	 * "127.1", "0177.0.0.1" and "2130706433" never get here as loopback. */
	if (inet_pton(c.family, addr, c.addr) != 1)
		return fail(err, errlen, "%s: not a canonical %s address%s", s,
			    c.family == AF_INET ? "IPv4" : "IPv6",
			    c.family == AF_INET ? " (four decimal octets without leading zeros)"
						: "");

	c.prefix = full;
	if (slash != NULL) {
		rc = parse_prefix(s, slash + 1, full, &c.prefix, err, errlen);
		if (rc < 0)
			return rc;
	}

	/* "10.0.0.1/8" may be a typo for a single host or for the network:
	 * refuse it rather than guess which of the two the profile meant. */
	net = c;
	mask_host_bits(net.addr, c.prefix, full);
	if (memcmp(net.addr, c.addr, sizeof(c.addr)) != 0) {
		aj_cidr_format(&net, fmt, sizeof(fmt));
		return fail(err, errlen, "%s: host bits set; did you mean %s?", s, fmt);
	}
	*out = c;
	return 0;
}
