/**
 * Token + position embedding with autograd: out = wte[ids] + wpe[offset .. offset + T) in one kernel.
 *
 * Backward is deterministic without float atomics:
 * - dwte: with `idsHost` (the trainer has the batch on the CPU since it uploads it), a CSR grouping of
 *   positions by token id is built on the CPU and uploaded (one i32 buffer) during the forward; a
 *   kernel then sums each token's positions in ascending order. Without `idsHost`, a GPU fallback
 *   scans every position for every (vocab row, channel): correct and deterministic, but O(V·d·N).
 * - dwpe: a column sum over the batch; with per-row `positions`, the same CSR (or scan) kernels with
 *   the positions as ids.
 * If the table already has a gradient buffer (a parameter whose gradient lives in the arena, or a
 * leaf from an earlier backward), the contribution is added into it in place (rows of tokens that
 * do not occur are untouched) and no separate [V, d] tensor is made; otherwise a fresh gradient with
 * zero rows for absent tokens is returned.
 * Ids outside [0, V) contribute no token row (the output is the position row alone) and get no
 * gradient.
 */
import * as K from '../../kernels/embedding.ts';
import type { Engine } from '../engine.ts';
import type { Tensor } from '../tensor.ts';
import { expectDtype, grid1d, vec4able } from './common.ts';
import { reduceAxisInto } from './reduce.ts';

export interface EmbeddingOptions {
  /** The ids on the CPU (same values as `ids`); enables the fast CSR backward for wte. */
  idsHost?: Int32Array;
  /** First position (row of wpe) used; positions are offset .. offset + T − 1. Default 0. */
  positionOffset?: number;
  /**
   * i32 [N]: the position (row of wpe) of each id, instead of offset + (index mod T): packed batches
   * of sequences of several lengths. A position outside [0, P) adds no position row and gets no
   * gradient (pad rows: id −1 and position −1 give a zero row). `positionOffset` must be absent.
   */
  positions?: Tensor;
  /** The same positions on the CPU: enables the CSR backward for wpe (otherwise a scan). */
  positionsHost?: Int32Array;
  /** Force the wte (and, with `positions`, wpe) backward path (tests): 'csr' needs idsHost (positionsHost). */
  wteBackward?: 'csr' | 'scan';
}

/**
 * CSR grouping of positions by token: [tokens (U, ascending) | offsets (U + 1) | positions (ascending
 * within each token)]. Ids outside [0, V) are left out.
 */
export function buildTokenCsr(ids: Int32Array, V: number): { csr: Int32Array; unique: number } {
  const counts = new Int32Array(V);
  let valid = 0;
  for (let i = 0; i < ids.length; i++) {
    const t = ids[i]!;
    if (t >= 0 && t < V) {
      counts[t]!++;
      valid++;
    }
  }
  let U = 0;
  for (let v = 0; v < V; v++) if (counts[v]! > 0) U++;
  const csr = new Int32Array(2 * U + 1 + valid);
  const start = new Int32Array(V); // cursor into positions per token
  let u = 0;
  let off = 0;
  for (let v = 0; v < V; v++) {
    const c = counts[v]!;
    if (c === 0) continue;
    csr[u] = v;
    csr[U + u] = off;
    start[v] = off;
    off += c;
    u++;
  }
  csr[2 * U] = off;
  const posBase = 2 * U + 1;
  for (let i = 0; i < ids.length; i++) {
    const t = ids[i]!;
    if (t >= 0 && t < V) csr[posBase + start[t]!++] = i;
  }
  return { csr, unique: U };
}

function wteGradCsr(e: Engine, csr: Tensor, unique: number, dout: Tensor, dwte: Tensor, d: number): void {
  const v4 = d % 4 === 0 && vec4able(d, dout, dwte);
  const dw = v4 ? d / 4 : d;
  const n = unique * dw;
  const N = dout.numel / d;
  e.dispatch(K.backwardWteCsr({ vec4: v4 }), [csr, dout, dwte], { n, dw, U: unique }, grid1d(n, K.EMB_WG), {
    flops: N * d,
    bytes: 4 * (2 * N * d + 2 * unique * d) + csr.byteLength,
  });
}

function wteGradScan(e: Engine, ids: Tensor, dout: Tensor, dwte: Tensor, V: number, d: number, accumulate: boolean): void {
  const v4 = d % 4 === 0 && vec4able(d, dout, dwte);
  const dw = v4 ? d / 4 : d;
  const n = V * dw;
  const N = ids.numel;
  e.dispatch(K.backwardWteScan({ vec4: v4, accumulate }), [ids, dout, dwte], { n, dw, N }, grid1d(n, K.EMB_WG), {
    flops: N * d,
    bytes: 4 * (N * d + V * N + V * d * (accumulate ? 2 : 1)),
  });
}

/**
 * ids: i32 [..., T]; wte [V, d]; wpe [P, d] → [..., T, d]: wte[ids] + wpe[offset + t] (with
 * `positions`: wte[ids[n]] + wpe[positions[n]]).
 */
