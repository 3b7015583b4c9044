// Headless check of Swagger UI at /docs: log in through the Authorize button
// (OAuth2 password flow, scheme "password"), then "Try it out" on
// GET /account/me must answer 200 with the user's email.
//
//   node check.mjs <base-url> <email> <password>
//
// Uses Debian's chromium (/usr/bin/chromium, override with CHROMIUM) through
// playwright-core. Saves a screenshot to last-run.png beside this file: the
// viewport at GET /account/me with its live response on success, the viewport on failure. Exits 1 with a message saying which step failed.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const [base, email, password] = process.argv.slice(2);
if (!base || !email || !password) {
  console.error('usage: node check.mjs <base-url> <email> <password>');
  process.exit(2);
}
const here = dirname(fileURLToPath(import.meta.url));
const screenshot = join(here, 'last-run.png');
const STEP_TIMEOUT = Number(process.env.STEP_TIMEOUT_MS || 20000);

let step = 'launch';
const notes = []; // console errors, failed requests: printed on failure
const userDataDir = mkdtempSync(join(tmpdir(), 'gatehouse-swagger-'));
let context;
let page;

function fail(message) {
  const err = new Error(message);
  err.checkFailure = true;
  throw err;
}

async function bodyOf(response) {
  try {
    return (await response.text()).slice(0, 500);
  } catch {
    return '(body unavailable)';
  }
}

try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
    viewport: { width: 1280, height: 1000 },
  });
  page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(STEP_TIMEOUT);
  page.on('console', (m) => { if (m.type() === 'error') notes.push(`console error: ${m.text()}`); });
  page.on('pageerror', (e) => notes.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => notes.push(`request failed: ${r.method()} ${r.url()} ${r.failure()?.errorText}`));

  step = 'open /docs';
  const docs = await page.goto(`${base}/docs/`, { waitUntil: 'load' });
  if (!docs || docs.status() !== 200) fail(`GET /docs/ answered ${docs?.status()}`);
  await page.locator('.swagger-ui .information-container').waitFor();

  step = 'open the Authorize dialog';
  const authorizeButton = page.locator('.auth-wrapper button.authorize');
  if ((await authorizeButton.count()) === 0) fail('no Authorize button: the spec declares no security scheme');
  await authorizeButton.first().click();
  const dialog = page.locator('.dialog-ux .modal-ux');
  await dialog.waitFor();

  step = 'find the "password (OAuth2, password)" scheme';
  const scheme = dialog.locator('.auth-container').filter({ has: page.locator('h4', { hasText: /^\s*password\s*\(OAuth2,\s*password\)/ }) });
  if ((await scheme.count()) !== 1) {
    const titles = await dialog.locator('.auth-container h4').allInnerTexts();
    fail(`expected one "password (OAuth2, password)" section in the dialog, found: ${JSON.stringify(titles)}`);
  }

  step = 'log in with the password flow';
  await scheme.locator('#oauth_username').fill(email);
  await scheme.locator('#oauth_password').fill(password);
  const tokenResponse = page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/oauth/token');
  await scheme.locator('button.authorize').click();
  const token = await tokenResponse;
  if (token.status() !== 200) {
    const req = token.request();
    fail(`token request refused: POST ${req.url()} (Authorization: ${req.headers().authorization ?? 'none'}; body: ${req.postData()}) → ${token.status()} ${await bodyOf(token)}`);
  }
  // Swagger UI shows "Logout" in the section once it holds a token, or an error.
  const logout = scheme.locator('button', { hasText: 'Logout' });
  const error = scheme.locator('.errors');
  await Promise.race([logout.waitFor(), error.waitFor()]);
  if ((await error.count()) > 0 && (await logout.count()) === 0) {
    fail(`Swagger UI reports an authorization error: ${(await error.innerText()).trim()}`);
  }

  step = 'close the dialog';
  await dialog.locator('button.btn-done, button.close-modal').first().click();
  await dialog.waitFor({ state: 'detached' });

  step = 'expand GET /account/me';
  const op = page.locator('.opblock.opblock-get').filter({
    has: page.locator('.opblock-summary-path[data-path="/account/me"]'),
  });
  if ((await op.count()) !== 1) fail(`expected one GET /account/me operation, found ${await op.count()}`);
  await op.locator('.opblock-summary-control, .opblock-summary').first().click();
  await op.locator('.opblock-body').waitFor();
  // The lock icon of a secured operation is "locked" once authorized.
  const lock = op.locator('.authorization__btn');
  if ((await lock.count()) === 0) fail('GET /account/me declares no security requirement in the spec');

  step = 'Try it out → Execute';
  await op.locator('button.try-out__btn').click();
  const meResponse = page.waitForResponse((r) => r.request().method() === 'GET' && new URL(r.url()).pathname === '/account/me');
  await op.locator('button.execute').click();
  const me = await meResponse;
  const sentAuth = me.request().headers().authorization ?? 'none';

  step = 'read the response Swagger UI shows';
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
  await page.screenshot({ path: screenshot });
  console.log(`ok: Swagger UI logged in as ${email} (password flow) and GET /account/me answered 200 with the email; screenshot ${screenshot}`);
  await context.close();
  rmSync(userDataDir, { recursive: true, force: true });
  process.exit(0);
} catch (e) {
  console.error(`FAIL at step "${step}": ${e.checkFailure ? e.message : e.stack || e}`);
  for (const n of notes.slice(0, 15)) console.error(`  ${n}`);
  if (page) {
    try {
      await page.screenshot({ path: screenshot }); // the viewport: dialog or operation
      console.error(`  screenshot: ${screenshot}`);
    } catch { /* the page may be gone */ }
  }
  try { await context?.close(); } catch { /* ignore */ }
  rmSync(userDataDir, { recursive: true, force: true });
  process.exit(1);
}
