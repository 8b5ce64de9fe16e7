// Helpers of openid-client.test.mjs: the environment run.sh prepares, a
// cookie-keeping "browser" over fetch that fills Clef's login form, and
// readable descriptions of what openid-client throws.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';

export function env(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run this file through tests/openid-client/run.sh`);
  return value;
}

// ------------------------------------------------------------- error messages

/** One line per error of the cause chain, with the fields openid-client sets. */
export function describeError(err) {
  const lines = [];
  for (let e = err, depth = 0; e && depth < 4; e = e.cause, depth++) {
    if (typeof e !== 'object') {
      lines.push(String(e));
      break;
    }
    const fields = ['code', 'error', 'error_description', 'status']
      .filter((k) => e[k] !== undefined && typeof e[k] !== 'object')
      .map((k) => `${k}=${JSON.stringify(e[k])}`);
    if (!(e instanceof Error)) {
      lines.push(safeJson(e));
      break;
    }
    lines.push(`${e.name}: ${e.message}${fields.length ? ` (${fields.join(', ')})` : ''}`);
  }
  return lines.join('\n  caused by ');
}

function safeJson(value) {
  try {
    return JSON.stringify(value);
  } catch {
    return String(value);
  }
}

/**
 * Runs one openid-client call that must succeed; whatever the library throws
 * becomes a failure that says which step it refused and why.
 */
export async function rp(step, fn) {
  try {
    return await fn();
  } catch (err) {
    throw new Error(`openid-client refused Clef's answer to ${step}:\n  ${describeError(err)}`, { cause: err });
  }
}

/** Every message and code along the cause chain, for matching refusals. */
export function chain(err) {
  const parts = [];
  for (let e = err, depth = 0; e && depth < 4; e = e.cause, depth++) {
    if (typeof e !== 'object') break;
    for (const k of ['name', 'message', 'code', 'error']) if (typeof e[k] === 'string') parts.push(e[k]);
  }
  return parts.join(' | ');
}

// -------------------------------------------------------------------- browser

export function decodeEntities(text) {
  const named = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
  return text.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (whole, entity) => {
    if (entity[0] === '#') {
      const code = entity[1] === 'x' || entity[1] === 'X' ? parseInt(entity.slice(2), 16) : parseInt(entity.slice(1), 10);
      return String.fromCodePoint(code);
    }
    return named[entity.toLowerCase()] ?? whole;
  });
}

/** name → value of every `<input type="hidden">` of an HTML page. */
export function hiddenFields(html) {
  const fields = {};
  for (const [tag] of html.matchAll(/<input\b[^>]*>/gi)) {
    if (!/\btype="hidden"/i.test(tag)) continue;
    const name = /\bname="([^"]*)"/i.exec(tag)?.[1];
    const value = /\bvalue="([^"]*)"/i.exec(tag)?.[1] ?? '';
    if (name !== undefined) fields[decodeEntities(name)] = decodeEntities(value);
  }
  return fields;
}

export function formAction(html) {
  const action = /<form\b[^>]*\baction="([^"]*)"/i.exec(html)?.[1];
  return action === undefined ? undefined : decodeEntities(action);
}

/**
 * A person's browser: keeps the cookies Clef sets (name → value; Clef's cookies
 * are all host-only with Path=/), never follows redirects by itself.
 */
export class Browser {
  #cookies = new Map();
  /** How many times the login form was filled in this browser. */
  logins = 0;
  /** How many times the consent page was answered in this browser. */
  consents = 0;

  constructor(origin) {
    this.origin = origin;
  }

  has(name) {
    return this.#cookies.has(name);
  }

