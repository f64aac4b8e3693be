// DeepMind-Mathematics (spec §7.3, §13): the `mathematics_dataset-v1.0` folder tree, its character
// tokenizer (vocab 99), problem encoding with answer-only loss, greedy problem packing, the training
// sampler, and problem accuracy (with the reference's first-n-1 quirk by default).

import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { PyRandom } from '../../util/random.ts';
import { CorpusError, Diagnostics, readLines, type LoadOptions, type Line } from './files.ts';
import type { Sequence } from './pack.ts';

// ------------------------------------------------------------------------------------------------
// Tokenizer (§7.3)

/** Ids 0–94: a–z, A–Z, 0–9, the 32 ASCII punctuation characters, space. */
export const MATH_CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789' + '!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~' + ' ';
export const MATH_PAD = 95;
export const MATH_UNK = 96;
export const MATH_BOS = 97;
export const MATH_SEP = 98;
export const MATH_VOCAB = 99;

const CHAR_ID = new Map<string, number>([...MATH_CHARS].map((c, i) => [c, i]));

/** Characters → ids; any character outside the 95 maps to UNK (96). One id per code point. */
export function encodeMathChars(text: string): number[] {
  const out: number[] = [];
  for (const c of text) out.push(CHAR_ID.get(c) ?? MATH_UNK);
  return out;
}

/** Ids → text; PAD, UNK, BOS and SEP are written as `<pad>`, `<unk>`, `<bos>`, `<sep>`. */
export function decodeMathChars(ids: ArrayLike<number>): string {
  const special: Record<number, string> = { [MATH_PAD]: '<pad>', [MATH_UNK]: '<unk>', [MATH_BOS]: '<bos>', [MATH_SEP]: '<sep>' };
  let s = '';
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    const c = id >= 0 && id < MATH_CHARS.length ? MATH_CHARS[id] : special[id];
    if (c === undefined) throw new RangeError(`id ${id} is outside the DM-Math vocabulary (0..${MATH_VOCAB - 1})`);
    s += c;
  }
  return s;
}

export interface MathProblem {
  question: string;
  answer: string;
  module: string;
  split: MathSplit;
  /** The module file and the 1-based line of the question. */
  source: string;
  line: number;
}

/** `[BOS] question [SEP] answer`, lossMask 1 on the answer characters only (no end-of-answer token). */
export function encodeProblem(p: { question: string; answer: string }): { ids: number[]; lossMask: number[] } {
  const q = encodeMathChars(p.question);
  const a = encodeMathChars(p.answer);
  return {
    ids: [MATH_BOS, ...q, MATH_SEP, ...a],
    lossMask: [0, ...q.map(() => 0), 0, ...a.map(() => 1)],
  };
}

// ------------------------------------------------------------------------------------------------
// Packing (§7.3)

export interface MathSequence extends Sequence {
  /** Problems in the sequence. */
  problems: number;
}

export interface PackProblemsOptions {
  /** Sequence length (default 512). */
  context?: number;
  /** Called for a problem longer than the context, which is then left out; without it such a problem is an error. */
  onOversize?: (p: { question: string; answer: string }, tokens: number) => void;
}

/**
 * Greedy problem packing: whole problems are appended while the sequence stays within `context`; when
 * the next one does not fit, the sequence is emitted right-padded with PAD (lossMask 0) and a new one
 * starts with that problem. Problems are never split. The last, partly filled sequence is emitted too.
 */
