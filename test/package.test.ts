import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

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

test('npm pack ships dist/, the README and its reference chapters (docs/*.md and the status page image), LICENSE and package.json only (after the build above)', () => {
  const paths = packedPaths();
  const stray = paths.filter((p) => !p.startsWith('dist/') && !/^docs\/[^/]+\.(md|png)$/.test(p) && !['README.md', 'LICENSE', 'package.json'].includes(p));
  assert.deepEqual(stray, [], 'nothing but dist/, docs/*.md, docs/*.png, README.md, LICENSE and package.json');
  for (const needed of [
    'README.md',
    'LICENSE',
    'docs/cache.md',
    'dist/esm/index.js',
    'dist/esm/index.d.ts',
    'dist/cjs/index.js',
    'dist/cjs/index.d.ts',
    'dist/cjs/package.json',
  ]) {
    assert.ok(paths.includes(needed), `${needed} is shipped`);
  }
  assert.ok(!paths.some((p) => p.endsWith('.test.js') || p.startsWith('dist/test/') || p.startsWith('docs/api/')), 'no tests, no generated API site');
});

function packedPaths(): string[] {
  const [pack] = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, stdio: 'pipe' }).toString()) as [
    { files: Array<{ path: string }> },
  ];
  return pack.files.map((f) => f.path);
}

