/** The envoy-lint command's work, apart from the process: files in, report lines and exit code out. */
import { readFileSync } from 'node:fs';
import { lintEnvoyYaml } from './envoy-schema.js';

export interface LintReport {
  readonly code: 0 | 1 | 2;
  readonly lines: readonly string[];
}

/** Lint each file; `read` is how a file is read (the command line reads the disk). */
export function lintFiles(
  files: readonly string[],
  read: (file: string) => string = (file) => readFileSync(file, 'utf8'),
): LintReport {
  if (files.length === 0) return { code: 2, lines: ['usage: envoy-lint FILE.yaml...'] };
  const lines: string[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = read(file);
    } catch (error) {
      return { code: 2, lines: [`${file}: cannot read (${(error as Error).message})`] };
    }
    for (const p of lintEnvoyYaml(text).problems) lines.push(`${file}: ${p.path}: ${p.message}`);
  }
  return { code: lines.length === 0 ? 0 : 1, lines };
}
