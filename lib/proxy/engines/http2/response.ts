import type { ClientHttp2Stream, IncomingHttpHeaders } from 'node:http2';

/**
 * An upstream stream as the response `UpstreamEvents` relays: the stream itself (its body is the
 * readable side, with HTTP/2 flow control as backpressure) given the fields of an `IncomingMessage`
 * it reads. No wrapper stream per request.
 */
export type UpstreamResponse = ClientHttp2Stream & {
  statusCode: number;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
  rawTrailers: string[];
  /** The body ended with END_STREAM: set on 'end', before 'close'. */
  complete: boolean;
  /** The response HEADERS frame itself ended the stream: no body, no trailers (gRPC's trailers-only answer). */
  headEnded: boolean;
  httpVersion: string;
  httpVersionMajor: number;
};

const EMPTY: string[] = [];

/** Gives `stream` the response fields for its response HEADERS (pseudo-headers left out of `headers`/`rawHeaders`). */
export function asUpstreamResponse(stream: ClientHttp2Stream, received: IncomingHttpHeaders, headEnded: boolean): UpstreamResponse {
  const response = stream as UpstreamResponse;
  response.headEnded = headEnded;
  response.statusCode = Number(received[':status']);
  const headers: IncomingHttpHeaders = {};
  for (const name in received) {
    if (name.charCodeAt(0) !== 0x3a /* : */) headers[name] = received[name] as never;
  }
  response.headers = headers;
  response.rawHeaders = flatHeaders(headers);
  response.rawTrailers ??= EMPTY;
  response.complete = false;
  response.httpVersion = '2.0';
  response.httpVersionMajor = 2;
  return response;
}

/** A header object as the flat name/value list of `rawHeaders`, pseudo-headers left out. */
export function flatHeaders(headers: IncomingHttpHeaders): string[] {
  const raw: string[] = [];
  for (const name in headers) {
    if (name.charCodeAt(0) === 0x3a) continue;
    const value = headers[name];
    if (Array.isArray(value)) for (const item of value) raw.push(name, item);
    else if (value !== undefined) raw.push(name, String(value));
  }
  return raw;
}
