// Downstream algorithmic tasks (spec §6), generated exactly as the reference's gen_single() does from
// CPython's `random`, plus the harness of §6.1 (test set, de-duplicated training stream, batching,
// teacher-forced scoring). Pure TypeScript, no GPU. See docs/downstream-tasks.md.
//
//   condattendstream_M   needle-in-a-haystack / context recall   needle.ts
//   additionstream_N     reversed addition                        addition.ts
//   forwardaddition_N    forward addition                         addition.ts
//   multiplication_N     multiplication                           multiplication.ts
//   sort_N               sorting [inferred format]                sort.ts
//
// Reference quirks are reproduced by default; `{ fixQuirks: true }` fixes the per-task ones (the unscored
// first result digit of the arithmetic tasks). The harness quirk (a training stream identical across
// experiment seeds) is the `streamSeed` option of DownstreamStream.

import { createArithmeticTask } from './addition.ts';
import { createNeedleTask } from './needle.ts';
import { createSortTask } from './sort.ts';
import { DOWNSTREAM_FAMILIES, type DownstreamFamily, type DownstreamOptions, type DownstreamTask } from './task.ts';

export { DOWNSTREAM_FAMILIES, referenceMaxSteps } from './task.ts';
export type { DownstreamDefaults, DownstreamFamily, DownstreamOptions, DownstreamTask } from './task.ts';
export { createNeedleTask, NEEDLE_H, NEEDLE_MAX_M, NEEDLE_VOCAB } from './needle.ts';
export {
  ARITH_PAD,
  ARITH_VOCAB,
  EQ_TOKEN,
  OP_TOKEN,
  RESULT_OFFSET,
  STOP_TOKEN,
  createAdditionStreamTask,
  createArithmeticTask,
  createForwardAdditionTask,
  drawOperand,
} from './addition.ts';
export { createMultiplicationTask } from './multiplication.ts';
export { createSortTask, SORT_PAD, SORT_SEP, SORT_V } from './sort.ts';
export { DownstreamStream, makeTestSet, scoreRows, toBatch, DEFAULT_TEST_SIZE, DEFAULT_STREAM_SEED } from './harness.ts';

/** What each family trains (for listings and previews). */
export const DOWNSTREAM_SKILLS: Readonly<Record<DownstreamFamily, string>> = {
  condattendstream: 'needle-in-a-haystack: recall the value of the queried key among M key/value pairs',
  additionstream: 'reversed addition of two N-digit numbers (least significant digit first)',
  forwardaddition: 'forward addition of two N-digit numbers',
  multiplication: 'multiplication of two N-digit numbers (forward order)',
  sort: 'sorting N numbers [inferred format: not in the reference repo]',
};

/** The N the paper uses for each family (the ids of §6: condattendstream_30, …). */
export const PAPER_TASK_IDS: readonly string[] = ['condattendstream_30', 'additionstream_10', 'forwardaddition_5', 'multiplication_5', 'sort_10'];

const ID_RE = /^([a-z]+)_(\d+)$/;

function parseId(id: string): { family: DownstreamFamily; n: number } | undefined {
  const m = ID_RE.exec(id);
  if (!m || !(DOWNSTREAM_FAMILIES as readonly string[]).includes(m[1]!)) return undefined;
  return { family: m[1] as DownstreamFamily, n: Number(m[2]) };
}

/** True when `id` has the form name_N with name one of DOWNSTREAM_FAMILIES (N is range-checked on creation). */
export function isDownstreamTaskId(id: string): boolean {
  return parseId(id) !== undefined;
}

export function createDownstreamTask(id: string, opts: DownstreamOptions = {}): DownstreamTask {
  const parsed = parseId(id);
  if (!parsed) {
    throw new Error(
      `unknown downstream task id '${id}': expected name_N with name one of ${DOWNSTREAM_FAMILIES.join(', ')} (e.g. ${PAPER_TASK_IDS.join(', ')})`,
    );
  }
  const fix = opts.fixQuirks ?? false;
  const { family, n } = parsed;
  switch (family) {
    case 'condattendstream':
      return createNeedleTask(n, fix);
    case 'additionstream':
    case 'forwardaddition':
    case 'multiplication':
      return createArithmeticTask(family, n, fix);
    case 'sort':
      return createSortTask(n, fix);
  }
}
