// Headless check of Swagger UI at /docs, as a person uses it, in two fresh
// browser profiles:
//   code:     Authorize → section "oauth2 (OAuth2, authorizationCode with
//             PKCE)" (Swagger UI's title when initOAuth turned PKCE on)
//             (client_id prefilled "docs", scopes openid profile email) →
//             its Authorize button opens a popup on the hosted login page →
//             "Email or username", "Password", "Sign in" → the popup comes back
//             to /docs/oauth2-redirect.html with code, state and iss, and
//             closes → Swagger UI exchanges the code (the token request must
//             carry a code_verifier matching the S256 code_challenge of the
//             authorization request) and shows the scheme as authorized;
//   password: Authorize → section "oauth2 (OAuth2, password)" → username and
//             password → Authorize → the token request answers 200;
// then, in each, GET /account/me "Try it out" → Execute must show 200 with
// the user's email, sent with a Bearer token.
//
//   node check.mjs <base-url> <email> <password>
//
// <base-url> must be the server's public_url (the docs client's redirect URI
// is built from it). Uses Debian's chromium (/usr/bin/chromium, override with
// CHROMIUM) through playwright-core. Screenshots beside this file:
// last-run-code.png and last-run-password.png (GET /account/me with its live
// response on success, the viewport on failure), last-run-popup.png (the login
// popup, when open at a failure). Exits 1 saying which step failed; with
// SWAGGER_UI_REASON set, also writes that one-line reason to that file.
// Uncaught page errors and Content Security Policy violations fail the check;
// other console errors are listed.
import { createHash } from 'node:crypto';
import { readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const [base, email, password] = process.argv.slice(2);
if (!base || !email || !password) {
  console.error('usage: node check.mjs <base-url> <email> <password>');
  process.exit(2);
}
const origin = new URL(base).origin;
const redirectUri = `${origin}/docs/oauth2-redirect.html`;
const here = dirname(fileURLToPath(import.meta.url));
const shot = (name) => join(here, `last-run-${name}.png`);
const STEP_TIMEOUT = Number(process.env.STEP_TIMEOUT_MS || 20000);
const SCOPES = ['openid', 'profile', 'email']; // what initOAuth asks for

let step = 'launch';
const notes = []; // console errors, failed requests: printed on failure, listed on success
const fatal = []; // page errors, CSP violations: fail the check
let browser;
let page; // the current flow's /docs tab
let popup; // the login popup while it is open

class CheckFailure extends Error {}
function fail(message) {
  throw new CheckFailure(message);
}

async function bodyOf(response) {
  try {
    return (await response.text()).replace(/\s+/g, ' ').slice(0, 500);
  } catch {
    return '(body unavailable)';
  }
}

/** Where a page is and what it says, for a failure message. */
async function whereIs(p) {
  if (!p || p.isClosed()) return '(closed)';
  const text = await p.locator('body').innerText({ timeout: 1000 }).catch(() => '');
  return `${p.url().slice(0, 300)} saying "${text.replace(/\s+/g, ' ').trim().slice(0, 300)}"`;
}

const pathOf = (url) => new URL(url).pathname;
const isToken = (r) => r.method() === 'POST' && pathOf(r.url()) === '/oauth/token';

/** A fresh profile whose pages (the popup too) are watched. */
async function newTab(flow) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
  context.setDefaultTimeout(STEP_TIMEOUT);
  context.setDefaultNavigationTimeout(STEP_TIMEOUT);
  context.on('console', (m) => {
    const where = `${m.page() ? pathOf(m.page().url()) : '?'}${m.location()?.url ? ` (${m.location().url})` : ''}`;
    if (m.text().includes('Content Security Policy')) fatal.push(`${flow}: CSP violation on ${where}: ${m.text()}`);
    // The server has no /favicon.ico; Chromium asks for it anyway.
    else if (m.type() === 'error' && !m.location()?.url?.endsWith('/favicon.ico')) notes.push(`${flow}: console error on ${where}: ${m.text()}`);
  });
  context.on('weberror', (e) => fatal.push(`${flow}: uncaught page error on ${pathOf(e.page()?.url() ?? base)}: ${e.error().message}`));
  context.on('response', (r) => {
    if (r.status() >= 400) notes.push(`${flow}: ${r.request().method()} ${r.url().slice(0, 200)} answered ${r.status()}`);
  });
  context.on('requestfailed', (r) => notes.push(`${flow}: request failed: ${r.method()} ${r.url()} ${r.failure()?.errorText}`));
  const requests = [];
  context.on('request', (r) => requests.push(r));
  page = await context.newPage();
  return { context, requests };
}

