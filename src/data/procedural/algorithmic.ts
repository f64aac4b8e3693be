// The seven "algorithmic" generators of the reference (spec §2.1–2.6) and WW (§2.9, inferred).
//
// Shared conventions: content tokens are uniform in 1..V-1 (numpy `randint(1, V)`), SEP = V, PAD = V+1,
// model vocab V+2. Sample idx of a dataset with base seed s comes from a fresh RandomState(s + idx), so
// every function below takes that RandomState and draws from it in exactly the reference order.

import type { NumpyRandomState } from '../../util/random.ts';
import { makeSample, rangeMask, type Sample } from './sample.ts';

/** Token ids of the algorithmic vocabulary for content alphabet size V. */
export function algorithmicTokens(V: number): { sep: number; pad: number; vocab: number } {
  return { sep: V, pad: V + 1, vocab: V + 2 };
}

/** sort / reverse / identity: ids = x ‖ SEP ‖ f(x) (length 2L+1), loss on L..2L-1. */
export function generateMapped(rng: NumpyRandomState, L: number, V: number, f: 'sort' | 'reverse' | 'identity'): Sample {
  const { sep, pad } = algorithmicTokens(V);
  const ids = new Int32Array(2 * L + 1);
  rng.fillRandint(ids, 1, V, 0, L);
  ids[L] = sep;
  const out = ids.subarray(L + 1);
  out.set(ids.subarray(0, L));
  if (f === 'sort') out.sort();
  else if (f === 'reverse') out.reverse();
  return makeSample(ids, rangeMask(ids.length, L, 2 * L - 1), pad, 'nonpad');
}

export function generateSort(rng: NumpyRandomState, L: number, V: number): Sample {
  return generateMapped(rng, L, V, 'sort');
}
export function generateReverse(rng: NumpyRandomState, L: number, V: number): Sample {
  return generateMapped(rng, L, V, 'reverse');
}
export function generateIdentity(rng: NumpyRandomState, L: number, V: number): Sample {
  return generateMapped(rng, L, V, 'identity');
}

/**
 * Writes the distinct values of src (first-appearance order) to out starting at `at`; returns the count.
 * `seen` must be a zeroed scratch array indexed by token.
 */
function writeDistinct(src: ArrayLike<number>, out: Int32Array, at: number, seen: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < src.length; i++) {
    const t = src[i];
    if (!seen[t]) {
      seen[t] = 1;
      out[at + n++] = t;
    }
  }
  return n;
}

/** set: ids = x ‖ SEP ‖ distinct(x), PAD-padded to 2L+1; loss on L..L+|u|-1. */
export function generateSet(rng: NumpyRandomState, L: number, V: number): Sample {
  const { sep, pad } = algorithmicTokens(V);
  const ids = new Int32Array(2 * L + 1).fill(pad);
  rng.fillRandint(ids, 1, V, 0, L);
  ids[L] = sep;
  const u = writeDistinct(ids.subarray(0, L), ids, L + 1, new Uint8Array(V + 2));
  return makeSample(ids, rangeMask(ids.length, L, L + u - 1), pad, 'nonpad');
}

/**
 * union: h = floor(L/2); a = h draws, b = h draws; ids = a ‖ SEP ‖ b ‖ SEP ‖ distinct(a‖b) padded to L.
 * Length 2h+2+L (2L+2 for even L); loss from the second SEP (2h+1) through 2h+|u|.
 */
export function generateUnion(rng: NumpyRandomState, L: number, V: number): Sample {
  const { sep, pad } = algorithmicTokens(V);
  const h = Math.floor(L / 2);
  const ids = new Int32Array(2 * h + 2 + L).fill(pad);
  rng.fillRandint(ids, 1, V, 0, h);
  ids[h] = sep;
  rng.fillRandint(ids, 1, V, h + 1, 2 * h + 1);
  ids[2 * h + 1] = sep;
  const seen = new Uint8Array(V + 2);
  let u = writeDistinct(ids.subarray(0, h), ids, 2 * h + 2, seen);
  u += writeDistinct(ids.subarray(h + 1, 2 * h + 1), ids, 2 * h + 2 + u, seen);
  return makeSample(ids, rangeMask(ids.length, 2 * h + 1, 2 * h + u), pad, 'nonpad');
}

/**
 * delete: x = L draws, r = one more draw; y = x without the first occurrence of r (y = x if r ∉ x).
 * ids = x ‖ SEP ‖ r ‖ SEP ‖ y padded to L (length 2L+3); loss on L+2..L+2+|y|-1.
 */
