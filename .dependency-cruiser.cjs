// The layering ARCHITECTURE.md describes, checked in CI (npm run lint:deps, in scripts/test.sh):
// src/ (compose) -> engine/ (library) -> native/ (a process boundary, not imported).
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment:
        'A cycle makes load order matter and hides which module owns what: split the shared part out. Cycles ' +
        'closed only by type imports (erased at run time) or lazy import()s are allowed.',
      from: {},
      to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only', 'dynamic-import'] } },
    },
    {
      name: 'engine-knows-no-compose',
      severity: 'error',
      comment: 'engine/ is a library that knows nothing of compose (ARCHITECTURE.md): it never imports src/.',
      from: { path: '^engine/' },
      to: { path: '^src/' },
    },
    {
      name: 'planner-is-pure',
      severity: 'error',
      comment:
        'The planner compares the project with what runs and returns a plan: it may use engine types, never ' +
        'engine code (no I/O). The executor applies plans.',
      from: { path: '^src/planner/' },
      to: { path: '^engine/', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'src-through-engine-entry',
      severity: 'error',
      comment:
        'src/ uses the engine through its entry points (engine/index.ts, engine/<area>/index.ts), not its files: ' +
        'the engine can then change inside without breaking the orchestrator.',
      from: { path: '^src/' },
      to: { path: '^engine/', pathNot: ['^engine/index\\.ts$', '^engine/[^/]+/index\\.ts$', '^engine/errors\\.ts$'] },
    },
    {
      name: 'application-knows-no-cli',
      severity: 'error',
      comment:
        'The compose verbs (src/compose), the executor and the planner are used by the CLI, never the other way: what ' +
        'they need of the terminal (following logs, stdin, signals) the CLI passes in (ComposeContext.terminal), and ' +
        'the exit codes live in src/exit-code.ts. src/watch gets its context and Options from src/cli/compose/watch.ts.',
      from: { path: '^src/(compose|executor|planner|watch)/' },
      to: { path: '^src/cli/' },
    },
    {
      name: 'commander-only-in-cli',
      severity: 'error',
      comment:
        "Flags are the CLI's: src/cli turns them into each verb's typed Options (ARCHITECTURE.md). The verbs, the " +
        'executor, the planner and watch never see commander (watch steered up by rewriting its options once).',
      from: { path: '^src/(compose|executor|planner|watch)/' },
      to: { path: '(^|/)node_modules/commander/' },
    },
    {
      name: 'no-test-code-in-product',
      severity: 'error',
      from: { path: '^(src|engine)/' },
      to: { path: '^test/' },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '\\.validate\\.ts$' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      extensions: ['.ts', '.tsx', '.js'],
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      mainFields: ['module', 'main', 'types', 'typings'],
    },
  },
};
