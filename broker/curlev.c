/*
 * libcurl's multi interface driven by the broker's libev loop (one thread,
 * no polling, no thread per request; libcurl's resolver threads aside), as
 * curl's docs/examples/multi-event.c does it: libcurl says which sockets
 * to watch and when to time out, libev calls back, and after every round
 * the finished transfers are reported (never from inside libcurl's own
 * callbacks).
 *
 * This file also makes every socket libcurl connects with and remembers
 * them, so that a pipe transfer can take its connection over
 * (broker/pipe.c): a reused connection is announced to the socket
 * callback by no one, so the list is the only way to find it.
 */
#include "config.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker.h"
#include "log.h"

/* A socket libcurl asked us to watch. */
struct sock_watch {
	ev_io io;
	struct aj_curlev *cv;
	curl_socket_t fd;
};

struct aj_curlev {
	struct ev_loop *loop;
	const struct aj_curlev_hooks *hooks;
	void *arg;
	CURLM *multi;
	ev_timer timer;
	int *conns; /* every upstream socket libcurl holds open */
	size_t n_conns, conns_cap;
	int adopting; /* the socket being taken over: libcurl's close leaves it open */
};

void
aj_curlev_after(struct aj_curlev *cv)
{
	CURLMsg *m;
	int left;

	cv->hooks->after_round(cv->arg);
	while ((m = curl_multi_info_read(cv->multi, &left)) != NULL)
		if (m->msg == CURLMSG_DONE)
			cv->hooks->done(m->easy_handle, (int)m->data.result, cv->arg);
}

static void
on_socket_event(struct ev_loop *loop, ev_io *w, int revents)
{
	struct sock_watch *s = (struct sock_watch *)w;
	/* The action may remove the watch (CURL_POLL_REMOVE frees it). */
	struct aj_curlev *cv = s->cv;
	int running, flags = (revents & EV_READ ? CURL_CSELECT_IN : 0) |
			     (revents & EV_WRITE ? CURL_CSELECT_OUT : 0);

	curl_multi_socket_action(cv->multi, s->fd, flags, &running);
	aj_curlev_after(cv);
}

static int
on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct aj_curlev *cv = userp;
	struct sock_watch *s = socketp;
	int events = (what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0);

	if (what == CURL_POLL_REMOVE) {
		if (s != NULL) {
			ev_io_stop(cv->loop, &s->io);
			free(s);
			curl_multi_assign(cv->multi, fd, NULL);
		}
		return 0;
	}
	if (s == NULL) {
		s = calloc(1, sizeof(*s));
		if (s == NULL)
			return -1;
		s->cv = cv;
		s->fd = fd;
		curl_multi_assign(cv->multi, fd, s);
	} else {
		ev_io_stop(cv->loop, &s->io);
	}
	ev_io_init(&s->io, on_socket_event, fd, events);
	ev_io_start(cv->loop, &s->io);
	return 0;
}

static void
on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct aj_curlev *cv = w->data;
	int running;

	curl_multi_socket_action(cv->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	aj_curlev_after(cv);
}

/* Milliseconds, not seconds: a sub-second timeout must not become 0. */
static int
on_timer_change(CURLM *multi, long timeout_ms, void *userp)
{
	struct aj_curlev *cv = userp;

	ev_timer_stop(cv->loop, &cv->timer);
	if (timeout_ms >= 0) {
		ev_timer_set(&cv->timer, (double)timeout_ms / 1000.0, 0.0);
		ev_timer_start(cv->loop, &cv->timer);
	}
	return 0;
}

/* ---- libcurl's sockets ------------------------------------------------------ */

int
aj_curlev_socket(struct aj_curlev *cv, int family, int type, int protocol)
{
	int fd = socket(family, type | SOCK_CLOEXEC, protocol);

	/* Known, so that a takeover can find a transfer's connection; when the
	 * list cannot grow, that connection is simply never taken over. */
	if (fd >= 0 && cv->n_conns == cv->conns_cap) {
		size_t cap = cv->conns_cap ? 2 * cv->conns_cap : 16;
		int *grown = realloc(cv->conns, cap * sizeof(*grown));

		if (grown != NULL) {
			cv->conns = grown;
			cv->conns_cap = cap;
		}
	}
	if (fd >= 0 && cv->n_conns < cv->conns_cap)
		cv->conns[cv->n_conns++] = fd;
	return fd;
}

int
aj_curlev_open_socket(struct aj_curlev *cv, const struct aj_egress *e, int purpose, void *addr,
		      const char *host, int host_kind, const char *rule_host, const char **refused,
		      char *refused_addr, char *address)
{
	struct curl_sockaddr *a = addr;
	const char *why;
	int fd;

	if (purpose != CURLSOCKTYPE_IPCXN || (a->family != AF_INET && a->family != AF_INET6))
		return CURL_SOCKET_BAD;
	why = aj_egress_refused_host(e, &a->addr, host, host_kind, rule_host);
	if (why != NULL) {
		*refused = why;
		aj_addr_format(&a->addr, refused_addr, INET6_ADDRSTRLEN);
		return CURL_SOCKET_BAD;
	}
	fd = aj_curlev_socket(cv, a->family, a->socktype, a->protocol);
	if (fd >= 0)
		aj_addr_format(&a->addr, address, INET6_ADDRSTRLEN);
	return fd;
}

