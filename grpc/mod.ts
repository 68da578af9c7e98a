/**
 * @module
 * gRPC without a gRPC library: the Protocol Buffers wire format for messages written by hand,
 * the gRPC message prefix and headers, and one unary call over our own HTTP/2 (`h2/`). Used by
 * the ext_authz client (`proxy/`) and the Istio CA client (`tunnel/`). It must not know any
 * particular service: each caller owns its messages and method path.
 */
export {
  type FieldHandlers,
  ProtoReader,
  ProtoWriter,
  readFields,
  varintBytes,
  WIRE,
} from "./protobuf.ts";
export { grpcFrame, grpcMessageText, grpcTimeout, grpcUnframe } from "./framing.ts";
export { callUnary, GrpcError, type GrpcErrorKind, type UnaryCall } from "./unary.ts";
