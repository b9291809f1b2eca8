import type { MetricType } from './exposition.js';

/** One metric family `lb.metrics()` may export. */
export interface FamilyDef {
  name: string;
  help: string;
  type: MetricType;
  /** prom-client's cluster aggregation (`AggregatorRegistry`). */
  aggregator: 'sum' | 'average' | 'max';
}

export function def(name: string, type: MetricType, help: string, aggregator: FamilyDef['aggregator'] = 'sum'): FamilyDef {
  return { name: `proxy_balancer_${name}`, type, help, aggregator };
}