async function openDocs() {
  const docs = await page.goto(`${base}/docs/`, { waitUntil: 'load' });
  if (!docs || docs.status() !== 200) fail(`GET /docs/ answered ${docs?.status()}`);
  await page.locator('.swagger-ui .information-container').waitFor();
}

/** Opens the Authorize dialog; returns the section of scheme "oauth2" for `flow`. */
async function authSection(flow) {
  const authorizeButton = page.locator('.auth-wrapper button.authorize');
  if ((await authorizeButton.count()) === 0) fail('no Authorize button: the spec declares no security scheme');
  await authorizeButton.first().click();
  const dialog = page.locator('.dialog-ux .modal-ux');
  await dialog.waitFor();
  const title = new RegExp(`^\\s*oauth2\\s*\\(OAuth2,\\s*${flow.replace(/ /g, '\\s+')}\\)`);
  const section = dialog.locator('.auth-container').filter({ has: page.locator('h4', { hasText: title }) });
  if ((await section.count()) !== 1) {
    const titles = await dialog.locator('.auth-container h4').allInnerTexts();
    fail(`expected one "oauth2 (OAuth2, ${flow})" section in the dialog, found: ${JSON.stringify(titles)}`);
  }
  return { dialog, section };
}

/** After a token answer: the section must show "Authorized" and "Logout", not an error. */
async function assertAuthorized(section) {
  const logout = section.locator('button', { hasText: 'Logout' });
  const error = section.locator('.errors');
  await Promise.race([logout.waitFor(), error.waitFor()]).catch(() => {});
  if ((await error.count()) > 0 && (await logout.count()) === 0) {
    fail(`Swagger UI reports an authorization error: ${(await error.innerText()).replace(/\s+/g, ' ').trim()}`);
  }
  if ((await logout.count()) === 0) fail('the section shows no "Logout" button: Swagger UI did not store a token');
  const authorized = section.locator('h6', { hasText: /^\s*Authorized\s*$/ });
  if ((await authorized.count()) === 0) fail('the section does not say "Authorized"');
}

async function closeDialog(dialog) {
  await dialog.locator('button.btn-done, button.close-modal').first().click();
  await dialog.waitFor({ state: 'detached' });
}

/** GET /account/me: Try it out → Execute must show 200 with the email, sent with a Bearer token. */
async function tryAccountMe(flow) {
  step = `${flow}: expand GET /account/me`;
  const op = page.locator('.opblock.opblock-get').filter({
    has: page.locator('.opblock-summary-path[data-path="/account/me"]'),
  });
  if ((await op.count()) !== 1) fail(`expected one GET /account/me operation, found ${await op.count()}`);
  await op.locator('.opblock-summary-control, .opblock-summary').first().click();
  await op.locator('.opblock-body').waitFor();
  const lock = op.locator('.authorization__btn');
  if ((await lock.count()) === 0) fail('GET /account/me declares no security requirement in the spec');
  const lockLabel = await lock.first().getAttribute('aria-label');
  if (lockLabel !== 'authorization button locked') {
    fail(`the lock of GET /account/me is not shown as locked (authorized): aria-label ${JSON.stringify(lockLabel)}`);
  }

  step = `${flow}: GET /account/me Try it out → Execute`;
  await op.locator('button.try-out__btn').click();
  const meResponse = page.waitForResponse((r) => r.request().method() === 'GET' && pathOf(r.url()) === '/account/me');
  await op.locator('button.execute').click();
  const me = await meResponse;
  const sentAuth = me.request().headers().authorization ?? 'none';

  step = `${flow}: read the GET /account/me response Swagger UI shows`;
  const live = op.locator('.live-responses-table');
  await live.waitFor();
  const shownStatus = (await live.locator('tbody .response-col_status').first().innerText()).trim();
  const shownBody = await live.locator('tbody .response-col_description').first().innerText();
  if (shownStatus !== '200') {
    fail(`Swagger UI shows ${shownStatus} for GET /account/me (Authorization sent: ${sentAuth.slice(0, 20)}…; network status ${me.status()}; body ${shownBody.slice(0, 400)})`);
  }
  if (!shownBody.includes(email)) fail(`the 200 body shown does not contain ${email}: ${shownBody.slice(0, 400)}`);
  if (!sentAuth.startsWith('Bearer ')) fail(`GET /account/me was sent without a Bearer token (Authorization: ${sentAuth})`);

  await op.locator('.opblock-summary').first().evaluate((el) => el.scrollIntoView()); // curl, code, body in view
  await page.screenshot({ path: shot(flow) });
}

