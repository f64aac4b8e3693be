/**
 * GPT-2 (pre-LayerNorm decoder, Hugging Face semantics; spec §3.2) built from engine ops.
 *
 *   h = drop(wte[ids] + wpe[0..T-1])
 *   per block i:  a = LN1(h); y = attn(a·Wqkv + b); h = h + drop(y·Wo + bo)
 *                 m = LN2(h); h = h + drop(gelu(m·Wfc + bfc)·Wproj + bproj)
 *   logits = LN_f(h)·Wlmᵀ      (Wlm = wte when tied)
 *
 * Every residual add is fused with the LayerNorm that follows it (`addLayerNorm`: LN2 of the same
 * block, LN1 of the next, or LN_f); every bias, the MLP's first included, is added in its product's
 * epilogue, so its gradient is summed inside the weight-gradient product where the kernel plan can
 * (the GELU after it is its own elementwise pass). Parameters live in one ParameterStore under Hugging Face GPT-2 names and layouts (Conv1D weights [in, out]).
 */
import type { Engine } from '../../engine/engine.ts';
import { type AttentionDropout, causalSelfAttention, segmentedSelfAttention, segmentRowAlignment } from '../../engine/ops/attention.ts';
import { crossEntropy, maskedAccuracy } from '../../engine/ops/cross_entropy.ts';
import { dropout } from '../../engine/ops/dropout.ts';
import { embedding } from '../../engine/ops/embedding.ts';
import { gatherRows } from '../../engine/ops/gather.ts';
import { addLayerNorm, layerNorm } from '../../engine/ops/layernorm.ts';
import { linear, linearGeluLinear, matmul } from '../../engine/ops/matmul.ts';
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
  /**
   * Present when the rows are split by their last loss position (`UploadOptions.buckets`): each bucket
   * is cut to its own length, and the body runs once on all buckets packed together.
   */
  packed?: PackedBody;
}

/**
 * A group of rows of a sparse batch cut after the last loss position of any of its rows. Rows without
 * any loss position belong to no bucket (they cannot reach the loss).
 */
export interface BatchBucket {
  batch: number;
  seqLen: number;
  /** First row of the bucket in the packed body (a multiple of the attention's segment alignment). */
  rowStart: number;
  /** f32 [batch, seqLen], when a real token follows a pad in some row. */
  keyPadMask?: Tensor;
  /** Row indices of the host batch, in bucket order. */
  hostRows: Int32Array;
}

/**
 * The buckets of a sparse batch as one packed body of N rows: bucket k's rows j (each seqLen long) at
 * rowStart + j·seqLen + t, and pad rows (id −1, position −1: zero embeddings, no gradient) between
 * buckets so that each starts on the storage alignment. The position-wise layers run once on all N
 * rows; attention runs per bucket on slices (`segmentedSelfAttention`).
 */
export interface PackedBody {
  /** i32 [N] */
  ids: Tensor;
  idsHost: Int32Array;
  /** i32 [N]: position t of each row within its sequence, −1 for pad rows. */
  positions: Tensor;
  positionsHost: Int32Array;
  /** i32 [Nw]: the packed row of each loss row (`SparseRows.rows` order). */
  gather: Tensor;
  /** The buckets, in packed order (ascending length). */
  buckets: BatchBucket[];
}

/** True when some row (of `rows`, each of stride `stride`) has a real token after a pad within its first `len` positions. */
function needsPadMaskRows(am: Float32Array, rows: Int32Array, len: number, stride: number): boolean {
  for (const r of rows) {
    let seenPad = false;
    for (let t = 0; t < len; t++) {
      if (am[r * stride + t] === 0) seenPad = true;
      else if (seenPad) return true;
    }
  }
  return false;
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
  /**
   * Sparse batches only: split the rows by their last loss position into buckets, each cut to its own
   * length, so the body runs on Σ rows·T' positions instead of B·T' (`SparseRows.packed`). 'auto'
   * (default): the split into at most BUCKET_MAX buckets that minimises Σ (rows·T' + a fixed cost per
   * bucket, BUCKET_FIXED_TOKENS), and none when the model has dropout (its masks depend on the
   * element index). A number n: at most n buckets, no fixed cost (1: no split; tests, benchmarks).
   * The loss is the same masked mean over all loss rows: the head and the cross-entropy run once on
   * the loss rows gathered from every bucket.
   */
  buckets?: number | 'auto';
}

