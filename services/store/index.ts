/**
 * Pick a Store adapter from a URL-ish string (CLI flags, config files):
 *   memory:             MemoryStore (nothing durable)
 *   sqlite:<path>       SqliteStore at <path> (`sqlite::memory:` for a throwaway one)
 *   <path>.db|.sqlite   SqliteStore, for convenience
 */
import type { Store } from '../../actors/ports.ts';
import { MisuseError } from '../../protocol/errors.ts';
import { MemoryStore } from './memory.ts';
import { openSqliteStore, type SqliteStoreOptions } from './sqlite.ts';

export { MemoryStore } from './memory.ts';
export { StoreClosedError, MAX_NAME_LENGTH } from './common.ts';
export { SqliteStore, StoreSchemaError, openSqliteStore, MIGRATIONS, type Migration, type SqliteStoreOptions } from './sqlite.ts';

export const STORE_URL_FORMS = ["'memory:'", "'sqlite:<path>'", "'sqlite::memory:'", "a path ending in .db or .sqlite"] as const;

export async function openStore(url: string, options: SqliteStoreOptions = {}): Promise<Store> {
  if (typeof url !== 'string') throw new MisuseError('url', `must be a string (${STORE_URL_FORMS.join(', ')})`);
  if (url === 'memory:') return new MemoryStore();
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length);
    if (path.length === 0) throw new MisuseError('url', "'sqlite:' needs a path, e.g. 'sqlite:data/app.db' or 'sqlite::memory:'");
    return openSqliteStore(path, options);
  }
  if (/\.(db|sqlite)$/i.test(url)) return openSqliteStore(url, options);
  throw new MisuseError('url', `unsupported store ${JSON.stringify(url)}; accepted forms: ${STORE_URL_FORMS.join(', ')}`);
}
