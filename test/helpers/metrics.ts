// The records of a run's metrics.jsonl without its wall-clock fields (time, tokens_per_s, ms_per_step),
// so two runs of the same training can be compared record by record.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export function metricRecords(dir: string): Record<string, number>[] {
  return readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, number>)
    .map(({ time: _t, tokens_per_s: _a, ms_per_step: _b, ...rest }) => rest);
}
