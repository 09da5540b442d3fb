/**
 * GAEN associated encrypted metadata and BLE payload (SPECS §1.4, §1.5; EN-internals @ aaada6ce
 * `AssociatedEncryptedMetadataHelper`, `AesCtrEncryptor`, `data/BluetoothMetadata.java`,
 * `AdvertisementPacket`):
 *
 *   AEM          AES-128-CTR(key = AEMK, initial counter block = RPI_j, Metadata)  (4 bytes → 4 bytes)
 *                decryption is the same operation
 *   Metadata     byte 0  version: bits 7:6 major, 5:4 minor, 3:2 TX-power calibration
 *                        confidence (metadata v1.1), 1:0 reserved
 *                byte 1  transmit power level, signed int8, dBm
 *                bytes 2–3 reserved (0)
 *   service data RPI (16 bytes) ‖ AEM (4 bytes) under 16-bit service UUID 0xFD6F
 *
 * Metadata and service data come off the air, so their parsers never throw:
 * a wrong length is a Rejection (codecs `gaen-metadata`, `gaen-service-data`,
 * reason `bad-length`). parseEnMetadata reads the fields and ignores the
 * reserved bits, leaving version policy to the caller (a newer minor version
 * must still be readable). Caller misuse throws MisuseError naming the field.
 */
import type { CryptoSuite } from '../crypto/suite.ts';
import { accept, ensure, reject, type Verdict } from '../errors.ts';
import { AEMK_BYTES, RPI_BYTES } from './keys.ts';

/** Metadata and AEM length, bytes. SPECS §1.4, §1.5 (`METADATA_LENGTH = 4`). */
export const EN_METADATA_BYTES = 4;
/** Service data length: RPI ‖ AEM, bytes. SPECS §1.5. */
export const EN_SERVICE_DATA_BYTES = RPI_BYTES + EN_METADATA_BYTES;
/** Exposure Notification 16-bit service UUID. SPECS §1.5 (`Constants.CONTACT_TRACER_UUID`). */
export const EN_SERVICE_UUID16 = 0xfd6f;
/** Version byte of metadata v1.0 (major 1, minor 0). SPECS §1.4. */
export const EN_METADATA_VERSION_1_0 = 0x40;
/** Version byte of metadata v1.1 (major 1, minor 1), which adds the calibration confidence. SPECS §1.4. */
export const EN_METADATA_VERSION_1_1 = 0x50;
/** Signed int8 range of the transmit power byte, dBm. SPECS §1.4. */
export const EN_TX_POWER_MIN_DBM = -128;
export const EN_TX_POWER_MAX_DBM = 127;
/** Largest value of a 2-bit version / confidence field. SPECS §1.4. */
export const EN_METADATA_FIELD_MAX = 3;

export const EN_METADATA_CODEC = 'gaen-metadata';
export const EN_SERVICE_DATA_CODEC = 'gaen-service-data';

/** Decoded metadata. Reserved bits are written as zero and ignored when read. */
export interface EnMetadata {
  /** Version bits 7:6 (1 for v1.x). */
  readonly versionMajor: number;
  /** Version bits 5:4 (0 for v1.0, 1 for v1.1). */
  readonly versionMinor: number;
  /** TX-power calibration confidence, bits 3:2 (0 before v1.1). */
  readonly txPowerConfidence: number;
  /** Transmit power level, dBm, signed int8. */
  readonly txPowerDbm: number;
}

/** One Exposure Notification advertisement's service data. */
export interface EnServiceData {
  readonly rpi: Uint8Array;
  readonly aem: Uint8Array;
}

function checkLength(value: Uint8Array, length: number, field: string): void {
  ensure(value instanceof Uint8Array, field, 'must be a Uint8Array');
  ensure(value.length === length, field, `must be ${length} bytes, got ${value.length}`);
}

function check2Bits(value: number, field: string): void {
  ensure(Number.isInteger(value) && value >= 0 && value <= EN_METADATA_FIELD_MAX, field, `must be an integer in [0, ${EN_METADATA_FIELD_MAX}], got ${value}`);
}

