// Training configs (YAML + command line, precedence, validation, derived schedule/model) and the model
// config (size strings, HF config.json interop, the §3.3 parameter counts).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  fromHfConfig,
  makeConfig,
  paramCount,
  parseSize,
  sizeString,
  toHfConfig,
  validateModelConfig,
  KNOWN_SIZES,
  type GPTConfig,
} from '../../src/model/config.ts';
import { paramSpecs } from '../../src/model/hf_names.ts';
import {
  ALGORITHMIC_SCHEMA,
  C4_SCHEMA,
  CODEPARROT_SCHEMA,
  DEEPMIND_MATH_SCHEMA,
  PROCEDURAL_SCHEMA,
  accelerateModelConfig,
  accelerateScheduleSpec,
  algorithmicModelConfig,
  algorithmicScheduleSpec,
  c4ModelConfig,
  c4ScheduleSpec,
  describeConfig,
  loadConfig,
  parseArgs,
  proceduralModelConfig,
  proceduralRunName,
  proceduralScheduleSpec,
  proceduralTotalSteps,
  schemaHelp,
  type AlgorithmicConfig,
  type C4Config,
  type CodeparrotConfig,
  type ProceduralConfig,
} from '../../src/train/config.ts';
import { makeSchedule } from '../../src/train/schedule.ts';
import { parseWeightScales } from '../../src/train/transfer.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kindling-cfg-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
function yamlFile(name: string, text: string): string {
  const p = path.join(tmp, name);
  fs.writeFileSync(p, text);
  return p;
}

// Same keys and values as the reference's procedural_pretraining/configs/set.yaml (written here, not copied).
const SET_YAML = `task: set
gpt2_size: "12_12_768"
seed: 42
epochs: 1
steps_per_epoch: 2501
max_steps: 2501
save_every_steps: 500
save_total_limit: 20
batch_size: 64
vocab_size: 100
seq_length: 64
warmup_steps: 0
lr_schedule: constant
lr: 0.0005
weight_decay: 0.1
wandb_enable: true
wandb_project: procedural_pretraining
wandb_name: set_len64
save_dir: pretrained_models/procedural/set/len64/
`;

