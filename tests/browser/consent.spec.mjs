// Real-browser end-to-end and accessibility check of the consent page (SPEC §4,
// issue 7): a third-party service asks for a parent's children; the parent sees
// in plain words what it would receive and refuses, with the keyboard alone; then
// a service with a charter: the charter is linked and ticked before « Accepter ».
//
// Plain Node script (no test runner), like login.spec.mjs. Normally started by
// tests/browser/run.sh against the same `clef serve --demo`, and passed:
//
//   CLEF_URL        issuer / base URL of the running server (http://127.0.0.1:PORT)
//   CLEF_BIN        the clef binary the server runs (to register the service)
//   CLEF_DATA_DIR   the server's data dir
//   CLEF_KEYS_DIR   the server's keys dir
//   CHROMIUM        optional, path of the Chromium binary (default /usr/bin/chromium)
//   ARTIFACTS_DIR   optional, where screenshots and page HTML of a failure go
//
// Prints one line per check and closes with "consent: N passed, N failed";
// exits 1 when any check failed.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  assertAxeClean,
  assertEveryVisibleInputLabelled,
  assertNoHorizontalScrollAt320,
  createRunner,
  focused,
  indent,
  launchChromium,
  newContext,
  registerClient,
  startCallbackListener,
  tabTo,
  fr,
} from './lib.mjs';

const BASE = (process.env.CLEF_URL ?? 'http://127.0.0.1:18080').replace(/\/$/, '');
const CLEF_BIN = process.env.CLEF_BIN;
const DATA_DIR = process.env.CLEF_DATA_DIR;
const KEYS_DIR = process.env.CLEF_KEYS_DIR;
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS_DIR = process.env.ARTIFACTS_DIR;

for (const [name, value] of Object.entries({ CLEF_BIN, CLEF_DATA_DIR: DATA_DIR, CLEF_KEYS_DIR: KEYS_DIR })) {
  if (!value) {
    console.error(`${name} must be set (see tests/browser/run.sh)`);
    process.exit(2);
  }
}

// The demo parent (src/demo.rs) and a service that is not the academy's.
const USERNAME = 'parent.martin';
const PASSWORD = 'Demo2026clef';
const SERVICE = 'Cahier de textes Exemple';

const runner = createRunner({ artifactsDir: ARTIFACTS_DIR });
const check = runner.check;

/** `clef client create` without --first-party (a service that needs consent), plus `extra` options. */
function registerThirdParty(extra = []) {
  return registerClient({ bin: CLEF_BIN, dataDir: DATA_DIR, keysDir: KEYS_DIR, base: BASE }, SERVICE, REDIRECT_URI, extra);
}

let browser;
let page;
let service;
let REDIRECT_URI;
const state = randomBytes(16).toString('base64url');

