/*
 * The jail's TLS interception authority (issue 10): a CA made for one jail
 * when its broker starts, the leaf certificates it signs for the hosts the
 * agent tunnels to, and the server side of an intercepted tunnel, which
 * presents the leaf of the CONNECT host and nothing else.
 *
 * The CA's key and the leaves' key are generated here, in memory, and go
 * nowhere else: not to a file, not to the jail, not into a message.  The
 * jail gets only the CA's certificate (aj_tlsca_pem), which the supervisor
 * adds to the jail's trust.
 *
 * The certificates are made for strict verifiers (OpenSSL's X509_STRICT,
 * which Python's VERIFY_X509_STRICT turns on, is the bar): version 3, a
 * 128-bit random serial, critical basic constraints and key usage on both,
 * subject and authority key identifiers, the host in the subject
 * alternative name (never in the common name alone), serverAuth.
 *
 * OpenSSL, because libcurl already brings it into the broker (Debian
 * builds libcurl4-openssl-dev against it) and it does both halves: X.509
 * building and a TLS server.  Its errors become ours in one place,
 * openssl_error().  Not thread-safe: the broker is one thread.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "broker.h"
#include "log.h"
#include "url.h"
#include "util.h"

/* X.520's upper bound for a common name (RFC 5280, ub-common-name): a
 * longer host is named by its subject alternative name only. */
#define CN_MAX 64

/* TLS 1.2's suites for an ECDSA key: forward secret and AEAD only (TLS 1.3
 * keeps OpenSSL's defaults, which are all of that). */
#define TLS12_CIPHERS                                                                              \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"                             \
	"ECDHE-ECDSA-CHACHA20-POLY1305"

/* A host as certificates name it: aj_url's spelling (a lower-case DNS name
 * without the trailing dot, or a canonical IP literal without brackets). */
struct tlsca_host {
	char name[256];
	int kind; /* AJ_HOST_NAME, AJ_HOST_IPV4, AJ_HOST_IPV6 */
};

/* One cached leaf. */
struct tlsca_leaf {
	char *host; /* normalised */
	X509 *cert; /* the cache's reference */
};

struct aj_tlsca {
	EVP_PKEY *key;      /* the CA's: signs certificates, nothing else */
	EVP_PKEY *leaf_key; /* every leaf's (see aj_tlsca_leaf in broker.h) */
	X509 *cert;
	char *pem;
	size_t pem_len;
	time_t not_before, not_after;
	SSL_CTX *server;           /* every intercepted tunnel's */
	struct tlsca_leaf *leaves; /* sorted by host */
	size_t n_leaves, cap_leaves;
};

/* What one tunnel's handshake checks, in its SSL's ex_data (freed with
 * the SSL, so that a tunnel never points into the CA). */
struct tlsca_tunnel {
	struct tlsca_host expected;
	char refusal[640]; /* two names of up to 253 bytes and the words */
};

static int tunnel_index = -1; /* made by the first aj_tlsca_new */

/* ---- OpenSSL's errors, translated once ---------------------------------------------- */

/* The reason of the earliest error OpenSSL queued, after WHAT; the queue
 * is emptied.  OpenSSL's reason strings name what failed, never a key.
 * Returns -ENOMEM for its allocation failures, else -EIO. */
static int
openssl_error(char *err, size_t errlen, const char *what)
{
	unsigned long e = ERR_get_error();
	const char *reason = e != 0 ? ERR_reason_error_string(e) : NULL;
	int rc = ERR_GET_REASON(e) == ERR_R_MALLOC_FAILURE ? -ENOMEM : -EIO;

	ERR_clear_error();
	return aj_err(err, errlen, rc, "%s: %s", what, reason != NULL ? reason : "OpenSSL failed");
}

/* ---- host names ------------------------------------------------------------------------ */

