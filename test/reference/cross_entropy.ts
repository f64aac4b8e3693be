/**
 * float64 reference of the cross_entropy kernels (test/engine/cross_entropy.test.ts checks every variant against it;
 * see docs/kernels.md for the family's kernel, op, tests and benchmark).
 */

/** float64 masked CE: loss and d loss / d logits. */
export function ceRef(logits: ArrayLike<number>, targets: Int32Array, mask: ArrayLike<number>, N: number, V: number) {
  let num = 0;
  let den = 0;
  const grad = new Float64Array(N * V);
  const eff = Array.from({ length: N }, (_, i) => (targets[i]! >= 0 && targets[i]! < V ? mask[i]! : 0));
  for (let i = 0; i < N; i++) den += eff[i]!;
  for (let i = 0; i < N; i++) {
    if (eff[i] === 0) continue;
    let m = -Infinity;
    for (let j = 0; j < V; j++) m = Math.max(m, logits[i * V + j]!);
    let s = 0;
    for (let j = 0; j < V; j++) s += Math.exp(logits[i * V + j]! - m);
    const lse = m + Math.log(s);
    num += eff[i]! * (lse - logits[i * V + targets[i]!]!);
    for (let j = 0; j < V; j++) grad[i * V + j] = ((Math.exp(logits[i * V + j]! - lse) - (j === targets[i] ? 1 : 0)) * eff[i]!) / den;
  }
  return { loss: den > 0 ? num / den : 0, grad };
}

/** Row argmax, ties to the lowest index. */
export function argmaxRef(logits: ArrayLike<number>, N: number, V: number): Int32Array {
  const out = new Int32Array(N);
  for (let i = 0; i < N; i++) {
    let b = 0;
    for (let j = 1; j < V; j++) if (logits[i * V + j]! > logits[i * V + b]!) b = j;
    out[i] = b;
  }
  return out;
}
