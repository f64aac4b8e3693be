/**
 * Device acquisition: one WebGPU device through Dawn's Node bindings (`webgpu` package).
 *
 * - Prefers a hardware adapter and falls back to a software one (Mesa's lavapipe / llvmpipe).
 * - `KINDLING_ADAPTER` (or the `adapter` option) picks an adapter by (sub)string of its name;
 *   `KINDLING_BACKEND` (or `backend`) picks Dawn's backend (vulkan, metal, d3d12, opengl, ...).
 * - Requests the adapter's largest storage/buffer/workgroup limits and the optional features
 *   timestamp-query, shader-f16 and subgroups where present.
 * - Turns validation and out-of-memory errors into exceptions naming the kernel or buffer involved,
 *   and device loss into a `DeviceLostError` with the reason.
 */
import { create, globals } from 'webgpu';
import { planFor, type KernelPlan } from './plan.ts';
import { gpuWait } from './wait.ts';

// Dawn's Node bindings export the WebGPU globals (GPUBufferUsage, GPUMapMode, ...); code that
// uses them by name (ours and peers such as TensorFlow.js) expects them on globalThis.
for (const [k, v] of Object.entries(globals as Record<string, unknown>)) {
  if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
}

/** Failure to get any WebGPU adapter; the message says what to install. */
export class NoAdapterError extends Error {
  constructor(detail: string) {
    super(
      `No WebGPU adapter is available (${detail}).\n` +
        `kindling runs on any GPU with a Vulkan/Metal/D3D12 driver, or on the CPU through Mesa's\n` +
        `software Vulkan driver (lavapipe, Mesa >= 24). On Debian 12 run \`npm run setup\` as root, or add\n` +
        `bookworm-backports from the mirror in /etc/apt/sources.list(.d) and install from it:\n` +
        `  bash scripts/apt-mirror.sh bookworm > /etc/apt/sources.list.d/backports.list\n` +
        `  apt-get update && apt-get install -y -t bookworm-backports mesa-vulkan-drivers libvulkan1\n` +
        `On Debian 13 / Ubuntu 24.04+: apt-get install -y mesa-vulkan-drivers libvulkan1.`,
    );
    this.name = 'NoAdapterError';
  }
}

/** A validation, out-of-memory or internal error reported by WebGPU, with the object it concerns. */
export class GPUErrorWithContext extends Error {
  constructor(
    readonly kind: 'validation' | 'out-of-memory' | 'internal',
    readonly what: string,
    message: string,
  ) {
    super(`${kind} error in ${what}: ${message}`);
    this.name = kind === 'out-of-memory' ? 'GPUOutOfMemoryError' : 'GPUValidationError';
  }
}

export class DeviceLostError extends Error {
  constructor(reason: string, message: string) {
    super(`WebGPU device lost (${reason}): ${message}`);
    this.name = 'DeviceLostError';
  }
}

export interface DeviceOptions {
  /** Adapter name or a substring of it (case-insensitive); default: env KINDLING_ADAPTER. */
  adapter?: string;
  /** Dawn backend: vulkan, metal, d3d12, d3d11, opengl, opengles, null; default: env KINDLING_BACKEND. */
  backend?: string;
  /** Force the software adapter even where a GPU exists (env KINDLING_SOFTWARE=1). */
  software?: boolean;
  /** Optional features to leave out even when present (for testing fallbacks). */
  disableFeatures?: string[];
  /**
   * Choose kernels and plans as for this kind of adapter instead of the one found (env
   * KINDLING_PLAN_AS=hardware|software): lets the CPU-only test machine run the GPU code paths
   * (shared-memory tiles, split-K, the GPU reduction plans and attention kernels) end to end.
   * Changes choices only, never results' meaning; `plan.kind` reports the plan, `info.software`
   * still the adapter (engine/plan.ts).
   */
  planAs?: 'hardware' | 'software';
  /**
   * The MLP's GELU inside its matmuls (env KINDLING_GELU_IN_PRODUCTS=1|0; default: on the hardware
   * plan only; `plan.matmul.geluInProducts`, engine/plan.ts). Same results up to float32 rounding.
   */
  geluInProducts?: boolean;
  /**
   * Attention on the block kernels where they run (env KINDLING_BLOCK_ATTENTION=1|0; default: on the
   * hardware plan only; `plan.attention.block`, engine/plan.ts). Same results up to float32 rounding.
   */
  blockAttention?: boolean;
  /**
   * Use at most these limits instead of the adapter's maxima (e.g. a smaller maxBufferSize, as a
   * smaller device has): they are requested (WebGPU raises a request below its default to the
   * default) and `Device.limits`, which the engine plans and checks buffers against, is capped to
   * them, so what exceeds them fails as it would on such a device, with the sizes named.
   */
  limits?: Partial<Record<(typeof MAX_LIMITS)[number], number>>;
  /**
   * Dawn adapter toggles to enable (env KINDLING_DAWN_TOGGLES, comma-separated), e.g.
   * `vulkan_enable_f16_on_nvidia`, without which Dawn's Vulkan backend hides `shader-f16` on NVIDIA
   * adapters (PRECISION_TOGGLES; `kindling device` reports what each unlocks).
   */
  toggles?: string[];
}

