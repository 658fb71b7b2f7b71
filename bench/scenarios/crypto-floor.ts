/** Crypto floor: ES256 sign + verify in the coordinator, first, while nothing else of ours runs. */
import type { BenchContext } from '../lib/context.js';
import { type CryptoFloor, cryptoFloor } from '../lib/floor.js';
import { log } from '../lib/log.js';

export interface CryptoFloors {
  /** At a 1 KB signing input: the floor the targets use. */
  readonly floor: CryptoFloor;
  readonly floorLarge: CryptoFloor;
}

export function runCryptoFloor(_ctx: BenchContext): CryptoFloors {
  log('crypto floor: ES256 sign + verify, node:crypto KeyObjects');
  const floor = cryptoFloor(1024);
  const floorLarge = cryptoFloor(16 * 1024);
  log(
    `crypto floor: ${floor.pairMicros.toFixed(1)} µs per pair at ${floor.inputBytes} B (sign ${floor.signMicros.toFixed(1)}, verify ${floor.verifyMicros.toFixed(1)}); ${floorLarge.pairMicros.toFixed(1)} µs at ${floorLarge.inputBytes} B`,
  );
  return { floor, floorLarge };
}
