/**
 * DESIGN.md "Layers and what each may import": `npm run lint` must fail on a
 * forbidden import. These probes run the project's real ESLint config over
 * code placed (virtually) in each layer; type-aware rules are switched off for
 * the probe files only, because they do not exist on disk.
 */
import { ESLint } from 'eslint';
import tseslint from 'typescript-eslint';
import { describe, expect, it } from 'vitest';

const eslint = new ESLint({
  cwd: process.cwd(),
  overrideConfig: [{ files: ['**/__lint_probe__.ts'], ...tseslint.configs.disableTypeChecked }],
});

async function problems(layerPath: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: `${process.cwd()}/${layerPath}/__lint_probe__.ts` });
  return (result?.messages ?? []).map((m) => `${m.ruleId ?? 'parse'}: ${m.message}`);
}

const forbidden: [layer: string, code: string, rule: string][] = [
  ['protocol', "import { readFileSync } from 'node:fs';\nexport const x = readFileSync;\n", 'no-restricted-imports'],
  ['protocol', "import { createActor } from 'xstate';\nexport const x = createActor;\n", 'no-restricted-imports'],
  ['protocol', "import { Host } from '../services/host/host.ts';\nexport const x = Host;\n", 'no-restricted-imports'],
  ['protocol/wire', "import type { Radio } from '../../actors/ports.ts';\nexport type X = Radio;\n", 'no-restricted-imports'],
  ['actors', "import mqtt from 'mqtt';\nexport const x = mqtt;\n", 'no-restricted-imports'],
  ['actors/demo', "import { Host } from '../../services/host/host.ts';\nexport const x = Host;\n", 'no-restricted-imports'],
  ['actors/demo', "import { SimAir } from '../../hardware/sim/medium.ts';\nexport const x = SimAir;\n", 'no-restricted-imports'],
  ['actors', "import { EventEmitter } from 'node:events';\nexport const x = EventEmitter;\n", 'no-restricted-imports'],
  ['hardware/sim', "import { Host } from '../../services/host/host.ts';\nexport const x = Host;\n", 'no-restricted-imports'],
  ['hardware/sim', "import mqtt from 'mqtt';\nexport const x = mqtt;\n", 'no-restricted-imports'],
  ['actors', 'export const t = Date.now();\n', 'no-restricted-properties'],
  ['protocol', 'export const r = Math.random();\n', 'no-restricted-properties'],
  ['actors', 'export const d = new Date();\n', 'no-restricted-syntax'],
  ['actors', 'setTimeout(() => undefined, 1);\n', 'no-restricted-globals'],
  ['actors/demo', "export const m = { states: { a: { invoke: { src: 'x' } } } };\n", 'no-restricted-syntax'],
  ['actors/demo', 'export const m = { states: { a: { after: { 1000: "b" } } } };\n', 'no-restricted-syntax'],
];

describe('DESIGN.md layer rules are enforced by npm run lint', () => {
  it.each(forbidden)('%s/ rejects %j', async (layer, code, rule) => {
    const found = await problems(layer, code);
    expect(found.some((p) => p.startsWith(`${rule}:`))).toBe(true);
  });

  const allowed: [layer: string, code: string][] = [
    ['protocol', "import { sha256 } from '@noble/hashes/sha2.js';\nexport const x = sha256;\n"],
    ['actors', "import { setup } from 'xstate';\nimport { MisuseError } from '../protocol/errors.ts';\nexport const x = [setup, MisuseError];\n"],
    ['hardware/sim', "import type { Radio } from '../../actors/ports.ts';\nexport type X = Radio;\n"],
    ['services', "import mqtt from 'mqtt';\nimport { SimAir } from '../hardware/sim/medium.ts';\nexport const x = [mqtt, SimAir];\n"],
  ];
  it.each(allowed)('%s/ accepts %j', async (layer, code) => {
    expect(await problems(layer, code)).toEqual([]);
  });
});
