// Reading Hugging Face GPT-2 directories (src/model/hf_gpt2.ts): Hub layout, shards, F16, errors.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readSafetensors, writeSafetensors, type TensorInput } from '../../src/io/safetensors.ts';
import { fromHfConfig, makeConfig, toHfConfig, type GPTConfig } from '../../src/model/config.ts';
import { loadHfGpt2 } from '../../src/model/hf_gpt2.ts';
import { paramNames, paramShapes, paramSpecs } from '../../src/model/hf_names.ts';
import { randomParams, tempDirs } from '../helpers/params.ts';

const fresh = tempDirs('kindling-hf-');

describe('loadHfGpt2', () => {
  /** Writes an HF-style directory the way the Hub's gpt2 is laid out: no `transformer.` prefix, attn.bias buffers. */
  function hubDir(cfg: GPTConfig, opts: { prefix?: boolean; buffers?: boolean; withHead?: boolean; f16?: boolean; extra?: Record<string, TensorInput>; configPatch?: Record<string, unknown> } = {}) {
    const dir = fresh('hub');
    fs.mkdirSync(dir);
    const hf = { ...toHfConfig(cfg), ...(opts.configPatch ?? {}) };
    if (cfg.tied) delete (hf as Record<string, unknown>).tie_word_embeddings; // HF default: tied
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(hf));
    const params = randomParams(cfg, 11);
    const tensors = new Map<string, TensorInput>();
    for (const s of paramSpecs(cfg)) {
      const name = opts.prefix || s.name === 'lm_head.weight' ? s.name : s.name.replace(/^transformer\./, '');
      tensors.set(name, { shape: s.shape, data: params.get(s.name)! });
    }
    if (opts.buffers ?? true) {
      for (let i = 0; i < cfg.nLayer; i++) {
        tensors.set(`h.${i}.attn.bias`, { shape: [1, 1, cfg.nPositions, cfg.nPositions], data: new Float32Array(cfg.nPositions ** 2) });
        tensors.set(`h.${i}.attn.masked_bias`, { shape: [], data: Float32Array.of(-1e4) });
      }
    }
    if (opts.withHead) tensors.set('lm_head.weight', { shape: [cfg.vocabSize, cfg.nEmbd], data: params.get('transformer.wte.weight')! });
    for (const [k, v] of Object.entries(opts.extra ?? {})) tensors.set(k, v);
    writeSafetensors(path.join(dir, 'model.safetensors'), tensors, { format: 'pt' });
    return { dir, params, hf };
  }

  it('reads a Hub-style directory: unprefixed names, buffers skipped, config parsed like fromHfConfig', () => {
    const cfg = makeConfig({ size: '3_2_8', vocabSize: 13, nPositions: 11 });
    const { dir, params, hf } = hubDir(cfg, { withHead: true });
    const got = loadHfGpt2(dir);
    expect(got.config).toEqual(cfg);
    expect(got.config).toEqual(fromHfConfig(hf));
    expect([...got.tensors.keys()].sort()).toEqual(paramNames(cfg).sort());
    for (const [n, t] of got.tensors) {
      expect(t.data, n).toEqual(params.get(n));
      expect(t.shape).toEqual(paramShapes(cfg).get(n));
    }
  });

  it('reads an untied model with prefixed names and a sharded index', () => {
    const cfg = makeConfig({ size: '2_2_8', vocabSize: 9, nPositions: 5, tied: false, dropout: 0 });
    const { dir, params } = hubDir(cfg, { prefix: true, buffers: false });
    // Re-shard: blocks in one file, the rest in another.
    const all = readSafetensors(path.join(dir, 'model.safetensors')).tensors;
    fs.rmSync(path.join(dir, 'model.safetensors'));
    const shard = (keep: (n: string) => boolean) => new Map([...all].filter(([n]) => keep(n)).map(([n, t]) => [n, { shape: t.shape, data: t.data }]));
    writeSafetensors(path.join(dir, 'model-00001-of-00002.safetensors'), shard((n) => n.includes('.h.')), { format: 'pt' });
    writeSafetensors(path.join(dir, 'model-00002-of-00002.safetensors'), shard((n) => !n.includes('.h.')), { format: 'pt' });
    const weightMap = Object.fromEntries([...all.keys()].map((n) => [n, n.includes('.h.') ? 'model-00001-of-00002.safetensors' : 'model-00002-of-00002.safetensors']));
    fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
    const got = loadHfGpt2(dir);
    expect(got.config.tied).toBe(false);
    expect(got.tensors.get('lm_head.weight')!.data).toEqual(params.get('lm_head.weight'));
    expect(got.tensors.size).toBe(paramNames(cfg).length);
  });

  it('fails clearly: wrong shape, unknown tensor, missing parameter, unsupported config, pickle only', () => {
    const cfg = makeConfig({ size: '1_2_8', vocabSize: 7, nPositions: 5 });
    const wrong = hubDir(cfg, { extra: { 'h.0.mlp.c_fc.bias': { shape: [16], data: new Float32Array(16) } } });
    expect(() => loadHfGpt2(wrong.dir)).toThrow(/tensor "h.0.mlp.c_fc.bias" has shape \[16\], the config implies \[32\]/);
    const unknown = hubDir(cfg, { extra: { 'h.3.ln_1.weight': { shape: [8], data: new Float32Array(8) } } });
    expect(() => loadHfGpt2(unknown.dir)).toThrow(/unexpected tensor "h.3.ln_1.weight" for a 1-layer GPT-2/);
    const missing = hubDir(cfg);
    const t = readSafetensors(path.join(missing.dir, 'model.safetensors')).tensors;
    t.delete('ln_f.bias');
    writeSafetensors(path.join(missing.dir, 'model.safetensors'), new Map([...t].map(([n, x]) => [n, { shape: x.shape, data: x.data }])));
    expect(() => loadHfGpt2(missing.dir)).toThrow(/missing 1 parameter\(s\): transformer.ln_f.bias/);
    const act = hubDir(cfg, { configPatch: { activation_function: 'relu' } });
    expect(() => loadHfGpt2(act.dir)).toThrow(/activation_function "relu" is not supported/);
    const inner = hubDir(cfg, { configPatch: { n_inner: 12 } });
    expect(() => loadHfGpt2(inner.dir)).toThrow(/n_inner 12 is not supported/);
    const pickle = fresh('pickle');
    fs.mkdirSync(pickle);
    fs.writeFileSync(path.join(pickle, 'config.json'), JSON.stringify(toHfConfig(cfg)));
    fs.writeFileSync(path.join(pickle, 'pytorch_model.bin'), 'x');
    expect(() => loadHfGpt2(pickle)).toThrow(/only pytorch_model.bin .* convert it to safetensors/);
    expect(() => loadHfGpt2(fresh('none'))).toThrow(/none-\d+ does not exist/);
  });

  it('reads F16 weights as float32', () => {
    const cfg = makeConfig({ size: '1_1_4', vocabSize: 3, nPositions: 2 });
    const dir = fresh('f16');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(toHfConfig(cfg)));
    // Build an F16 file by hand: every value 0.5 (0x3800).
    const entries = paramSpecs(cfg).map((s) => [s.name.replace(/^transformer\./, ''), s.shape] as const);
    let off = 0;
    const header: Record<string, unknown> = {};
    for (const [n, shape] of entries) {
      const bytes = 2 * shape.reduce((a, b) => a * b, 1);
      header[n] = { dtype: 'F16', shape, data_offsets: [off, off + bytes] };
      off += bytes;
    }
    let json = Buffer.from(JSON.stringify(header));
    json = Buffer.concat([json, Buffer.alloc((8 - (json.length % 8)) % 8, 0x20)]);
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    const data = Buffer.alloc(off);
    for (let i = 0; i < off; i += 2) data.writeUInt16LE(0x3800, i);
    fs.writeFileSync(path.join(dir, 'model.safetensors'), Buffer.concat([len, json, data]));
    const got = loadHfGpt2(dir);
    expect(got.tensors.get('transformer.h.0.attn.c_attn.weight')!.data.every((x) => x === 0.5)).toBe(true);
  });
});
