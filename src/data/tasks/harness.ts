// The common harness of the downstream tasks (spec §6.1): the test set, the training stream with test
// duplicates dropped, batching and the float-free teacher-forced scorer.
//
// Reference behaviour reproduced here:
//   * test set: random.seed(s); eval_size (4000) calls of gen_single(); random.shuffle(test) on the same
//     generator.
//   * training stream: an infinite sequence of gen_single() samples from CPython random seeded 42, because
//     the HF Trainer re-seeds Python's random with its own default seed 42 after the test set is built.
//     [quirk] The stream is therefore identical across experiment seeds; pass `streamSeed: s` to fix it.
//     (With s = 42 the stream's first 4000 samples are exactly the unshuffled test set, so all of them are
//     dropped.)
//   * a stream sample exactly equal to any test sequence is dropped;
//   * inputs only: no attention mask, labels = inputs, loss over the wanted positions.

import type { Batch } from '../procedural/batch.ts';
import { PyRandom, type MT19937State } from '../../util/random.ts';
import type { DownstreamTask } from './task.ts';

export const DEFAULT_TEST_SIZE = 4000;
export const DEFAULT_STREAM_SEED = 42;

/** §6.1: random.seed(seed), `size` calls of genSingle, then random.shuffle on the same generator. */
export function makeTestSet(task: DownstreamTask, seed: number, size: number = DEFAULT_TEST_SIZE): Int32Array[] {
  if (!Number.isInteger(size) || size < 0) throw new RangeError(`test-set size must be a non-negative integer, got ${size}`);
  const rng = new PyRandom(seed);
  const rows: Int32Array[] = new Array(size);
  for (let i = 0; i < size; i++) rows[i] = task.genSingle(rng);
  rng.shuffle(rows);
  return rows;
}

/**
 * Rows → a Batch: ids, targets[p] = ids[p+1] (the last position: PAD), lossMask[p] = wanted[p],
 * attentionMask all ones (the reference feeds input_ids only).
 */
export function toBatch(task: DownstreamTask, rows: readonly Int32Array[]): Batch {
  const B = rows.length;
  const T = task.seqLen;
  const ids = new Int32Array(B * T);
  const targets = new Int32Array(B * T);
  const lossMask = new Float32Array(B * T);
  const attentionMask = new Float32Array(B * T).fill(1);
  let lossTokens = 0;
  for (let b = 0; b < B; b++) {
    const row = rows[b];
    if (row.length !== T) throw new RangeError(`${task.id}: row ${b} has length ${row.length}, expected ${T}`);
    const off = b * T;
    ids.set(row, off);
    targets.set(row.subarray(1), off);
    targets[off + T - 1] = task.padId;
    const w = task.wanted(row);
    for (let p = 0; p < T; p++) {
      if (w[p]) {
        lossMask[off + p] = 1;
        lossTokens++;
      }
    }
  }
  return { ids, targets, lossMask, attentionMask, batch: B, seqLen: T, lossTokens };
}

/**
 * Teacher-forced scoring: predictions[r·T + p] is the argmax prediction at position p of row r (for
 * ids[p+1]). Returns the number correct at wanted positions and the number of wanted positions.
 */
export function scoreRows(task: DownstreamTask, rows: readonly Int32Array[], predictions: Int32Array): { correct: number; total: number } {
  const T = task.seqLen;
  if (predictions.length !== rows.length * T) {
    throw new RangeError(`${task.id}: predictions has ${predictions.length} entries, expected rows·seqLen = ${rows.length}·${T}`);
  }
  let correct = 0;
  let total = 0;
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r];
    const w = task.wanted(row);
    const off = r * T;
    for (let p = 0; p < T - 1; p++) {
      if (!w[p]) continue;
      total++;
      if (predictions[off + p] === row[p + 1]) correct++;
    }
  }
  return { correct, total };
}

/** A 52-bit hash of a row (two independent 32-bit multiplicative lanes), for the test-set lookup. */
function rowHash(row: Int32Array): number {
  let h1 = 0x811c9dc5;
  let h2 = row.length;
  for (let i = 0; i < row.length; i++) {
    const v = row[i];
    h1 = Math.imul(h1 ^ v, 0x01000193);
    h2 = Math.imul(h2 + v, 0x5bd1e995) ^ (h2 >>> 15);
  }
  return (h1 >>> 0) * 0x100000 + ((h2 >>> 0) & 0xfffff);
}

