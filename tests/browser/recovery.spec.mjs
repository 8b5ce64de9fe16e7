// Real-browser end-to-end and accessibility check of Clef's recovery pages
// (SPEC §3.4 identifiant oublié, §3.5 mot de passe oublié, §3.7 « Modifiez
// votre mot de passe »): the links of the login page, the identifier reminder
// mail, a reset by the mailed link (a wrong identifier first), a reset by SMS
// code done with the keyboard only (a wrong code first), the English page, and
// a mailed link used twice. Every page of both flows passes axe-core (WCAG 2
// A/AA) and reflows at 320 px.
//
// Plain Node script (no test runner), like login.spec.mjs. Normally started by
// tests/browser/run.sh last (it changes the demo parent's password, then sets
// it back to the demo one), against the same `clef serve --demo`, and passed:
//
//   CLEF_URL        issuer / base URL of the running server (http://127.0.0.1:PORT)
//   CLEF_DATA_DIR   the server's data dir (mail lands in outbox/mail as .eml,
//                   SMS in outbox/sms as .json)
//   CHROMIUM        optional, path of the Chromium binary (default /usr/bin/chromium)
//   ARTIFACTS_DIR   optional, where screenshots and page HTML of a failure go
//
// Prints one line per check and closes with "recovery: N passed, N failed";
// exits 1 when any check failed.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import {
  assertAxeClean as axeClean,
  assertEveryVisibleInputLabelled as everyVisibleInputLabelled,
  assertNoHorizontalScrollAt320 as noHorizontalScrollAt320,
  createRunner,
  indent,
  launchChromium,
  newContext,
  tabTo,
  fr,
} from './lib.mjs';

const BASE = (process.env.CLEF_URL ?? 'http://127.0.0.1:18080').replace(/\/$/, '');
const DATA_DIR = process.env.CLEF_DATA_DIR;
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS_DIR = process.env.ARTIFACTS_DIR;

if (!DATA_DIR) {
  console.error('CLEF_DATA_DIR must be set (see tests/browser/run.sh)');
  process.exit(2);
}
const MAIL_OUTBOX = path.join(DATA_DIR, 'outbox', 'mail');
const SMS_OUTBOX = path.join(DATA_DIR, 'outbox', 'sms');

// The demo parent (src/demo.rs): confirmed address, mobile 06 12 34 56 78.
const USERNAME = 'parent.martin';
const PASSWORD = 'Demo2026clef';
const NEW_PASSWORD = 'Nouveau2026x';
const EMAIL = 'claire.martin@example.org';
const PHONE_DIGITS = '612345678'; // national number without its leading 0 (+33 or 0 before it)
// Another demo account: a real identifier, but not the one the request is for.
const OTHER_USERNAME = 'jules.bernard';

const MAIL_CHOICE = "Par mail, à l'adresse confirmée de votre compte";
const WRONG_IDENTIFIER = "Cet identifiant n'est pas celui du compte concerné par cette demande.";
const OUTBOX_WAIT_MS = 10_000;

const runner = createRunner({ artifactsDir: ARTIFACTS_DIR });
const check = runner.check;
let page; // the current page

// ---------------------------------------------------------------- helpers

const escapeRe = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** axe-core WCAG 2 A/AA and reflow at 320 px, as one non-critical check of the page now shown. */
function accessible(number, label) {
  return check(
    `${number}. ${label}: axe-core WCAG 2 A/AA, zero violations, no horizontal scroll at 320 px`,
    async () => {
      await axeClean(page, label);
      await noHorizontalScrollAt320(page, label);
    },
    { critical: false },
  );
}

/**
 * The one control (within `scope`) whose <label> reads `text`, optionally
 * followed by the required-field star and a hint (« Votre nouveau mot de passe
 * * Mot de passe : 8 à … »). Anchored at the start, so « Votre identifiant »
 * does not also find another label that merely contains it.
 */
async function field(text, scope = page) {
  const control = scope.getByLabel(new RegExp(`^${escapeRe(text)}(\\s*\\*)?(\\s|$)`));
  assert.equal(await control.count(), 1, `exactly one control labelled "${text}"`);
  return control;
}

/** <html lang>, the page title, exactly one <h1> with that text, every visible control labelled. */
/** The page's language, <title> and <h1>: each step has a title of its own (« Mot de passe oublié : mode d'envoi »), its <h1> is the flow's. */
async function assertPage(title, lang = 'fr', heading = title) {
  assert.equal(await page.locator('html').getAttribute('lang'), lang, `<html lang="${lang}">`);
  assert.equal(await page.title(), `${lang === 'fr' ? fr(title) : title} — Clef`, '<title>');
  const h1 = page.getByRole('heading', { level: 1 });
  assert.equal(await h1.count(), 1, 'exactly one <h1>');
  assert.equal((await h1.textContent()).trim(), heading, '<h1> text');
  await everyVisibleInputLabelled(page);
}