export async function* packProblems(problems: AsyncIterable<{ question: string; answer: string }> | Iterable<{ question: string; answer: string }>, opts: PackProblemsOptions = {}): AsyncGenerator<MathSequence> {
  const context = opts.context ?? 512;
  if (!Number.isSafeInteger(context) || context < 1) throw new RangeError(`context must be a positive integer, got ${context}`);
  let ids: number[] = [];
  let mask: number[] = [];
  let count = 0;
  const emit = (): MathSequence => {
    const out = new Int32Array(context).fill(MATH_PAD);
    out.set(ids);
    const lossMask = new Uint8Array(context);
    lossMask.set(mask);
    const seq = { ids: out, lossMask, length: ids.length, problems: count };
    ids = [];
    mask = [];
    count = 0;
    return seq;
  };
  for await (const p of problems) {
    const e = encodeProblem(p);
    if (e.ids.length > context) {
      if (!opts.onOversize) throw new CorpusError(`a problem of ${e.ids.length} tokens does not fit the context ${context}: ${JSON.stringify(p.question.slice(0, 60))}`);
      opts.onOversize(p, e.ids.length);
      continue;
    }
    if (ids.length + e.ids.length > context) yield emit();
    ids.push(...e.ids);
    mask.push(...e.lossMask);
    count++;
  }
  if (count > 0) yield emit();
}

// ------------------------------------------------------------------------------------------------
// Problem accuracy (§7.3)

export interface ProblemAccuracyOptions {
  /**
   * The reference's quirk (default true): an answer of n ≥ 2 characters is judged on its first n-1
   * characters only. false judges every answer character.
   */
  quirk?: boolean;
  /** Tokens per row when the arrays hold several rows (default: one row of the whole length). */
  rowLength?: number;
}

/**
 * Problem accuracy under teacher forcing. `predictions[p]` is the argmax of the output at position p,
 * which predicts `ids[p+1]`. Every maximal run of positions p with `lossMask[p+1] = 1` (within a row) is
 * one problem, correct when all its compared predictions match.
 */
export function problemAccuracy(ids: ArrayLike<number>, lossMask: ArrayLike<number>, predictions: ArrayLike<number>, opts: ProblemAccuracyOptions = {}): { correct: number; total: number } {
  const quirk = opts.quirk ?? true;
  const T = opts.rowLength ?? ids.length;
  if (lossMask.length !== ids.length || predictions.length !== ids.length) throw new RangeError(`ids, lossMask and predictions differ in length (${ids.length}, ${lossMask.length}, ${predictions.length})`);
  if (T < 1 || ids.length % T !== 0) throw new RangeError(`rowLength ${T} does not divide the length ${ids.length}`);
  let correct = 0;
  let total = 0;
  for (let row = 0; row < ids.length; row += T) {
    let p = 0;
    while (p < T - 1) {
      if (!lossMask[row + p + 1]) {
        p++;
        continue;
      }
      let end = p;
      while (end + 1 < T - 1 && lossMask[row + end + 2]) end++;
      const n = end - p + 1;
      const last = quirk && n >= 2 ? end - 1 : end;
      let ok = true;
      for (let i = p; i <= last; i++) if (predictions[row + i] !== ids[row + i + 1]) ok = false;
      total++;
      if (ok) correct++;
      p = end + 1;
    }
  }
  return { correct, total };
}

// ------------------------------------------------------------------------------------------------
// The folder tree (§7.3, §13)

export const MATH_SPLITS = ['train-easy', 'train-medium', 'train-hard', 'interpolate', 'extrapolate'] as const;
export type MathSplit = (typeof MATH_SPLITS)[number];
export const MATH_TRAIN_SPLITS: readonly MathSplit[] = ['train-easy', 'train-medium', 'train-hard'];
export const isMathSplit = (s: string): s is MathSplit => (MATH_SPLITS as readonly string[]).includes(s);

