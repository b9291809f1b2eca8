export { httpHealthCheck, type HttpHealthCheckOptions } from './http-check.js';
export { tcpHealthCheck, type TcpHealthCheckOptions } from './tcp-check.js';
export type { CheckResult, HealthCheckSchedule, HealthCheckSpec, HealthChecker, HealthProbe } from './checker.js';
export { grpcHealthCheck, type GrpcHealthCheckOptions } from './grpc-check.js';
