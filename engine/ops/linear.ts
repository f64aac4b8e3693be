/**
 * Autograd ops over the matmul kernels: `matmul` (2D, with transposes) and `linear` (Hugging Face
 * Conv1D: y = x·W + b with W stored [in, out], bias fused in the matmul epilogue).
 *
 * Gradients of parameters (leaves whose `.grad` lives in the gradient arena) are written straight
 * into that arena with the accumulating matmul (C += A·B) and the accumulating column sum, so no
 * temporary and no extra add pass is needed, and micro-batch accumulation is free.
 */
import type { Engine } from '../engine.ts';
import type { Tensor } from '../tensor.ts';
import { engineOf, expectDtype } from './common.ts';
import { encodeMatmul } from './matmul.ts';
import { colSumInto } from './reduce.ts';

/** A parameter whose gradient accumulates in place (see autograd.ts). */
function arenaGrad(t: Tensor): Tensor | null {
  return t.requiresGrad && t.ownership === 'arena' && t.grad ? t.grad : null;
}

/** C = op(A)·op(B) for op(A) [M,K], op(B) [K,N], written into `into` (accumulating) or a new tensor. */
function product(e: Engine, a: Tensor, b: Tensor, M: number, N: number, K: number, transA: boolean, transB: boolean, into?: Tensor): Tensor {
  const out = into ?? e.empty([M, N]);
  encodeMatmul(e, a, b, out, { M, N, K, transA, transB, accumulate: !!into });
  return out;
}

export interface MatmulOpOptions {
  /** A is stored [K, M]. */
  transA?: boolean;
  /** B is stored [N, K]. */
  transB?: boolean;
}

/** op(A)·op(B) for 2D tensors. */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOpOptions = {}): Tensor {
  const e = engineOf(a, b);
  expectDtype(a, 'f32', 'matmul');
  expectDtype(b, 'f32', 'matmul');
  if (a.shape.length !== 2 || b.shape.length !== 2) throw new Error(`matmul: 2D tensors expected, got [${a.shape}] and [${b.shape}]`);
  const tA = !!opts.transA;
  const tB = !!opts.transB;
  const [M, K] = tA ? [a.shape[1]!, a.shape[0]!] : [a.shape[0]!, a.shape[1]!];
  const [K2, N] = tB ? [b.shape[1]!, b.shape[0]!] : [b.shape[0]!, b.shape[1]!];
  if (K !== K2) throw new Error(`matmul: inner dimensions differ: op(A) is [${M}, ${K}], op(B) is [${K2}, ${N}]`);
  const out = product(e, a, b, M, N, K, tA, tB);
  if (e.recording([a, b]))
    e.record({
      name: 'matmul',
      inputs: [a, b],
      outputs: [out],
      backward: ([g]) => {
        if (!g) return [null, null];
        let dA: Tensor | null = null;
        let dB: Tensor | null = null;
        if (a.requiresGrad) {
          const into = arenaGrad(a) ?? undefined;
          // stored dA = dC·op(B)ᵀ ([M,K]) or its transpose op(B)·dCᵀ ([K,M]).
          const r = tA ? product(e, b, g, K, M, N, tB, true, into) : product(e, g, b, M, K, N, false, !tB, into);
          dA = into ? null : r;
        }
        if (b.requiresGrad) {
          const into = arenaGrad(b) ?? undefined;
          // stored dB = op(A)ᵀ·dC ([K,N]) or its transpose dCᵀ·op(A) ([N,K]).
          const r = tB ? product(e, g, a, N, K, M, true, tA, into) : product(e, a, g, K, N, M, !tA, false, into);
          dB = into ? null : r;
        }
        return [dA, dB];
      },
    });
  return out;
}

/** y = x·W (+ b): x [..., in], W [in, out] (HF Conv1D layout), b [out] → y [..., out]. */
export function linear(x: Tensor, w: Tensor, bias?: Tensor): Tensor {
  const e = engineOf(x, w, ...(bias ? [bias] : []));
  if (w.shape.length !== 2) throw new Error(`linear: weight "${w.name}" must be 2D [in, out], got [${w.shape}]`);
  const [inF, outF] = w.shape as [number, number];
  if (x.dim(-1) !== inF) throw new Error(`linear: input "${x.name}" has ${x.dim(-1)} features, weight "${w.name}" expects ${inF}`);
  if (bias && (bias.shape.length !== 1 || bias.shape[0] !== outF)) throw new Error(`linear: bias "${bias.name}" must be [${outF}], got [${bias.shape}]`);
  const rows = x.numel / inF;
  const out = e.empty([...x.shape.slice(0, -1), outF]);
  encodeMatmul(e, x, w, out, { M: rows, N: outF, K: inF }, bias ?? null);
  const inputs = bias ? [x, w, bias] : [x, w];
  if (e.recording(inputs))
    e.record({
      name: 'linear',
      inputs,
      outputs: [out],
      backward: ([g]) => {
        if (!g) return inputs.map(() => null);
        const dx = x.requiresGrad ? product(e, g, w, rows, inF, outF, false, true).reshape(x.shape) : null;
        let dw: Tensor | null = null;
        if (w.requiresGrad) {
          const into = arenaGrad(w) ?? undefined;
          const r = product(e, x, g, inF, outF, rows, true, false, into);
          dw = into ? null : r;
        }
        let db: Tensor | null = null;
        if (bias?.requiresGrad) {
          const into = arenaGrad(bias);
          if (into) colSumInto(e, g, into, rows, outF, { accumulate: true });
          else {
            db = e.empty([outF]);
            colSumInto(e, g, db, rows, outF);
          }
        }
        return bias ? [dx, dw, db] : [dx, dw];
      },
    });
  return out;
}
