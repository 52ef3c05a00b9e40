/*
 * libFuzzer target for the broker's reading of the policy hand-over
 * (common/handover.c): any bytes are refused or decoded, and a decoded
 * policy encodes back to exactly the bytes it came from.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "handover.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct aj_policy p = {0};
	uint8_t *again;
	size_t len;
	char err[256];

	if (aj_handover_decode(data, size, &p, err, sizeof(err)) < 0)
		return 0;
	if (aj_handover_encode(&p, &again, &len) < 0)
		abort();
	/* The header and the text must come back byte for byte; the records
	 * too, padding included (they are copied whole). */
	if (len != size || memcmp(again, data, size) != 0)
		abort();
	free(again);
	aj_policy_clear(&p);
	return 0;
}
