// Per-sequence mixtures of procedural tasks (e.g. Set + Union; spec §12 Q11 leaves the ratio open).
//
// Scheme (deterministic from the mixture seed):
//   * One CPython-compatible stream chooses the component of every sequence: PyRandom seeded with
//     init_by_array([seed, 0x4D495831 /* "MIX1" */]) — in Python: random.seed(seed + (0x4D495831 << 32)).
//     Sequence i draws u_i = random() and takes the first component j with u_i < (w_0 + … + w_j) / Σw.
//   * The r-th sequence (0-based) that picks component j is that component's own sample number r, so every
//     component keeps its own seeding (RandomState(seed_j + r), or the Dyck stream) and no component
//     sample is skipped or repeated. A one-component mixture reproduces that task exactly.
// Random access replays the (cheap) choice stream once and caches it; samples themselves are generated
// on demand by the components.

import type { SampleSource } from './batch.ts';
import { PyRandom } from '../../util/random.ts';
import type { ProceduralTask } from './registry.ts';
import type { Sample } from './sample.ts';

export const MIXTURE_SALT = 0x4d495831; // "MIX1"

export interface MixtureComponent {
  task: ProceduralTask;
  /** Relative weight (> 0); weights are normalised. */
  weight: number;
}

export class Mixture implements SampleSource {
  readonly components: readonly MixtureComponent[];
  /** Largest component vocabulary: the model must cover every component's token ids. */
  readonly vocabSize: number;
  /** Largest component context length (shorter samples are PAD-padded by the batcher). */
  readonly contextLength: number;
  /** PAD of the first component; used by the batcher for row padding (those positions carry no loss). */
  readonly padId: number;

  private readonly cumulative: Float64Array;
  private readonly rng: PyRandom;
  private choices = new Int32Array(1024);
  private ranks = new Int32Array(1024);
  private readonly counts: Int32Array;
  private known = 0;

  constructor(components: readonly MixtureComponent[], readonly seed: number) {
    if (components.length === 0) throw new RangeError('a mixture needs at least one component');
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new RangeError('mixture seed must be in [0, 2^32)');
    let total = 0;
    for (const c of components) {
      if (!(c.weight > 0) || !Number.isFinite(c.weight)) throw new RangeError(`mixture weight must be > 0, got ${c.weight}`);
      total += c.weight;
    }
    this.components = components;
    this.cumulative = new Float64Array(components.length);
    let acc = 0;
    components.forEach((c, j) => {
      acc += c.weight;
      this.cumulative[j] = acc / total;
    });
    this.cumulative[components.length - 1] = Infinity; // guard against rounding: u < 1 always lands somewhere
    this.vocabSize = Math.max(...components.map((c) => c.task.vocabSize));
    this.contextLength = Math.max(...components.map((c) => c.task.contextLength));
    this.padId = components[0].task.padId;
    this.counts = new Int32Array(components.length);
    this.rng = new PyRandom(0);
    this.rng.seedByArray([seed, MIXTURE_SALT]);
  }

  private extendTo(idx: number): void {
    if (idx < this.known) return;
    if (idx >= this.choices.length) {
      let cap = this.choices.length;
      while (cap <= idx) cap *= 2;
      const c = new Int32Array(cap);
      c.set(this.choices);
      const r = new Int32Array(cap);
      r.set(this.ranks);
      this.choices = c;
      this.ranks = r;
    }
    for (let i = this.known; i <= idx; i++) {
      const u = this.rng.random();
      let j = 0;
      while (!(u < this.cumulative[j])) j++;
      this.choices[i] = j;
      this.ranks[i] = this.counts[j]++;
    }
    this.known = idx + 1;
  }

  /** Which component sequence idx comes from, and that component's sample index. */
  choice(idx: number): { component: number; index: number } {
    if (!Number.isInteger(idx) || idx < 0) throw new RangeError(`sample index must be a non-negative integer, got ${idx}`);
    this.extendTo(idx);
    return { component: this.choices[idx], index: this.ranks[idx] };
  }

  sample(idx: number): Sample {
    const { component, index } = this.choice(idx);
    return this.components[component].task.sample(index);
  }

  samples(start: number, count: number): Sample[] {
    const out: Sample[] = [];
    for (let i = 0; i < count; i++) out.push(this.sample(start + i));
    return out;
  }
}

export function createMixture(components: readonly MixtureComponent[], seed: number): Mixture {
  return new Mixture(components, seed);
}
