import type { SecureClientSessionOptions } from 'node:http2';
import type https from 'node:https';
import { isIP } from 'node:net';
import { LOOPBACK_CONNECT } from '../../loopback.js';
import type { Target } from '../../../target.js';

// Agent options that are about pooling HTTP/1 sockets, not about the connection itself. `timeout`
// above all: passed on, it would become the session socket's idle timeout.
const AGENT_ONLY = ['keepAlive', 'keepAliveMsecs', 'maxSockets', 'maxTotalSockets', 'maxFreeSockets', 'scheduling', 'timeout', 'maxCachedSessions'];

/** The authority `http2.connect` dials for a target: its URL's scheme, address and port. */
export function connectAuthority(target: Target): string {
  const url = target.url;
  const port = url.port === '' ? (url.protocol === 'https:' ? '443' : '80') : url.port;
  return `${url.protocol}//${url.hostname}:${port}`;
}

/**
 * Connection options for a target's sessions: the balancer's `agentOptions` (TLS `ca`,
 * `rejectUnauthorized`, client certificates, `lookup`...) with ALPN `h2` only, so a TLS server that
 * cannot speak HTTP/2 fails the handshake instead of answering HTTP/1.1. The TLS server name is the
 * target's name (its `hostname`, else its URL's host), as the HTTP/1.1 engine sends, unless
 * `agentOptions.servername` names one; none for an address.
 */
export function connectOptions(target: Target, agentOptions: https.AgentOptions | https.RequestOptions): SecureClientSessionOptions {
  const options: Record<string, unknown> = { ...LOOPBACK_CONNECT, ...agentOptions };
  for (const name of AGENT_ONLY) delete options[name];
  if (target.url.protocol !== 'https:') return options as SecureClientSessionOptions;
  options.ALPNProtocols = ['h2'];
  if (options.servername === undefined) {
    const name = target.host.startsWith('[') ? '' : target.host.replace(/:\d+$/, '');
    options.servername = name === '' || isIP(name) !== 0 ? '' : name;
  }
  return options as SecureClientSessionOptions;
}
