import { Option, type Command } from 'commander';
import { projectGraph, renderGraphDot, renderGraphMermaid, renderGraphText } from '../../graph/graph.js';
import { addProjectOptions, loadProjectFromOptions, type ProjectOptions } from './config.js';

interface GraphOptions extends ProjectOptions {
  readonly format: 'text' | 'dot' | 'mermaid';
}

const RENDERERS = { text: renderGraphText, dot: renderGraphDot, mermaid: renderGraphMermaid } as const;

/** `tsfig graph`: the project's services, what each needs (depends_on conditions, links...) and their networks. */
export function registerGraphCommand(program: Command): void {
  const cmd = program
    .command('graph')
    .description('print the dependency graph of the project (depends_on conditions, networks)')
    .addOption(new Option('--format <format>', 'output format').choices(['text', 'dot', 'mermaid']).default('text'));
  addProjectOptions(cmd);
  cmd.action((_options: GraphOptions, command: Command) => {
    const options = command.optsWithGlobals<GraphOptions>();
    const { project } = loadProjectFromOptions(options);
    process.stdout.write(RENDERERS[options.format](projectGraph(project)));
  });
}