/** The form posting to `action`, with a non-empty hidden csrf field. */
async function postForm(action) {
  const form = page.locator(`form[action="${action}"]`);
  assert.equal(await form.count(), 1, `one form posting to ${action}`);
  assert.equal((await form.getAttribute('method'))?.toLowerCase(), 'post', `${action} form method`);
  const csrf = form.locator('input[type=hidden][name=csrf]');
  assert.equal(await csrf.count(), 1, `hidden csrf field in the ${action} form`);
  assert.notEqual(await csrf.inputValue(), '', 'csrf field has a value');
  return form;
}

async function assertControl(control, { id, name, type, autocomplete }) {
  if (id !== undefined) assert.equal(await control.getAttribute('id'), id, 'id');
  if (name !== undefined) assert.equal(await control.getAttribute('name'), name, `name of #${id}`);
  if (type !== undefined) assert.equal(await control.getAttribute('type'), type, `type of #${id}`);
  if (autocomplete !== undefined) assert.equal(await control.getAttribute('autocomplete'), autocomplete, `autocomplete of #${id}`);
}

/** Runs `trigger` (a click, a key); returns the response to the POST to `action`, once the next page has loaded. */
async function posting(action, trigger) {
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.url() === `${BASE}${action}` && r.request().method() === 'POST'),
    page.waitForEvent('load'),
    trigger(),
  ]);
  return response;
}

/** Clicks the submit button `button`; returns the response to the POST to `action`, once the next page has loaded. */
async function submit(button, action) {
  const target = page.getByRole('button', { name: button, exact: true });
  assert.equal(await target.count(), 1, `one button "${button}"`);
  return posting(action, () => target.click());
}

/** Clicks the link `name` (exact); resolves once the page it leads to has loaded at `pathname`. */
async function follow(name, pathname) {
  const link = page.getByRole('link', { name, exact: true });
  assert.equal(await link.count(), 1, `one link "${name}"`);
  await Promise.all([page.waitForURL((u) => u.pathname === pathname), link.click()]);
}

/** The one role="alert" on the page, its text and id. */
async function theAlert() {
  const alert = page.getByRole('alert');
  assert.equal(await alert.count(), 1, 'one role="alert"');
  return { text: (await alert.innerText()).trim(), id: await alert.getAttribute('id') };
}

/**
 * `control` is marked invalid and described by the alert `alert`, or by its own
 * message beside it that says what the alert says (forms that tell each field).
 */
async function assertInvalid(control, alert) {
  assert.equal(await control.getAttribute('aria-invalid'), 'true', 'aria-invalid="true"');
  assert.ok(alert.id, 'the alert has an id');
  const describedBy = (await control.getAttribute('aria-describedby'))?.split(/\s+/) ?? [];
  const texts = await Promise.all(describedBy.map(async (id) => (await page.locator(`[id="${id}"]`).innerText()).trim()));
  assert.ok(
    describedBy.includes(alert.id) || texts.includes(alert.text),
    `aria-describedby (${describedBy.join(' ')}) names the alert #${alert.id} or a message saying « ${alert.text} »`,
  );
}

/** The id of the focused element (keyboard checks). */
const focusedId = () => page.evaluate(() => document.activeElement?.id ?? '');

/** Presses `key` and waits for the POST to `action` and the page after it. */
const pressing = (key, action) => posting(action, () => page.keyboard.press(key));

/** The 13-digit reference of the page (« La référence de cette demande est le n° … »). */
async function reference() {
  const span = page.locator('span.reference');
  assert.equal(await span.count(), 1, 'one <span class="reference">');
  const number = (await span.innerText()).trim();
  assert.match(number, /^\d{13}$/, 'the reference is 13 digits');
  const status = page.getByRole('status');
  assert.equal(await status.count(), 1, 'the request is confirmed in a role="status"');
  assert.match(
    (await status.innerText()).replace(/\s+/g, ' '),
    new RegExp(`La référence de cette demande est le n° ${number}\\b`),
    'the sentence around the reference',
  );
  return number;
}

// ------------------------------------------------------------ outbox (mail and SMS)

/** The names of the files now in `dir` (none when it does not exist yet). */
function filesIn(dir) {
  try {
    return readdirSync(dir);
  } catch (e) {
    if (e.code === 'ENOENT') return [];
    throw e;
  }
}

/**
 * Waits until a file of `dir` that was not in `before` (a Set of names taken
 * before the action) gives something through `read` (null while it is not
 * written in full, or not the one wanted); tries the newest first.
 */
