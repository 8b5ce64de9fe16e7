// Real-browser end-to-end and accessibility check of Clef's account activation
// (SPEC §3.2 first connection, §3.3 unconfirmed account, the confirmation link).
//
// Plain Node script (no test runner), like login.spec.mjs: headless Chromium
// through playwright-core, axe-core for WCAG 2 A/AA on every page of the flow,
// node:assert for the rest. Normally started by tests/browser/run.sh after
// login.spec.mjs, against the same `clef serve --demo`, and passed:
//
//   CLEF_URL        issuer / base URL of the running server (http://127.0.0.1:PORT)
//   CLEF_BIN        the clef binary the server runs (for the provisioning CLI)
//   CLEF_DATA_DIR   the server's data dir (its SQLite file; mail lands in outbox/mail)
//   CLEF_KEYS_DIR   the server's keys dir (provisional passwords derive from a key there)
//   CHROMIUM        optional, path of the Chromium binary (default /usr/bin/chromium)
//   ARTIFACTS_DIR   optional, where screenshots and page HTML of a failure go
//
// The spec provisions its own family through the CLI (a new establishment,
// a pupil file with one student and one guardian, the letters as CSV), then
// walks the guardian through: the letter's activation address, the first
// connection form (a wrong birth date, then the right one), the « compte non
// confirmé » page (resending the mail), the confirmation link from the .eml in
// the outbox, and « Mon compte ».
//
// Prints one line per check and closes with "activation: N passed, N failed";
// exits 1 when any check failed.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  assertAxeClean as axeClean,
  assertEveryVisibleInputLabelled as everyVisibleInputLabelled,
  assertNoHorizontalScrollAt320,
  createRunner,
  indent,
  launchChromium,
  newContext,
} from './lib.mjs';

const BASE = (process.env.CLEF_URL ?? 'http://127.0.0.1:18080').replace(/\/$/, '');
const CLEF_BIN = process.env.CLEF_BIN;
const DATA_DIR = process.env.CLEF_DATA_DIR;
const KEYS_DIR = process.env.CLEF_KEYS_DIR;
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS_DIR = process.env.ARTIFACTS_DIR;

// The family this spec provisions (the demo already holds 0590001A).
const UAI = '0590002B';
const ESTABLISHMENT = 'Lycée du test';
const PUPILS_CSV =
  'student_id;family_name;given_name;birthdate;class;guardian1_family_name;guardian1_given_name;guardian1_email\n' +
  '9001;Baillet;Julie;03/09/2012;5 B;Baillet;Marc;marc@example.org\n';
const GUARDIAN = 'marc.baillet';
const CHILD = 'Julie';
const BIRTHDATE = '03/09/2012';
const WRONG_BIRTHDATE = '04/09/2012';
const NEW_PASSWORD = 'Cartable2026';
// Long, as some families' are: the pages that show it must still fit 320 px.
const EMAIL = 'marc.baillet-dupont-lambert@ecole-jean-moulin.example.org';

for (const [name, value] of Object.entries({ CLEF_BIN, CLEF_DATA_DIR: DATA_DIR, CLEF_KEYS_DIR: KEYS_DIR })) {
  if (!value) {
    console.error(`${name} must be set (see tests/browser/run.sh)`);
    process.exit(2);
  }
}
const OUTBOX = path.join(DATA_DIR, 'outbox', 'mail');

const runner = createRunner({ artifactsDir: ARTIFACTS_DIR });
const check = runner.check;
let page; // the current page

// ---------------------------------------------------------------- helpers

const assertAxeClean = (label) => axeClean(page, label);
const assertEveryVisibleInputLabelled = () => everyVisibleInputLabelled(page);

const escapeRe = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * The one control (within `scope`) whose <label> reads `text`, optionally
 * followed by the required-field star and a hint (« Nouveau mot de passe *
 * Mot de passe : 8 à … »). Anchored at the start, so « Votre adresse mail »
 * does not also find « Confirmation de votre adresse mail ».
 */
async function field(text, scope = page) {
  const control = scope.getByLabel(new RegExp(`^${escapeRe(text)}(\\s*\\*)?(\\s|$)`));
  assert.equal(await control.count(), 1, `exactly one control labelled "${text}"`);
  return control;
}

