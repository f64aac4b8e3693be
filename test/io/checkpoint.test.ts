// Checkpoints: round trip, atomic layout, checksum verification and corruption detection, pruning
// (reading Hugging Face GPT-2 directories: test/model/hf_gpt2.test.ts).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  CheckpointError,
  checkpointName,
  fromJson,
  latestCheckpoint,
  listCheckpoints,
  loadCheckpoint,
  pruneCheckpoints,
  readSidecar,
  saveCheckpoint,
  toJson,
  verifyCheckpoint,
  type CheckpointData,
} from '../../src/io/checkpoint.ts';
import { loadHfGpt2 } from '../../src/model/hf_gpt2.ts';
import { readSafetensors, sha256File, writeSafetensors, type TensorInput } from '../../src/io/safetensors.ts';
import { MT19937 } from '../../src/util/random.ts';
import { makeConfig, toHfConfig, type GPTConfig } from '../../src/model/config.ts';
import { initParams, paramNames, paramShapes } from '../../src/model/hf_names.ts';
import { randomParams, tempDirs } from '../helpers/params.ts';

const fresh = tempDirs('kindling-ckpt-');

function moments(params: Map<string, Float32Array>, scale: number): Map<string, Float32Array> {
  return new Map([...params].map(([n, a]) => [n, a.map((x) => x * scale)]));
}

const untied = makeConfig({ size: '2_4_16', vocabSize: 31, nPositions: 40, tied: false, dropout: 0 });
const tied = makeConfig({ size: '2_4_16', vocabSize: 102, nPositions: 129, tied: true });

interface TestCheckpoint extends CheckpointData {
  params: Map<string, Float32Array>;
  optimizer: { m: Map<string, Float32Array>; v: Map<string, Float32Array>; step: number };
}

const HYPER = { lastLr: 5e-4, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1, maxGradNorm: 1 };

function ckptOf(cfg: GPTConfig, seed = 1): TestCheckpoint {
  const params = randomParams(cfg, seed);
  const rng = new MT19937(seed);
  for (let i = 0; i < 1000; i++) rng.nextU32();
  return {
    config: cfg,
    params,
    shapes: paramShapes(cfg),
    optimizer: { m: moments(params, 0.1), v: moments(params, 0.01), step: 123, ...HYPER },
    step: 123,
    data: { epoch: 0, sample: 7872 },
    rng: { data: rng.getState(), dropoutSeed: 9 },
    train: { task: 'set', lr: 5e-4 },
    metadata: { val_acc: 0.5, val_loss: 1.25 },
    hfConfig: toHfConfig(cfg),
  };
}

