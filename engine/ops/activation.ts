/**
 * Activations with autograd: GELU (tanh approximation), bias add, and the fused bias + GELU of the
 * MLP (one read of x and b, one write of y; backward gives dx and a deterministic db in one column
 * kernel plus the chunk-partial sum). The unfused pair `biasGeluUnfused` is kept as the reference.
 * Residual add and scale live in elementwise.ts.
 *
 * `groups: G` (bias ops) stacks G independent biases [G, n] along the rows of x (the models of a
 * stacked run): x's rows split into G equal runs, run g adds bias row g and gives its gradient.
 */
import * as K from '../../kernels/activation.ts';
import type { Tensor } from '../tensor.ts';
import { engineOf, expectDtype, grid1d, vec4able } from './common.ts';
import { colSumInto, planChunks, reduceAxisInto } from './reduce.ts';

/** FLOPs per element of GELU (tanh counted as ~8). */
const GELU_FLOPS = 16;
const GELU_BWD_FLOPS = 24;

export interface BiasOptions {
  /** Stacked independent biases (default 1): b holds `groups`·n elements, x's rows split evenly. */
  groups?: number;
}

function checkBias(x: Tensor, b: Tensor, op: string, groups = 1): { rows: number; cols: number } {
  expectDtype(x, 'f32', op);
  const cols = x.dim(-1);
  const rows = x.numel / cols;
  if (!(Number.isInteger(groups) && groups >= 1)) throw new Error(`${op}: groups must be a positive integer, got ${groups}`);
  if (b.numel !== groups * cols)
    throw new Error(`${op}: bias has ${b.numel} elements, expected ${groups * cols} (${groups > 1 ? `${groups} groups of ` : ''}the last dimension of [${x.shape.join(', ')}])`);
  if (rows % groups !== 0) throw new Error(`${op}: ${rows} rows do not split into ${groups} groups`);
  return { rows, cols };
}

function geluBackward(x: Tensor, g: Tensor): Tensor {
  const e = x.engine;
  const dx = e.empty(x.shape, 'f32', 'gelu.dx');
  const v4 = vec4able(x.numel, x, g, dx);
  const n = v4 ? x.numel / 4 : x.numel;
  e.dispatch(K.geluBackward({ vec4: v4 }), [x, g, dx], { n }, grid1d(n, K.ACT_WG), { flops: GELU_BWD_FLOPS * x.numel, bytes: 12 * x.numel });
  return dx;
}

/** y = 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) */
export function gelu(x: Tensor): Tensor {
  const e = x.engine;
  expectDtype(x, 'f32', 'gelu');
  const y = e.empty(x.shape, 'f32', 'gelu.y');
  const v4 = vec4able(x.numel, x, y);
  const n = v4 ? x.numel / 4 : x.numel;
  e.dispatch(K.geluForward({ vec4: v4 }), [x, y], { n }, grid1d(n, K.ACT_WG), { flops: GELU_FLOPS * x.numel, bytes: 8 * x.numel });
  if (e.recording([x])) e.record({ name: 'gelu', inputs: [x], outputs: [y], backward: ([g]) => [g ? geluBackward(x, g) : null] });
  return y;
}

function biasForward(x: Tensor, b: Tensor, withGelu: boolean, op: string, groups: number): Tensor {
  const e = engineOf(x, b);
  const { rows, cols } = checkBias(x, b, op, groups);
  const y = e.empty(x.shape, 'f32', `${op}.y`);
  const v4 = cols % 4 === 0 && vec4able(x.numel, x, b, y);
  const cw = v4 ? cols / 4 : cols;
  // Columns on x; rows split over at most plan.activation.maxRowGroups on y (65535 on the hardware
  // plan, 256 on the software one: fewer, longer invocations).
  // Grouped: one z layer per group, its rows split over at most maxRowGroups / groups along y.
  const R = rows / groups;
  const yGroups = Math.max(1, Math.min(R, Math.floor(e.plan.activation.maxRowGroups / groups) || 1));
  const spec = K.biasForward({ vec4: v4, gelu: withGelu, ...(groups > 1 ? { grouped: true } : {}) });
  e.dispatch(spec, [x, b, y], { rows, cols: cw, ...(groups > 1 ? { groupRows: R } : {}) }, [Math.ceil(cw / K.ACT_COL_WG), yGroups, groups], {
    flops: (withGelu ? GELU_FLOPS + 1 : 1) * x.numel,
    bytes: 8 * x.numel + 4 * cols,
  });
  return y;
}

