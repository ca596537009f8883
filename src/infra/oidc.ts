import { createRemoteJWKSet, errors, type JWTPayload, jwtVerify } from "jose";
import type { IdentityResult, IdentityVerifier } from "../domain/auth/identity.ts";
import { AppError } from "../lib/errors.ts";

export type OidcOptions = {
  jwksUrl: string;
  issuer: string;
  audience: string;
  /** The claim holding the Orgplane organization id the user acts in (optional in tokens). */
  orgClaim: string;
};

/** Two minutes of skew between our clock and the IdP's, as most OIDC libraries allow. */
const CLOCK_TOLERANCE_SECONDS = 120;

function stringClaim(payload: JWTPayload, name: string, max: number): string | null {
  const value = payload[name];
  return typeof value === "string" && value.length > 0 && value.length <= max ? value : null;
}

/**
 * OIDC sign-in tokens verified with `jose` against the IdP's JWKS (fetched on first use, cached, and
 * refetched when a token names a key id it has not seen: key rotation needs no restart).
 */
export function createOidcVerifier(options: OidcOptions): IdentityVerifier {
  const jwks = createRemoteJWKSet(new URL(options.jwksUrl), {
    timeoutDuration: 5000,
    cooldownDuration: 30_000,
  });
  return {
    async verify(token): Promise<IdentityResult> {
      try {
        const { payload } = await jwtVerify(token, jwks, {
          issuer: options.issuer,
          audience: options.audience,
          clockTolerance: CLOCK_TOLERANCE_SECONDS,
          requiredClaims: ["sub", "exp"],
        });
        const subject = stringClaim(payload, "sub", 255);
        if (subject === null) {
          return { ok: false, reason: "token_invalid", detail: "The token has no usable 'sub' claim" };
        }
        return {
          ok: true,
          claims: {
            subject,
            // An address the IdP says it has not verified is no proof of identity (invitations match on it).
            email:
              payload.email_verified === false
                ? null
                : (stringClaim(payload, "email", 254)?.toLowerCase() ?? null),
            name: stringClaim(payload, "name", 200),
            avatarUrl: stringClaim(payload, "picture", 2048),
            orgId: stringClaim(payload, options.orgClaim, 64),
          },
        };
      } catch (err) {
        if (err instanceof errors.JWTExpired) {
          return { ok: false, reason: "token_expired", detail: "The sign-in token has expired" };
        }
        if (err instanceof errors.JWTClaimValidationFailed) {
          if (err.claim === "iss") {
            return {
              ok: false,
              reason: "token_issuer_invalid",
              detail: "The token was issued by an issuer not accepted here",
            };
          }
          if (err.claim === "aud") {
            return {
              ok: false,
              reason: "token_audience_invalid",
              detail: "The token is not meant for this audience",
            };
          }
          return {
            ok: false,
            reason: "token_invalid",
            detail: `The token's '${err.claim}' claim is not acceptable`,
          };
        }
        if (err instanceof errors.JWSSignatureVerificationFailed || err instanceof errors.JWKSNoMatchingKey) {
          return {
            ok: false,
            reason: "token_signature_invalid",
            detail: "The token's signature does not verify",
          };
        }
        if (identityProviderUnreachable(err)) {
          throw new AppError("service_unavailable", "The identity provider's keys cannot be fetched", {
            retryAfterSeconds: 5,
            cause: err,
          });
        }
        return {
          ok: false,
          reason: "token_invalid",
          detail: "The sign-in token is malformed or not acceptable",
        };
      }
    },
  };
}

/** The JWKS could not be had (timeout, refused connection, non-200 answer): our dependency is down. */
function identityProviderUnreachable(err: unknown): boolean {
  if (err instanceof errors.JWKSTimeout) {
    return true;
  }
  if (err instanceof errors.JOSEError) {
    return err.code === "ERR_JOSE_GENERIC" && err.message.includes("JSON Web Key Set");
  }
  // fetch() rejects with a TypeError ("fetch failed") when the JWKS host is unreachable.
  return err instanceof TypeError;
}
