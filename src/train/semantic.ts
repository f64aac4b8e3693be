/**
 * Stage 2 on a semantic corpus (spec §7): train a GPT on C4, CodeParrot or DeepMind-Math from the
 * C4_SCHEMA / CODEPARROT_SCHEMA / DEEPMIND_MATH_SCHEMA configs, fresh or warmed up from a stage-1
 * checkpoint (§5 transfer; attention + MLP + LayerNorm with fresh embeddings is what the experiment
 * runner passes by default).
 *
 *   C4          the `tokenizer` key (GPT-2 BPE, 50257, by default; or a tokenizer.json); training: the
 *               first max_train_documents documents concatenated and cut into n_positions-token
 *               sequences (packConcatenated);
 *               validation: the first max_eval_documents documents, one per sequence (longer ones in
 *               chunks), right-padded with EOS 50256, pads carrying no loss (packPerDocument)
 *   CodeParrot  constant-length packing (packConstantLength) with an end-of-text id after every file;
 *               the `tokenizer` key (GPT-2's by default; CodeParrot's BPE as a tokenizer.json), or one
 *               the caller injects; validation: the first (max_eval_steps+1)·valid_batch_size sequences
 *   DM-Math     the character tokenizer (vocab 99); training: the §7.3 infinite stream (difficulty, then
 *               module, uniformly; PyRandom(seed)) packed greedily into seq_length sequences with
 *               answer-only loss; validation: the validation_dir module files read round-robin, packed
 *               the same way; evaluation adds problem accuracy (teacher forcing, with the reference's
 *               first-n-1 quirk)
 *
 * C4 and CodeParrot training sequences are tokenized once into a token cache on disk (binary token
 * shards, src/data/tokenizers/cache.ts, under `tokenCache.root`, default data/cache/tokens) and read
 * back by positioned reads; a later run with the same corpus files, tokenizer and packing reuses it.
 * The validation sets, and DM-Math's training set (problems packed greedily from a seeded sampler, as
 * many as the run consumes, with an answer-only loss mask the shards do not hold), are tokenized into
 * memory (Uint16 ids when the vocabulary fits, else Int32; a loss mask only where some label is
 * masked). A checkpoint's `data.source.cache` records the cache (dir, tokenizer, token count) and the
 * `{shard, offset}` cursor of the next sequence; a resume over a cache with another token count or
 * tokenizer, or whose cursor for that step differs, is refused naming the field. Training batches are a pure function of (step, micro-batch):
 * sequence g = (step·A + micro)·B + row of an order that is a fresh permutation of the training
 * sequences per epoch (PyRandom seeded [seed, epoch]; the reference's random sampler), or the stream
 * order for DM-Math, whose training set is exactly the sequences the run consumes. A resume therefore
 * sees the batches the uninterrupted run would have seen, and its losses are bitwise equal.
 *
 * Evaluation at step 0 and every eval_steps (C4) / save_checkpoint_steps (CodeParrot, DM-Math): the
 * token-weighted mean loss over the labels of the validation set (pads ignored), perplexity = exp(loss),
 * token accuracy, problem accuracy for DM-Math. Tokens seen = step · micro-batch · accumulation ·
 * context (padding counted, as the page counts it). metrics.jsonl holds the step losses and the
 * evaluations (`eval_loss`, `eval_perplexity`, `eval_problem_accuracy`, ...).
 *
 * The run directory follows src/train/rundir.ts (locked while written, an existing run refused without
 * `resume` or `overwrite`, a resume checked against the checkpoint's stored config).
 */
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Engine } from '../../engine/engine.ts';
import type { Precision } from '../../engine/precision.ts';
import { argmax } from '../../engine/ops/cross_entropy.ts';
import { loadCheckpoint } from '../io/checkpoint.ts';
import type { Batch } from '../data/procedural/batch.ts';
import { type Encode, packConcatenated, packConstantLength, packPerDocument, type Sequence } from '../data/corpora/pack.ts';
import { c4Documents, codeparrotDocuments } from '../data/corpora/text.ts';
import { CorpusError, Diagnostics, resolveInputs, isRecordFile } from '../data/corpora/files.ts';
import { MATH_PAD, MATH_VOCAB, type MathSplit, mathTrainingStream, packProblems, problemAccuracy, readModuleFile } from '../data/corpora/dmmath.ts';
import { encodeGpt2, GPT2_EOS, GPT2_VOCAB } from '../data/corpora/gpt2.ts';
import { fileStamps, openTokenCache, tokenCacheRoot, type TokenCacheKey } from '../data/tokenizers/cache.ts';
import { resolveTokenizer, type Tokenizer, TokenizerError } from '../data/tokenizers/index.ts';
import { MANIFEST_FILE, ShardFormatError, type TokenCursor, type TokenShards } from '../data/tokenizers/shards.ts';
import type { GPTConfig } from '../model/config.ts';
import { GPT } from '../model/gpt.ts';
import type { WeightDecayRule } from '../model/hf_names.ts';
import { JsonlWriter, readJsonl } from '../util/jsonl.ts';
import { PyRandom } from '../util/random.ts';
import {
  ACCELERATE_RESUME_MAY_CHANGE,
  accelerateModelConfig,
  accelerateScheduleSpec,
  C4_RESUME_MAY_CHANGE,
  C4_SCHEMA,
  type C4Config,
  c4ModelConfig,
  c4ScheduleSpec,
  CODEPARROT_SCHEMA,
  type CodeparrotConfig,
  ConfigError,
  type ConfigSchema,
  DEEPMIND_MATH_SCHEMA,
  type DeepmindMathConfig,
} from './config.ts';
import { assertTrainingFits } from './fits.ts';
import { METRICS_FILE, openStageRunDir, type StageOptions, truncateMetrics } from './rundir.ts';
import { makeSchedule } from './schedule.ts';
import type { ScheduleSpec } from './schedule.ts';
import { type BatchSource, type EvalResult, evalRecord, type StepLog, Trainer } from './trainer.ts';
import { type Component, type EmbInit, toStateDict, transferInit, type TransferResult } from './transfer.ts';

