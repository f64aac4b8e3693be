/**
 * Reverse-mode autograd over the engine's tape.
 *
 *   engine.startGrad();                 // begin recording ops that touch requiresGrad tensors
 *   const loss = ...ops...;
 *   backward(loss);                     // gradients into .grad (parameters: their arena slot)
 *
 * Rules: each op records a TapeNode with a backward closure returning one gradient contribution per
 * input. Contributions to the same tensor are summed (multiple uses). Leaves with a preallocated
 * `.grad` (parameters, whose gradients live in the flat gradient arena) get contributions added in
 * place, so micro-batch accumulation is free; other leaves get `.grad` set (or added to). Tensors
 * with requiresGrad=false (frozen parameters, data) get nothing.
 */
import type { Engine, TapeNode } from './engine.ts';
import { accumulate, add, full, scale } from './ops/elementwise.ts';
import type { Tensor } from './tensor.ts';

/** Start recording a fresh tape. */
export function startGrad(engine: Engine): void {
  engine.tape = [];
}

/**
 * Back-propagate from `loss` (a scalar, unless `grad` gives the output gradient) through every op
 * recorded since `startGrad`, then clear the tape. Recording stays off until the next startGrad.
 */
export function backward(loss: Tensor, grad?: Tensor): void {
  const engine = loss.engine;
  const tape = engine.tape;
  if (!tape) throw new Error('backward(): no tape is recording; call startGrad(engine) before the forward pass');
  engine.tape = null;
  if (!loss.requiresGrad) throw new Error(`backward(): "${loss.name}" does not depend on any tensor that requires a gradient`);
  if (!grad && loss.numel !== 1) throw new Error(`backward(): "${loss.name}" has ${loss.numel} elements; pass its gradient`);

  const grads = new Map<Tensor, Tensor>();
  const producedBy = new Set<Tensor>();
  for (const n of tape) for (const o of n.outputs) producedBy.add(o);

  const give = (t: Tensor, g: Tensor): void => {
    if (!t.requiresGrad) return;
    if (!producedBy.has(t) && t.grad) {
      // Leaf with a preallocated gradient (a parameter): accumulate in place.
      accumulate(t.grad, g);
      return;
    }
    const prev = grads.get(t);
    grads.set(t, prev ? add(prev, g) : g);
  };

  engine.noGrad(() => {
    give(loss, grad ?? full(engine, loss.shape, 1, 'dloss'));
    for (let i = tape.length - 1; i >= 0; i--) {
      const node: TapeNode = tape[i]!;
      const gOut = node.outputs.map((o) => grads.get(o) ?? null);
      if (gOut.every((g) => g === null)) continue;
      const gIn = node.backward(gOut);
      if (gIn.length !== node.inputs.length) throw new Error(`backward of "${node.name}" returned ${gIn.length} gradients for ${node.inputs.length} inputs`);
      node.inputs.forEach((inp, j) => {
        const g = gIn[j];
        if (g) give(inp, g);
      });
    }
  });
  // Leaves without a preallocated gradient receive theirs now. A gradient tensor handed to two leaves
  // (an op that passes its output gradient through to both inputs) is copied, so that later in-place
  // accumulation into one does not change the other. Leaf gradients outlive the enclosing tidy().
  const given = new Set<Tensor>();
  for (const [t, g0] of grads) {
    if (producedBy.has(t)) continue;
    const g = given.has(g0) ? engine.noGrad(() => scale(g0, 1)) : g0;
    given.add(g);
    t.grad = g.keep();
  }
}
