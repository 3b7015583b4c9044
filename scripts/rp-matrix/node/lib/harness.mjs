// Relying-party matrix, Node side: environment, the result recorder, and
// Gatehouse helpers shared by the test files.
//
// run.sh starts a Gatehouse and sets RP_ISSUER, RP_BACKEND, RP_RESULTS,
// RP_SPA_PORT, RP_SCREENSHOTS (a directory for the browser's screenshots),
// and RP_GATEHOUSE_BIN / RP_GATEHOUSE_CONFIG (used only to
// create a test user with `gatehouse users create` when registration over
// HTTP fails, so that one broken endpoint does not hide every other result;
// registration has its own cell in the browser row).
import { appendFileSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const here = dirname(fileURLToPath(import.meta.url));

function required(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run scripts/rp-matrix/run.sh`);
  return v;
}

export const ISSUER = required('RP_ISSUER').replace(/\/+$/, '');
export const BACKEND = process.env.RP_BACKEND || 'sqlite';
const RESULTS = required('RP_RESULTS');
export const TIMEOUT_MS = 10_000; // every HTTP call
const CHECK_TIMEOUT_MS = 45_000; // every check, all its calls included
const PASSWORD_BASE = 'vivid-Meadow-lantern-42';

/** Installed version of an npm package (what actually ran). */
export function versionOf(pkg) {
  const file = join(here, '..', 'node_modules', pkg, 'package.json');
  return JSON.parse(readFileSync(file, 'utf8')).version;
}

/** One line: what went wrong, with the OAuth error fields when there are some. */
export function describe(err) {
  if (!(err instanceof Error)) return String(err);
  const parts = [`${err.name}: ${err.message}`];
  if (err.code && err.code !== 'ERR_ASSERTION') parts.push(`code=${err.code}`);
  if (err.status) parts.push(`HTTP ${err.status}`);
  if (err.error) parts.push(`error=${err.error}`);
  if (err.error_description) parts.push(`error_description=${err.error_description}`);
  const cause = err.cause;
  if (cause instanceof Error) parts.push(`cause: ${cause.message}`);
  else if (cause && typeof cause === 'object' && !(typeof Response !== 'undefined' && cause instanceof Response)) {
    try { parts.push(`cause: ${JSON.stringify(cause).slice(0, 200)}`); } catch { /* not serializable */ }
  }
  return parts.join(' ').replace(/\s+/g, ' ').slice(0, 400);
}

function record(library, version, check, ok, detail) {
  const line = JSON.stringify({ library, version, check, backend: BACKEND, result: ok ? 'pass' : 'fail', detail: ok ? '' : detail });
  appendFileSync(RESULTS, line + '\n');
}

/**
 * A matrix cell: a node:test test whose outcome is also written to the
 * results file. `version` may be a function, evaluated when the test runs.
 */
export function check(library, version, name, fn) {
  test(`${library}: ${name}`, { timeout: CHECK_TIMEOUT_MS + 5_000 }, async () => {
    const v = typeof version === 'function' ? version() : version;
    let timer;
    const deadline = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`check did not finish in ${CHECK_TIMEOUT_MS / 1000} s`)), CHECK_TIMEOUT_MS);
    });
    try {
      await Promise.race([fn(), deadline]);
      record(library, v, name, true, '');
    } catch (err) {
      record(library, v, name, false, describe(err));
      throw err;
    } finally {
      clearTimeout(timer);
    }
  });
}

/** fetch with a timeout; throws on network errors only. */
export function fetchT(url, init = {}) {
  return fetch(url, { ...init, signal: AbortSignal.timeout(TIMEOUT_MS) });
}

export async function discoveryDocument() {
  const res = await fetchT(`${ISSUER}/.well-known/openid-configuration`);
  if (res.status !== 200) throw new Error(`discovery answered ${res.status}`);
  return res.json();
}

/** A fresh {email, password}: registered over HTTP, or by the CLI if that fails. */
export async function newUser(prefix = 'rp-node') {
  const suffix = randomBytes(6).toString('hex');
  const email = `${prefix}-${suffix}@example.com`;
  const password = `${PASSWORD_BASE}-${suffix}`;
  let why;
  try {
    const res = await fetchT(`${ISSUER}/account/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email, password, given_name: 'Ada', client_id: 'spa' }),
    });
    if (res.status === 201) return { email, password };
    why = `HTTP ${res.status} ${(await res.text()).slice(0, 200)}`;
  } catch (err) {
    why = describe(err);
  }
  console.error(`rp-matrix: register failed (${why}); creating ${email} with the CLI`);
  const proc = spawnSync(
    required('RP_GATEHOUSE_BIN'),
    ['--config', required('RP_GATEHOUSE_CONFIG'), 'users', 'create', '--email', email],
    { input: password, encoding: 'utf8', timeout: 60_000 },
  );
  if (proc.status !== 0) throw new Error(`gatehouse users create failed: ${(proc.stderr || String(proc.error)).slice(-300)}`);
  return { email, password };
}

