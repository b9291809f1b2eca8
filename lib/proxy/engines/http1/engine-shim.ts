import util from 'node:util';

// http-proxy 1.18 captures `util._extend` when it loads and calls it on every request. On Node 22+
// that is a deprecated wrapper printing DEP0060 to every user's console; Object.assign does the same
// job. engine.ts imports this module just before http-proxy and calls `restoreExtend()` right after,
// so nothing outside http-proxy sees the swap.
type Extend = (target: object, source: object) => object;
const utilWithExtend = util as unknown as { _extend: Extend };
const original = utilWithExtend._extend;
utilWithExtend._extend = Object.assign;

export function restoreExtend(): void {
  utilWithExtend._extend = original;
}
