// Experiment files (src/experiments/schema.ts): validation with field paths, sweep expansion and
// naming, per-arm overrides, the presets.
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { selectArms } from '../../src/experiments/runner.ts';
import { armDirName, ExperimentError, loadExperiment, parseExperiment, planExperiment } from '../../src/experiments/schema.ts';

const BASE = `
name: t
task: condattendstream_2
seeds: [0, 1]
stage1: {task: dyck, k: 2, seq_length: 16, max_steps: 20, lr: 1e-3}
stage2: {max_steps: 20, eval_steps: 10}
arms:
  - {name: none, role: baseline}
  - {name: dyck, role: procedural}
  - {name: dyck-shuffled, role: shuffled}
`;

function error(text: string): string {
  try {
    parseExperiment(text);
  } catch (e) {
    expect(e).toBeInstanceOf(ExperimentError);
    return (e as Error).message;
  }
  throw new Error('expected an ExperimentError');
}

describe('experiment schema', () => {
  it('rejects bad values and unknown keys, naming the field path', () => {
    expect(error(BASE.replace('lr: 1e-3', 'lrr: 1e-3'))).toBe('stage1.lrr: unknown procedural key "lrr" (did you mean "lr"?)');
    expect(error(BASE.replace('{name: dyck, role: procedural}', '{name: dyck, role: procedural, stage1: {lr: -1}}'))).toBe('arms[1].stage1.lr: must be >= 0, got -1');
    expect(error(`${BASE}sweeps: {stage1.foo: [1]}`)).toMatch(/^sweeps\.stage1\.foo: unknown key/);
    expect(error(`${BASE}sweeps: {stage1.lr: [1e-3, -3]}`)).toBe('sweeps.stage1.lr[1]: must be >= 0, got -3');
    expect(error(`${BASE}sweeps: {stage3.lr: [1]}`)).toMatch(/^sweeps\.stage3\.lr: sweep keys are/);
    expect(error(BASE.replace('max_steps: 20, eval_steps', 'max_steps: 0, eval_steps'))).toBe('stage2.max_steps: must be >= 1, got 0');
    expect(error(BASE.replace('role: baseline', 'role: basline'))).toMatch(/^arms\[0\]\.role: "basline" is not one of baseline, procedural, shuffled/);
    expect(error(BASE.replace('seeds: [0, 1]', 'seedz: [0, 1]'))).toMatch(/^seedz: unknown key \(did you mean "seeds"\?\)/);
    expect(error(BASE.replace('{name: none, role: baseline}', '{name: none, role: baseline, stage1: {lr: 1}}'))).toBe('arms[0].stage1: a baseline arm has no stage 1');
    expect(error(BASE.replace('stage2: {', 'stage2: {output_dir: x, '))).toMatch(/^stage2\.output_dir: set by the runner/);
    expect(error(BASE.replace('stage1: {task: dyck,', 'stage1: {task: dyk,'))).toMatch(/^stage1\.task: "dyk" is not one of/);
    expect(error(BASE.replace('{name: dyck-shuffled, role: shuffled}', '{name: dyck, role: shuffled}'))).toBe('arms[2].name: "dyck" is used by an earlier arm');
    expect(error(BASE.replace('{name: dyck, role: procedural}', '{name: dyck, role: procedural, stage1: {shuffled: true}}'))).toMatch(/^arms\[1\]\.stage1\.shuffled: true trains the shuffled control/);
    // Cross-field rules of the resolved config name the arm.
    expect(error(BASE.replace('stage2: {max_steps: 20, eval_steps: 10}', 'stage2: {n_embd: 10, n_head: 4}'))).toMatch(/^arms\[0\] \(none\) stage 2: n_embd 10 is not divisible by n_head 4/);
  });

  it('expands sweeps × arms × seeds, names points, and gives baselines only the stage-2 points', () => {
    const exp = parseExperiment(`${BASE}sweeps: {stage1.lr: [1e-3, 3e-3], stage2.max_steps: [20, 40]}`);
    const plan = planExperiment(exp);
    // baseline: 2 stage-2 points × 2 seeds; each procedural arm: 4 points × 2 seeds.
    expect(plan).toHaveLength(4 + 8 + 8);
    expect(plan.map((r) => r.index)).toEqual(plan.map((_, i) => i));
    expect(new Set(plan.filter((r) => r.role === 'baseline').map((r) => r.arm))).toEqual(new Set(['none[stage2.max_steps=20]', 'none[stage2.max_steps=40]']));
    const d = plan.find((r) => r.arm === 'dyck[stage1.lr=0.003,stage2.max_steps=40]' && r.seed === 1)!;
    expect(d.dir).toBe('runs/dyck@stage1.lr=0.003,stage2.max_steps=40/seed-1');
    expect(d.stage1!.config.lr).toBe(0.003);
    expect(d.stage1!.config.seed).toBe(1);
    expect(d.stage2!.max_steps).toBe(40);
    expect(d.stage2!.seed).toBe(1);
    expect(d.point).toEqual({ 'stage1.lr': 0.003, 'stage2.max_steps': 40 });
    // Stage-1 settings do not depend on the stage-2 point: runs share one cached stage 1 per seed and lr.
    const keys = new Set(plan.filter((r) => r.baseArm === 'dyck').map((r) => r.stage1!.key));
    expect(keys.size).toBe(2 * 2);
    // The shuffled arm trains the shuffled control: a different checkpoint.
    const sh = plan.find((r) => r.baseArm === 'dyck-shuffled')!;
    expect(sh.stage1!.config.shuffled).toBe(true);
    expect(keys.has(sh.stage1!.key)).toBe(false);
    expect(armDirName('a[b=1,c=x y]')).toBe('a@b=1,c=x_y');
  });

  it('applies per-arm overrides: task, stage 1, stage 2 and transfer', () => {
    const exp = parseExperiment(`
name: t
seeds: [3]
stage1: {task: dyck, k: 2, max_steps: 20}
stage2: {max_steps: 20}
transfer: {components: [everything], embedding_init: average}
arms:
  - {name: none, role: baseline, task: condattendstream_2}
  - {name: eca, role: procedural, task: additionstream_10, stage1: {task: eca, seq_length: 8, lr: 0.01}, stage2: {max_steps: 30}, transfer: {components: [attn]}}
`);
    const [none, eca] = planExperiment(exp);
    expect(none!.task).toBe('condattendstream_2');
    expect(none!.stage1).toBeNull();
    expect(none!.stage2!.weights_to_be_transferred).toEqual([]);
    expect(none!.stage2!.pretrained_model_path).toBeNull();
    expect(eca!.task).toBe('additionstream_10');
    expect(eca!.stage2!.task).toBe('additionstream_10');
    expect(eca!.stage2!.max_steps).toBe(30);
    expect(eca!.stage2!.vocab_size).toBe(31);
    expect(eca!.stage2!.weights_to_be_transferred).toEqual(['attn']);
    expect(eca!.stage1!.config).toMatchObject({ task: 'eca', seq_length: 8, lr: 0.01, k: 2, max_steps: 20, seed: 3 });
  });

  it('transfer.layers: passed to stage 2 as transfer_layers, swept like any transfer key, bad values named', () => {
    const exp = parseExperiment(`${BASE.replace('{name: dyck, role: procedural}', '{name: dyck, role: procedural, transfer: {components: [attn], layers: [1]}}')}`);
    const plan = planExperiment(exp);
    expect(plan.find((r) => r.baseArm === 'dyck')!.stage2!.transfer_layers).toEqual(['1']);
    expect(plan.find((r) => r.baseArm === 'dyck-shuffled')!.stage2!.transfer_layers).toEqual([]);
    expect(plan.find((r) => r.baseArm === 'none')!.stage2!.transfer_layers).toEqual([]);
    const swept = planExperiment(parseExperiment(`${BASE}sweeps: {transfer.layers: [[0], [1]]}`));
    const dyck = swept.filter((r) => r.baseArm === 'dyck' && r.seed === 0);
    expect(dyck.map((r) => r.arm)).toEqual(['dyck[transfer.layers=0]', 'dyck[transfer.layers=1]']);
    expect(dyck.map((r) => r.stage2!.transfer_layers)).toEqual([['0'], ['1']]);
    expect(swept.filter((r) => r.baseArm === 'none')).toHaveLength(2); // baselines take no transfer point
    const withMix = planExperiment(parseExperiment(`${BASE}  - {name: mix, role: procedural, transfer: {mixture: {attn: dyck, ffn: dyck}}}\nsweeps: {transfer.layers: [[0], [1]]}`));
    expect(withMix.filter((r) => r.baseArm === 'mix').map((r) => r.arm)).toEqual(['mix', 'mix']); // nor do mixtures: one run per seed
    expect(error(BASE.replace('{name: dyck, role: procedural}', '{name: dyck, role: procedural, transfer: {layers: [0, -1]}}'))).toBe(
      'arms[1].transfer.layers[1]: expected a block index (an integer from 0), got -1',
    );
    expect(error(BASE.replace('{name: dyck, role: procedural}', '{name: dyck, role: procedural, transfer: {layers: [1, 1]}}'))).toBe('arms[1].transfer.layers: [1,1] lists a block twice');
    expect(error(BASE.replace('{name: dyck, role: procedural}', '{name: dyck, role: procedural, transfer: {layers: []}}'))).toMatch(/^arms\[1\]\.transfer\.layers: expected a non-empty list/);
    expect(error(BASE.replace('{name: dyck, role: procedural}', '{name: dyck, role: procedural, transfer: {layers: [2]}}'))).toMatch(
      /^arms\[1\] \(dyck\) stage 2: transfer_layers: "2" is not a block of the model \(integers 0\.\.1\)/,
    );
    expect(error(BASE.replace('stage2: {', 'stage2: {transfer_layers: [0], '))).toMatch(/^stage2\.transfer_layers: set by the runner \(use transfer\.layers\)/);
    expect(error(`${BASE}  - {name: mix, role: procedural, transfer: {mixture: {attn: dyck, ffn: dyck}, layers: [0]}}\n`)).toMatch(/^arms\[3\]\.transfer\.layers: not implemented for weight mixtures/);
  });

  it('transfer.scale: passed to stage 2 as transfer_scale NAME=FACTOR entries; not swept, not semantic, bad values named', () => {
    const arm = '{name: dyck, role: procedural, transfer: {components: [attn], layers: [1], scale: {h.1.attn.c_proj.weight: -1, h.1.attn.c_attn: 0.5}}}';
    const plan = planExperiment(parseExperiment(BASE.replace('{name: dyck, role: procedural}', arm)));
    expect(plan.find((r) => r.baseArm === 'dyck')!.stage2!.transfer_scale).toEqual(['h.1.attn.c_proj.weight=-1', 'h.1.attn.c_attn=0.5']);
    expect(plan.find((r) => r.baseArm === 'dyck-shuffled')!.stage2!.transfer_scale).toEqual([]);
    expect(plan.find((r) => r.baseArm === 'none')!.stage2!.transfer_scale).toEqual([]);
    const bad = (scale: string) => error(BASE.replace('{name: dyck, role: procedural}', `{name: dyck, role: procedural, transfer: {scale: ${scale}}}`));
    expect(bad('{c_proj: yes}')).toBe('arms[1].transfer.scale.c_proj: expected a finite number, got "yes"');
    expect(bad('{}')).toMatch(/^arms\[1\]\.transfer\.scale: expected a mapping of parameter-name substrings to factors/);
    expect(bad('[c_proj]')).toMatch(/^arms\[1\]\.transfer\.scale: expected a mapping/);
    const sliced = planExperiment(parseExperiment(BASE.replace('{name: dyck, role: procedural}', `{name: dyck, role: procedural, transfer: {components: [attn], scale: {'h.1.attn.c_attn[16:32]': -1}}}`)));
    expect(sliced.find((r) => r.baseArm === 'dyck')!.stage2!.transfer_scale).toEqual(['h.1.attn.c_attn[16:32]=-1']);
    expect(bad("{'c_attn[9:3]': -1}")).toBe('arms[1].transfer.scale: "c_attn[9:3]=-1": the range [9:3] is empty (START must be below END)');
    expect(bad("{'c=proj': -1}")).toMatch(/^arms\[1\]\.transfer\.scale: "c=proj=-1" is not NAME=FACTOR/);
    expect(bad("{'': -1}")).toMatch(/^arms\[1\]\.transfer\.scale: "=-1" is not NAME=FACTOR/);
    expect(bad("{'c_attn[a:3]': -1}")).toMatch(/^arms\[1\]\.transfer\.scale: "c_attn\[a:3\]=-1" is not NAME=FACTOR or NAME\[START:END\]=FACTOR/);
    expect(error(`${BASE}sweeps: {transfer.scale: [{c_proj: 1}, {c_proj: -1}]}`)).toMatch(/^sweeps\.transfer\.scale: unknown key/);
    expect(error(BASE.replace('stage2: {', 'stage2: {transfer_scale: [c_proj=-1], '))).toMatch(/^stage2\.transfer_scale: set by the runner \(use transfer\.scale\)/);
  });

  it('resolves weight-mixture parts to the referenced arms\' stage 1', () => {
    const exp = parseExperiment(`
name: mix
task: condattendstream_2
stage1: {max_steps: 20}
arms:
  - {name: set, role: procedural, stage1: {task: set}}
  - {name: eca, role: procedural, stage1: {task: eca}}
  - {name: set-attn+eca-mlp, role: procedural, transfer: {mixture: {attn: set, ffn: eca}}}
`);
    const plan = planExperiment(exp);
    const mix = plan.find((r) => r.baseArm === 'set-attn+eca-mlp')!;
    expect(mix.stage1).toBeNull();
    expect('stage1' in mix.mixture!.attn && mix.mixture!.attn.stage1.key).toBe(plan[0]!.stage1!.key);
    expect('stage1' in mix.mixture!.ffn && mix.mixture!.ffn.stage1.key).toBe(plan[1]!.stage1!.key);
    expect(mix.mixture!.spec.layer_norm).toBe('ffn');
    expect(() => parseExperiment(exp ? `name: m\ntask: condattendstream_2\narms:\n  - {name: x, role: procedural, transfer: {mixture: {attn: nope, ffn: nope}}}\n` : '')).toThrow(
      'arms[0].transfer.mixture.attn: no arm named "nope" (arms: x)',
    );
  });

  it('loads the presets by name', () => {
    for (const name of ['quick', 'paper']) {
      const { experiment } = loadExperiment(name);
      expect(experiment.name.length).toBeGreaterThan(0);
      expect(planExperiment(experiment).length).toBeGreaterThan(0);
    }
    const paper = planExperiment(loadExperiment('paper').experiment);
    expect(new Set(paper.map((r) => r.task))).toEqual(new Set(['condattendstream_30', 'additionstream_10', 'multiplication_5']));
    expect(() => loadExperiment('nope')).toThrow(/not a preset \(presets: quick, paper, semantic-quick\)/);
  });

  it('the study files of docs/results.md (docs/studies/*.yaml) load and plan, each named as its file', () => {
    const dir = 'docs/studies';
    const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));
    expect(files.length).toBeGreaterThan(0);
    const results = readFileSync('docs/results.md', 'utf8');
    for (const f of files) {
      const { experiment } = loadExperiment(`${dir}/${f}`);
      expect(experiment.name, f).toBe(f.replace(/\.yaml$/, ''));
      expect(planExperiment(experiment).length, f).toBeGreaterThan(0);
      expect(results, `docs/results.md names ${f}`).toContain(`\`${experiment.name}\``);
    }
  });

  it('--arms selects runs by arm name with * wildcards, and names the arms when a pattern matches none', () => {
    const { experiment } = loadExperiment('paper');
    const plan = planExperiment(experiment);
    const needle = selectArms(plan, ['needle-*'], experiment);
    expect(needle.length).toBe(15); // 5 arms × 3 seeds
    expect(new Set(needle.map((r) => r.arm))).toEqual(new Set(['needle-none', 'needle-dyck', 'needle-dyck-shuffled', 'needle-dyck-attn', 'needle-dyck-attn-shuffled']));
    const two = selectArms(plan, ['needle-none', 'addition-eca'], experiment);
    expect(two.length).toBe(6);
    expect(new Set(two.map((r) => r.arm))).toEqual(new Set(['needle-none', 'addition-eca']));
    expect(selectArms(plan, null, experiment).length).toBe(plan.length);
    expect(() => selectArms(plan, ['needle.dyck'], experiment)).toThrow(/"needle\.dyck" matches no arm of paper \(arms: needle-none, /);
  });
});
