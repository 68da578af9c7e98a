/**
 * JWT parsing and claim checks in the order and with the messages of google/jwt_verify_lib
 * (`jwt.cc` `parseFromString`, `verifyTimeConstraint`, `check_audience.cc`), which Envoy's
 * jwt_authn filter returns as the body of a 401/403. Signatures are checked in `_jwks_keys.ts`.
 */

/** jwt_verify_lib status strings, by Envoy status name. */
export const JwtStatus = {
  JwtMissed: "Jwt is missing",
  JwtNotYetValid: "Jwt not yet valid",
  JwtExpired: "Jwt is expired",
  JwtBadFormat: "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections",
  JwtHeaderParseErrorBadBase64: "Jwt header is an invalid Base64url encoded",
  JwtHeaderParseErrorBadJson: "Jwt header is an invalid JSON",
  JwtHeaderBadAlg: "Jwt header [alg] field is required and must be a string",
  JwtHeaderNotImplementedAlg: "Jwt header [alg] is not supported",
  JwtHeaderBadKid: "Jwt header [kid] field is not a string",
  JwtPayloadParseErrorBadBase64: "Jwt payload is an invalid Base64url encoded",
  JwtPayloadParseErrorBadJson: "Jwt payload is an invalid JSON",
  JwtPayloadParseErrorIssNotString: "Jwt payload [iss] field is not a string",
  JwtPayloadParseErrorSubNotString: "Jwt payload [sub] field is not a string",
  JwtPayloadParseErrorIatNotInteger: "Jwt payload [iat] field is not an integer",
  JwtPayloadParseErrorIatOutOfRange: "Jwt payload [iat] field is not a positive 64 bit integer",
  JwtPayloadParseErrorNbfNotInteger: "Jwt payload [nbf] field is not an integer",
  JwtPayloadParseErrorNbfOutOfRange: "Jwt payload [nbf] field is not a positive 64 bit integer",
  JwtPayloadParseErrorExpNotInteger: "Jwt payload [exp] field is not an integer",
  JwtPayloadParseErrorExpOutOfRange: "Jwt payload [exp] field is not a positive 64 bit integer",
  JwtPayloadParseErrorJtiNotString: "Jwt payload [jti] field is not a string",
  JwtPayloadParseErrorAudNotString: "Jwt payload [aud] field is not a string or string list",
  JwtSignatureParseErrorBadBase64: "Jwt signature is an invalid Base64url encoded",
  JwtEd25519SignatureWrongLength: "Jwt ED25519 signature is wrong length",
  JwtUnknownIssuer: "Jwt issuer is not configured",
  JwtAudienceNotAllowed: "Audiences in Jwt are not allowed",
  JwtVerificationFail: "Jwt verification fails",
  JwksNoValidKeys: "Jwks doesn't have any valid public key",
  JwksKidAlgMismatch: "Jwks doesn't have key to match kid or alg from Jwt",
  JwksParseError: "Jwks is an invalid JSON",
  JwksNoKeys: "Jwks does not have [keys] field",
  JwksBadKeys: "[keys] in Jwks is not an array",
  JwksFetchFail: "Jwks remote fetch is failed",
} as const;

/** One of the status strings. */
export type JwtStatusText = typeof JwtStatus[keyof typeof JwtStatus];

/** `kClockSkewInSecond`: Istio leaves Envoy's default. */
export const CLOCK_SKEW_SECONDS = 60;

/** Algorithms jwt_verify_lib implements (`isImplemented`). */
const ALGORITHMS = new Set([
  "ES256",
  "ES384",
  "ES512",
  "HS256",
  "HS384",
  "HS512",
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "EdDSA",
]);
const B64URL = /^[A-Za-z0-9_-]*={0,2}$/;

/** A parsed, not yet verified token. */
export interface Jwt {
  readonly token: string;
  readonly alg: string;
  /** Empty when absent. */
  readonly kid: string;
  /** The payload segment as sent (what `outputPayloadToHeader` forwards). */
  readonly payloadSegment: string;
  readonly payload: Readonly<Record<string, unknown>>;
  readonly iss: string;
  readonly sub: string;
  readonly audiences: readonly string[];
  /** Seconds; 0 when absent. */
  readonly exp: number;
  readonly nbf: number;
  readonly signature: Uint8Array;
}

/**
 * Parses a token as jwt_verify_lib does.
 *
 * @returns The token, or the status string of the first fault
 */
