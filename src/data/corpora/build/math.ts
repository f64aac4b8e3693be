// The embedded math corpus: problems of ./mathgen.ts written in the released DeepMind-Mathematics
// layout, `mathematics_dataset-v1.0/{train-easy,train-medium,train-hard,interpolate,extrapolate}/
// <module>.txt`, each file alternating question and answer lines, which mathProblems and
// mathTrainingStream read (with modules 'all': only a subset of the §13 modules is generated).

import * as fs from 'node:fs';
import * as path from 'node:path';
import { OutputFile } from '../../../util/files.ts';
import { Progress, type ProgressOptions } from '../../../util/progress.ts';
import { PyRandom } from '../../../util/random.ts';
import { CorpusError, codePoints } from '../files.ts';
import { MATH_SPLITS, type MathSplit } from '../dmmath.ts';
import { buildFolder, emptyCounts, type BuildOptions, type BuildReport, type SplitCounts } from './common.ts';
import { MATH_MODULES, type GeneratedProblem, type Level, type MathModule } from './mathgen.ts';

export interface MathOptions extends BuildOptions {
  /** The corpora folder; the tree goes to `<out>/mathematics_dataset-v1.0`. */
  out: string;
  /** Problems per module file of each train-* folder (default 20,000). */
  trainProblems?: number;
  /** Problems per module file of interpolate and extrapolate (default 1,000). */
  evalProblems?: number;
  /** Seed (a 32-bit unsigned integer, default 0). */
  seed?: number;
  /** Where the progress line goes (default: none). */
  progress?: ProgressOptions['stream'];
}

const TRAIN_LEVEL: Partial<Record<MathSplit, Level>> = { 'train-easy': 0, 'train-medium': 1, 'train-hard': 2 };

/**
 * The seed of one file's generator: seed + (module index << 32) + ((split index + 1) << 64), i.e.
 * CPython's `random.Random(that)`, so each file has its own stream.
 */
export const fileSeed = (seed: number, module: MathModule, split: MathSplit): bigint => BigInt(seed) + (BigInt(MATH_MODULES.indexOf(module)) << 32n) + (BigInt(MATH_SPLITS.indexOf(split) + 1) << 64n);

/**
 * The problems of one file, from the generator seeded with fileSeed, so one file does not depend on
 * the others. interpolate draws
 * a level 0–2 per problem, extrapolate uses level 3. `exclude` holds questions that must not occur
 * (the module's training questions, for interpolate and extrapolate): such a draw is drawn again.
 */
export function generateFile(module: MathModule, split: MathSplit, count: number, seed: number, exclude?: ReadonlySet<string>): GeneratedProblem[] {
  const rng = new PyRandom(fileSeed(seed, module, split));
  const out: GeneratedProblem[] = [];
  for (let i = 0; i < count; i++) {
    for (let tries = 0; ; tries++) {
      const level: Level = TRAIN_LEVEL[split] ?? (split === 'extrapolate' ? 3 : (rng.randint(0, 2) as Level));
      const p = module.generate(rng, level);
      if (!exclude?.has(p.question)) {
        out.push(p);
        break;
      }
      if (tries >= 10_000) throw new CorpusError(`${module.name} (${split}): cannot draw a question outside the training questions after 10000 tries`);
    }
  }
  return out;
}

/** Builds `<out>/mathematics_dataset-v1.0` (skipped when already built, unless `force`). */
export async function buildMath(opts: MathOptions): Promise<BuildReport> {
  const dir = path.join(opts.out, 'mathematics_dataset-v1.0');
  const trainN = opts.trainProblems ?? 20_000;
  const evalN = opts.evalProblems ?? 1_000;
  const seed = opts.seed ?? 0;
  for (const [k, v] of [['trainProblems', trainN], ['evalProblems', evalN]] as const) if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`${k} must be a positive integer, got ${v}`);
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new RangeError(`seed must be an integer in 0..2^32-1, got ${seed}`);
  return buildFolder(dir, opts, async (tmp) => {
    const splits: Record<string, SplitCounts> = {};
    for (const s of MATH_SPLITS) {
      splits[s] = emptyCounts();
      fs.mkdirSync(path.join(tmp, s));
    }
    const nFiles = MATH_MODULES.length * 4 + MATH_MODULES.filter((m) => m.extrapolate).length;
    const bar = opts.progress ? new Progress({ label: 'math', total: nFiles, unit: 'files', stream: opts.progress }) : null;
    let done = 0;
    const write = (split: MathSplit, name: string, problems: GeneratedProblem[]): void => {
      let text = '';
      let chars = 0;
      for (const p of problems) {
        text += `${p.question}\n${p.answer}\n`;
        chars += codePoints(p.question) + codePoints(p.answer);
      }
      const out = new OutputFile(path.join(tmp, split, `${name}.txt`));
      out.write(text);
      out.commit();
      const c = splits[split]!;
      c.files++;
      c.documents += problems.length;
      c.characters += chars;
      c.bytes += Buffer.byteLength(text);
      if (++done < nFiles) bar?.update(done, `${split}/${name}`);
    };
    for (const m of MATH_MODULES) {
      const seen = new Set<string>();
      for (const split of ['train-easy', 'train-medium', 'train-hard'] as const) {
        const ps = generateFile(m, split, trainN, seed);
        for (const p of ps) seen.add(p.question);
        write(split, m.name, ps);
      }
      write('interpolate', m.name, generateFile(m, 'interpolate', evalN, seed, seen));
      if (m.extrapolate) write('extrapolate', m.extrapolate, generateFile(m, 'extrapolate', evalN, seed, seen));
    }
    bar?.finish('', done);
    return {
      corpus: 'math',
      format: 'dmmath',
      source: `the kindling DeepMind-Math-style generator (src/data/corpora/build/mathgen.ts), seed ${seed}`,
      license: 'generated by this project (MIT, as the project)',
      splits,
      excluded: {},
      details: {
        seed,
        trainProblemsPerFile: trainN,
        evalProblemsPerFile: evalN,
        modules: MATH_MODULES.map((m) => m.name),
        extrapolateModules: MATH_MODULES.flatMap((m) => (m.extrapolate ? [m.extrapolate] : [])),
        note: 'interpolate and extrapolate hold no question of the module\'s train-* files; read with modules "all" (a subset of the §13 lists)',
      },
    };
  });
}
