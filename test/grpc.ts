import http2, { type Http2Server, type ServerHttp2Session } from 'node:http2';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import type { LoadBalancer } from 'proxy-balancer';

// Hand-written gRPC service definitions with identity serializers: the tests exchange raw bytes,
// so no proto files or code generation stand between them and what grpc-js does on the wire.

const identity = (b: Buffer): Buffer => b;

function method(path: string, requestStream: boolean, responseStream: boolean): grpc.MethodDefinition<Buffer, Buffer> {
  return {
    path,
    requestStream,
    responseStream,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  };
}

export const ECHO_SERVICE = {
  unary: method('/test.Echo/Unary', false, false),
  serverStream: method('/test.Echo/ServerStream', false, true),
  clientStream: method('/test.Echo/ClientStream', true, false),
  bidi: method('/test.Echo/Bidi', true, true),
} satisfies grpc.ServiceDefinition;

export interface EchoClient extends grpc.Client {
  unary(request: Buffer, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<Buffer>): grpc.ClientUnaryCall;
  unary(request: Buffer, callback: grpc.requestCallback<Buffer>): grpc.ClientUnaryCall;
  serverStream(request: Buffer, options?: grpc.CallOptions): grpc.ClientReadableStream<Buffer>;
  clientStream(callback: grpc.requestCallback<Buffer>): grpc.ClientWritableStream<Buffer>;
  bidi(options?: grpc.CallOptions): grpc.ClientDuplexStream<Buffer, Buffer>;
}

const EchoClientConstructor = grpc.makeGenericClientConstructor(ECHO_SERVICE, 'Echo');

/** A grpc-js client channel to `address` (host:port), plaintext (h2c). */
export function echoClient(address: string, options: grpc.ChannelOptions = {}): EchoClient {
  return new EchoClientConstructor(address, grpc.credentials.createInsecure(), options) as unknown as EchoClient;
}

/** Resolves with the reply of a unary call, or rejects with its ServiceError. */
export function unaryCall(client: EchoClient, request: Buffer | string, options: grpc.CallOptions = {}): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    client.unary(Buffer.from(request), new grpc.Metadata(), options, (err, reply) => (err ? reject(err) : resolve(reply!)));
  });
}

/** The status of a call that must fail. */
export async function failedCall(call: Promise<unknown>): Promise<grpc.ServiceError> {
  try {
    await call;
  } catch (err) {
    return err as grpc.ServiceError;
  }
  throw new Error('the call succeeded');
}

export interface GrpcServer {
  server: grpc.Server;
  port: number;
  address: string;
  close(): Promise<void>;
}

/** A grpc-js server on 127.0.0.1 with an ephemeral port, plaintext. */
export async function grpcServer(
  services: Array<[grpc.ServiceDefinition, grpc.UntypedServiceImplementation]>,
  options: grpc.ServerOptions = {},
): Promise<GrpcServer> {
  const server = new grpc.Server(options);
  for (const [definition, implementation] of services) server.addService(definition, implementation);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound))),
  );
  return {
    server,
    port,
    address: `127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())).then(() => server.forceShutdown()),
  };
}

export interface H2cFront {
  server: Http2Server;
  port: number;
  address: string;
  sessions: Set<ServerHttp2Session>;
  close(): Promise<void>;
}

/** An h2c server (prior knowledge, what grpc-js's insecure channels speak) in front of `lb`. */
export async function h2cFront(lb: LoadBalancer): Promise<H2cFront> {
  const server = http2.createServer(lb as never);
  const sessions = new Set<ServerHttp2Session>();
  server.on('session', (session) => {
    sessions.add(session);
    session.on('close', () => sessions.delete(session));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    address: `127.0.0.1:${port}`,
    sessions,
    close: () =>
      new Promise<void>((resolve) => {
        for (const session of sessions) session.destroy();
        server.close(() => resolve());
      }),
  };
}
