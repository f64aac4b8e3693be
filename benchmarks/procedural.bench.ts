// Procedural data generation speed: one packed batch of each default configuration (64 × 129 tokens for
// the algorithmic tasks, 4 × 2048 for Dyck = one micro-batch), generation + packing, on the CPU.
//
//   node --import tsx benchmarks/procedural.bench.ts
//
// `runProceduralBench()` is exported for the project's benchmark runner; it returns ms per batch.

import { pathToFileURL } from 'node:url';
import { bench, run, summary } from 'mitata';
import { Batcher, Mixture, createTask, type SampleSource, type TaskName } from '../src/data/procedural/index.ts';

export interface ProceduralBenchResult {
  name: string;
  batch: number;
  seqLen: number;
  /** Mean wall time to generate and pack one batch. */
  msPerBatch: number;
  /** Tokens (batch × seqLen) generated per second. */
  tokensPerSecond: number;
}

interface Case {
  name: string;
  source: SampleSource;
  batch: number;
}

function cases(): Case[] {
  const algorithmic: TaskName[] = ['sort', 'reverse', 'identity', 'set', 'union', 'delete', 'stack', 'ww', 'eca'];
  const out: Case[] = algorithmic.map((name) => ({ name, source: createTask(name), batch: 64 }));
  out.push({ name: 'sort (shuffled control)', source: createTask('sort', { shuffled: true }), batch: 64 });
  out.push({
    name: 'set+union mixture',
    source: new Mixture([{ task: createTask('set'), weight: 1 }, { task: createTask('union'), weight: 1 }], 0),
    batch: 64,
  });
  out.push({ name: 'dyck', source: createTask('dyck'), batch: 4 });
  out.push({ name: 'dyck_shuffle', source: createTask('dyck_shuffle'), batch: 4 });
  return out;
}

export async function runProceduralBench(opts: { print?: boolean } = {}): Promise<ProceduralBenchResult[]> {
  const print = opts.print ?? true;
  const list = cases();
  summary(() => {
    for (const c of list) {
      // Each iteration produces the next batch of the stream (fresh samples every time).
      const batcher = new Batcher(c.source, c.batch);
      bench(`${c.name} ${c.batch}×${batcher.seqLen}`, () => batcher.next());
    }
  });
  const { benchmarks } = await run({ format: print ? 'mitata' : 'quiet', colors: print && Boolean(process.stdout.isTTY) });
  const results: ProceduralBenchResult[] = [];
  benchmarks.forEach((trial, i) => {
    const stats = trial.runs[0]?.stats;
    if (!stats) return;
    const c = list[i];
    const seqLen = c.source.contextLength;
    const ms = stats.avg / 1e6; // mitata reports nanoseconds
    results.push({ name: c.name, batch: c.batch, seqLen, msPerBatch: ms, tokensPerSecond: (c.batch * seqLen) / (ms / 1e3) });
  });
  if (print) {
    console.log('\nprocedural data: ms per batch (generation + packing, one thread)');
    for (const r of results) {
      console.log(
        `  ${r.name.padEnd(24)} ${`${r.batch}×${r.seqLen}`.padStart(8)}  ${r.msPerBatch.toFixed(3).padStart(8)} ms  ${(r.tokensPerSecond / 1e6).toFixed(2).padStart(6)} M tokens/s`,
      );
    }
  }
  return results;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await runProceduralBench();
}