export const SEMANTIC_TASKS = ['c4', 'codeparrot', 'deepmind_math'] as const;
export type SemanticTask = (typeof SEMANTIC_TASKS)[number];
export const isSemanticTask = (t: string): t is SemanticTask => (SEMANTIC_TASKS as readonly string[]).includes(t);

export const SEMANTIC_SCHEMAS: Readonly<Record<SemanticTask, ConfigSchema>> = { c4: C4_SCHEMA, codeparrot: CODEPARROT_SCHEMA, deepmind_math: DEEPMIND_MATH_SCHEMA };

/** A semantic stage-2 config: the task and its schema's values. */
export type SemanticConfig = { task: 'c4'; values: C4Config } | { task: 'codeparrot'; values: CodeparrotConfig } | { task: 'deepmind_math'; values: DeepmindMathConfig };

/**
 * Where `kindling corpora build english` writes the embedded English corpus (C4-style shards); the
 * semantic-quick preset reads it. One constant: change it here and in the preset.
 */
export const ENGLISH_CORPUS_DIR = 'data/corpora/c4/en';

// ------------------------------------------------------------------------------------------------
// The unified plan of a run

/** The keys a semantic config's schema uses for what the runner sets (transfer, output). */
export const SEMANTIC_RUNNER_KEYS: Readonly<Record<SemanticTask, { pretrained: string; transfer: string; trained: string; embInit: string; output: string; seed: string; maxSteps: string }>> = {
  c4: { pretrained: 'pretrained_path', transfer: 'weights_to_transfer', trained: 'weights_to_train', embInit: 'initialization_strategy', output: 'output_dir', seed: 'seed', maxSteps: 'max_steps' },
  codeparrot: { pretrained: 'pretrained_model', transfer: 'weights_to_transfer', trained: 'weights_to_be_trained', embInit: 'embedding_init_strategy', output: 'output_dir', seed: 'seed', maxSteps: 'max_train_steps' },
  deepmind_math: { pretrained: 'pretrained_model', transfer: 'weights_to_transfer', trained: 'weights_to_be_trained', embInit: 'embedding_init_strategy', output: 'output_dir', seed: 'seed', maxSteps: 'max_train_steps' },
};

interface Plan {
  task: SemanticTask;
  model: GPTConfig;
  schedule: ScheduleSpec;
  decay: WeightDecayRule;
  weightDecay: number;
  maxGradNorm: number;
  precision: Precision;
  microBatch: number;
  gradAccum: number;
  maxSteps: number;
  evalEvery: number;
  saveEvery: number;
  logEvery: number;
  keep: number | undefined;
  seed: number;
  evalBatch: number;
  pretrained: string | null;
  transfer: Component[];
  train: Component[];
  embInit: EmbInit;
  mayChange: readonly string[];
  maxStepsKey: string;
}

/** Tokenizer of the text corpora (C4, CodeParrot): the config's `tokenizer` unless injected. */
export interface TextTokenizer {
  /** `gpt2`, `hf:<path>`, or a test tokenizer's name: recorded in the token cache's key and manifest. */
  name: string;
  /** The tokenizer.json it was read from (its size and mtime join the cache key), or null. */
  file?: string | null;
  encode: Encode;
  vocabSize: number;
  /** C4 validation padding and CodeParrot's document separator. */
  eosId: number;
}

export const GPT2_TOKENIZER: TextTokenizer = { name: 'gpt2', file: null, encode: encodeGpt2, vocabSize: GPT2_VOCAB, eosId: GPT2_EOS };

const resolved = new Map<string, TextTokenizer>();

/**
 * The tokenizer a C4 / CodeParrot config names in `tokenizer`: `gpt2` or a path to a Hugging Face
 * tokenizer.json (vocabulary = its vocabSize, end-of-text = its eot). DM-Math's character tokenizer is
 * fixed; for it this returns GPT-2's, which nothing reads. A missing or unreadable file is a
 * ConfigError naming `tokenizer`.
 */
export function semanticTokenizer(c: SemanticConfig): TextTokenizer {
  if (c.task === 'deepmind_math') return GPT2_TOKENIZER;
  const spec = c.values.tokenizer.trim();
  if (spec === 'gpt2') return GPT2_TOKENIZER;
  let stamp = '';
  try {
    const st = statSync(spec);
    stamp = `${st.size}:${st.mtimeMs}`;
  } catch {
    // resolveTokenizer names the missing file below
  }
  const memo = resolved.get(`${spec}\0${stamp}`);
  if (memo) return memo;
  let t: Tokenizer;
  try {
    t = resolveTokenizer(spec);
  } catch (e) {
    if (e instanceof TokenizerError) throw new ConfigError(`tokenizer: ${e.message.replace(/^--tokenizer: /, '')}`);
    throw e;
  }
  const out: TextTokenizer = { name: t.name, file: spec, encode: (text) => t.encode(text), vocabSize: t.vocabSize, eosId: t.eot };
  resolved.set(`${spec}\0${stamp}`, out);
  return out;
}

