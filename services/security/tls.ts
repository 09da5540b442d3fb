/**
 * TLS settings of the secure profile (DESIGN.md "Security profiles"): TLS 1.3,
 * or TLS 1.2 with forward secrecy (ECDHE) and AEAD ciphers only (AES-GCM,
 * CHACHA20-POLY1305). No CBC, no RSA key exchange, no TLS 1.0/1.1.
 * Mosquitto's listener takes the same lists (tls_version, ciphers,
 * ciphers_tls1.3).
 */
import type { ConnectionOptions, TlsOptions } from 'node:tls';

export const TLS_MIN_VERSION = 'TLSv1.2';

/** TLS 1.2 suites (OpenSSL names), strongest first for honorCipherOrder. */
export const TLS12_CIPHERS = [
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
] as const;

/** TLS 1.3 suites (all three are AEAD; named so the list is explicit, not OpenSSL's default). */
export const TLS13_CIPHERSUITES = ['TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256', 'TLS_AES_128_GCM_SHA256'] as const;

/** Node takes both in one `ciphers` string (TLS_* names go to the 1.3 list). */
export const SECURE_CIPHERS = [...TLS13_CIPHERSUITES, ...TLS12_CIPHERS].join(':');

/** A slow or silent client may hold an unauthenticated socket only this long (Node's default is 120 s). */
export const HANDSHAKE_TIMEOUT_MS = 10_000;

export interface ServerTlsMaterial {
  readonly cert: string | Buffer;
  readonly key: string | Buffer;
  /** CA that issued client certificates; with requireClientCert, only its clients get in. */
  readonly ca?: string | Buffer;
  /** Mutual TLS: refuse clients without a certificate from `ca` (default false: passwords authenticate). */
  readonly requireClientCert?: boolean;
}

export function serverTlsOptions(material: ServerTlsMaterial): TlsOptions {
  const mutual = material.requireClientCert === true;
  if (mutual && material.ca === undefined) throw new Error('requireClientCert needs the client CA (tls.ca)');
  return {
    cert: material.cert,
    key: material.key,
    ...(material.ca !== undefined ? { ca: material.ca } : {}),
    minVersion: TLS_MIN_VERSION,
    ciphers: SECURE_CIPHERS,
    honorCipherOrder: true,
    handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
    requestCert: mutual,
    rejectUnauthorized: mutual,
  };
}

export interface ClientTlsMaterial {
  /** The CA that issued the broker's certificate (the local CA's ca.pem). */
  readonly ca: string | Buffer;
  /** Name checked against the certificate's SAN; needed when connecting by an address the certificate does not list. */
  readonly servername?: string;
  /** Client certificate and key, for brokers that require mutual TLS. */
  readonly cert?: string | Buffer;
  readonly key?: string | Buffer;
}

/** Options for mqtt.js (`MqttBusOptions.tls`) or tls.connect: verify the broker against `ca`, same versions and suites. */
export function clientTlsOptions(material: ClientTlsMaterial): Pick<ConnectionOptions, 'ca' | 'servername' | 'cert' | 'key' | 'minVersion' | 'ciphers' | 'rejectUnauthorized'> {
  return {
    ca: material.ca,
    ...(material.servername !== undefined ? { servername: material.servername } : {}),
    ...(material.cert !== undefined ? { cert: material.cert } : {}),
    ...(material.key !== undefined ? { key: material.key } : {}),
    minVersion: TLS_MIN_VERSION,
    ciphers: SECURE_CIPHERS,
    rejectUnauthorized: true,
  };
}