/** y = x + b, b [n] broadcast over the rows of x [..., n]. Backward: dx = g, db = column sums of g. */
export function addBias(x: Tensor, b: Tensor, opts: BiasOptions = {}): Tensor {
  const e = engineOf(x, b);
  const G = opts.groups ?? 1;
  const y = biasForward(x, b, false, 'addBias', G);
  if (e.recording([x, b]))
    e.record({
      name: 'addBias',
      inputs: [x, b],
      outputs: [y],
      backward: ([g]) => {
        if (!g) return [null, null];
        let db: Tensor | null = null;
        if (b.requiresGrad) {
          db = e.empty(b.shape, 'f32', 'addBias.db');
          if (G > 1) reduceAxisInto(e, g, db, G, g.numel / b.numel, b.numel / G);
          else colSumInto(e, g, db, g.numel / b.numel, b.numel);
        }
        return [x.requiresGrad ? g : null, db];
      },
    });
  return y;
}

/** Fused y = gelu(x + b). Backward: dx = g·gelu'(x + b) and db = column sums of dx, in one kernel. */
export function biasGelu(x: Tensor, b: Tensor, opts: BiasOptions = {}): Tensor {
  const e = engineOf(x, b);
  const G = opts.groups ?? 1;
  const y = biasForward(x, b, true, 'biasGelu', G);
  if (e.recording([x, b]))
    e.record({
      name: 'biasGelu',
      inputs: [x, b],
      outputs: [y],
      backward: ([g]) => {
        if (!g) return [null, null];
        const { rows, cols } = checkBias(x, b, 'biasGelu', G);
        const v4 = cols % 4 === 0 && vec4able(x.numel, x, b, g);
        const w = v4 ? 4 : 1;
        const cw = cols / w;
        const R = rows / G;
        const dx = e.empty(x.shape, 'f32', 'biasGelu.dx');
        // Chunks per group (G = 1: the whole column); chunks never cross a group.
        const { nChunks, chunkLen } = planChunks(e, G * cw, R, 16);
        const db = e.empty(b.shape, 'f32', 'biasGelu.db');
        const pdb = nChunks === 1 ? db : e.empty([G * nChunks * cols], 'f32', 'biasGelu.db.partial');
        const uniforms = { rows, cols: cw, nChunks: G * nChunks, chunkLen, ...(G > 1 ? { groupRows: R, groupChunks: nChunks } : {}) };
        e.dispatch(K.biasGeluBackward({ vec4: v4, ...(G > 1 ? { grouped: true } : {}) }), [x, b, g, dx, pdb], uniforms, grid1d(G * nChunks * cw, K.ACT_COL_WG), {
          flops: (GELU_BWD_FLOPS + 2) * x.numel,
          bytes: 12 * x.numel + 4 * (G * cols + G * nChunks * cols),
        });
        if (pdb !== db) {
          reduceAxisInto(e, pdb, db, G, nChunks, cols, { nChunks: 1 });
          e.dispose(pdb);
        }
        return [x.requiresGrad ? dx : null, b.requiresGrad ? db : null];
      },
    });
  return y;
}

/** The unfused pair gelu(addBias(x, b)): the reference for biasGelu. */
export function biasGeluUnfused(x: Tensor, b: Tensor, opts: BiasOptions = {}): Tensor {
  return gelu(addBias(x, b, opts));
}
