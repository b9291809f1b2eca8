import http2, { type ClientHttp2Stream, type IncomingHttpHeaders } from 'node:http2';
import type https from 'node:https';
import type { Readable } from 'node:stream';
import { describeConnectError } from '../proxy/connect-error.js';
import { connectAuthority, connectOptions } from '../proxy/engines/http2/connect.js';
import type { Target } from '../target.js';

/** What an HTTP/2 probe sends, and what judges its answer (the HTTP check's own status and body rules). */
export interface Http2Probe {
  method: 'GET' | 'HEAD';
  /** The checked URL (`healthCheckUrl`). */
  url: URL;
  headers: Record<string, string>;
  tls: https.RequestOptions;
  /** Judges the response; calls `finish` once with undefined (passed) or the reason it failed. */
  judge(status: number, body: Readable, finish: (error: Error | undefined) => void): void;
}

/**
 * An HTTP health check of an HTTP/2 target, spoken in HTTP/2 (an h2c or h2-only server would
 * not understand the HTTP/1.1 probe): one stream on a session of its own, closed however it ends.
 */
export function probeHttp2(target: Target, signal: AbortSignal, probe: Http2Probe): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(connectAuthority(target), connectOptions(target, probe.tls));
    let settled = false;
    const finish = (error: Error | undefined): void => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      session.destroy();
      if (error) reject(describeConnectError(error));
      else resolve(true);
    };
    const onAbort = (): void => finish(new Error('aborted'));
    signal.addEventListener('abort', onAbort);
    session.on('error', finish);
    session.on('close', () => finish(new Error('session closed')));
    if (target.url.protocol === 'https:') {
      session.once('connect', () => {
        if (session.alpnProtocol !== 'h2') finish(new Error('TLS peer did not negotiate h2'));
      });
    }
    const headers: Record<string, string> = {
      ':method': probe.method,
      ':scheme': target.url.protocol === 'https:' ? 'https' : 'http',
      ':authority': target.host,
      ':path': probe.url.pathname + probe.url.search,
    };
    for (const name in probe.headers) if (name !== 'connection') headers[name] = probe.headers[name]!;
    let stream: ClientHttp2Stream;
    try {
      stream = session.request(headers, { endStream: true });
    } catch (error) {
      finish(error as Error);
      return;
    }
    stream.on('error', finish);
    stream.on('response', (head: IncomingHttpHeaders) => probe.judge(Number(head[':status']), stream, finish));
    stream.on('close', () => finish(new Error('response aborted')));
  });
}
