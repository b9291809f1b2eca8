import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import http from 'node:http';
import { describe, test } from 'node:test';
import express from 'express';
import type { Page } from 'playwright-core';
import { httpHealthCheck, loadBalance, peakEwma, responseCache, type StatusSnapshot } from 'proxy-balancer';
import { closeAll, delay, listen, request, type TestServer } from './helpers.js';
import { type Browser, launchBrowser } from './browser.js';
import { skipUnless } from './services.js';

const ARTIFACTS = new URL('artifacts/', import.meta.url);

/** A backend answering after `ms` (a little jitter, so latency sparklines have a shape). */
function slowBackend(name: string, ms: number): Promise<TestServer> {
  return listen((req, res) => {
    req.resume();
    if (req.url === '/cached') res.setHeader('cache-control', 'public, max-age=1');
    setTimeout(() => res.end(name), req.url === '/health' ? 0 : ms * (0.6 + Math.random() * 0.8));
  });
}

/** Processes whose command line mentions `needle` (read from /proc, so nothing but Linux is needed). */
/** Polls the page until `check` holds, or fails with what the page showed. */
async function until(page: Page, what: string, check: () => Promise<boolean>, ms = 8000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await delay(100);
  }
  assert.fail(`${what} within ${ms} ms; the page showed:\n${await page.locator('body').innerText()}`);
}