export function generateDelete(rng: NumpyRandomState, L: number, V: number): Sample {
  const { sep, pad } = algorithmicTokens(V);
  const ids = new Int32Array(2 * L + 3).fill(pad);
  rng.fillRandint(ids, 1, V, 0, L);
  const r = rng.randint(1, V);
  ids[L] = sep;
  ids[L + 1] = r;
  ids[L + 2] = sep;
  let n = 0;
  let removed = false;
  for (let i = 0; i < L; i++) {
    if (!removed && ids[i] === r) {
      removed = true;
      continue;
    }
    ids[L + 3 + n++] = ids[i];
  }
  return makeSample(ids, rangeMask(ids.length, L + 2, L + 2 + n - 1), pad, 'nonpad');
}

/**
 * stack (§2.6): L push/pop ops (push t = token t, pop = 0) with distinct stack contents, then
 * ids = ops ‖ SEP ‖ stack top-first, PAD-padded (or truncated) to exactly 2L; loss on L..L+|stack|-1;
 * attention all ones. Needs V >= 3 so that the stack can never end empty.
 */
export function generateStack(rng: NumpyRandomState, L: number, V: number): Sample {
  const { sep, pad } = algorithmicTokens(V);
  const total = 2 * L;
  const ids = new Int32Array(total).fill(pad);
  const stack: number[] = [];
  const inStack = new Uint8Array(V);
  const pushPhaseEnd = Math.floor((2 * L) / 3);
  const ops: number[] = [];
  for (let step = 0; step < L; step++) {
    // 1. The last op pops whenever more than one element is left.
    if (step === L - 1 && stack.length > 1) {
      inStack[stack.pop()!] = 0;
      ops.push(0);
      continue;
    }
    // 2. Choose the op: forced push on a (nearly) empty stack, otherwise a biased coin
    //    (75% push during the first two thirds of the steps, 75% pop afterwards).
    let push: boolean;
    if (stack.length <= 1) push = true;
    else {
      const u = rng.random();
      push = step < pushPhaseEnd ? u < 0.75 : !(u < 0.75);
    }
    // 3. Candidates are the tokens 1..V-1 not on the stack, ascending; none left forces a pop.
    const nCandidates = V - 1 - stack.length;
    if (push && nCandidates === 0) push = false;
    if (push) {
      // 4. t = candidates[randint(0, |candidates|)].
      let j = rng.randint(0, nCandidates);
      let t = 0;
      for (let tok = 1; tok < V; tok++) {
        if (inStack[tok]) continue;
        if (j-- === 0) {
          t = tok;
          break;
        }
      }
      stack.push(t);
      inStack[t] = 1;
      ops.push(t);
    } else {
      inStack[stack.pop()!] = 0;
      ops.push(0);
    }
  }
  if (stack.length === 0) {
    // The reference's unreachable fallback (it would push an unrecorded token); V >= 3 rules it out.
    throw new Error('stack generator ended with an empty stack (vocab_size must be >= 3)');
  }
  const seq = [...ops, sep, ...stack.reverse()];
  const n = Math.min(seq.length, total);
  for (let i = 0; i < n; i++) ids[i] = seq[i];
  // Loss on L..L+|stack|-1, clipped so that every loss position predicts a token inside the sequence
  // (only matters for L = 1, where the output is truncated).
  return makeSample(ids, rangeMask(total, L, Math.min(L + stack.length - 1, total - 2)), pad, 'ones');
}

/**
 * ww (§2.9, inferred): w = L draws from 1..V-1, ids = w ‖ w (length 2L, no SEP, no PAD).
 * Loss on L-1..2L-2 (each position predicts a token of the copy), or on 0..2L-2 with lossOnAll.
 */
export function generateWW(rng: NumpyRandomState, L: number, V: number, lossOnAll = false): Sample {
  const { pad } = algorithmicTokens(V);
  const ids = new Int32Array(2 * L);
  rng.fillRandint(ids, 1, V, 0, L);
  ids.copyWithin(L, 0, L);
  return makeSample(ids, rangeMask(ids.length, lossOnAll ? 0 : L - 1, 2 * L - 2), pad, 'ones');
}

/**
 * uniform (ours, not in the paper): ids = L independent draws from 1..V-1 (length L, no SEP, no PAD),
 * loss on 0..L-2. Nothing in a sequence predicts the next token beyond the unigram (loss ln(V-1) at
 * best): the no-structure control, a stream of the same shape as Dyck's with no language to learn.
 */
export function generateUniform(rng: NumpyRandomState, L: number, V: number): Sample {
  const { pad } = algorithmicTokens(V);
  const ids = new Int32Array(L);
  rng.fillRandint(ids, 1, V, 0, L);
  return makeSample(ids, rangeMask(L, 0, L - 2), pad, 'ones');
}
