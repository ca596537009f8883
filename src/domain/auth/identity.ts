import type { IdentityClaims } from "../members/members.types.ts";

export type IdentityFailure =
  | "token_invalid"
  | "token_expired"
  | "token_issuer_invalid"
  | "token_audience_invalid"
  | "token_signature_invalid";

export type IdentityResult =
  | { ok: true; claims: IdentityClaims }
  | { ok: false; reason: IdentityFailure; detail: string };

/** Verifies a sign-in token from the product's identity provider (OIDC/JWT). */
export type IdentityVerifier = { verify(token: string): Promise<IdentityResult> };

/** Three base64url segments: what a compact JWS looks like, and no API key ever does. */
export function looksLikeJwt(credential: string): boolean {
  return credential.length <= 16_384 && /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(credential);
}
