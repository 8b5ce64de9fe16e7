// Clef as panva's openid-client (v6) sees it: a relying party written by others
// drives discovery, the code flow with PKCE for a confidential and a public client,
// the ID token and UserInfo, and the refusals the library and Clef must make;
// dynamic registration and private_key_jwt; pushed authorization requests
// (buildAuthorizationUrlWithPAR) and signed request objects (buildAuthorizationUrlWithJAR).
// Features Clef does not have yet (issue 7: refresh tokens, introspection,
// revocation, RP-initiated logout) are tested too, and skipped while discovery does
// not advertise them: they start running the day it does.
//
// Run through run.sh, which starts Clef and registers the clients (OIDC_* variables).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as client from 'openid-client';

import {
  Browser, assertWireDescription, atHash, chain, decodeJwt, describeError, env, formAction, hiddenFields, isCallback,
  oauthErrorCode, recordingFetch, redirectOf, refusal, rp, signIn,
} from './lib.mjs';

const ISSUER = env('OIDC_ISSUER'); // http://127.0.0.1:PORT, no trailing slash
const RP = env('OIDC_RP');
const CONFIDENTIAL = { id: env('OIDC_CONFIDENTIAL_ID'), secret: env('OIDC_CONFIDENTIAL_SECRET') };
const PUBLIC_ID = env('OIDC_PUBLIC_ID');
const CONFIDENTIAL_CALLBACK = `${RP}/confidential/callback`;
const CONFIDENTIAL_LOGGED_OUT = `${RP}/confidential/logged-out`;
const PUBLIC_CALLBACK = `${RP}/public/callback`;

// The demo data (`clef demo`, src/demo.rs).
const PARENT = { identifier: 'parent.martin', password: 'Demo2026clef', children: ['Léa', 'Hugo'] };
const STUDENT = { identifier: 'jules.bernard', password: 'Demo2026clef' };
const DEMO_UAI = '0590001A';

// ------------------------------------------------------------------ configurations

/** Requests made through each configuration, to see how openid-client authenticated. */
const sent = { basic: [], post: [], public: [] };
let configs = null; // { basic, post, public, tampering }
let metadata = null;

function need() {
  if (!configs) throw new Error('no openid-client configuration: the discovery test failed (see above)');
  return configs;
}

async function discover(clientId, clientMetadata, auth, log, fetchImpl) {
  return client.discovery(new URL(ISSUER), clientId, clientMetadata, auth, {
    // http on loopback; and check ID token signatures against the JWKS (which
    // openid-client otherwise leaves to TLS for tokens from the token endpoint).
    execute: [client.allowInsecureRequests, client.enableNonRepudiationChecks],
    [client.customFetch]: fetchImpl ?? recordingFetch(log),
    timeout: 10,
  });
}

/** A fetch that breaks the signature of the ID token in token responses. */
function signatureBreakingFetch(tokenEndpoint) {
  return async (url, options) => {
    const response = await fetch(url, options);
    if (String(url) !== tokenEndpoint || !response.ok) return response;
    const body = await response.json();
    if (typeof body.id_token === 'string') {
      const [header, payload, signature] = body.id_token.split('.');
      const bytes = Buffer.from(signature, 'base64url');
      bytes[bytes.length >> 1] ^= 0x01;
      body.id_token = `${header}.${payload}.${bytes.toString('base64url')}`;
    }
    const headers = new Headers(response.headers);
    headers.delete('content-length');
    return new Response(JSON.stringify(body), { status: response.status, headers });
  };
}

// ----------------------------------------------------------------------- the flow

/**
 * One authorization: PKCE S256, state and nonce as openid-client makes them, the
 * login through Clef's form in `browser`, and the callback to hand back.
 * `build` makes the authorization URL from the parameters: a plain query by
 * default, or openid-client's PAR (pushed) or JAR (signed request object).
 */
async function authorize(config, { browser = new Browser(ISSUER), account = PARENT, redirectUri, scope = 'openid profile children', extra = {}, pkce = true, consent, build = plainUrl } = {}) {
  const codeVerifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const parameters = { redirect_uri: redirectUri, scope, state, nonce, ...extra };
  if (pkce) {
    parameters.code_challenge = await client.calculatePKCECodeChallenge(codeVerifier);
    parameters.code_challenge_method = 'S256';
  }
  const url = await build(config, parameters);
  const callback = await signIn(browser, url, redirectUri, account, { consent });
  return { browser, callback, codeVerifier, state, nonce, url, parameters };
}

function plainUrl(config, parameters) {
  return client.buildAuthorizationUrl(config, parameters);
}

/** RFC 9126 through openid-client: the parameters pushed to /par, a URL naming them. */
function pushedUrl(config, parameters) {
  return rp('the pushed authorization request (buildAuthorizationUrlWithPAR)', () => client.buildAuthorizationUrlWithPAR(config, parameters));
}

/** RFC 9101 through openid-client: the parameters in a request object signed by `key`. */
function signedUrl(key) {
  return (config, parameters) =>
    rp('the signed request object (buildAuthorizationUrlWithJAR)', () => client.buildAuthorizationUrlWithJAR(config, parameters, { key: key.privateKey, kid: key.kid }));
}

function checksOf(flow, more = {}) {
  return { pkceCodeVerifier: flow.codeVerifier, expectedState: flow.state, expectedNonce: flow.nonce, ...more };
}

async function redeem(config, flow, more = {}) {
  return rp('the authorization code grant (authorizationCodeGrant)', () =>
    client.authorizationCodeGrant(config, flow.callback, checksOf(flow, more)),
  );
}

/**
 * What every ID token Clef issues to `clientId` must say, beyond openid-client's
 * own checks; `alg` is the client's id_token_signed_response_alg.
 */
function checkIdToken(tokens, clientId, flow, { alg = 'RS256' } = {}) {
  const claims = tokens.claims();
  assert.ok(claims, 'the token response carries an ID token');
  assert.equal(claims.iss, ISSUER);
  assert.deepEqual([claims.aud].flat(), [clientId]);
  assert.equal(claims.nonce, flow.nonce);
  assert.equal(typeof claims.sub, 'string');
  for (const k of ['exp', 'iat', 'auth_time']) assert.equal(typeof claims[k], 'number', `${k} is a number`);
  assert.ok(claims.exp > claims.iat, 'exp after iat');
  assert.equal(typeof claims.sid, 'string', 'sid is given (needed for logout)');
  assert.deepEqual(claims.amr, ['pwd']);
  assert.equal(claims.at_hash, atHash(tokens.access_token, alg), `at_hash is the left half of the access token's hash for ${alg}`);
  assert.equal(tokens.token_type.toLowerCase(), 'bearer');
  assert.ok(tokens.expiresIn() > 0, 'expires_in is given');
  assert.equal(decodeJwt(tokens.id_token).header.alg, alg);
  return claims;
}

/** The `children` claim; a registered service (a third party) gets no `rank`. */
function checkChildren(children, { thirdParty = false } = {}) {
  assert.ok(Array.isArray(children), `children is an array: ${JSON.stringify(children)}`);
  assert.deepEqual(children.map((c) => c.given_name).sort(), [...PARENT.children].sort());
  for (const child of children) {
    assert.equal(typeof child.sub, 'string');
    assert.equal(child.family_name, 'Martin');
    assert.equal(child.rank, thirdParty ? undefined : 1, thirdParty ? 'no rank for a third party' : 'rank');
    assert.equal(child.establishment?.uai, DEMO_UAI);
    assert.equal(typeof child.establishment?.name, 'string');
    assert.equal(typeof child.class, 'string');
    assert.match(child.birthdate, /^\d{4}-\d{2}-\d{2}$/);
  }
}

