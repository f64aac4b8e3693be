// Bit-exact ports of the two random-number generators the reference code uses (spec §1):
//
//   * MT19937, the 32-bit Mersenne Twister (Matsumoto & Nishimura, mt19937ar.c), shared by both.
//   * NumpyRandomState: numpy's legacy `np.random.RandomState(seed)` — integer seeding through
//     `init_genrand`, masked-rejection `randint(low, high)` and 53-bit `random()`. Used by the seven
//     algorithmic generators (one fresh RandomState per sample).
//   * PyRandom: CPython's `random.Random` — `seed(n)` through `init_by_array`, `getrandbits`,
//     `_randbelow` (rejection on getrandbits(bit_length(n))), `randint`, `randrange`, `choice`,
//     `shuffle` and `random()`. Used by Dyck / Dyck-shuffle and by the downstream tasks (§6).
//
// Every method consumes exactly the same 32-bit words, in the same order, as numpy 2.4 / CPython 3.11,
// which is what makes the §11 test vectors reproducible. Nothing else in the method depends on the PRNG.

const N = 624;
const M = 397;
const MATRIX_A = 0x9908b0df;
const UPPER_MASK = 0x80000000;
const LOWER_MASK = 0x7fffffff;
const TWO_POW_32 = 4294967296;
const TWO_POW_26 = 67108864;
const TWO_POW_53 = 9007199254740992;

/** Snapshot of an MT19937 state (e.g. to checkpoint a Dyck data stream). */
export interface MT19937State {
  key: Uint32Array;
  pos: number;
}

/** 32-bit Mersenne Twister, identical to mt19937ar.c / CPython's _randommodule.c / numpy's mt19937. */
export class MT19937 {
  // The state words are kept as Int32Array: V8 then keeps every intermediate in int32 registers
  // (Uint32Array loads of values >= 2^31 would box doubles), which measured faster (docs/performance.md,
  // "Host code"); the bits are the same.
  private readonly mt = new Int32Array(N);
  private mti = N + 1;

  /** Seeds with `init_genrand(seed)`; without a seed, 5489 (the mt19937ar.c default). */
  constructor(seed?: number) {
    this.initGenrand(seed ?? 5489);
  }

  /** Classic `init_genrand`: the seeding numpy's legacy RandomState(int) uses. */
  initGenrand(seed: number): void {
    const mt = this.mt;
    mt[0] = seed >>> 0;
    for (let i = 1; i < N; i++) {
      const prev = mt[i - 1] ^ (mt[i - 1] >>> 30);
      // 1812433253 * prev + i (mod 2^32); Math.imul keeps the product exact in 32 bits.
      mt[i] = (Math.imul(1812433253, prev) + i) >>> 0;
    }
    this.mti = N;
  }

  /** `init_by_array(key)`: the seeding CPython's random.seed(int) uses. */
  initByArray(key: ArrayLike<number>): void {
    if (key.length === 0) throw new RangeError('init_by_array needs a non-empty key');
    const mt = this.mt;
    this.initGenrand(19650218);
    let i = 1;
    let j = 0;
    for (let k = Math.max(N, key.length); k > 0; k--) {
      const prev = mt[i - 1] ^ (mt[i - 1] >>> 30);
      // (mt[i] ^ (prev * 1664525)) + key[j] + j, mod 2^32 (non-linear step).
      mt[i] = ((mt[i] ^ Math.imul(prev, 1664525)) + (key[j] >>> 0) + j) >>> 0;
      i++;
      j++;
      if (i >= N) {
        mt[0] = mt[N - 1];
        i = 1;
      }
      if (j >= key.length) j = 0;
    }
    for (let k = N - 1; k > 0; k--) {
      const prev = mt[i - 1] ^ (mt[i - 1] >>> 30);
      mt[i] = ((mt[i] ^ Math.imul(prev, 1566083941)) - i) >>> 0;
      i++;
      if (i >= N) {
        mt[0] = mt[N - 1];
        i = 1;
      }
    }
    mt[0] = 0x80000000; // MSB is 1, assuring a non-zero initial array
    this.mti = N;
  }

