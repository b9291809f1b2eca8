import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { test } from 'node:test';

const root = new URL('..', import.meta.url);

test('the built package loads through its exports from ESM and CommonJS, with types', () => {
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'pipe' });
  const probe = `for (const name of ['loadBalance','roundRobin','weightedRoundRobin','leastConnections','ipHash','consistentHash','random','powerOfTwoChoices','Pool','Target','clientIp']) if (!pb[name]) throw new Error('missing ' + name);
    const lb = pb.loadBalance({ targets: ['http://127.0.0.1:1'] });
    if (typeof lb.metrics() !== 'function' || typeof lb.statusPage() !== 'function') throw new Error('missing lb.metrics or lb.statusPage');
    lb.close().then(() => console.log('ok'));`;
  const esm = execFileSync(process.execPath, ['--input-type=module', '-e', `import * as pb from 'proxy-balancer'; ${probe}`], { cwd: root, stdio: 'pipe' });
  const cjs = execFileSync(process.execPath, ['-e', `const pb = require('proxy-balancer'); ${probe}`], { cwd: root, stdio: 'pipe' });
  assert.equal(esm.toString().trim(), 'ok');
  assert.equal(cjs.toString().trim(), 'ok');
  for (const flavour of ['esm', 'cjs']) assert.ok(existsSync(new URL(`dist/${flavour}/index.d.ts`, root)), `${flavour} types are emitted`);
});

test('npm pack ships dist/, README, LICENSE and package.json only (after the build above)', () => {
  const [pack] = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, stdio: 'pipe' }).toString()) as [
    { files: Array<{ path: string }> },
  ];
  const paths = pack.files.map((f) => f.path);
  const stray = paths.filter((p) => !p.startsWith('dist/') && !['README.md', 'LICENSE', 'package.json'].includes(p));
  assert.deepEqual(stray, [], 'nothing but dist/, README.md, LICENSE and package.json');
  for (const needed of [
    'README.md',
    'LICENSE',
    'dist/esm/index.js',
    'dist/esm/index.d.ts',
    'dist/cjs/index.js',
    'dist/cjs/index.d.ts',
    'dist/cjs/package.json',
  ]) {
    assert.ok(paths.includes(needed), `${needed} is shipped`);
  }
  assert.ok(!paths.some((p) => p.endsWith('.test.js') || p.startsWith('dist/test/')), 'no tests');
});
