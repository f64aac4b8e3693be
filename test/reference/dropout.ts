/**
 * Reference of the dropout kernel (test/engine/dropout.test.ts checks the kernel's mask and scaling against it,
 * bit for bit; see docs/kernels.md for the family's kernel, op, tests and benchmark).
 */
import { philox4x32 } from './random.ts';

/** The keep mask of element i under the convention of kernels/dropout.ts. */
export function keepRef(n: number, p: number, seed: number, step: number, stream: number): boolean[] {
  const pf = Math.fround(p);
  const out: boolean[] = [];
  for (let q = 0; q * 4 < n; q++) {
    const w = philox4x32([q, stream, 0, 0], [seed, step]);
    for (let j = 0; j < 4 && q * 4 + j < n; j++) out.push((w[j]! >>> 8) / 16777216 >= pf);
  }
  return out;
}