function plan(c: SemanticConfig, tok: TextTokenizer): Plan {
  if (c.task === 'c4') {
    const v = c.values;
    const evalEvery = v.eval_steps;
    return {
      task: 'c4',
      model: c4ModelConfig(v, tok.vocabSize),
      schedule: c4ScheduleSpec(v),
      decay: 'hf',
      weightDecay: v.weight_decay,
      maxGradNorm: v.max_grad_norm,
      precision: v.precision as Precision,
      microBatch: v.bsz,
      gradAccum: v.gradient_accumulation_steps,
      maxSteps: v.max_steps,
      evalEvery,
      saveEvery: Math.ceil(v.save_steps / evalEvery) * evalEvery,
      logEvery: v.logging_steps,
      keep: v.save_total_limit ?? undefined,
      seed: v.seed,
      evalBatch: v.per_device_eval_batch_size,
      pretrained: v.pretrained_path,
      transfer: v.weights_to_transfer as Component[],
      train: v.weights_to_train as Component[],
      embInit: v.initialization_strategy as EmbInit,
      mayChange: C4_RESUME_MAY_CHANGE,
      maxStepsKey: 'max_steps',
    };
  }
  const v = c.values;
  const vocab = c.task === 'deepmind_math' ? MATH_VOCAB : tok.vocabSize;
  return {
    task: c.task,
    model: accelerateModelConfig(v, vocab),
    schedule: accelerateScheduleSpec(v),
    decay: 'bias',
    weightDecay: v.weight_decay,
    maxGradNorm: v.max_grad_norm,
    precision: v.precision as Precision,
    microBatch: v.train_batch_size,
    gradAccum: v.gradient_accumulation_steps * v.devices,
    maxSteps: v.max_train_steps,
    evalEvery: v.save_checkpoint_steps,
    saveEvery: v.save_checkpoint_steps,
    logEvery: v.logging_steps,
    keep: undefined,
    seed: v.seed,
    evalBatch: v.valid_batch_size,
    pretrained: v.pretrained_model === '' ? null : v.pretrained_model,
    transfer: v.weights_to_transfer as Component[],
    train: v.weights_to_be_trained as Component[],
    embInit: v.embedding_init_strategy as EmbInit,
    mayChange: ACCELERATE_RESUME_MAY_CHANGE,
    maxStepsKey: 'max_train_steps',
  };
}

/** Tokens of one optimizer step: micro-batch · accumulation · context (padding counted). */
export function semanticTokensPerStep(c: SemanticConfig, tok?: TextTokenizer): number {
  const p = plan(c, tok ?? GPT2_TOKENIZER); // the vocabulary does not enter the count
  return p.microBatch * p.gradAccum * p.model.nPositions;
}

// ------------------------------------------------------------------------------------------------
// Sequences in memory

/** Packed fixed-length sequences held in flat typed arrays. */
export class SequenceStore {
  private constructor(
    readonly context: number,
    readonly count: number,
    private readonly ids: Uint16Array | Int32Array,
    /** Label mask (1 = the token is a label), null when every token is one. */
    private readonly mask: Uint8Array | null,
    readonly pad: number,
  ) {}

  /** Collects up to `limit` sequences of `context` tokens (ids < vocab). */
  static async collect(seqs: AsyncIterable<Sequence>, context: number, vocab: number, pad: number, limit = Infinity): Promise<SequenceStore> {
    const Ids = vocab <= 65536 ? Uint16Array : Int32Array;
    let ids: Uint16Array | Int32Array = new Ids(context * 64);
    let mask: Uint8Array | null = null;
    let n = 0;
    if (limit <= 0) return new SequenceStore(context, 0, ids.subarray(0, 0), null, pad);
    for await (const s of seqs) {
      if (s.ids.length !== context) throw new RangeError(`a packed sequence has ${s.ids.length} tokens, expected ${context}`);
      if ((n + 1) * context > ids.length) {
        const next = new Ids(ids.length * 2);
        next.set(ids);
        ids = next;
        if (mask) {
          const m = new Uint8Array(ids.length);
          m.set(mask);
          mask = m;
        }
      }
      const off = n * context;
      for (let i = 0; i < context; i++) {
        const t = s.ids[i]!;
        if (t < 0 || t >= vocab) throw new CorpusError(`token id ${t} is outside the model vocabulary (0..${vocab - 1})`);
        ids[off + i] = t;
      }
      let all = true;
      for (let i = 0; i < context; i++) if (!s.lossMask[i]) all = false;
      if (!all && !mask) {
        mask = new Uint8Array(ids.length);
        mask.fill(1, 0, off);
      }
      if (mask) for (let i = 0; i < context; i++) mask[off + i] = s.lossMask[i] ? 1 : 0;
      if (++n >= limit) break;
    }
    return new SequenceStore(context, n, ids.slice(0, n * context), mask ? mask.slice(0, n * context) : null, pad);
  }

  /** Tokens and label mask of sequence i. */
  sequence(i: number): { ids: ArrayLike<number>; labels: ArrayLike<number> | null } {
    const T = this.context;
    return { ids: this.ids.subarray(i * T, (i + 1) * T), labels: this.mask ? this.mask.subarray(i * T, (i + 1) * T) : null };
  }