describe('lb.statusPage()', () => {
  test('serves the page, its script and stylesheet beside it, and the figures as JSON, under a strict CSP', async () => {
    const a = await slowBackend('a', 1);
    const lb = loadBalance({ targets: [a.url, 'http://127.0.0.1:1'], outlierDetection: false, retry: false });
    const page = lb.statusPage({ title: 'Pool <main>', refreshMs: 500 });
    const server = await listen((req, res) => (req.url!.startsWith('/status') ? page(req, res) : lb(req, res)));
    try {
      for (let i = 0; i < 4; i++) await request(`${server.url}/`);

      const html = await request(`${server.url}/status`);
      assert.equal(html.status, 200);
      assert.equal(html.headers['content-type'], 'text/html; charset=utf-8');
      const csp = String(html.headers['content-security-policy']);
      assert.match(csp, /default-src 'none'/);
      assert.match(csp, /script-src 'self'/);
      assert.doesNotMatch(csp, /unsafe-inline/);
      assert.equal(html.headers['cache-control'], 'no-store');
      assert.match(html.body, /<title>Pool &lt;main&gt; – 2\/2 up<\/title>/, 'the title is escaped');
      assert.match(html.body, /<h1><span id="title">Pool &lt;main&gt;<\/span>/);
      assert.match(html.body, /<script src="status\/app\.js" defer><\/script>/, 'assets are addressed relative to the page');
      assert.match(html.body, /<link rel="stylesheet" href="status\/app\.css">/);
      assert.doesNotMatch(html.body, /<script>|<style>|style="|(src|href)="https?:/, 'no inline script or style, no external asset');
      assert.match((await request(`${server.url}/status/`)).body, /<script src="app\.js" defer>/);

      const js = await request(`${server.url}/status/app.js`);
      assert.equal(js.headers['content-type'], 'text/javascript; charset=utf-8');
      assert.match(js.body, /fetch\('\?format=json'/);
      assert.doesNotThrow(() => new Function(js.body), 'the script parses');
      const css = await request(`${server.url}/status/app.css`);
      assert.equal(css.headers['content-type'], 'text/css; charset=utf-8');

      const json = await request(`${server.url}/status?format=json`);
      assert.equal(json.headers['content-type'], 'application/json; charset=utf-8');
      const data = JSON.parse(json.body) as StatusSnapshot;
      assert.equal(data.title, 'Pool <main>');
      assert.equal(data.strategy, 'round-robin');
      assert.equal(data.refreshMs, 500);
      assert.equal(data.panic, false);
      assert.equal(data.cache, null);
      assert.equal(data.rateLimited, null);
      assert.deepEqual(
        data.targets.map((t) => t.url),
        [a.url, 'http://127.0.0.1:1'],
      );
      const [up, refused] = data.targets as [StatusSnapshot['targets'][0], StatusSnapshot['targets'][0]];
      assert.equal(up.state, 'up');
      assert.equal(up.total, 2);
      assert.equal(up.errors, 0);
      assert.equal(up.errorRate, 0);
      assert.ok(up.latency > 0);
      assert.ok(
        up.latencyHistory.every((v) => v > 0),
        'no zero before the first response',
      );
      assert.equal(refused.total, 2);
      assert.equal(refused.errors, 2);
      assert.equal(refused.errorRate, 1);
      assert.equal(refused.ejections, null, 'outlier detection is off');
      assert.equal(up.balancing, null, 'round robin balances by nothing it could show');
      assert.equal(refused.ejectionReason, null);
      assert.equal(refused.ejectionsByReason, null, 'outlier detection is off');
      assert.equal(refused.lastCheck, null);

      const head = await request(`${server.url}/status`, { method: 'HEAD' });
      assert.equal(head.status, 200);
      assert.equal(head.body, '');
      assert.equal((await request(`${server.url}/status`, { method: 'POST' })).status, 405);

      assert.throws(() => lb.statusPage({ refreshMs: 10 }), /refreshMs/);
      assert.throws(() => lb.statusPage({ titel: 'x' } as never), /unknown option "titel"/);

      // lb.close() stops the sampler; the figures stay readable.
      await lb.close();
      assert.equal((await request(`${server.url}/status?format=json`)).status, 200);
    } finally {
      await lb.close();
      await closeAll(server, a);
    }
  });

  test('in headless Chromium: every target up, then a killed backend shown down within seconds', {
    skip: skipUnless('chromium'),
    timeout: 60_000,
  }, async () => {
    const a = await slowBackend('a', 12);
    const b = await slowBackend('b', 30);
    const c = await slowBackend('c', 20);
    const lb = loadBalance({
      targets: [a.url, b.url, c.url],
      healthCheck: httpHealthCheck({ path: '/health', interval: 150, timeout: 300, healthyThreshold: 2, unhealthyThreshold: 2, jitter: 0 }),
      // Passive detection would eject the killed backend first; here the active check is what notices.
      outlierDetection: { consecutiveFailures: 1000 },
      cache: responseCache(),
      strategy: peakEwma(),
    });
    const app = express();
    app.use('/_lb', lb.statusPage({ title: 'api pool', refreshMs: 300 }));
    app.use(lb);
    const server = await listen(app);

    // Background traffic, so the page has rates, latencies and a cache to show.
    let running = true;
    const traffic = (async () => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
      for (let i = 0; running && i < 5000; i++) {
        await request(`${server.url}/${i % 5 === 0 ? 'cached' : 'api'}`, { agent }).catch(() => undefined);
        await delay(15);
      }
      agent.destroy();
    })();

    let browser: Browser | undefined;
    try {
      await lb.firstHealthCheck();
      browser = await launchBrowser({ width: 1440, height: 560 });
      const page = browser.page;
      await page.goto(`${server.url}/_lb`, { waitUntil: 'load' });

      const row = (url: string) => page.getByRole('row').filter({ hasText: url });
      const stateOf = async (url: string) => (await row(url).locator('.state').innerText()).trim().toLowerCase();
      await until(page, 'three targets listed as up', async () => {
        if ((await page.locator('#targets tr').count()) !== 3) return false;
        for (const backend of [a, b, c]) if ((await stateOf(backend.url)) !== 'up') return false;
        return true;
      });
      assert.equal(await page.locator('#banner').innerText(), 'All 3 targets up');
      assert.match(await page.title(), /^api pool – 3\/3 up$/);
      const summary = await page.locator('#summary').innerText();
      assert.match(summary, /TARGETS UP\s+3 of 3/i);
      assert.equal(await page.locator('#strategy').innerText(), 'strategy: peak-ewma');
      // The Score column: peakEwma's cost, and under it the latency estimate behind it.
      await until(page, 'a peak-EWMA estimate', async () => /^\d+(\.\d+)?\s*est\. \d/.test((await row(a.url).locator('td').nth(9).innerText()).trim()));
      assert.match(summary, /CACHE HIT RATIO\s+\d+(\.\d)?%/i);
      // The sampler keeps one latency sample a second; a sparkline needs two.
      await until(page, 'a latency sparkline', async () => (await row(a.url).locator('svg.spark polyline').count()) === 1);

      await b.close();
      await until(page, `${b.url} shown down`, async () => (await stateOf(b.url)) === 'down');
      assert.equal(await stateOf(a.url), 'up');
      assert.equal(await stateOf(c.url), 'up');
      assert.match(await page.locator('#banner').innerText(), new RegExp(`1 of 3 targets not taking traffic: ${b.url.replace(/[.]/g, '\\.')} \\(down\\)`));
      assert.match(await row(b.url).innerText(), /failed: ECONNREFUSED/i);
      assert.match(await page.locator('#summary').innerText(), /TARGETS UP\s+2 of 3/i);
      await until(page, 'rates shown', async () => Number((await row(a.url).locator('td').nth(5).innerText()).trim()) > 0);

      mkdirSync(ARTIFACTS, { recursive: true });
      const shot = await page.screenshot({ path: new URL('status-page.png', ARTIFACTS).pathname, fullPage: true });
      assert.ok(shot.length > 10_000, 'a screenshot with content');
      assert.deepEqual(browser.errors, [], 'no script error and no CSP violation in the browser');
    } finally {
      running = false;
      await traffic;
      const left = (await browser?.close()) ?? [];
      await lb.close();
      await closeAll(server, a, b, c);
      assert.deepEqual(left, [], 'no Chromium process outlives the test');
    }
  });
  test('in headless Chromium: a backend ejected for latency is shown ejected, and why', {
    skip: skipUnless('chromium'),
    timeout: 60_000,
  }, async () => {
    const fast = await Promise.all([slowBackend('a', 1), slowBackend('b', 1)]);
    const slow = await slowBackend('slow', 60);
    const lb = loadBalance({
      targets: [fast[0].url, slow.url, fast[1].url],
      outlierDetection: { interval: 300, baseEjectionTime: 60_000, latency: { requestVolume: 5 } },
    });
    const app = express();
    app.use('/_lb', lb.statusPage({ refreshMs: 300 }));
    app.use(lb);
    const server = await listen(app);
    let running = true;
    const traffic = (async () => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 6 });
      await Promise.all(
        Array.from({ length: 6 }, async () => {
          while (running) await request(`${server.url}/api`, { agent }).catch(() => undefined);
        }),
      );
      agent.destroy();
    })();
    let browser: Browser | undefined;
    try {
      browser = await launchBrowser({ width: 1440, height: 560 });
      const page = browser.page;
      await page.goto(`${server.url}/_lb`, { waitUntil: 'load' });
      const row = page.getByRole('row').filter({ hasText: slow.url });
      await until(page, 'the slow backend shown ejected for latency', async () =>
        /ejected\s*slow, back in \d+ s/i.test(await row.locator('td').nth(1).innerText()),
      );
      assert.equal(await row.locator('td').nth(10).getAttribute('title'), 'consecutive failures: 0\nlow success rate: 0\nfailure percentage: 0\nslow: 1');
      const json = JSON.parse((await request(`${server.url}/_lb?format=json`)).body) as StatusSnapshot;
      const shown = json.targets.find((t) => t.url === slow.url)!;
      assert.equal(shown.ejectionReason, 'latency');
      assert.deepEqual(shown.ejectionsByReason, { consecutive: 0, successRate: 0, failurePercentage: 0, latency: 1 });
      assert.deepEqual(browser.errors, [], 'no script error and no CSP violation in the browser');
    } finally {
      running = false;
      await traffic;
      const left = (await browser?.close()) ?? [];
      await lb.close();
      await closeAll(server, slow, ...fast);
      assert.deepEqual(left, [], 'no Chromium process outlives the test');
    }
  });
});

