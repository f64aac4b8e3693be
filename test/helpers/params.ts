// Shared by the checkpoint and GPT-2 loader tests: a model's parameters with non-trivial values
// everywhere (LayerNorms and biases too), and fresh directories under one temp root per test file.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll } from 'vitest';
import type { GPTConfig } from '../../src/model/config.ts';
import { paramSpecs } from '../../src/model/hf_names.ts';
import { MT19937 } from '../../src/util/random.ts';

export function randomParams(cfg: GPTConfig, seed: number): Map<string, Float32Array> {
  const mt = new MT19937(seed);
  const out = new Map<string, Float32Array>();
  for (const s of paramSpecs(cfg)) {
    const a = new Float32Array(s.shape.reduce((x, y) => x * y, 1));
    for (let i = 0; i < a.length; i++) a[i] = mt.nextDouble() - 0.5;
    out.set(s.name, a);
  }
  return out;
}

/** `fresh(name)` gives a new path under a temp root that is removed after the file's tests. */
export function tempDirs(prefix: string): (name?: string) => string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
  let counter = 0;
  return (name = 'c') => path.join(root, `${name}-${counter++}`);
}