/* Normalise HOST into OUT (written only on success) with the URL
 * normaliser's own authority parser, so a certificate names a host exactly
 * as a rule and a fetch do: letters, digits, '-' and '.', at most 253
 * bytes, or an IP literal (bare IPv6, as aj_url keeps it).  A wildcard, a
 * port, userinfo or percent-encoding is refused, so is an empty name; IDN
 * comes as A-labels.  Returns 0 or -EINVAL with ERR. */
static int
normalise_host(const char *host, struct tlsca_host *out, char *err, size_t errlen)
{
	char bracketed[INET6_ADDRSTRLEN + 2], why[192];
	struct tlsca_host h;
	size_t len = strlen(host);
	unsigned port;
	int rc;

	if (memchr(host, ':', len) == NULL) {
		rc = aj_url_parse_authority(host, len, 0, h.name, &h.kind, &port, why, sizeof(why));
	} else if (len + 2 < sizeof(bracketed)) {
		snprintf(bracketed, sizeof(bracketed), "[%s]", host);
		rc = aj_url_parse_authority(bracketed, len + 2, 0, h.name, &h.kind, &port, why,
					    sizeof(why));
	} else {
		rc = aj_err(why, sizeof(why), -EINVAL, "host too long for an IPv6 literal");
	}
	if (rc < 0)
		return aj_err(err, errlen, -EINVAL, "no certificate for this host: %s", why);
	*out = h;
	return 0;
}

/* ---- certificates ---------------------------------------------------------------------- */

/* One extension in openssl.cnf syntax: only the constants of this file go
 * through that parser, never a host name (add_san builds that one). */
struct tlsca_ext {
	int nid;
	const char *value;
};

/* The CA's: it signs leaves and nothing below them.  The subject key
 * identifier comes first: the authority key identifier copies it. */
static const struct tlsca_ext ca_exts[] = {
	{NID_basic_constraints, "critical,CA:TRUE,pathlen:0"},
	{NID_key_usage, "critical,keyCertSign,cRLSign"},
	{NID_subject_key_identifier, "hash"},
	{NID_authority_key_identifier, "keyid:always"},
};

/* A leaf's: a TLS server's key (ECDHE-ECDSA signs, it never encrypts). */
static const struct tlsca_ext leaf_exts[] = {
	{NID_basic_constraints, "critical,CA:FALSE"},
	{NID_key_usage, "critical,digitalSignature"},
	{NID_ext_key_usage, "serverAuth"},
	{NID_subject_key_identifier, "hash"},
	{NID_authority_key_identifier, "keyid:always"},
};

static bool
add_exts(X509 *x, X509 *issuer, const struct tlsca_ext *exts, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		X509V3_CTX v3;
		X509_EXTENSION *ext;
		bool ok;

		X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
		ext = X509V3_EXT_nconf_nid(NULL, &v3, exts[i].nid, exts[i].value);
		ok = ext != NULL && X509_add_ext(x, ext, -1) == 1;
		X509_EXTENSION_free(ext);
		if (!ok)
			return false;
	}
	return true;
}

/* The subject alternative name: DNS:name or IP:address, built as ASN.1
 * (not parsed from text). */
static bool
add_san(X509 *x, const struct tlsca_host *h)
{
	GENERAL_NAMES *names = GENERAL_NAMES_new();
	GENERAL_NAME *name = GENERAL_NAME_new();
	ASN1_STRING *value = NULL;
	bool ok = false;

	if (names == NULL || name == NULL)
		goto out;
	if (h->kind == AJ_HOST_NAME) {
		value = ASN1_IA5STRING_new();
		if (value == NULL || ASN1_STRING_set(value, h->name, -1) != 1)
			goto out;
		GENERAL_NAME_set0_value(name, GEN_DNS, value);
	} else {
		value = a2i_IPADDRESS(h->name);
		if (value == NULL)
			goto out;
		GENERAL_NAME_set0_value(name, GEN_IPADD, value);
	}
	value = NULL;
	if (sk_GENERAL_NAME_push(names, name) == 0)
		goto out;
	name = NULL;
	ok = X509_add1_ext_i2d(x, NID_subject_alt_name, names, 0, X509V3_ADD_DEFAULT) == 1;
out:
	ASN1_STRING_free(value);
	GENERAL_NAME_free(name);
	GENERAL_NAMES_free(names);
	return ok;
}

