/**
 * Round two for a Taproot key-path PSBT on a signer node: `{sessions: [{input, commitmentId, commitments}],
 * request: {action: "bitcoin.taproot_key_path", psbt, network}}`.
 *
 * One FROST signing session per input the node signs, each with its own round-one commitment: a nonce pair is
 * used for exactly one message (that input's sighash), never across inputs, since two messages under one nonce
 * give the share away. Every named nonce is taken out of memory first, before anything is checked. Then the node
 * decodes the PSBT itself (chains' psbt-group-key.ts: the inputs paying to ITS group key, their BIP-341 sighashes,
 * the intent), checks that the sessions are exactly those inputs in order, evaluates its policy and records ONE
 * decision for the PSBT (keyed by the commitment over the unsigned transaction and every sighash, so a retry of
 * the same PSBT is a replay, not a second charge), and only then returns one share per input.
 */
import { AirlockError, type BitcoinNetwork } from '@airlock/core';
import { decodeGroupKeyPsbt, readTaprootKeyPathRequest } from '@airlock/chains';
import { parseCommitmentList, type ClusterDefinition, type CommitmentJson, type FrostSigner } from '@airlock/keys';
import type { EvaluationInput } from '@airlock/core';
import type { NodeDecision } from './node-ledger.ts';

/** The PSBT decoder refuses more than 50 inputs; no more sessions than that are read (or nonces taken). */
const MAX_SESSIONS = 50;

export interface TaprootRoundTwo {
  signer: FrostSigner;
  cluster: ClusterDefinition;
  node: string;
  /** The one network this node signs for: a request naming another is refused before anything is decided. */
  network: BitcoinNetwork;
  fields: Record<string, unknown>;
  decide(messageId: string, action: string, intent: EvaluationInput['intent']): NodeDecision;
}

export function signTaprootKeyPath({ signer, cluster, node, network, fields, decide }: TaprootRoundTwo) {
  const { sessions, request, ...rest } = fields;
  if (!Array.isArray(sessions) || sessions.length === 0 || sessions.length > MAX_SESSIONS) {
    throw new AirlockError('invalid_request', `sessions: 1 to ${MAX_SESSIONS} entries {input, commitmentId, commitments}, one per input paying to the group key`);
  }
  // Spent first, every one of them: whatever is refused below, none of these nonces is used again.
  const taken = sessions.map((s) => {
    try {
      return signer.take((s as Record<string, unknown> | null)?.commitmentId);
    } catch (e) {
      return e as AirlockError;
    }
  });
  const unknown = taken.find((t): t is AirlockError => t instanceof AirlockError);
  if (unknown) throw unknown;
  const nonces = taken as Exclude<(typeof taken)[number], AirlockError>[];
  if (Object.keys(rest).length > 0) throw new AirlockError('invalid_request', 'unknown field in the sign request');
  const lists: CommitmentJson[][] = sessions.map((s, k) => {
    const { input, commitmentId: _id, commitments, ...extra } = s as Record<string, unknown>;
    if (!Number.isSafeInteger(input) || Object.keys(extra).length > 0) throw new AirlockError('invalid_request', `sessions[${k}]: {input, commitmentId, commitments}`);
    const list = parseCommitmentList(cluster, commitments);
    signer.checkCommitmentList(nonces[k]!, list);
    return list;
  });

  const req = readTaprootKeyPathRequest(request);
  // The network is this node's setting, never the coordinator's word: the intent's asset (and so which caps and
  // budgets apply) follows from it, and a mainnet PSBT labelled testnet would escape every mainnet rule.
  if (req.network !== network) {
    throw new AirlockError('frost_network_mismatch', `this signer node signs ${network} PSBTs only; the request names ${req.network}`);
  }
  // The node decodes the PSBT itself: which inputs are the group's and what each one's message is.
  const decoded = decodeGroupKeyPsbt(req, signer.groupKey);
  const expected = decoded.inputs.map((i) => i.input);
  const named = sessions.map((s) => (s as { input: number }).input);
  if (named.join() !== expected.join()) {
    throw new AirlockError('invalid_request', `sessions: one per input paying to the group key, in input order (inputs ${expected.join(', ')})`);
  }
  const decision = decide(decoded.messageId, req.action, decoded.intent);
  const shares = decoded.inputs.map((signed, k) => ({ input: signed.input, share: signer.sign(nonces[k]!, lists[k]!, signed.sighash) }));
  return { node, identifier: signer.identifier, messageId: decoded.messageId, shares, decision: decision.seq, replay: decision.decision === 'replay' };
}
