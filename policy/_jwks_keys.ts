/**
 * JWKS parsing and signature verification with jwt_verify_lib's rules (`jwks.cc`, `verify.cc`):
 * keys that cannot be used are skipped; a token's `kid` selects keys only when both sides have one;
 * a key's `alg`, when set, must equal the token's. Signatures are checked with `npm:jose`, each key
 * imported once per algorithm and kept.
 */
import { compactVerify, importJWK, importX509, type JWK } from "jose";
import { type Jwt, JwtStatus, type JwtStatusText } from "./_jwt.ts";

type Verifier = Awaited<ReturnType<typeof importJWK>>;

/** One usable key of a set. */
export class JwksKey {
  readonly kid: string;
  /** Empty when the key does not pin an algorithm. */
  readonly alg: string;
  /** `RSA`, `EC`, `oct`, `OKP`, or `X509` for a certificate of Google's map format. */
  readonly kty: string;
  readonly #material: JWK | string;
  readonly #imported = new Map<string, Promise<Verifier | undefined>>();

  constructor(kid: string, alg: string, kty: string, material: JWK | string) {
    this.kid = kid;
    this.alg = alg;
    this.kty = kty;
    this.#material = material;
  }

  /** The key as jose wants it for an algorithm; undefined when it cannot serve that algorithm. */
  verifier(alg: string): Promise<Verifier | undefined> {
    let key = this.#imported.get(alg);
    if (!key) {
      const material = this.#material;
      const made = typeof material === "string"
        ? importX509(material, alg)
        : importJWK({ ...material, ext: true }, alg);
      key = made.catch(() => undefined);
      this.#imported.set(alg, key);
    }
    return key;
  }
}

/** A parsed key set. */
export interface KeySet {
  readonly keys: readonly JwksKey[];
  /** Whether a token with this `kid` could find a key (a key without `kid` serves any). */
  hasKid(kid: string): boolean;
}

/** Which token algorithms a key type can verify. */
const ALG_FAMILY: Readonly<Record<string, RegExp>> = {
  RSA: /^(?:RS|PS)/,
  EC: /^ES/,
  oct: /^HS/,
  OKP: /^EdDSA$/,
};
const EC_CURVES: Readonly<Record<string, string>> = {
  ES256: "P-256",
  ES384: "P-384",
  ES512: "P-521",
};

/**
 * Parses a JWKS document: `{"keys": [...]}` or Google's `{"<kid>": "<PEM certificate>"}` map.
 *
 * @returns The usable keys, or the jwt_verify_lib status explaining why there are none
 */
export function parseKeySet(text: string): KeySet | JwtStatusText {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return JwtStatus.JwksParseError;
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
    return JwtStatus.JwksParseError;
  }
  const fields = doc as Record<string, unknown>;
  let keys: JwksKey[];
  if (!("keys" in fields)) {
    const values = Object.values(fields);
    const x509 = values.length > 0 &&
      values.every((v) => typeof v === "string" && v.startsWith("-----BEGIN CERTIFICATE-----"));
    if (!x509) return JwtStatus.JwksNoKeys;
    keys = Object.entries(fields).map(([kid, pem]) => new JwksKey(kid, "", "X509", pem as string));
  } else if (!Array.isArray(fields.keys)) {
    return JwtStatus.JwksBadKeys;
  } else {
    keys = fields.keys.map(readKey).filter((k): k is JwksKey => k !== undefined);
  }
  if (keys.length === 0) return JwtStatus.JwksNoValidKeys;
  const kids = new Set(keys.map((k) => k.kid));
  return Object.freeze({ keys, hasKid: (kid: string) => kids.has(kid) || kids.has("") });
}

/**
 * Signature results per key set. A signature check is a pure function of the token and the keys,
 * and the most expensive step of a request with a JWT (the `http-policy` bench put RS256 at 29 %
 * of the waypoint's CPU), so each token is checked once per key set, like Envoy's
 * `jwt_cache_config`. Time and audience checks still run per request. A rotated key set is a new
 * object, so it starts with an empty cache.
 */
const VERIFIED = new WeakMap<KeySet, Map<string, JwtStatusText | undefined>>();
/** Tokens remembered per key set; the oldest is forgotten first. */
const VERIFIED_MAX = 1024;

/**
 * `verifyJwtWithoutTimeChecking`: tries each key the token may use, remembering the result.
 *
 * @returns undefined when a key verifies the signature, else the status
 */
export async function verifySignature(jwt: Jwt, set: KeySet): Promise<JwtStatusText | undefined> {
  let cache = VERIFIED.get(set);
  if (!cache) VERIFIED.set(set, cache = new Map());
  if (cache.has(jwt.token)) return cache.get(jwt.token);
  const status = await checkSignature(jwt, set);
  if (cache.size >= VERIFIED_MAX) cache.delete(cache.keys().next().value!);
  cache.set(jwt.token, status);
  return status;
}

async function checkSignature(jwt: Jwt, set: KeySet): Promise<JwtStatusText | undefined> {
  let matched = false;
  for (const key of set.keys) {
    if (jwt.kid !== "" && key.kid !== "" && key.kid !== jwt.kid) continue;
    if (key.alg !== "" && key.alg !== jwt.alg) continue;
    matched = true;
    if (key.kty === "OKP" && jwt.alg === "EdDSA" && jwt.signature.length !== 64) {
      return JwtStatus.JwtEd25519SignatureWrongLength;
    }
    if (key.kty !== "X509" && !ALG_FAMILY[key.kty].test(jwt.alg)) continue;
    const verifier = await key.verifier(jwt.alg);
    if (!verifier) continue;
    try {
      await compactVerify(jwt.token, verifier, { algorithms: [jwt.alg] });
      return undefined;
    } catch {
      // Wrong key or bad signature: try the next key.
    }
  }
  return matched ? JwtStatus.JwtVerificationFail : JwtStatus.JwksKidAlgMismatch;
}

/** A key of a `keys` array, or undefined when jwt_verify_lib would skip it. */
function readKey(value: unknown): JwksKey | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  const jwk = value as Record<string, unknown>;
  const kty = jwk.kty;
  if (typeof kty !== "string" || !Object.hasOwn(ALG_FAMILY, kty)) return undefined;
  const kid = typeof jwk.kid === "string" ? jwk.kid : "";
  const alg = typeof jwk.alg === "string" ? jwk.alg : "";
  if (alg !== "" && !ALG_FAMILY[kty].test(alg)) return undefined;
  const strings = (...names: string[]) => names.every((n) => typeof jwk[n] === "string");
  switch (kty) {
    case "RSA":
      return strings("n", "e") ? new JwksKey(kid, alg, kty, jwk as JWK) : undefined;
    case "EC": {
      const crv = jwk.crv ?? (alg === "" ? "P-256" : EC_CURVES[alg]);
      if (typeof crv !== "string" || !Object.values(EC_CURVES).includes(crv)) return undefined;
      if (alg !== "" && EC_CURVES[alg] !== crv) return undefined;
      return strings("x", "y") ? new JwksKey(kid, alg, kty, { ...jwk, crv } as JWK) : undefined;
    }
    case "oct":
      return strings("k") ? new JwksKey(kid, alg, kty, jwk as JWK) : undefined;
    default:
      return jwk.crv === "Ed25519" && strings("x")
        ? new JwksKey(kid, alg, kty, jwk as JWK)
        : undefined;
  }
}
