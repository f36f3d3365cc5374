/**
 * js-macaroon (the `macaroon` npm package) for the L402 test server and the tests that check against it:
 * typed access to the parts of its documented API we use, and one workaround.
 *
 * The workaround: every published version (3.0.0 to 3.0.4) has a ByteBuffer whose `_grow` compares against a
 * `_capacity` field that is never set, so each append doubles the buffer. `exportBinary()` of a macaroon with
 * n caveats allocates 200 * 2^(12 + 4n) bytes: 3.4 GB (zero pages the OS maps lazily) for the three caveats
 * Aperture mints (services, capabilities, timeout), and a RangeError ("Array buffer allocation failed") for
 * four, as soon as a client attenuates such a token. The fix (go-macaroon/js-macaroon commit 799e29e, "use
 * simpler buffer grow logic") was never published. lsat-js
 * depends on a git fork of the package that npm cannot fetch here; we override it with the registry version
 * (package.json `overrides`), so lsat-js's own `_exportBinaryV2` calls hit the same bug.
 * So the V2 bytes are written here from the macaroon's public fields, field for field as js-macaroon's
 * `_exportBinaryV2` and go-macaroon's `appendBinaryV2` write them; js-macaroon still does the cryptography
 * (minting, the HMAC chain, verification) and the reading (`importMacaroon`). The tests check that these bytes
 * equal `exportBinary()` where the latter still works (up to one caveat) and that js-macaroon and lsat-js read
 * them back.
 */
import { createRequire } from 'node:module';

export interface JsMacaroonCaveat {
  identifier: Uint8Array;
  location?: string;
  vid?: Uint8Array;
}

export interface JsMacaroon {
  readonly identifier: Uint8Array;
  readonly location: string | undefined;
  readonly signature: Uint8Array;
  readonly caveats: JsMacaroonCaveat[];
  addFirstPartyCaveat(condition: string | Uint8Array): void;
  addThirdPartyCaveat(rootKey: Uint8Array, caveatId: string | Uint8Array, location?: string): void;
  /** Affected by the growth bug above: use exportMacaroonV2 instead. */
  exportBinary(): Uint8Array;
  /** Throws unless the HMAC chain from `rootKey` ends in the signature and `check` returns null for every first-party caveat. */
  verify(rootKey: Uint8Array, check: (condition: string) => string | null): void;
}

interface JsMacaroonModule {
  newMacaroon(params: { identifier: Uint8Array | string; location?: string; rootKey: Uint8Array | string; version?: 1 | 2 }): JsMacaroon;
  /** A Uint8Array is V2 binary (refused if bytes follow); a string is base64 of it (either alphabet). */
  importMacaroon(serialized: Uint8Array | string): JsMacaroon;
}

export const jsMacaroon = createRequire(import.meta.url)('macaroon') as JsMacaroonModule;

const FIELD_EOS = 0;
const FIELD_LOCATION = 1;
const FIELD_IDENTIFIER = 2;
const FIELD_VID = 4;
const FIELD_SIGNATURE = 6;

/** The V2 binary serialization (libmacaroons doc/format.txt) of a js-macaroon macaroon. */
export function exportMacaroonV2(macaroon: JsMacaroon): Uint8Array {
  const out: number[] = [2];
  const field = (type: number, data: Uint8Array): void => {
    out.push(type);
    for (let n = data.length; ; n = Math.floor(n / 128)) {
      if (n < 0x80) {
        out.push(n);
        break;
      }
      out.push((n % 128) | 0x80);
    }
    for (const b of data) out.push(b);
  };
  const text = (s: string): Uint8Array => new TextEncoder().encode(s);
  if (macaroon.location) field(FIELD_LOCATION, text(macaroon.location));
  field(FIELD_IDENTIFIER, macaroon.identifier);
  out.push(FIELD_EOS);
  for (const caveat of macaroon.caveats) {
    if (caveat.location) field(FIELD_LOCATION, text(caveat.location));
    field(FIELD_IDENTIFIER, caveat.identifier);
    if (caveat.vid) field(FIELD_VID, caveat.vid);
    out.push(FIELD_EOS);
  }
  out.push(FIELD_EOS);
  field(FIELD_SIGNATURE, macaroon.signature);
  return Uint8Array.from(out);
}