/** lang="fr", the page title, exactly one <h1> with that text, every visible control labelled. */
async function assertPage(title, heading = title) {
  assert.equal(await page.locator('html').getAttribute('lang'), 'fr', '<html lang="fr">');
  assert.equal(await page.title(), `${title} — Clef`, '<title>');
  const h1 = page.getByRole('heading', { level: 1 });
  assert.equal(await h1.count(), 1, 'exactly one <h1>');
  assert.equal((await h1.textContent()).trim(), heading, '<h1> text');
  await assertEveryVisibleInputLabelled();
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

/** Clicks the submit button `button` (within `scope`); returns the response to the POST to `action`, once the next page has loaded. */
async function submit(button, action, scope = page) {
  const target = scope.getByRole('button', { name: button, exact: true });
  assert.equal(await target.count(), 1, `one button "${button}"`);
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.url() === `${BASE}${action}` && r.request().method() === 'POST'),
    page.waitForEvent('load'),
    target.click(),
  ]);
  return response;
}

/** The login form at /login: fills it, clicks "Valider", returns the 303 and waits for the page it leads to. */
async function login(identifier, password, expectedPath) {
  const response = await page.goto(`${BASE}/login`);
  assert.equal(response.status(), 200, 'GET /login');
  await (await field('Votre identifiant')).fill(identifier);
  await (await field('Votre mot de passe')).fill(password);
  const posted = await submit('Valider', '/login');
  assert.equal(posted.status(), 303, `POST /login as ${identifier}`);
  assert.equal(posted.headers()['location'], expectedPath, 'Location of the 303');
  assert.equal(new URL(page.url()).pathname, expectedPath, 'the browser followed the redirect');
}

function clef(args, cwd) {
  const run = spawnSync(CLEF_BIN, args, {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, CLEF_DATA_DIR: DATA_DIR, CLEF_KEYS_DIR: KEYS_DIR, CLEF_ISSUER: BASE, NO_COLOR: '1' },
  });
  const output = `${run.stdout ?? ''}${run.stderr ?? ''}`;
  assert.equal(run.status, 0, `clef ${args.join(' ')} exited with ${run.status ?? run.signal}:\n${output}`);
  return output;
}

/** `;`-separated CSV with an optional BOM and "…" quoting (RFC 4180) → array of objects keyed by the header. */
function parseCsv(text) {
  const rows = [];
  let row = [];
  let cell = '';
  let quoted = false;
  text = text.replace(/^\uFEFF/, '');
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') (cell += '"'), i++;
      else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ';') row.push(cell), (cell = '');
    else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(cell), rows.push(row), (row = []), (cell = '');
    } else cell += c;
  }
  if (cell !== '' || row.length) row.push(cell), rows.push(row);
  const [header, ...body] = rows.filter((r) => r.length > 1 || r[0] !== '');
  return { header, records: body.map((r) => Object.fromEntries(header.map((h, i) => [h, r[i]]))) };
}

// ------------------------------------------------------------ mail (outbox)

function decodeQuotedPrintable(text) {
  const bytes = [];
  const raw = Buffer.from(text.replace(/=\r?\n/g, ''), 'latin1');
  for (let i = 0; i < raw.length; i++) {
    const hex = raw[i] === 0x3d ? raw.subarray(i + 1, i + 3).toString('latin1') : '';
    if (/^[0-9A-Fa-f]{2}$/.test(hex)) bytes.push(parseInt(hex, 16)), (i += 2);
    else bytes.push(raw[i]);
  }
  return Buffer.from(bytes).toString('utf8');
}

function decodeHtmlEntities(text) {
  const named = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
  return text.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (whole, e) =>
    e[0] === '#'
      ? String.fromCodePoint(e[1].toLowerCase() === 'x' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10))
      : (named[e.toLowerCase()] ?? whole),
  );
}