async function waitForNew(dir, before, read, what) {
  const deadline = Date.now() + OUTBOX_WAIT_MS;
  let seen = [];
  let lastError = null;
  for (;;) {
    seen = filesIn(dir).filter((f) => !before.has(f));
    const newest = seen
      .map((f) => ({ file: path.join(dir, f), mtime: statSync(path.join(dir, f)).mtimeMs }))
      .sort((a, b) => b.mtime - a.mtime);
    for (const { file } of newest) {
      try {
        const found = read(file);
        if (found) return found;
      } catch (e) {
        lastError = e; // half written, most likely: tried again on the next round
      }
    }
    if (Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(
    `no ${what} in ${dir} within ${OUTBOX_WAIT_MS / 1000} s; new files: ${seen.join(', ') || 'none'}` +
      (lastError ? `\nlast error: ${lastError.message}` : ''),
  );
}

/** Quoted-printable (RFC 2045) → the bytes it stands for. */
function quotedPrintableBytes(text) {
  const bytes = [];
  const raw = Buffer.from(text.replace(/=\r?\n/g, ''), 'latin1');
  for (let i = 0; i < raw.length; i++) {
    const hex = raw[i] === 0x3d ? raw.subarray(i + 1, i + 3).toString('latin1') : '';
    if (/^[0-9A-Fa-f]{2}$/.test(hex)) bytes.push(parseInt(hex, 16)), (i += 2);
    else bytes.push(raw[i]);
  }
  return Buffer.from(bytes);
}

function decodeCharset(bytes, charset = 'utf-8') {
  return new TextDecoder(charset.trim().toLowerCase() || 'utf-8').decode(bytes);
}

/**
 * RFC 2047 encoded-words of a header (=?utf-8?b?…?= or =?utf-8?q?…?=): the
 * white space between two adjacent words goes, and the bytes of adjacent words
 * in one charset are decoded together (a character may be split across two).
 */
function decodeHeader(value) {
  const word = /=\?([^?*]+)(?:\*[^?]*)?\?([bBqQ])\?([^?]*)\?=/;
  const run = new RegExp(`${word.source}(?:\\s*${word.source})*`, 'g');
  return value.replace(run, (whole) => {
    let text = '';
    let pending = { charset: null, bytes: [] };
    const flush = () => {
      if (pending.bytes.length) text += decodeCharset(Buffer.concat(pending.bytes), pending.charset);
      pending = { charset: null, bytes: [] };
    };
    for (const [, charset, encoding, data] of whole.matchAll(new RegExp(word.source, 'g'))) {
      const bytes =
        encoding.toLowerCase() === 'b'
          ? Buffer.from(data, 'base64')
          : quotedPrintableBytes(data.replace(/_/g, ' '));
      if (pending.charset !== null && pending.charset !== charset.toLowerCase()) flush();
      pending.charset = charset.toLowerCase();
      pending.bytes.push(bytes);
    }
    flush();
    return text;
  });
}

function decodeHtmlEntities(text) {
  const named = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
  return text.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (whole, e) =>
    e[0] === '#'
      ? String.fromCodePoint(e[1].toLowerCase() === 'x' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10))
      : (named[e.toLowerCase()] ?? whole),
  );
}

/** Header block → { name: value } (lower-case names, lines unfolded, encoded-words decoded). */
function parseHeaders(headText) {
  const headers = {};
  for (const line of headText.replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = decodeHeader(line.slice(colon + 1).trim());
  }
  return headers;
}

/**
 * A MIME entity → its leaf parts, each { type, headers, body } with the body
 * decoded; null while a multipart is not written up to its closing boundary.
 */
function mimeParts(entity) {
  const split = entity.search(/\r?\n\r?\n/);
  if (split < 0) return null;
  const headers = parseHeaders(entity.slice(0, split));
  const body = entity.slice(split).replace(/^\r?\n\r?\n/, '');
  const contentType = headers['content-type'] ?? 'text/plain';
  const type = contentType.split(';')[0].trim().toLowerCase();
  if (type.startsWith('multipart/')) {
    const boundary = /boundary="?([^";]+)"?/i.exec(contentType)?.[1];
    assert.ok(boundary, `multipart without a boundary: ${contentType}`);
    if (!body.includes(`--${boundary}--`)) return null; // not written in full yet
    const pieces = body.split(`--${boundary}`).slice(1); // before the first boundary: preamble
    const parts = [];
    for (const piece of pieces.filter((p) => !p.startsWith('--'))) { // after the closing boundary: epilogue
      const inner = mimeParts(piece.replace(/^\r?\n/, ''));
      if (!inner) return null;
      parts.push(...inner.map((p) => ({ ...p, headers: { ...headers, ...p.headers } })));
    }
    return parts;
  }
  const charset = /charset="?([^";]+)"?/i.exec(contentType)?.[1] ?? 'utf-8';
  const encoding = (headers['content-transfer-encoding'] ?? '7bit').toLowerCase();
  const bytes =
    encoding === 'quoted-printable'
      ? quotedPrintableBytes(body)
      : encoding === 'base64'
        ? Buffer.from(body.replace(/\s+/g, ''), 'base64')
        : Buffer.from(body, 'latin1');
  return [{ type, headers, body: decodeCharset(bytes, charset) }];
}

/**
 * An .eml of the outbox: { file, to, subject, text, html }, or null while it
 * is not written in full or not addressed to `address`.
 */