/** The 56 interpolation / training modules of §13, in the reference's order. */
export const INTERPOLATION_MODULES: readonly string[] = `arithmetic__add_or_sub, arithmetic__add_or_sub_in_base,
arithmetic__add_sub_multiple, arithmetic__div, arithmetic__mixed, arithmetic__mul,
arithmetic__mul_div_multiple, arithmetic__nearest_integer_root, arithmetic__simplify_surd,
algebra__linear_1d, algebra__linear_1d_composed, algebra__linear_2d, algebra__linear_2d_composed,
algebra__polynomial_roots, algebra__polynomial_roots_composed, algebra__sequence_next_term,
algebra__sequence_nth_term, numbers__base_conversion, numbers__div_remainder,
numbers__div_remainder_composed, numbers__gcd, numbers__gcd_composed, numbers__is_factor,
numbers__is_factor_composed, numbers__is_prime, numbers__is_prime_composed, numbers__lcm,
numbers__lcm_composed, numbers__list_prime_factors, numbers__round_number, polynomials__evaluate,
polynomials__collect, calculus__differentiate, probability__swr_p_sequence,
calculus__differentiate_composed, numbers__list_prime_factors_composed, comparison__closest,
numbers__place_value, numbers__round_number_composed, measurement__conversion, comparison__sort,
polynomials__expand, comparison__pair, polynomials__simplify_power, comparison__closest_composed,
polynomials__coefficient_named, polynomials__add, comparison__pair_composed, comparison__sort_composed,
comparison__kth_biggest, comparison__kth_biggest_composed, measurement__time, polynomials__compose,
probability__swr_p_level_set, polynomials__evaluate_composed, numbers__place_value_composed`
  .split(',')
  .map((s) => s.trim());

/** The 15 extrapolation / test modules of §13, in the reference's order. */
export const EXTRAPOLATION_MODULES: readonly string[] = `algebra__polynomial_roots_big, arithmetic__div_big,
arithmetic__mul_div_multiple_longer, comparison__sort_more, numbers__round_number_big,
arithmetic__add_or_sub_big, arithmetic__mixed_longer, comparison__closest_more,
measurement__conversion, probability__swr_p_level_set_more_samples,
arithmetic__add_sub_multiple_longer, arithmetic__mul_big, comparison__kth_biggest_more,
numbers__place_value_big, probability__swr_p_sequence_more_samples`
  .split(',')
  .map((s) => s.trim());

/** The §13 module list of a split folder. */
export const listedModules = (split: MathSplit): readonly string[] => (split === 'extrapolate' ? EXTRAPOLATION_MODULES : INTERPOLATION_MODULES);

const isDir = async (p: string): Promise<boolean> => (await stat(p).catch(() => null))?.isDirectory() ?? false;

/**
 * The `mathematics_dataset-v1.0` folder: `path` itself, or its child of that name (so that the folder
 * the tarball was unpacked into works too). Fails naming the path when it is missing or holds no split.
 */
export async function resolveMathRoot(path: string): Promise<string> {
  if (!(await stat(path).catch(() => null))) throw new CorpusError(`${path}: no such file or directory`);
  if (!(await isDir(path))) throw new CorpusError(`${path}: not a directory (expected the mathematics_dataset-v1.0 folder)`);
  const inner = join(path, 'mathematics_dataset-v1.0');
  const root = (await isDir(inner)) ? inner : path;
  for (const s of MATH_SPLITS) if (await isDir(join(root, s))) return root;
  throw new CorpusError(`${path}: holds none of the folders ${MATH_SPLITS.join(', ')} (expected the mathematics_dataset-v1.0 folder)`);
}

/**
 * The problems of one `<module>.txt` file: lines alternate question, answer (each stripped). A pair
 * with bytes that are not valid UTF-8, and a last question without an answer, are malformed records
 * (skipped through `diag`); a file without lines is an empty shard.
 */
export async function* readModuleFile(file: string, split: MathSplit, module: string, diag: Diagnostics): AsyncGenerator<MathProblem> {
  let q: Line | null = null;
  let any = false;
  for await (const l of readLines(file)) {
    any = true;
    if (q === null) {
      q = l;
      continue;
    }
    const a = l;
    const question: Line = q;
    q = null;
    if (question.text === null || a.text === null) {
      diag.skip(`${file}:${question.line}-${a.line}`, 'a question/answer pair with bytes that are not valid UTF-8');
      continue;
    }
    yield { question: question.text.trim(), answer: a.text.trim(), module, split, source: file, line: question.line };
  }
  if (q !== null) diag.skip(`${file}:${q.line}`, 'a question line without an answer line at the end of the file');
  if (!any) diag.emptyShard(file);
}

