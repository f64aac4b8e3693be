/**
 * float64 reference of the activation kernels (test/engine/activation.test.ts checks every variant against it;
 * see docs/kernels.md for the family's kernel, op, tests and benchmark). Bias add and the fused bias + GELU are
 * these applied to x + b.
 */

export const K0 = Math.sqrt(2 / Math.PI);
export const K1 = 0.044715;
// 0.5·x·(1 + tanh(u)) written as x·σ(2u) (the same function; no cancellation of 1 + tanh in the tails)
const sigmoid = (z: number) => (z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z)));
export const gelu64 = (x: number) => x * sigmoid(2 * K0 * (x + K1 * x * x * x));
export const geluGrad64 = (x: number) => {
  const s = sigmoid(2 * K0 * (x + K1 * x * x * x));
  return s + 2 * x * s * (1 - s) * K0 * (1 + 3 * K1 * x * x);
};
