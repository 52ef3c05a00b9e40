/*
 * What the broker's in-process unit tests share: a policy from profile
 * text, a libev loop to turn, and the agent's end of a channel (a real
 * SOCK_SEQPACKET pair) to send frames on and read answers from.
 */
#ifndef AJ_BROKER_FIXTURE_H
#define AJ_BROKER_FIXTURE_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <agentjail/protocol.h>

#include "policy.h"

/* The fetch policy of profile TEXT (named /t/test.profile in messages);
 * freed with fixture_policy_free(). */
struct aj_policy *fixture_policy(const char *text);
void fixture_policy_free(struct aj_policy *p);

/* A fresh (non-default) loop. */
struct ev_loop *fixture_loop(void);

/* A SOCK_SEQPACKET pair: fds[0] is the broker's (non-blocking), fds[1]
 * the agent's. */
void fixture_pair(int fds[2]);

/* Turn LOOP for about SECONDS (or until nothing is left to do). */
void fixture_turn(struct ev_loop *loop, double seconds);

/* Send one frame (TYPE, FLAGS, ID, LEN bytes of PAYLOAD) on SOCK, with FD
 * passed alongside when >= 0. */
void fixture_send(int sock, uint8_t type, uint16_t flags, uint32_t id, const void *payload,
		  size_t len, int fd);
/* The same with a JSON text as payload. */
void fixture_send_json(int sock, uint8_t type, uint16_t flags, uint32_t id, const char *json);

/* One frame read from SOCK without waiting: 1 with *F, PAYLOAD
 * (NUL-terminated, CAP bytes) and *FD (-1: none), 0 when none is there, -1
 * at EOF. */
int fixture_recv(int sock, struct aj_frame *f, char *payload, size_t cap, int *fd);

#endif
