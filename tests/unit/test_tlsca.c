/*
 * The jail's TLS interception authority (broker/tlsca.c): the CA and its
 * leaves as a strict verifier reads them (OpenSSL's X509_STRICT, and
 * Python's VERIFY_X509_STRICT against a server on 127.0.0.1), and the
 * server side of a tunnel in real handshakes over a BIO pair: the CONNECT
 * host's leaf or a refusal, never another host's certificate.
 */
#include "config.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "broker.h"

extern char **environ;

static struct aj_tlsca *
ca_new(void)
{
	struct aj_tlsca *ca = NULL;
	char err[256] = "";

	cr_assert_eq(aj_tlsca_new(&ca, err, sizeof(err)), 0, "%s", err);
	return ca;
}

/* The CA's certificate as the jail gets it: from the PEM. */
static X509 *
ca_cert(const struct aj_tlsca *ca)
{
	size_t len;
	const char *pem = aj_tlsca_pem(ca, &len);
	BIO *mem = BIO_new_mem_buf(pem, (int)len);
	X509 *x = PEM_read_bio_X509(mem, NULL, NULL, NULL);

	cr_assert_eq(strlen(pem), len);
	cr_assert_not_null(x);
	BIO_free(mem);
	return x;
}

static X509 *
leaf(struct aj_tlsca *ca, const char *host)
{
	X509 *x = NULL;
	char err[256] = "";

	cr_assert_eq(aj_tlsca_leaf(ca, host, &x, err, sizeof(err)), 0, "%s: %s", host, err);
	return x;
}

static bool
is_ip(const char *host)
{
	unsigned char a[16];

	return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

/* X509_V_OK when X chains to CA_X under X509_STRICT; as a TLS server's
 * certificate for HOST unless HOST is NULL. */
static int
verify_strict(X509 *ca_x, X509 *x, const char *host)
{
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	X509_VERIFY_PARAM *param;
	int rc;

	cr_assert(store != NULL && ctx != NULL);
	cr_assert_eq(X509_STORE_add_cert(store, ca_x), 1);
	cr_assert_eq(X509_STORE_CTX_init(ctx, store, x, NULL), 1);
	param = X509_STORE_CTX_get0_param(ctx);
	X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_X509_STRICT);
	if (host != NULL) {
		X509_VERIFY_PARAM_set_purpose(param, X509_PURPOSE_SSL_SERVER);
		if (is_ip(host))
			cr_assert_eq(X509_VERIFY_PARAM_set1_ip_asc(param, host), 1);
		else
			cr_assert_eq(X509_VERIFY_PARAM_set1_host(param, host, 0), 1);
	}
	rc = X509_verify_cert(ctx) == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	return rc;
}

/* 1 critical, 0 not, -1 absent. */
static int
ext_critical(X509 *x, int nid)
{
	int at = X509_get_ext_by_NID(x, nid, -1);

	return at < 0 ? -1 : X509_EXTENSION_get_critical(X509_get_ext(x, at));
}

static void
expect_cn(X509 *x, const char *cn)
{
	char got[256] = "";
	int n = X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, got,
					  sizeof(got));

	if (cn == NULL)
		cr_assert_lt(n, 0, "unexpected CN '%s'", got);
	else
		cr_assert_str_eq(got, cn);
}

Test(tlsca, ca_certificate)
{
	struct aj_tlsca *ca = ca_new();
	X509 *x = ca_cert(ca);

	cr_assert_eq(X509_get_version(x), X509_VERSION_3);
	cr_assert_eq(X509_self_signed(x, 1), 1);
	cr_assert_eq(verify_strict(x, x, NULL), X509_V_OK);
	cr_assert_eq(X509_check_ca(x), 1);
	cr_assert_eq(ext_critical(x, NID_basic_constraints), 1);
	cr_assert_eq(X509_get_pathlen(x), 0);
	cr_assert_eq(ext_critical(x, NID_key_usage), 1);
	cr_assert(X509_get_key_usage(x) & KU_KEY_CERT_SIGN);
	cr_assert_not(X509_get_key_usage(x) & KU_DIGITAL_SIGNATURE);
	cr_assert_not_null(X509_get0_subject_key_id(x));
	cr_assert_not_null(X509_get0_authority_key_id(x));
	cr_assert_eq(
		ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(x), X509_get0_subject_key_id(x)),
		0);
	X509_free(x);
	aj_tlsca_free(ca);
	aj_tlsca_free(NULL);
}

