/**
 * G independent GPT-2 models of one configuration trained side by side in one set of dispatches (the
 * seeds of an experiment arm): every parameter is stacked along a leading model dimension [G, ...],
 * and the G batches along the rows, model-major. Each kernel then runs once for all G models:
 *
 *   embedding    ids + g·V into wte [G·V, d], positions t + g·P into wpe [G·P, d]
 *   LayerNorm    grouped (`groups: G`): row block g uses γ_g, β_g and gives their gradients
 *   linear       batched `linear` [G, R, in] · [G, in, out], each model's bias in the epilogue and
 *                its gradient beside dW; the MLP as `linearGeluLinear` (GELU inside the products
 *                on the hardware plan, the grouped bias + GELU kernel on the software one)
 *   attention    the G·B sequences as one batch (attention has no parameters)
 *   head, loss   the loss rows of every model gathered ([G, N, d]), a batched product with each
 *                model's head, and one cross-entropy whose mask gives every model its own mean:
 *                loss = Σ_g mean_g, so model g's gradient is exactly its own model's.
 *
 * Same forward values and gradients as G separate `GPT`s on the same batches, up to float32
 * summation order (test/model/stacked.test.ts). Models with dropout are refused (masks depend on the
 * element index, which stacking changes). The optimizer is AdamW over the stacked store; with
 * gradient clipping it needs one norm per model (`AdamW`'s `groups`).
 */
import type { Engine } from '../../engine/engine.ts';
import { causalSelfAttention } from '../../engine/ops/attention.ts';
import { crossEntropyAndRows, crossEntropyRows, maskedAccuracyRows } from '../../engine/ops/cross_entropy.ts';
import { scale } from '../../engine/ops/elementwise.ts';
import { embedding } from '../../engine/ops/embedding.ts';
import { gatherRows } from '../../engine/ops/gather.ts';
import { addLayerNorm, layerNorm, type LayerNormVariant } from '../../engine/ops/layernorm.ts';
import { linear, linearGeluLinear, matmul } from '../../engine/ops/matmul.ts';
import { reduceAxisInto } from '../../engine/ops/reduce.ts';
import { ParameterStore, type ParamDecl } from '../../engine/params.ts';
import type { Tensor } from '../../engine/tensor.ts';
import { type GPTConfig, validateModelConfig } from './config.ts';
import type { HostBatch } from './gpt.ts';
import { decays, initParams, paramSpecs, type WeightDecayRule } from './hf_names.ts';

export interface StackedGPTOptions {
  /** One initialisation seed per model; their number is G. */
  seeds: readonly number[];
  /** Per model, initial values by HF name (a checkpoint or a transfer); the rest are initialised. */
  weights?: readonly (ReadonlyMap<string, Float32Array> | undefined)[];
  /** Which parameters get weight decay (as `GPT.create`). */
  decay?: WeightDecayRule;
  /** HF names of parameters frozen in every model. */
  frozen?: Iterable<string>;
  /** LayerNorm kernel (default: the plan's); benchmarks compare them. */
  layerNorm?: LayerNormVariant;
}

/** The G batches of one step on the device, stacked model-major. */
export interface StackedBatch {
  models: number;
  /** Rows per model and their (cut) length. */
  batch: number;
  seqLen: number;
  /** i32 [G·B·T]: token ids offset by g·V (rows of the stacked wte). */
  ids: Tensor;
  idsHost: Int32Array;
  /** i32 [G·B·T]: positions offset by g·P (rows of the stacked wpe). */
  positions: Tensor;
  positionsHost: Int32Array;
  /** f32 [G·B, T] when some row has a real token after a pad. */
  keyPadMask?: Tensor;
  /** Loss rows per model (N, the largest count; models with fewer are padded with mask-0 rows). */
  rowsPerModel: number;
  /** i32 [G·N]: rows of the stacked body (g·B·T + b·T + t), distinct. */
  rows: Tensor;
  rowsHost: Int32Array;
  /** i32 [G·N] */
  targets: Tensor;
  /** f32 [G·N]: each model's loss mask divided by its sum, so every model's masked mean has weight 1. */
  mask: Tensor;
  /** Models with at least one loss-carrying position (the loss is the sum of their means). */
  active: number;
}

