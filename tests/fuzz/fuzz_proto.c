/*
 * libFuzzer target for the wire-protocol codec: any input is either refused
 * with a reason or decoded, a decoded header must encode back to the very
 * bytes it came from (so what was checked is what is used), and the
 * payload parsers must survive whatever a decoded frame carries.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <agentjail/protocol.h>

#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_payload(const uint8_t *payload, size_t len, uint8_t type)
{
	struct aj_proto_request req = {0};
	json_t *obj = NULL;
	char err[512];

	err[0] = '\0';
	if (type == AJ_MSG_REQUEST) {
		if (aj_proto_parse_request(payload, len, &req, err, sizeof(err)) == 0) {
			if (req.url == NULL || req.method[0] == '\0' ||
			    (req.n_headers > 0 && req.headers == NULL))
				abort();
			aj_proto_request_clear(&req);
		} else if (err[0] == '\0') {
			abort(); /* every refusal says why */
		}
	}
	err[0] = '\0';
	if (aj_proto_parse_json(payload, len, &obj, err, sizeof(err)) == 0) {
		if (!json_is_object(obj))
			abort();
		json_decref(obj);
	} else if (err[0] == '\0') {
		abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct aj_frame f;
	const uint8_t *payload = NULL;
	uint8_t again[AJ_PROTO_HEADER_SIZE];
	char err[512];

	err[0] = '\0';
	if (aj_proto_decode(data, size, &f, &payload, err, sizeof(err)) != 0) {
		if (err[0] == '\0')
			abort();
		/* Not a frame, but the parsers still get the bytes. */
		check_payload(data, size, AJ_MSG_REQUEST);
		return 0;
	}
	if (payload != data + AJ_PROTO_HEADER_SIZE || f.length != size - AJ_PROTO_HEADER_SIZE ||
	    aj_proto_type_name(f.type) == NULL)
		abort();
	aj_proto_encode_header(&f, again);
	if (memcmp(again, data, AJ_PROTO_HEADER_SIZE) != 0)
		abort(); /* decode accepted bytes it does not represent */
	check_payload(payload, f.length, f.type);
	return 0;
}
