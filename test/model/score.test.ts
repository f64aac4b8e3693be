/**
 * `kindling score` on a kindling checkpoint and on a Hugging Face-style directory (names without the
 * `transformer.` prefix, config.json), against losses computed in float64 from the PyTorch golden
 * logits.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { saveCheckpoint } from '../../src/io/checkpoint.ts';
import { readSafetensors, writeSafetensors } from '../../src/io/safetensors.ts';
import { runScoreCommand } from '../../src/cli/score.ts';
import { makeConfig, toHfConfig } from '../../src/model/config.ts';
import { paramShapes } from '../../src/model/hf_names.ts';

const tmp = mkdtempSync(join(tmpdir(), 'kindling-score-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const golden = readSafetensors(new Uint8Array(readFileSync(new URL('../golden/gpt_untied.safetensors', import.meta.url))));
const gjson = JSON.parse(readFileSync(new URL('../golden/gpt_untied.json', import.meta.url), 'utf8'));
const cfg = makeConfig({ size: '2_4_64', vocabSize: 101, nPositions: 33, tied: false, dropout: 0 });
const weights = new Map<string, Float32Array>((gjson.param_names as string[]).map((n) => [n, golden.tensors.get(`init.${n}`)!.data as Float32Array]));
const ids = golden.tensors.get('ids')!.data as Int32Array;
const logits = golden.tensors.get('logits')!.data as Float32Array;
const [B, T, V] = [3, 33, 101];

/** Sequences of different lengths (prefixes of the golden rows) and their float64 reference losses. */
const lengths = [33, 20, 2];
const seqs = lengths.map((n, b) => Array.from(ids.subarray(b * T, b * T + n)));
function refLoss(b: number, n: number): number {
  // Causal model: the logits of a prefix equal the full row's logits at those positions.
  let s = 0;
  for (let t = 0; t + 1 < n; t++) {
    const row = logits.subarray((b * T + t) * V, (b * T + t + 1) * V);
    let m = -Infinity;
    for (const x of row) m = Math.max(m, x);
    let z = 0;
    for (const x of row) z += Math.exp(x - m);
    s += m + Math.log(z) - row[ids[b * T + t + 1]!]!;
  }
  return s / (n - 1);
}
function refArgmax(b: number, t: number): number {
  const row = logits.subarray((b * T + t) * V, (b * T + t + 1) * V);
  let bi = 0;
  for (let i = 1; i < V; i++) if (row[i]! > row[bi]!) bi = i;
  return bi;
}

async function score(dir: string): Promise<{ loss: number; tokens: number; predictions: number[] }[]> {
  const input = join(tmp, 'in.jsonl');
  const output = join(tmp, `out-${Math.random()}.jsonl`);
  writeFileSync(input, seqs.map((s, i) => (i === 1 ? JSON.stringify({ ids: s }) : JSON.stringify(s))).join('\n') + '\n');
  expect(await runScoreCommand(['--checkpoint', dir, '--input', input, '--output', output, '--batch-size', '2'])).toBe(0);
  await new Promise((r) => setTimeout(r, 50));
  return readFileSync(output, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
}

function check(rows: { loss: number; tokens: number; predictions: number[] }[]): void {
  expect(rows.length).toBe(3);
  rows.forEach((r, b) => {
    expect(r.tokens).toBe(lengths[b]! - 1);
    expect(Math.abs(r.loss - refLoss(b, lengths[b]!)) / refLoss(b, lengths[b]!)).toBeLessThan(1e-4);
    expect(r.predictions.length).toBe(lengths[b]);
    // argmax may legitimately differ on near-ties; require almost all to match.
    const agree = r.predictions.filter((p, t) => p === refArgmax(b, t)).length;
    expect(agree).toBeGreaterThanOrEqual(lengths[b]! - 1);
  });
}

describe('kindling score', () => {
  it('scores sequences with a kindling checkpoint', async () => {
    const dir = join(tmp, 'ckpt');
    saveCheckpoint(dir, { config: cfg, tied: false, params: weights, shapes: paramShapes(cfg), step: 0, hfConfig: toHfConfig(cfg) }, { fsync: false });
    check(await score(dir));
  });

  it('scores sequences with a Hugging Face directory (names without the transformer. prefix)', async () => {
    const dir = join(tmp, 'hf');
    mkdirSync(dir, { recursive: true });
    const shapes = paramShapes(cfg);
    const tensors = new Map([...weights].map(([n, d]) => [n.replace(/^transformer\./, ''), { shape: shapes.get(n)!, data: d }]));
    writeSafetensors(join(dir, 'model.safetensors'), tensors, { format: 'pt' });
    writeFileSync(join(dir, 'config.json'), JSON.stringify(toHfConfig(cfg)));
    check(await score(dir));
  });

  it('rejects tokens outside the vocabulary with a clear error', async () => {
    const input = join(tmp, 'bad.jsonl');
    writeFileSync(input, '[1, 2, 500]\n');
    await expect(runScoreCommand(['--checkpoint', join(tmp, 'ckpt'), '--input', input])).rejects.toThrow(/token 500 is outside the vocabulary/);
  });
});
