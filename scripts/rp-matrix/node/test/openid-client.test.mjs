// openid-client (v6, on oauth4webapi) as a relying party: discovery from
// the issuer, the password grant through genericGrantRequest (it sends
// `application/x-www-form-urlencoded;charset=UTF-8`), refresh, revocation,
// userinfo, and introspection as the confidential client `rs`.
import assert from 'node:assert/strict';
import * as client from 'openid-client';
import { ISSUER, TIMEOUT_MS, check, newUser, payloadOf, plainPasswordGrant, versionOf } from '../lib/harness.mjs';

const LIB = 'openid-client';
const VERSION = versionOf('openid-client');
const SCOPE = 'openid profile email offline_access';
const options = { execute: [client.allowInsecureRequests], timeout: TIMEOUT_MS / 1000 }; // http on loopback

let spaConfig;
const spa = () => (spaConfig ??= client.discovery(new URL(ISSUER), 'spa', undefined, client.None(), options));
let rsConfig;
const rs = () =>
  (rsConfig ??= client.discovery(new URL(ISSUER), 'rs', 'rs-secret-123456', client.ClientSecretBasic(), options));

async function oauthError(promise) {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  assert.fail('expected the request to be refused');
}

check(LIB, VERSION, 'discovery', async () => {
  const config = await spa();
  const m = config.serverMetadata();
  assert.equal(m.issuer, ISSUER);
  for (const key of ['token_endpoint', 'jwks_uri', 'userinfo_endpoint', 'revocation_endpoint', 'introspection_endpoint']) {
    assert.ok(m[key], `discovery has no ${key}`);
  }
  assert.ok(m.grant_types_supported?.includes('password'), `grant_types_supported: ${m.grant_types_supported}`);
  assert.ok(m.grant_types_supported?.includes('refresh_token'), `grant_types_supported: ${m.grant_types_supported}`);
  assert.ok(m.id_token_signing_alg_values_supported?.includes('RS256'));
});

check(LIB, VERSION, 'password grant', async () => {
  const config = await spa();
  const user = await newUser();
  const tokens = await client.genericGrantRequest(config, 'password', {
    username: user.email,
    password: user.password,
    scope: SCOPE,
  });
  assert.equal(tokens.token_type, 'bearer'); // oauth4webapi lower-cases it
  assert.ok(tokens.access_token);
  assert.ok(tokens.refresh_token, 'no refresh_token');
  assert.ok(tokens.id_token, 'no id_token although scope has openid');
  assert.ok(tokens.expiresIn() > 0);
  // The ID token was validated by openid-client (iss, aud, exp, iat, signature alg).
  const claims = tokens.claims();
  assert.equal(claims.sub, payloadOf(tokens.access_token).sub);
  assert.equal(claims.aud, 'spa');
});

check(LIB, VERSION, 'refresh', async () => {
  const config = await spa();
  const first = await plainPasswordGrant(await newUser());
  const next = await client.refreshTokenGrant(config, first.refresh_token);
  assert.ok(next.access_token);
  assert.notEqual(next.access_token, first.access_token);
  assert.ok(next.refresh_token && next.refresh_token !== first.refresh_token, 'refresh token not rotated');
  assert.equal(payloadOf(next.access_token).sub, payloadOf(first.access_token).sub);
});

check(LIB, VERSION, 'revoke', async () => {
  const config = await spa();
  const first = await plainPasswordGrant(await newUser());
  await client.tokenRevocation(config, first.refresh_token, { token_type_hint: 'refresh_token' });
  const err = await oauthError(client.refreshTokenGrant(config, first.refresh_token));
  assert.equal(err.error, 'invalid_grant', `refresh after revocation: ${err.message}`);
});

check(LIB, VERSION, 'userinfo', async () => {
  const config = await spa();
  const user = await newUser();
  const tokens = await plainPasswordGrant(user, 'spa', 'openid profile email');
  const sub = payloadOf(tokens.access_token).sub;
  const info = await client.fetchUserInfo(config, tokens.access_token, sub);
  assert.equal(info.sub, sub);
  assert.equal(info.email, user.email);
  // OIDC Core §5.3: userinfo is for tokens with the openid scope; a token
  // without it gets RFC 6750 §3.1 insufficient_scope (403 and a challenge).
  const noOpenid = await plainPasswordGrant(user, 'spa', 'profile email');
  const err = await oauthError(client.fetchUserInfo(config, noOpenid.access_token, sub));
  assert.ok(err instanceof client.WWWAuthenticateChallengeError, `userinfo without openid: ${err.name}: ${err.message}`);
  assert.equal(err.status, 403, `userinfo without openid: HTTP ${err.status}`);
  assert.ok(
    err.cause.some((c) => c.scheme === 'bearer' && c.parameters.error === 'insufficient_scope'),
    `userinfo without openid: challenges ${JSON.stringify(err.cause)}`,
  );
});

check(LIB, VERSION, 'introspect', async () => {
  const config = await rs();
  const tokens = await plainPasswordGrant(await newUser());
  const info = await client.tokenIntrospection(config, tokens.access_token, { token_type_hint: 'access_token' });
  assert.equal(info.active, true);
  assert.equal(info.client_id, 'spa');
  assert.equal(info.sub, payloadOf(tokens.access_token).sub);
  // RFC 7662 §2.2: token_type as in RFC 6749 §7.1, i.e. "Bearer" (case-insensitive).
  assert.equal(String(info.token_type).toLowerCase(), 'bearer', `token_type: ${info.token_type}`);
  assert.ok(String(info.scope).split(' ').includes('openid'));
  const unknown = await client.tokenIntrospection(config, 'not-a-token');
  assert.equal(unknown.active, false);
});