/**
 * Tokens from a plain RFC 6749 form POST, with exactly
 * `Content-Type: application/x-www-form-urlencoded` (no library involved):
 * the fixture for checks that are about something else than getting tokens.
 */
export async function plainPasswordGrant({ email, password }, clientId = 'spa', scope = 'openid profile email offline_access') {
  const body = new URLSearchParams({ grant_type: 'password', username: email, password, client_id: clientId, scope });
  const res = await fetchT(`${ISSUER}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: body.toString(),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`setup: password grant for ${clientId} answered ${res.status}: ${text.slice(0, 200)}`);
  return JSON.parse(text);
}

/** A JWT's payload, unverified: for comparing claims. */
export function payloadOf(jwt) {
  return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8'));
}

// --- browser login without a browser ----------------------------------------------
//
// The hosted login page driven with plain HTTP, as a browser without
// JavaScript would: follow the authorization request to the login page, post
// its form (hidden fields included) with the cookies the server set, and
// stop at the redirect to the client's redirect_uri, a loopback URI nobody
// listens on: its Location is the authorization response.

/** Registered for the clients spa, spring and webapp (loopback: any port matches). */
export const REDIRECT_URI = 'http://127.0.0.1/callback';

/** The IdP's cookies, kept as a browser keeps host-only cookies for it. */
export class CookieJar {
  #cookies = new Map();

  /** Takes the Set-Cookie headers of `res` (Max-Age=0 or an empty value deletes). */
  store(res) {
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq < 1) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const gone = attrs.some((a) => /^\s*max-age\s*=\s*0\s*$/i.test(a));
      if (gone || value === '') this.#cookies.delete(name);
      else this.#cookies.set(name, value);
    }
  }

  has(name) {
    return this.#cookies.has(name);
  }

  get(name) {
    return this.#cookies.get(name);
  }

  set(name, value) {
    this.#cookies.set(name, value);
  }

  header() {
    return [...this.#cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

const ENTITIES = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
function decodeEntities(s) {
  return s.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (m, e) => {
    if (e[0] === '#') return String.fromCodePoint(e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : Number(e.slice(1)));
    return ENTITIES[e.toLowerCase()] ?? m;
  });
}

function attributes(tag) {
  const out = {};
  for (const m of tag.matchAll(/([^\s=<>"'/]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?/g)) {
    out[m[1].toLowerCase()] = decodeEntities(m[2] ?? m[3] ?? m[4] ?? '');
  }
  return out;
}

/** The forms of a page: [{action, method, fields: {name: value}}]. */
export function formsOf(html) {
  const forms = [];
  for (const m of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const a = attributes(m[1]);
    const fields = {};
    for (const input of m[2].matchAll(/<input\b([^>]*)>/gi)) {
      const i = attributes(input[1]);
      if (i.name) fields[i.name] = i.value ?? '';
    }
    forms.push({ action: a.action ?? '', method: (a.method ?? 'get').toLowerCase(), fields });
  }
  return forms;
}

const textOf = (html) => decodeEntities(html.replace(/<[^>]*>/g, ' ')).replace(/\s+/g, ' ').trim();

/** What a page says, for a failure message: its role="alert", else its <main>. */
export function pageSays(html) {
  const alert = html.match(/<[^>]*role="alert"[^>]*>([\s\S]*?)<\//i);
  if (alert) return textOf(alert[1]).slice(0, 200);
  const main = html.match(/<main\b[^>]*>([\s\S]*?)<\/main>/i);
  return textOf(main ? main[1] : html).slice(0, 200);
}

/** One request as a browser makes it, with the jar's cookies; redirects not followed. */
async function browse(url, jar, init = {}) {
  const headers = new Headers(init.headers);
  if (new URL(url).origin === ISSUER && jar.header()) headers.set('cookie', jar.header());
  const res = await fetchT(url, { ...init, headers, redirect: 'manual' });
  jar.store(res);
  return res;
}

async function expectRedirect(res, step, statuses) {
  const location = res.headers.get('location');
  if (!statuses.includes(res.status) || !location) {
    const body = await res.text();
    const says = (res.headers.get('content-type') || '').includes('html') ? pageSays(body) : body.slice(0, 200);
    throw new Error(`${step} answered ${res.status} (expected ${statuses.join(' or ')} with a Location): ${says}`);
  }
  await res.body?.cancel();
  return new URL(location, res.url).href;
}

/**
 * Follows `authorizationUrl` through the hosted login page with the cookies
 * in `jar`; resolves to {callback, loginPage}: the authorization response
 * (where the server sends the browser, not followed) and whether the login
 * page was on the way (not with a live login session: single sign-on).
 */
export async function loginThroughPages(authorizationUrl, { email, password }, jar = new CookieJar()) {
  const where = await expectRedirect(await browse(String(authorizationUrl), jar), 'GET /oauth/authorize', [302]);
  if (!where.startsWith(`${ISSUER}/login?`)) return { callback: where, loginPage: false };

  const res = await browse(where, jar);
  const html = await res.text();
  if (res.status !== 200) throw new Error(`GET /login answered ${res.status}: ${pageSays(html)}`);
  const form = formsOf(html).find((f) => f.method === 'post' && new URL(f.action, where).pathname === '/login');
  if (!form) throw new Error('the login page has no form posting to /login');
  for (const name of ['csrf', 'continue', 'username', 'password']) {
    if (!(name in form.fields)) throw new Error(`the login form has no field ${name}: ${Object.keys(form.fields)}`);
  }
  for (const label of ['Email or username', 'Password']) {
    if (!new RegExp(`<label\\b[^>]*>\\s*${label}\\s*</label>`).test(html)) throw new Error(`the login form has no label "${label}"`);
  }
  const body = new URLSearchParams({ ...form.fields, username: email, password });
  const posted = await browse(new URL(form.action, where).href, jar, {
    method: 'POST',
    // A browser sends its Origin with a form POST.
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: ISSUER },
    body: body.toString(),
  });
  const back = await expectRedirect(posted, 'POST /login', [303]);
  if (!back.startsWith(`${ISSUER}/oauth/authorize?`)) throw new Error(`POST /login sent the browser to ${back}`);
  const callback = await expectRedirect(await browse(back, jar), 'GET /oauth/authorize after the login', [302]);
  return { callback, loginPage: true };
}

/** {verifier, challenge}: PKCE S256 (RFC 7636 §4.1-4.2), by hand. */
export function pkcePair() {
  const verifier = randomBytes(48).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

/** The parameters of an authorization response at `redirectUri`; throws on an error response or a redirect elsewhere. */
export function authorizationResponse(url, redirectUri = REDIRECT_URI) {
  const u = new URL(url);
  const base = `${u.origin}${u.pathname}`;
  const expected = new URL(redirectUri);
  if (base !== `${expected.origin}${expected.pathname}`) throw new Error(`the browser was sent to ${url.slice(0, 300)}, not to ${redirectUri}`);
  const params = Object.fromEntries(u.searchParams);
  if (params.error) throw new Error(`authorization error: ${JSON.stringify(params)}`);
  if (!params.code) throw new Error(`no code in ${url.slice(0, 300)}`);
  return params;
}

/** An authorization request made by hand: {url, verifier, state, nonce}. */
export function authorizationRequest({ clientId = 'spa', redirectUri = REDIRECT_URI, scope = 'openid profile email offline_access', extra = {} } = {}) {
  const { verifier, challenge } = pkcePair();
  const state = randomBytes(16).toString('base64url');
  const nonce = randomBytes(16).toString('base64url');
  const url = new URL(`${ISSUER}/oauth/authorize`);
  const params = {
    response_type: 'code', client_id: clientId, redirect_uri: redirectUri, scope, state, nonce,
    code_challenge: challenge, code_challenge_method: 'S256', ...extra,
  };
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  return { url: url.href, verifier, state, nonce };
}

/** RFC 6749 §4.1.3 as a plain form POST: a code for tokens (public client: client_id in the body). */
export async function plainCodeExchange({ code, verifier, clientId = 'spa', redirectUri = REDIRECT_URI }) {
  const body = new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier, client_id: clientId });
  const res = await fetchT(`${ISSUER}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: body.toString(),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`code exchange for ${clientId} answered ${res.status}: ${text.slice(0, 200)}`);
  return JSON.parse(text);
}

/**
 * Tokens from the authorization code flow with PKCE done by hand (fetch
 * only), for a public client: the fixture for checks that are about
 * something else. The jar keeps the browser's login session.
 */
export async function plainCodeFlow(user, { clientId = 'spa', scope, jar = new CookieJar() } = {}) {
  const req = authorizationRequest({ clientId, scope });
  const { callback } = await loginThroughPages(req.url, user, jar);
  const params = authorizationResponse(callback);
  if (params.state !== req.state) throw new Error(`setup: state came back as ${params.state}`);
  const tokens = await plainCodeExchange({ code: params.code, verifier: req.verifier, clientId });
  return { tokens, jar, nonce: req.nonce };
}
