/**
 * GPT-2 parameter names, shapes and initialisation with Hugging Face semantics (spec §3.2).
 *
 * Names and order are those of `GPT2LMHeadModel.named_parameters()` (and of its state dict, minus the
 * `attn.bias`/`attn.masked_bias` buffers of older versions):
 *
 *   transformer.wte.weight [V, d]          transformer.wpe.weight [P, d]
 *   per layer i, prefix transformer.h.{i}.:
 *     ln_1.weight [d]  ln_1.bias [d]
 *     attn.c_attn.weight [d, 3d]  attn.c_attn.bias [3d]     (Conv1D: [in, out], y = x·W + b)
 *     attn.c_proj.weight [d, d]   attn.c_proj.bias [d]
 *     ln_2.weight [d]  ln_2.bias [d]
 *     mlp.c_fc.weight [d, 4d]     mlp.c_fc.bias [4d]
 *     mlp.c_proj.weight [4d, d]   mlp.c_proj.bias [d]
 *   transformer.ln_f.weight [d]  transformer.ln_f.bias [d]
 *   lm_head.weight [V, d]                  only when untied (tied: the head is wte)
 *
 * Initialisation (HF `_init_weights`): weights and both embeddings N(0, 0.02); every `*.c_proj.weight`
 * (attention and MLP) N(0, 0.02/√(2·n_layer)); biases 0; LayerNorm γ = 1, β = 0; an untied lm_head
 * N(0, 0.02). (HF draws c_proj twice — the second draw replaces the first —; we draw it once with the
 * final standard deviation.)
 *
 * Random stream (deterministic per seed, independent of everything else): each tensor gets its own
 * MT19937 (src/util/random.ts) seeded with `init_by_array([seed, fnv1a32(name)])`, and its
 * elements are filled in row-major order with Box–Muller pairs: u1 = 1 − res53(), u2 = res53() (two
 * 53-bit doubles, CPython's `random()` construction), r = √(−2 ln u1), z0 = r·cos 2πu2 → element k,
 * z1 = r·sin 2πu2 → element k+1; z·std is rounded to float32. Because streams are per name, a tensor's
 * initial values do not depend on the vocabulary, the context length or the number of layers (e.g.
 * `transformer.h.0.attn.c_attn.weight` is the same for V = 31 and V = 256 with the same seed and d, and
 * the first 31 rows of the V = 256 wte are the V = 31 wte).
 * It does not reproduce PyTorch's generator (nothing in the method depends on that; spec §1).
 */
import { MT19937 } from '../util/random.ts';
import type { GPTConfig } from './config.ts';

export const INIT_STD = 0.02;

export type ParamInit = 'normal' | 'zeros' | 'ones';

/** Which family a parameter belongs to (for reports; transfer uses the reference's substring patterns). */
export type ParamKind = 'embedding' | 'layernorm' | 'attention' | 'mlp' | 'head';

export interface ParamSpec {
  name: string;
  shape: number[];
  init: ParamInit;
  /** Standard deviation for `normal` (0 otherwise). */
  std: number;
  kind: ParamKind;
  /** Layer index for per-block parameters, else -1. */
  layer: number;
}

const BLOCK_PARAMS = [
  'ln_1.weight',
  'ln_1.bias',
  'attn.c_attn.weight',
  'attn.c_attn.bias',
  'attn.c_proj.weight',
  'attn.c_proj.bias',
  'ln_2.weight',
  'ln_2.bias',
  'mlp.c_fc.weight',
  'mlp.c_fc.bias',
  'mlp.c_proj.weight',
  'mlp.c_proj.bias',
] as const;

type ShapeCfg = Pick<GPTConfig, 'nLayer' | 'nEmbd' | 'vocabSize' | 'nPositions' | 'tied'>;