describe('procedural config (§4)', () => {
  it('loads a reference-style YAML: values, sources, ignored wandb keys, derived model and schedule', () => {
    const file = yamlFile('set.yaml', SET_YAML);
    const c = loadConfig<ProceduralConfig>(PROCEDURAL_SCHEMA, { argv: ['--config', file] });
    expect(c.file).toBe(file);
    expect(c.values.task).toBe('set');
    expect(c.values.lr).toBe(5e-4);
    expect(c.values.max_grad_norm).toBe(1);
    expect(c.sources.lr).toBe('yaml');
    expect(c.sources.max_grad_norm).toBe('default');
    expect(c.ignored.sort()).toEqual(['wandb_enable', 'wandb_name', 'wandb_project']);
    const model = proceduralModelConfig(c.values);
    expect(model).toMatchObject({ nLayer: 12, nHead: 12, nEmbd: 768, vocabSize: 102, nPositions: 129, tied: true });
    expect(model.dropout).toEqual({ embd: 0.1, attn: 0.1, resid: 0.1 });
    expect(paramCount(model)).toBe(85_233_408);
    expect(proceduralTotalSteps(c.values)).toBe(2501);
    const lr = makeSchedule(proceduralScheduleSpec(c.values));
    expect(lr(0)).toBe(5e-4);
    expect(lr(2500)).toBe(5e-4);
    expect(proceduralRunName(c.values)).toBe('set-64-12_12_768-2501steps');
  });

  it('precedence: command line > YAML > default, in every --key form', () => {
    const file = yamlFile('p.yaml', 'task: sort\nlr: 0.001\nbatch_size: 32\nresume: true\n');
    const c = loadConfig<ProceduralConfig>(PROCEDURAL_SCHEMA, {
      file,
      argv: ['--lr', '2e-4', '--max-steps=77', '--no-resume', '--grad-clip', '0.5', '--lr_schedule', 'linear'],
    });
    expect(c.values.lr).toBe(2e-4);
    expect(c.sources.lr).toBe('cli');
    expect(c.values.batch_size).toBe(32);
    expect(c.sources.batch_size).toBe('yaml');
    expect(c.values.max_steps).toBe(77);
    expect(c.values.resume).toBe(false);
    expect(c.values.max_grad_norm).toBe(0.5);
    expect(c.values.lr_schedule).toBe('linear');
    expect(c.values.seed).toBe(42);
    expect(c.sources.seed).toBe('default');
    // --config on the command line wins over opts.file; overrides act like the command line.
    const other = yamlFile('q.yaml', 'task: reverse\n');
    expect(loadConfig<ProceduralConfig>(PROCEDURAL_SCHEMA, { file, argv: ['--config', other] }).values.task).toBe('reverse');
    expect(loadConfig<ProceduralConfig>(PROCEDURAL_SCHEMA, { file, overrides: { lr: 3e-3 } }).values.lr).toBe(3e-3);
  });

  it('uses the Dyck trainer parser defaults for dyck tasks and the algorithmic ones otherwise', () => {
    const algo = loadConfig<ProceduralConfig>(PROCEDURAL_SCHEMA, { text: 'task: stack' }).values;
    expect([algo.seq_length, algo.steps_per_epoch, algo.epochs, algo.max_steps, algo.warmup_steps, algo.lr_schedule, algo.save_every_steps, algo.patience]).toEqual([
      20, 100, 10000, 20000, 1000, 'cosine', 10, 50,
    ]);
    expect([algo.gpt2_size, algo.vocab_size, algo.batch_size, algo.lr, algo.weight_decay, algo.save_total_limit]).toEqual(['2_4_16', 21, 64, 5e-5, 0.01, 1]);
    const dyck = loadConfig<ProceduralConfig>(PROCEDURAL_SCHEMA, { text: 'task: dyck\nk: 64\nseq_length: 2048\nmax_steps: 501\ngpt2_size: "12_12_768"' }).values;
    expect([dyck.steps_per_epoch, dyck.epochs, dyck.warmup_steps, dyck.lr_schedule, dyck.save_every_steps, dyck.patience]).toEqual([1000, 1000, 0, 'constant', 100, 1000001]);
    expect(proceduralTotalSteps(dyck)).toBe(501);
    const model = proceduralModelConfig(dyck);
    expect([model.vocabSize, model.nPositions]).toEqual([129, 2048]);
    expect(paramCount(model)).toBe(86_727_936);
    // The algorithmic trainer's total is epochs · steps_per_epoch even when max_steps is smaller.
    expect(proceduralTotalSteps(algo)).toBe(1_000_000);
    expect(proceduralModelConfig(loadConfig<ProceduralConfig>(PROCEDURAL_SCHEMA, { text: 'task: union\nseq_length: 64\nvocab_size: 100' }).values).nPositions).toBe(130);
  });

  it('parses PyYAML-style numeric strings, YAML 1.2 floats, and null for nullable keys', () => {
    const c = loadConfig<ProceduralConfig>(PROCEDURAL_SCHEMA, { text: 'task: set\nlr: "5e-4"\nweight_decay: 1.0e-1\nmax_steps: null\nrun_name: null' });
    expect(c.values.lr).toBe(5e-4);
    expect(c.values.weight_decay).toBe(0.1);
    expect(c.values.max_steps).toBeNull();
    expect(loadConfig<ProceduralConfig>(PROCEDURAL_SCHEMA, { text: 'task: set', argv: ['--max_steps', 'null'] }).values.max_steps).toBeNull();
  });

  it('fails with clear errors naming the key and the source', () => {
    const load = (text: string, argv: string[] = []) => () => loadConfig(PROCEDURAL_SCHEMA, { text, argv });
    expect(load('lr: 1')).toThrow(/"task" is required/);
    expect(load('task: sortt')).toThrow(/task: "sortt" is not one of sort, reverse/);
    expect(load('task: set\nlearning_rat: 1')).toThrow(/unknown key "learning_rat" in the YAML config/);
    expect(load('task: set\nbatch_sise: 4')).toThrow(/did you mean "batch_size"\?/);
    expect(load('task: set', ['--bach_size', '4'])).toThrow(/unknown key "bach_size" on the command line \(did you mean "batch_size"\?\)/);
    expect(load('task: set', ['--lr', 'fast'])).toThrow(/lr: expected a number, got "fast" \(from --lr\)/);
    expect(load('task: set\nbatch_size: 2.5')).toThrow(/batch_size: expected an integer, got 2.5 \(from the YAML config\)/);
    expect(load('task: set\nbatch_size: 0')).toThrow(/batch_size: must be >= 1, got 0/);
    expect(load('task: set\nlr: -1')).toThrow(/lr: must be >= 0/);
    expect(load('task: set\nlr_schedule: exponential')).toThrow(/lr_schedule: "exponential" is not one of constant, linear, cosine/);
    expect(load('task: set\ngpt2_size: 2_4_15')).toThrow(/gpt2_size: invalid model size "2_4_15": hidden 15 is not divisible by heads 4/);
    expect(load('task: set\ngpt2_size: "2_3_16"')).toThrow(/gpt2_size: invalid model size "2_3_16": hidden 16 is not divisible by heads 3/);
    expect(load('task: set\ngpt2_size: 2416')).toThrow(/gpt2_size: expected a string \(quote it in YAML\), got 2416/);
    expect(load('task: set\nlr: null')).toThrow(/lr: null is not allowed/);
    expect(load('task: set\nresume: maybe')).toThrow(/resume: expected true or false/);
    expect(load('task: set\nmax_grad_norm: 1\ngrad_clip: 2')).toThrow(/max_grad_norm: given twice/);
    expect(load('task: set', ['--lr'])).toThrow(/--lr needs a value/);
    expect(load('task: set', ['--lr', '1', '--lr', '2'])).toThrow(/given twice on the command line/);
    expect(load('task: set', ['stray'])).toThrow(/unexpected argument\(s\) "stray"/);
    expect(load('- a\n- b')).toThrow(/expected a mapping/);
    expect(load('task: [unclosed')).toThrow(/YAML config/);
    expect(load('task: stack\nvocab_size: 2')).toThrow(/stack task needs at least 3/);
    expect(load('task: dyck\nuse_curriculum: true')).toThrow(/only the algorithmic tasks have a curriculum/);
    expect(() => loadConfig(PROCEDURAL_SCHEMA, { file: path.join(tmp, 'missing.yaml') })).toThrow(/config file not found/);
  });
});

