// Real-browser end-to-end and accessibility check of Clef's login flow.
//
// Plain Node script (no test runner; shared helpers in lib.mjs): headless
// Chromium through playwright-core, axe-core for WCAG 2 A/AA, node:assert for
// the rest. Normally started by tests/browser/run.sh, which builds and starts
// `clef serve --demo` and passes:
//
//   CLEF_URL            issuer / base URL of the running server (http://127.0.0.1:PORT)
//   CLEF_CLIENT_ID      demo client id     (printed by `clef serve --demo`)
//   CLEF_CLIENT_SECRET  demo client secret (printed by `clef serve --demo`)
//   CHROMIUM            optional, path of the Chromium binary (default /usr/bin/chromium)
//   ARTIFACTS_DIR       optional, where screenshots and page HTML of a failure go
//
// Prints one line per check and closes with "browser: N passed, N failed";
// exits 1 when any check failed.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  assertAxeClean as axeClean,
  assertEveryVisibleInputLabelled as everyVisibleInputLabelled,
  assertNoHorizontalScrollAt320,
  createRunner,
  indent,
  launchChromium,
  newContext,
  startCallbackListener,
} from './lib.mjs';

const BASE = (process.env.CLEF_URL ?? 'http://127.0.0.1:18080').replace(/\/$/, '');
const CLIENT_ID = process.env.CLEF_CLIENT_ID;
const CLIENT_SECRET = process.env.CLEF_CLIENT_SECRET;
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS_DIR = process.env.ARTIFACTS_DIR;

// Fixed by the demo data (src/demo.rs).
const REDIRECT_URI = 'http://127.0.0.1:9000/callback';
const USERNAME = 'parent.martin';
const PASSWORD = 'Demo2026clef';
const SCOPE = 'openid profile email children';

if (!CLIENT_ID || !CLIENT_SECRET) {
  console.error('CLEF_CLIENT_ID and CLEF_CLIENT_SECRET must be set (see tests/browser/run.sh)');
  process.exit(2);
}

const runner = createRunner({ artifactsDir: ARTIFACTS_DIR });
const check = runner.check;
let page; // the current page

// ---------------------------------------------------------------- helpers

const assertAxeClean = (label) => axeClean(page, label);
const assertEveryVisibleInputLabelled = () => everyVisibleInputLabelled(page);

async function assertLoginForm() {
  assert.equal(await page.locator('html').getAttribute('lang'), 'fr', '<html lang="fr">');
  assert.match(await page.title(), /Connexion/);
  await assertEveryVisibleInputLabelled();

  const identifier = page.getByLabel('Votre identifiant', { exact: true });
  const password = page.getByLabel('Votre mot de passe', { exact: true });
  assert.equal(await identifier.count(), 1, 'one control labelled "Votre identifiant"');
  assert.equal(await password.count(), 1, 'one control labelled "Votre mot de passe"');
  assert.equal(await identifier.getAttribute('id'), 'identifier');
  assert.equal(await identifier.getAttribute('name'), 'identifier');
  assert.equal(await identifier.getAttribute('autocomplete'), 'username');
  assert.equal(await identifier.getAttribute('type'), 'text');
  assert.equal(await password.getAttribute('id'), 'password');
  assert.equal(await password.getAttribute('name'), 'password');
  assert.equal(await password.getAttribute('autocomplete'), 'current-password');
  assert.equal(await password.getAttribute('type'), 'password');

  const form = page.locator('form[action="/login"]');
  assert.equal(await form.count(), 1, 'one form posting to /login');
  assert.equal((await form.getAttribute('method'))?.toLowerCase(), 'post');
  assert.equal(await form.locator('input[type=hidden][name=csrf]').count(), 1, 'hidden csrf field');
  assert.notEqual(await form.locator('input[name=csrf]').inputValue(), '', 'csrf field has a value');
  assert.equal(await form.locator('input[type=hidden][name=request]').count(), 1, 'hidden request field');

  assert.equal(await page.getByRole('button', { name: 'Valider', exact: true }).count(), 1, 'button "Valider"');
  assert.equal(await page.getByRole('link', { name: 'identifiant oublié ?', exact: true }).count(), 1, 'link "identifiant oublié ?"');
  assert.equal(await page.getByRole('link', { name: 'mot de passe oublié ?', exact: true }).count(), 1, 'link "mot de passe oublié ?"');
  assert.equal(await page.getByRole('heading', { level: 1 }).count(), 1, 'exactly one <h1>');
}

/** Fills the form and clicks "Valider"; returns the response to the POST /login. */
async function submitLogin(identifier, password) {
  await page.getByLabel('Votre identifiant', { exact: true }).fill(identifier);
  await page.getByLabel('Votre mot de passe', { exact: true }).fill(password);
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.url() === `${BASE}/login` && r.request().method() === 'POST'),
    page.getByRole('button', { name: 'Valider', exact: true }).click(),
  ]);
  return response;
}