  /** Regenerates the 624-word block. */
  private twist(): void {
    const mt = this.mt;
    let kk = 0;
    let y: number;
    for (; kk < N - M; kk++) {
      y = (mt[kk] & UPPER_MASK) | (mt[kk + 1] & LOWER_MASK);
      mt[kk] = mt[kk + M] ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0);
    }
    for (; kk < N - 1; kk++) {
      y = (mt[kk] & UPPER_MASK) | (mt[kk + 1] & LOWER_MASK);
      mt[kk] = mt[kk + (M - N)] ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0);
    }
    y = (mt[N - 1] & UPPER_MASK) | (mt[0] & LOWER_MASK);
    mt[N - 1] = mt[M - 1] ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0);
    this.mti = 0;
  }

  /** `genrand_uint32`: the next tempered 32-bit word, as a number in [0, 2^32). */
  nextU32(): number {
    if (this.mti >= N) this.twist();
    let y = this.mt[this.mti++];
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /** `genrand_res53`: a double in [0, 1) with 53 random bits (two words: a>>5, b>>6). */
  nextDouble(): number {
    const a = this.nextU32() >>> 5;
    const b = this.nextU32() >>> 6;
    return (a * TWO_POW_26 + b) / TWO_POW_53;
  }

  getState(): MT19937State {
    return { key: new Uint32Array(this.mt), pos: this.mti };
  }

  setState(state: MT19937State): void {
    if (state.key.length !== N || state.pos < 0 || state.pos > N) throw new RangeError('bad MT19937 state');
    this.mt.set(new Int32Array(state.key.buffer, state.key.byteOffset, N));
    this.mti = state.pos;
  }

  clone(): MT19937 {
    const c = new MT19937(0);
    c.setState(this.getState());
    return c;
  }
}

/** Smallest 2^k - 1 that is >= r (r < 2^32): numpy's `gen_mask`. */
function gen_mask(r: number): number {
  let m = r;
  m |= m >>> 1;
  m |= m >>> 2;
  m |= m >>> 4;
  m |= m >>> 8;
  m |= m >>> 16;
  return m >>> 0;
}

function assertInt(x: number, what: string): void {
  if (!Number.isSafeInteger(x)) throw new RangeError(`${what} must be a safe integer, got ${x}`);
}

/**
 * numpy's legacy `np.random.RandomState`, restricted to what the reference generators use.
 *
 * `randint(low, high)` (high exclusive, default dtype int64) with r = high-low-1:
 *   r == 0            -> returns low, consumes nothing;
 *   r <= 0xFFFFFFFF   -> masked rejection on 32-bit words: x = u32 & mask until x <= r;
 *   larger r (< 2^53) -> masked rejection on 64-bit words (hi word drawn first), as numpy does.
 * An array draw of size n is exactly n sequential scalar draws.
 */
export class NumpyRandomState {
  readonly mt: MT19937;

  constructor(seed: number) {
    this.mt = new MT19937(0);
    this.seed(seed);
  }

  /** `RandomState(seed)` / `.seed(seed)` for an integer seed in [0, 2^32). */
  seed(seed: number): void {
    assertInt(seed, 'seed');
    if (seed < 0 || seed >= TWO_POW_32) throw new RangeError(`Seed must be between 0 and 2**32 - 1, got ${seed}`);
    this.mt.initGenrand(seed);
  }

  /** One draw of `randint(low, high)`; high is exclusive. */
  randint(low: number, high: number): number;
  /** `randint(low, high, size=n)`: n sequential draws. */
  randint(low: number, high: number, size: number): number[];
  randint(low: number, high: number, size?: number): number | number[] {
    if (size === undefined) return this.drawBounded(low, high);
    assertInt(size, 'size');
    if (size < 0) throw new RangeError('negative size');
    const out: number[] = new Array(size);
    for (let i = 0; i < size; i++) out[i] = this.drawBounded(low, high);
    return out;
  }