Test(tlsca, two_cas_differ)
{
	struct aj_tlsca *a = ca_new(), *b = ca_new();
	X509 *xa = ca_cert(a), *xb = ca_cert(b), *la = leaf(a, "example.com");

	cr_assert_neq(X509_NAME_cmp(X509_get_subject_name(xa), X509_get_subject_name(xb)), 0);
	cr_assert_neq(EVP_PKEY_eq(X509_get0_pubkey(xa), X509_get0_pubkey(xb)), 1);
	/* A leaf of one is no leaf of the other. */
	cr_assert_eq(verify_strict(xa, la, "example.com"), X509_V_OK);
	cr_assert_neq(verify_strict(xb, la, "example.com"), X509_V_OK);
	X509_free(la);
	X509_free(xa);
	X509_free(xb);
	aj_tlsca_free(a);
	aj_tlsca_free(b);
}

/* HOST's leaf (already normalised), as a strict TLS client checks it;
 * OTHER must not match it. */
static void
check_leaf(const char *host, const char *other)
{
	struct aj_tlsca *ca = ca_new();
	X509 *cax = ca_cert(ca), *x = leaf(ca, host);
	GENERAL_NAMES *san = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	const unsigned never_cn = X509_CHECK_FLAG_NEVER_CHECK_SUBJECT;

	cr_assert_eq(verify_strict(cax, x, host), X509_V_OK);
	cr_assert_neq(verify_strict(cax, x, other), X509_V_OK);
	cr_assert_eq(X509_get_version(x), X509_VERSION_3);
	cr_assert_not_null(san);
	cr_assert_eq(sk_GENERAL_NAME_num(san), 1);
	if (is_ip(host)) {
		cr_assert_eq(sk_GENERAL_NAME_value(san, 0)->type, GEN_IPADD);
		cr_assert_eq(X509_check_ip_asc(x, host, 0), 1);
		cr_assert_eq(X509_check_ip_asc(x, other, 0), 0);
	} else {
		cr_assert_eq(sk_GENERAL_NAME_value(san, 0)->type, GEN_DNS);
		cr_assert_eq(X509_check_host(x, host, 0, never_cn, NULL), 1);
		cr_assert_eq(X509_check_host(x, other, 0, 0, NULL), 0);
	}
	expect_cn(x, host);
	cr_assert_eq(X509_check_ca(x), 0);
	cr_assert_eq(ext_critical(x, NID_basic_constraints), 1);
	cr_assert_eq(ext_critical(x, NID_key_usage), 1);
	cr_assert_eq(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE);
	cr_assert(X509_get_extension_flags(x) & EXFLAG_XKUSAGE);
	cr_assert_eq(X509_get_extended_key_usage(x), XKU_SSL_SERVER);
	cr_assert_eq(X509_check_purpose(x, X509_PURPOSE_SSL_SERVER, 0), 1);
	cr_assert_not_null(X509_get0_subject_key_id(x));
	cr_assert_not_null(X509_get0_authority_key_id(x));
	cr_assert_eq(
		ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(x), X509_get0_subject_key_id(cax)),
		0);
	cr_assert_eq(X509_check_issued(cax, x), X509_V_OK);
	cr_assert_eq(ASN1_TIME_compare(X509_get0_notAfter(x), X509_get0_notAfter(cax)), 0);
	GENERAL_NAMES_free(san);
	X509_free(x);
	X509_free(cax);
	aj_tlsca_free(ca);
}

Test(tlsca, leaf_for_a_name)
{
	check_leaf("api.example.com", "example.com");
}

Test(tlsca, leaf_for_ipv4)
{
	check_leaf("127.0.0.1", "127.0.0.2");
}

Test(tlsca, leaf_for_ipv6)
{
	check_leaf("2001:db8::1", "2001:db8::2");
}

/* A name longer than a common name may be is named by the SAN alone. */
Test(tlsca, leaf_for_a_253_byte_name)
{
	char host[254];
	struct aj_tlsca *ca = ca_new();
	X509 *cax = ca_cert(ca), *x;

	memset(host, 'a', sizeof(host) - 1);
	host[63] = host[127] = host[191] = '.';
	host[253] = '\0';
	x = leaf(ca, host);
	cr_assert_eq(verify_strict(cax, x, host), X509_V_OK);
	expect_cn(x, NULL);
	X509_free(x);
	X509_free(cax);
	aj_tlsca_free(ca);
}