  /**
   * The sequences `indices` as a training batch: targets[p] = ids[p+1] (pad at the end), lossMask[p] =
   * label mask of p+1 (the output at p predicts it; 0 at the last position), attention all ones (pads
   * only ever follow the real tokens of a row). `labels` is each row's label mask (for problem accuracy).
   */
  batch(indices: readonly number[]): Batch & { labels: Uint8Array } {
    const T = this.context;
    return assembleBatch(indices, T, this.count, this.pad, (idx, ids, labels, off) => {
      const src = idx * T;
      for (let p = 0; p < T; p++) {
        ids[off + p] = this.ids[src + p]!;
        labels[off + p] = this.mask ? this.mask[src + p]! : 1;
      }
    });
  }
}

/** What PackedBatches draws from: `count` sequences of `context` tokens, batched by index. */
export interface SequenceSource {
  readonly context: number;
  readonly count: number;
  batch(indices: readonly number[]): Batch & { labels: Uint8Array };
}

/**
 * Rows `indices` as a batch; `fill` writes row idx's tokens and label mask at `off`. targets[p] =
 * ids[p+1] (pad at the end), lossMask[p] = label mask of p+1, attention all ones.
 */
function assembleBatch(
  indices: readonly number[],
  T: number,
  count: number,
  pad: number,
  fill: (idx: number, ids: Int32Array, labels: Uint8Array, off: number) => void,
): Batch & { labels: Uint8Array } {
  const B = indices.length;
  const ids = new Int32Array(B * T);
  const targets = new Int32Array(B * T);
  const lossMask = new Float32Array(B * T);
  const labels = new Uint8Array(B * T);
  let lossTokens = 0;
  indices.forEach((idx, r) => {
    if (!(Number.isInteger(idx) && idx >= 0 && idx < count)) throw new RangeError(`sequence ${idx} of ${count}`);
    const off = r * T;
    fill(idx, ids, labels, off);
    for (let p = 0; p < T - 1; p++) {
      targets[off + p] = ids[off + p + 1]!;
      const m = labels[off + p + 1]!;
      lossMask[off + p] = m;
      lossTokens += m;
    }
    targets[off + T - 1] = pad;
  });
  return { ids, targets, lossMask, attentionMask: new Float32Array(B * T).fill(1), batch: B, seqLen: T, lossTokens, labels };
}

/**
 * Packed sequences read from a token cache (src/data/tokenizers/cache.ts): sequence i is tokens
 * [i·T, (i+1)·T) of the shard set, read with positioned reads when a batch needs it. Every token is
 * a label (C4 and CodeParrot training packing masks nothing); the last target of a row is `pad`.
 */
export class ShardSequences implements SequenceSource {
  readonly count: number;

  constructor(
    readonly shards: TokenShards,
    readonly context: number,
    readonly pad: number,
  ) {
    if (shards.total % context !== 0) throw new ShardFormatError(join(shards.dir, MANIFEST_FILE), `${shards.total} tokens are not whole sequences of ${context}`);
    this.count = shards.total / context;
  }

  /** Cursor of sequence i's first token. */
  cursorOf(i: number): TokenCursor {
    return this.shards.cursorAt(i * this.context);
  }

  batch(indices: readonly number[]): Batch & { labels: Uint8Array } {
    const T = this.context;
    const row = new Uint32Array(T);
    return assembleBatch(indices, T, this.count, this.pad, (idx, ids, labels, off) => {
      this.shards.read(idx * T, T, row);
      ids.set(row, off);
      labels.fill(1, off, off + T);
    });
  }

  close(): void {
    this.shards.close();
  }
}

/** The token cache a checkpoint's `data.source.cache` records. */
export interface CacheState {
  dir: string;
  tokenizer: string;
  tokens: number;
  /** Where the next sequence the run reads starts. */
  cursor: TokenCursor;
}

/**
 * Training batches over a SequenceStore, a pure function of (step, micro). Sequence g = (step·A +
 * micro)·B + row is position g mod N of epoch ⌊g / N⌋, whose order is a permutation drawn by
 * PyRandom seeded [seed, epoch] ('permuted'), or the store's order ('sequential').
 */
export class PackedBatches implements BatchSource {
  private perm: { epoch: number; order: Uint32Array } | null = null;
  private cached: { step: number; micro: number; batch: Batch } | null = null;
  private last: { step: number; micro: number } | null = null;

  constructor(
    readonly store: SequenceSource,
    readonly o: { batchSize: number; gradAccum: number; seed: number; order: 'permuted' | 'sequential' },
  ) {
    if (store.count === 0) throw new CorpusError('no training sequences (the corpus is empty or shorter than one sequence)');
  }

  /** The epoch's order (Fisher–Yates with PyRandom.randbelow). */
  order(epoch: number): Uint32Array {
    if (this.perm?.epoch === epoch) return this.perm.order;
    const N = this.store.count;
    const order = new Uint32Array(N);
    for (let i = 0; i < N; i++) order[i] = i;
    if (this.o.order === 'permuted') {
      const rng = new PyRandom(0);
      rng.seedByArray([this.o.seed >>> 0, epoch >>> 0]);
      for (let i = N - 1; i > 0; i--) {
        const j = rng.randbelow(i + 1);
        const t = order[i]!;
        order[i] = order[j]!;
        order[j] = t;
      }
    }
    this.perm = { epoch, order };
    return order;
  }

