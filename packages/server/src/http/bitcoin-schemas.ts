// Request and response schemas of the Bitcoin routes (docs/bitcoin.md).
import { z } from 'zod';
import { BITCOIN_NETWORKS } from '@airlock/core';
import { apiSchema } from './api-schemas.ts';
import { AuditReceiptSchema, jsonObject } from './schemas.ts';

const network = z.enum(BITCOIN_NETWORKS as [string, ...string[]]).describe('bitcoin (mainnet), testnet (testnet3), testnet4, signet or regtest: part of every intent; coin type 0 on mainnet, 1 elsewhere.');
const addressType = z.enum(['p2wpkh', 'p2tr']).describe('p2wpkh: BIP-84 account (m/84\'/coin\'/account\'). p2tr: BIP-86 account (m/86\'/...), taproot key path.');
// A PSBT of a few hundred inputs with full previous transactions fits; the body limit (256 KiB) bounds it anyway.
const base64 = z.string().min(1).max(350_000).regex(/^[A-Za-z0-9+/]+={0,2}$/, 'base64');

export const SignPsbtRequest = apiSchema(
  'SignPsbtRequest',
  z.strictObject({
    psbt: base64.describe('A BIP-174 (v0) or BIP-370 (v2) PSBT, base64. Every input carries its previous output; inputs the agent signs with P2WPKH carry the full previous transaction.'),
    network,
    finalize: z.boolean().optional().describe('Also finalize every input and return the network transaction (every input not the agent\'s must already be final).'),
  }),
);

const replayFields = {
  replayed: z.literal(true).optional().describe('A request under an Idempotency-Key already signed: the same signatures again, not charged again.'),
  replayAuditSeq: z.number().optional(),
};

export const SignPsbtResponse = apiSchema(
  'SignPsbtResponse',
  z.object({
    decision: z.literal('allow'),
    psbt: z.string().describe('The PSBT with the agent\'s signatures added (partial signatures, or the taproot key-path signature), in the version it came in.'),
    signedInputs: z.array(z.number()).describe('The inputs Airlock signed: those proven to be the agent\'s.'),
    transaction: z.string().optional().describe('finalize: the signed transaction, hex, ready to broadcast.'),
    txid: z.string().optional().describe('finalize: its id.'),
    auditSeq: z.number(),
    receipt: AuditReceiptSchema,
    policyVersion: z.string().optional(),
    allowedBy: z.array(z.string()).optional(),
    intent: jsonObject.describe('What the PSBT decoded to: every input and output, change, the fee and fee rate (intent.bitcoin).'),
    ...replayFields,
  }),
);

export const SignBitcoinMessageRequest = apiSchema(
  'SignBitcoinMessageRequest',
  z.strictObject({
    message: z.string().max(65_536).describe('The message, UTF-8.'),
    network,
    addressType,
    change: z.union([z.literal(0), z.literal(1)]).optional().describe('0 (receive, default) or 1 (change).'),
    index: z.number().int().min(0).max(0x7fffffff).optional().describe('Address index (default 0).'),
  }),
);

export const SignBitcoinMessageResponse = apiSchema(
  'SignBitcoinMessageResponse',
  z.object({
    decision: z.literal('allow'),
    signature: z.string().describe('BIP-322 simple signature: the witness of the to_sign transaction, base64.'),
    address: z.string().describe('The address that signed.'),
    auditSeq: z.number(),
    receipt: AuditReceiptSchema,
    policyVersion: z.string().optional(),
    allowedBy: z.array(z.string()).optional(),
    intent: jsonObject,
    ...replayFields,
  }),
);

const accountKeys = z.object({
  path: z.string().describe("The account's path, e.g. m/84'/1'/3'"),
  xpub: z.string().describe('The account extended public key (xpub on mainnet, tpub elsewhere).'),
  descriptor: z.string().describe('Output descriptor with key origin and checksum, receive and change in one (`<0;1>/*`, BIP-389).'),
  receiveDescriptor: z.string().describe('The receive chain alone (`/0/*`), for wallets without multipath descriptors.'),
  changeDescriptor: z.string().describe('The change chain alone (`/1/*`).'),
});

export const BitcoinAccountResponse = apiSchema(
  'BitcoinAccount',
  z
    .object({
      network,
      fingerprint: z.string().regex(/^[0-9a-f]{8}$/).describe("The vault master key's BIP-32 fingerprint, as PSBT derivation fields and descriptors name it."),
      accountIndex: z.number().describe("The agent's account index (allocated once, never reused)."),
      accounts: z.object({ p2wpkh: accountKeys, p2tr: accountKeys }),
    })
    .describe('Watch-only view of an agent\'s Bitcoin accounts: import a descriptor into Bitcoin Core (importdescriptors) or Sparrow to watch balances.'),
);

export const BitcoinAddressQuery = z.object({
  network,
  type: addressType.default('p2wpkh'),
  change: z.enum(['0', '1']).default('0').describe('0: receive, 1: change.'),
  index: z.string().regex(/^(0|[1-9][0-9]{0,9})$/, 'an index 0..2^31-1').default('0'),
});

export const BitcoinAddressResponse = apiSchema(
  'BitcoinAddress',
  z.object({ network, type: addressType, change: z.number(), index: z.number(), path: z.string(), address: z.string() }),
);

export const BitcoinNetworkQuery = z.object({ network });
