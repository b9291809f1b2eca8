import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AffinityStats } from '../affinity/session-affinity.js';
import type { CheckResult } from '../health/checker.js';
import type { EjectionReason } from '../health/outlier-analysis.js';
import type { CacheStats } from '../cache/response-cache.js';
import type { MirrorStats } from '../proxy/mirror/policy.js';
import type { DiscoveryStats } from '../discovery/feed.js';
import type { HedgeStats } from '../proxy/hedge/hedging.js';
import type { StoreHealth } from '../store-guard.js';
import type { StrategyTargetStats } from '../strategies/strategy.js';
import type { TargetState } from '../target.js';
import type { TargetStats } from './stats.js';
import { fail, milliseconds, optionsObject } from '../validate.js';
import type { MetricsFeatures, MetricsSubject } from './metrics.js';
import type { Sampler } from './sampler.js';
import { STATUS_CSS, STATUS_JS } from './status-assets.js';
import { refusedMethod } from './read-only.js';
import type { ConcurrencyLimitStats } from '../protect/adaptive-concurrency.js';
import type { ProcessHealth } from '../protect/load-shedding.js';

/** Options of `lb.statusPage()`. */
export interface StatusPageOptions {
  /** Heading and window title; default `'proxy-balancer'`. */
  title?: string;
  /** How often the open page fetches fresh figures, ms; default 2000 (at least 250). */
  refreshMs?: number;
}

/**
 * What `lb.statusPage()` returns: middleware serving the dashboard at its mount path, its script
 * and stylesheet at `app.js` and `app.css` below it, and the figures as JSON at `?format=json`.
 */
export type StatusPageHandler = (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void) => void;

/** One target on the status page (and in its JSON). */
export interface TargetStatus {
  url: string;
  /** The host it serves under: its DNS name for a discovered target, else the URL's host. */
  host: string;
  /** What the balancer speaks to it (`http/1.1`, `h2c`, `h2`). */
  protocol: TargetStats['protocol'];
  state: TargetState;
  weight: number;
  effectiveWeight: number;
  inFlight: number;
  /** Attempts dispatched since the target joined. */
  total: number;
  /** Failed attempts since the target joined. */
  errors: number;
  /** Attempts per second over the last minute. */
  requestRate: number;
  /** Failed attempts over attempts in the last minute; null without attempts. */
  errorRate: number | null;
  /** Moving average of time to response head, ms. */
  latency: number;
  /** What the strategy balances the target by (peakEwma, leastRequest); null for strategies that say nothing. */
  balancing: StrategyTargetStats | null;
  /** `latency` sampled every second over the last minute, oldest first (the sparkline). */
  latencyHistory: number[];
  /** Passive ejections since the target joined; null with outlier detection off. */
  ejections: number | null;
  /** When the current ejection ends (ms since the epoch), if ejected. */
  ejectedUntil: number | null;
  /** Why the current ejection happened, if ejected. */
  ejectionReason: EjectionReason | null;
  /** Ejections since the target joined, by reason; null with outlier detection off. */
  ejectionsByReason: { [reason in EjectionReason]: number } | null;
  slowStart: boolean;
  /** A backup target: serves only while too few primaries are up. */
  backup: boolean;
  /** The latest active health check, if any ran. */
  lastCheck: CheckResult | null;
  /** Its adaptive concurrency limit, minRTT and sampleRTT; null with `adaptiveConcurrency` off. */
  concurrency: ConcurrencyLimitStats | null;
}

/** The figures behind the status page: what `?format=json` returns. */
export interface StatusSnapshot {
  title: string;
  /** When the figures were read, ms since the epoch. */
  generatedAt: number;
  refreshMs: number;
  strategy: string;
  panic: boolean;
  /** Backup targets serving: too few primaries up. */
  onBackups: boolean;
  targetsUp: number;
  /** Targets strategies pick from now (all but draining ones in panic mode). */
  ready: number;
  inFlight: number;
  retries: number;
  unavailable: number;
  /** Hedged requests: sent, won by the hedge, cancelled attempts, budget refusals, current delay (ms); null with hedging off. */
  hedging: HedgeStats | null;
  /** 429 answers of the rate limit; null without one. */
  rateLimited: number | null;
  /** Cache counters and the share of cacheable requests answered from the cache; null without a cache. */
  cache: (CacheStats & { hitRatio: number | null }) | null;
  /** Session affinity counters; null without `affinity`. */
  affinity: AffinityStats | null;
  /** Discovery sources (`dnsTargets()`...): last set, updates, failures; null without one. */
  discovery: DiscoveryStats[] | null;
  /** Shared stores (Redis) of the cache and rate limiter, with their circuits; null without one. */
  stores: StoreHealth[] | null;
  /** Per mirror policy: copies sent, completed, failed, skipped, in flight; null without `mirror`. */
  mirror: MirrorStats[] | null;
  /** 503 answers because every ready target was at its adaptive concurrency limit; null with `adaptiveConcurrency` off. */
  concurrencyRefused: number | null;
  /** Event-loop delay and utilization, heap, RSS and the requests shed; null with `loadShedding` off. */
  process: ProcessHealth | null;
  targets: TargetStatus[];
}

