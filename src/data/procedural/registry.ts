// Registry of the procedural tasks, keyed by the reference's task names, with typed configs, spec
// defaults, derived model vocabulary / context length, and a uniform sampling interface.
//
//   random-access tasks (sort reverse identity set union delete stack ww eca uniform):
//       sample(idx) = generator(RandomState(seed + idx))            — independent, O(1) per sample
//   stream tasks (dyck dyck_shuffle):
//       sample(idx) = call number idx after random.seed(seed)      — sequential; random access replays
//
// With `shuffled: true` every task returns its shuffled control (§2.11, see shuffle.ts).

import {
  generateDelete,
  generateIdentity,
  generateReverse,
  generateSet,
  generateSort,
  generateStack,
  generateUniform,
  generateUnion,
  generateWW,
} from './algorithmic.ts';
import { fillDyck, fillDyckShuffle } from './dyck.ts';
import { ECA_PAD, ECA_SEP, ECA_VOCAB, ecaLength, generateEca } from './eca.ts';
import { NumpyRandomState, PyRandom } from '../../util/random.ts';
import { makeSample, rangeMask, type Sample } from './sample.ts';
import { shuffleRngForSeed, shuffleRngForStream, shuffleSample } from './shuffle.ts';

export const TASK_NAMES = [
  'sort',
  'reverse',
  'identity',
  'set',
  'union',
  'delete',
  'stack',
  'dyck',
  'dyck_shuffle',
  'ww',
  'eca',
  'uniform',
] as const;
export type TaskName = (typeof TASK_NAMES)[number];

export const ALGORITHMIC_TASKS = ['sort', 'reverse', 'identity', 'set', 'union', 'delete', 'stack'] as const;
export type AlgorithmicTaskName = (typeof ALGORITHMIC_TASKS)[number];

export function isTaskName(s: string): s is TaskName {
  return (TASK_NAMES as readonly string[]).includes(s);
}

interface BaseConfig {
  /** Base seed: sample idx uses RandomState(seed + idx), or the stream random.seed(seed) for Dyck. */
  seed: number;
  /** Return the shuffled control (§2.11) instead of the structured sample. */
  shuffled: boolean;
}

/** sort / reverse / identity / set / union / delete / stack (§2.1–2.6). */
export interface AlgorithmicConfig extends BaseConfig {
  /** L, the reference's `seq_length` (default 64). */
  seqLength: number;
  /** V, the reference's `vocab_size` (default 100): content tokens 1..V-1, SEP = V, PAD = V+1. */
  vocabSize: number;
  /**
   * Curriculum length ℓ (§2.12): when set, samples are generated with L = ℓ while the model's vocabulary
   * and context length stay those of `seqLength`. Undefined = off (all shipped configs).
   */
  curriculumLength?: number;
}

/** ww (§2.9, inferred). */
export interface WWConfig extends AlgorithmicConfig {
  /** Dyck-style loss on every position but the last, instead of only on the copy. */
  lossOnAll: boolean;
}

/** eca (§2.10, inferred). */
export interface EcaConfig extends BaseConfig {
  /** Number of cells per row L (default 64). */
  seqLength: number;
  /** Wolfram rule number 0..255 (default 110). */
  rule: number;
  /** Rows T in the sequence s0 SEP s1 … s_{T-1} (default 2). */
  rows: number;
  /** Rule applications before s0 is written (default 0). */
  burnIn: number;
  /** Curriculum length ℓ for the number of cells (see AlgorithmicConfig). */
  curriculumLength?: number;
}

/** dyck / dyck_shuffle (§2.7, §2.8). */
export interface DyckConfig extends BaseConfig {
  /** Number of bracket types (default 64). */
  k: number;
  /** Exact sequence length n (default 2048). */
  length: number;
  /** Probability of opening in the free branch (default 0.5). */
  pOpen: number;
  /** Depth cap of dyck_shuffle (default 16; unused by dyck, whose depth is uncapped). */
  maxDepth: number;
}

