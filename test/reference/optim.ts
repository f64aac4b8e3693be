/**
 * float64 reference of the optimizer kernels: the global gradient norm (kernels/norm.ts) and the AdamW
 * update (kernels/adamw.ts). test/engine/optim.test.ts checks every variant against it; see docs/kernels.md
 * for the families' kernels, ops, tests and benchmark.
 */

/** One parameter tensor with its float64 value and moments, and its decay / trainable flags. */
export interface RefParam {
  name: string;
  p: Float64Array;
  m: Float64Array;
  v: Float64Array;
  decay: boolean;
  trainable: boolean;
}

/** AdamW hyperparameters; maxGradNorm null is no clipping. */
export interface RefHp {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  maxGradNorm: number | null;
}

/** The global L2 norm of all gradients, in float64. */
export function refNorm(grads: Map<string, Float32Array>): number {
  let s = 0;
  for (const g of grads.values()) for (let i = 0; i < g.length; i++) s += g[i]! * g[i]!;
  return Math.sqrt(s);
}

/** One AdamW step in float64 (PyTorch's formulas), gradients as float32 values. Returns the pre-clip norm. */
export function refStep(params: RefParam[], grads: Map<string, Float32Array>, lr: number, t: number, hp: RefHp): number {
  const norm = refNorm(grads);
  const coef = hp.maxGradNorm !== null ? Math.min(1, hp.maxGradNorm / (norm + 1e-6)) : 1;
  const bc1 = 1 - hp.beta1 ** t;
  const bc2 = 1 - hp.beta2 ** t;
  for (const q of params) {
    if (!q.trainable) continue;
    const g = grads.get(q.name)!;
    for (let i = 0; i < q.p.length; i++) {
      const gi = g[i]! * coef;
      if (q.decay) q.p[i] = q.p[i]! - lr * hp.weightDecay * q.p[i]!;
      q.m[i] = hp.beta1 * q.m[i]! + (1 - hp.beta1) * gi;
      q.v[i] = hp.beta2 * q.v[i]! + (1 - hp.beta2) * gi * gi;
      const mh = q.m[i]! / bc1;
      const vh = q.v[i]! / bc2;
      q.p[i] = q.p[i]! - (lr * mh) / (Math.sqrt(vh) + hp.eps);
    }
  }
  return norm;
}