/* O=agentjail, and CN=CN when there is one. */
static X509_NAME *
name_new(const char *cn)
{
	X509_NAME *n = X509_NAME_new();

	if (n == NULL ||
	    X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, (const unsigned char *)"agentjail", -1,
				       -1, 0) != 1 ||
	    (cn != NULL && X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
						      (const unsigned char *)cn, -1, -1, 0) != 1)) {
		X509_NAME_free(n);
		return NULL;
	}
	return n;
}

/* 128 random bits (zero, which is no serial, is drawn again). */
static bool
set_serial(X509 *x)
{
	BIGNUM *bn = BN_new();
	bool ok = bn != NULL;

	while (ok) {
		ok = BN_rand(bn, 128, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) == 1;
		if (ok && !BN_is_zero(bn))
			break;
	}
	ok = ok && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
	BN_free(bn);
	return ok;
}

/* A version 3 certificate of KEY's public half, for SUBJECT by ISSUER,
 * valid from NOT_BEFORE to NOT_AFTER, with a fresh serial; no extension,
 * no signature yet. */
static X509 *
cert_new(EVP_PKEY *key, const X509_NAME *subject, const X509_NAME *issuer, time_t not_before,
	 time_t not_after)
{
	X509 *x = X509_new();

	if (x == NULL || X509_set_version(x, X509_VERSION_3) != 1 || !set_serial(x) ||
	    X509_set_subject_name(x, subject) != 1 || X509_set_issuer_name(x, issuer) != 1 ||
	    ASN1_TIME_set(X509_getm_notBefore(x), not_before) == NULL ||
	    ASN1_TIME_set(X509_getm_notAfter(x), not_after) == NULL ||
	    X509_set_pubkey(x, key) != 1) {
		X509_free(x);
		return NULL;
	}
	return x;
}

/* The CA's self-signed certificate, its subject unique to this jail
 * ("O=agentjail, CN=agentjail jail CA <64 random bits in hex>"), so two
 * jails' CAs never share a name. */
static X509 *
ca_cert_new(const struct aj_tlsca *ca)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char tag[8];
	char cn[sizeof("agentjail jail CA ") + 2 * sizeof(tag)] = "agentjail jail CA ";
	char *p = cn + strlen(cn);
	X509_NAME *name;
	X509 *x = NULL;

	if (RAND_bytes(tag, sizeof(tag)) != 1)
		return NULL;
	for (size_t i = 0; i < sizeof(tag); i++) {
		*p++ = hex[tag[i] >> 4];
		*p++ = hex[tag[i] & 0xf];
	}
	*p = '\0';
	name = name_new(cn);
	if (name != NULL)
		x = cert_new(ca->key, name, name, ca->not_before, ca->not_after);
	X509_NAME_free(name);
	if (x != NULL && (!add_exts(x, x, ca_exts, AJ_ARRAY_SIZE(ca_exts)) ||
			  X509_sign(x, ca->key, EVP_sha256()) <= 0)) {
		X509_free(x);
		x = NULL;
	}
	return x;
}

/* A leaf for H, signed now: valid from a little before now (never before
 * the CA) to the CA's own end. */