/**
 * Three targets a health checker sees: one up, one down with a long reason (its /health answers
 * 503 with a paragraph), one down with markup in its reason. The checker reads /health for real
 * and throws what it got, which becomes the check's detail shown on the page.
 */
async function poolWithHealthDetails(): Promise<{ lb: ReturnType<typeof loadBalance>; server: TestServer; backends: TestServer[]; close(): Promise<void> }> {
  const LONG =
    'maintenance window until 04:00 UTC: the primary database is being migrated to the new cluster, see https://status.example.com/incidents/2026-12-06-database-migration for details';
  const health: Record<string, [number, string]> = {};
  const backends = await Promise.all(
    ['up', 'long', 'markup'].map((name) =>
      listen((req, res) => {
        req.resume();
        const [status, body] = health[name]!;
        res.statusCode = req.url === '/health' ? status : 200;
        res.end(req.url === '/health' ? body : name);
      }),
    ),
  );
  health.up = [200, 'ok'];
  health.long = [503, LONG];
  health.markup = [500, '<script>document.title="owned"</script><img src=x onerror=alert(1)> & "quoted"'];
  const lb = loadBalance({
    targets: backends.map((b) => b.url),
    healthCheck: {
      interval: 200,
      timeout: 1000,
      jitter: 0,
      healthyThreshold: 1,
      initialState: 'unhealthy',
      check: async (target) => {
        const reply = await request(new URL('/health', target.key).href);
        if (reply.status !== 200) throw new Error(`status ${reply.status}: ${reply.body}`);
        return true;
      },
    },
    outlierDetection: false,
  });
  const page = lb.statusPage({ title: 'pool <b>1</b>', refreshMs: 300 });
  const server = await listen((req, res) => (req.url!.startsWith('/status') ? page(req, res) : lb(req, res)));
  await lb.firstHealthCheck();
  return {
    lb,
    server,
    backends,
    async close() {
      await lb.close();
      await closeAll(server, ...backends);
    },
  };
}

