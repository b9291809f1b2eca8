import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { test } from 'node:test';

const root = new URL('..', import.meta.url);

test('the built package loads through its exports from ESM and CommonJS, with types', () => {
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'pipe' });
  const probe = `for (const name of ['loadBalance','roundRobin','weightedRoundRobin','leastConnections','ipHash','consistentHash','random','powerOfTwoChoices','leastRequest','peakEwma','Pool','Target','clientIp']) if (!pb[name]) throw new Error('missing ' + name);
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

// One request through the built balancer; prints the proxied body and how many spans were exported
// (-1 when the script was told @opentelemetry/api is missing). `load` names the loading style.
const traced = (load: 'esm' | 'cjs', withApi: boolean) => `
  const pb = ${load === 'esm' ? "await import('proxy-balancer')" : "require('proxy-balancer')"};
  const http = ${load === 'esm' ? "await import('node:http')" : "require('node:http')"};
  let exporter;
  if (${withApi}) {
    const { trace } = ${load === 'esm' ? "await import('@opentelemetry/api')" : "require('@opentelemetry/api')"};
    const sdk = ${load === 'esm' ? "await import('@opentelemetry/sdk-trace-base')" : "require('@opentelemetry/sdk-trace-base')"};
    exporter = new sdk.InMemorySpanExporter();
    trace.setGlobalTracerProvider(new sdk.BasicTracerProvider({ spanProcessors: [new sdk.SimpleSpanProcessor(exporter)] }));
  }
  const up = http.createServer((req, res) => res.end('proxied')).listen(0, '127.0.0.1', () => {
    const lb = pb.loadBalance({ targets: ['http://127.0.0.1:' + up.address().port] });
    const front = http.createServer(lb).listen(0, '127.0.0.1', () => setTimeout(() => {
      http.get('http://127.0.0.1:' + front.address().port, { agent: false }, (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => setTimeout(() => {
          console.log(body, exporter === undefined ? -1 : exporter.getFinishedSpans().length);
          lb.close().then(() => { up.close(); front.close(); });
        }, 50));
      });
    }, 200));
  });`;

// Makes @opentelemetry/api unresolvable, as on a machine without it: a resolve hook for ESM, a
// patched resolver for CommonJS.
const HIDE_API_ESM = `data:text/javascript,${encodeURIComponent(`import { register } from 'node:module';
register('data:text/javascript,' + encodeURIComponent("export async function resolve(s, c, next) { if (s === '@opentelemetry/api') throw Object.assign(new Error('not installed'), { code: 'ERR_MODULE_NOT_FOUND' }); return next(s, c); }"));`)}`;
const HIDE_API_CJS = `const M = require('node:module'); const resolve = M._resolveFilename;
  M._resolveFilename = function (request, ...rest) { if (request === '@opentelemetry/api') throw Object.assign(new Error('not installed'), { code: 'MODULE_NOT_FOUND' }); return resolve.call(this, request, ...rest); };`;

test('the built package traces with @opentelemetry/api present, and proxies without it, from ESM and CommonJS (after the build above)', () => {
  const run = (args: string[]) => execFileSync(process.execPath, args, { cwd: root, stdio: 'pipe' }).toString().trim();
  assert.equal(run(['--input-type=module', '-e', traced('esm', true)]), 'proxied 1');
  assert.equal(run(['-e', traced('cjs', true)]), 'proxied 1');
  assert.equal(run(['--import', HIDE_API_ESM, '--input-type=module', '-e', traced('esm', false)]), 'proxied -1');
  assert.equal(run(['-e', HIDE_API_CJS + traced('cjs', false)]), 'proxied -1');
  // The hooks do hide it: the same scripts cannot load the API themselves.
  assert.throws(() => run(['--import', HIDE_API_ESM, '--input-type=module', '-e', "await import('@opentelemetry/api')"]));
  assert.throws(() => run(['-e', `${HIDE_API_CJS} require('@opentelemetry/api')`]));
});
