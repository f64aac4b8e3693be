/**
 * Whole-model parity with PyTorch (test/golden/make_golden.py, float64 reference): logits, loss,
 * every parameter gradient, and 10 AdamW steps with clipping and a warmup+cosine schedule, for a tied
 * and an untied 2-layer GPT-2.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { backward } from '../../engine/autograd.ts';
import { AdamW } from '../../engine/optim.ts';
import { readSafetensors } from '../../src/io/safetensors.ts';
import { makeConfig } from '../../src/model/config.ts';
import { GPT } from '../../src/model/gpt.ts';
import { relErr, useEngine } from '../helpers/gpu.ts';

const engine = useEngine();

interface Golden {
  config: { n_layer: number; n_head: number; n_embd: number; vocab_size: number; n_positions: number; tie_word_embeddings: boolean };
  batch: { B: number; T: number };
  loss: number;
  losses: number[];
  lrs: number[];
  grad_norms_pre_clip: number[];
  optimizer: { lr: number; betas: [number, number]; eps: number; weight_decay: number; no_decay: string[]; max_grad_norm: number };
  tolerances: { logits: number; loss: number; grads: number; losses: number; final: number; noise_slices_abs: number };
  noise_slices: Record<string, [number, number]>;
  param_names: string[];
}

function load(variant: 'tied' | 'untied') {
  const dir = new URL('../golden/', import.meta.url);
  const json = JSON.parse(readFileSync(new URL(`gpt_${variant}.json`, dir), 'utf8')) as Golden;
  const st = readSafetensors(new Uint8Array(readFileSync(new URL(`gpt_${variant}.safetensors`, dir))));
  const get = (k: string) => {
    const t = st.tensors.get(k);
    if (!t) throw new Error(`golden file lacks ${k}`);
    return t.data;
  };
  return { json, get };
}

for (const variant of ['tied', 'untied'] as const) {
  describe(`GPT-2 parity with PyTorch (${variant})`, () => {
    const { json: g, get } = load(variant);
    const c = g.config;
    const cfg = makeConfig({ size: `${c.n_layer}_${c.n_head}_${c.n_embd}`, vocabSize: c.vocab_size, nPositions: c.n_positions, tied: c.tie_word_embeddings, dropout: 0 });
    const weights = new Map(g.param_names.map((n) => [n, get(`init.${n}`) as Float32Array]));
    const { B, T } = g.batch;
    const batch = {
      ids: get('ids') as Int32Array,
      targets: get('targets') as Int32Array,
      lossMask: get('mask') as Float32Array,
      batch: B,
      seqLen: T,
    };
    const noDecay = new Set(g.optimizer.no_decay);

    it('logits, loss and every gradient match', async () => {
      const e = await engine();
      const model = GPT.create(e, cfg, { weights });
      try {
        const [logits, loss] = e.tidy(() => {
          const d = model.uploadBatch(batch);
          model.params.zeroGrad();
          e.startGrad();
          const r = model.loss(d, { train: false });
          backward(r.loss);
          return [r.logits, r.loss];
        });
        const gotLogits = await logits.read();
        expect(relErr(gotLogits, get('logits'))).toBeLessThan(g.tolerances.logits);
        const gotLoss = (await loss.read())[0]!;
        expect(Math.abs(gotLoss - g.loss) / g.loss).toBeLessThan(g.tolerances.loss);
        const grads = await model.params.readGrads();
        for (const n of g.param_names) {
          const err = relErr(grads.get(n)!, get(`grad.${n}`));
          expect(err, `gradient of ${n}`).toBeLessThan(g.tolerances.grads);
        }
      } finally {
        model.destroy();
      }
    });

    it('10 AdamW steps with clipping and warmup match losses and final weights', async () => {
      const e = await engine();
      // The decay rule is per tensor: give the store exactly the golden run's exemptions.
      const model = GPT.create(e, cfg, { weights, decay: variant === 'tied' ? 'all' : 'hf' });
      for (const n of g.param_names) expect(model.params.decays(n), n).toBe(!noDecay.has(n));
      const opt = new AdamW(model.params, {
        beta1: g.optimizer.betas[0],
        beta2: g.optimizer.betas[1],
        eps: g.optimizer.eps,
        weightDecay: g.optimizer.weight_decay,
        maxGradNorm: g.optimizer.max_grad_norm,
      });
      try {
        const losses: number[] = [];
        const norms: number[] = [];
        for (let s = 0; s < g.losses.length; s++) {
          const loss = e.tidy(() => {
            const d = model.uploadBatch(batch);
            model.params.zeroGrad();
            e.startGrad();
            const r = model.loss(d, { train: false });
            backward(r.loss);
            opt.step(g.lrs[s]!);
            return r.loss;
          });
          losses.push((await loss.read())[0]!);
          norms.push((await opt.lastGradNorm().read())[0]!);
          loss.dispose();
        }
        for (let s = 0; s < losses.length; s++) {
          expect(Math.abs(losses[s]! - g.losses[s]!) / g.losses[s]!, `loss ${s}`).toBeLessThan(g.tolerances.losses);
          expect(Math.abs(norms[s]! - g.grad_norms_pre_clip[s]!) / g.grad_norms_pre_clip[s]!, `grad norm ${s}`).toBeLessThan(1e-3);
        }
        const final = await model.stateDict();
        for (const n of g.param_names) {
          const ref = get(`final.${n}`) as Float32Array;
          const got = final.get(n)!;
          const slice = g.noise_slices[n];
          if (slice) {
            // True gradient 0 there (softmax shift invariance): compare outside the slice tightly, inside loosely.
            const [a, b] = slice;
            const outside = (x: Float32Array) => Float32Array.from([...x.subarray(0, a), ...x.subarray(b)]);
            expect(relErr(outside(got), outside(ref)), n).toBeLessThan(g.tolerances.final);
            for (let i = a; i < b; i++) expect(Math.abs(got[i]! - ref[i]!), `${n}[${i}]`).toBeLessThan(g.tolerances.noise_slices_abs);
          } else expect(relErr(got, ref), n).toBeLessThan(g.tolerances.final);
        }
      } finally {
        opt.destroy();
        model.destroy();
      }
    });
  });
}
