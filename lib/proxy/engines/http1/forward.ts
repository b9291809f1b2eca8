import http, { type ClientRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import { mayHaveBody } from '../../../protect/reject.js';
import type { Target } from '../../../target.js';
import { UpstreamTimeoutError } from '../../errors.js';
import type { EngineEvents } from '../engine.js';

/** Where one target's upstream requests go, worked out once per target. */
export interface Upstream {
  readonly secure: boolean;
  readonly hostname: string;
  readonly port: number;
  readonly agent: http.Agent;
  /** The target URL's path, without a trailing slash ('' for none): prefixed to every request path. */
  readonly path: string;
  /** The `Host` sent with `changeOrigin`, else undefined (the client's Host is forwarded). */
  readonly host: string | undefined;
  /** Whether the TLS certificate of an `https:` target is checked. */
  readonly rejectUnauthorized: boolean;
  /** Milliseconds the upstream connection may stay silent, connecting included; undefined for no limit. */
  readonly timeout: number | undefined;
}

type PassOptions = { buffer?: Readable };
type Pass = (req: IncomingMessage, res: ServerResponse, options: PassOptions) => void;

// The client request and response of an upstream request, for the listeners below: one shared
// function per event reads them off the upstream request instead of a closure per request.
interface Forwarded extends ClientRequest {
  _proxyBalancerReq?: IncomingMessage;
  _proxyBalancerRes?: ServerResponse;
}

/**
 * The web pass that builds, sends and pipes the upstream request, in place of http-proxy's `stream`.
 * That pass ran per request: url.parse-style option copying (`setupOutgoing`), a path join that
 * collapses `//` and rewrites `http:/` inside paths, five closures and listeners on the client
 * request that outlive a retried attempt (`aborted`, `error`), a `setTimeout` per request, and a
 * `pipe` even for a request without a body. Here one request options object per request, the
 * balancer's events called directly, two shared listeners, and no pipe when there is no body.
 */
export function forwardPass(upstream: Upstream, target: Target, events: EngineEvents): Pass {
  const send = upstream.secure ? https.request : http.request;
  function onResponse(this: Forwarded, proxyRes: IncomingMessage): void {
    events.response(proxyRes, this._proxyBalancerReq!, this._proxyBalancerRes!);
  }
  function onUpstreamError(this: Forwarded, err: Error): void {
    events.error(err, this._proxyBalancerReq!, this._proxyBalancerRes!, target);
  }
  return function forward(req: IncomingMessage, res: ServerResponse, options: PassOptions): void {
    const proxyReq: Forwarded = send({
      hostname: upstream.hostname,
      port: upstream.port,
      agent: upstream.agent,
      method: req.method,
      path: upstream.path === '' ? req.url : upstream.path + req.url,
      headers: req.headers,
      rejectUnauthorized: upstream.rejectUnauthorized,
      timeout: upstream.timeout,
    });
    if (upstream.host !== undefined) proxyReq.setHeader('host', upstream.host);
    proxyReq._proxyBalancerReq = req;
    proxyReq._proxyBalancerRes = res;
    proxyReq.on('error', onUpstreamError);
    proxyReq.on('response', onResponse);
    if (upstream.timeout !== undefined) proxyReq.on('timeout', onUpstreamIdle);
    events.request(proxyReq, req, res);
    // The balancer dropped it at once (the exchange ended or its per-try time ran out meanwhile).
    if (proxyReq.destroyed) return;
    const body = options.buffer;
    if (body === undefined && !mayHaveBody(req)) {
      proxyReq.end();
      return;
    }
    if (req.httpVersionMajor === 2) cutOnAbort(req as AbortWatched, proxyReq);
    (body ?? req).pipe(proxyReq);
  };
}

type AbortWatched = IncomingMessage & { _proxyBalancerUpstream?: ClientRequest };

/**
 * Node ends an HTTP/2 request's body when its stream closes, reset or not: piped as it is, a body
 * the client cut with RST_STREAM would reach the target complete (its last chunk written). The
 * compat request says 'aborted' first, which cuts the current attempt's upstream request instead.
 */
function cutOnAbort(req: AbortWatched, proxyReq: ClientRequest): void {
  if (req._proxyBalancerUpstream === undefined) req.once('aborted', onClientAborted);
  req._proxyBalancerUpstream = proxyReq;
}

function onClientAborted(this: AbortWatched): void {
  this._proxyBalancerUpstream?.destroy();
}

function onUpstreamIdle(this: ClientRequest): void {
  this.destroy(new UpstreamTimeoutError('upstream idle timeout'));
}