function sameRow(a: Int32Array, b: Int32Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Exact membership of rows in a fixed set (hash buckets, then an element-wise comparison). */
class RowSet {
  private readonly buckets = new Map<number, Int32Array[]>();
  readonly size: number;
  constructor(rows: readonly Int32Array[]) {
    for (const r of rows) {
      const h = rowHash(r);
      const b = this.buckets.get(h);
      if (!b) this.buckets.set(h, [r]);
      else if (!b.some((x) => sameRow(x, r))) b.push(r);
    }
    this.size = rows.length;
  }
  has(row: Int32Array): boolean {
    const b = this.buckets.get(rowHash(row));
    return b !== undefined && b.some((x) => sameRow(x, row));
  }
}

interface Snapshot {
  state: MT19937State;
  /** Stream samples dropped before this step. */
  dropped: number;
}

export interface DownstreamStreamOptions {
  batchSize: number;
  /** Seed of the stream's CPython random (default 42, the HF Trainer's seed: the reference quirk). */
  streamSeed?: number;
  /** Save the generator state every this many steps, for random access (default 16). */
  snapshotEvery?: number;
  /** Give up after this many consecutive dropped samples (the test set covers the task). Default 1e6. */
  maxConsecutiveDrops?: number;
}

/**
 * The training stream of §6.1: infinite genSingle() samples from CPython random seeded `streamSeed`,
 * skipping any sample equal to a test sequence; batch(step) holds filtered samples
 * [step·B, (step+1)·B). Deterministic under any access order: sequential calls continue the live
 * generator; any other step restarts from the nearest saved state at or before it (one every
 * `snapshotEvery` steps) and regenerates forward.
 */
export class DownstreamStream {
  readonly task: DownstreamTask;
  readonly batchSize: number;
  readonly streamSeed: number;
  readonly snapshotEvery: number;
  private readonly maxConsecutiveDrops: number;
  private readonly testRows: RowSet;
  private readonly testSize: number;
  private readonly rng: PyRandom;
  /** The step whose batch the live generator produces next, and the samples dropped before it. */
  private cursorStep = 0;
  private cursorDropped = 0;
  private readonly snapshots = new Map<number, Snapshot>();
  /** Furthest step generated so far (exclusive) and the samples dropped before it. */
  private frontierStep = 0;
  private frontierDropped = 0;

  constructor(task: DownstreamTask, test: readonly Int32Array[], opts: DownstreamStreamOptions) {
    if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) throw new RangeError(`batchSize must be a positive integer, got ${opts.batchSize}`);
    this.task = task;
    this.batchSize = opts.batchSize;
    this.streamSeed = opts.streamSeed ?? DEFAULT_STREAM_SEED;
    this.snapshotEvery = opts.snapshotEvery ?? 16;
    if (!Number.isInteger(this.snapshotEvery) || this.snapshotEvery < 1) throw new RangeError('snapshotEvery must be a positive integer');
    this.maxConsecutiveDrops = opts.maxConsecutiveDrops ?? 1_000_000;
    this.testRows = new RowSet(test);
    this.testSize = test.length;
    this.rng = new PyRandom(this.streamSeed);
    this.snapshots.set(0, { state: this.rng.mt.getState(), dropped: 0 });
  }

  /** The batch of training step `step` (0-based). */
  batch(step: number): Batch {
    return toBatch(this.task, this.rows(step));
  }

  /** The rows of step `step`, before packing. */
  rows(step: number): Int32Array[] {
    if (!Number.isSafeInteger(step) || step < 0) throw new RangeError(`step must be a non-negative integer, got ${step}`);
    if (step !== this.cursorStep) {
      const K = this.snapshotEvery;
      // The nearest saved state at or before `step` (every multiple of K up to the frontier is saved).
      const restore = Math.min(Math.floor(step / K), Math.floor(this.frontierStep / K)) * K;
      // Keep the live generator when it is already between that state and the target step.
      if (!(this.cursorStep <= step && this.cursorStep >= restore)) {
        const snap = this.snapshots.get(restore);
        if (!snap) throw new Error(`internal: no stream snapshot at step ${restore}`);
        this.rng.mt.setState(snap.state);
        this.cursorStep = restore;
        this.cursorDropped = snap.dropped;
      }
      while (this.cursorStep < step) this.nextRows();
    }
    return this.nextRows();
  }

  /** Generates the batch at the cursor and advances it (saving a snapshot at each multiple of snapshotEvery). */
  private nextRows(): Int32Array[] {
    const rows: Int32Array[] = [];
    let consecutive = 0;
    while (rows.length < this.batchSize) {
      const s = this.task.genSingle(this.rng);
      if (this.testRows.size > 0 && this.testRows.has(s)) {
        this.cursorDropped++;
        if (++consecutive >= this.maxConsecutiveDrops) {
          throw new Error(
            `${this.task.id}: ${consecutive} consecutive stream samples were all test sequences; the test set (${this.testSize} rows) covers (nearly) every sequence the task can generate`,
          );
        }
        continue;
      }
      consecutive = 0;
      rows.push(s);
    }
    this.cursorStep++;
    if (this.cursorStep % this.snapshotEvery === 0 && !this.snapshots.has(this.cursorStep)) {
      this.snapshots.set(this.cursorStep, { state: this.rng.mt.getState(), dropped: this.cursorDropped });
    }
    if (this.cursorStep > this.frontierStep) {
      this.frontierStep = this.cursorStep;
      this.frontierDropped = this.cursorDropped;
    }
    return rows;
  }

  /** Number of stream samples dropped (as test duplicates) before step `step`'s batch. */
  droppedBefore(step: number): number {
    if (step === 0) return 0;
    this.rows(step - 1);
    return this.cursorDropped;
  }

  describe(): {
    task: string;
    batchSize: number;
    streamSeed: number;
    testSize: number;
    snapshotEvery: number;
    stepsGenerated: number;
    droppedDuplicates: number;
  } {
    return {
      task: this.task.id,
      batchSize: this.batchSize,
      streamSeed: this.streamSeed,
      testSize: this.testSize,
      snapshotEvery: this.snapshotEvery,
      stepsGenerated: this.frontierStep,
      droppedDuplicates: this.frontierDropped,
    };
  }
}
