// `kindling corpora stats`: one real process (node --import tsx src/cli/main.ts) whose last stdout line
// is checked, then the other corpora and the errors in-process through main(). Expected counts are by
// hand: GPT-2 encodes "Hello world" as [15496, 995] and " Hello world" as [18435, 995].
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { captureOutput } from '../helpers/console.ts';
import { gpt2TokenizerJson } from '../../src/data/tokenizers/gpt2_json.ts';

const root = mkdtempSync(join(tmpdir(), 'kindling-corpora-cli-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

// C4: shard 0 = "Hello world", " Hello world", a malformed line; shard 1 = "Hello world".
const c4 = join(root, 'c4');
mkdirSync(c4);
writeFileSync(join(c4, 'c4-train.00000-of-00002.json.gz'), gzipSync('{"text":"Hello world","timestamp":"t","url":"u"}\n{"text":" Hello world"}\n{"text": oops}\n'));
writeFileSync(join(c4, 'c4-train.00001-of-00002.json.gz'), gzipSync('{"text":"Hello world"}\n'));

const lastJson = (stdout: string): Record<string, unknown> => JSON.parse(stdout.trimEnd().split('\n').at(-1)!);

describe('kindling corpora stats (real process)', () => {
  it('c4: documents, characters, tokens, sequences, skipped on its last line; the warning on stderr', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'corpora', 'stats', 'c4', c4, '--tokenizer', 'gpt2', '--context', '4'], { encoding: 'utf8', timeout: 120_000 });
    expect(r.status, r.stderr).toBe(0);
    const s = lastJson(r.stdout);
    // tokens 2 + 2 + 2 = 6 → one 4-token sequence, 2 dropped; characters 11 + 12 + 11
    expect(s).toMatchObject({ corpus: 'c4', tokenizer: 'gpt2', context: 4, files: 2, documents: 3, characters: 34, tokens: 6, sequences: 1, droppedTokens: 2, skipped: 1 });
    expect(r.stderr).toContain(`warning: ${join(c4, 'c4-train.00000-of-00002.json.gz')}:3: not JSON`);
  });
});

describe('kindling corpora stats (in-process)', () => {
  const io = captureOutput();
  const run = (...argv: string[]): Promise<number> => main(['corpora', ...argv]);

  it('c4 --eval: each document its own sequence', async () => {
    expect(await run('stats', 'c4', c4, '--context', '4', '--eval')).toBe(0);
    expect(lastJson(io.out)).toMatchObject({ documents: 3, tokens: 6, sequences: 3, skipped: 1 });
    expect(await run('stats', 'c4', c4, '--context', '1', '--eval', '--max-documents', '2')).toBe(0);
    expect(lastJson(io.out)).toMatchObject({ documents: 2, tokens: 4, sequences: 4 });
  });

  it('codeparrot: EOS after each document is packed but not counted in tokens', async () => {
    const d = join(root, 'cp');
    mkdirSync(d);
    writeFileSync(join(d, 'file-000000000001.json.gz'), gzipSync('{"content":"Hello world"}\n{"content":"Hello world"}\n'));
    // 15496 995 EOS 15496 995 EOS → two 3-token sequences
    expect(await run('stats', 'codeparrot', d, '--context', '3')).toBe(0);
    expect(lastJson(io.out)).toMatchObject({ corpus: 'codeparrot', documents: 2, characters: 22, tokens: 4, sequences: 2, droppedTokens: 0, skipped: 0 });
  });

  it('dmmath: problems, characters, character tokens, packed sequences', async () => {
    const d = join(root, 'math', 'mathematics_dataset-v1.0', 'interpolate');
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, 'arithmetic__add_or_sub.txt'), 'What is 1+1?\n2\né?\n3\n');
    // [BOS] 12 [SEP] 1 = 15 and [BOS] 2 [SEP] 1 = 5: exactly one 20-token sequence; é is UNK
    expect(await run('stats', 'dmmath', join(root, 'math'), '--modules', 'all', '--context', '20')).toBe(0);
    expect(lastJson(io.out)).toMatchObject({ corpus: 'dmmath', tokenizer: 'char', problems: 2, characters: 16, tokens: 16, unknownCharacters: 1, sequences: 1, skipped: 0 });
    expect(await run('stats', 'dmmath', join(root, 'math'), '--modules', 'all', '--context', '19')).toBe(0);
    expect(lastJson(io.out)).toMatchObject({ problems: 2, sequences: 2 });
  });

  it('--tokenizer FILE: a tokenizer.json counts with that tokenizer (GPT-2 as tokenizer.json gives the gpt2 numbers)', async () => {
    const file = join(root, 'gpt2-tokenizer.json');
    writeFileSync(file, JSON.stringify(gpt2TokenizerJson()));
    expect(await run('stats', 'c4', c4, '--tokenizer', 'gpt2', '--context', '2')).toBe(0);
    const viaLibrary = lastJson(io.out);
    expect(await run('stats', 'c4', c4, '--tokenizer', file, '--context', '2')).toBe(0);
    const viaJson = lastJson(io.out);
    expect(viaJson.tokens).toBeGreaterThan(0);
    for (const k of ['documents', 'characters', 'tokens', 'sequences', 'droppedTokens', 'skipped']) expect(viaJson[k], k).toBe(viaLibrary[k]);
  }, 60_000);

  it('errors: a missing path and --strict exit 1 naming the file; bad arguments exit 2', async () => {
    expect(await run('stats', 'c4', join(root, 'missing'))).toBe(1);
    expect(io.err).toContain(`kindling corpora: ${join(root, 'missing')}: no such file or directory`);
    io.err = '';
    expect(await run('stats', 'c4', c4, '--strict')).toBe(1);
    expect(io.err).toContain(`${join(c4, 'c4-train.00000-of-00002.json.gz')}:3: not JSON`);
    expect(io.err).toContain('(strict: not skipped)');
    io.err = '';
    expect(await run('stats', 'c5', c4)).toBe(2);
    expect(io.err).toContain('<corpus>: "c5" is not one of c4, codeparrot, dmmath (did you mean "c4"?)');
    expect(await run('stats', 'c4', c4, '--tokenizer', join(root, 'no-tokenizer.json'))).toBe(2);
    expect(io.err).toContain(`--tokenizer: ${join(root, 'no-tokenizer.json')}: no such file`);
    expect(await run('stats', 'dmmath', c4, '--tokenizer', 'gpt2')).toBe(2);
    expect(await run('stats', 'codeparrot', c4, '--eval')).toBe(2);
    expect(io.err).toContain('--eval applies to c4 only');
    expect(await run('stats', 'c4')).toBe(2);
    expect(io.err).toContain('missing <path>');
    expect(await run('statz')).toBe(2);
    expect(io.err).toContain('unknown command "statz" (did you mean "stats"?)');
  });

  it('help', async () => {
    expect(await run('stats', '--help')).toBe(0);
    expect(io.out.split('\n')[0]).toBe('usage: kindling corpora stats <corpus> <path> [options]');
    expect(io.out).toContain('--tokenizer VALUE');
    io.out = '';
    expect(await run('--help')).toBe(0);
    expect(io.out).toContain('stats <corpus> <path>');
    io.out = '';
    expect(await main(['--help'])).toBe(0);
    expect(io.out).toMatch(/\n {2}corpora +semantic corpora/);
  });
});
