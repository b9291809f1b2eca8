import { promises as dns, type RecordWithTtl, type SrvRecord } from 'node:dns';
import { isIP } from 'node:net';
import { clampDelay } from '../timer.js';
import { invalidOption, milliseconds, markFactory, optionsObject } from '../validate.js';
import type { TargetOptions } from '../pool.js';
import type { Discovery, DiscoveryListener } from './discovery.js';

/** Options of `dnsTargets()`. */
export interface DnsTargetsOptions {
  /** Longest time between two resolutions, ms; records with a shorter TTL are resolved again when it runs out; default 5000. */
  interval?: number;
  /** Shortest time between two resolutions, ms, whatever the TTLs say (Consul DNS answers with TTL 0); also the first wait after a failure, doubling up to `interval`; default 1000. */
  minInterval?: number;
  /** Which addresses: 4 (A records), 6 (AAAA) or 0 (both); default 0. */
  family?: 0 | 4 | 6;
  /** DNS servers to ask instead of the system's, as for `Resolver#setServers`: `'10.0.0.2'`, `'10.0.0.2:5353'`, `'[::1]:53'`; default the system's. */
  servers?: readonly string[];
  /** Ms a query waits for an answer before it is sent again; default 2000. */
  timeout?: number;
  /** Times a query is sent before the round fails; default 2. */
  tries?: number;
  /** Weight of each address found through A/AAAA records; default 1. SRV records give their own. */
  weight?: number;
  /** The name in stats, metrics and logs; default the URL given. */
  name?: string;
}

/** A resolver's failure codes that mean "this name has no such records", not "DNS is failing". */
const NO_RECORDS: ReadonlySet<string> = new Set([dns.NOTFOUND, dns.NODATA]);

/** A weight for SRV weight 0 next to positive ones: RFC 2782 gives such records "a very small chance". */
const SRV_ZERO_WEIGHT = 0.01;

/** What one resolution round found. */
interface Round {
  targets: TargetOptions[];
  /** Shortest TTL among the records, seconds; undefined when the records carry none. */
  ttl: number | undefined;
}

const PREFIX = 'dnsTargets: options';

function duration(options: Record<string, unknown>, name: string, fallback: number, integer = false): number {
  return milliseconds(PREFIX, name, options[name] ?? fallback, { positive: true, integer });
}

/**
 * Targets from DNS, for `loadBalance({ targets: dnsTargets(...) })`: one target per address the name
 * resolves to, kept in step as records change (NGINX `server … resolve`, HAProxy `server-template`,
 * Envoy `STRICT_DNS`). This is how Kubernetes headless services and Consul DNS are consumed.
 *
 * - `dnsTargets('http://api.internal:8080/base')`: A and AAAA records of `api.internal`; each
 *   address becomes `http://<address>:8080/base`, serving under the name `api.internal`.
 * - `dnsTargets('srv+http://_api._tcp.internal')` (or `srv+https:`): SRV records; each record's
 *   target name is resolved to addresses, which take the record's port and weight. Only the
 *   records of the lowest priority are used.
 *
 * The name is resolved again before the shortest record TTL runs out, at least every `interval` and
 * at most every `minInterval`. A failed round (timeout, SERVFAIL, no records) keeps the last set.
 * Throws a TypeError naming any invalid option.
 */
export function dnsTargets(url: string, options: DnsTargetsOptions = {}): Discovery {
  return new DnsDiscovery(url, options);
}

markFactory(dnsTargets, "dnsTargets('http://…')");

class DnsDiscovery implements Discovery {
  readonly name: string;
  readonly #srv: boolean;
  /** `http:` or `https:`. */
  readonly #protocol: string;
  readonly #hostname: string;
  /** Port of A/AAAA targets ('' for the scheme's default). */
  readonly #port: string;
  /** Path prefix of every target, '' for none. */
  readonly #path: string;
  readonly #interval: number;
  readonly #minInterval: number;
  readonly #family: 0 | 4 | 6;
  readonly #weight: number;
  readonly #resolver: dns.Resolver;
  #listener: DiscoveryListener | undefined;
  #timer: NodeJS.Timeout | undefined;
  #failures = 0;
  #stopped = false;

