/**
 * Transfer of pretrained weights into a fresh downstream model (spec §5), freezing, and weight mixtures.
 *
 * Components are selected by substring patterns on full HF names, exactly as the reference does:
 *
 *   attn     attn.c_attn, attn.c_proj                  heads    attn.c_attn
 *   attn+ln  attn.c_attn, attn.c_proj, ln_1.weight, ln_1.bias
 *   ffn      mlp                                       ln       ln_{1,2,f}.{weight,bias}
 *   embed    wte, wpe, embedding, lm_head              everything  all of the above
 *
 * `transferInit(source, targetConfig, { seed, transfer, embInit, train })`:
 *   1. a fresh target with the HF init (src/model/hf_names.ts, `seed`);
 *   2. if `embed` or `everything` is transferred, token embeddings from the pretrained E = wte [Vp, d]:
 *        average           every row of wte (and of an untied lm_head) = mean of E's rows
 *        partial_matching  rows < Vp copied from E, rows ≥ Vp = mean(E) (wte, and an untied lm_head,
 *                          as the reference does); needs Vt ≥ Vp
 *        retain            wte = E (and an untied lm_head = E); needs Vt = Vp
 *      and position embeddings: the first Pt rows of the pretrained wpe when Pp ≥ Pt, else random;
 *   3. `everything`: every other source tensor is loaded (all attention, MLP and LayerNorm tensors incl.
 *      ln_f) — names containing wte.weight, wpe.weight, lm_head.weight or .attn.bias are skipped;
 *      otherwise (embed dropped) exactly the tensors matching the selected patterns, same skip list;
 *   4. trainable = everything, or the parameters matching the `train` components' patterns; the rest
 *      are returned as `frozen`.
 * `layers` (not in the reference) restricts step 3 to the listed transformer blocks (`h.{i}.`): the
 * other blocks keep the fresh init, e.g. `{transfer: ['attn'], layers: [0]}` loads only block 0's
 * attention; tensors outside the blocks (ln_f) follow the components as before.
 *
 * Like PyTorch's `load_state_dict(strict=False)`, a selected source tensor that the target lacks (e.g.
 * a deeper source) is ignored and reported in `unexpected` (`strict: true` makes it an error), and a
 * shape mismatch is an error naming the tensor. Source names without the `transformer.` prefix are
 * normalised first (the reference would silently drop them).
 *
 * Weight mixtures (page; not in the repo): `transferMixture` applies step 3's pattern load once per part
 * (e.g. [attn] from A, then [ffn] from B) and makes §12's open question explicit: where the LayerNorms
 * (`layerNorm`), the position embeddings (`positions`) and the token embeddings (`tokenEmbeddings`) come
 * from — a part's index, or 'random'.
 */
import type { GPTConfig } from '../model/config.ts';
import { initParams, normaliseHfName, paramSpecs } from '../model/hf_names.ts';

export type Component = 'everything' | 'attn' | 'ffn' | 'ln' | 'attn+ln' | 'heads' | 'embed';
export const COMPONENTS: readonly Component[] = ['everything', 'attn', 'ffn', 'ln', 'attn+ln', 'heads', 'embed'];

/** The reference's COMPONENT_PATTERNS (downstream/utils.py). */
export const COMPONENT_PATTERNS: Readonly<Record<Exclude<Component, 'everything'>, readonly string[]>> = {
  attn: ['attn.c_attn', 'attn.c_proj'],
  'attn+ln': ['attn.c_attn', 'attn.c_proj', 'ln_1.weight', 'ln_1.bias'],
  ffn: ['mlp'],
  embed: ['wte', 'wpe', 'embedding', 'lm_head'],
  heads: ['attn.c_attn'],
  ln: ['ln_1.weight', 'ln_1.bias', 'ln_2.weight', 'ln_2.bias', 'ln_f.weight', 'ln_f.bias'],
};

/** Never loaded by the weight-loading steps (embeddings are handled separately; .attn.bias is a buffer). */
export const SKIP_SUBSTRINGS: readonly string[] = ['wte.weight', 'wpe.weight', 'lm_head.weight', '.attn.bias'];

