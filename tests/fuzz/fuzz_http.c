/*
 * libFuzzer target for the broker's reading of upstream header lines
 * (common/http.c): whatever the line, a field's name is a non-empty token
 * inside the line and its value holds no control character but tab, so nothing a
 * server sends can split or forge a header the agent receives.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "field.h"
#include "http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *line = (const char *)data;
	struct aj_http_field f;

	if (aj_http_parse_line(line, size, &f) != AJ_HTTP_FIELD)
		return 0;
	if (f.name != line || f.name_len == 0 || f.name_len >= size)
		abort();
	if (f.value < line + f.name_len + 1 || f.value + f.value_len > line + size)
		abort();
	for (size_t i = 0; i < f.value_len; i++)
		if (((unsigned char)f.value[i] < 0x20 && f.value[i] != '\t') || f.value[i] == 0x7f)
			abort();
	if (memchr(f.name, ':', f.name_len) || memchr(f.name, ' ', f.name_len))
		abort();
	(void)aj_field_is_hop_by_hop(f.name, f.name_len);
	return 0;
}