static X509 *
leaf_new(const struct aj_tlsca *ca, const struct tlsca_host *h)
{
	X509_NAME *name = name_new(strlen(h->name) <= CN_MAX ? h->name : NULL);
	time_t not_before = time(NULL) - AJ_TLSCA_BACKDATE;
	X509 *x = NULL;

	if (not_before < ca->not_before)
		not_before = ca->not_before;
	if (name != NULL)
		x = cert_new(ca->leaf_key, name, X509_get_subject_name(ca->cert), not_before,
			     ca->not_after);
	X509_NAME_free(name);
	if (x != NULL && (!add_exts(x, ca->cert, leaf_exts, AJ_ARRAY_SIZE(leaf_exts)) ||
			  !add_san(x, h) || X509_sign(x, ca->key, EVP_sha256()) <= 0)) {
		X509_free(x);
		x = NULL;
	}
	return x;
}

static char *
pem_of(X509 *x, size_t *len)
{
	BIO *mem = BIO_new(BIO_s_mem());
	char *data, *pem = NULL;
	long n;

	if (mem != NULL && PEM_write_bio_X509(mem, x) == 1 &&
	    (n = BIO_get_mem_data(mem, &data)) > 0 && (pem = malloc((size_t)n + 1)) != NULL) {
		memcpy(pem, data, (size_t)n);
		pem[n] = '\0';
		*len = (size_t)n;
	}
	BIO_free(mem);
	return pem;
}

/* ---- the leaf cache ------------------------------------------------------------------- */

/* Where HOST is in the sorted cache (*FOUND), or where it would go.  A
 * sorted array: a binary search whatever names the agent picks. */
static size_t
leaf_slot(const struct aj_tlsca *ca, const char *host, bool *found)
{
	size_t lo = 0, hi = ca->n_leaves;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(host, ca->leaves[mid].host);

		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	*found = false;
	return lo;
}

/* Keep X for HOST at slot AT, if there is room (out of room or memory,
 * the leaf is only not kept). */
static void
leaf_keep(struct aj_tlsca *ca, size_t at, const char *host, X509 *x)
{
	char *copy;

	if (ca->n_leaves == AJ_TLSCA_LEAVES_MAX)
		return;
	if (ca->n_leaves == ca->cap_leaves) {
		size_t cap = ca->cap_leaves == 0 ? 16 : 2 * ca->cap_leaves;
		struct tlsca_leaf *grown;

		if (cap > AJ_TLSCA_LEAVES_MAX)
			cap = AJ_TLSCA_LEAVES_MAX;
		grown = realloc(ca->leaves, cap * sizeof(*grown));
		if (grown == NULL)
			return;
		ca->leaves = grown;
		ca->cap_leaves = cap;
	}
	copy = strdup(host);
	if (copy == NULL || X509_up_ref(x) != 1) {
		free(copy);
		return;
	}
	memmove(&ca->leaves[at + 1], &ca->leaves[at], (ca->n_leaves - at) * sizeof(ca->leaves[0]));
	ca->leaves[at] = (struct tlsca_leaf){.host = copy, .cert = x};
	ca->n_leaves++;
}

/* The leaf for H (normalised): the cached one or a new one.  Same
 * returns as aj_tlsca_leaf. */
static int
leaf_get(struct aj_tlsca *ca, const struct tlsca_host *h, X509 **out, char *err, size_t errlen)
{
	size_t at;
	bool found;
	X509 *x;

	if (time(NULL) >= ca->not_after)
		return aj_err(err, errlen, -EKEYEXPIRED, "the jail's CA expired (after %d days)",
			      AJ_TLSCA_DAYS);
	at = leaf_slot(ca, h->name, &found);
	if (found) {
		x = ca->leaves[at].cert;
		if (X509_up_ref(x) != 1)
			return openssl_error(err, errlen, "taking a leaf certificate");
	} else {
		x = leaf_new(ca, h);
		if (x == NULL)
			return openssl_error(err, errlen, "signing a leaf certificate");
		leaf_keep(ca, at, h->name, x);
	}
	*out = x;
	return 0;
}

/* ---- the server side of a tunnel ------------------------------------------------------ */

static void
tunnel_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	free(ptr);
}