export type EmbInit = 'average' | 'partial_matching' | 'retain';
export const EMB_INITS: readonly EmbInit[] = ['average', 'partial_matching', 'retain'];

export interface StateTensor {
  shape: readonly number[];
  data: Float32Array;
}
export type StateDict = ReadonlyMap<string, StateTensor>;

export class TransferError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TransferError';
  }
}

/**
 * One `transfer_scale` entry: the initial weights whose names contain `match` are multiplied by
 * `factor`, all of each tensor or, with `slice`, the entries whose index on the last axis lies in
 * [start, end) (e.g. the key columns of a block's c_attn, which packs Q, K and V along its last axis).
 */
export interface WeightScale {
  match: string;
  factor: number;
  slice: { start: number; end: number } | null;
}

const SCALE_ENTRY = /^(.*?)(?:\[\s*(\d+)\s*:\s*(\d+)\s*\])?$/;

/**
 * `transfer_scale` entries "NAME=FACTOR" or "NAME[START:END]=FACTOR" (NAME a substring of parameter
 * names, START < END indices on the tensors' last axis, FACTOR a finite number); errors name the entry.
 */
export function parseWeightScales(entries: readonly string[]): WeightScale[] {
  return entries.map((e) => {
    const i = e.lastIndexOf('=');
    const lhs = i > 0 ? e.slice(0, i).trim() : '';
    const f = i > 0 ? e.slice(i + 1).trim() : '';
    const factor = f === '' ? NaN : Number(f);
    const m = SCALE_ENTRY.exec(lhs)!;
    const match = m[1]!.trim();
    if (!match || /[[=]/.test(match) || !Number.isFinite(factor))
      throw new TransferError(`transfer_scale: "${e}" is not NAME=FACTOR or NAME[START:END]=FACTOR (a parameter-name substring, optionally a range of its last axis, and a finite number, e.g. h.1.attn.c_proj.weight=-1)`);
    const slice = m[2] === undefined ? null : { start: Number(m[2]), end: Number(m[3]) };
    if (slice && slice.start >= slice.end) throw new TransferError(`transfer_scale: "${e}": the range [${slice.start}:${slice.end}] is empty (START must be below END)`);
    return { match, factor, slice };
  });
}

/**
 * Weight surgery after a transfer (ablations of what is handed over): each parameter whose name
 * contains an entry's `match` is multiplied by its `factor` (several entries multiply), all of it or
 * the slice of its last axis the entry names. E.g. −1 on a block's c_proj.weight turns copying heads
 * into suppressing ones and back (`kindling heads`); −1 on the key columns of its c_attn negates every
 * attention score; 0 removes a tensor. `origin` records it ('source×-1', 'source×-1[64:128]'). An
 * entry that matches no parameter, or whose range runs past a matched tensor's last axis, is an error.
 */
export function scaleWeights(result: TransferResult, scales: readonly WeightScale[]): void {
  for (const { match, factor, slice } of scales) {
    const names = [...result.state.keys()].filter((n) => n.includes(match));
    if (names.length === 0) throw new TransferError(`transfer_scale: "${match}" matches no parameter of the model`);
    for (const n of names) {
      const t = result.state.get(n)!;
      const last = t.shape.at(-1) ?? 1;
      if (slice && slice.end > last) throw new TransferError(`transfer_scale: "${match}[${slice.start}:${slice.end}]" runs past the last axis of ${n} (shape [${t.shape.join(', ')}])`);
      const data = slice ? t.data.map((x, j) => (j % last >= slice.start && j % last < slice.end ? x * factor : x)) : t.data.map((x) => x * factor);
      result.state.set(n, { shape: t.shape, data });
      result.origin.set(n, `${result.origin.get(n) ?? 'init'}×${factor}${slice ? `[${slice.start}:${slice.end}]` : ''}`);
    }
  }
}

const WTE = 'transformer.wte.weight';
const WPE = 'transformer.wpe.weight';
const LM_HEAD = 'lm_head.weight';

/** name → Float32Array + shapes → a state dict (e.g. from a loaded checkpoint). */
export function toStateDict(params: ReadonlyMap<string, Float32Array>, shapes: ReadonlyMap<string, readonly number[]>): Map<string, StateTensor> {
  const out = new Map<string, StateTensor>();
  for (const [name, data] of params) {
    const shape = shapes.get(name);
    if (!shape) throw new TransferError(`tensor "${name}" has no shape`);
    out.set(name, { shape, data });
  }
  return out;
}

/** Adds the `transformer.` prefix where missing and drops `attn.bias`/`attn.masked_bias` buffers. */
export function normaliseSource(source: StateDict): Map<string, StateTensor> {
  const out = new Map<string, StateTensor>();
  for (const [raw, t] of source) {
    const name = normaliseHfName(raw);
    if (name === null) continue;
    if (out.has(name)) throw new TransferError(`source has "${name}" twice (with and without the transformer. prefix)`);
    out.set(name, t);
  }
  return out;
}

function checkComponents(list: readonly string[], what: string): asserts list is Component[] {
  if (!Array.isArray(list)) throw new TransferError(`${what} must be a list of components`);
  for (const c of list) {
    if (!COMPONENTS.includes(c as Component)) throw new TransferError(`${what}: unknown component "${c}" (expected one of ${COMPONENTS.join(', ')})`);
  }
}

/** The substring patterns of a list of components (`everything` has none: it means all). */
export function patternsOf(components: readonly Component[]): string[] {
  const out: string[] = [];
  for (const c of components) if (c !== 'everything') out.push(...COMPONENT_PATTERNS[c]);
  return out;
}

export function matchesAny(name: string, patterns: readonly string[]): boolean {
  return patterns.some((p) => name.includes(p));
}

function isSkipped(name: string): boolean {
  return SKIP_SUBSTRINGS.some((s) => name.includes(s));
}

/** Names (of `names`) that `components` select, with the reference's rules (everything = all). */
export function selectByComponents(names: Iterable<string>, components: readonly Component[]): string[] {
  checkComponents(components, 'components');
  const all = components.includes('everything');
  const pats = patternsOf(components);
  return [...names].filter((n) => all || matchesAny(n, pats));
}

/** Step 6 of §5: which parameters train. */
export function trainableSplit(names: Iterable<string>, train: readonly Component[]): { trainable: string[]; frozen: string[] } {
  const list = [...names];
  const trainable = new Set(selectByComponents(list, train));
  return { trainable: list.filter((n) => trainable.has(n)), frozen: list.filter((n) => !trainable.has(n)) };
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function fmt(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

function meanRows(E: StateTensor): Float64Array {
  const [V, d] = E.shape as [number, number];
  const acc = new Float64Array(d);
  for (let r = 0; r < V; r++) for (let j = 0; j < d; j++) acc[j] += E.data[r * d + j]!;
  for (let j = 0; j < d; j++) acc[j] /= V;
  return acc;
}

function cloneState(state: StateDict): Map<string, { shape: number[]; data: Float32Array }> {
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [n, t] of state) out.set(n, { shape: [...t.shape], data: new Float32Array(t.data) });
  return out;
}

export interface TransferOptions {
  /** `weights_to_be_transferred` / `weights_to_transfer`. */
  transfer: readonly Component[];
  /** `embedding_init_strategy` / `initialization_strategy` (default 'average'). */
  embInit?: EmbInit;
  /** `weights_to_be_trained` (default ['everything']). */
  train?: readonly Component[];
  /** A selected source tensor the target lacks is an error instead of being ignored (default false). */
  strict?: boolean;
  /**
   * Transformer blocks whose selected tensors are loaded (`h.{i}.` in their names); tensors of other
   * blocks keep the target's init. Tensors outside the blocks (ln_f, embeddings) are governed by the
   * components alone. Default: every block.
   */
  layers?: readonly number[];
}

export interface TransferResult {
  /** The target's initial state: every target parameter, in the target's order. */
  state: Map<string, { shape: number[]; data: Float32Array }>;
  /** Target parameters copied whole from the source. */
  loaded: string[];
  /** Where every target parameter's values come from: 'init', 'source' (or a mixture part's label), 'average', 'partial_matching', 'retain', 'wpe[:P]'. */
  origin: Map<string, string>;
  /** Selected source tensors the target does not have (ignored, as with strict=False). */
  unexpected: string[];
  trainable: string[];
  frozen: string[];
  /** Whether the position embeddings were copied (null: embeddings not transferred). */
  positionsCopied: boolean | null;
}

type MutableState = Map<string, { shape: number[]; data: Float32Array }>;

function requireTarget(target: MutableState, name: string): { shape: number[]; data: Float32Array } {
  const t = target.get(name);
  if (!t) throw new TransferError(`target model has no "${name}"`);
  return t;
}

/** Step 2 (token embeddings) on `target` in place. Returns the names written. */
function initTokenEmbeddings(target: MutableState, source: Map<string, StateTensor>, strategy: EmbInit, origin: Map<string, string>): void {
  if (!EMB_INITS.includes(strategy)) throw new TransferError(`unknown embedding init strategy "${strategy}" (expected one of ${EMB_INITS.join(', ')})`);
  const E = source.get(WTE);
  if (!E) throw new TransferError(`source has no "${WTE}" (needed to initialise the token embeddings)`);
  if (E.shape.length !== 2) throw new TransferError(`source "${WTE}" must be 2-D, got ${fmt(E.shape)}`);
  const [Vp, d] = E.shape as [number, number];
  const heads = [WTE, ...(target.has(LM_HEAD) ? [LM_HEAD] : [])];
  for (const name of heads) {
    const T = requireTarget(target, name);
    const [Vt, dt] = T.shape as [number, number];
    if (dt !== d) throw new TransferError(`tensor "${name}": target width ${dt} != pretrained ${WTE} width ${d} (shapes ${fmt(T.shape)} vs ${fmt(E.shape)})`);
    if (strategy === 'retain' && Vt !== Vp) {
      throw new TransferError(`tensor "${name}": 'retain' needs the same vocabulary, target has ${Vt} rows, pretrained ${WTE} has ${Vp}`);
    }
    if (strategy === 'partial_matching' && Vt < Vp) {
      throw new TransferError(`tensor "${name}": 'partial_matching' needs the target vocabulary (${Vt}) to be at least the pretrained one (${Vp})`);
    }
    const mean = strategy === 'retain' ? null : meanRows(E);
    const copyRows = strategy === 'average' ? 0 : Vp;
    for (let r = 0; r < Vt; r++) {
      if (r < copyRows) T.data.set(E.data.subarray(r * d, (r + 1) * d), r * d);
      else for (let j = 0; j < d; j++) T.data[r * d + j] = mean![j]!;
    }
    origin.set(name, strategy);
  }
}

/** Step 2, positions: copy the first Pt rows when the source has at least as many. Returns whether copied. */
function initPositions(target: MutableState, source: Map<string, StateTensor>, origin: Map<string, string>): boolean {
  const Wp = source.get(WPE);
  if (!Wp) throw new TransferError(`source has no "${WPE}": cannot determine its context length`);
  const T = requireTarget(target, WPE);
  const [Pt, d] = T.shape as [number, number];
  const [Pp, dp] = Wp.shape as [number, number];
  if (dp !== d) throw new TransferError(`tensor "${WPE}": target width ${d} != pretrained width ${dp} (shapes ${fmt(T.shape)} vs ${fmt(Wp.shape)})`);
  if (Pp < Pt) return false; // keep the random init
  T.data.set(Wp.data.subarray(0, Pt * d));
  origin.set(WPE, `wpe[:${Pt}]`);
  return true;
}

/** Copies `names` (source names) into the target; shape mismatch throws; absent ones go to `unexpected`. */
function loadTensors(target: MutableState, source: Map<string, StateTensor>, names: string[], label: string, origin: Map<string, string>, loaded: string[], unexpected: string[], strict: boolean): void {
  for (const name of names) {
    const s = source.get(name)!;
    const t = target.get(name);
    if (!t) {
      if (strict) throw new TransferError(`source tensor "${name}" has no counterpart in the target model`);
      unexpected.push(name);
      continue;
    }
    if (!sameShape(s.shape, t.shape)) throw new TransferError(`tensor "${name}": source shape ${fmt(s.shape)} does not match target shape ${fmt(t.shape)}`);
    t.data.set(s.data);
    origin.set(name, label);
    if (!loaded.includes(name)) loaded.push(name);
  }
}

/**
 * Applies §5 steps 2–6 to a copy of `target` (a freshly initialised state) with the weights of `source`.
 */
export function applyTransfer(target: StateDict, source: StateDict, opts: TransferOptions): TransferResult {
  checkComponents(opts.transfer, 'transfer');
  const train = opts.train ?? ['everything'];
  checkComponents(train, 'train');
  const embInit = opts.embInit ?? 'average';
  const src = normaliseSource(source);
  const state = cloneState(target);
  const origin = new Map<string, string>([...state.keys()].map((n) => [n, 'init']));
  const loaded: string[] = [];
  const unexpected: string[] = [];
  let transfer = [...opts.transfer];
  let positionsCopied: boolean | null = null;
  const inLayers = layerFilter(opts.layers, state) ?? (() => true);

  if (transfer.includes('embed') || transfer.includes('everything')) {
    initTokenEmbeddings(state, src, embInit, origin);
    positionsCopied = initPositions(state, src, origin);
  }
  if (transfer.includes('everything')) {
    const names = [...src.keys()].filter((n) => !isSkipped(n) && inLayers(n));
    loadTensors(state, src, names, 'source', origin, loaded, unexpected, opts.strict ?? false);
  } else {
    transfer = transfer.filter((c) => c !== 'embed');
    const pats = patternsOf(transfer);
    const names = [...src.keys()].filter((n) => !isSkipped(n) && matchesAny(n, pats) && inLayers(n));
    loadTensors(state, src, names, 'source', origin, loaded, unexpected, opts.strict ?? false);
  }
  const { trainable, frozen } = trainableSplit(state.keys(), train);
  return { state, loaded, origin, unexpected, trainable, frozen, positionsCopied };
}

/** The block index of an HF name (`transformer.h.3.attn.c_attn.weight` → 3), or null outside the blocks. */
export function blockIndex(name: string): number | null {
  const m = /(?:^|\.)h\.(\d+)\./.exec(name);
  return m ? Number(m[1]) : null;
}

/** Checks `layers` against the target's blocks; returns a filter for source names (null: every block). */
function layerFilter(layers: readonly number[] | undefined, target: MutableState): ((name: string) => boolean) | null {
  if (layers === undefined) return null;
  const blocks = new Set([...target.keys()].map(blockIndex).filter((i): i is number => i !== null));
  if (layers.length === 0) throw new TransferError('layers: an empty list would transfer no block; leave it out to transfer every block');
  for (const l of layers) {
    if (!Number.isInteger(l) || !blocks.has(l)) throw new TransferError(`layers: ${String(l)} is not a block of the target model (blocks 0..${blocks.size - 1})`);
  }
  const keep = new Set(layers);
  return (name) => {
    const i = blockIndex(name);
    return i === null || keep.has(i);
  };
}

/** A fresh HF-initialised target for `targetConfig` (seed `seed`), then `applyTransfer`. */
export function transferInit(source: StateDict, targetConfig: GPTConfig, opts: TransferOptions & { seed: number }): TransferResult {
  return applyTransfer(freshState(targetConfig, opts.seed), source, opts);
}

/** The HF initialisation of `config` as a state dict. */
export function freshState(config: GPTConfig, seed: number): Map<string, StateTensor> {
  const init = initParams(config, seed);
  return new Map(paramSpecs(config).map((s) => [s.name, { shape: s.shape, data: init.get(s.name)! }]));
}

// ------------------------------------------------------------------------------------------------
// Weight mixtures

export interface MixturePart {
  source: StateDict;
  /** Components loaded from this source with step 3's pattern rule: attn, ffn, ln, attn+ln, heads. */
  components: readonly Component[];
  /** Shown in `origin` (default `part{i}`). */
  label?: string;
}

export interface MixtureOptions {
  parts: readonly MixturePart[];
  /** Where ln_1, ln_2 and ln_f come from: a part's index, or 'random' (keep the init). */
  layerNorm: 'random' | number;
  /** Where wpe comes from (a part's index, copied when its context ≥ the target's), or 'random'. */
  positions: 'random' | number;
  /** Token embeddings (and an untied lm_head): from a part with a strategy, or 'random'. */
  tokenEmbeddings: 'random' | { from: number; init: EmbInit };
  train?: readonly Component[];
  strict?: boolean;
}

/**
 * A weight mixture on a copy of `target`: e.g. attention from checkpoint A and MLP from checkpoint B:
 *
 *   mixWeights(fresh, { parts: [{ source: A, components: ['attn'] }, { source: B, components: ['ffn'] }],
 *                       layerNorm: 1, positions: 'random', tokenEmbeddings: 'random' })
 *
 * Two parts selecting the same tensor is an error (ambiguous), unless it is the same part index as
 * `layerNorm` for LayerNorm tensors.
 */
export function mixWeights(target: StateDict, opts: MixtureOptions): TransferResult {
  const train = opts.train ?? ['everything'];
  checkComponents(train, 'train');
  if (opts.parts.length === 0) throw new TransferError('a weight mixture needs at least one part');
  const sources = opts.parts.map((p) => normaliseSource(p.source));
  const labels = opts.parts.map((p, i) => p.label ?? `part${i}`);
  const idx = (i: number, what: string): number => {
    if (!Number.isInteger(i) || i < 0 || i >= opts.parts.length) throw new TransferError(`${what}: part index ${i} out of range (0..${opts.parts.length - 1})`);
    return i;
  };
  const state = cloneState(target);
  const origin = new Map<string, string>([...state.keys()].map((n) => [n, 'init']));
  const loaded: string[] = [];
  const unexpected: string[] = [];
  const owner = new Map<string, number>();
  const claim = (names: string[], part: number): void => {
    for (const n of names) {
      const prev = owner.get(n);
      if (prev !== undefined && prev !== part) throw new TransferError(`tensor "${n}" is selected by both ${labels[prev]} and ${labels[part]}; a mixture must assign each tensor once`);
      owner.set(n, part);
    }
  };
  opts.parts.forEach((part, i) => {
    checkComponents(part.components, `${labels[i]} components`);
    for (const c of part.components) {
      if (c === 'everything' || c === 'embed') {
        throw new TransferError(`${labels[i]}: '${c}' is not allowed in a mixture part; use layerNorm / positions / tokenEmbeddings for what is not attention or MLP`);
      }
    }
    const pats = patternsOf(part.components);
    const names = [...sources[i]!.keys()].filter((n) => !isSkipped(n) && matchesAny(n, pats));
    claim(names, i);
    loadTensors(state, sources[i]!, names, labels[i]!, origin, loaded, unexpected, opts.strict ?? false);
  });
  if (opts.layerNorm !== 'random') {
    const i = idx(opts.layerNorm, 'layerNorm');
    const names = [...sources[i]!.keys()].filter((n) => matchesAny(n, COMPONENT_PATTERNS.ln));
    claim(names, i);
    loadTensors(state, sources[i]!, names, labels[i]!, origin, loaded, unexpected, opts.strict ?? false);
  }
  let positionsCopied: boolean | null = null;
  if (opts.positions !== 'random') {
    const i = idx(opts.positions, 'positions');
    positionsCopied = initPositions(state, sources[i]!, origin);
    if (positionsCopied) origin.set(WPE, `${labels[i]} ${origin.get(WPE)}`);
  }
  if (opts.tokenEmbeddings !== 'random') {
    const i = idx(opts.tokenEmbeddings.from, 'tokenEmbeddings');
    initTokenEmbeddings(state, sources[i]!, opts.tokenEmbeddings.init, origin);
    for (const n of [WTE, LM_HEAD]) if (state.has(n)) origin.set(n, `${labels[i]} ${opts.tokenEmbeddings.init}`);
  }
  const { trainable, frozen } = trainableSplit(state.keys(), train);
  return { state, loaded, origin, unexpected, trainable, frozen, positionsCopied };
}

/** A fresh HF-initialised target for `targetConfig`, then `mixWeights`. */
export function transferMixture(targetConfig: GPTConfig, opts: MixtureOptions & { seed: number }): TransferResult {
  return mixWeights(freshState(targetConfig, opts.seed), opts);
}
