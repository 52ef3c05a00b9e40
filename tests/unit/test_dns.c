/*
 * Unit tests for the DNS stub's messages (broker/dns.c): the one query form
 * read, everything else refused or ignored, and answers that a resolver
 * reads back.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <string.h>

#include "dns.h"

/* A query for NAME (dotted) of QTYPE with ID and RD, into BUF. */
static size_t
query(uint8_t *buf, uint16_t id, const char *name, uint16_t qtype)
{
	size_t n = 12;
	const char *p = name;

	memset(buf, 0, 12);
	buf[0] = (uint8_t)(id >> 8);
	buf[1] = (uint8_t)id;
	buf[2] = 0x01; /* RD */
	buf[5] = 1;    /* one question */
	while (*p != '\0') {
		size_t l = strcspn(p, ".");

		buf[n++] = (uint8_t)l;
		memcpy(buf + n, p, l);
		n += l;
		p += l + (p[l] == '.');
	}
	buf[n++] = 0;
	buf[n++] = (uint8_t)(qtype >> 8);
	buf[n++] = (uint8_t)qtype;
	buf[n++] = 0;
	buf[n++] = 1; /* IN */
	return n;
}

Test(dns, a_query_is_read)
{
	uint8_t m[512];
	size_t n = query(m, 0x1234, "Api.Example.ORG", AJ_DNS_TYPE_A);
	struct aj_dns_query q;
	int rcode = -1;

	cr_assert_eq(aj_dns_parse_query(m, n, &q, &rcode), AJ_DNS_QUERY);
	cr_expect_eq(q.id, 0x1234);
	cr_expect_str_eq(q.name, "api.example.org");
	cr_expect_eq(q.qtype, AJ_DNS_TYPE_A);
	cr_expect_eq(q.qclass, AJ_DNS_CLASS_IN);
	cr_expect_eq(q.question_end, n);
	/* An EDNS OPT record after it is allowed (and not read). */
	m[11] = 1;
	memcpy(m + n, "\0\0\x29\x04\xd0\0\0\0\0\0\0", 11);
	cr_assert_eq(aj_dns_parse_query(m, n + 11, &q, &rcode), AJ_DNS_QUERY);
	cr_expect_eq(q.question_end, n);
}

Test(dns, the_answer_carries_the_question_and_one_address)
{
	static const uint8_t addr[4] = {127, 1, 0, 7};
	uint8_t m[512], out[512];
	size_t n = query(m, 0xbeef, "api.test", AJ_DNS_TYPE_A), len;
	struct aj_dns_query q;
	int rcode;

	cr_assert_eq(aj_dns_parse_query(m, n, &q, &rcode), AJ_DNS_QUERY);
	len = aj_dns_answer(m, &q, AJ_DNS_NOERROR, addr, 3600, out, sizeof(out));
	cr_assert_eq(len, n + 16);
	cr_expect_eq(out[0], 0xbe);
	cr_expect_eq(out[1], 0xef);
	cr_expect_eq(out[2], 0x85, "QR, AA and RD"); /* 1000 0101 */
	cr_expect_eq(out[3], 0x80, "RA, NOERROR");
	cr_expect_eq(out[5], 1);
	cr_expect_eq(out[7], 1);
	cr_expect_eq(memcmp(out + 12, m + 12, n - 12), 0);
	cr_expect_eq(memcmp(out + n, "\xc0\x0c\0\x01\0\x01\0\0\x0e\x10\0\x04\x7f\x01\0\x07", 16), 0);
	/* NXDOMAIN: the question, no answer. */
	len = aj_dns_answer(m, &q, AJ_DNS_NXDOMAIN, NULL, 0, out, sizeof(out));
	cr_assert_eq(len, n);
	cr_expect_eq(out[3] & 0xf, AJ_DNS_NXDOMAIN);
	cr_expect_eq(out[7], 0);
	/* No room: nothing. */
	cr_expect_eq(aj_dns_answer(m, &q, AJ_DNS_NOERROR, addr, 1, out, n + 15), 0);
}