try {
  browser = await launchChromium(CHROMIUM);
  const context = await newContext(browser);
  page = await context.newPage();
  runner.page = page;
  page.on('pageerror', (e) => console.log(indent(`page error: ${e.message}`)));
  service = await startCallbackListener();
  REDIRECT_URI = service.uri;

  let clientId;
  await check('1. a third-party service is registered (clef client create, not first-party)', () => {
    clientId = registerThirdParty();
    assert.match(clientId, /^clef-/);
  });

  await check('2. sign-in for the service leads to the consent page, not back to the service', async () => {
    const url =
      `${BASE}/authorize?` +
      new URLSearchParams({
        response_type: 'code',
        client_id: clientId,
        redirect_uri: REDIRECT_URI,
        scope: 'openid profile children',
        state,
        nonce: randomBytes(16).toString('base64url'),
      });
    const response = await page.goto(url);
    assert.equal(response.status(), 200, 'GET /authorize shows the login form');
    await page.getByLabel('Votre identifiant', { exact: true }).fill(USERNAME);
    await page.getByLabel('Votre mot de passe', { exact: true }).fill(PASSWORD);
    await Promise.all([page.waitForURL((u) => u.pathname === '/consentement'), page.getByRole('button', { name: 'Valider', exact: true }).click()]);
    assert.equal(service.last, null, 'the service received nothing yet');
  });

  await check('3. consent page: names the service, the account and the children in plain words', async () => {
    assert.equal(await page.locator('html').getAttribute('lang'), 'fr');
    assert.equal(await page.title(), `Autoriser ${SERVICE} — Clef`);
    const h1 = page.getByRole('heading', { level: 1 });
    assert.equal(await h1.count(), 1, 'exactly one <h1>');
    assert.equal((await h1.textContent()).trim(), fr(`Autoriser ${SERVICE} ?`));
    const text = await page.locator('main').innerText();
    assert.ok(text.includes(USERNAME), 'the account is named');
    assert.match(text, /la liste de vos enfants/, 'the children are named in plain words');
    await assertEveryVisibleInputLabelled(page);
    for (const name of ['Accepter', 'Refuser']) {
      assert.equal(await page.getByRole('button', { name, exact: true }).count(), 1, `one button "${name}"`);
    }
  });

  await check('3. consent page: axe-core WCAG 2 A/AA, zero violations', () => assertAxeClean(page, 'the consent page'), {
    critical: false,
  });

  await check('3. consent page: no horizontal scroll at 320 px', () => assertNoHorizontalScrollAt320(page, 'the consent page'), {
    critical: false,
  });

  await check('4. keyboard: Tab reaches « Accepter » then « Refuser »', async () => {
    await page.reload();
    await tabTo(page, 'Accepter');
    await page.keyboard.press('Tab');
    assert.deepEqual(await focused(page), { tag: 'button', text: 'Refuser' }, 'the next Tab stop is « Refuser »');
  });

  await check('5. Enter on « Refuser »: back to the service with error=access_denied and its state', async () => {
    await Promise.all([page.waitForURL((u) => u.href.startsWith(REDIRECT_URI)), page.keyboard.press('Enter')]);
    assert.ok(service.last, 'the browser requested the redirect URI');
    const url = new URL(service.last);
    assert.equal(`${url.origin}${url.pathname}`, REDIRECT_URI);
    assert.equal(url.searchParams.get('error'), 'access_denied', service.last);
    assert.equal(url.searchParams.get('state'), state, 'state round-trips unchanged');
    assert.equal(url.searchParams.get('code'), null, 'no code after a refusal');
    assert.equal(await page.locator('h1').textContent(), 'Retour service');
  });

  let charterClient;
  await check('6. a service with a charter (clef client create --terms-url --terms-version)', () => {
    charterClient = registerThirdParty(['--first-party', '--terms-url', 'https://ent.example.fr/charte', '--terms-version', '2026-09']);
    assert.match(charterClient, /^clef-/);
  });

  await check('7. its first sign-in shows the charter to accept: linked, with a labelled checkbox', async () => {
    service.last = null;
    const url =
      `${BASE}/authorize?` +
      new URLSearchParams({
        response_type: 'code',
        client_id: charterClient,
        redirect_uri: REDIRECT_URI,
        scope: 'openid profile',
        state,
        nonce: randomBytes(16).toString('base64url'),
      });
    await page.goto(url);
    assert.equal(new URL(page.url()).pathname, '/consentement');
    assert.equal(service.last, null, 'no code before the charter');
    const link = page.getByRole('link', { name: /charte de .* \(version 2026-09/ });
    assert.equal(await link.count(), 1, 'the charter is linked, with its version');
    await assertEveryVisibleInputLabelled(page);
    assert.equal(await page.getByLabel("J'ai lu et j'accepte la charte", { exact: true }).count(), 1);
  });

  await check('7. charter page: axe-core WCAG 2 A/AA, zero violations', () => assertAxeClean(page, 'the charter page'), {
    critical: false,
  });

  await check('7. charter page: no horizontal scroll at 320 px', () => assertNoHorizontalScrollAt320(page, 'the charter page'), {
    critical: false,
  });

  await check('8. keyboard: tick the charter with Space, then Enter on « Accepter »: back with a code', async () => {
    await page.reload();
    // The checkbox reads as its value to the Tab helper.
    await tabTo(page, 'accepted');
    await page.keyboard.press('Space');
    assert.equal(await page.getByLabel("J'ai lu et j'accepte la charte", { exact: true }).isChecked(), true);
    await page.keyboard.press('Tab');
    assert.deepEqual(await focused(page), { tag: 'button', text: 'Accepter' });
    await Promise.all([page.waitForURL((u) => u.href.startsWith(REDIRECT_URI)), page.keyboard.press('Enter')]);
    const back = new URL(service.last);
    assert.ok(back.searchParams.get('code'), service.last);
    assert.equal(back.searchParams.get('state'), state);
  });

  await context.close();
} catch (err) {
  runner.fail('setup', err);
} finally {
  await browser?.close();
  service?.close();
}

process.exit(runner.summary('consent'));
