import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AffinityStats } from '../affinity/session-affinity.js';
import type { CheckResult } from '../health/checker.js';
import type { EjectionReason } from '../health/outlier-analysis.js';
import type { CacheStats } from '../cache/response-cache.js';
import type { DiscoveryStats } from '../discovery/feed.js';
import type { StoreHealth } from '../store-guard.js';
import type { StrategyTargetStats } from '../strategies/strategy.js';
import type { TargetState } from '../target.js';
import { fail, milliseconds, optionsObject } from '../validate.js';
import type { MetricsFeatures, MetricsSubject } from './metrics.js';
import type { Sampler } from './sampler.js';
import { STATUS_CSS, STATUS_JS } from './status-assets.js';
import { refusedMethod } from './read-only.js';

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
    rateLimited: features.rateLimit?.refused ?? null,
    cache: cache === undefined ? null : { ...cache, hitRatio },
    affinity: stats.affinity ?? null,
    discovery: stats.discovery ?? null,
    stores: stats.stores ?? null,
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

function page(title: string, base: string): string {
  const t = escapeHtml(title);
  const b = escapeHtml(base);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${t}</title>
<link rel="stylesheet" href="${b}app.css">
<script src="${b}app.js" defer></script>
</head>
<body>
<header>
<h1><span id="title">${t}</span><small id="strategy"></small></h1>
<span id="updated">loading&hellip;</span>
</header>
<div id="banner" role="status"></div>
<section id="summary" aria-label="Summary"></section>
<div class="table-wrap">
<table aria-label="Targets">
<thead><tr><th scope="col">Target</th><th scope="col">State</th><th scope="col" class="num">Weight</th><th scope="col" class="num">In flight</th><th scope="col" class="num">Requests</th><th scope="col" class="num">Req/s</th><th scope="col" class="num">Error rate</th><th scope="col" class="num">Latency</th><th scope="col">Last minute</th><th scope="col" class="num" title="what the strategy balances by: lower is preferred">Score</th><th scope="col" class="num">Ejections</th><th scope="col">Health check</th></tr></thead>
<tbody id="targets"></tbody>
</table>
</div>
<section id="discovery" aria-label="Discovery"></section>
<section id="stores" aria-label="Shared stores"></section>
<noscript><p>This page refreshes itself with JavaScript; without it, read the figures at <a href="?format=json">?format=json</a>.</p></noscript>
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
export function statusPageHandler(read: () => StatusSnapshot, options: Required<StatusPageOptions>): StatusPageHandler {
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
    send(req, res, 'text/html; charset=utf-8', page(options.title, assetBase(qs < 0 ? shown : shown.slice(0, qs))));
  };
}
