/**
 * `tsfig publish` (pure): the project's files as one `artifact.push` operation. What goes in the artifact (the
 * files, renamed env files, `extends` parents) is read by src/compose/publish.ts; this only lays out the plan.
 */
import { OpKind, type ArtifactLayerSpec, type Plan } from './plan.js';

export interface PublishPlanOptions {
  /** REPOSITORY[:TAG]. */
  readonly reference: string;
  readonly layers: readonly ArtifactLayerSpec[];
  /** The OCI 1.1 artifactType and the OCI 1.0 config media type (compose's, src/config/oci.ts). */
  readonly artifactType: string;
  readonly legacyConfigMediaType: string;
  /** `--oci-version`. @default 'auto' */
  readonly ociVersion?: '1.0' | '1.1' | undefined;
  /** The creation time annotated (the verb's clock, ISO 8601 in seconds). */
  readonly created: string;
}

/** The name a layer is published under (a compose file's or an env file's annotation). */
function layerName(layer: ArtifactLayerSpec): string {
  const { annotations } = layer;
  const file = annotations['com.docker.compose.file'];
  return file !== undefined ? file : `env file ${annotations['com.docker.compose.envfile'] ?? ''}`;
}

export function planPublish(project: string, options: PublishPlanOptions): Plan {
  const files = options.layers.map((layer) => `${layerName(layer)} (${layer.size} bytes)`).join(', ');
  return {
    version: 1,
    project,
    operations: [
      {
        id: 1,
        kind: OpKind.ArtifactPush,
        resource: `artifact:${options.reference}`,
        reason: `tsfig publish: ${files}`,
        dependsOn: [],
        group: `push:artifact:${options.reference}`,
        spec: {
          reference: options.reference,
          artifactType: options.artifactType,
          legacyConfigMediaType: options.legacyConfigMediaType,
          layers: options.layers,
          annotations: { 'org.opencontainers.image.created': options.created },
          ociVersion: options.ociVersion ?? 'auto',
        },
      },
    ],
    warnings: [],
  };
}