function decodeJwtPayload(jwt) {
  const parts = jwt.split('.');
  assert.equal(parts.length, 3, 'a JWS in compact serialisation has three parts');
  return JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
}

// ---------------------------------------------------------------- the flow

const state = randomBytes(16).toString('base64url');
const nonce = randomBytes(16).toString('base64url');
const authorizeUrl =
  `${BASE}/authorize?` +
  new URLSearchParams({
    response_type: 'code',
    client_id: CLIENT_ID,
    redirect_uri: REDIRECT_URI,
    scope: SCOPE,
    state,
    nonce,
  }).toString().replace(/\+/g, '%20');

let browser;
let callback = null;
let code = null;
let tokens = null;

try {
  browser = await launchChromium(CHROMIUM);
  const context = await newContext(browser);
  page = await context.newPage();
  runner.page = page;
  page.on('pageerror', (e) => console.log(indent(`page error: ${e.message}`)));

  // The demo client's redirect URI, listened on for real: the redirect after
  // the login form reaches it under the page's form-action, as a relying
  // party's would (an intercepted request, page.route, would not tell).
  callback = await startCallbackListener(9000);

  await check('1. login page: lang, labels, autocomplete, links', async () => {
    const response = await page.goto(authorizeUrl);
    assert.ok(response, 'navigation produced a response');
    assert.equal(response.status(), 200, `GET /authorize status (url ${page.url()})`);
    await assertLoginForm();
    assert.equal(await page.getByRole('alert').count(), 0, 'no alert before any attempt');
  });

  await check('1. login page: axe-core WCAG 2 A/AA, zero violations', () => assertAxeClean('the login page'), {
    critical: false,
  });

  await check('2. wrong password: 401 and alert "Identifiant ou mot de passe incorrect."', async () => {
    const response = await submitLogin(USERNAME, 'pas-le-bon-mot-de-passe');
    assert.equal(response.status(), 401, 'POST /login with a wrong password');
    await page.waitForLoadState('domcontentloaded');
    const alert = page.getByRole('alert');
    assert.equal(await alert.count(), 1, 'one role="alert"');
    assert.equal((await alert.textContent()).trim(), 'Identifiant ou mot de passe incorrect.');
    // The form is shown again, still fully labelled, identifier kept, password emptied.
    await assertLoginForm();
    const identifier = page.getByLabel('Votre identifiant', { exact: true });
    const password = page.getByLabel('Votre mot de passe', { exact: true });
    assert.equal(await identifier.inputValue(), USERNAME, 'identifier kept after the error');
    assert.equal(await password.inputValue(), '', 'password not echoed back');
    // The error is tied to the fields for screen readers.
    const alertId = await alert.getAttribute('id');
    assert.ok(alertId, 'the alert has an id');
    for (const field of [identifier, password]) {
      assert.equal(await field.getAttribute('aria-invalid'), 'true');
      assert.ok((await field.getAttribute('aria-describedby'))?.split(/\s+/).includes(alertId), 'aria-describedby names the alert');
    }
  });

  await check('2. error page: axe-core WCAG 2 A/AA, zero violations', () => assertAxeClean('the login error page'), {
    critical: false,
  });

  await check('3. right password: 303 to the redirect URI with code and the same state', async () => {
    const response = await submitLogin(USERNAME, PASSWORD);
    assert.equal(response.status(), 303, 'POST /login with the right password');
    const location = response.headers()['location'];
    assert.ok(location?.startsWith(`${REDIRECT_URI}?`), `Location header: ${location}`);
    await page.waitForURL((u) => u.href.startsWith(REDIRECT_URI));
    const callbackUrl = callback.last;
    assert.ok(callbackUrl, 'the browser requested the redirect URI');
    const url = new URL(callbackUrl);
    assert.equal(`${url.origin}${url.pathname}`, REDIRECT_URI);
    assert.equal(url.searchParams.get('error'), null, `no error in ${callbackUrl}`);
    assert.equal(url.searchParams.get('state'), state, 'state round-trips unchanged');
    assert.equal(url.searchParams.get('iss'), BASE, 'iss parameter (RFC 9207) is the issuer');
    code = url.searchParams.get('code');
    assert.ok(code, 'an authorization code');
    assert.equal(await page.locator('h1').textContent(), 'Retour service', 'the relying party served the callback');
  });

  await check('4. token exchange (client_secret_basic): id_token and access_token', async () => {
    const basic = Buffer.from(`${encodeURIComponent(CLIENT_ID)}:${encodeURIComponent(CLIENT_SECRET)}`).toString('base64');
    const response = await fetch(`${BASE}/token`, {
      method: 'POST',
      headers: { Authorization: `Basic ${basic}`, 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI }),
    });
    const text = await response.text();
    assert.equal(response.status, 200, `POST /token: ${text}`);
    tokens = JSON.parse(text);
    assert.equal(typeof tokens.id_token, 'string', 'id_token');
    assert.equal(typeof tokens.access_token, 'string', 'access_token');
    assert.match(String(tokens.token_type), /^bearer$/i, 'token_type Bearer');
    const claims = decodeJwtPayload(tokens.id_token);
    assert.equal(claims.iss, BASE, 'id_token iss');
    assert.ok(claims.aud === CLIENT_ID || (Array.isArray(claims.aud) && claims.aud.includes(CLIENT_ID)), 'id_token aud');
    assert.equal(claims.nonce, nonce, 'id_token nonce');
    assert.ok(claims.sub, 'id_token sub');
  });

  await check('4. userinfo: two children for parent.martin', async () => {
    const response = await fetch(`${BASE}/userinfo`, { headers: { Authorization: `Bearer ${tokens.access_token}` } });
    const text = await response.text();
    assert.equal(response.status, 200, `GET /userinfo: ${text}`);
    const claims = JSON.parse(text);
    assert.equal(claims.sub, decodeJwtPayload(tokens.id_token).sub, 'userinfo sub matches the id_token');
    assert.ok(Array.isArray(claims.children), `children is an array: ${text}`);
    assert.equal(claims.children.length, 2, `two children: ${text}`);
  });

  // prompt=select_account, signed in since step 3: go on, or sign in as someone else.
  const selectUrl = `${authorizeUrl}&prompt=select_account`;
  await check('4b. prompt=select_account: « Continuer avec ce compte » beside the login form', async () => {
    const response = await page.goto(selectUrl);
    assert.equal(response.status(), 200);
    const offer = page.getByText('Vous êtes connecté(e) en tant que');
    assert.equal(await offer.count(), 1, 'the account signed in is named');
    assert.ok((await offer.textContent()).includes(`(${USERNAME})`));
    await page.getByRole('button', { name: 'Continuer avec ce compte', exact: true }).waitFor();
    await page.getByRole('heading', { name: 'Ou connectez-vous avec un autre compte', exact: true }).waitFor();
    await assertLoginForm();
  });
  await check('4b. account choice: axe-core WCAG 2 A/AA, zero violations', () => assertAxeClean('the account choice'), {
    critical: false,
  });
  await check('4b. account choice: no horizontal scroll at 320 px', () => assertNoHorizontalScrollAt320(page, 'the account choice'), {
    critical: false,
  });
  await check('4b. keyboard: Enter on « Continuer avec ce compte » goes back to the service with a code', async () => {
    await page.goto(selectUrl);
    await page.getByRole('button', { name: 'Continuer avec ce compte', exact: true }).focus();
    const [back] = await Promise.all([page.waitForRequest((r) => r.url().startsWith(REDIRECT_URI)), page.keyboard.press('Enter')]);
    const url = new URL(back.url());
    assert.ok(url.searchParams.get('code'), `a code in ${back.url()}`);
    assert.equal(url.searchParams.get('state'), state);
  });

  await context.close();

  // English: the language link on the page, by keyboard; remembered by a cookie.
  const english = await newContext(browser);
  page = await english.newPage();
  runner.page = page;

  await check('5. the « English » link (keyboard) gives the English login page', async () => {
    const response = await page.goto(authorizeUrl);
    assert.equal(response.status(), 200);
    const link = page.getByRole('link', { name: 'English', exact: true });
    assert.equal(await link.getAttribute('lang'), 'en', 'the link is marked as English');
    await link.focus();
    await Promise.all([page.waitForURL((u) => u.pathname === '/authorize'), page.keyboard.press('Enter')]);
    assert.equal(await page.locator('html').getAttribute('lang'), 'en', '<html lang="en">');
    assert.match(await page.title(), /^Sign in — Clef$/);
    await page.getByLabel('Your username', { exact: true }).fill(USERNAME);
    await page.getByLabel('Your password', { exact: true }).fill('not-the-password1');
    const [answer] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/login') && r.request().method() === 'POST'),
      page.getByRole('button', { name: 'Submit' }).click(),
    ]);
    assert.equal(answer.status(), 401);
    await page.waitForLoadState('domcontentloaded');
    assert.equal((await page.getByRole('alert').textContent()).trim(), 'Incorrect username or password.');
    assert.equal(await page.getByRole('link', { name: 'Français', exact: true }).getAttribute('lang'), 'fr');
  });

  await check('5. English login page: axe-core WCAG 2 A/AA, zero violations', () => assertAxeClean('the English login page'), {
    critical: false,
  });

  await check('5. « Français » switches back', async () => {
    await page.goto(authorizeUrl);
    assert.equal(await page.locator('html').getAttribute('lang'), 'en', 'the choice is remembered');
    await Promise.all([page.waitForURL((u) => u.pathname === '/authorize'), page.getByRole('link', { name: 'Français', exact: true }).click()]);
    assert.equal(await page.locator('html').getAttribute('lang'), 'fr');
    await assertLoginForm();
  });
  await english.close();

} catch (err) {
  // Anything thrown outside a check (browser launch, context) is a failure too.
  runner.fail('setup', err);
} finally {
  callback?.close();
  await browser?.close();
}

process.exit(runner.summary());