function tokenRequests(log) {
  const endpoint = metadata.token_endpoint;
  return log.filter((r) => r.url === endpoint);
}

/** `promise` (an openid-client call) must be refused with the OAuth error `expected`. */
async function refusedWith(promise, expected, what) {
  const err = await refusal(promise, what);
  assert.equal(await oauthErrorCode(err), expected, `${what}: expected the OAuth error ${expected}, got: ${describeError(err)}`);
  assertWireDescription(err);
  return err;
}

/** The client id and secret of an HTTP Basic header, form-decoded (RFC 6749 §2.3.1). */
function basicCredentials(header) {
  assert.match(header ?? '', /^Basic /, `an HTTP Basic Authorization header: ${header}`);
  const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  const formDecode = (v) => decodeURIComponent(v.replace(/\+/g, ' '));
  return [formDecode(decoded.slice(0, colon)), formDecode(decoded.slice(colon + 1))];
}

/** Polls `attempt` while it succeeds (a grace window), for at most `seconds`; returns the error. */
async function refusedWithin(seconds, attempt) {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    try {
      await attempt();
    } catch (err) {
      return err;
    }
    if (Date.now() > deadline) return null;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

// ===================================================================== the tests

test('discovery: openid-client accepts the metadata and builds three client configurations', async () => {
  const basic = await rp('discovery (client_secret_basic)', () =>
    discover(CONFIDENTIAL.id, CONFIDENTIAL.secret, client.ClientSecretBasic(CONFIDENTIAL.secret), sent.basic),
  );
  const post = await rp('discovery (client_secret_post)', () =>
    discover(CONFIDENTIAL.id, CONFIDENTIAL.secret, client.ClientSecretPost(CONFIDENTIAL.secret), sent.post),
  );
  const pub = await rp('discovery (public client)', () =>
    discover(PUBLIC_ID, { token_endpoint_auth_method: 'none' }, client.None(), sent.public),
  );
  metadata = basic.serverMetadata();
  const tampering = await rp('discovery (tampering fetch)', () =>
    discover(CONFIDENTIAL.id, CONFIDENTIAL.secret, client.ClientSecretBasic(CONFIDENTIAL.secret), null, signatureBreakingFetch(metadata.token_endpoint)),
  );
  configs = { basic, post, public: pub, tampering };

  assert.equal(metadata.issuer, ISSUER, 'issuer is the configured issuer, exactly');
  assert.ok(metadata.supportsPKCE('S256'), 'S256 PKCE is advertised');
  assert.ok(!metadata.supportsPKCE('plain'), 'plain PKCE is not advertised');
  for (const m of ['client_secret_basic', 'client_secret_post', 'none']) {
    assert.ok(metadata.token_endpoint_auth_methods_supported.includes(m), `${m} is advertised`);
  }
  assert.ok(metadata.id_token_signing_alg_values_supported.includes('RS256'));
  assert.deepEqual(metadata.response_types_supported, ['code']);
  assert.equal(metadata.authorization_response_iss_parameter_supported, true);
  for (const scope of ['openid', 'profile', 'children', 'school', 'email']) {
    assert.ok(metadata.scopes_supported.includes(scope), `scope ${scope} is advertised`);
  }
  for (const endpoint of ['authorization_endpoint', 'token_endpoint', 'userinfo_endpoint', 'jwks_uri']) {
    assert.ok(metadata[endpoint].startsWith(`${ISSUER}/`), `${endpoint} is under the issuer`);
  }
});

test('confidential client, client_secret_basic: a parent signs in with PKCE, state and nonce; ID token with children; UserInfo', async () => {
  const { basic } = need();
  const flow = await authorize(basic, { redirectUri: CONFIDENTIAL_CALLBACK });
  assert.equal(flow.callback.searchParams.get('iss'), ISSUER, 'the authorization response carries iss (RFC 9207)');
  const before = tokenRequests(sent.basic).length;
  const tokens = await redeem(basic, flow);

  const [request] = tokenRequests(sent.basic).slice(before);
  assert.match(request.responseHeaders.get('cache-control') ?? '', /no-store/, 'token responses are not cached (RFC 6749 §5.1)');
  assert.match(request.responseHeaders.get('content-type') ?? '', /^application\/json/);
  // openid-client form-encodes id and secret even where it need not ('-' as %2D): Clef decodes them.
  assert.deepEqual(basicCredentials(request.headers.get('authorization')), [CONFIDENTIAL.id, CONFIDENTIAL.secret], 'openid-client authenticated with HTTP Basic');
  const form = new URLSearchParams(request.body);
  assert.ok(!form.has('client_secret'), 'no secret in the body with client_secret_basic');
  assert.equal(form.get('code_verifier'), flow.codeVerifier);

  const claims = checkIdToken(tokens, CONFIDENTIAL.id, flow);
  assert.equal(claims.preferred_username, PARENT.identifier);
  assert.equal(claims.name, 'Claire Martin');
  checkChildren(claims.children);
  assert.equal(claims.school, undefined, 'no school claim for a parent');

  const userinfo = await rp('UserInfo (fetchUserInfo)', () => client.fetchUserInfo(basic, tokens.access_token, claims.sub));
  assert.equal(userinfo.sub, claims.sub, 'UserInfo sub is the ID token sub');
  assert.equal(userinfo.preferred_username, PARENT.identifier);
  assert.deepEqual(userinfo.children, claims.children, 'UserInfo children are the ID token children');
  for (const child of claims.children) assert.notEqual(child.sub, claims.sub);

  // The same browser is signed in: prompt=none with max_age gives a code without
  // the form, and openid-client checks auth_time against maxAge.
  const sso = await authorize(basic, { browser: flow.browser, account: null, redirectUri: CONFIDENTIAL_CALLBACK, extra: { prompt: 'none', max_age: '600' } });
  const again = await redeem(basic, sso, { maxAge: 600 });
  const ssoClaims = checkIdToken(again, CONFIDENTIAL.id, sso);
  assert.equal(ssoClaims.sub, claims.sub);
  assert.equal(ssoClaims.sid, claims.sid, 'the same SSO session');
  assert.equal(ssoClaims.auth_time, claims.auth_time, 'no new authentication');
  assert.notEqual(again.access_token, tokens.access_token);
  assert.equal(flow.browser.logins, 1, 'the SSO session answered without the login form');

  // prompt=login and max_age=0 ask for the password again, in the same session.
  for (const extra of [{ prompt: 'login' }, { max_age: '0' }]) {
    const forced = await authorize(basic, { browser: flow.browser, redirectUri: CONFIDENTIAL_CALLBACK, extra });
    const fresh = await redeem(basic, forced, extra.max_age ? { maxAge: 0 } : {});
    const freshClaims = checkIdToken(fresh, CONFIDENTIAL.id, forced);
    assert.equal(freshClaims.sub, claims.sub);
    assert.ok(freshClaims.auth_time >= claims.auth_time);
  }
  assert.equal(flow.browser.logins, 3, 'prompt=login and max_age=0 showed the login form again');
});

test('confidential client, client_secret_post: a student signs in (school claim); response_mode=form_post', async () => {
  const { post } = need();
  const flow = await authorize(post, { account: STUDENT, redirectUri: CONFIDENTIAL_CALLBACK, scope: 'openid profile school' });
  const before = tokenRequests(sent.post).length;
  const tokens = await redeem(post, flow);
  const [request] = tokenRequests(sent.post).slice(before);
  assert.equal(request.headers.get('authorization'), null, 'no Authorization header with client_secret_post');
  const form = new URLSearchParams(request.body);
  assert.equal(form.get('client_id'), CONFIDENTIAL.id);
  assert.equal(form.get('client_secret'), CONFIDENTIAL.secret);

  const claims = checkIdToken(tokens, CONFIDENTIAL.id, flow);
  assert.equal(claims.preferred_username, STUDENT.identifier);
  assert.equal(claims.school?.uai, DEMO_UAI);
  assert.equal(typeof claims.school?.class, 'string');
  assert.equal(claims.children, undefined, 'no children claim for a student');
  const userinfo = await rp('UserInfo (fetchUserInfo)', () => client.fetchUserInfo(post, tokens.access_token, claims.sub));
  assert.deepEqual(userinfo.school, claims.school);

  // form_post: Clef answers with an auto-submitted form; openid-client reads the POST.
  const posted = await authorize(post, { browser: flow.browser, account: null, redirectUri: CONFIDENTIAL_CALLBACK, scope: 'openid', extra: { response_mode: 'form_post' } });
  assert.ok(posted.callback instanceof Request, 'form_post answers with a form to post to the redirect URI');
  const viaForm = await redeem(post, posted);
  assert.equal(checkIdToken(viaForm, CONFIDENTIAL.id, posted).sub, claims.sub);
});

test('public client (none): a parent signs in with PKCE S256; children in ID token and UserInfo', async () => {
  const pub = need().public;
  const flow = await authorize(pub, { redirectUri: PUBLIC_CALLBACK });
  const before = tokenRequests(sent.public).length;
  const tokens = await redeem(pub, flow);
  const [request] = tokenRequests(sent.public).slice(before);
  assert.equal(request.headers.get('authorization'), null);
  const form = new URLSearchParams(request.body);
  assert.equal(form.get('client_id'), PUBLIC_ID);
  assert.ok(!form.has('client_secret'));
  const claims = checkIdToken(tokens, PUBLIC_ID, flow);
  checkChildren(claims.children);
  const userinfo = await rp('UserInfo (fetchUserInfo)', () => client.fetchUserInfo(pub, tokens.access_token, claims.sub));
  assert.equal(userinfo.sub, claims.sub);
  assert.deepEqual(userinfo.children, claims.children);
});

test('refused by Clef, reported by openid-client: a public client without PKCE; prompt=none with nobody signed in', async () => {
  const { basic, public: pub } = need();
  // No PKCE from a public client: an error response to the redirect URI.
  const noPkce = await authorize(pub, { account: null, redirectUri: PUBLIC_CALLBACK, pkce: false });
  await assert.rejects(
    client.authorizationCodeGrant(pub, noPkce.callback, { expectedState: noPkce.state, expectedNonce: noPkce.nonce }),
    (err) => {
      assert.ok(err instanceof client.AuthorizationResponseError, describeError(err));
      assert.equal(err.error, 'invalid_request');
      assertWireDescription(err);
      return true;
    },
  );
  // prompt=none in a fresh browser.
  const none = await authorize(basic, { account: null, redirectUri: CONFIDENTIAL_CALLBACK, extra: { prompt: 'none' } });
  await assert.rejects(client.authorizationCodeGrant(basic, none.callback, checksOf(none)), (err) => {
    assert.ok(err instanceof client.AuthorizationResponseError, describeError(err));
    assert.equal(err.error, 'login_required');
    assertWireDescription(err);
    return true;
  });
});

test('refused by openid-client: a tampered state or iss never reaches the token endpoint; the untouched code still works', async () => {
  const { basic } = need();
  const flow = await authorize(basic, { redirectUri: CONFIDENTIAL_CALLBACK });
  const before = tokenRequests(sent.basic).length;

  const wrongState = new URL(flow.callback);
  wrongState.searchParams.set('state', client.randomState());
  await assert.rejects(client.authorizationCodeGrant(basic, wrongState, checksOf(flow)), (err) => {
    assert.match(chain(err), /state/, describeError(err));
    return true;
  });
  const wrongIss = new URL(flow.callback);
  wrongIss.searchParams.set('iss', 'http://127.0.0.1:1');
  await assert.rejects(client.authorizationCodeGrant(basic, wrongIss, checksOf(flow)), (err) => {
    assert.match(chain(err), /iss/, describeError(err));
    return true;
  });
  const noIss = new URL(flow.callback);
  noIss.searchParams.delete('iss');
  await assert.rejects(client.authorizationCodeGrant(basic, noIss, checksOf(flow)), (err) => {
    assert.match(chain(err), /iss/, describeError(err));
    return true;
  });
  assert.equal(tokenRequests(sent.basic).length, before, 'nothing was sent to the token endpoint');

  const tokens = await redeem(basic, flow);
  checkIdToken(tokens, CONFIDENTIAL.id, flow);
});

test('refused by Clef: a replayed code (invalid_grant, and the first access token is revoked), a wrong code_verifier, a wrong secret', async () => {
  const { basic } = need();
  const flow = await authorize(basic, { redirectUri: CONFIDENTIAL_CALLBACK });
  const tokens = await redeem(basic, flow);
  const sub = tokens.claims().sub;
  await rp('UserInfo before the replay', () => client.fetchUserInfo(basic, tokens.access_token, sub));

  const replay = await refusedWith(client.authorizationCodeGrant(basic, flow.callback, checksOf(flow)), 'invalid_grant', 'the code presented again');
  assert.ok(replay instanceof client.ResponseBodyError, describeError(replay));
  assert.equal(replay.status, 400);
  // README: presenting a code again revokes the access token its first exchange issued.
  const revoked = await refusedWith(client.fetchUserInfo(basic, tokens.access_token, sub), 'invalid_token', 'UserInfo with the access token of a replayed code');
  assert.ok(revoked instanceof client.WWWAuthenticateChallengeError, describeError(revoked));
  assert.equal(revoked.status, 401);

  // A code_verifier that is not the one of the challenge.
  const pkce = await authorize(basic, { browser: flow.browser, account: null, redirectUri: CONFIDENTIAL_CALLBACK });
  await refusedWith(
    client.authorizationCodeGrant(basic, pkce.callback, { ...checksOf(pkce), pkceCodeVerifier: client.randomPKCECodeVerifier() }),
    'invalid_grant',
    'a wrong code_verifier',
  );

  // A wrong client secret.
  const wrong = await discover(CONFIDENTIAL.id, 'not-the-secret', client.ClientSecretBasic('not-the-secret'), []);
  const other = await authorize(wrong, { browser: flow.browser, account: null, redirectUri: CONFIDENTIAL_CALLBACK });
  // RFC 6749 §5.2: 401 with a Basic challenge; openid-client reports the challenge.
  const unauthorized = await refusedWith(client.authorizationCodeGrant(wrong, other.callback, checksOf(other)), 'invalid_client', 'a wrong client secret');
  assert.equal(unauthorized.status, 401);
  const wrongPost = await discover(CONFIDENTIAL.id, 'not-the-secret', client.ClientSecretPost('not-the-secret'), []);
  const viaPost = await authorize(wrongPost, { browser: flow.browser, account: null, redirectUri: CONFIDENTIAL_CALLBACK });
  await refusedWith(client.authorizationCodeGrant(wrongPost, viaPost.callback, checksOf(viaPost)), 'invalid_client', 'a wrong client secret in the body');
});

test('refused by openid-client: a wrong nonce, a broken ID token signature, a forged access token at UserInfo', async () => {
  const { basic, tampering } = need();
  const browser = new Browser(ISSUER);
  const flow = await authorize(basic, { browser, redirectUri: CONFIDENTIAL_CALLBACK });
  await assert.rejects(
    client.authorizationCodeGrant(basic, flow.callback, { ...checksOf(flow), expectedNonce: client.randomNonce() }),
    (err) => {
      assert.match(chain(err), /nonce/, describeError(err));
      return true;
    },
  );

  const broken = await authorize(tampering, { browser, account: null, redirectUri: CONFIDENTIAL_CALLBACK });
  await assert.rejects(client.authorizationCodeGrant(tampering, broken.callback, checksOf(broken)), (err) => {
    assert.match(chain(err), /signature/i, describeError(err));
    return true;
  });

  const forged = await refusedWith(client.fetchUserInfo(basic, 'forged-access-token', client.skipSubjectCheck), 'invalid_token', 'a forged access token at UserInfo');
  assert.equal(forged.status, 401);
});

// ------------------------------------------------------------ issue 7, not yet there

test('a malformed token request: invalid_request with an ASCII error_description', async () => {
  const { basic } = need();
  // A parameter given twice: Clef's strict decoder refuses it before anything else.
  const body = new URLSearchParams([['code', 'one'], ['code', 'two'], ['redirect_uri', CONFIDENTIAL_CALLBACK]]);
  await refusedWith(client.genericGrantRequest(basic, 'authorization_code', body), 'invalid_request', 'a token request with code twice');
});

function advertised(t, what, present) {
  if (present) return true;
  t.skip(`issue 7: discovery does not advertise ${what} yet`);
  return false;
}

test('refresh token (issue 7): rotation, the old token refused after use, its family revoked', async (t) => {
  const { basic } = need();
  if (!advertised(t, 'the refresh_token grant', metadata.grant_types_supported?.includes('refresh_token'))) return;
  const flow = await authorize(basic, { redirectUri: CONFIDENTIAL_CALLBACK });
  const first = await redeem(basic, flow);
  const claims = checkIdToken(first, CONFIDENTIAL.id, flow);
  assert.equal(typeof first.refresh_token, 'string', 'a first-party client receives a refresh token');

  const second = await rp('the refresh token grant (refreshTokenGrant)', () => client.refreshTokenGrant(basic, first.refresh_token));
  assert.equal(typeof second.refresh_token, 'string', 'a new refresh token is issued');
  assert.notEqual(second.refresh_token, first.refresh_token, 'the refresh token is rotated');
  assert.notEqual(second.access_token, first.access_token);
  const refreshed = second.claims();
  if (refreshed) {
    assert.equal(refreshed.sub, claims.sub);
    assert.equal(refreshed.sid, claims.sid);
    assert.equal(refreshed.auth_time, claims.auth_time);
    assert.equal(refreshed.at_hash, atHash(second.access_token));
    checkChildren(refreshed.children);
  }
  const userinfo = await rp('UserInfo with the refreshed access token', () => client.fetchUserInfo(basic, second.access_token, claims.sub));
  assert.equal(userinfo.sub, claims.sub);

  // The used token: refused (after any grace window for retried requests)...
  const reuse = await refusedWithin(20, () => client.refreshTokenGrant(basic, first.refresh_token));
  assert.ok(reuse, 'the refresh token used once is refused (after at most 20 s of grace)');
  assert.equal(await oauthErrorCode(reuse), 'invalid_grant', describeError(reuse));
  // ...and its reuse revokes the family: the newest refresh token is refused too.
  await refusedWith(client.refreshTokenGrant(basic, second.refresh_token), 'invalid_grant', 'the newest refresh token of a family whose old token was reused');
});

test('introspection (issue 7): active for a live token, not for a forged one nor for another client', async (t) => {
  const { basic } = need();
  if (!advertised(t, 'introspection_endpoint', metadata.introspection_endpoint)) return;
  const flow = await authorize(basic, { redirectUri: CONFIDENTIAL_CALLBACK });
  const tokens = await redeem(basic, flow);
  const sub = tokens.claims().sub;

  const live = await rp('introspection (tokenIntrospection)', () => client.tokenIntrospection(basic, tokens.access_token));
  assert.equal(live.active, true);
  assert.equal(live.sub, sub);
  assert.equal(live.client_id, CONFIDENTIAL.id);
  assert.ok(live.scope?.split(' ').includes('openid'), `scope: ${live.scope}`);
  assert.ok(live.exp > Date.now() / 1000);
  if (tokens.refresh_token) {
    const refresh = await rp('introspection of the refresh token', () => client.tokenIntrospection(basic, tokens.refresh_token, { token_type_hint: 'refresh_token' }));
    assert.equal(refresh.active, true);
  }
  const forged = await rp('introspection of a forged token', () => client.tokenIntrospection(basic, 'forged-token'));
  assert.equal(forged.active, false);

  // Another client's token: the public client's access token, seen by the confidential client.
  const pub = need().public;
  const other = await authorize(pub, { browser: flow.browser, account: null, redirectUri: PUBLIC_CALLBACK });
  const otherTokens = await redeem(pub, other);
  const foreign = await client.tokenIntrospection(basic, otherTokens.access_token).catch((err) => ({ refused: err }));
  assert.ok(foreign.refused || foreign.active === false, `a client cannot introspect another client's token: ${JSON.stringify(foreign)}`);
});

test('revocation (issue 7): a revoked access token is inactive and refused at UserInfo; a revoked refresh token cannot refresh', async (t) => {
  const { basic } = need();
  if (!advertised(t, 'revocation_endpoint', metadata.revocation_endpoint)) return;
  const flow = await authorize(basic, { redirectUri: CONFIDENTIAL_CALLBACK });
  const tokens = await redeem(basic, flow);
  const sub = tokens.claims().sub;

  await rp('revocation of the access token (tokenRevocation)', () => client.tokenRevocation(basic, tokens.access_token, { token_type_hint: 'access_token' }));
  if (metadata.introspection_endpoint) {
    const after = await rp('introspection after revocation', () => client.tokenIntrospection(basic, tokens.access_token));
    assert.equal(after.active, false, 'a revoked access token is inactive');
  }
  await refusedWith(client.fetchUserInfo(basic, tokens.access_token, sub), 'invalid_token', 'UserInfo with a revoked access token');
  // RFC 7009 §2.2: revoking an unknown token is not an error.
  await rp('revocation of an unknown token', () => client.tokenRevocation(basic, 'forged-token'));

  if (tokens.refresh_token) {
    await rp('revocation of the refresh token', () => client.tokenRevocation(basic, tokens.refresh_token, { token_type_hint: 'refresh_token' }));
    if (metadata.introspection_endpoint) {
      const after = await rp('introspection of the revoked refresh token', () => client.tokenIntrospection(basic, tokens.refresh_token));
      assert.equal(after.active, false);
    }
    await refusedWith(client.refreshTokenGrant(basic, tokens.refresh_token), 'invalid_grant', 'a revoked refresh token');
  }
});

test('RP-initiated logout (issue 7): back to the registered post_logout_redirect_uri with state; the session is over', async (t) => {
  const { basic } = need();
  if (!advertised(t, 'end_session_endpoint', metadata.end_session_endpoint)) return;
  const flow = await authorize(basic, { redirectUri: CONFIDENTIAL_CALLBACK });
  const tokens = await redeem(basic, flow);

  // An unregistered post_logout_redirect_uri is never redirected to.
  const stranger = client.buildEndSessionUrl(basic, {
    id_token_hint: tokens.id_token,
    post_logout_redirect_uri: `${RP}/somewhere-else`,
    state: client.randomState(),
  });
  const refused = await flow.browser.request(stranger);
  const where = redirectOf(refused, stranger);
  assert.ok(!where || !where.href.startsWith(`${RP}/somewhere-else`), `Clef redirected to an unregistered URI: ${where}`);

  const state = client.randomState();
  const url = client.buildEndSessionUrl(basic, {
    id_token_hint: tokens.id_token,
    post_logout_redirect_uri: CONFIDENTIAL_LOGGED_OUT,
    state,
  });
  assert.equal(url.searchParams.get('client_id'), CONFIDENTIAL.id);
  // Follow Clef (a confirmation form, if it shows one, is accepted) until it
  // sends the browser to the post-logout URI.
  let next = url;
  let response = await flow.browser.request(next);
  let back = null;
  for (let step = 0; step < 5 && !back; step++) {
    const location = redirectOf(response, next);
    if (location && isCallback(location, CONFIDENTIAL_LOGGED_OUT)) {
      back = location;
    } else if (location) {
      next = location;
      response = await flow.browser.request(next);
    } else {
      const html = await response.text();
      const action = formAction(html);
      assert.ok(response.status === 200 && action, `the logout neither redirected nor showed a form: ${response.status} ${html.slice(0, 400)}`);
      next = new URL(action, next);
      response = await flow.browser.request(next, { method: 'POST', form: hiddenFields(html) });
    }
  }
  assert.ok(back, 'Clef sent the browser back to the post_logout_redirect_uri');
  assert.equal(back.searchParams.get('state'), state, 'the state comes back');

  // The SSO session is over: prompt=none now answers login_required.
  const none = await authorize(basic, { browser: flow.browser, account: null, redirectUri: CONFIDENTIAL_CALLBACK, extra: { prompt: 'none' } });
  await assert.rejects(client.authorizationCodeGrant(basic, none.callback, checksOf(none)), (err) => {
    assert.equal(err.error, 'login_required', describeError(err));
    return true;
  });
});

// ------------------------------------------- dynamic registration (RFC 7591, RFC 7592)

const INITIAL_ACCESS_TOKEN = env('OIDC_INITIAL_ACCESS_TOKEN');
const REGISTERED_CALLBACK = `${RP}/registered/callback`;
const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

/**
 * Registers a client through openid-client (dynamicClientRegistration: discovery,
 * then POST to the registration endpoint); its configuration and every request
 * made through it.
 */
async function registerClient(clientMetadata, auth, { initialAccessToken = INITIAL_ACCESS_TOKEN } = {}) {
  const log = [];
  const config = await client.dynamicClientRegistration(new URL(ISSUER), { redirect_uris: [REGISTERED_CALLBACK], ...clientMetadata }, auth, {
    initialAccessToken: initialAccessToken ?? undefined, // null: none
    execute: [client.allowInsecureRequests, client.enableNonRepudiationChecks],
    [client.customFetch]: recordingFetch(log),
    timeout: 10,
  });
  return { config, log };
}

/** A client's key pair for private_key_jwt: the private CryptoKey, and the public JWK to register. */
async function clientKeyPair(algorithm, alg, kid) {
  const { privateKey, publicKey } = await crypto.subtle.generateKey(algorithm, true, ['sign', 'verify']);
  const jwk = await crypto.subtle.exportKey('jwk', publicKey);
  return { privateKey, kid, jwk: { ...jwk, kid, alg, use: 'sig' } };
}

/** The configuration of an already registered client, authenticating with `auth`. */
function configurationOf(config, auth) {
  const other = new client.Configuration(config.serverMetadata(), config.clientMetadata().client_id, config.clientMetadata(), auth);
  client.allowInsecureRequests(other);
  client.enableNonRepudiationChecks(other);
  return other;
}

/** The last token request of a log, its form body decoded. */
function lastTokenRequest(log) {
  const request = tokenRequests(log).at(-1);
  assert.ok(request, 'a token request was made');
  return { request, form: new URLSearchParams(request.body) };
}

test('dynamic registration (RFC 7591): refused without the initial access token; openid-client registers a client with it; a parent signs in after consent (pairwise subjects); RFC 7592 read and delete', async () => {
  const { basic } = need();
  for (const [what, initialAccessToken] of [['no initial access token', null], ['a wrong initial access token', 'not-the-initial-access-token']]) {
    const err = await refusal(registerClient({ client_name: 'refusé' }, undefined, { initialAccessToken }), `a registration with ${what}`);
    assert.equal(await oauthErrorCode(err), 'invalid_token', `${what}: ${describeError(err)}`);
    assertWireDescription(err);
  }

  const { config, log } = await rp('dynamic registration (dynamicClientRegistration)', () =>
    registerClient({
      client_name: 'openid-client (enregistré)',
      // openid-client authenticates a registered client with client_secret_post unless told otherwise.
      token_endpoint_auth_method: 'client_secret_post',
      post_logout_redirect_uris: [`${RP}/registered/logged-out`],
    }),
  );
  const registration = log.find((r) => r.url === metadata.registration_endpoint);
  assert.ok(registration, `discovery advertises the registration endpoint: ${metadata.registration_endpoint}`);
  assert.equal(registration.method, 'POST');
  assert.equal(registration.headers.get('authorization'), `Bearer ${INITIAL_ACCESS_TOKEN}`, 'the initial access token as a bearer token');
  assert.equal(registration.status, 201);
  assert.match(registration.responseHeaders.get('cache-control') ?? '', /no-store/);
  const registered = config.clientMetadata();
  assert.equal(typeof registered.client_id, 'string');
  assert.equal(typeof registered.client_secret, 'string', 'a confidential client is given a secret');
  assert.equal(typeof registered.registration_access_token, 'string');
  assert.equal(registered.registration_client_uri, `${ISSUER}/register/${registered.client_id}`);
  assert.deepEqual(registered.redirect_uris, [REGISTERED_CALLBACK]);
  assert.equal(registered.token_endpoint_auth_method, 'client_secret_post');
  assert.equal(registered.subject_type, 'pairwise', 'pairwise subjects by default');

  // A registered client is a third party: the parent consents, then the code flow as usual.
  const flow = await authorize(config, { redirectUri: REGISTERED_CALLBACK, consent: 'accept' });
  assert.equal(flow.browser.consents, 1, 'the consent page was shown');
  const tokens = await redeem(config, flow);
  const { form } = lastTokenRequest(log);
  assert.equal(form.get('client_secret'), registered.client_secret, 'client_secret_post, as registered');
  const claims = checkIdToken(tokens, registered.client_id, flow);
  checkChildren(claims.children, { thirdParty: true });
  const userinfo = await rp('UserInfo of a registered client', () => client.fetchUserInfo(config, tokens.access_token, claims.sub));
  assert.equal(userinfo.sub, claims.sub);

  // The academy's own client, in the same session, sees other subjects for the same people.
  const ent = await authorize(basic, { browser: flow.browser, account: null, redirectUri: CONFIDENTIAL_CALLBACK });
  const entClaims = (await redeem(basic, ent)).claims();
  assert.notEqual(claims.sub, entClaims.sub, 'the parent has a pairwise subject at the registered client');
  const entChildren = new Set(entClaims.children.map((c) => c.sub));
  for (const child of claims.children) assert.ok(!entChildren.has(child.sub), `${child.given_name} has a pairwise subject too`);

  // RFC 7592: the registration read back, then deleted, with the registration access token;
  // each read answers a new one, which replaces the one used (§3).
  const first = { authorization: `Bearer ${registered.registration_access_token}` };
  const read = await fetch(registered.registration_client_uri, { headers: first });
  assert.equal(read.status, 200);
  const readBack = await read.json();
  assert.equal(readBack.client_id, registered.client_id);
  assert.equal(readBack.client_name, 'openid-client (enregistré)');
  assert.deepEqual(readBack.redirect_uris, [REGISTERED_CALLBACK]);
  assert.ok(readBack.registration_access_token, 'the read answers a registration access token');
  assert.notEqual(readBack.registration_access_token, registered.registration_access_token);
  const replaced = await fetch(registered.registration_client_uri, { headers: first });
  assert.equal(replaced.status, 401, 'the token a read replaced no longer works');
  const management = { authorization: `Bearer ${readBack.registration_access_token}` };
  const stranger = await fetch(registered.registration_client_uri, { headers: { authorization: `Bearer ${INITIAL_ACCESS_TOKEN}` } });
  assert.equal(stranger.status, 401, 'the initial access token does not manage a registration');
  const deleted = await fetch(registered.registration_client_uri, { method: 'DELETE', headers: management });
  assert.equal(deleted.status, 204);
  await refusedWith(client.tokenIntrospection(config, tokens.access_token), 'invalid_client', 'introspection by a deleted client');
  await refusedWith(client.fetchUserInfo(config, tokens.access_token, claims.sub), 'invalid_token', 'UserInfo with the access token of a deleted client');
  const gone = await fetch(registered.registration_client_uri, { headers: management });
  assert.equal(gone.status, 401, 'a deleted registration cannot be read');
});

test('private_key_jwt (ES256 key in the registered jwks): openid-client signs the client assertion, no secret anywhere; a foreign key and a replay are refused; ES256 ID token and signed UserInfo', async () => {
  const key = await clientKeyPair({ name: 'ECDSA', namedCurve: 'P-256' }, 'ES256', 'rp-es256-1');
  const { config, log } = await rp('dynamic registration of a private_key_jwt client', () =>
    registerClient(
      {
        client_name: 'openid-client (private_key_jwt)',
        token_endpoint_auth_method: 'private_key_jwt',
        token_endpoint_auth_signing_alg: 'ES256',
        jwks: { keys: [key.jwk] },
        id_token_signed_response_alg: 'ES256',
        userinfo_signed_response_alg: 'ES256',
      },
      client.PrivateKeyJwt({ key: key.privateKey, kid: key.kid }),
    ),
  );
  const registered = config.clientMetadata();
  assert.equal(registered.client_secret, undefined, 'no secret for a private_key_jwt client');
  assert.equal(registered.token_endpoint_auth_method, 'private_key_jwt');
  assert.equal(registered.id_token_signed_response_alg, 'ES256');
  assert.equal(registered.userinfo_signed_response_alg, 'ES256');

  const flow = await authorize(config, { redirectUri: REGISTERED_CALLBACK, consent: 'accept' });
  // Signed by another key under the registered kid: refused, and the code is not spent.
  const foreign = await clientKeyPair({ name: 'ECDSA', namedCurve: 'P-256' }, 'ES256', key.kid);
  const impostor = configurationOf(config, client.PrivateKeyJwt({ key: foreign.privateKey, kid: key.kid }));
  const refused = await refusedWith(client.authorizationCodeGrant(impostor, flow.callback, checksOf(flow)), 'invalid_client', 'an assertion signed by a key the client never registered');
  assert.equal(refused.status, 401);
  // A secret instead of the assertion: refused too.
  const withSecret = configurationOf(config, client.ClientSecretPost('guessed-secret'));
  await refusedWith(client.authorizationCodeGrant(withSecret, flow.callback, checksOf(flow)), 'invalid_client', 'client_secret_post from a private_key_jwt client');

  const tokens = await redeem(config, flow);
  const { request, form } = lastTokenRequest(log);
  assert.equal(request.headers.get('authorization'), null, 'no HTTP Basic');
  assert.ok(!form.has('client_secret'), 'no secret in the body');
  assert.equal(form.get('client_assertion_type'), ASSERTION_TYPE);
  const assertion = decodeJwt(form.get('client_assertion'));
  assert.equal(assertion.header.alg, 'ES256');
  assert.equal(assertion.header.kid, key.kid);
  assert.equal(assertion.payload.iss, registered.client_id);
  assert.equal(assertion.payload.sub, registered.client_id);
  assert.equal(assertion.payload.aud, ISSUER, 'openid-client addresses its assertions to the issuer');
  const claims = checkIdToken(tokens, registered.client_id, flow, { alg: 'ES256' });

  // Signed UserInfo: application/jwt, verified by openid-client against the JWKS.
  const userinfo = await rp('signed UserInfo (fetchUserInfo)', () => client.fetchUserInfo(config, tokens.access_token, claims.sub));
  const answer = log.filter((r) => r.url === metadata.userinfo_endpoint).at(-1);
  assert.match(answer.responseHeaders.get('content-type') ?? '', /^application\/jwt/);
  assert.equal(userinfo.sub, claims.sub);
  assert.equal(userinfo.iss, ISSUER);
  assert.equal(userinfo.aud, registered.client_id);
  assert.deepEqual(userinfo.children, claims.children);

  // The assertion of the code exchange, presented again: refused (jti is single-use).
  const replay = await fetch(metadata.introspection_endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: tokens.access_token, client_id: registered.client_id, client_assertion_type: ASSERTION_TYPE, client_assertion: form.get('client_assertion') }),
  });
  assert.equal(replay.status, 401, 'a replayed client assertion');
  assert.equal((await replay.json()).error, 'invalid_client');
  // A fresh assertion (openid-client signs one per request) works at introspection and revocation.
  const live = await rp('introspection with private_key_jwt', () => client.tokenIntrospection(config, tokens.access_token));
  assert.equal(live.active, true);
  assert.equal(live.sub, claims.sub);
  await rp('revocation with private_key_jwt', () => client.tokenRevocation(config, tokens.access_token));
  const revoked = await rp('introspection after revocation', () => client.tokenIntrospection(config, tokens.access_token));
  assert.equal(revoked.active, false);
});

