// Packing samples into flat, row-major [batch, seqLen] typed arrays, ready for one GPU upload each.

import type { Sample } from './sample.ts';

/**
 * A packed batch. Row b occupies [b*seqLen, (b+1)*seqLen). Samples shorter than seqLen are padded with
 * PAD in ids and targets and 0 in both masks. Masks are Float32Array so that they can be uploaded as-is
 * to WGSL storage buffers (which have no 8-bit element type) and multiplied into per-token losses.
 */
export interface Batch {
  ids: Int32Array;
  targets: Int32Array;
  lossMask: Float32Array;
  attentionMask: Float32Array;
  batch: number;
  seqLen: number;
  /** Σ lossMask: the number of supervised tokens (the loss denominator of §4). */
  lossTokens: number;
}

/** Anything that yields samples by index (a ProceduralTask, a Mixture, a materialised store). */
export interface SampleSource {
  readonly padId: number;
  readonly contextLength: number;
  sample(idx: number): Sample;
}

export interface PackOptions {
  padId: number;
  /** Row length; defaults to the longest sample. Samples longer than this are an error. */
  seqLen?: number;
}

export function packBatch(samples: readonly Sample[], opts: PackOptions): Batch {
  const B = samples.length;
  let T = opts.seqLen ?? 0;
  if (opts.seqLen === undefined) for (const s of samples) T = Math.max(T, s.ids.length);
  const ids = new Int32Array(B * T).fill(opts.padId);
  const targets = new Int32Array(B * T).fill(opts.padId);
  const lossMask = new Float32Array(B * T);
  const attentionMask = new Float32Array(B * T);
  let lossTokens = 0;
  for (let b = 0; b < B; b++) {
    const s = samples[b];
    const n = s.ids.length;
    if (n > T) throw new RangeError(`sample ${b} has length ${n} > seqLen ${T}`);
    const off = b * T;
    ids.set(s.ids, off);
    targets.set(s.targets, off);
    for (let i = 0; i < n; i++) {
      lossMask[off + i] = s.lossMask[i];
      attentionMask[off + i] = s.attentionMask[i];
      lossTokens += s.lossMask[i];
    }
  }
  return { ids, targets, lossMask, attentionMask, batch: B, seqLen: T, lossTokens };
}

/** Batch of samples idx[0], idx[1], … from a source, padded to the source's context length. */
export function batchFromIndices(source: SampleSource, indices: ArrayLike<number>, seqLen = source.contextLength): Batch {
  const samples: Sample[] = [];
  for (let i = 0; i < indices.length; i++) samples.push(source.sample(indices[i]));
  return packBatch(samples, { padId: source.padId, seqLen });
}

/**
 * Sequential batcher: batch j holds samples start + j*batchSize … start + (j+1)*batchSize - 1, padded to
 * the source's context length (or `seqLen`).
 */
export class Batcher {
  private nextIdx: number;
  readonly seqLen: number;

  constructor(
    private readonly source: SampleSource,
    private readonly batchSize: number,
    opts: { start?: number; seqLen?: number } = {},
  ) {
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError('batchSize must be a positive integer');
    this.nextIdx = opts.start ?? 0;
    this.seqLen = opts.seqLen ?? source.contextLength;
  }

  /** Index of the first sample of the next batch. */
  get position(): number {
    return this.nextIdx;
  }

  next(): Batch {
    const indices = Array.from({ length: this.batchSize }, (_, i) => this.nextIdx + i);
    this.nextIdx += this.batchSize;
    return batchFromIndices(this.source, indices, this.seqLen);
  }
}