/** A MIME entity → its leaf parts, each { type, headers, body } with the body decoded. */
function mimeParts(entity) {
  const split = entity.search(/\r?\n\r?\n/);
  const headText = split < 0 ? entity : entity.slice(0, split);
  const body = split < 0 ? '' : entity.slice(split).replace(/^\r?\n\r?\n/, '');
  const headers = {};
  for (const line of headText.replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const type = (headers['content-type'] ?? 'text/plain').split(';')[0].trim().toLowerCase();
  if (type.startsWith('multipart/')) {
    const boundary = /boundary="?([^";]+)"?/i.exec(headers['content-type'])?.[1];
    assert.ok(boundary, `multipart without a boundary: ${headers['content-type']}`);
    const pieces = body.split(`--${boundary}`).slice(1); // before the first boundary: preamble
    return pieces
      .filter((p) => !p.startsWith('--')) // after the closing boundary: epilogue
      .flatMap((p) => mimeParts(p.replace(/^\r?\n/, '')))
      .map((p) => ({ ...p, headers: { ...headers, ...p.headers } }));
  }
  const encoding = (headers['content-transfer-encoding'] ?? '7bit').toLowerCase();
  const decoded =
    encoding === 'quoted-printable'
      ? decodeQuotedPrintable(body)
      : encoding === 'base64'
        ? Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8')
        : Buffer.from(body, 'latin1').toString('utf8');
  return [{ type, headers, body: decoded }];
}

/** The .eml files of the outbox addressed to `address`, oldest first. */
function mailsTo(address) {
  let files = [];
  try {
    files = readdirSync(OUTBOX).filter((f) => f.endsWith('.eml'));
  } catch (e) {
    if (e.code !== 'ENOENT') throw e;
  }
  return files
    .map((f) => {
      const file = path.join(OUTBOX, f);
      const raw = readFileSync(file, 'latin1');
      const split = raw.search(/\r?\n\r?\n/);
      const to = /^to:\s*(.*(?:\r?\n[ \t].*)*)/im.exec(raw.slice(0, split))?.[1] ?? '';
      return { file, raw, to, mtime: statSync(file).mtimeMs };
    })
    .filter((m) => m.to.toLowerCase().includes(address.toLowerCase()))
    .sort((a, b) => a.mtime - b.mtime);
}

