// The training token cache of semantic stage 2 (src/train/semantic.ts cachedTrainingSequences over
// src/data/tokenizers/cache.ts): the packed stream against the documents, shard-backed batches against
// the in-memory ones, cache hits, the `tokenizer` key, and resuming over (and refusing) a cache.
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { packConcatenated } from '../../src/data/corpora/pack.ts';
import { c4Documents } from '../../src/data/corpora/text.ts';
import { gpt2TokenizerJson } from '../../src/data/tokenizers/gpt2_json.ts';
import { MANIFEST_FILE, ShardSetWriter, TokenShards } from '../../src/data/tokenizers/shards.ts';
import { loadCheckpoint } from '../../src/io/checkpoint.ts';
import { C4_SCHEMA, type C4Config, CODEPARROT_SCHEMA, type CodeparrotConfig, ConfigError, loadConfig } from '../../src/train/config.ts';
import { cachedTrainingSequences, checkSemanticInputs, PackedBatches, runSemantic, semanticTokenizer, SequenceStore } from '../../src/train/semantic.ts';
import { tokenCacheRoot } from '../../src/data/tokenizers/cache.ts';
import { useEngine } from '../helpers/gpu.ts';
import { metricRecords } from '../helpers/metrics.ts';
import { CHAR_TOKENIZER, document, writeC4, tinyC4Config } from './fixtures.ts';

