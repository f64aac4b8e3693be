// Procedural pretraining data (spec §1–2): bit-exact RNGs, the eleven generators of the paper, the
// shuffled control, mixtures, batching, loaders and invariant checks. Pure TypeScript, no GPU.

export * from '../../util/random.ts';
export * from './sample.ts';
export * from './algorithmic.ts';
export * from './dyck.ts';
export * from './eca.ts';
export * from './shuffle.ts';
export * from './registry.ts';
export * from './mixture.ts';
export * from './batch.ts';
export * from './dataset.ts';
export * from './invariants.ts';
