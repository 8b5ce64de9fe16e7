// panva's oidc-provider configured like Clef for bench/compare.sh (issue 12, item 5).
//
// One RS256 signing key (RSA-2048, generated at start), one confidential client
// (client_secret_basic, PKCE S256 required, the same redirect URI as Clef's bench client),
// refresh tokens rotated on every use, ID tokens carrying the profile claims, no dev
// interactions: a custom login form whose POST verifies an argon2id hash with Clef's
// parameters (m=19456 KiB, t=2, p=1, the npm package `argon2`), and consent granted
// without a page for the bench client (loadExistingGrant), as Clef does for a first-party
// client. Storage: the package's in-memory adapter on an unbounded store (memory_store.mjs:
// the built-in one evicts past 1,000 entries), or Redis when REDIS_URL is set.
//
// Environment: PORT, ISSUER, ACCOUNTS_FILE (JSON [{identifier, hash}] from `load hashes`),
// CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, CODE_TTL (seconds, default 60), REDIS_URL,
// REDIS_PREFIX. Prints "listening" when ready.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';

import argon2 from 'argon2';
import Provider from 'oidc-provider';

import { memoryAdapter } from './memory_store.mjs';
import { redisAdapter } from './redis_adapter.mjs';

const env = (name, fallback) => {
  const value = process.env[name];
  if (value === undefined || value === '') {
    if (fallback === undefined) throw new Error(`${name} is required`);
    return fallback;
  }
  return value;
};

const PORT = Number(env('PORT', '3000'));
const ISSUER = env('ISSUER', `http://127.0.0.1:${PORT}`);
const CLIENT_ID = env('CLIENT_ID', 'bench');
const CLIENT_SECRET = env('CLIENT_SECRET');
const REDIRECT_URI = env('REDIRECT_URI');
const CODE_TTL = Number(env('CODE_TTL', '60'));

// Accounts: identifier → PHC string, as Clef keeps them (argon2id, m=19456, t=2, p=1).
const accounts = new Map();
for (const { identifier, hash } of JSON.parse(readFileSync(env('ACCOUNTS_FILE'), 'utf8'))) {
  accounts.set(identifier, {
    hash,
    claims: {
      given_name: 'Camille',
      family_name: 'Tempete',
      name: 'Camille Tempete',
      email: `${identifier}@example.org`,
      email_verified: true,
    },
  });
}
// An unknown identifier still costs one verification, as in Clef (no enumeration by timing).
const dummyHash = accounts.values().next().value?.hash;

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'bench-rs256', alg: 'RS256', use: 'sig' };

const configuration = {
  clients: [{
    client_id: CLIENT_ID,
    client_secret: CLIENT_SECRET,
    client_name: 'Bench',
    redirect_uris: [REDIRECT_URI],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: 'RS256',
  }],
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  claims: {
    openid: ['sub'],
    profile: ['given_name', 'family_name', 'name'],
    email: ['email', 'email_verified'],
  },
  scopes: ['openid', 'offline_access', 'profile', 'email'],
  // Clef puts the claims of the granted scopes in the ID token.
  conformIdTokenClaims: false,
  features: {
    devInteractions: { enabled: false },
    claimsParameter: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    userinfo: { enabled: true },
    rpInitiatedLogout: { enabled: true },
  },
  pkce: { required: () => true },
  // Clef issues refresh tokens to a first-party client whatever the scope; the default here
  // wants offline_access, which oidc-provider only keeps with prompt=consent (a consent
  // interaction per authorization). This mirrors the first-party rule instead.
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  // Clef spends a refresh token on every use and returns a new one.
  rotateRefreshToken: () => true,
  // Consent without a page for the bench client, as for a Clef first-party client.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) {
      const grant = await ctx.oidc.provider.Grant.find(grantId);
      if (grant) return grant;
    }
    if (ctx.oidc.client.clientId !== CLIENT_ID) return undefined;
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid profile email offline_access');
    await grant.save();
    return grant;
  },
  async findAccount(_ctx, id) {
    const account = accounts.get(id);
    if (!account) return undefined;
    return { accountId: id, claims: async () => ({ sub: id, ...account.claims }) };
  },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  // Clef's defaults (README, Configuration), the code's from CODE_TTL.
  ttl: {
    AuthorizationCode: CODE_TTL,
    AccessToken: 3600,
    IdToken: 3600,
    RefreshToken: 14 * 24 * 3600,
    Session: 43200,
    Grant: 90 * 24 * 3600,
    Interaction: 3600,
  },
};

configuration.adapter = process.env.REDIS_URL
  ? redisAdapter(process.env.REDIS_URL, env('REDIS_PREFIX', 'oidc:'))
  : memoryAdapter();

const provider = new Provider(ISSUER, configuration);
provider.proxy = false;

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const page = (uid, identifier = '', error = '') => `<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><title>Connexion</title></head>
<body><main><h1>Connexion</h1>
${error ? `<p role="alert">${escape(error)}</p>` : ''}
<form method="post" action="/interaction/${escape(uid)}/login" novalidate>
  <label for="identifier">Identifiant</label>
  <input type="text" id="identifier" name="identifier" value="${escape(identifier)}" autocomplete="username" required>
  <label for="password">Mot de passe</label>
  <input type="password" id="password" name="password" autocomplete="current-password" maxlength="256" required>
  <button type="submit">Se connecter</button>
</form></main></body></html>`;

async function readForm(req) {
  let size = 0;
  const chunks = [];
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 16 * 1024) throw new Error('form too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

const INTERACTION = /^\/interaction\/([A-Za-z0-9_-]+)(\/login)?$/;

provider.use(async (ctx, next) => {
  const match = INTERACTION.exec(ctx.path);
  if (!match) return next();
  ctx.set('cache-control', 'no-store');
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  if (details.uid !== match[1] || details.prompt.name !== 'login') {
    ctx.status = 400;
    ctx.body = 'unexpected interaction';
    return undefined;
  }
  if (ctx.method === 'GET' && !match[2]) {
    ctx.type = 'html';
    ctx.body = page(details.uid, details.params.login_hint ?? '');
    return undefined;
  }
  if (ctx.method === 'POST' && match[2]) {
    const form = await readForm(ctx.req);
    const identifier = form.get('identifier') ?? '';
    const password = form.get('password') ?? '';
    const account = accounts.get(identifier);
    const ok = await argon2.verify(account?.hash ?? dummyHash, password) && account !== undefined;
    if (!ok) {
      ctx.status = 401;
      ctx.type = 'html';
      ctx.body = page(details.uid, identifier, 'Identifiant ou mot de passe incorrect.');
      return undefined;
    }
    const returnTo = await provider.interactionResult(ctx.req, ctx.res, {
      login: { accountId: identifier, amr: ['pwd'] },
    }, { mergeWithLastSubmission: false });
    ctx.status = 303;
    ctx.redirect(returnTo);
    return undefined;
  }
  return next();
});

const server = provider.listen(PORT, '127.0.0.1', () => {
  console.log(`listening on ${ISSUER} (${process.env.REDIS_URL ? 'redis' : 'memory'} adapter, ${accounts.size} accounts)`);
});
// Keep-alive connections stay open between the benchmark's phases, as Clef's do (10 s).
server.keepAliveTimeout = 65_000;
server.headersTimeout = 66_000;
