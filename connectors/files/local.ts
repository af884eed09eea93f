import fs from 'node:fs';
import path from 'node:path';
import { SourceError } from '../types';

/**
 * A local folder is confined to TRIBUTARY_FILES_ROOT. The engine itself does not confine it (chDB reads any
 * absolute path and follows symlinks), so the platform does: the pattern may not be absolute nor climb with
 * `..`, and every file it matches must resolve (symlinks followed) inside the root's own real path.
 */
export const FILES_ROOT_ENV = 'TRIBUTARY_FILES_ROOT';

export function filesRoot(env: NodeJS.ProcessEnv = process.env): string {
  const root = env[FILES_ROOT_ENV];
  if (!root) throw new SourceError(`the local folder provider is off: the operator has not set ${FILES_ROOT_ENV} (the folder linked files may be read from)`, 'provider');
  try {
    return fs.realpathSync(root);
  } catch {
    throw new SourceError(`${FILES_ROOT_ENV} is set to "${root}", which does not exist`, 'provider');
  }
}

/** The table's pattern as an absolute glob under the root; refused when it is absolute or climbs out. */
export function confinedPattern(root: string, pattern: string, field: string): string {
  if (path.isAbsolute(pattern) || /^[a-zA-Z]:/.test(pattern)) throw new SourceError(`path "${pattern}" must be relative to the files root, not absolute`, field);
  // `..` anywhere, braces included (`{..,x}` expands to it), except in a numeric range such as {1..9}.
  if (pattern.replace(/\{-?\d+\.\.-?\d+\}/g, '').includes('..')) throw new SourceError(`path "${pattern}" must not contain ".." (it may not leave the files root)`, field);
  return path.join(root, pattern);
}

/** Every matched file must really be inside the root (a symlink pointing out of it is refused). */
export function checkConfined(root: string, files: string[], field: string): void {
  for (const f of files) {
    let real: string;
    try {
      real = fs.realpathSync(f);
    } catch {
      continue; // gone since the listing: nothing to read
    }
    if (real !== root && !real.startsWith(root + path.sep)) {
      throw new SourceError(`"${path.relative(root, f)}" resolves to a place outside the files root (a symlink out of it): refused`, field);
    }
  }
}