describe('saveCheckpoint / loadCheckpoint', () => {
  it('round-trips params, shapes, moments, optimizer hyper-parameters, RNG state, data position and metadata', () => {
    const dir = fresh();
    const ck = ckptOf(untied);
    const side = saveCheckpoint(dir, ck, { fsync: true });
    expect(fs.readdirSync(dir).sort()).toEqual(['config.json', 'kindling.json', 'model.safetensors', 'optimizer.safetensors']);
    const back = loadCheckpoint(dir);
    expect(back.step).toBe(123);
    expect(back.tied).toBe(false);
    expect(back.config).toEqual(untied);
    expect([...back.params.keys()]).toEqual(paramNames(untied));
    for (const [n, a] of ck.params) {
      expect(back.params.get(n), n).toEqual(a);
      expect(back.shapes.get(n)).toEqual(paramShapes(untied).get(n));
    }
    expect(back.optimizer!.step).toBe(123);
    expect(back.optimizer!.lastLr).toBe(5e-4);
    expect(back.optimizer!.maxGradNorm).toBe(1);
    for (const n of paramNames(untied)) {
      expect(back.optimizer!.m.get(n)).toEqual(ck.optimizer!.m.get(n));
      expect(back.optimizer!.v.get(n)).toEqual(ck.optimizer!.v.get(n));
    }
    // The RNG state (a Uint32Array key) comes back as a typed array and resumes the same stream.
    const st = (back.rng as { data: { key: Uint32Array; pos: number } }).data;
    expect(st.key).toBeInstanceOf(Uint32Array);
    const a = new MT19937(0);
    a.setState(st);
    const b = new MT19937(1);
    for (let i = 0; i < 1000; i++) b.nextU32();
    expect(a.nextU32()).toBe(b.nextU32());
    expect(back.data).toEqual({ epoch: 0, sample: 7872 });
    expect(back.train).toEqual({ task: 'set', lr: 5e-4 });
    expect(back.metadata).toEqual({ val_acc: 0.5, val_loss: 1.25 });
    expect(back.hfConfig).toEqual(toHfConfig(untied));
    expect(side.files['model.safetensors']!.sha256).toBe(sha256File(path.join(dir, 'model.safetensors')));
  });

  it('writes HF-compatible files: format "pt" metadata, HF names, no lm_head when tied, optimizer keys m.* / v.*', () => {
    const dir = fresh();
    const ck = ckptOf(tied);
    ck.params.set('lm_head.weight', ck.params.get('transformer.wte.weight')!); // the model may expose the alias
    saveCheckpoint(dir, { ...ck, optimizer: undefined }, { fsync: false });
    const model = readSafetensors(path.join(dir, 'model.safetensors'));
    expect(model.metadata.format).toBe('pt');
    expect([...model.tensors.keys()].sort()).toEqual(paramNames(tied).sort());
    expect(model.tensors.has('lm_head.weight')).toBe(false);
    expect(fs.existsSync(path.join(dir, 'optimizer.safetensors'))).toBe(false);
    const back = loadCheckpoint(dir);
    expect(back.tied).toBe(true);
    expect(back.optimizer).toBeUndefined();

    const dir2 = fresh();
    saveCheckpoint(dir2, ckptOf(untied), { fsync: false });
    const opt = readSafetensors(path.join(dir2, 'optimizer.safetensors'));
    expect([...opt.tensors.keys()].sort()).toEqual([...paramNames(untied).map((n) => `m.${n}`), ...paramNames(untied).map((n) => `v.${n}`)].sort());
    expect(opt.metadata.step).toBe('123');
  });

  it('a checkpoint directory is itself a Hugging Face model directory (loadHfGpt2 reads it back)', () => {
    for (const cfg of [tied, untied]) {
      const dir = fresh();
      const ck = ckptOf(cfg, 5);
      saveCheckpoint(dir, ck, { fsync: false });
      const hf = loadHfGpt2(dir);
      expect(hf.config).toEqual(cfg);
      expect([...hf.tensors.keys()].sort()).toEqual(paramNames(cfg).sort());
      for (const [n, t] of hf.tensors) expect(t.data).toEqual(ck.params.get(n));
    }
  });

  it('validates before writing anything: mis-sized params or moments fail with the name and leave the old checkpoint intact', () => {
    const dir = fresh();
    saveCheckpoint(dir, ckptOf(untied, 1), { fsync: false });
    const before = fs.readFileSync(path.join(dir, 'kindling.json'), 'utf8');
    const bad = ckptOf(untied, 2);
    bad.params.set('transformer.ln_f.bias', new Float32Array(3));
    expect(() => saveCheckpoint(dir, bad, { fsync: false })).toThrow(/parameter "transformer.ln_f.bias": shape \[16\] needs 16 values, got 3/);
    const bad2 = ckptOf(untied, 2);
    bad2.optimizer.v.set('transformer.wpe.weight', new Float32Array(2));
    expect(() => saveCheckpoint(dir, bad2, { fsync: false })).toThrow(/moment v.transformer.wpe.weight: expected 640 float32 values, got 2/);
    const bad3 = ckptOf(untied, 2);
    bad3.optimizer.m.set('nope', new Float32Array(2));
    expect(() => saveCheckpoint(dir, bad3, { fsync: false })).toThrow(/m.nope has no parameter "nope"/);
    const noShape = ckptOf(untied, 2);
    noShape.params.set('extra', new Float32Array(1));
    expect(() => saveCheckpoint(dir, noShape, { fsync: false })).toThrow(/parameter "extra" has no shape/);
    expect(() => saveCheckpoint(dir, { ...ckptOf(untied), step: -1 })).toThrow(/step must be a non-negative integer/);
    expect(fs.readFileSync(path.join(dir, 'kindling.json'), 'utf8')).toBe(before);
    expect(loadCheckpoint(dir).params.get('transformer.ln_f.bias')).toEqual(ckptOf(untied, 1).params.get('transformer.ln_f.bias'));
  });

  it('overwrites an existing checkpoint (e.g. best) and leaves no temporary files; stale ones are cleaned', () => {
    const dir = path.join(fresh('run'), checkpointName('best'));
    saveCheckpoint(dir, ckptOf(untied, 1), { fsync: false });
    fs.writeFileSync(path.join(dir, '.model.safetensors.tmp-99999-deadbeef'), 'partial');
    const second = ckptOf(untied, 2);
    second.step = 500;
    saveCheckpoint(dir, second, { fsync: false });
    expect(fs.readdirSync(dir).filter((f) => f.startsWith('.'))).toEqual([]);
    const back = loadCheckpoint(dir);
    expect(back.step).toBe(500);
    expect(back.params.get('transformer.wte.weight')).toEqual(second.params.get('transformer.wte.weight'));
  });

  it('an interrupted save (no sidecar) is reported as incomplete', () => {
    const dir = fresh();
    saveCheckpoint(dir, ckptOf(untied), { fsync: false });
    fs.rmSync(path.join(dir, 'kindling.json'));
    expect(() => loadCheckpoint(dir)).toThrow(/is not a complete checkpoint: kindling.json is missing/);
    expect(() => loadCheckpoint(fresh('nowhere'))).toThrow(/does not exist/);
  });

  it('detects corruption and names the file: flipped byte, truncation, missing file, edited config', () => {
    const dir = fresh();
    saveCheckpoint(dir, ckptOf(untied), { fsync: false });
    const model = path.join(dir, 'model.safetensors');
    const optim = path.join(dir, 'optimizer.safetensors');
    const orig = fs.readFileSync(model);

    const flipped = Buffer.from(orig);
    flipped[orig.length - 5] ^= 0x40;
    fs.writeFileSync(model, flipped);
    expect(() => loadCheckpoint(dir)).toThrow(CheckpointError);
    expect(() => loadCheckpoint(dir)).toThrow(/model\.safetensors is corrupted: sha256 [0-9a-f]{64} does not match the recorded/);
    expect(() => verifyCheckpoint(dir)).toThrow(/model\.safetensors/);
    // verify: false skips the check (and then reads the altered value).
    expect(loadCheckpoint(dir, { verify: false }).params.size).toBe(paramNames(untied).length);

    fs.writeFileSync(model, orig.subarray(0, orig.length - 100));
    expect(() => loadCheckpoint(dir)).toThrow(/model\.safetensors is corrupted: \d+ bytes, the checkpoint recorded \d+ \(truncated or modified\)/);
    fs.writeFileSync(model, orig);
    expect(() => verifyCheckpoint(dir)).not.toThrow();

    const o = fs.readFileSync(optim);
    const o2 = Buffer.from(o);
    o2[200] ^= 1;
    fs.writeFileSync(optim, o2);
    expect(() => loadCheckpoint(dir)).toThrow(/optimizer\.safetensors is corrupted/);
    fs.rmSync(optim);
    expect(() => loadCheckpoint(dir)).toThrow(/optimizer\.safetensors is missing/);
    fs.writeFileSync(optim, o);

    fs.appendFileSync(path.join(dir, 'config.json'), ' ');
    expect(() => loadCheckpoint(dir)).toThrow(/config\.json is corrupted/);
  });

  it('rejects a foreign or newer sidecar', () => {
    const dir = fresh();
    saveCheckpoint(dir, ckptOf(untied), { fsync: false });
    const p = path.join(dir, 'kindling.json');
    const s = JSON.parse(fs.readFileSync(p, 'utf8')) as Record<string, unknown>;
    fs.writeFileSync(p, JSON.stringify({ ...s, version: 99 }));
    expect(() => readSidecar(dir)).toThrow(/version 99 is newer/);
    fs.writeFileSync(p, JSON.stringify({ ...s, format: 'other' }));
    expect(() => readSidecar(dir)).toThrow(/not a kindling checkpoint sidecar/);
    fs.writeFileSync(p, '{');
    expect(() => readSidecar(dir)).toThrow(/not valid JSON/);
  });
});

