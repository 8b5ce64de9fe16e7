// Real-browser end-to-end and accessibility check of « Regrouper des comptes »
// (SPEC §3.8): « Enfants » in « Mon compte », the grouping form (a wrong
// password, a letter's account without then with a wrong birth date), the
// confirmation listing the children on each side, « Valider », « Mon compte »
// with the children of both accounts, the closed letter account refused at
// /login, and the English form. Every page passes axe-core (WCAG 2 A/AA) and
// reflows at 320 px; the link to the form, the form and « Valider » are driven
// with the keyboard.
//
// Plain Node script (no test runner), like recovery.spec.mjs. Normally started
// by tests/browser/run.sh last (it attaches a new child to the demo parent and
// closes the letter account it provisions), against the same
// `clef serve --demo`, and passed:
//
//   CLEF_URL        issuer / base URL of the running server (http://127.0.0.1:PORT)
//   CLEF_BIN        the clef binary the server runs (for the provisioning CLI)
//   CLEF_DATA_DIR   the server's data dir (its SQLite file)
//   CLEF_KEYS_DIR   the server's keys dir (provisional passwords derive from a key there)
//   CHROMIUM        optional, path of the Chromium binary (default /usr/bin/chromium)
//   ARTIFACTS_DIR   optional, where screenshots and page HTML of a failure go
//
// The spec provisions its own letter account through the CLI (a new
// establishment, a pupil file with one student whose responsable 1 is a new
// parent, the letters as CSV) and groups it into the demo parent's account.
//
// Prints one line per check and closes with "grouping: N passed, N failed";
// exits 1 when any check failed.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
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

// The demo parent (src/demo.rs) and her two children.
const USERNAME = 'parent.martin';
const PASSWORD = 'Demo2026clef';
const DEMO_ESTABLISHMENT = 'Collège Jean Moulin (démo) (0590001A)';
const DEMO_CHILDREN = [
  { name: 'Léa Martin', establishment: DEMO_ESTABLISHMENT, class: '5 B', rank: 1 },
  { name: 'Hugo Martin', establishment: DEMO_ESTABLISHMENT, class: '3 A', rank: 1 },
];

// The letter account this spec provisions (the demo holds 0590001A, activation.spec.mjs 0590002B).
const UAI = '0590003C';
const ESTABLISHMENT = 'Collège du regroupement';
const PUPILS_CSV =
  'student_id;family_name;given_name;birthdate;class;guardian1_family_name;guardian1_given_name;guardian1_email\n' +
  '9101;Dupuis;Florian;12/03/2012;4 A;Dupuis;Nadia;nadia.dupuis@example.org\n';
const CHILD = { name: 'Florian Dupuis', establishment: `${ESTABLISHMENT} (${UAI})`, class: '4 A', rank: 1 };
const BIRTHDATE = '12/03/2012';
const WRONG_BIRTHDATE = '13/03/2012';

const WRONG_CREDENTIALS = 'Identifiant ou mot de passe incorrect.';
const BIRTHDATE_NEEDED = fr(
  "Ce compte n'a pas encore été activé : retapez le mot de passe provisoire de son courrier de notification et saisissez aussi la date de naissance de l'enfant qui y est nommé.");
const WRONG_BIRTHDATE_ALERT = "La date de naissance ne correspond pas à celle connue de l'établissement.";
const SUCCESS =
  "L'opération de regroupement des comptes a été effectuée avec succès. Seul le compte avec lequel vous êtes connecté reste disponible.";

const runner = createRunner({ artifactsDir: ARTIFACTS_DIR });
const check = runner.check;
let page; // the current page

// ---------------------------------------------------------------- helpers

const escapeRe = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const squash = (s) => s.replace(/\s+/g, ' ').trim();

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
 * followed by the required-field star and a hint (« Mot de passe du compte *
 * Pour un courrier … »). Anchored at the start.
 */
async function field(text, scope = page) {
  const control = scope.getByLabel(new RegExp(`^${escapeRe(text)}(\\s*\\*)?(\\s|$)`));
  assert.equal(await control.count(), 1, `exactly one control labelled "${text}"`);
  return control;
}

