/*
 * agentjail-broker's internal header: one section per file.
 */
#ifndef AJ_BROKER_H
#define AJ_BROKER_H

#include <stddef.h>

/* ---- broker/confine.c ---------------------------------------------------- */

/* Load the broker's own seccomp filter (needs no_new_privs or CAP_SYS_ADMIN;
 * sets no_new_privs).  Returns 0 or -errno with ERR. */
int aj_broker_confine(char *err, size_t errlen);

#endif /* AJ_BROKER_H */
