import { createHash, randomBytes } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import { logProxy } from '../observe/log.js';
import type { Target } from '../target.js';
import { describeConnectError } from './connect-error.js';
import { respondError } from './errors.js';
import { LOOPBACK_CONNECT } from './loopback.js';
import type { Exchange } from './exchange.js';

// RFC 8441: a WebSocket over HTTP/2 is an extended CONNECT (`:protocol: websocket`) answered 200,
// with no key or accept. Backends speak RFC 6455 over HTTP/1.1, so the balancer opens that
// handshake itself (with a key of its own, whose accept it checks) and joins the h2 stream to the
// upgraded socket. http-proxy's tunnel writes HTTP/1.1 bytes to the client, so it cannot do this.

const WEBSOCKET_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
// Fields of the h2 request (pseudo-headers already gone: see http2.ts) that have no place in an
// HTTP/1.1 handshake, or that the balancer sets.
const NOT_FORWARDED = new Set(['upgrade', 'connection', 'sec-websocket-key', 'content-length', 'te']);

/** Whether an (adapted) HTTP/2 request is an RFC 8441 WebSocket CONNECT. */
export function isHttp2WebSocket(req: IncomingMessage): boolean {
  return req.method === 'CONNECT' && req.headers.upgrade?.toLowerCase() === 'websocket';
}

/** TLS and agent-free connection options for the upstream handshake. */
export interface TunnelOptions {
  tls: https.RequestOptions;
  changeOrigin: boolean;
}

/** Opens the upstream WebSocket handshake for an h2 extended CONNECT and joins the two once it is accepted. */
export function tunnelHttp2WebSocket(exchange: Exchange, target: Target, res: ServerResponse, options: TunnelOptions): void {
  const req = exchange.req;
  // An HTTP/2 target has no HTTP/1.1 WebSocket endpoint to join (README "HTTP/2 upstreams").
  if (target.http2) {
    if (logProxy.enabled) logProxy('502 for WebSocket %s: %s speaks HTTP/2', req.url, target.key);
    respondError(res, 502);
    return;
  }
  const url = target.url;
  const secure = url.protocol === 'https:';
  const key = randomBytes(16).toString('base64');
  const headers: http.OutgoingHttpHeaders = {};
  for (const name in req.headers) {
    if (!NOT_FORWARDED.has(name)) headers[name] = req.headers[name];
  }
  if (options.changeOrigin) headers.host = url.host;
  headers.connection = 'Upgrade';
  headers.upgrade = 'websocket';
  headers['sec-websocket-key'] = key;
  headers['sec-websocket-version'] ??= '13';
  const base = url.pathname === '/' ? '' : url.pathname;
  const upstream = (secure ? https : http).request({
    ...LOOPBACK_CONNECT,
    ...(secure ? options.tls : {}),
    agent: false,
    host: url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname,
    port: url.port === '' ? (secure ? 443 : 80) : Number(url.port),
    method: 'GET',
    path: `${base}${req.url ?? '/'}`,
    headers,
  });
  exchange.proxyReq = upstream;
  upstream.on('upgrade', (upgraded: IncomingMessage, socket: Socket, head: Buffer) => {
    const expected = createHash('sha1')
      .update(key + WEBSOCKET_GUID)
      .digest('base64');
    if (upgraded.headers['sec-websocket-accept'] !== expected) {
      socket.destroy();
      fail(exchange, res, 'upstream WebSocket accept does not match');
      return;
    }
    exchange.responded(101);
    exchange.tunnel = socket;
    join(req, res, socket, head, upgraded);
  });
  upstream.on('response', (refused: IncomingMessage) => {
    // The target turned the handshake down (401, 403, 404...): the client gets that answer.
    exchange.responded(refused.statusCode ?? 502);
    refused.on('error', ignore);
    const relayed: http.OutgoingHttpHeaders = {};
    for (const name of ['content-type', 'content-length', 'www-authenticate', 'retry-after'] as const) {
      if (refused.headers[name] !== undefined) relayed[name] = refused.headers[name];
    }
    res.writeHead(refused.statusCode ?? 502, relayed);
    refused.pipe(res);
  });
  upstream.on('error', (err) => fail(exchange, res, describeConnectError(err).message));
  upstream.end();
}

function join(req: IncomingMessage, res: ServerResponse, socket: Socket, head: Buffer, upgraded: IncomingMessage): void {
  const accepted: http.OutgoingHttpHeaders = {};
  for (const name of ['sec-websocket-protocol', 'sec-websocket-extensions'] as const) {
    if (upgraded.headers[name] !== undefined) accepted[name] = upgraded.headers[name];
  }
  socket.on('error', ignore);
  socket.setTimeout(0);
  socket.setNoDelay(true);
  res.writeHead(200, accepted);
  if (head.length > 0) res.write(head);
  socket.pipe(res);
  req.pipe(socket);
  // Either side gone ends the other: a tunnel has no half-open state worth keeping.
  socket.on('close', () => res.destroy());
  res.on('close', () => socket.destroy());
}

function fail(exchange: Exchange, res: ServerResponse, why: string): void {
  if (!exchange.failed(new Error(why))) return;
  exchange.target.errors++;
  exchange.owner.failedOn(exchange.target, why);
  if (logProxy.enabled) logProxy('502 for h2 WebSocket %s via %s: %s', exchange.req.url, exchange.target.key, why);
  respondError(res, 502);
}

function ignore(): void {}
