// jose as a resource server: createRemoteJWKSet on the discovered jwks_uri
// and jwtVerify with issuer, audience, algorithm and typ pinned: at+jwt for
// the client `spa` (RFC 9068), JWT for the client `spring` (configured with
// access_token_typ = "JWT" for resource servers that refuse at+jwt), and the
// ID token.
import assert from 'node:assert/strict';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { ISSUER, TIMEOUT_MS, check, discoveryDocument, newUser, plainPasswordGrant, versionOf } from '../lib/harness.mjs';

const LIB = 'jose';
const VERSION = versionOf('jose');

let jwksPromise;
const jwks = () =>
  (jwksPromise ??= discoveryDocument().then((m) => createRemoteJWKSet(new URL(m.jwks_uri), { timeoutDuration: TIMEOUT_MS })));

check(LIB, VERSION, 'access token (at+jwt)', async () => {
  const tokens = await plainPasswordGrant(await newUser());
  const { payload, protectedHeader } = await jwtVerify(tokens.access_token, await jwks(), {
    issuer: ISSUER,
    audience: 'spa',
    typ: 'at+jwt',
    algorithms: ['RS256'],
    requiredClaims: ['sub', 'iat', 'exp', 'nbf', 'jti', 'client_id'],
  });
  assert.ok(protectedHeader.kid, 'no kid');
  assert.equal(payload.client_id, 'spa');
  assert.ok(String(payload.scope).split(' ').includes('openid'));
});

check(LIB, VERSION, 'access token (typ JWT)', async () => {
  const tokens = await plainPasswordGrant(await newUser(), 'spring');
  const { payload } = await jwtVerify(tokens.access_token, await jwks(), {
    issuer: ISSUER,
    audience: 'spring',
    typ: 'JWT',
    algorithms: ['RS256'],
    requiredClaims: ['sub', 'iat', 'exp', 'jti', 'client_id'],
  });
  assert.equal(payload.client_id, 'spring');
});

check(LIB, VERSION, 'ID token', async () => {
  const user = await newUser();
  const tokens = await plainPasswordGrant(user);
  assert.ok(tokens.id_token, 'no id_token although scope has openid');
  const id = await jwtVerify(tokens.id_token, await jwks(), {
    issuer: ISSUER,
    audience: 'spa',
    algorithms: ['RS256'],
    requiredClaims: ['sub', 'iat', 'exp'],
  });
  const access = await jwtVerify(tokens.access_token, await jwks(), { issuer: ISSUER, audience: 'spa', algorithms: ['RS256'] });
  assert.equal(id.payload.sub, access.payload.sub);
  assert.equal(id.payload.email, user.email);
});
