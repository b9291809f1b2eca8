import type { Server } from 'node:http';
import { fail, milliseconds, optionsObject } from '../validate.js';

/** Timeouts against slow clients for `serverTimeouts()`; every value in ms. */
export interface ServerTimeoutOptions {
  /** Time a client has to send the complete request head (slowloris on headers): 408; default 10000. */
  headersTimeout?: number;
  /** Time a client has to send the whole request, head and body (slowloris on bodies): 408; default 30000. At least `headersTimeout`. */
  requestTimeout?: number;
  /** Time an idle keep-alive connection is kept waiting for the next request; default 5000. Keep it above the idle timeout of any load balancer in front. */
  keepAliveTimeout?: number;
  /** How often Node checks connections against `headersTimeout`/`requestTimeout`; default 1000 (Node's own is 30000, letting a slow client hold on up to 30 s longer). Only applied before the server starts listening. */
  checkInterval?: number;
}

const DEFAULTS = { headersTimeout: 10_000, requestTimeout: 30_000, keepAliveTimeout: 5_000, checkInterval: 1_000 };

/**
 * Sets timeouts against slow clients on your `http`/`https` server and returns it:
 * `serverTimeouts(http.createServer(app)).listen(8080)`. Node's own defaults (60 s for the head,
 * 300 s for the whole request, checked every 30 s) let a slowloris client hold a connection for
 * minutes. Call it before `listen()` for `checkInterval` to apply; the other values apply at any time.
 */
export function serverTimeouts<S extends Server>(server: S, options: ServerTimeoutOptions = {}): S {
  if (typeof server !== 'object' || server === null || typeof (server as Server).listen !== 'function' || !('headersTimeout' in server)) {
    throw new TypeError('serverTimeouts: server must be an http.Server or https.Server');
  }
  optionsObject(options, 'serverTimeouts', Object.keys(DEFAULTS));
  const values = { ...DEFAULTS };
  for (const name of Object.keys(DEFAULTS) as Array<keyof typeof DEFAULTS>) {
    const value = options[name];
    if (value === undefined) continue;
    values[name] = milliseconds('serverTimeouts: options', name, value, { integer: true, positive: name === 'checkInterval' });
  }
  if (values.requestTimeout !== 0 && values.headersTimeout > values.requestTimeout) {
    fail('requestTimeout', `at least headersTimeout (${values.headersTimeout})`, values.requestTimeout, 'serverTimeouts');
  }
  server.headersTimeout = values.headersTimeout;
  server.requestTimeout = values.requestTimeout;
  server.keepAliveTimeout = values.keepAliveTimeout;
  // Node reads it when the server starts listening; later changes are not picked up.
  (server as unknown as { connectionsCheckingInterval: number }).connectionsCheckingInterval = values.checkInterval;
  return server;
}
