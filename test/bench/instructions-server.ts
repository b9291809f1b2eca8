/**
 * The server process `instructions.ts` runs under valgrind: `node --import tsx
 * instructions-server.ts <variant> <servers.ts> <target,target,...> [port]`. Starts one variant
 * from the given `servers.ts` (this checkout's, or another revision's worktree: its variants and its
 * `lib/`, resolved through the `tsconfig.json` of the working directory), on `port` (default: an
 * ephemeral one), and tells the parent over IPC `{ type: 'ready', port }`. Exits with code 0 on the
 * IPC message `{ cmd: 'close' }`, on SIGTERM or when the parent goes away, so that cachegrind
 * writes its totals. On `{ cmd: 'mark' }` calls `process.cpuUsage()` (where callgrind, run with
 * `--dump-before=node::*CPUUsage*`, dumps its counters) and answers `{ type: 'marked' }`.
 */
import http from 'node:http';
import { pathToFileURL } from 'node:url';

export type InstructionsMessage = { type: 'ready'; port: number } | { type: 'marked' } | { type: 'failed'; error: string };

const [id, serversModule, targetList, portArg] = process.argv.slice(2);
const send = (message: InstructionsMessage): void => {
  process.send?.(message);
};

/** servers.ts listens on port 0; a port asked for on the command line replaces that one. */
if (portArg !== undefined && Number(portArg) > 0) {
  const listen = http.Server.prototype.listen;
  let used = false;
  http.Server.prototype.listen = function (this: http.Server, ...args: unknown[]) {
    if (!used && args[0] === 0) {
      used = true;
      args[0] = Number(portArg);
    }
    return (listen as (...a: unknown[]) => http.Server).apply(this, args);
  } as typeof listen;
}

let exiting = false;
try {
  const { startVariant } = (await import(pathToFileURL(serversModule!).href)) as typeof import('./servers.js');
  const targets = (targetList ?? '').split(',').filter((t) => t !== '');
  const running = await startVariant(id!, targets);
  const exit = (): void => {
    if (exiting) return;
    exiting = true;
    // Exits even if some socket keeps close() from finishing: what matters is that cachegrind gets to write.
    setTimeout(() => process.exit(0), 2000).unref();
    void running.close().finally(() => process.exit(0));
  };
  process.on('message', (message: { cmd?: string }) => {
    if (message.cmd === 'close') exit();
    // `--window`: callgrind (`--dump-before=node::*CPUUsage*`) dumps its counters at this call.
    else if (message.cmd === 'mark') {
      process.cpuUsage();
      send({ type: 'marked' });
    }
  });
  process.on('SIGTERM', exit);
  process.on('disconnect', exit);
  send({ type: 'ready', port: running.port });
} catch (err) {
  send({ type: 'failed', error: (err as Error).stack ?? String(err) });
  process.exit(1);
}
