import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { clampDelay } from '../timer.js';

/**
 * Closes a WebSocket tunnel that stays silent for `ms`. The client socket carries both directions
 * (what the client sends is read from it, what the upstream sends is written to it), and a socket
 * timeout is reset by reads and writes alike, so one timer on it watches the whole tunnel.
 */
export function watchTunnelIdle(socket: Duplex, ms: number): void {
  const timed = socket as Partial<Socket>;
  if (typeof timed.setTimeout !== 'function') return;
  timed.setTimeout(clampDelay(ms));
  socket.on('timeout', onTunnelIdle);
}

function onTunnelIdle(this: Duplex): void {
  // Closing the client side ends the exchange, which closes the upstream side too.
  this.destroy();
}
