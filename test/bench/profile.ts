/**
 * CPU profiles of servers under load, with the time per request spent in each function and package:
 * `tsx test/bench/profile.ts [variant...] [--duration S] [--connections N] [--out DIR] [--top N]`.
 * Same pinning and backends as `npm run bench`; each server is warmed up, then profiled for the
 * measured window only (V8 sampling profiler through node:inspector, every 250 µs). The
 * `.cpuprofile` files open in Chrome DevTools (Performance) or https://www.speedscope.app. Every
 * variant after the first is also compared with the first, function by function.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startBackends } from './backends.js';
import { summarize, type CpuProfile, type ProfileSummary } from './cpuprofile.js';
import { measure, pinSelf, spawnServer } from './harness.js';
import { variant } from './variants.js';

const { values: flags, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    duration: { type: 'string', default: '8' },
    connections: { type: 'string', default: '50' },
    out: { type: 'string', default: 'bench-profiles' },
    top: { type: 'string', default: '25' },
    slow: { type: 'boolean', default: false },
  },
});
const ids = positionals.length > 0 ? positionals : ['minimal', 'lib-bare', 'lib-bare-cache', 'node-memory'];
for (const id of ids) variant(id);
const duration = Number(flags.duration);
const connections = Number(flags.connections);
const top = Number(flags.top);
const out = resolve(flags.out!);
mkdirSync(out, { recursive: true });

const pinned = pinSelf(1);
const backends = await startBackends({ delay: flags.slow ? 5 : 0 });
const us = (n: number): string => n.toFixed(2).padStart(7);
let first: { id: string; summary: ProfileSummary } | undefined;
try {
  for (const id of ids) {
    const server = await spawnServer(id, backends.urls, { cpu: pinned ? 0 : undefined });
    try {
      const { path: requested, load } = variant(id);
      await measure(server, { connections, duration: 3, path: requested, load });
      await server.profileStart();
      const result = await measure(server, { connections, duration, path: requested, load });
      const path = join(out, `${id}.cpuprofile`);
      await server.profileStop(path);
      const summary = summarize(JSON.parse(readFileSync(path, 'utf8')) as CpuProfile, result.requests);
      console.log(`\n=== ${id}: ${variant(id).label}`);
      console.log(
        `${result.rps.toFixed(0)} req/s, process CPU ${result.cpuPerRequest.toFixed(1)} µs/req, main thread busy ${summary.busy.toFixed(1)} µs/req (profiled); ${path}`,
      );
      console.log('  self time by package (µs/req, % of busy)');
      for (const c of summary.categories.slice(0, 12)) {
        console.log(`    ${c.category.padEnd(28)} ${us(c.self)}  ${((100 * c.self) / summary.busy).toFixed(1).padStart(5)}%`);
      }
      console.log(`  top ${top} functions by self time (µs/req self, total)`);
      for (const f of summary.functions.slice(0, top)) {
        console.log(`    ${us(f.self)} ${us(f.total)}  ${f.name.slice(0, 40).padEnd(40)} ${f.where}`);
      }
      const mine = summary.functions.filter((f) => f.category === 'proxy-balancer' || f.category === 'http-proxy').sort((a, b) => b.total - a.total);
      if (mine.length > 0) {
        console.log(`  proxy-balancer and http-proxy functions by total time, callees included (µs/req total, self)`);
        for (const f of mine.slice(0, top)) {
          console.log(`    ${us(f.total)} ${us(f.self)}  ${f.name.slice(0, 40).padEnd(40)} ${f.where}`);
        }
      }
      if (first === undefined) first = { id, summary };
      else {
        // Self time per function, this variant minus the first: where the difference in cost per request comes from.
        const base = new Map(first.summary.functions.map((f) => [`${f.name} ${f.where}`, f.self]));
        const mineByKey = new Map(summary.functions.map((f) => [`${f.name} ${f.where}`, f]));
        const keys = new Set([...base.keys(), ...mineByKey.keys()]);
        const deltas = [...keys].map((k) => ({ k, d: (mineByKey.get(k)?.self ?? 0) - (base.get(k) ?? 0) })).sort((a, b) => b.d - a.d);
        console.log(`  self time vs ${first.id}: busy ${(summary.busy - first.summary.busy).toFixed(2)} µs/req; largest increases (µs/req)`);
        for (const { k, d } of deltas.slice(0, top)) console.log(`    ${(d >= 0 ? '+' : '') + d.toFixed(2).padStart(6)}  ${k}`);
        const cats = new Map(first.summary.categories.map((c) => [c.category, c.self]));
        console.log(`  by package vs ${first.id} (µs/req)`);
        for (const c of summary.categories.slice(0, 10))
          console.log(
            `    ${c.category.padEnd(28)} ${(c.self - (cats.get(c.category) ?? 0) >= 0 ? '+' : '') + (c.self - (cats.get(c.category) ?? 0)).toFixed(2)}`,
          );
      }
    } finally {
      await server.close();
    }
  }
} finally {
  await backends.close();
}