function failIfFatal() {
  if (fatal.length) fail(fatal.join('; '));
}

// --- 1. authorization code flow with PKCE, client "docs" ---------------------------------

async function codeFlow() {
  const flow = 'code';
  step = `${flow}: open /docs`;
  const { requests } = await newTab(flow);
  await openDocs();

  step = `${flow}: open the Authorize dialog`;
  // Swagger UI titles the flow "authorizationCode with PKCE" when initOAuth
  // turned PKCE on.
  const { dialog, section } = await authSection('authorizationCode with PKCE');

  step = `${flow}: client_id and scopes of the authorizationCode section`;
  const clientId = section.locator('input[id^="client_id"]');
  if ((await clientId.count()) !== 1) fail('the section has no client_id field');
  const shownId = await clientId.inputValue();
  if (shownId !== 'docs') fail(`client_id is prefilled with ${JSON.stringify(shownId)}, not "docs" (initOAuth)`);
  for (const scope of SCOPES) {
    const box = section.locator(`.scopes input[type="checkbox"][data-value="${scope}"]`);
    if ((await box.count()) !== 1) fail(`no checkbox for scope ${scope} in the section`);
    if (!(await box.isChecked())) {
      const id = await box.getAttribute('id');
      await section.locator(`label[for="${id}"]`).click();
      if (!(await box.isChecked())) fail(`could not tick scope ${scope}`);
    }
  }

  step = `${flow}: Authorize opens the login popup`;
  const popupEvent = page.waitForEvent('popup');
  await section.locator('button.authorize', { hasText: 'Authorize' }).click();
  popup = await popupEvent;
  popup.setDefaultTimeout(STEP_TIMEOUT);
  await popup.waitForURL((u) => u.origin === origin && u.pathname === '/login').catch(async () => {
    fail(`the popup is at ${await whereIs(popup)}, not on the login page`);
  });

  step = `${flow}: the authorization request`;
  const authReq = requests.find((r) => r.method() === 'GET' && pathOf(r.url()) === '/oauth/authorize');
  if (!authReq) fail('the popup did not go through GET /oauth/authorize');
  const asked = new URL(authReq.url()).searchParams;
  const expect = { response_type: 'code', client_id: 'docs', redirect_uri: redirectUri, code_challenge_method: 'S256' };
  for (const [k, v] of Object.entries(expect)) {
    if (asked.get(k) !== v) fail(`authorization request ${k}=${JSON.stringify(asked.get(k))}, expected ${JSON.stringify(v)}: ${authReq.url()}`);
  }
  if (!asked.get('code_challenge')) fail(`the authorization request has no code_challenge: ${authReq.url()}`);
  if (!asked.get('state')) fail(`the authorization request has no state: ${authReq.url()}`);
  const askedScopes = (asked.get('scope') ?? '').split(' ');
  for (const s of SCOPES) if (!askedScopes.includes(s)) fail(`the authorization request does not ask for scope ${s}: scope=${asked.get('scope')}`);

  step = `${flow}: sign in on the login page in the popup`;
  await popup.getByLabel('Email or username', { exact: true }).fill(email);
  await popup.getByLabel('Password', { exact: true }).fill(password);
  const closed = popup.waitForEvent('close').then(() => true, () => false);
  const tokenResponse = page.waitForResponse((r) => isToken(r.request())).catch(() => null);
  await popup.getByRole('button', { name: 'Sign in', exact: true }).click();
  if (!(await closed)) {
    fail(`the popup did not close after "Sign in": it is at ${await whereIs(popup)}`);
  }
  popup = undefined;

  step = `${flow}: the redirect to oauth2-redirect.html`;
  const back = requests.find((r) => r.url().startsWith(`${redirectUri}?`));
  if (!back) {
    const seen = requests.filter((r) => r.isNavigationRequest()).map((r) => r.url().slice(0, 120));
    fail(`the popup never came to ${redirectUri}?…; its navigations: ${JSON.stringify(seen)}`);
  }
  const answered = new URL(back.url()).searchParams;
  if (answered.get('error')) fail(`the authorization response is an error: ${back.url()}`);
  if (!answered.get('code')) fail(`the authorization response has no code: ${back.url()}`);
  if (answered.get('state') !== asked.get('state')) fail(`the authorization response's state ${answered.get('state')} is not the request's ${asked.get('state')}`);
  if (answered.get('iss') !== origin) fail(`the authorization response's iss is ${JSON.stringify(answered.get('iss'))}, expected ${JSON.stringify(origin)}`);

  step = `${flow}: the token request Swagger UI made`;
  const token = await tokenResponse;
  if (!token) fail('Swagger UI made no POST /oauth/token after the popup closed');
  const sent = new URLSearchParams(token.request().postData() ?? '');
  const sentSummary = `POST /oauth/token (Authorization: ${token.request().headers().authorization ?? 'none'}; body: ${[...sent.keys()].join(', ')})`;
  if (sent.get('grant_type') !== 'authorization_code') fail(`${sentSummary}: grant_type=${sent.get('grant_type')}`);
  if (sent.get('code') !== answered.get('code')) fail(`${sentSummary}: not the code of the authorization response`);
  const verifier = sent.get('code_verifier');
  if (!verifier) fail(`${sentSummary}: no code_verifier`);
  if (!/^[A-Za-z0-9._~-]{43,128}$/.test(verifier)) fail(`${sentSummary}: code_verifier ${JSON.stringify(verifier)} is not 43-128 unreserved characters`);
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  if (challenge !== asked.get('code_challenge')) fail(`${sentSummary}: BASE64URL(SHA256(code_verifier)) = ${challenge}, not the code_challenge ${asked.get('code_challenge')}`);
  if (sent.get('redirect_uri') !== redirectUri) fail(`${sentSummary}: redirect_uri=${sent.get('redirect_uri')}`);
  if (token.status() !== 200) fail(`${sentSummary} → ${token.status()} ${await bodyOf(token)}`);

  step = `${flow}: Swagger UI shows the scheme as authorized`;
  await assertAuthorized(section);
  await closeDialog(dialog);

  await tryAccountMe(flow);
  failIfFatal();
  await page.context().close();
}

