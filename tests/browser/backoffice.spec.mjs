// Real-browser end-to-end and accessibility check of the establishment back
// office (SPEC §3.9, at /etablissement): a staff account made with the CLI
// signs in; « Espace établissement »; the demo establishment's page with its
// two activation charts (inline SVG, role="img" and a <title>) and their
// tables, and the letters as PDF; the pupil file imported from the browser
// (preview, « Appliquer », and a bad file whose alert names the spreadsheet
// line); the accounts list filtered by class (a POSTed search); an account page, its
// « Réinitialiser le compte » refused without « Je confirme » then done with
// the box ticked by the keyboard, and the reset's line in its trail; the
// English page; a parent refused (403); and the academy operator setting the
// establishment's address and portal, a bad portal refused at its field. Every page passes axe-core
// (WCAG 2 A/AA) and reflows at 320 px.
//
// Plain Node script (no test runner), like grouping.spec.mjs. Normally started
// by tests/browser/run.sh after grouping.spec.mjs (it adds a pupil and a parent
// to the demo establishment and resets that parent's account), against the same
// `clef serve --demo`, and passed:
//
//   CLEF_URL        issuer / base URL of the running server (http://127.0.0.1:PORT)
//   CLEF_BIN        the clef binary the server runs (for `clef staff create`)
//   CLEF_DATA_DIR   the server's data dir (its SQLite file)
//   CLEF_KEYS_DIR   the server's keys dir
//   CHROMIUM        optional, path of the Chromium binary (default /usr/bin/chromium)
//   ARTIFACTS_DIR   optional, where screenshots and page HTML of a failure go
//
// Prints one line per check and closes with "backoffice: N passed, N failed";
// exits 1 when any check failed.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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

// The demo establishment (src/demo.rs): Léa (5 B), Hugo (3 A) and Jules (4 C), all active.
const UAI = '0590001A';
const NAME = 'Collège Jean Moulin (démo)';
const DEMO_CLASSES = ['4 C', '3 A', '5 B'];
const ESTABLISHMENT_PATH = `/etablissement/${UAI}`;

// The staff account this spec makes with the CLI.
const STAFF = 'secretariat.demo';
const STAFF_PASSWORD = 'Bureau2026x';

// The academy operator this spec makes with the CLI, and the details it sets.
const ACADEMY = 'rectorat.demo';
const ADDRESS = '12 rue des Écoles';
const CITY = '59000 Lille';
const PORTAL = 'https://ent.example.fr';

// The demo parent: not staff.
const PARENT = 'parent.martin';
const PARENT_PASSWORD = 'Demo2026clef';

// The pupil file imported from the browser: one new pupil whose responsable 1
// is a new parent with an email; and a bad file (spreadsheet line 3: an invalid date).
const CLASS = '6 D';
const PUPIL = 'Inès Lambert';
const GUARDIAN = 'Sophie Lambert';
const GUARDIAN_EMAIL = 'sophie.lambert@example.org';
const HEADER = 'student_id;family_name;given_name;birthdate;class;guardian1_family_name;guardian1_given_name;guardian1_email\n';
const PUPILS_CSV = `${HEADER}9201;Lambert;Inès;07/09/2013;${CLASS};Lambert;Sophie;${GUARDIAN_EMAIL}\n`;
const BAD_CSV =
  HEADER +
  `9202;Petit;Noé;12/01/2013;${CLASS};Petit;Luc;luc.petit@example.org\n` +
  `9203;Roux;Emma;31/02/2013;${CLASS};Roux;Paul;paul.roux@example.org\n`;
const BAD_LINE = 3;
// A file large enough for its import to run for seconds: its page shows it under way.
const BIG_PUPILS = 60000;
const BIG_CSV =
  'student_id;family_name;given_name;birthdate;class\n' +
  Array.from({ length: BIG_PUPILS }, (_, i) => {
    const name = [i % 26, Math.floor(i / 26) % 26, Math.floor(i / 676) % 26].map((n) => String.fromCharCode(97 + n)).join('');
    return `${80000 + i};Grand${name};Eleve;03/09/2012;6 G\n`;
  }).join('');

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
 * <html lang>, the page title (`title` — Clef), exactly one <h1> whose text is
 * `h1` (a string: equal; a RegExp: matching), every visible control labelled.
 */
async function assertPage(title, h1 = title, lang = 'fr') {
  assert.equal(await page.locator('html').getAttribute('lang'), lang, `<html lang="${lang}">`);
  assert.equal(await page.title(), `${title} — Clef`, '<title>');
  const heading = page.getByRole('heading', { level: 1 });
  assert.equal(await heading.count(), 1, 'exactly one <h1>');
  const text = squash(await heading.textContent());
  if (h1 instanceof RegExp) assert.match(text, h1, '<h1> text');
  else assert.equal(text, h1, '<h1> text');
  await everyVisibleInputLabelled(page);
}

/** The one control (within `scope`) whose <label> reads exactly `text`. */
async function field(text, scope = page) {
  const control = scope.getByLabel(text, { exact: true });
  assert.equal(await control.count(), 1, `exactly one control labelled "${text}"`);
  return control;
}

/** The one link reading `name` (within `scope`). */
async function link(name, scope = page) {
  const found = scope.getByRole('link', { name, exact: true });
  assert.equal(await found.count(), 1, `one link « ${name} »`);
  return found;
}