export interface TaskConfigs {
  sort: AlgorithmicConfig;
  reverse: AlgorithmicConfig;
  identity: AlgorithmicConfig;
  set: AlgorithmicConfig;
  union: AlgorithmicConfig;
  delete: AlgorithmicConfig;
  stack: AlgorithmicConfig;
  dyck: DyckConfig;
  dyck_shuffle: DyckConfig;
  ww: WWConfig;
  eca: EcaConfig;
  uniform: AlgorithmicConfig;
}

export type TaskConfig = TaskConfigs[TaskName];

const ALGO_DEFAULTS: Readonly<AlgorithmicConfig> = Object.freeze({ seqLength: 64, vocabSize: 100, seed: 42, shuffled: false });
const DYCK_DEFAULTS: Readonly<DyckConfig> = Object.freeze({ k: 64, length: 2048, pOpen: 0.5, maxDepth: 16, seed: 42, shuffled: false });

/** Spec defaults (§2.1 "Defaults from the 9 configs", §2.9, §2.10). */
export const DEFAULT_CONFIGS: { readonly [N in TaskName]: Readonly<TaskConfigs[N]> } = {
  sort: ALGO_DEFAULTS,
  reverse: ALGO_DEFAULTS,
  identity: ALGO_DEFAULTS,
  set: ALGO_DEFAULTS,
  union: ALGO_DEFAULTS,
  delete: ALGO_DEFAULTS,
  stack: ALGO_DEFAULTS,
  dyck: DYCK_DEFAULTS,
  dyck_shuffle: DYCK_DEFAULTS,
  ww: Object.freeze({ ...ALGO_DEFAULTS, lossOnAll: false }),
  eca: Object.freeze({ seqLength: 64, rule: 110, rows: 2, burnIn: 0, seed: 42, shuffled: false }),
  uniform: ALGO_DEFAULTS,
};

/** One-line description of what each task trains (used by the CLI and docs). */
export const TASK_SKILLS: { readonly [N in TaskName]: string } = {
  sort: 'sorting: copy the input multiset in ascending order (comparison, global attention)',
  reverse: 'reversal: copy the input backwards (position arithmetic, long-range copying)',
  identity: 'identity: copy the input verbatim (induction-head style copying)',
  set: 'deduplication: copy the distinct tokens in first-appearance order (memory of what was seen)',
  union: 'set union of two halves, deduplicated (copying with membership tests across segments)',
  delete: 'delete the first occurrence of a query token (conditional copying)',
  stack: 'stack simulation: replay push/pop ops and emit the final stack top-first (state tracking)',
  dyck: 'k-Dyck: well-nested brackets of k types (hierarchical, stack-like structure)',
  dyck_shuffle: 'k-Dyck shuffle: interleaved, crossing bracket dependencies (counting, depth <= max_depth)',
  ww: 'WW: a random string followed by its copy (pure in-context copying)',
  eca: 'elementary cellular automaton (rule 110 by default): predict the next state (local rule execution)',
  uniform: 'uniform random tokens, loss on all positions but the last: nothing to learn beyond the unigram (the no-structure control; not in the paper)',
};

/**
 * The control a stage-1 stream is, when it has nothing to learn by design — the shuffled control of any
 * task (§2.11), or the uniform task — or null for a task with a language to learn. Reports and logs
 * use it not to flag such a stage 1 as having failed to learn.
 */
export function controlStream(task: string, shuffled: boolean): 'the shuffled control' | 'the uniform control' | null {
  if (shuffled) return 'the shuffled control';
  return task === 'uniform' ? 'the uniform control' : null;
}

/** How samples are indexed: random access (fresh RNG per sample) or one sequential stream. */
export function taskAccess(name: TaskName): 'random' | 'stream' {
  return name === 'dyck' || name === 'dyck_shuffle' ? 'stream' : 'random';
}

function algorithmic(name: TaskName): name is AlgorithmicTaskName | 'ww' | 'uniform' {
  return (ALGORITHMIC_TASKS as readonly string[]).includes(name) || name === 'ww' || name === 'uniform';
}

/** The model vocabulary size the task needs: V+2 (algorithmic, WW, uniform), 2k+1 (Dyck), 4 (ECA). */
export function modelVocabSize(name: TaskName, config: Readonly<TaskConfig>): number {
  if (name === 'dyck' || name === 'dyck_shuffle') return 2 * (config as DyckConfig).k + 1;
  if (name === 'eca') return ECA_VOCAB;
  return (config as AlgorithmicConfig).vocabSize + 2;
}