export class StackedGPT {
  private constructor(
    readonly engine: Engine,
    readonly config: GPTConfig,
    readonly models: number,
    readonly params: ParameterStore,
    private readonly lnVariant: LayerNormVariant | undefined,
  ) {}

  static create(engine: Engine, config: GPTConfig, opts: StackedGPTOptions): StackedGPT {
    validateModelConfig(config);
    const G = opts.seeds.length;
    if (G < 1) throw new Error('StackedGPT.create: seeds must name at least one model');
    const { embd, attn, resid } = config.dropout;
    if (embd > 0 || attn > 0 || resid > 0)
      throw new Error(`StackedGPT.create: dropout must be 0 (got embd ${embd}, attn ${attn}, resid ${resid}): its masks depend on the element index, which stacking changes`);
    if (opts.weights && opts.weights.length !== G) throw new Error(`StackedGPT.create: ${opts.weights.length} weight maps for ${G} models`);
    const specs = paramSpecs(config);
    const names = new Set(specs.map((s) => s.name));
    const frozen = new Set(opts.frozen ?? []);
    for (const n of frozen) if (!names.has(n)) throw new Error(`StackedGPT.create: cannot freeze "${n}": no such parameter`);
    const perModel = opts.seeds.map((seed, g) => {
      const given = opts.weights?.[g] ?? new Map<string, Float32Array>();
      for (const n of given.keys()) if (!names.has(n)) throw new Error(`StackedGPT.create: weight "${n}" (model ${g}) is not a parameter of this model`);
      const fresh = initParams(config, seed);
      return (name: string) => given.get(name) ?? fresh.get(name)!;
    });
    const rule = opts.decay ?? 'all';
    const decls: ParamDecl[] = specs.map((s) => {
      const numel = s.shape.reduce((a, b) => a * b, 1);
      const init = new Float32Array(G * numel);
      perModel.forEach((get, g) => {
        const v = get(s.name);
        if (v.length !== numel) throw new Error(`StackedGPT.create: "${s.name}" of model ${g} has ${v.length} values, shape [${s.shape.join(', ')}] needs ${numel}`);
        init.set(v, g * numel);
      });
      return { name: s.name, shape: [G, ...s.shape], init, decay: decays(s.name, rule), trainable: !frozen.has(s.name) };
    });
    return new StackedGPT(engine, config, G, ParameterStore.create(engine, decls, { label: `gpt×${G}` }), opts.layerNorm);
  }

  /** A stacked parameter [G, ...HF shape]. */
  p(name: string): Tensor {
    return this.params.get(name);
  }

  /** The output heads [G, V, d] (wte when tied). */
  private get head(): Tensor {
    return this.config.tied ? this.p('transformer.wte.weight') : this.p('lm_head.weight');
  }

  /** Model g's rows of x through its layer: one batched product, each model's bias in its epilogue. */
  private linear(x: Tensor, prefix: string): Tensor {
    return linear(x, this.p(prefix + '.weight'), this.p(prefix + '.bias'));
  }

