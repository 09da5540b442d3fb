/**
 * BlobStore adapters (actors/ports.ts) for the key server's distribution
 * files: a directory any static web server or CDN can serve as is, and an
 * in-memory one for tests and simulated cities.
 *
 * Directory writes are atomic and durable: write `<name>.tmp-<pid>-<n>`,
 * fsync it, rename it over `<name>`, fsync the directory. A reader (or a
 * crash) sees either no file or the whole file, never a prefix. Names are
 * content addresses, so a name that exists already holds these bytes and a
 * second put is a no-op.
 */
import { mkdirSync } from 'node:fs';
import { open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { BlobStore } from '../../actors/ports.ts';
import { MisuseError } from '../../protocol/errors.ts';

/** Blob names are file names: no separators, no dot files. */
export const BLOB_NAME_PATTERN = /^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}$/;

function checkName(name: string): void {
  if (typeof name !== 'string' || !BLOB_NAME_PATTERN.test(name)) throw new MisuseError('name', `must match ${String(BLOB_NAME_PATTERN)}`);
}

export class MemoryBlobStore implements BlobStore {
  readonly blobs = new Map<string, Uint8Array>();

  put(name: string, bytes: Uint8Array): Promise<void> {
    checkName(name);
    if (!this.blobs.has(name)) this.blobs.set(name, bytes.slice());
    return Promise.resolve();
  }

  get(name: string): Promise<Uint8Array | undefined> {
    checkName(name);
    return Promise.resolve(this.blobs.get(name));
  }
}

export class DirectoryBlobStore implements BlobStore {
  private temp = 0;

  constructor(readonly dir: string) {
    if (typeof dir !== 'string' || dir.length === 0) throw new MisuseError('dir', 'must be a directory path');
    mkdirSync(dir, { recursive: true });
  }

  async put(name: string, bytes: Uint8Array): Promise<void> {
    checkName(name);
    const path = join(this.dir, name);
    if (await exists(path)) return;
    const temp = `${path}.tmp-${process.pid}-${++this.temp}`;
    const file = await open(temp, 'w');
    try {
      await file.writeFile(bytes);
      await file.sync();
    } finally {
      await file.close();
    }
    try {
      await rename(temp, path);
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
    await syncDirectory(this.dir);
  }

  /**
   * Delete temporary files a killed writer left behind (`<name>.tmp-…`): no
   * index names them, but a static server would expose them. Call only while
   * holding the log's lock (the only writer). Returns how many were removed.
   */
  async removeTemporaries(): Promise<number> {
    const leftovers = (await readdir(this.dir)).filter((f) => f.includes('.tmp-'));
    for (const f of leftovers) await rm(join(this.dir, f), { force: true });
    return leftovers.length;
  }

  async get(name: string): Promise<Uint8Array | undefined> {
    checkName(name);
    try {
      return new Uint8Array(await readFile(join(this.dir, name)));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** fsync the directory so the rename itself survives a power loss. */
async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
