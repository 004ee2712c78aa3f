/** The image builder's public API: Dockerfile parsing, .dockerignore rules and the Builder. */
export {
  Builder,
  BuildStepError,
  type BuildContainerConfig,
  type BuildEvent,
  type BuildImageConfig,
  type BuildOptions,
  type BuildResult,
  type NamedContext,
  type HealthConfig,
} from './builder.js';
export {
  formatDiagnostics,
  INSTRUCTIONS,
  parseDockerfile,
  parseDockerfileOrThrow,
  type Dockerfile,
  type DockerfileDiagnostic,
  type Instruction,
  type ParseResult,
} from './dockerfile.js';
export { DockerIgnore, readDockerIgnore } from './dockerignore.js';
export { sweepBuildDebris } from './debris.js';
