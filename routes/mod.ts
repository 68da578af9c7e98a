/**
 * @module
 * Routing: which backend and endpoint a request or connection goes to. Today it holds endpoint
 * load balancing; HTTPRoute/GRPCRoute/TCPRoute matching joins it with the L7 issue. It never
 * opens sockets itself.
 */
export { type Balanced, LeastRequestBalancer, type Pick } from "./lb.ts";