Test(tlsca, leaf_cache_normalises_hosts)
{
	struct aj_tlsca *ca = ca_new();
	X509 *a = leaf(ca, "example.com"), *b = leaf(ca, "EXAMPLE.Com."),
	     *c = leaf(ca, "other.com");
	X509 *v6 = leaf(ca, "2001:db8::1"), *v6_long = leaf(ca, "2001:DB8:0:0:0:0:0:1");

	cr_assert_eq(a, b);
	cr_assert_neq(a, c);
	cr_assert_neq(ASN1_INTEGER_cmp(X509_get0_serialNumber(a), X509_get0_serialNumber(c)), 0);
	cr_assert_eq(X509_check_host(c, "other.com", 0, 0, NULL), 1);
	cr_assert_eq(v6, v6_long);
	X509_free(a);
	X509_free(b);
	X509_free(c);
	X509_free(v6);
	X509_free(v6_long);
	aj_tlsca_free(ca);
}

/* Past AJ_TLSCA_LEAVES_MAX hosts, a new host still gets a leaf, signed
 * each time; the kept ones stay. */
Test(tlsca, leaf_cache_is_bounded, .timeout = 120)
{
	struct aj_tlsca *ca = ca_new();
	X509 *first = leaf(ca, "h0.example"), *x, *y;
	char host[32];

	for (unsigned i = 1; i < AJ_TLSCA_LEAVES_MAX; i++) {
		snprintf(host, sizeof(host), "h%u.example", i);
		X509_free(leaf(ca, host));
	}
	x = leaf(ca, "one-too-many.example");
	y = leaf(ca, "one-too-many.example");
	cr_assert_neq(x, y);
	cr_assert_eq(X509_check_host(y, "one-too-many.example", 0, 0, NULL), 1);
	X509_free(x);
	X509_free(y);
	x = leaf(ca, "h0.example");
	cr_assert_eq(x, first);
	X509_free(x);
	X509_free(first);
	aj_tlsca_free(ca);
}

Test(tlsca, invalid_hosts)
{
	char long_name[256];
	const char *const bad[] = {
		"",              /* empty */
		".",             /* the root, empty once the dot goes */
		"*.a.com",       /* a wildcard */
		"a.com:443",     /* a port */
		"127.0.0.1:443", /* a port */
		"[::1]",         /* IPv6 comes bare */
		"[::1]:443",     /* a port */
		"a b",           /* a space */
		"a_b.com",       /* '_' is no host name character */
		"user@a.com",    /* userinfo */
		"a%2ecom",       /* percent-encoding */
		"fe80::1%eth0",  /* a zone */
		"127.1",         /* a non-canonical IPv4 address */
		long_name,       /* 254 bytes */
	};
	struct aj_tlsca *ca = ca_new();

	/* Labels of 63 bytes, 254 in all: one byte over DNS's bound. */
	memset(long_name, 'a', 254);
	long_name[63] = long_name[127] = long_name[191] = '.';
	long_name[254] = '\0';
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		X509 *x = NULL;
		SSL *ssl = NULL;
		char err[256] = "";

		cr_assert_eq(aj_tlsca_leaf(ca, bad[i], &x, err, sizeof(err)), -EINVAL, "'%s'",
			     bad[i]);
		cr_assert_null(x);
		cr_assert_neq(err[0], '\0');
		err[0] = '\0';
		cr_assert_eq(aj_tlsca_server_ssl(ca, bad[i], &ssl, err, sizeof(err)), -EINVAL,
			     "'%s'", bad[i]);
		cr_assert_null(ssl);
		cr_assert_neq(err[0], '\0');
	}
	aj_tlsca_free(ca);
}

/* ---- handshakes in memory ------------------------------------------------------------ */

static const unsigned char h2_and_http11[] = "\x02h2\x08http/1.1";
static const unsigned char h2_only[] = "\x02h2";

/* A client trusting only CA, verifying strictly, up to MAX_VERSION. */
static SSL_CTX *
client_ctx_new(const struct aj_tlsca *ca, int max_version)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	X509 *cax = ca_cert(ca);

	cr_assert_not_null(ctx);
	cr_assert_eq(X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), cax), 1);
	X509_free(cax);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(ctx), X509_V_FLAG_X509_STRICT);
	cr_assert_eq(SSL_CTX_set_max_proto_version(ctx, max_version), 1);
	return ctx;
}

/* One tunnel: the broker's side for the CONNECT host and a client naming
 * SNI (none when NULL) and checking the certificate for HOST, over a BIO
 * pair. */
struct tunnel {
	SSL *server, *client;
};