describe('command-line parsing', () => {
  it('handles flags, inline values, negative numbers, lists and dashes', () => {
    const p = parseArgs(ALGORITHMIC_SCHEMA, ['--tie-emb', '--lr=0.5', '--weights_to_transfer', 'attn', 'ffn', '--seed', '-0', '--config', 'x.yaml']);
    expect(p.config).toBe('x.yaml');
    expect(p.values.get('tie_emb')).toBe(true);
    expect(p.values.get('learning_rate')).toBe('0.5');
    expect(p.values.get('weights_to_be_transferred')).toEqual(['attn', 'ffn']);
    expect(p.values.get('seed')).toBe('-0');
    const q = parseArgs(ALGORITHMIC_SCHEMA, ['--tie_emb', 'false', '--weights_to_be_trained', 'attn,embed', '--wandb_project', 'x']);
    expect(q.values.get('tie_emb')).toBe('false');
    expect(q.values.get('weights_to_be_trained')).toBe('attn,embed');
    expect(() => parseArgs(ALGORITHMIC_SCHEMA, ['--weights_to_be_trained'])).toThrow(/needs at least one value/);
  });

  it('list values from YAML, comma lists and flow lists all coerce', () => {
    const base = 'pretrained_model_path: ckpt\n';
    for (const argv of [['--weights_to_be_transferred', 'attn', 'ffn'], ['--weights_to_be_transferred', 'attn,ffn'], ['--weights_to_be_transferred', '[attn, ffn]']]) {
      expect(loadConfig<AlgorithmicConfig>(ALGORITHMIC_SCHEMA, { text: base, argv }).values.weights_to_be_transferred).toEqual(['attn', 'ffn']);
    }
    expect(loadConfig<AlgorithmicConfig>(ALGORITHMIC_SCHEMA, { text: base + 'weights_to_transfer:\n  - everything\n' }).values.weights_to_be_transferred).toEqual(['everything']);
  });
});

