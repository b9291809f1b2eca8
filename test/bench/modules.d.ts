// Typings for the benchmark's untyped devDependencies: only the parts the bench uses.

declare module 'autocannon' {
  import type { EventEmitter } from 'node:events';

  namespace autocannon {
    interface Options {
      url: string;
      connections?: number;
      /** Seconds. */
      duration?: number;
      pipelining?: number;
      method?: string;
      /** Seconds before a request counts as timed out. */
      timeout?: number;
      /** Milliseconds between samples; the run also stops on a sample tick. */
      sampleInt?: number;
      /** Replace `[<id>]` in the URL and body with a new id in every request. */
      idReplacement?: boolean;
      /** Requests each connection sends in turn, over and over; `setupRequest` may change each one as it is sent. */
      requests?: { method?: string; path?: string; setupRequest?: (request: { path: string }, context: object) => { path: string } }[];
    }
    interface Stats {
      average: number;
      mean: number;
      stddev: number;
      min: number;
      max: number;
      total: number;
      p50: number;
      p99: number;
    }
    interface Result {
      requests: Stats;
      latency: Stats;
      throughput: Stats;
      errors: number;
      timeouts: number;
      non2xx: number;
      resets: number;
      '2xx': number;
      /** Seconds actually run. */
      duration: number;
    }
    interface Instance extends EventEmitter, PromiseLike<Result> {
      on(event: 'response', listener: (client: unknown, statusCode: number, resBytes: number, responseTime: number) => void): this;
      on(event: string, listener: (...args: any[]) => void): this;
    }
  }
  function autocannon(options: autocannon.Options): autocannon.Instance;
  export default autocannon;
}

declare module 'express-http-proxy' {
  import type { RequestHandler } from 'express';
  function proxy(host: string | (() => string), options?: { memoizeHost?: boolean }): RequestHandler;
  export default proxy;
}
