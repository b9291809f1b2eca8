import type { IncomingMessage } from 'node:http';
import { logProtect } from './log.js';
import type { Rejection } from './reject.js';

/** How a request filter refuses a request: a 4xx/5xx status, an optional plain-text message and headers. */
export interface FilterRejection {
  /** Integer from 400 to 599. */
  status: number;
  /** Plain-text body; default the status text. */
  message?: string;
  /** Extra response headers (e.g. `WWW-Authenticate`). */
  headers?: Record<string, string>;
}

/** `undefined`/`true`: let the request through; `false`: 403; an object: that refusal. */
// biome-ignore lint/suspicious/noConfusingVoidType: a filter that returns nothing (void) lets the request through
export type FilterVerdict = FilterRejection | boolean | undefined | void;

/**
 * The app's own admission check, run after the built-in ones and before any backend is touched.
 * May be async; a filter that throws or rejects gets the client a 500.
 */
export type RequestFilter = (req: IncomingMessage) => FilterVerdict | Promise<FilterVerdict>;

export const FILTER_FORBIDDEN: Rejection = Object.freeze({ status: 403 });
export const FILTER_FAILED: Rejection = Object.freeze({ status: 500 });

/** Turns what a filter returned into a refusal, or undefined to let the request through. */
export function filterRejection(verdict: FilterVerdict): Rejection | undefined {
  if (verdict === undefined || verdict === true) return undefined;
  if (verdict === false) return FILTER_FORBIDDEN;
  if (typeof verdict === 'object' && verdict !== null) {
    const { status, message, headers } = verdict;
    if (
      typeof status === 'number' &&
      Number.isInteger(status) &&
      status >= 400 &&
      status <= 599 &&
      (message === undefined || typeof message === 'string') &&
      (headers === undefined || (typeof headers === 'object' && headers !== null))
    ) {
      return { status, message, headers };
    }
  }
  logProtect('500: the request filter returned %o, not true, false, undefined or { status: 400-599, message?, headers? }', verdict);
  return FILTER_FAILED;
}
