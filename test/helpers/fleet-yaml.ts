/**
 * A registry file of `n` tenants, each with its issuer, its tenant record and one service: the
 * fleet the scale test and the registry-scale bench import with the CLI.
 */
export function fleetRegistryYaml(n: number): string {
  const lines = ['issuers:'];
  for (let i = 0; i < n; i++)
    lines.push(
      `  - { issuer: "https://idp-${i}.example", tenant: t${i}, jwks_uri: "https://idp-${i}.example/jwks", algorithms: [ES256] }`,
    );
  lines.push('tenants:');
  for (let i = 0; i < n; i++) lines.push(`  t${i}: { max_depth: 8, recursion: deny }`);
  lines.push('services:');
  for (let i = 0; i < n; i++) lines.push(`  svc-${i}: { tenant: t${i}, allowed_callers: [gw] }`);
  return `${lines.join('\n')}\n`;
}