Test(dns, what_is_not_a_query_is_ignored)
{
	uint8_t m[600];
	size_t n = query(m, 1, "a.test", AJ_DNS_TYPE_A);
	struct aj_dns_query q;
	int rcode;

	cr_expect_eq(aj_dns_parse_query(m, 11, &q, &rcode), AJ_DNS_IGNORED);
	cr_expect_eq(aj_dns_parse_query(m, 513, &q, &rcode), AJ_DNS_IGNORED);
	m[2] |= 0x80; /* a response */
	cr_expect_eq(aj_dns_parse_query(m, n, &q, &rcode), AJ_DNS_IGNORED);
}

Test(dns, queries_the_stub_does_not_read_are_refused)
{
	struct {
		size_t at;
		uint8_t byte;
		int rcode;
	} cases[] = {
		{2, 0x01 | 0x10, AJ_DNS_NOTIMP}, /* opcode 2 (status) */
		{5, 2, AJ_DNS_FORMERR},          /* two questions */
		{7, 1, AJ_DNS_FORMERR},          /* an answer in a query */
		{9, 1, AJ_DNS_FORMERR},          /* authority records */
		{12, 0xc0, AJ_DNS_FORMERR},      /* a compression pointer */
		{12, 64, AJ_DNS_FORMERR},        /* a label over 63 */
		{13, '*', AJ_DNS_FORMERR},       /* a byte no host name has */
		{13, 0, AJ_DNS_FORMERR},         /* a NUL inside a label */
	};
	uint8_t m[512], out[512];
	struct aj_dns_query q;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = query(m, 0x4242, "a.test", AJ_DNS_TYPE_A), len;
		int rcode = -1;

		m[cases[i].at] = cases[i].byte;
		cr_assert_eq(aj_dns_parse_query(m, n, &q, &rcode), AJ_DNS_BAD, "case %zu", i);
		cr_expect_eq(rcode, cases[i].rcode, "case %zu", i);
		/* Answered without the question, with the id. */
		len = aj_dns_answer(m, &q, rcode, NULL, 0, out, sizeof(out));
		cr_expect_eq(len, 12);
		cr_expect_eq(out[0], 0x42);
		cr_expect_eq(out[3] & 0xf, rcode);
		cr_expect_eq(out[5], 0);
	}
	/* Cut inside the name or the type: refused, never read past. */
	{
		size_t n = query(m, 1, "abc.test", AJ_DNS_TYPE_A);
		int rcode;

		for (size_t cut = 12; cut < n; cut++)
			cr_expect_eq(aj_dns_parse_query(m, cut, &q, &rcode), AJ_DNS_BAD, "cut %zu",
				     cut);
	}
}

Test(dns, names_longer_than_253_are_refused)
{
	uint8_t m[512];
	char name[300];
	struct aj_dns_query q;
	int rcode;

	/* 4 labels of 63: 255 characters with the dots. */
	memset(name, 'a', sizeof(name));
	for (int i = 63; i < 255; i += 64)
		name[i] = '.';
	name[255] = '\0';
	cr_expect_eq(aj_dns_parse_query(m, query(m, 1, name, 1), &q, &rcode), AJ_DNS_BAD);
	name[253] = '\0';
	cr_expect_eq(aj_dns_parse_query(m, query(m, 1, name, 1), &q, &rcode), AJ_DNS_QUERY);
	cr_expect_eq(strlen(q.name), 253);
}

Test(dns, ip_literals_are_not_names)
{
	cr_expect(aj_dns_name_is_address("127.0.0.1"));
	cr_expect(aj_dns_name_is_address("10.1"));
	cr_expect_not(aj_dns_name_is_address("1.example"));
	cr_expect_not(aj_dns_name_is_address(""));
}
