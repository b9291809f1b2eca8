import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { test } from 'node:test';

const root = new URL('..', import.meta.url);

test('the built package loads through its exports from ESM and CommonJS, with types', () => {
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'pipe' });
  const probe = `for (const name of ['loadBalance','roundRobin','weightedRoundRobin','leastConnections','ipHash','consistentHash','random','powerOfTwoChoices','Pool','Target','clientIp']) if (!pb[name]) throw new Error('missing ' + name);
    const lb = pb.loadBalance({ targets: ['http://127.0.0.1:1'] }); lb.close().then(() => console.log('ok'));`;
  const esm = execFileSync(process.execPath, ['--input-type=module', '-e', `import * as pb from 'proxy-balancer'; ${probe}`], { cwd: root, stdio: 'pipe' });
  const cjs = execFileSync(process.execPath, ['-e', `const pb = require('proxy-balancer'); ${probe}`], { cwd: root, stdio: 'pipe' });
  assert.equal(esm.toString().trim(), 'ok');
  assert.equal(cjs.toString().trim(), 'ok');
  for (const flavour of ['esm', 'cjs']) assert.ok(existsSync(new URL(`dist/${flavour}/index.d.ts`, root)), `${flavour} types are emitted`);
});
