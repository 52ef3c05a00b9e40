/*
 * `agentjail fetch`: the curl-like command the agent runs inside the jail
 * to ask the broker for a URL (agent/client.c speaks the protocol).  Its
 * exit statuses are API (agentjail(1), README.md).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <agentjail/client.h>
#include <agentjail/exitcodes.h>
#include <agentjail/protocol.h>

#include "agent.h"
#include "log.h"
#include "util.h"

/* `agentjail fetch` exit statuses: API, like agentjail's own (agentjail(1),
 * README.md).  0 is a 2xx response, 1 a local failure (-o FILE, reading
 * --data-binary @FILE), 2 a usage error; the broker's error codes: */
static const struct {
	const char *code;
	int status;
} fetch_statuses[] = {
	{AJ_ERR_DENIED, 3},       {AJ_ERR_TIMEOUT, 4},  {AJ_ERR_TOO_LARGE, 5},
	{AJ_ERR_UNAVAILABLE, 6},  {AJ_ERR_UPSTREAM, 7}, {AJ_ERR_BAD_REQUEST, 8},
	{AJ_ERR_RATE_LIMITED, 9},
};
#define FETCH_EXIT_NOT_2XX 10     /* a final 1xx or 3xx response; its body is written */
#define FETCH_EXIT_HTTP_ERROR 22  /* a 4xx or 5xx response (curl -f's 22); its body is written */
#define FETCH_EXIT_UNKNOWN_CODE 7 /* an error code this version does not know: upstream's */

/* One line on stderr for an error record: the code, the message and the
 * deciding rule.  They can quote the URL: escaped before the terminal. */
static int
fetch_report(const char *code, const char *message, const char *rule)
{
	char c[64], msg[1024], r[1024];

	aj_log_escape(code, c, sizeof(c));
	aj_log_escape(message, msg, sizeof(msg));
	aj_log_escape(rule, r, sizeof(r));
	fprintf(stderr, "agentjail fetch: %s: %s%s%s%s\n", c, msg, r[0] ? " (rule: " : "", r,
		r[0] ? ")" : "");
	return aj_fetch_exit_status(code);
}

int
aj_fetch_exit_status(const char *code)
{
	for (size_t i = 0; i < AJ_ARRAY_SIZE(fetch_statuses); i++)
		if (strcmp(code, fetch_statuses[i].code) == 0)
			return fetch_statuses[i].status;
	return FETCH_EXIT_UNKNOWN_CODE;
}

/* -i: the status line and the headers before the body, where the body
 * goes, as curl -i writes them (CRLF line ends). */
static int
fetch_print_head(const struct aj_fetch_result *res, const struct aj_client_header *headers,
		 size_t n, void *arg)
{
	int fd = *(const int *)arg;

	if (dprintf(fd, "HTTP/1.1 %d\r\n", res->status) < 0)
		return -errno;
	for (size_t i = 0; i < n; i++)
		if (dprintf(fd, "%s: %s\r\n", headers[i].name, headers[i].value) < 0)
			return -errno;
	return dprintf(fd, "\r\n") < 0 ? -errno : 0;
}

/* Append a -d / --data-binary literal, joined to earlier ones with '&'
 * as curl does. */
static int
fetch_add_data(char **data, size_t *len, const char *more)
{
	size_t add = strlen(more) + (*data != NULL ? 1 : 0);
	char *p = realloc(*data, *len + add + 1);

	if (p == NULL)
		return -ENOMEM;
	if (*data != NULL)
		p[(*len)++] = '&';
	memcpy(p + *len, more, strlen(more) + 1);
	*len += strlen(more);
	*data = p;
	return 0;
}