/** The 4 metadata bytes: version byte, int8 TX power, two reserved zero bytes. SPECS §1.4. */
export function encodeEnMetadata(metadata: EnMetadata): Uint8Array {
  check2Bits(metadata.versionMajor, 'metadata.versionMajor');
  check2Bits(metadata.versionMinor, 'metadata.versionMinor');
  check2Bits(metadata.txPowerConfidence, 'metadata.txPowerConfidence');
  const dbm = metadata.txPowerDbm;
  ensure(
    Number.isInteger(dbm) && dbm >= EN_TX_POWER_MIN_DBM && dbm <= EN_TX_POWER_MAX_DBM,
    'metadata.txPowerDbm',
    `must be an integer in [${EN_TX_POWER_MIN_DBM}, ${EN_TX_POWER_MAX_DBM}], got ${dbm}`,
  );
  const version = (metadata.versionMajor << 6) | (metadata.versionMinor << 4) | (metadata.txPowerConfidence << 2);
  return Uint8Array.of(version, dbm & 0xff, 0, 0);
}

/** Read decrypted metadata bytes (hostile: never throws). SPECS §1.4. */
export function parseEnMetadata(bytes: Uint8Array): Verdict<EnMetadata> {
  if (bytes.length !== EN_METADATA_BYTES) {
    return reject(EN_METADATA_CODEC, 'bad-length', `metadata must be ${EN_METADATA_BYTES} bytes, got ${bytes.length}`);
  }
  const version = bytes[0] ?? 0;
  const power = bytes[1] ?? 0;
  return accept({
    versionMajor: version >>> 6,
    versionMinor: (version >>> 4) & EN_METADATA_FIELD_MAX,
    txPowerConfidence: (version >>> 2) & EN_METADATA_FIELD_MAX,
    txPowerDbm: power >= 0x80 ? power - 0x100 : power,
  });
}

/** AEM = AES-128-CTR(AEMK, IV = RPI, metadata): 4 bytes. SPECS §1.4. */
export function encryptAem(crypto: CryptoSuite, aemkBytes: Uint8Array, rpiBytes: Uint8Array, metadata: Uint8Array): Uint8Array {
  checkLength(aemkBytes, AEMK_BYTES, 'aemk');
  checkLength(rpiBytes, RPI_BYTES, 'rpi');
  checkLength(metadata, EN_METADATA_BYTES, 'metadata');
  return crypto.aesCtr(aemkBytes, rpiBytes, metadata);
}

/** Metadata = AES-128-CTR(AEMK, IV = RPI, AEM), the same operation as encryptAem. SPECS §1.4. */
export function decryptAem(crypto: CryptoSuite, aemkBytes: Uint8Array, rpiBytes: Uint8Array, aem: Uint8Array): Uint8Array {
  checkLength(aemkBytes, AEMK_BYTES, 'aemk');
  checkLength(rpiBytes, RPI_BYTES, 'rpi');
  checkLength(aem, EN_METADATA_BYTES, 'aem');
  return crypto.aesCtr(aemkBytes, rpiBytes, aem);
}

/** Service data RPI ‖ AEM, 20 bytes. SPECS §1.5. */
export function encodeEnServiceData(rpiBytes: Uint8Array, aem: Uint8Array): Uint8Array {
  checkLength(rpiBytes, RPI_BYTES, 'rpi');
  checkLength(aem, EN_METADATA_BYTES, 'aem');
  const out = new Uint8Array(EN_SERVICE_DATA_BYTES);
  out.set(rpiBytes, 0);
  out.set(aem, RPI_BYTES);
  return out;
}

/** Split received service data into RPI and AEM (hostile: never throws). SPECS §1.5. */
export function parseEnServiceData(bytes: Uint8Array): Verdict<EnServiceData> {
  if (bytes.length !== EN_SERVICE_DATA_BYTES) {
    return reject(EN_SERVICE_DATA_CODEC, 'bad-length', `service data must be ${EN_SERVICE_DATA_BYTES} bytes, got ${bytes.length}`);
  }
  return accept({ rpi: bytes.slice(0, RPI_BYTES), aem: bytes.slice(RPI_BYTES) });
}
