#!/usr/bin/env node
import { runProgram } from './program.js';

runProgram(process.argv.slice(2), {
  out: (text) => process.stdout.write(`${text}\n`),
  err: (text) => process.stderr.write(`${text}\n`),
}).then((code) => {
  if (code >= 0) process.exitCode = code;
});
