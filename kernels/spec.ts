/**
 * Declarative kernel specs. Every kernel family in kernels/ returns a `KernelSpec`: the WGSL source
 * (already specialised: tile sizes, dtype, fused epilogues are compiled in), its storage bindings,
 * its uniform fields and its workgroup size. The engine builds the bind-group layout from the
 * bindings, packs the uniforms in declared order, and caches pipelines by `name` + source.
 *
 * This module (like all of kernels/) imports nothing from engine/.
 */

/** Storage buffer access, or `texture`: a sampled `texture_2d<f32>` read with textureLoad (an rgba32float texture). */
export type Access = 'read' | 'read_write' | 'texture';
export type ScalarType = 'u32' | 'i32' | 'f32';

export interface BindingDecl {
  /** WGSL variable name. */
  name: string;
  access: Access;
  /** WGSL store type, e.g. `array<f32>` or `array<vec4<f32>>` (`texture_2d<f32>` for textures). */
  type: string;
}

export interface KernelSpec {
  /** Stable, human-readable name: family.variant[specialisation]. Shown in errors and the profiler. */
  name: string;
  /** Storage bindings, @group(0) @binding(0..n-1) in this order. */
  bindings: BindingDecl[];
  /** Uniform fields, packed as 4-byte scalars into `struct Params` at @binding(n) (named `P`). */
  uniforms: [string, ScalarType][];
  workgroupSize: [number, number, number];
  /** The full WGSL source. Use `header(spec)` from this module to declare bindings and Params. */
  code: string;
  /** Extensions (`f16`, `subgroups`) the source enables. */
  requires?: ('shader-f16' | 'subgroups')[];
}

/** WGSL declarations for a spec's bindings and uniform struct. */
export function header(bindings: BindingDecl[], uniforms: [string, ScalarType][], enables: string[] = []): string {
  const lines: string[] = enables.map((e) => `enable ${e};`);
  bindings.forEach((b, i) => {
    if (b.access === 'texture') lines.push(`@group(0) @binding(${i}) var ${b.name}: ${b.type};`);
    else lines.push(`@group(0) @binding(${i}) var<storage, ${b.access}> ${b.name}: ${b.type};`);
  });
  const fields = uniforms.length ? uniforms.map(([n, t]) => `  ${n}: ${t},`).join('\n') : '  _unused: u32,';
  lines.push(`struct Params {\n${fields}\n}`);
  lines.push(`@group(0) @binding(${bindings.length}) var<uniform> P: Params;`);
  return lines.join('\n');
}

/**
 * Build a spec from its parts; the source is `header(...)` followed by `body`.
 * `body` must define `@compute @workgroup_size(...) fn main(...)`; `WG_X`, `WG_Y`, `WG_Z` constants
 * holding the workgroup size are declared for it.
 */
export function kernel(parts: Omit<KernelSpec, 'code'> & { body: string }): KernelSpec {
  const [x, y, z] = parts.workgroupSize;
  const enables = (parts.requires ?? []).map((r) => (r === 'shader-f16' ? 'f16' : 'subgroups'));
  const code = `${header(parts.bindings, parts.uniforms, enables)}
const WG_X: u32 = ${x}u;
const WG_Y: u32 = ${y}u;
const WG_Z: u32 = ${z}u;
${parts.body}`;
  const { body: _body, ...rest } = parts;
  return { ...rest, code };
}

/** Shorthand binding declarations. */
export const ro = (name: string, type = 'array<f32>'): BindingDecl => ({ name, access: 'read', type });
export const rw = (name: string, type = 'array<f32>'): BindingDecl => ({ name, access: 'read_write', type });
/** A 2D rgba32float texture read with textureLoad (bound as an unfilterable-float texture view). */
export const tex = (name: string): BindingDecl => ({ name, access: 'texture', type: 'texture_2d<f32>' });

/**
 * WGSL expression for a flat invocation index from a 2D dispatch grid (x up to 65535 workgroups,
 * overflow into y), for 1D kernels with workgroup size WG_X. Needs the builtins `gid` and `nwg`:
 * `@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>`.
 */
export const FLAT_INDEX = 'gid.x + gid.y * nwg.x * WG_X';

/** Memoise a spec factory on its JSON-serialisable options. */
export function memo<O, S>(f: (o: O) => S): (o: O) => S {
  const cache = new Map<string, S>();
  return (o: O) => {
    const k = JSON.stringify(o);
    let s = cache.get(k);
    if (!s) {
      s = f(o);
      cache.set(k, s);
    }
    return s;
  };
}
