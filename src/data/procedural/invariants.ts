// Invariant checks for procedural samples, exported for users (sanity checks on data) and tests.
//
// The small predicates work on plain arrays; `validateSample` runs every check that applies to a
// sample of a configured task and returns a list of human-readable violations (empty = valid).

import type { AlgorithmicConfig, DyckConfig, EcaConfig, ProceduralTask, WWConfig } from './registry.ts';
import { ecaStep } from './eca.ts';
import type { Sample } from './sample.ts';

type Seq = ArrayLike<number>;

/** Non-decreasing order. */
export function isSortedAscending(xs: Seq): boolean {
  for (let i = 1; i < xs.length; i++) if (xs[i - 1] > xs[i]) return false;
  return true;
}

/** No value occurs twice. */
export function isDuplicateFree(xs: Seq): boolean {
  const seen = new Set<number>();
  for (let i = 0; i < xs.length; i++) {
    if (seen.has(xs[i])) return false;
    seen.add(xs[i]);
  }
  return true;
}

/** Same multiset of values (order ignored). */
export function sameMultiset(a: Seq, b: Seq): boolean {
  if (a.length !== b.length) return false;
  const sa = Array.from(a).sort((x, y) => x - y);
  const sb = Array.from(b).sort((x, y) => x - y);
  return sa.every((v, i) => v === sb[i]);
}

/**
 * Dyck-prefix check: tokens in 0..2k-1, every closer t+k closes the most recent open bracket t.
 * Returns the final depth, or -1 when the sequence is not a valid prefix.
 */
export function dyckPrefixDepth(ids: Seq, k: number): number {
  const stack: number[] = [];
  for (let i = 0; i < ids.length; i++) {
    const t = ids[i];
    if (!Number.isInteger(t) || t < 0 || t >= 2 * k) return -1;
    if (t < k) stack.push(t);
    else if (stack.pop() !== t - k) return -1;
  }
  return stack.length;
}

/** A complete, balanced k-Dyck word. */
export function isBalancedDyck(ids: Seq, k: number): boolean {
  return dyckPrefixDepth(ids, k) === 0;
}

/** Maximum nesting depth reached (counting opens minus closes; ignores bracket types). */
export function maxDepth(ids: Seq, k: number): number {
  let depth = 0;
  let max = 0;
  for (let i = 0; i < ids.length; i++) {
    depth += ids[i] < k ? 1 : -1;
    if (depth > max) max = depth;
  }
  return max;
}

/**
 * Valid shuffle-Dyck prefix: every closer t+k closes *some* currently open bracket of type t (any order),
 * and the total depth never exceeds `maxDepthCap`.
 */
export function isShuffleDyckPrefix(ids: Seq, k: number, maxDepthCap = Infinity): boolean {
  const counts = new Int32Array(k);
  let depth = 0;
  for (let i = 0; i < ids.length; i++) {
    const t = ids[i];
    if (!Number.isInteger(t) || t < 0 || t >= 2 * k) return false;
    if (t < k) {
      counts[t]++;
      if (++depth > maxDepthCap) return false;
    } else {
      if (counts[t - k] === 0) return false;
      counts[t - k]--;
      depth--;
    }
  }
  return true;
}

/** `next` is the image of `prev` under the elementary CA `rule` with periodic boundary. */
export function followsEcaRule(prev: Seq, next: Seq, rule: number): boolean {
  if (prev.length !== next.length) return false;
  const expected = new Array<number>(prev.length);
  ecaStep(prev, rule, expected);
  return expected.every((v, i) => v === next[i]);
}

/** ids = s0 SEP s1 SEP … with each row the rule's image of the previous one. */
export function ecaRowsFollowRule(ids: Seq, L: number, rows: number, rule: number, sep = 2): boolean {
  if (ids.length !== rows * L + rows - 1) return false;
  const arr = Array.from(ids);
  for (let r = 0; r < rows; r++) {
    const row = arr.slice(r * (L + 1), r * (L + 1) + L);
    if (row.some((c) => c !== 0 && c !== 1)) return false;
    if (r > 0) {
      if (arr[r * (L + 1) - 1] !== sep) return false;
      if (!followsEcaRule(arr.slice((r - 1) * (L + 1), (r - 1) * (L + 1) + L), row, rule)) return false;
    }
  }
  return true;
}