test('private_key_jwt (Ed25519 key, alg EdDSA): an EdDSA ID token verified by openid-client', async () => {
  const key = await clientKeyPair({ name: 'Ed25519' }, 'EdDSA', 'rp-ed25519-1');
  // openid-client names an Ed25519 signature "Ed25519" (RFC 9864); Clef advertises "EdDSA".
  const auth = client.PrivateKeyJwt({ key: key.privateKey, kid: key.kid }, { [client.modifyAssertion]: (header) => { header.alg = 'EdDSA'; } });
  const { config, log } = await rp('dynamic registration of an EdDSA private_key_jwt client', () =>
    registerClient(
      {
        client_name: 'openid-client (EdDSA)',
        token_endpoint_auth_method: 'private_key_jwt',
        token_endpoint_auth_signing_alg: 'EdDSA',
        jwks: { keys: [key.jwk] },
        id_token_signed_response_alg: 'EdDSA',
      },
      auth,
    ),
  );
  const registered = config.clientMetadata();
  const flow = await authorize(config, { redirectUri: REGISTERED_CALLBACK, consent: 'accept' });
  const tokens = await redeem(config, flow);
  const { form } = lastTokenRequest(log);
  assert.equal(decodeJwt(form.get('client_assertion')).header.alg, 'EdDSA');
  checkIdToken(tokens, registered.client_id, flow, { alg: 'EdDSA' });
});