  /** The store indices of batch (step, micro). */
  indices(step: number, micro: number): number[] {
    const { batchSize: B, gradAccum: A } = this.o;
    const N = this.store.count;
    const out: number[] = [];
    for (let r = 0; r < B; r++) {
      const g = (step * A + micro) * B + r;
      out.push(this.order(Math.floor(g / N))[g % N]!);
    }
    return out;
  }

  batch(step: number, micro: number): Batch {
    if (this.cached?.step === step && this.cached.micro === micro) return this.cached.batch;
    const batch = this.store.batch(this.indices(step, micro));
    this.cached = { step, micro, batch };
    this.last = { step, micro };
    return batch;
  }

  describe(): unknown {
    const { batchSize: B, gradAccum: A } = this.o;
    return this.stateAt(this.last ? this.last.step * A + this.last.micro + 1 : 0);
  }

  /**
   * The state before micro-batch number m (= step·A + micro): the next sequence and, over a token
   * cache, the cursor of its first token.
   */
  stateAt(m: number): Record<string, unknown> {
    const next = m * this.o.batchSize;
    const N = this.store.count;
    const epoch = Math.floor(next / N);
    const position = next % N;
    const out: Record<string, unknown> = {
      kind: 'packed-sequences',
      sequences: N,
      context: this.store.context,
      order: this.o.order,
      seed: this.o.seed,
      next_sequence: next,
      epoch,
      position,
    };
    if (this.store instanceof ShardSequences) {
      const s = this.store.shards;
      const cache: CacheState = { dir: s.dir, tokenizer: s.manifest.tokenizer.name, tokens: s.total, cursor: this.store.cursorOf(this.order(epoch)[position]!) };
      out.cache = cache;
    }
    return out;
  }

  /**
   * Refuses to resume at `step` over this source when the checkpoint's `data.source` says the run read
   * another token cache (naming the field), or that its next sequence was elsewhere.
   */
  checkResume(saved: unknown, step: number): void {
    const now = this.stateAt(step * this.o.gradAccum);
    const was = (saved as { cache?: Partial<CacheState> } | null)?.cache;
    const cur = now.cache as CacheState | undefined;
    if (!was || !cur) return;
    if (was.tokenizer !== cur.tokenizer) {
      throw new CorpusError(`data.source.cache.tokenizer: the checkpoint was trained on tokens of ${JSON.stringify(was.tokenizer)}, the token cache ${cur.dir} holds tokens of ${JSON.stringify(cur.tokenizer)}`);
    }
    if (was.tokens !== cur.tokens) {
      throw new CorpusError(`data.source.cache.tokens: the checkpoint was trained on a token cache of ${was.tokens} tokens (${was.dir}), ${cur.dir} holds ${cur.tokens}; the corpus, tokenizer or packing changed`);
    }
    if (JSON.stringify(was.cursor) !== JSON.stringify(cur.cursor)) {
      throw new CorpusError(`data.source.cache.cursor: the checkpoint's next sequence starts at ${JSON.stringify(was.cursor)}, this run would read ${JSON.stringify(cur.cursor)} at step ${step}`);
    }
  }
}

// ------------------------------------------------------------------------------------------------
// Loading the corpora

async function requireInputs(path: string | null, key: string, what: string): Promise<string> {
  return (await inputFiles(path, key, what)).path;
}

/** The files `path` (a file, directory or glob) stands for; errors name `key`. */
async function inputFiles(path: string | null, key: string, what: string): Promise<{ path: string; files: string[] }> {
  if (path === null || path === '') throw new ConfigError(`${key}: required (${what})`);
  try {
    return { path, files: await resolveInputs(path, isRecordFile, what) };
  } catch (e) {
    throw new CorpusError(`${key}: ${(e as Error).message}${corpusHint(path)}`);
  }
}

export interface TokenCacheOptions {
  /** Directory that holds the caches (default `tokenCacheRoot()`: KINDLING_TOKEN_CACHE, else data/cache/tokens). */
  root?: string;
  /** Tokens per shard file of a new cache (default 2^26; tests use small shards). */
  tokensPerShard?: number;
}

/**
 * The training sequences of a C4 or CodeParrot config from its token cache, building the cache on a
 * miss: the packer's sequences (§7.1 packConcatenated: documents concatenated without separator, the
 * remainder dropped; §7.2 packConstantLength: end-of-text after each file, at most the sequences the
 * run consumes) written one after the other, so sequence i is tokens [i·T, (i+1)·T).
 */
