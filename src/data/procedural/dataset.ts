// Dataset / loader helpers reproducing the reference's epoch structure (spec §2.1, §2.7, §2.12).
//
// Algorithmic tasks (and WW / ECA, which follow the same scheme):
//   epoch e: train base seed = seed + e, validation base seed = seed + e + 10000;
//   train size = batch × steps_per_epoch (64 × 2501), validation size = batch × 10 (640);
//   the train order is shuffled every epoch, the validation order is not.
//   [quirk, reproduced] epoch-0 train indices 10000..10639 use the validation seeds, and consecutive
//   epochs are the same stream shifted by one index.
// Dyck / Dyck-shuffle:
//   validation = samples trainSize .. trainSize+39 of the stream random.seed(seed + 1000) (the reference
//   builds a whole train split first and keeps only the 40 validation samples that follow it);
//   epoch e train = the first trainSize samples of random.seed(seed + e).
//
// The per-epoch train order is our own (the reference uses torch's DataLoader shuffling, which is not
// reproducible outside torch): CPython `random.shuffle(list(range(size)))` on a PyRandom seeded with
// init_by_array([seed, epoch, 0x4F524452 /* "ORDR" */]) — in Python:
//   random.seed(seed + (epoch << 32) + (0x4F524452 << 64)); order = list(range(size)); random.shuffle(order)

import { Batcher, batchFromIndices, type Batch, type SampleSource } from './batch.ts';
import { PyRandom } from '../../util/random.ts';
import { createTask, taskAccess, resolveConfig, type ProceduralTask, type TaskConfigs, type TaskName } from './registry.ts';
import { rangeMask, shiftTargets, type Sample } from './sample.ts';

export const VALIDATION_SEED_OFFSET = 10000;
export const DYCK_VALIDATION_SEED_OFFSET = 1000;
export const ORDER_SALT = 0x4f524452; // "ORDR"

/** Base seeds of epoch e for the algorithmic loaders. */
export function epochSeeds(seed: number, epoch: number): { train: number; validation: number } {
  return { train: seed + epoch, validation: seed + epoch + VALIDATION_SEED_OFFSET };
}

/** The shuffled train order of epoch e (a permutation of 0..size-1). */
export function epochOrder(size: number, seed: number, epoch: number): Uint32Array {
  const rng = new PyRandom(0);
  rng.seedByArray([seed >>> 0, epoch >>> 0, ORDER_SALT]);
  const order = new Uint32Array(size);
  for (let i = 0; i < size; i++) order[i] = i;
  rng.shuffle(order);
  return order;
}

/**
 * Compact in-memory copy of a stream task's samples (Dyck: 16,032 × 2048 tokens = 64 MiB as Uint16),
 * so that a shuffled epoch order can index it. Samples are rebuilt on access with Dyck's fixed masks.
 */
export class StreamStore implements SampleSource {
  readonly padId: number;
  readonly contextLength: number;
  private readonly tokens: Uint16Array | Int32Array;
  private readonly n: number;

  constructor(
    task: ProceduralTask,
    readonly count: number,
    start = 0,
  ) {
    if (taskAccess(task.name) !== 'stream') throw new RangeError('StreamStore is for the Dyck stream tasks');
    this.padId = task.padId;
    this.contextLength = task.contextLength;
    this.n = task.contextLength;
    this.tokens = task.vocabSize <= 0x10000 ? new Uint16Array(count * this.n) : new Int32Array(count * this.n);
    for (let i = 0; i < count; i++) this.tokens.set(task.sample(start + i).ids, i * this.n);
  }

  sample(idx: number): Sample {
    if (!Number.isInteger(idx) || idx < 0 || idx >= this.count) throw new RangeError(`index ${idx} outside [0, ${this.count})`);
    const ids = Int32Array.from(this.tokens.subarray(idx * this.n, (idx + 1) * this.n));
    return {
      ids,
      targets: shiftTargets(ids, this.padId),
      lossMask: rangeMask(this.n, 0, this.n - 2),
      attentionMask: new Uint8Array(this.n).fill(1),
    };
  }
}

export interface LoaderOptions {
  /** Sequences per batch (64 algorithmic; 4 per Dyck micro-batch). */
  batchSize?: number;
  /** Batches per epoch (2501 algorithmic; 4008 Dyck micro-batches). */
  stepsPerEpoch?: number;
  /** Validation samples (batch × 10 = 640 algorithmic; 40 Dyck). */
  validationSize?: number;
  /** Shuffle the train order every epoch (default true). */
  shuffle?: boolean;
}

/** The epoch structure of one procedural pretraining run. */
export class ProceduralLoader<N extends TaskName = TaskName> {
  readonly config: TaskConfigs[N];
  readonly batchSize: number;
  readonly stepsPerEpoch: number;
  readonly trainSize: number;
  readonly validationSize: number;
  readonly shuffle: boolean;
  /** Model-facing metadata (from the full-length configuration). */
  readonly vocabSize: number;
  readonly contextLength: number;
  readonly padId: number;