export interface AdapterSummary {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** true for CPU implementations (lavapipe/llvmpipe, SwiftShader, WARP). */
  software: boolean;
  backend: string;
  subgroupMinSize: number;
  subgroupMaxSize: number;
}

const SOFTWARE_NAMES = /llvmpipe|lavapipe|swiftshader|software|microsoft basic render|warp/i;

/** Adapters Dawn can see, as {backend, name}; empty when Dawn lists none. */
export async function listAdapters(backend?: string): Promise<{ backend: string; name: string }[]> {
  // Dawn answers an unknown adapter name with the list of available adapters.
  const flags = ['adapter=\u0000kindling-list-adapters'];
  if (backend) flags.push(`backend=${backend}`);
  const gpu = create(flags);
  // requestAdapter rejects asynchronously on some builds and throws on others; both carry the list.
  let text = '';
  try {
    await gpu.requestAdapter();
  } catch (e) {
    text = String((e as Error).message);
  }
  const out: { backend: string; name: string }[] = [];
  for (const m of text.matchAll(/backend: '([^']*)', name: '([^']*)'/g)) out.push({ backend: m[1]!, name: m[2]! });
  return out;
}

/**
 * Dawn's instance (the object `create` returns) must outlive every adapter and device made from it:
 * if it is garbage-collected, Dawn tears down under a live device and the process crashes. We keep
 * each instance we make here for the life of the process.
 */
const instances = new Set<GPU>();
let liveDevices = 0;
function dawnInstance(flags: string[]): GPU {
  const gpu = create(flags);
  instances.add(gpu);
  return gpu;
}

async function requestAdapterWith(flags: string[], power?: GPUPowerPreference): Promise<GPUAdapter | null> {
  const gpu = dawnInstance(flags);
  try {
    return await gpu.requestAdapter(power ? { powerPreference: power } : undefined);
  } catch (e) {
    const msg = String((e as Error).message);
    throw new NoAdapterError(msg.split('\n').slice(0, 6).join('; '));
  }
}

function summarise(adapter: GPUAdapter, backend: string): AdapterSummary {
  const info = adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean; subgroupMinSize?: number; subgroupMaxSize?: number };
  const name = `${info.vendor} ${info.architecture} ${info.device} ${info.description}`;
  return {
    vendor: info.vendor,
    architecture: info.architecture,
    device: info.device,
    description: info.description,
    software: Boolean(info.isFallbackAdapter) || info.architecture === 'software' || SOFTWARE_NAMES.test(name),
    backend,
    subgroupMinSize: info.subgroupMinSize ?? 0,
    subgroupMaxSize: info.subgroupMaxSize ?? 0,
  };
}

function ensureRuntimeDir(): void {
  // Mesa's drivers warn (and some builds fail) without XDG_RUNTIME_DIR.
  if (!process.env.XDG_RUNTIME_DIR) process.env.XDG_RUNTIME_DIR = `/tmp/kindling-xdg-${process.getuid?.() ?? 0}`;
}

/**
 * Dawn toggles for every device: timestamps unquantised. Dawn rounds timestamp queries down to
 * multiples of 2^16 ns (65.5 µs) by default (a browser's defence against timing attacks), which
 * turned every kernel under ~0.1 ms into 0 or 0.066 ms in the profiler on lavapipe and an H200.
 */
const DAWN_FLAGS = ['disable-dawn-features=timestamp_quantization'];