export function embedding(ids: Tensor, wte: Tensor, wpe: Tensor, opts: EmbeddingOptions = {}): Tensor {
  const e = ids.engine;
  expectDtype(ids, 'i32', 'embedding');
  if (wte.shape.length !== 2 || wpe.shape.length !== 2) throw new Error('embedding: wte and wpe must be 2-D [rows, d]');
  const [V, d] = wte.shape as [number, number];
  const [Pn, dp] = wpe.shape as [number, number];
  if (dp !== d) throw new Error(`embedding: wte has d = ${d}, wpe has d = ${dp}`);
  const T = ids.dim(-1);
  const N = ids.numel;
  const positions = opts.positions;
  const pos = opts.positionOffset ?? 0;
  if (positions) {
    expectDtype(positions, 'i32', 'embedding positions');
    if (positions.numel !== N) throw new Error(`embedding: positions has ${positions.numel} entries, ids ${N}`);
    if (opts.positionOffset !== undefined) throw new Error('embedding: positionOffset and positions exclude each other');
    if (opts.positionsHost && opts.positionsHost.length !== N) throw new Error(`embedding: positionsHost has ${opts.positionsHost.length} entries, ids ${N}`);
  } else if (!Number.isInteger(pos) || pos < 0 || pos + T > Pn) throw new Error(`embedding: positions ${pos}..${pos + T - 1} exceed the ${Pn} rows of wpe`);
  if (opts.idsHost && opts.idsHost.length !== N) throw new Error(`embedding: idsHost has ${opts.idsHost.length} ids, the ids tensor ${N}`);
  const recording = e.recording([wte, wpe]);
  const path = opts.wteBackward ?? (opts.idsHost ? 'csr' : 'scan');
  if (path === 'csr' && !opts.idsHost) throw new Error("embedding: the 'csr' backward needs idsHost");
  const posPath = opts.wteBackward ?? (opts.positionsHost ? 'csr' : 'scan');
  if (positions && posPath === 'csr' && !opts.positionsHost) throw new Error("embedding: the 'csr' backward needs positionsHost");
  // Upload the CSRs before the forward dispatch: an upload submits the work recorded so far, and the
  // embedding starts the step, so there is little or nothing to submit.
  const upload = (host: Int32Array, rows: number, name: string) => {
    const built = buildTokenCsr(host, rows);
    return { t: e.tensor(built.csr, [built.csr.length], { dtype: 'i32', name }), unique: built.unique };
  };
  const csr = recording && wte.requiresGrad && path === 'csr' ? upload(opts.idsHost!, V, 'embedding.csr') : null;
  const posCsr = recording && positions && wpe.requiresGrad && posPath === 'csr' ? upload(opts.positionsHost!, Pn, 'embedding.pos_csr') : null;
  const out = e.empty([...ids.shape, d], 'f32', 'embedding.out');
  const v4 = d % 4 === 0 && vec4able(d, wte, wpe, out);
  const dw = v4 ? d / 4 : d;
  const n = N * dw;
  e.dispatch(K.forward({ vec4: v4, positions: !!positions }), [ids, ...(positions ? [positions] : []), wte, wpe, out], { n, dw, T, V, pos, P: Pn }, grid1d(n, K.EMB_WG), {
    flops: N * d,
    bytes: 4 * ((positions ? 2 : 1) * N + 3 * N * d),
  });

  if (recording) {
    e.record({
      name: 'embedding',
      inputs: [wte, wpe],
      outputs: [out],
      backward: ([g]) => {
        if (!g) return [null, null];
        let dwte: Tensor | null = null;
        let dwpe: Tensor | null = null;
        if (wte.requiresGrad) {
          const into = wte.grad; // accumulate in place when the table already has a gradient
          const target = into ?? (csr ? e.zeros([V, d], 'f32', 'dwte') : e.empty([V, d], 'f32', 'dwte'));
          if (csr) wteGradCsr(e, csr.t, csr.unique, g, target, d);
          else wteGradScan(e, ids, g, target, V, d, into !== null);
          if (!into) dwte = target;
        }
        if (wpe.requiresGrad) {
          const into = wpe.grad;
          if (positions) {
            const target = into ?? (posCsr ? e.zeros([Pn, d], 'f32', 'dwpe') : e.empty([Pn, d], 'f32', 'dwpe'));
            if (posCsr) wteGradCsr(e, posCsr.t, posCsr.unique, g, target, d);
            else wteGradScan(e, positions, g, target, Pn, d, into !== null);
            if (!into) dwpe = target;
          } else {
            const whole = pos === 0 && T === Pn;
            const target = into ?? (whole ? e.empty([Pn, d], 'f32', 'dwpe') : e.zeros([Pn, d], 'f32', 'dwpe'));
            reduceAxisInto(e, g, target, 1, N / T, T * d, { outOffset: pos * d, accumulate: into !== null });
            if (!into) dwpe = target;
          }
        }
        return [dwte, dwpe];
      },
    });
  }
  return out;
}
