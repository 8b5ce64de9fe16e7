// Real-browser end-to-end and accessibility check of « Mon compte »'s sessions
// and applications (SPEC §3.6, issue 7): the demo parent, signed in from two
// browsers, sees both sessions with « cette session » on the right one, and a
// third-party service she authorized; the page passes axe-core and reflows at
// 320 px; Tab reaches « Se déconnecter partout » and « Retirer l'autorisation »;
// « Se déconnecter partout » ends the other browser's session and keeps this
// one; « Retirer l'autorisation » empties the list.
//
// Plain Node script (no test runner), like login.spec.mjs. Normally started by
// tests/browser/run.sh after the others but recovery.spec.mjs (it ends the demo parent's other sessions), against
// the same `clef serve --demo`, and passed:
//
//   CLEF_URL        issuer / base URL of the running server (http://127.0.0.1:PORT)
//   CLEF_BIN        the clef binary the server runs (to register the service)
//   CLEF_DATA_DIR   the server's data dir
//   CLEF_KEYS_DIR   the server's keys dir
//   CHROMIUM        optional, path of the Chromium binary (default /usr/bin/chromium)
//   ARTIFACTS_DIR   optional, where screenshots and page HTML of a failure go
//
// Prints one line per check and closes with "account: N passed, N failed";
// exits 1 when any check failed.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  assertAxeClean,
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

// The demo parent (src/demo.rs), a service that is not the academy's, and the
// name the second browser gives itself.
const USERNAME = 'parent.martin';
const PASSWORD = 'Demo2026clef';
const SERVICE = 'Soutien scolaire Exemple';
const OTHER_DEVICE = 'Navigateur de la tablette familiale';
const EVERYWHERE = 'Se déconnecter partout';
const WITHDRAW = "Retirer l'autorisation";

const runner = createRunner({ artifactsDir: ARTIFACTS_DIR });
const check = runner.check;

/** `clef client create` without --first-party: a service that needs consent. */
function registerThirdParty() {
  return registerClient({ bin: CLEF_BIN, dataDir: DATA_DIR, keysDir: KEYS_DIR, base: BASE }, SERVICE, REDIRECT_URI);
}

/** The service's authorization request for `scope`, with a fresh state and nonce. */
function authorizeUrl(clientId, scope) {
  const state = randomBytes(16).toString('base64url');
  const nonce = randomBytes(16).toString('base64url');
  const params = { response_type: 'code', client_id: clientId, redirect_uri: REDIRECT_URI, scope, state, nonce };
  return `${BASE}/authorize?${new URLSearchParams(params)}`;
}

/** Fills the login form on `p` and submits it; resolves once `landing` matches. */
async function logIn(p, landing, username = USERNAME) {
  await p.getByLabel('Votre identifiant', { exact: true }).fill(username);
  await p.getByLabel('Votre mot de passe', { exact: true }).fill(PASSWORD);
  await Promise.all([p.waitForURL(landing), p.getByRole('button', { name: 'Valider', exact: true }).click()]);
}

/** The items of the list under the heading `heading`, as text. */
function itemsUnder(p, heading) {
  return p.evaluate((heading) => {
    const h2 = [...document.querySelectorAll('h2')].find((h) => h.textContent.trim() === heading);
    let el = h2?.nextElementSibling;
    while (el && el.tagName !== 'UL' && el.tagName !== 'H2') el = el.nextElementSibling;
    if (!el || el.tagName !== 'UL') return [];
    return [...el.children].map((li) => li.innerText.replace(/\s+/g, ' ').trim());
  }, heading);
}

/** Clicks the button `name` (exact accessible name); resolves once the next page has loaded. */
async function press(p, name) {
  const target = p.getByRole('button', { name, exact: true });
  assert.equal(await target.count(), 1, `one button "${name}"`);
  const [response] = await Promise.all([p.waitForResponse((r) => r.request().method() === 'POST'), p.waitForEvent('load'), target.click()]);
  return response;
}

let browser;
let page;
let other;
let service;
let REDIRECT_URI;

