import { tokenAuth } from "./_fixtures.ts";
import {
  ALIASED,
  allowA,
  type Case,
  denyA,
  from,
  ISSUER1,
  n,
  runCases,
  to,
} from "./_authz_cases.ts";

const sourceCases: Case[] = [
  {
    name: "authorize() allows a principal written without spiffe://",
    policies: [allowA("p", from({ principals: ["cluster.local/ns/mesh/sa/client"] }))],
    expect: { allow: true, policy: n("p") },
  },
  {
    name: "authorize() denies another principal",
    policies: [allowA("p", from({ principals: ["cluster.local/ns/mesh/sa/other"] }))],
    expect: { allow: false },
  },
  {
    name: "authorize() matches a principal prefix",
    policies: [allowA("p", from({ principals: ["cluster.local/ns/mesh/*"] }))],
    expect: { allow: true },
  },
  {
    name: "authorize() matches a principal suffix",
    policies: [allowA("p", from({ principals: ["*/sa/client"] }))],
    expect: { allow: true },
  },
  {
    name: "authorize() needs a peer identity for principals *",
    policies: [allowA("p", from({ principals: ["*"] }))],
    request: { sourcePrincipal: undefined },
    expect: { allow: false },
  },
  {
    name: "authorize() denies plaintext with a DENY notPrincipals *",
    policies: [denyA("no-plaintext", from({ notPrincipals: ["*"] }))],
    request: { sourcePrincipal: undefined },
    expect: { allow: false, policy: n("no-plaintext") },
  },
  {
    name: "authorize() matches a source namespace",
    policies: [allowA("p", from({ namespaces: ["mesh"] }))],
    expect: { allow: true },
  },
  {
    name: "authorize() matches a source namespace with a wildcard",
    policies: [allowA("p", from({ namespaces: ["me*"] }))],
    expect: { allow: true },
  },
  {
    name: "authorize() refuses a namespace listed in notNamespaces",
    policies: [allowA("p", from({ notNamespaces: ["mesh"] }))],
    expect: { allow: false },
  },
  {
    name: "authorize() matches serviceAccounts as namespace/name",
    policies: [allowA("p", from({ serviceAccounts: ["mesh/client"] }))],
    expect: { allow: true },
  },
  {
    name: "authorize() matches a bare service account in the policy's namespace",
    policies: [allowA("p", from({ serviceAccounts: ["client"] }))],
    expect: { allow: true },
  },
  {
    name: "authorize() reads a bare service account in the policy's namespace only",
    policies: [allowA("p", from({ serviceAccounts: ["client"] }))],
    request: { sourcePrincipal: "spiffe://cluster.local/ns/other/sa/client" },
    expect: { allow: false },
  },
  {
    name: "authorize() matches a trust domain suffix",
    policies: [allowA("p", from({ trustDomains: ["*.local"] }))],
    expect: { allow: true },
  },
  {
    name: "authorize() matches ipBlocks with an IPv4 CIDR",
    policies: [allowA("p", from({ ipBlocks: ["10.1.0.0/16"] }))],
    expect: { allow: true },
  },
  {
    name: "authorize() refuses an address outside ipBlocks",
    policies: [allowA("p", from({ ipBlocks: ["10.2.0.0/16"] }))],
    expect: { allow: false },
  },
  {
    name: "authorize() matches ipBlocks with a single address",
    policies: [allowA("p", from({ ipBlocks: ["10.1.0.5"] }))],
    expect: { allow: true },
  },
  {
    name: "authorize() matches ipBlocks with an IPv6 CIDR",
    policies: [allowA("p", from({ ipBlocks: ["fd00:1::/32"] }))],
    request: { sourceIp: "fd00:1:0:0::7" },
    expect: { allow: true },
  },
  {
    name: "authorize() never matches an IPv4 address against an IPv6 range",
    policies: [allowA("p", from({ ipBlocks: ["::/0"] }))],
    expect: { allow: false },
  },
  {
    name: "authorize() matches remoteIpBlocks on the remote address, not the peer",
    policies: [allowA("p", from({ remoteIpBlocks: ["192.0.2.0/24"] }))],
    request: { remoteIp: "192.0.2.9" },
    expect: { allow: true },
  },
  {
    name: "authorize() denies an address in a DENY notIpBlocks complement",
    policies: [denyA("outside", from({ notIpBlocks: ["10.0.0.0/8"] }))],
    request: { sourceIp: "192.168.1.1" },
    expect: { allow: false, policy: n("outside") },
  },
  {
    name: "authorize() matches requestPrincipals as iss/sub",
    policies: [allowA("p", from({ requestPrincipals: ["test-issuer-1@istio.io/sub-1"] }))],
    request: { auth: tokenAuth(ISSUER1) },
    expect: { allow: true },
  },
  {
    name: "authorize() needs a JWT for requestPrincipals *",
    policies: [allowA("p", from({ requestPrincipals: ["*"] }))],
    expect: { allow: false },
  },
  {
    name: "authorize() matches any issuer with requestPrincipals */sub",
    policies: [allowA("p", from({ requestPrincipals: ["*/sub-1"] }))],
    request: { auth: tokenAuth({ iss: "elsewhere", sub: "sub-1" }) },
    expect: { allow: true },
  },
  {
    name: "authorize() matches any subject with requestPrincipals iss/*",
    policies: [allowA("p", from({ requestPrincipals: ["test-issuer-1@istio.io/*"] }))],
    request: { auth: tokenAuth({ iss: "test-issuer-1@istio.io", sub: "someone" }) },
    expect: { allow: true },
  },
  {
    name: "authorize() splits a URL issuer at the last slash",
    policies: [allowA("p", from({ requestPrincipals: ["https://accounts.google.com/1234"] }))],
    request: { auth: tokenAuth({ iss: "https://accounts.google.com", sub: "1234" }) },
    expect: { allow: true },
  },
  {
    name: "authorize() matches notRequestPrincipals for a request without a JWT",
    policies: [allowA("p", from({ notRequestPrincipals: ["test-issuer-1@istio.io/sub-1"] }))],
    expect: { allow: true },
  },
  {
    name: "authorize() widens cluster.local principals to the trust domain and its aliases",
    policies: [allowA("p", from({ principals: ["cluster.local/ns/mesh/sa/client"] }))],
    request: { sourcePrincipal: "spiffe://old-td/ns/mesh/sa/client" },
    context: { mesh: ALIASED },
    expect: { allow: true },
  },
  {
    name: "authorize() keeps a principal of a foreign trust domain as written",
    policies: [allowA("p", from({ principals: ["other.org/ns/mesh/sa/client"] }))],
    request: { sourcePrincipal: "spiffe://old-td/ns/mesh/sa/client" },
    context: { mesh: ALIASED },
    expect: { allow: false },
  },
];

