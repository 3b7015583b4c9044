// jose as a resource server: createRemoteJWKSet on the discovered jwks_uri
// and jwtVerify with issuer, audience, algorithm and typ pinned: at+jwt for
// the client `spa` (RFC 9068), JWT for the client `spring` (configured with
// access_token_typ = "JWT" for resource servers that refuse at+jwt), and the
// ID token; then the access and ID tokens of the clients `es` and `ed`
// (signing_alg = "ES256" / "EdDSA"), each verified with only its algorithm
// allowed and refused with the others.
import assert from 'node:assert/strict';
import { calculateJwkThumbprint, createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { ISSUER, TIMEOUT_MS, check, discoveryDocument, fetchT, newUser, plainPasswordGrant, versionOf } from '../lib/harness.mjs';

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

// How each algorithm's key is published (RFC 7518 §6.2, RFC 8037 §2).
const KEY_SHAPES = { ES256: { kty: 'EC', crv: 'P-256' }, EdDSA: { kty: 'OKP', crv: 'Ed25519' } };
const ALGORITHMS = ['RS256', 'ES256', 'EdDSA'];

/** The published JWK with this kid, fetched as it is served. */
async function publishedKey(kid) {
  const res = await fetchT((await discoveryDocument()).jwks_uri);
  assert.equal(res.status, 200, `the JWKS answered ${res.status}`);
  const { keys = [] } = await res.json();
  const found = keys.filter((k) => k.kid === kid);
  const shown = keys.map(({ kty, crv, alg, use, kid: id }) => ({ kty, crv, alg, use, kid: id }));
  assert.equal(found.length, 1, `${found.length} keys with kid ${kid} in the JWKS: ${JSON.stringify(shown)}`);
  return found[0];
}

/**
 * `token` verified with only `alg` allowed (and issuer, audience, typ), by
 * the published key of that algorithm's shape its kid names, the kid being
 * that key's RFC 7638 thumbprint; refused when only the other algorithms are
 * allowed. Resolves to the payload.
 */
async function verifySignedWith(what, token, { alg, audience, typ, requiredClaims }) {
  const header = decodeProtectedHeader(token);
  assert.equal(header.alg, alg, `${what} header: ${JSON.stringify(header)}`);
  const { payload, protectedHeader } = await jwtVerify(token, await jwks(), {
    issuer: ISSUER,
    audience,
    typ,
    algorithms: [alg],
    requiredClaims,
  });
  assert.ok(protectedHeader.kid, `${what}: no kid`);
  const jwk = await publishedKey(protectedHeader.kid);
  const { kty, crv, use } = jwk;
  assert.deepEqual({ kty, crv, alg: jwk.alg, use }, { ...KEY_SHAPES[alg], alg, use: 'sig' }, `the JWKS key ${jwk.kid}`);
  assert.ok(!('d' in jwk), `the JWKS key ${jwk.kid} publishes its private part d`);
  const nulls = Object.keys(jwk).filter((k) => jwk[k] === null);
  assert.deepEqual(nulls, [], `the JWKS key ${jwk.kid} has members that are null (RFC 7517 §4: omit them)`);
  assert.equal(await calculateJwkThumbprint(jwk, 'sha256'), jwk.kid, 'the kid is not the RFC 7638 thumbprint of its key');
  await assert.rejects(
    jwtVerify(token, await jwks(), { issuer: ISSUER, audience, algorithms: ALGORITHMS.filter((a) => a !== alg) }),
    (err) => {
      assert.equal(err.code, 'ERR_JOSE_ALG_NOT_ALLOWED', `${what} with algorithms other than ${alg}: ${err.message}`);
      return true;
    },
    `${what} was accepted with algorithms other than ${alg}`,
  );
  return payload;
}

function checkClientSignsWith(clientId, alg) {
  check(LIB, VERSION, `${alg} tokens`, async () => {
    const user = await newUser();
    const tokens = await plainPasswordGrant(user, clientId);
    assert.ok(tokens.id_token, 'no id_token although scope has openid');
    const access = await verifySignedWith('access token', tokens.access_token, {
      alg,
      audience: clientId,
      typ: 'at+jwt',
      requiredClaims: ['sub', 'iat', 'exp', 'nbf', 'jti', 'client_id'],
    });
    assert.equal(access.client_id, clientId);
    const id = await verifySignedWith('ID token', tokens.id_token, {
      alg,
      audience: clientId,
      typ: 'JWT',
      requiredClaims: ['sub', 'iat', 'exp'],
    });
    assert.equal(id.sub, access.sub);
    assert.equal(id.email, user.email);
  });
}

checkClientSignsWith('es', 'ES256');
checkClientSignsWith('ed', 'EdDSA');
