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
}
