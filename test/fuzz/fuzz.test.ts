import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fuzz } from './driver.js';

test('fuzz, short fixed-seed run: mutated upstream responses and requests against a balancer with cache, retries and health checks', async () => {
  const summary = await fuzz({ seed: 20260101, cases: 600, concurrency: 4, checkEvery: 200 });
  const lines = summary.failures.slice(0, 20).map((f) => `${f.kind} (case ${f.index ?? '-'}): ${f.detail.slice(0, 300)}`);
  console.log(
    `# ${summary.cases} cases in ${(summary.ms / 1000).toFixed(1)} s, ${summary.failures.length} failures, ${summary.crashes} crashes; ${JSON.stringify(summary.outcomes)}`,
  );
  assert.deepEqual(lines, [], `${summary.failures.length} failures`);
});
