/*
 * The server side of an intercepted tunnel (proxy.h): after `CONNECT
 * host:port` the client speaks TLS to the proxy, which answers with the
 * jail's leaf for that host (broker/tlsca.c checks the client's server
 * name against it).  The TLS engine runs on memory BIOs: the connection
 * moves ciphertext between the socket and the engine itself, so bytes the
 * client sent right behind its CONNECT are not lost, and the engine never
 * touches the socket.
 */
#include "config.h"

#include <errno.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "log.h"
#include "proxy.h"

struct aj_proxy_tls {
	SSL *ssl;
	BIO *rbio; /* ciphertext from the client, for the engine */
	BIO *wbio; /* ciphertext from the engine, for the client */
	char error[320];
};

int
aj_proxy_tls_new(struct aj_tlsca *ca, const char *host, struct aj_proxy_tls **out, char *err,
		 size_t errlen)
{
	struct aj_proxy_tls *t = calloc(1, sizeof(*t));
	int r;

	if (t == NULL)
		return aj_err(err, errlen, -ENOMEM, "out of memory");
	r = aj_tlsca_server_ssl(ca, host, &t->ssl, err, errlen);
	if (r < 0) {
		free(t);
		return r;
	}
	t->rbio = BIO_new(BIO_s_mem());
	t->wbio = BIO_new(BIO_s_mem());
	if (t->rbio == NULL || t->wbio == NULL) {
		BIO_free(t->rbio);
		BIO_free(t->wbio);
		SSL_free(t->ssl);
		free(t);
		return aj_err(err, errlen, -ENOMEM, "out of memory");
	}
	/* Empty means "not yet", not the end. */
	BIO_set_mem_eof_return(t->rbio, -1);
	SSL_set_bio(t->ssl, t->rbio, t->wbio);
	*out = t;
	return 0;
}

void
aj_proxy_tls_free(struct aj_proxy_tls *t)
{
	if (t == NULL)
		return;
	SSL_free(t->ssl); /* and the BIOs */
	free(t);
}

/* What the engine wrote, onto WIRE. */
static int
drain(struct aj_proxy_tls *t, struct aj_proxy_buf *wire)
{
	char *data;
	long n = BIO_get_mem_data(t->wbio, &data);

	if (n <= 0)
		return 0;
	if (!aj_proxy_buf_append(wire, data, (size_t)n))
		return -ENOMEM;
	(void)BIO_reset(t->wbio);
	return 0;
}

int
aj_proxy_tls_received(struct aj_proxy_tls *t, const void *data, size_t len)
{
	if (len > 0 && BIO_write(t->rbio, data, (int)len) != (int)len)
		return -ENOMEM;
	return 0;
}

size_t
aj_proxy_tls_backlog(const struct aj_proxy_tls *t)
{
	return BIO_ctrl_pending(t->rbio) + (size_t)SSL_pending(t->ssl);
}

/* Why the engine stopped: the server-name check's words, or OpenSSL's. */
static int
failed(struct aj_proxy_tls *t, int ret)
{
	const char *refusal = aj_tlsca_refusal(t->ssl);
	unsigned long e = ERR_peek_last_error();

	if (refusal != NULL)
		snprintf(t->error, sizeof(t->error), "%s", refusal);
	else if (e != 0)
		snprintf(t->error, sizeof(t->error), "TLS %s failed: %s",
			 SSL_is_init_finished(t->ssl) ? "session" : "handshake",
			 ERR_reason_error_string(e) ? ERR_reason_error_string(e) : "error");
	else
		snprintf(t->error, sizeof(t->error), "TLS %s failed (%d)",
			 SSL_is_init_finished(t->ssl) ? "session" : "handshake", ret);
	ERR_clear_error();
	return -EPROTO;
}

ssize_t
aj_proxy_tls_read(struct aj_proxy_tls *t, void *buf, size_t len, struct aj_proxy_buf *wire)
{
	int n, e;

	ERR_clear_error();
	n = SSL_read(t->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
	e = n > 0 ? SSL_ERROR_NONE : SSL_get_error(t->ssl, n);
	/* Handshake messages, alerts, session tickets: out in every case. */
	if (drain(t, wire) < 0)
		return -ENOMEM;
	switch (e) {
	case SSL_ERROR_NONE:
		return n;
	case SSL_ERROR_WANT_READ:
		return 0;
	case SSL_ERROR_ZERO_RETURN:
		return -ECONNRESET; /* close_notify: the client is done */
	default:
		return failed(t, e);
	}
}

int
aj_proxy_tls_write(struct aj_proxy_tls *t, const void *data, size_t len, struct aj_proxy_buf *wire)
{
	const char *p = data;

	while (len > 0) {
		int chunk = len > 65536 ? 65536 : (int)len;
		int n;

		ERR_clear_error();
		n = SSL_write(t->ssl, p, chunk);
		if (n <= 0)
			return failed(t, SSL_get_error(t->ssl, n));
		p += n;
		len -= (size_t)n;
		/* Bounded: at most one chunk's records wait on WIRE's growth. */
		if (drain(t, wire) < 0)
			return -ENOMEM;
	}
	return 0;
}

int
aj_proxy_tls_close(struct aj_proxy_tls *t, struct aj_proxy_buf *wire)
{
	if (!SSL_is_init_finished(t->ssl))
		return 0;
	ERR_clear_error();
	(void)SSL_shutdown(t->ssl);
	ERR_clear_error();
	return drain(t, wire);
}

bool
aj_proxy_tls_refused_name(const struct aj_proxy_tls *t)
{
	return aj_tlsca_refusal(t->ssl) != NULL;
}

bool
aj_proxy_tls_is_open(const struct aj_proxy_tls *t)
{
	return SSL_is_init_finished(t->ssl);
}

const char *
aj_proxy_tls_error(const struct aj_proxy_tls *t)
{
	return t->error[0] ? t->error : "TLS failed";
}