export interface MathLoadOptions extends LoadOptions {
  /** Split folders to read, in this order (default: every one present, in MATH_SPLITS order). */
  splits?: readonly MathSplit[];
  /**
   * 'listed' (default): the §13 list of each split, a missing file being an error; 'all': every
   * `*.txt` of each folder, by name; or explicit module names.
   */
  modules?: 'listed' | 'all' | readonly string[];
  maxProblems?: number;
  diagnostics?: Diagnostics;
}

async function modulesOf(root: string, split: MathSplit, modules: MathLoadOptions['modules']): Promise<string[]> {
  const dir = join(root, split);
  if (modules === 'all') {
    const names = (await readdir(dir)).filter((n) => n.endsWith('.txt')).sort();
    if (names.length === 0) throw new CorpusError(`${dir}: no <module>.txt files`);
    return names.map((n) => n.slice(0, -4));
  }
  const list = modules === undefined || modules === 'listed' ? listedModules(split) : modules;
  for (const m of list) {
    const f = join(dir, `${m}.txt`);
    if (!(await stat(f).catch(() => null))) throw new CorpusError(`${f}: no such file (module ${m} of ${split})`);
  }
  return [...list];
}

/** Every problem of the chosen splits and modules, read in order (split, then module, then line). */
export async function* mathProblems(path: string, opts: MathLoadOptions = {}): AsyncGenerator<MathProblem> {
  const diag = opts.diagnostics ?? new Diagnostics(opts);
  const root = await resolveMathRoot(path);
  let splits: readonly MathSplit[];
  if (opts.splits) {
    for (const s of opts.splits) if (!(await isDir(join(root, s)))) throw new CorpusError(`${join(root, s)}: no such split folder`);
    splits = opts.splits;
  } else {
    const present: MathSplit[] = [];
    for (const s of MATH_SPLITS) if (await isDir(join(root, s))) present.push(s);
    splits = present;
  }
  const max = opts.maxProblems ?? Infinity;
  let n = 0;
  if (n >= max) return;
  for (const split of splits) {
    for (const module of await modulesOf(root, split, opts.modules)) {
      for await (const p of readModuleFile(join(root, split, `${module}.txt`), split, module, diag)) {
        yield p;
        if (++n >= max) return;
      }
    }
  }
}

/**
 * The infinite training stream of §7.3: for each problem a difficulty uniformly from train-easy,
 * -medium, -hard, then a module uniformly from the 56 (each as CPython's `random.choice`, i.e.
 * `_randbelow(len)`, on the given generator), and the next problem of that file, read sequentially and
 * cycling forever. Files are opened when first chosen and kept open.
 */
export async function* mathTrainingStream(path: string, rng: PyRandom, opts: MathLoadOptions = {}): AsyncGenerator<MathProblem, never> {
  const diag = opts.diagnostics ?? new Diagnostics(opts);
  const root = await resolveMathRoot(path);
  const modules = opts.modules === undefined || opts.modules === 'listed' ? INTERPOLATION_MODULES : opts.modules === 'all' ? null : opts.modules;
  const perSplit = new Map<MathSplit, string[]>();
  for (const s of MATH_TRAIN_SPLITS) {
    if (!(await isDir(join(root, s)))) throw new CorpusError(`${join(root, s)}: no such split folder (the training stream reads ${MATH_TRAIN_SPLITS.join(', ')})`);
    perSplit.set(s, await modulesOf(root, s, modules ?? 'all'));
  }
  const readers = new Map<string, AsyncGenerator<MathProblem>>();
  for (;;) {
    const split = MATH_TRAIN_SPLITS[rng.randbelow(MATH_TRAIN_SPLITS.length)]!;
    const mods = perSplit.get(split)!;
    const module = mods[rng.randbelow(mods.length)]!;
    const file = join(root, split, `${module}.txt`);
    let reader = readers.get(file);
    let next = reader ? await reader.next() : { done: true as const, value: undefined };
    if (next.done) {
      reader = readModuleFile(file, split, module, diag);
      readers.set(file, reader);
      next = await reader.next();
      if (next.done) throw new CorpusError(`${file}: no problems to cycle over`);
    }
    yield next.value;
  }
}
