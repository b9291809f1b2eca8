import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadBalance } from 'proxy-balancer';
import { type Browser, launchBrowser } from './browser.js';
import { closeAll, delay, listen, request, waitFor } from './helpers.js';
import { skipUnless } from './services.js';

describe('the status page with overload protection', () => {
  test('in headless Chromium: each target its adaptive limit, the pool its refusals, the process its event-loop delay and shed requests', {
    skip: skipUnless('chromium'),
  }, async () => {
    const up = await listen((req, res) => {
      req.resume();
      setTimeout(() => res.end('ok'), 20);
    });
    // Any process is over a 1-byte RSS limit: every proxied request is shed; the page is served beside the balancer.
    const lb = loadBalance({ targets: [up.url], adaptiveConcurrency: true, loadShedding: { maxRssBytes: 1, sampleInterval: 20 } });
    const status = lb.statusPage({ refreshMs: 250 });
    const server = await listen((req, res) => (req.url!.startsWith('/_lb') ? status(req, res) : lb(req, res)));
    let browser: Browser | undefined;
    try {
      await waitFor(() => lb.stats().process?.shedding === 1);
      assert.equal((await request(`${server.url}/x`)).status, 503);
      browser = await launchBrowser({ width: 1440, height: 560 });
      const page = browser.page;
      await page.goto(`${server.url}/_lb`, { waitUntil: 'load' });
      // The script's own rendering, after a refresh: the shed count moves on (the browser's own
      // favicon request is shed too).
      assert.equal((await request(`${server.url}/y`)).status, 503);
      const shed = lb.stats().process!.shed;
      assert.ok(shed >= 2);
      const end = Date.now() + 5000;
      // At least the count read here: the browser's favicon request may be shed after it.
      const shownShed = (text: string): number => Number(/SHED\s+(\d+)$/i.exec(text)?.[1] ?? -1);
      let summary = '';
      while (Date.now() < end && shownShed(summary) < shed) {
        await delay(100);
        summary = await page.locator('#summary').innerText();
      }
      assert.ok(shownShed(summary) >= shed, `the page shows ${shownShed(summary)} shed, at least ${shed} expected: ${summary}`);
      assert.match(summary, /EVENT LOOP DELAY\s+\d+\.\d ms/i);
      assert.match(summary, /OVER LIMIT\s+0/i);
      const row = page.getByRole('row').filter({ hasText: up.url });
      assert.match(await row.locator('td').nth(3).innerText(), /^0\s*limit 3 \(measuring\)$/);
      // Only the shed favicon request may be reported.
      const errors = browser.errors.filter((e) => !/status of 503/.test(e));
      assert.deepEqual(errors, [], 'no script error and no CSP violation in the browser');
    } finally {
      const left = (await browser?.close()) ?? [];
      await lb.close();
      await closeAll(server, up);
      assert.deepEqual(left, [], 'no Chromium process outlives the test');
    }
  });
});
