/**
 * The export.zip container of a GAEN key export (SPECS §1.7): a zip archive
 * with exactly two entries, `export.bin` and `export.sig`.
 *
 * Writing uses fflate's `zipSync` (ADR 0003) with a fixed modification time,
 * so the same two files always give the same archive bytes.
 *
 * Reading does not use fflate's `unzipSync`: it trusts the sizes it reads,
 * allocates the declared uncompressed size up front and keeps inflating past
 * a lying size (work proportional to the real, unbounded output), checks no
 * CRC and never looks at local-header signatures. Hostile archives need all
 * of that, so this module walks the directory itself (APPNOTE 6.3.10:
 * end-of-central-directory record §4.3.16, central headers §4.3.12, local
 * headers §4.3.7) and inflates with fflate's streaming `Inflate`, fed in
 * small chunks and stopped as soon as the output passes the declared size:
 * work and memory stay bounded by the caps below whatever the bytes say.
 *
 * Accepted: no zip64, a single disk, exactly the two names (each once, byte
 * for byte), stored (0) or deflated (8) entries, no encryption, local header
 * name and method equal to the central header's (and CRC and sizes too unless
 * general-purpose bit 3 says they follow the data, as Go's archive/zip writes
 * them), entry data inside the archive before the central directory and not
 * overlapping, inflated size and CRC-32 equal to the central header's.
 * Everything else is a Rejection with reason `zip` (or `too-large` for the
 * size caps); nothing here throws on hostile bytes.
 */
import { Inflate, zipSync } from 'fflate';
import { accept, reject, type Rejection, type Verdict } from '../errors.ts';
import { GAEN_EXPORT_CODEC } from './gaen-export-schema.ts';

export const EXPORT_BIN_NAME = 'export.bin';
export const EXPORT_SIG_NAME = 'export.sig';

/** Size caps (bytes) the reader enforces before it decompresses or allocates anything large. */
export interface ZipLimits {
  readonly maxZipBytes: number;
  readonly maxExportBinBytes: number;
  readonly maxExportSigBytes: number;
}

/**
 * Fixed modification time of written entries: DOS date-time fields are local
 * time, and fflate reads them with local getters, so a Date built from local
 * components gives the same bytes in every time zone (noon: no DST gap).
 */
const FIXED_MTIME_LOCAL = { year: 1980, month: 0, day: 1, hours: 12 } as const;

const EOCD_SIGNATURE = 0x06054b50;
const CENTRAL_SIGNATURE = 0x02014b50;
const LOCAL_SIGNATURE = 0x04034b50;
const EOCD_BYTES = 22;
const CENTRAL_FIXED_BYTES = 46;
const LOCAL_FIXED_BYTES = 30;
const MAX_COMMENT_BYTES = 0xffff;
/** General-purpose flag bits: 0 encrypted, 6 strong encryption, 13 masked local headers (APPNOTE §4.4.4). */
const FLAG_ENCRYPTED = 0x0001 | 0x0040 | 0x2000;
/** Bit 3: CRC and sizes are zero in the local header and follow the data in a data descriptor. */
const FLAG_DATA_DESCRIPTOR = 0x0008;
const METHOD_STORED = 0;
const METHOD_DEFLATE = 8;
/** Compressed bytes fed to the inflater per step: one step outputs at most ~1 MiB (deflate expands ≤ 1032×). */
const INFLATE_CHUNK = 1024;

const u16 = (b: Uint8Array, at: number): number => (b[at] ?? 0) | ((b[at + 1] ?? 0) << 8);
const u32 = (b: Uint8Array, at: number): number => (u16(b, at) + u16(b, at + 2) * 0x10000) >>> 0;

function zipError(detail: string, field = 'zip'): Rejection {
  return reject(GAEN_EXPORT_CODEC, 'zip', detail, field);
}

// ------------------------------------------------------------ CRC-32

