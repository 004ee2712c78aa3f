/** The runtime part of an OCI image config (`config` in the config JSON), with Docker's field names. */
export interface ContainerConfig {
  User?: string;
  ExposedPorts?: Record<string, Record<string, never>>;
  Env?: string[];
  Entrypoint?: string[];
  Cmd?: string[];
  Volumes?: Record<string, Record<string, never>>;
  WorkingDir?: string;
  Labels?: Record<string, string>;
  StopSignal?: string;
}

export interface HistoryEntry {
  created?: string;
  created_by?: string;
  comment?: string;
  empty_layer?: boolean;
}

/** An OCI image config (application/vnd.oci.image.config.v1+json); its sha256 is the image id. */
export interface ImageConfigFile {
  created?: string;
  architecture: string;
  os: string;
  config?: ContainerConfig;
  rootfs: { type: 'layers'; diff_ids: string[] };
  history?: HistoryEntry[];
}

/** An image in the store. */
export interface ImageRecord {
  /** `sha256:<hex of the config JSON>` */
  readonly id: string;
  /** Tags in familiar form (`busybox:latest`), sorted. */
  readonly repoTags: readonly string[];
  /** RFC 3339 creation time from the config. */
  readonly created: string;
  readonly config: ImageConfigFile;
  /** sha256 of each uncompressed layer, bottom first. */
  readonly diffIds: readonly string[];
  /** ChainID of each layer, bottom first (the key of its unpacked dir). */
  readonly chainIds: readonly string[];
  /** Bytes of the uncompressed layers. */
  readonly size: number;
}

/** `layers/<chainid-hex>/layer.json`: written last, it marks the unpacked layer complete. */
export interface LayerRecord {
  diffId: string;
  chainId: string;
  parent: string | null;
  /** Bytes of the uncompressed layer tar. */
  size: number;
  /** When the layer was first unpacked (RFC 3339); an import of the same content reuses it. */
  created?: string;
}

/** What `remove` did, in order, as `docker rmi` prints it. */
export type RemoveAction =
  { readonly kind: 'untagged'; readonly ref: string } | { readonly kind: 'deleted'; readonly id: string };

/** Where an import's root filesystem comes from. */
export type ImportSource =
  | { readonly kind: 'file'; readonly path: string }
  | { readonly kind: 'dir'; readonly path: string }
  | { readonly kind: 'stream'; readonly stream: NodeJS.ReadableStream };

export interface ImportOptions {
  /** NAME[:TAG] to tag the new image with. */
  reference?: string | undefined;
  /** Dockerfile instructions applied to the config (`--change`). */
  changes?: readonly string[] | undefined;
  /** History comment (`--message`). */
  message?: string | undefined;
}
