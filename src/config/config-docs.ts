import { pathToFileURL } from 'node:url';
import { CONFIG_VARIABLES } from './config.js';

/** A table cell: one line, and a `|` that cannot end the cell early. */
const cell = (text: string): string => text.replace(/\s*\n\s*/g, ' ').replace(/\|/g, '\\|');

/**
 * docs/configuration.md, from CONFIG_VARIABLES and nothing else, so the reference cannot drift from
 * what the service reads. A test compares the committed file with this output.
 */
export function renderConfigDocs(): string {
  const rows = CONFIG_VARIABLES.map(
    (v) =>
      `| \`${v.name}\` | ${v.default === undefined ? 'unset' : `\`${cell(v.default)}\``} | ${cell(v.allowed)} | ${cell(v.description)} |`,
  );
  return [
    '# Configuration reference',
    '',
    '<!-- Generated from CONFIG_VARIABLES in src/config/config.ts by `npm run docs`. Do not edit by hand. -->',
    '',
    'Every environment variable the service reads. An empty value counts as unset. A bad value stops the',
    'service at start with one line naming the variable (exit code 2). `MATRYOSHKA_CONFIG_FILE` may hold',
    'the same names in a YAML mapping; the environment wins over the file. The standard `OTEL_*`',
    'variables of the OpenTelemetry SDK apply as well.',
    '',
    '| variable | default | allowed | description |',
    '|---|---|---|---|',
    ...rows,
    '',
  ].join('\n');
}

// `node dist/src/config/config-docs.js > docs/configuration.md` (npm run docs).
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.stdout.write(renderConfigDocs());
}
