/**
 * float64 reference of the embedding kernels (test/engine/embedding.test.ts checks every variant against it;
 * see docs/kernels.md for the family's kernel, op, tests and benchmark).
 */

/** out[n] = wte[ids[n]] (zero for ids outside [0, V)) + wpe[off + n mod T]. */
export function fwdRef(ids: Int32Array, T: number, wte: Float32Array, wpe: Float32Array, V: number, d: number, off = 0): Float64Array {
  const out = new Float64Array(ids.length * d);
  for (let n = 0; n < ids.length; n++) {
    const id = ids[n]!;
    for (let c = 0; c < d; c++) out[n * d + c] = (id >= 0 && id < V ? wte[id * d + c]! : 0) + wpe[(off + (n % T)) * d + c]!;
  }
  return out;
}

/** dwte, dwpe of the forward above for output gradient g. */
export function bwdRef(ids: Int32Array, T: number, g: Float32Array, V: number, Pn: number, d: number, off = 0) {
  const dwte = new Float64Array(V * d);
  const dwpe = new Float64Array(Pn * d);
  for (let n = 0; n < ids.length; n++) {
    const id = ids[n]!;
    for (let c = 0; c < d; c++) {
      if (id >= 0 && id < V) dwte[id * d + c]! += g[n * d + c]!;
      dwpe[(off + (n % T)) * d + c]! += g[n * d + c]!;
    }
  }
  return { dwte, dwpe };
}

/** Per-row positions: out[n] = wte[ids[n]] + wpe[positions[n]], each term zero when its index is outside its table. */
export function fwdRefPositions(ids: Int32Array, positions: Int32Array, wte: Float32Array, wpe: Float32Array, V: number, Pn: number, d: number): Float64Array {
  const out = new Float64Array(ids.length * d);
  for (let n = 0; n < ids.length; n++) {
    const id = ids[n]!;
    const p = positions[n]!;
    for (let c = 0; c < d; c++) out[n * d + c] = (id >= 0 && id < V ? wte[id * d + c]! : 0) + (p >= 0 && p < Pn ? wpe[p * d + c]! : 0);
  }
  return out;
}

/** dwte, dwpe of `fwdRefPositions` for output gradient g. */
export function bwdRefPositions(ids: Int32Array, positions: Int32Array, g: Float32Array, V: number, Pn: number, d: number) {
  const dwte = new Float64Array(V * d);
  const dwpe = new Float64Array(Pn * d);
  for (let n = 0; n < ids.length; n++) {
    const id = ids[n]!;
    const p = positions[n]!;
    for (let c = 0; c < d; c++) {
      if (id >= 0 && id < V) dwte[id * d + c]! += g[n * d + c]!;
      if (p >= 0 && p < Pn) dwpe[p * d + c]! += g[n * d + c]!;
    }
  }
  return { dwte, dwpe };
}
