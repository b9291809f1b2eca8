import createDebug from 'debug';

/** Admission decisions: requests refused by a protection (framing, method, IP, size, rate, filter, queue) and why. */
export const logProtect = createDebug('proxy-balancer:protect');
