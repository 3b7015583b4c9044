// Relying-party matrix, Node side: environment, the result recorder, and
// Gatehouse helpers shared by the test files.
//
// run.sh starts a Gatehouse and sets RP_ISSUER, RP_BACKEND, RP_RESULTS,
// RP_SPA_PORT, and RP_GATEHOUSE_BIN / RP_GATEHOUSE_CONFIG (used only to
// create a test user with `gatehouse users create` when registration over
// HTTP fails, so that one broken endpoint does not hide every other result;
// registration has its own cell in the browser row).
import { appendFileSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
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