  /** The final-LayerNormed hidden state [G·B·T, d] of a stacked batch. */
  hidden(b: StackedBatch): Tensor {
    const c = this.config;
    const G = this.models;
    const ln0 = { eps: c.layerNormEps, groups: G, ...(this.lnVariant ? { variant: this.lnVariant } : {}) };
    const wte = this.p('transformer.wte.weight');
    const wpe = this.p('transformer.wpe.weight');
    const tables = (t: Tensor) => t.reshape([t.numel / c.nEmbd, c.nEmbd]);
    let h = embedding(b.ids, tables(wte), tables(wpe), { idsHost: b.idsHost, positions: b.positions, positionsHost: b.positionsHost });
    const ln = (x: Tensor, prefix: string) => layerNorm(x, this.p(prefix + 'weight'), this.p(prefix + 'bias'), ln0);
    let a = ln(h, 'transformer.h.0.ln_1.');
    for (let i = 0; i < c.nLayer; i++) {
      const L = `transformer.h.${i}.`;
      const qkv = this.linear(a, L + 'attn.c_attn').reshape([G * b.batch, b.seqLen, 3 * c.nEmbd]);
      const att = causalSelfAttention(qkv, c.nHead, { keyPadMask: b.keyPadMask }).reshape([G * b.batch * b.seqLen, c.nEmbd]);
      const r1 = addLayerNorm(h, this.linear(att, L + 'attn.c_proj'), this.p(L + 'ln_2.weight'), this.p(L + 'ln_2.bias'), ln0);
      h = r1.h;
      const mlp = linearGeluLinear(r1.y, this.p(L + 'mlp.c_fc.weight'), this.p(L + 'mlp.c_fc.bias'), this.p(L + 'mlp.c_proj.weight'), this.p(L + 'mlp.c_proj.bias'));
      const next = i + 1 < c.nLayer ? `transformer.h.${i + 1}.ln_1.` : 'transformer.ln_f.';
      const r2 = addLayerNorm(h, mlp, this.p(next + 'weight'), this.p(next + 'bias'), ln0);
      h = r2.h;
      a = r2.y;
    }
    return a;
  }

  /** Logits [G·N, V] of every model's loss rows. */
  logits(b: StackedBatch): Tensor {
    const G = this.models;
    const d = this.config.nEmbd;
    const h = gatherRows(this.hidden(b), b.rows).reshape([G, b.rowsPerModel, d]);
    return matmul(h, this.head, { transB: true }).reshape([G * b.rowsPerModel, this.config.vocabSize]);
  }

  /**
   * The sum over models of each model's masked-mean loss (a [1] tensor; its gradient with respect to
   * model g's parameters is model g's own), the logits it read, and `parts`: what `lossParts` gives,
   * from the same pass over the logits.
   */
  loss(b: StackedBatch): { loss: Tensor; logits: Tensor; parts: Tensor } {
    const logits = this.logits(b);
    const { loss: mean, rows } = crossEntropyAndRows(logits, b.targets, b.mask);
    const parts = this.perModel(rows, b);
    return { loss: b.active === 1 ? mean : scale(mean, b.active), logits, parts };
  }

  /** Per model (Σ mask·loss, Σ mask) with the normalised mask: [G, 2]; loss_g = [g·2] / [g·2 + 1]. Not differentiable. */
  lossParts(logits: Tensor, b: StackedBatch): Tensor {
    const pairs = crossEntropyRows(logits, b.targets, b.mask);
    return this.perModel(pairs, b);
  }

  /** Per model (correct, total) over the loss rows, totals weighted as `lossParts`' mask: [G, 2]; accuracy_g = [g·2] / [g·2 + 1]. */
  accuracyParts(logits: Tensor, b: StackedBatch): Tensor {
    return this.perModel(maskedAccuracyRows(logits, b.targets, b.mask), b);
  }

  private perModel(pairs: Tensor, b: StackedBatch): Tensor {
    const e = this.engine;
    const out = e.empty([this.models, 2], 'f32', 'stacked.per_model');
    reduceAxisInto(e, pairs, out, this.models, b.rowsPerModel, 2);
    e.dispose(pairs);
    return out;
  }

