/*
 * Address classification for the broker's SSRF defence.  libcurl hands the
 * broker every address right before it connects (CURLOPT_OPENSOCKETFUNCTION);
 * the broker refuses the special ones -- loopback, private, link-local,
 * cloud metadata, and the IPv6 forms that embed them -- unless a profile
 * rule names the range.  Pure functions: no allocation, no global state.
 */
#ifndef AJ_ADDR_H
#define AJ_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Longest text aj_cidr_format() writes, including the NUL:
 * "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255/128". */
#define AJ_CIDR_STRLEN 50

/* An address range from a profile: "10.0.0.0/8", "127.0.0.2" (a /32),
 * "fd00::/8", "::1" (a /128). */
struct aj_cidr {
	int family;       /* AF_INET or AF_INET6 */
	uint8_t addr[16]; /* network byte order; first 4 bytes for AF_INET; host bits are zero */
	unsigned prefix;  /* 0..32 or 0..128 */
};

/* Parse S strictly into OUT (written only on success).  The address must be
 * one inet_pton() accepts: no decimal ("2130706433"), octal ("0177.0.0.1")
 * or short ("127.1") IPv4 forms, no zone ids.  The optional prefix is
 * decimal without sign or leading zeros, within the family's range, and no
 * host bit may be set beyond it ("10.0.0.1/8" is refused with a hint).
 * Returns 0, or -EINVAL with a message in ERR. */
int aj_cidr_parse(const char *s, struct aj_cidr *out, char *err, size_t errlen);

/* Format C into OUT (LEN bytes, AJ_CIDR_STRLEN is always enough):
 * "10.0.0.0/8", or the bare address ("127.0.0.2") for a full-length prefix.
 * aj_cidr_parse() reads the result back to C. */
void aj_cidr_format(const struct aj_cidr *c, char *out, size_t len);

/* Does C contain SA (an AF_INET or AF_INET6 sockaddr, large enough for its
 * family)?  An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is also compared as
 * its IPv4 address against an AF_INET range, since it reaches the same
 * host; an AF_INET6 range never contains an AF_INET address.  False for
 * other families. */
bool aj_cidr_contains(const struct aj_cidr *c, const struct sockaddr *sa);

/* Why SA must not be connected to unless a rule names it, or NULL for an
 * ordinary public unicast address.  The result is a static short reason for
 * error messages and audit records: "loopback", "private (RFC 1918)",
 * "cloud metadata", "IPv4-mapped loopback", "NAT64 of private (RFC 1918)",
 * "6to4 of loopback", "Teredo", "reserved"...  IPv6 forms that embed an IPv4
 * address (IPv4-mapped, NAT64 64:ff9b::/96, 6to4) are judged by the
 * embedded address; every other IPv6 address outside 2000::/3 is
 * "reserved".  Families other than AF_INET and AF_INET6 give
 * "not an IP address". */
const char *aj_addr_special(const struct sockaddr *sa);

/* Format SA as "1.2.3.4" or "2001:db8::1" (no port) into OUT (LEN bytes,
 * INET6_ADDRSTRLEN is always enough). */
void aj_addr_format(const struct sockaddr *sa, char *out, size_t len);

#endif /* AJ_ADDR_H */