export async function cachedTrainingSequences(
  c: SemanticConfig,
  tok: TextTokenizer,
  o: TokenCacheOptions & { log?: (line: string) => void } = {},
): Promise<ShardSequences> {
  if (c.task === 'deepmind_math') throw new Error('DM-Math training sequences are not cached (they are packed from a sampler)');
  const p = plan(c, tok);
  const T = p.model.nPositions;
  const log = o.log ?? (() => undefined);
  const warn = (m: string) => log(`warning: ${m}`);
  let input: { path: string; files: string[] };
  let recipe: Record<string, unknown>;
  let seqs: AsyncIterable<Sequence>;
  let limit = Infinity;
  if (c.task === 'c4') {
    const v = c.values;
    input = await inputFiles(v.train_data, 'train_data', 'C4 training shards (*.json, *.jsonl, *.json.gz, *.parquet)');
    recipe = { packing: 'concatenated', context: T, max_documents: v.max_train_documents };
    seqs = packConcatenated(c4Documents(input.path, { maxDocuments: v.max_train_documents, onWarning: warn }), tok.encode, T);
  } else {
    const v = c.values;
    input = await inputFiles(v.dataset_name_train, 'dataset_name_train', 'CodeParrot training files on disk (a Hub id is not downloaded)');
    limit = p.maxSteps * p.gradAccum * p.microBatch;
    recipe = { packing: 'constant_length', context: T, eos: tok.eosId, chars_per_token: 3.6, num_sequences: 1024, max_sequences: limit };
    seqs = packConstantLength(codeparrotDocuments(input.path, { onWarning: warn }), tok.encode, { context: T, eosId: tok.eosId });
  }
  const key: TokenCacheKey = {
    corpus: c.task,
    files: fileStamps(input.files),
    tokenizer: { name: tok.name, vocabSize: tok.vocabSize, eot: tok.eosId, file: tok.file ? fileStamps([tok.file])[0]! : null },
    recipe,
  };
  const { shards } = await openTokenCache(
    o.root ?? tokenCacheRoot(),
    key,
    async (w) => {
      let n = 0;
      if (limit <= 0) return;
      for await (const s of seqs) {
        if (s.ids.length !== T) throw new RangeError(`a packed sequence has ${s.ids.length} tokens, expected ${T}`);
        for (let i = 0; i < T; i++) {
          const t = s.ids[i]!;
          if (t < 0 || t >= tok.vocabSize) throw new CorpusError(`token id ${t} is outside the model vocabulary (0..${tok.vocabSize - 1})`);
        }
        w.append(s.ids);
        if (++n >= limit) break;
      }
    },
    { log, tokensPerShard: o.tokensPerShard },
  );
  return new ShardSequences(shards, T, tok.eosId);
}

