/**
 * The Kubernetes objects `kube generate` writes and `kube play` reads, typed with kubernetes-models' interfaces
 * (Kubernetes v1.33.0): a misspelt field is a compile error, and `validate.ts` checks values against the schema.
 */
import type { IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import type { IPersistentVolumeClaim } from 'kubernetes-models/v1/PersistentVolumeClaim';
import type { IPod } from 'kubernetes-models/v1/Pod';
import type { ISecret } from 'kubernetes-models/v1/Secret';
import type { IService } from 'kubernetes-models/v1/Service';
import type { IServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IStatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import type { IJob } from 'kubernetes-models/batch/v1/Job';
import type { INetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import type { IRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/Role';
import type { IRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding';

export type { IContainer } from 'kubernetes-models/v1/Container';
export type { IPodSpec } from 'kubernetes-models/v1/PodSpec';
export type { IProbe } from 'kubernetes-models/v1/Probe';
export type { IVolume } from 'kubernetes-models/v1/Volume';
export type { IVolumeMount } from 'kubernetes-models/v1/VolumeMount';
export type { IServicePort } from 'kubernetes-models/v1/ServicePort';
export type { IContainerPort } from 'kubernetes-models/v1/ContainerPort';
export type { IPodTemplateSpec } from 'kubernetes-models/v1/PodTemplateSpec';
export type { ISecurityContext } from 'kubernetes-models/v1/SecurityContext';
export type { INetworkPolicyPeer } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicyPeer';
export type {
  IConfigMap,
  IPersistentVolumeClaim,
  IPod,
  ISecret,
  IService,
  IServiceAccount,
  IDeployment,
  IStatefulSet,
  IJob,
  INetworkPolicy,
  IRole,
  IRoleBinding,
};

/** The Kubernetes version whose OpenAPI schema the objects are checked against (kubernetes-models 4.5). */
export const KUBERNETES_VERSION = 'v1.33.0';

export type KubeObject =
  | IConfigMap
  | ISecret
  | IPersistentVolumeClaim
  | IService
  | IServiceAccount
  | IRole
  | IRoleBinding
  | INetworkPolicy
  | IDeployment
  | IStatefulSet
  | IJob
  | IPod;

/** Order objects are written in: what others refer to first (kubectl apply -f takes them in file order). */
export const KIND_ORDER: readonly KubeObject['kind'][] = [
  'ConfigMap',
  'Secret',
  'PersistentVolumeClaim',
  'ServiceAccount',
  'Role',
  'RoleBinding',
  'Service',
  'NetworkPolicy',
  'Job',
  'StatefulSet',
  'Deployment',
  'Pod',
];
