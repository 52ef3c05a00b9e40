/*
 * The DNS messages of the jail's stub resolver (broker/dns-stub.c): one
 * query read, one answer written (RFC 1035 4.1).  Pure: no I/O, no global
 * state.  Every byte of a query comes from the agent; the reader takes a
 * standard query with exactly one question whose name is written out in
 * labels (no compression: a question is never compressed), and refuses
 * anything else.
 */
#ifndef AJ_DNS_H
#define AJ_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A UDP message, at most (RFC 1035 4.2.1, without EDNS). */
#define AJ_DNS_MAX 512
/* A name in text, without the root's dot, at most. */
#define AJ_DNS_NAME_MAX 253

enum {
	AJ_DNS_TYPE_A = 1,
	AJ_DNS_TYPE_AAAA = 28,
	AJ_DNS_CLASS_IN = 1,
};

enum {
	AJ_DNS_NOERROR = 0,
	AJ_DNS_FORMERR = 1,
	AJ_DNS_SERVFAIL = 2,
	AJ_DNS_NXDOMAIN = 3,
	AJ_DNS_NOTIMP = 4,
	AJ_DNS_REFUSED = 5,
};

struct aj_dns_query {
	uint16_t id;
	uint16_t flags;   /* as sent (RD is echoed) */
	char name[AJ_DNS_NAME_MAX + 1]; /* lower-case, dotted, no trailing dot; "" for the root */
	uint16_t qtype, qclass;
	size_t question_end; /* where the question ends in the message */
};

/* What aj_dns_parse_query() says of a message. */
enum aj_dns_verdict {
	AJ_DNS_QUERY,    /* a query to answer: *Q is filled */
	AJ_DNS_BAD,      /* a query the stub cannot read (FORMERR) or does not serve
			    (NOTIMP, in *RCODE); the id and flags in *Q are set */
	AJ_DNS_IGNORED,  /* not a query at all (too short, a response): no answer */
};

/* Read the LEN bytes at MSG.  *RCODE is set for AJ_DNS_BAD. */
enum aj_dns_verdict aj_dns_parse_query(const uint8_t *msg, size_t len, struct aj_dns_query *q,
				       int *rcode);

/* The answer to Q (whose message is QUERY, its question copied back) with
 * RCODE and, when ADDR is not NULL, one A record of ADDR (network order)
 * living TTL seconds, into OUT (CAP bytes).  For an AJ_DNS_BAD query
 * (QUESTION_END 0) the answer carries no question.  Returns its length, or
 * 0 if CAP is too small. */
size_t aj_dns_answer(const uint8_t *query, const struct aj_dns_query *q, int rcode,
		     const uint8_t addr[4], uint32_t ttl, uint8_t *out, size_t cap);

/* Does NAME look like an IPv4 address (digits and dots only)? */
bool aj_dns_name_is_address(const char *name);

#endif /* AJ_DNS_H */
