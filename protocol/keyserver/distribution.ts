/**
 * Key-server distribution (issue 4): signed, content-addressed full dumps and
 * deltas, the index message that lists them, and the pure client that follows
 * them. Pure: time, keys and the crypto suite are arguments.
 *
 *   signDistributionFile(crypto, signingKey, keyId, file)       → { name, bytes }
 *   openDistributionFile(crypto, publicKeys, name, bytes)       → Verdict<DistributionFile<IdentifiedRecord>>
 *   encodeDistributionIndex(index) / decodeDistributionIndex(bytes), distributionIndexCodec (envelope body)
 *   planFetch(state, index) → FetchPlan;  applyFile(state, file, name) → Verdict<DistributionClientState>
 *   publishDelta / publishFull (server side of the chain rules)
 *
 * Module family:
 *   distribution-records.ts    diagnosis records per protocol, record ids
 *   distribution-file.ts       file body codec (full | delta), limits
 *   distribution-signing.ts    signed container, content address, open
 *   distribution-index.ts      index message codec
 *   distribution-client.ts     client state, planFetch, applyFile
 *   distribution-publisher.ts  publisher state, publishDelta, publishFull
 *
 * The chain. Every file has a seq. Deltas form one unbroken chain: the delta
 * at seq 1 applies to the empty state (no basedOn), the delta at seq k names
 * the delta at seq k − 1. A full dump is a checkpoint, not a link: the full
 * at seq k holds the state after the delta at seq k and names that delta. So
 *   - a client following deltas never needs a full dump, even when a new one
 *     is published (the deltas after it still name the delta it holds);
 *   - a new client takes the full dump, then the deltas after it (the first
 *     names the full's basedOn);
 *   - a missed delta shows as a gap — the next delta's seq is beyond the
 *     state's seq + 1, and its basedOn is the name of the delta just before
 *     it — or, from the index, as the deltas after the state's seq; a client
 *     behind the latest full dump (the index no longer lists its successor)
 *     fetches the full dump;
 *   - every link is a content address over a signed container, so a client
 *     that checked every name and signature holds exactly the server's chain.
 *
 * Records travel as their canonical bytes (tag ‖ fields, 23 bytes for a GAEN
 * TEK), concatenated and sorted by id; a record's id is SHA-256 over those
 * bytes (distribution-records.ts). A withdrawal or a retroactive provider
 * revocation therefore becomes deletions naming exactly the records to drop,
 * whichever earlier file (delta or full dump) brought them.
 *
 * Measured on the 2-core dev machine (node:crypto suite, 1M GAEN TEKs in one
 * full dump, 23 MB): sign ≈ 7 s, open (hash + signature + decode + ids)
 * ≈ 3.5 s, apply ≈ 1.1 s; a delta applied on top of a 1M-record state
 * ≈ 1.4 s (the pure client copies its record map once per file).
 */
export {
  canonicalRecordBytes,
  checkRecord,
  DIGEST_BYTES,
  DP3T_SEED_BYTES,
  MAX_DP3T_DAY,
  MAX_RECORD_BYTES,
  MAX_TCN_REPORT_BYTES,
  MIN_TCN_REPORT_BYTES,
  RECORD_PROTOCOLS,
  recordId,
  recordProblem,
  toHex,
  type DiagnosisRecord,
  type Dp3tSeedRecord,
  type GaenTekRecord,
  type IdentifiedRecord,
  type RecordId,
  type RecordProtocol,
  type TcnReportRecord,
} from './distribution-records.ts';
export {
  decodeDistributionFile,
  DEFAULT_DISTRIBUTION_LIMITS,
  DISTRIBUTION_CODEC,
  DISTRIBUTION_VERSION,
  encodeDistributionFile,
  FILE_KINDS,
  MAX_DISTRIBUTION_TIME_MS,
  type DistributionFile,
  type DistributionLimits,
  type FileKind,
  type FileName,
} from './distribution-file.ts';
export {
  DISTRIBUTION_SIGNATURE_ALG,
  distributionFileName,
  distributionSigningMessage,
  KEY_ID_PATTERN,
  openDistributionFile,
  signDistributionFile,
  type SignedDistributionFile,
} from './distribution-signing.ts';
export {
  decodeDistributionIndex,
  DISTRIBUTION_INDEX_CODEC,
  DISTRIBUTION_INDEX_TYPE,
  distributionIndexCodec,
  distributionIndexToWire,
  encodeDistributionIndex,
  indexFullSeq,
  MAX_INDEX_DELTAS,
  readDistributionIndex,
  type DistributionIndex,
} from './distribution-index.ts';
export {
  APPLY_REJECTION_REASONS,
  applyFile,
  DEFAULT_CLIENT_LIMITS,
  DISTRIBUTION_CLIENT_CODEC,
  initialDistributionClientState,
  planFetch,
  type ApplyRejection,
  type ApplyVerdict,
  type ClientLimits,
  type DistributionClientState,
  type FetchPlan,
  type Needed,
} from './distribution-client.ts';
export {
  initialPublisherState,
  publishDelta,
  publishFull,
  type DeltaChange,
  type DistributionSigner,
  type FullSnapshot,
  type Publication,
  type PublisherState,
} from './distribution-publisher.ts';

/** Every reason openDistributionFile may give (signing + body). */
export const OPEN_REJECTION_REASONS = [
  'too-large',
  'name-mismatch',
  'malformed',
  'unsupported-version',
  'unsupported-algorithm',
  'non-canonical',
  'unknown-key',
  'signature-encoding',
  'bad-signature',
  'too-many',
  'bad-order',
  'inconsistent',
] as const;
/** Every reason decodeDistributionIndex may give. */
export const INDEX_REJECTION_REASONS = ['too-large', 'malformed', 'unsupported-version', 'too-many', 'inconsistent'] as const;
