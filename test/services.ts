import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { test } from 'node:test';

/**
 * Outside servers some tests need. Where one is missing the test is skipped with a one-line reason
 * saying how to enable it, so `npm test` passes on a machine that has only Node. Under
 * `REQUIRE_SERVICES=1` (set by `.ci/run`) a missing server is a failure instead, so CI never skips.
 */
export type Service = 'redis-server' | 'redis-process' | 'redis-cluster' | 'chromium' | 'dnsmasq';

const HOW_TO_ENABLE: Record<Service, string> = {
  'redis-server': 'apt-get install redis-server, or set REDIS_URL=redis://host:port',
  'redis-process': 'apt-get install redis-server: these tests hang and kill a server of their own, so REDIS_URL does not do',
  'redis-cluster': 'apt-get install redis-server (redis-server and redis-cli start a 3-master cluster)',
  chromium: 'apt-get install chromium, or set CHROMIUM_PATH',
  dnsmasq: 'apt-get install dnsmasq-base',
};

/** Whether the service's binary (or its configured address) is here. */
export function available(service: Service): boolean {
  switch (service) {
    case 'redis-server':
      return process.env.REDIS_URL !== undefined || onPath('redis-server');
    case 'redis-process':
      return onPath('redis-server');
    case 'redis-cluster':
      return onPath('redis-server') && onPath('redis-cli');
    case 'chromium':
      return existsSync(chromiumPath());
    case 'dnsmasq':
      return onPath('dnsmasq') || existsSync('/usr/sbin/dnsmasq');
  }
}

/** The Chromium binary the browser tests drive. */
export function chromiumPath(): string {
  return process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
}

/**
 * The `skip` option for a `describe`/`test` that needs `services`: false when they are all here,
 * else the one-line reason. Throws under `REQUIRE_SERVICES=1`, failing the file instead of skipping.
 */
export function skipUnless(...services: Service[]): string | false {
  const missing = services.filter((s) => !available(s));
  if (missing.length === 0) return false;
  const reason = missing.map((s) => `needs ${s} (${HOW_TO_ENABLE[s]})`).join('; ');
  if (process.env.REQUIRE_SERVICES === '1') throw new Error(`REQUIRE_SERVICES=1 but a server is missing: ${reason}`);
  // A skipped suite is not counted in node:test's summary; a skipped test is, with its reason.
  test(`skipped: ${missing.join(', ')} not available`, { skip: reason }, () => {});
  return reason;
}

function onPath(binary: string): boolean {
  const result = spawnSync(binary, ['--version'], { stdio: 'ignore' });
  return result.error === undefined;
}
