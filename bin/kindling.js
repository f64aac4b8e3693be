#!/usr/bin/env node
// The `kindling` command: registers tsx (TypeScript at run time, no build step) and runs the CLI.
import { register } from 'tsx/esm/api';

register();
const { runCli } = await import('../src/cli/main.ts');
await runCli(process.argv.slice(2));