function blockSpec(cfg: ShapeCfg, layer: number, local: (typeof BLOCK_PARAMS)[number]): ParamSpec {
  const d = cfg.nEmbd;
  const name = `transformer.h.${layer}.${local}`;
  const projStd = INIT_STD / Math.sqrt(2 * cfg.nLayer);
  const ln = (init: ParamInit): ParamSpec => ({ name, shape: [d], init, std: 0, kind: 'layernorm', layer });
  switch (local) {
    case 'ln_1.weight':
    case 'ln_2.weight':
      return ln('ones');
    case 'ln_1.bias':
    case 'ln_2.bias':
      return ln('zeros');
    case 'attn.c_attn.weight':
      return { name, shape: [d, 3 * d], init: 'normal', std: INIT_STD, kind: 'attention', layer };
    case 'attn.c_attn.bias':
      return { name, shape: [3 * d], init: 'zeros', std: 0, kind: 'attention', layer };
    case 'attn.c_proj.weight':
      return { name, shape: [d, d], init: 'normal', std: projStd, kind: 'attention', layer };
    case 'attn.c_proj.bias':
      return { name, shape: [d], init: 'zeros', std: 0, kind: 'attention', layer };
    case 'mlp.c_fc.weight':
      return { name, shape: [d, 4 * d], init: 'normal', std: INIT_STD, kind: 'mlp', layer };
    case 'mlp.c_fc.bias':
      return { name, shape: [4 * d], init: 'zeros', std: 0, kind: 'mlp', layer };
    case 'mlp.c_proj.weight':
      return { name, shape: [4 * d, d], init: 'normal', std: projStd, kind: 'mlp', layer };
    case 'mlp.c_proj.bias':
      return { name, shape: [d], init: 'zeros', std: 0, kind: 'mlp', layer };
  }
}

/** Every parameter of the model, in HF order. */
export function paramSpecs(cfg: ShapeCfg): ParamSpec[] {
  const d = cfg.nEmbd;
  const out: ParamSpec[] = [
    { name: 'transformer.wte.weight', shape: [cfg.vocabSize, d], init: 'normal', std: INIT_STD, kind: 'embedding', layer: -1 },
    { name: 'transformer.wpe.weight', shape: [cfg.nPositions, d], init: 'normal', std: INIT_STD, kind: 'embedding', layer: -1 },
  ];
  for (let i = 0; i < cfg.nLayer; i++) for (const p of BLOCK_PARAMS) out.push(blockSpec(cfg, i, p));
  out.push({ name: 'transformer.ln_f.weight', shape: [d], init: 'ones', std: 0, kind: 'layernorm', layer: -1 });
  out.push({ name: 'transformer.ln_f.bias', shape: [d], init: 'zeros', std: 0, kind: 'layernorm', layer: -1 });
  if (!cfg.tied) out.push({ name: 'lm_head.weight', shape: [cfg.vocabSize, d], init: 'normal', std: INIT_STD, kind: 'head', layer: -1 });
  return out;
}

export function paramNames(cfg: ShapeCfg): string[] {
  return paramSpecs(cfg).map((s) => s.name);
}

export function paramShapes(cfg: ShapeCfg): Map<string, number[]> {
  return new Map(paramSpecs(cfg).map((s) => [s.name, s.shape]));
}

/** 32-bit FNV-1a of the UTF-8 bytes of `s`. */
export function fnv1a32(s: string): number {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(s, 'utf8')) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** `n` standard normals (Box–Muller over MT19937 seeded with init_by_array([seed, fnv1a32(name)])), times std, as float32. */
export function normalStream(seed: number, name: string, n: number, std = 1): Float32Array {
  if (!Number.isSafeInteger(seed) || seed < 0 || seed > 0xffffffff) throw new RangeError(`init seed must be an integer in [0, 2^32), got ${seed}`);
  const mt = new MT19937(0);
  mt.initByArray([seed >>> 0, fnv1a32(name)]);
  const out = new Float32Array(n);
  const TWO_PI = 2 * Math.PI;
  for (let k = 0; k < n; k += 2) {
    const u1 = 1 - mt.nextDouble();
    const u2 = mt.nextDouble();
    const r = Math.sqrt(-2 * Math.log(u1)) * std;
    const a = TWO_PI * u2;
    out[k] = r * Math.cos(a);
    if (k + 1 < n) out[k + 1] = r * Math.sin(a);
  }
  return out;
}

