/**
 * `npm run fuzz [-- --cases N] [--seed S] [--from I] [--concurrency C] [--stop]`: the long fuzz run
 * (default 100000 cases, seed 1). Exits non-zero on any failure. One case replays with
 * `--from I --cases 1` under the same seed.
 */
import { parseArgs } from 'node:util';
import { fuzz } from './driver.js';

const { values } = parseArgs({
  options: {
    cases: { type: 'string', default: '100000' },
    seed: { type: 'string', default: '1' },
    from: { type: 'string', default: '0' },
    concurrency: { type: 'string', default: '4' },
    'check-every': { type: 'string', default: '500' },
    stop: { type: 'boolean', default: false },
  },
});

const summary = await fuzz({
  seed: Number(values.seed),
  cases: Number(values.cases),
  from: Number(values.from),
  concurrency: Number(values.concurrency),
  checkEvery: Number(values['check-every']),
  stopOnFailure: values.stop,
  log: (line) => console.log(line),
});

const byKind = new Map<string, number>();
const crashes = new Map<string, number>();
for (const failure of summary.failures) {
  byKind.set(failure.kind, (byKind.get(failure.kind) ?? 0) + 1);
  if (failure.kind === 'crash') {
    const signature = failure.detail.replace(/ \(cases .*$/, '');
    crashes.set(signature, (crashes.get(signature) ?? 0) + 1);
  }
}
console.log(`\nseed ${summary.seed}: ${summary.cases} cases in ${(summary.ms / 1000).toFixed(0)} s`);
console.log(`outcomes: ${JSON.stringify(summary.outcomes)}`);
console.log(`failures: ${summary.failures.length} (${[...byKind].map(([k, n]) => `${k} ${n}`).join(', ') || 'none'}), crashes: ${summary.crashes}`);
for (const [signature, count] of crashes) console.log(`  crash x${count}: ${signature}`);
console.log(`balancer process: peak RSS ${(summary.peakRss / 2 ** 20).toFixed(0)} MB, heap after GC at the end ${(summary.lastHeap / 2 ** 20).toFixed(0)} MB`);
process.exitCode = summary.failures.length > 0 ? 1 : 0;
