/*
 * Unit tests for the SSRF address classification (common/addr.c): one row
 * per special range of THREATS 14, with both edges of each range, and the
 * IPv6 forms that embed an IPv4 address (mapped, NAT64, 6to4), so that no
 * spelling of loopback or metadata reaches the broker's connect().
 */
#include "config.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "addr.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* TEXT as a sockaddr, as libcurl would hand it over: a port is set to show
 * that it plays no part. */
static struct sockaddr_storage
sockaddr_of(const char *text)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(text, ':') != NULL) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(443);
		cr_assert_eq(inet_pton(AF_INET6, text, &sin6->sin6_addr), 1, "bad test input %s",
			     text);
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(80);
		cr_assert_eq(inet_pton(AF_INET, text, &sin->sin_addr), 1, "bad test input %s",
			     text);
	}
	return ss;
}

struct special_case {
	const char *addr;
	const char *why; /* NULL: an ordinary public address */
};

static const struct special_case special_cases[] = {
	/* IPv4, each range with the addresses just outside it. */
	{"0.0.0.0", "unspecified"},
	{"0.0.0.1", "this network (0.0.0.0/8)"},
	{"0.255.255.255", "this network (0.0.0.0/8)"},
	{"1.0.0.0", NULL},
	{"9.255.255.255", NULL},
	{"10.0.0.0", "private (RFC 1918)"},
	{"10.255.255.255", "private (RFC 1918)"},
	{"11.0.0.0", NULL},
	{"100.63.255.255", NULL},
	{"100.64.0.0", "shared address space (RFC 6598)"},
	{"100.100.100.200", "cloud metadata"},
	{"100.127.255.255", "shared address space (RFC 6598)"},
	{"100.128.0.0", NULL},
	{"126.255.255.255", NULL},
	{"127.0.0.0", "loopback"},
	{"127.0.0.1", "loopback"},
	{"127.255.255.255", "loopback"},
	{"128.0.0.0", NULL},
	{"168.63.129.16", "cloud platform (Azure WireServer)"},
	{"168.63.129.17", NULL},
	{"169.253.255.255", NULL},
	{"169.254.0.0", "link-local"},
	{"169.254.169.253", "link-local"},
	{"169.254.169.254", "cloud metadata"},
	{"169.254.169.255", "link-local"},
	{"169.254.170.2", "cloud metadata"},
	{"169.254.255.255", "link-local"},
	{"169.255.0.0", NULL},
	{"172.15.255.255", NULL},
	{"172.16.0.0", "private (RFC 1918)"},
	{"172.31.255.255", "private (RFC 1918)"},
	{"172.32.0.0", NULL},
	{"191.255.255.255", NULL},
	{"192.0.0.0", "IETF protocol assignments (192.0.0.0/24)"},
	{"192.0.0.255", "IETF protocol assignments (192.0.0.0/24)"},
	{"192.0.1.0", NULL},
	{"192.0.2.0", "documentation"},
	{"192.0.2.255", "documentation"},
	{"192.0.3.0", NULL},
	{"192.88.98.255", NULL},
	{"192.88.99.1", "6to4 relay anycast (deprecated)"},
	{"192.88.100.0", NULL},
	{"192.167.255.255", NULL},
	{"192.168.0.0", "private (RFC 1918)"},
	{"192.168.255.255", "private (RFC 1918)"},
	{"192.169.0.0", NULL},
	{"198.17.255.255", NULL},
	{"198.18.0.0", "benchmarking"},
	{"198.19.255.255", "benchmarking"},
	{"198.20.0.0", NULL},
	{"198.51.99.255", NULL},
	{"198.51.100.0", "documentation"},
	{"198.51.100.255", "documentation"},
	{"198.51.101.0", NULL},
	{"203.0.112.255", NULL},
	{"203.0.113.0", "documentation"},
	{"203.0.113.255", "documentation"},
	{"203.0.114.0", NULL},
	{"223.255.255.255", NULL},
	{"224.0.0.0", "multicast"},
	{"239.255.255.255", "multicast"},
	{"240.0.0.0", "reserved"},
	{"255.255.255.254", "reserved"},
	{"255.255.255.255", "broadcast"},
	{"1.1.1.1", NULL},
	{"8.8.8.8", NULL},
	{"93.184.215.14", NULL},

	/* IPv6 special ranges and their edges. */
	{"::", "unspecified"},
	{"::1", "loopback"},
	{"::2", "IPv4-compatible (deprecated)"},
	{"::127.0.0.1", "IPv4-compatible (deprecated)"},
	{"::8.8.8.8", "IPv4-compatible (deprecated)"},
	{"::1:0:0:0", "reserved"},
	{"::fffe:7f00:1", "reserved"},
	{"::ffff:0:7f00:1", "reserved"}, /* SIIT IPv4-translated */
	{"100::", "discard-only (100::/64)"},
	{"100::ffff:ffff:ffff:ffff", "discard-only (100::/64)"},
	{"100:0:0:1::", "reserved"},
	{"1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "reserved"},
	{"2000::", NULL},
	{"2001::", "Teredo"},
	{"2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"},
	{"2001:0:ffff:ffff:ffff:ffff:ffff:ffff", "Teredo"},
	{"2001:1::1", "IETF protocol assignments (2001::/23)"},
	{"2001:2::", "benchmarking"},
	{"2001:2:0:ffff:ffff:ffff:ffff:ffff", "benchmarking"},
	{"2001:2:1::", "IETF protocol assignments (2001::/23)"},
	{"2001:f:ffff:ffff:ffff:ffff:ffff:ffff", "IETF protocol assignments (2001::/23)"},
	{"2001:10::1", "reserved (ORCHID)"},
	{"2001:1f:ffff:ffff:ffff:ffff:ffff:ffff", "reserved (ORCHID)"},
	{"2001:20::1", "IETF protocol assignments (2001::/23)"},
	{"2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff", "IETF protocol assignments (2001::/23)"},
	{"2001:200::", NULL},
	{"2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", NULL},
	{"2001:db8::", "documentation"},
	{"2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "documentation"},
	{"2001:db9::", NULL},
	{"2001:4860:4860::8888", NULL},
	{"2606:4700::1111", NULL},
	{"3ffe::1", NULL},
	{"3fff::", "documentation"},
	{"3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff", "documentation"},
	{"3fff:1000::", NULL},
	{"3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NULL},
	{"4000::", "reserved"},
	{"5f00::1", "reserved"},
	{"fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "reserved"},
	{"fc00::", "unique local (fc00::/7)"},
	{"fd00:ec2::253", "unique local (fc00::/7)"},
	{"fd00:ec2::254", "cloud metadata (AWS)"},
	{"fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "unique local (fc00::/7)"},
	{"fe00::", "reserved"},
	{"fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "reserved"},
	{"fe80::", "link-local"},
	{"fe80::1", "link-local"},
	{"febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "link-local"},
	{"fec0::1", "site-local (deprecated)"},
	{"feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "site-local (deprecated)"},
	{"ff00::", "multicast"},
	{"ff02::1", "multicast"},
	{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "multicast"},

	/* IPv4-mapped: judged by the embedded address. */
	{"::ffff:127.0.0.1", "IPv4-mapped loopback"},
	{"::ffff:7f00:1", "IPv4-mapped loopback"},
	{"::ffff:169.254.169.254", "IPv4-mapped cloud metadata"},
	{"::ffff:10.1.2.3", "IPv4-mapped private (RFC 1918)"},
	{"::ffff:172.16.0.1", "IPv4-mapped private (RFC 1918)"},
	{"::ffff:100.64.0.1", "IPv4-mapped shared address space (RFC 6598)"},
	{"::ffff:0.0.0.0", "IPv4-mapped unspecified"},
	{"::ffff:255.255.255.255", "IPv4-mapped broadcast"},
	{"::ffff:8.8.8.8", NULL},
	{"::ffff:93.184.215.14", NULL},

	/* NAT64 well-known prefix: judged by the embedded address. */
	{"64:ff9b::7f00:1", "NAT64 of loopback"},
	{"64:ff9b::169.254.169.254", "NAT64 of cloud metadata"},
	{"64:ff9b::192.168.1.1", "NAT64 of private (RFC 1918)"},
	{"64:ff9b::10.0.0.1", "NAT64 of private (RFC 1918)"},
	{"64:ff9b::100.100.100.200", "NAT64 of cloud metadata"},
	{"64:ff9b::8.8.8.8", NULL},
	{"64:ff9b::93.184.215.14", NULL},
	{"64:ff9b::1:7f00:1", "reserved"}, /* not in the /96 */
	{"64:ff9b:1::1", "NAT64 local-use (64:ff9b:1::/48)"},
	{"64:ff9b:1:ffff:ffff:ffff:ffff:ffff", "NAT64 local-use (64:ff9b:1::/48)"},
	{"64:ff9b:2::1", "reserved"},

	/* 6to4: judged by the IPv4 address in bytes 2..5. */
	{"2002:7f00:1::1", "6to4 of loopback"},
	{"2002:a9fe:a9fe::", "6to4 of cloud metadata"},
	{"2002:c0a8:101::1", "6to4 of private (RFC 1918)"},
	{"2002:a00:1:ffff:ffff:ffff:ffff:ffff", "6to4 of private (RFC 1918)"},
	{"2002::1", "6to4 of unspecified"},
	{"2002:808:808::1", NULL},
	{"2002:5db8:d70e::1", NULL},
	{"2003::1", NULL},
};

Test(addr, special)
{
	for (size_t i = 0; i < N_ELEMS(special_cases); i++) {
		const struct special_case *c = &special_cases[i];
		struct sockaddr_storage ss = sockaddr_of(c->addr);
		const char *why = aj_addr_special((const struct sockaddr *)&ss);

		if (c->why == NULL)
			cr_expect_null(why, "%s: got '%s', want public", c->addr, why);
		else
			cr_expect(why != NULL && strcmp(why, c->why) == 0,
				  "%s: got '%s', want '%s'", c->addr, why ? why : "(public)",
				  c->why);
	}
}

Test(addr, not_ip)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX, .sun_path = "/run/x"};
	struct sockaddr_storage ss;

	cr_expect_str_eq(aj_addr_special((const struct sockaddr *)&sun), "not an IP address");
	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_UNSPEC;
	cr_expect_str_eq(aj_addr_special((const struct sockaddr *)&ss), "not an IP address");
}

Test(addr, format)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{"127.0.0.1", "127.0.0.1"},
		{"2001:0db8:0000::0001", "2001:db8::1"},
		{"::ffff:7f00:1", "::ffff:127.0.0.1"},
		{"FD00:EC2::254", "fd00:ec2::254"},
	};
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct sockaddr_storage ss;
	char buf[INET6_ADDRSTRLEN];

	for (size_t i = 0; i < N_ELEMS(cases); i++) {
		ss = sockaddr_of(cases[i].in);
		aj_addr_format((const struct sockaddr *)&ss, buf, sizeof(buf));
		cr_expect_str_eq(buf, cases[i].out);
	}
	/* Truncated, but always terminated. */
	ss = sockaddr_of("192.168.100.100");
	aj_addr_format((const struct sockaddr *)&ss, buf, 4);
	cr_expect_str_eq(buf, "192");
	aj_addr_format((const struct sockaddr *)&sun, buf, sizeof(buf));
	cr_expect_str_eq(buf, "(not an IP address)");
}

struct cidr_ok_case {
	const char *in;
	int family;
	unsigned prefix;
	const char *formatted;
};

static const struct cidr_ok_case cidr_ok_cases[] = {
	{"10.0.0.0/8", AF_INET, 8, "10.0.0.0/8"},
	{"127.0.0.2", AF_INET, 32, "127.0.0.2"},
	{"127.0.0.2/32", AF_INET, 32, "127.0.0.2"},
	{"0.0.0.0/0", AF_INET, 0, "0.0.0.0/0"},
	{"100.64.0.0/10", AF_INET, 10, "100.64.0.0/10"},
	{"172.16.0.0/12", AF_INET, 12, "172.16.0.0/12"},
	{"198.18.0.0/15", AF_INET, 15, "198.18.0.0/15"},
	{"169.254.169.254", AF_INET, 32, "169.254.169.254"},
	{"255.255.255.255", AF_INET, 32, "255.255.255.255"},
	{"fd00::/8", AF_INET6, 8, "fd00::/8"},
	{"::1", AF_INET6, 128, "::1"},
	{"::1/128", AF_INET6, 128, "::1"},
	{"::", AF_INET6, 128, "::"},
	{"::/0", AF_INET6, 0, "::/0"},
	{"fe80::/10", AF_INET6, 10, "fe80::/10"},
	{"FE80::/10", AF_INET6, 10, "fe80::/10"},
	{"2001:0db8:0000::/48", AF_INET6, 48, "2001:db8::/48"},
	{"2001:db8:8000::/33", AF_INET6, 33, "2001:db8:8000::/33"},
	{"fd00:ec2::254", AF_INET6, 128, "fd00:ec2::254"},
	{"::ffff:127.0.0.1", AF_INET6, 128, "::ffff:127.0.0.1"},
	{"::ffff:0:0/96", AF_INET6, 96, "::ffff:0.0.0.0/96"},
	{"64:ff9b::/96", AF_INET6, 96, "64:ff9b::/96"},
	{"ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255/128", AF_INET6, 128,
	 "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
};

Test(cidr, parses_and_formats)
{
	for (size_t i = 0; i < N_ELEMS(cidr_ok_cases); i++) {
		const struct cidr_ok_case *c = &cidr_ok_cases[i];
		struct aj_cidr cidr, again;
		char err[256] = "", buf[AJ_CIDR_STRLEN];

		cr_expect_eq(aj_cidr_parse(c->in, &cidr, err, sizeof(err)), 0, "'%s' refused: %s",
			     c->in, err);
		cr_expect_eq(cidr.family, c->family, "'%s'", c->in);
		cr_expect_eq(cidr.prefix, c->prefix, "'%s'", c->in);
		aj_cidr_format(&cidr, buf, sizeof(buf));
		cr_expect_str_eq(buf, c->formatted, "'%s'", c->in);
		/* The formatted text reads back to the same range. */
		cr_expect_eq(aj_cidr_parse(buf, &again, err, sizeof(err)), 0, "'%s': %s", buf, err);
		cr_expect_eq(again.family, cidr.family, "'%s'", buf);
		cr_expect_eq(again.prefix, cidr.prefix, "'%s'", buf);
		cr_expect_arr_eq(again.addr, cidr.addr, sizeof(cidr.addr), "'%s'", buf);
	}
}

Test(cidr, address_bytes)
{
	struct aj_cidr c;
	static const uint8_t v4[16] = {172, 16};
	static const uint8_t v6[16] = {0xfd, 0x00, 0x0e, 0xc2, [14] = 0x02, 0x54};

	cr_assert_eq(aj_cidr_parse("172.16.0.0/12", &c, NULL, 0), 0);
	cr_expect_arr_eq(c.addr, v4, 16);
	cr_assert_eq(aj_cidr_parse("fd00:ec2::254", &c, NULL, 0), 0);
	cr_expect_arr_eq(c.addr, v6, 16);
}

struct cidr_bad_case {
	const char *in;
	const char *why;
};

static const struct cidr_bad_case cidr_bad_cases[] = {
	{"", "empty address range"},
	{"2130706433", "not a canonical IPv4 address"},
	{"0177.0.0.1", "not a canonical IPv4 address"},
	{"0x7f.0.0.1", "invalid character 0x78"},
	{"127.1", "not a canonical IPv4 address"},
	{"127.0.1", "not a canonical IPv4 address"},
	{"127.0.0.01", "not a canonical IPv4 address"},
	{"127.0.0.256", "not a canonical IPv4 address"},
	{"1.2.3.4.5", "not a canonical IPv4 address"},
	{"1.2.3.4.", "not a canonical IPv4 address"},
	{"10.0.0.0/33", "prefix length out of range (0-32)"},
	{"10.0.0.0/4294967304", "prefix length out of range (0-32)"},
	{"10.0.0.1/8", "10.0.0.1/8: host bits set; did you mean 10.0.0.0/8?"},
	{"172.31.0.0/11", "did you mean 172.0.0.0/11?"},
	{"fe80::1/64", "fe80::1/64: host bits set; did you mean fe80::/64?"},
	{"::1/127", "did you mean ::/127?"},
	{"fe80::1%eth0", "zone id"},
	{"fe80::1%1", "zone id"},
	{"/8", "missing address before '/'"},
	{"/", "missing address before '/'"},
	{"10.0.0.0/", "missing prefix length"},
	{"10.0.0.0/08", "leading zero"},
	{"10.0.0.0/00", "leading zero"},
	{"10.0.0.0/+8", "invalid character 0x2b"},
	{"10.0.0.0/-8", "invalid character 0x2d"},
	{"10.0.0.0/8/8", "not a decimal number"},
	{"10.0.0.0/a", "not a decimal number"},
	{"::/129", "prefix length out of range (0-128)"},
	{"::/1000", "prefix length out of range (0-128)"},
	{" 10.0.0.0/8", "invalid character 0x20 at offset 0"},
	{"10.0.0.0/8 ", "invalid character 0x20 at offset 10"},
	{"10.0.0.0 /8", "invalid character 0x20"},
	{"10.0.0.0\n", "invalid character 0x0a"},
	{"10.0.0.0\x80", "invalid character 0x80"},
	{"localhost", "invalid character 0x6c"},
	{"[::1]", "invalid character 0x5b"},
	{"::1::", "not a canonical IPv6 address"},
	{":::", "not a canonical IPv6 address"},
	{"1:2:3:4:5:6:7:8:9", "not a canonical IPv6 address"},
	{"12345::", "not a canonical IPv6 address"},
	{"::ffff:127.1", "not a canonical IPv6 address"},
	{"::ffff:0177.0.0.1", "not a canonical IPv6 address"},
	{"1111:2222:3333:4444:5555:6666:7777:8888:9999/128", "not a canonical IPv6 address"},
	{"1111:2222:3333:4444:5555:6666:7777:8888:99999999", "not a canonical IPv6 address"},
	{"1111:2222:3333:4444:5555:6666:255.255.255.255/1280", "longer than 49"},
};

Test(cidr, refuses)
{
	for (size_t i = 0; i < N_ELEMS(cidr_bad_cases); i++) {
		const struct cidr_bad_case *c = &cidr_bad_cases[i];
		struct aj_cidr cidr;
		char err[256] = "";
		int rc;

		memset(&cidr, 0x5a, sizeof(cidr));
		rc = aj_cidr_parse(c->in, &cidr, err, sizeof(err));
		cr_expect_eq(rc, -EINVAL, "'%s' accepted", c->in);
		cr_expect(strstr(err, c->why) != NULL, "'%s': got '%s', want '%s'", c->in, err,
			  c->why);
		/* The output is written only on success. */
		cr_expect_eq(((unsigned char *)&cidr)[0], 0x5a, "'%s'", c->in);
	}
}

Test(cidr, error_buffer_optional)
{
	struct aj_cidr c;
	char err[8];

	cr_expect_eq(aj_cidr_parse("10.0.0.1/8", &c, NULL, 0), -EINVAL);
	/* A short buffer gets a truncated, terminated message. */
	cr_expect_eq(aj_cidr_parse("10.0.0.1/8", &c, err, sizeof(err)), -EINVAL);
	cr_expect_str_eq(err, "10.0.0.");
}

Test(cidr, format_truncates)
{
	struct aj_cidr c;
	char buf[5];

	cr_assert_eq(aj_cidr_parse("10.0.0.0/8", &c, NULL, 0), 0);
	aj_cidr_format(&c, buf, sizeof(buf));
	cr_expect_str_eq(buf, "10.0");
}

struct contains_case {
	const char *cidr;
	const char *addr;
	bool want;
};

static const struct contains_case contains_cases[] = {
	{"10.0.0.0/8", "10.0.0.0", true},
	{"10.0.0.0/8", "10.255.255.255", true},
	{"10.0.0.0/8", "9.255.255.255", false},
	{"10.0.0.0/8", "11.0.0.0", false},
	/* A mapped address is the IPv4 address on the wire. */
	{"10.0.0.0/8", "::ffff:10.1.2.3", true},
	{"10.0.0.0/8", "::ffff:11.0.0.0", false},
	/* Other embeddings are not compared: those go through a translator. */
	{"10.0.0.0/8", "64:ff9b::10.1.2.3", false},
	{"10.0.0.0/8", "::10.1.2.3", false},
	{"10.0.0.0/8", "2002:a01:203::", false},
	{"172.16.0.0/12", "172.15.255.255", false},
	{"172.16.0.0/12", "172.16.0.0", true},
	{"172.16.0.0/12", "172.31.255.255", true},
	{"172.16.0.0/12", "172.32.0.0", false},
	{"198.18.0.0/15", "198.19.255.255", true},
	{"198.18.0.0/15", "198.20.0.0", false},
	{"127.0.0.1", "127.0.0.1", true},
	{"127.0.0.1", "127.0.0.2", false},
	{"127.0.0.1", "::ffff:127.0.0.1", true},
	{"127.0.0.1", "::1", false},
	{"0.0.0.0/0", "8.8.8.8", true},
	{"0.0.0.0/0", "255.255.255.255", true},
	{"0.0.0.0/0", "::ffff:8.8.8.8", true},
	{"0.0.0.0/0", "::1", false},
	{"0.0.0.0/0", "2001:db8::1", false},
	{"::/0", "::", true},
	{"::/0", "2606:4700::1111", true},
	{"::/0", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true},
	{"::/0", "127.0.0.1", false},
	/* An IPv6 range never contains an AF_INET address. */
	{"::ffff:0:0/96", "127.0.0.1", false},
	{"::ffff:0:0/96", "::ffff:127.0.0.1", true},
	{"::ffff:127.0.0.0/104", "::ffff:127.0.0.1", true},
	{"::1", "::1", true},
	{"::1", "::", false},
	{"fe80::/10", "fe80::1", true},
	{"fe80::/10", "febf:ffff::1", true},
	{"fe80::/10", "fec0::1", false},
	{"fd00:ec2::254", "fd00:ec2::254", true},
	{"fd00:ec2::254", "fd00:ec2::253", false},
	{"2001:db8::/33", "2001:db8:7fff:ffff:ffff:ffff:ffff:ffff", true},
	{"2001:db8::/33", "2001:db8:8000::", false},
};

Test(cidr, contains)
{
	for (size_t i = 0; i < N_ELEMS(contains_cases); i++) {
		const struct contains_case *c = &contains_cases[i];
		struct sockaddr_storage ss = sockaddr_of(c->addr);
		struct aj_cidr cidr;
		char err[256] = "";

		cr_assert_eq(aj_cidr_parse(c->cidr, &cidr, err, sizeof(err)), 0, "%s", err);
		cr_expect_eq(aj_cidr_contains(&cidr, (const struct sockaddr *)&ss), c->want,
			     "%s contains %s: want %s", c->cidr, c->addr, c->want ? "yes" : "no");
	}
}

Test(cidr, contains_not_ip)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct aj_cidr c;

	cr_assert_eq(aj_cidr_parse("0.0.0.0/0", &c, NULL, 0), 0);
	cr_expect_not(aj_cidr_contains(&c, (const struct sockaddr *)&sun));
	cr_assert_eq(aj_cidr_parse("::/0", &c, NULL, 0), 0);
	cr_expect_not(aj_cidr_contains(&c, (const struct sockaddr *)&sun));
}