/**
 * The model context length (n_positions, §2.1): 2L+1 for all algorithmic tasks except union (2L+2) and
 * delete (2L+3) — stack sequences are 2L long but keep 2L+1 —, the length n for Dyck, 2L for WW, L for
 * uniform, and T·L + T-1 for ECA (2L+1 for the default T = 2). Always that of the full seqLength,
 * curriculum or not.
 */
export function contextLength(name: TaskName, config: Readonly<TaskConfig>): number {
  switch (name) {
    case 'dyck':
    case 'dyck_shuffle':
      return (config as DyckConfig).length;
    case 'eca': {
      const c = config as EcaConfig;
      return ecaLength(c.seqLength, c.rows);
    }
    case 'ww':
      return 2 * (config as WWConfig).seqLength;
    case 'uniform':
      return (config as AlgorithmicConfig).seqLength;
    case 'union':
      return 2 * (config as AlgorithmicConfig).seqLength + 2;
    case 'delete':
      return 2 * (config as AlgorithmicConfig).seqLength + 3;
    default:
      return 2 * (config as AlgorithmicConfig).seqLength + 1;
  }
}

/**
 * The shortest length (seq_length L, or the Dyck length n) at which every sample of the task has a
 * loss position, with the reason shorter ones have none. The generators accept shorter lengths (the
 * samples are well formed, only empty of targets); a training config must not use them.
 */
export const MIN_TRAINING_LENGTH: { readonly [N in TaskName]: { readonly min: number; readonly why?: string } } = {
  sort: { min: 1 },
  reverse: { min: 1 },
  identity: { min: 1 },
  set: { min: 1 },
  union: { min: 2, why: 'each half holds floor(L/2) tokens, so L = 1 leaves both halves and the union empty' },
  delete: { min: 2, why: 'L = 1 deletes the only input token whenever the query equals it (always with vocab_size 2), leaving no output' },
  stack: { min: 2, why: 'the sequence is cut to 2L tokens, so L = 1 leaves no room for the stack after SEP' },
  dyck: { min: 2, why: 'the loss is on positions 0..n-2, none for n = 1' },
  dyck_shuffle: { min: 2, why: 'the loss is on positions 0..n-2, none for n = 1' },
  ww: { min: 1 },
  eca: { min: 1 },
  uniform: { min: 2, why: 'the loss is on positions 0..L-2, none for L = 1' },
};

/** Special token ids: PAD always, SEP where the task has one. */
export function specialTokens(name: TaskName, config: Readonly<TaskConfig>): { pad: number; sep?: number } {
  if (name === 'dyck' || name === 'dyck_shuffle') return { pad: 2 * (config as DyckConfig).k };
  if (name === 'eca') return { pad: ECA_PAD, sep: ECA_SEP };
  const V = (config as AlgorithmicConfig).vocabSize;
  return name === 'ww' || name === 'uniform' ? { pad: V + 1 } : { pad: V + 1, sep: V };
}

