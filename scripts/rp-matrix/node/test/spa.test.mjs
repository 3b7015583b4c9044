// A browser SPA against the IdP: a tiny static page (spa/) served from
// http://127.0.0.1:$RP_SPA_PORT — another origin than the IdP, listed in its
// server.cors_origins — runs in headless Chromium (Debian's, driven by
// playwright-core) and calls the IdP with fetch. The page reports what it
// got; each step is one cell.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PAGE_TIMEOUT_MS, browserVersion as version, launchBrowser } from '../lib/browser.mjs';
import { ISSUER, check, newUser, payloadOf } from '../lib/harness.mjs';

const SPA_PORT = Number(process.env.RP_SPA_PORT);
const SPA_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'spa');
const LIB = 'Chromium SPA (fetch, CORS)';

function serveSpa() {
  const files = {
    '/': ['index.html', 'text/html; charset=utf-8'],
    '/spa.js': ['spa.js', 'text/javascript; charset=utf-8'],
  };
  const server = createServer((req, res) => {
    const path = new URL(req.url, 'http://x').pathname;
    if (path === '/favicon.ico') {
      res.writeHead(204).end();
      return;
    }
    const file = files[path];
    if (!file) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': file[1], 'cache-control': 'no-store' });
    res.end(readFileSync(join(SPA_DIR, file[0])));
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(SPA_PORT, '127.0.0.1', () => resolve(server));
  });
}

async function runPage() {
  if (!SPA_PORT) throw new Error('RP_SPA_PORT is not set: run scripts/rp-matrix/run.sh');
  const user = await newUser('rp-spa');
  const newEmail = `rp-spa-new-${randomBytes(6).toString('hex')}@example.com`;
  const notes = []; // browser console errors (CORS refusals are reported there)
  const server = await serveSpa();
  let browser;
  try {
    browser = await launchBrowser();
    const page = await browser.newPage();
    page.on('console', (m) => { if (m.type() === 'error') notes.push(m.text()); });
    page.on('pageerror', (e) => notes.push(`page error: ${e.message}`));
    const input = { idp: ISSUER, email: user.email, password: user.password, newEmail };
    await page.goto(`http://127.0.0.1:${SPA_PORT}/#${encodeURIComponent(JSON.stringify(input))}`, { timeout: PAGE_TIMEOUT_MS });
    try {
      await page.waitForFunction(() => window.rpResults !== undefined, null, { timeout: PAGE_TIMEOUT_MS });
    } catch (err) {
      throw new Error(`the page did not finish: ${err.message.split('\n')[0]}; console: ${notes.join(' | ')}`);
    }
    const results = await page.evaluate(() => window.rpResults);
    return { results, user, newEmail, notes };
  } finally {
    if (browser) await browser.close().catch(() => {});
    server.closeAllConnections?.();
    server.close();
  }
}

let run;
const page = () => (run ??= runPage());

/** The step's {status, body}; a fetch that threw (CORS refusal) fails with the console's reason. */
async function step(name) {
  const { results, notes } = await page();
  const r = results[name];
  assert.ok(r, `no result for ${name}`);
  if (r.error) assert.fail(`${r.error}; console: ${notes.join(' | ').slice(0, 300)}`);
  return r;
}

const show = (r) => `HTTP ${r.status} ${JSON.stringify(r.body).slice(0, 200)}`;

check(LIB, version, 'register', async () => {
  const r = await step('register');
  const { newEmail } = await page();
  assert.equal(r.status, 201, show(r));
  assert.equal(r.body.user?.email, newEmail, show(r));
  assert.ok(r.body.tokens?.access_token, `no tokens although client_id was named: ${show(r)}`);
  assert.equal(payloadOf(r.body.tokens.access_token).aud, 'spa');
});

check(LIB, version, 'password grant', async () => {
  const r = await step('token');
  assert.equal(r.status, 200, show(r));
  assert.ok(r.body.access_token, show(r));
  assert.equal(String(r.body.token_type).toLowerCase(), 'bearer', show(r));
  assert.equal(payloadOf(r.body.access_token).aud, 'spa');
});

check(LIB, version, 'userinfo', async () => {
  const r = await step('userinfo');
  const { user } = await page();
  assert.equal(r.status, 200, show(r));
  assert.equal(r.body.email, user.email, show(r));
});

check(LIB, version, 'error body', async () => {
  const r = await step('wrongPassword');
  assert.equal(r.status, 400, show(r));
  assert.equal(r.body?.error, 'invalid_grant', show(r));
});
