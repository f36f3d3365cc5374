/**
 * The cluster definition every signer node and the coordinator hold: the threshold and, per node, its name,
 * its FROST identifier and its identity key (BIP-340 x-only, made by `airlock frost init`). The operator writes it
 * from the keys the nodes printed and gives each node its own copy: a node trusts only the identity keys it
 * lists, so a coordinator cannot slip in a node of its own.
 */
import { AirlockError, canonicalJson } from '@airlock/core';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils.js';
import { CLUSTER_SUITE } from './ciphersuite.ts';

export interface ClusterNode {
  name: string;
  /** FROST identifier, 1..255 (the x at which the node's share evaluates the key polynomial). */
  identifier: number;
  /** BIP-340 x-only public key, hex: signs the node's key-generation messages, receives its encrypted shares. */
  identityKey: string;
}

export interface ClusterDefinition {
  threshold: number;
  nodes: ClusterNode[];
}

const NAME = /^[a-z0-9][a-z0-9-]{0,31}$/;
const XONLY = /^[0-9a-f]{64}$/;

function invalid(message: string): AirlockError {
  return new AirlockError('invalid_request', `cluster definition: ${message}`);
}

/** Checked field by field; unknown fields are refused rather than ignored. */
export function parseCluster(doc: unknown): ClusterDefinition {
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw invalid('expected an object {threshold, nodes}');
  const { threshold, nodes, ...rest } = doc as Record<string, unknown>;
  if (Object.keys(rest).length > 0) throw invalid(`unknown field ${JSON.stringify(Object.keys(rest)[0]!.slice(0, 40))}`);
  if (!Array.isArray(nodes) || nodes.length < 2 || nodes.length > 255) throw invalid('nodes: a list of 2 to 255 nodes');
  if (typeof threshold !== 'number' || !Number.isInteger(threshold) || threshold < 2 || threshold > nodes.length) {
    throw invalid('threshold: an integer from 2 to the number of nodes (a 1-of-n cluster would let any one node sign alone)');
  }
  const parsed = nodes.map((n, i): ClusterNode => {
    if (n === null || typeof n !== 'object' || Array.isArray(n)) throw invalid(`nodes[${i}]: expected {name, identifier, identityKey}`);
    const { name, identifier, identityKey, ...extra } = n as Record<string, unknown>;
    if (Object.keys(extra).length > 0) throw invalid(`nodes[${i}]: unknown field`);
    if (typeof name !== 'string' || !NAME.test(name)) throw invalid(`nodes[${i}].name: lowercase letters, digits and dashes, at most 32`);
    if (typeof identifier !== 'number' || !Number.isInteger(identifier) || identifier < 1 || identifier > 255) throw invalid(`nodes[${i}].identifier: an integer 1..255`);
    if (typeof identityKey !== 'string' || !XONLY.test(identityKey)) throw invalid(`nodes[${i}].identityKey: 64 lowercase hex characters (x-only key)`);
    return { name, identifier, identityKey };
  });
  for (const key of ['name', 'identifier', 'identityKey'] as const) {
    if (new Set(parsed.map((n) => n[key])).size !== parsed.length) throw invalid(`two nodes share one ${key}`);
  }
  return { threshold, nodes: parsed };
}

/** The identifier in the FROST library's spelling (32-byte scalar, hex). */
export function frostIdentifier(identifier: number): string {
  return CLUSTER_SUITE.frost.Identifier.fromNumber(identifier);
}

export function clusterNode(cluster: ClusterDefinition, name: string): ClusterNode {
  const node = cluster.nodes.find((n) => n.name === name);
  if (!node) throw invalid(`no node named ${JSON.stringify(name.slice(0, 40))}`);
  return node;
}

export function nodeByFrostIdentifier(cluster: ClusterDefinition, id: string): ClusterNode | undefined {
  return cluster.nodes.find((n) => frostIdentifier(n.identifier) === id);
}

/** Binds every key-generation message to this exact cluster (nodes, keys, threshold). */
export function clusterHash(cluster: ClusterDefinition): string {
  return bytesToHex(sha256(utf8ToBytes(canonicalJson(cluster))));
}