const operationCases: Case[] = [
  {
    name: "authorize() compares hosts without case",
    policies: [allowA("p", to({ hosts: ["A.Mesh.SVC.cluster.local"] }))],
    expect: { allow: true },
  },
  {
    name: "authorize() matches a host suffix",
    policies: [allowA("p", to({ hosts: ["*.svc.cluster.local"] }))],
    expect: { allow: true },
  },
  {
    name: "authorize() keeps the port of the authority in host matching",
    policies: [allowA("p", to({ hosts: ["a.mesh.svc.cluster.local"] }))],
    request: { host: "a.mesh.svc.cluster.local:80" },
    expect: { allow: false },
  },
  {
    name: "authorize() refuses a host listed in notHosts",
    policies: [allowA("p", to({ notHosts: ["a.*"] }))],
    request: { host: "a.mesh" },
    expect: { allow: false },
  },
  {
    name: "authorize() compares methods with case",
    policies: [allowA("p", to({ methods: ["get"] }))],
    expect: { allow: false },
  },
  {
    name: "authorize() denies a method outside notMethods",
    policies: [denyA("d", to({ notMethods: ["GET", "HEAD"] }))],
    request: { method: "DELETE" },
    expect: { allow: false, policy: n("d") },
  },
  {
    name: "authorize() matches an exact path",
    policies: [allowA("p", to({ paths: ["/info"] }))],
    request: { path: "/info" },
    expect: { allow: true },
  },
  {
    name: "authorize() matches a path prefix",
    policies: [allowA("p", to({ paths: ["/api/*"] }))],
    request: { path: "/api/v1/items" },
    expect: { allow: true },
  },
  {
    name: "authorize() matches a path suffix",
    policies: [allowA("p", to({ paths: ["*/info"] }))],
    request: { path: "/a/b/info" },
    expect: { allow: true },
  },
  {
    name: "authorize() ignores the query string in paths",
    policies: [allowA("p", to({ paths: ["/info"] }))],
    request: { path: "/info?x=/admin" },
    expect: { allow: true },
  },
  {
    name: "authorize() matches the normalized path (dot segments)",
    policies: [denyA("d", to({ paths: ["/admin"] }))],
    request: { path: "/public/../admin" },
    expect: { allow: false, policy: n("d") },
  },
  {
    name: "authorize() matches the normalized path (percent-encoded letters)",
    policies: [denyA("d", to({ paths: ["/admin"] }))],
    request: { path: "/%61dmin" },
    expect: { allow: false, policy: n("d") },
  },
  {
    name: "authorize() matches the normalized path (backslash)",
    policies: [denyA("d", to({ paths: ["/admin/x"] }))],
    request: { path: "/admin\\x" },
    expect: { allow: false },
  },
  {
    name: "authorize() keeps %2F under the default normalization",
    policies: [denyA("d", to({ paths: ["/admin/x"] }))],
    request: { path: "/admin%2Fx" },
    expect: { allow: true },
  },
  {
    name: "authorize() decodes %2F under DECODE_AND_MERGE_SLASHES",
    policies: [denyA("d", to({ paths: ["/admin/x"] }))],
    request: { path: "/admin%2F%2Fx" },
    context: { pathNormalization: "DECODE_AND_MERGE_SLASHES" },
    expect: { allow: false },
  },
  {
    name: "authorize() answers 400 for a path with %00",
    policies: [allowA("p", {})],
    request: { path: "/a%00b" },
    expect: { allow: false, status: 400 },
  },
  {
    name: "authorize() matches a {*} template segment",
    policies: [allowA("p", to({ paths: ["/foo/{*}/bar/{**}"] }))],
    request: { path: "/foo/buzz/bar/bat/fuzz.txt" },
    expect: { allow: true },
  },
  {
    name: "authorize() refuses an empty {*} segment",
    policies: [allowA("p", to({ paths: ["/foo/{*}/bar/{**}"] }))],
    request: { path: "/foo//bar/bat.txt" },
    expect: { allow: false },
  },
  {
    name: "authorize() needs the trailing slash before a final {**}",
    policies: [allowA("p", to({ paths: ["/allow/admin/{**}"] }))],
    request: { path: "/allow/admin" },
    expect: { allow: false },
  },
  {
    name: "authorize() lets {**} match nothing between slashes",
    policies: [allowA("p", to({ paths: ["/store/{**}/cart"] }))],
    request: { path: "/store//cart" },
    expect: { allow: true },
  },
  {
    name: "authorize() matches the service port the request was addressed to",
    policies: [allowA("p", to({ ports: ["80"] }))],
    expect: { allow: true },
  },
  {
    name: "authorize() refuses a port listed in notPorts",
    policies: [allowA("p", to({ notPorts: ["80"] }))],
    expect: { allow: false },
  },
];

runCases([...sourceCases, ...operationCases]);
