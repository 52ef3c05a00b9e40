/*
 * DNS queries read and answers written for the jail's stub resolver
 * (broker/dns.h).
 */
#include "config.h"

#include <string.h>

#include "dns.h"

#define HEADER 12
#define FLAG_QR 0x8000u
#define FLAG_AA 0x0400u
#define FLAG_RD 0x0100u
#define FLAG_RA 0x0080u
#define OPCODE(f) (((f) >> 11) & 0xfu)

static uint16_t
get16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static void
put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* A label byte the stub accepts: what host names are made of (letters,
 * digits, '-', and '_' as service labels use it), upper case folded. */
static int
label_char(uint8_t c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A' + 'a';
	if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_')
		return c;
	return -1;
}

/* The question's name at MSG[*OFF...] into NAME; *OFF past it.  0, or -1
 * for a name the stub does not read. */
static int
read_name(const uint8_t *msg, size_t len, size_t *off, char name[AJ_DNS_NAME_MAX + 1])
{
	size_t p = *off, n = 0;

	for (;;) {
		uint8_t l;

		if (p >= len)
			return -1;
		l = msg[p++];
		if (l == 0)
			break;
		/* 0xC0 is a compression pointer, 0x40 and 0x80 reserved. */
		if (l > 63 || p + l > len || n + (n > 0) + l > AJ_DNS_NAME_MAX)
			return -1;
		if (n > 0)
			name[n++] = '.';
		for (uint8_t i = 0; i < l; i++) {
			int c = label_char(msg[p + i]);

			if (c < 0)
				return -1;
			name[n++] = (char)c;
		}
		p += l;
	}
	name[n] = '\0';
	*off = p;
	return 0;
}

enum aj_dns_verdict
aj_dns_parse_query(const uint8_t *msg, size_t len, struct aj_dns_query *q, int *rcode)
{
	size_t off = HEADER;

	memset(q, 0, sizeof(*q));
	if (len < HEADER || len > AJ_DNS_MAX)
		return AJ_DNS_IGNORED;
	q->id = get16(msg);
	q->flags = get16(msg + 2);
	if (q->flags & FLAG_QR)
		return AJ_DNS_IGNORED; /* a response: answering it could loop */
	*rcode = AJ_DNS_NOTIMP;
	if (OPCODE(q->flags) != 0)
		return AJ_DNS_BAD;
	*rcode = AJ_DNS_FORMERR;
	/* One question; no answers or authority in a query (additional
	 * records, an EDNS OPT, are allowed and not read). */
	if (get16(msg + 4) != 1 || get16(msg + 6) != 0 || get16(msg + 8) != 0 ||
	    read_name(msg, len, &off, q->name) < 0 || len - off < 4)
		return AJ_DNS_BAD;
	q->qtype = get16(msg + off);
	q->qclass = get16(msg + off + 2);
	q->question_end = off + 4;
	return AJ_DNS_QUERY;
}

size_t
aj_dns_answer(const uint8_t *query, const struct aj_dns_query *q, int rcode, const uint8_t addr[4],
	      uint32_t ttl, uint8_t *out, size_t cap)
{
	size_t question = q->question_end > HEADER ? q->question_end - HEADER : 0;
	size_t len = HEADER + question + (addr != NULL ? 16 : 0);
	uint8_t *a;

	if (len > cap || (addr != NULL && question == 0))
		return 0;
	put16(out, q->id);
	put16(out + 2, (uint16_t)(FLAG_QR | (q->flags & (0xfu << 11)) | FLAG_AA |
				  (q->flags & FLAG_RD) | FLAG_RA | (rcode & 0xf)));
	put16(out + 4, question > 0 ? 1 : 0);
	put16(out + 6, addr != NULL ? 1 : 0);
	put16(out + 8, 0);
	put16(out + 10, 0);
	memcpy(out + HEADER, query + HEADER, question);
	if (addr != NULL) {
		a = out + HEADER + question;
		put16(a, 0xC000 | HEADER); /* the question's name */
		put16(a + 2, AJ_DNS_TYPE_A);
		put16(a + 4, AJ_DNS_CLASS_IN);
		put16(a + 6, (uint16_t)(ttl >> 16));
		put16(a + 8, (uint16_t)ttl);
		put16(a + 10, 4);
		memcpy(a + 12, addr, 4);
	}
	return len;
}

bool
aj_dns_name_is_address(const char *name)
{
	return name[0] != '\0' && name[strspn(name, "0123456789.")] == '\0';
}