/** The non-PAD tokens of a shuffled sample are a permutation of those of the original, in the same slots. */
export function shuffleKeepsMultiset(original: Sample, shuffled: Sample, pad: number): boolean {
  if (original.ids.length !== shuffled.ids.length) return false;
  for (let i = 0; i < original.ids.length; i++) {
    if ((original.ids[i] === pad) !== (shuffled.ids[i] === pad)) return false;
  }
  return sameMultiset(original.ids, shuffled.ids);
}

function distinctInOrder(xs: Seq): number[] {
  const seen = new Set<number>();
  const out: number[] = [];
  for (let i = 0; i < xs.length; i++) {
    if (!seen.has(xs[i])) {
      seen.add(xs[i]);
      out.push(xs[i]);
    }
  }
  return out;
}

function eq(a: Seq, b: Seq): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function onesRange(mask: Seq, first: number, last: number): boolean {
  for (let i = 0; i < mask.length; i++) if (mask[i] !== (i >= first && i <= last ? 1 : 0)) return false;
  return true;
}

/** Checks that hold for every sample of every task: shapes, target shift, 0/1 masks, token range. */
export function structuralViolations(
  sample: Sample,
  opts: { padId: number; vocabSize: number; contextLength: number },
): string[] {
  const v: string[] = [];
  const T = sample.ids.length;
  if (sample.targets.length !== T || sample.lossMask.length !== T || sample.attentionMask.length !== T) {
    v.push('ids/targets/lossMask/attentionMask lengths differ');
    return v;
  }
  if (T > opts.contextLength) v.push(`length ${T} exceeds the context length ${opts.contextLength}`);
  for (let i = 0; i < T; i++) {
    if (sample.ids[i] < 0 || sample.ids[i] >= opts.vocabSize) {
      v.push(`token ${sample.ids[i]} at ${i} outside [0, ${opts.vocabSize})`);
      break;
    }
  }
  for (let i = 0; i < T; i++) {
    const expected = i + 1 < T ? sample.ids[i + 1] : opts.padId;
    if (sample.targets[i] !== expected) {
      v.push(`targets[${i}] = ${sample.targets[i]}, expected ids[${i + 1}] = ${expected}`);
      break;
    }
  }
  if (sample.lossMask.some((m) => m !== 0 && m !== 1)) v.push('lossMask is not 0/1');
  if (sample.attentionMask.some((m) => m !== 0 && m !== 1)) v.push('attentionMask is not 0/1');
  for (let i = 0; i < T; i++) {
    if (sample.lossMask[i] && (sample.targets[i] === opts.padId || sample.ids[i] === opts.padId)) {
      v.push(`loss position ${i} touches PAD`);
      break;
    }
  }
  // PADs only ever trail (so a causal model may ignore the attention mask).
  const firstPad = sample.ids.indexOf(opts.padId);
  if (firstPad >= 0 && sample.ids.subarray(firstPad).some((t) => t !== opts.padId)) v.push('PAD is followed by a non-PAD token');
  return v;
}

/** Replays stack ops: returns the final stack (bottom first), or an error message. */
function replayStack(ops: Seq): number[] | string {
  const stack: number[] = [];
  for (let i = 0; i < ops.length; i++) {
    const t = ops[i];
    if (t === 0) {
      if (stack.length === 0) return `pop on an empty stack at op ${i}`;
      stack.pop();
    } else {
      if (stack.includes(t)) return `token ${t} pushed twice at op ${i}`;
      stack.push(t);
    }
  }
  return stack;
}

