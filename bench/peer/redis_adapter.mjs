// A Redis adapter for oidc-provider on ioredis, laid out as the Redis adapter of
// oidc-provider's examples (example/adapters/redis.js): one key per model instance,
// JSON in a string, or in a hash field for the models consumed once (codes, refresh
// tokens, device codes) so that `consume` marks them in place; a list per grant naming
// its tokens for revokeByGrantId; uid and userCode indexes. Written for the benchmark,
// with a key prefix so runs do not collide, and no lodash.
import Redis from 'ioredis';

const consumable = new Set(['AuthorizationCode', 'RefreshToken', 'DeviceCode']);

export function redisAdapter(url, prefix) {
  const client = new Redis(url, { keyPrefix: prefix });

  const grantKey = (id) => `grant:${id}`;
  const userCodeKey = (code) => `userCode:${code}`;
  const uidKey = (uid) => `uid:${uid}`;

  return class RedisAdapter {
    constructor(name) {
      this.name = name;
    }

    key(id) {
      return `${this.name}:${id}`;
    }

    async upsert(id, payload, expiresIn) {
      const key = this.key(id);
      const multi = client.multi();
      if (consumable.has(this.name)) {
        multi.hset(key, { payload: JSON.stringify(payload) });
      } else {
        multi.set(key, JSON.stringify(payload));
      }
      if (expiresIn) multi.expire(key, expiresIn);

      if (payload.grantId) {
        const list = grantKey(payload.grantId);
        multi.rpush(list, key);
        const ttl = await client.ttl(list);
        if (expiresIn > ttl) multi.expire(list, expiresIn);
      }
      if (payload.userCode) {
        multi.set(userCodeKey(payload.userCode), id);
        multi.expire(userCodeKey(payload.userCode), expiresIn);
      }
      if (payload.uid) {
        multi.set(uidKey(payload.uid), id);
        multi.expire(uidKey(payload.uid), expiresIn);
      }
      await multi.exec();
    }

    async find(id) {
      if (!id) return undefined;
      if (consumable.has(this.name)) {
        const data = await client.hgetall(this.key(id));
        if (!data || !data.payload) return undefined;
        const { payload, ...rest } = data;
        const found = { ...JSON.parse(payload) };
        if (rest.consumed) found.consumed = Number(rest.consumed);
        return found;
      }
      const data = await client.get(this.key(id));
      return data ? JSON.parse(data) : undefined;
    }

    async findByUid(uid) {
      return this.find(await client.get(uidKey(uid)));
    }

    async findByUserCode(userCode) {
      return this.find(await client.get(userCodeKey(userCode)));
    }

    async destroy(id) {
      await client.del(this.key(id));
    }

    // eslint-disable-next-line class-methods-use-this
    async revokeByGrantId(grantId) {
      const tokens = await client.lrange(grantKey(grantId), 0, -1);
      const multi = client.multi();
      // The list holds the keys unprefixed (values are not prefixed); ioredis prefixes them here.
      for (const token of tokens) multi.del(token);
      multi.del(grantKey(grantId));
      await multi.exec();
    }

    async consume(id) {
      await client.hset(this.key(id), 'consumed', Math.floor(Date.now() / 1000));
    }
  };
}
