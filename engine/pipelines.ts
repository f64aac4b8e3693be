/**
 * Pipeline cache: one compute pipeline per specialised kernel source. Compile errors are collected
 * through error scopes and reported naming the kernel (`KernelCompileError`).
 */
import type { KernelSpec } from '../kernels/spec.ts';
import type { Device } from './device.ts';
import { gpuWait } from './wait.ts';

export class KernelCompileError extends Error {
  constructor(
    readonly kernel: string,
    message: string,
  ) {
    super(`kernel "${kernel}" failed to compile: ${message}`);
    this.name = 'KernelCompileError';
  }
}

export interface CompiledKernel {
  spec: KernelSpec;
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
  id: number;
  /** Bytes of the uniform block (4 per field, at least 4). */
  uniformBytes: number;
}

export class PipelineCache {
  private byKey = new Map<string, CompiledKernel>();
  /**
   * Memoised specs (kernels/*: `memo`) come back as the same object on every dispatch: look them up
   * by identity first instead of building and hashing `name + code` (tens of KB for the unrolled
   * matmuls) per dispatch (what it saves: docs/performance.md).
   */
  private bySpec = new WeakMap<KernelSpec, CompiledKernel>();
  private pending: Promise<void>[] = [];
  private nextId = 1;

  constructor(private readonly device: Device) {}

  get size(): number {
    return this.byKey.size;
  }

  /**
   * The compiled kernel for `spec`, compiling it synchronously on first use. Errors surface at the
   * next `flushErrors()` (the engine calls it at every sync point) or at once with `compile()`.
   */
  get(spec: KernelSpec): CompiledKernel {
    const same = this.bySpec.get(spec);
    if (same) return same;
    const key = spec.name + '\u0000' + spec.code;
    const hit = this.byKey.get(key);
    if (hit) {
      this.bySpec.set(spec, hit);
      return hit;
    }
    for (const r of spec.requires ?? [])
      if (!this.device.hasFeature(r))
        throw new KernelCompileError(spec.name, `needs the "${r}" feature, which this adapter/device lacks`);
    const gpu = this.device.gpu;
    gpu.pushErrorScope('validation');
    const module = gpu.createShaderModule({ label: spec.name, code: spec.code });
    const entries: GPUBindGroupLayoutEntry[] = spec.bindings.map((b, i) =>
      b.access === 'texture'
        ? { binding: i, visibility: GPUShaderStage.COMPUTE, texture: { sampleType: 'unfilterable-float', viewDimension: '2d' } }
        : { binding: i, visibility: GPUShaderStage.COMPUTE, buffer: { type: b.access === 'read' ? 'read-only-storage' : 'storage' } },
    );
    entries.push({ binding: spec.bindings.length, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'uniform', hasDynamicOffset: true } });
    const layout = gpu.createBindGroupLayout({ label: spec.name, entries });
    const pipeline = gpu.createComputePipeline({
      label: spec.name,
      layout: gpu.createPipelineLayout({ label: spec.name, bindGroupLayouts: [layout] }),
      compute: { module, entryPoint: 'main' },
    });
    const done = gpu.popErrorScope().then(async (err) => {
      if (!err) return;
      this.byKey.delete(key);
      this.bySpec.delete(spec);
      const info = await module.getCompilationInfo();
      const msgs = info.messages.filter((m) => m.type === 'error').map((m) => `line ${m.lineNum}:${m.linePos} ${m.message}`);
      throw new KernelCompileError(spec.name, msgs.length ? msgs.join('; ') : err.message);
    });
    this.pending.push(done);
    const compiled: CompiledKernel = { spec, pipeline, layout, id: this.nextId++, uniformBytes: Math.max(4, spec.uniforms.length * 4) };
    this.byKey.set(key, compiled);
    this.bySpec.set(spec, compiled);
    return compiled;
  }

  /** Compile now and throw a KernelCompileError if the source is invalid. */
  async compile(spec: KernelSpec): Promise<CompiledKernel> {
    const k = this.get(spec);
    await this.flushErrors();
    return k;
  }

  /** Await every compile started so far; throws the first error (naming its kernel). */
  async flushErrors(): Promise<void> {
    const p = this.pending;
    this.pending = [];
    if (p.length) await gpuWait(Promise.all(p));
  }
}