/** All task-specific invariants of a sample from `task` (for shuffled tasks: structural checks only). */
export function validateSample(task: ProceduralTask, sample: Sample): string[] {
  const v = structuralViolations(sample, task);
  if (v.length > 0 || task.config.shuffled) return v;
  const ids = sample.ids;
  const pad = task.padId;
  const add = (ok: boolean, msg: string) => {
    if (!ok) v.push(`${task.name}: ${msg}`);
  };
  switch (task.name) {
    case 'sort':
    case 'reverse':
    case 'identity': {
      const L = genLength(task);
      add(ids.length === 2 * L + 1 && ids[L] === task.sepId, 'layout is not x SEP f(x)');
      const x = Array.from(ids.subarray(0, L));
      const y = ids.subarray(L + 1);
      const expected = task.name === 'sort' ? [...x].sort((a, b) => a - b) : task.name === 'reverse' ? [...x].reverse() : x;
      add(eq(y, expected), `output is not ${task.name}(input)`);
      if (task.name === 'sort') add(isSortedAscending(y), 'output not sorted');
      add(onesRange(sample.lossMask, L, 2 * L - 1), 'loss positions are not L..2L-1');
      break;
    }
    case 'set': {
      const L = genLength(task);
      const u = distinctInOrder(ids.subarray(0, L));
      const out = ids.subarray(L + 1, L + 1 + u.length);
      add(eq(out, u), 'output is not distinct(input) in first-appearance order');
      add(isDuplicateFree(out), 'output has duplicates');
      add(ids.subarray(L + 1 + u.length).every((t) => t === pad), 'output not PAD-padded');
      add(onesRange(sample.lossMask, L, L + u.length - 1), 'loss positions are not L..L+|u|-1');
      break;
    }
    case 'union': {
      const L = genLength(task);
      const h = Math.floor(L / 2);
      const u = distinctInOrder([...ids.subarray(0, h), ...ids.subarray(h + 1, 2 * h + 1)]);
      add(ids[h] === task.sepId && ids[2 * h + 1] === task.sepId, 'separators misplaced');
      const out = ids.subarray(2 * h + 2, 2 * h + 2 + u.length);
      add(eq(out, u) && isDuplicateFree(out), 'output is not distinct(a ‖ b)');
      add(onesRange(sample.lossMask, 2 * h + 1, 2 * h + u.length), 'loss positions are not 2h+1..2h+|u|');
      break;
    }
    case 'delete': {
      const L = genLength(task);
      const x = Array.from(ids.subarray(0, L));
      const r = ids[L + 1];
      const at = x.indexOf(r);
      const y = at >= 0 ? [...x.slice(0, at), ...x.slice(at + 1)] : x;
      add(ids[L] === task.sepId && ids[L + 2] === task.sepId, 'separators misplaced');
      add(eq(ids.subarray(L + 3, L + 3 + y.length), y), 'output is not x minus the first r');
      add(onesRange(sample.lossMask, L + 2, L + 2 + y.length - 1), 'loss positions are not L+2..L+1+|y|');
      break;
    }
    case 'stack': {
      const L = genLength(task);
      const final = replayStack(ids.subarray(0, L));
      if (typeof final === 'string') {
        v.push(`stack: ${final}`);
        break;
      }
      add(ids[L] === task.sepId, 'SEP missing after the ops');
      const top = final.reverse().slice(0, 2 * L - L - 1);
      add(eq(ids.subarray(L + 1, L + 1 + top.length), top), 'output is not the final stack, top first');
      add(sample.attentionMask.every((m) => m === 1), 'attention mask is not all ones');
      break;
    }
    case 'ww': {
      const L = genLength(task);
      add(eq(ids.subarray(0, L), ids.subarray(L)), 'second half is not a copy of the first');
      const lossOnAll = (task.config as WWConfig).lossOnAll;
      add(onesRange(sample.lossMask, lossOnAll ? 0 : L - 1, 2 * L - 2), 'loss positions wrong');
      break;
    }
    case 'uniform': {
      const L = genLength(task);
      const V = (task.config as AlgorithmicConfig).vocabSize;
      add(ids.length === L, 'wrong length');
      add(ids.every((t) => t >= 1 && t < V), `a token outside the content range 1..${V - 1}`);
      add(onesRange(sample.lossMask, 0, L - 2), 'loss is not on all positions but the last');
      add(sample.attentionMask.every((m) => m === 1), 'attention mask is not all ones');
      break;
    }
    case 'eca': {
      const c = task.config as EcaConfig;
      add(ecaRowsFollowRule(ids, genLength(task), c.rows, c.rule), `rows do not follow rule ${c.rule}`);
      break;
    }
    case 'dyck': {
      const c = task.config as DyckConfig;
      const depth = dyckPrefixDepth(ids, c.k);
      add(depth >= 0, 'not a valid Dyck prefix');
      if (c.length % 2 === 0) add(depth === 0, 'even-length Dyck word is not balanced');
      add(onesRange(sample.lossMask, 0, ids.length - 2), 'loss is not on all positions but the last');
      break;
    }
    case 'dyck_shuffle': {
      const c = task.config as DyckConfig;
      add(ids.length === c.length, 'wrong length');
      add(isShuffleDyckPrefix(ids, c.k, c.maxDepth), `not a shuffle-Dyck prefix with depth <= ${c.maxDepth}`);
      add(onesRange(sample.lossMask, 0, ids.length - 2), 'loss is not on all positions but the last');
      break;
    }
  }
  return v;
}

function genLength(task: ProceduralTask): number {
  const c = task.config as AlgorithmicConfig | EcaConfig;
  return c.curriculumLength ?? c.seqLength;
}
