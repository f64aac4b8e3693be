/**
 * GPT-2 model configuration (spec §3): size strings, Hugging Face `config.json` interop, parameter counts.
 *
 *   const cfg = makeConfig({ size: '2_4_16', vocabSize: 31, nPositions: 40, tied: false, dropout: 0 });
 *   paramCount(cfg)   // 8,224
 */

export interface DropoutConfig {
  /** After the embedding sum (HF `embd_pdrop`). */
  embd: number;
  /** On the attention probabilities (HF `attn_pdrop`). */
  attn: number;
  /** On each residual branch output (HF `resid_pdrop`). */
  resid: number;
}

export interface GPTConfig {
  nLayer: number;
  nHead: number;
  /** Hidden size d; head dim = d / nHead, MLP inner = 4d. */
  nEmbd: number;
  vocabSize: number;
  /** Context length P (rows of wpe). */
  nPositions: number;
  /** lm_head = wte (HF `tie_word_embeddings`). */
  tied: boolean;
  dropout: DropoutConfig;
  /** LayerNorm epsilon (HF `layer_norm_epsilon`, 1e-5). */
  layerNormEps: number;
}

/** The size strings the reference knows (§3.1). Any `L_H_D` string with H | D parses. */
export const KNOWN_SIZES = [
  '2_4_16',
  '4_4_16',
  '8_4_16',
  '12_4_16',
  '4_4_256',
  '2_4_64',
  '4_8_512',
  '12_1_64',
  '12_3_192',
  '12_6_384',
  '12_12_768',
  '6_12_768',
  '3_12_768',
  '2_12_768',
  '1_12_768',
  '16_8_2048',
  '24_16_2048',
  '24_16_1024',
] as const;

/** HF model names → size strings (the C4 script's `model_name`). */
export const HF_MODEL_SIZES: Readonly<Record<string, string>> = {
  gpt2: '12_12_768',
  'gpt2-medium': '24_16_1024',
  'gpt2-large': '36_20_1280',
  'gpt2-xl': '48_25_1600',
};

export const DEFAULT_DROPOUT = 0.1;
export const DEFAULT_LAYER_NORM_EPS = 1e-5;

export class ModelConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModelConfigError';
  }
}

/** `"{layers}_{heads}_{hidden}"` → numbers. Throws on a malformed string or hidden % heads ≠ 0. */
export function parseSize(size: string): { nLayer: number; nHead: number; nEmbd: number } {
  const m = /^(\d+)_(\d+)_(\d+)$/.exec(String(size).trim());
  if (!m) throw new ModelConfigError(`invalid model size "${size}": expected "{layers}_{heads}_{hidden}", e.g. "2_4_16" or "12_12_768"`);
  const [nLayer, nHead, nEmbd] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (nLayer < 1 || nHead < 1 || nEmbd < 1) throw new ModelConfigError(`invalid model size "${size}": every part must be >= 1`);
  if (nEmbd % nHead !== 0) throw new ModelConfigError(`invalid model size "${size}": hidden ${nEmbd} is not divisible by heads ${nHead}`);
  return { nLayer, nHead, nEmbd };
}

export function sizeString(c: Pick<GPTConfig, 'nLayer' | 'nHead' | 'nEmbd'>): string {
  return `${c.nLayer}_${c.nHead}_${c.nEmbd}`;
}

export interface MakeConfigOptions {
  /** Size string (`2_4_16`) or an HF model name (`gpt2`). */
  size: string;
  vocabSize: number;
  nPositions: number;
  /** Default true (HF default). */
  tied?: boolean;
  /** One number for all three, or per site. Default 0.1 (HF default). */
  dropout?: number | Partial<DropoutConfig>;
  layerNormEps?: number;
}

export function makeConfig(o: MakeConfigOptions): GPTConfig {
  const size = HF_MODEL_SIZES[o.size] ?? o.size;
  const d = typeof o.dropout === 'number' ? { embd: o.dropout, attn: o.dropout, resid: o.dropout } : (o.dropout ?? {});
  const cfg: GPTConfig = {
    ...parseSize(size),
    vocabSize: o.vocabSize,
    nPositions: o.nPositions,
    tied: o.tied ?? true,
    dropout: { embd: d.embd ?? DEFAULT_DROPOUT, attn: d.attn ?? DEFAULT_DROPOUT, resid: d.resid ?? DEFAULT_DROPOUT },
    layerNormEps: o.layerNormEps ?? DEFAULT_LAYER_NORM_EPS,
  };
  validateModelConfig(cfg);
  return cfg;
}

function posInt(x: unknown): boolean {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 1;
}

/** Throws a ModelConfigError naming the first bad field. */
export function validateModelConfig(c: GPTConfig): void {
  for (const k of ['nLayer', 'nHead', 'nEmbd', 'vocabSize', 'nPositions'] as const) {
    if (!posInt(c[k])) throw new ModelConfigError(`model config: ${k} must be a positive integer, got ${String(c[k])}`);
  }
  if (c.nEmbd % c.nHead !== 0) throw new ModelConfigError(`model config: nEmbd ${c.nEmbd} is not divisible by nHead ${c.nHead}`);
  if (typeof c.tied !== 'boolean') throw new ModelConfigError('model config: tied must be a boolean');
  for (const k of ['embd', 'attn', 'resid'] as const) {
    const p = c.dropout?.[k];
    if (typeof p !== 'number' || !(p >= 0 && p < 1)) throw new ModelConfigError(`model config: dropout.${k} must be in [0, 1), got ${String(p)}`);
  }
  if (typeof c.layerNormEps !== 'number' || !(c.layerNormEps > 0)) {
    throw new ModelConfigError(`model config: layerNormEps must be > 0, got ${String(c.layerNormEps)}`);
  }
}

