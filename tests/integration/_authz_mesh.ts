/**
 * A test mesh with an ext_authz provider beside it: an HTTP backend for Service `ns1/echo` on
 * port 80, the provider's pod with its own destination-ztunnel stand-in, the given policies and
 * MeshConfig.
 */
import { startMesh, type TestMesh } from "../fixtures/mesh.ts";
import { spiffe } from "../fixtures/pki.ts";
import { DEFAULT_TUNNEL_CONFIG, serveDestination } from "../../tunnel/mod.ts";
import { type Backends, startHttpBackends } from "./_l7.ts";

/** What the mesh needs of the provider: its port, and how to stop it. */
export interface Provider extends AsyncDisposable {
  readonly port: number;
}

/** Options of {@link startAuthzMesh}. */
export interface AuthzMeshOptions<P extends Provider> {
  readonly waypointIp: string;
  readonly vip: string;
  readonly pod: { readonly name: string; readonly ip: string };
  /** The provider's pod IP. */
  readonly authzPod: string;
  /** The provider's Service `ns1/<name>`: its VIP, port and port name (the protocol). */
  readonly authzService: {
    readonly name: string;
    readonly vip: string;
    readonly port: number;
    readonly portName: string;
  };
  /** The provider, already listening on `authzPod`. */
  readonly authz: P;
  /** The policies under test. */
  readonly yaml: string;
  readonly meshConfig: string;
}

/** The running mesh, its backend and provider; dispose with `await using`. */
export interface AuthzMesh<P extends Provider> extends AsyncDisposable {
  readonly mesh: TestMesh;
  readonly backends: Backends;
  readonly authz: P;
}

/** Starts the mesh around an already started provider. */
export async function startAuthzMesh<P extends Provider>(
  options: AuthzMeshOptions<P>,
): Promise<AuthzMesh<P>> {
  const backends = await startHttpBackends([options.pod.ip]);
  const mesh = await startMesh({
    waypointIp: options.waypointIp,
    vip: options.vip,
    pods: [options.pod],
    ports: [{ name: "http", port: 80, targetPort: backends.port }],
    extraYaml: options.yaml + providerYaml(options),
    meshConfig: options.meshConfig,
  });
  // The provider pod's own destination-ztunnel stand-in, on the port every pod's uses.
  const [authzZtunnel] = await serveDestination([{
    host: options.authzPod,
    port: mesh.ztunnelPort,
  }], {
    identity: await mesh.pki.identity(spiffe("ns1", "ext-authz")),
    config: DEFAULT_TUNNEL_CONFIG,
  });
  return {
    mesh,
    backends,
    authz: options.authz,
    async [Symbol.asyncDispose]() {
      await authzZtunnel.close(100);
      await mesh[Symbol.asyncDispose]();
      await backends[Symbol.asyncDispose]();
      await options.authz[Symbol.asyncDispose]();
    },
  };
}

/** The provider's Service and Pod, both named after the Service, on the provider's real port. */
function providerYaml<P extends Provider>(o: AuthzMeshOptions<P>): string {
  const { name, vip, port, portName } = o.authzService;
  return `
---
apiVersion: v1
kind: Service
metadata: { name: ${name}, namespace: ns1 }
spec:
  clusterIP: ${vip}
  selector: { app: ${name} }
  ports: [{ name: ${portName}, port: ${port}, targetPort: ${o.authz.port} }]
---
apiVersion: v1
kind: Pod
metadata: { name: ${name}, namespace: ns1, labels: { app: ${name} } }
spec: { serviceAccountName: ext-authz }
status: { podIP: ${o.authzPod}, conditions: [{ type: Ready, status: "True" }] }
`;
}
