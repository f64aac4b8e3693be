// The one sample type every procedural generator returns, and the helpers that build it.

/**
 * One training sequence.
 *   ids            token ids, length T (the natural length of the task, PAD-padded where the task pads)
 *   targets        ids shifted left by one with PAD appended: targets[p] = ids[p+1], targets[T-1] = PAD
 *   lossMask       1 where the model's output at p is trained to predict targets[p]
 *   attentionMask  1 for real tokens (ids != PAD) — all ones for stack, Dyck, WW and ECA (spec §2.1, §2.7)
 */
export interface Sample {
  ids: Int32Array;
  targets: Int32Array;
  lossMask: Uint8Array;
  attentionMask: Uint8Array;
}

/** How a generator fills the attention mask. */
export type AttentionKind = 'nonpad' | 'ones';

/** targets = ids[1:] ‖ [pad]. */
export function shiftTargets(ids: Int32Array, pad: number, out = new Int32Array(ids.length)): Int32Array {
  const n = ids.length;
  if (n > 0) {
    out.set(ids.subarray(1), 0);
    out[n - 1] = pad;
  }
  return out;
}

/** attention = (ids != pad), or all ones. */
export function attentionFor(ids: Int32Array, pad: number, kind: AttentionKind): Uint8Array {
  const mask = new Uint8Array(ids.length);
  if (kind === 'ones') mask.fill(1);
  else for (let i = 0; i < ids.length; i++) mask[i] = ids[i] === pad ? 0 : 1;
  return mask;
}

/** Loss mask with ones on the inclusive position range [first, last] (empty when last < first). */
export function rangeMask(length: number, first: number, last: number): Uint8Array {
  const mask = new Uint8Array(length);
  if (last >= first) mask.fill(1, Math.max(0, first), Math.min(length, last + 1));
  return mask;
}

/** Assembles a Sample from finished ids and a loss mask. */
export function makeSample(ids: Int32Array, lossMask: Uint8Array, pad: number, attention: AttentionKind): Sample {
  return { ids, targets: shiftTargets(ids, pad), lossMask, attentionMask: attentionFor(ids, pad, attention) };
}

/** Positions p with lossMask[p] = 1, ascending. */
export function lossPositions(sample: Pick<Sample, 'lossMask'>): number[] {
  const out: number[] = [];
  const m = sample.lossMask;
  for (let i = 0; i < m.length; i++) if (m[i]) out.push(i);
  return out;
}

/** Number of loss-carrying positions. */
export function lossCount(sample: Pick<Sample, 'lossMask'>): number {
  let c = 0;
  const m = sample.lossMask;
  for (let i = 0; i < m.length; i++) c += m[i];
  return c;
}