/** What the page's layout measures: any sideways overflow of the page, of a table's box, of a cell. */
async function overflow(page: Page): Promise<{ page: number; tables: number[]; cells: string[] }> {
  return page.evaluate(() => ({
    page: document.documentElement.scrollWidth - window.innerWidth,
    tables: Array.from(document.querySelectorAll('.table-wrap')).map((w) => w.scrollWidth - w.clientWidth),
    cells: Array.from(document.querySelectorAll('td'))
      .filter((td) => td.scrollWidth > td.clientWidth)
      .map((td) => `${td.getAttribute('data-label')}: ${td.scrollWidth} > ${td.clientWidth}`),
  }));
}

describe('lb.statusPage(): first paint and layout', () => {
  test('the page as served lists every target with its state and health, every outside value escaped', async () => {
    const pool = await poolWithHealthDetails();
    try {
      const html = (await request(`${pool.server.url}/status`)).body;
      for (const [backend, state] of [
        [pool.backends[0]!, 'up'],
        [pool.backends[1]!, 'down'],
        [pool.backends[2]!, 'down'],
      ] as const) {
        assert.match(html, new RegExp(`<tr[^>]* data-target="${backend.url}" data-state="${state}"`), `${backend.url} is ${state}`);
      }
      assert.match(html, /failed: status 503: maintenance window until 04:00 UTC/);
      assert.match(html, /<title>pool &lt;b&gt;1&lt;\/b&gt; – 1\/3 up<\/title>/);
      assert.match(html, /<div id="banner" role="status" class="warn">2 of 3 targets not taking traffic/);
      assert.match(
        html,
        /failed: status 500: &lt;script&gt;document\.title=&quot;owned&quot;&lt;\/script&gt;&lt;img src=x onerror=alert\(1\)&gt; &amp; &quot;quoted&quot;/,
      );
      assert.doesNotMatch(html, /<script>document|<img src=x/, 'no markup from a health detail reaches the page as markup');
    } finally {
      await pool.close();
    }
  });

  test('in headless Chromium without JavaScript: the table lists every target with its state, markup in a health detail is text', {
    skip: skipUnless('chromium'),
    timeout: 60_000,
  }, async () => {
    const pool = await poolWithHealthDetails();
    let browser: Browser | undefined;
    try {
      browser = await launchBrowser({ width: 1280, height: 800 }, { javaScriptEnabled: false });
      const page = browser.page;
      await page.goto(`${pool.server.url}/status`, { waitUntil: 'load' });
      assert.equal(await page.locator('#targets tr').count(), 3);
      const states = await page
        .locator('#targets tr')
        .evaluateAll((rows) => rows.map((r) => `${r.getAttribute('data-target')} ${(r.querySelector('.state') as HTMLElement).innerText.toLowerCase()}`));
      assert.deepEqual(states, [`${pool.backends[0]!.url} up`, `${pool.backends[1]!.url} down`, `${pool.backends[2]!.url} down`]);
      assert.equal(await page.title(), 'pool <b>1</b> – 1/3 up', 'the title is text, and no script changed it');
      const markup = page.getByRole('row').filter({ hasText: pool.backends[2]!.url });
      assert.match(
        await markup.locator('td.check').innerText(),
        /^failed: status 500: <script>document\.title="owned"<\/script><img src=x onerror=alert\(1\)> & "quoted"/,
      );
      assert.equal(await page.locator('#targets img, #targets script').count(), 0, 'the markup made no element');
      assert.match(await page.locator('#banner').innerText(), /^2 of 3 targets not taking traffic/);
      assert.match(await page.locator('#summary').innerText(), /TARGETS UP\s+1 of 3/i);
      await page.screenshot({ path: '/tmp/status-page-nojs-1280.png', fullPage: true });
    } finally {
      const left = (await browser?.close()) ?? [];
      await pool.close();
      assert.deepEqual(left, [], 'no Chromium process outlives the test');
    }
  });

  test('in headless Chromium at 1280 and 390 px: nothing overflows sideways, a long health detail wraps in its cell', {
    skip: skipUnless('chromium'),
    timeout: 60_000,
  }, async () => {
    const pool = await poolWithHealthDetails();
    let browser: Browser | undefined;
    try {
      browser = await launchBrowser({ width: 1280, height: 800 });
      const page = browser.page;
      for (const width of [1280, 390]) {
        await page.setViewportSize({ width, height: 800 });
        await page.goto(`${pool.server.url}/status`, { waitUntil: 'load' });
        await until(page, 'the script rendering', async () => /^updated /.test(await page.locator('#updated').innerText()));
        const measured = await overflow(page);
        assert.equal(measured.page <= 0, true, `the page is ${measured.page} px wider than the ${width} px window`);
        assert.deepEqual(
          measured.tables.filter((d) => d > 0),
          [],
          `no table scrolls sideways at ${width} px`,
        );
        assert.deepEqual(measured.cells, [], `no cell's content overflows it at ${width} px`);
        // Measured in one step: the script replaces the rows every 300 ms.
        const [text, right] = await page.evaluate((url) => {
          const td = document.querySelector(`tr[data-target="${url}"] td.check`) as HTMLElement;
          return [td.innerText, td.getBoundingClientRect().right] as const;
        }, pool.backends[1]!.url);
        assert.match(text, /database-migration for details/);
        assert.ok(right <= width, `the health cell ends inside the window at ${width} px (${right})`);
        await page.screenshot({ path: `/tmp/status-page-${width}.png`, fullPage: true });
      }
      assert.deepEqual(browser.errors, [], 'no script error and no CSP violation in the browser');
    } finally {
      const left = (await browser?.close()) ?? [];
      await pool.close();
      assert.deepEqual(left, [], 'no Chromium process outlives the test');
    }
  });
});
