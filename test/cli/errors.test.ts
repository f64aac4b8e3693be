// Bad inputs through the real `kindling` process (bin/kindling.js): each case checks the exit status,
// the one-line message (the path or option named, no stack), that it ends within seconds, and, where
// a file could be clobbered, that it was not.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { saveCheckpoint } from '../../src/io/checkpoint.ts';
import { makeConfig, toHfConfig } from '../../src/model/config.ts';
import { paramShapes } from '../../src/model/hf_names.ts';
import { readCurves } from '../../src/train/downstream.ts';
import { JsonlError, JsonlWriter, parseJsonl } from '../../src/util/jsonl.ts';
import { batchFromIndices } from '../../src/data/procedural/batch.ts';
import { createTask } from '../../src/data/procedural/registry.ts';
import { GPT } from '../../src/model/gpt.ts';
import { Trainer } from '../../src/train/trainer.ts';
import { useEngine } from '../helpers/gpu.ts';

const engine = useEngine();

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin/kindling.js');
const tmp = mkdtempSync(join(tmpdir(), 'kindling-errors-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const HAS_DEV_FULL = existsSync('/dev/full');

interface Result {
  status: number | null;
  stdout: string;
  /** stderr without Dawn's adapter-limit warnings. */
  stderr: string;
  ms: number;
}

function kindling(args: string[], opts: { env?: Record<string, string>; stdoutFile?: string } = {}): Result {
  const t0 = Date.now();
  const r = opts.stdoutFile
    ? spawnSync('/bin/sh', ['-c', `"${process.execPath}" "${BIN}" "$@" > "${opts.stdoutFile}"`, 'sh', ...args], { cwd: tmp, encoding: 'utf8', env: { ...process.env, ...opts.env }, timeout: 60_000 })
    : spawnSync(process.execPath, [BIN, ...args], { cwd: tmp, encoding: 'utf8', env: { ...process.env, ...opts.env }, timeout: 60_000 });
  const stderr = r.stderr
    .split('\n')
    .filter((l) => !/^Warning: maxDynamic/.test(l))
    .join('\n');
  return { status: r.status, stdout: r.stdout, stderr, ms: Date.now() - t0 };
}

/** Exit `status`, stderr exactly one `kindling <cmd>: …` line (plus the --help hint for exit 2) holding every piece, no stack. */
function expectFailure(r: Result, status: number, cmd: string, pieces: string[]): void {
  expect(r.status, r.stderr).toBe(status);
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines[0]).toMatch(new RegExp(`^kindling ${cmd}: `));
  for (const p of pieces) expect(lines[0]).toContain(p);
  expect(lines.length, r.stderr).toBeLessThanOrEqual(2);
  if (lines.length === 2) expect(lines[1]).toMatch(/^\(see kindling /);
  expect(r.stderr).not.toMatch(/\n\s+at /);
  expect(r.ms).toBeLessThan(30_000);
}

// A tiny tied model: vocabulary 11, context 8.
const cfg = makeConfig({ size: '1_2_16', vocabSize: 11, nPositions: 8, tied: true, dropout: 0 });
const CK = join(tmp, 'ck');
const GOOD = join(tmp, 'good.jsonl');
beforeAll(() => {
  const shapes = paramShapes(cfg);
  const params = new Map([...shapes].map(([n, s]) => [n, Float32Array.from({ length: s.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i))]));
  saveCheckpoint(CK, { config: cfg, params, shapes, step: 0, hfConfig: toHfConfig(cfg) }, { fsync: false });
  writeFileSync(GOOD, '[1, 2, 3]\n{"ids": [4, 5]}\n');
});

describe('the top-level handler (src/cli/main.ts runCli)', () => {
  it('an error of a command: one line, exit 1; the stack only with KINDLING_DEBUG=1', () => {
    const dir = join(tmp, 'exp-bad');
    mkdirSync(dir);
    writeFileSync(join(dir, 'experiment.json'), '{"experiment": ');
    const r = kindling(['experiment', 'report', dir]);
    expectFailure(r, 1, 'experiment', [`${dir}/experiment.json: not valid JSON`]);
    const d = kindling(['experiment', 'report', dir], { env: { KINDLING_DEBUG: '1' } });
    expect(d.status).toBe(1);
    expect(d.stderr).toMatch(/^kindling experiment: .*not valid JSON/);
    expect(d.stderr).toMatch(/\n\s+at readJson /);
  }, 60_000);

  it('an exception that escapes the promise chain: one line, exit 1, not an uncaught-exception stack', () => {
    const script = `import { runCli } from './src/cli/main.ts'; setImmediate(() => { throw new Error('escaped'); }); await runCli(['data', 'list']);`;
    const t0 = Date.now();
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    expectFailure({ status: r.status, stdout: r.stdout, stderr: r.stderr, ms: Date.now() - t0 }, 1, 'data', ['escaped']);
    const rej = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script.replace("throw new Error('escaped')", "void Promise.reject(new Error('rejected'))")], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(rej.status).toBe(1);
    expect(rej.stderr.trimEnd()).toBe('kindling data: rejected');
  }, 60_000);
});

describe('kindling train --config', () => {
  it('a directory: exit 2 naming --config and the path', () => {
    expectFailure(kindling(['train', '--task', 'sort', '--config', tmp]), 2, 'train', [`--config: ${tmp} is a directory, expected a file`]);
  }, 60_000);
});

describe('kindling score: paths, JSONL lines, checksums', () => {
  it('a missing checkpoint path says that it does not exist (not a missing config.json)', () => {
    const r = kindling(['score', '--checkpoint', join(tmp, 'no-such-ck'), '--input', GOOD]);
    expectFailure(r, 2, 'score', [`--checkpoint: ${join(tmp, 'no-such-ck')} does not exist`]);
    expect(r.stderr).not.toContain('config.json');
    expectFailure(kindling(['score', '--checkpoint', GOOD, '--input', GOOD]), 2, 'score', [`--checkpoint: ${GOOD} is a file, expected a directory`]);
  }, 60_000);

  it('--input missing or a directory: exit 2 naming --input', () => {
    expectFailure(kindling(['score', '--checkpoint', CK, '--input', join(tmp, 'nope.jsonl')]), 2, 'score', [`--input: ${join(tmp, 'nope.jsonl')} does not exist`]);
    expectFailure(kindling(['score', '--checkpoint', CK, '--input', tmp]), 2, 'score', [`--input: ${tmp} is a directory, expected a file`]);
  }, 60_000);

  it('a malformed line names the file and the line number, and an existing --output is left as it was', () => {
    const bad = join(tmp, 'bad.jsonl');
    writeFileSync(bad, '[1, 2]\n\n{ids: [3]}\n');
    const out = join(tmp, 'kept.jsonl');
    writeFileSync(out, 'precious\n');
    expectFailure(kindling(['score', '--checkpoint', CK, '--input', bad, '--output', out]), 1, 'score', [`${bad}:3: not valid JSON`]);
    expect(readFileSync(out, 'utf8')).toBe('precious\n');
    const notIds = join(tmp, 'not-ids.jsonl');
    writeFileSync(notIds, '[1, 2]\n[1, "a"]\n');
    expectFailure(kindling(['score', '--checkpoint', CK, '--input', notIds, '--output', out]), 1, 'score', [`${notIds}:2: expected a JSON array of integer token ids`]);
    const far = join(tmp, 'far.jsonl');
    writeFileSync(far, '[1, 2]\n[1, 11]\n');
    expectFailure(kindling(['score', '--checkpoint', CK, '--input', far, '--output', out]), 1, 'score', [`${far}:2: token 11 is outside the vocabulary (0..10)`]);
    expect(readFileSync(out, 'utf8')).toBe('precious\n');
  }, 60_000);

  it('an --output that cannot be opened: exit 2 naming --output, before any device work', () => {
    const missingDir = join(tmp, 'no-dir', 'out.jsonl');
    expectFailure(kindling(['score', '--checkpoint', CK, '--input', GOOD, '--output', missingDir]), 2, 'score', [`--output: cannot write ${missingDir}: ENOENT`]);
    expectFailure(kindling(['score', '--checkpoint', CK, '--input', GOOD, '--output', tmp]), 2, 'score', [`--output: cannot write ${tmp}: it is a directory`]);
  }, 60_000);

  it.runIf(HAS_DEV_FULL)('--output /dev/full: exit 1 with ENOSPC named', () => {
    expectFailure(kindling(['score', '--checkpoint', CK, '--input', GOOD, '--output', '/dev/full']), 1, 'score', ['cannot write /dev/full: ENOSPC']);
    expectFailure(kindling(['score', '--checkpoint', CK, '--input', GOOD], { stdoutFile: '/dev/full' }), 1, 'score', ['cannot write stdout: ENOSPC']);
  }, 60_000);

  it('a checkpoint without kindling.json is scored with a warning; a corrupted one with kindling.json is refused', () => {
    const ok = kindling(['score', '--checkpoint', CK, '--input', GOOD]);
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stderr.trim()).toBe('');
    const rows = ok.stdout.trim().split('\n').map((l) => JSON.parse(l) as { tokens: number });
    expect(rows.map((r) => r.tokens)).toEqual([2, 1]);

    const bare = join(tmp, 'ck-no-sidecar');
    mkdirSync(bare);
    for (const f of ['model.safetensors', 'config.json']) writeFileSync(join(bare, f), readFileSync(join(CK, f)));
    const w = kindling(['score', '--checkpoint', bare, '--input', GOOD]);
    expect(w.status, w.stderr).toBe(0);
    expect(w.stderr.trim()).toBe(`warning: ${bare} has no kindling.json: reading it as a Hugging Face GPT-2 directory, without checksums to verify its files (a kindling checkpoint without kindling.json is an interrupted save)`);
    expect(w.stdout).toBe(ok.stdout);

    const torn = join(tmp, 'ck-torn');
    mkdirSync(torn);
    for (const f of readdirSync(CK)) writeFileSync(join(torn, f), readFileSync(join(CK, f)));
    const model = readFileSync(join(torn, 'model.safetensors'));
    model[model.length - 1] ^= 0xff;
    writeFileSync(join(torn, 'model.safetensors'), model);
    expectFailure(kindling(['score', '--checkpoint', torn, '--input', GOOD]), 1, 'score', [`${torn}/model.safetensors is corrupted: sha256`]);
  }, 90_000);
});