describe('algorithmic downstream config (§6)', () => {
  it('task defaults: needle (2_4_16, P 100, V 256, batch 1000, 10k steps) and multiplication (4_8_512, batch 64, 156,250 steps)', () => {
    const needle = loadConfig<AlgorithmicConfig>(ALGORITHMIC_SCHEMA, {}).values;
    expect(needle.task).toBe('condattendstream_30');
    expect([needle.n_layer, needle.n_head, needle.n_embd, needle.n_positions, needle.vocab_size]).toEqual([2, 4, 16, 100, 256]);
    expect([needle.per_device_train_batch_size, needle.max_steps, needle.eval_steps, needle.tie_emb, needle.dropout]).toEqual([1000, 10_000, 50, false, 0]);
    expect([needle.learning_rate, needle.weight_decay, needle.warmup_steps, needle.lr_scheduler_type, needle.max_grad_norm]).toEqual([1e-3, 0.001, 500, 'cosine', 1]);
    expect(paramCount(algorithmicModelConfig(needle))).toBe(16_384);
    const lr = makeSchedule(algorithmicScheduleSpec(needle));
    expect(lr(500)).toBe(1e-3);
    expect(lr(10_000)).toBe(0);

    const mult = loadConfig<AlgorithmicConfig>(ALGORITHMIC_SCHEMA, { argv: ['--task', 'multiplication_5'] }).values;
    expect([mult.n_layer, mult.n_head, mult.n_embd, mult.per_device_train_batch_size, mult.max_steps, mult.eval_steps]).toEqual([4, 8, 512, 64, 156_250, 40]);
    expect(paramCount(algorithmicModelConfig(mult))).toBe(12_662_784);
    const add = loadConfig<AlgorithmicConfig>(ALGORITHMIC_SCHEMA, { text: 'task: additionstream_10\nseed: 0' }).values;
    expect(paramCount(algorithmicModelConfig(add))).toBe(8_224);
    expect(loadConfig<AlgorithmicConfig>(ALGORITHMIC_SCHEMA, { text: 'task: forwardaddition_5' }).values.eval_steps).toBe(40);
    // An explicit batch changes the derived max_steps; an explicit max_steps wins.
    expect(loadConfig<AlgorithmicConfig>(ALGORITHMIC_SCHEMA, { argv: ['--batch_size', '500'] }).values.max_steps).toBe(20_000);
    expect(loadConfig<AlgorithmicConfig>(ALGORITHMIC_SCHEMA, { argv: ['--batch_size', '500', '--max_steps', '5'] }).values.max_steps).toBe(5);
  });

  it('reference-style procedural.yaml: transfer everything with average embeddings', () => {
    const text = 'wandb_project: "algorithmic_tasks"\npretrained_model_path: "set_model.pth"\nweights_to_be_transferred:\n  - "everything"\nembedding_init_strategy: "average"\nweights_to_be_trained:\n  - "everything"\ntask: "forwardaddition_5"\nseed: 0\n';
    const c = loadConfig<AlgorithmicConfig>(ALGORITHMIC_SCHEMA, { text });
    expect(c.values.weights_to_be_transferred).toEqual(['everything']);
    expect(c.values.embedding_init_strategy).toBe('average');
    expect(c.ignored).toEqual(['wandb_project']);
  });

  it('reproduces the harness validator [quirk] and its named fix', () => {
    const text = 'pretrained_model_path: x\nweights_to_be_transferred: [ln]';
    expect(() => loadConfig(ALGORITHMIC_SCHEMA, { text })).toThrow(/weights_to_be_transferred: "ln" is not accepted by the algorithmic harness .* set all_components: true/);
    expect(loadConfig<AlgorithmicConfig>(ALGORITHMIC_SCHEMA, { text: text + '\nall_components: true' }).values.weights_to_be_transferred).toEqual(['ln']);
    expect(() => loadConfig(ALGORITHMIC_SCHEMA, { text: 'weights_to_be_transferred: [attn]' })).toThrow(/pretrained_model_path must be specified/);
    expect(() => loadConfig(ALGORITHMIC_SCHEMA, { text: 'weights_to_be_trained: [mlp]' })).toThrow(/"mlp" is not one of everything, attn/);
    expect(() => loadConfig(ALGORITHMIC_SCHEMA, { text: 'task: sorting_10' })).toThrow(/"sorting_10" is not a downstream task id/);
    expect(() => loadConfig(ALGORITHMIC_SCHEMA, { text: 'n_head: 3' })).toThrow(/n_embd 16 is not divisible by n_head 3/);
  });

  it('transfer_layers: block indices from YAML numbers or the command line, checked against n_layer', () => {
    const text = 'pretrained_model_path: x\nweights_to_be_transferred: [attn]\ntransfer_layers: [1]';
    expect(loadConfig<AlgorithmicConfig>(ALGORITHMIC_SCHEMA, { text }).values.transfer_layers).toEqual(['1']);
    expect(loadConfig<AlgorithmicConfig>(ALGORITHMIC_SCHEMA, { text, argv: ['--transfer_layers', '0,1'] }).values.transfer_layers).toEqual(['0', '1']);
    expect(loadConfig<AlgorithmicConfig>(ALGORITHMIC_SCHEMA, {}).values.transfer_layers).toEqual([]);
    expect(() => loadConfig(ALGORITHMIC_SCHEMA, { text: text.replace('[1]', '[2]') })).toThrow(/transfer_layers: "2" is not a block of the model \(integers 0\.\.1\)/);
    expect(() => loadConfig(ALGORITHMIC_SCHEMA, { text: text.replace('[1]', '[first]') })).toThrow(/transfer_layers: "first" is not a block/);
    expect(() => loadConfig(ALGORITHMIC_SCHEMA, { text: text.replace('[1]', '[0, 0]') })).toThrow(/transfer_layers: \["0","0"\] lists a block twice/);
    expect(() => loadConfig(ALGORITHMIC_SCHEMA, { text: 'transfer_layers: [0]' })).toThrow(/transfer_layers needs weights_to_be_transferred/);
  });

  it('transfer_scale: NAME=FACTOR entries, needing a transfer; malformed entries named', () => {
    const text = 'pretrained_model_path: x\nweights_to_be_transferred: [attn]\ntransfer_scale: [h.1.attn.c_proj.weight=-1]';
    expect(loadConfig<AlgorithmicConfig>(ALGORITHMIC_SCHEMA, { text }).values.transfer_scale).toEqual(['h.1.attn.c_proj.weight=-1']);
    expect(loadConfig<AlgorithmicConfig>(ALGORITHMIC_SCHEMA, {}).values.transfer_scale).toEqual([]);
    for (const entry of ['c_proj', 'c_proj=', '=2', 'c_proj=x', 'c_proj=Infinity'])
      expect(() => loadConfig(ALGORITHMIC_SCHEMA, { text: text.replace('h.1.attn.c_proj.weight=-1', entry) }), entry).toThrow(/transfer_scale: ".*" is not NAME=FACTOR or NAME\[START:END\]=FACTOR/);
    expect(() => loadConfig(ALGORITHMIC_SCHEMA, { text: 'transfer_scale: [c_proj=2]' })).toThrow(/transfer_scale needs a transfer \(pretrained_model_path\)/);
    expect(parseWeightScales(['h.1.attn.c_attn[64:128]=-1', 'c_proj.weight=0.5', 'c_attn[ 0 : 16 ] = 2'])).toEqual([
      { match: 'h.1.attn.c_attn', factor: -1, slice: { start: 64, end: 128 } },
      { match: 'c_proj.weight', factor: 0.5, slice: null },
      { match: 'c_attn', factor: 2, slice: { start: 0, end: 16 } },
    ]);
    for (const entry of ['c_attn[64:64]=1', 'c_attn[9:3]=1']) expect(() => parseWeightScales([entry]), entry).toThrow(/the range \[\d+:\d+\] is empty/);
    for (const entry of ['c_attn[64]=1', 'c_attn[a:b]=1', 'c_attn[-1:3]=1', '[0:3]=1', 'c_proj=x=2']) expect(() => parseWeightScales([entry]), entry).toThrow(/is not NAME=FACTOR or NAME\[START:END\]=FACTOR/);
  });
});

