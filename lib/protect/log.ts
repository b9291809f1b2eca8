import createDebug from 'debug';
import type { Logger } from '../observe/log.js';

/** Admission decisions: requests refused by a protection (framing, method, IP, size, rate, filter, queue) and why. */
export const logProtect: Logger = createDebug('proxy-balancer:protect');
