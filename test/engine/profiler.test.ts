/** The profiler: per-dispatch device times from timestamp queries, a per-kernel table, a Chrome trace. */
import { describe, expect, it } from 'vitest';
import { axpby, scale } from '../../engine/ops/elementwise.ts';
import { matmul } from '../../engine/ops/matmul.ts';
import { randArray, useEngine } from '../helpers/gpu.ts';

const engine = useEngine();

describe('profiler', () => {
  it('times every dispatch of a recorded step and names its kernel', async (ctx) => {
    const e = await engine();
    ctx.skip(!e.profiler.supported, 'the adapter lacks timestamp-query: nothing to time');
    const a = e.tensor(randArray(64 * 96, 1), [64, 96]);
    const b = e.tensor(randArray(96 * 80, 2), [96, 80]);
    e.profiler.start();
    const c = matmul(a, b);
    const d = scale(c, 2);
    axpby(c, d, 1, -0.5);
    const p = await e.profiler.stop();
    expect(p.dispatches.length).toBe(3);
    const names = p.dispatches.map((x) => x.kernel);
    expect(names[0]).toMatch(/^matmul\./);
    expect(names[1]).toMatch(/^elementwise\.axpby/);
    expect(names[2]).toMatch(/^elementwise\.axpby/);
    for (const x of p.dispatches) {
      expect(x.ms).toBeGreaterThanOrEqual(0);
      expect(Number.isFinite(x.startMs)).toBe(true);
    }
    expect(p.totalMs).toBeGreaterThan(0);
    // The matmul declared its FLOPs, so the table reports a rate for it.
    const mm = p.rows().find((r) => r.kernel.startsWith('matmul.'))!;
    expect(mm.calls).toBe(1);
    expect(p.dispatches[0]!.flops).toBe(2 * 64 * 96 * 80);
    const table = p.table();
    expect(table).toContain(mm.kernel);
    expect(table.split('\n').at(-1)).toMatch(/^total\s+3\s/);
    const trace = JSON.parse(p.chromeTrace()) as { traceEvents: { name: string; ph: string; dur: number }[] };
    expect(trace.traceEvents.map((t) => t.name)).toEqual(names);
    expect(trace.traceEvents.every((t) => t.ph === 'X' && t.dur >= 0)).toBe(true);
  });

  it("reports unquantised times (not all multiples of Dawn's default 65.536 µs step)", async (ctx) => {
    const e = await engine();
    ctx.skip(!e.profiler.supported, 'the adapter lacks timestamp-query');
    const x = e.tensor(randArray(4096, 4));
    e.profiler.start();
    for (let i = 0; i < 8; i++) scale(x, 1 + i);
    const p = await e.profiler.stop();
    const q = 65536e-6; // ms
    const offGrid = p.dispatches.filter((d) => d.ms > 0 && Math.abs(d.ms / q - Math.round(d.ms / q)) > 1e-3);
    expect(offGrid.length, p.dispatches.map((d) => d.ms.toFixed(6)).join(' ')).toBeGreaterThan(0);
  });

  it('records nothing while stopped', async (ctx) => {
    const e = await engine();
    ctx.skip(!e.profiler.supported, 'the adapter lacks timestamp-query');
    e.profiler.start();
    const p0 = await e.profiler.stop();
    scale(e.tensor(randArray(10, 3)), 3);
    await e.sync();
    expect(p0.dispatches.length).toBe(0);
    e.profiler.start();
    const p1 = await e.profiler.stop();
    expect(p1.dispatches.length).toBe(0);
  });
});
