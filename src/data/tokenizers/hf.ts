/**
 * Any Hugging Face `tokenizer.json` (e.g. the CodeParrot BPE, vocab 32,768) through the official
 * `@huggingface/tokenizers` library. The file is validated enough to give a clear error naming it
 * (unreadable, not JSON, no `model.vocab`, no end-of-text token); the library does the rest.
 */
import { readFileSync } from 'node:fs';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { EOT_TEXT } from './gpt2.ts';
import { TokenizerError, type Tokenizer } from './index.ts';

interface TokenizerJson {
  model: { type?: string; vocab: Record<string, number> | [string, number][] };
  added_tokens?: { id: number; content: string }[];
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function checkTokenizerJson(json: unknown, where: string): TokenizerJson {
  if (!isRecord(json)) throw new TokenizerError(`${where}: not a tokenizer.json (expected a JSON object)`);
  const model = json.model;
  if (!isRecord(model)) throw new TokenizerError(`${where}: not a tokenizer.json (no "model" object)`);
  if (typeof model.type !== 'string' && model.type !== undefined) throw new TokenizerError(`${where}: not a tokenizer.json ("model.type" is not a string)`);
  if (!isRecord(model.vocab) && !Array.isArray(model.vocab)) throw new TokenizerError(`${where}: not a tokenizer.json (no "model.vocab")`);
  if (json.added_tokens !== undefined && !Array.isArray(json.added_tokens)) throw new TokenizerError(`${where}: "added_tokens" is not an array`);
  return json as unknown as TokenizerJson;
}

export function hfTokenizerFromFile(path: string): Tokenizer {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new TokenizerError(`${path}: cannot read tokenizer.json (${(e as Error).message})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new TokenizerError(`${path}: not a tokenizer.json (invalid JSON: ${(e as Error).message})`);
  }
  return hfTokenizerFromJson(json, path);
}

/** `where` names the source in errors and in `name` (`hf:<where>`). */
export function hfTokenizerFromJson(json: unknown, where: string): Tokenizer {
  const tj = checkTokenizerJson(json, where);
  let tok: HfTokenizer;
  try {
    tok = new HfTokenizer(tj, {});
  } catch (e) {
    throw new TokenizerError(`${where}: @huggingface/tokenizers cannot load it (${(e as Error).message})`);
  }
  let maxId = -1;
  for (const id of tok.get_vocab(true).values()) maxId = Math.max(maxId, id);
  for (const t of tj.added_tokens ?? []) maxId = Math.max(maxId, t.id);
  if (maxId < 0) throw new TokenizerError(`${where}: the vocabulary is empty`);
  const eot = tok.token_to_id(EOT_TEXT);
  if (eot === undefined) throw new TokenizerError(`${where}: no end-of-text token "${EOT_TEXT}" in the vocabulary or added_tokens`);
  return {
    name: `hf:${where}`,
    vocabSize: maxId + 1,
    eot,
    encode: (text: string) => tok.encode(text, { add_special_tokens: false }).ids,
    // The library rejects an empty id list; the empty text is its decoding.
    decode: (ids) => (ids.length === 0 ? '' : tok.decode(Array.from(ids), { skip_special_tokens: false, clean_up_tokenization_spaces: false })),
  };
}