test('private_key_jwt with an Ed25519 key as openid-client signs it by default (alg "Ed25519", RFC 9864): accepted like EdDSA, with or without token_endpoint_auth_signing_alg', async () => {
  const key = await clientKeyPair({ name: 'Ed25519' }, 'EdDSA', 'rp-ed25519-2');
  // openid-client's own header, untouched: no modifyAssertion.
  const auth = client.PrivateKeyJwt({ key: key.privateKey, kid: key.kid });
  for (const declared of [{}, { token_endpoint_auth_signing_alg: 'EdDSA' }]) {
    const { config, log } = await rp(`dynamic registration of an Ed25519 private_key_jwt client ${JSON.stringify(declared)}`, () =>
      registerClient({ client_name: 'openid-client (Ed25519)', token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [key.jwk] }, ...declared }, auth),
    );
    const registered = config.clientMetadata();
    const flow = await authorize(config, { redirectUri: REGISTERED_CALLBACK, consent: 'accept' });
    const tokens = await redeem(config, flow);
    const { request, form } = lastTokenRequest(log);
    assert.equal(request.status, 200);
    assert.equal(form.get('client_assertion_type'), ASSERTION_TYPE);
    const assertion = decodeJwt(form.get('client_assertion'));
    assert.equal(assertion.header.alg, 'Ed25519', "openid-client's default name for an Ed25519 signature");
    assert.equal(assertion.header.kid, key.kid);
    checkIdToken(tokens, registered.client_id, flow);
    // Another endpoint, another assertion by the same default: introspection.
    const live = await rp('introspection with an Ed25519 assertion', () => client.tokenIntrospection(config, tokens.access_token));
    assert.equal(live.active, true);
  }
});

