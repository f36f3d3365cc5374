// Request and response schemas of the Lightning and L402 routes (docs/lightning.md).
import { z } from 'zod';
import { apiSchema } from './api-schemas.ts';
import { AuditReceiptSchema, hex32, iso, jsonObject, PendingApprovalResponse } from './schemas.ts';

const msat = z.string().regex(/^(0|[1-9][0-9]{0,20})$/, 'a decimal string of millisatoshis');

export const LightningPayRequest = apiSchema(
  'LightningPayRequest',
  z.strictObject({
    invoice: z.string().min(1).max(7089).describe('A BOLT 11 invoice for the network of the configured backend.'),
    amountMsat: msat.optional().describe('Only for an invoice without an amount (and only where an allow rule names kinds: [lightning.amountless_payment]).'),
    maxFeeMsat: msat.optional().describe('Routing fee limit. Default: 1% of the amount, at least 1000 msat (AIRLOCK_LIGHTNING_DEFAULT_FEE_PERCENT).'),
  }),
);

export const LightningPaymentResponse = apiSchema(
  'LightningPayment',
  z
    .object({
      decision: z.literal('allow'),
      paymentId: z.string(),
      status: z.enum(['in_flight', 'succeeded', 'failed']),
      paymentHash: hex32,
      amountMsat: msat,
      maxFeeMsat: msat,
      feeMsat: msat.optional().describe('The routing fee paid (succeeded).'),
      preimage: hex32.optional().describe('Proof of payment (succeeded); its sha256 is paymentHash, checked by Airlock.'),
      reason: z.string().optional().describe('Why it failed (failed, when read back).'),
      l402: z.object({ authorization: z.string().describe('The Authorization header value: `L402 <macaroon>:<preimage>`'), expiresAt: z.number().optional().describe('unix seconds, from the macaroon caveats') }).optional(),
      auditSeq: z.number().describe('The audit entry of the decision that allowed it.'),
      finishedSeq: z.number().optional().describe('The audit entry that recorded its outcome.'),
      receipt: AuditReceiptSchema.optional(),
      policyVersion: z.string().optional(),
      allowedBy: z.array(z.string()).optional(),
      intent: jsonObject.optional(),
      replayed: z.literal(true).optional().describe('This invoice was already paid (or is being paid) by this agent: this is that payment, not a second one.'),
      replayAuditSeq: z.number().optional(),
    })
    .describe('200: paid (or, read back, failed). 202: in flight: the hold stays until the backend answers; poll GET /v1/lightning/payments/{id}.'),
);

export const LightningAcceptedResponse = apiSchema('LightningAccepted', z.union([LightningPaymentResponse, PendingApprovalResponse]).describe('In flight, or held for a human.'));

export const LightningPaymentRecordSchema = apiSchema(
  'LightningPaymentRecord',
  z.object({
    id: z.string(),
    agentId: z.string(),
    sessionId: z.string(),
    auditSeq: z.number(),
    backend: z.string(),
    network: z.string().describe('CAIP-2 (bip122:…)'),
    paymentHash: hex32,
    payee: z.string().describe('Payee node id (hex)'),
    amountMsat: msat,
    maxFeeMsat: msat,
    feeMsat: msat.optional(),
    state: z.enum(['in_flight', 'succeeded', 'failed']),
    failureReason: z.string().optional(),
    expiresAt: iso.describe('When the invoice expires'),
    resource: z.string().optional(),
    origin: z.string().optional(),
    l402: z.object({ scheme: z.enum(['L402', 'LSAT']), expiresAt: z.number().optional() }).optional(),
    finishedSeq: z.number().optional(),
    createdAt: iso,
    updatedAt: iso,
  }),
);

export const LightningPaymentListResponse = apiSchema('LightningPaymentList', z.object({ payments: z.array(LightningPaymentRecordSchema) }));

export const ListLightningPaymentsParams = z.object({
  agent: z.string().optional(),
  state: z.enum(['in_flight', 'succeeded', 'failed']).optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
});

export const LightningReconcileResponse = apiSchema(
  'LightningReconcile',
  z.object({ checked: z.number(), succeeded: z.number(), failed: z.number(), errors: z.number().describe('Lookups the backend could not answer (their holds stay)') }),
);

export const LightningStatusResponse = apiSchema(
  'LightningStatus',
  z.object({
    configured: z.boolean().describe('False: AIRLOCK_LIGHTNING_BACKEND is unset and every payment is refused with lightning_not_configured.'),
    backend: z.string().optional().describe('lnd or nwc'),
    network: z.enum(['bitcoin', 'testnet', 'signet', 'regtest']).optional().describe('The network the backend pays on (AIRLOCK_LIGHTNING_NETWORK)'),
    enforcesMaxFee: z.boolean().optional().describe("False for NWC: the fee limit is the wallet's own budget, and Airlock charges the fee the wallet reports."),
    reachable: z.boolean().optional().describe('The backend answered just now (its balance, or a lookup of a payment hash nobody can have paid).'),
    balanceMsat: msat.optional().describe('What the backend reports as spendable (LND: our side of the open channels, reserves included).'),
    error: z.object({ code: z.string(), message: z.string() }).optional().describe('Why the backend did not answer (reachable: false).'),
  }),
);

export const L402PayRequest = apiSchema(
  'L402PayRequest',
  z.strictObject({
    url: z.string().min(1).max(2048).describe('The URL that answered 402.'),
    challenge: z.string().min(1).max(16 * 1024).describe('The WWW-Authenticate header value (L402 or the legacy LSAT scheme).'),
    maxFeeMsat: msat.optional(),
  }),
);

export const L402TokenParams = z.object({ url: z.string().min(1).max(2048) });

export const L402TokenResponse = apiSchema(
  'L402Token',
  z.object({
    authorization: z.string().describe('`L402 <macaroon>:<preimage>`'),
    paymentId: z.string(),
    origin: z.string(),
    expiresAt: z.number().optional().describe('unix seconds, from the macaroon caveats'),
  }),
);
