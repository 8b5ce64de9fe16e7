// argon2id verifications per second with the peer's package (`argon2`, Clef's parameters),
// one at a time, for bench/compare.sh: the peer's own bound for a login. Usage:
//   node argon2_rate.mjs [seconds]   → one line of JSON
import argon2 from 'argon2';

const seconds = Number(process.argv[2] ?? 5);
const options = { type: argon2.argon2id, memoryCost: 19456, timeCost: 2, parallelism: 1 };
const hash = await argon2.hash('Demo2026clef', options);
const start = process.hrtime.bigint();
let n = 0;
let elapsed = 0;
while (elapsed < seconds) {
  if (!(await argon2.verify(hash, 'Demo2026clef'))) throw new Error('verify failed');
  n += 1;
  elapsed = Number(process.hrtime.bigint() - start) / 1e9;
}
console.log(JSON.stringify({
  bound: 'argon2id-node',
  package: `argon2 (npm), ${hash.split('$')[3]}`,
  hashes: n,
  seconds: Math.round(elapsed * 1000) / 1000,
  per_s: Math.round((n / elapsed) * 100) / 100,
  ms_each: Math.round((elapsed * 1000 / n) * 100) / 100,
}));
