/**
 * GPT-2 (pre-LayerNorm decoder, Hugging Face semantics; spec §3.2) built from engine ops.
 *
 *   h = drop(wte[ids] + wpe[0..T-1])
 *   per block i:  a = LN1(h); y = attn(a·Wqkv + b); h = h + drop(y·Wo + bo)
 *                 m = LN2(h); h = h + drop(gelu(m·Wfc + bfc)·Wproj + bproj)
 *   logits = LN_f(h)·Wlmᵀ      (Wlm = wte when tied)
 *
 * Every residual add is fused with the LayerNorm that follows it (`addLayerNorm`: LN2 of the same
 * block, LN1 of the next, or LN_f), and the MLP bias with its GELU (`biasGelu`). Parameters live in
 * one ParameterStore under Hugging Face GPT-2 names and layouts (Conv1D weights [in, out]).
 */
import type { Engine } from '../../engine/engine.ts';
import { causalSelfAttention } from '../../engine/ops/attention.ts';
import { biasGelu } from '../../engine/ops/activation.ts';
import { crossEntropy, maskedAccuracy } from '../../engine/ops/cross_entropy.ts';
import { dropout } from '../../engine/ops/dropout.ts';
import { embedding } from '../../engine/ops/embedding.ts';
import { addLayerNorm, layerNorm } from '../../engine/ops/layernorm.ts';
import { linear, matmul } from '../../engine/ops/matmul.ts';
import { ParameterStore, type ParamDecl } from '../../engine/params.ts';
import type { Tensor } from '../../engine/tensor.ts';
import { type GPTConfig, validateModelConfig } from './config.ts';
import { decays, initParams, paramSpecs, type WeightDecayRule } from './hf_names.ts';

export interface GPTCreateOptions {
  /** Seed of the HF-style initialisation (ignored for tensors given in `weights`). */
  seed?: number;
  /** Initial values by HF name (e.g. from a checkpoint or a transfer); the rest are initialised. */
  weights?: ReadonlyMap<string, Float32Array>;
  /** Which parameters get weight decay: 'all' (procedural trainer), 'hf' (no biases/LayerNorm), 'bias'. */
  decay?: WeightDecayRule;
  /** Names of parameters to freeze (no gradient, no update). */
  frozen?: Iterable<string>;
}

/** One batch on the device. */
export interface DeviceBatch {
  /** i32 [B, T] */
  ids: Tensor;
  /** The same ids on the CPU (enables the deterministic CSR embedding backward). */
  idsHost: Int32Array;
  /** i32 [B·T] */
  targets: Tensor;
  /** f32 [B·T], 1 where the position carries loss. */
  lossMask: Tensor;
  /** f32 [B, T], 1 = real token, 0 = padded key; omitted when nothing is padded or PADs only trail. */
  keyPadMask?: Tensor;
  batch: number;
  seqLen: number;
}

/** Dropout randomness of one forward pass: masks depend only on (seed, step, stream, position). */
export interface ForwardContext {
  train: boolean;
  seed?: number;
  step?: number;
}

export class GPT {
  private constructor(
    readonly engine: Engine,
    readonly config: GPTConfig,
    readonly params: ParameterStore,
  ) {}

  static create(engine: Engine, config: GPTConfig, opts: GPTCreateOptions = {}): GPT {
    validateModelConfig(config);
    const given = opts.weights ?? new Map<string, Float32Array>();
    const fresh = initParams(config, opts.seed ?? 0);
    const frozen = new Set(opts.frozen ?? []);
    const rule = opts.decay ?? 'all';
    const specs = paramSpecs(config);
    const names = new Set(specs.map((s) => s.name));
    for (const n of given.keys()) if (!names.has(n)) throw new Error(`GPT.create: weight "${n}" is not a parameter of this model`);
    for (const n of frozen) if (!names.has(n)) throw new Error(`GPT.create: cannot freeze "${n}": no such parameter`);
    const decls: ParamDecl[] = specs.map((s) => {
      const init = given.get(s.name) ?? fresh.get(s.name)!;
      const numel = s.shape.reduce((a, b) => a * b, 1);
      if (init.length !== numel) throw new Error(`GPT.create: "${s.name}" has ${init.length} values, shape [${s.shape.join(', ')}] needs ${numel}`);
      return { name: s.name, shape: s.shape, init, decay: decays(s.name, rule), trainable: !frozen.has(s.name) };
    });
    return new GPT(engine, config, ParameterStore.create(engine, decls, { label: 'gpt' }));
  }

  p(name: string): Tensor {
    return this.params.get(name);
  }

  /** The output-head matrix [V, d]: wte when tied. */
  get head(): Tensor {
    return this.config.tied ? this.p('transformer.wte.weight') : this.p('lm_head.weight');
  }

