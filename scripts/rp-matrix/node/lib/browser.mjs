// Relying-party matrix, Node side: the browser (Debian's chromium, driven
// by playwright-core), shared by the browser test files.
import { execFileSync } from 'node:child_process';
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const PAGE_TIMEOUT_MS = 30_000; // every navigation and wait in a page

let chromiumVersion;
/** The browser's version (what actually ran), for the results. */
export function browserVersion() {
  if (chromiumVersion === undefined) {
    try {
      const out = execFileSync(CHROMIUM, ['--version'], { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'ignore'] });
      chromiumVersion = out.match(/(\d+(?:\.\d+)+)/)?.[1] ?? out.trim();
    } catch {
      chromiumVersion = 'not found';
    }
  }
  return chromiumVersion;
}

/** Headless chromium, as in CI containers (no sandbox, no GPU, no background traffic). */
export function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: PAGE_TIMEOUT_MS,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update'],
  });
}