static struct tunnel
tunnel_new(struct aj_tlsca *ca, SSL_CTX *ctx, const char *connect_host, const char *sni,
	   const char *host, const unsigned char *alpn, size_t alpn_len)
{
	struct tunnel t;
	char err[256] = "";
	BIO *sb, *cb;

	cr_assert_eq(aj_tlsca_server_ssl(ca, connect_host, &t.server, err, sizeof(err)), 0, "%s",
		     err);
	t.client = SSL_new(ctx);
	cr_assert_not_null(t.client);
	if (sni != NULL)
		cr_assert_eq(SSL_set_tlsext_host_name(t.client, sni), 1);
	cr_assert_eq(SSL_set1_host(t.client, host), 1);
	if (alpn != NULL)
		cr_assert_eq(SSL_set_alpn_protos(t.client, alpn, (unsigned)alpn_len), 0);
	SSL_set_connect_state(t.client);
	cr_assert_eq(BIO_new_bio_pair(&sb, 0, &cb, 0), 1);
	SSL_set_bio(t.server, sb, sb);
	SSL_set_bio(t.client, cb, cb);
	return t;
}

static void
tunnel_free(struct tunnel *t)
{
	SSL_free(t->client);
	SSL_free(t->server);
}

/* 1 done, 0 waiting for the other side, -1 failed. */
static int
handshake_step(SSL *ssl)
{
	int rc = SSL_do_handshake(ssl), e;

	if (rc == 1)
		return 1;
	e = SSL_get_error(ssl, rc);
	return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? 0 : -1;
}

/* Both sides until both are done or neither can go on (a failed side
 * stops; the other still reads its alert). */
static bool
handshake(struct tunnel *t)
{
	int c = 0, s = 0;

	for (int i = 0; i < 16 && (c != 1 || s != 1); i++) {
		if (c != -1)
			c = handshake_step(t->client);
		if (s != -1)
			s = handshake_step(t->server);
	}
	ERR_clear_error();
	return c == 1 && s == 1;
}

static void
expect_alpn(SSL *ssl, const char *proto)
{
	const unsigned char *p = NULL;
	unsigned n = 0;

	SSL_get0_alpn_selected(ssl, &p, &n);
	if (proto == NULL) {
		cr_assert_eq(n, 0);
	} else {
		cr_assert_eq(n, strlen(proto));
		cr_assert(memcmp(p, proto, n) == 0);
	}
}

/* The client got HOST's leaf: the one aj_tlsca_leaf returns. */
static void
expect_peer_is_leaf(struct aj_tlsca *ca, struct tunnel *t, const char *host)
{
	X509 *x = leaf(ca, host);

	cr_assert_eq(SSL_get_verify_result(t->client), X509_V_OK);
	cr_assert_not_null(SSL_get0_peer_certificate(t->client));
	cr_assert_eq(X509_cmp(SSL_get0_peer_certificate(t->client), x), 0);
	X509_free(x);
}

/* A handshake in VERSION that succeeds between an ordinary client and the
 * tunnel. */
static void
expect_handshake(int version, const char *connect_host, const char *sni, const char *host)
{
	struct aj_tlsca *ca = ca_new();
	SSL_CTX *ctx = client_ctx_new(ca, version);
	struct tunnel t = tunnel_new(ca, ctx, connect_host, sni, host, h2_and_http11,
				     sizeof(h2_and_http11) - 1);

	cr_assert(handshake(&t));
	expect_alpn(t.client, "http/1.1");
	expect_alpn(t.server, "http/1.1");
	expect_peer_is_leaf(ca, &t, host);
	cr_assert_null(aj_tlsca_refusal(t.server));
	cr_assert_eq(SSL_version(t.client), version);
	tunnel_free(&t);
	SSL_CTX_free(ctx);
	aj_tlsca_free(ca);
}

Test(tlsca, handshake_tls13)
{
	expect_handshake(TLS1_3_VERSION, "Example.com", "example.com", "example.com");
}

Test(tlsca, handshake_tls12)
{
	expect_handshake(TLS1_2_VERSION, "example.com", "example.com", "example.com");
}

Test(tlsca, handshake_ip_without_sni)
{
	expect_handshake(TLS1_3_VERSION, "127.0.0.1", NULL, "127.0.0.1");
	expect_handshake(TLS1_3_VERSION, "::1", NULL, "::1");
}