describe('semantic configs (§7)', () => {
  it('C4: reference-style YAML, the floor-0.1 cosine, GPT-2 small at 2048 positions', () => {
    const text = `model_name: gpt2\npretrained_path: null\nreinit: true\ngpt2_size: null\nweights_to_transfer:\n  - attn\n  - ffn\n  - ln\nweights_to_be_trained:\n  - everything\ninitialization_strategy: retain\ngradient_accumulation_steps: 8\nmax_steps: 10000\nbsz: 4\nwarmup_steps: 0\nlogging_steps: 100\nsave_steps: 2000\neval_steps: 500\noutput_dir: output/c4\nseed: 3407\nlr: 5.0e-4\nmin_lr_rate: 0.1\nreport_to: wandb\nwandb_mode: online\nwandb_project: c4_pretraining\nwandb_name: null\nuse_c4_1m: false\neval_dataset_local_path: null\ndownload_eval_dataset: false\noverwrite_eval_cache: false\n`;
    const c = loadConfig<C4Config>(C4_SCHEMA, { text });
    expect(c.values.weights_to_transfer).toEqual(['attn', 'ffn', 'ln']);
    expect(c.values.weights_to_train).toEqual(['everything']);
    const lr = makeSchedule(c4ScheduleSpec(c.values));
    expect(lr(0)).toBeCloseTo(5e-4, 15);
    expect(lr(5000)).toBeCloseTo(2.75e-4, 15);
    expect(lr(10000)).toBeCloseTo(5e-5, 15);
    expect(paramCount(c4ModelConfig(c.values))).toBe(125_226_240);
    const medium = loadConfig<C4Config>(C4_SCHEMA, { argv: ['--model_name', 'gpt2-medium'] }).values;
    expect(paramCount(c4ModelConfig(medium))).toBe(355_871_744);
    const xl = loadConfig<C4Config>(C4_SCHEMA, { argv: ['--gpt2_size', '24_16_2048'] }).values;
    expect(paramCount(c4ModelConfig(xl))).toBe(1_315_723_264);
    expect(() => loadConfig(C4_SCHEMA, { text: 'reinit: false' })).toThrow(/reinit: false .* is not supported/);
  });

  it('CodeParrot and DeepMind-Math: accelerate keys, output_dir required, schedules and models', () => {
    expect(() => loadConfig(CODEPARROT_SCHEMA, {})).toThrow(/output_dir is required/);
    const cp = loadConfig<CodeparrotConfig>(CODEPARROT_SCHEMA, { argv: ['--output_dir', 'out', '--max_steps', '20000'] }).values;
    expect(cp.max_train_steps).toBe(20_000);
    expect(cp.weights_to_transfer).toEqual(['attn', 'ffn', 'ln']);
    const lr = makeSchedule(accelerateScheduleSpec(cp));
    expect(lr(0)).toBe(5e-5);
    expect(lr(20_000)).toBe(0);
    expect(paramCount(accelerateModelConfig(cp, 32768))).toBe(111_008_256);
    const dm = loadConfig<CodeparrotConfig>(DEEPMIND_MATH_SCHEMA, { text: 'output_dir: out/dm' }).values;
    expect(dm.seq_length).toBe(512);
    expect(paramCount(accelerateModelConfig(dm, 99))).toBe(85_525_248);
    expect(() => loadConfig(DEEPMIND_MATH_SCHEMA, { text: 'output_dir: x\nmixed_precision: fp8' })).toThrow(/mixed_precision: "fp8" is not one of no, fp16, bf16/);
  });

  it('documents itself: schemaHelp and describeConfig', () => {
    const help = schemaHelp(PROCEDURAL_SCHEMA);
    expect(help).toContain('| `max_grad_norm` / `grad_clip` | number | 1 |');
    expect(help).toContain('| `task` | string | (required) |');
    expect(help).not.toContain('wandb');
    const c = loadConfig(PROCEDURAL_SCHEMA, { text: 'task: set' });
    expect(describeConfig(PROCEDURAL_SCHEMA, c)).toMatch(/^task +"set" +yaml$/m);
  });
});

