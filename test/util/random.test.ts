// RNG unit tests against golden values produced by numpy 2.4.6 / CPython 3.11.7 (no Python needed at
// run time). Each constant notes the one-liner that produced it.
import { describe, expect, it } from 'vitest';
import { MT19937, NumpyRandomState, PyRandom, bitLength, seedKey } from '../../src/util/random.ts';

describe('MT19937', () => {
  it('matches the reference init_genrand(5489) stream, including across the first twist', () => {
    // np.random.RandomState(5489).randint(0, 2**32, size=5)  (range 2^32-1 -> raw 32-bit words)
    const mt = new MT19937(5489);
    expect(Array.from({ length: 5 }, () => mt.nextU32())).toEqual([3499211612, 581869302, 3890346734, 3586334585, 545404204]);
    // a = np.random.RandomState(5489).randint(0, 2**32, size=630); a[622:630]
    const mt2 = new MT19937(5489);
    const words = Array.from({ length: 630 }, () => mt2.nextU32());
    expect(words.slice(622, 630)).toEqual([2227348307, 4020325887, 4178893912, 610818241, 2787397224, 2762441380, 3437393657, 2030369078]);
  });

  it('defaults to seed 5489 and round-trips its state', () => {
    const a = new MT19937();
    const b = new MT19937(5489);
    expect(a.nextU32()).toBe(b.nextU32());
    for (let i = 0; i < 700; i++) a.nextU32();
    const snapshot = a.getState();
    const c = new MT19937(1);
    c.setState(snapshot);
    const clone = a.clone();
    const next = [a.nextU32(), a.nextU32()];
    expect([c.nextU32(), c.nextU32()]).toEqual(next);
    expect([clone.nextU32(), clone.nextU32()]).toEqual(next);
  });
});

describe('NumpyRandomState (legacy)', () => {
  it('randint arrays match numpy', () => {
    // np.random.RandomState(42).randint(1, 100, size=12)
    expect(new NumpyRandomState(42).randint(1, 100, 12)).toEqual([52, 93, 15, 72, 61, 21, 83, 87, 75, 75, 88, 24]);
    // np.random.RandomState(0).randint(0, 2, size=16)
    expect(new NumpyRandomState(0).randint(0, 2, 16)).toEqual([0, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 0, 0]);
    // np.random.RandomState(7).randint(0, 1000, size=5)
    expect(new NumpyRandomState(7).randint(0, 1000, 5)).toEqual([175, 196, 537, 502, 579]);
    // np.random.RandomState(2**32-1).randint(0, 7, size=8)
    expect(new NumpyRandomState(2 ** 32 - 1).randint(0, 7, 8)).toEqual([3, 2, 4, 4, 0, 6, 2, 1]);
    // np.random.RandomState(42).randint(0, 10**12, size=3)  (64-bit masked path)
    expect(new NumpyRandomState(42).randint(0, 10 ** 12, 3)).toEqual([441507790259, 395924837646, 458615280711]);
  });

  it('scalar draws, a zero-width range and random() interleave like numpy', () => {
    // r = np.random.RandomState(123); [r.randint(5, 6), r.randint(-3, 4), r.random_sample(), r.randint(0, 2**31), r.random_sample()]
    const r = new NumpyRandomState(123);
    expect(r.randint(5, 6)).toBe(5); // consumes nothing
    expect(r.randint(-3, 4)).toBe(3);
    expect(r.random()).toBe(0.7129553205232272);
    expect(r.randint(0, 2 ** 31)).toBe(1840268610);
    expect(r.random()).toBe(0.2268514535642031);
    // np.random.RandomState(0).random_sample(3)
    const z = new NumpyRandomState(0);
    expect([z.random(), z.random(), z.random()]).toEqual([0.5488135039273248, 0.7151893663724195, 0.6027633760716439]);
  });

  it('fillRandint equals the array draw', () => {
    const out = new Int32Array(14);
    new NumpyRandomState(42).fillRandint(out, 1, 100, 1, 13);
    expect(Array.from(out)).toEqual([0, 52, 93, 15, 72, 61, 21, 83, 87, 75, 75, 88, 24, 0]);
  });

  it('rejects invalid seeds and ranges', () => {
    expect(() => new NumpyRandomState(-1)).toThrow(RangeError);
    expect(() => new NumpyRandomState(2 ** 32)).toThrow(RangeError);
    expect(() => new NumpyRandomState(1.5)).toThrow(RangeError);
    expect(() => new NumpyRandomState(1).randint(3, 3)).toThrow(RangeError);
  });
});