/* The broker refuses; the client gets no certificate at all. */
static void
expect_refusal(const char *connect_host, const char *sni, const char *host, const char *name1,
	       const char *name2)
{
	struct aj_tlsca *ca = ca_new();
	SSL_CTX *ctx = client_ctx_new(ca, TLS1_3_VERSION);
	struct tunnel t = tunnel_new(ca, ctx, connect_host, sni, host, h2_and_http11,
				     sizeof(h2_and_http11) - 1);
	const char *why;

	cr_assert_not(handshake(&t));
	cr_assert_null(SSL_get0_peer_certificate(t.client));
	why = aj_tlsca_refusal(t.server);
	cr_assert_not_null(why);
	cr_assert(strstr(why, name1) != NULL, "%s", why);
	if (name2 != NULL)
		cr_assert(strstr(why, name2) != NULL, "%s", why);
	tunnel_free(&t);
	SSL_CTX_free(ctx);
	aj_tlsca_free(ca);
}

Test(tlsca, sni_for_another_host_is_refused)
{
	expect_refusal("a.example", "b.example", "b.example", "a.example", "b.example");
	expect_refusal("127.0.0.1", "b.example", "127.0.0.1", "127.0.0.1", "b.example");
}

Test(tlsca, no_sni_for_a_name_is_refused)
{
	expect_refusal("a.example", NULL, "a.example", "a.example", "no server name");
}

Test(tlsca, sni_that_is_no_host_name_is_refused)
{
	expect_refusal("a.example", "*.example", "a.example", "a.example", "not a host name");
}

Test(tlsca, h2_only_gets_no_alpn)
{
	struct aj_tlsca *ca = ca_new();
	SSL_CTX *ctx = client_ctx_new(ca, TLS1_3_VERSION);
	struct tunnel t = tunnel_new(ca, ctx, "a.example", "a.example", "a.example", h2_only,
				     sizeof(h2_only) - 1);

	cr_assert(handshake(&t));
	expect_alpn(t.client, NULL);
	expect_alpn(t.server, NULL);
	tunnel_free(&t);
	SSL_CTX_free(ctx);
	aj_tlsca_free(ca);
}

/* The broker gives no session to resume (no ticket, no session id), and
 * one from a tunnel to a.example offered in a tunnel to b.example is not
 * resumed: b.example's leaf is shown and checked. */
static void
expect_no_resumption(int version)
{
	struct aj_tlsca *ca = ca_new();
	SSL_CTX *ctx = client_ctx_new(ca, version);
	struct tunnel a = tunnel_new(ca, ctx, "a.example", "a.example", "a.example", NULL, 0);
	struct tunnel b = tunnel_new(ca, ctx, "b.example", "b.example", "b.example", NULL, 0);
	SSL_SESSION *sess;
	char byte;

	cr_assert(handshake(&a));
	/* TLS 1.3 tickets come after the handshake. */
	cr_assert_eq(SSL_write(a.server, "x", 1), 1);
	cr_assert_eq(SSL_read(a.client, &byte, 1), 1);
	sess = SSL_get1_session(a.client);
	cr_assert_not_null(sess);
	cr_assert_not(SSL_SESSION_is_resumable(sess));
	cr_assert_eq(SSL_set_session(b.client, sess), 1);
	cr_assert(handshake(&b));
	cr_assert_not(SSL_session_reused(b.client));
	expect_peer_is_leaf(ca, &b, "b.example");
	SSL_SESSION_free(sess);
	tunnel_free(&a);
	tunnel_free(&b);
	SSL_CTX_free(ctx);
	aj_tlsca_free(ca);
}

Test(tlsca, no_session_resumption_tls13)
{
	expect_no_resumption(TLS1_3_VERSION);
}

Test(tlsca, no_session_resumption_tls12)
{
	expect_no_resumption(TLS1_2_VERSION);
}

/* A tunnel's SSL keeps what it needs when the CA goes first. */
Test(tlsca, tunnel_outlives_ca)
{
	struct aj_tlsca *ca = ca_new();
	SSL_CTX *ctx = client_ctx_new(ca, TLS1_3_VERSION);
	struct tunnel t = tunnel_new(ca, ctx, "a.example", "a.example", "a.example", NULL, 0);
	char buf[4];

	aj_tlsca_free(ca);
	cr_assert(handshake(&t));
	cr_assert_eq(SSL_write(t.client, "ping", 4), 4);
	cr_assert_eq(SSL_read(t.server, buf, 4), 4);
	cr_assert(memcmp(buf, "ping", 4) == 0);
	tunnel_free(&t);
	SSL_CTX_free(ctx);
}

/* ---- Python's strict verifier, on 127.0.0.1 ----------------------------------------- */

