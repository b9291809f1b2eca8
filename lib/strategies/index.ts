export { consistentHash, type ConsistentHashOptions, type HashKey } from './consistent-hash.js';
export { ipHash, type IpHashOptions } from './ip-hash.js';
export { leastConnections } from './least-connections.js';
export { leastRequest, type LeastRequestOptions } from './least-request.js';
export { peakEwma, type PeakEwmaOptions } from './peak-ewma.js';
export { powerOfTwoChoices } from './power-of-two-choices.js';
export { random } from './random.js';
export { roundRobin } from './round-robin.js';
export { weightedRoundRobin } from './weighted-round-robin.js';
