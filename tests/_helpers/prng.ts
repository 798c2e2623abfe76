/**
 * A small seeded PRNG (mulberry32) for reproducible property-style tests.
 */
export class Prng {
  #s: number

  constructor(seed: number) {
    this.#s = seed >>> 0
  }

  /** A float in [0, 1). */
  next(): number {
    this.#s = (this.#s + 0x6d2b79f5) >>> 0
    let t = this.#s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }

  /** An integer in [lo, hi], both included. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1))
  }

  /** true with probability p. */
  chance(p: number): boolean {
    return this.next() < p
  }

  /** One element of a non-empty array. */
  pick<A>(xs: ReadonlyArray<A>): A {
    return xs[this.int(0, xs.length - 1)]
  }

  /** `n` random bytes. */
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n)
    for (let i = 0; i < n; i++) out[i] = this.int(0, 255)
    return out
  }

  /** A string of `n` bytes in [lo, hi]. */
  chars(n: number, lo = 0x24, hi = 0x7e): string {
    let s = ""
    for (let i = 0; i < n; i++) s += String.fromCharCode(this.int(lo, hi))
    return s
  }
}