const CRC_TABLE = ((): Uint32Array => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32 (ISO 3309 / ITU-T V.42, reflected polynomial 0xEDB88320), as zip stores it (APPNOTE §4.4.7). */
export function crc32(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const byte of data) c = (CRC_TABLE[(c ^ byte) & 0xff] ?? 0) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// ------------------------------------------------------------ writing

/** export.zip with export.bin then export.sig, both deflated, fixed mtime: deterministic bytes. */
export function writeExportZip(exportBin: Uint8Array, exportSig: Uint8Array): Uint8Array {
  const { year, month, day, hours } = FIXED_MTIME_LOCAL;
  const mtime = new Date(year, month, day, hours, 0, 0);
  return zipSync({
    [EXPORT_BIN_NAME]: [exportBin, { level: 6, mtime }],
    [EXPORT_SIG_NAME]: [exportSig, { level: 6, mtime }],
  });
}

// ------------------------------------------------------------ reading

interface CentralEntry {
  readonly name: string;
  readonly flags: number;
  readonly method: number;
  readonly crc: number;
  readonly compressedSize: number;
  readonly size: number;
  readonly localOffset: number;
}

export interface ExportZipEntries {
  readonly exportBin: Uint8Array;
  readonly exportSig: Uint8Array;
}

function findEocd(zip: Uint8Array): number | undefined {
  const lowest = Math.max(0, zip.length - EOCD_BYTES - MAX_COMMENT_BYTES);
  for (let at = zip.length - EOCD_BYTES; at >= lowest; at--) {
    // The comment must run exactly to the end of the file.
    if (u32(zip, at) === EOCD_SIGNATURE && at + EOCD_BYTES + u16(zip, at + 20) === zip.length) return at;
  }
  return undefined;
}

/** Printable, bounded rendering of an entry name for a rejection detail. */
function showName(raw: Uint8Array): string {
  let s = '';
  for (const byte of raw.subarray(0, 40)) {
    s += byte >= 0x20 && byte < 0x7f && byte !== 0x22 && byte !== 0x5c ? String.fromCharCode(byte) : `\\x${byte.toString(16).padStart(2, '0')}`;
  }
  return `"${s}${raw.length > 40 ? '…' : ''}"`;
}

function entryName(raw: Uint8Array): string | undefined {
  for (const name of [EXPORT_BIN_NAME, EXPORT_SIG_NAME]) {
    if (raw.length === name.length && raw.every((byte, i) => byte === name.charCodeAt(i))) return name;
  }
  return undefined;
}

function readCentralDirectory(zip: Uint8Array, limits: ZipLimits): Verdict<{ entries: CentralEntry[]; cdStart: number }> {
  const eocd = findEocd(zip);
  if (eocd === undefined) return zipError('no end-of-central-directory record (not a zip archive, or truncated)');
  const [disk, cdDisk, onDisk, total] = [u16(zip, eocd + 4), u16(zip, eocd + 6), u16(zip, eocd + 8), u16(zip, eocd + 10)];
  const cdSize = u32(zip, eocd + 12);
  const cdStart = u32(zip, eocd + 16);
  if (total === 0xffff || cdSize === 0xffffffff || cdStart === 0xffffffff) return zipError('zip64 archives are not accepted');
  if (disk !== 0 || cdDisk !== 0 || onDisk !== total) return zipError('multi-disk archives are not accepted');
  if (total !== 2) return zipError(`expected exactly 2 entries (${EXPORT_BIN_NAME}, ${EXPORT_SIG_NAME}), found ${total}`);
  if (cdStart + cdSize > eocd) return zipError('central directory overlaps the end record or lies outside the archive');

  const entries: CentralEntry[] = [];
  let at = cdStart;
  for (let i = 0; i < total; i++) {
    if (at + CENTRAL_FIXED_BYTES > cdStart + cdSize || u32(zip, at) !== CENTRAL_SIGNATURE) {
      return zipError(`central directory entry ${i} is missing or truncated`);
    }
    const nameLength = u16(zip, at + 28);
    const next = at + CENTRAL_FIXED_BYTES + nameLength + u16(zip, at + 30) + u16(zip, at + 32);
    if (next > cdStart + cdSize) return zipError(`central directory entry ${i} runs past the directory`);
    const rawName = zip.subarray(at + CENTRAL_FIXED_BYTES, at + CENTRAL_FIXED_BYTES + nameLength);
    const name = entryName(rawName);
    if (name === undefined) return zipError(`unexpected entry ${showName(rawName)}: only ${EXPORT_BIN_NAME} and ${EXPORT_SIG_NAME} are allowed`);
    if (entries.some((e) => e.name === name)) return zipError(`duplicate entry ${name}`, name);
    const entry: CentralEntry = {
      name,
      flags: u16(zip, at + 8),
      method: u16(zip, at + 10),
      crc: u32(zip, at + 16),
      compressedSize: u32(zip, at + 20),
      size: u32(zip, at + 24),
      localOffset: u32(zip, at + 42),
    };
    if (u16(zip, at + 34) !== 0) return zipError(`${name} starts on another disk`, name);
    const rejection = checkEntryHeader(entry, limits);
    if (rejection !== undefined) return rejection;
    entries.push(entry);
    at = next;
  }
  if (at !== cdStart + cdSize) return zipError('central directory size does not match its entries');
  return accept({ entries, cdStart });
}

function checkEntryHeader(entry: CentralEntry, limits: ZipLimits): Rejection | undefined {
  const { name } = entry;
  if ((entry.flags & FLAG_ENCRYPTED) !== 0) return zipError(`${name} is encrypted`, name);
  if (entry.method !== METHOD_STORED && entry.method !== METHOD_DEFLATE) {
    return zipError(`${name} uses compression method ${entry.method} (only 0 stored and 8 deflate)`, name);
  }
  const cap = name === EXPORT_BIN_NAME ? limits.maxExportBinBytes : limits.maxExportSigBytes;
  if (entry.size > cap) return reject(GAEN_EXPORT_CODEC, 'too-large', `${name} declares ${entry.size} bytes, more than the ${cap}-byte cap`, name);
  if (entry.method === METHOD_STORED && entry.compressedSize !== entry.size) {
    return zipError(`${name} is stored but its compressed and uncompressed sizes differ`, name);
  }
  return undefined;
}

/** The [start, end) of an entry's data after checking its local header against the central one. */
function locateData(zip: Uint8Array, entry: CentralEntry, cdStart: number): Verdict<{ start: number; end: number }> {
  const { name, localOffset: at } = entry;
  if (at + LOCAL_FIXED_BYTES > cdStart || u32(zip, at) !== LOCAL_SIGNATURE) return zipError(`${name}: no local header at offset ${at}`, name);
  const flags = u16(zip, at + 6);
  const nameLength = u16(zip, at + 26);
  const start = at + LOCAL_FIXED_BYTES + nameLength + u16(zip, at + 28);
  if (start > cdStart) return zipError(`${name}: local header runs into the central directory`, name);
  if (entryName(zip.subarray(at + LOCAL_FIXED_BYTES, at + LOCAL_FIXED_BYTES + nameLength)) !== name) {
    return zipError(`${name}: local header names another file`, name);
  }
  if ((flags & FLAG_ENCRYPTED) !== 0) return zipError(`${name} is encrypted`, name);
  if (u16(zip, at + 8) !== entry.method) return zipError(`${name}: local and central compression methods differ`, name);
  if ((flags & FLAG_DATA_DESCRIPTOR) === 0 && (entry.flags & FLAG_DATA_DESCRIPTOR) === 0) {
    if (u32(zip, at + 14) !== entry.crc || u32(zip, at + 18) !== entry.compressedSize || u32(zip, at + 22) !== entry.size) {
      return zipError(`${name}: local and central CRC or sizes differ`, name);
    }
  }
  const end = start + entry.compressedSize;
  if (end > cdStart) return zipError(`${name}: data runs into the central directory`, name);
  return accept({ start, end });
}

class InflateLimit extends Error {}

/** Inflate to exactly `size` bytes, or say why not. Work is bounded by `size` plus one chunk's expansion. */
function inflateBounded(data: Uint8Array, size: number): Uint8Array | string {
  const out = new Uint8Array(size);
  let produced = 0;
  const inflater = new Inflate((chunk) => {
    if (produced + chunk.length > size) throw new InflateLimit();
    out.set(chunk, produced);
    produced += chunk.length;
  });
  try {
    if (data.length === 0) inflater.push(data, true);
    for (let at = 0; at < data.length; at += INFLATE_CHUNK) {
      inflater.push(data.subarray(at, at + INFLATE_CHUNK), at + INFLATE_CHUNK >= data.length);
    }
  } catch (err) {
    if (err instanceof InflateLimit) return 'inflates to more bytes than its header declares';
    return `corrupt deflate data (${err instanceof Error ? err.message : String(err)})`;
  }
  if (produced !== size) return `inflates to ${produced} bytes, its header declares ${size}`;
  return out;
}

function extract(zip: Uint8Array, entry: CentralEntry, range: { start: number; end: number }): Verdict<Uint8Array> {
  const raw = zip.subarray(range.start, range.end);
  let data: Uint8Array;
  if (entry.method === METHOD_STORED) {
    data = Uint8Array.from(raw); // a copy, and a plain Uint8Array even when the input is a Buffer
  } else {
    const inflated = inflateBounded(raw, entry.size);
    if (typeof inflated === 'string') return zipError(`${entry.name} ${inflated}`, entry.name);
    data = inflated;
  }
  if (crc32(data) !== entry.crc) return zipError(`${entry.name}: CRC-32 mismatch (corrupt or altered data)`, entry.name);
  return accept(data);
}

/** Split export.zip into export.bin and export.sig under the caps; hostile bytes give a Rejection. */
export function readExportZip(zip: Uint8Array, limits: ZipLimits): Verdict<ExportZipEntries> {
  if (zip.length > limits.maxZipBytes) {
    return reject(GAEN_EXPORT_CODEC, 'too-large', `archive is ${zip.length} bytes, more than the ${limits.maxZipBytes}-byte cap`, 'zip');
  }
  const directory = readCentralDirectory(zip, limits);
  if (!directory.ok) return directory;
  const { entries, cdStart } = directory.value;
  const ranges: { start: number; end: number; header: number }[] = [];
  const files = new Map<string, Uint8Array>();
  for (const entry of entries) {
    const range = locateData(zip, entry, cdStart);
    if (!range.ok) return range;
    const { start, end } = range.value;
    if (ranges.some((r) => entry.localOffset < r.end && r.header < end)) return zipError(`${entry.name} overlaps the other entry`, entry.name);
    ranges.push({ start, end, header: entry.localOffset });
    const data = extract(zip, entry, range.value);
    if (!data.ok) return data;
    files.set(entry.name, data.value);
  }
  const exportBin = files.get(EXPORT_BIN_NAME);
  const exportSig = files.get(EXPORT_SIG_NAME);
  if (exportBin === undefined || exportSig === undefined) return zipError(`archive must hold ${EXPORT_BIN_NAME} and ${EXPORT_SIG_NAME}`);
  return accept({ exportBin, exportSig });
}