/** GitHub's heading anchors: lower case, punctuation other than `-` and `_` dropped, spaces to `-`, `-1`, `-2`... for repeats. */
function headingAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  let fence = false;
  for (const line of markdown.split('\n')) {
    if (line.startsWith('```')) fence = !fence;
    const heading = fence ? null : /^#{1,6} (.*)$/.exec(line);
    if (heading === null) continue;
    const base = heading[1]
      .trim()
      .toLowerCase()
      .replace(/[^\p{L}\p{N}_\- ]/gu, '')
      .replaceAll(' ', '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return anchors;
}

// The README is read on npm and in node_modules, where the repository's examples/ and test/ are
// absent: every relative link in the shipped Markdown must reach a shipped file, and every #anchor
// a heading of the file it names. Files only in the repository are named as paths, not linked.
test('every relative link in the shipped README and docs reaches a shipped file and heading', () => {
  const paths = new Set(packedPaths());
  const markdown = [...paths].filter((p) => p.endsWith('.md'));
  assert.ok(markdown.includes('README.md') && markdown.some((p) => p.startsWith('docs/')));
  const texts = new Map(markdown.map((p) => [p, readFileSync(join(rootDir, p), 'utf8')]));
  const broken: string[] = [];
  let checked = 0;
  for (const [file, text] of texts) {
    // Links and images outside code spans and fences: [label](target) and ![alt](target).
    const prose = text.replace(/```[\s\S]*?```/g, '').replace(/`[^`\n]*`/g, '');
    for (const [, target] of prose.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z][a-z+.-]*:/i.test(target)) continue;
      checked++;
      const [path, anchor] = target.split('#') as [string, string | undefined];
      const resolved = path === '' ? file : posix.normalize(posix.join(posix.dirname(file), path));
      if (!paths.has(resolved)) {
        broken.push(`${file}: ${target} (${resolved} is not in the package)`);
        continue;
      }
      if (anchor !== undefined && !headingAnchors(texts.get(resolved) ?? '').has(anchor)) broken.push(`${file}: ${target} (no such heading)`);
    }
  }
  assert.deepEqual(broken, []);
  assert.ok(checked > 100, `${checked} links checked`);
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

// What the tarball may weigh, unpacked: dist/ as ESM and CommonJS (JavaScript and declarations, no
// source maps), README.md with its reference chapters (docs/*.md and the status page screenshot),
// LICENSE and package.json. On 2026-12-06 it was 1.96 MB in 521 files (3.96 MB in 742 files with
// the inlined-source maps), and 2.45 MB in 670 files once the HTTP/2 engine, gRPC, hedging,
// mirroring and overload protection were in; the bounds leave room for the code to grow by a
// quarter, and catch a return of the maps (+2.2 MB, +246 files at the first count) or anything
// else shipped by mistake (test/, lib/, examples/, docs/api/).
const MAX_UNPACKED_BYTES = 3_100_000;
const MAX_FILES = 840;

test(`the tarball stays under ${MAX_UNPACKED_BYTES} bytes unpacked and ${MAX_FILES} files, with no source maps (after the build above)`, () => {
  const [pack] = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, stdio: 'pipe' }).toString()) as [
    { unpackedSize: number; entryCount: number; files: Array<{ path: string }> },
  ];
  assert.ok(pack.unpackedSize < MAX_UNPACKED_BYTES, `unpacked size ${pack.unpackedSize} < ${MAX_UNPACKED_BYTES}`);
  assert.ok(pack.entryCount < MAX_FILES, `file count ${pack.entryCount} < ${MAX_FILES}`);
  assert.deepEqual(
    pack.files.filter((f) => f.path.endsWith('.map')).map((f) => f.path),
    [],
    'no source maps',
  );
});

const rootDir = fileURLToPath(root);
const manifest = JSON.parse(readFileSync(join(rootDir, 'package.json'), 'utf8')) as {
  dependencies: Record<string, string>;
};

/** Links `name` and, recursively, its own dependencies from the repository's node_modules into `modules`. */
function link(modules: string, name: string): void {
  const at = join(modules, name);
  if (existsSync(at)) return;
  const from = join(rootDir, 'node_modules', name);
  mkdirSync(join(at, '..'), { recursive: true });
  symlinkSync(from, at, 'dir');
  const { dependencies = {} } = JSON.parse(readFileSync(join(from, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
  for (const dep of Object.keys(dependencies)) if (existsSync(join(rootDir, 'node_modules', dep))) link(modules, dep);
}

const STRICT = {
  strict: true,
  skipLibCheck: false,
  noEmit: true,
  module: 'nodenext',
  moduleResolution: 'nodenext',
  target: 'es2022',
  types: ['node'],
};

// The consumer: ESM (index.ts, in a "type": "module" package) and CommonJS (require.cts), so both
// the import and the require conditions' declarations are checked.
const CONSUMER_ESM = `import http from 'node:http';
import { loadBalance, leastConnections, type LoadBalanceOptions, type TargetDownInfo } from 'proxy-balancer';
const options: LoadBalanceOptions = { targets: ['http://127.0.0.1:3000', { url: 'http://127.0.0.1:3001', weight: 2 }], strategy: leastConnections() };
const lb = loadBalance(options);
lb.on('targetDown', (target, info: TargetDownInfo) => console.log(info.state, target.url.href));
http.createServer(lb).listen(0);
const handler: (req: http.IncomingMessage, res: http.ServerResponse) => void = lb.metrics();
void handler;
void lb.close();
`;
const CONSUMER_CJS = `import pb = require('proxy-balancer');
const lb = pb.loadBalance({ targets: ['http://127.0.0.1:3000'] });
void lb.close();
`;
// With the optional peers installed, their real clients fit the structural types we declare for them.
const CONSUMER_PEERS = `import { Redis, Cluster } from 'ioredis';
import { Registry } from 'prom-client';
import { loadBalance, redisStore, redisRateLimitStore, responseCache, tieredStore, memoryStore } from 'proxy-balancer';
const client = new Redis({ lazyConnect: true });
const cluster = new Cluster([{ host: '127.0.0.1', port: 7000 }], { lazyConnect: true });
const lb = loadBalance({ targets: ['http://127.0.0.1:3000'] });
lb.metrics({ registry: new Registry() });
redisStore(cluster);
redisRateLimitStore(client);
responseCache({ store: tieredStore({ l1: memoryStore(), l2: redisStore(client), redis: client }) });
`;

test('a strict consumer (strict, skipLibCheck: false) compiles against the packed declarations with only the dependencies installed, and with the optional peers (after the build above)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pb-consumer-'));
  try {
    const [{ filename }] = JSON.parse(
      execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', dir], { cwd: root, stdio: 'pipe' }).toString(),
    ) as [{ filename: string }];
    const modules = join(dir, 'node_modules');
    const installed = join(modules, 'proxy-balancer');
    mkdirSync(installed, { recursive: true });
    execFileSync('tar', ['xzf', join(dir, filename), '-C', installed, '--strip-components=1']);
    for (const dep of Object.keys(manifest.dependencies)) link(modules, dep);
    link(modules, '@types/node');

    // Every module a shipped declaration names is Node's own or a dependency that ships its types:
    // nothing resolves through a dev dependency's @types or an optional peer.
    const named = new Set<string>();
    const walk = (at: string): void => {
      for (const entry of readdirSync(at, { withFileTypes: true })) {
        const path = join(at, entry.name);
        if (entry.isDirectory()) walk(path);
        else if (entry.name.endsWith('.d.ts')) {
          const text = readFileSync(path, 'utf8');
          // import/export ... from 'x', import x = require('x'), import('x') in a type, /// <reference types="x" />.
          for (const pattern of [
            /^(?:import|export)\b[^;]*?\bfrom\s*'([^']+)'/gm,
            /\brequire\('([^']+)'\)/g,
            /\bimport\('([^']+)'\)/g,
            /<reference types="([^"]+)"/g,
          ]) {
            for (const [, spec] of text.matchAll(pattern)) if (!spec.startsWith('.')) named.add(spec);
          }
        }
      }
    };
    walk(join(installed, 'dist'));
    const typed = new Set(Object.keys(manifest.dependencies).filter((dep) => 'types' in JSON.parse(readFileSync(join(modules, dep, 'package.json'), 'utf8'))));
    assert.deepEqual(
      [...named].filter((spec) => !spec.startsWith('node:') && !typed.has(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0])),
      [],
      'no declaration names a module without shipped types',
    );

    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    writeFileSync(join(dir, 'index.ts'), CONSUMER_ESM);
    writeFileSync(join(dir, 'require.cts'), CONSUMER_CJS);
    const tsc = (files: string[]) => {
      writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: STRICT, files }));
      try {
        execFileSync(process.execPath, [join(rootDir, 'node_modules/typescript/bin/tsc'), '-p', dir], { cwd: dir, stdio: 'pipe' });
      } catch (error) {
        assert.fail(`tsc failed:\n${(error as { stdout: Buffer }).stdout}`);
      }
    };
    tsc(['index.ts', 'require.cts']);

    for (const peer of ['ioredis', 'prom-client']) link(modules, peer);
    writeFileSync(join(dir, 'peers.ts'), CONSUMER_PEERS);
    tsc(['index.ts', 'require.cts', 'peers.ts']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