describe('naming, listing and pruning', () => {
  it('names periodic and best checkpoints', () => {
    expect(checkpointName('step', 500)).toBe('step-500');
    expect(checkpointName('best')).toBe('best');
    expect(checkpointName('best', 1500)).toBe('best-step-1500');
    expect(() => checkpointName('step')).toThrow(/needs a step/);
  });

  it('lists numerically, finds the latest complete one, and prunes per prefix keeping the newest', () => {
    const run = fresh('run');
    const small = ckptOf(makeConfig({ size: '1_1_4', vocabSize: 3, nPositions: 2 }));
    for (const s of [10, 9, 100, 20, 1]) saveCheckpoint(path.join(run, checkpointName('step', s)), { ...small, step: s }, { fsync: false });
    saveCheckpoint(path.join(run, 'best'), small, { fsync: false });
    for (const s of [5, 50]) saveCheckpoint(path.join(run, checkpointName('best', s)), small, { fsync: false });
    fs.mkdirSync(path.join(run, 'step-200')); // interrupted: no sidecar
    fs.writeFileSync(path.join(run, 'step-300'), 'a file, not a checkpoint');
    fs.mkdirSync(path.join(run, 'step-x'));

    expect(listCheckpoints(run).map((c) => c.step)).toEqual([1, 9, 10, 20, 100, 200]);
    expect(listCheckpoints(run).find((c) => c.step === 200)!.complete).toBe(false);
    expect(latestCheckpoint(run)!.name).toBe('step-100');
    expect(latestCheckpoint(run, 'best-step-')!.step).toBe(50);

    expect(pruneCheckpoints(run, 'step-', 3)).toEqual(['step-1', 'step-9', 'step-10']);
    expect(listCheckpoints(run).map((c) => c.name)).toEqual(['step-20', 'step-100', 'step-200']);
    expect(fs.existsSync(path.join(run, 'best'))).toBe(true);
    expect(listCheckpoints(run, 'best-step-').length).toBe(2);
    expect(pruneCheckpoints(run, 'best-step-', 1)).toEqual(['best-step-5']);
    expect(pruneCheckpoints(run, 'step-', 5)).toEqual([]);
    expect(pruneCheckpoints(run, 'step-', 0)).toEqual(['step-20', 'step-100', 'step-200']);
    expect(fs.existsSync(path.join(run, 'step-300'))).toBe(true);
    expect(() => pruneCheckpoints(run, 'step-', -1)).toThrow(/keep must be/);
    expect(listCheckpoints(path.join(run, 'missing'))).toEqual([]);
    expect(latestCheckpoint(path.join(run, 'missing'))).toBeNull();
  });
});

