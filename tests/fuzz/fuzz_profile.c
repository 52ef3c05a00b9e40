/*
 * libFuzzer target for the profile parser: any input must be either
 * rejected with a message or accepted, and an accepted policy's canonical
 * text must parse back to the same canonical text (the text is what the
 * sha256 names, so it must be a fixed point).
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "supervisor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct aj_profile *p = NULL, *q = NULL;
	char err[1024], *text = NULL, *again = NULL, *json = NULL;
	char *buf = malloc(size + 1);

	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	if (aj_profile_parse_string("fuzz", "/nonexistent/fuzz.profile", buf, &p, err,
				    sizeof(err)) == 0) {
		if (aj_profile_format_text(p, &text) != 0 || aj_profile_format_json(p, &json) != 0)
			abort();
		if (aj_profile_parse_string("fuzz", "/nonexistent/canon.profile", text, &q, err,
					    sizeof(err)) != 0)
			abort(); /* canonical text must be a valid profile */
		if (aj_profile_format_text(q, &again) != 0 || strcmp(text, again) != 0)
			abort(); /* and a fixed point */
	} else if (err[0] == '\0') {
		abort(); /* every refusal says why */
	}
	free(text);
	free(again);
	free(json);
	aj_profile_free(p);
	aj_profile_free(q);
	free(buf);
	return 0;
}