/**
 * Parameter count (spec §3.3): V·d + P·d + n_layer·(12d² + 13d) + 2d (+ V·d if untied).
 * Per layer: c_attn 3d²+3d, attn c_proj d²+d, c_fc 4d²+4d, mlp c_proj 4d²+d, two LayerNorms 4d.
 */
export function paramCount(c: Pick<GPTConfig, 'nLayer' | 'nEmbd' | 'vocabSize' | 'nPositions' | 'tied'>): number {
  const d = c.nEmbd;
  return c.vocabSize * d + c.nPositions * d + c.nLayer * (12 * d * d + 13 * d) + 2 * d + (c.tied ? 0 : c.vocabSize * d);
}

/** A Hugging Face `GPT2Config` as written to `config.json` (the fields we read and write). */
export interface HfGpt2Config {
  model_type?: string;
  architectures?: string[];
  n_layer: number;
  n_head: number;
  n_embd: number;
  vocab_size: number;
  n_positions: number;
  n_ctx?: number;
  n_inner?: number | null;
  activation_function?: string;
  resid_pdrop?: number;
  embd_pdrop?: number;
  attn_pdrop?: number;
  layer_norm_epsilon?: number;
  tie_word_embeddings?: boolean;
  scale_attn_weights?: boolean;
  scale_attn_by_inverse_layer_idx?: boolean;
  reorder_and_upcast_attn?: boolean;
  [key: string]: unknown;
}

/** Our config as an HF `config.json` object (so `GPT2Config.from_pretrained(dir)` rebuilds the model). */
export function toHfConfig(c: GPTConfig): HfGpt2Config {
  return {
    model_type: 'gpt2',
    architectures: ['GPT2LMHeadModel'],
    n_layer: c.nLayer,
    n_head: c.nHead,
    n_embd: c.nEmbd,
    vocab_size: c.vocabSize,
    n_positions: c.nPositions,
    n_ctx: c.nPositions,
    n_inner: null,
    activation_function: 'gelu_new',
    resid_pdrop: c.dropout.resid,
    embd_pdrop: c.dropout.embd,
    attn_pdrop: c.dropout.attn,
    layer_norm_epsilon: c.layerNormEps,
    tie_word_embeddings: c.tied,
    scale_attn_weights: true,
    scale_attn_by_inverse_layer_idx: false,
    reorder_and_upcast_attn: false,
  };
}

/** Activations with the tanh GELU our kernels implement. */
const TANH_GELUS = new Set(['gelu_new', 'gelu_pytorch_tanh']);

/**
 * An HF `config.json` object → GPTConfig. Rejects what the engine does not implement (another
 * activation, an MLP width other than 4d, attention scaling variants) with a message naming the key.
 */
export function fromHfConfig(j: HfGpt2Config): GPTConfig {
  const need = (k: string): number => {
    const v = j[k];
    if (!posInt(v)) throw new ModelConfigError(`HF config: "${k}" must be a positive integer, got ${JSON.stringify(v)}`);
    return v as number;
  };
  if (j.model_type !== undefined && j.model_type !== 'gpt2') throw new ModelConfigError(`HF config: model_type "${j.model_type}" is not "gpt2"`);
  const act = j.activation_function ?? 'gelu_new';
  if (!TANH_GELUS.has(act)) throw new ModelConfigError(`HF config: activation_function "${act}" is not supported (the engine implements gelu_new)`);
  const nEmbd = need('n_embd');
  if (j.n_inner !== undefined && j.n_inner !== null && j.n_inner !== 4 * nEmbd) {
    throw new ModelConfigError(`HF config: n_inner ${j.n_inner} is not supported (the engine's MLP is 4·n_embd = ${4 * nEmbd})`);
  }
  if (j.scale_attn_weights === false) throw new ModelConfigError('HF config: scale_attn_weights = false is not supported');
  if (j.scale_attn_by_inverse_layer_idx === true) throw new ModelConfigError('HF config: scale_attn_by_inverse_layer_idx = true is not supported');
  const p = (k: string): number => {
    const v = j[k];
    return typeof v === 'number' ? v : DEFAULT_DROPOUT;
  };
  const cfg: GPTConfig = {
    nLayer: need('n_layer'),
    nHead: need('n_head'),
    nEmbd,
    vocabSize: need('vocab_size'),
    nPositions: j.n_positions !== undefined ? need('n_positions') : need('n_ctx'),
    tied: j.tie_word_embeddings ?? true,
    dropout: { embd: p('embd_pdrop'), attn: p('attn_pdrop'), resid: p('resid_pdrop') },
    layerNormEps: typeof j.layer_norm_epsilon === 'number' ? j.layer_norm_epsilon : DEFAULT_LAYER_NORM_EPS,
  };
  validateModelConfig(cfg);
  return cfg;
}