try {
  browser = await launchChromium(CHROMIUM);
  const context = await newContext(browser);
  page = await context.newPage();
  runner.page = page;
  page.on('pageerror', (e) => console.log(indent(`page error: ${e.message}`)));
  const otherContext = await browser.newContext({ locale: 'fr-FR', userAgent: OTHER_DEVICE });
  other = await otherContext.newPage();
  service = await startCallbackListener();
  REDIRECT_URI = service.uri;

  let clientId;
  await check('1. a third-party service is registered (clef client create, not first-party)', () => {
    clientId = registerThirdParty();
    assert.match(clientId, /^clef-/);
  });

  await check('2. the parent signs in for the service and accepts, offline access included', async () => {
    await page.goto(authorizeUrl(clientId, 'openid profile children offline_access'));
    await logIn(page, (u) => u.pathname === '/consentement');
    await Promise.all([page.waitForURL((u) => u.href.startsWith(REDIRECT_URI)), page.getByRole('button', { name: 'Accepter', exact: true }).click()]);
    assert.ok(new URL(service.last).searchParams.get('code'), 'a code after consent');
  });

  await check('3. she signs in from a second browser too', async () => {
    await other.goto(`${BASE}/login`);
    await logIn(other, `${BASE}/compte`);
  });

  await check('4. « Mon compte »: both sessions, « cette session » on this one, the service and what it receives', async () => {
    const response = await page.goto(`${BASE}/compte`);
    assert.equal(response.status(), 200);
    for (const name of ['Vos sessions', 'Applications autorisées']) {
      assert.equal(await page.getByRole('heading', { level: 2, name, exact: true }).count(), 1, `<h2> "${name}"`);
    }
    const sessions = await itemsUnder(page, 'Vos sessions');
    const mine = sessions.filter((s) => s.includes('cette session'));
    assert.equal(mine.length, 1, `one session marked: ${JSON.stringify(sessions)}`);
    assert.ok(!mine[0].includes(OTHER_DEVICE), 'this session is not the other browser');
    assert.ok(
      sessions.some((s) => s.includes(OTHER_DEVICE) && !s.includes('cette session')),
      `the other browser is listed: ${JSON.stringify(sessions)}`,
    );
    assert.ok(sessions.every((s) => s.includes('Ouverte le') && s.includes('Dernière activité le')));
    const applications = await itemsUnder(page, 'Applications autorisées');
    const item = applications.find((a) => a.includes(SERVICE));
    assert.ok(item, `the service is listed: ${JSON.stringify(applications)}`);
    assert.match(item, /la liste de vos enfants/, 'what it receives, in plain words');
    assert.match(item, /Autorisation donnée le/);
    assert.equal(await page.getByRole('heading', { level: 3, name: SERVICE, exact: true }).count(), 1);
    assert.equal(await page.getByRole('button', { name: EVERYWHERE, exact: true }).count(), 1);
    assert.equal(await page.getByRole('button', { name: `${WITHDRAW} de ${SERVICE}`, exact: true }).count(), 1, 'the button names its service');
  });

  await check('4. « Mon compte » with sessions and applications: axe-core WCAG 2 A/AA, zero violations', () => assertAxeClean(page, '« Mon compte » with sessions and applications'), {
    critical: false,
  });

  await check('4. « Mon compte » with sessions and applications: no horizontal scroll at 320 px', () => assertNoHorizontalScrollAt320(page, '« Mon compte »'), {
    critical: false,
  });

  await check('5. keyboard: Tab reaches « Se déconnecter partout » then « Retirer l\'autorisation »', async () => {
    await page.goto(`${BASE}/compte`);
    await tabTo(page, EVERYWHERE, 40);
    await tabTo(page, WITHDRAW, 10);
    assert.deepEqual(await focused(page), { tag: 'button', text: WITHDRAW });
  });

  await check('6. Enter on « Se déconnecter partout »: the other browser is signed out, this one goes on', async () => {
    await page.goto(`${BASE}/compte`);
    await tabTo(page, EVERYWHERE, 40);
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.url() === `${BASE}/compte/deconnexion-partout`),
      page.waitForEvent('load'),
      page.keyboard.press('Enter'),
    ]);
    // Done, the answer is a redirect to « Mon compte », which tells it once (a reload repeats nothing).
    assert.equal(response.status(), 303);
    assert.equal(new URL(page.url()).pathname, '/compte');
    assert.match(await page.getByRole('status').innerText(), /Vos autres sessions sont fermées/);
    const sessions = await itemsUnder(page, 'Vos sessions');
    assert.ok(!sessions.some((s) => s.includes(OTHER_DEVICE)), `the other browser is gone: ${JSON.stringify(sessions)}`);
    await other.goto(`${BASE}/compte`);
    assert.equal(new URL(other.url()).pathname, '/login', 'the other browser is back at the login form');
    await page.goto(`${BASE}/compte`);
    assert.equal(new URL(page.url()).pathname, '/compte', 'this browser is still signed in');
  });

  await check('6. after « Se déconnecter partout »: axe-core WCAG 2 A/AA, zero violations', async () => {
    await page.goto(`${BASE}/compte`);
    await assertAxeClean(page, '« Mon compte » after « Se déconnecter partout »');
  }, { critical: false });

  await check('7. « Retirer l\'autorisation »: the service leaves the list', async () => {
    const response = await press(page, `${WITHDRAW} de ${SERVICE}`);
    // Done, the answer is a redirect to « Mon compte », which tells it once (a reload repeats nothing).
    assert.equal(response.status(), 303);
    assert.equal(new URL(page.url()).pathname, '/compte');
    assert.match(await page.getByRole('status').innerText(), new RegExp(fr(`L'autorisation de « ${SERVICE} » est retirée`)));
    // The answer beside its form takes the focus: seen at once (the page is
    // long at 320 px) and read out by a screen reader.
    assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('role')), 'status', 'the notice has the focus');
    assert.equal(await page.getByRole('heading', { level: 3, name: SERVICE, exact: true }).count(), 0);
  });

  await check('7. after the withdrawal: axe-core WCAG 2 A/AA, zero violations, no horizontal scroll at 320 px', async () => {
    await assertAxeClean(page, '« Mon compte » after a withdrawal');
    await assertNoHorizontalScrollAt320(page, '« Mon compte » after a withdrawal');
  }, { critical: false });

  // A pupil allows the service alone; her parent sees it under her name and withdraws it.
  const CHILD = 'Léa Martin';
  const childContext = await browser.newContext({ locale: 'fr-FR' });
  const child = await childContext.newPage();
  await check('8. the parent\'s daughter (lea.martin) signs in for the service and accepts', async () => {
    await child.goto(authorizeUrl(clientId, 'openid profile offline_access'));
    await logIn(child, (u) => u.pathname === '/consentement', 'lea.martin');
    await Promise.all([child.waitForURL((u) => u.href.startsWith(REDIRECT_URI)), child.getByRole('button', { name: 'Accepter', exact: true }).click()]);
    assert.ok(new URL(service.last).searchParams.get('code'), 'a code after consent');
  });

  await check('9. « Mon compte »: the service under Léa, with what it receives about her', async () => {
    await page.goto(`${BASE}/compte`);
    const item = (await itemsUnder(page, 'Enfants')).find((c) => c.includes(CHILD));
    assert.ok(item, 'Léa is listed');
    assert.match(item, /Services extérieurs autorisés par cet enfant/);
    assert.match(item, new RegExp(`${SERVICE} — Autorisation donnée le`));
    assert.match(item, /ses nom, prénom et date de naissance/);
    assert.equal(await page.getByRole('button', { name: `${WITHDRAW} donnée par ${CHILD} — ${SERVICE}`, exact: true }).count(), 1);
  });

  await check('9. « Mon compte » with a child\'s service: axe-core WCAG 2 A/AA, zero violations, no horizontal scroll at 320 px', async () => {
    await assertAxeClean(page, '« Mon compte » with a child\'s service');
    await assertNoHorizontalScrollAt320(page, '« Mon compte » with a child\'s service');
  }, { critical: false });

  await check('10. the parent withdraws it: told, and the service leaves Léa\'s item', async () => {
    const response = await press(page, `${WITHDRAW} donnée par ${CHILD} — ${SERVICE}`);
    // Done, the answer is a redirect to « Mon compte », which tells it once (a reload repeats nothing).
    assert.equal(response.status(), 303);
    assert.equal(new URL(page.url()).pathname, '/compte');
    assert.match(await page.getByRole('status').innerText(), new RegExp(fr(`L'autorisation donnée par ${CHILD} à « ${SERVICE} » est retirée`)));
    const item = (await itemsUnder(page, 'Enfants')).find((c) => c.includes(CHILD));
    assert.ok(!item.includes(SERVICE), item);
  });

  await childContext.close();
  await context.close();
  await otherContext.close();
} catch (err) {
  runner.fail('setup', err);
} finally {
  await browser?.close();
  service?.close();
}

process.exit(runner.summary('account'));
