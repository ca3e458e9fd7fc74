/*
 * tls.c — mutually authenticated TLS on the internal links; see tls.h.
 */
#include "tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

struct agenda_tls {
    SSL_CTX *ctx;
    char self[AGENDA_TLS_NAME_MAX + 1]; /* this replica's certificate name */
};

bool agenda_tls_replica_name(char *out, size_t size, const char *shard,
                             const char *replica)
{
    int n = snprintf(out, size, "%s.%s.agenda", replica, shard);
    return n > 0 && (size_t)n < size;
}

static void openssl_reason(char *out, size_t size)
{
    unsigned long e = ERR_get_error();
    const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;
    snprintf(out, size, "%s", r != NULL ? r : "unknown OpenSSL error");
    ERR_clear_error();
}

/* A key others can read is no secret: refuse it as ssh and the edge do. */
static bool key_private(const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return false;
    }
    if (st.st_mode & 077) {
        snprintf(err, errlen, "%s is readable by group or others "
                 "(chmod 600)", path);
        return false;
    }
    return true;
}

struct agenda_tls *agenda_tls_new(const char *dir, const char *shard,
                                  const char *replica, char *err,
                                  size_t errlen)
{
    char ca[4096], cert[4096], key[4096], why[256];
    if (snprintf(ca, sizeof ca, "%s/ca.pem", dir) >= (int)sizeof ca ||
        snprintf(cert, sizeof cert, "%s/%s-%s.pem", dir, shard, replica) >=
            (int)sizeof cert ||
        snprintf(key, sizeof key, "%s/%s-%s.key", dir, shard, replica) >=
            (int)sizeof key) {
        snprintf(err, errlen, "internal_tls.dir: path too long");
        return NULL;
    }
    if (!key_private(key, err, errlen))
        return NULL;

    struct agenda_tls *tls = calloc(1, sizeof *tls);
    SSL_CTX *ctx = tls != NULL ? SSL_CTX_new(TLS_method()) : NULL;
    if (ctx == NULL) {
        snprintf(err, errlen, "out of memory");
        free(tls);
        return NULL;
    }
    tls->ctx = ctx;
    if (!agenda_tls_replica_name(tls->self, sizeof tls->self, shard,
                                 replica)) {
        snprintf(err, errlen, "shard or replica name too long");
        agenda_tls_free(tls);
        return NULL;
    }
    const char *failed = NULL, *file = NULL;
    if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION)) {
        failed = "setting TLS 1.2 as the oldest version";
    } else if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        failed = "loading the certificate";
        file = cert;
    } else if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        failed = "loading the private key";
        file = key;
    } else if (SSL_CTX_check_private_key(ctx) != 1) {
        failed = "the private key does not match the certificate";
        file = key;
    } else if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
        failed = "loading the CA";
        file = ca;
    }
    if (failed != NULL) {
        openssl_reason(why, sizeof why);
        snprintf(err, errlen, "%s%s%s: %s", file ? file : "",
                 file ? ": " : "", failed, why);
        agenda_tls_free(tls);
        return NULL;
    }
    /* Both ends show a certificate from the CA, or no link. */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                       NULL);
    SSL_CTX_set_verify_depth(ctx, 2);
    /* The edge resumes sessions when it opens another connection (nginx's
     * proxy_ssl_session_reuse); with client certificates required,
     * OpenSSL refuses any resumption in a context without a session id
     * context, failing that handshake. */
    static const unsigned char sid_ctx[] = "agenda-internal";
    if (SSL_CTX_set_session_id_context(ctx, sid_ctx,
                                       sizeof(sid_ctx) - 1) != 1) {
        snprintf(err, errlen, "cannot set the session id context");
        agenda_tls_free(tls);
        return NULL;
    }
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    return tls;
}

void agenda_tls_free(struct agenda_tls *tls)
{
    if (tls == NULL)
        return;
    SSL_CTX_free(tls->ctx);
    free(tls);
}

/* A TLS bufferevent whose handshake requires the peer's certificate to
 * name name1 or name2 (subjectAltName; NULL: any the CA signed). */
static struct bufferevent *tls_bev(struct agenda_tls *tls,
                                   struct event_base *base,
                                   evutil_socket_t fd, bool outbound,
                                   const char *name1, const char *name2)
{
    SSL *ssl = SSL_new(tls->ctx);
    if (ssl == NULL)
        return NULL;
    SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_WILDCARDS |
                               X509_CHECK_FLAG_NEVER_CHECK_SUBJECT);
    if ((name1 != NULL && SSL_set1_host(ssl, name1) != 1) ||
        (name2 != NULL && SSL_add1_host(ssl, name2) != 1)) {
        SSL_free(ssl);
        return NULL;
    }
    struct bufferevent *bev = bufferevent_openssl_socket_new(
        base, fd, ssl,
        outbound ? BUFFEREVENT_SSL_CONNECTING : BUFFEREVENT_SSL_ACCEPTING,
        BEV_OPT_CLOSE_ON_FREE);
    if (bev == NULL) {
        SSL_free(ssl);
        return NULL;
    }
    /* A peer that closes without close_notify has still said all it
     * meant to: frames carry their own lengths and checksums. */
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

bool agenda_tls_peer_is(struct bufferevent *bev, const char *name)
{
    SSL *ssl = bufferevent_openssl_get_ssl(bev);
    if (ssl == NULL || SSL_get_verify_result(ssl) != X509_V_OK)
        return false;
    X509 *cert = SSL_get1_peer_certificate(ssl);
    if (cert == NULL)
        return false;
    bool ok = X509_check_host(cert, name, strlen(name),
                              X509_CHECK_FLAG_NO_WILDCARDS |
                                  X509_CHECK_FLAG_NEVER_CHECK_SUBJECT,
                              NULL) == 1;
    X509_free(cert);
    return ok;
}

struct bufferevent *agenda_tls_bev_new(struct agenda_tls *tls,
                                       struct event_base *base,
                                       evutil_socket_t fd, bool outbound,
                                       const char *peer_name)
{
    return tls_bev(tls, base, fd, outbound, peer_name, NULL);
}

struct bufferevent *agenda_tls_api_bev_new(struct agenda_tls *tls,
                                           struct event_base *base)
{
    struct bufferevent *bev = tls_bev(tls, base, -1, false,
                                      AGENDA_TLS_EDGE_NAME, tls->self);
    /* The Raft port's sessions are any replica's: with the context's
     * session id context they would resume here, and a resumed session
     * skips the certificate names checked above.  Sessions of the API
     * resume on the API only. */
    static const unsigned char api_sid_ctx[] = "agenda-internal-api";
    if (bev != NULL &&
        SSL_set_session_id_context(bufferevent_openssl_get_ssl(bev),
                                   api_sid_ctx,
                                   sizeof(api_sid_ctx) - 1) != 1) {
        bufferevent_free(bev);
        return NULL;
    }
    return bev;
}

bool agenda_tls_api_client_ok(struct agenda_tls *tls,
                              struct bufferevent *bev)
{
    return agenda_tls_peer_is(bev, AGENDA_TLS_EDGE_NAME) ||
           agenda_tls_peer_is(bev, tls->self);
}

const char *agenda_tls_error(struct bufferevent *bev)
{
    unsigned long e = bufferevent_get_openssl_error(bev);
    if (e == 0)
        return "";
    const char *r = ERR_reason_error_string(e);
    return r != NULL ? r : "TLS error";
}
