import type { LoadBalancer, StatusSnapshot } from 'proxy-balancer';
import { listen, request } from './helpers.js';

/** What lb.metrics() and lb.statusPage() show now. */
export async function observed(lb: LoadBalancer): Promise<{ metrics: string; status: StatusSnapshot; page: string }> {
  const metrics = lb.metrics();
  const status = lb.statusPage();
  const server = await listen((req, res) => (req.url!.startsWith('/metrics') ? metrics(req, res) : status(req, res)));
  try {
    const json = await request(`${server.url}/status/?format=json`);
    return { metrics: (await request(`${server.url}/metrics`)).body, status: JSON.parse(json.body), page: (await request(`${server.url}/status/`)).body };
  } finally {
    await server.close();
  }
}

/** Nearest-rank percentile `p` (0–100) of `values`. */
export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}