function readMail(file, address) {
  const raw = readFileSync(file, 'latin1');
  const split = raw.search(/\r?\n\r?\n/);
  if (split < 0) return null;
  const headers = parseHeaders(raw.slice(0, split));
  if (!(headers['to'] ?? '').toLowerCase().includes(address.toLowerCase())) return null;
  const parts = mimeParts(raw);
  if (!parts) return null;
  const text = parts.find((p) => p.type === 'text/plain');
  const html = parts.find((p) => p.type === 'text/html');
  assert.ok(text, `a text/plain part in ${file}`);
  assert.ok(html, `a text/html part in ${file}`);
  return { file, to: headers['to'], subject: headers['subject'] ?? '', text: text.body, html: html.body };
}

/** The .eml files now in the outbox, to tell the next mail from them. */
const mailOutbox = () => new Set(filesIn(MAIL_OUTBOX));

/**
 * The newest mail to `address` written since `before` (from mailOutbox())
 * whose subject matches `about` (so that a late mail of an earlier step is
 * not taken for it).
 */
function mailSince(before, address, about) {
  return waitForNew(
    MAIL_OUTBOX,
    before,
    (file) => {
      const mail = readMail(file, address);
      return mail && about.test(mail.subject) ? mail : null;
    },
    `new mail to ${address} with a subject matching ${about}`,
  );
}

/** Runs `action`; returns the SMS to the demo mobile it caused (the newest new .json) and the code in it. */
async function smsAfter(action) {
  const before = new Set(filesIn(SMS_OUTBOX));
  const result = await action();
  const sms = await waitForNew(
    SMS_OUTBOX,
    before,
    (file) => {
      if (!file.endsWith('.json')) return null;
      const message = JSON.parse(readFileSync(file, 'utf8')); // throws while half written
      if (!String(message.to ?? '').replace(/\D/g, '').endsWith(PHONE_DIGITS)) return null;
      return { file, ...message };
    },
    `new SMS to …${PHONE_DIGITS}`,
  );
  const codes = String(sms.text ?? '').match(/\b\d{6}\b/g) ?? [];
  assert.equal(codes.length, 1, `one 6-digit code in the SMS ${sms.file}: ${JSON.stringify(sms.text)}`);
  return { sms, code: codes[0], result };
}

/** Both parts of `mail` carry the same one link `${BASE}${pathname}?jeton=…&lang=fr`; returns it. */
function linkIn(mail, pathname) {
  // The link carries the mail's language (French here).
  const pattern = new RegExp(`${escapeRe(BASE + pathname)}\\?jeton=[A-Za-z0-9._~%-]+&lang=fr`, 'g');
  const inText = [...new Set(mail.text.match(pattern) ?? [])];
  assert.equal(inText.length, 1, `one ${pathname} link in the text part of ${mail.file}:\n${mail.text}`);
  // minijinja escapes "/" too (&#x2f;): compare the hrefs as a browser reads them.
  const hrefs = [...mail.html.matchAll(/href="([^"]*)"/g)].map((m) => decodeHtmlEntities(m[1]));
  const inHtml = [...new Set(hrefs.filter((h) => new RegExp(`^${pattern.source}$`).test(h)))];
  assert.deepEqual(inHtml, inText, `the HTML part links to the same address (hrefs: ${hrefs.join(', ')})`);
  return inText[0];
}

// ---------------------------------------------------------------- sign-in

/**
 * The login form now shown at /login: fills it, clicks "Valider". Right
 * password: the 303 to « Mon compte », followed. Wrong one: 401 and the alert.
 */
async function signIn(password, { accepted }) {
  assert.equal(new URL(page.url()).pathname, '/login', 'at the login page');
  await page.getByLabel('Votre identifiant', { exact: true }).fill(USERNAME);
  await page.getByLabel('Votre mot de passe', { exact: true }).fill(password);
  const response = await submit('Valider', '/login');
  if (accepted) {
    assert.equal(response.status(), 303, `POST /login as ${USERNAME} with ${password}`);
    assert.equal(response.headers()['location'], '/compte', 'Location of the 303');
    assert.equal(new URL(page.url()).pathname, '/compte', 'the browser followed the redirect to « Mon compte »');
    assert.equal((await page.getByRole('heading', { level: 1 }).textContent()).trim(), 'Mon compte');
    assert.equal(await page.getByRole('alert').count(), 0, 'no alert');
  } else {
    assert.equal(response.status(), 401, `POST /login as ${USERNAME} with ${password}`);
    assert.equal(new URL(page.url()).pathname, '/login', 'still at the login page');
    assert.equal((await theAlert()).text, 'Identifiant ou mot de passe incorrect.');
  }
}

// ---------------------------------------------------------------- the flows

let browser;
let mailLink = null; // the link of check 2's mail, once used

