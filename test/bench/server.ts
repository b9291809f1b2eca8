/**
 * Servers under test, run as a child process (`node --import tsx test/bench/server.ts <variant[,variant...]>
 * <target,target,...>`), pinned by the parent. Talks to the parent over IPC: reports the port of
 * each variant, answers usage queries (RSS, CPU time, connections accepted), samples its peak RSS on
 * request, reports heap use after a full GC on `heap` (when started with `--expose-gc`: the soak),
 * and exits on `close` (so a `--cpu-prof` profile gets written). The benchmark runs one
 * variant per process; the smoke test runs them all in one to start fast.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { findSourceMap } from 'node:module';
import { startVariant, type Running } from './servers.js';

/** `profile-start`/`profile-stop` drive the V8 CPU profiler; stop writes the profile to `path`. */
export type ParentMessage = {
  id: number;
  cmd: 'usage' | 'watch' | 'peak' | 'heap' | 'close' | 'profile-start' | 'profile-stop';
  path?: string;
  interval?: number;
};
export interface Usage {
  rss: number;
  /** Highest RSS sampled between `watch` and `peak`. */
  peakRss: number;
  /** Microseconds of CPU (user + system) since start. */
  cpu: number;
  /** Of which in the kernel (system time): system calls, socket I/O. */
  system: number;
  /** Client connections accepted since start, all variants together. */
  connections: number;
  /** `process.memoryUsage()` right after a full garbage collection (`heap` only). */
  afterGc?: NodeJS.MemoryUsage;
}
export type ChildMessage = { type: 'ready'; urls: Record<string, string> } | { type: 'reply'; id: number; usage: Usage } | { type: 'failed'; error: string };

const [idList, targetList] = process.argv.slice(2);
const send = (message: ChildMessage): void => {
  process.send!(message);
};

let peakRss = 0;
let sampler: NodeJS.Timeout | undefined;
const sample = (): void => {
  const rss = process.memoryUsage.rss();
  if (rss > peakRss) peakRss = rss;
};

let running: Running[] = [];
let session: Session | undefined;

function post<T>(method: string, params?: object): Promise<T> {
  return new Promise<T>((resolve, reject) => session!.post(method, params ?? {}, (err, result) => (err ? reject(err) : resolve(result as T))));
}

async function profile(message: ParentMessage): Promise<void> {
  if (message.cmd === 'profile-start') {
    session = new Session();
    session.connect();
    await post('Profiler.enable');
    await post('Profiler.setSamplingInterval', { interval: message.interval ?? 250 });
    await post('Profiler.start');
  } else {
    const { profile } = await post<{ profile: { nodes: { callFrame: { url: string; lineNumber: number; columnNumber: number } }[] } }>('Profiler.stop');
    // tsx compiles TypeScript to single-line JavaScript: map frames back to TypeScript lines.
    for (const { callFrame } of profile.nodes) {
      if (!callFrame.url.startsWith('file:') || callFrame.lineNumber < 0) continue;
      const entry = findSourceMap(callFrame.url)?.findEntry(callFrame.lineNumber, callFrame.columnNumber);
      if (entry !== undefined && 'originalLine' in entry) {
        callFrame.lineNumber = entry.originalLine;
        callFrame.columnNumber = entry.originalColumn;
      }
    }
    writeFileSync(message.path!, JSON.stringify(profile));
    session!.disconnect();
    session = undefined;
  }
}

function usage(): Usage {
  const cpu = process.cpuUsage();
  const connections = running.reduce((n, r) => n + r.connections(), 0);
  return { rss: process.memoryUsage.rss(), peakRss, cpu: cpu.user + cpu.system, system: cpu.system, connections };
}

try {
  const ids = (idList ?? '').split(',');
  const targets = (targetList ?? '').split(',').filter((t) => t !== '');
  running = await Promise.all(ids.map((id) => startVariant(id, targets)));
  process.on('message', (message: ParentMessage) => {
    switch (message.cmd) {
      case 'watch':
        peakRss = 0;
        sample();
        clearInterval(sampler);
        sampler = setInterval(sample, 5);
        break;
      case 'peak':
        sample();
        clearInterval(sampler);
        sampler = undefined;
        break;
      case 'heap': {
        const gc = (globalThis as { gc?: () => void }).gc;
        if (gc === undefined) {
          send({ type: 'failed', error: 'heap needs the server started with --expose-gc' });
          return;
        }
        gc();
        send({ type: 'reply', id: message.id, usage: { ...usage(), afterGc: process.memoryUsage() } });
        return;
      }
      case 'profile-start':
      case 'profile-stop':
        void profile(message).then(
          () => send({ type: 'reply', id: message.id, usage: usage() }),
          (err) => send({ type: 'failed', error: String(err) }),
        );
        return;
      case 'close':
        send({ type: 'reply', id: message.id, usage: usage() });
        void Promise.all(running.map((r) => r.close())).finally(() => process.exit(0));
        return;
    }
    send({ type: 'reply', id: message.id, usage: usage() });
  });
  process.on('disconnect', () => process.exit(0));
  send({ type: 'ready', urls: Object.fromEntries(ids.map((id, i) => [id, `${running[i]!.secure ? 'https' : 'http'}://127.0.0.1:${running[i]!.port}`])) });
} catch (err) {
  send({ type: 'failed', error: (err as Error).stack ?? String(err) });
  process.exit(1);
}
