// Browser login on the hosted pages: headless Chromium (Debian's, driven by
// playwright-core) is sent to the authorization endpoint as an app sends it,
// fills the login page by its labels, and comes back to the app's
// redirect_uri: a tiny HTTP server on a free loopback port (the registered
// http://127.0.0.1/callback matches on any port). The code is exchanged with
// a plain form POST. Then, in the same browser, single sign-on for a second
// client (`spring`) and prompt=login; in fresh browsers, the login page by
// keyboard alone, and the pages themselves: screenshots at 1280x800 and
// 375x740 into $RP_SCREENSHOTS, and no Content Security Policy violation in
// the console of any page this file opened.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { after } from 'node:test';
import { PAGE_TIMEOUT_MS, browserVersion as version, launchBrowser } from '../lib/browser.mjs';
import {
  BACKEND, ISSUER, authorizationRequest, authorizationResponse, check, newUser, payloadOf, plainCodeExchange,
} from '../lib/harness.mjs';

const LIB = 'Chromium login (hosted pages)';
const ARRIVE_TIMEOUT_MS = 15_000; // from "Sign in" back to the app: a form post and two redirects
const VIEWPORTS = [{ width: 1280, height: 800 }, { width: 375, height: 740 }];
// [name, path, screenshot]: every hosted page a browser can open without a mailed link or session.
const PAGES = [
  ['login', '/login', true],
  ['register', '/register', true],
  ['activate', '/activate', true],
  ['forgot', '/password/forgot', false],
  ['reset', '/password/reset', false], // no token: "This link is incomplete"
  ['logout', '/oauth/logout', false], // no session: "You are signed out"
];

// Console messages about the Content Security Policy, from every page of this file.
const cspViolations = [];

let browserPromise;
const browser = () => (browserPromise ??= launchBrowser());
let appPromise;
const app = () => (appPromise ??= serveApp());

after(async () => {
  const b = await browserPromise?.catch(() => null);
  await b?.close().catch(() => {});
  const a = await appPromise?.catch(() => null);
  if (a) {
    a.server.closeAllConnections?.();
    a.server.close();
  }
});

/** The app: its redirect_uri just says so. Resolves to {server, redirectUri}. */
function serveApp() {
  const server = createServer((req, res) => {
    if (new URL(req.url, 'http://x').pathname !== '/callback') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end('<!doctype html><html lang="en"><title>App</title><p>Back in the app.</p></html>');
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve({ server, redirectUri: `http://127.0.0.1:${server.address().port}/callback` }));
  });
}

/** A fresh browser profile (no cookies) whose console is watched for CSP violations. */
async function newContext(viewport = VIEWPORTS[0]) {
  const context = await (await browser()).newContext({ viewport });
  context.setDefaultTimeout(PAGE_TIMEOUT_MS);
  context.setDefaultNavigationTimeout(PAGE_TIMEOUT_MS);
  context.on('console', (m) => {
    if (m.text().includes('Content Security Policy')) cspViolations.push(`${m.page()?.url() ?? '?'}: ${m.text()}`);
  });
  return context;
}

/** Where the page is, and what it says, for a failure message. */
async function whereIs(page) {
  const title = await page.title().catch(() => '');
  const alert = await page.locator('[role="alert"]').first().textContent({ timeout: 1_000 }).catch(() => null);
  const h1 = alert ? null : await page.locator('h1').first().textContent({ timeout: 1_000 }).catch(() => null);
  // No heading: not one of the pages (a JSON error, say): its text.
  const body = alert || h1 ? null : await page.locator('body').innerText({ timeout: 1_000 }).catch(() => null);
  const says = (alert ?? h1 ?? body?.slice(0, 200))?.replace(/\s+/g, ' ').trim();
  return `${page.url().slice(0, 200)}${title ? ` ("${title}")` : ''}${says ? `, saying "${says}"` : ''}`;
}

async function assertLoginPage(page, why) {
  const u = new URL(page.url());
  assert.ok(u.origin === ISSUER && u.pathname === '/login', `${why}: the browser is at ${await whereIs(page)}, not on the login page`);
  await page.getByLabel('Password', { exact: true }).waitFor({ state: 'visible' });
}

