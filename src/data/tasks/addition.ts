// The arithmetic downstream tasks (spec §6.3–6.5): `additionstream_N` (reversed addition),
// `forwardaddition_N` here, and `multiplication_N` (multiplication.ts) on the same machinery.
//
// Tokens (vocabulary 31): digits 0–9 are themselves, '+' (and '*' for multiplication) = 10, '=' = 11,
// PAD = 12, result digits d are written d+20 (20–29), STOP = 30.
//
// gen_single() draws two operands from CPython `random`, each as
//   d = randint(N, N)                        the digit-count draw: it can only return N, but it consumes
//                                            randbelow(1) (one or more 32-bit words) [quirk, kept: it is
//                                            part of the random stream the §11 vectors pin down]
//   x = randint(10**(d-1), 10**d - 1)        an exactly N-digit number
// in the order a's count, a, b's count, b. Layouts:
//   additionstream_N    rev(a) + rev(b) = rev(a+b)+20 STOP, PAD to 3N+4
//   forwardaddition_N   a + b = (a+b)+20 STOP, PAD to 3N+4
//   multiplication_N    a * b = (a·b)+20 STOP, PAD to 5N+4 (the reference's row length; only 4N+3 is used)
//
// Wanted positions (§6.1): p < T-1 whose *input* token is >= 20, i.e. every result digit and the STOP
// token. [quirk] The first result digit is predicted at '=' (token 11), which is not >= 20, so it is never
// trained or scored; fixQuirks makes the '=' position wanted too. Counts per sequence: reversed addition
// 11 (12 fixed), forward addition N+1 (N+2 fixed), multiplication 2N or 2N+1 (+1 fixed). When the result
// has its maximum length, STOP sits at T-1 of the addition rows and is not a position; otherwise the STOP
// position predicts PAD and is scored.
//
// The reference's id parser accepts `name_min_max` but a stray line forces max = min for these tasks, so
// only exactly-N-digit operands ever occur; kindling accepts `name_N` only.

import type { PyRandom } from '../../util/random.ts';
import { checkLength, referenceMaxSteps, type DownstreamFamily, type DownstreamTask } from './task.ts';

export const ARITH_VOCAB = 31;
export const OP_TOKEN = 10;
export const EQ_TOKEN = 11;
export const ARITH_PAD = 12;
export const RESULT_OFFSET = 20;
export const STOP_TOKEN = 30;
/** Operands stay plain numbers below this many digits (10^15 < 2^53); above, BigInt. */
const SAFE_DIGITS = 15;

export type ArithmeticFamily = Extract<DownstreamFamily, 'additionstream' | 'forwardaddition' | 'multiplication'>;

/** One operand: the digit-count draw randint(N, N), then randint(10^(d-1), 10^d - 1). */
export function drawOperand(rng: PyRandom, n: number): number | bigint {
  const d = rng.randint(n, n);
  if (d <= SAFE_DIGITS) return rng.randint(10 ** (d - 1), 10 ** d - 1);
  return rng.randintBigInt(10n ** BigInt(d - 1), 10n ** BigInt(d) - 1n);
}

function writeDigits(out: Int32Array, at: number, x: number | bigint, offset: number, reversed: boolean): number {
  const s = x.toString();
  const L = s.length;
  for (let i = 0; i < L; i++) out[at + i] = s.charCodeAt(reversed ? L - 1 - i : i) - 48 + offset;
  return at + L;
}

function combine(family: ArithmeticFamily, a: number | bigint, b: number | bigint): number | bigint {
  if (family === 'multiplication') {
    const p = Number(a) * Number(b);
    return Number.isSafeInteger(p) ? p : BigInt(a) * BigInt(b);
  }
  if (typeof a === 'number' && typeof b === 'number') return a + b; // < 2·10^15, exact
  return BigInt(a) + BigInt(b);
}

export function createArithmeticTask(family: ArithmeticFamily, n: number, fixQuirks = false): DownstreamTask {
  if (!Number.isInteger(n) || n < 1 || n > 1000) throw new RangeError(`${family}_${n}: N must be an integer in 1..1000`);
  const mult = family === 'multiplication';
  const reversed = family === 'additionstream';
  const T = mult ? 5 * n + 4 : 3 * n + 4;
  const defaults = mult
    ? { nLayer: 4, nHead: 8, nEmbd: 512, nPositions: 40, batch: 64, evalSteps: 40, maxSteps: referenceMaxSteps(64) }
    : { nLayer: 2, nHead: 4, nEmbd: 16, nPositions: 40, batch: 1000, evalSteps: family === 'additionstream' ? 50 : 40, maxSteps: referenceMaxSteps(1000) };
  const opChar = mult ? '*' : '+';
  const task: DownstreamTask = {
    id: `${family}_${n}`,
    family,
    n,
    vocabSize: ARITH_VOCAB,
    seqLen: T,
    padId: ARITH_PAD,
    fixQuirks,
    defaults,
    legend: `0-9 operand digits, '${opChar}' is ${OP_TOKEN}, '=' is ${EQ_TOKEN}, result digit d prints as d (token d+${RESULT_OFFSET}), '$' is STOP ${STOP_TOKEN}, '_' is PAD ${ARITH_PAD}${reversed ? '; numbers are written least significant digit first' : ''}`,
    genSingle(rng: PyRandom): Int32Array {
      const a = drawOperand(rng, n);
      const b = drawOperand(rng, n);
      const ids = new Int32Array(T).fill(ARITH_PAD);
      let at = writeDigits(ids, 0, a, 0, reversed);
      ids[at++] = OP_TOKEN;
      at = writeDigits(ids, at, b, 0, reversed);
      ids[at++] = EQ_TOKEN;
      at = writeDigits(ids, at, combine(family, a, b), RESULT_OFFSET, reversed);
      ids[at] = STOP_TOKEN;
      return ids;
    },
    wanted(ids: Int32Array): Uint8Array {
      checkLength(task, ids);
      const w = new Uint8Array(T);
      for (let p = 0; p < T - 1; p++) {
        const t = ids[p];
        if (t >= RESULT_OFFSET || (fixQuirks && t === EQ_TOKEN)) w[p] = 1;
      }
      return w;
    },
    renderToken(t: number): string {
      if (t === ARITH_PAD) return '_';
      if (t === STOP_TOKEN) return '$';
      if (t === OP_TOKEN) return opChar;
      if (t === EQ_TOKEN) return '=';
      if (t >= RESULT_OFFSET && t < RESULT_OFFSET + 10) return String(t - RESULT_OFFSET);
      return String(t);
    },
  };
  return task;
}

/** `additionstream_N`: reversed addition (§6.3). */
export function createAdditionStreamTask(n: number, fixQuirks = false): DownstreamTask {
  return createArithmeticTask('additionstream', n, fixQuirks);
}

/** `forwardaddition_N`: forward addition (§6.4). */
export function createForwardAdditionTask(n: number, fixQuirks = false): DownstreamTask {
  return createArithmeticTask('forwardaddition', n, fixQuirks);
}
