/**
 * Tokenizer speed against training speed (issue "Semantic pretraining": tokenizing must keep up with
 * training, tokenizer tokens/s ≥ 10× the trainer's tokens/s on the same machine).
 *
 * Text: the project's own docs (docs/**.md, English prose with tables and code) followed by its
 * TypeScript sources (src/, engine/, test/), cut into ~2,000-character documents at line ends, the way a corpus
 * loader hands documents over. Every tokenizer encodes the same documents: GPT-2 through gpt-tokenizer
 * (the default, with its merge cache at kindling's setting and at the library's default), through tiktoken's WASM build,
 * and through @huggingface/tokenizers on the GPT-2 tokenizer.json (the path CodeParrot's tokenizer
 * takes). The trainer figure is benchmarks/step.bench.ts's timed step (forward, backward, clipping,
 * AdamW) of a small model at GPT-2's vocabulary: 2_4_128, vocab 50257, context 256, batch 2 (the
 * logits of a bigger batch exceed lavapipe's 128 MiB storage-binding limit).
 *
 *   node --import tsx benchmarks/tokenizer.bench.ts [--no-step] [--step-steps N]
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import gptTokenizer from 'gpt-tokenizer/encoding/r50k_base';
import { gpt2Tokenizer, GPT2_MERGE_CACHE, hfTokenizerFromJson, tiktokenGpt2, type Tokenizer } from '../src/data/tokenizers/index.ts';
import { gpt2TokenizerJson } from '../src/data/tokenizers/gpt2_json.ts';
import { wallTime } from './timing.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function filesUnder(dir: string, ext: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(p, ext));
    else if (e.name.endsWith(ext)) out.push(p);
  }
  return out;
}

/** The bench corpus: docs then sources, as ~2,000-character documents cut at line ends. */
export function benchDocuments(): string[] {
  const text = [...filesUnder(join(root, 'docs'), '.md'), ...['src', 'engine', 'test'].flatMap((d) => filesUnder(join(root, d), '.ts'))].map((f) => readFileSync(f, 'utf8')).join('\n');
  const docs: string[] = [];
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start + 2000);
    end = end < 0 ? text.length : end + 1;
    docs.push(text.slice(start, end));
    start = end;
  }
  return docs;
}

export interface TokenizerBenchRow {
  name: string;
  tokens: number;
  /** Time of the timed passes (parts 1–3 of the documents). */
  ms: number;
  tokensPerS: number;
}

/**
 * One untimed pass over part 0, then one timed pass over each later part: every timed pass meets text
 * it has not seen (a repeated text would let a merge cache hold every word, unlike a real corpus).
 */
async function timeTokenizer(name: string, t: Tokenizer, parts: string[][], before?: () => void): Promise<TokenizerBenchRow> {
  before?.();
  let part = 0;
  let tokens = 0;
  const counts: number[] = [];
  const { total } = await wallTime(
    () => {
      let n = 0;
      for (const d of parts[part]!) n += t.encode(d).length;
      counts.push(n);
      part++;
    },
    { warmup: 1, minSamples: parts.length - 1, maxSamples: parts.length - 1 },
  );
  tokens = counts.slice(1).reduce((a, b) => a + b, 0);
  return { name, tokens, ms: total, tokensPerS: (tokens * 1000) / total };
}

/** Documents dealt into `n` parts of consecutive documents. */
function split(docs: string[], n: number): string[][] {
  const size = Math.ceil(docs.length / n);
  return Array.from({ length: n }, (_, i) => docs.slice(i * size, (i + 1) * size));
}

export async function runTokenizerBench(): Promise<TokenizerBenchRow[]> {
  const docs = split(benchDocuments(), 4);
  const rows: TokenizerBenchRow[] = [];
  const gpt2 = gpt2Tokenizer();
  // Warm the JIT over every document first: otherwise whichever gpt-tokenizer row runs first pays it.
  for (const part of docs) for (const d of part) gpt2.encode(d);
  rows.push(await timeTokenizer(`gpt-tokenizer r50k_base, merge cache ${GPT2_MERGE_CACHE} (kindling's default)`, gpt2, docs, () => (gptTokenizer.clearMergeCache(), gptTokenizer.setMergeCacheSize(GPT2_MERGE_CACHE))));
  rows.push(await timeTokenizer('gpt-tokenizer r50k_base, merge cache 100000 (the library default)', gpt2, docs, () => (gptTokenizer.clearMergeCache(), gptTokenizer.setMergeCacheSize(100000))));
  gptTokenizer.setMergeCacheSize(GPT2_MERGE_CACHE);
  const tk = tiktokenGpt2();
  try {
    rows.push(await timeTokenizer('tiktoken (WASM) r50k_base', tk, docs));
  } finally {
    tk.free();
  }
  rows.push(await timeTokenizer('@huggingface/tokenizers, GPT-2 tokenizer.json', hfTokenizerFromJson(gpt2TokenizerJson(), 'gpt2'), docs));
  const counts = new Set(rows.map((r) => r.tokens));
  if (counts.size !== 1) throw new Error(`tokenizers disagree on the token count: ${rows.map((r) => `${r.name} ${r.tokens}`).join(', ')}`);
  return rows;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const docs = benchDocuments();
  const chars = docs.reduce((a, d) => a + d.length, 0);
  console.log(`text: ${docs.length} documents, ${(chars / 1e6).toFixed(2)} M characters (docs/**.md + {src,engine,test}/**.ts)`);
  const rows = await runTokenizerBench();
  console.log(`timed: ${rows[0]!.tokens} GPT-2 tokens, the last three quarters of the documents, after an untimed pass over the first (every tokenizer gives the same count)\n`);
  console.log('| tokenizer | ms | M tokens/s |');
  console.log('| --- | --- | --- |');
  for (const r of rows) console.log(`| ${r.name} | ${r.ms.toFixed(0)} | ${(r.tokensPerS / 1e6).toFixed(2)} |`);
  if (args.includes('--no-step')) return;

  const stepsArg = args.indexOf('--step-steps');
  const steps = stepsArg >= 0 ? Number(args[stepsArg + 1]) : 4;
  const { Engine } = await import('../engine/engine.ts');
  const { benchEngineStep } = await import('./step.bench.ts');
  const engine = await Engine.create();
  try {
    const shape = { name: 'a', vocab: 50257, context: 256, size: '2_4_128', batch: 2, tied: true } as const;
    const r = await benchEngineStep(engine, shape, steps);
    const used = rows[0]!;
    console.log(`\ntrainer on ${engine.device.describe()}: 2_4_128, vocab 50257, context 256, batch 2: ${r.msPerStep.toFixed(0)} ms/step, ${r.tokensPerS.toFixed(0)} tokens/s`);
    console.log(`tokenizer (${used.name}) / trainer: ${(used.tokensPerS / r.tokensPerS).toFixed(0)}× (target ≥ 10×)`);
  } finally {
    engine.destroy();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