const OPTIONS: readonly string[] = ['title', 'refreshMs'];

export function validateStatusPageOptions(input: unknown): Required<StatusPageOptions> {
  const { title = 'proxy-balancer', refreshMs = 2000 } = optionsObject(input, 'lb.statusPage', OPTIONS) as StatusPageOptions;
  if (typeof title !== 'string') fail('title', 'a string', title, 'lb.statusPage');
  // The page's own setTimeout polls with it: browsers, like Node, fire at once past what a timer holds.
  return { title, refreshMs: milliseconds('lb.statusPage: options', 'refreshMs', refreshMs, { min: 250 }) };
}

/** Reads the balancer's figures for the page. */
export function snapshot(subject: MetricsSubject, sampler: Sampler, features: MetricsFeatures, options: Required<StatusPageOptions>): StatusSnapshot {
  const now = Date.now();
  const stats = subject.stats();
  const members = subject.pool.targets;
  const targets = members.map((target, i): TargetStatus => {
    const t = stats.targets[i]!;
    const recent = sampler.recent(target, now);
    return {
      url: target.key,
      host: target.host,
      protocol: t.protocol,
      state: target.state,
      weight: target.configuredWeight,
      effectiveWeight: Math.round(target.weight * 100) / 100,
      inFlight: target.inFlight,
      total: target.total,
      errors: target.errors,
      requestRate: recent.requestRate,
      errorRate: recent.errorRate,
      latency: t.latency,
      latencyHistory: recent.latencyHistory,
      balancing: t.balancing ?? null,
      ejections: features.outlierDetection ? (t.ejections ?? 0) : null,
      ejectedUntil: t.ejectedUntil ? t.ejectedUntil : null,
      ejectionReason: t.ejectionReason ?? null,
      ejectionsByReason: features.outlierDetection ? (t.ejectionsByReason ?? { consecutive: 0, successRate: 0, failurePercentage: 0, latency: 0 }) : null,
      slowStart: t.slowStart,
      backup: target.backup,
      lastCheck: t.lastCheck ?? null,
      concurrency: t.concurrency ?? null,
    };
  });
  const cache = stats.cache;
  let hitRatio: number | null = null;
  if (cache !== undefined) {
    const served = cache.hits + cache.stale + cache.revalidated;
    hitRatio = served + cache.misses > 0 ? served / (served + cache.misses) : null;
  }
  return {
    title: options.title,
    generatedAt: now,
    refreshMs: options.refreshMs,
    strategy: stats.strategy,
    panic: stats.panic,
    onBackups: stats.onBackups,
    targetsUp: targets.filter((t) => t.state === 'up').length,
    ready: stats.ready,
    inFlight: stats.inFlight,
    retries: stats.retries,
    unavailable: stats.unavailable,
    hedging: stats.hedging ?? null,
    rateLimited: features.rateLimit?.refused ?? null,
    cache: cache === undefined ? null : { ...cache, hitRatio },
    affinity: stats.affinity ?? null,
    discovery: stats.discovery ?? null,
    stores: stats.stores ?? null,
    mirror: stats.mirror ?? null,
    concurrencyRefused: features.adaptiveConcurrency ? stats.concurrencyRefused : null,
    process: stats.process ?? null,
    targets,
  };
}

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);
}

/**
 * The policy sent with every response of the page: nothing but its own script, stylesheet and JSON.
 * It holds even if the app sends none, and the page needs no more than `default-src 'self'` if the app sends its own.
 */
const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

// ---- first paint: the page as the script would render it, so a browser without JavaScript, a
// screenshot taken before the script ran, or a page whose script failed still shows the pool.
// Every value goes through escapeHtml: URLs, hosts, health details and error messages come from
// outside (a target's own answers, DNS, a probe's thrown message).

