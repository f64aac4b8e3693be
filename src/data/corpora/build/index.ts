// `kindling corpora build`: the embedded, offline, redistributable default corpora (docs/data.md,
// "Embedded default corpora"): English (State of the Union addresses as C4 shards), code (the Python
// standard library as CodeParrot records) and math (generated DeepMind-Math-style problems).

export * from './common.ts';
export * from './tar.ts';
export * from './english.ts';
export * from './code.ts';
export * from './mathgen.ts';
export * from './math.ts';
