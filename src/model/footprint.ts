/**
 * Memory a training run needs, estimated before anything is allocated, and the check that refuses a
 * run that cannot fit (the adapter's buffer limits, the machine's memory).
 *
 *   const fp = trainingFootprint(cfg, { batch: 64, seqLen: 41 });
 *   fp.totalBytes          // parameters + gradients + AdamW moments + activations of one micro-batch
 *   fitProblem(fp, { maxStorageBufferBindingSize, maxBufferSize }, { hostBytes: os.totalmem(), software: true })
 *                          // null, or the message: the numbers and what to change
 *
 * All tensors are float32 (4 bytes an element), but for the half copies of precision f16. With N parameters, B sequences of T tokens, width d,
 * H heads, L layers and vocabulary V:
 *
 *   parameters, gradients, AdamW m, AdamW v   4 · N · 4 bytes
 *   activations of one micro-batch            4 · (L · (24·B·T·d + B·H·T) + 4·B·T·d + 3·B·T·V) bytes
 *   precision f16 / bf16: half copies         2 · (7·L·B·T·d + B·T·d + N + B·T·V) bytes more
 *
 * Per layer the forward keeps about 20·B·T·d values for the backward (qkv 3, attention output 1,
 * projection and its dropout 2, residual and LayerNorm 2, MLP hidden before and after GELU 8, MLP
 * output and its dropout 2, residual and LayerNorm 2; on the hardware plan, whose MLP has GELU inside
 * its products, the hidden after GELU is never stored, 4 less) and the fused attention B·H·T log-sum-exps; 4·B·T·d
 * more covers the MLP-hidden gradient in flight during the backward. Outside the layers: the embedding
 * sum and its dropout, and the residual-stream gradient (4·B·T·d), and the logits, their softmax and
 * their gradient (3·B·T·V, the dense head; a sparse batch needs less). It is an estimate of the peak,
 * on the high side, so a refused run would not have fitted with any reasonable margin.
 *
 * The largest single buffer is the largest of wte/lm_head (V·d), wpe (P·d), an MLP weight (4d·d), the
 * logits (B·T·V) and the MLP hidden (B·T·4d); a kernel binds it whole, so it must fit in the adapter's
 * maxStorageBufferBindingSize (and maxBufferSize). Parameters, gradients and moments live in arenas of
 * chunks no larger than that limit, so only their total matters.
 */
import type { Precision } from '../../engine/precision.ts';
import { paramCount, sizeString, type GPTConfig } from './config.ts';

const F32 = 4;

export interface FootprintInput {
  /** Sequences per micro-batch. */
  batch: number;
  /** Tokens per sequence (at most the model's nPositions). */
  seqLen: number;
  /** Matmul operand storage (engine/precision.ts): 'f16' / 'bf16' add the half copies (default 'f32'). */
  precision?: Precision;
}

export interface Footprint {
  params: number;
  paramBytes: number;
  gradBytes: number;
  /** AdamW m and v. */
  optimizerBytes: number;
  /** Activations of one micro-batch (forward intermediates kept for the backward, and its gradients). */
  activationBytes: number;
  totalBytes: number;
  /** The largest single buffer, named. */
  largest: { what: string; bytes: number };
}

export function trainingFootprint(c: Pick<GPTConfig, 'nLayer' | 'nHead' | 'nEmbd' | 'vocabSize' | 'nPositions' | 'tied'>, io: FootprintInput): Footprint {
  const { nLayer: L, nHead: H, nEmbd: d, vocabSize: V, nPositions: P } = c;
  const { batch: B, seqLen: T } = io;
  const params = paramCount(c);
  const paramBytes = params * F32;
  // Precision f16 / bf16 keeps half copies (2 bytes an element) of every linear input for the backward (7·B·T·d
  // a layer: three of width d, the MLP hidden of 4d), the head's input (B·T·d) and every weight (N),
  // plus one output gradient's copy in flight (at most B·T·V, the head's).
  const half = io.precision === 'f16' || io.precision === 'bf16' ? 2 * (7 * L * B * T * d + B * T * d + params + B * T * V) : 0;
  const activationBytes = F32 * (L * (24 * B * T * d + B * H * T) + 4 * B * T * d + 3 * B * T * V) + half;
  const candidates: { what: string; bytes: number }[] = [
    { what: `token embedding wte [${V}, ${d}]`, bytes: V * d * F32 },
    { what: `position embedding wpe [${P}, ${d}]`, bytes: P * d * F32 },
    { what: `MLP weight [${d}, ${4 * d}]`, bytes: 4 * d * d * F32 },
    { what: `logits [${B}·${T}, ${V}]`, bytes: B * T * V * F32 },
    { what: `MLP hidden activations [${B}·${T}, ${4 * d}]`, bytes: B * T * 4 * d * F32 },
  ];
  const largest = candidates.reduce((a, b) => (b.bytes > a.bytes ? b : a));
  return {
    params,
    paramBytes,
    gradBytes: paramBytes,
    optimizerBytes: 2 * paramBytes,
    activationBytes,
    totalBytes: 4 * paramBytes + activationBytes,
    largest,
  };
}

