// `multiplication_N` (spec §6.5): a * b = a·b, forward order, '*' = 10, product digits d+20, STOP 30,
// PAD 12 up to the reference's row length 5N+4. Same operand draws, wanted rule and quirk (the first
// product digit, predicted at '=', is unscored; fixQuirks scores it) as the additions: see addition.ts.

import { createArithmeticTask } from './addition.ts';
import type { DownstreamTask } from './task.ts';

export function createMultiplicationTask(n: number, fixQuirks = false): DownstreamTask {
  return createArithmeticTask('multiplication', n, fixQuirks);
}
