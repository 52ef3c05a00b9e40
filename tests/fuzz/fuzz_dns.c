/*
 * libFuzzer target for the DNS stub's reading of queries (broker/dns.c):
 * any bytes are ignored, refused or read, and what is read holds up: a
 * name of host-name bytes within its bounds, a question inside the
 * message, and an answer that fits and says the same.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t addr[4] = {127, 1, 0, 1};
	uint8_t out[AJ_DNS_MAX];
	struct aj_dns_query q;
	int rcode = -1;
	size_t len;

	switch (aj_dns_parse_query(data, size, &q, &rcode)) {
	case AJ_DNS_IGNORED:
		return 0;
	case AJ_DNS_BAD:
		if (rcode != AJ_DNS_FORMERR && rcode != AJ_DNS_NOTIMP)
			abort();
		len = aj_dns_answer(data, &q, rcode, NULL, 0, out, sizeof(out));
		if (len != 12 || out[0] != data[0] || out[1] != data[1])
			abort();
		return 0;
	case AJ_DNS_QUERY:
		break;
	}
	if (strlen(q.name) > AJ_DNS_NAME_MAX || q.question_end > size ||
	    q.name[strspn(q.name, "abcdefghijklmnopqrstuvwxyz0123456789-_.")] != '\0')
		abort();
	len = aj_dns_answer(data, &q, AJ_DNS_NOERROR, addr, 60, out, sizeof(out));
	/* A question fits in a 512-byte message, and its answer adds 16. */
	if (q.question_end + 16 <= sizeof(out) && len != q.question_end + 16)
		abort();
	if (len > 0) {
		struct aj_dns_query back;
		int rc;

		/* The answer's question reads back as the query's (as a query:
		 * the reader ignores responses, so clear QR and the counts). */
		out[2] &= 0x7f;
		out[7] = 0;
		if (aj_dns_parse_query(out, len, &back, &rc) != AJ_DNS_QUERY ||
		    strcmp(back.name, q.name) != 0 || back.qtype != q.qtype)
			abort();
	}
	return 0;
}