/** The limits we ask for: the adapter's largest values of these. */
const MAX_LIMITS = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage',
  'maxBindGroups',
  'maxTextureDimension2D',
] as const;

const WANTED_FEATURES = ['timestamp-query', 'shader-f16', 'subgroups'] as const;

/**
 * The adapter `Device.create` uses: `opts.adapter` / KINDLING_ADAPTER by (sub)string of its name,
 * else Dawn's high-performance choice (or the fallback adapter with `software`). `extraFlags` are
 * more Dawn instance options (e.g. `enable-dawn-features=...` adapter toggles).
 */
async function pickAdapter(opts: DeviceOptions, extraFlags: string[] = []): Promise<{ adapter: GPUAdapter; backend: string | undefined }> {
  ensureRuntimeDir();
  const wanted = opts.adapter ?? process.env.KINDLING_ADAPTER;
  const backend = opts.backend ?? process.env.KINDLING_BACKEND;
  const software = opts.software ?? process.env.KINDLING_SOFTWARE === '1';
  const flags = [...DAWN_FLAGS, ...extraFlags];
  const baseFlags = [...(backend ? [`backend=${backend}`] : []), ...flags];

  let adapter: GPUAdapter | null = null;
  if (wanted) {
    // Dawn matches adapter names exactly and answers an unknown name with the list of adapters:
    // try the name as given, else pick the first listed name containing it.
    try {
      adapter = await requestAdapterWith([...baseFlags, `adapter=${wanted}`]);
    } catch {
      const all = await listAdapters(backend);
      const pick = all.find((a) => a.name.toLowerCase().includes(wanted.toLowerCase()));
      if (!pick) {
        const names = all.map((a) => `  * ${a.backend}: ${a.name}`).join('\n') || '  (none)';
        throw new NoAdapterError(`no adapter matches "${wanted}"; available adapters:\n${names}`);
      }
      adapter = await requestAdapterWith([`adapter=${pick.name}`, `backend=${pick.backend}`, ...flags]);
    }
  } else {
    // Dawn's high-performance choice is a GPU whenever one exists; it falls back to a CPU
    // driver (lavapipe) only when there is none. `software` asks for the CPU driver directly.
    const gpuApi = dawnInstance(baseFlags);
    adapter = await gpuApi.requestAdapter(software ? { forceFallbackAdapter: true } : { powerPreference: 'high-performance' });
  }
  if (!adapter) throw new NoAdapterError('Dawn returned no adapter');
  return { adapter, backend };
}

/**
 * Dawn adapter toggles that expose lower-precision features Dawn hides by default:
 * `vulkan_enable_f16_on_nvidia` (Dawn's Vulkan backend refuses `shader-f16` on NVIDIA adapters
 * without it, pending f16 conformance-test failures there, crbug.com/42251215) and
 * `allow_unsafe_apis` (experimental features, among them `chromium-experimental-subgroup-matrix`).
 */
export const PRECISION_TOGGLES = ['vulkan_enable_f16_on_nvidia', 'allow_unsafe_apis'] as const;

/** The Dawn adapter toggles a device is created with: `opts.toggles`, else env KINDLING_DAWN_TOGGLES (comma-separated). */
export function requestedToggles(opts: DeviceOptions = {}): string[] {
  return opts.toggles ?? (process.env.KINDLING_DAWN_TOGGLES ?? '').split(',').map((t) => t.trim()).filter(Boolean);
}

/** What an adapter offers for lower precision under one set of adapter toggles. */
export interface PrecisionOffer {
  toggles: string[];
  /** Every feature the adapter lists under these toggles. */
  features: string[];
  shaderF16: boolean;
  subgroupMatrix: boolean;
  /** `adapter.info.subgroupMatrixConfigs` where Dawn reports them: "component→result M×N×K". */
  subgroupMatrixConfigs: string[];
}

/**
 * Asks Dawn for the adapter `Device.create(opts)` would use, with no toggles, with
 * `vulkan_enable_f16_on_nvidia`, and with both PRECISION_TOGGLES, and reports what each offers.
 * Opens no device (the engine itself requests none of these toggles).
 */
