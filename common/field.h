/*
 * RFC 9110's syntax of header fields, one rule for every reader: the
 * broker's REQUEST parser (common/proto.c), its reading of upstream
 * headers (broker/http.c) and the client's reading of RESPONSE
 * (agent/client.c).  Pure functions.
 */
#ifndef AJ_FIELD_H
#define AJ_FIELD_H

#include <stdbool.h>
#include <stddef.h>

/* RFC 9110 5.6.2 tchar. */
bool aj_field_is_tchar(unsigned char c);

/* A token: LEN >= 1 tchars (a field name, a method). */
bool aj_field_is_token(const char *s, size_t len);

/* A field value (RFC 9110 5.5): no control character but tab, no DEL.
 * CR and LF would split a header in two (request smuggling). */
bool aj_field_is_value(const char *s, size_t len);

/* Is the field NAME (LEN bytes) one of the connection's own (hop-by-hop,
 * RFC 9110 7.6.1), never relayed? */
bool aj_field_is_hop_by_hop(const char *name, size_t len);

#endif /* AJ_FIELD_H */
