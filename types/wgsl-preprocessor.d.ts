declare module 'wgsl-preprocessor' {
  /** Tagged template: `#if cond`, `#elif`, `#else`, `#endif` blocks resolved from interpolated booleans. */
  export function wgsl(strings: TemplateStringsArray, ...values: unknown[]): string;
}
declare module 'wgsl-preprocessor/wgsl-preprocessor.js' {
  export function wgsl(strings: TemplateStringsArray, ...values: unknown[]): string;
}