// --- 2. password flow (first-party mode: any client id) ------------------------------------

async function passwordFlow() {
  const flow = 'password';
  step = `${flow}: open /docs`;
  await newTab(flow);
  await openDocs();

  step = `${flow}: open the Authorize dialog`;
  const { dialog, section } = await authSection('password');

  step = `${flow}: log in with the password flow`;
  await section.locator('#oauth_username').fill(email);
  await section.locator('#oauth_password').fill(password);
  const tokenResponse = page.waitForResponse((r) => isToken(r.request()));
  await section.locator('button.authorize', { hasText: 'Authorize' }).click();
  const token = await tokenResponse;
  if (token.status() !== 200) {
    const req = token.request();
    fail(`token request refused: POST ${req.url()} (Authorization: ${req.headers().authorization ?? 'none'}; body: ${(req.postData() ?? '').replace(/password=[^&]*/, 'password=…')}) → ${token.status()} ${await bodyOf(token)}`);
  }
  await assertAuthorized(section);
  await closeDialog(dialog);

  await tryAccountMe(flow);
  failIfFatal();
  await page.context().close();
}

// ---------------------------------------------------------------------------------

for (const f of readdirSync(here)) if (/^last-run.*\.png$/.test(f)) rmSync(join(here, f), { force: true });
try {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    timeout: STEP_TIMEOUT,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
  await codeFlow();
  console.log(`ok: code flow with PKCE (client docs, login popup) authorized Swagger UI as ${email}; GET /account/me answered 200 with the email; screenshot ${shot('code')}`);
  await passwordFlow();
  console.log(`ok: password flow authorized Swagger UI as ${email}; GET /account/me answered 200 with the email; screenshot ${shot('password')}`);
  for (const n of notes.slice(0, 15)) console.log(`  note: ${n}`);
  await browser.close();
  process.exit(0);
} catch (e) {
  const message = e instanceof CheckFailure ? e.message : String(e.message || e).split('\n')[0];
  console.error(`FAIL at step "${step}": ${e instanceof CheckFailure ? e.message : e.stack || e}`);
  for (const n of [...fatal, ...notes].slice(0, 15)) console.error(`  ${n}`);
  const flow = step.split(':')[0];
  for (const [p, file] of [[page, shot(flow)], [popup, shot('popup')]]) {
    if (!p || p.isClosed()) continue;
    try {
      await p.screenshot({ path: file });
      console.error(`  screenshot: ${file}`);
    } catch { /* the page may be gone */ }
  }
  if (process.env.SWAGGER_UI_REASON) {
    writeFileSync(process.env.SWAGGER_UI_REASON, `at step "${step}": ${message}`.replace(/\s+/g, ' ').slice(0, 600));
  }
  try { await browser?.close(); } catch { /* ignore */ }
  process.exit(1);
}