export async function probePrecision(opts: DeviceOptions = {}): Promise<PrecisionOffer[]> {
  const out: PrecisionOffer[] = [];
  for (const toggles of [[], [PRECISION_TOGGLES[0]], [...PRECISION_TOGGLES]]) {
    const { adapter } = await pickAdapter(opts, toggles.length ? [`enable-dawn-features=${toggles.join(',')}`] : []);
    type Config = { componentType: string; resultComponentType: string; M: number; N: number; K: number };
    const info = adapter.info as GPUAdapterInfo & { subgroupMatrixConfigs?: Config[] };
    out.push({
      toggles,
      features: [...adapter.features].map(String).sort(),
      shaderF16: adapter.features.has('shader-f16'),
      subgroupMatrix: adapter.features.has('chromium-experimental-subgroup-matrix'),
      subgroupMatrixConfigs: [...(info.subgroupMatrixConfigs ?? [])].map((c) => `${c.componentType}→${c.resultComponentType} ${c.M}×${c.N}×${c.K}`),
    });
  }
  return out;
}

/**
 * The device every engine object is made on. Create with `await Device.create()`,
 * and call `destroy()` at the end so Node can exit.
 */
export class Device {
  readonly limits: Record<(typeof MAX_LIMITS)[number] | 'minStorageBufferOffsetAlignment' | 'minUniformBufferOffsetAlignment' | 'maxUniformBufferBindingSize', number>;
  readonly features: ReadonlySet<string>;
  private lost: DeviceLostError | null = null;
  private uncaptured: GPUErrorWithContext | null = null;
  private destroyed = false;

  private constructor(
    readonly gpu: GPUDevice,
    readonly adapter: GPUAdapter,
    readonly info: AdapterSummary,
    /** Every kernel choice the ops make on this device (engine/plan.ts). */
    readonly plan: KernelPlan,
    caps: DeviceOptions['limits'] = {},
  ) {
    const l = gpu.limits as unknown as Record<string, number>;
    const limits = {} as Record<string, number>;
    for (const k of [...MAX_LIMITS, 'minStorageBufferOffsetAlignment', 'minUniformBufferOffsetAlignment', 'maxUniformBufferBindingSize'])
      limits[k] = Math.min(l[k]!, (caps as Record<string, number | undefined>)[k] ?? Infinity);
    this.limits = limits as Device['limits'];
    this.features = new Set([...gpu.features] as string[]);
    liveDevices++;
    gpu.lost.then((info) => {
      if (!this.destroyed) this.lost = new DeviceLostError(info.reason, info.message);
    });
    gpu.onuncapturederror = (ev: GPUUncapturedErrorEvent) => {
      const err = ev.error;
      const kind = err instanceof GPUOutOfMemoryError ? 'out-of-memory' : err instanceof GPUInternalError ? 'internal' : 'validation';
      this.uncaptured ??= new GPUErrorWithContext(kind, labelFromMessage(err.message), err.message);
    };
  }

  static async create(opts: DeviceOptions = {}): Promise<Device> {
    const toggles = requestedToggles(opts);
    const { adapter, backend } = await pickAdapter(opts, toggles.length ? [`enable-dawn-features=${toggles.join(',')}`] : []);

    const requiredLimits: Record<string, number> = {};
    const al = adapter.limits as unknown as Record<string, number>;
    for (const k of MAX_LIMITS) if (typeof al[k] === 'number') requiredLimits[k] = Math.min(al[k]!, opts.limits?.[k] ?? Infinity);
    const disabled = new Set(opts.disableFeatures ?? (process.env.KINDLING_DISABLE_FEATURES ?? '').split(',').filter(Boolean));
    const requiredFeatures = WANTED_FEATURES.filter((f) => adapter!.features.has(f) && !disabled.has(f)) as GPUFeatureName[];
    const gpu = await adapter.requestDevice({ requiredLimits, requiredFeatures, label: 'kindling' });
    const backendName = backend ?? (process.platform === 'darwin' ? 'metal' : process.platform === 'win32' ? 'd3d12' : 'vulkan');
    const info = summarise(adapter, backendName);
    const planAs = (opts.planAs ?? process.env.KINDLING_PLAN_AS) as KernelPlan['kind'] | undefined;
    if (planAs && planAs !== 'hardware' && planAs !== 'software')
      throw new Error(`KINDLING_PLAN_AS / planAs must be "hardware" or "software", got "${planAs}"`);
    const geluEnv = process.env.KINDLING_GELU_IN_PRODUCTS;
    if (opts.geluInProducts === undefined && geluEnv !== undefined && geluEnv !== '0' && geluEnv !== '1')
      throw new Error(`KINDLING_GELU_IN_PRODUCTS must be "1" or "0", got "${geluEnv}"`);
    const geluInProducts = opts.geluInProducts ?? (geluEnv === undefined ? undefined : geluEnv === '1');
    const blockEnv = process.env.KINDLING_BLOCK_ATTENTION;
    if (opts.blockAttention === undefined && blockEnv !== undefined && blockEnv !== '0' && blockEnv !== '1')
      throw new Error(`KINDLING_BLOCK_ATTENTION must be "1" or "0", got "${blockEnv}"`);
    const blockAttention = opts.blockAttention ?? (blockEnv === undefined ? undefined : blockEnv === '1');
    const features = new Set([...gpu.features] as string[]);
    const plan = planFor(info, gpu.limits, features, {
      ...(planAs ? { planAs } : {}),
      textures: process.env.KINDLING_MATMUL_TEXTURE !== '0',
      ...(geluInProducts !== undefined ? { geluInProducts } : {}),
      ...(blockAttention !== undefined ? { blockAttention } : {}),
    });
    return new Device(gpu, adapter, info, plan, opts.limits);
  }