function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** The initial values of one parameter. */
export function initParam(spec: ParamSpec, seed: number): Float32Array {
  const n = numel(spec.shape);
  switch (spec.init) {
    case 'zeros':
      return new Float32Array(n);
    case 'ones':
      return new Float32Array(n).fill(1);
    case 'normal':
      return normalStream(seed, spec.name, n, spec.std);
  }
}

/** HF initialisation of every parameter, in HF order (see the module comment for the random stream). */
export function initParams(cfg: ShapeCfg, seed: number): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const s of paramSpecs(cfg)) out.set(s.name, initParam(s, seed));
  return out;
}

/**
 * Which parameters get weight decay:
 *   'all'   every parameter — the procedural trainer (§4: torch AdamW over model.parameters());
 *   'hf'    not biases and not LayerNorm parameters — the HF Trainer (§6.1, §7.1);
 *   'bias'  not names containing "bias" — the accelerate scripts (§7.2/7.3; their "LayerNorm.weight"
 *           exemption never matches GPT-2's ln_* names, so LayerNorm weights ARE decayed).
 */
export type WeightDecayRule = 'all' | 'hf' | 'bias';
export const WEIGHT_DECAY_RULES: readonly WeightDecayRule[] = ['all', 'hf', 'bias'];

export function isLayerNormParam(name: string): boolean {
  return /(^|\.)ln_(1|2|f)\.(weight|bias)$/.test(name);
}

export function decays(name: string, rule: WeightDecayRule): boolean {
  switch (rule) {
    case 'all':
      return true;
    case 'hf':
      return !name.endsWith('bias') && !isLayerNormParam(name);
    case 'bias':
      return !name.includes('bias');
  }
}

/** Buffers some HF checkpoints carry next to the parameters (the causal-mask `attn.bias`, `attn.masked_bias`). */
export function isHfBuffer(name: string): boolean {
  return /(^|\.)attn\.(bias|masked_bias)$/.test(name);
}

/**
 * A state-dict name as found in HF checkpoints → our name: adds the `transformer.` prefix to base-model
 * names (`wte.weight`, `h.0.…`, `ln_f.…`, as saved by `GPT2Model` or the Hub's `gpt2`), keeps
 * `lm_head.weight`; returns null for buffers.
 */
export function normaliseHfName(name: string): string | null {
  if (isHfBuffer(name)) return null;
  if (name.startsWith('transformer.') || name === 'lm_head.weight') return name;
  if (/^(wte|wpe|ln_f)\.|^h\.\d+\./.test(name)) return `transformer.${name}`;
  return name;
}

/**
 * Checks `tensors` against the config's parameter list: every name known and every shape equal (the
 * error names the tensor and both shapes). With `complete`, every parameter must be present.
 */
export function checkShapes(cfg: ShapeCfg, tensors: ReadonlyMap<string, { shape: readonly number[] }>, opts: { complete?: boolean } = {}): void {
  const want = paramShapes(cfg);
  for (const [name, t] of tensors) {
    const shape = want.get(name);
    if (!shape) throw new Error(`unexpected tensor "${name}" for a ${cfg.nLayer}-layer ${cfg.tied ? 'tied' : 'untied'} GPT-2`);
    if (shape.length !== t.shape.length || shape.some((d, i) => d !== t.shape[i])) {
      throw new Error(`tensor "${name}": shape [${t.shape.join(', ')}] does not match the model's [${shape.join(', ')}]`);
    }
  }
  if (opts.complete) {
    for (const name of want.keys()) if (!tensors.has(name)) throw new Error(`missing tensor "${name}"`);
  }
}
