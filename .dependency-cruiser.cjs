/**
 * The layer rules of src/ (docs/ARCHITECTURE.md draws them). Each folder may import only the
 * folders listed for it, all of them lower: no upward import, so no folder-level cycle. `core/`
 * imports nothing but `core/` (no `node:` module, no package). Checked by `npm run lint`.
 */
const LOWER = {
  core: [],
  config: ['core', 'fs'],
  fs: ['core'],
  process: ['core', 'config', 'fs'],
  git: ['core', 'config', 'fs', 'process'],
  state: ['core', 'config', 'fs', 'process'],
  usage: ['core', 'config', 'fs', 'process'],
  tracker: ['core', 'config', 'fs', 'process'],
  runtimes: ['core', 'config', 'fs', 'process'],
  queue: ['core', 'config', 'fs', 'process'],
};
const ADAPTERS = ['core', 'config', 'fs', 'process', 'git', 'state', 'usage', 'tracker', 'runtimes', 'queue'];
LOWER.steps = ADAPTERS;
LOWER.setup = [...ADAPTERS, 'steps'];
for (const useCase of ['daemon', 'shepherd', 'roles', 'status', 'dashboard', 'demo', 'worker']) LOWER[useCase] = [...ADAPTERS, 'steps', 'setup'];
LOWER.cli = [...Object.keys(LOWER)];

const layerRules = Object.entries(LOWER).map(([folder, allowed]) => ({
  name: `layer-${folder}`,
  comment: `src/${folder}/ may import only ${allowed.length > 0 ? allowed.map((f) => `${f}/`).join(', ') : 'itself'} (docs/ARCHITECTURE.md)`,
  severity: 'error',
  from: { path: `^src/${folder}/` },
  to: { path: '^src/', pathNot: `^src/(${[folder, ...allowed].join('|')})/` },
}));

module.exports = {
  forbidden: [
    ...layerRules,
    {
      name: 'unknown-folder',
      comment: 'every folder of src/ has a place in the layers (.dependency-cruiser.cjs, docs/ARCHITECTURE.md)',
      severity: 'error',
      from: { path: '^src/', pathNot: `^src/(${Object.keys(LOWER).join('|')})/` },
      to: {},
    },
    {
      name: 'core-is-pure',
      comment: 'src/core/ imports nothing outside src/core/: no node: module, no package',
      severity: 'error',
      from: { path: '^src/core/' },
      to: { pathNot: '^src/core/' },
    },
    {
      name: 'no-circular',
      comment: 'no module imports itself through others',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      from: { path: '^src/' },
      to: { couldNotResolve: true },
    },
    {
      name: 'src-not-to-test',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^(test|scripts)/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'], extensions: ['.ts', '.js', '.mjs'] },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
