/*
 * `agentjail connect HOST:PORT`, inside a jail whose profile says `proxy
 * on`: stdin and stdout through a raw tunnel of the jail's proxy, for
 * tools that take a command as their transport:
 *
 *     ssh -o ProxyCommand='agentjail connect %h:%p' git@git.example.org
 *     GIT_SSH_COMMAND="ssh -o ProxyCommand='agentjail connect %h:%p'" git clone ...
 *
 * It sends `CONNECT HOST:PORT` to the proxy ($AGENTJAIL_PROXY, set by the
 * supervisor: supervisor/proxy-env.c); the broker relays it only where a
 * `tunnel` rule allows that host and port, resolving, checking and
 * connecting itself (broker/proxy-relay.c).  A refusal is one line on
 * stderr with the broker's code, the rule and the reason, and the fetch's
 * exit statuses (3 denied, 4 timeout, 6 no proxy, 7 upstream, 9 too many).
 *
 * Half-close both ways: the end of stdin becomes shutdown(SHUT_WR) of the
 * tunnel (ssh and git rely on it), the tunnel's end closes stdout; the
 * command ends when both directions are over.
 */
#include "config.h"

#include <agentjail/exitcodes.h>
#include <agentjail/protocol.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent.h"
#include "log.h"

/* The proxy's answer head, at most. */
#define HEAD_MAX 8192

#define CONNECT_EXIT_NO_PROXY 6 /* as the fetch's broker_unavailable */
#define CONNECT_EXIT_UPSTREAM 7 /* as the fetch's upstream_error: the tunnel broke */

/* $AGENTJAIL_PROXY ("http://127.0.0.1:PORT") into SA.  False when it is
 * not set or not that. */
static bool
proxy_address(struct sockaddr_in *sa)
{
	const char *v = getenv("AGENTJAIL_PROXY"), *port;
	char *end;
	unsigned long p;

	if (v == NULL || strncmp(v, "http://127.0.0.1:", 17) != 0)
		return false;
	port = v + 17;
	errno = 0;
	p = strtoul(port, &end, 10);
	if (errno != 0 || end == port || (*end != '\0' && strcmp(end, "/") != 0) || p == 0 ||
	    p > 65535)
		return false;
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)p);
	sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return true;
}

/* The value of header NAME in HEAD (its lines end with CRLF), escaped
 * into OUT; "" when absent. */
static void
header_value(const char *head, const char *name, char *out, size_t len)
{
	size_t n = strlen(name);

	out[0] = '\0';
	for (const char *l = strstr(head, "\r\n"); l != NULL; l = strstr(l + 2, "\r\n")) {
		const char *v = l + 2, *eol;
		char raw[1024];

		if (strncasecmp(v, name, n) != 0 || v[n] != ':')
			continue;
		v += n + 1;
		v += strspn(v, " \t");
		eol = strstr(v, "\r\n");
		snprintf(raw, sizeof(raw), "%.*s", eol ? (int)(eol - v) : (int)strlen(v), v);
		aj_log_escape(raw, out, len);
		return;
	}
}

/* Write all of BUF to FD; false on an error. */
static bool
write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		buf += n;
		len -= (size_t)n;
	}
	return true;
}

/* Read the proxy's answer into HEAD (NUL-terminated): its head and, for a
 * refusal, the one-line body up to the close (*BODY points at it).  The
 * bytes after a 200's head, the tunnel's first, go to stdout.  Returns
 * the status, or -1 when the answer is cut short or not HTTP. */
