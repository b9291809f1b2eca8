import type { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { logProxy } from '../observe/log.js';
import { fail } from '../validate.js';
import { mountPrefix } from './public-prefix.js';

/**
 * Mount paths learned from HTTP requests: enough for an app mounting one balancer at a few paths,
 * few enough that a route parameter in the mount path (`app.use('/:tenant', lb)`, one baseUrl per
 * value a client sends) cannot grow the set without end.
 */
const MAX_LEARNED = 32;

const NOT_FOUND = 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n';

type Mountable = IncomingMessage & { baseUrl?: unknown; originalUrl?: unknown };

/**
 * Where a balancer is mounted, for WebSocket upgrades. They reach `lb.upgrade` from the server,
 * outside the app's router: without this, `app.use('/api', lb)` would tunnel `/api/chat` as
 * `/api/chat` (HTTP gets `/chat`) and `/not-api/x` as well. The mount paths are `mountPath` when
 * given, else learned from the HTTP requests the balancer handles (Express's `req.baseUrl`,
 * Connect's stripped prefix; '' for the whole server). An upgrade at or under one (longest first,
 * whole segments, case-blind as Express and Connect mount) gets the mount path stripped and set as
 * `req.baseUrl`, as the router would have done, so `pathRewrite` and `X-Forwarded-Prefix` treat it
 * as they treat HTTP; any other is not the balancer's.
 */
export class MountScope {
  /** Lower-cased mount paths without a trailing slash, longest first; '' is the whole server. */
  #paths: string[] = [];
  readonly #declared: boolean;
  /** The mount paths seen as they were spelt, so a request already learned costs one lookup. */
  readonly #seen = new Set<string>();
  #learning = false;
  #full = false;
  #warnedUnknown = false;

  constructor(mountPath: unknown) {
    this.#declared = mountPath !== undefined;
    if (mountPath === undefined) return;
    const list = typeof mountPath === 'string' ? [mountPath] : mountPath;
    if (!Array.isArray(list) || list.length === 0) fail('mountPath', "a path the balancer is mounted at, like '/api', or a non-empty array of them", mountPath);
    for (const [i, path] of (list as unknown[]).entries()) {
      const name = typeof mountPath === 'string' ? 'mountPath' : `mountPath[${i}]`;
      if (typeof path !== 'string' || !path.startsWith('/') || /[?#%*:()\s\\]/.test(path) || path.includes('//'))
        fail(name, "an absolute path as given to app.use() ('/api'; '/' for the whole server), with no query, pattern or percent-encoding", path);
      this.#add(path.endsWith('/') ? path.slice(0, -1).toLowerCase() : path.toLowerCase());
    }
  }

  /** From now on, HTTP requests teach the mount paths (unless `mountPath` declared them): `lb.upgrade` is in use. */
  learn(): void {
    if (!this.#declared) this.#learning = true;
  }

  get learning(): boolean {
    return this.#learning;
  }

  /** Records the mount path of an HTTP request the balancer handles. */
  saw(req: IncomingMessage): void {
    const mount = mountPrefix(req);
    if (this.#seen.has(mount)) return;
    const path = mount.toLowerCase();
    if (!this.#paths.includes(path)) {
      if (this.#paths.length >= MAX_LEARNED) {
        if (!this.#full) {
          this.#full = true;
          process.emitWarning(
            `lb.upgrade: the balancer was reached under more than ${MAX_LEARNED} mount paths (a route parameter in the mount path?); WebSocket upgrades are only taken under the first ${MAX_LEARNED}. Name them with the mountPath option.`,
            'ProxyBalancerWarning',
          );
        }
        return;
      }
      this.#add(path);
    }
    if (this.#seen.size < MAX_LEARNED * 4) this.#seen.add(mount);
  }

  #add(path: string): void {
    if (this.#paths.includes(path)) return;
    this.#paths.push(path);
    this.#paths.sort((a, b) => b.length - a.length);
  }

  /**
   * Takes an upgrade into the scope: true once `req` has its mount path stripped (or none to strip);
   * false when it lies outside every mount path, or when no mount path is known yet and the
   * server's request listener is an app with a router that mounts the balancer somewhere.
   */
  admits(req: IncomingMessage, entry: unknown): boolean {
    const paths = this.#paths;
    if (paths.length === 0) {
      const listeners = serverOf(req)?.listeners('request') ?? [];
      // The server hands HTTP requests straight to the balancer: it is mounted nowhere.
      if (listeners.includes(entry as never)) {
        this.#add('');
        return true;
      }
      // A function of the user's in front of it (logging, a hand-made router) mounts nothing either;
      // an app with a router (Express, Connect: use() and handle()) mounts it at a path still unknown.
      if (!listeners.some(isRouterApp)) return true;
      if (!this.#warnedUnknown) {
        this.#warnedUnknown = true;
        process.emitWarning(
          `lb.upgrade: a WebSocket upgrade to ${req.url} arrived before any HTTP request showed where the balancer is mounted, and was not tunnelled. Pass the mount path as the mountPath option (mountPath: '/api'; '/' for the whole server).`,
          'ProxyBalancerWarning',
        );
      }
      return false;
    }
    const url = req.url ?? '';
    const query = url.indexOf('?');
    const path = query === -1 ? url : url.slice(0, query);
    // An absolute-form or '*' target is the balancer's to refuse only under the whole server.
    if (path.charCodeAt(0) !== 0x2f /* / */) return paths[paths.length - 1] === '';
    for (const mount of paths) {
      if (mount === '') return true;
      if (path.length < mount.length || (path.length > mount.length && path.charCodeAt(mount.length) !== 0x2f) /* / */) continue;
      const spelt = path.slice(0, mount.length);
      if (spelt !== mount && spelt.toLowerCase() !== mount) continue;
      const mounted = req as Mountable;
      mounted.originalUrl = url;
      mounted.baseUrl = spelt;
      const rest = url.slice(mount.length);
      req.url = rest === '' || rest.charCodeAt(0) !== 0x2f ? `/${rest}` : rest;
      return true;
    }
    return false;
  }
}

function isRouterApp(listener: unknown): boolean {
  const app = listener as { use?: unknown; handle?: unknown };
  return typeof app.use === 'function' && typeof app.handle === 'function';
}

function serverOf(req: IncomingMessage): EventEmitter | undefined {
  return (req.socket as { server?: EventEmitter } | null)?.server;
}

/**
 * An upgrade outside the balancer's mount paths. With other upgrade listeners on the server
 * (socket.io, a ws server of the app), it is theirs: left untouched. Alone, the balancer answers
 * it, or the client would wait for an answer that never comes.
 */
export function outOfScope(req: IncomingMessage, socket: Duplex): void {
  const server = serverOf(req);
  if (server !== undefined && server.listenerCount('upgrade') > 1) {
    if (logProxy.enabled) logProxy('upgrade %s is outside the mount paths: left to the other upgrade listeners', req.url);
    return;
  }
  if (logProxy.enabled) logProxy('upgrade %s is outside the mount paths: 404', req.url);
  socket.on('error', ignore);
  if (socket.writable) socket.end(NOT_FOUND);
  else socket.destroy();
}

function ignore(): void {}
