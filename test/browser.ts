import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { chromiumPath } from './services.js';

/** A headless Debian Chromium with one page, collecting script errors and CSP violations. */
export interface Browser {
  page: Page;
  /** Console errors and uncaught page errors, in order. */
  errors: string[];
  /** Closes Chromium, kills any process of it left behind, removes its profile; resolves to the pids it had to kill. */
  close(): Promise<number[]>;
}

// The flags this machine needs: without the background-networking ones Chromium keeps dialling
// out to a closed network.
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** `javaScriptEnabled: false` loads pages as a browser without JavaScript would (what a crawler or a no-JS reader sees). */
export async function launchBrowser(viewport?: { width: number; height: number }, options: { javaScriptEnabled?: boolean } = {}): Promise<Browser> {
  const userDataDir = mkdtempSync(join(tmpdir(), 'pb-chromium-'));
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: chromiumPath(),
      headless: true,
      args: ARGS,
      viewport,
      timeout: 30_000,
      ...options,
    });
  } catch (err) {
    rmSync(userDataDir, { recursive: true, force: true });
    throw err;
  }
  const page = context.pages()[0] ?? (await context.newPage());
  const errors: string[] = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error') errors.push(msg.text());
  });
  page.on('pageerror', (err) => errors.push(err.message));
  return {
    page,
    errors,
    close: async () => {
      await withTimeout(context.close(), 15_000, 'closing Chromium').catch(() => undefined);
      for (let i = 0; i < 50 && processesWith(userDataDir).length > 0; i++) await new Promise((r) => setTimeout(r, 100));
      const left = processesWith(userDataDir);
      for (const pid of left) process.kill(pid, 'SIGKILL');
      rmSync(userDataDir, { recursive: true, force: true });
      return left;
    },
  };
}

function processesWith(needle: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(needle)) found.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} took over ${ms} ms`)), ms);
    }),
  ]);
}