/** Waits (briefly) until `count` mails to `address` are in the outbox. */
async function waitForMails(address, count) {
  let mails = [];
  for (let i = 0; i < 50; i++) {
    mails = mailsTo(address);
    if (mails.length >= count) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(mails.length, count, `${count} mail(s) to ${address} in ${OUTBOX}: ${mails.map((m) => path.basename(m.file)).join(', ')}`);
  return mails;
}

/** The confirmation link of a mail: same in the text and the HTML part. */
function confirmationLink(mail) {
  const parts = mimeParts(mail.raw);
  const text = parts.find((p) => p.type === 'text/plain');
  const html = parts.find((p) => p.type === 'text/html');
  assert.ok(text, `a text/plain part in ${mail.file}`);
  assert.ok(html, `a text/html part in ${mail.file}`);
  assert.match(parts[0].headers['subject'] ?? '', /Confirmez votre adresse mail/, 'subject');
  // The link carries the mail's language (French here).
  const pattern = new RegExp(`${escapeRe(BASE)}/confirmation\\?jeton=[A-Za-z0-9._~%-]+&lang=fr`, 'g');
  const inText = [...new Set(text.body.match(pattern) ?? [])];
  assert.equal(inText.length, 1, `one confirmation link in the text part of ${mail.file}:\n${text.body}`);
  // minijinja escapes "/" too (&#x2f;): compare the hrefs as a browser reads them.
  const hrefs = [...html.body.matchAll(/href="([^"]*)"/g)].map((m) => decodeHtmlEntities(m[1]));
  const inHtml = [...new Set(hrefs.filter((h) => new RegExp(`^${pattern.source}$`).test(h)))];
  assert.deepEqual(inHtml, inText, `the HTML part links to the same address (hrefs: ${hrefs.join(', ')})`);
  assert.match(text.body, new RegExp(escapeRe(GUARDIAN)), 'the mail names the identifier');
  return inText[0];
}

// ---------------------------------------------------------------- the flow

let browser;
let scratch;
let letter = null; // the guardian's row of letters.csv
let firstMail = null;
let link = null; // the confirmation link that works (from the latest mail)
let staleLink = null; // the one the resent mail replaced

try {
  scratch = mkdtempSync(path.join(os.tmpdir(), 'clef-activation-'));

  await check('0. provisioning (CLI): establishment, pupil import, letters as CSV', async () => {
    clef(['establishment', 'create', '--uai', UAI, '--name', ESTABLISHMENT], scratch);
    writeFileSync(path.join(scratch, 'pupils.csv'), PUPILS_CSV);
    clef(['import', '--establishment', UAI, '--file', 'pupils.csv'], scratch);
    clef(['letters', '--establishment', UAI, '--format', 'csv', '--out', 'letters.csv'], scratch);
    const raw = readFileSync(path.join(scratch, 'letters.csv'), 'utf8');
    assert.ok(raw.startsWith('\uFEFF'), 'letters.csv starts with a UTF-8 BOM');
    const { header, records } = parseCsv(raw);
    assert.deepEqual(header, [
      'identifiant', 'mot_de_passe_provisoire', 'destinataire', 'type', 'eleve_prenom',
      'eleve_nom', 'classe', 'date_courrier', 'date_limite', 'adresse_activation',
    ]);
    assert.equal(records.length, 2, `two letters (student and guardian):\n${raw}`);
    letter = records.find((r) => r.identifiant === GUARDIAN);
    assert.ok(letter, `a letter for ${GUARDIAN}: ${records.map((r) => r.identifiant).join(', ')}`);
    assert.match(letter.type, /^responsable/, 'the guardian letter type');
    assert.equal(letter.eleve_prenom, CHILD);
    assert.ok(letter.mot_de_passe_provisoire, 'a provisional password');
    assert.match(
      letter.adresse_activation,
      new RegExp(`^${BASE.replace(/[.]/g, '\\.')}/activation\\?identifiant=${GUARDIAN.replace('.', '\\.')}&appareil=[0-9a-f]{22}\\.[A-Za-z0-9_-]{43}$`),
      'adresse_activation: the identifier and the letter\'s device proof',
    );
    assert.ok(records.some((r) => r.identifiant === 'julie.baillet' && r.type === 'élève'), 'the student letter');
    assert.deepEqual(mailsTo(EMAIL), [], `no mail to ${EMAIL} yet`);
  });

  browser = await launchChromium(CHROMIUM);
  const context = await newContext(browser);
  page = await context.newPage();
  runner.page = page;
  page.on('pageerror', (e) => console.log(indent(`page error: ${e.message}`)));

  // -------------------------------------------------- 1. the letter's address

  await check('1. activation page: "Première connexion", identifier prefilled, labels, autocomplete', async () => {
    const response = await page.goto(letter.adresse_activation);
    assert.equal(response.status(), 200, `GET ${letter.adresse_activation}`);
    assert.equal(page.url(), `${BASE}/activation?identifiant=${GUARDIAN}`, 'shown without the proof');
    await assertPage('Première connexion');
    const form = await postForm('/login');
    const identifier = await field('Votre identifiant', form);
    const password = await field('Mot de passe provisoire (sur votre courrier)', form);
    await assertControl(identifier, { id: 'identifier', name: 'identifier', type: 'text', autocomplete: 'username' });
    await assertControl(password, { id: 'password', name: 'password', type: 'password', autocomplete: 'current-password' });
    assert.equal(await identifier.inputValue(), GUARDIAN, 'identifier prefilled from the letter');
    assert.equal(await password.inputValue(), '', 'password empty');
    assert.equal(await page.getByRole('alert').count(), 0, 'no alert before any attempt');
    assert.equal(await page.getByRole('link', { name: 'mot de passe oublié ?', exact: true }).count(), 1, 'link "mot de passe oublié ?"');
  });

  await check('1. activation page: axe-core WCAG 2 A/AA, zero violations', () => assertAxeClean('the activation page (/activation)'), {
    critical: false,
  });

  await check('1. provisional password: 303 to /premiere-connexion', async () => {
    await (await field('Mot de passe provisoire (sur votre courrier)')).fill(letter.mot_de_passe_provisoire);
    const response = await submit('Valider', '/login');
    assert.equal(response.status(), 303, 'POST /login with the provisional password');
    assert.equal(response.headers()['location'], '/premiere-connexion', 'Location');
    assert.equal(new URL(page.url()).pathname, '/premiere-connexion', 'the browser followed the redirect');
  });

  // -------------------------------------------------- 2. first connection

  const firstConnectionFields = async () => {
    const form = await postForm('/premiere-connexion');
    return {
      form,
      identifier: form.locator('#identifier'),
      birthdate: await field(`Date de naissance de votre enfant (${CHILD})`, form),
      password: await field('Nouveau mot de passe', form),
      passwordConfirmation: await field('Confirmation du mot de passe', form),
      email: await field('Votre adresse mail', form),
      emailConfirmation: await field('Confirmation de votre adresse mail', form),
    };
  };

  await check('2. first connection form: labels, autocomplete, read-only identifier', async () => {
    await assertPage('Première connexion');
    const f = await firstConnectionFields();
    // Shown as text under its name (it wraps at 320 px); posted, for password managers, by
    // a hidden read-only field named as a username.
    const shown = page.locator('#identifier-shown');
    assert.equal((await shown.textContent()).trim(), GUARDIAN, 'identifier shown');
    assert.equal(await page.locator('dt', { hasText: 'Votre identifiant' }).count(), 1, 'under "Votre identifiant"');
    assert.equal(await f.identifier.getAttribute('autocomplete'), 'username', '#identifier autocomplete=username');
    assert.equal(await f.identifier.getAttribute('name'), 'identifier', '#identifier name');
    assert.equal(await f.identifier.inputValue(), GUARDIAN, 'identifier posted');
    assert.equal(await f.identifier.isVisible(), false, 'the field itself is hidden');
    assert.notEqual(await f.identifier.getAttribute('readonly'), null, 'identifier has readonly');
    await assertControl(f.birthdate, { id: 'birthdate', name: 'birthdate', type: 'text' });
    // The child's birth date, not the user's: the browser must not offer the user's own (bday).
    assert.notEqual(await f.birthdate.getAttribute('autocomplete'), 'bday', "autocomplete of the child's birth date is not bday");
    await assertControl(f.password, { id: 'password', name: 'password', type: 'password', autocomplete: 'new-password' });
    await assertControl(f.passwordConfirmation, {
      id: 'password_confirmation', name: 'password_confirmation', type: 'password', autocomplete: 'new-password',
    });
    await assertControl(f.email, { id: 'email', name: 'email', type: 'email', autocomplete: 'email' });
    await assertControl(f.emailConfirmation, {
      id: 'email_confirmation', name: 'email_confirmation', type: 'email', autocomplete: 'email',
    });
    for (const [name, control] of Object.entries(f)) {
      if (name === 'form' || name === 'identifier') continue;
      assert.notEqual(await control.getAttribute('required'), null, `#${await control.getAttribute('id')} is required`);
      assert.equal(await control.inputValue(), '', `#${await control.getAttribute('id')} starts empty`);
    }
    // The hints (date format, password rule, why the address) are tied to their fields.
    for (const control of [f.birthdate, f.password, f.email]) {
      const description = await control.getAttribute('aria-describedby');
      assert.ok(description, `#${await control.getAttribute('id')} has aria-describedby`);
      for (const id of description.split(/\s+/)) {
        const hint = page.locator(`[id="${id}"]`);
        assert.equal(await hint.count(), 1, `aria-describedby target #${id} exists`);
        assert.notEqual((await hint.textContent()).trim(), '', `#${id} is not empty`);
      }
    }
    assert.equal(await page.getByRole('alert').count(), 0, 'no alert before any attempt');
    assert.equal(await page.getByRole('button', { name: 'Valider', exact: true }).count(), 1, 'button "Valider"');
  });

  await check('2. first connection form: axe-core WCAG 2 A/AA, zero violations', () => assertAxeClean('the first connection form (/premiere-connexion)'), {
    critical: false,
  });

  const fillFirstConnection = async (birthdate) => {
    const f = await firstConnectionFields();
    await f.birthdate.fill(birthdate);
    await f.password.fill(NEW_PASSWORD);
    await f.passwordConfirmation.fill(NEW_PASSWORD);
    await f.email.fill(EMAIL);
    await f.emailConfirmation.fill(EMAIL);
  };

  await check('2. the language button: the page in English with what was typed, the passwords not echoed, and back', async () => {
    const f = await firstConnectionFields();
    await f.birthdate.fill(WRONG_BIRTHDATE);
    await f.password.fill(NEW_PASSWORD);
    await f.email.fill(EMAIL);
    // With the keyboard, as the header's link was reached.
    await page.getByRole('button', { name: 'English', exact: true }).focus();
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.url() === `${BASE}/premiere-connexion` && r.request().method() === 'POST'),
      page.waitForEvent('load'),
      page.keyboard.press('Enter'),
    ]);
    assert.equal(response.status(), 200, 'POST /premiere-connexion with langue=en');
    assert.equal(await page.locator('html').getAttribute('lang'), 'en', '<html lang="en">');
    assert.equal((await page.locator('h1').textContent()).trim(), 'First sign-in');
    const form = page.locator('form#premiere-connexion');
    assert.equal(await form.locator('#birthdate').inputValue(), WRONG_BIRTHDATE, 'birth date kept');
    assert.equal(await form.locator('#email').inputValue(), EMAIL, 'email kept');
    assert.equal(await form.locator('#password').inputValue(), '', 'password not echoed back');
    assert.equal(await page.getByRole('alert').count(), 0, 'nothing checked, nothing refused');
    await assertAxeClean('the first connection form in English (POST /premiere-connexion, langue=en)');
    await assertNoHorizontalScrollAt320(page, 'the first connection form in English');
    const back = await submit('Français', '/premiere-connexion');
    assert.equal(back.status(), 200, 'back to French');
    await assertPage('Première connexion');
    assert.equal(await page.locator('#birthdate').inputValue(), WRONG_BIRTHDATE, 'birth date still kept');
  });

  await check('2. wrong birth date, sent with Enter: 400 and alert "La date de naissance ne correspond pas"', async () => {
    await fillFirstConnection(WRONG_BIRTHDATE);
    // Enter in a field sends the form (its default button), not the language
    // button that comes before it in the page.
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.url() === `${BASE}/premiere-connexion` && r.request().method() === 'POST'),
      page.waitForEvent('load'),
      page.locator('#email_confirmation').press('Enter'),
    ]);
    assert.equal(new URLSearchParams(response.request().postData()).get('langue'), null, 'not the language button');
    assert.equal(response.status(), 400, 'POST /premiere-connexion with a wrong birth date');
    await assertPage('Erreur — Première connexion', 'Première connexion');
    const alert = page.getByRole('alert');
    assert.equal(await alert.count(), 1, 'one role="alert"');
    assert.match((await alert.textContent()).trim(), /^La date de naissance ne correspond pas/);
    // The form comes back, still fully labelled; what was typed is kept, the passwords are not echoed.
    const f = await firstConnectionFields();
    assert.equal(await f.identifier.inputValue(), GUARDIAN, 'identifier kept');
    assert.equal(await f.birthdate.inputValue(), WRONG_BIRTHDATE, 'birth date kept');
    assert.equal(await f.email.inputValue(), EMAIL, 'email kept');
    assert.equal(await f.emailConfirmation.inputValue(), EMAIL, 'email confirmation kept');
    assert.equal(await f.password.inputValue(), '', 'password not echoed back');
    assert.equal(await f.passwordConfirmation.inputValue(), '', 'password confirmation not echoed back');
    await assertControl(f.password, { autocomplete: 'new-password' });
    await assertControl(f.passwordConfirmation, { autocomplete: 'new-password' });
    await assertControl(f.email, { autocomplete: 'email' });
    await assertControl(f.emailConfirmation, { autocomplete: 'email' });
    assert.deepEqual(mailsTo(EMAIL), [], 'no mail sent after a wrong birth date');
  });

  await check('2. wrong birth date page: axe-core WCAG 2 A/AA, zero violations', () => assertAxeClean('the first connection error page (POST /premiere-connexion, 400)'), {
    critical: false,
  });

  await check('2. right birth date: "Compte en attente de validation", one confirmation mail', async () => {
    await fillFirstConnection(BIRTHDATE);
    const response = await submit('Valider', '/premiere-connexion');
    assert.equal(response.status(), 200, 'POST /premiere-connexion with the right birth date');
    await assertPage('Compte en attente de validation');
    assert.equal(await page.getByRole('alert').count(), 0, 'no alert');
    assert.match(await page.locator('main').textContent(), new RegExp(escapeRe(EMAIL)), 'the page names the address');
    [firstMail] = await waitForMails(EMAIL, 1);
    staleLink = confirmationLink(firstMail);
  });

  await check('2. pending page: axe-core WCAG 2 A/AA, zero violations', () => assertAxeClean('the pending page (« Compte en attente de validation »)'), {
    critical: false,
  });

  await check('2. pending page: the long address wraps at 320 px', () => assertNoHorizontalScrollAt320(page, 'the pending page'));

  // -------------------------------------------------- 3. unconfirmed account

  await check('3. login before confirming: 303 to /compte-non-confirme', async () => {
    await login(GUARDIAN, NEW_PASSWORD, '/compte-non-confirme');
    await assertPage('Compte non confirmé');
    assert.match(await page.locator('main').textContent(), new RegExp(escapeRe(EMAIL)), 'the page names the address');
    await assertNoHorizontalScrollAt320(page, 'the unconfirmed page');
    await postForm('/compte-non-confirme/renvoyer');
    assert.equal(await page.getByRole('button', { name: 'Renvoyer le mail de confirmation', exact: true }).count(), 1, 'button "Renvoyer le mail de confirmation"');
    assert.equal(await page.getByRole('heading', { level: 2, name: "Corriger l'adresse", exact: true }).count(), 1, 'heading "Corriger l\'adresse"');
    const correct = await postForm('/compte-non-confirme/corriger');
    await assertControl(await field('Nouvelle adresse mail', correct), { id: 'email', name: 'email', type: 'email', autocomplete: 'email' });
    await assertControl(await field('Confirmation de la nouvelle adresse', correct), {
      id: 'email_confirmation', name: 'email_confirmation', type: 'email', autocomplete: 'email',
    });
    assert.equal(await correct.getByRole('button', { name: "Corriger l'adresse", exact: true }).count(), 1, 'button "Corriger l\'adresse"');
  });

  await check('3. unconfirmed page: axe-core WCAG 2 A/AA, zero violations', () => assertAxeClean('the unconfirmed account page (/compte-non-confirme)'), {
    critical: false,
  });

  await check('3. "Renvoyer le mail de confirmation": status notice, a second mail', async () => {
    const response = await submit('Renvoyer le mail de confirmation', '/compte-non-confirme/renvoyer');
    assert.equal(response.status(), 200, 'POST /compte-non-confirme/renvoyer');
    await assertPage('Compte non confirmé');
    const notice = page.getByRole('status');
    assert.equal(await notice.count(), 1, 'one role="status"');
    assert.match((await notice.textContent()).trim(), /^Un nouveau mail de confirmation vient d'être envoyé/);
    const mails = await waitForMails(EMAIL, 2);
    const resent = mails.find((m) => m.file !== firstMail.file);
    link = confirmationLink(resent);
    assert.notEqual(link, staleLink, 'the resent mail carries a new link');
  });

  await check('3. unconfirmed page after resending: axe-core WCAG 2 A/AA, zero violations', () => assertAxeClean('the unconfirmed account page with its notice (POST /compte-non-confirme/renvoyer)'), {
    critical: false,
  });

  // -------------------------------------------------- 4. the confirmation link

  await check('4. the replaced link: 410 "Lien invalide"', async () => {
    const response = await page.goto(staleLink);
    assert.equal(response.status(), 410, 'GET of the link the resent mail replaced');
    await assertPage('Lien invalide');
    assert.equal(await page.getByRole('button').count(), 0, 'no button to confirm');
  }, { critical: false });

  await check('4. the replaced link page: axe-core WCAG 2 A/AA, zero violations', () => assertAxeClean('the invalid link page (/confirmation, 410)'), {
    critical: false,
  });

  await check('4. confirmation link: "Confirmer votre adresse mail" with a button', async () => {
    const response = await page.goto(link);
    assert.equal(response.status(), 200, `GET ${link}`);
    await assertPage('Confirmer votre adresse mail');
    assert.match(await page.locator('main').textContent(), new RegExp(escapeRe(EMAIL)), 'the page names the address');
    const form = await postForm('/confirmation');
    assert.equal(await form.locator('input[type=hidden][name=jeton]').inputValue(), new URL(link).searchParams.get('jeton'), 'hidden jeton');
    assert.equal(await page.getByRole('button', { name: 'Confirmer mon adresse', exact: true }).count(), 1, 'button "Confirmer mon adresse"');
  });

  await check('4. confirmation page: axe-core WCAG 2 A/AA, zero violations', () => assertAxeClean('the confirmation page (/confirmation)'), {
    critical: false,
  });

  await check('4. "Confirmer mon adresse": "Création réussie"', async () => {
    const response = await submit('Confirmer mon adresse', '/confirmation');
    // Confirmed, the answer is a redirect to a page of its own: a reload does not present the spent link again.
    assert.equal(response.status(), 303, 'POST /confirmation');
    assert.equal(new URL(page.url()).pathname, '/confirmation/faite');
    await assertPage('Création réussie');
    const next = page.getByRole('link', { name: 'Gérer mon compte', exact: true });
    assert.equal(await next.count(), 1, 'link "Gérer mon compte"');
    assert.equal(await next.getAttribute('href'), '/compte');
  });

  await check('4. success page: axe-core WCAG 2 A/AA, zero violations', () => assertAxeClean('the success page (« Création réussie »)'), {
    critical: false,
  });

  await check('4. the link serves once: opened again, « Adresse déjà confirmée » and a way to sign in', async () => {
    const response = await page.goto(link);
    assert.equal(response.status(), 200, 'GET of a used link');
    await assertPage('Adresse déjà confirmée');
    assert.equal(await page.getByRole('button', { name: 'Confirmer mon adresse', exact: true }).count(), 0, 'nothing left to confirm');
    const login = page.getByRole('link', { name: 'Se connecter', exact: true });
    assert.equal(await login.first().getAttribute('href'), '/login');
  }, { critical: false });

  await check('4. the used link page: axe-core WCAG 2 A/AA, zero violations', () => assertAxeClean('the used link page (« Adresse déjà confirmée »)'), {
    critical: false,
  });

  // -------------------------------------------------- 5. the active account

  await check('5. login after confirming: 303 to /compte, "Mon compte"', async () => {
    await login(GUARDIAN, NEW_PASSWORD, '/compte');
    await assertPage('Mon compte');
    // The <dl>: each <dt> with the text of the <dd> that follows it.
    const details = await page.evaluate(() =>
      Object.fromEntries(
        [...document.querySelectorAll('main dl dt')].map((dt) => [
          dt.textContent.trim(),
          dt.nextElementSibling?.tagName === 'DD' ? dt.nextElementSibling.textContent.replace(/\s+/g, ' ').trim() : null,
        ]),
      ),
    );
    assert.equal(details['Identifiant'], GUARDIAN, `the identifier (${JSON.stringify(details)})`);
    assert.equal(details['Adresse mail'], `${EMAIL} — validée`, `the address, validated (${JSON.stringify(details)})`);
    assert.equal(await page.getByRole('button', { name: 'Renvoyer un email de validation' }).count(), 0, 'nothing to resend');

    const passwordForm = await postForm('/compte/mot-de-passe');
    await assertControl(await field('Mot de passe actuel', passwordForm), { type: 'password', autocomplete: 'current-password' });
    await assertControl(await field('Nouveau mot de passe', passwordForm), { type: 'password', autocomplete: 'new-password' });
    await assertControl(await field('Confirmation du nouveau mot de passe', passwordForm), { type: 'password', autocomplete: 'new-password' });
    assert.equal(await passwordForm.getByRole('button', { name: 'Changer de mot de passe', exact: true }).count(), 1, 'button "Changer de mot de passe"');

    const emailForm = await postForm('/compte/adresse');
    await assertControl(await field('Mot de passe actuel', emailForm), { type: 'password', autocomplete: 'current-password' });
    await assertControl(await field('Nouvelle adresse mail', emailForm), { type: 'email', autocomplete: 'email' });
    await assertControl(await field('Confirmation de la nouvelle adresse', emailForm), { type: 'email', autocomplete: 'email' });
    assert.equal(await emailForm.getByRole('button', { name: "Changer d'adresse", exact: true }).count(), 1, 'button "Changer d\'adresse"');
  });

  await check('5. account page: axe-core WCAG 2 A/AA, zero violations', () => assertAxeClean('the account page (/compte)'), {
    critical: false,
  });

  await context.close();
} catch (err) {
  // Anything thrown outside a check (browser launch, context) is a failure too.
  runner.fail('setup', err);
} finally {
  await browser?.close();
  // letters.csv holds provisional passwords.
  if (scratch) rmSync(scratch, { recursive: true, force: true });
}

process.exit(runner.summary('activation'));
