import type { IncomingMessage } from 'node:http';
import { fail, finiteNumber, integer, LOAD_BALANCE_OPTIONS, milliseconds, nestedObject } from '../../validate.js';

/**
 * One mirror policy: a sampled copy of each request to a shadow target, fire and forget (Envoy's
 * `request_mirror_policies` entry, NGINX's `mirror`). The copy's answer is read and discarded; its
 * failures reach neither the client nor the targets' health.
 */
export interface MirrorOptions {
  /** Where copies go: an `http:`/`https:` URL, or several taking turns (round robin, like the hosts of an Envoy cluster); required. A URL's path is prepended as a target's is. */
  target: string | URL | readonly (string | URL)[];
  /** Share of requests copied, from 0 to 1; default 1 (every request, as Envoy without `runtime_fraction` and NGINX's `mirror`). */
  fraction?: number;
  /** Copies only requests it returns true for (asked before sampling); default every request. A filter that throws copies nothing and warns. */
  filter?: (req: IncomingMessage) => boolean;
  /** Largest request body copied, bytes; default 1048576 (1 MiB, NGINX's `client_max_body_size`). A request declaring more is skipped; a chunked body growing past it aborts its copy. */
  maxBodyBytes?: number;
  /** Longest a copy may take from its dispatch to the end of its answer, ms; default 5000; then it is aborted and counted failed. */
  timeout?: number;
  /** Copies of this policy in flight at once; default 64; a request past it is not copied (counted `skipped`). With `maxBodyBytes`, bounds the memory copies hold. */
  maxInFlight?: number;
  /** Send the request's `Host` unchanged instead of suffixed `-shadow` (`api.example.com:8080` → `api.example.com-shadow:8080`, Envoy's default); default false. */
  keepHost?: boolean;
}

/** `loadBalance({ mirror })`: one policy, several, or a URL alone (every request copied there). */
export type MirrorOption = string | URL | MirrorOptions | readonly MirrorOptions[];

/** A policy after validation and defaults. */
export interface MirrorPolicySpec {
  urls: readonly URL[];
  fraction: number;
  filter: ((req: IncomingMessage) => boolean) | undefined;
  maxBodyBytes: number;
  timeout: number;
  maxInFlight: number;
  keepHost: boolean;
}

const KNOWN: readonly string[] = ['target', 'fraction', 'filter', 'maxBodyBytes', 'timeout', 'maxInFlight', 'keepHost'];

/** Checks `mirror`; a TypeError names the option (`mirror[1].fraction`). Undefined when mirroring is off. */
export function resolveMirror(input: unknown): readonly MirrorPolicySpec[] | undefined {
  if (input === undefined || input === false) return undefined;
  if (Array.isArray(input)) {
    if (input.length === 0) return undefined;
    return input.map((policy, i) => resolvePolicy(policy, `mirror[${i}]`));
  }
  if (typeof input === 'string' || input instanceof URL) return [resolvePolicy({ target: input }, 'mirror')];
  return [resolvePolicy(input, 'mirror')];
}

function resolvePolicy(input: unknown, path: string): MirrorPolicySpec {
  const o = nestedObject(input, path, KNOWN, { expected: 'a URL, a mirror policy object or an array of them' }) ?? fail(path, 'a mirror policy object', input);
  if (o.target === undefined) fail(`${path}.target`, 'an http: or https: URL or an array of them (required)', o.target);
  const filter = o.filter;
  if (filter !== undefined && typeof filter !== 'function') fail(`${path}.filter`, 'a function (req) => boolean', filter);
  const keepHost = o.keepHost ?? false;
  if (typeof keepHost !== 'boolean') fail(`${path}.keepHost`, 'a boolean', keepHost);
  return {
    urls: mirrorUrls(o.target, `${path}.target`),
    fraction: o.fraction === undefined ? 1 : finiteNumber(LOAD_BALANCE_OPTIONS, `${path}.fraction`, o.fraction, { max: 1 }),
    filter: filter as MirrorPolicySpec['filter'],
    maxBodyBytes: o.maxBodyBytes === undefined ? 1024 * 1024 : integer(LOAD_BALANCE_OPTIONS, `${path}.maxBodyBytes`, o.maxBodyBytes, { unit: 'bytes' }),
    timeout: o.timeout === undefined ? 5000 : milliseconds(LOAD_BALANCE_OPTIONS, `${path}.timeout`, o.timeout, { positive: true }),
    maxInFlight: o.maxInFlight === undefined ? 64 : integer(LOAD_BALANCE_OPTIONS, `${path}.maxInFlight`, o.maxInFlight, { min: 1, unit: 'copies' }),
    keepHost,
  };
}

function mirrorUrls(input: unknown, path: string): URL[] {
  const list = Array.isArray(input) ? input : [input];
  if (list.length === 0) fail(path, 'an http: or https: URL or a non-empty array of them', input);
  return list.map((item, i) => {
    const where = Array.isArray(input) ? `${path}[${i}]` : path;
    let url: URL | undefined;
    try {
      url = typeof item === 'string' ? new URL(item) : item instanceof URL ? new URL(item.href) : undefined;
    } catch {
      url = undefined;
    }
    if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.search !== '' || url.hash !== '') {
      fail(where, 'an http: or https: URL without query or fragment', item);
    }
    return url;
  });
}