  async request(url, { method = 'GET', form } = {}) {
    const target = new URL(url, this.origin);
    const headers = { accept: 'text/html' };
    if (target.origin === new URL(this.origin).origin && this.#cookies.size) {
      headers.cookie = [...this.#cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    }
    let body;
    if (form) {
      body = new URLSearchParams(form).toString();
      headers['content-type'] = 'application/x-www-form-urlencoded';
    }
    const response = await fetch(target, { method, headers, body, redirect: 'manual' });
    for (const line of response.headers.getSetCookie()) this.#store(line);
    return response;
  }

  #store(line) {
    const [pair, ...attributes] = line.split(';');
    const eq = pair.indexOf('=');
    if (eq < 1) return;
    const name = pair.slice(0, eq).trim();
    const value = pair.slice(eq + 1).trim();
    const expired = attributes.some((a) => {
      const [k, v = ''] = a.split('=');
      const key = k.trim().toLowerCase();
      return (key === 'max-age' && Number(v) <= 0) || (key === 'expires' && Date.parse(v) < Date.now());
    });
    if (expired) this.#cookies.delete(name);
    else this.#cookies.set(name, value);
  }
}

/** Where a response redirects, resolved, or null. */
export function redirectOf(response, base) {
  if (response.status < 300 || response.status > 399) return null;
  const location = response.headers.get('location');
  return location ? new URL(location, base) : null;
}

/** True when `url` is `redirectUri` plus a query (the callback of the flow). */
export function isCallback(url, redirectUri) {
  if (!url) return false;
  const bare = new URL(url);
  bare.search = '';
  bare.hash = '';
  return bare.href === new URL(redirectUri).href;
}

async function excerpt(response) {
  const text = await response.text().catch(() => '');
  return `${response.status} ${response.headers.get('content-type') ?? ''}\n${text.replace(/\s+/g, ' ').slice(0, 600)}`;
}

/**
 * Where Clef sends the browser back to the client, if this response does: the
 * callback URL of a redirect (not requested), or for response_mode=form_post the
 * POST `Request` to the redirect URI that the auto-submitted form makes.
 */
async function callbackOf(response, base, redirectUri) {
  const location = redirectOf(response, base);
  if (isCallback(location, redirectUri)) return location;
  if (response.status === 200 && /^text\/html/.test(response.headers.get('content-type') ?? '')) {
    const html = await response.clone().text();
    if (formAction(html) === redirectUri) {
      return new Request(redirectUri, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(hiddenFields(html)).toString(),
      });
    }
  }
  return null;
}

/**
 * Follows the provider's own redirects (same origin, a few hops) until the
 * browser is sent back to `redirectUri` or shown a page.
 */
async function follow(browser, response, base, redirectUri) {
  for (let hops = 0; ; hops++) {
    const callback = await callbackOf(response, base, redirectUri);
    if (callback) return { callback, response, base, hops };
    const location = redirectOf(response, base);
    if (!location || location.origin !== new URL(browser.origin).origin || hops >= 5) return { response, base, hops };
    base = location;
    response = await browser.request(location);
  }
}

/** Clef's consent page (a form posted to /consentement), when `response` shows it. */
async function consentForm(response, base) {
  if (response.status !== 200 || !/^text\/html/.test(response.headers.get('content-type') ?? '')) return null;
  const html = await response.clone().text();
  // The page may hold other forms (the header's sign-out): the one posted to /consentement, alone.
  for (const [form, action] of html.matchAll(/<form\b[^>]*\baction="([^"]*)"[^]*?<\/form>/gi)) {
    const target = new URL(decodeEntities(action), base);
    if (target.pathname === '/consentement') return { html: form, action: target, fields: hiddenFields(form) };
  }
  return null;
}

/** Answers the consent page `step` stopped at, if it did, with `decision`; follows on. */
async function answerConsent(browser, step, redirectUri, decision) {
  if (step.callback || !decision) return step;
  const form = await consentForm(step.response, step.base);
  if (!form) return step;
  assert.ok(form.fields.csrf && form.fields.request, `the consent form has csrf and request fields:\n${form.html.slice(0, 600)}`);
  browser.consents += 1;
  const response = await browser.request(form.action, { method: 'POST', form: { ...form.fields, decision } });
  return follow(browser, response, form.action, redirectUri);
}

/**
 * Opens the authorization URL in `browser`, fills the login form when the
 * provider shows it, and returns where the browser is sent back (see callbackOf).
 * `account` null means "no login expected" (SSO, prompt=none, an error).
 * `consent` ('accept' or 'refuse') answers the consent page a third-party
 * client gets; without it, a consent page is a failure.
 */
