/** Whether a store's answer is a promise (a remote store) or the value itself (an in-memory one). */
export function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as Promise<T> | undefined)?.then === 'function';
}