/** Bytes in binary units with three significant digits: 1536 → "1.50 KiB". */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toPrecision(3)} ${units[i]}`;
}

export interface AdapterLimits {
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
}

export interface HostMemory {
  /** The machine's memory (os.totalmem()). */
  hostBytes: number;
  /** A software adapter (lavapipe): its GPU memory is host memory, so the whole footprint must fit there. */
  software: boolean;
}

const HINT = 'use a smaller batch (with gradient accumulation to keep the effective batch), a shorter context, or a smaller model';

/**
 * Why a run of this footprint cannot fit, or null. `what` names the run (model size, vocabulary,
 * context, batch) in the message, `hint` says what to change (in the run's own keys). A checkpoint
 * reads the parameters and both moments into host memory (12·N bytes). On a software adapter the
 * footprint and that copy share the machine's memory; on a hardware adapter the GPU's memory is not
 * known to WebGPU, so only the buffer limits and the host copy are checked.
 */
export function fitProblem(fp: Footprint, limits: AdapterLimits, mem: HostMemory, what: string, hint = HINT): string | null {
  const bind = Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize);
  if (fp.largest.bytes > bind) {
    const limitName = limits.maxStorageBufferBindingSize <= limits.maxBufferSize ? 'maxStorageBufferBindingSize' : 'maxBufferSize';
    return (
      `${what}: the largest buffer, the ${fp.largest.what}, needs ${formatBytes(fp.largest.bytes)}, over this adapter's ${limitName} ` +
      `of ${formatBytes(bind)}; ${hint}`
    );
  }
  const breakdown =
    `parameters ${formatBytes(fp.paramBytes)} (${fp.params.toLocaleString('en-US')}), gradients ${formatBytes(fp.gradBytes)}, ` +
    `AdamW moments ${formatBytes(fp.optimizerBytes)}, activations of one micro-batch ${formatBytes(fp.activationBytes)}`;
  // A checkpoint reads the parameters and both moments back into host memory (12·N bytes).
  const hostCopy = 3 * fp.paramBytes;
  if (mem.software && fp.totalBytes + hostCopy > mem.hostBytes) {
    return (
      `${what}: training needs about ${formatBytes(fp.totalBytes + hostCopy)} (${breakdown}, and a checkpoint's host copy of the ` +
      `parameters and moments ${formatBytes(hostCopy)}), more than this machine's ${formatBytes(mem.hostBytes)} of memory, which the ` +
      `software adapter uses as GPU memory; ${hint}`
    );
  }
  if (!mem.software && hostCopy > mem.hostBytes) {
    return (
      `${what}: a checkpoint holds the parameters and both AdamW moments in host memory, ${formatBytes(hostCopy)} ` +
      `(${fp.params.toLocaleString('en-US')} parameters), more than this machine's ${formatBytes(mem.hostBytes)}; use a smaller model`
    );
  }
  return null;
}

/** "model 2_4_16 (vocab 23, context 41), batch 64" for fitProblem's messages. */
export function describeRun(c: Pick<GPTConfig, 'nLayer' | 'nHead' | 'nEmbd' | 'vocabSize' | 'nPositions'>, batch: number): string {
  return `model ${sizeString(c)} (vocab ${c.vocabSize}, context ${c.nPositions}), batch ${batch}`;
}