export async function signIn(browser, authorizationUrl, redirectUri, account, { consent } = {}) {
  let step = await follow(browser, await browser.request(authorizationUrl), authorizationUrl, redirectUri);
  step = await answerConsent(browser, step, redirectUri, consent);
  if (step.callback) return step.callback;
  let { response } = step;
  if (!account) assert.fail(`GET /authorize was expected to send the browser back to ${redirectUri}; got ${response.headers.get('location') ?? ''} ${await excerpt(response)}`);
  if (response.status !== 200) assert.fail(`GET /authorize should show the login form; got ${await excerpt(response)}`);
  const page = await response.text();
  const fields = hiddenFields(page);
  assert.ok(fields.csrf, `the login form has no csrf field:\n${page.slice(0, 600)}`);
  assert.ok(fields.request, `the login form has no request field (the authorization request under way):\n${page.slice(0, 600)}`);
  const action = new URL(formAction(page) ?? '/login', step.base);
  browser.logins += 1;
  response = await browser.request(action, {
    method: 'POST',
    form: { ...fields, identifier: account.identifier, password: account.password },
  });
  step = await answerConsent(browser, await follow(browser, response, action, redirectUri), redirectUri, consent);
  if (!step.callback) assert.fail(`POST ${action.pathname} did not send the browser back to ${redirectUri}: ${step.response.headers.get('location') ?? ''} ${await excerpt(step.response)}`);
  if (step.callback instanceof URL && step.hops === 0) {
    assert.equal(response.status, 303, 'after the login form, the browser is redirected with 303 See Other');
  }
  return step.callback;
}

/** The error of a promise that must be refused. */
export async function refusal(promise, what) {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  assert.fail(`${what} was accepted`);
}

/**
 * The OAuth error code behind what openid-client threw: a ResponseBodyError's
 * `error`, a WWW-Authenticate challenge's `error` parameter, or the JSON body
 * of a 401 answered with a challenge (which openid-client leaves unread).
 */
export async function oauthErrorCode(err) {
  if (typeof err?.error === 'string') return err.error;
  const challenge = Array.isArray(err?.cause) ? err.cause.find((c) => c?.parameters?.error) : undefined;
  if (challenge) return challenge.parameters.error;
  try {
    return (await err.response.clone().json()).error;
  } catch {
    return undefined;
  }
}

/**
 * `at_hash` of an access token (OIDC Core §3.1.3.6): the left half of its hash
 * by the ID token's algorithm, SHA-256 for RS256 and ES256, SHA-512 for EdDSA (Ed25519).
 */
export function atHash(accessToken, alg = 'RS256') {
  const [hash, half] = alg === 'EdDSA' || alg === 'Ed25519' ? ['sha512', 32] : ['sha256', 16];
  return createHash(hash).update(accessToken, 'ascii').digest().subarray(0, half).toString('base64url');
}

/** The decoded header and payload of a compact JWS, unverified. */
export function decodeJwt(jwt) {
  const [header, payload] = jwt.split('.');
  return { header: JSON.parse(Buffer.from(header, 'base64url')), payload: JSON.parse(Buffer.from(payload, 'base64url')) };
}

/**
 * A fetch that records every request openid-client makes (url, method, headers,
 * body) and the status, headers and (responseJson()) body of its response.
 */
export function recordingFetch(log) {
  return async (url, options = {}) => {
    const body = options.body === undefined || options.body === null ? '' : String(options.body);
    const entry = { url: String(url), method: options.method ?? 'GET', headers: new Headers(options.headers), body };
    log.push(entry);
    const response = await fetch(url, options);
    entry.status = response.status;
    entry.responseHeaders = response.headers;
    // The body as Clef sent it, whatever openid-client keeps of it (read on demand).
    const copy = response.clone();
    entry.responseJson = () => copy.json();
    return response;
  };
}

/** RFC 6749 §5.2: error_description is limited to %x20-21 / %x23-5B / %x5D-7E. */
export function assertWireDescription(err) {
  const description = err?.error_description ?? err?.cause?.error_description;
  if (description === undefined) return;
  assert.match(description, /^[\x20\x21\x23-\x5B\x5D-\x7E]*$/, `error_description must be printable ASCII without " or \\ (RFC 6749 §5.2): ${JSON.stringify(description)}`);
}
