/**
 * `npm run bench`: every benchmark, one child process each (own Dawn device, so one crash or leak
 * cannot skew the next), in the order: ceilings, kernels, optimizer, data (procedural generation, tokenizers), then the end-to-end step
 * with its peers (TensorFlow.js WebGPU on the same adapter, PyTorch CPU when present), last the needle arms
 * side by side (`--jobs`) and stacked in one process (src/model/stacked.ts), each against one alone.
 *
 *   npm run bench                 # everything
 *   npm run bench -- step matmul  # only the named ones
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const ALL: [string, string[]][] = [
  ['roofline', []],
  ['matmul', []],
  ['attention', []],
  ['pointwise', []],
  ['optim', []],
  ['procedural', []],
  ['tokenizer', []],
  ['step', ['all', '--profile']],
  ['arms', []],
  ['stacked', []],
];

const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
let failed = 0;
for (const [name, args] of ALL) {
  if (wanted.length && !wanted.includes(name)) continue;
  const file = join(here, `${name}.bench.ts`);
  if (!existsSync(file)) {
    console.log(`\n== ${name}: ${file} missing, skipped`);
    continue;
  }
  console.log(`\n== ${name} ${args.join(' ')}`);
  const t0 = performance.now();
  const r = spawnSync(process.execPath, ['--import', 'tsx', file, ...args], { stdio: 'inherit' });
  console.log(`== ${name}: ${r.status === 0 ? 'ok' : `FAILED (exit ${r.status ?? r.signal})`} in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  if (r.status !== 0) failed++;
}
process.exitCode = failed ? 1 : 0;
