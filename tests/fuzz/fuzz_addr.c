/*
 * libFuzzer target for the address ranges a profile names (`fetch address
 * allow`, common/addr.c): any text is refused or parsed, a parsed range
 * formats to text that parses back to the same range, and any 16 bytes
 * classify as an IPv4 and an IPv6 address without a fault.
 */
#include "config.h"

#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char text[256], again[AJ_CIDR_STRLEN], err[256];
	struct aj_cidr c, d;
	struct sockaddr_in v4 = {.sin_family = AF_INET};
	struct sockaddr_in6 v6 = {.sin6_family = AF_INET6};

	if (size >= 16) {
		memcpy(&v4.sin_addr, data, 4);
		memcpy(&v6.sin6_addr, data, 16);
		(void)aj_addr_special((struct sockaddr *)&v4);
		(void)aj_addr_special((struct sockaddr *)&v6);
	}
	if (size >= sizeof(text))
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (aj_cidr_parse(text, &c, err, sizeof(err)) < 0)
		return 0;
	aj_cidr_format(&c, again, sizeof(again));
	if (aj_cidr_parse(again, &d, err, sizeof(err)) < 0 || memcmp(&c, &d, sizeof(c)) != 0)
		abort();
	if (size >= 16)
		(void)aj_cidr_contains(&c, (struct sockaddr *)&v6);
	return 0;
}
