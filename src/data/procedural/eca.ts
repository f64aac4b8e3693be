// Elementary cellular automaton generator (spec §2.10, inferred: absent from the reference repo).
//
// Cells 0/1 are token ids 0/1, SEP = 2, PAD = 3, model vocab 4. The initial state is L Bernoulli(0.5)
// cells from RandomState(seed+idx) via randint(0, 2) (one 32-bit word per cell), optionally evolved
// `burnIn` times, then ids = s0 ‖ SEP ‖ s1 ‖ SEP ‖ … ‖ s_{T-1}. Periodic boundary:
//   s_{t+1}[i] = bit(rule, 4·s_t[i-1] + 2·s_t[i] + s_t[i+1]).
// Loss on every position whose target is a cell of row >= 1 (for T = 2: positions L..2L-1).

import type { NumpyRandomState } from '../../util/random.ts';
import { makeSample, type Sample } from './sample.ts';

export const ECA_SEP = 2;
export const ECA_PAD = 3;
export const ECA_VOCAB = 4;

/** One synchronous update of an ECA row with periodic boundary; writes into `next` (may not alias). */
export function ecaStep(row: ArrayLike<number>, rule: number, next: { length: number; [i: number]: number }): void {
  const L = row.length;
  for (let i = 0; i < L; i++) {
    const left = row[(i - 1 + L) % L];
    const right = row[(i + 1) % L];
    next[i] = (rule >>> ((left << 2) | (row[i] << 1) | right)) & 1;
  }
}

/** Applies the rule `steps` times to `row` in place. */
export function ecaEvolve(row: Int32Array, rule: number, steps: number): void {
  const tmp = new Int32Array(row.length);
  for (let s = 0; s < steps; s++) {
    ecaStep(row, rule, tmp);
    row.set(tmp);
  }
}

/** Sequence length for L cells and T rows: T·L + (T-1) separators. */
export function ecaLength(L: number, rows: number): number {
  return rows * L + rows - 1;
}

export function generateEca(rng: NumpyRandomState, L: number, rule = 110, rows = 2, burnIn = 0): Sample {
  const T = ecaLength(L, rows);
  const ids = new Int32Array(T);
  const row = new Int32Array(L);
  rng.fillRandint(row, 0, 2);
  ecaEvolve(row, rule, burnIn);
  const lossMask = new Uint8Array(T);
  for (let r = 0; r < rows; r++) {
    const start = r * (L + 1);
    if (r > 0) {
      ids[start - 1] = ECA_SEP;
      ecaStep(ids.subarray(start - 1 - L, start - 1), rule, ids.subarray(start, start + L));
      // Positions start-1 .. start+L-2 predict the cells of row r.
      lossMask.fill(1, start - 1, start + L - 1);
    } else {
      ids.set(row, 0);
    }
  }
  return makeSample(ids, lossMask, ECA_PAD, 'ones');
}