  constructor(
    readonly name: N,
    overrides: Partial<TaskConfigs[N]> = {},
    opts: LoaderOptions = {},
  ) {
    this.config = resolveConfig(name, overrides);
    const stream = taskAccess(name) === 'stream';
    this.batchSize = opts.batchSize ?? (stream ? 4 : 64);
    this.stepsPerEpoch = opts.stepsPerEpoch ?? (stream ? 4008 : 2501);
    this.trainSize = this.batchSize * this.stepsPerEpoch;
    this.validationSize = opts.validationSize ?? (stream ? 40 : this.batchSize * 10);
    this.shuffle = opts.shuffle ?? true;
    const probe = createTask(name, this.config);
    this.vocabSize = probe.vocabSize;
    this.contextLength = probe.contextLength;
    this.padId = probe.padId;
  }

  private taskWith(seed: number, curriculumLength?: number): ProceduralTask<N> {
    const overrides = { ...this.config, seed } as Partial<TaskConfigs[N]>;
    if (curriculumLength !== undefined) (overrides as { curriculumLength?: number }).curriculumLength = curriculumLength;
    return createTask(this.name, overrides);
  }

  /**
   * The train samples of epoch e, indexable 0..trainSize-1. For random-access tasks this is the task with
   * base seed seed+e; for Dyck the first trainSize samples of random.seed(seed+e) are materialised.
   */
  trainSource(epoch: number, curriculumLength?: number): SampleSource {
    const task = this.taskWith(this.config.seed + epoch, curriculumLength);
    return task.randomAccess ? task : new StreamStore(task, this.trainSize);
  }

  /** The validation samples used at epoch e. */
  validationSamples(epoch: number, curriculumLength?: number): Sample[] {
    if (taskAccess(this.name) === 'stream') {
      return this.taskWith(this.config.seed + DYCK_VALIDATION_SEED_OFFSET).samples(this.trainSize, this.validationSize);
    }
    return this.taskWith(epochSeeds(this.config.seed, epoch).validation, curriculumLength).samples(0, this.validationSize);
  }

  /** Validation batches (unshuffled, the last one possibly smaller), padded to the context length. */
  validationBatches(epoch: number, curriculumLength?: number): Batch[] {
    const samples = this.validationSamples(epoch, curriculumLength);
    const source: SampleSource = { padId: this.padId, contextLength: this.contextLength, sample: (i) => samples[i] };
    const out: Batch[] = [];
    for (let start = 0; start < samples.length; start += this.batchSize) {
      const idx = Array.from({ length: Math.min(this.batchSize, samples.length - start) }, (_, i) => start + i);
      out.push(batchFromIndices(source, idx, this.contextLength));
    }
    return out;
  }

  /** The train order of epoch e (identity when shuffling is off). */
  trainOrder(epoch: number): Uint32Array {
    if (this.shuffle) return epochOrder(this.trainSize, this.config.seed, epoch);
    return Uint32Array.from({ length: this.trainSize }, (_, i) => i);
  }

  /** The stepsPerEpoch train batches of epoch e, padded to the full context length. */
  *trainBatches(epoch: number, curriculumLength?: number): Generator<Batch, void, unknown> {
    const source = this.trainSource(epoch, curriculumLength);
    const order = this.trainOrder(epoch);
    if (!this.shuffle) {
      const batcher = new Batcher(source, this.batchSize, { seqLen: this.contextLength });
      for (let s = 0; s < this.stepsPerEpoch; s++) yield batcher.next();
      return;
    }
    for (let s = 0; s < this.stepsPerEpoch; s++) {
      yield batchFromIndices(source, order.subarray(s * this.batchSize, (s + 1) * this.batchSize), this.contextLength);
    }
  }
}

/**
 * Curriculum on the sequence length (§2.12; off in all shipped configs): start at `start` (2), and after
 * an epoch whose best validation accuracy reached `threshold` (0.99) grow by `stepSize` (2) up to
 * seqLength, resetting the best accuracy. The model is always built for the full seqLength.
 */
export class CurriculumSchedule {
  length: number;
  bestAccuracy = 0;
  readonly start: number;
  readonly stepSize: number;
  readonly threshold: number;

  constructor(
    readonly seqLength: number,
    opts: { start?: number; stepSize?: number; threshold?: number } = {},
  ) {
    this.start = opts.start ?? 2;
    this.stepSize = opts.stepSize ?? 2;
    this.threshold = opts.threshold ?? 0.99;
    this.length = Math.min(this.start, seqLength);
  }

  /** Records a validation accuracy of the current stage. */
  observe(accuracy: number): void {
    if (accuracy > this.bestAccuracy) this.bestAccuracy = accuracy;
  }

  /** Applies the end-of-epoch rule; returns true when the length grew. */
  endEpoch(): boolean {
    if (this.bestAccuracy >= this.threshold && this.length < this.seqLength) {
      this.length = Math.min(this.length + this.stepSize, this.seqLength);
      this.bestAccuracy = 0;
      return true;
    }
    return false;
  }
}
