/** gRPC facts shared by the codecs, the proxy's local replies and telemetry. */

/**
 * Envoy's HTTP-to-gRPC status mapping (`Grpc::Utility::httpToGrpcStatus`).
 *
 * @param status An HTTP status
 * @returns The gRPC status code
 */
export function grpcStatusForHttp(status: number): number {
  switch (status) {
    case 400:
      return 13;
    case 401:
      return 16;
    case 403:
      return 7;
    case 404:
      return 12;
    case 429:
    case 502:
    case 503:
    case 504:
      return 14;
    default:
      return 2;
  }
}