try {
  browser = await launchChromium(CHROMIUM);
  let context = await newContext(browser);
  page = await context.newPage();
  runner.page = page;
  page.on('pageerror', (e) => console.log(indent(`page error: ${e.message}`)));

  // -------------------------------------------------- 1. identifiant oublié

  await check('1. /login: « identifiant oublié ? » leads to « Identifiant oublié », its field and button', async () => {
    const response = await page.goto(`${BASE}/login`);
    assert.equal(response.status(), 200, 'GET /login');
    await follow('identifiant oublié ?', '/identifiant-oublie');
    await assertPage('Identifiant oublié');
    const form = await postForm('/identifiant-oublie');
    await assertControl(await field('Votre adresse mail', form), { id: 'email', name: 'email', type: 'email', autocomplete: 'email' });
    assert.equal(await form.getByRole('button', { name: 'Valider', exact: true }).count(), 1, 'button "Valider"');
    assert.equal(await page.getByRole('alert').count(), 0, 'no alert before any attempt');
  });

  await accessible(1, '« Identifiant oublié »');

  let outbox;
  await check('1. the address submitted: the notice and « Vous ne recevez rien ? »', async () => {
    await (await field('Votre adresse mail')).fill(EMAIL);
    outbox = mailOutbox();
    const response = await submit('Valider', '/identifiant-oublie');
    assert.equal(response.status(), 303, 'POST /identifiant-oublie');
    assert.equal(new URL(page.url()).pathname, '/identifiant-oublie/envoye');
    await assertPage('Identifiant oublié : demande enregistrée', 'fr', 'Identifiant oublié');
    const status = page.getByRole('status');
    assert.equal(await status.count(), 1, 'one role="status"');
    assert.equal(
      (await status.innerText()).trim(),
      "Votre demande a été prise en compte. Si cette adresse est celle, confirmée, d'un compte, un mail rappelant votre identifiant vient d'y être envoyé.",
    );
    const help = page.getByRole('heading', { level: 2, name: 'Vous ne recevez rien ?', exact: true });
    assert.equal(await help.count(), 1, '<h2> « Vous ne recevez rien ? »');
    const items = page.locator('h2 + ul > li');
    assert.ok((await items.count()) > 0, 'a list of what to do follows it');
    assert.equal(await page.getByRole('link', { name: 'Retour à la connexion', exact: true }).getAttribute('href'), '/login');
  });

  await accessible(1, 'the « Identifiant oublié » notice');

  await check('1. the mail « Rappel de votre identifiant » to the address lists parent.martin', async () => {
    const reminder = await mailSince(outbox, EMAIL, /identifiant/i);
    assert.equal(reminder.subject, 'Rappel de votre identifiant', `subject of ${reminder.file}`);
    assert.match(reminder.text, new RegExp(`${fr('identifiant :')} ${escapeRe(USERNAME)}\\b`), `the text part names the identifier:\n${reminder.text}`);
    assert.match(reminder.html, new RegExp(`\\b${escapeRe(USERNAME)}\\b`), 'the HTML part names it too');
    assert.ok(!reminder.text.includes(OTHER_USERNAME), 'no other account in it');
  }, { critical: false });

  // -------------------------------------------------- 2. mot de passe oublié, by mail

  await check('2. /login: « mot de passe oublié ? » leads to « Mot de passe oublié », its field and button', async () => {
    const response = await page.goto(`${BASE}/login`);
    assert.equal(response.status(), 200, 'GET /login');
    await follow('mot de passe oublié ?', '/mot-de-passe-oublie');
    await assertPage('Mot de passe oublié');
    const form = await postForm('/mot-de-passe-oublie');
    await assertControl(await field('Votre identifiant', form), { id: 'identifier', name: 'identifier', type: 'text', autocomplete: 'username' });
    assert.equal(await form.getByRole('button', { name: 'Valider', exact: true }).count(), 1, 'button "Valider"');
  });

  await accessible(2, '« Mot de passe oublié »');

  await check('2. the identifier submitted: the channel page offers mail and SMS (masked number ending in 78)', async () => {
    await (await field('Votre identifiant')).fill(USERNAME);
    const response = await submit('Valider', '/mot-de-passe-oublie');
    assert.equal(response.status(), 200, 'POST /mot-de-passe-oublie');
    await assertPage("Mot de passe oublié : mode d'envoi", 'fr', 'Mot de passe oublié');
    const form = await postForm('/mot-de-passe-oublie/envoyer');
    const group = form.getByRole('group');
    assert.equal(await group.count(), 1, 'the choices are in one <fieldset>');
    assert.match((await group.locator('legend').innerText()).trim(), /^Choisissez comment recevoir/, 'its <legend>');
    const mail = group.getByRole('radio', { name: MAIL_CHOICE, exact: true });
    assert.equal(await mail.count(), 1, `radio "${MAIL_CHOICE}"`);
    assert.equal(await mail.getAttribute('value'), 'mail');
    const sms = group.getByRole('radio', { name: /^Par SMS, au numéro / });
    assert.equal(await sms.count(), 1, 'radio "Par SMS, au numéro …"');
    assert.equal(await sms.getAttribute('value'), 'sms');
    assert.equal(await form.getByRole('radio').count(), 2, 'two choices');
    const label = page.locator(`label[for="${await sms.getAttribute('id')}"]`);
    const masked = (await label.locator('[aria-hidden="true"]').innerText()).replace(/\s+/g, ' ').trim();
    assert.ok(masked.endsWith('78'), `the number ends in 78: « ${masked} »`);
    const digits = masked.replace(/\D/g, '');
    assert.equal(digits, '78', `only the last two digits show, in one shape for every number: « ${masked} »`);
    // Read out by its ending, not as a row of bullets.
    assert.equal(await form.getByRole('radio', { name: 'Par SMS, au numéro se terminant par 78', exact: true }).count(), 1,
      'the radio is named « Par SMS, au numéro se terminant par 78 »');
    assert.equal(await form.getByRole('button', { name: 'Valider', exact: true }).count(), 1, 'button "Valider"');
  });

  await accessible(2, 'the channel page');

  let reference2;
  await check('2. by mail: the reference page shows a 13-digit number', async () => {
    await page.getByRole('radio', { name: MAIL_CHOICE, exact: true }).check();
    outbox = mailOutbox();
    const response = await submit('Valider', '/mot-de-passe-oublie/envoyer');
    // Taken, the request is told by a page of its own: a reload makes no new one.
    assert.equal(response.status(), 303, 'POST /mot-de-passe-oublie/envoyer');
    assert.equal(new URL(page.url()).pathname, '/mot-de-passe-oublie/demande');
    await assertPage('Mot de passe oublié : demande enregistrée', 'fr', 'Mot de passe oublié');
    reference2 = await reference();
    assert.match(await page.getByRole('status').innerText(), /Un mail détaillant la marche à suivre/);
    assert.equal(await page.getByRole('heading', { level: 2, name: 'Vous ne recevez rien ?', exact: true }).count(), 1);
  });

  await accessible(2, 'the reference page (mail)');

  await check('2. the mail: subject « Demande de changement de mot de passe n° <the same reference> », one link', async () => {
    const resetMail = await mailSince(outbox, EMAIL, /mot de passe/i);
    assert.equal(resetMail.subject, `Demande de changement de mot de passe n° ${reference2}`, `subject of ${resetMail.file}`);
    assert.match(resetMail.text, new RegExp(`n° ${reference2}\\b`), 'the text names the reference too');
    mailLink = linkIn(resetMail, '/mot-de-passe-oublie/modifier');
  });

  await check('2. the link opens « Modifiez votre mot de passe »: identifier, new password with its rule, confirmation', async () => {
    const response = await page.goto(mailLink);
    assert.equal(response.status(), 200, `GET ${mailLink}`);
    await assertPage('Modifiez votre mot de passe');
    const form = await postForm('/mot-de-passe-oublie/modifier');
    assert.equal(await form.locator('input[type=hidden][name=jeton]').count(), 1, 'hidden jeton field');
    const identifier = await field('Votre identifiant', form);
    await assertControl(identifier, { id: 'identifier', name: 'identifier', type: 'text', autocomplete: 'username' });
    assert.equal(await identifier.inputValue(), '', 'the identifier is not filled in');
    const password = await field('Votre nouveau mot de passe', form);
    await assertControl(password, { id: 'password', name: 'password', type: 'password', autocomplete: 'new-password' });
    const rule = page.locator(`#${await password.getAttribute('aria-describedby')}`);
    assert.match(await rule.innerText(), new RegExp(fr('8 à 14 caractères')), 'the field is described by the password rule');
    await assertControl(await field('Confirmation du nouveau mot de passe', form), {
      id: 'password_confirmation', name: 'password_confirmation', type: 'password', autocomplete: 'new-password',
    });
    assert.equal(await form.getByRole('button', { name: 'Continuer', exact: true }).count(), 1, 'button "Continuer"');
  });

  await accessible(2, '« Modifiez votre mot de passe » (mail link)');

  await check('2. a wrong identifier: alert, the field aria-invalid, the passwords not echoed', async () => {
    await (await field('Votre identifiant')).fill(OTHER_USERNAME);
    await (await field('Votre nouveau mot de passe')).fill(NEW_PASSWORD);
    await (await field('Confirmation du nouveau mot de passe')).fill(NEW_PASSWORD);
    const response = await submit('Continuer', '/mot-de-passe-oublie/modifier');
    assert.equal(response.status(), 400, 'POST /mot-de-passe-oublie/modifier with another identifier');
    await assertPage('Erreur — Modifiez votre mot de passe', 'fr', 'Modifiez votre mot de passe');
    const alert = await theAlert();
    assert.equal(alert.text, WRONG_IDENTIFIER);
    const identifier = await field('Votre identifiant');
    await assertInvalid(identifier, alert);
    assert.equal(await identifier.inputValue(), OTHER_USERNAME, 'the identifier typed is kept');
    assert.equal(await (await field('Votre nouveau mot de passe')).inputValue(), '', 'password not echoed back');
    assert.equal(await (await field('Confirmation du nouveau mot de passe')).inputValue(), '', 'confirmation not echoed back');
  });

  await accessible(2, '« Modifiez votre mot de passe » with the wrong-identifier error');

  await check('2. parent.martin and Nouveau2026x twice: « Mot de passe modifié » with « Se connecter »', async () => {
    await (await field('Votre identifiant')).fill(USERNAME);
    await (await field('Votre nouveau mot de passe')).fill(NEW_PASSWORD);
    await (await field('Confirmation du nouveau mot de passe')).fill(NEW_PASSWORD);
    const response = await submit('Continuer', '/mot-de-passe-oublie/modifier');
    assert.equal(response.status(), 200, 'POST /mot-de-passe-oublie/modifier');
    await assertPage('Mot de passe modifié');
    assert.match(await page.locator('main').innerText(), /Votre mot de passe a été modifié avec succès\./);
    assert.equal(await page.getByRole('alert').count(), 0, 'no alert');
    assert.equal(await page.getByRole('link', { name: 'Se connecter', exact: true }).getAttribute('href'), '/login');
  });

  await accessible(2, '« Mot de passe modifié » (mail)');

  await check('2. « Se connecter »: the old password is refused, the new one signs in to « Mon compte »', async () => {
    await follow('Se connecter', '/login');
    await signIn(PASSWORD, { accepted: false });
    await signIn(NEW_PASSWORD, { accepted: true });
  });

  await context.close();

  // -------------------------------------------------- 3. by SMS, keyboard only

  // A fresh browser (no session), driven with Tab, arrows, Space and Enter.
  context = await newContext(browser);
  page = await context.newPage();
  runner.page = page;
  page.on('pageerror', (e) => console.log(indent(`page error: ${e.message}`)));

  await check('3. keyboard: /login → « mot de passe oublié ? » → the identifier typed, Enter', async () => {
    const response = await page.goto(`${BASE}/login`);
    assert.equal(response.status(), 200, 'GET /login');
    await tabTo(page, fr('mot de passe oublié ?'));
    await Promise.all([page.waitForURL((u) => u.pathname === '/mot-de-passe-oublie'), page.keyboard.press('Enter')]);
    await assertPage('Mot de passe oublié');
    assert.equal(await focusedId(), 'identifier', 'the identifier field has the focus on arrival');
    await page.keyboard.type(USERNAME);
    assert.equal(await (await field('Votre identifiant')).inputValue(), USERNAME, 'typed into the field');
    const posted = await pressing('Enter', '/mot-de-passe-oublie');
    assert.equal(posted.status(), 200, 'POST /mot-de-passe-oublie');
    assert.equal(await page.getByRole('radio').count(), 2, 'the channel page');
  });

  let code;
  await check('3. keyboard: the SMS choice (Tab to the choices, arrow to SMS), then « Valider »: the code page', async () => {
    await tabTo(page, 'mail'); // a radio reads as its value
    assert.equal(await focusedId(), 'channel-mail', 'Tab enters the choices at « Par mail »');
    await page.keyboard.press('ArrowDown');
    assert.equal(await focusedId(), 'channel-sms', 'the arrow moves to « Par SMS »');
    await page.keyboard.press('Space');
    assert.ok(await page.getByRole('radio', { name: /^Par SMS, au numéro / }).isChecked(), '« Par SMS » is chosen');
    assert.ok(!(await page.getByRole('radio', { name: MAIL_CHOICE, exact: true }).isChecked()), '« Par mail » is not');
    await tabTo(page, 'Valider', 5);
    const sent = await smsAfter(() => pressing('Enter', '/mot-de-passe-oublie/envoyer'));
    code = sent.code;
    assert.equal(sent.result.status(), 303, 'POST /mot-de-passe-oublie/envoyer');
    assert.equal(new URL(page.url()).pathname, '/mot-de-passe-oublie/code');
    await assertPage('Mot de passe oublié : code reçu par SMS', 'fr', 'Mot de passe oublié');
    await reference();
    await postForm('/mot-de-passe-oublie/code');
    await assertControl(await field('Code reçu par SMS'), { id: 'code', name: 'code', type: 'text', autocomplete: 'one-time-code' });
    assert.equal(await page.getByRole('button', { name: 'Continuer', exact: true }).count(), 1, 'button "Continuer"');
    assert.equal(await focusedId(), 'code', 'the code field has the focus on arrival');
  });

  await accessible(3, 'the code page (SMS)');

  await check('3. keyboard: a wrong code → « Il vous reste 2 essais », the field aria-invalid', async () => {
    const wrong = code === '000000' ? '111111' : '000000';
    assert.equal(await focusedId(), 'code', 'the code field still has the focus');
    await page.keyboard.type(wrong);
    const response = await pressing('Enter', '/mot-de-passe-oublie/code');
    assert.equal(response.status(), 400, 'POST /mot-de-passe-oublie/code with a wrong code');
    await assertPage('Erreur — Mot de passe oublié : code reçu par SMS', 'fr', 'Mot de passe oublié');
    const alert = await theAlert();
    assert.equal(alert.text, fr("Ce code n'est pas le bon. Il vous reste 2 essais."));
    const codeField = await field('Code reçu par SMS');
    await assertInvalid(codeField, alert);
    assert.equal(await codeField.inputValue(), '', 'the wrong code is not kept');
    assert.equal(await focusedId(), 'code', 'the code field has the focus again');
  });

  await accessible(3, 'the code page with the wrong-code error');

  await check('3. keyboard: the code of the SMS, Enter → « Modifiez votre mot de passe »', async () => {
    assert.equal(await focusedId(), 'code', 'the code field still has the focus');
    await page.keyboard.type(code);
    const response = await pressing('Enter', '/mot-de-passe-oublie/code');
    assert.equal(response.status(), 200, 'POST /mot-de-passe-oublie/code with the code of the SMS');
    await assertPage('Modifiez votre mot de passe');
    assert.equal(await focusedId(), 'identifier', 'the identifier field has the focus on arrival');
  });

  await accessible(3, '« Modifiez votre mot de passe » (SMS code)');

  await check('3. keyboard: parent.martin, Tab, Demo2026clef, Tab, Demo2026clef, Enter → « Mot de passe modifié »', async () => {
    assert.equal(await focusedId(), 'identifier', 'the identifier field still has the focus');
    await page.keyboard.type(USERNAME);
    await page.keyboard.press('Tab');
    assert.equal(await focusedId(), 'password', 'Tab goes to the new password');
    await page.keyboard.type(PASSWORD);
    await page.keyboard.press('Tab');
    assert.equal(await focusedId(), 'password_confirmation', 'Tab goes to its confirmation');
    await page.keyboard.type(PASSWORD);
    const response = await pressing('Enter', '/mot-de-passe-oublie/modifier');
    assert.equal(response.status(), 200, 'POST /mot-de-passe-oublie/modifier');
    await assertPage('Mot de passe modifié');
    assert.match(await page.locator('main').innerText(), /Votre mot de passe a été modifié avec succès\./);
  });

  await accessible(3, '« Mot de passe modifié » (SMS)');

  await check('3. keyboard: « Se connecter », then Demo2026clef signs in to « Mon compte »', async () => {
    await tabTo(page, 'Se connecter');
    await Promise.all([page.waitForURL((u) => u.pathname === '/login'), page.keyboard.press('Enter')]);
    assert.equal(await focusedId(), 'identifier', 'the identifier field has the focus on arrival');
    await page.keyboard.type(USERNAME);
    await page.keyboard.press('Tab');
    assert.equal(await focusedId(), 'password');
    await page.keyboard.type(PASSWORD);
    const response = await pressing('Enter', '/login');
    assert.equal(response.status(), 303, `POST /login as ${USERNAME} with ${PASSWORD}`);
    assert.equal(response.headers()['location'], '/compte', 'Location of the 303');
    assert.equal(new URL(page.url()).pathname, '/compte', 'at « Mon compte »');
    assert.equal((await page.getByRole('heading', { level: 1 }).textContent()).trim(), 'Mon compte');
  });

  await context.close();

  // -------------------------------------------------- 4. English

  context = await newContext(browser);
  page = await context.newPage();
  runner.page = page;

  await check('4. « English » on /mot-de-passe-oublie: « Forgotten password »', async () => {
    const response = await page.goto(`${BASE}/mot-de-passe-oublie`);
    assert.equal(response.status(), 200, 'GET /mot-de-passe-oublie');
    const link = page.getByRole('link', { name: 'English', exact: true });
    assert.equal(await link.getAttribute('lang'), 'en', 'the link is marked as English');
    await Promise.all([page.waitForURL((u) => u.pathname === '/mot-de-passe-oublie'), link.click()]);
    await assertPage('Forgotten password', 'en');
    await field('Your username');
    assert.equal(await page.getByRole('link', { name: 'Français', exact: true }).getAttribute('lang'), 'fr');
  }, { critical: false });

  await accessible(4, 'the English « Forgotten password »');

  await context.close();

  // -------------------------------------------------- 5. a link used twice

  context = await newContext(browser);
  page = await context.newPage();
  runner.page = page;

  await check('5. the mail link of check 2, used already: « Lien invalide » and a link to a new request', async () => {
    assert.ok(mailLink, 'the link of check 2');
    const response = await page.goto(mailLink);
    assert.equal(response.status(), 410, `GET ${mailLink} again`);
    await assertPage('Lien invalide');
    assert.equal(await page.locator('form[action="/mot-de-passe-oublie/modifier"]').count(), 0, 'no password form');
    assert.match(await page.locator('main').innerText(), /déjà servi/, 'the page says the link has served already');
    const again = page.getByRole('link', { name: 'Faire une nouvelle demande', exact: true });
    assert.equal(await again.count(), 1, 'link « Faire une nouvelle demande »');
    assert.equal(await again.getAttribute('href'), '/mot-de-passe-oublie');
  });

  await accessible(5, '« Lien invalide »');

  await context.close();
} catch (err) {
  // Anything thrown outside a check (browser launch, context) is a failure too.
  runner.fail('setup', err);
} finally {
  await browser?.close();
}

process.exit(runner.summary('recovery'));
