#!/usr/bin/env node
/**
 * envoy-lint: Envoy v3 bootstrap YAML against Envoy's own API protos (those bundled with
 * @grpc/grpc-js-xds), walking into every typed_config, and the references between resources.
 *
 *     node dist/tools/envoy-lint/main.js envoy/envoy.yaml [more.yaml ...]
 *
 * Exit 0: no problems; 1: problems, one line each on stdout; 2: usage or an unreadable file.
 */
import { lintFiles } from './lint-files.js';

const report = lintFiles(process.argv.slice(2));
const stream = report.code === 2 ? process.stderr : process.stdout;
for (const line of report.lines) stream.write(`${line}\n`);
process.exitCode = report.code;
