// Semantic stage 2 (src/train/semantic.ts) on tiny corpora written here: a gzipped C4 shard pair with
// a character tokenizer and a 1_2_16 model, and a DM-Math folder tree.
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GPT } from '../../src/model/gpt.ts';
import { C4_SCHEMA, type C4Config, c4ModelConfig, DEEPMIND_MATH_SCHEMA, type DeepmindMathConfig, loadConfig } from '../../src/train/config.ts';
import { PackedBatches, runSemantic, SequenceStore } from '../../src/train/semantic.ts';
import { useEngine } from '../helpers/gpu.ts';
import { metricRecords } from '../helpers/metrics.ts';
import { CHAR_TOKENIZER, document, writeC4, writeMath, tinyC4Config } from './fixtures.ts';

const engine = useEngine();
const tmp = mkdtempSync(join(tmpdir(), 'kindling-semantic-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const data = writeC4(join(tmp, 'c4'));
const tokenCache = { root: join(tmp, 'token-cache') };

const c4 = (over: Record<string, unknown> = {}): C4Config => tinyC4Config(data, over);

const lines = metricRecords;

describe('semantic stage 2: C4', () => {
  it('trains: the validation loss falls; perplexity = exp(loss); tokens seen = step · B · A · T', async () => {
    const e = await engine();
    const r = await runSemantic(e, { task: 'c4', values: c4() }, { runDir: join(tmp, 'run-a'), tokenizer: CHAR_TOKENIZER, tokenCache });
    expect(r.steps).toBe(8);
    expect(r.tokensPerStep).toBe(4 * 2 * 32);
    expect(r.evals.map((x) => x.step)).toEqual([0, 4, 8]);
    expect(r.evals.map((x) => x.tokens)).toEqual([0, 4 * 256, 8 * 256]);
    for (const ev of r.evals) expect(ev.perplexity).toBeCloseTo(Math.exp(ev.loss), 4);
    expect(r.evals[2]!.loss).toBeLessThan(r.evals[0]!.loss - 0.5);
    expect(r.lossCurve.map(([s]) => s)).toEqual([4, 8]);
  });

  it('validation ignores the pads: step-0 loss = masked mean over each unpadded document', async () => {
    const e = await engine();
    const values = c4({ max_steps: 1, eval_steps: 1, save_steps: 1 });
    const r = await runSemantic(e, { task: 'c4', values }, { runDir: join(tmp, 'run-pads'), tokenizer: CHAR_TOKENIZER, tokenCache });
    // The same initial model (seed 5), run on every validation document alone, without padding.
    const model = GPT.create(e, c4ModelConfig(values, CHAR_TOKENIZER.vocabSize), { seed: 5, decay: 'hf' });
    let sum = 0;
    let n = 0;
    let padded = 0;
    for (let i = 0; i < 6; i++) {
      const ids = CHAR_TOKENIZER.encode(document(1000 + i, 20 + ((1000 + i) % 5) * 4)) as number[];
      for (let s = 0; s < ids.length; s += 32) {
        const chunk = ids.slice(s, s + 32);
        padded += 32 - chunk.length;
        const T = chunk.length;
        const d = model.uploadBatch({ ids: Int32Array.from(chunk), targets: new Int32Array(T), lossMask: new Float32Array(T), batch: 1, seqLen: T }, { sparse: false });
        const logits = await model.forward(d).read();
        const V = CHAR_TOKENIZER.vocabSize;
        for (let p = 0; p + 1 < T; p++) {
          let mx = -Infinity;
          for (let v = 0; v < V; v++) mx = Math.max(mx, logits[p * V + v]!);
          let z = 0;
          for (let v = 0; v < V; v++) z += Math.exp(logits[p * V + v]! - mx);
          sum += mx + Math.log(z) - logits[p * V + chunk[p + 1]!]!;
          n++;
        }
      }
    }
    model.destroy();
    expect(padded).toBeGreaterThan(0); // the fixture does pad
    const first = lines(join(tmp, 'run-pads'))[0]!;
    expect(first.eval_tokens).toBe(n);
    expect(r.evals[0]!.loss).toBeCloseTo(sum / n, 4);
  });

  it('resumes exactly: from the step-4 checkpoint, the metrics equal the uninterrupted run', async () => {
    const e = await engine();
    const a = join(tmp, 'run-a');
    const b = join(tmp, 'run-b');
    cpSync(a, b, { recursive: true });
    rmSync(join(b, 'step-8'), { recursive: true });
    rmSync(join(b, '.lock'), { recursive: true, force: true });
    const r = await runSemantic(e, { task: 'c4', values: c4() }, { runDir: b, resume: true, tokenizer: CHAR_TOKENIZER, tokenCache });
    expect(r.resumedFrom).toBe(4);
    expect(lines(b)).toEqual(lines(a));
  });

  it('refuses a run directory that holds a run, and names the missing corpus', async () => {
    const e = await engine();
    await expect(runSemantic(e, { task: 'c4', values: c4() }, { runDir: join(tmp, 'run-a'), tokenizer: CHAR_TOKENIZER, tokenCache })).rejects.toThrow(/already holds a run/);
    // From a directory without data/corpora (a checkout may hold a built corpus).
    const cwd = process.cwd();
    process.chdir(mkdtempSync(join(tmp, 'cwd-')));
    try {
      await expect(
        runSemantic(e, { task: 'c4', values: c4({ train_data: 'data/corpora/c4/en/c4-train.*.json.gz' }) }, { runDir: join(tmp, 'run-missing'), tokenizer: CHAR_TOKENIZER, tokenCache }),
      ).rejects.toThrow(/kindling corpora build english/);
    } finally {
      process.chdir(cwd);
    }
  });
});

describe('packed batches', () => {
  it('are a pure function of (step, micro): every sequence once per epoch, labels shifted by one', async () => {
    async function* seqs() {
      for (let i = 0; i < 10; i++) {
        const ids = Int32Array.from({ length: 4 }, (_, p) => i * 4 + p);
        yield { ids, lossMask: Uint8Array.from([1, 1, i % 2, 0]), length: 4 };
      }
    }
    const store = await SequenceStore.collect(seqs(), 4, 64, 63);
    const a = new PackedBatches(store, { batchSize: 2, gradAccum: 1, seed: 3, order: 'permuted' });
    const b = new PackedBatches(store, { batchSize: 2, gradAccum: 1, seed: 3, order: 'permuted' });
    const epoch0 = [0, 1, 2, 3, 4].flatMap((s) => a.indices(s, 0));
    expect([...epoch0].sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(b.indices(3, 0)).toEqual(a.indices(3, 0)); // independent of call history
    const batch = store.batch([3]);
    expect([...batch.ids]).toEqual([12, 13, 14, 15]);
    expect([...batch.targets]).toEqual([13, 14, 15, 63]);
    expect([...batch.lossMask]).toEqual([1, 1, 0, 0]); // label mask of positions 1..3, then 0
    expect(batch.lossTokens).toBe(2);
  });
});

describe('semantic stage 2: DM-Math', () => {
  it('trains with answer-only loss and reports problem accuracy', async () => {
    const e = await engine();
    const root = writeMath(join(tmp, 'math'), 20);
    const values = loadConfig<DeepmindMathConfig>(DEEPMIND_MATH_SCHEMA, {
      overrides: {
        gpt2_size: '1_2_16',
        seq_length: 64,
        dropout: 0,
        train_batch_size: 4,
        valid_batch_size: 8,
        max_eval_steps: 1,
        max_train_steps: 6,
        save_checkpoint_steps: 3,
        logging_steps: 3,
        learning_rate: 1e-2,
        train_dir: root,
        validation_dir: join(root, 'interpolate'),
        output_dir: join(tmp, 'unused'),
      },
    }).values;
    const r = await runSemantic(e, { task: 'deepmind_math', values }, { runDir: join(tmp, 'math-run') });
    expect(r.evals.map((x) => x.step)).toEqual([0, 3, 6]);
    for (const ev of r.evals) {
      expect(ev.problemAccuracy).not.toBeNull();
      expect(ev.problemAccuracy!).toBeGreaterThanOrEqual(0);
      expect(ev.problemAccuracy!).toBeLessThanOrEqual(1);
    }
    expect(r.evals[2]!.loss).toBeLessThan(r.evals[0]!.loss);
    // Answer-only loss: the evaluated tokens are exactly the answer characters of the validation problems
    // packed into the (max_eval_steps + 1) · valid_batch_size = 16 sequences.
    const problems: { q: string; a: string }[] = [];
    const files = ['arithmetic__add', 'arithmetic__sub'].map((m) => readFileSync(join(root, 'interpolate', `${m}.txt`), 'utf8').trim().split('\n'));
    for (let i = 0; i < 20; i++) for (const f of files) problems.push({ q: f[2 * i]!, a: f[2 * i + 1]! });
    let seqs = 0;
    let used = 0;
    let answers = 0;
    let current = 0;
    for (const p of problems) {
      const len = p.q.length + p.a.length + 2;
      if (used + len > 64) {
        seqs++;
        used = 0;
        if (seqs === 16) break;
      }
      used += len;
      if (seqs < 16) {
        answers += p.a.length;
        current++;
      }
    }
    expect(current).toBeGreaterThan(0);
    expect(lines(join(tmp, 'math-run'))[0]!.eval_tokens).toBe(answers);
  });
});
