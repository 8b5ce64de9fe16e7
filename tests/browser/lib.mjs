// Shared helpers of the browser specs (login.spec.mjs, activation.spec.mjs):
// a tiny check runner, the Chromium launch, and the accessibility assertions
// (axe-core WCAG 2 A/AA, labelled controls).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const AXE_PATH = require.resolve('axe-core/axe.min.js');

export function indent(text, prefix = '      ') {
  return String(text).split('\n').map((l) => prefix + l).join('\n');
}

/**
 * A French sentence as Clef prints it (French typography): a no-break space
 * before « : », inside « » and after a number (« 3 mois »), a narrow one before
 * « ; ! ? ».
 */
export function fr(text) {
  return text
    .replace(/« /g, '«\u00a0')
    .replace(/ »/g, '\u00a0»')
    .replace(/ :(?=\s|$|[»).,<!?])/g, '\u00a0:')
    .replace(/ ([;!?])(?=\s|$|[»).,<!?])/g, '\u202f$1')
    .replace(/(?<=(?:^|[\s(>«])\d+) (?=\S)/g, '\u00a0');
}

// ---------------------------------------------------------------- tiny runner

/**
 * A sequence of checks printing one line each. `runner.page` is the page whose
 * screenshot and HTML are saved (under `artifactsDir`) when a check fails.
 */
export function createRunner({ artifactsDir } = {}) {
  const results = [];
  let stopped = null; // name of the critical check that failed; later checks are skipped

  const runner = {
    page: null,

    /** Runs one check. A failed `critical` check skips every later one (they depend on it). */
    async check(name, fn, { critical = true } = {}) {
      if (stopped) {
        results.push({ name, status: 'skipped' });
        console.log(`SKIP  ${name} (after failure of: ${stopped})`);
        return;
      }
      const started = Date.now();
      try {
        await fn();
        results.push({ name, status: 'passed' });
        console.log(`ok    ${name} (${Date.now() - started} ms)`);
      } catch (err) {
        results.push({ name, status: 'failed' });
        console.log(`FAIL  ${name}`);
        console.log(indent(err?.stack ?? String(err)));
        await saveArtifacts(name);
        if (critical) stopped = name;
      }
    },

    /** Records a failure that happened outside any check (browser launch, context). */
    fail(name, err) {
      results.push({ name, status: 'failed' });
      console.log(`FAIL  ${name}\n${indent(err?.stack ?? String(err))}`);
    },

    /** Prints the summary line; returns the exit code (1 when anything failed or was skipped). */
    summary(label = 'browser') {
      const count = (s) => results.filter((r) => r.status === s).length;
      const skipped = count('skipped');
      console.log(`${label}: ${count('passed')} passed, ${count('failed')} failed${skipped ? `, ${skipped} skipped` : ''}`);
      return count('failed') || skipped ? 1 : 0;
    },
  };

  async function saveArtifacts(name) {
    const page = runner.page;
    if (!artifactsDir || !page) return;
    try {
      mkdirSync(artifactsDir, { recursive: true });
      const base = path.join(artifactsDir, name.replace(/[^a-z0-9]+/gi, '-').toLowerCase());
      await page.screenshot({ path: `${base}.png`, fullPage: true });
      writeFileSync(`${base}.html`, await page.content());
      console.log(indent(`artifacts: ${base}.png, ${base}.html`));
    } catch (e) {
      console.log(indent(`(could not save artifacts: ${e.message})`));
    }
  }

  return runner;
}

// ---------------------------------------------------------------- browser

