/**
 * float64 reference of the elementwise kernels (test/engine/elementwise.test.ts checks the scalar and vec4
 * forms against it; see docs/kernels.md for the family's kernel, op, tests and benchmark).
 */

/** alpha·a + beta·b. */
export function axpbyRef(a: ArrayLike<number>, b: ArrayLike<number>, alpha: number, beta: number): Float64Array {
  return Float64Array.from({ length: a.length }, (_, i) => alpha * a[i]! + beta * b[i]!);
}

/** a ⊙ b. */
export function mulRef(a: ArrayLike<number>, b: ArrayLike<number>): Float64Array {
  return Float64Array.from({ length: a.length }, (_, i) => a[i]! * b[i]!);
}
