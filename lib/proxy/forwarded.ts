import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';

/** Which forwarding headers the balancer writes on proxied requests. */
export interface ForwardingOptions {
  /** Append to `X-Forwarded-For` and set `X-Forwarded-Proto/-Host/-Port`; default true. */
  xForwarded: boolean;
  /** Append an RFC 7239 `Forwarded` element (`for`, `host`, `proto`); default false. */
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
  }
  if (options.forwarded) {
    const element = forwardedElement(peer, host, proto);
    const prior = headers.forwarded;
    headers.forwarded = prior ? `${prior}, ${element}` : element;
  }
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
