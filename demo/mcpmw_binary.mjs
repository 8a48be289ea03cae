// Where the demo scripts find mcpmw: $MCPMW_BIN, else this repository's release build.
// Returns the path, or throws an Error that says what to do.
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export function mcpmwBinary() {
  const bin = process.env.MCPMW_BIN
    ? path.resolve(process.env.MCPMW_BIN)
    : path.join(REPO, 'build', 'release', 'src', 'app', 'mcpmw');
  try {
    accessSync(bin, constants.X_OK);
  } catch {
    throw new Error(`mcpmw binary not found or not executable at ${bin} (build it, or set MCPMW_BIN)`);
  }
  return bin;
}
