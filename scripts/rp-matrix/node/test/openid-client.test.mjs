// openid-client (v6, on oauth4webapi) as a relying party: discovery from
// the issuer (OIDC and RFC 8414), the password grant through
// genericGrantRequest (it sends `application/x-www-form-urlencoded;charset=UTF-8`),
// the authorization code flow with PKCE (buildAuthorizationUrl, the login
// page posted with fetch, authorizationCodeGrant checking iss, state and
// nonce), RP-initiated logout (buildEndSessionUrl), refresh, revocation,
// userinfo, and introspection as the confidential client `rs`; ID tokens
// signed with ES256 and EdDSA (the clients `es` and `ed`), their signature
// checked against the discovered JWKS (enableNonRepudiationChecks).
import assert from 'node:assert/strict';
import * as client from 'openid-client';
import {
  CookieJar, ISSUER, REDIRECT_URI, TIMEOUT_MS, authorizationRequest, check, fetchT, formsOf, loginThroughPages,
  newUser, pageSays, payloadOf, plainCodeFlow, plainPasswordGrant, versionOf,
} from '../lib/harness.mjs';

const LIB = 'openid-client';
const VERSION = versionOf('openid-client');
const SCOPE = 'openid profile email offline_access';
const POST_LOGOUT_REDIRECT_URI = 'http://127.0.0.1/logged-out'; // registered for spa
const SESSION_COOKIE = 'gatehouse-session'; // over http; __Host-gatehouse-session over https
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
  assertBrowserLoginMetadata(m);
  // RFC 8414: the same server at /.well-known/oauth-authorization-server.
  const oauth2 = await client.discovery(new URL(ISSUER), 'spa', undefined, client.None(), { ...options, algorithm: 'oauth2' });
  const m2 = oauth2.serverMetadata();
  assert.equal(m2.issuer, ISSUER);
  assert.equal(m2.token_endpoint, m.token_endpoint);
  assertBrowserLoginMetadata(m2);
});

function assertBrowserLoginMetadata(m) {
  assert.equal(m.authorization_endpoint, `${ISSUER}/oauth/authorize`);
  assert.equal(m.end_session_endpoint, `${ISSUER}/oauth/logout`);
  assert.deepEqual(m.response_types_supported, ['code']);
  assert.deepEqual(m.code_challenge_methods_supported, ['S256']);
  assert.equal(m.authorization_response_iss_parameter_supported, true);
  assert.ok(m.grant_types_supported?.includes('authorization_code'), `grant_types_supported: ${m.grant_types_supported}`);
}

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

check(LIB, VERSION, 'code flow (PKCE)', async () => {
  const config = await spa();
  const user = await newUser();
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT_URI,
    scope: SCOPE,
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  });
  const { callback, loginPage } = await loginThroughPages(url, user);
  assert.ok(loginPage, 'no login page on the way although the browser had no session');
  // Checks iss (RFC 9207, as discovery promises it), state, then the ID
  // token (signature alg, iss, aud, exp, iat, nonce).
  const tokens = await client.authorizationCodeGrant(config, new URL(callback), {
    pkceCodeVerifier: verifier,
    expectedState: state,
    expectedNonce: nonce,
    idTokenExpected: true,
  });
  assert.equal(tokens.token_type, 'bearer');
  assert.ok(tokens.refresh_token, 'no refresh_token although scope has offline_access');
  const claims = tokens.claims();
  assert.equal(claims.nonce, nonce);
  assert.equal(claims.aud, 'spa');
  assert.deepEqual(claims.amr, ['pwd'], `amr: ${JSON.stringify(claims.amr)}`);
  assert.ok(typeof claims.sid === 'string' && claims.sid, `sid: ${claims.sid}`);
  assert.ok(Number.isInteger(claims.auth_time) && claims.auth_time <= claims.iat, `auth_time ${claims.auth_time}, iat ${claims.iat}`);
  const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  assert.equal(info.sub, claims.sub);
  assert.equal(info.email, user.email);
});

/** GET `url` with the jar's cookies, as a browser would; redirects not followed. */
async function browserGet(url, jar) {
  const res = await fetchT(url, { headers: { cookie: jar.header() }, redirect: 'manual' });
  jar.store(res);
  return res;
}