describe('PyRandom (CPython random)', () => {
  it('getrandbits for k <= 32, k > 32 and k = 0', () => {
    // random.seed(42); [random.getrandbits(32) for _ in range(3)]
    const a = new PyRandom(42);
    expect([a.getrandbits(32), a.getrandbits(32), a.getrandbits(32)]).toEqual([2746317213, 478163327, 107420369]);
    // random.seed(42); [random.getrandbits(40), random.getrandbits(64), random.getrandbits(100),
    //                   random.getrandbits(1), random.getrandbits(0), random.getrandbits(53)]
    const b = new PyRandom(42);
    expect(b.getrandbits(40)).toBe(123005401501);
    expect(b.getrandbitsBigInt(64)).toBe(13679192365072849617n);
    expect(b.getrandbitsBigInt(100)).toBe(176140902141063639299770569303n);
    expect(b.getrandbits(1)).toBe(1);
    expect(b.getrandbits(0)).toBe(0);
    expect(b.getrandbits(53)).toBe(6095164623626151);
    expect(() => b.getrandbits(54)).toThrow(RangeError);
  });

  it('number and bigint getrandbits agree', () => {
    const a = new PyRandom(9);
    const b = new PyRandom(9);
    for (const k of [1, 7, 31, 32, 33, 40, 53]) expect(BigInt(a.getrandbits(k))).toBe(b.getrandbitsBigInt(k));
  });

  it('random(), randint and randbelow', () => {
    // random.seed(42); [random.random() for _ in range(3)]
    const a = new PyRandom(42);
    expect([a.random(), a.random(), a.random()]).toEqual([0.6394267984578837, 0.025010755222666936, 0.27502931836911926]);
    // random.seed(42); [random.randint(0, 63) for _ in range(10)]
    const b = new PyRandom(42);
    expect(Array.from({ length: 10 }, () => b.randint(0, 63))).toEqual([14, 3, 35, 31, 28, 17, 13, 11, 54, 4]);
    // random.seed(42); [random.randint(10**9, 10**10 - 1) for _ in range(3)]   (34-bit draws, two words each)
    const c = new PyRandom(42);
    expect([c.randint(1e9, 1e10 - 1), c.randint(1e9, 1e10 - 1), c.randint(1e9, 1e10 - 1)]).toEqual([3746317213, 9697354961, 2181241943]);
    // random.seed(42); random._inst._randbelow(1); random.getrandbits(32)
    // (randbelow(1) draws getrandbits(1) until it is 0: here two words, so the third word follows)
    const d = new PyRandom(42);
    expect(d.randbelow(1)).toBe(0);
    expect(d.getrandbits(32)).toBe(107420369);
    const e = new PyRandom(42);
    expect(e.randbelowBigInt(10n ** 9n * 9n)).toBe(BigInt(new PyRandom(42).randbelow(9e9)));
  });

  it('choice, shuffle and randrange', () => {
    // random.seed(42); [random.choice('abcdefg') for _ in range(8)]
    const a = new PyRandom(42);
    expect(Array.from({ length: 8 }, () => a.choice('abcdefg'))).toEqual(['f', 'a', 'a', 'f', 'c', 'b', 'b', 'b']);
    // random.seed(42); x = list(range(20)); random.shuffle(x)
    const b = new PyRandom(42);
    const x = Array.from({ length: 20 }, (_, i) => i);
    b.shuffle(x);
    expect(x).toEqual([19, 5, 14, 4, 9, 13, 15, 18, 6, 12, 17, 10, 1, 11, 2, 16, 7, 8, 0, 3]);
    // random.seed(12345); [random.randrange(10), random.randrange(3, 17), random.randrange(0, 100, 7), random.randrange(10, 0, -3)]
    const c = new PyRandom(12345);
    expect([c.randrange(10), c.randrange(3, 17), c.randrange(0, 100, 7), c.randrange(10, 0, -3)]).toEqual([6, 14, 0, 4]);
    expect(() => c.choice([])).toThrow(RangeError);
  });

  it('seeding: 0, negative, and multi-word integers', () => {
    // random.seed(0); [random.random(), random.random()]
    const a = new PyRandom(0);
    expect([a.random(), a.random()]).toEqual([0.8444218515250481, 0.7579544029403025]);
    // random.seed(2**40 + 7); random.random()
    expect(new PyRandom(2 ** 40 + 7).random()).toBe(0.6137037779936511);
    // random.seed(-5); random.random()  (== random.seed(5))
    expect(new PyRandom(-5).random()).toBe(0.6229016948897019);
    expect(new PyRandom(5).random()).toBe(0.6229016948897019);
    // random.seed(2**100 + 3); random.getrandbits(32)
    expect(new PyRandom(2n ** 100n + 3n).getrandbits(32)).toBe(1532279558);
    expect(seedKey(0)).toEqual([0]);
    expect(seedKey(2n ** 64n + 5n)).toEqual([5, 0, 1]);
    const viaKey = new PyRandom(0);
    viaKey.seedByArray(seedKey(2 ** 40 + 7));
    expect(viaKey.random()).toBe(0.6137037779936511);
  });

  it('bitLength', () => {
    expect([0, 1, 2, 3, 255, 256, 2 ** 32 - 1, 2 ** 32, 2 ** 52].map(bitLength)).toEqual([0, 1, 2, 2, 8, 9, 32, 33, 53]);
  });
});