  /** One line: vendor, architecture, description, software or hardware, backend (and the plan where it differs). */
  describe(): string {
    const i = this.info;
    const name = [i.description || i.device, i.vendor && `vendor ${i.vendor}`, i.architecture && `arch ${i.architecture}`].filter(Boolean).join(', ');
    const kind = i.software ? 'software' : 'hardware';
    return `${name} [${kind}, ${i.backend}${this.plan.kind !== kind ? `, ${this.plan.kind} plan` : ''}]`;
  }

  hasFeature(f: string): boolean {
    return this.features.has(f);
  }

  /** Throws the first device loss or uncaptured error seen so far. Called at sync points. */
  check(): void {
    if (this.lost) throw this.lost;
    if (this.uncaptured) {
      const e = this.uncaptured;
      this.uncaptured = null;
      throw e;
    }
  }

  /**
   * Runs `fn` inside validation and out-of-memory error scopes and throws a GPUErrorWithContext
   * naming `what` if either caught an error. Use around object creation (pipelines, buffers).
   */
  async scoped<T>(what: string, fn: () => T | Promise<T>): Promise<T> {
    this.check();
    this.gpu.pushErrorScope('out-of-memory');
    this.gpu.pushErrorScope('validation');
    let value: T;
    try {
      value = await fn();
    } finally {
      const v = await this.gpu.popErrorScope();
      const o = await this.gpu.popErrorScope();
      if (v) throw new GPUErrorWithContext('validation', what, v.message);
      if (o) throw new GPUErrorWithContext('out-of-memory', what, o.message);
    }
    return value;
  }

  /**
   * Creates a buffer, checking the size against the device limits first so that an impossible
   * size fails with a clear message instead of an invalid buffer.
   */
  createBuffer(label: string, size: number, usage: GPUBufferUsageFlags, mappedAtCreation = false): GPUBuffer {
    this.check();
    if (!Number.isFinite(size) || size < 0) throw new RangeError(`buffer "${label}": invalid size ${size}`);
    if (size > this.limits.maxBufferSize)
      throw new GPUErrorWithContext(
        'out-of-memory',
        `buffer "${label}"`,
        `${fmtBytes(size)} exceeds this device's maxBufferSize of ${fmtBytes(this.limits.maxBufferSize)}`,
      );
    const padded = Math.max(4, Math.ceil(size / 4) * 4);
    return this.gpu.createBuffer({ label, size: padded, usage, mappedAtCreation });
  }

  /** Waits until the queue has finished all submitted work; surfaces errors. */
  async sync(): Promise<void> {
    await gpuWait(this.gpu.queue.onSubmittedWorkDone());
    this.check();
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.gpu.destroy();
    // Let the Dawn instances go once no device is left, so Node can exit.
    if (--liveDevices === 0) instances.clear();
  }
}

function labelFromMessage(msg: string): string {
  const m = msg.match(/\[(?:Invalid )?(\w+) "([^"]*)"\]/);
  return m ? `${m[1]} "${m[2]}"` : 'a WebGPU call';
}

export function fmtBytes(n: number): string {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${u[i]}`;
}
