/**
 * The one canonical view of a CheckRequest that every step reads. Built once by the transport
 * layer; nothing further down re-reads the raw Envoy message.
 */
export interface CheckInput {
  /** Request headers, lower-case names. */
  readonly headers: ReadonlyMap<string, string>;
  readonly contextExtensions: Readonly<Record<string, string>>;
  readonly sourcePrincipal: string | undefined;
  readonly destinationPrincipal: string | undefined;
  /**
   * The original request's path (with its query) and method, when the transport knows them: the
   * gRPC CheckRequest's `attributes.request.http`, or the HTTP authorizer's request line or
   * forwarded headers. Read by per-operation policy (src/policy/operations.ts) in the one
   * canonical view of src/request-path.ts.
   */
  readonly path?: string | undefined;
  readonly method?: string | undefined;
  /**
   * Set by a transport that was told the path or method twice, differently (a CheckRequest whose
   * `:path` header is not its `http.path`): a service with operations refuses it (`invalid_path`).
   */
  readonly viewConflict?: string | undefined;
}
