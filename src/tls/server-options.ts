// The TLS parameters of every port that serves TLS (the webhook), in one place: the server is
// built with them and every certificate reload passes them again, since setSecureContext rebuilds
// the whole context from its argument and would otherwise fall back to Node's defaults.
import type { SecureContextOptions } from 'node:tls'

/**
 * TLS 1.2 suites: ECDHE key exchange (forward secrecy) with an AEAD cipher only; no static-RSA key
 * exchange, no CBC, no SHA-1 MAC. The API server's Go client offers all of these.
 */
const TLS12_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305', 'ECDHE-RSA-CHACHA20-POLY1305',
]

/**
 * TLS 1.3 suites, as OpenSSL's default. Named explicitly because Node splits `ciphers` into the two
 * lists: a string without any TLS_* suite would switch TLS 1.3 off.
 */
const TLS13_SUITES = ['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256']

/**
 * The options (minVersion TLS 1.2, the cipher list, server cipher order) for a TLS server and for
 * each ReloadingTlsContext.applyTo of it; the certificate and key are added by the caller.
 */
export const SERVER_TLS_OPTIONS: Readonly<SecureContextOptions> = Object.freeze({
  minVersion: 'TLSv1.2',
  ciphers: [...TLS13_SUITES, ...TLS12_CIPHERS].join(':'),
  honorCipherOrder: true,
})
