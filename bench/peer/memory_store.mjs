// The peer's "default in-memory adapter", unbounded. oidc-provider's built-in memory adapter
// keeps everything in an LRU of 1,000 entries (lib/helpers/lru.js), so sessions, grants and
// codes minted ahead for the benchmark are evicted after 1,000 writes and the code
// exchange fails with invalid_grant. This gives the same adapter class (the package's own
// lib/adapters/memory_adapter.js) a plain Map with the LRU's interface and expiry, and no
// size limit: what Clef's in-process store is. Expired entries go on reading, and every
// 30 s in a sweep.
import MemoryAdapter from 'oidc-provider/lib/adapters/memory_adapter.js';

class UnboundedStore {
  #entries = new Map();

  constructor() {
    setInterval(() => this.sweep(), 30_000).unref();
  }

  sweep() {
    const now = Date.now();
    for (const [key, entry] of this.#entries) {
      if (entry.expiry !== undefined && entry.expiry <= now) this.#entries.delete(key);
    }
  }

  get(key) {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    if (entry.expiry !== undefined && entry.expiry <= Date.now()) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  has(key) {
    return this.get(key) !== undefined;
  }

  set(key, value, { maxAge } = {}) {
    const expiry = typeof maxAge === 'number' ? Date.now() + maxAge : undefined;
    this.#entries.set(key, { value, expiry });
    return this;
  }

  delete(key) {
    return this.#entries.delete(key);
  }
}

export function memoryAdapter() {
  const store = new UnboundedStore();
  return (model) => new MemoryAdapter(model, store);
}
