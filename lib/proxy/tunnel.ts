import type { ClientRequest, IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { attach, exchangeOf } from './exchange.js';

// The life of a WebSocket tunnel, told through events on its sockets. Shared functions reading the
// exchange off `this`, so a tunnel costs no closures.

/** Follows the upstream handshake of a tunnel whose exchange is attached to `proxyReq`. */
export function watchHandshake(proxyReq: ClientRequest): void {
  proxyReq.once('upgrade', onTunnelOpen);
  proxyReq.once('response', onTunnelRefused);
}

/** Ends the tunnel's exchange when the client socket closes. */
export function watchClientSocket(socket: Duplex): void {
  socket.on('close', onTunnelClose);
}

/** The handshake failed before the 101: the client still speaks HTTP and deserves a status line. */
export function refuseHandshake(socket: Duplex, status: 502 | 503 | 504, retryAfter?: number): void {
  if (!socket.writable) return;
  const reason = status === 502 ? 'Bad Gateway' : status === 503 ? 'Service Unavailable' : 'Gateway Timeout';
  const retry = retryAfter === undefined ? '' : `Retry-After: ${retryAfter}\r\n`;
  socket.end(`HTTP/1.1 ${status} ${reason}\r\n${retry}Content-Length: 0\r\nConnection: close\r\n\r\n`);
}

function onTunnelOpen(this: ClientRequest, _proxyRes: IncomingMessage, proxySocket: Socket): void {
  const exchange = exchangeOf(this);
  if (exchange === undefined) return;
  exchange.responded(101);
  exchange.tunnel = proxySocket;
  // The tunnel lives as long as its peers want; the connect/handshake timeout no longer applies.
  proxySocket.setTimeout(0);
  attach(proxySocket, exchange);
  proxySocket.on('close', onTunnelUpstreamClose);
}

function onTunnelRefused(this: ClientRequest, proxyRes: IncomingMessage): void {
  exchangeOf(this)?.responded(proxyRes.statusCode ?? 0);
}

function onTunnelUpstreamClose(this: Socket): void {
  // Let what the upstream sent last reach the client, then close.
  (exchangeOf(this)?.client as Socket | undefined)?.destroySoon();
}

function onTunnelClose(this: Duplex): void {
  const exchange = exchangeOf(this);
  if (exchange === undefined) return;
  if (exchange.tunnel !== undefined) exchange.tunnel.destroy();
  else exchange.proxyReq?.destroy();
  exchange.owner.finish(exchange);
}
