import { describe, expect, it } from 'vitest';
import { kernel, ro, rw } from '../../kernels/spec.ts';
import { create } from 'webgpu';
import { GPUErrorWithContext, PRECISION_TOGGLES, probePrecision } from '../../engine/device.ts';
import { Engine } from '../../engine/engine.ts';
import { KernelCompileError } from '../../engine/pipelines.ts';
import { useEngine } from '../helpers/gpu.ts';

const engine = useEngine();

describe('device', () => {
  it('reports the adapter in one line and the limits it asked for', async () => {
    const e = await engine();
    const line = e.device.describe();
    expect(line).not.toContain('\n');
    expect(line).toMatch(/\[(software|hardware), \w+(, (software|hardware) plan)?\]$/);
    // We ask for the adapter's largest limits, so the device has at least the WebGPU defaults.
    expect(e.device.limits.maxStorageBufferBindingSize).toBeGreaterThanOrEqual(128 * 1024 * 1024);
    expect(e.device.limits.maxComputeInvocationsPerWorkgroup).toBeGreaterThanOrEqual(256);
    expect(e.device.limits.maxStorageBufferBindingSize).toBe(e.device.adapter.limits.maxStorageBufferBindingSize);
    for (const f of ['timestamp-query', 'shader-f16', 'subgroups'])
      expect(e.device.hasFeature(f)).toBe(e.device.adapter.features.has(f));
  });

  it('runs a compute shader and the result is right', async () => {
    const e = await engine();
    // out[i] = a[i] * a[i] + P.c, over a size that is not a multiple of the workgroup.
    const spec = kernel({
      name: 'test.square_plus',
      bindings: [ro('a'), rw('out')],
      uniforms: [['n', 'u32'], ['c', 'f32']],
      workgroupSize: [64, 1, 1],
      body: `
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i >= P.n) { return; }
  out[i] = a[i] * a[i] + P.c;
}`,
    });
    const n = 1001;
    const a = Float32Array.from({ length: n }, (_, i) => (i % 37) - 18.5);
    const ta = e.tensor(a);
    const out = e.tensor(new Float32Array(n).fill(-1e30));
    e.dispatch(spec, [ta, out], { n, c: 0.25 }, [Math.ceil(n / 64)]);
    const got = await out.read();
    for (let i = 0; i < n; i++) expect(got[i]).toBe(Math.fround(Math.fround(a[i]! * a[i]!) + 0.25));
  });

  it('a broken shader raises an error naming the kernel', async () => {
    const e = await engine();
    const bad = kernel({
      name: 'test.broken_kernel',
      bindings: [rw('out')],
      uniforms: [],
      workgroupSize: [1, 1, 1],
      body: `@compute @workgroup_size(1) fn main() { out[0] = undefined_thing; }`,
    });
    await expect(e.pipelines.compile(bad)).rejects.toThrow(KernelCompileError);
    await expect(e.pipelines.compile(bad)).rejects.toThrow(/test\.broken_kernel.*undefined_thing/s);
  });

  it('an impossible buffer size raises a clear error', async () => {
    const e = await engine();
    const huge = 2 ** 52;
    let err: unknown;
    try {
      e.device.createBuffer('weights of a planet-sized model', huge, GPUBufferUsage.STORAGE);
    } catch (x) {
      err = x;
    }
    expect(err).toBeInstanceOf(GPUErrorWithContext);
    expect(String((err as Error).message)).toMatch(/planet-sized.*maxBufferSize/s);
    expect(() => e.empty([2 ** 20, 2 ** 20, 64])).toThrow(/maxBufferSize/);
  });

  it('a validation error inside a scope names the object', async () => {
    const e = await engine();
    await expect(
      e.device.scoped('buffer "mapped storage"', () =>
        e.gpu.createBuffer({ label: 'mapped storage', size: 64, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.MAP_READ }),
      ),
    ).rejects.toThrow(/validation error in buffer "mapped storage"/);
  });

  it('probes what the adapter offers for lower precision under Dawn adapter toggles', async () => {
    const e = await engine();
    const offers = await probePrecision();
    expect(offers.map((o) => o.toggles)).toEqual([[], [PRECISION_TOGGLES[0]], [...PRECISION_TOGGLES]]);
    // Without toggles: the engine's own adapter.
    expect(offers[0]!.shaderF16).toBe(e.device.adapter.features.has('shader-f16'));
    for (const o of offers) {
      // Against Dawn asked directly with the same options (default adapter choice, as the engine's).
      const flags = ['disable-dawn-features=timestamp_quantization', ...(o.toggles.length ? [`enable-dawn-features=${o.toggles.join(',')}`] : [])];
      if (process.env.KINDLING_BACKEND) flags.push(`backend=${process.env.KINDLING_BACKEND}`);
      const direct = await create(flags).requestAdapter(process.env.KINDLING_SOFTWARE === '1' ? { forceFallbackAdapter: true } : { powerPreference: 'high-performance' });
      if (process.env.KINDLING_ADAPTER) continue; // named adapters are matched by name: not this direct call
      expect(o.features).toEqual([...direct!.features].map(String).sort());
      expect(o.shaderF16).toBe(o.features.includes('shader-f16'));
      expect(o.subgroupMatrix).toBe(o.features.includes('chromium-experimental-subgroup-matrix'));
      if (!o.subgroupMatrix) expect(o.subgroupMatrixConfigs).toEqual([]);
    }
    // Toggles only add features.
    for (const f of offers[0]!.features) expect(offers[2]!.features).toContain(f);
  });

  it('opens its device on an adapter with the Dawn toggles given (DeviceOptions.toggles, KINDLING_DAWN_TOGGLES)', async () => {
    const offers = await probePrecision();
    const e = await Engine.create({ toggles: [...PRECISION_TOGGLES] });
    try {
      // The adapter the engine got lists what the probe found under both toggles, not what it found under none.
      expect([...e.device.adapter.features].map(String).sort()).toEqual(offers[2]!.features);
      expect(e.device.features.has('shader-f16')).toBe(offers[2]!.shaderF16);
    } finally {
      e.destroy();
    }
    const prev = process.env.KINDLING_DAWN_TOGGLES;
    process.env.KINDLING_DAWN_TOGGLES = ` ${PRECISION_TOGGLES.join(' , ')} `;
    try {
      const f = await Engine.create();
      expect([...f.device.adapter.features].map(String).sort()).toEqual(offers[2]!.features);
      f.destroy();
    } finally {
      if (prev === undefined) delete process.env.KINDLING_DAWN_TOGGLES;
      else process.env.KINDLING_DAWN_TOGGLES = prev;
    }
  });
});