function requireInt(value: unknown, what: string, min: number, max = Number.MAX_SAFE_INTEGER): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${what} must be an integer in [${min}, ${max}], got ${String(value)}`);
  }
}

/** Throws a RangeError describing the first invalid field. */
export function validateConfig<N extends TaskName>(name: N, config: TaskConfigs[N]): void {
  requireInt(config.seed, 'seed', 0, 0xffffffff);
  if (typeof config.shuffled !== 'boolean') throw new RangeError('shuffled must be a boolean');
  if (name === 'dyck' || name === 'dyck_shuffle') {
    const c = config as DyckConfig;
    requireInt(c.k, 'k', 1, 1 << 20);
    requireInt(c.length, 'length', 1, 1 << 26);
    requireInt(c.maxDepth, 'max_depth', 1);
    if (typeof c.pOpen !== 'number' || !(c.pOpen >= 0 && c.pOpen <= 1)) {
      throw new RangeError(`p_open must be in [0, 1], got ${String(c.pOpen)}`);
    }
    return;
  }
  const c = config as AlgorithmicConfig | EcaConfig;
  requireInt(c.seqLength, 'seq_length', 1, 1 << 24);
  if (c.curriculumLength !== undefined) requireInt(c.curriculumLength, 'curriculum length', 1, c.seqLength);
  if (name === 'eca') {
    const e = config as EcaConfig;
    requireInt(e.rule, 'rule', 0, 255);
    requireInt(e.rows, 'rows', 2, 1 << 16);
    requireInt(e.burnIn, 'burn_in', 0);
    return;
  }
  const a = config as AlgorithmicConfig;
  // Content tokens are 1..V-1; the stack needs at least two so that it can never end empty.
  requireInt(a.vocabSize, 'vocab_size', name === 'stack' ? 3 : 2, 1 << 24);
  if (name === 'ww' && typeof (config as WWConfig).lossOnAll !== 'boolean') {
    throw new RangeError('lossOnAll must be a boolean');
  }
}

/** Defaults ⊕ overrides (undefined overrides are ignored), validated. */
export function resolveConfig<N extends TaskName>(name: N, overrides: Partial<TaskConfigs[N]> = {}): TaskConfigs[N] {
  if (!isTaskName(name)) throw new RangeError(`unknown task '${String(name)}' (expected one of ${TASK_NAMES.join(', ')})`);
  const config = { ...DEFAULT_CONFIGS[name] } as TaskConfigs[N];
  const optional = name === 'dyck' || name === 'dyck_shuffle' ? [] : ['curriculumLength'];
  for (const [key, value] of Object.entries(overrides)) {
    if (!(key in config) && !optional.includes(key)) {
      throw new RangeError(`unknown option '${key}' for task '${name}' (known: ${[...Object.keys(config), ...optional].join(', ')})`);
    }
    if (value !== undefined) (config as unknown as Record<string, unknown>)[key] = value;
  }
  validateConfig(name, config);
  return config;
}

/** A configured task: metadata plus deterministic samples. */
export interface ProceduralTask<N extends TaskName = TaskName> {
  readonly name: N;
  readonly config: Readonly<TaskConfigs[N]>;
  /** Model vocabulary size (token ids are < vocabSize). */
  readonly vocabSize: number;
  /** Model context length n_positions; every sample is at most this long. */
  readonly contextLength: number;
  readonly padId: number;
  readonly sepId: number | undefined;
  /** true when sample(idx) is O(1); false for the sequential Dyck streams. */
  readonly randomAccess: boolean;
  /** Sample number idx (>= 0) of this configuration. */
  sample(idx: number): Sample;
  /** Samples start..start+count-1. */
  samples(start: number, count: number): Sample[];
  /** Endless iterator from sample `start`. */
  stream(start?: number): Generator<Sample, never, unknown>;
}

type RandomAccessGenerator = (rng: NumpyRandomState, L: number) => Sample;

function randomAccessGenerator(name: TaskName, config: TaskConfig): RandomAccessGenerator {
  const V = (config as AlgorithmicConfig).vocabSize;
  switch (name) {
    case 'sort':
      return (rng, L) => generateSort(rng, L, V);
    case 'reverse':
      return (rng, L) => generateReverse(rng, L, V);
    case 'identity':
      return (rng, L) => generateIdentity(rng, L, V);
    case 'set':
      return (rng, L) => generateSet(rng, L, V);
    case 'union':
      return (rng, L) => generateUnion(rng, L, V);
    case 'delete':
      return (rng, L) => generateDelete(rng, L, V);
    case 'stack':
      return (rng, L) => generateStack(rng, L, V);
    case 'ww': {
      const lossOnAll = (config as WWConfig).lossOnAll;
      return (rng, L) => generateWW(rng, L, V, lossOnAll);
    }
    case 'eca': {
      const e = config as EcaConfig;
      return (rng, L) => generateEca(rng, L, e.rule, e.rows, e.burnIn);
    }
    case 'uniform':
      return (rng, L) => generateUniform(rng, L, V);
    default:
      throw new Error(`${name} is not a random-access task`);
  }
}

abstract class TaskBase<N extends TaskName> implements ProceduralTask<N> {
  readonly vocabSize: number;
  readonly contextLength: number;
  readonly padId: number;
  readonly sepId: number | undefined;
  abstract readonly randomAccess: boolean;

  constructor(
    readonly name: N,
    readonly config: Readonly<TaskConfigs[N]>,
  ) {
    this.vocabSize = modelVocabSize(name, config);
    this.contextLength = contextLength(name, config);
    const special = specialTokens(name, config);
    this.padId = special.pad;
    this.sepId = special.sep;
  }

  abstract sample(idx: number): Sample;

  samples(start: number, count: number): Sample[] {
    const out: Sample[] = [];
    for (let i = 0; i < count; i++) out.push(this.sample(start + i));
    return out;
  }

  *stream(start = 0): Generator<Sample, never, unknown> {
    for (let idx = start; ; idx++) yield this.sample(idx);
  }

  protected checkIndex(idx: number): void {
    if (!Number.isInteger(idx) || idx < 0) throw new RangeError(`sample index must be a non-negative integer, got ${idx}`);
  }
}

class RandomAccessTask<N extends TaskName> extends TaskBase<N> {
  readonly randomAccess = true;
  private readonly generate: RandomAccessGenerator;
  private readonly genLength: number;

  constructor(name: N, config: TaskConfigs[N]) {
    super(name, config);
    this.generate = randomAccessGenerator(name, config);
    const c = config as AlgorithmicConfig | EcaConfig;
    this.genLength = c.curriculumLength ?? c.seqLength;
  }

  sample(idx: number): Sample {
    this.checkIndex(idx);
    const sampleSeed = this.config.seed + idx;
    if (sampleSeed > 0xffffffff) throw new RangeError(`seed + idx = ${sampleSeed} exceeds numpy's 2^32-1 seed limit`);
    const s = this.generate(new NumpyRandomState(sampleSeed), this.genLength);
    return this.config.shuffled ? shuffleSample(s, this.padId, shuffleRngForSeed(sampleSeed)) : s;
  }
}

