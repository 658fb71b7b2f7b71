/** An environment as the service and the CLI read it: the process's, or one a caller hands in. */
export type Env = Readonly<Record<string, string | undefined>>;
