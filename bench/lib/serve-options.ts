/** How a bench run starts our server; its own module so the fixture can name it without the servers. */
export interface ServeOptions {
  readonly logLevel: string;
  /** MATRYOSHKA_REGISTRY_FILE; absent with a Redis registry (REDIS_URL in `env`), which refuses it. */
  readonly registryFile?: string;
  readonly hsSecret: string;
  /** MATRYOSHKA_MEMO_ENTRIES; the service's default when absent. */
  readonly memoEntries?: number;
  /** MATRYOSHKA_SIGNING_KEYS: replicas that share it accept each other's levels. */
  readonly signingKeysFile?: string;
  /** Also open the HTTP authorization listener (MATRYOSHKA_AUTHZ_HTTP_PORT). */
  readonly authzHttp?: boolean;
  /** Further MATRYOSHKA_* settings of this run (the chain form, say), applied last. */
  readonly env?: Readonly<Record<string, string>>;
  /** Extra `node` flags for this server alone (a profiler, a preload), before the script. */
  readonly nodeArgs?: readonly string[];
  /** Another build's dist/src/cli/main.js to serve (a before/after comparison in one run). */
  readonly serveMain?: string;
}