/** <html lang>, the page title, exactly one <h1> with that text, every visible control labelled. */
async function assertPage(title, lang = 'fr', heading = title) {
  assert.equal(await page.locator('html').getAttribute('lang'), lang, `<html lang="${lang}">`);
  assert.equal(await page.title(), `${title} — Clef`, '<title>');
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

async function assertControl(control, { id, name, type }) {
  if (id !== undefined) assert.equal(await control.getAttribute('id'), id, 'id');
  if (name !== undefined) assert.equal(await control.getAttribute('name'), name, `name of #${id}`);
  if (type !== undefined) assert.equal(await control.getAttribute('type'), type, `type of #${id}`);
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

/** Presses `key` and waits for the POST to `action` and the page after it. */
const pressing = (key, action) => posting(action, () => page.keyboard.press(key));

/** The id of the focused element (keyboard checks). */
const focusedId = () => page.evaluate(() => document.activeElement?.id ?? '');

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
  assert.equal(await control.getAttribute('aria-invalid'), 'true', `aria-invalid="true" on #${await control.getAttribute('id')}`);
  assert.ok(alert.id, 'the alert has an id');
  const describedBy = (await control.getAttribute('aria-describedby'))?.split(/\s+/) ?? [];
  const texts = await Promise.all(describedBy.map(async (id) => (await page.locator(`[id="${id}"]`).innerText()).trim()));
  assert.ok(
    describedBy.includes(alert.id) || texts.includes(alert.text),
    `aria-describedby (${describedBy.join(' ')}) names the alert #${alert.id} or a message saying « ${alert.text} »`,
  );
}

async function assertNotInvalid(control) {
  assert.notEqual(await control.getAttribute('aria-invalid'), 'true', `#${await control.getAttribute('id')} is not aria-invalid`);
}

/** The /login form: fills it, clicks « Valider »; returns the response to the POST. */
async function login(identifier, password) {
  const response = await page.goto(`${BASE}/login`);
  assert.equal(response.status(), 200, 'GET /login');
  await (await field('Votre identifiant')).fill(identifier);
  await (await field('Votre mot de passe')).fill(password);
  return submit('Valider', '/login');
}

/** Signs in as the demo parent: 303 to « Mon compte ». */
async function signInDemoParent() {
  const posted = await login(USERNAME, PASSWORD);
  assert.equal(posted.status(), 303, `POST /login as ${USERNAME}`);
  assert.equal(posted.headers()['location'], '/compte', 'Location of the 303');
  assert.equal(new URL(page.url()).pathname, '/compte', 'the browser followed the redirect');
}

/**
 * « Enfants » of « Mon compte »: the h2#enfants, then for each child of its
 * list the <h3> name and the text under it (establishment, class, rank).
 */
async function childrenOfAccount() {
  const heading = page.getByRole('heading', { level: 2, name: 'Enfants', exact: true });
  assert.equal(await heading.count(), 1, 'one <h2> « Enfants »');
  assert.equal(await heading.getAttribute('id'), 'enfants', 'the <h2> is #enfants');
  return page.evaluate(() => {
    const h2 = document.getElementById('enfants');
    const items = [];
    for (let el = h2.nextElementSibling; el && el.tagName !== 'H2'; el = el.nextElementSibling) {
      if (el.tagName !== 'UL') continue;
      for (const li of el.querySelectorAll(':scope > li')) {
        const name = li.querySelector('h3')?.textContent.replace(/\s+/g, ' ').trim() ?? null;
        items.push({ name, text: li.innerText.replace(/\s+/g, ' ').trim() });
      }
    }
    return items;
  });
}

/** Each expected child is listed once, with its establishment « Nom (UAI) », « classe X » and « Responsable légal N ». */
function assertChildren(listed, expected) {
  assert.deepEqual(
    listed.map((c) => c.name).sort(),
    expected.map((c) => c.name).sort(),
    `the children listed: ${JSON.stringify(listed)}`,
  );
  for (const child of expected) {
    const item = listed.find((c) => c.name === child.name);
    assert.ok(item.text.includes(child.establishment), `${child.name}: « ${child.establishment} » in « ${item.text} »`);
    assert.ok(item.text.includes(`classe ${child.class}`), `${child.name}: « classe ${child.class} » in « ${item.text} »`);
    assert.ok(item.text.includes(`Responsable légal ${child.rank}`), `${child.name}: « Responsable légal ${child.rank} » in « ${item.text} »`);
  }
}

/** The <li> texts of the <ul> right after the <h2> reading `heading`. */
async function listAfter(heading) {
  const h2 = page.getByRole('heading', { level: 2, name: heading, exact: true });
  assert.equal(await h2.count(), 1, `one <h2> « ${heading} »`);
  const list = h2.locator('xpath=following-sibling::*[1]');
  assert.equal(await list.evaluate((el) => el.tagName), 'UL', `a <ul> right after « ${heading} »`);
  return (await list.locator(':scope > li').allInnerTexts()).map(squash);
}

/** The grouping form's three controls, checked for id, name, type. */
async function groupingFields() {
  const form = await postForm('/compte/regroupement');
  const identifier = await field('Identifiant du compte', form);
  const password = await field('Mot de passe du compte', form);
  const birthdate = await field("Date de naissance de l'enfant", form);
  await assertControl(identifier, { id: 'other_identifier', name: 'identifier', type: 'text' });
  await assertControl(password, { id: 'other_password', name: 'password', type: 'password' });
  await assertControl(birthdate, { id: 'birthdate', name: 'birthdate', type: 'text' });
  return { form, identifier, password, birthdate };
}

/** Fills the grouping form and clicks « Suivant »; returns the response to the POST. */
async function propose(identifier, password, birthdate) {
  const f = await groupingFields();
  await f.identifier.fill(identifier);
  await f.password.fill(password);
  await f.birthdate.fill(birthdate);
  return submit('Suivant', '/compte/regroupement');
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

// ---------------------------------------------------------------- the flow

let browser;
let context;
let scratch;
let letter = null; // the new parent's row of letters.csv

try {
  scratch = mkdtempSync(path.join(os.tmpdir(), 'clef-grouping-'));

  await check('0. provisioning (CLI): establishment, one pupil with a new responsable 1, her letter as CSV', async () => {
    clef(['establishment', 'create', '--uai', UAI, '--name', ESTABLISHMENT], scratch);
    writeFileSync(path.join(scratch, 'pupils.csv'), PUPILS_CSV);
    clef(['import', '--establishment', UAI, '--file', 'pupils.csv'], scratch);
    clef(['letters', '--establishment', UAI, '--format', 'csv', '--out', 'letters.csv'], scratch);
    const { records } = parseCsv(readFileSync(path.join(scratch, 'letters.csv'), 'utf8'));
    const guardians = records.filter((r) => /^responsable/.test(r.type));
    assert.equal(guardians.length, 1, `one guardian letter: ${JSON.stringify(records)}`);
    letter = guardians[0];
    assert.equal(letter.type, 'responsable 1', 'the letter is responsable 1');
    assert.equal(letter.eleve_prenom, 'Florian', 'the letter names Florian');
    assert.match(letter.identifiant, /^nadia\.dupuis\d*$/, 'the new parent identifier');
    assert.ok(letter.mot_de_passe_provisoire, 'a provisional password');
  });

  browser = await launchChromium(CHROMIUM);
  context = await newContext(browser);
  page = await context.newPage();
  runner.page = page;
  page.on('pageerror', (e) => console.log(indent(`page error: ${e.message}`)));

  // -------------------------------------------------- 1. « Mon compte » › Enfants

  await check('1. parent.martin signs in: « Mon compte » lists « Enfants » Léa and Hugo, with establishment, class, rank', async () => {
    await signInDemoParent();
    await assertPage('Mon compte');
    assertChildren(await childrenOfAccount(), DEMO_CHILDREN);
    const link = page.getByRole('link', { name: 'Regrouper des comptes', exact: true });
    assert.equal(await link.count(), 1, 'one link « Regrouper des comptes »');
    assert.equal(await link.getAttribute('href'), '/compte/regroupement', 'its href');
  });

  await accessible(1, '« Mon compte » with « Enfants »');

  // -------------------------------------------------- 2. the form, by keyboard

  await check('2. keyboard: Tab to « Regrouper des comptes », Enter → the form: fields, labels, button « Suivant »', async () => {
    await page.reload(); // the focus back at the top of the page
    await tabTo(page, 'Regrouper des comptes', 30);
    await Promise.all([page.waitForURL((u) => u.pathname === '/compte/regroupement'), page.keyboard.press('Enter')]);
    await assertPage('Regrouper des comptes');
    const f = await groupingFields();
    for (const control of [f.identifier, f.password, f.birthdate]) {
      assert.equal(await control.inputValue(), '', `#${await control.getAttribute('id')} starts empty`);
    }
    assert.notEqual(await f.identifier.getAttribute('required'), null, 'the identifier is required');
    assert.notEqual(await f.password.getAttribute('required'), null, 'the password is required');
    assert.equal(await f.birthdate.getAttribute('required'), null, 'the birth date is not required');
    // The hints (provisional password, date format) are tied to their fields.
    for (const control of [f.password, f.birthdate]) {
      const ids = (await control.getAttribute('aria-describedby'))?.split(/\s+/) ?? [];
      assert.ok(ids.length, `#${await control.getAttribute('id')} has aria-describedby`);
      for (const id of ids) {
        const hint = page.locator(`[id="${id}"]`);
        assert.equal(await hint.count(), 1, `aria-describedby target #${id} exists`);
        assert.notEqual((await hint.textContent()).trim(), '', `#${id} is not empty`);
      }
    }
    assert.match(await page.locator(`#${await f.birthdate.getAttribute('aria-describedby')}`).innerText(), /jj\/mm\/aaaa/, 'the date format is given');
    assert.equal(await page.getByRole('alert').count(), 0, 'no alert before any attempt');
    assert.equal(await f.form.getByRole('button', { name: 'Suivant', exact: true }).count(), 1, 'button « Suivant »');
    assert.equal(await page.getByRole('link', { name: 'Annuler', exact: true }).getAttribute('href'), '/compte#enfants', 'link « Annuler »');
    assert.equal(await focusedId(), 'other_identifier', 'the identifier field has the focus on arrival');
  });

  await accessible(2, 'the grouping form');

  // -------------------------------------------------- 3. refusals

  await check('3. a wrong password: 400, alert « Identifiant ou mot de passe incorrect. », the identifier aria-invalid', async () => {
    const response = await propose(letter.identifiant, `${letter.mot_de_passe_provisoire}x`, '');
    assert.equal(response.status(), 400, 'POST /compte/regroupement with a wrong password');
    await assertPage('Erreur — Regrouper des comptes', 'fr', 'Regrouper des comptes');
    const alert = await theAlert();
    assert.equal(alert.text, WRONG_CREDENTIALS);
    assert.ok(await page.locator('div.error[role=alert]').count(), 'the alert is a div.error');
    const f = await groupingFields();
    await assertInvalid(f.identifier, alert);
    assert.equal(await f.identifier.inputValue(), letter.identifiant, 'the identifier typed is kept');
    assert.equal(await f.password.inputValue(), '', 'the password is not echoed back');
  });

  await accessible(3, 'the grouping form with the wrong-password error');

  await check('3. the right password without birth date: 400, the « pas encore été activé » alert, the birth date aria-invalid', async () => {
    const response = await propose(letter.identifiant, letter.mot_de_passe_provisoire, '');
    assert.equal(response.status(), 400, 'POST /compte/regroupement without birth date');
    await assertPage('Erreur — Regrouper des comptes', 'fr', 'Regrouper des comptes');
    const alert = await theAlert();
    assert.equal(alert.text, BIRTHDATE_NEEDED);
    const f = await groupingFields();
    await assertInvalid(f.birthdate, alert);
    await assertNotInvalid(f.identifier);
    assert.equal(await f.password.inputValue(), '', 'the password is not echoed back');
  });

  await accessible(3, 'the grouping form asking for the birth date');

  await check('3. a wrong birth date: 400, alert « La date de naissance ne correspond pas … », the birth date kept', async () => {
    const response = await propose(letter.identifiant, letter.mot_de_passe_provisoire, WRONG_BIRTHDATE);
    assert.equal(response.status(), 400, 'POST /compte/regroupement with a wrong birth date');
    await assertPage('Erreur — Regrouper des comptes', 'fr', 'Regrouper des comptes');
    const alert = await theAlert();
    assert.equal(alert.text, WRONG_BIRTHDATE_ALERT);
    const f = await groupingFields();
    await assertInvalid(f.birthdate, alert);
    assert.equal(await f.birthdate.inputValue(), WRONG_BIRTHDATE, 'the birth date typed is kept');
    assert.equal(await f.identifier.inputValue(), letter.identifiant, 'the identifier typed is kept');
  });

  await accessible(3, 'the grouping form with the wrong-birth-date error');

  // -------------------------------------------------- 4. the confirmation

  await check('4. keyboard: identifier, Tab, password, Tab, birth date typed, Enter → the confirmation lists both sides', async () => {
    await page.goto(`${BASE}/compte/regroupement`); // a clean form
    assert.equal(await focusedId(), 'other_identifier', 'the identifier field has the focus on arrival');
    await page.keyboard.type(letter.identifiant);
    await page.keyboard.press('Tab');
    assert.equal(await focusedId(), 'other_password', 'Tab goes to the password');
    await page.keyboard.type(letter.mot_de_passe_provisoire);
    await page.keyboard.press('Tab');
    assert.equal(await focusedId(), 'birthdate', 'Tab goes to the birth date');
    await page.keyboard.type(BIRTHDATE);
    const response = await pressing('Enter', '/compte/regroupement');
    assert.equal(response.status(), 200, 'POST /compte/regroupement with the letter and the birth date');
    await assertPage('Regrouper des comptes — confirmation');
    assert.equal(await page.getByRole('alert').count(), 0, 'no alert');
    const mine = await listAfter(fr(`Élèves rattachés à votre compte : ${USERNAME}`));
    assert.equal(mine.length, 2, `two children on the demo parent's side: ${JSON.stringify(mine)}`);
    for (const child of DEMO_CHILDREN) {
      assert.ok(mine.some((t) => t.startsWith(child.name)), `${child.name} on the demo parent's side: ${JSON.stringify(mine)}`);
    }
    const theirs = await listAfter(fr(`Élèves rattachés au compte que vous souhaitez regrouper : ${letter.identifiant}`));
    assert.equal(theirs.length, 1, `one child on the other side: ${JSON.stringify(theirs)}`);
    assert.ok(theirs[0].startsWith(CHILD.name), `Florian on the other side: ${JSON.stringify(theirs)}`);
    assert.ok(theirs[0].includes(CHILD.establishment), `his establishment: ${theirs[0]}`);
    const form = await postForm('/compte/regroupement/valider');
    assert.notEqual(await form.locator('input[type=hidden][name=proposal]').inputValue(), '', 'a hidden proposal');
    assert.equal(await form.getByRole('button', { name: 'Valider', exact: true }).count(), 1, 'button « Valider »');
    assert.equal(await page.getByRole('link', { name: 'Annuler', exact: true }).getAttribute('href'), '/compte#enfants', 'link « Annuler »');
    assert.match(squash(await page.locator('main').innerText()), new RegExp(`fermeture du compte ${escapeRe(letter.identifiant)}`), 'the page says which account closes');
  });

  await accessible(4, 'the confirmation');

  // -------------------------------------------------- 5. « Valider »

  await check('5. keyboard: Tab to « Valider », Enter → « Confirmation de regroupement de comptes » and its sentence', async () => {
    // The focus is still at the top of the confirmation as loaded (nothing was focused since).
    await tabTo(page, 'Valider');
    const response = await pressing('Enter', '/compte/regroupement/valider');
    // Done, the answer is a redirect to a page of its own: a reload repeats nothing.
    assert.equal(response.status(), 303, 'POST /compte/regroupement/valider');
    assert.equal(new URL(page.url()).pathname, '/compte/regroupement/effectue');
    await assertPage('Confirmation de regroupement de comptes');
    assert.equal(await page.getByRole('alert').count(), 0, 'no alert');
    const paragraphs = (await page.locator('main p').allInnerTexts()).map(squash);
    assert.ok(paragraphs.includes(SUCCESS), `the sentence « ${SUCCESS} » in ${JSON.stringify(paragraphs)}`);
    const back = page.locator('main a[href^="/compte"]');
    assert.equal(await back.count(), 1, `one link back to « Mon compte » (/compte…)`);
    console.log(indent(`link back: « ${squash(await back.innerText())} » → ${await back.getAttribute('href')}`));
  });

  await accessible(5, '« Confirmation de regroupement de comptes »');

  // -------------------------------------------------- 6. « Mon compte » after

  await check('6. the link back → « Mon compte » lists three children: Léa, Hugo and Florian (his establishment, class, rank)', async () => {
    const back = page.locator('main a[href^="/compte"]');
    await Promise.all([page.waitForURL((u) => u.pathname === '/compte'), back.click()]);
    await assertPage('Mon compte');
    assertChildren(await childrenOfAccount(), [...DEMO_CHILDREN, CHILD]);
  });

  await accessible(6, '« Mon compte » with three children');

  await check('6. the letter account cannot be grouped again: the form says it was grouped', async () => {
    await page.goto(`${BASE}/compte/regroupement`);
    const response = await propose(letter.identifiant, letter.mot_de_passe_provisoire, BIRTHDATE);
    assert.equal(response.status(), 400, 'POST /compte/regroupement with the closed account');
    const alert = await theAlert();
    assert.equal(alert.text, fr("Ce compte a déjà été regroupé ou fermé : il ne peut plus l'être."), 'the letter still opens it, to say so');
  }, { critical: false });

  await context.close();

  // -------------------------------------------------- 7. the closed account

  context = await newContext(browser);
  page = await context.newPage();
  runner.page = page;
  page.on('pageerror', (e) => console.log(indent(`page error: ${e.message}`)));

  await check('7. a fresh browser: the letter identifier + provisional password → « Ce compte a été regroupé avec un autre compte »', async () => {
    const response = await login(letter.identifiant, letter.mot_de_passe_provisoire);
    assert.equal(response.status(), 403, `POST /login as ${letter.identifiant} (closed)`);
    assert.equal(new URL(page.url()).pathname, '/login', 'still on /login');
    const alert = await theAlert();
    assert.match(alert.text, /^Ce compte a été regroupé avec un autre compte/, 'the other parent, holding the letter, is told where the child went');
  });

  await accessible(7, 'the login page refusing the closed account');

  await context.close();

  // -------------------------------------------------- 8. English

  context = await newContext(browser);
  page = await context.newPage();
  runner.page = page;
  page.on('pageerror', (e) => console.log(indent(`page error: ${e.message}`)));

  await check('8. « English » on /compte/regroupement: « Group accounts », its fields in English', async () => {
    await signInDemoParent();
    const response = await page.goto(`${BASE}/compte/regroupement`);
    assert.equal(response.status(), 200, 'GET /compte/regroupement');
    const link = page.getByRole('link', { name: 'English', exact: true });
    assert.equal(await link.getAttribute('lang'), 'en', 'the link is marked as English');
    await Promise.all([page.waitForURL((u) => u.pathname === '/compte/regroupement'), link.click()]);
    await assertPage('Group accounts', 'en');
    await field('Username of the account');
    await field('Password of the account');
    await field("The child's birth date");
    assert.equal(await page.getByRole('button', { name: 'Next', exact: true }).count(), 1, 'button « Next »');
    assert.equal(await page.getByRole('link', { name: 'Français', exact: true }).getAttribute('lang'), 'fr');
  }, { critical: false });

  await accessible(8, 'the English « Group accounts »');

  await context.close();
} catch (err) {
  // Anything thrown outside a check (browser launch, context) is a failure too.
  runner.fail('setup', err);
} finally {
  await browser?.close();
  // letters.csv holds provisional passwords.
  if (scratch) rmSync(scratch, { recursive: true, force: true });
}

process.exit(runner.summary('grouping'));
