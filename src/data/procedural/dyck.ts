// k-Dyck and k-Dyck-shuffle generators (spec §2.7, §2.8).
//
// Open brackets are 0..k-1, the closer of type t is t+k, PAD = 2k (only ever the final target),
// model vocab 2k+1. Unlike the algorithmic tasks, the reference draws every sequence from ONE CPython
// `random` stream (`random.seed(seed)` once, then consecutive generator calls), so these functions take
// a PyRandom and advance it. Loss is on every position but the last; attention is all ones.

import type { PyRandom } from '../../util/random.ts';
import { makeSample, rangeMask, type Sample } from './sample.ts';

export function dyckTokens(k: number): { pad: number; vocab: number } {
  return { pad: 2 * k, vocab: 2 * k + 1 };
}

/**
 * Writes one k-Dyck sequence of exact length n into out (length >= n). For even n the result is a
 * complete balanced word; depth is not capped. Consumes the CPython stream exactly like the reference:
 * in the "free" branch random() is drawn first and randint(0, k-1) only when opening.
 */
export function fillDyck(rng: PyRandom, out: Int32Array, n: number, k: number, pOpen: number): void {
  const stack = new Int32Array(n);
  const randType = rng.randbelowFn(k); // randint(0, k-1) = 0 + randbelow(k)
  const mt = rng.mt;
  let depth = 0;
  let pos = 0;
  let rem = n;
  while (rem > 0) {
    if (depth === 0) {
      const t = randType();
      out[pos++] = t;
      stack[depth++] = t;
      rem--;
    } else if (rem <= depth) {
      // Only enough room left to close: emit closers until the stack is empty or the budget is spent.
      while (depth > 0 && rem > 0) {
        out[pos++] = stack[--depth] + k;
        rem--;
      }
      break;
    } else {
      if (mt.nextDouble() < pOpen && depth < rem - 1) {
        const t = randType();
        out[pos++] = t;
        stack[depth++] = t;
      } else {
        out[pos++] = stack[--depth] + k;
      }
      rem--;
    }
  }
}

/**
 * Writes one k-Dyck-shuffle sequence of exact length n into out: per-type open counts, closing any
 * open type (uniformly, via choice over the open types in ascending type order), depth <= maxDepth.
 * Usually not fully closed at the end.
 */
export function fillDyckShuffle(
  rng: PyRandom,
  out: Int32Array,
  n: number,
  k: number,
  pOpen: number,
  maxDepth: number,
): void {
  const counts = new Int32Array(k);
  const randType = rng.randbelowFn(k); // randint(0, k-1)
  const mt = rng.mt;
  // The open types (count > 0) in ascending order, maintained incrementally: `choice` must index the
  // same list the reference builds by scanning 0..k-1.
  const open: number[] = [];
  let depth = 0;
  const openOne = (t: number): number => {
    if (counts[t]++ === 0) {
      let i = open.length;
      open.push(t);
      while (i > 0 && open[i - 1] > t) {
        open[i] = open[i - 1];
        i--;
      }
      open[i] = t;
    }
    depth++;
    return t;
  };
  const closeOne = (): number => {
    const j = rng.randbelow(open.length); // = choice(open)
    const t = open[j];
    if (--counts[t] === 0) open.splice(j, 1);
    depth--;
    return t + k;
  };
  for (let pos = 0; pos < n; pos++) {
    if (depth === 0) out[pos] = openOne(randType());
    else if (depth >= maxDepth) out[pos] = closeOne();
    else if (mt.nextDouble() < pOpen) out[pos] = openOne(randType());
    else out[pos] = closeOne();
  }
}

/** One `dyck` sample (next call of the stream). */
export function generateDyck(rng: PyRandom, n: number, k: number, pOpen = 0.5): Sample {
  const ids = new Int32Array(n);
  fillDyck(rng, ids, n, k, pOpen);
  return makeSample(ids, rangeMask(n, 0, n - 2), dyckTokens(k).pad, 'ones');
}

/** One `dyck_shuffle` sample (next call of the stream). */
export function generateDyckShuffle(rng: PyRandom, n: number, k: number, pOpen = 0.5, maxDepth = 16): Sample {
  const ids = new Int32Array(n);
  fillDyckShuffle(rng, ids, n, k, pOpen, maxDepth);
  return makeSample(ids, rangeMask(n, 0, n - 2), dyckTokens(k).pad, 'ones');
}