/* OpenSSL calls this for every ClientHello, with or without a server name
 * (SNI).  The SSL already holds the leaf of the expected host and no
 * other, so a name that differs fails the handshake before any
 * certificate is sent. */
static int
check_server_name(SSL *ssl, int *alert, void *arg)
{
	struct tlsca_tunnel *t = SSL_get_ex_data(ssl, tunnel_index);
	const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	struct tlsca_host asked;
	char safe[96];

	if (t == NULL) {
		/* An SSL that aj_tlsca_server_ssl did not make: no name to check against. */
		*alert = SSL_AD_INTERNAL_ERROR;
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	}
	if (sni == NULL) {
		/* Clients send no name for an IP literal (RFC 6066, 3): the
		 * leaf of that address is the one to present. */
		if (t->expected.kind != AJ_HOST_NAME)
			return SSL_TLSEXT_ERR_OK;
		snprintf(t->refusal, sizeof(t->refusal),
			 "the client sent no server name (SNI); the tunnel is to %s",
			 t->expected.name);
	} else if (normalise_host(sni, &asked, NULL, 0) < 0) {
		aj_log_escape(sni, safe, sizeof(safe));
		snprintf(t->refusal, sizeof(t->refusal),
			 "the client's server name (SNI) '%s' is not a host name; the tunnel is "
			 "to %s",
			 safe, t->expected.name);
	} else if (strcmp(asked.name, t->expected.name) != 0) {
		snprintf(t->refusal, sizeof(t->refusal),
			 "the client's server name (SNI) is %s, but the tunnel is to %s",
			 asked.name, t->expected.name);
	} else {
		return SSL_TLSEXT_ERR_OK;
	}
	*alert = SSL_AD_UNRECOGNIZED_NAME;
	return SSL_TLSEXT_ERR_ALERT_FATAL;
}

/* http/1.1 when the client offers it; else no ALPN at all (an h2-only
 * client goes on without it, or ends the handshake itself). */
static int
select_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
	    unsigned int inlen, void *arg)
{
	static const unsigned char http11[] = "http/1.1";
	unsigned i = 0;

	while (i < inlen) {
		unsigned n = in[i];

		if (n > inlen - i - 1)
			break;
		if (n == sizeof(http11) - 1 && memcmp(in + i + 1, http11, n) == 0) {
			*out = http11;
			*outlen = (unsigned char)n;
			return SSL_TLSEXT_ERR_OK;
		}
		i += 1 + n;
	}
	return SSL_TLSEXT_ERR_NOACK;
}

/* Every tunnel's context: TLS 1.2 and 1.3, no renegotiation, the server
 * name checked, ALPN http/1.1.  Certificates come per SSL.  No session
 * resumption: every tunnel shares this context, so a TLS 1.3 ticket from
 * one tunnel would resume in another with no certificate shown (OpenSSL
 * ties a 1.3 session to no name), a 1.2 session would fail the other
 * tunnel's name check, and the session cache would hold up to 20480
 * sessions past the leaf cache's bound.  A full handshake costs one ECDSA
 * signature per connection; keep-alive makes them rare. */
static SSL_CTX *
server_ctx_new(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1 ||
	    SSL_CTX_set_num_tickets(ctx, 0) != 1) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
					 SSL_OP_NO_TICKET);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	/* A tunnel between records holds no record buffers (OpenSSL's read
	 * and write buffers, about 17 KiB each): the broker's memory follows
	 * the traffic, not the number of open tunnels. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_tlsext_servername_callback(ctx, check_server_name);
	SSL_CTX_set_alpn_select_cb(ctx, select_alpn, NULL);
	return ctx;
}

/* ---- the API ------------------------------------------------------------------------- */