export function parseJwt(token: string): Jwt | JwtStatusText {
  const parts = token.split(".").filter((p) => p !== "");
  if (parts.length !== 3) return JwtStatus.JwtBadFormat;
  const header = decodeJson(parts[0]);
  if (header === "base64") return JwtStatus.JwtHeaderParseErrorBadBase64;
  if (header === "json") return JwtStatus.JwtHeaderParseErrorBadJson;
  if (typeof header.alg !== "string") return JwtStatus.JwtHeaderBadAlg;
  if (!ALGORITHMS.has(header.alg)) return JwtStatus.JwtHeaderNotImplementedAlg;
  if (header.kid !== undefined && typeof header.kid !== "string") return JwtStatus.JwtHeaderBadKid;
  const payload = decodeJson(parts[1]);
  if (payload === "base64") return JwtStatus.JwtPayloadParseErrorBadBase64;
  if (payload === "json") return JwtStatus.JwtPayloadParseErrorBadJson;
  const fault = payloadFault(payload);
  if (fault) return fault;
  const signature = decodeBase64Url(parts[2]);
  if (!signature) return JwtStatus.JwtSignatureParseErrorBadBase64;
  const aud = payload.aud;
  return {
    token,
    alg: header.alg,
    kid: (header.kid as string | undefined) ?? "",
    payloadSegment: parts[1],
    payload,
    iss: (payload.iss as string | undefined) ?? "",
    sub: (payload.sub as string | undefined) ?? "",
    audiences: typeof aud === "string" ? [aud] : (aud as string[] | undefined) ?? [],
    exp: Math.trunc((payload.exp as number | undefined) ?? 0),
    nbf: Math.trunc((payload.nbf as number | undefined) ?? 0),
    signature,
  };
}

/**
 * `verifyTimeConstraint` with the default 60 s clock skew.
 *
 * @param nowSeconds Unix time in seconds
 */
export function timeStatus(jwt: Jwt, nowSeconds: number): JwtStatusText | undefined {
  if (nowSeconds + CLOCK_SKEW_SECONDS < jwt.nbf) return JwtStatus.JwtNotYetValid;
  if (jwt.exp !== 0 && nowSeconds > jwt.exp + CLOCK_SKEW_SECONDS) return JwtStatus.JwtExpired;
  return undefined;
}

/**
 * `CheckAudience`: allowed when nothing is configured or any `aud` matches, ignoring a leading
 * `http://`/`https://` and one trailing `/` on both sides.
 *
 * @param configured Audiences already passed through {@link sanitizeAudience}
 */
export function audienceAllowed(jwt: Jwt, configured: ReadonlySet<string>): boolean {
  if (configured.size === 0) return true;
  return jwt.audiences.some((aud) => configured.has(sanitizeAudience(aud)));
}

/** The comparable form of an audience. */
export function sanitizeAudience(aud: string): string {
  let out = aud;
  if (out.startsWith("http://")) out = out.slice(7);
  else if (out.startsWith("https://")) out = out.slice(8);
  return out.endsWith("/") ? out.slice(0, -1) : out;
}

const fromBase64 = (Uint8Array as unknown as {
  fromBase64(text: string, options: { alphabet: string; lastChunkHandling: string }): Uint8Array;
}).fromBase64;

/** Decodes base64url with or without padding; undefined when it is not base64url. */
export function decodeBase64Url(text: string): Uint8Array | undefined {
  if (!B64URL.test(text) || text.replace(/=+$/, "").length % 4 === 1) return undefined;
  try {
    // Native decoding (TC39 Uint8Array.fromBase64, in V8 15); a char-by-char atob copy showed in
    // profiles at 6.7 % of a JWT request.
    return fromBase64(text.replace(/=+$/, ""), {
      alphabet: "base64url",
      lastChunkHandling: "loose",
    });
  } catch {
    return undefined;
  }
}

/** The first payload field of the wrong type, checked in jwt_verify_lib's order. */
function payloadFault(payload: Record<string, unknown>): JwtStatusText | undefined {
  if (!isStringOrAbsent(payload.iss)) return JwtStatus.JwtPayloadParseErrorIssNotString;
  if (!isStringOrAbsent(payload.sub)) return JwtStatus.JwtPayloadParseErrorSubNotString;
  const times = [
    [
      "iat",
      JwtStatus.JwtPayloadParseErrorIatNotInteger,
      JwtStatus.JwtPayloadParseErrorIatOutOfRange,
    ],
    [
      "nbf",
      JwtStatus.JwtPayloadParseErrorNbfNotInteger,
      JwtStatus.JwtPayloadParseErrorNbfOutOfRange,
    ],
    [
      "exp",
      JwtStatus.JwtPayloadParseErrorExpNotInteger,
      JwtStatus.JwtPayloadParseErrorExpOutOfRange,
    ],
  ] as const;
  for (const [name, wrongType, outOfRange] of times) {
    const value = payload[name];
    if (value === undefined) continue;
    if (typeof value !== "number") return wrongType;
    if (value < 0 || value >= 2 ** 64) return outOfRange;
  }
  if (!isStringOrAbsent(payload.jti)) return JwtStatus.JwtPayloadParseErrorJtiNotString;
  const aud = payload.aud;
  if (
    aud !== undefined && typeof aud !== "string" &&
    !(Array.isArray(aud) && aud.every((a) => typeof a === "string"))
  ) {
    return JwtStatus.JwtPayloadParseErrorAudNotString;
  }
  return undefined;
}

function isStringOrAbsent(value: unknown): boolean {
  return value === undefined || typeof value === "string";
}

function decodeJson(segment: string): Record<string, unknown> | "base64" | "json" {
  const bytes = decodeBase64Url(segment);
  if (!bytes) return "base64";
  try {
    const value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
    return typeof value === "object" && value !== null && !Array.isArray(value) ? value : "json";
  } catch {
    return "json";
  }
}
