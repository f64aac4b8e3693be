/** `kindling heads`: per attention head, the identity alignment of its QK and OV circuits, from the weights. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { headCircuits, type HeadCircuit } from '../../src/cli/heads.ts';
import { main } from '../../src/cli/main.ts';
import { saveCheckpoint } from '../../src/io/checkpoint.ts';
import { makeConfig, toHfConfig, type GPTConfig } from '../../src/model/config.ts';
import { initParams, paramShapes } from '../../src/model/hf_names.ts';
import { captureOutput } from '../helpers/console.ts';

const io = captureOutput();
const tmp = mkdtempSync(join(tmpdir(), 'kindling-heads-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function run(argv: string[]): Promise<{ result: number; stdout: string; stderr: string }> {
  const o0 = io.out.length;
  const e0 = io.err.length;
  const result = await main(['heads', ...argv]);
  return { result, stdout: io.out.slice(o0), stderr: io.err.slice(e0) };
}

function save(name: string, cfg: GPTConfig, params: Map<string, Float32Array>): string {
  const dir = join(tmp, name);
  saveCheckpoint(dir, { config: cfg, tied: cfg.tied, params, shapes: paramShapes(cfg), step: 0, hfConfig: toHfConfig(cfg) }, { fsync: false });
  return dir;
}

/**
 * Independent float64 reference: the d × d product M = A·Bᵀ written out, then tr(M) / (‖M‖_F·√d)
 * over √(hd/d). `a(i, c)`, `b(i, c)`: the d × hd blocks.
 */
function refAlignment(d: number, hd: number, a: (i: number, c: number) => number, b: (i: number, c: number) => number): number {
  let tr = 0;
  let f2 = 0;
  for (let i = 0; i < d; i++)
    for (let j = 0; j < d; j++) {
      let m = 0;
      for (let c = 0; c < hd; c++) m += a(i, c) * b(j, c);
      if (i === j) tr += m;
      f2 += m * m;
    }
  return tr / Math.sqrt(f2) / Math.sqrt(d) / Math.sqrt(hd / d);
}

describe('kindling heads', () => {
  // d 8, 2 heads of 4.
  const cfg = makeConfig({ size: '2_2_8', vocabSize: 11, nPositions: 16, tied: false, dropout: 0 });
  const d = 8;
  const hd = 4;
  const init = initParams(cfg, 5);
  // Layer 0 built by hand: head 0 attends to its own kind and copies (W_Q = W_K = W_V = 2·E₀, W_O = E₀ᵀ
  // with E₀ the unit vectors of channels 0..3, rotated by an orthogonal R: the basis must not matter),
  // head 1 avoids its own kind and suppresses (W_K = −W_Q, W_O = −W_Vᵀ).
  const R = (() => {
    // A Householder reflection I − 2vvᵀ (orthogonal), v a fixed unit vector.
    const v = Array.from({ length: d }, (_, i) => Math.cos(1.3 * i + 0.4));
    const n = Math.hypot(...v);
    return (i: number, j: number) => (i === j ? 1 : 0) - (2 * v[i]! * v[j]!) / (n * n);
  })();
  const w = new Map(init);
  const attn = new Float32Array(d * 3 * d);
  const proj = new Float32Array(d * d);
  for (let i = 0; i < d; i++)
    for (let h = 0; h < 2; h++)
      for (let c = 0; c < hd; c++) {
        const e = 2 * R(i, h * hd + c); // column c of head h: R·e_{h·hd+c}
        const s = h === 0 ? 1 : -1;
        attn[i * 3 * d + 0 * d + h * hd + c] = e;
        attn[i * 3 * d + 1 * d + h * hd + c] = s * e;
        attn[i * 3 * d + 2 * d + h * hd + c] = e;
        proj[(h * hd + c) * d + i] = (s * e) / 2;
      }
  w.set('transformer.h.0.attn.c_attn.weight', attn);
  w.set('transformer.h.0.attn.c_proj.weight', proj);
  const dir = save('a', cfg, w);

  it('a copying, self-attending head is +1, its mirror −1, in a rotated basis; norms are the blocks’ Frobenius norms', () => {
    const [h0, h1] = headCircuits(cfg, w, [0]);
    expect(h0!.qk).toBeCloseTo(1, 6);
    expect(h0!.ov).toBeCloseTo(1, 6);
    expect(h1!.qk).toBeCloseTo(-1, 6);
    expect(h1!.ov).toBeCloseTo(-1, 6);
    for (const h of [h0!, h1!]) {
      expect(h.normQ).toBeCloseTo(4, 5); // 2 × √4 unit columns
      expect(h.normK).toBeCloseTo(4, 5);
      expect(h.normO).toBeCloseTo(2, 5);
    }
  });

  it('random (initial) weights: the float64 reference of the written-out d × d products', () => {
    const W = init.get('transformer.h.1.attn.c_attn.weight')!;
    const O = init.get('transformer.h.1.attn.c_proj.weight')!;
    const got = headCircuits(cfg, init, [1]);
    expect(got.map((r) => [r.layer, r.head])).toEqual([
      [1, 0],
      [1, 1],
    ]);
    for (const r of got) {
      const col = (part: number) => (i: number, c: number) => W[i * 3 * d + part * d + r.head * hd + c]!;
      const o = (j: number, c: number) => O[(r.head * hd + c) * d + j]!;
      expect(r.qk).toBeCloseTo(refAlignment(d, hd, col(0), col(1)), 9);
      expect(r.ov).toBeCloseTo(refAlignment(d, hd, col(2), o), 9);
      expect(Math.abs(r.qk)).toBeLessThan(1);
      expect(Math.abs(r.ov)).toBeLessThan(1);
    }
    // W_K = W_Q (any W_Q): QK is positive semi-definite, so its alignment is positive.
    const same = new Map(init);
    const a = Float32Array.from(W);
    for (let i = 0; i < d; i++) for (let c = 0; c < d; c++) a[i * 3 * d + d + c] = a[i * 3 * d + c]!;
    same.set('transformer.h.1.attn.c_attn.weight', a);
    for (const r of headCircuits(cfg, same, [1])) expect(r.qk).toBeGreaterThan(0.3);
  });

  it('prints a table per head (every layer, or --layer), JSON lines with --json; refuses a layer the model lacks', async () => {
    const table = await run(['--checkpoint', dir]);
    expect(table.result).toBe(0);
    expect(table.stdout).toContain('(d 8, 2 heads of 4)');
    expect(table.stdout).toMatch(/\| 0 \| 0 \| 4\.000 \| 4\.000 \| 4\.000 \| 2\.000 \| \+1\.00 \| \+1\.00 \|/);
    expect(table.stdout).toMatch(/\| 0 \| 1 \| .* \| -1\.00 \| -1\.00 \|/);
    expect(table.stdout.match(/^\| [01] \| [01] \|/gm)).toHaveLength(4);
    const json = await run(['--checkpoint', dir, '--layer', '1', '--json']);
    const rows = json.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as HeadCircuit);
    expect(rows.map((r) => r.layer)).toEqual([1, 1]);
    const bad = await run(['--checkpoint', dir, '--layer', '2']);
    expect(bad.result).toBe(2);
    expect(bad.stderr).toContain('--layer: 2 is not a layer of this 2-layer model (0..1)');
    const missing = await run(['--checkpoint', join(tmp, 'missing')]);
    expect(missing.result).toBe(2);
    expect(missing.stderr).toContain('--checkpoint:');
  });
});