/** Waits for the browser to reach `redirectUri` after `action`; fails saying where it is instead. */
async function arriveAt(page, redirectUri, action, what) {
  const arrived = page.waitForURL((u) => u.href.startsWith(`${redirectUri}?`), { timeout: ARRIVE_TIMEOUT_MS }).then(() => null, (e) => e);
  await action();
  if (await arrived) throw new Error(`after ${what} the browser is at ${await whereIs(page)}, not back at ${redirectUri}`);
}

/** Fills the login page by its labels and clicks "Sign in". */
async function signIn(page, user, redirectUri) {
  await page.getByLabel('Email or username', { exact: true }).fill(user.email);
  await page.getByLabel('Password', { exact: true }).fill(user.password);
  await arriveAt(page, redirectUri, () => page.getByRole('button', { name: 'Sign in', exact: true }).click(), 'clicking "Sign in"');
}

/** The authorization response in the browser's address bar, checked, then the tokens for it. */
async function redeem(page, req, clientId, redirectUri) {
  const params = authorizationResponse(page.url(), redirectUri);
  assert.equal(params.state, req.state, 'state');
  assert.equal(params.iss, ISSUER, 'iss (RFC 9207)');
  const tokens = await plainCodeExchange({ code: params.code, verifier: req.verifier, clientId, redirectUri });
  assert.ok(tokens.id_token, 'no id_token although scope has openid');
  const claims = payloadOf(tokens.id_token);
  assert.equal(claims.aud, clientId);
  assert.equal(claims.nonce, req.nonce, 'nonce');
  return { tokens, claims };
}

// The first login, in one browser profile that the SSO and prompt=login checks go on with.
let firstLogin;
const login = () => (firstLogin ??= (async () => {
  const { redirectUri } = await app();
  const user = await newUser('rp-browser');
  const context = await newContext();
  const page = await context.newPage();
  const req = authorizationRequest({ clientId: 'spa', redirectUri });
  await page.goto(req.url);
  await assertLoginPage(page, 'an authorization request without a session');
  await signIn(page, user, redirectUri);
  assert.equal((await page.locator('p').first().textContent())?.trim(), 'Back in the app.', 'the app page did not load');
  const { claims } = await redeem(page, req, 'spa', redirectUri);
  assert.deepEqual(claims.amr, ['pwd'], `amr: ${JSON.stringify(claims.amr)}`);
  assert.ok(typeof claims.sid === 'string' && claims.sid, `sid: ${claims.sid}`);
  return { page, user, redirectUri, claims };
})());

async function afterFirstLogin() {
  try {
    return await login();
  } catch (err) {
    throw new Error(`not tried: the first login failed (${String(err.message).split('\n')[0]})`);
  }
}

check(LIB, version, 'code flow (PKCE)', async () => {
  await login();
});

check(LIB, version, 'SSO', async () => {
  const first = await afterFirstLogin();
  const { page, redirectUri } = first;
  const visited = [];
  const onRequest = (r) => { if (r.isNavigationRequest()) visited.push(r.url()); };
  page.on('request', onRequest);
  const req = authorizationRequest({ clientId: 'spring', redirectUri });
  try {
    await arriveAt(page, redirectUri, () => page.goto(req.url), 'an authorization request for a second client');
  } finally {
    page.off('request', onRequest);
  }
  const loginPages = visited.filter((u) => u.startsWith(`${ISSUER}/login`));
  assert.deepEqual(loginPages, [], 'the login page was shown again');
  const { claims } = await redeem(page, req, 'spring', redirectUri);
  assert.equal(claims.sub, first.claims.sub, 'another user');
  assert.equal(claims.auth_time, first.claims.auth_time, 'auth_time is not that of the first login');
});