describe.runIf(HAS_DEV_FULL)('writes to a full disk (/dev/full) fail with ENOSPC named, exit 1', () => {
  it('kindling data export --output /dev/full (json and bin) and > /dev/full', () => {
    for (const extra of [[], ['--format', 'bin'], ['--count', '20000']]) {
      expectFailure(kindling(['data', 'export', 'sort', '--seq-length', '8', ...extra, '--output', '/dev/full']), 1, 'data', ['cannot write /dev/full: ENOSPC']);
    }
    expectFailure(kindling(['data', 'export', 'sort', '--seq-length', '8'], { stdoutFile: '/dev/full' }), 1, 'data', ['cannot write stdout: ENOSPC']);
    expectFailure(kindling(['data', 'preview', 'sort'], { stdoutFile: '/dev/full' }), 1, 'data', ['cannot write stdout: ENOSPC']);
  }, 90_000);

  it('a training run whose metrics.jsonl is on a full disk stops naming the file and ENOSPC', async () => {
    // Through the trainer in-process: a real run directory holding metrics.jsonl is refused as an
    // existing run (docs/reliability.md "Run directories"), so the full disk is the metrics path itself.
    const e = await engine();
    const task = createTask('sort', { seqLength: 4, vocabSize: 8, seed: 1 });
    const model = GPT.create(e, makeConfig({ size: '1_2_16', vocabSize: task.vocabSize, nPositions: task.contextLength }), { seed: 1 });
    const t = new Trainer({
      model,
      data: { batch: (s) => batchFromIndices(task, [4 * s, 4 * s + 1, 4 * s + 2, 4 * s + 3]) },
      maxSteps: 2,
      lr: () => 1e-3,
      logEvery: 1,
      metricsPath: '/dev/full',
      progress: false,
    });
    await expect(t.run()).rejects.toThrow(/^training stopped at step 1: cannot write \/dev\/full: ENOSPC.*no checkpoint was written/s);
    t.destroy();
    model.destroy();
  });

  it('JsonlWriter names the file and ENOSPC', () => {
    expect(() => new JsonlWriter('/dev/full').write({ step: 1 })).toThrow('cannot write /dev/full: ENOSPC');
  });
});