describe('model config (src/model/config.ts)', () => {
  it('parses size strings and rejects bad ones', () => {
    for (const s of KNOWN_SIZES) {
      const p = parseSize(s);
      expect(sizeString(p)).toBe(s);
      expect(p.nEmbd % p.nHead).toBe(0);
    }
    expect(parseSize('4_8_512')).toEqual({ nLayer: 4, nHead: 8, nEmbd: 512 });
    expect(() => parseSize('4-8-512')).toThrow(/expected "\{layers\}_\{heads\}_\{hidden\}"/);
    expect(() => parseSize('0_4_16')).toThrow(/>= 1/);
    expect(() => parseSize('2_5_16')).toThrow(/not divisible/);
  });

  it('matches every parameter count of spec §3.3, and the sum of the HF parameter shapes', () => {
    const cases: [string, number, number, boolean, number][] = [
      ['2_4_16', 256, 100, false, 16_384],
      ['2_4_16', 31, 40, false, 8_224],
      ['4_8_512', 31, 40, false, 12_662_784],
      ['2_4_16', 102, 129, true, 10_288],
      ['12_12_768', 102, 129, true, 85_233_408],
      ['12_12_768', 129, 2048, true, 86_727_936],
      ['12_12_768', 50257, 2048, true, 125_226_240],
      ['12_12_768', 32768, 1024, true, 111_008_256],
      ['12_12_768', 99, 512, true, 85_525_248],
      ['24_16_1024', 50257, 2048, true, 355_871_744],
      ['24_16_2048', 50257, 2048, true, 1_315_723_264],
    ];
    for (const [size, V, P, tied, want] of cases) {
      const cfg = makeConfig({ size, vocabSize: V, nPositions: P, tied });
      expect(paramCount(cfg), `${size} V${V} P${P}`).toBe(want);
      expect(paramSpecs(cfg).reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0)).toBe(want);
    }
  });

  it('round-trips through an HF config.json object and validates', () => {
    const cfg: GPTConfig = makeConfig({ size: 'gpt2', vocabSize: 50257, nPositions: 1024, dropout: { attn: 0 } });
    expect(cfg.dropout).toEqual({ embd: 0.1, attn: 0, resid: 0.1 });
    const hf = toHfConfig(cfg);
    expect(hf).toMatchObject({ n_layer: 12, n_head: 12, n_embd: 768, n_positions: 1024, tie_word_embeddings: true, activation_function: 'gelu_new', layer_norm_epsilon: 1e-5 });
    expect(fromHfConfig(hf)).toEqual(cfg);
    // The Hub's gpt2 config.json omits tie_word_embeddings and uses n_ctx too.
    expect(fromHfConfig({ n_layer: 1, n_head: 1, n_embd: 4, vocab_size: 5, n_positions: 6, n_ctx: 6 }).tied).toBe(true);
    expect(fromHfConfig({ n_layer: 1, n_head: 1, n_embd: 4, vocab_size: 5, n_ctx: 7 } as never).nPositions).toBe(7);
    expect(() => fromHfConfig({ ...hf, activation_function: 'gelu' })).toThrow(/activation_function "gelu" is not supported/);
    expect(() => fromHfConfig({ ...hf, model_type: 'llama' })).toThrow(/model_type "llama"/);
    expect(() => fromHfConfig({ ...hf, n_layer: 0 })).toThrow(/"n_layer" must be a positive integer/);
    expect(() => validateModelConfig({ ...cfg, dropout: { ...cfg.dropout, resid: 1 } })).toThrow(/dropout.resid must be in \[0, 1\)/);
    expect(() => validateModelConfig({ ...cfg, layerNormEps: 0 })).toThrow(/layerNormEps/);
    expect(() => makeConfig({ size: '2_4_16', vocabSize: 0, nPositions: 4 })).toThrow(/vocabSize must be a positive integer/);
  });
});
