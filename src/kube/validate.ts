/**
 * Checks objects against Kubernetes' OpenAPI schema (v1.33.0, as compiled by kubernetes-models 4.5 into ajv
 * validators): types, required fields, enums and formats. Unknown fields are caught at compile time instead, since
 * the generator is typed with the same models (objects.ts).
 */
import { KUBERNETES_VERSION } from './objects.js';
import type { KubeObject } from './objects.js';

interface Validatable {
  validate(): void;
}
type ModelClass = new (data: never) => Validatable;

const MODELS: Record<string, () => Promise<ModelClass>> = {
  'v1/ConfigMap': async () => (await import('kubernetes-models/v1/ConfigMap')).ConfigMap,
  'v1/Secret': async () => (await import('kubernetes-models/v1/Secret')).Secret,
  'v1/PersistentVolumeClaim': async () =>
    (await import('kubernetes-models/v1/PersistentVolumeClaim')).PersistentVolumeClaim,
  'v1/Service': async () => (await import('kubernetes-models/v1/Service')).Service,
  'v1/ServiceAccount': async () => (await import('kubernetes-models/v1/ServiceAccount')).ServiceAccount,
  'v1/Pod': async () => (await import('kubernetes-models/v1/Pod')).Pod,
  'apps/v1/Deployment': async () => (await import('kubernetes-models/apps/v1/Deployment')).Deployment,
  'apps/v1/StatefulSet': async () => (await import('kubernetes-models/apps/v1/StatefulSet')).StatefulSet,
  'batch/v1/Job': async () => (await import('kubernetes-models/batch/v1/Job')).Job,
  'networking.k8s.io/v1/NetworkPolicy': async () =>
    (await import('kubernetes-models/networking.k8s.io/v1/NetworkPolicy')).NetworkPolicy,
  'rbac.authorization.k8s.io/v1/Role': async () =>
    (await import('kubernetes-models/rbac.authorization.k8s.io/v1/Role')).Role,
  'rbac.authorization.k8s.io/v1/RoleBinding': async () =>
    (await import('kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding')).RoleBinding,
};

export interface SchemaProblem {
  /** `Kind/name`. */
  readonly object: string;
  /** ajv's messages, `data/spec/...` paths. */
  readonly messages: readonly string[];
}

/** Problems of each object that does not match the Kubernetes schema (empty when all do). */
export async function validateObjects(objects: readonly KubeObject[]): Promise<SchemaProblem[]> {
  const problems: SchemaProblem[] = [];
  for (const object of objects) {
    const id = `${object.kind}/${object.metadata?.name ?? '?'}`;
    const load = MODELS[`${object.apiVersion}/${object.kind}`];
    if (load === undefined) {
      problems.push({ object: id, messages: [`${object.apiVersion} ${object.kind} is not a kind tsfig validates`] });
      continue;
    }
    const Model = await load();
    try {
      new Model(object as never).validate();
    } catch (error) {
      const errors = (error as { errors?: { instancePath?: string; message?: string }[] }).errors;
      problems.push({
        object: id,
        messages: errors?.map((e) => `${e.instancePath ?? ''} ${e.message ?? ''}`.trim()) ?? [(error as Error).message],
      });
    }
  }
  return problems;
}

export { KUBERNETES_VERSION };
