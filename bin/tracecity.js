#!/usr/bin/env node
// Launcher for the TypeScript CLI: tsx compiles on the fly (no build step).
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../services/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