describe('JSONL readers name the file and line', () => {
  it('parseJsonl: line numbers count blank lines; a cut last line is dropped only when asked', () => {
    expect(parseJsonl('{"a":1}\n\n[2]\n', 'f.jsonl')).toEqual([
      { line: 1, value: { a: 1 } },
      { line: 3, value: [2] },
    ]);
    expect(() => parseJsonl('{"a":1}\n\n{"a":\n[3]\n', 'f.jsonl')).toThrow(JsonlError);
    expect(() => parseJsonl('{"a":1}\n\n{"a":\n[3]\n', 'f.jsonl')).toThrow(/^f\.jsonl:3: not valid JSON/);
    expect(parseJsonl('{"a":1}\n{"a":', 'f.jsonl', { skipBadLast: true })).toEqual([{ line: 1, value: { a: 1 } }]);
    expect(() => parseJsonl('{"a":1}\n{"a":\n', 'f.jsonl', { skipBadLast: true })).toThrow('f.jsonl:2: not valid JSON');
  });

  it('readCurves (a run directory metrics.jsonl)', () => {
    const m = join(tmp, 'metrics.jsonl');
    writeFileSync(m, '{"step":1,"loss":2}\n{"step":2,"eval_accuracy":0.5,"eval_loss":1}\n{"step":3,"loss":\n{"step":4,"loss":1}\n');
    expect(() => readCurves(m)).toThrow(`${m}:3: not valid JSON`);
    writeFileSync(m, '{"step":1,"loss":2}\n{"step":2,"eval_accuracy":0.5,"eval_loss":1}\n{"step":3,"lo');
    expect(readCurves(m)).toEqual({ curve: [[2, 0.5]], lossCurve: [[1, 2]], evalLossCurve: [[2, 1]] });
  });
});

