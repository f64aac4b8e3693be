/**
 * Test helpers: one engine per test file (destroyed after the file so the worker exits), seeded
 * random inputs, float64 comparisons, and poisoning of output buffers.
 */
import { afterAll } from 'vitest';
import { Engine } from '../../engine/engine.ts';
import type { PlanKind } from '../../engine/plan.ts';
import type { Tensor } from '../../engine/tensor.ts';

let shared: Promise<Engine> | null = null;

/** The engine for this test file (created on first use, destroyed after all tests). */
export function useEngine(): () => Promise<Engine> {
  afterAll(async () => {
    if (shared) {
      const e = await shared;
      await e.sync().catch(() => undefined);
      e.destroy();
      shared = null;
    }
  });
  return () => (shared ??= Engine.create());
}

/**
 * Engines that plan as a given kind ('software' or 'hardware': the GPU's kernel choices on this
 * adapter), one per kind for this test file, destroyed after it.
 */
export function useEnginesAs(): (kind: PlanKind) => Promise<Engine> {
  const engines = new Map<PlanKind, Promise<Engine>>();
  afterAll(async () => {
    for (const p of engines.values()) {
      const e = await p;
      await e.sync().catch(() => undefined);
      e.destroy();
    }
  });
  return (kind) => {
    let p = engines.get(kind);
    if (!p) engines.set(kind, (p = Engine.create({ planAs: kind })));
    return p;
  };
}

/** Deterministic PRNG (mulberry32) for test inputs. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** n uniform values in [lo, hi) from a fresh seeded stream. */
export function randArray(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * r();
  return out;
}

/** Standard normal values (Box-Muller) scaled by `std`. */
export function randn(n: number, seed: number, std = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = std * Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
  return out;
}

/** Relative Frobenius error ‖a − ref‖ / ‖ref‖ (absolute when ‖ref‖ = 0); NaN anywhere gives Infinity. */
export function relErr(a: ArrayLike<number>, ref: ArrayLike<number>): number {
  if (a.length !== ref.length) throw new Error(`length ${a.length} vs reference ${ref.length}`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i]! - ref[i]!;
    if (!Number.isFinite(a[i]!)) return Infinity;
    num += d * d;
    den += ref[i]! * ref[i]!;
  }
  return den > 0 ? Math.sqrt(num / den) : Math.sqrt(num);
}

/** A poison value no kernel produces by accident. */
export const POISON = -7.77e30;

/** Fill a tensor with the poison value (so an unwritten output element fails the comparison). */
export function poison(engine: Engine, t: Tensor): void {
  engine.write(t, new Float32Array(t.numel).fill(POISON));
}

/**
 * Fill `count` pool buffers of `numel` floats with poison and release them, so the next tensors an op
 * takes from the pool start poisoned (catches unwritten output elements of ops that allocate).
 */
export function poisonPool(e: Engine, numel: number, count = 4): void {
  const ts: Tensor[] = [];
  for (let i = 0; i < count; i++) {
    const t = e.empty([numel]);
    poison(e, t);
    ts.push(t);
  }
  for (const t of ts) t.dispose();
}

/** Central finite-difference gradient of a float64 function (to check the float64 references). */
export function fdGrad(f: (x: Float64Array) => number, x: ArrayLike<number>, h = 1e-6): Float64Array {
  const g = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const xp = Float64Array.from(x);
    const xm = Float64Array.from(x);
    xp[i]! += h;
    xm[i]! -= h;
    g[i] = (f(xp) - f(xm)) / (2 * h);
  }
  return g;
}