int
aj_fetch_command(int argc, char **argv, const char *usage_text, const char *help_text,
		 aj_usage_error_fn *usage_error)
{
	enum { OPT_DATA_BINARY = 256 };
	static const struct option longopts[] = {
		{"request", required_argument, NULL, 'X'},
		{"header", required_argument, NULL, 'H'},
		{"data", required_argument, NULL, 'd'},
		{"data-binary", required_argument, NULL, OPT_DATA_BINARY},
		{"output", required_argument, NULL, 'o'},
		{"include", no_argument, NULL, 'i'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *method = NULL, *output = NULL, *data_file = NULL;
	const char *headers[AJ_PROTO_MAX_HEADERS + 1] = {NULL};
	struct aj_fetch_result res;
	struct aj_client_req req;
	struct aj_client *client = NULL;
	size_t n_headers = 0, data_len = 0;
	bool form = false, include = false, have_type = false;
	char *data = NULL, why[512] = "";
	int c, out = STDOUT_FILENO, body_fd = -1, status, r;

	memset(&res, 0, sizeof(res));
	argv[0] = "agentjail fetch";
	optind = 1;
	while ((c = getopt_long(argc, argv, "X:H:d:o:ih", longopts, NULL)) != -1) {
		switch (c) {
		case 'X':
			method = optarg;
			break;
		case 'H': {
			const char *colon = strchr(optarg, ':');

			if (colon == NULL || colon == optarg) {
				free(data);
				return usage_error("fetch: a header must look like 'Name: value'");
			}
			if (n_headers == AJ_PROTO_MAX_HEADERS) {
				free(data);
				return usage_error("fetch: at most %d headers",
						   AJ_PROTO_MAX_HEADERS);
			}
			if (colon - optarg == 12 && strncasecmp(optarg, "Content-Type", 12) == 0)
				have_type = true;
			headers[n_headers++] = optarg;
			break;
		}
		case 'd':
		case OPT_DATA_BINARY:
			/* -d is always literal: curl's -d @FILE (which strips
			 * newlines) would be silently misread, so it is refused. */
			if (c == 'd' && optarg[0] == '@') {
				free(data);
				return usage_error("fetch: -d takes the data itself; send a file "
						   "with --data-binary @FILE");
			}
			if (c == OPT_DATA_BINARY && optarg[0] == '@') {
				if (data_file != NULL || data != NULL) {
					free(data);
					return usage_error("fetch: --data-binary @FILE cannot be "
							   "combined with other data");
				}
				data_file = optarg + 1;
				break;
			}
			if (data_file != NULL) {
				free(data);
				return usage_error("fetch: --data-binary @FILE cannot be combined "
						   "with other data");
			}
			if (fetch_add_data(&data, &data_len, optarg) < 0) {
				free(data);
				fprintf(stderr, "agentjail fetch: out of memory\n");
				return AJ_EXIT_FAILURE;
			}
			form = form || c == 'd';
			break;
		case 'o':
			output = optarg;
			break;
		case 'i':
			include = true;
			break;
		case 'h':
			free(data);
			printf("%s%s", usage_text, help_text);
			return 0;
		default:
			free(data);
			fprintf(stderr, "%s", usage_text);
			return AJ_EXIT_USAGE;
		}
	}
	if (optind + 1 != argc) {
		free(data);
		return usage_error("fetch: exactly one URL is required");
	}
	/* Like curl: data makes a POST, and -d data is a form unless the
	 * caller says what it is. */
	if (method == NULL)
		method = data != NULL || data_file != NULL ? "POST" : "GET";
	if (form && !have_type) {
		if (n_headers == AJ_PROTO_MAX_HEADERS) {
			free(data);
			return usage_error(
				"fetch: at most %d headers, with the Content-Type -d adds",
				AJ_PROTO_MAX_HEADERS);
		}
		headers[n_headers++] = "Content-Type: application/x-www-form-urlencoded";
	}

	aj_client_req_init(&req);
	req.method = method;
	req.url = argv[optind];
	req.headers = headers;
	req.body = data;
	req.body_len = data_len;
	/* The body comes through a pipe: spliced to the output, and from
	 * upstream too for big plain-http bodies (docs/PROTOCOL.md). */
	req.flags = AJ_CLIENT_PIPE;
	if (data_file != NULL) {
		body_fd = strcmp(data_file, "-") == 0
				  ? STDIN_FILENO
				  : open(data_file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
		if (body_fd < 0) {
			fprintf(stderr, "agentjail fetch: %s: %s\n", data_file, strerror(errno));
			free(data);
			return AJ_EXIT_FAILURE;
		}
		req.body_fd = body_fd;
		req.flags |= AJ_CLIENT_BODY_FD;
	}
	if (output != NULL) {
		out = open(output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0644);
		if (out < 0) {
			fprintf(stderr, "agentjail fetch: %s: %s\n", output, strerror(errno));
			free(data);
			if (body_fd > STDIN_FILENO)
				close(body_fd);
			return AJ_EXIT_FAILURE;
		}
	}
	req.out_fd = out;
	if (include) {
		req.on_response = fetch_print_head;
		req.arg = &out;
	}

	r = aj_client_open(-1, &client);
	if (r == 0) {
		r = aj_client_request(client, &req, &res, why, sizeof(why));
		aj_client_close(client);
	}
	free(data);
	if (body_fd > STDIN_FILENO)
		close(body_fd);
	if (out != STDOUT_FILENO && close(out) < 0 && r == 0 && res.code[0] == '\0') {
		fprintf(stderr, "agentjail fetch: %s: %s\n", output, strerror(errno));
		return AJ_EXIT_FAILURE;
	}

	if (client == NULL) {
		if (r == -EAGAIN)
			return fetch_report(AJ_ERR_RATE_LIMITED,
					    "the broker serves too many channels", "");
		if (r == -EBADF)
			return fetch_report(AJ_ERR_UNAVAILABLE,
					    "no broker socket ($AGENTJAIL_FD or $AGENTJAIL_SOCKET): "
					    "not inside a jail?",
					    "");
		if (r == -ECONNREFUSED)
			return fetch_report(AJ_ERR_UNAVAILABLE, "the broker is gone", "");
		return fetch_report(AJ_ERR_UNAVAILABLE, strerror(-r), "");
	}
	if (r == -EINVAL)
		return usage_error("fetch: a header must look like 'Name: value'");
	if (r == -EMSGSIZE)
		return fetch_report(AJ_ERR_BAD_REQUEST,
				    "the method, URL and headers exceed one request frame", "");
	if (r < 0) {
		fprintf(stderr, "agentjail fetch: %s\n", why[0] ? why : strerror(-r));
		return AJ_EXIT_FAILURE;
	}
	if (res.code[0] != '\0')
		return fetch_report(res.code, res.message, res.rule);
	status = res.status;
	if (status >= 200 && status < 300)
		return 0;
	fprintf(stderr, "agentjail fetch: HTTP status %d\n", status);
	return status >= 400 ? FETCH_EXIT_HTTP_ERROR : FETCH_EXIT_NOT_2XX;
}