// ---------------------- pushed authorization requests (RFC 9126), request objects (RFC 9101)

/** The requests to the PAR endpoint in a log. */
function parRequests(log) {
  return log.filter((r) => r.url === metadata.pushed_authorization_request_endpoint);
}

/** The names of a URL's query parameters, sorted. */
function queryNames(url) {
  return [...new URL(url).searchParams.keys()].sort();
}

/** What Clef shows a person whose authorization URL it refuses: a 400 page, no redirect. */
async function assertErrorPage(response, what) {
  const text = await response.text();
  assert.equal(response.status, 400, `${what}: expected Clef's error page (400), got ${response.status} ${response.headers.get('location') ?? ''} ${text.replace(/\s+/g, ' ').slice(0, 300)}`);
  assert.equal(response.headers.get('location'), null, `${what}: no redirect`);
  assert.match(response.headers.get('content-type') ?? '', /^text\/html/);
  return text;
}

test('PAR (RFC 9126), confidential client: openid-client pushes the request (client_secret_basic, then client_secret_post); the URL carries only client_id and request_uri; code, ID token, nonce; the request_uri is single-use', async () => {
  const { basic, post } = need();
  assert.equal(metadata.pushed_authorization_request_endpoint, `${ISSUER}/par`, 'discovery advertises the PAR endpoint');

  const before = parRequests(sent.basic).length;
  const flow = await authorize(basic, { redirectUri: CONFIDENTIAL_CALLBACK, build: pushedUrl });
  // The push: an authenticated POST holding every parameter; 201 with the request_uri.
  const pushes = parRequests(sent.basic).slice(before);
  assert.equal(pushes.length, 1, 'one request to the PAR endpoint');
  const [push] = pushes;
  assert.equal(push.method, 'POST');
  assert.deepEqual(basicCredentials(push.headers.get('authorization')), [CONFIDENTIAL.id, CONFIDENTIAL.secret], 'the push is authenticated with HTTP Basic');
  const pushed = new URLSearchParams(push.body);
  assert.ok(!pushed.has('client_secret'));
  for (const name of ['redirect_uri', 'scope', 'state', 'nonce', 'code_challenge', 'code_challenge_method']) {
    assert.equal(pushed.get(name), flow.parameters[name], `${name} was pushed`);
  }
  assert.equal(pushed.get('response_type'), 'code');
  assert.equal(push.status, 201, 'RFC 9126 §2.2: 201 Created');
  assert.match(push.responseHeaders.get('cache-control') ?? '', /no-store/, 'RFC 9126 §2.2: the answer is not cached');
  const answer = await push.responseJson();
  assert.match(answer.request_uri, /^urn:ietf:params:oauth:request_uri:[A-Za-z0-9_-]{16,}$/);
  assert.equal(answer.expires_in, 60);

  // The front channel carries nothing but the reference.
  assert.deepEqual(queryNames(flow.url), ['client_id', 'request_uri']);
  assert.equal(flow.url.searchParams.get('client_id'), CONFIDENTIAL.id);
  assert.equal(flow.url.searchParams.get('request_uri'), answer.request_uri);
  assert.equal(flow.browser.logins, 1, 'the login form was shown and filled');
  assert.equal(flow.callback.searchParams.get('state'), flow.state, 'the pushed state comes back');
  assert.equal(flow.callback.searchParams.get('iss'), ISSUER);

  const tokens = await redeem(basic, flow);
  const claims = checkIdToken(tokens, CONFIDENTIAL.id, flow);
  assert.equal(claims.nonce, flow.nonce, 'the pushed nonce is in the ID token');
  assert.equal(claims.preferred_username, PARENT.identifier);
  checkChildren(claims.children);

  // The same authorization URL again: the request_uri was used. Even in the
  // signed-in browser (which would get a code at once), Clef shows an error page.
  await assertErrorPage(await flow.browser.request(flow.url), 'the used request_uri, in the signed-in browser');
  await assertErrorPage(await new Browser(ISSUER).request(flow.url), 'the used request_uri, in a fresh browser');

  // client_secret_post: the secret in the pushed body; the SSO session answers at once.
  const viaPost = await authorize(post, { browser: flow.browser, account: null, redirectUri: CONFIDENTIAL_CALLBACK, scope: 'openid', build: pushedUrl });
  const postPush = parRequests(sent.post).at(-1);
  assert.equal(postPush.status, 201);
  assert.equal(postPush.headers.get('authorization'), null, 'no HTTP Basic with client_secret_post');
  const postForm = new URLSearchParams(postPush.body);
  assert.equal(postForm.get('client_id'), CONFIDENTIAL.id);
  assert.equal(postForm.get('client_secret'), CONFIDENTIAL.secret);
  assert.deepEqual(queryNames(viaPost.url), ['client_id', 'request_uri']);
  assert.equal(flow.browser.logins, 1, 'the SSO session answered the second pushed request');
  const again = checkIdToken(await redeem(post, viaPost), CONFIDENTIAL.id, viaPost);
  assert.equal(again.sub, claims.sub);

  // A request_uri is the pushing client's: presented under another client_id, it is refused.
  const stolen = await pushedUrl(basic, { redirect_uri: CONFIDENTIAL_CALLBACK, scope: 'openid', state: client.randomState(), nonce: client.randomNonce(), code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()), code_challenge_method: 'S256' });
  const elsewhere = new URL(stolen);
  elsewhere.searchParams.set('client_id', PUBLIC_ID);
  await assertErrorPage(await flow.browser.request(elsewhere), "a request_uri presented under another client's id");

  // A push with a wrong secret: invalid_client, and no request_uri.
  const wrong = await discover(CONFIDENTIAL.id, 'not-the-secret', client.ClientSecretBasic('not-the-secret'), []);
  const refused = await refusedWith(client.buildAuthorizationUrlWithPAR(wrong, { redirect_uri: CONFIDENTIAL_CALLBACK, scope: 'openid' }), 'invalid_client', 'a push with a wrong client secret');
  assert.equal(refused.status, 401);
});

