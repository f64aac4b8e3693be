// A stage-2 run's initial weights from a checkpoint through the config keys (runDownstream):
// weights_to_be_transferred + transfer_layers reach the §5 transfer, checked on tensor values.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { saveCheckpoint } from '../../src/io/checkpoint.ts';
import { makeConfig } from '../../src/model/config.ts';
import { paramSpecs } from '../../src/model/hf_names.ts';
import { ALGORITHMIC_SCHEMA, type AlgorithmicConfig, loadConfig } from '../../src/train/config.ts';
import { runDownstream } from '../../src/train/downstream.ts';
import { freshState } from '../../src/train/transfer.ts';
import { randArray, useEngine } from '../helpers/gpu.ts';

const tmp = mkdtempSync(join(tmpdir(), 'kindling-dstransfer-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const engine = useEngine();

/** A "stage-1" checkpoint of a procedural-shaped model (2_4_16, V 102, 129 positions) with distinct values (seeds from `seed`). */
function stage1Checkpoint(name: string, seed: number): { src: string; params: Map<string, Float32Array> } {
  const specs = paramSpecs(makeConfig({ size: '2_4_16', vocabSize: 102, nPositions: 129, tied: true }));
  const params = new Map(specs.map((s, i) => [s.name, randArray(s.shape.reduce((a, b) => a * b, 1), seed + i)]));
  const src = join(tmp, name);
  saveCheckpoint(src, { config: { tied: true }, params, shapes: Object.fromEntries(specs.map((s) => [s.name, [...s.shape]])), step: 10 }, { fsync: false });
  return { src, params };
}

describe('runDownstream: transfer from a checkpoint', () => {
  it('transfer_layers [1] with attn: block 1 attention from the checkpoint, block 0 the run seed\'s init', async () => {
    const { src, params } = stage1Checkpoint('stage1', 100);
    const c = loadConfig<AlgorithmicConfig>(ALGORITHMIC_SCHEMA, {
      overrides: {
        task: 'condattendstream_2', seed: 5, max_steps: 1, eval_steps: 1, eval_size: 8, per_device_train_batch_size: 4,
        per_device_eval_batch_size: 8, warmup_steps: 0, pretrained_model_path: src, weights_to_be_transferred: ['attn'], transfer_layers: [1],
      },
    }).values;
    const r = await runDownstream(await engine(), c, { runDir: join(tmp, 'run') });
    const t = r.transfer!;
    const init = freshState(makeConfig({ size: '2_4_16', vocabSize: c.vocab_size, nPositions: c.n_positions, tied: c.tie_emb, dropout: 0 }), 5);
    for (const name of t.state.keys()) {
      const fromSource = /\.h\.1\.attn\.c_(attn|proj)\./.test(name);
      expect(t.origin.get(name), name).toBe(fromSource ? 'source' : 'init');
      expect(t.state.get(name)!.data, name).toEqual(fromSource ? params.get(name) : init.get(name)!.data);
    }
    expect(t.loaded.sort()).toEqual(['transformer.h.1.attn.c_attn.bias', 'transformer.h.1.attn.c_attn.weight', 'transformer.h.1.attn.c_proj.bias', 'transformer.h.1.attn.c_proj.weight']);
    expect(r.steps).toBe(1);
  });

  it('transfer_scale: the transferred block-1 c_proj negated and c_attn halved, the rest as transferred; a slice of the last axis (the key columns); a name that matches nothing and a range past the axis are refused', async () => {
    const { src, params } = stage1Checkpoint('stage1-scale', 300);
    const config = (scale: string[]) =>
      loadConfig<AlgorithmicConfig>(ALGORITHMIC_SCHEMA, {
        overrides: {
          task: 'condattendstream_2', seed: 5, max_steps: 1, eval_steps: 1, eval_size: 8, per_device_train_batch_size: 4, per_device_eval_batch_size: 8,
          warmup_steps: 0, pretrained_model_path: src, weights_to_be_transferred: ['attn'], transfer_layers: [1], transfer_scale: scale,
        },
      }).values;
    const c = config(['h.1.attn.c_proj.weight=-1', 'h.1.attn.c_attn.weight=0.5']);
    const t = (await runDownstream(await engine(), c, { runDir: join(tmp, 'run-scale') })).transfer!;
    const init = freshState(makeConfig({ size: '2_4_16', vocabSize: c.vocab_size, nPositions: c.n_positions, tied: c.tie_emb, dropout: 0 }), 5);
    for (const name of t.state.keys()) {
      const factor = name === 'transformer.h.1.attn.c_proj.weight' ? -1 : name === 'transformer.h.1.attn.c_attn.weight' ? 0.5 : 1;
      const fromSource = /\.h\.1\.attn\.c_(attn|proj)\./.test(name);
      expect(t.origin.get(name), name).toBe(fromSource ? (factor === 1 ? 'source' : `source×${factor}`) : 'init');
      const want = fromSource ? params.get(name)! : init.get(name)!.data;
      expect(t.state.get(name)!.data, name).toEqual(want.map((x) => x * factor));
    }
    await expect(runDownstream(await engine(), config(['h.9.attn=2']), { runDir: join(tmp, 'run-scale-bad') })).rejects.toThrow(/transfer_scale: "h\.9\.attn" matches no parameter of the model/);
    // A slice of the last axis: block 1's key columns (c_attn packs Q, K, V: [16, 48] at d 16) negated, weight and bias.
    const k = (await runDownstream(await engine(), config(['h.1.attn.c_attn[16:32]=-1']), { runDir: join(tmp, 'run-scale-k') })).transfer!;
    for (const name of ['transformer.h.1.attn.c_attn.weight', 'transformer.h.1.attn.c_attn.bias']) {
      expect(k.origin.get(name), name).toBe('source×-1[16:32]');
      const src = params.get(name)!;
      const want = Array.from(src, (x, j) => (j % 48 >= 16 && j % 48 < 32 ? -x : x));
      expect(Array.from(k.state.get(name)!.data), name).toEqual(want);
      expect(want.filter((x, j) => x !== src[j]).length, name).toBe(src.length / 3);
    }
    expect(k.origin.get('transformer.h.1.attn.c_proj.weight')).toBe('source');
    await expect(runDownstream(await engine(), config(['h.1.attn.c_attn[40:56]=-1']), { runDir: join(tmp, 'run-scale-past') })).rejects.toThrow(
      /transfer_scale: "h\.1\.attn\.c_attn\[40:56\]" runs past the last axis of transformer\.h\.1\.attn\.c_attn\.weight \(shape \[16, 48\]\)/,
    );
  });
});