/** Fraction of loss-carrying positions below which 'auto' uploads a batch sparse. */
export const SPARSE_LOSS_FRACTION = 0.5;

/** Most buckets 'auto' splits a sparse batch into. */
export const BUCKET_MAX = 8;

/**
 * Fixed cost of one more bucket in body positions (rows × T'), by plan. The buckets share one packed
 * body, so a bucket adds only its attention dispatches (forward and backward per layer, 4 on the
 * 2-layer model) and its alignment rows. Software: measured on lavapipe at the needle's shape (1,000
 * rows, lengths 3..61), where 5–6 buckets ran ~15% faster than 3 and 8 no faster than 6; 1024 picks 5.
 * Hardware: unmeasured with the packed body; kept at the value set for per-bucket bodies (~85
 * dispatches each), which rarely splits.
 */
export const BUCKET_FIXED_TOKENS = { software: 1024, hardware: 65536 } as const;

/**
 * Split rows by their length (last loss position + 1, ≥ 1) into at most `maxBuckets` contiguous
 * length ranges minimising Σ (rows in the bucket × its longest length + fixed). Returns the chosen
 * lengths, ascending (each bucket holds the rows whose length is ≤ its own and > the previous one's).
 */
export function planBuckets(lengths: Iterable<number>, maxBuckets: number, fixed: number): number[] {
  const count = new Map<number, number>();
  for (const l of lengths) count.set(l, (count.get(l) ?? 0) + 1);
  const v = [...count.keys()].sort((a, b) => a - b);
  const m = v.length;
  if (m === 0) return [];
  const pre = [0];
  for (const x of v) pre.push(pre.at(-1)! + count.get(x)!);
  // best[k][j]: cost of covering values 0..j-1 with k buckets; j = 0 costs 0.
  const K = Math.max(1, Math.min(maxBuckets, m));
  const best: number[][] = [[0, ...new Array<number>(m).fill(Infinity)]];
  const from: number[][] = [[]];
  for (let k = 1; k <= K; k++) {
    best.push([0, ...new Array<number>(m).fill(Infinity)]);
    from.push(new Array<number>(m + 1).fill(0));
    for (let j = 1; j <= m; j++)
      for (let i = 0; i < j; i++) {
        const c = best[k - 1]![i]! + (pre[j]! - pre[i]!) * v[j - 1]! + fixed;
        if (c < best[k]![j]!) {
          best[k]![j] = c;
          from[k]![j] = i;
        }
      }
  }
  let k = 1;
  for (let kk = 2; kk <= K; kk++) if (best[kk]![m]! < best[k]![m]!) k = kk;
  const cuts: number[] = [];
  for (let j = m; k > 0; k--) {
    cuts.push(v[j - 1]!);
    j = from[k]![j]!;
  }
  return cuts.reverse();
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
    return matmul(this.hidden(b, ctx), this.head, { transB: true });
  }

  /** The final-LayerNormed hidden state [B·T, d] (what the head multiplies). */
  hidden(b: Pick<DeviceBatch, 'ids' | 'idsHost' | 'keyPadMask' | 'batch' | 'seqLen'>, ctx: ForwardContext = { train: false }): Tensor {
    const c = this.config;
    const { batch: B, seqLen: T } = b;
    if (T > c.nPositions) throw new Error(`sequence length ${T} exceeds the model's context ${c.nPositions}`);
    const h = embedding(b.ids, this.p('transformer.wte.weight'), this.p('transformer.wpe.weight'), { idsHost: b.idsHost });
    const attend = (qkv: Tensor, dropout: AttentionDropout | undefined) => causalSelfAttention(qkv, c.nHead, { keyPadMask: b.keyPadMask, dropout });
    return this.body(h, attend, ctx).reshape([B * T, c.nEmbd]);
  }

  /**
   * The final-LayerNormed hidden state [N, d] of a packed body (the buckets of a sparse batch): the
   * position-wise layers run once on all N rows, attention per bucket.
   */
  hiddenPacked(p: PackedBody, ctx: ForwardContext = { train: false }): Tensor {
    const c = this.config;
    const buckets = p.buckets;
    for (const k of buckets) if (k.seqLen > c.nPositions) throw new Error(`sequence length ${k.seqLen} exceeds the model's context ${c.nPositions}`);
    const h = embedding(p.ids, this.p('transformer.wte.weight'), this.p('transformer.wpe.weight'), {
      idsHost: p.idsHost,
      positions: p.positions,
      positionsHost: p.positionsHost,
    });
    const attend = (qkv: Tensor, dropout: AttentionDropout | undefined) => segmentedSelfAttention(qkv, c.nHead, buckets, { dropout });
    return this.body(h, attend, ctx);
  }

  /** The blocks and the final LayerNorm on embeddings h [..., d]; `attend` maps qkv [..., 3d] to [..., d]. */
  private body(h: Tensor, attend: (qkv: Tensor, dropout: AttentionDropout | undefined) => Tensor, ctx: ForwardContext): Tensor {
    const c = this.config;
    const eps = c.layerNormEps;
    const drop = (x: Tensor, p: number, stream: number): Tensor =>
      ctx.train && p > 0 ? dropout(x, p, { seed: ctx.seed ?? 0, step: ctx.step ?? 0, stream }) : x;
    h = drop(h, c.dropout.embd, 0);
    let a = layerNorm(h, this.p('transformer.h.0.ln_1.weight'), this.p('transformer.h.0.ln_1.bias'), eps);
    for (let i = 0; i < c.nLayer; i++) {
      const L = `transformer.h.${i}.`;
      const qkv = linear(a, this.p(L + 'attn.c_attn.weight'), this.p(L + 'attn.c_attn.bias'));
      const att = attend(qkv, ctx.train && c.dropout.attn > 0 ? { p: c.dropout.attn, seed: ctx.seed ?? 0, step: ctx.step ?? 0, stream: 1 + 3 * i } : undefined);
      const o = drop(linear(att, this.p(L + 'attn.c_proj.weight'), this.p(L + 'attn.c_proj.bias')), c.dropout.resid, 2 + 3 * i);
      const r1 = addLayerNorm(h, o, this.p(L + 'ln_2.weight'), this.p(L + 'ln_2.bias'), eps);
      h = r1.h;
      const mlp = linearGeluLinear(r1.y, this.p(L + 'mlp.c_fc.weight'), this.p(L + 'mlp.c_fc.bias'), this.p(L + 'mlp.c_proj.weight'), this.p(L + 'mlp.c_proj.bias'));
      const o2 = drop(mlp, c.dropout.resid, 3 + 3 * i);
      const next = i + 1 < c.nLayer ? `transformer.h.${i + 1}.ln_1.` : 'transformer.ln_f.';
      const r2 = addLayerNorm(h, o2, this.p(next + 'weight'), this.p(next + 'bias'), eps);
      h = r2.h;
      a = r2.y;
    }
    return a;
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
    const { packed } = b.sparse;
    const h = packed ? gatherRows(this.hiddenPacked(packed, ctx), packed.gather) : gatherRows(this.hidden(b, ctx), b.sparse.rows);
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
    // A key padding mask matters only if some real token follows a pad within its row.
    const padded = !!x.attentionMask && needsPadMaskRows(x.attentionMask, Int32Array.from({ length: B }, (_, r) => r), T, T);
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
      const packed = this.bucketRows(host, x.lossMask, rowsHost, B, T, opts.buckets ?? 'auto');
      if (packed) rows.packed = packed;
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

  /** The buckets of a sparse batch packed into one body (`UploadOptions.buckets`), or undefined when it is not split. */
  private bucketRows(host: HostBatch, mask: Float32Array, rowsHost: Int32Array, B: number, T: number, mode: number | 'auto'): PackedBody | undefined {
    const c = this.config;
    if (mode === 'auto' && (c.dropout.embd > 0 || c.dropout.attn > 0 || c.dropout.resid > 0)) return undefined;
    const maxBuckets = mode === 'auto' ? BUCKET_MAX : Math.floor(mode);
    if (!(maxBuckets >= 2)) return undefined;
    const fixed = mode === 'auto' ? BUCKET_FIXED_TOKENS[this.engine.plan.kind] : 0;
    const len = new Int32Array(B); // last loss position + 1 (0: no loss in the row)
    for (let r = 0; r < B; r++)
      for (let t = T - 1; t >= 0; t--)
        if (mask[r * T + t] !== 0) {
          len[r] = t + 1;
          break;
        }
    const cuts = planBuckets(
      Array.from(len).filter((l) => l > 0),
      maxBuckets,
      fixed,
    );
    if (cuts.length < 2) return undefined;
    const e = this.engine;
    const T0 = host.seqLen;
    const align = segmentRowAlignment(e, c.nEmbd);
    const bucketOf = new Int32Array(B).fill(-1);
    const localRow = new Int32Array(B);
    const out: BatchBucket[] = [];
    let N = 0;
    for (let k = 0; k < cuts.length; k++) {
      const Tk = cuts[k]!;
      const lo = k > 0 ? cuts[k - 1]! : 0;
      const hostRows = Int32Array.from(
        Array.from(len.keys()).filter((r) => len[r]! > lo && len[r]! <= Tk),
      );
      const Bk = hostRows.length;
      hostRows.forEach((r, j) => {
        bucketOf[r] = k;
        localRow[r] = j;
      });
      let keyPadMask: Tensor | undefined;
      const am = host.attentionMask;
      if (am && needsPadMaskRows(am, hostRows, Tk, T0)) {
        const m = new Float32Array(Bk * Tk);
        hostRows.forEach((r, j) => m.set(am.subarray(r * T0, r * T0 + Tk), j * Tk));
        keyPadMask = e.tensor(m, [Bk, Tk], { name: 'key_pad_mask' });
      }
      const rowStart = Math.ceil(N / align) * align;
      N = rowStart + Bk * Tk;
      out.push({ batch: Bk, seqLen: Tk, rowStart, keyPadMask, hostRows });
    }
    // The packed body: each bucket's rows one after the other, pad rows (id −1, position −1) between.
    const ids = new Int32Array(N).fill(-1);
    const positions = new Int32Array(N).fill(-1);
    for (const k of out)
      k.hostRows.forEach((r, j) => {
        const at = k.rowStart + j * k.seqLen;
        ids.set(host.ids.subarray(r * T0, r * T0 + k.seqLen), at);
        for (let t = 0; t < k.seqLen; t++) positions[at + t] = t;
      });
    const gather = new Int32Array(rowsHost.length);
    rowsHost.forEach((i, n) => {
      const r = Math.floor(i / T);
      const t = i - r * T;
      const k = out[bucketOf[r]!]!;
      gather[n] = k.rowStart + localRow[r]! * k.seqLen + t;
    });
    return {
      ids: e.tensor(ids, [N], { dtype: 'i32', name: 'packed_ids' }),
      idsHost: ids,
      positions: e.tensor(positions, [N], { dtype: 'i32', name: 'packed_positions' }),
      positionsHost: positions,
      gather: e.tensor(gather, [rowsHost.length], { dtype: 'i32', name: 'packed_gather' }),
      buckets: out,
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
