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
import { gatherRows } from '../../engine/ops/gather.ts';
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
  /** T of the uploaded tensors: the host batch's, or shorter when a sparse batch was cut. */
  seqLen: number;
  /**
   * Present when the loss mask is sparse (see `UploadOptions.sparse`): the positions that carry loss,
   * so `loss` computes the head and the cross-entropy on those rows only.
   */
  sparse?: SparseRows;
}

/** The loss-carrying positions of a sparse batch, in the uploaded (possibly cut) layout. */
export interface SparseRows {
  /** i32 [Nw]: flat indices b·T + t (T = the uploaded seqLen) with lossMask ≠ 0, ascending. */
  rows: Tensor;
  rowsHost: Int32Array;
  /** i32 [Nw]: targets at those positions. */
  targets: Tensor;
  /** f32 [Nw]: loss-mask values at those positions. */
  mask: Tensor;
  /** T of the host batch before the cut. */
  fullSeqLen: number;
}

/** A packed batch on the host (typed arrays from src/data). */
export interface HostBatch {
  ids: Int32Array;
  targets: Int32Array;
  lossMask: Float32Array;
  attentionMask?: Float32Array;
  batch: number;
  seqLen: number;
}

export interface UploadOptions {
  /**
   * 'auto' (default): a batch whose loss mask is nonzero at fewer than half of its positions is
   * uploaded sparse: cut after the last loss-carrying position of any row (later positions cannot
   * reach the loss through causal attention) and with the loss rows listed, so the lm_head, the
   * cross-entropy and their backward run on those rows only. Same loss and gradients as the dense
   * path up to float32 summation order. true / false force either path (a batch without any
   * loss-carrying position is always uploaded dense).
   */
  sparse?: boolean | 'auto';
}

/** Fraction of loss-carrying positions below which 'auto' uploads a batch sparse. */
export const SPARSE_LOSS_FRACTION = 0.5;

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
    return matmul(this.hidden(b, ctx), this.head, { transB: true });
  }

  /** The final-LayerNormed hidden state [B·T, d] (what the head multiplies). */
  hidden(b: Pick<DeviceBatch, 'ids' | 'idsHost' | 'keyPadMask' | 'batch' | 'seqLen'>, ctx: ForwardContext = { train: false }): Tensor {
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
    return a.reshape([B * T, c.nEmbd]);
  }

  /**
   * Masked-mean next-token loss (a [1] tensor) and the logits it read: [B·T, V] for a dense batch,
   * [Nw, V] (the loss rows, in `b.sparse.rows` order) for a sparse one, whose head and cross-entropy
   * run on the loss rows only.
   */
  loss(b: DeviceBatch, ctx: ForwardContext = { train: false }): { loss: Tensor; logits: Tensor } {
    if (!b.sparse) {
      const logits = this.forward(b, ctx);
      return { loss: crossEntropy(logits, b.targets, b.lossMask), logits };
    }
    const h = gatherRows(this.hidden(b, ctx), b.sparse.rows);
    const logits = matmul(h, this.head, { transB: true });
    return { loss: crossEntropy(logits, b.sparse.targets, b.sparse.mask), logits };
  }

  /**
   * [correct, total] over masked positions, as a device tensor. `logits` are `loss`'s (the loss rows
   * of a sparse batch) or `forward`'s ([B·T, V], every position).
   */
  accuracy(logits: Tensor, b: DeviceBatch): Tensor {
    const rows = logits.numel / logits.dim(-1);
    if (b.sparse && rows === b.sparse.rows.numel && rows !== b.batch * b.seqLen) return maskedAccuracy(logits, b.sparse.targets, b.sparse.mask);
    return maskedAccuracy(logits, b.targets, b.lossMask);
  }

  /**
   * Upload a packed batch (typed arrays from src/data) as device tensors. A batch with a sparse loss
   * mask is cut and gets its loss rows listed (`UploadOptions.sparse`); its `seqLen` is then the cut
   * length.
   */
  uploadBatch(host: HostBatch, opts: UploadOptions = {}): DeviceBatch {
    const e = this.engine;
    const { batch: B, seqLen: T0 } = host;
    const mode = opts.sparse ?? 'auto';
    let wanted = 0;
    let lastWanted = -1; // over the batch
    if (mode !== false)
      for (let r = 0; r < B; r++)
        for (let t = 0; t < T0; t++)
          if (host.lossMask[r * T0 + t] !== 0) {
            wanted++;
            if (t > lastWanted) lastWanted = t;
          }
    const sparse = wanted > 0 && (mode === true || (mode === 'auto' && wanted < SPARSE_LOSS_FRACTION * B * T0));
    // The loss at position t reads logits at t (ids 0..t through causal attention) and targets[t]: the
    // positions after the last loss-carrying one of every row are not needed.
    const T = sparse ? Math.max(1, lastWanted + 1) : T0;
    const cut = <A extends Int32Array | Float32Array>(a: A): A => {
      if (T === T0) return a;
      const out = new (a.constructor as { new (n: number): A })(B * T);
      for (let r = 0; r < B; r++) out.set(a.subarray(r * T0, r * T0 + T), r * T);
      return out;
    };
    const x = { ids: cut(host.ids), targets: cut(host.targets), lossMask: cut(host.lossMask), attentionMask: host.attentionMask && cut(host.attentionMask) };
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
    let rows: SparseRows | undefined;
    if (sparse) {
      const rowsHost = new Int32Array(wanted);
      const tg = new Int32Array(wanted);
      const mk = new Float32Array(wanted);
      let k = 0;
      for (let i = 0; i < B * T; i++)
        if (x.lossMask[i] !== 0) {
          rowsHost[k] = i;
          tg[k] = x.targets[i]!;
          mk[k] = x.lossMask[i]!;
          k++;
        }
      rows = {
        rows: e.tensor(rowsHost, [wanted], { dtype: 'i32', name: 'loss_rows' }),
        rowsHost,
        targets: e.tensor(tg, [wanted], { dtype: 'i32', name: 'loss_row_targets' }),
        mask: e.tensor(mk, [wanted], { name: 'loss_row_mask' }),
        fullSeqLen: T0,
      };
    }
    return {
      ids: e.tensor(x.ids, [B, T], { dtype: 'i32', name: 'ids' }),
      idsHost: x.ids,
      targets: e.tensor(x.targets, [B * T], { dtype: 'i32', name: 'targets' }),
      lossMask: e.tensor(x.lossMask, [B * T], { name: 'loss_mask' }),
      keyPadMask: padded ? e.tensor(x.attentionMask!, [B, T], { name: 'key_pad_mask' }) : undefined,
      batch: B,
      seqLen: T,
      ...(rows ? { sparse: rows } : {}),
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