const REASONS: Record<EjectionReason, string> = {
  consecutive: 'consecutive failures',
  successRate: 'low success rate',
  failurePercentage: 'failure percentage',
  latency: 'slow',
};
const DASH = '\u2013';

function ms(v: number): string {
  if (!(v > 0)) return DASH;
  if (v >= 1000) return `${(v / 1000).toFixed(2)} s`;
  if (v >= 10) return `${Math.round(v)} ms`;
  return `${v.toFixed(1)} ms`;
}

function pct(r: number | null | undefined): string {
  if (r === null || r === undefined) return DASH;
  const p = r * 100;
  return `${p > 0 && p < 10 ? p.toFixed(1) : Math.round(p)}%`;
}

function since(at: number, now: number): string {
  const s = Math.max(0, Math.round((now - at) / 1000));
  return s < 60 ? `${s} s ago` : `${Math.round(s / 60)} min ago`;
}

/** `<tag class="cls" attrs>text</tag>`, the text escaped; `inner` is markup already escaped. */
function tag(name: string, cls: string, text: string | number | null, attrs = '', inner = ''): string {
  const c = cls === '' ? '' : ` class="${cls}"`;
  return `<${name}${c}${attrs}>${text === null ? '' : escapeHtml(String(text))}${inner}</${name}>`;
}

/** A table cell carrying its column's name, which the narrow layout shows beside the value. */
function cell(label: string, cls: string, text: string | number | null, inner = '', attrs = ''): string {
  return tag('td', cls, text, ` data-label="${escapeHtml(label)}"${attrs}`, inner);
}

function card(label: string, value: string | number, cls = '', hint = ''): string {
  const title = hint === '' ? '' : ` title="${escapeHtml(hint)}"`;
  return tag('div', 'card', null, title, tag('div', 'label', label) + tag('div', cls === '' ? 'value' : `value ${cls}`, value));
}

function banner(d: StatusSnapshot): [string, string] {
  const notUp = d.targets.filter((t) => t.state !== 'up');
  let result: [string, string];
  if (d.onBackups && !d.panic) result = ['warn', 'Serving from backup targets: too few primary targets up'];
  else if (d.panic) result = ['bad', `Panic mode: only ${d.targetsUp} of ${d.targets.length} targets up, traffic goes to all of them`];
  else if (d.targets.length === 0) result = ['warn', 'No targets in the pool'];
  else if (notUp.length === 0) result = ['ok', `All ${d.targets.length} targets up`];
  else {
    const list = notUp.map((t) => `${t.url} (${t.state})`).join(', ');
    result = [d.targetsUp === 0 ? 'bad' : 'warn', `${notUp.length} of ${d.targets.length} targets not taking traffic: ${list}`];
  }
  const failing = (d.discovery ?? []).filter((s) => s.failing);
  if (failing.length > 0 && result[0] === 'ok') {
    result = ['warn', `Discovery failing, last good targets kept: ${failing.map((s) => `${s.name} (${s.lastError?.message ?? 'error'})`).join(', ')}`];
  }
  const storesDown = (d.stores ?? []).filter((s) => s.circuit !== 'closed');
  if (storesDown.length > 0 && result[0] === 'ok') {
    result = ['warn', `Shared store down, requests go on without it: ${storesDown.map((s) => `${s.name} (${s.lastError || s.circuit})`).join(', ')}`];
  }
  return result;
}