/** The hint for a missing corpus under the default English corpus directory. */
export function corpusHint(path: string): string {
  const norm = path.replace(/\\/g, '/').replace(/^\.\//, '');
  return norm.startsWith(ENGLISH_CORPUS_DIR) ? ` (the embedded English corpus: run \`kindling corpora build english\` first)` : '';
}

async function* interleaveModules(dir: string, diag: Diagnostics): AsyncGenerator<{ question: string; answer: string }> {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new CorpusError(`${dir}: no such directory (a DM-Math split folder of <module>.txt files)`);
  const files = readdirSync(dir).filter((n) => n.endsWith('.txt')).sort();
  if (files.length === 0) throw new CorpusError(`${dir}: no <module>.txt files`);
  const split = (dir.replace(/[/\\]+$/, '').split(/[/\\]/).pop() ?? 'interpolate') as MathSplit;
  const readers = files.map((f) => readModuleFile(join(dir, f), split, f.slice(0, -4), diag));
  let live = readers.length;
  const done = new Array<boolean>(readers.length).fill(false);
  while (live > 0) {
    for (let i = 0; i < readers.length; i++) {
      if (done[i]) continue;
      const r = await readers[i]!.next();
      if (r.done) {
        done[i] = true;
        live--;
      } else yield r.value;
    }
  }
}

async function loadData(
  c: SemanticConfig,
  p: Plan,
  tok: TextTokenizer,
  cache: TokenCacheOptions,
  log: (s: string) => void,
): Promise<{ train: SequenceSource; validation: SequenceStore; order: 'permuted' | 'sequential' }> {
  const T = p.model.nPositions;
  const consumed = p.maxSteps * p.gradAccum * p.microBatch;
  const warn = (m: string) => log(`warning: ${m}`);
  if (c.task === 'c4') {
    const v = c.values;
    await requireInputs(v.train_data, 'train_data', 'C4 training shards (*.json, *.jsonl, *.json.gz, *.parquet)');
    const validPath = await requireInputs(v.validation_data, 'validation_data', 'C4 validation shards (*.json, *.jsonl, *.json.gz, *.parquet)');
    const validation = await SequenceStore.collect(packPerDocument(c4Documents(validPath, { maxDocuments: v.max_eval_documents, onWarning: warn }), tok.encode, T, tok.eosId), T, tok.vocabSize, tok.eosId);
    const train = await cachedTrainingSequences(c, tok, { ...cache, log });
    return { train, validation, order: 'permuted' };
  }
  if (c.task === 'codeparrot') {
    const v = c.values;
    await requireInputs(v.dataset_name_train, 'dataset_name_train', 'CodeParrot training files on disk (a Hub id is not downloaded)');
    const validPath = await requireInputs(v.dataset_name_valid, 'dataset_name_valid', 'CodeParrot validation files on disk (a Hub id is not downloaded)');
    const pack = (path: string) => packConstantLength(codeparrotDocuments(path, { onWarning: warn }), tok.encode, { context: T, eosId: tok.eosId });
    const nValid = v.max_eval_steps < 0 ? Infinity : (v.max_eval_steps + 1) * v.valid_batch_size;
    const validation = await SequenceStore.collect(pack(validPath), T, tok.vocabSize, tok.eosId, nValid);
    const train = await cachedTrainingSequences(c, tok, { ...cache, log });
    return { train, validation, order: 'permuted' };
  }
  const v = c.values;
  const diag = new Diagnostics({ onWarning: warn });
  const onOversize = (q: { question: string }, n: number) => warn(`a problem of ${n} characters does not fit seq_length ${T}; left out: ${JSON.stringify(q.question.slice(0, 60))}`);
  const stream = mathTrainingStream(v.train_dir, new PyRandom(v.seed), { modules: 'all', diagnostics: diag });
  const train = await SequenceStore.collect(packProblems(stream, { context: T, onOversize }), T, MATH_VOCAB, MATH_PAD, consumed);
  const nValid = v.max_eval_steps < 0 ? Infinity : (v.max_eval_steps + 1) * v.valid_batch_size;
  const validation = await SequenceStore.collect(packProblems(interleaveModules(v.validation_dir, diag), { context: T, onOversize }), T, MATH_VOCAB, MATH_PAD, nValid);
  return { train, validation, order: 'sequential' };
}

/** Fails (CorpusError / ConfigError naming the key) when a semantic config's data cannot be found. */
export async function checkSemanticInputs(c: SemanticConfig): Promise<void> {
  semanticTokenizer(c);
  if (c.task === 'c4') {
    await requireInputs(c.values.train_data, 'train_data', 'C4 training shards (*.json, *.jsonl, *.json.gz, *.parquet)');
    await requireInputs(c.values.validation_data, 'validation_data', 'C4 validation shards (*.json, *.jsonl, *.json.gz, *.parquet)');
  } else if (c.task === 'codeparrot') {
    await requireInputs(c.values.dataset_name_train, 'dataset_name_train', 'CodeParrot training files on disk (a Hub id is not downloaded)');
    await requireInputs(c.values.dataset_name_valid, 'dataset_name_valid', 'CodeParrot validation files on disk (a Hub id is not downloaded)');
  } else {
    for (const [key, dir] of [['train_dir', c.values.train_dir], ['validation_dir', c.values.validation_dir]] as const) {
      if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new CorpusError(`${key}: ${dir}: no such directory (DM-Math: the mathematics_dataset-v1.0 folder and its interpolate/ split)`);
    }
  }
}

/** The size check of a semantic run (before anything trains). */
export function assertSemanticFits(engine: Engine, c: SemanticConfig, tok?: TextTokenizer): void {
  const p = plan(c, tok ?? semanticTokenizer(c));
  assertTrainingFits(engine, p.model, Math.max(p.microBatch, p.evalBatch), p.model.nPositions, 'lower the micro-batch or evaluation batch, the context, or the model size', p.precision);
}

// ------------------------------------------------------------------------------------------------
// Running

export interface SemanticOptions extends StageOptions {
  /** The text corpora's tokenizer (default: the config's `tokenizer`). */
  tokenizer?: TextTokenizer;
  /** Where the C4 / CodeParrot training token caches live (default data/cache/tokens). */
  tokenCache?: TokenCacheOptions;
}

/** One evaluation of a semantic run. */
export interface SemanticEval {
  step: number;
  /** Training tokens seen at this step (step · tokens per step). */
  tokens: number;
  loss: number;
  perplexity: number;
  /** Token accuracy over the labels. */
  accuracy: number;
  /** DM-Math only (else null). */
  problemAccuracy: number | null;
}

export interface SemanticResult {
  task: SemanticTask;
  steps: number;
  tokensPerStep: number;
  /** Every evaluation, step 0 first. */
  evals: SemanticEval[];
  /** [step, mean training loss since the previous entry]. */
  lossCurve: [number, number][];
  trainSequences: number;
  validationSequences: number;
  resumedFrom: number | null;
  parameters: number;
  transfer: TransferResult | null;
}

/** The evaluations and training losses of a semantic run's metrics.jsonl. */
export function readSemanticMetrics(path: string, tokensPerStep: number): { evals: SemanticEval[]; lossCurve: [number, number][] } {
  const evals: SemanticEval[] = [];
  const lossCurve: [number, number][] = [];
  if (!existsSync(path)) return { evals, lossCurve };
  for (const { value } of readJsonl(path, { skipBadLast: true })) {
    const r = value as Record<string, number | null>;
    const num = (x: number | null | undefined) => (typeof x === 'number' ? x : NaN);
    if (r.eval_loss !== undefined) {
      evals.push({
        step: r.step!,
        tokens: r.step! * tokensPerStep,
        loss: num(r.eval_loss),
        perplexity: num(r.eval_perplexity),
        accuracy: num(r.eval_accuracy),
        problemAccuracy: typeof r.eval_problem_accuracy === 'number' ? r.eval_problem_accuracy : null,
      });
    } else if (typeof r.loss === 'number') lossCurve.push([r.step!, r.loss]);
  }
  return { evals, lossCurve };
}

function initialWeights(p: Plan): TransferResult | null {
  if (!p.pretrained || p.transfer.length === 0) return null;
  const ck = loadCheckpoint(p.pretrained);
  return transferInit(toStateDict(ck.params, ck.shapes), p.model, { seed: p.seed, transfer: p.transfer, embInit: p.embInit, train: p.train });
}

/** Evaluation of the model on `batches`: masked loss, perplexity, token accuracy; problem accuracy when asked. */
async function evaluateSemantic(model: GPT, batches: Iterable<Batch & { labels: Uint8Array }>, problems: boolean): Promise<EvalResult> {
  const e = model.engine;
  let lossW = 0;
  let correct = 0;
  let total = 0;
  let pc = 0;
  let pt = 0;
  for (const b of batches) {
    const [lossT, accT, predT] = e.noGrad(() =>
      e.tidy(() => {
        const d = model.uploadBatch(b, { sparse: false });
        const { loss, logits } = model.loss(d, { train: false });
        return [loss, model.accuracy(logits, d), problems ? argmax(logits) : null] as const;
      }),
    );
    const lv = (await lossT.read())[0]!;
    const [c, n] = await accT.read();
    lossT.dispose();
    accT.dispose();
    if (predT) {
      const pred = await predT.read();
      predT.dispose();
      const r = problemAccuracy(b.ids, b.labels, pred, { rowLength: b.seqLen });
      pc += r.correct;
      pt += r.total;
    }
    correct += c!;
    total += n!;
    lossW += lv * n!;
  }
  const loss = total ? lossW / total : NaN;
  const out: EvalResult = { loss, accuracy: total ? correct / total : NaN, tokens: total, perplexity: Math.exp(loss) };
  if (problems) out.problem_accuracy = pt ? pc / pt : NaN;
  return out;
}

/** Train (or resume) one semantic run. The caller owns `engine`. */
export async function runSemantic(engine: Engine, c: SemanticConfig, opts: SemanticOptions): Promise<SemanticResult> {
  const log = opts.log ?? (() => undefined);
  const tok = opts.tokenizer ?? semanticTokenizer(c);
  const p = plan(c, tok);
  assertSemanticFits(engine, c, tok);
  const opened = openStageRunDir(opts, c.values as unknown as Record<string, unknown>, { mayChange: p.mayChange, maxSteps: p.maxSteps, maxStepsKey: p.maxStepsKey }, log);
  try {
    return await train(engine, c, p, tok, opts, opened.resumeFrom?.path ?? null, log);
  } finally {
    opened.release();
  }
}

async function train(engine: Engine, c: SemanticConfig, p: Plan, tok: TextTokenizer, opts: SemanticOptions, resumePath: string | null, log: (s: string) => void): Promise<SemanticResult> {
  const { train: trainSet, validation, order } = await loadData(c, p, tok, opts.tokenCache ?? {}, log);
  try {
    return await trainOn(engine, c, p, opts, resumePath, log, trainSet, validation, order);
  } finally {
    if (trainSet instanceof ShardSequences) trainSet.close();
  }
}

async function trainOn(
  engine: Engine,
  c: SemanticConfig,
  p: Plan,
  opts: SemanticOptions,
  resumePath: string | null,
  log: (s: string) => void,
  trainSet: SequenceSource,
  validation: SequenceStore,
  order: 'permuted' | 'sequential',
): Promise<SemanticResult> {
  if (validation.count === 0) throw new CorpusError(`${c.task}: the validation data gives no sequence`);
  const evalBatches: (Batch & { labels: Uint8Array })[] = [];
  for (let i = 0; i < validation.count; i += p.evalBatch) {
    evalBatches.push(validation.batch(Array.from({ length: Math.min(p.evalBatch, validation.count - i) }, (_, k) => i + k)));
  }
  const data = new PackedBatches(trainSet, { batchSize: p.microBatch, gradAccum: p.gradAccum, seed: p.seed, order });
  const tokensPerStep = p.microBatch * p.gradAccum * p.model.nPositions;
  log(`${c.task}: ${trainSet.count} training sequences, ${validation.count} validation sequences of ${p.model.nPositions} tokens; ${tokensPerStep} tokens per step`);

  const transfer = initialWeights(p);
  const model = GPT.create(engine, p.model, {
    seed: p.seed,
    weights: transfer ? new Map([...transfer.state].map(([n, t]) => [n, t.data])) : undefined,
    decay: p.decay,
    frozen: transfer?.frozen,
  });
  const problems = c.task === 'deepmind_math';
  const metricsPath = join(opts.runDir, METRICS_FILE);
  const trainer = new Trainer({
    model,
    data,
    maxSteps: p.maxSteps,
    gradAccum: p.gradAccum,
    lr: makeSchedule(p.schedule),
    optimizer: { weightDecay: p.weightDecay, maxGradNorm: p.maxGradNorm || null, beta1: 0.9, beta2: 0.999, eps: 1e-8 },
    precision: p.precision,
    seed: p.seed,
    logEvery: p.logEvery,
    evalEvery: p.evalEvery,
    evalBatches: () => evalBatches,
    evaluate: (b) => evaluateSemantic(model, b as Iterable<Batch & { labels: Uint8Array }>, problems),
    metricsPath,
    checkpointDir: opts.runDir,
    saveEvery: p.saveEvery,
    keepCheckpoints: p.keep,
    progress: opts.progress ?? false,
    trainConfig: c.values,
    onLog: opts.onLog,
    onEval: opts.onEval,
  });
  try {
    let resumedFrom: number | null = null;
    if (resumePath) {
      const ck = loadCheckpoint(resumePath);
      data.checkResume((ck.data as { source?: unknown } | null)?.source ?? null, ck.step);
      trainer.restore(ck);
      resumedFrom = trainer.step;
    }
    if (resumedFrom === null) {
      rmSync(metricsPath, { force: true });
      const r0 = await evaluateSemantic(model, evalBatches, problems);
      new JsonlWriter(metricsPath).write(evalRecord(0, r0));
      opts.onEval?.(0, r0);
    } else {
      truncateMetrics(metricsPath, resumedFrom);
      log(`resumed ${opts.runDir} from step ${resumedFrom}`);
    }
    const r = await trainer.run();
    const m = readSemanticMetrics(metricsPath, tokensPerStep);
    return {
      task: c.task,
      steps: r.steps,
      tokensPerStep,
      evals: m.evals,
      lossCurve: m.lossCurve,
      trainSequences: trainSet.count,
      validationSequences: validation.count,
      resumedFrom,
      parameters: model.params.numel,
      transfer,
    };
  } finally {
    trainer.destroy();
    model.destroy();
  }
}