check(LIB, version, 'prompt=login', async () => {
  const first = await afterFirstLogin();
  const { page, user, redirectUri } = first;
  const req = authorizationRequest({ clientId: 'spa', redirectUri, extra: { prompt: 'login' } });
  await page.goto(req.url);
  await assertLoginPage(page, 'prompt=login with a live session');
  await signIn(page, user, redirectUri);
  const { claims } = await redeem(page, req, 'spa', redirectUri);
  assert.equal(claims.sub, first.claims.sub, 'another user');
  assert.ok(claims.auth_time >= first.claims.auth_time, `auth_time ${claims.auth_time} is before the first login's ${first.claims.auth_time}`);
});

/** The focused element: what it is and whether it shows a focus indicator. */
function focused(page) {
  return page.evaluate(() => {
    const el = document.activeElement;
    const cs = getComputedStyle(el);
    return {
      tag: el.tagName.toLowerCase(),
      id: el.id,
      text: (el.innerText || el.value || '').trim().slice(0, 40),
      ring: (cs.outlineStyle !== 'none' && parseFloat(cs.outlineWidth) > 0) || cs.boxShadow !== 'none',
    };
  });
}
const show = (f) => `<${f.tag}${f.id ? ` id="${f.id}"` : ''}>${f.text ? ` "${f.text}"` : ''}`;

check(LIB, version, 'keyboard', async () => {
  const { redirectUri } = await app();
  const user = await newUser('rp-browser');
  const page = await (await newContext()).newPage();
  const req = authorizationRequest({ clientId: 'spa', redirectUri });
  await page.goto(req.url);
  await assertLoginPage(page, 'an authorization request without a session');
  await page.getByLabel('Email or username', { exact: true }).focus();
  await page.keyboard.type(user.email);
  await page.keyboard.press('Tab');
  let f = await focused(page);
  assert.equal(f.id, 'password', `Tab from "Email or username" went to ${show(f)}, not to "Password"`);
  assert.ok(f.ring, 'the focused password field shows no focus indicator');
  await page.keyboard.type(user.password);
  await page.keyboard.press('Tab');
  f = await focused(page);
  assert.ok(f.tag === 'button' && f.text === 'Sign in', `Tab from "Password" went to ${show(f)}, not to "Sign in"`);
  assert.ok(f.ring, 'the focused "Sign in" button shows no focus indicator');
  await arriveAt(page, redirectUri, () => page.keyboard.press('Enter'), 'pressing Enter on "Sign in"');
  const params = authorizationResponse(page.url(), redirectUri);
  assert.equal(params.state, req.state, 'state');
});

// Last: it also reports CSP violations seen by the checks above.
check(LIB, version, 'hosted pages', async () => {
  const dir = process.env.RP_SCREENSHOTS;
  if (!dir) throw new Error('RP_SCREENSHOTS is not set: run scripts/rp-matrix/run.sh');
  mkdirSync(dir, { recursive: true });
  const problems = [];
  for (const viewport of VIEWPORTS) {
    const size = `${viewport.width}x${viewport.height}`;
    const context = await newContext(viewport);
    const page = await context.newPage();
    try {
      for (const [name, path, screenshot] of PAGES) {
        const res = await page.goto(`${ISSUER}${path}`, { waitUntil: 'load' });
        const status = res?.status();
        const csp = res?.headers()['content-security-policy'];
        if (!status || status >= 500 || (screenshot && status !== 200)) problems.push(`${path} (${size}): HTTP ${status}`);
        if (!csp) problems.push(`${path}: no Content-Security-Policy header`);
        const styled = await page.evaluate(() =>
          [...document.styleSheets].some((s) => s.href?.endsWith('/assets/pages.css') && s.cssRules.length > 0));
        if (!styled) problems.push(`${path} (${size}): the stylesheet /assets/pages.css was not applied`);
        const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        if (overflow > 0) problems.push(`${path} (${size}): ${overflow}px wider than the window (horizontal scrolling)`);
        if (screenshot) await page.screenshot({ path: join(dir, `${BACKEND}-${name}-${size}.png`), fullPage: true });
      }
    } finally {
      await context.close().catch(() => {});
    }
  }
  for (const v of cspViolations) problems.push(`CSP violation: ${v}`);
  assert.deepEqual(problems, [], problems.join(' | '));
});