  /** Logits [B·T, V] for a batch. */
  forward(b: Pick<DeviceBatch, 'ids' | 'idsHost' | 'keyPadMask' | 'batch' | 'seqLen'>, ctx: ForwardContext = { train: false }): Tensor {
    const c = this.config;
    const { batch: B, seqLen: T } = b;
    if (T > c.nPositions) throw new Error(`sequence length ${T} exceeds the model's context ${c.nPositions}`);
    const eps = c.layerNormEps;
    const drop = (x: Tensor, p: number, stream: number): Tensor =>
      ctx.train && p > 0 ? dropout(x, p, { seed: ctx.seed ?? 0, step: ctx.step ?? 0, stream }) : x;

    let h = embedding(b.ids, this.p('transformer.wte.weight'), this.p('transformer.wpe.weight'), { idsHost: b.idsHost });
    h = drop(h, c.dropout.embd, 0);
    let a = layerNorm(h, this.p('transformer.h.0.ln_1.weight'), this.p('transformer.h.0.ln_1.bias'), eps);
    for (let i = 0; i < c.nLayer; i++) {
      const L = `transformer.h.${i}.`;
      const qkv = linear(a, this.p(L + 'attn.c_attn.weight'), this.p(L + 'attn.c_attn.bias'));
      const att = causalSelfAttention(qkv, c.nHead, {
        keyPadMask: b.keyPadMask,
        dropout: ctx.train && c.dropout.attn > 0 ? { p: c.dropout.attn, seed: ctx.seed ?? 0, step: ctx.step ?? 0, stream: 1 + 3 * i } : undefined,
      });
      const o = drop(linear(att, this.p(L + 'attn.c_proj.weight'), this.p(L + 'attn.c_proj.bias')), c.dropout.resid, 2 + 3 * i);
      const r1 = addLayerNorm(h, o, this.p(L + 'ln_2.weight'), this.p(L + 'ln_2.bias'), eps);
      h = r1.h;
      const f = biasGelu(linear(r1.y, this.p(L + 'mlp.c_fc.weight')), this.p(L + 'mlp.c_fc.bias'));
      const o2 = drop(linear(f, this.p(L + 'mlp.c_proj.weight'), this.p(L + 'mlp.c_proj.bias')), c.dropout.resid, 3 + 3 * i);
      const next = i + 1 < c.nLayer ? `transformer.h.${i + 1}.ln_1.` : 'transformer.ln_f.';
      const r2 = addLayerNorm(h, o2, this.p(next + 'weight'), this.p(next + 'bias'), eps);
      h = r2.h;
      a = r2.y;
    }
    return matmul(a.reshape([B * T, c.nEmbd]), this.head, { transB: true });
  }

  /** Masked-mean next-token loss (a [1] tensor) and the logits. */
  loss(b: DeviceBatch, ctx: ForwardContext = { train: false }): { loss: Tensor; logits: Tensor } {
    const logits = this.forward(b, ctx);
    return { loss: crossEntropy(logits, b.targets, b.lossMask), logits };
  }

  /** [correct, total] over masked positions, as a device tensor. */
  accuracy(logits: Tensor, b: DeviceBatch): Tensor {
    return maskedAccuracy(logits, b.targets, b.lossMask);
  }

  /** Upload a packed batch (typed arrays from src/data) as device tensors. */
  uploadBatch(x: { ids: Int32Array; targets: Int32Array; lossMask: Float32Array; attentionMask?: Float32Array; batch: number; seqLen: number }): DeviceBatch {
    const e = this.engine;
    const { batch: B, seqLen: T } = x;
    let padded = false;
    if (x.attentionMask) {
      // A key padding mask matters only if some real token follows a pad within its row.
      for (let r = 0; r < B && !padded; r++) {
        let seenPad = false;
        for (let t = 0; t < T; t++) {
          const m = x.attentionMask[r * T + t]!;
          if (m === 0) seenPad = true;
          else if (seenPad) {
            padded = true;
            break;
          }
        }
      }
    }
    return {
      ids: e.tensor(x.ids, [B, T], { dtype: 'i32', name: 'ids' }),
      idsHost: x.ids,
      targets: e.tensor(x.targets, [B * T], { dtype: 'i32', name: 'targets' }),
      lossMask: e.tensor(x.lossMask, [B * T], { name: 'loss_mask' }),
      keyPadMask: padded ? e.tensor(x.attentionMask!, [B, T], { name: 'key_pad_mask' }) : undefined,
      batch: B,
      seqLen: T,
    };
  }

  /** All parameters by HF name (reads back from the device). */
  stateDict(): Promise<Map<string, Float32Array>> {
    return this.params.readAll();
  }

  shapes(): Map<string, number[]> {
    return new Map(paramSpecs(this.config).map((s) => [s.name, s.shape]));
  }

  destroy(): void {
    this.params.destroy();
  }
}
