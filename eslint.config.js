// Typed ESLint + the layer rules of DESIGN.md ("Layers and what each may import"),
// expressed as no-restricted-imports per layer so `npm run lint` fails on a
// forbidden import. test/lint/boundaries.test.ts proves each rule fires.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const NODE_BUILTINS = ['node:*'];
const IO_PACKAGES = ['mqtt', 'mqtt/*', 'aedes', 'aedes/*', 'better-sqlite3', 'node-ble', 'dbus-next', 'pino', 'commander', 'cli-progress'];

/** @param {string[]} groups @param {string} message */
const forbid = (groups, message) => ({ group: groups, message });

export const layerRules = {
  protocol: [
    forbid(NODE_BUILTINS, 'protocol/ is pure: no node:* (time and randomness are arguments).'),
    forbid([...IO_PACKAGES, 'xstate', 'zod'], 'protocol/ imports only @noble/*, msgpackr and its own files.'),
    forbid(['**/actors/**', '**/hardware/**', '**/services/**', '**/test/**', '**/bench/**'], 'protocol/ is the bottom layer.'),
  ],
  actors: [
    forbid(NODE_BUILTINS, 'actors/ is pure: effects are data the host interprets.'),
    forbid(IO_PACKAGES, 'actors/ never touches I/O: emit an effect instead.'),
    forbid(['**/hardware/**', '**/services/**', '**/test/**', '**/bench/**'], 'actors/ imports only protocol/ and xstate.'),
  ],
  hardware: [
    forbid(['**/services/**', '**/test/**', '**/bench/**'], 'hardware/ implements the Radio port; it never imports services/.'),
    forbid(['mqtt', 'mqtt/*', 'aedes', 'aedes/*', 'better-sqlite3'], 'hardware/ reaches the broker only through the Bus port.'),
  ],
  services: [forbid(['**/test/**', '**/bench/**'], 'services/ must not depend on tests or benches.')],
};

const restrict = (layer) => ({
  files: [`${layer}/**/*.ts`],
  rules: { 'no-restricted-imports': ['error', { patterns: layerRules[layer] }] },
});

export default tseslint.config(
  { ignores: ['node_modules/**', 'out/**', 'bin/**', 'test/lint/fixtures/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: { allowDefaultProject: ['*.js'] }, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-floating-promises': 'error',
    },
  },
  { files: ['**/*.js'], ...tseslint.configs.disableTypeChecked },
  restrict('protocol'),
  restrict('actors'),
  restrict('hardware'),
  restrict('services'),
  {
    // Machines: no clock, no randomness, no timers (DESIGN.md "Actors").
    files: ['actors/**/*.ts', 'protocol/**/*.ts'],
    rules: {
      'no-restricted-properties': [
        'error',
        { object: 'Date', property: 'now', message: 'Time is an argument / event field.' },
        { object: 'Math', property: 'random', message: 'Randomness comes from a seeded DRBG.' },
      ],
      'no-restricted-globals': [
        'error',
        { name: 'setTimeout', message: 'Emit a timer.set effect with an absolute deadline.' },
        { name: 'setInterval', message: 'Emit a timer.set effect with an absolute deadline.' },
        { name: 'process', message: 'No process access below services/.' },
      ],
      'no-restricted-syntax': [
        'error',
        { selector: "Property[key.name='invoke']", message: 'No invoke in machines (breaks xstate/graph and restore).' },
        { selector: "Property[key.name='after']", message: 'No after in machines: deadlines live in context.' },
        { selector: "NewExpression[callee.name='Date'][arguments.length=0]", message: 'Time is an argument / event field.' },
      ],
    },
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: { '@typescript-eslint/no-non-null-assertion': 'off' },
  },
);