describe('other commands with bad inputs (what a new user might type)', () => {
  it('data, experiment, device, start: non-zero with the cause named, or help with exit 0', () => {
    expectFailure(kindling(['data', 'preview', 'sortt']), 2, 'data', ["unknown task 'sortt'"]);
    expectFailure(kindling(['data', 'export', 'sort', '--count', 'many']), 2, 'data', ['--count: expected an integer, got "many"']);
    expectFailure(kindling(['data', 'export', 'sort', '--output', tmp]), 2, 'data', [`cannot write ${tmp}: EISDIR`]);
    expectFailure(kindling(['data', 'export', 'sort', '--outptu', 'x']), 2, 'data', ['--outptu']);
    expectFailure(kindling(['experiment', join(tmp, 'none.yaml')]), 2, 'experiment', [`${join(tmp, 'none.yaml')}: no such file, and not a preset`]);
    expectFailure(kindling(['experiment', tmp]), 2, 'experiment', [`${tmp} is a directory, expected a file`]);
    expectFailure(kindling(['experiment', 'quick', '--jobs', 'two']), 2, 'experiment', ['--jobs: expected an integer, got "two"']);
    expectFailure(kindling(['experiment', 'report', join(tmp, 'none')]), 2, 'experiment report', [`${join(tmp, 'none')} holds no experiment`]);
    expectFailure(kindling(['device', '--verbose']), 2, 'device', ['unknown option --verbose']);
    const h = kindling(['start', '--help']);
    expect(h.status).toBe(0);
    expect(h.stdout).toMatch(/^usage: kindling start/);
  }, 120_000);
});