/* Connects to 127.0.0.1:PORT as NAME (no SNI for an address), trusting
 * only CAFILE, strictly; prints the ALPN chosen and the server's answer. */
static char strict_client_py[] =
	"import socket, ssl, sys\n"
	"port, cafile, name = int(sys.argv[1]), sys.argv[2], sys.argv[3]\n"
	"ctx = ssl.create_default_context(cafile=cafile)\n"
	"ctx.verify_flags |= ssl.VERIFY_X509_STRICT\n"
	"ctx.set_alpn_protocols(['h2', 'http/1.1'])\n"
	"with socket.create_connection(('127.0.0.1', port), timeout=20) as raw:\n"
	"    with ctx.wrap_socket(raw, server_hostname=name) as tls:\n"
	"        tls.sendall(b'ping')\n"
	"        print(tls.selected_alpn_protocol(), tls.recv(4).decode())\n";

static const char *
python(void)
{
	const char *py = getenv("AJ_PYTHON");

	return py != NULL && py[0] != '\0' && strcmp(py, ":") != 0 ? py : "python3";
}

static int
listen_loopback(unsigned *port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	cr_assert_eq(listen(fd, 1), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	*port = ntohs(sin.sin_port);
	return fd;
}

/* Serve one connection of the Python client as the tunnel to HOST. */
static bool
serve_one(struct aj_tlsca *ca, int lfd, const char *host)
{
	struct timeval tv = {.tv_sec = 20};
	struct pollfd p = {.fd = lfd, .events = POLLIN};
	char err[256] = "", buf[4];
	SSL *ssl = NULL;
	bool ok;
	int fd;

	if (poll(&p, 1, 30000) != 1)
		return false;
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	cr_assert_geq(fd, 0);
	cr_assert_eq(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	cr_assert_eq(aj_tlsca_server_ssl(ca, host, &ssl, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(SSL_set_fd(ssl, fd), 1);
	ok = SSL_accept(ssl) == 1 && SSL_read(ssl, buf, 4) == 4 && memcmp(buf, "ping", 4) == 0 &&
	     SSL_write(ssl, "pong", 4) == 4;
	SSL_shutdown(ssl);
	SSL_free(ssl);
	close(fd);
	return ok;
}

static void
expect_python_strict_accepts(const char *host)
{
	struct aj_tlsca *ca = ca_new();
	char dir[] = "/tmp/test_tlsca.XXXXXX", cafile[64], portstr[8], out[128] = "";
	char *argv[] = {"python3", "-c", strict_client_py, portstr, cafile, (char *)host, NULL};
	posix_spawn_file_actions_t fa;
	unsigned port;
	int lfd = listen_loopback(&port), pipefd[2], status;
	size_t len;
	const char *pem = aj_tlsca_pem(ca, &len);
	FILE *f;
	pid_t pid;
	bool served;
	ssize_t n;

	signal(SIGPIPE, SIG_IGN);
	cr_assert_not_null(mkdtemp(dir));
	snprintf(cafile, sizeof(cafile), "%s/ca.pem", dir);
	snprintf(portstr, sizeof(portstr), "%u", port);
	f = fopen(cafile, "w");
	cr_assert_not_null(f);
	cr_assert_eq(fwrite(pem, 1, len, f), len);
	cr_assert_eq(fclose(f), 0);

	cr_assert_eq(pipe2(pipefd, O_CLOEXEC), 0);
	cr_assert_eq(posix_spawn_file_actions_init(&fa), 0);
	cr_assert_eq(posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDOUT_FILENO), 0);
	cr_assert_eq(posix_spawnp(&pid, python(), &fa, NULL, argv, environ), 0, "%s", python());
	posix_spawn_file_actions_destroy(&fa);
	close(pipefd[1]);

	served = serve_one(ca, lfd, host);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	n = read(pipefd[0], out, sizeof(out) - 1);
	out[n > 0 ? n : 0] = '\0';
	close(pipefd[0]);
	close(lfd);
	unlink(cafile);
	rmdir(dir);
	aj_tlsca_free(ca);

	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "python3 refused the leaf for %s (status %#x; its stderr is above)", host,
		  status);
	cr_assert(served);
	cr_assert_str_eq(out, "http/1.1 pong\n");
}

Test(tlsca, python_strict_accepts_a_name, .timeout = 60)
{
	expect_python_strict_accepts("api.example.com");
}

Test(tlsca, python_strict_accepts_an_address, .timeout = 60)
{
	expect_python_strict_accepts("127.0.0.1");
}