test('PAR (RFC 9126), private_key_jwt client: openid-client authenticates the push with a signed assertion; the flow completes; a replayed or foreign assertion is refused at /par', async () => {
  const key = await clientKeyPair({ name: 'ECDSA', namedCurve: 'P-256' }, 'ES256', 'rp-par-es256-1');
  const { config, log } = await rp('dynamic registration of a private_key_jwt client for PAR', () =>
    registerClient(
      { client_name: 'openid-client (PAR, private_key_jwt)', token_endpoint_auth_method: 'private_key_jwt', token_endpoint_auth_signing_alg: 'ES256', jwks: { keys: [key.jwk] } },
      client.PrivateKeyJwt({ key: key.privateKey, kid: key.kid }),
    ),
  );
  const registered = config.clientMetadata();

  const flow = await authorize(config, { redirectUri: REGISTERED_CALLBACK, consent: 'accept', build: pushedUrl });
  const [push] = parRequests(log);
  assert.ok(push, 'openid-client pushed the request');
  assert.equal(push.status, 201);
  assert.equal(push.headers.get('authorization'), null, 'no HTTP Basic');
  const pushed = new URLSearchParams(push.body);
  assert.ok(!pushed.has('client_secret'), 'no secret in the push');
  assert.equal(pushed.get('client_id'), registered.client_id);
  assert.equal(pushed.get('client_assertion_type'), ASSERTION_TYPE);
  const assertion = decodeJwt(pushed.get('client_assertion'));
  assert.equal(assertion.header.alg, 'ES256');
  assert.equal(assertion.header.kid, key.kid);
  assert.equal(assertion.payload.iss, registered.client_id);
  assert.equal(assertion.payload.sub, registered.client_id);
  assert.equal(assertion.payload.aud, ISSUER, 'openid-client addresses its assertions to the issuer (RFC 9126 §2)');
  assert.deepEqual(queryNames(flow.url), ['client_id', 'request_uri']);
  assert.equal(flow.browser.consents, 1, 'the consent page was shown');

  const tokens = await redeem(config, flow);
  const claims = checkIdToken(tokens, registered.client_id, flow);
  assert.equal(claims.nonce, flow.nonce);
  checkChildren(claims.children, { thirdParty: true });
  const { form } = lastTokenRequest(log);
  assert.notEqual(form.get('client_assertion'), pushed.get('client_assertion'), 'a fresh assertion for the token request');

  // The push's assertion, presented again to /par: its jti was used.
  const replayBody = new URLSearchParams(push.body);
  replayBody.set('state', client.randomState());
  const replay = await fetch(metadata.pushed_authorization_request_endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: replayBody,
  });
  assert.equal(replay.status, 401, 'a replayed client assertion at /par');
  assert.equal((await replay.json()).error, 'invalid_client');

  // An assertion signed by another key under the registered kid.
  const foreign = await clientKeyPair({ name: 'ECDSA', namedCurve: 'P-256' }, 'ES256', key.kid);
  const impostor = configurationOf(config, client.PrivateKeyJwt({ key: foreign.privateKey, kid: key.kid }));
  const refused = await refusedWith(client.buildAuthorizationUrlWithPAR(impostor, { redirect_uri: REGISTERED_CALLBACK, scope: 'openid' }), 'invalid_client', 'a push signed by a key the client never registered');
  assert.equal(refused.status, 401);
});

