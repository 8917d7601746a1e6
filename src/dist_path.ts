/**
 * Locates a compiled entry file (a worker, the CLI) from a module's URL. From
 * dist/ the file sits beside the module; when a module is loaded from src/
 * (vitest runs TypeScript directly), the compiled file is under dist/.
 */
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

/** `relative` resolved against `moduleUrl`, or the same path under <repo>/dist if that file is missing. */
export function compiledPath(relative: string, moduleUrl: string): string {
  const direct = fileURLToPath(new URL(relative, moduleUrl))
  if (fs.existsSync(direct)) return direct
  const srcRoot = fileURLToPath(new URL('./', import.meta.url)) // <repo>/src/ when loaded from source
  const repo = path.dirname(path.resolve(srcRoot))
  return path.join(repo, 'dist', path.relative(repo, direct))
}
