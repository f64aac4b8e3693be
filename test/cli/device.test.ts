// `kindling device` for real: it opens the device, prints the adapter, features, limits and kernel
// plan, then what the adapter offers for lower precision under Dawn's adapter toggles (text and --json).
import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { PRECISION_TOGGLES } from '../../engine/device.ts';
import { captureOutput } from '../helpers/console.ts';

const io = captureOutput();

describe('kindling device', () => {
  it('prints the adapter, the plan and the lower-precision offers; --json has the same offers', async () => {
    expect(await main(['device'])).toBe(0);
    const text = io.out;
    expect(text).toMatch(/^adapter: {2}.+\[(software|hardware), /);
    expect(text).toContain('kernel plan: ');
    const features = new Set(/\nfeatures: (.*)\n/.exec(text)![1]!.split(', '));
    const all = text.slice(text.indexOf('lower precision')).trim().split('\n');
    const lines = all.slice(1, 4);
    expect(lines.map((l) => l.trim().split(/ {2,}/)[0])).toEqual(['no toggles', PRECISION_TOGGLES[0], PRECISION_TOGGLES.join(' + ')]);
    // Then whether training in precision f16 can run here: the device's own shader-f16.
    expect(all[4]).toBe(features.has('shader-f16') ? 'precision f16 (training key `precision`): available on this device' : expect.stringMatching(/^precision f16 \(training key `precision`\): not available/));
    // Without toggles the offer is the device's own feature list.
    expect(lines[0]).toContain(`shader-f16 ${features.has('shader-f16') ? 'yes' : 'no'}`);
    io.out = '';
    expect(await main(['device', '--json'])).toBe(0);
    const j = JSON.parse(io.out) as { features: string[]; precision: { toggles: string[]; shaderF16: boolean; subgroupMatrix: boolean }[] };
    expect(j.precision.map((o) => o.toggles)).toEqual([[], [PRECISION_TOGGLES[0]], [...PRECISION_TOGGLES]]);
    expect(j.precision[0]!.shaderF16).toBe(j.features.includes('shader-f16'));
    expect((j as unknown as { precisionF16: boolean }).precisionF16).toBe(j.features.includes('shader-f16'));
    for (const [i, o] of j.precision.entries()) {
      expect(lines[i]).toContain(`shader-f16 ${o.shaderF16 ? 'yes' : 'no'}`);
      expect(lines[i]).toContain(`subgroup matrices ${o.subgroupMatrix ? 'yes' : 'no'}`);
    }
  });
});