/** Headless Debian Chromium (never a Playwright-downloaded build). */
export function launchChromium(executablePath) {
  return chromium.launch({
    executablePath,
    headless: true,
    chromiumSandbox: false,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/**
 * A French-locale context. The pages send `Content-Security-Policy: default-src
 * 'none'` (no script-src): bypassCSP lets the test inject axe-core; it changes
 * nothing else on the page.
 */
export async function newContext(browser) {
  const context = await browser.newContext({ bypassCSP: true, locale: 'fr-FR', viewport: { width: 1280, height: 900 } });
  context.setDefaultTimeout(15_000);
  return context;
}

// ---------------------------------------------------------------- accessibility

/** Injects axe-core and runs WCAG 2 A + AA rules; fails listing every violation. */
export async function assertAxeClean(page, label) {
  await page.addScriptTag({ path: AXE_PATH });
  const { violations, passes, incomplete } = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa'] } });
    const slim = (list) =>
      list.map((v) => ({
        id: v.id,
        impact: v.impact,
        help: v.help,
        helpUrl: v.helpUrl,
        nodes: v.nodes.map((n) => ({ target: n.target, html: n.html, summary: n.failureSummary })),
      }));
    return { violations: slim(r.violations), passes: r.passes.length, incomplete: slim(r.incomplete) };
  });
  for (const v of incomplete) {
    // "needs review": not a failure, but worth seeing in the log.
    console.log(indent(`axe needs review on ${label}: ${v.id} (${v.help}) on ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`));
  }
  if (violations.length) {
    const report = violations
      .map((v) =>
        [
          `- ${v.id} [${v.impact}] ${v.help} (${v.helpUrl})`,
          ...v.nodes.map((n) => `    target ${JSON.stringify(n.target)}: ${n.html}\n      ${n.summary?.replace(/\n/g, '\n      ')}`),
        ].join('\n'),
      )
      .join('\n');
    assert.fail(`axe-core found ${violations.length} WCAG 2 A/AA violation(s) on ${label}:\n${report}`);
  }
  assert.ok(passes > 0, 'axe-core ran no rule at all');
}

/** Every visible form control has a non-empty <label> associated with it. */
export async function assertEveryVisibleInputLabelled(page) {
  const unlabelled = await page.evaluate(() =>
    [...document.querySelectorAll('input, select, textarea')]
      .filter((el) => el.type !== 'hidden' && el.getClientRects().length > 0)
      .filter((el) => ![...(el.labels ?? [])].some((l) => l.textContent.trim() !== ''))
      .map((el) => el.outerHTML),
  );
  assert.deepEqual(unlabelled, [], 'visible inputs without an associated <label>');
}

// ---------------------------------------------------------------- reflow and keyboard

/**
 * WCAG 1.4.10 (reflow): at 320 CSS px wide the page scrolls only vertically.
 * The viewport is put back afterwards.
 */
export async function assertNoHorizontalScrollAt320(page, label) {
  const previous = page.viewportSize();
  await page.setViewportSize({ width: 320, height: 640 });
  try {
    const { scrollWidth, clientWidth, wide } = await page.evaluate(() => {
      const root = document.documentElement;
      const wide = [...document.querySelectorAll('body *')]
        .filter((el) => el.getBoundingClientRect().right > root.clientWidth + 0.5)
        .slice(0, 5)
        .map((el) => el.outerHTML.slice(0, 160));
      return { scrollWidth: root.scrollWidth, clientWidth: root.clientWidth, wide };
    });
    assert.ok(
      scrollWidth <= clientWidth,
      `${label} at 320 px: the page is ${scrollWidth} px wide for ${clientWidth} px; wider elements:\n${wide.join('\n')}`,
    );
  } finally {
    if (previous) await page.setViewportSize(previous);
  }
}

/** What has the keyboard focus: its tag and its visible text (or value). */
export function focused(page) {
  return page.evaluate(() => {
    const el = document.activeElement;
    return { tag: el?.tagName.toLowerCase() ?? '', text: (el?.innerText || el?.value || '').trim() };
  });
}

/**
 * Presses Tab from where the focus is (the top of a freshly loaded page) until
 * the control reading `text` has it; fails after `max` presses. Returns what
 * was focused on the way.
 */
export async function tabTo(page, text, max = 20) {
  const seen = [];
  for (let i = 0; i < max; i++) {
    await page.keyboard.press('Tab');
    const now = await focused(page);
    seen.push(`${now.tag}:${now.text}`);
    if (now.text === text) return seen;
  }
  assert.fail(`Tab never reached "${text}" in ${max} presses; focus went to: ${seen.join(' → ')}`);
}

/**
 * A relying party's redirect URI: a real listener on a free loopback port (or `port`) that
 * keeps the last redirect back to `/callback` in `last` (Chromium's
 * /favicon.ico request aside) and answers with a small page. (With page.route
 * instead, the redirect that follows a form's POST went to the network
 * unrouted, under playwright-core 1.65 and Chromium 156.)
 */
export async function startCallbackListener(port = 0) {
  const listener = { last: null };
  const server = createServer((request, response) => {
    const url = new URL(request.url, `http://${request.headers.host}`);
    if (url.pathname === '/callback') listener.last = url.href;
    response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    response.end('<!doctype html><html lang="fr"><title>Retour service</title><h1>Retour service</h1></html>');
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  listener.uri = `http://127.0.0.1:${server.address().port}/callback`;
  listener.close = () => server.close();
  return listener;
}

/**
 * `clef client create` for a service named `name` (not first-party unless
 * `extra` says so), against the server's data: returns its client_id.
 */
export function registerClient({ bin, dataDir, keysDir, base }, name, redirectUri, extra = []) {
  const run = spawnSync(bin, ['client', 'create', '--name', name, '--redirect-uri', redirectUri, '--json', ...extra], {
    encoding: 'utf8',
    env: { ...process.env, CLEF_DATA_DIR: dataDir, CLEF_KEYS_DIR: keysDir, CLEF_ISSUER: base, NO_COLOR: '1' },
  });
  assert.equal(run.status, 0, `clef client create exited with ${run.status ?? run.signal}:\n${run.stdout}${run.stderr}`);
  return JSON.parse(run.stdout).client_id;
}
