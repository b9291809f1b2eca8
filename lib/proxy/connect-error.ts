/**
 * Node's happy-eyeballs connect (`autoSelectFamily`) fails with an `AggregateError` whose message
 * is empty. Gives it the messages of its attempts, which name each address tried
 * ('connect ECONNREFUSED 127.0.0.1:8080; connect ECONNREFUSED ::1:8080'); other errors come back
 * as they are. The error keeps its class, `code` and `errors`.
 */
export function describeConnectError<E extends Error>(err: E): E {
  if (err.message !== '' || !(err instanceof AggregateError)) return err;
  err.message = err.errors.map((e: unknown) => (e instanceof Error ? e.message : String(e))).join('; ');
  return err;
}

/**
 * A short reason for logs and health details: the error code, with the addresses a failed
 * connect tried ('ECONNREFUSED 127.0.0.1:8080, [::1]:8080'); else the code, else the message.
 */
export function failureReason(err: unknown): string {
  if (typeof err !== 'object' || err === null) return String(err);
  const { code, message } = err as { code?: unknown; message?: unknown };
  if (typeof code !== 'string' || code === '') return typeof message === 'string' && message !== '' ? message : String(err);
  const attempts = err instanceof AggregateError ? err.errors : [err];
  const tried = attempts.map(endpoint).filter((e) => e !== undefined);
  return tried.length === 0 ? code : `${code} ${tried.join(', ')}`;
}

function endpoint(err: unknown): string | undefined {
  const { address, port } = err as { address?: unknown; port?: unknown };
  if (typeof address !== 'string') return undefined;
  const host = address.includes(':') ? `[${address}]` : address;
  return typeof port === 'number' ? `${host}:${port}` : host;
}

/** Errors only a connect can fail with: the request never left the balancer. */
const CONNECT_FAILURES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'ENOTFOUND', 'EAI_AGAIN']);

/** Whether `err` is a failed connect (a refused, unreachable or unresolvable address), which no upstream ever saw a byte of. */
export function isConnectFailure(err: Error): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code !== undefined && CONNECT_FAILURES.has(code);
}
