// The shared shape of a downstream algorithmic task (spec §6). Re-exported by index.ts, which is the
// public entry point; the family modules import the types from here to avoid an import cycle.

import type { PyRandom } from '../../util/random.ts';

export const DOWNSTREAM_FAMILIES = ['condattendstream', 'additionstream', 'forwardaddition', 'multiplication', 'sort'] as const;
export type DownstreamFamily = (typeof DOWNSTREAM_FAMILIES)[number];

export interface DownstreamOptions {
  /**
   * false (default): reproduce the reference's quirks (spec §6), so that numbers stay comparable with the
   * paper. true: fix them. Today the only per-task quirk is the unscored first result digit of the three
   * arithmetic tasks; fixQuirks makes the '=' position wanted too.
   */
  fixQuirks?: boolean;
}

export interface DownstreamDefaults {
  nLayer: number;
  nHead: number;
  nEmbd: number;
  nPositions: number;
  batch: number;
  evalSteps: number;
  maxSteps: number;
}

export interface DownstreamTask {
  readonly id: string;
  readonly family: DownstreamFamily;
  readonly n: number;
  readonly vocabSize: number;
  readonly seqLen: number;
  readonly padId: number;
  /** Whether this instance fixes the reference quirks (DownstreamOptions.fixQuirks). */
  readonly fixQuirks: boolean;
  /** One sequence exactly as the reference's gen_single() draws it from CPython's random. */
  genSingle(rng: PyRandom): Int32Array;
  /** wanted[p] = 1 when position p (predicting ids[p+1]) carries loss and is scored; p < seqLen-1. */
  wanted(ids: Int32Array): Uint8Array;
  readonly defaults: DownstreamDefaults;
  /** Short printable form of a token (for previews): e.g. 'k3', 'q3', '+', '=', '$' (STOP), '_' (PAD). */
  renderToken(t: number): string;
  /** One line explaining renderToken's symbols. */
  readonly legend: string;
}

/** HF Trainer max_steps of the reference: train_steps·train_size/batch = 250·40000/batch (§6.1). */
export function referenceMaxSteps(batch: number): number {
  return Math.floor((250 * 40000) / batch);
}

export function checkLength(task: { id: string; seqLen: number }, ids: Int32Array): void {
  if (ids.length !== task.seqLen) throw new RangeError(`${task.id}: sequence has length ${ids.length}, expected ${task.seqLen}`);
}
