import type { ClientRequest, IncomingMessage } from 'node:http';

const kCopy = Symbol('proxy-balancer.mirrorCopy');
const kCopies = Symbol('proxy-balancer.mirrorCopies');

type CopiedRequest = IncomingMessage & { [kCopies]?: MirrorCopy[] };
type CopyRequest = ClientRequest & { [kCopy]?: MirrorCopy };
type CopyResponse = IncomingMessage & { [kCopy]?: MirrorCopy };

/** The policy a copy belongs to: its bounds, and who hears that it ended. */
export interface CopyOwner {
  readonly maxBodyBytes: number;
  readonly timeout: number;
  /** Called once per copy when it ends: completed (no error) or failed. */
  ended(copy: MirrorCopy, error: Error | undefined): void;
}

/**
 * One copy of a request on its way to a mirror. It is written as the client's body arrives and never
 * pushes back on it: what the mirror has not taken yet waits in the copy's own buffer, at most
 * `maxBodyBytes`, until the copy ends or its `timeout` aborts it.
 */
export class MirrorCopy {
  readonly policy: CopyOwner;
  readonly request: ClientRequest;
  /** The mirror URL it goes to. */
  readonly target: string;
  /** The client's request target, for the `mirror` event. */
  readonly path: string;
  /** Which of its policy's URLs it goes to. */
  readonly slot: number;
  readonly #timer: NodeJS.Timeout;
  #bytes = 0;
  #settled = false;
  status = 0;

  constructor(policy: CopyOwner, request: ClientRequest, target: string, path: string, slot: number) {
    this.policy = policy;
    this.request = request;
    this.target = target;
    this.path = path;
    this.slot = slot;
    (request as CopyRequest)[kCopy] = this;
    // For its whole life: a copy's failures are counted, never thrown.
    request.on('error', onCopyError);
    request.on('response', onCopyResponse);
    request.on('close', onCopyClose);
    this.#timer = setTimeout(onCopyTimeout, policy.timeout, this);
    this.#timer.unref();
  }

  write(chunk: Buffer): void {
    if (this.#settled) return;
    this.#bytes += chunk.length;
    if (this.#bytes > this.policy.maxBodyBytes) this.abort('request body over maxBodyBytes');
    else this.request.write(chunk);
  }

  end(): void {
    if (!this.#settled) this.request.end();
  }

  /** Destroys the copy (its body will not arrive whole, or it took too long) and counts it failed. */
  abort(why: string): void {
    if (this.#settled) return;
    const error = new Error(`mirror copy aborted: ${why}`);
    this.settle(error);
    this.request.destroy(error);
  }

  settle(error: Error | undefined): void {
    if (this.#settled) return;
    this.#settled = true;
    clearTimeout(this.#timer);
    this.policy.ended(this, error);
  }
}

function onCopyError(this: CopyRequest, err: Error): void {
  this[kCopy]?.settle(err);
}

function onCopyResponse(this: CopyRequest, res: CopyResponse): void {
  const copy = this[kCopy]!;
  copy.status = res.statusCode ?? 0;
  res[kCopy] = copy;
  res.on('error', onResponseError);
  res.on('end', onResponseEnd);
  // Read and discarded: the answer only has to be drained for the connection to be reused.
  res.resume();
}

function onResponseError(this: CopyResponse, err: Error): void {
  this[kCopy]?.settle(err);
}

function onResponseEnd(this: CopyResponse): void {
  const copy = this[kCopy]!;
  copy.settle(undefined);
  // Answered before the whole body was sent (a 413, say): the rest would go nowhere.
  if (!copy.request.writableEnded) copy.request.destroy();
}

function onCopyClose(this: CopyRequest): void {
  this[kCopy]?.settle(new Error('mirror connection closed before the answer ended'));
}

function onCopyTimeout(copy: MirrorCopy): void {
  copy.abort(`no complete answer within ${copy.policy.timeout} ms`);
}

/** Feeds the body of `req` to `copies` as it arrives; a body cut short aborts them. */
export function copyBody(req: IncomingMessage, copies: MirrorCopy[]): void {
  (req as CopiedRequest)[kCopies] = copies;
  req.on('data', onBodyData);
  req.on('end', onBodyEnd);
  req.on('close', onBodyClose);
}

function onBodyData(this: CopiedRequest, chunk: Buffer): void {
  const copies = this[kCopies];
  if (copies !== undefined) for (const copy of copies) copy.write(chunk);
}

function onBodyEnd(this: CopiedRequest): void {
  const copies = this[kCopies];
  this[kCopies] = undefined;
  if (copies !== undefined) for (const copy of copies) copy.end();
}

function onBodyClose(this: CopiedRequest): void {
  const copies = this[kCopies];
  this[kCopies] = undefined;
  // Closed before 'end': the client's body was cut, and a cut body is never passed off as complete.
  if (copies !== undefined) for (const copy of copies) copy.abort('client request body cut short');
}
