/** `kindling compare`: per-parameter distances of a checkpoint from another one or from a seed's initialisation. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { WeightDistance } from '../../src/cli/compare.ts';
import { main } from '../../src/cli/main.ts';
import { saveCheckpoint } from '../../src/io/checkpoint.ts';
import { makeConfig, toHfConfig, type GPTConfig } from '../../src/model/config.ts';
import { initParams, paramShapes } from '../../src/model/hf_names.ts';
import { captureOutput } from '../helpers/console.ts';

const io = captureOutput();
const tmp = mkdtempSync(join(tmpdir(), 'kindling-compare-'));

/** Run `kindling compare …`; returns the exit code with what it printed. */
async function run(argv: string[]): Promise<{ result: number; stdout: string; stderr: string }> {
  const o0 = io.out.length;
  const e0 = io.err.length;
  const result = await main(['compare', ...argv]);
  return { result, stdout: io.out.slice(o0), stderr: io.err.slice(e0) };
}
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function save(name: string, cfg: GPTConfig, params: Map<string, Float32Array>): string {
  const dir = join(tmp, name);
  saveCheckpoint(dir, { config: cfg, tied: cfg.tied, params, shapes: paramShapes(cfg), step: 0, hfConfig: toHfConfig(cfg) }, { fsync: false });
  return dir;
}

async function rows(argv: string[]): Promise<Record<string, WeightDistance>> {
  const out = await run([...argv, '--json']);
  expect(out.result).toBe(0);
  return Object.fromEntries(out.stdout.trim().split('\n').map((l: string) => JSON.parse(l) as WeightDistance).map((r) => [r.name, r]));
}

describe('kindling compare', () => {
  const cfg = makeConfig({ size: '1_2_8', vocabSize: 11, nPositions: 16, tied: false, dropout: 0 });
  const init = initParams(cfg, 3);
  const w = new Map(init);
  const scaled = 'transformer.h.0.attn.c_attn.weight';
  w.set(scaled, init.get(scaled)!.map((x) => 2 * x));
  const shifted = 'transformer.wpe.weight';
  const delta = init.get(shifted)!.map((_, i) => (i % 2 ? 0.5 : -0.5));
  w.set(shifted, init.get(shifted)!.map((x, i) => x + delta[i]!));
  const dir = save('a', cfg, w);

  it("against the seed's initialisation: the scaled weight is 1 away at twice the norm, untouched ones 0, zero biases undefined", async () => {
    const r = await rows(['--checkpoint', dir, '--init-seed', '3']);
    expect(r[scaled]!.relDistance).toBeCloseTo(1, 6);
    expect(r[scaled]!.normRatio).toBeCloseTo(2, 6);
    const n = (a: Float32Array) => Math.sqrt(a.reduce((s, x) => s + x * x, 0));
    expect(r[shifted]!.relDistance).toBeCloseTo(n(delta) / n(init.get(shifted)!), 5);
    expect(r['transformer.h.0.mlp.c_fc.weight']!.relDistance).toBe(0);
    expect(r['transformer.h.0.mlp.c_fc.weight']!.normRatio).toBe(1);
    expect(r['transformer.h.0.attn.c_attn.bias']!.relDistance).toBeNull(); // zero-initialised: ‖B‖ = 0
    expect(r['transformer.h.0.ln_1.weight']!.relDistance).toBe(0);
    // Another seed: a different draw, about √2 away for the N(0, σ) weights.
    const o = await rows(['--checkpoint', dir, '--init-seed', '4', '--match', 'mlp.c_fc.weight']);
    expect(Object.keys(o)).toEqual(['transformer.h.0.mlp.c_fc.weight']);
    expect(o['transformer.h.0.mlp.c_fc.weight']!.relDistance).toBeGreaterThan(1.2);
    expect(o['transformer.h.0.mlp.c_fc.weight']!.relDistance).toBeLessThan(1.6);
  });

  it('against another checkpoint; shapes that differ (another vocabulary) are reported, not compared', async () => {
    const cfg2 = makeConfig({ size: '1_2_8', vocabSize: 13, nPositions: 16, tied: false, dropout: 0 });
    const dir2 = save('b', cfg2, initParams(cfg2, 3));
    const r = await rows(['--checkpoint', dir, '--against', dir2]);
    expect(r['transformer.wte.weight']!.relDistance).toBeNull();
    expect(r['transformer.wte.weight']!.shapeB).toEqual([13, 8]);
    expect(r[scaled]!.normRatio).toBeCloseTo(2, 6); // per-name streams: the same initial attention
    const table = await run(['--checkpoint', dir, '--against', dir2, '--match', 'wte']);
    expect(table.stdout).toContain('| transformer.wte.weight | 11×8 (B: 13×8) |');
  });

  it('usage errors: neither or both references, no matching parameter', async () => {
    for (const [argv, msg] of [
      [['--checkpoint', dir], 'give exactly one of --against DIR and --init-seed S'],
      [['--checkpoint', dir, '--init-seed', '1', '--against', dir], 'give exactly one of'],
      [['--checkpoint', dir, '--init-seed', '1', '--match', 'nothing'], 'no parameter matching "nothing"'],
      [['--checkpoint', join(tmp, 'missing'), '--init-seed', '1'], '--checkpoint:'],
    ] as [string[], string][]) {
      const out = await run(argv);
      expect(out.result).toBe(2);
      expect(out.stderr).toContain(msg);
    }
  });
});
