// Real-browser end-to-end and accessibility check of logging out (issue 7):
// the confirmation page /logout shows when no relying party vouches for the
// request, « Annuler » keeps the session, « Se déconnecter » ends it and shows
// « Vous êtes déconnecté »; « Se déconnecter » in « Mon compte » needs no
// confirmation.
//
// Plain Node script (no test runner), like login.spec.mjs. Normally started by
// tests/browser/run.sh against the same `clef serve --demo`, and passed:
//
//   CLEF_URL        issuer / base URL of the running server (http://127.0.0.1:PORT)
//   CHROMIUM        optional, path of the Chromium binary (default /usr/bin/chromium)
//   ARTIFACTS_DIR   optional, where screenshots and page HTML of a failure go
//
// Prints one line per check and closes with "logout: N passed, N failed";
// exits 1 when any check failed.

import assert from 'node:assert/strict';
import {
  assertAxeClean,
  assertNoHorizontalScrollAt320,
  createRunner,
  focused,
  indent,
  launchChromium,
  newContext,
  tabTo,
  fr,
} from './lib.mjs';

const BASE = (process.env.CLEF_URL ?? 'http://127.0.0.1:18080').replace(/\/$/, '');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS_DIR = process.env.ARTIFACTS_DIR;

// The demo parent (src/demo.rs).
const USERNAME = 'parent.martin';
const PASSWORD = 'Demo2026clef';
const QUESTION = fr('Voulez-vous vous déconnecter de Clef ?');
const DONE = 'Vous êtes déconnecté';

const runner = createRunner({ artifactsDir: ARTIFACTS_DIR });
const check = runner.check;
let page;

/** The page's <title> and its one <h1>. */
async function assertPage(title, h1Text) {
  assert.equal(await page.locator('html').getAttribute('lang'), 'fr', '<html lang="fr">');
  assert.equal(await page.title(), `${title} — Clef`, '<title>');
  const h1 = page.getByRole('heading', { level: 1 });
  assert.equal(await h1.count(), 1, 'exactly one <h1>');
  assert.equal((await h1.textContent()).trim(), h1Text, '<h1> text');
}

/** Signs the demo parent in at /login; the browser lands on « Mon compte ». */
async function signIn() {
  await page.goto(`${BASE}/login`);
  await page.getByLabel('Votre identifiant', { exact: true }).fill(USERNAME);
  await page.getByLabel('Votre mot de passe', { exact: true }).fill(PASSWORD);
  await Promise.all([page.waitForURL(`${BASE}/compte`), page.getByRole('button', { name: 'Valider', exact: true }).click()]);
  await assertPage('Mon compte', 'Mon compte');
}

/** Clicks `button`; returns the response to the POST /logout once the next page has loaded. */
async function press(button) {
  const target = page.getByRole('button', { name: button, exact: true });
  assert.equal(await target.count(), 1, `one button "${button}"`);
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.url().split('?')[0] === `${BASE}/logout` && r.request().method() === 'POST'),
    page.waitForEvent('load'),
    target.click(),
  ]);
  return response;
}

async function assertSignedOut() {
  const response = await page.goto(`${BASE}/compte`);
  assert.equal(new URL(page.url()).pathname, '/login', `/compte now leads to the login form (status ${response.status()})`);
}

let browser;

try {
  browser = await launchChromium(CHROMIUM);
  const context = await newContext(browser);
  page = await context.newPage();
  runner.page = page;
  page.on('pageerror', (e) => console.log(indent(`page error: ${e.message}`)));

  await check('1. the demo parent signs in', signIn);

  await check('2. /logout without a hint asks « Voulez-vous vous déconnecter de Clef ? »', async () => {
    const response = await page.goto(`${BASE}/logout`);
    assert.equal(response.status(), 200, 'GET /logout');
    await assertPage('Déconnexion', QUESTION);
    // It posts in the page's language (`ui_locales`), whatever the browser's.
    const form = page.locator('form[action="/logout?ui_locales=fr"]');
    assert.equal(await form.count(), 1, 'one form posting to /logout');
    assert.notEqual(await form.locator('input[type=hidden][name=csrf]').inputValue(), '', 'a CSRF token');
    assert.ok((await page.locator('main').innerText()).includes(USERNAME), 'the account is named');
  });

  await check('2. confirmation page: axe-core WCAG 2 A/AA, zero violations', () => assertAxeClean(page, 'the logout confirmation page'), {
    critical: false,
  });

  await check('2. confirmation page: no horizontal scroll at 320 px', () => assertNoHorizontalScrollAt320(page, 'the logout confirmation page'), {
    critical: false,
  });

  await check('2. keyboard: Tab reaches « Se déconnecter » then « Annuler »', async () => {
    await page.reload();
    await tabTo(page, 'Se déconnecter');
    await page.keyboard.press('Tab');
    assert.deepEqual(await focused(page), { tag: 'button', text: 'Annuler' });
  });

  await check('3. « Annuler » goes back to « Mon compte », still signed in', async () => {
    const response = await press('Annuler');
    assert.equal(response.status(), 303);
    assert.equal(new URL(page.url()).pathname, '/compte');
    await assertPage('Mon compte', 'Mon compte');
  });

  await check('4. « Se déconnecter » on the confirmation page: « Vous êtes déconnecté »', async () => {
    await page.goto(`${BASE}/logout`);
    const response = await press('Se déconnecter');
    assert.equal(response.status(), 200);
    await assertPage(DONE, DONE);
    assert.equal(await page.getByRole('link', { name: 'Se connecter à nouveau', exact: true }).count(), 1);
  });

  await check('4. « Vous êtes déconnecté »: axe-core WCAG 2 A/AA, zero violations', () => assertAxeClean(page, 'the logged-out page'), {
    critical: false,
  });

  await check('4. « Vous êtes déconnecté »: no horizontal scroll at 320 px', () => assertNoHorizontalScrollAt320(page, 'the logged-out page'), {
    critical: false,
  });

  await check('4. the session is over', assertSignedOut);

  await check('5. « Se déconnecter » in « Mon compte » logs out at once', async () => {
    await signIn();
    await assertNoHorizontalScrollAt320(page, 'Mon compte');
    const response = await press('Se déconnecter');
    assert.equal(response.status(), 200);
    await assertPage(DONE, DONE);
    await assertSignedOut();
  });

  await context.close();
} catch (err) {
  runner.fail('setup', err);
} finally {
  await browser?.close();
}

process.exit(runner.summary('logout'));
