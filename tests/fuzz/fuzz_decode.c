/*
 * libFuzzer target for the violation decoder: the agent chooses every
 * argument of a refused call, and the decoded text becomes part of a JSON
 * event.  Whatever the numbers, and whatever the room, the output must be
 * valid JSON members (truncated only between whole members) and the
 * summary NUL-terminated within its buffer.
 */
#include "config.h"

#include <jansson.h>
#include <linux/audit.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "decode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t rooms[] = {0, 1, 7, 32, 96, 512, 2048};
	struct seccomp_data d;
	char out[2048], json[2060], summary[96];

	memset(&d, 0, sizeof(d));
	memcpy(&d, data, size < sizeof(d) ? size : sizeof(d));
	/* Mostly native calls: that is what the filter lets through. */
	if (size <= sizeof(d) || (data[sizeof(d)] & 1) == 0)
		d.arch = AUDIT_ARCH_X86_64;
	(void)aj_decode_syscall_name(d.nr);
	for (size_t i = 0; i < sizeof(rooms) / sizeof(rooms[0]); i++) {
		size_t n = aj_decode_args(&d, rooms[i] ? out : NULL, rooms[i]);
		json_t *obj;

		if (rooms[i] == 0)
			continue;
		if (n >= rooms[i] || out[n] != '\0')
			abort();
		snprintf(json, sizeof(json), "{%s}", out);
		obj = json_loads(json, 0, NULL);
		if (obj == NULL)
			abort(); /* the event line would be broken */
		json_decref(obj);
	}
	if (aj_decode_summary(&d, summary, sizeof(summary)) >= sizeof(summary) ||
	    memchr(summary, '\0', sizeof(summary)) == NULL)
		abort();
	return 0;
}