  /**
   * Writes `randint(low, high, size=end-start)` into out[start..end) without allocating. This is the hot
   * path of the algorithmic generators (the range must fit in 32 bits).
   */
  fillRandint(out: Int32Array | number[], low: number, high: number, start = 0, end = out.length): void {
    assertInt(low, 'low');
    assertInt(high, 'high');
    if (high <= low) throw new RangeError(`low >= high (${low} >= ${high})`);
    const r = high - low - 1;
    if (r > 0xffffffff) {
      for (let i = start; i < end; i++) out[i] = this.drawBounded(low, high);
      return;
    }
    if (r === 0) {
      for (let i = start; i < end; i++) out[i] = low;
      return;
    }
    const mask = gen_mask(r);
    const mt = this.mt;
    for (let i = start; i < end; i++) {
      let x: number;
      do x = (mt.nextU32() & mask) >>> 0;
      while (x > r);
      out[i] = low + x;
    }
  }

  private drawBounded(low: number, high: number): number {
    assertInt(low, 'low');
    assertInt(high, 'high');
    if (high <= low) throw new RangeError(`low >= high (${low} >= ${high})`);
    const r = high - low - 1;
    if (r === 0) return low;
    if (r <= 0xffffffff) {
      const mask = gen_mask(r);
      let x: number;
      do x = (this.mt.nextU32() & mask) >>> 0;
      while (x > r);
      return low + x;
    }
    // 64-bit path: numpy draws next_uint64 = (u32 << 32) | u32 (high word first) and masks it.
    // With r < 2^53 the masked value stays exact in a double.
    const maskHi = gen_mask(Math.floor(r / TWO_POW_32));
    let x: number;
    do {
      const hi = (this.mt.nextU32() & maskHi) >>> 0;
      const lo = this.mt.nextU32();
      x = hi * TWO_POW_32 + lo;
    } while (x > r);
    return low + x;
  }

  /** `random_sample()` / `random()`: a double in [0, 1). */
  random(): number {
    return this.mt.nextDouble();
  }
}

/** Number of bits needed to represent a non-negative safe integer (Python's int.bit_length()). */
export function bitLength(n: number): number {
  if (n < TWO_POW_32) return 32 - Math.clz32(n);
  return 32 + bitLength(Math.floor(n / TWO_POW_32));
}

function bigBitLength(n: bigint): number {
  return n === 0n ? 0 : n.toString(2).length;
}

/** Splits |n| into 32-bit words, least significant first ([0] for 0): CPython's seeding key. */
export function seedKey(n: number | bigint): number[] {
  let v: bigint;
  if (typeof n === 'bigint') v = n;
  else {
    assertInt(n, 'seed');
    v = BigInt(n);
  }
  if (v < 0n) v = -v;
  if (v === 0n) return [0];
  const key: number[] = [];
  while (v > 0n) {
    key.push(Number(v & 0xffffffffn));
    v >>= 32n;
  }
  return key;
}

/**
 * CPython's `random.Random` (Mersenne Twister core + the pure-Python helpers of Lib/random.py, 3.11).
 *
 * Number-returning methods are exact up to 2^53; the BigInt variants cover arbitrary widths.
 */
export class PyRandom {
  readonly mt: MT19937;

  constructor(seed: number | bigint = 0) {
    this.mt = new MT19937(0);
    this.seed(seed);
  }

  /** `random.seed(n)` for an integer n (any size, sign ignored): `init_by_array(words of |n|)`. */
  seed(n: number | bigint): void {
    this.mt.initByArray(seedKey(n));
  }

  /** Seeds directly from a key of 32-bit words (equivalent to seed(sum key[i] << 32i)). */
  seedByArray(key: ArrayLike<number>): void {
    this.mt.initByArray(key);
  }

  /** `random()`: a double in [0, 1). */
  random(): number {
    return this.mt.nextDouble();
  }

  /**
   * `getrandbits(k)` as a number, for 0 <= k <= 53. For k <= 32 this is u32 >> (32-k); for k > 32,
   * ceil(k/32) words are drawn least significant first, and the last is shifted right by 32 - k%32.
   */
  getrandbits(k: number): number {
    assertInt(k, 'k');
    if (k < 0) throw new RangeError('number of bits must be non-negative');
    if (k > 53) throw new RangeError(`getrandbits(${k}) does not fit a number; use getrandbitsBigInt`);
    if (k === 0) return 0;
    if (k <= 32) return this.mt.nextU32() >>> (32 - k);
    const lo = this.mt.nextU32();
    const hi = this.mt.nextU32() >>> (64 - k);
    return hi * TWO_POW_32 + lo;
  }

