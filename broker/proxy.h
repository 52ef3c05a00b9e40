/*
 * The proxy's two halves, for each other alone (broker.h has its entry):
 *
 *   proxy.c       the listening sockets in the jail, and the proxy's own
 *                 channel to the broker: one in-process client of the
 *                 broker's protocol (docs/PROTOCOL.md) on a socketpair, so
 *                 a request through the proxy is decided, limited, fetched
 *                 and audited by exactly the code a native request is
 *   proxy-conn.c  one client connection: HTTP/1.1 requests read with
 *                 proxy-request.c, each turned into a REQUEST on that
 *                 channel, the answer written back as HTTP/1.1
 *
 * Ids: the channel's request ids come from a counter that only grows, so a
 * frame still on its way for a cancelled request can never be taken for
 * a later one (it names an id no connection holds, and is dropped).
 */
#ifndef AJ_PROXY_H
#define AJ_PROXY_H

#include <ev.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct aj_proxy;
struct aj_proxy_conn;

/* ---- proxy.c, for the connections ----------------------------------------------- */

struct ev_loop *aj_proxy_loop(const struct aj_proxy *px);

/* A request id for C: 0 when AJ_PROTO_MAX_IN_FLIGHT are open (the
 * channel would end past that). */
uint32_t aj_proxy_open_id(struct aj_proxy *px, struct aj_proxy_conn *c);
/* The request ID is over (answered, or cancelled: then CANCEL is sent). */
void aj_proxy_close_id(struct aj_proxy *px, uint32_t id, bool cancel);

/* Frames to the broker, in order.  They queue while the channel is full;
 * aj_proxy_is_backlogged() tells a connection to stop reading its client
 * for a while (it is resumed through aj_proxy_conn_resume()). */
void aj_proxy_send(struct aj_proxy *px, uint8_t type, uint16_t flags, uint32_t id,
		   const void *payload, size_t len);
void aj_proxy_send_json(struct aj_proxy *px, uint8_t type, uint16_t flags, uint32_t id,
			json_t *obj);
bool aj_proxy_is_backlogged(const struct aj_proxy *px);
void aj_proxy_wait_for_room(struct aj_proxy *px, struct aj_proxy_conn *c);

/* C closed: forget it (its ids were closed first). */
void aj_proxy_conn_gone(struct aj_proxy *px, struct aj_proxy_conn *c);

/* ---- proxy-conn.c, for the proxy ----------------------------------------------- */

/* Serve the accepted client FD (non-blocking; taken over).  NULL: out of
 * memory (FD closed). */
struct aj_proxy_conn *aj_proxy_conn_new(struct aj_proxy *px, int fd);
/* Close now, answering nothing more (the proxy is going away). */
void aj_proxy_conn_free(struct aj_proxy_conn *c);

/* The broker's answer to C's request: RESPONSE's object, BODY bytes (END:
 * the last), ERROR's object.  After the last BODY or an ERROR the id is
 * closed by the connection. */
void aj_proxy_conn_response(struct aj_proxy_conn *c, json_t *resp);
void aj_proxy_conn_body(struct aj_proxy_conn *c, const uint8_t *data, size_t len, bool end);
void aj_proxy_conn_error(struct aj_proxy_conn *c, json_t *err);
/* The channel to the broker has room again. */
void aj_proxy_conn_resume(struct aj_proxy_conn *c);

#endif /* AJ_PROXY_H */