describe('JSON with typed arrays', () => {
  it('round-trips every typed array kind and leaves plain objects alone', () => {
    const v = {
      a: Uint32Array.of(0, 1, 0xffffffff),
      b: Int32Array.of(-5, 7),
      c: Float32Array.of(1.5, -0.25),
      d: Float64Array.of(Math.PI),
      e: Uint8Array.of(1, 2, 3),
      f: new Uint16Array(new Uint16Array([9, 8, 7]).buffer, 2, 2),
      n: [1, 'x', null],
      o: { $typed: 'Nope', base64: '' },
    };
    const back = fromJson(toJson(v)) as typeof v;
    expect(back.a).toEqual(v.a);
    expect(back.b).toEqual(v.b);
    expect(back.c).toEqual(v.c);
    expect(back.d).toEqual(v.d);
    expect(back.e).toEqual(v.e);
    expect(Array.from(back.f)).toEqual([8, 7]);
    expect(back.n).toEqual(v.n);
    expect(back.o).toEqual(v.o);
  });
});

describe('checkpoints of initialised models', () => {
  it('initialised params load through a checkpoint unchanged (paramCount-sized model)', () => {
    const cfg = makeConfig({ size: '2_4_16', vocabSize: 256, nPositions: 100, tied: false, dropout: 0 });
    const params = initParams(cfg, 3);
    const dir = fresh();
    saveCheckpoint(dir, { config: cfg, params, shapes: paramShapes(cfg), step: 0 }, { fsync: false });
    const back = loadCheckpoint(dir);
    let n = 0;
    for (const [k, a] of back.params) {
      expect(a).toEqual(params.get(k));
      n += a.length;
    }
    expect(n).toBe(16_384);
  });
});

describe('checkpoints written by earlier versions', () => {
  it('a checkpoint written before the move to src/io (optimizer record with the old `lr` field) loads and verifies', () => {
    const dir = path.join(import.meta.dirname, 'fixtures', 'checkpoint-v1-adamw-default-lr');
    verifyCheckpoint(dir);
    const back = loadCheckpoint(dir);
    const cfg = makeConfig({ size: '1_1_4', vocabSize: 3, nPositions: 2, tied: true, dropout: 0 });
    expect(back.step).toBe(5);
    expect(back.config).toEqual(cfg);
    expect([...back.params.keys()]).toEqual(paramNames(cfg));
    for (const [n, a] of initParams(cfg, 7)) expect(back.params.get(n), n).toEqual(a);
    expect(back.optimizer).toMatchObject({ step: 5, lr: 0.001, weightDecay: 0.1, maxGradNorm: 1 });
    expect(back.optimizer!.m.size).toBe(paramNames(cfg).length);
    expect(back.hfConfig).toEqual(toHfConfig(cfg));
  });
});
