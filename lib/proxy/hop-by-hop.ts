import type { IncomingHttpHeaders } from 'node:http';

// RFC 9110 §7.6.1 connection-specific fields, plus the de-facto Proxy-Connection and Keep-Alive.
// Transfer-Encoding is left alone: Node's HTTP client and server re-frame bodies themselves.
// Expect is answered by the front server (Node sends 100 Continue), so the upstream must not wait for it.
const REQUEST_HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade', 'proxy-authorization', 'expect'];
// The `trailers` member of a TE list (it takes no parameters; a coding's would follow a ';').
const TE_TRAILERS = /(?:^|,)[ \t]*trailers[ \t]*(?:,|$)/i;
// Responses: Transfer-Encoding too, since Node's server frames the body for the client itself.
// Trailer stays: relayed trailers are announced by it.
export const RESPONSE_HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'proxy-authenticate',
]);
// Never removable through Connection tokens: they frame the message.
export const FRAMING: ReadonlySet<string> = new Set(['content-length', 'transfer-encoding', 'host']);

function removeListed(headers: IncomingHttpHeaders, connection: string, keepUpgrade: boolean): void {
  const names = nominatedFields(connection);
  if (names === undefined) return;
  for (const name of names) if (!keepUpgrade || name !== 'upgrade') delete headers[name];
}

function strip(headers: IncomingHttpHeaders, names: readonly string[], keepUpgrade: boolean, upstreamKeepAlive = false): void {
  const connection = headers.connection;
  if (connection !== undefined) removeListed(headers, connection, keepUpgrade);
  // With keep-alive upstream connections, the usual `Connection: keep-alive` is the balancer's own
  // control option too (RFC 9110 §7.6.1 lets an intermediary put its own in place), and leaving it
  // spares the request's header object a delete, which turns it into a slow dictionary.
  const plainKeepAlive = upstreamKeepAlive && (connection === 'keep-alive' || connection === 'Keep-Alive');
  for (const name of names) {
    if (headers[name] === undefined) continue;
    if (keepUpgrade && (name === 'connection' || name === 'upgrade')) continue;
    if (plainKeepAlive && name === 'connection') continue;
    delete headers[name];
  }
}

/**
 * Removes hop-by-hop fields (and those the Connection field names) before forwarding a request.
 * A client that accepts trailers (`TE: trailers`, which gRPC clients send over h2) has the balancer
 * say so upstream in its own name, since it relays them; other TE codings are not forwarded.
 */
export function stripRequestHopByHop(headers: IncomingHttpHeaders, upstreamKeepAlive: boolean): void {
  const te = headers.te;
  strip(headers, REQUEST_HOP_BY_HOP, false, upstreamKeepAlive);
  if (typeof te !== 'string' || !TE_TRAILERS.test(te)) return;
  headers.te = 'trailers';
  // An HTTP/1.1 sender of TE lists it in Connection (RFC 9110 §10.1.4).
  headers.connection = upstreamKeepAlive ? 'keep-alive, te' : 'close, te';
}

/** Same, for a WebSocket handshake: keeps `Connection: upgrade` and `Upgrade`, which the tunnel needs. */
export function stripUpgradeHopByHop(headers: IncomingHttpHeaders): void {
  strip(headers, REQUEST_HOP_BY_HOP, true);
  headers.connection = 'upgrade';
}

/** The fields a Connection value nominates as hop-by-hop (never the framing ones), or undefined for none. */
export function nominatedFields(connection: string | undefined): Set<string> | undefined {
  if (connection === undefined || connection === 'keep-alive' || connection === 'close') return undefined;
  let names: Set<string> | undefined;
  for (const token of connection.split(',')) {
    const name = token.trim().toLowerCase();
    if (name === '' || FRAMING.has(name)) continue;
    names ??= new Set();
    names.add(name);
  }
  return names;
}