function summary(d: StatusSnapshot): string {
  const rate = d.targets.reduce((n, t) => n + t.requestRate, 0).toFixed(1);
  let html =
    card('Targets up', `${d.targetsUp} of ${d.targets.length}`, d.targetsUp < d.targets.length ? 'bad-text' : '') +
    card('In flight', d.inFlight) +
    card('Requests/s', rate, '', 'attempts per second sent to targets over the last minute') +
    card('Retries', d.retries, '', 'failed attempts sent again to another target') +
    card('Unavailable', d.unavailable, d.unavailable > 0 ? 'bad-text' : '', 'requests answered 503 because no target was available') +
    card('Panic mode', d.panic ? 'ON' : 'off', d.panic ? 'bad-text' : '');
  const h = d.hedging;
  if (h) html += card('Hedges', h.sent, '', hedgeHint(h));
  if (d.rateLimited !== null) html += card('Rate limited', d.rateLimited, '', 'requests refused with 429');
  const a = d.affinity;
  if (a) {
    const sticky = pct(a.sticky + a.replaced > 0 ? a.sticky / (a.sticky + a.replaced) : null);
    html += card('Sticky', sticky, '', `session affinity: ${a.sticky} sticky, ${a.placed} placed, ${a.replaced} replaced (cookie naming no ready target)`);
  }
  const c = d.cache;
  if (c) html += card('Cache hit ratio', pct(c.hitRatio), '', `${c.hits} hits, ${c.stale} stale, ${c.revalidated} revalidated, ${c.misses} misses`);
  for (const m of d.mirror ?? []) {
    const detail = `to ${m.targets.join(', ')}: ${m.completed} completed, ${m.failed} failed, ${m.skipped} skipped (over maxInFlight or maxBodyBytes), ${m.inFlight} in flight`;
    html += card('Mirror copies', m.sent, m.failed > 0 ? 'bad-text' : '', detail);
  }
  if (d.concurrencyRefused !== null) {
    const n = d.concurrencyRefused;
    html += card('Over limit', n, n > 0 ? 'bad-text' : '', 'requests answered 503 because every ready target was at its adaptive concurrency limit');
  }
  const p = d.process;
  if (p) {
    const hint = `utilization ${pct(p.eventLoopUtilization)}, heap ${mb(p.heapUsedBytes)}, RSS ${mb(p.rssBytes)}`;
    html += card('Event loop delay', `${p.eventLoopDelay.toFixed(1)} ms`, p.reason ? 'bad-text' : '', hint);
    html += card(
      'Shed',
      p.shed,
      p.reason ? 'bad-text' : '',
      p.reason ? `shedding ${pct(p.shedding)} of requests: ${p.reason} over its limit` : 'requests answered 503 while the process was overloaded',
    );
  }
  return html;
}

function hedgeHint(h: HedgeStats): string {
  const delay = h.delay === null ? 'delay not learned yet' : `sent after ${ms(h.delay)}`;
  return `hedged requests: ${h.won} won by the hedge, ${h.cancelled} attempts cancelled, ${h.budgetRefused} refused by the budget, ${h.noTarget} without another target; ${delay}`;
}

function targetRow(t: TargetStatus, now: number): string {
  let url = '';
  if (t.backup) url += tag('span', 'detail', 'backup');
  if (t.protocol !== 'http/1.1') url += tag('span', 'detail', t.protocol);
  // A discovered target: its address, and the DNS name it serves under.
  if (t.host && !t.url.includes(`//${t.host}`)) url += tag('span', 'detail', t.host);
  let detail = '';
  if (t.state === 'ejected' && t.ejectedUntil) {
    const left = Math.round((t.ejectedUntil - now) / 1000);
    detail = left > 0 ? `back in ${left} s` : t.lastCheck ? 'until a check passes' : '';
    if (t.ejectionReason) detail = REASONS[t.ejectionReason] + (detail ? `, ${detail}` : '');
  } else if (t.slowStart) detail = 'slow start';
  const state = tag('span', `state ${t.state}`, t.state) + (detail ? tag('span', 'detail', detail) : '');
  const b = t.balancing;
  const score = b
    ? tag('span', '', String(b.score)) + (b.latency !== undefined ? tag('span', 'detail', `est. ${ms(b.latency)}`) : '')
    : tag('span', 'muted', DASH);
  const byReason = t.ejectionsByReason;
  const ejectionsTitle = byReason
    ? ` title="${escapeHtml((Object.keys(REASONS) as EjectionReason[]).map((r) => `${REASONS[r]}: ${byReason[r]}`).join('\n'))}"`
    : '';
  const check = t.lastCheck;
  const checkHtml = !check
    ? tag('span', 'muted', 'no active check')
    : tag('span', check.ok ? '' : 'bad-text', check.ok ? 'passed' : `failed: ${check.detail}`) + tag('span', 'detail', since(check.at, now));
  const weight = t.effectiveWeight === t.weight ? t.weight : `${t.effectiveWeight.toFixed(2)} / ${t.weight}`;
  return tag(
    'tr',
    t.state === 'up' ? '' : 'not-up',
    null,
    ` data-target="${escapeHtml(t.url)}" data-state="${t.state}"`,
    cell('Target', 'url', t.url, url) +
      cell('State', '', null, state) +
      cell('Weight', 'num', weight) +
      cell('In flight', 'num', t.inFlight, limitDetail(t.concurrency)) +
      cell('Requests', 'num', t.total) +
      cell('Req/s', 'num', t.requestRate.toFixed(1)) +
      cell('Error rate', (t.errorRate ?? 0) > 0 ? 'num bad-text' : 'num', pct(t.errorRate)) +
      cell('Latency', 'num', ms(t.latency)) +
      // The sparkline needs the script (an SVG built from the samples); the first paint leaves it empty.
      cell('Last minute', 'spark-cell', null) +
      cell('Score', 'num', null, score) +
      cell('Ejections', 'num', t.ejections === null ? DASH : t.ejections, '', ejectionsTitle) +
      cell('Health check', 'check', null, checkHtml),
  );
}

