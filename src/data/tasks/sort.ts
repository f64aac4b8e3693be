// `sort_N` (spec §6.6): the "Sort" column of the paper's weight-mixture table. Its format is NOT in the
// reference repo; this layout is [inferred], following the spec's suggestion: the procedural sort layout
// (§2.2) with L = N (the paper's table presumably uses sort_10), under the needle-style harness.
//
// gen_single() draws from CPython `random` (like every downstream task):
//   x   = [randint(1, V-1) for _ in range(N)]   V = 100, content tokens 1..99
//   ids = x ‖ [SEP] ‖ sorted(x)                  SEP = V = 100, length 2N+1 (no padding needed)
// Model vocabulary V+2 = 102 (PAD = 101 never occurs in a row; it is the target after the last position).
// Wanted positions: N..2N-1, from the SEP position on (the SEP position predicts the first sorted token);
// the last position is never a position (p < T-1). No quirks; fixQuirks changes nothing.
// Model defaults [inferred]: those of the needle/addition tasks (2_4_16, n_positions 40, batch 1000,
// eval every 50 steps, 10,000 steps).

import type { PyRandom } from '../../util/random.ts';
import { checkLength, referenceMaxSteps, type DownstreamTask } from './task.ts';

export const SORT_V = 100;
export const SORT_SEP = SORT_V;
export const SORT_PAD = SORT_V + 1;

export function createSortTask(n: number, fixQuirks = false): DownstreamTask {
  if (!Number.isInteger(n) || n < 1 || n > 10000) throw new RangeError(`sort_${n}: N must be an integer in 1..10000`);
  const T = 2 * n + 1;
  const task: DownstreamTask = {
    id: `sort_${n}`,
    family: 'sort',
    n,
    vocabSize: SORT_V + 2,
    seqLen: T,
    padId: SORT_PAD,
    fixQuirks,
    defaults: { nLayer: 2, nHead: 4, nEmbd: 16, nPositions: 40, batch: 1000, evalSteps: 50, maxSteps: referenceMaxSteps(1000) },
    legend: `1-${SORT_V - 1} content tokens, | = SEP ${SORT_SEP}, _ = PAD ${SORT_PAD}`,
    genSingle(rng: PyRandom): Int32Array {
      const ids = new Int32Array(T);
      for (let i = 0; i < n; i++) ids[i] = rng.randint(1, SORT_V - 1);
      ids[n] = SORT_SEP;
      const sorted = ids.slice(0, n).sort(); // typed-array sort is numeric
      ids.set(sorted, n + 1);
      return ids;
    },
    wanted(ids: Int32Array): Uint8Array {
      checkLength(task, ids);
      const w = new Uint8Array(T);
      const sep = ids.indexOf(SORT_SEP);
      if (sep >= 0) w.fill(1, sep, T - 1);
      return w;
    },
    renderToken(t: number): string {
      if (t === SORT_SEP) return '|';
      if (t === SORT_PAD) return '_';
      return String(t);
    },
  };
  return task;
}