/* (No easy handle here: libcurl may close a kept connection long after
 * the transfer that opened it.) */
int
aj_curlev_close_socket(struct aj_curlev *cv, int fd)
{
	for (size_t i = 0; i < cv->n_conns; i++) {
		if (cv->conns[i] == fd) {
			cv->conns[i] = cv->conns[--cv->n_conns];
			break;
		}
	}
	if (fd == cv->adopting) {
		cv->adopting = -1; /* libcurl let go of it: it is the caller's now */
		return 0;
	}
	return close(fd);
}

/* Whether the socket FD is EASY's connection: its two ends are the ones
 * libcurl reports (a descriptor seen earlier could since have been closed
 * and reused). */
static bool
is_connection_of(int fd, CURL *easy)
{
	long port[2] = {-1, -1};
	char *ip[2] = {NULL, NULL};

	if (curl_easy_getinfo(easy, CURLINFO_LOCAL_IP, &ip[0]) != CURLE_OK ||
	    curl_easy_getinfo(easy, CURLINFO_LOCAL_PORT, &port[0]) != CURLE_OK ||
	    curl_easy_getinfo(easy, CURLINFO_PRIMARY_IP, &ip[1]) != CURLE_OK ||
	    curl_easy_getinfo(easy, CURLINFO_PRIMARY_PORT, &port[1]) != CURLE_OK)
		return false;
	for (int end = 0; end < 2; end++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		char text[INET6_ADDRSTRLEN];
		const void *addr;
		unsigned p;

		if ((end == 0 ? getsockname(fd, (struct sockaddr *)&ss, &len)
			      : getpeername(fd, (struct sockaddr *)&ss, &len)) < 0)
			return false;
		if (ss.ss_family == AF_INET) {
			addr = &((struct sockaddr_in *)&ss)->sin_addr;
			p = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		} else if (ss.ss_family == AF_INET6) {
			addr = &((struct sockaddr_in6 *)&ss)->sin6_addr;
			p = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
		} else {
			return false;
		}
		if (inet_ntop(ss.ss_family, addr, text, sizeof(text)) == NULL || ip[end] == NULL ||
		    strcmp(text, ip[end]) != 0 || (long)p != port[end])
			return false;
	}
	return true;
}

int
aj_curlev_connection_of(struct aj_curlev *cv, void *easy)
{
	for (size_t i = 0; i < cv->n_conns; i++)
		if (is_connection_of(cv->conns[i], easy))
			return cv->conns[i];
	return -1;
}

/* libcurl closes the connection as it lets go of the unfinished transfer
 * (not put back for reuse, FORBID_REUSE or not), and without reading from
 * it: that close is the hand-over (aj_curlev_close_socket()).  The easy
 * handle is cleaned up here. */
int
aj_curlev_take_connection(struct aj_curlev *cv, void *easy, int fd)
{
	cv->adopting = fd;
	curl_easy_setopt(easy, CURLOPT_FORBID_REUSE, 1L);
	curl_multi_remove_handle(cv->multi, easy);
	curl_easy_cleanup(easy);
	if (cv->adopting >= 0) {
		cv->adopting = -1;
		return -EBUSY;
	}
	return 0;
}

void *
aj_curlev_multi(struct aj_curlev *cv)
{
	return cv->multi;
}

struct aj_curlev *
aj_curlev_new(struct ev_loop *loop, const struct aj_curlev_hooks *hooks, void *arg)
{
	struct aj_curlev *cv = calloc(1, sizeof(*cv));

	if (cv == NULL)
		return NULL;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		aj_log_error("libcurl failed to initialise");
		free(cv);
		return NULL;
	}
	cv->loop = loop;
	cv->hooks = hooks;
	cv->arg = arg;
	cv->adopting = -1;
	cv->multi = curl_multi_init();
	if (cv->multi == NULL) {
		aj_curlev_free(cv);
		return NULL;
	}
	curl_multi_setopt(cv->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(cv->multi, CURLMOPT_SOCKETDATA, cv);
	curl_multi_setopt(cv->multi, CURLMOPT_TIMERFUNCTION, on_timer_change);
	curl_multi_setopt(cv->multi, CURLMOPT_TIMERDATA, cv);
	ev_init(&cv->timer, on_timer);
	cv->timer.data = cv;
	return cv;
}

void
aj_curlev_free(struct aj_curlev *cv)
{
	if (cv == NULL)
		return;
	ev_timer_stop(cv->loop, &cv->timer);
	if (cv->multi != NULL)
		curl_multi_cleanup(cv->multi);
	free(cv->conns);
	free(cv);
}
