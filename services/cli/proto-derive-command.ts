/**
 * `tracecity proto derive gaen|dp3t|tcn` (issue 5 "Interop CLI"): the
 * identifiers each protocol derives from a key, as one JSON line, for other
 * implementers and conformance checks.
 *
 *   derive gaen --tek <32 hex> --enin <n> [--count 144] [--metadata <8 hex>]
 *     → {"rpik":hex,"aemk":hex,"ids":[{"enin":n,"rpi":hex,"aem":hex?}…]}   (aem with --metadata)
 *   derive dp3t --sk <64 hex> [--days 1] [--epochs 96]
 *     → {"days":[{"sk":hex,"ephids":[hex…]}…]}   (EphIDs in generation order; days[0].sk = --sk)
 *   derive tcn --rak <64 hex> [--count 9]
 *     → {"rvk":hex,"tck":[hex…],"tcn":[hex…]}   (tck[i] / tcn[i] are tck_(i+1) / tcn_(i+1))
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import { dp3tEphIdsPerDay, ephIdsForDay, nextDayKey, DP3T_EPHIDS_PER_DAY } from '../../protocol/dp3t/lowcost.ts';
import { aemk, rpik, rpisForRpik } from '../../protocol/gaen/keys.ts';
import { encryptAem } from '../../protocol/gaen/metadata.ts';
import { initialTck, ratchetTck, tcnOf, tcnRvk, type TemporaryContactKey } from '../../protocol/tcn/keys.ts';
import { cryptoSuiteByName, cryptoSuiteNames, type CryptoSuiteName } from '../crypto/index.ts';
import { ConfigError, intFlag } from './options.ts';

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

function hexFlag(flag: string, bytes: number) {
  return (value: string): Uint8Array => {
    const text = value.trim();
    if (!new RegExp(`^[0-9a-fA-F]{${bytes * 2}}$`).test(text)) throw new InvalidArgumentError(`${flag} must be ${bytes * 2} hex digits (${bytes} bytes), got ${JSON.stringify(value)}`);
    return Uint8Array.from(Buffer.from(text, 'hex'));
  };
}

const suite = (): Option => new Option('--suite <name>', 'crypto suite').choices(cryptoSuiteNames).default('node' satisfies CryptoSuiteName);
const print = (value: unknown): void => void process.stdout.write(`${JSON.stringify(value)}\n`);

export function registerDerive(proto: Command): void {
  const derive = proto.command('derive').description('identifiers a protocol derives from a key (GAEN RPIs/AEMs, DP-3T EphIDs, TCN tcks/TCNs)');
  derive
    .command('gaen')
    .description('RPIK, AEMK and the RPIs (and AEMs with --metadata) of a TEK from an ENIntervalNumber on (SPECS §1.3–1.4)')
    .requiredOption('--tek <hex>', 'the TEK, 32 hex digits', hexFlag('--tek', 16))
    .requiredOption('--enin <n>', 'first ENIntervalNumber', intFlag('--enin', 0, 0xffff_ffff))
    .option('--count <n>', 'how many intervals (1–144)', intFlag('--count', 1, 144), 144)
    .option('--metadata <hex>', 'BLE metadata, 8 hex digits: also derive AEMs', hexFlag('--metadata', 4))
    .addOption(suite())
    .action((flags: { tek: Uint8Array; enin: number; count: number; metadata?: Uint8Array; suite: CryptoSuiteName }) => {
      if (flags.enin + flags.count - 1 > 0xffff_ffff) throw new ConfigError(['--enin + --count − 1 must fit 32 bits']);
      const crypto = cryptoSuiteByName(flags.suite);
      const rpikBytes = rpik(crypto, flags.tek);
      const aemkBytes = aemk(crypto, flags.tek);
      const rpis = rpisForRpik(crypto, rpikBytes, flags.enin, flags.count);
      const metadata = flags.metadata;
      const ids = rpis.map((rpi, i) => ({ enin: flags.enin + i, rpi: hex(rpi), ...(metadata !== undefined ? { aem: hex(encryptAem(crypto, aemkBytes, rpi, metadata)) } : {}) }));
      print({ rpik: hex(rpikBytes), aemk: hex(aemkBytes), ids });
    });
  derive
    .command('dp3t')
    .description('DP-3T low-cost: SK_t of each day and its EphIDs in generation order, before shuffling (SPECS §2.1)')
    .requiredOption('--sk <hex>', 'SK_t, 64 hex digits (the first day)', hexFlag('--sk', 32))
    .option('--days <n>', 'how many days (1–30)', intFlag('--days', 1, 30), 1)
    .option('--epochs <n>', 'EphIDs per day (epochs of 1440/n minutes; n divides 1440)', intFlag('--epochs', 1, 1440), DP3T_EPHIDS_PER_DAY)
    .addOption(suite())
    .action((flags: { sk: Uint8Array; days: number; epochs: number; suite: CryptoSuiteName }) => {
      if (1440 % flags.epochs !== 0) throw new ConfigError(['--epochs must divide 1440 (minutes per day)']);
      dp3tEphIdsPerDay(1440 / flags.epochs);
      const crypto = cryptoSuiteByName(flags.suite);
      const days: { sk: string; ephids: string[] }[] = [];
      let sk = flags.sk;
      for (let d = 0; d < flags.days; d++) {
        days.push({ sk: hex(sk), ephids: ephIdsForDay(crypto, sk, flags.epochs).map(hex) });
        sk = nextDayKey(crypto, sk);
      }
      print({ days });
    });
  derive
    .command('tcn')
    .description('TCN: rvk and tck_1.., tcn_1.. of a report authorization key (SPECS §3)')
    .requiredOption('--rak <hex>', 'rak (Ed25519 seed), 64 hex digits', hexFlag('--rak', 32))
    .option('--count <n>', 'how many tcks and TCNs (1–65535)', intFlag('--count', 1, 65_535), 9)
    .addOption(suite())
    .action((flags: { rak: Uint8Array; count: number; suite: CryptoSuiteName }) => {
      const crypto = cryptoSuiteByName(flags.suite);
      const tck: string[] = [];
      const tcn: string[] = [];
      let key: TemporaryContactKey = initialTck(crypto, flags.rak);
      for (let i = 1; i <= flags.count; i++) {
        tck.push(hex(key.bytes));
        tcn.push(hex(tcnOf(crypto, key)));
        if (i === flags.count) break;
        const next = ratchetTck(crypto, key);
        if (!next.ok) break; // index 65535 reached (count is capped there)
        key = next.tck;
      }
      print({ rvk: hex(tcnRvk(crypto, flags.rak)), tck, tcn });
    });
}