/** Clicks the link `name`; waits for the page at `pathname`. */
async function follow(name, pathname) {
  const target = await link(name);
  await Promise.all([page.waitForURL((u) => u.pathname === pathname), target.click()]);
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

/** Clicks the submit button `button` (within `scope`); returns the response to the POST to `action`. */
async function submit(button, action, scope = page) {
  const target = scope.getByRole('button', { name: button, exact: true });
  assert.equal(await target.count(), 1, `one button « ${button} »`);
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
  return { text: (await alert.innerText()).trim(), id: await alert.getAttribute('id'), locator: alert };
}

/** A table's caption, its column headers, and its body rows as arrays of cell texts (th and td). */
async function readTable(table) {
  return table.evaluate((el) => {
    const text = (c) => c.textContent.replace(/\s+/g, ' ').trim();
    return {
      caption: el.caption ? text(el.caption) : null,
      columns: [...el.querySelectorAll('thead th')].map(text),
      rows: [...el.querySelectorAll('tbody tr')].map((tr) => [...tr.children].map(text)),
    };
  });
}

/** The one <table> whose caption reads `caption`. */
async function tableCaptioned(caption) {
  const table = page.locator('table').filter({ has: page.locator('caption', { hasText: new RegExp(`^\\s*${escapeRe(caption)}\\s*$`) }) });
  assert.equal(await table.count(), 1, `one <table> with the caption « ${caption} »`);
  return table;
}

/** GET `url` with the page's cookies: a PDF (status 200, application/pdf, body starting %PDF). */
async function assertPdf(url) {
  // A GET prints nothing: « Imprimer les courriers » first, in a tab of its
  // own (the page under test stays where it is), then its form POSTed with
  // its fields, as its « Imprimer » button does.
  const tab = await page.context().newPage();
  let response;
  try {
    const shown = await tab.goto(url);
    assert.equal(shown.status(), 200, `GET ${url}`);
    assert.equal(squash(await tab.getByRole('heading', { level: 1 }).textContent()), 'Imprimer les courriers', `GET ${url} asks first`);
    await axeClean(tab, `« Imprimer les courriers » (${url})`);
    await noHorizontalScrollAt320(tab, '« Imprimer les courriers »');
    const form = tab.locator('form[method=post]').filter({ has: tab.getByRole('button', { name: 'Imprimer', exact: true }) });
    const fields = Object.fromEntries(await form.locator('input[type=hidden]').evaluateAll((inputs) => inputs.map((i) => [i.name, i.value])));
    response = await tab.request.post(new URL(await form.getAttribute('action'), url).href, { form: fields });
  } finally {
    await tab.close();
  }
  assert.equal(response.status(), 200, `POST the form of ${url}`);
  assert.match(response.headers()['content-type'] ?? '', /^application\/pdf/, `Content-Type of ${url}`);
  const body = await response.body();
  assert.equal(body.subarray(0, 4).toString('latin1'), '%PDF', `${url} starts with %PDF (got ${JSON.stringify(body.subarray(0, 16).toString('latin1'))})`);
  return body.length;
}

/** The /login form: fills it, clicks « Valider »; 303 to `landing` (« Mon compte », or
 * « Espace établissement » for staff). */
async function signIn(identifier, password, [landing, heading] = ['/compte', 'Mon compte']) {
  const response = await page.goto(`${BASE}/login`);
  assert.equal(response.status(), 200, 'GET /login');
  await (await page.getByLabel(/^Votre identifiant/)).fill(identifier);
  await (await page.getByLabel(/^Votre mot de passe/)).fill(password);
  const posted = await submit('Valider', '/login');
  assert.equal(posted.status(), 303, `POST /login as ${identifier}`);
  assert.equal(posted.headers()['location'], landing, 'Location of the 303');
  assert.equal(new URL(page.url()).pathname, landing, 'the browser followed the redirect');
  assert.equal(squash(await page.getByRole('heading', { level: 1 }).textContent()), heading, `at « ${heading} »`);
}

function clef(args, input) {
  const run = spawnSync(CLEF_BIN, args, {
    input,
    encoding: 'utf8',
    env: { ...process.env, CLEF_DATA_DIR: DATA_DIR, CLEF_KEYS_DIR: KEYS_DIR, CLEF_ISSUER: BASE, NO_COLOR: '1' },
  });
  const output = `${run.stdout ?? ''}${run.stderr ?? ''}`;
  assert.equal(run.status, 0, `clef ${args.join(' ')} exited with ${run.status ?? run.signal}:\n${output}`);
  return output;
}

/**
 * One activation funnel of the establishment page: the <svg role="img"> named
 * by its <title> (« Élèves : N actifs, … »), and the table with that caption:
 * a row per class (class link, « (courriers) » link, three numbers) and a
 * « Total » row that adds them up (each parent once). Returns the rows by class.
 */
async function assertFunnel(label) {
  const chart = page.getByRole('img', { name: new RegExp(`^${escapeRe(label)}\\b`) });
  assert.equal(await chart.count(), 1, `one role="img" named « ${label} … »`);
  const svg = await chart.evaluate((el) => {
    const title = el.querySelector(':scope > title');
    return {
      tag: el.tagName.toLowerCase(),
      labelledby: el.getAttribute('aria-labelledby'),
      titleId: title?.id ?? null,
      title: title?.textContent.replace(/\s+/g, ' ').trim() ?? null,
      rects: el.querySelectorAll('rect').length,
    };
  });
  assert.equal(svg.tag, 'svg', 'the chart is an inline <svg>');
  assert.ok(svg.title, `the <svg> has a <title>: ${JSON.stringify(svg)}`);
  assert.equal(svg.labelledby, svg.titleId, 'the <svg> is labelled by its <title>');
  const numbers = (svg.title.match(/\d+/g) ?? []).map(Number);
  assert.equal(numbers.length, 3, `the title gives three numbers: « ${svg.title} »`);

  const { caption, columns, rows } = await readTable(await tableCaptioned(label));
  assert.deepEqual(columns, ['Classe', 'Non activés', 'En attente', 'Actifs'], `the columns of « ${caption} »`);
  assert.ok(rows.length >= 2, `a row per class and a total: ${JSON.stringify(rows)}`);
  const total = rows.at(-1);
  assert.equal(total[0], 'Total', `the last row is « Total »: ${JSON.stringify(total)}`);
  const classes = rows.slice(0, -1);
  for (const row of [...classes, total]) {
    assert.equal(row.length, 4, `four cells: ${JSON.stringify(row)}`);
    for (const n of row.slice(1)) assert.match(n, /^\d+$/, `a number in ${JSON.stringify(row)}`);
  }
  // Pupils add up; a parent of pupils in two classes counts in each, once in all.
  for (let i = 1; i <= 3; i++) {
    const sum = classes.reduce((s, r) => s + Number(r[i]), 0);
    const most = Math.max(...classes.map((r) => Number(r[i])));
    if (label === 'Élèves') {
      assert.equal(Number(total[i]), sum, `« Total » of « ${columns[i]} » adds up the classes (${JSON.stringify(rows)})`);
    } else {
      assert.ok(Number(total[i]) >= most && Number(total[i]) <= sum, `« Total » of « ${columns[i]} » counts each parent once (${JSON.stringify(rows)})`);
    }
  }
  assert.equal(svg.rects, classes.length * 3, 'three segments per class in the chart');
  // The chart's title says the same totals: actifs, en attente, non activés.
  assert.deepEqual(numbers, [Number(total[3]), Number(total[2]), Number(total[1])], `the title « ${svg.title} » matches « Total »`);

  const table = await tableCaptioned(label);
  const byClass = {};
  for (const row of classes) {
    const name = row[0].replace(/\s*\(courriers\)$/, '');
    const cell = table.locator('tbody tr').filter({ has: page.locator('th', { hasText: new RegExp(`^\\s*${escapeRe(name).replace(/ /g, '\\s')}\\s*\\(courriers\\)\\s*$`) }) }).locator('th');
    const classLink = cell.getByRole('link', { name, exact: true });
    assert.equal(await classLink.getAttribute('href'), `${ESTABLISHMENT_PATH}/comptes?classe=${encodeURIComponent(name)}`, `the link of class ${name}`);
    const letters = cell.getByRole('link', { name: '(courriers)', exact: true });
    assert.equal(await letters.getAttribute('href'), `${ESTABLISHMENT_PATH}/courriers?classe=${encodeURIComponent(name)}`, `« (courriers) » of class ${name}`);
    byClass[name] = { provisional: Number(row[1]), pending: Number(row[2]), active: Number(row[3]) };
  }
  return byClass;
}

/** The import form, its file input « Fichier des élèves » set to a file with `content`, « Voir l'aperçu » clicked. */
async function uploadFile(file, content) {
  writeFileSync(file, content);
  const form = page.locator(`form[action="${ESTABLISHMENT_PATH}/import"]`);
  assert.equal(await form.count(), 1, 'one import form');
  assert.equal((await form.getAttribute('method'))?.toLowerCase(), 'post', 'method post');
  assert.equal(await form.getAttribute('enctype'), 'multipart/form-data', 'a multipart form');
  assert.notEqual(await form.locator('input[type=hidden][name=csrf]').inputValue(), '', 'a csrf field');
  const input = await field('Fichier des élèves', form);
  assert.equal(await input.getAttribute('type'), 'file', 'a file input');
  assert.equal(await input.getAttribute('name'), 'file', 'its name');
  await input.setInputFiles(file);
  return submit("Voir l'aperçu", `${ESTABLISHMENT_PATH}/import`, form);
}

/** The counts table of the import page: { Élèves: [new, changed, unchanged], Responsables: […] }. */
async function importCounts() {
  const { columns, rows } = await readTable(await tableCaptioned('Comptes'));
  assert.deepEqual(columns.slice(1), ['Nouveaux', 'Modifiés', 'Inchangés'], 'the columns of the counts');
  return Object.fromEntries(rows.map((r) => [r[0], r.slice(1).map(Number)]));
}

/** The accounts table: one entry per row, with the link of the name. */
async function listedAccounts() {
  const { caption, columns, rows } = await readTable(await tableCaptioned('Élèves et responsables'));
  assert.deepEqual(columns, ['Nom', 'Identifiant', 'Type', 'Classe', 'État'], `the columns of « ${caption} »`);
  const links = await page.locator('table tbody tr td:first-child a').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
  return rows.map((r, i) => ({ name: r[0], identifier: r[1], kind: r[2], class: r[3], state: r[4], href: links[i] }));
}

/** The account page's <dl>: { Identifiant: …, Type: …, … }. */
async function accountFacts() {
  return page.locator('main dl').evaluate((dl) => {
    const facts = {};
    for (const dt of dl.querySelectorAll('dt')) facts[dt.textContent.trim()] = dt.nextElementSibling?.textContent.replace(/\s+/g, ' ').trim();
    return facts;
  });
}

/** Presses Tab until the element with id `id` has the focus; fails after `max` presses. */
async function tabToId(id, max = 20) {
  const seen = [];
  for (let i = 0; i < max; i++) {
    await page.keyboard.press('Tab');
    const now = await focusedId();
    seen.push(now || '?');
    if (now === id) return;
  }
  assert.fail(`Tab never reached #${id} in ${max} presses; focus went to: ${seen.join(' → ')}`);
}

// ---------------------------------------------------------------- the flow

let browser;
let context;
let scratch;
let guardianPage = null; // the new parent's account page (path)
let guardianIdentifier = null;

try {
  scratch = mkdtempSync(path.join(os.tmpdir(), 'clef-backoffice-'));
  browser = await launchChromium(CHROMIUM);
  context = await newContext(browser);
  page = await context.newPage();
  runner.page = page;
  page.on('pageerror', (e) => console.log(indent(`page error: ${e.message}`)));

  // -------------------------------------------------- 1. the staff account, « Espace établissement »

  await check(`1. clef staff create ${STAFF} --establishment ${UAI} (password on stdin)`, async () => {
    const output = clef(
      ['staff', 'create', '--identifier', STAFF, '--given-name', 'Anne', '--family-name', 'Secret', '--establishment', UAI, '--password-stdin'],
      `${STAFF_PASSWORD}\n`,
    );
    assert.match(output, new RegExp(`\\b${escapeRe(STAFF)}\\b`), `the CLI names the account: ${output}`);
  });

  await check(`1. ${STAFF} signs in at /login → « Espace établissement », which lists ${NAME} (${UAI}); « Mon compte » links to it`, async () => {
    await signIn(STAFF, STAFF_PASSWORD, ['/etablissement', 'Espace établissement']);
    await page.goto(`${BASE}/compte`);
    assert.equal(await (await link('Espace établissement')).getAttribute('href'), '/etablissement', '« Mon compte » leads back');
    const response = await page.goto(`${BASE}/etablissement`);
    assert.equal(response.status(), 200, 'GET /etablissement');
    await assertPage('Espace établissement');
    const entry = await link(`${NAME} (${UAI})`);
    assert.equal(await entry.getAttribute('href'), ESTABLISHMENT_PATH, 'its href');
    assert.equal(await page.locator('main a[href^="/etablissement/"]').count(), 1, 'one establishment listed');
  });

  await accessible(1, '« Espace établissement »');

  // -------------------------------------------------- 2. the establishment page

  await check(`2. keyboard: Tab to « ${NAME} (${UAI}) », Enter → the establishment page: h1 the name, its links`, async () => {
    await page.goto(`${BASE}/etablissement`); // the focus at the top of the page
    await tabTo(page, `${NAME} (${UAI})`);
    await Promise.all([page.waitForURL((u) => u.pathname === ESTABLISHMENT_PATH), page.keyboard.press('Enter')]);
    await assertPage(NAME, new RegExp(`^${escapeRe(NAME)}(\\s|$)`));
    assert.equal(await (await link('Comptes par classe')).getAttribute('href'), `${ESTABLISHMENT_PATH}/comptes`);
    assert.equal(await (await link('Importer le fichier des élèves')).getAttribute('href'), `${ESTABLISHMENT_PATH}/import`);
    assert.equal(await (await link('PDF')).getAttribute('href'), `${ESTABLISHMENT_PATH}/courriers`);
    assert.equal(await (await link('CSV')).getAttribute('href'), `${ESTABLISHMENT_PATH}/courriers?format=csv`);
    for (const heading of ['Activation des comptes des élèves', 'Activation des comptes des responsables']) {
      assert.equal(await page.getByRole('heading', { level: 2, name: heading, exact: true }).count(), 1, `<h2> « ${heading} »`);
    }
  });

  await check('2. the two charts: <svg role="img"> labelled by its <title>; the tables: a row per class, « Total » adding up', async () => {
    const students = await assertFunnel('Élèves');
    for (const name of DEMO_CLASSES) {
      assert.ok(students[name], `class ${name} in the pupils' table: ${JSON.stringify(students)}`);
      assert.ok(students[name].active >= 1, `an active pupil in ${name}: ${JSON.stringify(students[name])}`);
    }
    const guardians = await assertFunnel('Responsables');
    assert.ok(Object.keys(guardians).length >= 1, `the parents' table has classes: ${JSON.stringify(guardians)}`);
    console.log(indent(`pupils: ${JSON.stringify(students)}; parents: ${JSON.stringify(guardians)}`));
  });

  await accessible(2, 'the establishment page');

  await check('2. « PDF » and « CSV » before any import: every demo account is active, so the page says there is no letter to print', async () => {
    for (const name of ['PDF', 'CSV']) {
      const answer = await page.request.get(`${BASE}${await (await link(name)).getAttribute('href')}`);
      assert.equal(answer.status(), 200, `GET the ${name} letters`);
      assert.match(answer.headers()['content-type'] ?? '', /^text\/html/, `${name}: a page, not an empty file`);
      assert.match(await answer.text(), /Aucun courrier à imprimer/, `${name}: « Aucun courrier à imprimer »`);
    }
  }, { critical: false });

  // -------------------------------------------------- 3. import from the browser

  await check('3. « Importer le fichier des élèves » → « Import des élèves »: the file input « Fichier des élèves », « Voir l\'aperçu »', async () => {
    await follow('Importer le fichier des élèves', `${ESTABLISHMENT_PATH}/import`);
    await assertPage(`Import des élèves — ${NAME}`, 'Import des élèves');
    assert.equal(await page.getByRole('alert').count(), 0, 'no alert before any file');
    const input = await field('Fichier des élèves');
    assert.equal(await input.getAttribute('type'), 'file', 'a file input');
    assert.equal(await page.getByRole('button', { name: "Voir l'aperçu", exact: true }).count(), 1, "button « Voir l'aperçu »");
  });

  await accessible(3, 'the import form');

  await check(`3. a file with one new pupil (${PUPIL}, ${CLASS}) and her parent: « Aperçu » shows 1 new pupil and 1 new parent`, async () => {
    const response = await uploadFile(path.join(scratch, 'eleves.csv'), PUPILS_CSV);
    assert.equal(response.status(), 200, `POST ${ESTABLISHMENT_PATH}/import`);
    await assertPage(`Import des élèves — ${NAME}`, 'Import des élèves');
    assert.equal(await page.getByRole('alert').count(), 0, 'no alert');
    assert.equal(await page.getByRole('heading', { level: 2, name: 'Aperçu', exact: true }).count(), 1, '<h2> « Aperçu »');
    const counts = await importCounts();
    assert.deepEqual(counts['Élèves'], [1, 0, 0], `pupils: 1 new (${JSON.stringify(counts)})`);
    assert.deepEqual(counts['Responsables'], [1, 0, 0], `parents: 1 new (${JSON.stringify(counts)})`);
    const changes = (await page.locator('main ul li').allInnerTexts()).map(squash);
    assert.ok(changes.some((c) => c.includes(`nouvel élève ${PUPIL} (${CLASS})`)), `the change « nouvel élève ${PUPIL} »: ${JSON.stringify(changes)}`);
    const apply = page.locator(`form[action="${ESTABLISHMENT_PATH}/import/appliquer"]`);
    assert.notEqual(await apply.locator('input[type=hidden][name=draft]').inputValue(), '', 'a hidden draft');
    assert.equal(await apply.getByRole('button', { name: 'Appliquer', exact: true }).count(), 1, 'button « Appliquer »');
  });

  await accessible(3, 'the import preview');

  await check('3. keyboard: Tab to « Appliquer », Enter → « Le fichier est importé. » with the counts', async () => {
    await tabTo(page, 'Appliquer', 30);
    // The import runs on its own: the answer is a redirect to its page, which
    // shows the report of a small file at once.
    const response = await pressing('Enter', `${ESTABLISHMENT_PATH}/import/appliquer`);
    assert.equal(response.status(), 303, `POST ${ESTABLISHMENT_PATH}/import/appliquer`);
    await page.waitForURL((u) => u.pathname.startsWith(`${ESTABLISHMENT_PATH}/import/suivi/`));
    await page.getByText('Le fichier est importé.', { exact: true }).waitFor();
    await assertPage(`Import des élèves — ${NAME}`, 'Import des élèves');
    assert.equal(squash(await page.getByRole('status').innerText()), 'Le fichier est importé.', 'role="status"');
    const counts = await importCounts();
    assert.deepEqual(counts['Élèves'], [1, 0, 0], `pupils: 1 new (${JSON.stringify(counts)})`);
    assert.deepEqual(counts['Responsables'], [1, 0, 0], `parents: 1 new (${JSON.stringify(counts)})`);
  });

  await accessible(3, '« Le fichier est importé. »');

  await check(`3. a bad file (line ${BAD_LINE}: 31/02/2013): 400, the alert names « ligne ${BAD_LINE} », the file input aria-invalid`, async () => {
    await page.goto(`${BASE}${ESTABLISHMENT_PATH}/import`);
    const response = await uploadFile(path.join(scratch, 'mauvais.csv'), BAD_CSV);
    assert.equal(response.status(), 400, `POST ${ESTABLISHMENT_PATH}/import with a bad file`);
    await assertPage(`Erreur — Import des élèves — ${NAME}`, 'Import des élèves');
    const alert = await theAlert();
    assert.equal(await focusedId(), alert.id, 'the alert has the focus');
    const lines = (await alert.locator.locator('li').allInnerTexts()).map(squash);
    assert.equal(lines.length, 1, `one bad row listed: ${JSON.stringify(lines)}`);
    assert.match(lines[0], new RegExp(`^ligne ${BAD_LINE} : .*date de naissance`), 'the spreadsheet line and the field');
    assert.match(alert.text, /n'a pas été importé/, 'the alert says nothing was imported');
    const input = await field('Fichier des élèves');
    assert.equal(await input.getAttribute('aria-invalid'), 'true', 'the file input is aria-invalid');
    assert.ok((await input.getAttribute('aria-describedby'))?.split(/\s+/).includes(alert.id), 'the file input is described by the alert');
    assert.equal(await page.getByRole('button', { name: 'Appliquer', exact: true }).count(), 0, 'no « Appliquer »');
    console.log(indent(`alert: ${lines[0]}`));
  });

  await accessible(3, 'the import form with the bad rows');

  await check(`3. the establishment page now counts class ${CLASS}: 1 pupil, 1 parent not activated`, async () => {
    await page.goto(`${BASE}${ESTABLISHMENT_PATH}`);
    const students = await assertFunnel('Élèves');
    assert.deepEqual(students[CLASS], { provisional: 1, pending: 0, active: 0 }, `pupils of ${CLASS}: ${JSON.stringify(students)}`);
    const guardians = await assertFunnel('Responsables');
    assert.deepEqual(guardians[CLASS], { provisional: 1, pending: 0, active: 0 }, `parents of ${CLASS}: ${JSON.stringify(guardians)}`);
    await assertPdf(`${BASE}${ESTABLISHMENT_PATH}/courriers?classe=${encodeURIComponent(CLASS)}`);
  }, { critical: false });

  // -------------------------------------------------- 4. the accounts list

  await check(`4. « Comptes par classe », « Classe » ${CLASS}, « Rechercher » (POST) → ${PUPIL} and ${GUARDIAN}, not activated`, async () => {
    await page.goto(`${BASE}${ESTABLISHMENT_PATH}`);
    await follow('Comptes par classe', `${ESTABLISHMENT_PATH}/comptes`);
    await assertPage(`Comptes — ${NAME}`);
    const form = page.locator(`form[action="${ESTABLISHMENT_PATH}/comptes"]`).filter({ has: page.getByRole('button', { name: 'Rechercher', exact: true }) });
    assert.equal(await form.count(), 1, 'one search form');
    assert.equal((await form.getAttribute('method'))?.toLowerCase(), 'post', 'the search is POSTed (no name in the address)');
    assert.notEqual(await form.locator('input[type=hidden][name=csrf]').inputValue(), '', 'a csrf field');
    const classe = await field('Classe', form);
    assert.equal(await classe.evaluate((el) => el.tagName), 'SELECT', '« Classe » is a <select>');
    assert.equal(await (await field('État', form)).evaluate((el) => el.tagName), 'SELECT', '« État » is a <select>');
    assert.equal(await (await field('Nom ou identifiant', form)).getAttribute('type'), 'text', '« Nom ou identifiant » is a text field');
    const options = (await classe.locator('option').allInnerTexts()).map(squash);
    assert.ok(options.includes(CLASS), `${CLASS} among the classes: ${JSON.stringify(options)}`);
    await classe.selectOption(CLASS);
    const response = await submit('Rechercher', `${ESTABLISHMENT_PATH}/comptes`, form);
    assert.equal(response.status(), 200, `POST ${ESTABLISHMENT_PATH}/comptes`);
    await assertPage(`Comptes — ${NAME}`);
    assert.equal(await (await field('Classe')).inputValue(), CLASS, 'the class stays selected');
    const listed = await listedAccounts();
    assert.deepEqual(
      listed.map((a) => [a.name, a.kind, a.class, a.state]).sort(),
      [
        [GUARDIAN, 'responsable', CLASS, 'non activé'],
        [PUPIL, 'élève', CLASS, 'non activé'],
      ].sort(),
      `the accounts of ${CLASS}: ${JSON.stringify(listed)}`,
    );
    for (const a of listed) assert.match(a.href ?? '', new RegExp(`^${escapeRe(ESTABLISHMENT_PATH)}/compte/[^/]+$`), `${a.name} links to its page`);
    const guardian = listed.find((a) => a.name === GUARDIAN);
    guardianPage = guardian.href;
    guardianIdentifier = guardian.identifier;
    assert.match(guardianIdentifier, /^sophie\.lambert\d*$/, 'the new parent identifier');
  });

  await accessible(4, `the accounts of ${CLASS}`);

  await check('4. « Nom ou identifiant » « lambert », « État » non activé, Enter: the same two accounts, the name not in the address', async () => {
    await (await field('Classe')).selectOption('');
    await (await field('État')).selectOption('provisional');
    await (await field('Nom ou identifiant')).fill('lambert');
    const response = await pressing('Enter', `${ESTABLISHMENT_PATH}/comptes`);
    assert.equal(response.status(), 200, `POST ${ESTABLISHMENT_PATH}/comptes`);
    assert.doesNotMatch(page.url(), /lambert/, `the address ${page.url()} does not carry the search`);
    assert.equal(await (await field('Nom ou identifiant')).inputValue(), 'lambert', 'the search stays in the field');
    const listed = await listedAccounts();
    assert.deepEqual(listed.map((a) => a.name).sort(), [GUARDIAN, PUPIL].sort(), `found: ${JSON.stringify(listed)}`);
  }, { critical: false });

  await check(`4. the class link ${CLASS} of the establishment page's table lists the same two accounts`, async () => {
    await page.goto(`${BASE}${ESTABLISHMENT_PATH}`);
    const table = await tableCaptioned('Élèves');
    const classLink = table.getByRole('link', { name: CLASS, exact: true });
    await Promise.all([page.waitForURL((u) => u.pathname === `${ESTABLISHMENT_PATH}/comptes`), classLink.click()]);
    assert.equal(await (await field('Classe')).inputValue(), CLASS, 'the class selected');
    const listed = await listedAccounts();
    assert.deepEqual(listed.map((a) => a.name).sort(), [GUARDIAN, PUPIL].sort(), `found: ${JSON.stringify(listed)}`);
  }, { critical: false });

  // -------------------------------------------------- 5. an account page

  await check(`5. ${GUARDIAN}'s page: identifier, kind, state, email, child; its letter (PDF); its actions; « Journal du compte »`, async () => {
    const response = await page.goto(`${BASE}${guardianPage}`);
    assert.equal(response.status(), 200, `GET ${guardianPage}`);
    await assertPage(`${GUARDIAN} — ${NAME}`, GUARDIAN);
    const facts = await accountFacts();
    assert.equal(facts['Identifiant'], guardianIdentifier, `Identifiant (${JSON.stringify(facts)})`);
    assert.equal(facts['Type'], 'responsable', 'Type');
    assert.equal(facts['État'], 'non activé', 'État');
    assert.equal(facts['Adresse mail'], `${GUARDIAN_EMAIL} — non validée`, 'Adresse mail');
    assert.equal(facts['Enfants'], PUPIL, 'Enfants');
    const letter = await link('Imprimer son courrier de notification (PDF)');
    await assertPdf(`${BASE}${await letter.getAttribute('href')}`);
    for (const button of ['Réinitialiser le compte', 'Fermer le compte', "Corriger l'adresse", `Détacher ${PUPIL}`]) {
      assert.equal(await page.getByRole('button', { name: button, exact: true }).count(), 1, `button « ${button} »`);
    }
    // Each box named after its action, for a screen reader's list of fields.
    for (const action of ['Réinitialiser le compte', 'Fermer le compte', "Corriger l'adresse", `Détacher ${PUPIL}`]) {
      assert.equal(await page.getByLabel(`Je confirme — ${action}`, { exact: true }).count(), 1, `a « Je confirme » box for « ${action} »`);
    }
    await field("Corriger l'adresse mail");
    assert.equal(await page.getByRole('heading', { level: 2, name: 'Journal du compte', exact: true }).count(), 1, '<h2> « Journal du compte »');
    const reset = page.locator('form').filter({ has: page.getByRole('button', { name: 'Réinitialiser le compte', exact: true }) });
    assert.equal(await reset.getAttribute('action'), `${guardianPage}/action`, 'the reset form posts to …/action');
    assert.equal(await reset.locator('input[type=hidden][name=action]').inputValue(), 'reset', 'action=reset');
    assert.equal(await reset.getByLabel('Je confirme — Réinitialiser le compte', { exact: true }).isChecked(), false, '« Je confirme » starts unticked');
  });

  await accessible(5, `${GUARDIAN}'s account page`);

  await check('5. keyboard: Tab to « Réinitialiser le compte », Enter without « Je confirme » → refused: no POST, the box invalid and focused', async () => {
    await page.goto(`${BASE}${guardianPage}`); // the focus at the top of the page
    let posted = 0;
    const onRequest = (r) => { if (r.method() === 'POST' && r.url().endsWith('/action')) posted++; };
    page.on('request', onRequest);
    try {
      await tabTo(page, 'Réinitialiser le compte', 30);
      await page.keyboard.press('Enter');
      await page.waitForTimeout(500);
    } finally {
      page.off('request', onRequest);
    }
    assert.equal(posted, 0, 'the form was not sent');
    assert.equal(new URL(page.url()).pathname, guardianPage, 'still on the account page');
    const box = page.locator('#reset-confirm');
    assert.equal(await box.evaluate((el) => el.validity.valueMissing), true, 'the reset « Je confirme » box is missing');
    assert.equal(await focusedId(), 'reset-confirm', 'the browser points the keyboard to the box');
  });

  await check('5. the server refuses the reset without « Je confirme » too: 400 « Action non effectuée »', async () => {
    const csrf = await page.locator(`form[action="${guardianPage}/action"] input[name=csrf]`).first().inputValue();
    const response = await page.request.post(`${BASE}${guardianPage}/action`, { form: { csrf, action: 'reset' }, maxRedirects: 0 });
    assert.equal(response.status(), 400, `POST ${guardianPage}/action without confirm`);
    const body = await response.text();
    assert.match(body, /Action non effectuée/, 'the page « Action non effectuée »');
    assert.match(body, /Cochez la case de confirmation/, 'it asks for the box');
  }, { critical: false });

  await check('5. keyboard: Space ticks « Je confirme », Tab, Enter on « Réinitialiser le compte » → « Action effectuée »', async () => {
    await page.goto(`${BASE}${guardianPage}`);
    await tabToId('reset-confirm', 30);
    await page.keyboard.press('Space');
    assert.equal(await page.locator('#reset-confirm').isChecked(), true, 'Space ticked the box');
    await page.keyboard.press('Tab');
    const now = await page.evaluate(() => document.activeElement?.innerText?.trim());
    assert.equal(now, 'Réinitialiser le compte', 'Tab goes to the button');
    const response = await pressing('Enter', `${guardianPage}/action`);
    // Done, the answer sends the browser to a page of its own: a reload does not reset again.
    assert.equal(response.status(), 303, `POST ${guardianPage}/action`);
    assert.equal(new URL(page.url()).pathname + new URL(page.url()).search, `${guardianPage}/fait?resultat=reinitialise`, 'the outcome page');
    await assertPage('Action effectuée');
    assert.match(squash(await page.locator('main').innerText()), /Le compte est réinitialisé/, 'the message');
    assert.equal(await page.getByRole('alert').count(), 0, 'no alert');
    assert.equal(await (await link('Retour au compte')).getAttribute('href'), guardianPage, '« Retour au compte »');
  });

  await accessible(5, '« Action effectuée »');

  await check('5. « Retour au compte »: the newest line of « Journal du compte » is « Compte réinitialisé (par l\'établissement) »', async () => {
    await follow('Retour au compte', guardianPage);
    await assertPage(`${GUARDIAN} — ${NAME}`, GUARDIAN);
    const { rows } = await readTable(await tableCaptioned('Les événements de sécurité du compte, du plus récent au plus ancien.'));
    assert.ok(rows.length >= 1, 'a line in the trail');
    assert.match(rows[0][1], /^Compte réinitialisé /, `the newest event: ${JSON.stringify(rows[0])}`);
    assert.match(rows[0][1], /par l'établissement/, 'done by the establishment');
    assert.equal(rows[0][2], 'Réussi', 'its outcome');
    assert.equal((await accountFacts())['État'], 'non activé', 'still not activated');
    console.log(indent(`trail: ${rows.map((r) => r.join(' | ')).join(' / ')}`));
  });

  await accessible(5, `${GUARDIAN}'s account page after the reset`);

  // -------------------------------------------------- 6. English

  await check('6. « English » on the establishment page: the h1 (the name) unchanged, « Activation of the students\' accounts »', async () => {
    await page.goto(`${BASE}${ESTABLISHMENT_PATH}`);
    const english = await link('English');
    assert.equal(await english.getAttribute('lang'), 'en', 'the link is marked as English');
    await Promise.all([page.waitForURL((u) => u.pathname === ESTABLISHMENT_PATH && !u.search), english.click()]);
    await assertPage(NAME, new RegExp(`^${escapeRe(NAME)}(\\s|$)`), 'en');
    for (const heading of ["Activation of the students' accounts", "Activation of the parents' accounts"]) {
      assert.equal(await page.getByRole('heading', { level: 2, name: heading, exact: true }).count(), 1, `<h2> « ${heading} »`);
    }
    assert.equal(await page.getByRole('heading', { level: 2, name: 'Activation des comptes des élèves', exact: true }).count(), 0, 'no French heading left');
    assert.equal(await page.getByRole('img').count(), 2, 'the two charts');
    assert.equal(await page.getByRole('link', { name: 'Français', exact: true }).getAttribute('lang'), 'fr');
  }, { critical: false });

  await accessible(6, 'the English establishment page');

  await check(`6. a large file (${BIG_PUPILS} pupils): the page under way asks for its end and shows the report by itself, its one script allowed`, async () => {
    const refused = [];
    const listen = (m) => { if (m.type() === 'error') refused.push(m.text()); };
    page.on('console', listen);
    try {
      await page.goto(`${BASE}${ESTABLISHMENT_PATH}/import`);
      const form = page.locator(`form[action="${ESTABLISHMENT_PATH}/import"]`);
      const file = path.join(scratch, 'grand.csv');
      writeFileSync(file, BIG_CSV);
      await (await field("Students' file", form)).setInputFiles(file);
      const preview = await submit('See the preview', `${ESTABLISHMENT_PATH}/import`, form);
      assert.equal(preview.status(), 200, 'the preview');
      const applied = await submit('Apply', `${ESTABLISHMENT_PATH}/import/appliquer`);
      assert.equal(applied.status(), 303, 'applied: a redirect to the progress page');
      await page.waitForURL((u) => u.pathname.startsWith(`${ESTABLISHMENT_PATH}/import/suivi/`));
      const under = page.locator('#import-en-cours');
      assert.equal(await under.count(), 1, 'the import is under way when its page first shows');
      assert.equal(await under.getAttribute('role'), 'status', 'role="status"');
      assert.equal(await page.locator('meta[http-equiv="refresh"]').count(), 0, 'no reload every second');
      await axeClean(page, '6. the import under way');
      await page.getByText('The file is imported.', { exact: true }).waitFor({ timeout: 120_000 });
      const created = await page.getByRole('row', { name: /^Students\b/ }).locator('td').first().innerText();
      assert.equal(Number(created), BIG_PUPILS, `${BIG_PUPILS} new pupils (${created})`);
      assert.deepEqual(refused.filter((m) => /Content Security Policy|Refused to/.test(m)), [], 'no script or request refused by the page\'s policy');
    } finally {
      page.off('console', listen);
    }
  }, { critical: false });

  await context.close();

  // -------------------------------------------------- 7. a parent is refused

  context = await newContext(browser);
  page = await context.newPage();
  runner.page = page;
  page.on('pageerror', (e) => console.log(indent(`page error: ${e.message}`)));

  await check(`7. ${PARENT} (a fresh browser) signs in: /etablissement and ${ESTABLISHMENT_PATH} answer 403 « Accès refusé »`, async () => {
    await signIn(PARENT, PARENT_PASSWORD);
    for (const where of [ESTABLISHMENT_PATH, '/etablissement']) {
      const response = await page.goto(`${BASE}${where}`);
      assert.equal(response.status(), 403, `GET ${where} as ${PARENT}`);
      assert.equal(squash(await page.getByRole('heading', { level: 1 }).textContent()), 'Accès refusé', `<h1> of ${where}`);
      assert.doesNotMatch(await page.locator('main').innerText(), /Activation des comptes/, 'nothing of the back office shows');
    }
  });

  await accessible(7, '« Accès refusé »');

  await context.close();

  // -------------------------------------------------- 8. the academy sets the establishment's details

  context = await newContext(browser);
  page = await context.newPage();
  runner.page = page;
  page.on('pageerror', (e) => console.log(indent(`page error: ${e.message}`)));

  await check(`8. clef staff create ${ACADEMY} --academy; signed in, the establishment page → « Modifier les coordonnées »: the form, as held`, async () => {
    clef(
      ['staff', 'create', '--identifier', ACADEMY, '--given-name', 'Rémi', '--family-name', 'Rectorat', '--academy', '--password-stdin'],
      `${STAFF_PASSWORD}\n`,
    );
    await signIn(ACADEMY, STAFF_PASSWORD, ['/etablissement', 'Espace établissement']);
    await page.goto(`${BASE}${ESTABLISHMENT_PATH}`);
    await follow('Modifier les coordonnées', `${ESTABLISHMENT_PATH}/coordonnees`);
    await assertPage("Coordonnées de l'établissement", `Coordonnées de l'établissement (${UAI})`);
    assert.equal(await (await field("Nom de l'établissement *")).inputValue(), NAME, 'the name held');
    assert.equal(await (await field("Adresse du portail de l'établissement (ENT)")).inputValue(), '', 'no portal yet');
  });

  await accessible(8, "the establishment's details form");

  await check('8. a portal in plain http: 400, the alert links to the field, which is aria-invalid, described by its message and focused; nothing saved', async () => {
    await (await field('Adresse')).fill(ADDRESS);
    await (await field('Code postal et ville')).fill(CITY);
    await (await field("Adresse du portail de l'établissement (ENT)")).fill('http://ent.example.fr');
    const response = await submit('Enregistrer', `${ESTABLISHMENT_PATH}/coordonnees`);
    assert.equal(response.status(), 400, 'POST refused');
    const { text } = await theAlert();
    assert.match(text, /adresse du portail/, `the alert names the field: ${text}`);
    const portal = await field("Adresse du portail de l'établissement (ENT)");
    assert.equal(await portal.getAttribute('aria-invalid'), 'true', 'aria-invalid');
    assert.match(await portal.getAttribute('aria-describedby'), /erreur-portal_url/, 'described by its message');
    assert.equal(await focusedId(), 'portal_url', 'the field in error has the focus');
    assert.equal(await (await field('Adresse')).inputValue(), ADDRESS, 'what was typed is kept');
  });

  await accessible(8, 'the refused details form');

  await check('8. corrected with the keyboard, Enter → the establishment page says « enregistrées » and shows the address and portal', async () => {
    await page.keyboard.press('Control+A');
    await page.keyboard.type(PORTAL);
    const response = await pressing('Enter', `${ESTABLISHMENT_PATH}/coordonnees`);
    assert.equal(response.status(), 303, 'POST saved');
    assert.equal(new URL(page.url()).pathname, ESTABLISHMENT_PATH, 'back on the establishment page');
    assert.equal(squash(await page.getByRole('status').first().innerText()), "Les coordonnées de l'établissement sont enregistrées.");
    const main = squash(await page.locator('main').innerText());
    assert.ok(main.includes(`${ADDRESS}, ${CITY}`), `the address shown: ${main}`);
    assert.ok(main.includes(`${PORTAL}/`), `the portal shown: ${main}`);
  });

  await accessible(8, 'the establishment page after saving');

  await context.close();
} catch (err) {
  // Anything thrown outside a check (browser launch, context) is a failure too.
  runner.fail('setup', err);
} finally {
  await browser?.close();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
}

process.exit(runner.summary('backoffice'));