check(LIB, VERSION, 'logout', async () => {
  const config = await spa();
  const user = await newUser();
  const jar = new CookieJar();
  const { tokens } = await plainCodeFlow(user, { jar });
  assert.ok(tokens.id_token && tokens.refresh_token, 'setup: the code flow gave no id_token or refresh_token');
  const session = jar.get(SESSION_COOKIE);
  assert.ok(session, `setup: no ${SESSION_COOKIE} cookie after the login (cookies: ${jar.header()})`);
  // Whether a browser with this login session gets a code without the login page.
  const sso = async (cookies) => !(await loginThroughPages(authorizationRequest().url, user, cookies)).loginPage;
  assert.ok(await sso(jar), 'setup: the browser has no login session after the code flow');

  // Without id_token_hint a link alone must not sign anyone out: a page asks.
  const ask = client.buildEndSessionUrl(config, { post_logout_redirect_uri: POST_LOGOUT_REDIRECT_URI, state: 'ask' });
  let res = await browserGet(ask.href, jar);
  const html = await res.text();
  assert.equal(res.status, 200, `logout without id_token_hint: HTTP ${res.status} ${pageSays(html)}`);
  assert.match(html, /<button\b[^>]*>\s*Sign out\s*<\/button>/, `no "Sign out" button: ${pageSays(html)}`);
  assert.ok(formsOf(html).some((f) => f.method === 'post'), 'the confirmation page has no form to post');
  assert.ok(await sso(jar), 'the login session ended without a confirmation');

  // With the ID token of this session: signed out at once, back with state.
  const state = client.randomState();
  const url = client.buildEndSessionUrl(config, {
    id_token_hint: tokens.id_token,
    post_logout_redirect_uri: POST_LOGOUT_REDIRECT_URI,
    state,
  });
  res = await browserGet(url.href, jar);
  const location = res.headers.get('location');
  assert.ok([302, 303].includes(res.status) && location, `logout with id_token_hint: HTTP ${res.status} ${pageSays(await res.text())}`);
  const to = new URL(location, url);
  assert.equal(`${to.origin}${to.pathname}`, POST_LOGOUT_REDIRECT_URI, `redirected to ${location}`);
  assert.equal(to.searchParams.get('state'), state, `redirected to ${location}`);
  assert.ok(!jar.has(SESSION_COOKIE), `the ${SESSION_COOKIE} cookie was not cleared`);

  // Ended on the server too: the old cookie no longer logs in, and the
  // refresh tokens of the session are revoked.
  const replay = new CookieJar();
  replay.set(SESSION_COOKIE, session);
  assert.ok(!(await sso(replay)), 'the old login session cookie still gets a code without the login page after logout');
  const err = await oauthError(client.refreshTokenGrant(config, tokens.refresh_token));
  assert.equal(err.error, 'invalid_grant', `refresh after logout: ${err.message}`);
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

/** A JWT's protected header, unverified. */
const headerOf = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[0], 'base64url').toString('utf8'));

// The clients `es` and `ed` (signing_alg = "ES256" / "EdDSA"): discovery
// lists the algorithm; with it as the client's id_token_signed_response_alg
// openid-client requires it in every ID token's header, and with
// enableNonRepudiationChecks it also verifies the signature with the
// discovered JWKS (by default it trusts the token endpoint's TLS).
function checkClientSignsWith(clientId, alg) {
  check(LIB, VERSION, `${alg} tokens`, async () => {
    const config = await client.discovery(
      new URL(ISSUER),
      clientId,
      { id_token_signed_response_alg: alg },
      client.None(),
      { ...options, execute: [...options.execute, client.enableNonRepudiationChecks] },
    );
    const listed = config.serverMetadata().id_token_signing_alg_values_supported;
    assert.ok(listed?.includes(alg), `id_token_signing_alg_values_supported: ${JSON.stringify(listed)}`);
    assert.ok(listed.includes('RS256'), `id_token_signing_alg_values_supported: ${JSON.stringify(listed)}`);
    const user = await newUser();
    const tokens = await client.genericGrantRequest(config, 'password', {
      username: user.email,
      password: user.password,
      scope: SCOPE,
    });
    assert.ok(tokens.id_token, 'no id_token although scope has openid');
    assert.equal(headerOf(tokens.id_token).alg, alg, `ID token header: ${JSON.stringify(headerOf(tokens.id_token))}`);
    assert.equal(headerOf(tokens.access_token).alg, alg, `access token header: ${JSON.stringify(headerOf(tokens.access_token))}`);
    const claims = tokens.claims();
    assert.equal(claims.aud, clientId);
    assert.equal(claims.sub, payloadOf(tokens.access_token).sub);
    // A refresh: the new tokens are signed with the client's algorithm too
    // (an ID token in the response would be checked as above).
    const next = await client.refreshTokenGrant(config, tokens.refresh_token);
    assert.equal(headerOf(next.access_token).alg, alg, `refreshed access token header: ${JSON.stringify(headerOf(next.access_token))}`);
    if (next.id_token) assert.equal(next.claims().sub, claims.sub);
  });
}

checkClientSignsWith('es', 'ES256');
checkClientSignsWith('ed', 'EdDSA');
