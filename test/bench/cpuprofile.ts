/** Reads a V8 `.cpuprofile` and sums time per function and per package, per request. */

export interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface FunctionCost {
  name: string;
  where: string;
  category: string;
  /** Microseconds per request. */
  self: number;
  total: number;
}

export interface ProfileSummary {
  /** Microseconds per request of non-idle main-thread time. */
  busy: number;
  categories: { category: string; self: number }[];
  functions: FunctionCost[];
}

const ROOT = new URL('../../', import.meta.url).href;

/** Which package a frame belongs to: proxy-balancer (lib/), a dependency, Node core, or V8's pseudo-frames. */
export function categorize(url: string, name: string): string {
  if (url === '') return name.startsWith('(') ? name : 'native';
  if (url.startsWith('node:')) return 'node core';
  const modules = url.lastIndexOf('/node_modules/');
  if (modules >= 0) {
    const rest = url.slice(modules + 14).split('/');
    const pkg = rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
    return pkg === 'eventemitter3' || pkg === 'requires-port' ? 'http-proxy' : pkg;
  }
  if (url.startsWith(`${ROOT}lib/`)) return 'proxy-balancer';
  if (url.startsWith(`${ROOT}test/`)) return 'bench harness';
  return 'other';
}

function where(url: string, line: number): string {
  if (url === '') return '';
  const short = url.startsWith(ROOT) ? url.slice(ROOT.length) : url.replace(/^.*\/node_modules\//, '');
  return `${short}:${line + 1}`;
}

export function summarize(profile: CpuProfile, requests: number): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const key = (id: number): string => {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    return `${functionName || '(anonymous)'}\u0000${url}\u0000${lineNumber}`;
  };
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  let busy = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    const weight = profile.timeDeltas[i + 1] ?? profile.timeDeltas[i] ?? 0;
    const frame = byId.get(id)!.callFrame;
    if (frame.functionName === '(idle)') continue;
    busy += weight;
    const k = key(id);
    self.set(k, (self.get(k) ?? 0) + weight);
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const ak = key(at);
      if (seen.has(ak)) continue;
      seen.add(ak);
      total.set(ak, (total.get(ak) ?? 0) + weight);
    }
  }
  const functions: FunctionCost[] = [...total.keys()].map((k) => {
    const [name, url, line] = k.split('\u0000') as [string, string, string];
    return { name, where: where(url, Number(line)), category: categorize(url, name), self: (self.get(k) ?? 0) / requests, total: total.get(k)! / requests };
  });
  const categories = new Map<string, number>();
  for (const f of functions) categories.set(f.category, (categories.get(f.category) ?? 0) + f.self);
  return {
    busy: busy / requests,
    categories: [...categories].map(([category, cost]) => ({ category, self: cost })).sort((a, b) => b.self - a.self),
    functions: functions.sort((a, b) => b.self - a.self),
  };
}