/**
 * Dyck / Dyck-shuffle: one CPython stream. A cursor remembers where the stream is, so consecutive
 * indices cost one generation each; going backwards re-seeds and replays (generation into a scratch
 * buffer, discarded).
 */
class StreamTask<N extends 'dyck' | 'dyck_shuffle'> extends TaskBase<N> {
  readonly randomAccess = false;
  private readonly rng: PyRandom;
  private next = 0;
  private scratch: Int32Array;

  constructor(name: N, config: DyckConfig) {
    super(name, config as TaskConfigs[N]);
    this.rng = new PyRandom(config.seed);
    this.scratch = new Int32Array(config.length);
  }

  private fill(out: Int32Array): void {
    const c = this.config as DyckConfig;
    if (this.name === 'dyck') fillDyck(this.rng, out, c.length, c.k, c.pOpen);
    else fillDyckShuffle(this.rng, out, c.length, c.k, c.pOpen, c.maxDepth);
    this.next++;
  }

  sample(idx: number): Sample {
    this.checkIndex(idx);
    if (idx < this.next) {
      this.rng.seed(this.config.seed);
      this.next = 0;
    }
    while (this.next < idx) this.fill(this.scratch);
    const ids = new Int32Array((this.config as DyckConfig).length);
    this.fill(ids);
    const s = makeSample(ids, rangeMask(ids.length, 0, ids.length - 2), this.padId, 'ones');
    return this.config.shuffled ? shuffleSample(s, this.padId, shuffleRngForStream(this.config.seed, idx)) : s;
  }
}

/** Creates a task with spec defaults overridden by `overrides`. */
export function createTask<N extends TaskName>(name: N, overrides: Partial<TaskConfigs[N]> = {}): ProceduralTask<N> {
  const config = resolveConfig(name, overrides);
  if (name === 'dyck' || name === 'dyck_shuffle') {
    return new StreamTask(name as 'dyck' | 'dyck_shuffle', config as DyckConfig) as unknown as ProceduralTask<N>;
  }
  if (!algorithmic(name) && name !== 'eca') throw new RangeError(`unknown task '${name}'`);
  return new RandomAccessTask(name, config);
}