function mb(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MB`;
}

/** A target's adaptive concurrency limit under its in-flight count. */
function limitDetail(c: ConcurrencyLimitStats | null): string {
  if (!c) return '';
  const title = ` title="${escapeHtml(`minRTT ${c.minRtt} ms, sampleRTT ${c.sampleRtt} ms, ${c.blocked} found it full`)}"`;
  return tag('span', 'detail', `limit ${c.limit}${c.measuringMinRtt ? ' (measuring)' : ''}`, title);
}

function header(labels: readonly string[], numeric: (i: number) => boolean): string {
  return `<thead><tr>${labels.map((h, i) => tag('th', numeric(i) ? 'num' : '', h, ' scope="col"')).join('')}</tr></thead>`;
}

function discoverySection(d: StatusSnapshot, now: number): string {
  const sources = d.discovery;
  if (!sources || sources.length === 0) return '';
  const rows = sources.map((s) => {
    const status = s.failing
      ? tag('span', 'bad-text', `failing: ${s.lastError?.message ?? 'error'}`) + tag('span', 'detail', `keeping the last ${s.targets} targets`)
      : tag('span', '', s.lastUpdate ? 'ok' : 'waiting for the first set');
    return tag(
      'tr',
      s.failing ? 'not-up' : '',
      null,
      ` data-discovery="${escapeHtml(s.name)}"`,
      cell('Source', 'url', s.name) +
        cell('Targets', 'num', s.targets) +
        cell('Updates', 'num', s.updates) +
        cell('Last update', '', s.lastUpdate ? since(s.lastUpdate, now) : 'never') +
        cell('Added', 'num', s.added) +
        cell('Drained', 'num', s.drained) +
        cell('Errors', s.errors > 0 ? 'num bad-text' : 'num', s.errors) +
        cell('Status', 'check', null, status),
    );
  });
  const labels = ['Source', 'Targets', 'Updates', 'Last update', 'Added', 'Drained', 'Errors', 'Status'];
  return `<h2>Discovery</h2><div class="table-wrap"><table aria-label="Discovery sources">${header(labels, (i) => i > 0 && i < 7 && i !== 3)}<tbody>${rows.join('')}</tbody></table></div>`;
}

function storesSection(d: StatusSnapshot, now: number): string {
  const stores = d.stores;
  if (!stores || stores.length === 0) return '';
  const rows = stores.map((s) => {
    const down = s.circuit !== 'closed';
    const circuit =
      tag('span', down ? 'bad-text' : '', down ? `${s.circuit} (not used)` : 'closed (used)') +
      (s.openedAt ? tag('span', 'detail', `last opened ${since(s.openedAt, now)}`) : '');
    return tag(
      'tr',
      down ? 'not-up' : '',
      null,
      ` data-store="${escapeHtml(s.name)}"`,
      cell('Store', 'url', s.name) +
        cell('Circuit', '', null, circuit) +
        cell('Succeeded', 'num', s.succeeded) +
        cell('Timed out', s.timedOut > 0 ? 'num bad-text' : 'num', s.timedOut) +
        cell('Failed', s.failed > 0 ? 'num bad-text' : 'num', s.failed) +
        cell('Short-circuited', 'num', s.shortCircuited) +
        cell('Pending', 'num', s.pending) +
        cell('Last error', 'check', s.lastError || ''),
    );
  });
  const labels = ['Store', 'Circuit', 'Succeeded', 'Timed out', 'Failed', 'Short-circuited', 'Pending', 'Last error'];
  return `<h2>Shared stores</h2><div class="table-wrap"><table aria-label="Shared stores">${header(labels, (i) => i > 1 && i < 7)}<tbody>${rows.join('')}</tbody></table></div>`;
}

const TARGET_COLUMNS = [
  'Target',
  'State',
  'Weight',
  'In flight',
  'Requests',
  'Req/s',
  'Error rate',
  'Latency',
  'Last minute',
  'Score',
  'Ejections',
  'Health check',
];
const NUMERIC_TARGET_COLUMNS = new Set([2, 3, 4, 5, 6, 7, 9, 10]);

function page(d: StatusSnapshot, base: string): string {
  const t = escapeHtml(d.title);
  const b = escapeHtml(base);
  const now = d.generatedAt;
  const [bannerClass, bannerText] = banner(d);
  const rows = d.targets.length === 0 ? '<tr><td class="muted" colspan="12">no targets</td></tr>' : d.targets.map((target) => targetRow(target, now)).join('');
  const thead = TARGET_COLUMNS.map((h, i) =>
    tag('th', NUMERIC_TARGET_COLUMNS.has(i) ? 'num' : '', h, ` scope="col"${i === 9 ? ' title="what the strategy balances by: lower is preferred"' : ''}`),
  ).join('');
  // The server's clock, in UTC: the script replaces it with the browser's local time.
  const at = new Date(now).toISOString().slice(11, 19);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${t} \u2013 ${d.targetsUp}/${d.targets.length} up</title>
<link rel="stylesheet" href="${b}app.css">
<script src="${b}app.js" defer></script>
</head>
<body>
<header>
<h1><span id="title">${t}</span><small id="strategy">strategy: ${escapeHtml(d.strategy)}</small></h1>
<span id="updated">as of ${at} UTC</span>
</header>
<div id="banner" role="status" class="${bannerClass}">${escapeHtml(bannerText)}</div>
<section id="summary" aria-label="Summary">${summary(d)}</section>
<div class="table-wrap">
<table aria-label="Targets" class="targets">
<thead><tr>${thead}</tr></thead>
<tbody id="targets">${rows}</tbody>
</table>
</div>
<section id="discovery" aria-label="Discovery">${discoverySection(d, now)}</section>
<section id="stores" aria-label="Shared stores">${storesSection(d, now)}</section>
<noscript><p>These figures are from when the page was loaded: reload it for fresh ones, or read them at <a href="?format=json">?format=json</a>. With JavaScript the page refreshes itself.</p></noscript>
</body>
</html>
`;
}

