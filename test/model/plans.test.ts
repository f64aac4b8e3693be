/**
 * The GPU plan on the CPU: an engine created with `planAs: 'hardware'` picks the kernels and plans
 * a GPU gets (shared-memory matmul tiles with split-K for the weight gradients, the block attention
 * kernels at hd 64 — and without them the tiled forward and subgroup backward — the GPU reduction plans), so this machine, which
 * has no GPU, runs those paths end to end. One training step of a 2-layer GPT with hd 64 must give
 * the software plan's loss and gradients (each plan is checked against PyTorch elsewhere only at
 * small sizes).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { backward } from '../../engine/autograd.ts';
import { Engine } from '../../engine/engine.ts';
import { makeConfig } from '../../src/model/config.ts';
import { GPT } from '../../src/model/gpt.ts';
import { relErr } from '../helpers/gpu.ts';

const engines: Engine[] = [];
afterAll(async () => {
  for (const e of engines) {
    await e.sync().catch(() => undefined);
    e.destroy();
  }
});

// hd 64 (the sg backward's threshold on GPUs); B·T = 1024 rows, so the weight gradients' K is long
// enough for split-K.
const cfg = makeConfig({ size: '2_2_128', vocabSize: 256, nPositions: 64, tied: true, dropout: 0 });
const B = 16;
const T = 64;

async function step(planAs: 'hardware' | 'software', blockAttention?: boolean) {
  const e = await Engine.create({ planAs, ...(blockAttention === undefined ? {} : { blockAttention }) });
  engines.push(e);
  const model = GPT.create(e, cfg, { seed: 3 });
  let x = 7;
  const rnd = () => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 8) % cfg.vocabSize;
  const batch = {
    ids: Int32Array.from({ length: B * T }, rnd),
    targets: Int32Array.from({ length: B * T }, rnd),
    lossMask: new Float32Array(B * T).fill(1),
    batch: B,
    seqLen: T,
  };
  e.profiler.start();
  const loss = e.tidy(() => {
    const d = model.uploadBatch(batch);
    model.params.zeroGrad();
    e.startGrad();
    const r = model.loss(d, { train: true });
    backward(r.loss);
    return r.loss;
  });
  const kernels = e.profiler.supported ? (await e.profiler.stop()).dispatches.map((d) => d.kernel) : [];
  const out = { kind: e.plan.kind, software: e.device.info.software, loss: (await loss.read())[0]!, grads: await model.params.readGrads(), kernels };
  loss.dispose();
  model.destroy();
  return out;
}

describe('kernel plans', () => {
  it("the GPU plan's step equals the CPU plan's (loss and every gradient), with the block attention kernels and without", async () => {
    const sw = await step('software');
    expect(sw.kind).toBe('software');
    for (const block of [true, false]) {
      const hw = await step('hardware', block);
      expect(hw.kind).toBe('hardware');
      // planAs changes the plan only: the adapter stays what it is.
      expect(hw.software).toBe(sw.software);
      if (hw.kernels.length) {
        // The GPU paths this test exists for did run.
        expect(hw.kernels.some((k) => k.startsWith('matmul.splitk_sum'))).toBe(true);
        expect(hw.kernels.some((k) => k.startsWith('matmul.shared'))).toBe(true);
        if (block) for (const k of ['fwd', 'bwd.dq', 'bwd.dkv']) expect(hw.kernels.some((n) => n.startsWith(`attention.${k}.block[hd64,`))).toBe(true);
        else {
          expect(hw.kernels.some((k) => k.startsWith('attention.fwd.tiled'))).toBe(true);
          expect(hw.kernels.some((k) => /^attention\.bwd\.dkv\.sg\[hd64,sg\d+,split4\]/.test(k))).toBe(true);
        }
      }
      expect(Math.abs(hw.loss - sw.loss) / sw.loss).toBeLessThan(1e-5);
      expect([...hw.grads.keys()].sort()).toEqual([...sw.grads.keys()].sort());
      for (const [name, g] of sw.grads) expect(relErr(hw.grads.get(name)!, g), `${name} (block ${block})`).toBeLessThan(1e-4);
    }
  });
});
