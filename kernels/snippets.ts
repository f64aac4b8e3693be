/**
 * WGSL snippets shared by several kernel families. Each returns source text to splice into a
 * kernel body; none declares bindings or uniforms.
 */

/** How two slots of a workgroup tree reduction combine (slot `into` takes the result). */
export type TreeOp =
  /** a + b, for any numeric type (f32, vec2<f32>, …). */
  | 'sum'
  /** A WGSL function `fn(a: T, b: T) -> T` declared by the kernel, e.g. a (max, sum) merge. */
  | { fn: string }
  /** Statements combining slot `from` into slot `into` (index expressions), for reductions over several arrays. */
  | { step: (into: string, from: string) => string };

export interface TreeReduceOptions {
  /** The shared array holding one value per invocation (see `sharedArray`). Default `red`. */
  arr?: string;
  /** This invocation's index in the workgroup (local_invocation_index). Default `l`. */
  lane?: string;
  /** Workgroup size: a power of two, as a WGSL constant expression. Default `WG_X`. */
  size?: string;
  /** Default `sum`. */
  op?: TreeOp;
  /** A value to store into `arr[lane]` first (else the caller has stored every lane's value). */
  value?: string;
}

/** `var<workgroup> name: array<type, size>;` — the shared array of a tree reduction. */
export function sharedArray(name: string, type: string, size = 'WG_X'): string {
  return `var<workgroup> ${name}: array<${type}, ${size}>;`;
}

/**
 * WGSL statements: the workgroup tree reduction of arr[0..size) into arr[0]. After a barrier, step w
 * = size/2, size/4, …, 1 combines slot l + w into slot l for every l < w, with a barrier after each
 * step; so the order of every combination depends only on the workgroup size (bitwise reproducible).
 * Call from uniform control flow; every lane may read arr[0] afterwards. The first barrier also
 * orders the stores into arr before it, so the same array can be reduced again after every lane has
 * read the previous result (put a barrier before storing then: see LayerNorm's `tree`).
 */
export function treeReduce(o: TreeReduceOptions = {}): string {
  const arr = o.arr ?? 'red';
  const l = o.lane ?? 'l';
  const op = o.op ?? 'sum';
  const into = l;
  const from = `${l} + w`;
  const step =
    op === 'sum'
      ? `${arr}[${into}] = ${arr}[${into}] + ${arr}[${from}];`
      : 'fn' in op
        ? `${arr}[${into}] = ${op.fn}(${arr}[${into}], ${arr}[${from}]);`
        : op.step(into, from);
  return /* wgsl */ `${o.value !== undefined ? `${arr}[${l}] = ${o.value};\n  ` : ''}workgroupBarrier();
  for (var w = ${o.size ?? 'WG_X'} / 2u; w > 0u; w = w / 2u) {
    if (${l} < w) ${step.includes('\n') ? `{\n      ${step.trim()}\n    }` : `{ ${step} }`}
    workgroupBarrier();
  }`;
}
