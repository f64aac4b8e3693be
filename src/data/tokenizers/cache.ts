/**
 * The token cache: a tokenised corpus written once as a shard set (shards.ts) under a directory named
 * by a hash of what made it, and reused by every later run that would make the same tokens.
 *
 *   <root>/<corpus>-<16 hex digits of sha256(key)>/   index.json + shard-NNNNN.bin
 *
 * The key holds the corpus files (absolute path, size, mtime), the tokenizer (name, vocabulary size,
 * end-of-text id, and the size and mtime of its tokenizer.json when it has one) and the recipe (the
 * packing and its parameters). Any change to one of them names another directory, so a stale cache is
 * never read; the old directory stays until someone deletes it. The key is stored in the manifest's
 * `meta.key` and checked on every hit.
 *
 * A cache is built in `<dir>.partial-<pid>-<n>` (the shard writer writes index.json last) and renamed
 * to `<dir>` when complete, so an interrupted build leaves no directory that reads as a cache.
 */
import { createHash } from 'node:crypto';
import { existsSync, renameSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { MANIFEST_FILE, ShardFormatError, ShardSetWriter, TokenShards } from './shards.ts';

/** Where a run's token cache lives unless told otherwise (relative to the working directory; git-ignored). */
export const DEFAULT_TOKEN_CACHE_ROOT = 'data/cache/tokens';

/** The token-cache root of this process: `KINDLING_TOKEN_CACHE` when set (non-empty), else the default. */
export function tokenCacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  const v = env.KINDLING_TOKEN_CACHE?.trim();
  return v ? v : DEFAULT_TOKEN_CACHE_ROOT;
}

export interface FileStamp {
  path: string;
  size: number;
  mtimeMs: number;
}

export interface TokenCacheKey {
  /** Short corpus name, the directory's prefix (`c4`, `codeparrot`). */
  corpus: string;
  files: FileStamp[];
  tokenizer: { name: string; vocabSize: number; eot: number; file: FileStamp | null };
  /** The packing and its parameters. */
  recipe: Record<string, unknown>;
}

/** Absolute path, size and modification time of each file (in the order given). */
export function fileStamps(paths: readonly string[]): FileStamp[] {
  return paths.map((p) => {
    const s = statSync(p);
    return { path: resolve(p), size: s.size, mtimeMs: s.mtimeMs };
  });
}

/** The cache directory of `key` under `root`. */
export function tokenCacheDir(root: string, key: TokenCacheKey): string {
  if (!/^[a-z0-9_]+$/.test(key.corpus)) throw new RangeError(`token cache: corpus name ${JSON.stringify(key.corpus)} must be [a-z0-9_]+`);
  const hash = createHash('sha256').update(JSON.stringify(key)).digest('hex').slice(0, 16);
  return join(root, `${key.corpus}-${hash}`);
}

export interface OpenTokenCacheOptions {
  /** Receives "token cache: hit <dir>" / "token cache: miss <dir>". */
  log?: (line: string) => void;
  /** Tokens per shard file of a new cache (default: the writer's 2^26). */
  tokensPerShard?: number;
}

let partials = 0;

/**
 * Opens the cache of `key` under `root`, building it first with `write` when it is missing. `write`
 * appends the token stream to the writer (and must not close it). Returns the opened shard set.
 */
export async function openTokenCache(
  root: string,
  key: TokenCacheKey,
  write: (w: ShardSetWriter) => Promise<void>,
  o: OpenTokenCacheOptions = {},
): Promise<{ shards: TokenShards; dir: string; hit: boolean }> {
  const dir = tokenCacheDir(root, key);
  const manifest = join(dir, MANIFEST_FILE);
  if (existsSync(manifest)) {
    o.log?.(`token cache: hit ${dir}`);
    return { shards: checkCache(TokenShards.open(dir), key), dir, hit: true };
  }
  if (existsSync(dir)) rmSync(dir, { recursive: true, force: true }); // not a finished cache (no index.json)
  o.log?.(`token cache: miss ${dir}`);
  const tmp = `${dir}.partial-${process.pid}-${partials++}`;
  rmSync(tmp, { recursive: true, force: true });
  try {
    const { vocabSize, eot, name } = key.tokenizer;
    const w = new ShardSetWriter(tmp, { tokenizer: { name, vocabSize, eot }, tokensPerShard: o.tokensPerShard, meta: { key } });
    await write(w);
    w.close();
    try {
      renameSync(tmp, dir);
    } catch (e) {
      if (!existsSync(manifest)) throw e;
      rmSync(tmp, { recursive: true, force: true }); // another process finished the same cache first
    }
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  return { shards: checkCache(TokenShards.open(dir), key), dir, hit: false };
}

/** The manifest of a cache hit must record the key that names its directory. */
function checkCache(s: TokenShards, key: TokenCacheKey): TokenShards {
  const path = join(s.dir, MANIFEST_FILE);
  const t = s.manifest.tokenizer;
  const fail = (what: string) => {
    s.close();
    return new ShardFormatError(path, `${what}; delete ${s.dir} to rebuild the token cache`);
  };
  for (const f of ['name', 'vocabSize', 'eot'] as const) {
    if (t[f] !== key.tokenizer[f]) throw fail(`"tokenizer.${f}" is ${JSON.stringify(t[f])}, the run's tokenizer has ${JSON.stringify(key.tokenizer[f])}`);
  }
  const stored = (s.manifest.meta as { key?: unknown } | undefined)?.key;
  if (JSON.stringify(stored) !== JSON.stringify(key)) throw fail('"meta.key" is not the key this directory is named by');
  return s;
}