int
aj_tlsca_new(struct aj_tlsca **out, char *err, size_t errlen)
{
	struct aj_tlsca *ca;
	time_t now = time(NULL);
	int rc;

	if (tunnel_index < 0)
		tunnel_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, tunnel_free);
	if (tunnel_index < 0)
		return openssl_error(err, errlen, "making the jail's CA");
	ca = calloc(1, sizeof(*ca));
	if (ca == NULL)
		return aj_err(err, errlen, -ENOMEM, "making the jail's CA: out of memory");
	ca->not_before = now - AJ_TLSCA_BACKDATE;
	ca->not_after = now + (time_t)AJ_TLSCA_DAYS * 24 * 3600;
	ca->key = EVP_EC_gen("P-256");
	ca->leaf_key = EVP_EC_gen("P-256");
	if (ca->key == NULL || ca->leaf_key == NULL)
		goto fail;
	ca->cert = ca_cert_new(ca);
	if (ca->cert == NULL)
		goto fail;
	ca->pem = pem_of(ca->cert, &ca->pem_len);
	ca->server = server_ctx_new();
	if (ca->pem == NULL || ca->server == NULL)
		goto fail;
	*out = ca;
	return 0;
fail:
	rc = openssl_error(err, errlen, "making the jail's CA");
	aj_tlsca_free(ca);
	return rc;
}

void
aj_tlsca_free(struct aj_tlsca *ca)
{
	if (ca == NULL)
		return;
	for (size_t i = 0; i < ca->n_leaves; i++) {
		free(ca->leaves[i].host);
		X509_free(ca->leaves[i].cert);
	}
	free(ca->leaves);
	SSL_CTX_free(ca->server);
	X509_free(ca->cert);
	free(ca->pem);
	/* The keys' only copies.  EVP_PKEY_free clears an EC key's private
	 * scalar as it frees it (EC_KEY_free: BN_clear_free, then
	 * OPENSSL_clear_free of the key), once the last reference goes: a
	 * tunnel's SSL still holding the leaf key keeps it until SSL_free. */
	EVP_PKEY_free(ca->leaf_key);
	EVP_PKEY_free(ca->key);
	free(ca);
}

const char *
aj_tlsca_pem(const struct aj_tlsca *ca, size_t *len)
{
	if (len != NULL)
		*len = ca->pem_len;
	return ca->pem;
}

int
aj_tlsca_leaf(struct aj_tlsca *ca, const char *host, X509 **out, char *err, size_t errlen)
{
	struct tlsca_host h;
	int rc = normalise_host(host, &h, err, errlen);

	if (rc < 0)
		return rc;
	return leaf_get(ca, &h, out, err, errlen);
}

int
aj_tlsca_server_ssl(struct aj_tlsca *ca, const char *host, SSL **out, char *err, size_t errlen)
{
	struct tlsca_tunnel *t = calloc(1, sizeof(*t));
	X509 *leaf = NULL;
	SSL *ssl;
	int rc;

	if (t == NULL)
		return aj_err(err, errlen, -ENOMEM, "a TLS tunnel: out of memory");
	rc = normalise_host(host, &t->expected, err, errlen);
	if (rc == 0)
		rc = leaf_get(ca, &t->expected, &leaf, err, errlen);
	if (rc < 0) {
		free(t);
		return rc;
	}
	ssl = SSL_new(ca->server);
	if (ssl == NULL || SSL_set_ex_data(ssl, tunnel_index, t) != 1) {
		free(t);
		goto fail;
	}
	/* T is the SSL's now (tunnel_free). */
	if (SSL_use_cert_and_key(ssl, leaf, ca->leaf_key, NULL, 1) != 1)
		goto fail;
	SSL_set_accept_state(ssl);
	X509_free(leaf);
	*out = ssl;
	return 0;
fail:
	rc = openssl_error(err, errlen, "a TLS tunnel");
	SSL_free(ssl);
	X509_free(leaf);
	return rc;
}

const char *
aj_tlsca_refusal(const SSL *ssl)
{
	const struct tlsca_tunnel *t = SSL_get_ex_data(ssl, tunnel_index);

	return t != NULL && t->refusal[0] != '\0' ? t->refusal : NULL;
}
