/**
 * Where a Session keeps tokens between processes. The file cache is what the CLI uses; a
 * long-running program (the CSI plugin) can use the memory one or none.
 */
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AuthInfo } from './session.ts';

export interface TokenCache {
  get(key: string): AuthInfo | undefined;
  set(key: string, info: AuthInfo): void;
  delete(key: string): void;
}

export class MemoryTokenCache implements TokenCache {
  private readonly entries = new Map<string, AuthInfo>();
  get(key: string): AuthInfo | undefined {
    return this.entries.get(key);
  }
  set(key: string, info: AuthInfo): void {
    this.entries.set(key, info);
  }
  delete(key: string): void {
    this.entries.delete(key);
  }
}

/** `$XDG_CACHE_HOME/abaca`, else `~/.cache/abaca`. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CACHE_HOME || path.join(env.HOME || os.homedir(), '.cache');
  return path.join(base, 'abaca');
}

/**
 * One JSON file (mode 0600, in a 0700 directory) mapping a credentials fingerprint to the token
 * issued for them. Expired entries are dropped on every write. Writes go through a temporary file
 * and a rename, so two processes never leave a torn file; the last writer wins, which at worst
 * costs one extra token request later.
 */
export class FileTokenCache implements TokenCache {
  readonly file: string;

  constructor(dir: string = defaultCacheDir()) {
    this.file = path.join(dir, 'tokens.json');
  }

  private read(): Record<string, AuthInfo> {
    try {
      const parsed = JSON.parse(readFileSync(this.file, 'utf8')) as unknown;
      return parsed && typeof parsed === 'object' && !Array.isArray(parsed)
        ? (parsed as Record<string, AuthInfo>)
        : {};
    } catch {
      return {};
    }
  }

  private write(entries: Record<string, AuthInfo>): void {
    const now = Date.now();
    for (const [k, v] of Object.entries(entries))
      if (!v.expiresAt || Date.parse(v.expiresAt) <= now) delete entries[k];
    const dir = path.dirname(this.file);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const tmp = `${this.file}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(entries)}\n`, { mode: 0o600 });
    chmodSync(tmp, 0o600);
    renameSync(tmp, this.file);
  }

  get(key: string): AuthInfo | undefined {
    return this.read()[key];
  }

  set(key: string, info: AuthInfo): void {
    const entries = this.read();
    entries[key] = info;
    this.write(entries);
  }

  delete(key: string): void {
    const entries = this.read();
    if (!(key in entries)) return;
    delete entries[key];
    this.write(entries);
  }
}
