import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, generateKeyPair, type JWK, SignJWT } from "jose";

export type TokenOptions = {
  subject?: string;
  email?: string | null;
  name?: string | null;
  orgId?: string;
  /** Seconds from now; negative for an expired token. */
  expiresIn?: number;
  issuer?: string;
  audience?: string;
  /** Sign with a key the JWKS does not publish (a forged token). */
  foreignKey?: boolean;
  /** Leave the `sub` claim out (a token that names nobody). */
  omitSubject?: boolean;
  extraClaims?: Record<string, unknown>;
};

export type TestIdentityProvider = {
  jwksUrl: string;
  issuer: string;
  audience: string;
  orgClaim: string;
  /** A compact RS256 JWT, as the product's IdP would issue. */
  sign(options?: TokenOptions): Promise<string>;
  close(): Promise<void>;
};

/**
 * A real identity provider for tests: an RSA key pair made here, its public half served as a JWKS by
 * a local HTTP server, tokens signed with the private half. Orgplane verifies them over HTTP as it
 * would verify Clerk's, Auth0's or Keycloak's.
 */
export async function startTestIdentityProvider(): Promise<TestIdentityProvider> {
  const kid = `test-${Math.random().toString(36).slice(2, 10)}`;
  const { publicKey, privateKey } = await generateKeyPair("RS256", { extractable: true });
  const foreign = await generateKeyPair("RS256", { extractable: true });
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid, alg: "RS256", use: "sig" };
  const server: Server = createServer((req, res) => {
    if (req.url === "/.well-known/jwks.json") {
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ keys: [jwk] }));
      return;
    }
    res.writeHead(404);
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const issuer = `http://127.0.0.1:${port}/`;
  const audience = "orgplane-tests";
  return {
    jwksUrl: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    issuer,
    audience,
    orgClaim: "org_id",
    async sign(options = {}) {
      const claims: Record<string, unknown> = { ...options.extraClaims };
      if (options.email !== null) {
        claims.email = options.email ?? `${options.subject ?? "user"}@example.test`;
      }
      if (options.name !== null) {
        claims.name = options.name ?? "Test User";
      }
      if (options.orgId !== undefined) {
        claims.org_id = options.orgId;
      }
      const now = Math.floor(Date.now() / 1000);
      const jwt = new SignJWT(claims).setProtectedHeader({ alg: "RS256", kid });
      if (options.omitSubject !== true) {
        jwt.setSubject(options.subject ?? `user_${Math.random().toString(36).slice(2, 12)}`);
      }
      return (
        jwt
          .setIssuer(options.issuer ?? issuer)
          .setAudience(options.audience ?? audience)
          .setIssuedAt(now - 5)
          // Past the verifier's two-minute clock tolerance when negative.
          .setExpirationTime(now + (options.expiresIn ?? 600))
          .sign(options.foreignKey === true ? foreign.privateKey : privateKey)
      );
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
