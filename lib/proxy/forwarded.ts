import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { publicPrefix } from './public-prefix.js';

/** Which forwarding headers the balancer writes on proxied requests. */
export interface ForwardingOptions {
  /** Append to `X-Forwarded-For` and set `X-Forwarded-Proto/-Host/-Port/-Prefix`; default true. */
  xForwarded: boolean;
  /** Append an RFC 7239 `Forwarded` element (`for`, `host`, `proto`); default false (a client's own `Forwarded` then goes through from a trusted peer only). */
  forwarded: boolean;
}

/** The scheme the client used to reach this server. */
export function clientProto(req: IncomingMessage): 'http' | 'https' {
  return (req.socket as TLSSocket).encrypted ? 'https' : 'http';
}

/**
 * Records this hop on a request about to be forwarded. `trustedPeer` says whether the socket peer is
 * a proxy we trust: only then do its `X-Forwarded-Proto/-Host/-Port` survive; otherwise this server,
 * being the edge, states them itself. `X-Forwarded-For` and `Forwarded` are lists, so they are
 * appended to in either case (the client-IP resolver decides which entries to believe).
 * `X-Forwarded-Prefix` is the public path stripped before the backend sees it (Traefik's
 * StripPrefix convention, read by Spring and ASP.NET Core): the mount path and the prefix a
 * `pathRewrite` rule matched, after a trusted peer's own prefix.
 *
 * Single-address headers are another matter: a backend reading `X-Real-IP` or `True-Client-IP`
 * (chi's RealIP, many PHP apps) takes them as the client address, and one reading `Forwarded`
 * (Spring prefers it to `X-Forwarded-*`) takes its first element as the client. So a client's own
 * copy must not look as if this server vouched for it: they pass only from a trusted peer.
 * The balancer does not write `X-Real-IP` itself: it would be one more field on every request for
 * what `X-Forwarded-For` already says (NGINX, too, sends it only when configured to).
 * `Forwarded`, when this server does not append to it, is removed unless the peer is trusted.
 */
export function addForwardingHeaders(req: IncomingMessage, options: ForwardingOptions, trustedPeer: boolean): void {
  const headers = req.headers;
  const peer = req.socket.remoteAddress ?? '';
  const proto = clientProto(req);
  const host = headers.host;
  if (options.xForwarded) {
    const prior = headers['x-forwarded-for'];
    headers['x-forwarded-for'] = prior ? `${prior}, ${peer}` : peer;
    if (!trustedPeer || headers['x-forwarded-proto'] === undefined) headers['x-forwarded-proto'] = proto;
    if (!trustedPeer || headers['x-forwarded-host'] === undefined) {
      if (host === undefined) delete headers['x-forwarded-host'];
      else headers['x-forwarded-host'] = host;
    }
    if (!trustedPeer || headers['x-forwarded-port'] === undefined) headers['x-forwarded-port'] = String(req.socket.localPort ?? '');
    const prefix = publicPrefix(req);
    const priorPrefix = headers['x-forwarded-prefix'];
    if (trustedPeer && priorPrefix !== undefined) headers['x-forwarded-prefix'] = joinPrefixes(String(priorPrefix), prefix);
    else if (prefix !== '') headers['x-forwarded-prefix'] = prefix;
    else if (priorPrefix !== undefined) delete headers['x-forwarded-prefix'];
  }
  if (!trustedPeer) {
    if (headers['x-real-ip'] !== undefined) delete headers['x-real-ip'];
    if (headers['true-client-ip'] !== undefined) delete headers['true-client-ip'];
  }
  if (options.forwarded) {
    const element = forwardedElement(peer, host, proto);
    const prior = headers.forwarded;
    headers.forwarded = prior ? `${prior}, ${element}` : element;
  } else if (!trustedPeer && headers.forwarded !== undefined) delete headers.forwarded;
}

/** A trusted proxy's prefix (possibly a comma-joined list, one per hop, as Spring reads it) with ours after it. */
function joinPrefixes(prior: string, prefix: string): string {
  let joined = '';
  for (const part of prior.split(',')) {
    const trimmed = part.trim();
    joined += trimmed.endsWith('/') ? trimmed.slice(0, -1) : trimmed;
  }
  return joined + prefix || '/';
}

const TOKEN = /^[\w.-]+$/;
const UNQUOTABLE = /["\\]/g;

function forwardedElement(peer: string, host: string | undefined, proto: string): string {
  // RFC 7239 §6: IPv6 nodes are bracketed and quoted; a host with a port needs quotes too.
  const node = peer.includes(':') ? `"[${peer}]"` : peer;
  let element = `for=${node}`;
  if (host !== undefined) element += `;host=${TOKEN.test(host) ? host : `"${host.replace(UNQUOTABLE, '')}"`}`;
  return `${element};proto=${proto}`;
}
