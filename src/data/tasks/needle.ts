// Needle-in-a-haystack / context recall: `condattendstream_M` (spec §6.2).
//
// gen_single(), drawing from CPython `random` in exactly this order:
//   n    = randint(1, M)                      number of key/value pairs
//   keys = shuffle(list(range(M)))[:n]        distinct keys
//   vals = [randint(1, H-1) for each key]     values 1..H-1
//   q    = choice(keys)
//   ids  = [k0+H, v0, …, k_{n-1}+H, v_{n-1}, q+M+H, v_of(q)], then 0-padding to 2M+3
// with W = 256 (model vocabulary, fixed whatever M) and H = W/2 = 128. Token ranges: values 1..127, keys
// H..H+M-1, query M+H..2M+H-1, PAD 0. Hence M <= 64.
//
// Wanted positions: exactly one per sequence, the query token (input token >= M+H); its target is the
// answer value. The reference has no quirk here; fixQuirks changes nothing.

import type { PyRandom } from '../../util/random.ts';
import { checkLength, referenceMaxSteps, type DownstreamTask } from './task.ts';

export const NEEDLE_VOCAB = 256;
export const NEEDLE_H = NEEDLE_VOCAB / 2;
export const NEEDLE_MAX_M = (NEEDLE_VOCAB - NEEDLE_H) / 2; // query tokens 2M+H-1 must stay < W

export function createNeedleTask(m: number, fixQuirks = false): DownstreamTask {
  if (!Number.isInteger(m) || m < 1 || m > NEEDLE_MAX_M) {
    throw new RangeError(`condattendstream_${m}: the number of pairs M must be an integer in 1..${NEEDLE_MAX_M} (vocab ${NEEDLE_VOCAB})`);
  }
  const H = NEEDLE_H;
  const T = 2 * m + 3;
  const queryBase = m + H;
  const keys = new Int32Array(m);
  const vals = new Int32Array(m);
  const task: DownstreamTask = {
    id: `condattendstream_${m}`,
    family: 'condattendstream',
    n: m,
    vocabSize: NEEDLE_VOCAB,
    seqLen: T,
    padId: 0,
    fixQuirks,
    defaults: { nLayer: 2, nHead: 4, nEmbd: 16, nPositions: 100, batch: 1000, evalSteps: 50, maxSteps: referenceMaxSteps(1000) },
    legend: `kK = key K (token ${H}+K), qK = query for key K (token ${queryBase}+K), numbers = values 1..${H - 1}, _ = PAD 0`,
    genSingle(rng: PyRandom): Int32Array {
      const n = rng.randint(1, m);
      for (let i = 0; i < m; i++) keys[i] = i;
      rng.shuffle(keys);
      for (let i = 0; i < n; i++) vals[i] = rng.randint(1, H - 1);
      const qi = rng.randbelow(n); // choice(keys[:n]) = keys[randbelow(n)]
      const ids = new Int32Array(T); // zero = PAD
      for (let i = 0; i < n; i++) {
        ids[2 * i] = keys[i] + H;
        ids[2 * i + 1] = vals[i];
      }
      ids[2 * n] = keys[qi] + queryBase;
      ids[2 * n + 1] = vals[qi]; // keys are distinct, so keys.index(q) = qi
      return ids;
    },
    wanted(ids: Int32Array): Uint8Array {
      checkLength(task, ids);
      const w = new Uint8Array(T);
      for (let p = 0; p < T - 1; p++) if (ids[p] >= queryBase) w[p] = 1;
      return w;
    },
    renderToken(t: number): string {
      if (t === 0) return '_';
      if (t >= queryBase) return `q${t - queryBase}`;
      if (t >= H) return `k${t - H}`;
      return String(t);
    },
  };
  return task;
}