static int
read_answer(int fd, char *head, size_t cap, const char **body)
{
	size_t len = 0;
	char *end = NULL;
	int status = -1;

	for (;;) {
		ssize_t n = read(fd, head + len, cap - 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			/* A refusal ends with the connection. */
			return end != NULL ? status : -1;
		len += (size_t)n;
		head[len] = '\0';
		if (end == NULL && (end = strstr(head, "\r\n\r\n")) != NULL) {
			end += 4;
			if (sscanf(head, "HTTP/1.%*d %d", &status) != 1)
				return -1;
			*body = end;
			if (status == 200)
				break;
		}
		if (len == cap - 1)
			return end != NULL ? status : -1;
	}
	if ((size_t)(end - head) < len &&
	    !write_all(STDOUT_FILENO, end, len - (size_t)(end - head)))
		return -1;
	return status;
}

/* One line naming why the proxy refused; the exit status for it. */
static int
report_refusal(const char *target, int status, const char *head, const char *body)
{
	char code[128], rule[600], text[1024];

	header_value(head, "X-Agentjail-Error", code, sizeof(code));
	header_value(head, "X-Agentjail-Rule", rule, sizeof(rule));
	aj_log_escape(body, text, sizeof(text));
	/* (The body's own "agentjail: CODE (rule ...): " is said once.) */
	fprintf(stderr, "agentjail connect: the proxy refused the tunnel to %s: %d %s%s%s%s\n",
		target, status, code[0] ? code : "(no code)", rule[0] ? " (rule " : "", rule,
		rule[0] ? ")" : "");
	if (strchr(text, ':') != NULL && strncmp(text, "agentjail: ", 11) == 0) {
		const char *why = strstr(text, "): ");

		why = why ? why + 3 : strchr(text + 11, ':') + 1;
		why += strspn(why, " ");
		fprintf(stderr, "agentjail connect: %.*s\n", (int)strcspn(why, "\\"), why);
	}
	return aj_fetch_exit_status(code[0] ? code : AJ_ERR_UPSTREAM);
}

/* Bytes both ways until both directions are over.  SOCK is non-blocking
 * and stdin is read only once what it gave went out: a far end that
 * echoes while it reads cannot wedge us (our write waiting on it, its
 * write waiting on our read).  Stdout is written as it is (blocking): it
 * is the reader's to keep up. */
static int
relay(int sock)
{
	char up[65536], down[65536];
	size_t up_off = 0, up_len = 0;
	bool in_open = true, shut = false, out_open = true;
	ssize_t n;

	while (!shut || out_open) {
		struct pollfd p[2] = {
			{in_open && up_len == 0 ? STDIN_FILENO : -1, POLLIN, 0},
			{sock, (short)((out_open ? POLLIN : 0) | (up_len > up_off ? POLLOUT : 0)),
			 0},
		};

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return AJ_EXIT_FAILURE;
		}
		if (p[0].revents) {
			n = read(STDIN_FILENO, up, sizeof(up));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				in_open = false; /* the end of stdin, passed on below */
			else
				up_off = 0, up_len = (size_t)n;
		}
		while (up_len > up_off) {
			n = send(sock, up + up_off, up_len - up_off, MSG_NOSIGNAL);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
				break;
			if (n <= 0) {
				fprintf(stderr, "agentjail connect: the tunnel broke: %s\n",
					strerror(errno));
				return CONNECT_EXIT_UPSTREAM;
			}
			up_off += (size_t)n;
		}
		if (up_off == up_len)
			up_off = up_len = 0;
		if (!in_open && up_len == 0 && !shut) {
			/* The tunnel's far end sees EOF (ssh and git need it). */
			shut = true;
			(void)shutdown(sock, SHUT_WR);
		}
		if (out_open && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
			n = recv(sock, down, sizeof(down), 0);
			if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
				continue;
			if (n <= 0) {
				out_open = false;
				close(STDOUT_FILENO);
				if (n < 0) {
					fprintf(stderr, "agentjail connect: the tunnel broke: %s\n",
						strerror(errno));
					return CONNECT_EXIT_UPSTREAM;
				}
			} else if (!write_all(STDOUT_FILENO, down, (size_t)n)) {
				/* Nobody reads the tunnel's bytes any more. */
				return errno == EPIPE ? 0 : AJ_EXIT_FAILURE;
			}
		}
	}
	return 0;
}

int
aj_connect_command(int argc, char **argv, const char *usage_text, const char *help_text,
		   aj_usage_error_fn *usage_error)
{
	char request[700], head[HEAD_MAX], target[600];
	const char *body = "";
	struct sockaddr_in sa;
	int sock, status, one = 1;

	if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		printf("%s%s", usage_text, help_text);
		return 0;
	}
	if (argc != 2)
		return usage_error("connect: expected HOST:PORT");
	if (strlen(argv[1]) > 300 || strpbrk(argv[1], " \t\r\n") != NULL ||
	    strchr(argv[1], ':') == NULL)
		return usage_error("connect: '%s' is not HOST:PORT", argv[1]);
	aj_log_escape(argv[1], target, sizeof(target));
	if (!proxy_address(&sa)) {
		fprintf(stderr,
			"agentjail connect: no proxy in this jail ($AGENTJAIL_PROXY is not set: "
			"the profile needs 'proxy on' and a 'tunnel allow %s' rule)\n",
			target);
		return CONNECT_EXIT_NO_PROXY;
	}
	signal(SIGPIPE, SIG_IGN);
	sock = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sock < 0 || connect(sock, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr,
			"agentjail connect: cannot reach the jail's proxy at 127.0.0.1:%u: %s\n",
			(unsigned)ntohs(sa.sin_port), strerror(errno));
		return CONNECT_EXIT_NO_PROXY;
	}
	(void)setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* Raw only: without a tunnel rule, refused rather than intercepted. */
	snprintf(request, sizeof(request),
		 "CONNECT %s HTTP/1.1\r\nHost: %s\r\nX-Agentjail-Tunnel: raw\r\n\r\n", argv[1],
		 argv[1]);
	if (!write_all(sock, request, strlen(request)) ||
	    (status = read_answer(sock, head, sizeof(head), &body)) < 0) {
		fprintf(stderr,
			"agentjail connect: the proxy's answer to CONNECT %s was cut short\n",
			target);
		return CONNECT_EXIT_UPSTREAM;
	}
	if (status != 200)
		return report_refusal(target, status, head, body);
	if (fcntl(sock, F_SETFL, O_NONBLOCK) < 0)
		return AJ_EXIT_FAILURE;
	return relay(sock);
}