  /**
   * Upload G host batches (same batch size and length) as one stacked batch: cut after the last
   * loss-carrying position of any row of any model, loss rows listed per model.
   */
  uploadBatches(hosts: readonly HostBatch[]): StackedBatch {
    const e = this.engine;
    const G = this.models;
    const c = this.config;
    if (hosts.length !== G) throw new Error(`StackedGPT.uploadBatches: ${hosts.length} batches for ${G} models`);
    const { batch: B, seqLen: T0 } = hosts[0]!;
    for (const [g, h] of hosts.entries())
      if (h.batch !== B || h.seqLen !== T0) throw new Error(`StackedGPT.uploadBatches: batch ${g} is [${h.batch}, ${h.seqLen}], batch 0 is [${B}, ${T0}]`);
    let last = -1;
    const counts = hosts.map((h) => {
      let n = 0;
      for (let i = 0; i < B * T0; i++)
        if (h.lossMask[i] !== 0) {
          n++;
          last = Math.max(last, i % T0);
        }
      return n;
    });
    const T = Math.max(1, last + 1);
    if (T > c.nPositions) throw new Error(`sequence length ${T} exceeds the model's context ${c.nPositions}`);
    const N = Math.max(1, ...counts);
    const rowsOfModel = B * T;
    const ids = new Int32Array(G * rowsOfModel);
    const positions = new Int32Array(G * rowsOfModel);
    const rows = new Int32Array(G * N);
    const targets = new Int32Array(G * N);
    const mask = new Float32Array(G * N);
    let padded = false;
    hosts.forEach((h, g) => {
      const am = h.attentionMask;
      for (let r = 0; r < B; r++) {
        let seenPad = false;
        for (let t = 0; t < T; t++) {
          const src = r * T0 + t;
          const dst = g * rowsOfModel + r * T + t;
          ids[dst] = h.ids[src]! + g * c.vocabSize;
          positions[dst] = t + g * c.nPositions;
          if (am) {
            if (am[src] === 0) seenPad = true;
            else if (seenPad) padded = true;
          }
        }
      }
      // Loss rows in order, then (when this model has fewer than N) mask-0 rows that carry no loss.
      let k = g * N;
      const inv = counts[g]! > 0 ? 1 / hosts[g]!.lossMask.reduce((s, v) => s + v, 0) : 0;
      for (let r = 0; r < B; r++)
        for (let t = 0; t < T; t++)
          if (h.lossMask[r * T0 + t] !== 0) {
            rows[k] = g * rowsOfModel + r * T + t;
            targets[k] = h.targets[r * T0 + t]!;
            mask[k] = h.lossMask[r * T0 + t]! * inv;
            k++;
          }
      for (let i = 0; k < (g + 1) * N; i++)
        if (h.lossMask[Math.floor(i / T) * T0 + (i % T)] === 0) {
          rows[k] = g * rowsOfModel + i;
          targets[k] = 0;
          mask[k] = 0;
          k++;
        }
    });
    let keyPadMask: Tensor | undefined;
    if (padded) {
      const m = new Float32Array(G * rowsOfModel);
      hosts.forEach((h, g) => {
        const am = h.attentionMask;
        for (let r = 0; r < B; r++) for (let t = 0; t < T; t++) m[g * rowsOfModel + r * T + t] = am ? am[r * T0 + t]! : 1;
      });
      keyPadMask = e.tensor(m, [G * B, T], { name: 'key_pad_mask' });
    }
    return {
      models: G,
      batch: B,
      seqLen: T,
      ids: e.tensor(ids, [G * rowsOfModel], { dtype: 'i32', name: 'stacked_ids' }),
      idsHost: ids,
      positions: e.tensor(positions, [G * rowsOfModel], { dtype: 'i32', name: 'stacked_positions' }),
      positionsHost: positions,
      ...(keyPadMask ? { keyPadMask } : {}),
      rowsPerModel: N,
      rows: e.tensor(rows, [G * N], { dtype: 'i32', name: 'stacked_loss_rows' }),
      rowsHost: rows,
      targets: e.tensor(targets, [G * N], { dtype: 'i32', name: 'stacked_targets' }),
      mask: e.tensor(mask, [G * N], { name: 'stacked_mask' }),
      active: counts.filter((n) => n > 0).length || 1,
    };
  }

  /** Model g's parameters by HF name (reads back from the device). */
  async modelState(g: number): Promise<Map<string, Float32Array>> {
    if (!(Number.isInteger(g) && g >= 0 && g < this.models)) throw new Error(`StackedGPT.modelState: model ${g} is not in 0..${this.models - 1}`);
    return modelSlice(await this.params.readAll(), this.models, g);
  }

  destroy(): void {
    this.params.destroy();
  }
}

/** Model g's part of every stacked array (parameters or moments by name, [G, ...] each). */
export function modelSlice(map: ReadonlyMap<string, Float32Array>, G: number, g: number): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const [name, v] of map) {
    const n = v.length / G;
    out.set(name, v.slice(g * n, (g + 1) * n));
  }
  return out;
}