/**
 * Where the page's own files are, relative to the page: `app.js` when the page's URL ends with a
 * slash (`/_lb/`), else `<last segment>/app.js` (`/_lb` → `_lb/app.js`), so no absolute path is
 * assumed and the page works under any mount path or path-rewriting proxy.
 */
function assetBase(path: string): string {
  if (path.endsWith('/')) return '';
  const last = path.slice(path.lastIndexOf('/') + 1);
  return last === '' ? '' : `${last}/`;
}

function send(req: IncomingMessage, res: ServerResponse, type: string, body: string): void {
  res.statusCode = 200;
  res.setHeader('content-type', type);
  res.setHeader('content-length', Buffer.byteLength(body));
  res.setHeader('cache-control', 'no-store');
  res.setHeader('x-content-type-options', 'nosniff');
  res.setHeader('content-security-policy', CSP);
  res.setHeader('referrer-policy', 'no-referrer');
  res.end(req.method === 'HEAD' ? undefined : body);
}

function wantsJson(query: string): boolean {
  return query !== '' && new URLSearchParams(query).get('format') === 'json';
}

/** The status page middleware. */
export function statusPageHandler(read: () => StatusSnapshot): StatusPageHandler {
  return (req, res, next) => {
    if (refusedMethod(req, res)) return;
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const query = q < 0 ? '' : url.slice(q + 1);
    if (path.endsWith('/app.js')) return send(req, res, 'text/javascript; charset=utf-8', STATUS_JS);
    if (path.endsWith('/app.css')) return send(req, res, 'text/css; charset=utf-8', STATUS_CSS);
    if (wantsJson(query)) {
      let body: string;
      try {
        body = JSON.stringify(read());
      } catch (err) {
        if (next !== undefined) return next(err);
        res.statusCode = 500;
        res.end();
        return;
      }
      return send(req, res, 'application/json; charset=utf-8', body);
    }
    // Express and Connect strip the mount path from req.url; the browser's path is in originalUrl.
    const shown = (req as IncomingMessage & { originalUrl?: string }).originalUrl ?? url;
    const qs = shown.indexOf('?');
    let html: string;
    try {
      html = page(read(), assetBase(qs < 0 ? shown : shown.slice(0, qs)));
    } catch (err) {
      if (next !== undefined) return next(err);
      res.statusCode = 500;
      res.end();
      return;
    }
    send(req, res, 'text/html; charset=utf-8', html);
  };
}