test('request objects (JAR, RFC 9101): openid-client signs the parameters with a key of the registered jwks (RS256); the URL carries only client_id and request; the flow completes; pushed as well; a foreign signature is refused', async () => {
  const { privateKey, publicKey } = await crypto.subtle.generateKey(
    { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
    true,
    ['sign', 'verify'],
  );
  const kid = 'rp-jar-rs256-1';
  const key = { privateKey, kid, jwk: { ...(await crypto.subtle.exportKey('jwk', publicKey)), kid, alg: 'RS256', use: 'sig' } };
  delete key.jwk.key_ops;
  delete key.jwk.ext;
  const { config, log } = await rp('dynamic registration of a client with a jwks for request objects', () =>
    registerClient(
      { client_name: 'openid-client (JAR)', token_endpoint_auth_method: 'private_key_jwt', token_endpoint_auth_signing_alg: 'RS256', jwks: { keys: [key.jwk] } },
      client.PrivateKeyJwt({ key: privateKey, kid }),
    ),
  );
  const registered = config.clientMetadata();

  const flow = await authorize(config, { redirectUri: REGISTERED_CALLBACK, consent: 'accept', build: signedUrl(key) });
  assert.deepEqual(queryNames(flow.url), ['client_id', 'request'], 'the authorization URL carries the request object alone');
  assert.equal(flow.url.searchParams.get('client_id'), registered.client_id);
  const object = decodeJwt(flow.url.searchParams.get('request'));
  assert.equal(object.header.alg, 'RS256');
  assert.equal(object.header.kid, kid);
  assert.equal(object.header.typ, 'oauth-authz-req+jwt');
  assert.equal(object.payload.iss, registered.client_id);
  assert.equal(object.payload.aud, ISSUER);
  assert.equal(object.payload.client_id, registered.client_id);
  for (const name of ['redirect_uri', 'scope', 'state', 'nonce', 'code_challenge']) {
    assert.equal(object.payload[name], flow.parameters[name], `${name} is in the request object`);
  }
  assert.equal(flow.callback.searchParams.get('state'), flow.state, 'the signed state comes back');
  const tokens = await redeem(config, flow);
  const claims = checkIdToken(tokens, registered.client_id, flow);
  assert.equal(claims.nonce, flow.nonce, 'the signed nonce is in the ID token');
  checkChildren(claims.children, { thirdParty: true });

  // The request object pushed (RFC 9126 §3): JAR, then PAR, in the signed-in browser.
  const both = (cfg, parameters) => signedUrl(key)(cfg, parameters).then((url) => pushedUrl(cfg, url.searchParams));
  const pushedObject = await authorize(config, { browser: flow.browser, account: null, redirectUri: REGISTERED_CALLBACK, consent: 'accept', build: both });
  const push = parRequests(log).at(-1);
  assert.equal(push.status, 201);
  assert.ok(new URLSearchParams(push.body).has('request'), 'the request object was pushed');
  assert.deepEqual(queryNames(pushedObject.url), ['client_id', 'request_uri']);
  assert.equal(flow.browser.logins, 1);
  assert.equal(checkIdToken(await redeem(config, pushedObject), registered.client_id, pushedObject).sub, claims.sub);

  // Signed by a key that is not the client's (same kid): refused. The redirect_uri
  // is inside the unverified object, so Clef shows the error instead of redirecting.
  const { privateKey: foreign } = await crypto.subtle.generateKey(
    { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
    true,
    ['sign', 'verify'],
  );
  const forged = await signedUrl({ privateKey: foreign, kid })(config, { redirect_uri: REGISTERED_CALLBACK, scope: 'openid', state: client.randomState(), nonce: client.randomNonce() });
  await assertErrorPage(await flow.browser.request(forged), 'a request object signed by a foreign key');
});

test('request objects signed with an Ed25519 key as openid-client signs them by default (alg "Ed25519", RFC 9864, advertised in request_object_signing_alg_values_supported): the flow completes', async () => {
  assert.ok(metadata.request_object_signing_alg_values_supported?.includes('Ed25519'), `discovery advertises Ed25519 request objects: ${metadata.request_object_signing_alg_values_supported}`);
  const key = await clientKeyPair({ name: 'Ed25519' }, 'EdDSA', 'rp-jar-ed25519-1');
  const { config } = await rp('dynamic registration of a client with an Ed25519 key for request objects', () =>
    registerClient({ client_name: 'openid-client (JAR, Ed25519)', token_endpoint_auth_method: 'private_key_jwt', token_endpoint_auth_signing_alg: 'EdDSA', jwks: { keys: [key.jwk] } }, client.PrivateKeyJwt({ key: key.privateKey, kid: key.kid }, { [client.modifyAssertion]: (header) => { header.alg = 'EdDSA'; } })),
  );
  const registered = config.clientMetadata();
  // No modifyAssertion for the request object: openid-client's own header.
  const flow = await authorize(config, { redirectUri: REGISTERED_CALLBACK, consent: 'accept', build: signedUrl(key) });
  assert.equal(decodeJwt(flow.url.searchParams.get('request')).header.alg, 'Ed25519');
  checkIdToken(await redeem(config, flow), registered.client_id, flow);
});
