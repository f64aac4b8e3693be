// Training configs whose samples carry no loss position are refused with the reason
// (MIN_TRAINING_LENGTH in src/data/procedural/registry.ts, checked by PROCEDURAL_SCHEMA). The table is
// checked against the generators themselves: one below the minimum, no sample has a loss position; at
// the minimum, every sample has one.
import { describe, expect, it } from 'vitest';
import { createTask, lossCount, MIN_TRAINING_LENGTH, TASK_NAMES, type TaskName } from '../../src/data/procedural/index.ts';
import { ConfigError, loadConfig, PROCEDURAL_SCHEMA } from '../../src/train/config.ts';

const isDyck = (t: TaskName): boolean => t === 'dyck' || t === 'dyck_shuffle';
/** Smallest vocabulary each task accepts: the degenerate case of delete (the query always matches). */
const minVocab = (t: TaskName): number => (t === 'stack' ? 3 : 2);

function lossCounts(t: TaskName, length: number): number[] {
  const task = isDyck(t) ? createTask(t, { length, k: 2 }) : t === 'eca' ? createTask(t, { seqLength: length }) : createTask(t, { seqLength: length, vocabSize: minVocab(t) } as never);
  return Array.from({ length: 64 }, (_, i) => lossCount(task.sample(i)));
}

describe('MIN_TRAINING_LENGTH', () => {
  for (const t of TASK_NAMES) {
    const { min } = MIN_TRAINING_LENGTH[t];
    it(`${t}: ${min - 1 >= 1 ? `length ${min - 1} has no loss position, ` : ''}length ${min} always has one`, () => {
      expect(Math.min(...lossCounts(t, min))).toBeGreaterThan(0);
      if (min > 1) expect(Math.max(...lossCounts(t, min - 1))).toBe(0);
    });
  }
});

describe('PROCEDURAL_SCHEMA refuses lengths without loss positions', () => {
  const load = (argv: string[]) => loadConfig(PROCEDURAL_SCHEMA, { argv });
  it('Dyck length 1, union / delete / stack L 1, a curriculum starting at 1', () => {
    expect(() => load(['--task', 'dyck', '--seq_length', '1'])).toThrow(
      new ConfigError('seq_length: the dyck task needs at least 2 to have any loss position (the loss is on positions 0..n-2, none for n = 1), got 1'),
    );
    expect(() => load(['--task', 'dyck_shuffle', '--seq_length', '1'])).toThrow('seq_length: the dyck_shuffle task needs at least 2');
    expect(() => load(['--task', 'union', '--seq_length', '1'])).toThrow('each half holds floor(L/2) tokens');
    expect(() => load(['--task', 'delete', '--seq_length', '1'])).toThrow('seq_length: the delete task needs at least 2');
    expect(() => load(['--task', 'stack', '--seq_length', '1'])).toThrow('seq_length: the stack task needs at least 2');
    expect(() => load(['--task', 'union', '--use_curriculum', '--curriculum_start', '1'])).toThrow(
      'curriculum_start: the union task needs at least 2 to have any loss position',
    );
  });

  it('the smallest lengths that train on something load', () => {
    expect(load(['--task', 'dyck', '--seq_length', '2']).values.seq_length).toBe(2);
    expect(load(['--task', 'union', '--seq_length', '2']).values.seq_length).toBe(2);
    expect(load(['--task', 'sort', '--seq_length', '1']).values.seq_length).toBe(1);
    expect(load(['--task', 'union', '--use_curriculum', '--curriculum_start', '2']).values.curriculum_start).toBe(2);
  });
});