  /** `getrandbits(k)` for any k >= 0, as a bigint. */
  getrandbitsBigInt(k: number): bigint {
    assertInt(k, 'k');
    if (k < 0) throw new RangeError('number of bits must be non-negative');
    let result = 0n;
    let shift = 0n;
    for (let left = k; left > 0; left -= 32, shift += 32n) {
      let w = this.mt.nextU32();
      if (left < 32) w >>>= 32 - left;
      result |= BigInt(w) << shift;
    }
    return result;
  }

  /** `_randbelow(n)`: rejection sampling on getrandbits(n.bit_length()); n = 1 still draws once. */
  randbelow(n: number): number {
    assertInt(n, 'n');
    if (n <= 0) throw new RangeError(`randbelow needs n > 0, got ${n}`);
    const k = bitLength(n);
    if (k <= 32) {
      // Inlined getrandbits(k) for the common case.
      const shift = 32 - k;
      let r = this.mt.nextU32() >>> shift;
      while (r >= n) r = this.mt.nextU32() >>> shift;
      return r;
    }
    let r = this.getrandbits(k);
    while (r >= n) r = this.getrandbits(k);
    return r;
  }

  /**
   * A closure equivalent to randbelow(n) for a fixed n <= 2^32, without per-call argument checks
   * (used in the Dyck inner loops; consumes exactly the same words).
   */
  randbelowFn(n: number): () => number {
    assertInt(n, 'n');
    if (n <= 0 || n > TWO_POW_32) throw new RangeError(`randbelowFn needs 0 < n <= 2^32, got ${n}`);
    const shift = 32 - bitLength(n);
    const mt = this.mt;
    if (shift < 0) return () => this.randbelow(n); // n = 2^32 needs 33 bits
    return () => {
      let r = mt.nextU32() >>> shift;
      while (r >= n) r = mt.nextU32() >>> shift;
      return r;
    };
  }

  randbelowBigInt(n: bigint): bigint {
    if (n <= 0n) throw new RangeError('randbelow needs n > 0');
    const k = bigBitLength(n);
    let r = this.getrandbitsBigInt(k);
    while (r >= n) r = this.getrandbitsBigInt(k);
    return r;
  }

  /** `randint(a, b)`: uniform in [a, b] inclusive = a + randbelow(b - a + 1). */
  randint(a: number, b: number): number {
    assertInt(a, 'a');
    assertInt(b, 'b');
    if (b < a) throw new RangeError(`empty range for randint(${a}, ${b})`);
    return a + this.randbelow(b - a + 1);
  }

  randintBigInt(a: bigint, b: bigint): bigint {
    if (b < a) throw new RangeError('empty range for randint');
    return a + this.randbelowBigInt(b - a + 1n);
  }

  /** `randrange(stop)` or `randrange(start, stop[, step])` with integer arguments (CPython 3.11 logic). */
  randrange(start: number, stop?: number, step = 1): number {
    assertInt(start, 'start');
    if (stop === undefined) {
      if (start > 0) return this.randbelow(start);
      throw new RangeError('empty range for randrange()');
    }
    assertInt(stop, 'stop');
    assertInt(step, 'step');
    const width = stop - start;
    if (step === 1) {
      if (width > 0) return start + this.randbelow(width);
      throw new RangeError(`empty range for randrange(${start}, ${stop})`);
    }
    if (step === 0) throw new RangeError('zero step for randrange()');
    const n = step > 0 ? Math.floor((width + step - 1) / step) : Math.floor((width + step + 1) / step);
    if (n <= 0) throw new RangeError('empty range for randrange()');
    return start + step * this.randbelow(n);
  }

  /** `choice(seq)` = seq[randbelow(len(seq))]. */
  choice<T>(seq: ArrayLike<T>): T {
    if (seq.length === 0) throw new RangeError('Cannot choose from an empty sequence');
    return seq[this.randbelow(seq.length)];
  }

  /** In-place `shuffle(x)`: for i = len-1 down to 1, j = randbelow(i+1), swap x[i], x[j]. */
  shuffle<T>(x: { length: number; [i: number]: T }): void {
    for (let i = x.length - 1; i > 0; i--) {
      const j = this.randbelow(i + 1);
      const t = x[i];
      x[i] = x[j];
      x[j] = t;
    }
  }
}