  constructor(input: string, options: DnsTargetsOptions) {
    const record = optionsObject(options, 'dnsTargets', OPTIONS);
    let url: URL;
    try {
      url = new URL(input);
    } catch {
      throw new TypeError(`dnsTargets: url must be a URL like 'http://api.internal:8080' or 'srv+http://_api._tcp.internal', got ${JSON.stringify(input)}`);
    }
    const scheme = url.protocol.replace(/^srv\+/, '');
    this.#srv = scheme !== url.protocol;
    if (scheme !== 'http:' && scheme !== 'https:') throw new TypeError(`dnsTargets: url must use http:, https:, srv+http: or srv+https:, got ${url.protocol}`);
    if (url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
      throw new TypeError('dnsTargets: url must not carry a query, fragment or credentials');
    }
    if (this.#srv && url.port !== '') throw new TypeError('dnsTargets: an srv+ url takes its ports from the SRV records, so it must not carry one');
    const hostname = url.hostname.replace(/\.$/, '').toLowerCase();
    if (hostname === '' || isIP(hostname.replace(/^\[|\]$/g, '')) !== 0)
      throw new TypeError(`dnsTargets: url must name a host to resolve, got ${JSON.stringify(input)}`);
    this.#protocol = scheme;
    this.#hostname = hostname;
    this.#port = url.port;
    this.#path = url.pathname === '/' || url.pathname === '' ? '' : url.pathname;

    this.#interval = duration(record, 'interval', 5000);
    this.#minInterval = duration(record, 'minInterval', 1000);
    if (this.#minInterval > this.#interval) invalidOption(PREFIX, 'minInterval', `at most options.interval (${this.#interval})`, this.#minInterval);
    const family = options.family ?? 0;
    if (family !== 0 && family !== 4 && family !== 6) invalidOption(PREFIX, 'family', '0, 4 or 6', family);
    this.#family = family;
    const weight = options.weight ?? 1;
    if (typeof weight !== 'number' || !Number.isFinite(weight) || weight <= 0) invalidOption(PREFIX, 'weight', 'a positive finite number', weight);
    this.#weight = weight;
    const tries = options.tries ?? 2;
    if (typeof tries !== 'number' || !Number.isInteger(tries) || tries < 1) invalidOption(PREFIX, 'tries', 'a positive integer', tries);
    const name = options.name ?? (input.endsWith('/') ? input.slice(0, -1) : input);
    if (typeof name !== 'string' || name === '') invalidOption(PREFIX, 'name', 'a non-empty string', name);
    this.name = name;
    // The resolver takes whole milliseconds only (a fraction throws a RangeError naming no option).
    this.#resolver = new dns.Resolver({ timeout: duration(record, 'timeout', 2000, true), tries });
    const servers = options.servers;
    if (servers !== undefined) {
      if (!Array.isArray(servers) || servers.length === 0 || !servers.every((s) => typeof s === 'string')) {
        invalidOption(PREFIX, 'servers', 'a non-empty array of addresses', servers);
      }
      try {
        this.#resolver.setServers(servers);
      } catch {
        invalidOption(PREFIX, 'servers', "an array of IP addresses with optional ports ('10.0.0.2', '10.0.0.2:5353', '[::1]:53')", servers);
      }
    }
  }

  start(listener: DiscoveryListener): void {
    if (this.#listener !== undefined) throw new Error(`dnsTargets: ${this.name} is already started; give each balancer its own dnsTargets()`);
    this.#listener = listener;
    void this.#round();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#resolver.cancel();
  }

  readonly #next = (): void => void this.#round();

  async #round(): Promise<void> {
    let delay: number;
    try {
      const found = this.#srv ? await this.#resolveSrv() : await this.#resolveAddresses(this.#hostname, this.#port, this.#weight);
      if (this.#stopped) return;
      if (found.targets.length === 0) throw Object.assign(new Error(`${this.#hostname} has no ${this.#srv ? 'SRV' : 'address'} records`), { code: dns.NODATA });
      this.#failures = 0;
      this.#listener!.update(found.targets);
      const ttl = found.ttl === undefined ? this.#interval : found.ttl * 1000;
      delay = Math.min(this.#interval, Math.max(this.#minInterval, ttl));
    } catch (err) {
      if (this.#stopped) return;
      this.#failures++;
      const error = err as NodeJS.ErrnoException;
      this.#listener!.error(new Error(`${this.#srv ? 'SRV' : 'address'} lookup of ${this.#hostname} failed: ${error.code ?? error.message}`));
      delay = Math.min(this.#interval, this.#minInterval * 2 ** (this.#failures - 1));
    }
    this.#timer = setTimeout(this.#next, clampDelay(delay)).unref();
  }

  /** A and/or AAAA records of `hostname` as targets. No records of one family is fine when the other has some. */
  async #resolveAddresses(hostname: string, port: string, weight: number): Promise<Round> {
    const lookups: Array<Promise<RecordWithTtl[]>> = [];
    if (this.#family !== 6) lookups.push(this.#resolver.resolve4(hostname, { ttl: true }));
    if (this.#family !== 4) lookups.push(this.#resolver.resolve6(hostname, { ttl: true }));
    const results = await Promise.allSettled(lookups);
    const targets: TargetOptions[] = [];
    let ttl: number | undefined;
    let missing: unknown;
    for (const result of results) {
      if (result.status === 'rejected') {
        // A failing family fails the round: half an answer would drain healthy targets.
        if (!NO_RECORDS.has((result.reason as NodeJS.ErrnoException)?.code ?? '')) throw result.reason;
        missing = result.reason;
        continue;
      }
      for (const { address, ttl: seconds } of result.value) {
        ttl = ttl === undefined ? seconds : Math.min(ttl, seconds);
        const host = address.includes(':') ? `[${address}]` : address;
        targets.push({ url: `${this.#protocol}//${host}${port === '' ? '' : `:${port}`}${this.#path}`, weight, hostname });
      }
    }
    if (targets.length === 0 && missing !== undefined) throw missing;
    return { targets, ttl };
  }

  /** SRV records of the lowest priority, each target name resolved to addresses. */
  async #resolveSrv(): Promise<Round> {
    const records = await this.#resolver.resolveSrv(this.#hostname);
    // RFC 2782: a target of "." means the service is decidedly not available here.
    const usable = records.filter((r) => r.name !== '' && r.name !== '.');
    if (usable.length === 0) return { targets: [], ttl: undefined };
    const priority = Math.min(...usable.map((r) => r.priority));
    const chosen = usable.filter((r) => r.priority === priority);
    const allZero = chosen.every((r) => r.weight === 0);
    const rounds = await Promise.all(chosen.map((r) => this.#resolveTarget(r, allZero)));
    const targets: TargetOptions[] = [];
    let ttl: number | undefined;
    for (const round of rounds) {
      targets.push(...round.targets);
      if (round.ttl !== undefined) ttl = ttl === undefined ? round.ttl : Math.min(ttl, round.ttl);
    }
    return { targets, ttl };
  }

  /** One SRV record's addresses; a target name without addresses drops that record only. */
  async #resolveTarget(record: SrvRecord, allZero: boolean): Promise<Round> {
    const weight = record.weight > 0 ? record.weight : allZero ? 1 : SRV_ZERO_WEIGHT;
    try {
      return await this.#resolveAddresses(record.name.replace(/\.$/, '').toLowerCase(), String(record.port), weight);
    } catch (err) {
      if (NO_RECORDS.has((err as NodeJS.ErrnoException)?.code ?? '')) return { targets: [], ttl: undefined };
      throw err;
    }
  }
}

const OPTIONS: readonly string[] = ['interval', 'minInterval', 'family', 'servers', 'timeout', 'tries', 'weight', 'name'];
