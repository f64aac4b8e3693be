// Semantic pretraining corpora (spec §7): streaming loaders for C4, CodeParrot and DeepMind-Math, the
// packers that turn documents into fixed-length sequences, and the DM-Math character tokenizer and
// problem accuracy. See docs/data.md.

export * from './files.ts';
export * from './pack.ts';
export * from './text.ts';
export * from './dmmath.ts';
export * from './gpt2.ts';
