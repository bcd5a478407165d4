// Where the shipped defaults live: beside the installed package, not the caller's working directory,
// so `npx atlas-email check` works from anywhere.
import { fileURLToPath } from 'node:url';
import path from 'node:path';

/** The package root (the folder holding package.json), from src/cli or dist/cli alike. */
export const packageRoot = fileURLToPath(new URL('../../', import.meta.url));

export function shipped(relative: string): string {
  return path.join(packageRoot, relative);
}