const engine = useEngine();
const tmp = mkdtempSync(join(tmpdir(), 'kindling-token-cache-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const data = writeC4(join(tmp, 'c4'));
const T = 32;
const words = (i: number) => 20 + (i % 5) * 4; // writeC4's default document lengths

const c4 = (over: Record<string, unknown> = {}): C4Config => tinyC4Config(data, over, T);

const equalBatch = (a: Record<string, unknown>, b: Record<string, unknown>) => {
  for (const k of ['ids', 'targets', 'lossMask', 'attentionMask', 'labels']) expect(Array.from(a[k] as ArrayLike<number>), k).toEqual(Array.from(b[k] as ArrayLike<number>));
  expect(a.lossTokens).toBe(b.lossTokens);
};

describe('token cache: C4', () => {
  it('holds the §7.1 stream (documents concatenated, no separator, remainder dropped) and is reused', async () => {
    const root = join(tmp, 'cache-c4');
    const logs: string[] = [];
    const seqs = await cachedTrainingSequences({ task: 'c4', values: c4() }, CHAR_TOKENIZER, { root, tokensPerShard: 50, log: (l) => logs.push(l) });
    // The reference: the 40 training documents' text, one id per character, concatenated.
    const stream = Array.from({ length: 40 }, (_, i) => CHAR_TOKENIZER.encode(document(i, words(i))) as number[]).flat();
    const N = Math.floor(stream.length / T);
    expect(seqs.count).toBe(N);
    expect(seqs.shards.total).toBe(N * T);
    expect(seqs.shards.files.length).toBe(Math.ceil((N * T) / 50)); // several shards: rows cross their boundaries
    expect([...seqs.shards.read(0, N * T)]).toEqual(stream.slice(0, N * T));
    const dir = seqs.shards.dir;
    expect(logs).toEqual([`token cache: miss ${dir}`]);
    seqs.close();

    const again = await cachedTrainingSequences({ task: 'c4', values: c4() }, CHAR_TOKENIZER, { root, tokensPerShard: 50, log: (l) => logs.push(l) });
    expect(logs[1]).toBe(`token cache: hit ${dir}`);
    expect(again.count).toBe(N);
    again.close();
    // Another recipe (context) is another cache.
    const other = await cachedTrainingSequences({ task: 'c4', values: c4({ n_positions: 16 }) }, CHAR_TOKENIZER, { root, log: (l) => logs.push(l) });
    expect(other.shards.dir).not.toBe(dir);
    expect(logs[2]).toMatch(/^token cache: miss /);
    other.close();
    expect(readdirSync(root).sort()).toEqual([dir, other.shards.dir].map((d) => d.slice(root.length + 1)).sort()); // no partial directories left
  });

  it('shard-backed batches equal the in-memory ones, epoch after epoch', async () => {
    const seqs = await cachedTrainingSequences({ task: 'c4', values: c4() }, CHAR_TOKENIZER, { root: join(tmp, 'cache-c4'), tokensPerShard: 50 });
    const store = await SequenceStore.collect(packConcatenated(c4Documents(data.train, { maxDocuments: 100000 }), CHAR_TOKENIZER.encode, T), T, 32, 0);
    expect(seqs.count).toBe(store.count);
    const o = { batchSize: 4, gradAccum: 2, seed: 5, order: 'permuted' as const };
    const disk = new PackedBatches(seqs, o);
    const mem = new PackedBatches(store, o);
    const steps = Math.ceil((2 * store.count) / 8) + 1; // past the second epoch
    for (let s = 0; s < steps; s++) for (let m = 0; m < 2; m++) equalBatch(disk.batch(s, m) as never, mem.batch(s, m) as never);
    seqs.close();
  });

  it('a checkpoint records the cache and the cursor of the next sequence; a resume reads on from it; a changed cache is refused', async () => {
    const e = await engine();
    const root = join(tmp, 'cache-run');
    const tokenCache = { root, tokensPerShard: 40 };
    const a = join(tmp, 'run-a');
    await runSemantic(e, { task: 'c4', values: c4() }, { runDir: a, tokenizer: CHAR_TOKENIZER, tokenCache });
    const src = loadCheckpoint(join(a, 'step-4')).data as { source: { next_sequence: number; cache: { dir: string; tokenizer: string; tokens: number; cursor: unknown } } };
    const [dir] = readdirSync(root).map((n) => join(root, n));
    const store = await SequenceStore.collect(packConcatenated(c4Documents(data.train, { maxDocuments: 100000 }), CHAR_TOKENIZER.encode, T), T, 32, 0);
    // Step 4 starts at micro-batch 8: its first row is sequence idx, token idx·T, shard ⌊idx·T / 40⌋.
    const idx = new PackedBatches(store, { batchSize: 4, gradAccum: 2, seed: 5, order: 'permuted' }).indices(4, 0)[0]!;
    expect(src.source.next_sequence).toBe(4 * 2 * 4);
    expect(src.source.cache).toEqual({ dir, tokenizer: 'test-char', tokens: store.count * T, cursor: { shard: Math.floor((idx * T) / 40), offset: (idx * T) % 40 } });

    const resumeFrom4 = (name: string) => {
      const b = join(tmp, name);
      cpSync(a, b, { recursive: true });
      rmSync(join(b, 'step-8'), { recursive: true });
      rmSync(join(b, '.lock'), { recursive: true, force: true });
      return b;
    };
    const lines = metricRecords;
    const b = resumeFrom4('run-b');
    const logs: string[] = [];
    await runSemantic(e, { task: 'c4', values: c4() }, { runDir: b, resume: true, tokenizer: CHAR_TOKENIZER, tokenCache, log: (l) => logs.push(l) });
    expect(logs).toContain(`token cache: hit ${dir}`);
    expect(lines(b)).toEqual(lines(a));

    // Tampered: the same key, one sequence fewer.
    const s = TokenShards.open(dir!);
    const tokens = s.read(0, s.total - T);
    const manifest = s.manifest;
    s.close();
    rmSync(dir!, { recursive: true });
    const w = new ShardSetWriter(dir!, { tokenizer: manifest.tokenizer, tokensPerShard: 40, meta: manifest.meta });
    w.append(tokens);
    w.close();
    await expect(runSemantic(e, { task: 'c4', values: c4() }, { runDir: resumeFrom4('run-c'), resume: true, tokenizer: CHAR_TOKENIZER, tokenCache })).rejects.toThrow(
      /^data\.source\.cache\.tokens: the checkpoint was trained on a token cache of \d+ tokens/,
    );
    // Tampered tokenizer name in the manifest.
    const m = JSON.parse(readFileSync(join(dir!, MANIFEST_FILE), 'utf8'));
    m.tokenizer.name = 'gpt2';
    writeFileSync(join(dir!, MANIFEST_FILE), JSON.stringify(m));
    await expect(runSemantic(e, { task: 'c4', values: c4() }, { runDir: resumeFrom4('run-d'), resume: true, tokenizer: CHAR_TOKENIZER, tokenCache })).rejects.toThrow(
      /"tokenizer\.name" is "gpt2", the run's tokenizer has "test-char"/,
    );
  }, 120_000);
});

describe('token cache: CodeParrot', () => {
  it('holds the §7.2 stream (end-of-text after every file), at most the sequences the run consumes', async () => {
    const dir = join(tmp, 'cp');
    mkdirSync(dir, { recursive: true });
    const docs = Array.from({ length: 30 }, (_, i) => document(i, words(i)));
    writeFileSync(join(dir, 'train.jsonl'), docs.map((d, i) => JSON.stringify({ content: d, repo_name: `r${i}`, path: 'a.py' })).join('\n') + '\n');
    const cp = (over: Record<string, unknown>) =>
      loadConfig<CodeparrotConfig>(CODEPARROT_SCHEMA, {
        overrides: { gpt2_size: '1_2_16', seq_length: 16, train_batch_size: 2, gradient_accumulation_steps: 1, output_dir: join(tmp, 'cp-out'), dataset_name_train: join(dir, 'train.jsonl'), dataset_name_valid: join(dir, 'train.jsonl'), ...over },
      }).values;
    const stream = docs.flatMap((d) => [...(CHAR_TOKENIZER.encode(d) as number[]), CHAR_TOKENIZER.eosId]);
    const all = Math.floor(stream.length / 16);
    const root = join(tmp, 'cache-cp');
    const big = await cachedTrainingSequences({ task: 'codeparrot', values: cp({ max_train_steps: 1000 }) }, CHAR_TOKENIZER, { root });
    expect(big.count).toBe(all);
    expect([...big.shards.read(0, all * 16)]).toEqual(stream.slice(0, all * 16));
    big.close();
    const small = await cachedTrainingSequences({ task: 'codeparrot', values: cp({ max_train_steps: 5 }) }, CHAR_TOKENIZER, { root });
    expect(small.count).toBe(5 * 2);
    expect([...small.shards.read(0, 10 * 16)]).toEqual(stream.slice(0, 10 * 16));
    small.close();
  });
});

describe('the tokenizer key', () => {
  it('a GPT-2 tokenizer.json gives the tokens of `gpt2`; its vocabulary and end-of-text come from the file', async () => {
    const file = join(tmp, 'gpt2-tokenizer.json');
    writeFileSync(file, JSON.stringify(gpt2TokenizerJson()));
    const viaJson = semanticTokenizer({ task: 'c4', values: c4({ tokenizer: file, n_positions: 16 }) });
    expect(viaJson).toMatchObject({ name: `hf:${file}`, vocabSize: 50257, eosId: 50256 });
    expect(semanticTokenizer({ task: 'c4', values: c4({ n_positions: 16 }) })).toMatchObject({ name: 'gpt2', vocabSize: 50257, eosId: 50256 });
    const root = join(tmp, 'cache-gpt2');
    const a = await cachedTrainingSequences({ task: 'c4', values: c4({ n_positions: 16 }) }, semanticTokenizer({ task: 'c4', values: c4({ n_positions: 16 }) }), { root });
    const b = await cachedTrainingSequences({ task: 'c4', values: c4({ tokenizer: file, n_positions: 16 }) }, viaJson, { root });
    expect(b.shards.dir).not.toBe(a.shards.dir);
    expect(b.shards.manifest.tokenizer).toEqual({ name: `hf:${file}`, vocabSize: 50257, eot: 50256 });
    expect(b.shards.total).toBe(a.shards.total);
    expect(a.shards.total).toBeGreaterThan(16);
    expect([...b.shards.read(0, b.shards.total)]).toEqual([...a.shards.read(0, a.shards.total)]);
    a.close();
    b.close();
  }, 120_000);

  it('a missing tokenizer file is a config error naming `tokenizer`', async () => {
    const c = { task: 'codeparrot' as const, values: loadConfig<CodeparrotConfig>(CODEPARROT_SCHEMA, { overrides: { output_dir: tmp, tokenizer: join(tmp, 'nope.json') } }).values };
    expect(() => semanticTokenizer(c)).toThrow(ConfigError);
    expect(() => semanticTokenizer(c)).toThrow(new RegExp(`^tokenizer: ${join(tmp, 'nope.json')}: no such file`));
    await expect(checkSemanticInputs({ task: 'c4', values: c4({ tokenizer: join(tmp, 'nope.json') }) })).rejects.toThrow(/^tokenizer: /);
  });
});

describe('the token-cache root', () => {
  it('is KINDLING_TOKEN_CACHE when set, else data/cache/tokens', () => {
    expect(tokenCacheRoot({})).toBe('data/cache/tokens');
    expect(tokenCacheRoot({ KINDLING_TOKEN_CACHE: '  ' })).toBe('data/cache/tokens');
    expect(tokenCacheRoot({ KINDLING_TOKEN_CACHE: '/mnt/fast/tokens' })).toBe('/mnt/fast/tokens');
  });
});
