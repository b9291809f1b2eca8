/**
 * The contender of the measurement: a minimal shared cache whose whole policy is
 * `http-cache-semantics` (evaluateRequest, revalidatedPolicy, responseHeaders), with the
 * plumbing any cache needs around it (Vary variants per URL, invalidation by unsafe methods and
 * Location/Content-Location). It is what "build our policy core on the library" would give
 * before any of our own policy is added.
 */
import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import CachePolicy from 'http-cache-semantics';

interface Stored {
  policy: CachePolicy;
  status: number;
  body: Buffer;
}

interface Upstream {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade']);
const SAFE = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);

function read(stream: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  });
}

function relay(res: ServerResponse, status: number, headers: Record<string, unknown>, body: Buffer, head: boolean): void {
  const nominated = String(headers.connection ?? '')
    .split(',')
    .map((n) => n.trim().toLowerCase());
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || nominated.includes(name) || name === 'content-length') continue;
    res.setHeader(name, value as string | string[]);
  }
  res.statusCode = status;
  res.end(head ? undefined : body);
}

export function hcsCache(origin: string): http.Server {
  const store = new Map<string, Stored[]>();
  const agent = new http.Agent({ keepAlive: true });
  const forward = (req: IncomingMessage, headers: IncomingHttpHeaders, body: Buffer): Promise<Upstream> =>
    new Promise((resolve, reject) => {
      const out: IncomingHttpHeaders = {};
      for (const [name, value] of Object.entries(headers)) if (!HOP_BY_HOP.has(name)) out[name] = value;
      const up = http.request(`${origin}${req.url}`, { method: req.method, headers: out, agent }, (res) => {
        read(res).then((b) => resolve({ status: res.statusCode ?? 502, headers: res.headers, body: b }), reject);
      });
      up.on('error', reject);
      up.end(body);
    });
  const server = http.createServer(async (req, res) => {
    try {
      const body = await read(req);
      const key = req.url ?? '/';
      const request = { url: key, method: req.method, headers: req.headers };
      const head = req.method === 'HEAD';
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        const up = await forward(req, req.headers, body);
        if (!SAFE.has(req.method ?? '') && up.status < 400) {
          store.delete(key);
          for (const name of ['location', 'content-location']) {
            const value = up.headers[name];
            if (typeof value === 'string') store.delete(new URL(value, `http://${req.headers.host}${key}`).pathname);
          }
        }
        return relay(res, up.status, up.headers, up.body, head);
      }
      const entries = store.get(key) ?? [];
      let revalidating: { entry: Stored; headers: IncomingHttpHeaders } | undefined;
      for (const entry of entries) {
        const { revalidation, response } = entry.policy.evaluateRequest(request);
        if (response !== undefined && revalidation === undefined) return relay(res, entry.status, response.headers, entry.body, head);
        if (
          revalidating === undefined &&
          revalidation !== undefined &&
          (revalidation.headers['if-none-match'] ?? revalidation.headers['if-modified-since']) !== undefined
        ) {
          revalidating = { entry, headers: revalidation.headers };
        }
      }
      const up = await forward(req, revalidating?.headers ?? req.headers, body);
      if (revalidating !== undefined && up.status === 304) {
        const { policy, modified } = revalidating.entry.policy.revalidatedPolicy(request, { status: up.status, headers: up.headers });
        if (!modified) {
          revalidating.entry.policy = policy;
          return relay(res, revalidating.entry.status, policy.responseHeaders(), revalidating.entry.body, head);
        }
      }
      const policy = new CachePolicy(request, { status: up.status, headers: up.headers }, { shared: true });
      if (policy.storable() && up.status !== 304 && up.status !== 206 && !head) store.set(key, [{ policy, status: up.status, body: up.body }, ...entries]);
      return relay(res, up.status, up.headers, up.body, head);
    } catch {
      if (!res.headersSent) res.statusCode = 502;
      res.end();
    }
  });
  server.on('close', () => agent.destroy());
  return server;
}
