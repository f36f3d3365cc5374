// evm.typed_data: EIP-712. The payload is normalised against its own type definitions (every field present,
// no extra fields, every value in range for its type) before hashing, so the hash covers exactly what was read.
import { AirlockError, MAX_JSON_DEPTH, nonceKey } from '@airlock/core';
import type { DecodedRequest, Intent, SignerContext, TypedDataInfo } from '@airlock/core';
import { bytesToHex, getTypesForEIP712Domain, hexToBytes } from 'viem';
import type { Hex, TypedDataDomain, TypedDataParameter } from 'viem';
import {
  caip2, isRecord, readAddress, readChainId, readHex, readQuantity, readRecord, rejectUnknownKeys,
} from './fields.ts';
import { hashTypedDataOnce, typeDependencies } from './eip712-hash.ts';
import { classifyTypedData, namedAccount } from './typed-data-kinds.ts';
import type { AbiRegistry } from './abi-registry.ts';
import { decodeSafeTransaction, isSafeTxRequest } from './safe-tx.ts';
import { readUserOperationTypedData, userOperationHash, userOperationIntent } from './user-operation.ts';

export type TypeDefinitions = Record<string, readonly TypedDataParameter[]>;

/** A typed-data request after validation: values normalised (uints as bigint, addresses lowercase). */
export interface NormalisedTypedData {
  domain: TypedDataDomain;
  types: TypeDefinitions;
  primaryType: string;
  message: Record<string, unknown>;
  chainId: number;
}

const DOMAIN_FIELD_TYPES: Record<string, string> = {
  name: 'string', version: 'string', chainId: 'uint256', verifyingContract: 'address', salt: 'bytes32',
};
const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
const ELEMENTARY = /^(?:address|bool|string|bytes[0-9]*|u?int[0-9]*)$/;

/**
 * What Airlock decodes of EIP-712 typed data; beyond a limit the request is refused `typed_data_too_large`
 * (details: `limit`, its `max`, what was `found`) before anything is hashed, scoped or evaluated. Inside the
 * body limit a request of 138 kB (a 120,000-character field name in a struct used by 2,000 array elements) cost
 * 40 s of hashing while every other request waited. Real typed data is far inside every limit: Permit2's
 * longest name (PermitBatchWitnessTransferFrom) has 30 characters; a Seaport bulk order uses 5 types, the
 * longest with 11 fields (OrderComponents), and the encodeType of OrderComponents is about 450 characters.
 */
export const TYPED_DATA_LIMITS = Object.freeze({
  /** Characters of a type name or a field name. */
  nameLength: 64,
  /** Characters of a field's type, array dimensions included (Seaport's bulk order tree of height 24 has 87). */
  typeLength: 256,
  /** Struct types in typedData.types, EIP712Domain included. */
  types: 64,
  /** Fields of one struct type. */
  fieldsPerType: 64,
  /** Characters of the EIP-712 encodeType of any struct type: the struct and every struct it uses. */
  encodedTypeLength: 8_192,
  /** Values in typedData.message, each struct, array and elementary value counted (an array of n numbers is n + 1). */
  messageValues: 8_192,
});

/** Which limit a `typed_data_too_large` refusal names (in `details.limit`). */
export type TypedDataLimit = keyof typeof TYPED_DATA_LIMITS;

function tooLarge(limit: TypedDataLimit, found: number, what: string): AirlockError {
  return new AirlockError('typed_data_too_large', `the typed data is larger than Airlock decodes: ${what} (limit ${limit}: at most ${TYPED_DATA_LIMITS[limit]})`, {
    details: { limit, max: TYPED_DATA_LIMITS[limit], found },
  });
}

export function readTypedDataRequest(payload: unknown): NormalisedTypedData {
  const request = readRecord(payload, 'payload');
  rejectUnknownKeys(request, ['chainId', 'typedData'], 'payload');
  const typedData = readRecord(request.typedData, 'typedData');
  rejectUnknownKeys(typedData, ['domain', 'types', 'primaryType', 'message'], 'typedData');

  const domain = readDomain(typedData.domain);
  const types = readTypes(typedData.types, domain);
  const primaryType = typedData.primaryType;
  if (typeof primaryType !== 'string' || !Object.hasOwn(types, primaryType)) {
    throw new AirlockError('undecodable_payload', 'typedData.primaryType must name a type in typedData.types');
  }

  const topChain = request.chainId === undefined ? undefined : readChainId(request.chainId, 'chainId');
  const domainChain = domain.chainId === undefined ? undefined : Number(domain.chainId);
  if (topChain !== undefined && domainChain !== undefined && topChain !== domainChain) {
    throw new AirlockError('chain_mismatch', 'typedData.domain.chainId differs from chainId');
  }
  const chainId = domainChain ?? topChain;
  if (chainId === undefined) throw new AirlockError('invalid_request', 'chainId is required when typedData.domain has no chainId');

  const message = primaryType === 'EIP712Domain'
    ? {}
    : (normaliseStruct(types, primaryType, typedData.message, 'typedData.message', { left: TYPED_DATA_LIMITS.messageValues }) as Record<string, unknown>);
  return { domain, types, primaryType, message, chainId };
}

function readDomain(value: unknown): TypedDataDomain {
  const raw = readRecord(value ?? {}, 'typedData.domain');
  rejectUnknownKeys(raw, Object.keys(DOMAIN_FIELD_TYPES), 'typedData.domain');
  const domain: TypedDataDomain = {};
  if (raw.name !== undefined) domain.name = readString(raw.name, 'typedData.domain.name');
  if (raw.version !== undefined) domain.version = readString(raw.version, 'typedData.domain.version');
  if (raw.chainId !== undefined) domain.chainId = readChainId(raw.chainId, 'typedData.domain.chainId');
  if (raw.verifyingContract !== undefined) domain.verifyingContract = readAddress(raw.verifyingContract, 'typedData.domain.verifyingContract');
  if (raw.salt !== undefined) domain.salt = readHex(raw.salt, 'typedData.domain.salt', 32);
  return domain;
}

function readString(value: unknown, path: string): string {
  if (typeof value !== 'string') throw new AirlockError('invalid_request', `${path} must be a string`);
  return value;
}

function readTypes(value: unknown, domain: TypedDataDomain): TypeDefinitions {
  const raw = readRecord(value, 'typedData.types');
  // No prototype: a type named "__proto__" is a key like any other, not a way to replace the prototype.
  const types: Record<string, TypedDataParameter[]> = Object.create(null);
  for (const [typeName, fields] of Object.entries(raw)) {
    const path = `typedData.types.${typeName.slice(0, 40)}`;
    if (typeName.length > TYPED_DATA_LIMITS.nameLength) throw tooLarge('nameLength', typeName.length, `the name of type ${typeName.slice(0, 40)}... has ${typeName.length} characters`);
    // A struct named like an elementary type ("address", "uint256") would be read one way here and possibly another by a wallet.
    if (!IDENTIFIER.test(typeName) || ELEMENTARY.test(typeName)) throw new AirlockError('undecodable_payload', `${path} is not a valid type name`);
    if (!Array.isArray(fields)) throw new AirlockError('undecodable_payload', `${path} must be an array of {name, type}`);
    if (fields.length > TYPED_DATA_LIMITS.fieldsPerType) throw tooLarge('fieldsPerType', fields.length, `${path} has ${fields.length} fields`);
    const seen = new Set<string>();
    types[typeName] = fields.map((field, i) => {
      if (!isRecord(field) || typeof field.name !== 'string' || typeof field.type !== 'string' || Object.keys(field).length !== 2) {
        throw new AirlockError('undecodable_payload', `${path}[${i}] must be {name, type}`);
      }
      if (field.name.length > TYPED_DATA_LIMITS.nameLength) throw tooLarge('nameLength', field.name.length, `the name of ${path}[${i}] has ${field.name.length} characters`);
      // A field named `__proto__` is read through the prototype chain of a plain message object: what
      // policy saw and what was hashed could differ (found by the idempotency review). Refuse it by name.
      if (!IDENTIFIER.test(field.name) || field.name === '__proto__') throw new AirlockError('undecodable_payload', `${path}[${i}].name is not a valid field name`);
      if (seen.has(field.name)) throw new AirlockError('undecodable_payload', `${path} repeats field '${field.name.slice(0, 40)}'`);
      seen.add(field.name);
      return { name: field.name, type: field.type };
    });
  }
  // The domain must be hashed with exactly the fields it carries; otherwise a field such as chainId
  // could be shown to policy but left out of what is signed.
  const expected = getTypesForEIP712Domain({ domain });
  if (types.EIP712Domain) {
    const given = types.EIP712Domain;
    const sameSet = given.length === expected.length
      && given.every((f) => DOMAIN_FIELD_TYPES[f.name] === f.type && expected.some((e) => e.name === f.name));
    if (!sameSet) throw new AirlockError('undecodable_payload', 'typedData.types.EIP712Domain does not match the fields of typedData.domain');
  } else types.EIP712Domain = [...expected];
  checkTypeNesting(types);
  checkTypeSizes(types);
  return types;
}

/**
 * The number of struct types, the length of each field's type, and the length of each struct's EIP-712
 * encodeType (what is hashed into its type hash), summed from the lengths of the definitions it uses before any
 * string is built. After checkTypeNesting: the type graph has no cycle and no field type more than 64
 * dimensions deep.
 */
function checkTypeSizes(types: TypeDefinitions): void {
  const names = Object.keys(types);
  if (names.length > TYPED_DATA_LIMITS.types) throw tooLarge('types', names.length, `typedData.types defines ${names.length} types (EIP712Domain included)`);
  // `Name(type1 name1,type2 name2)`: the name, the parentheses, each field's type, space and name, the commas.
  const ownLength = new Map<string, number>();
  for (const name of names) {
    const fields = types[name]!;
    fields.forEach((field, i) => {
      if (field.type.length > TYPED_DATA_LIMITS.typeLength) throw tooLarge('typeLength', field.type.length, `the type of typedData.types.${name.slice(0, 40)}[${i}] has ${field.type.length} characters`);
    });
    ownLength.set(name, name.length + 2 + Math.max(0, fields.length - 1) + fields.reduce((n, f) => n + f.type.length + 1 + f.name.length, 0));
  }
  for (const name of names) {
    let length = 0;
    for (const dep of typeDependencies(name, types)) length += ownLength.get(dep)!;
    if (length > TYPED_DATA_LIMITS.encodedTypeLength) throw tooLarge('encodedTypeLength', length, `the EIP-712 type string of ${name.slice(0, 40)} (it and every struct it uses) has ${length} characters`);
  }
}

/** `Mail[2][]` -> { base: 'Mail', dims: 2 }; stops counting past the limit (the caller refuses it then). */
function splitArrayType(type: string): { base: string; dims: number } {
  let base = type;
  let dims = 0;
  while (base.endsWith(']') && dims <= MAX_JSON_DEPTH) {
    const open = base.lastIndexOf('[');
    if (open <= 0 || !/^[0-9]*$/.test(base.slice(open + 1, -1))) break;
    base = base.slice(0, open);
    dims++;
  }
  return { base, dims };
}

/**
 * Refuses struct types that contain themselves (directly, through other structs or through arrays)
 * and types nesting deeper than MAX_JSON_DEPTH (each struct and each array dimension is a level).
 * Every later step (normalising the message, EIP-712 encodeType/encodeData, policy matching) recurses
 * over the type graph, so a cycle or a chain of 10,000 types would end in a stack overflow there.
 * Depth-first with an explicit stack, so checking a hostile graph cannot overflow either.
 */
function checkTypeNesting(types: TypeDefinitions): void {
  const tooDeep = () => new AirlockError('payload_too_deep', `typedData.types nest deeper than ${MAX_JSON_DEPTH} levels`);
  const depthOf = new Map<string, number>();
  const onPath = new Set<string>();
  for (const root of Object.keys(types)) {
    if (depthOf.has(root)) continue;
    const stack: { name: string; next: number; depth: number; childDims: number }[] = [{ name: root, next: 0, depth: 1, childDims: 0 }];
    onPath.add(root);
    while (stack.length > 0) {
      const frame = stack[stack.length - 1]!;
      const fields = types[frame.name]!;
      if (frame.next < fields.length) {
        const { base, dims } = splitArrayType(fields[frame.next++]!.type);
        if (dims > MAX_JSON_DEPTH) throw tooDeep();
        if (!Object.hasOwn(types, base)) {
          frame.depth = Math.max(frame.depth, 1 + dims);
        } else if (onPath.has(base)) {
          throw new AirlockError('payload_too_deep', `typedData.types.${base.slice(0, 40)} contains itself (recursive struct types are refused)`);
        } else if (depthOf.has(base)) {
          frame.depth = Math.max(frame.depth, 1 + dims + depthOf.get(base)!);
        } else {
          frame.childDims = dims;
          stack.push({ name: base, next: 0, depth: 1, childDims: 0 });
          onPath.add(base);
        }
        if (frame.depth > MAX_JSON_DEPTH || stack.length > MAX_JSON_DEPTH) throw tooDeep();
        continue;
      }
      stack.pop();
      onPath.delete(frame.name);
      depthOf.set(frame.name, frame.depth);
      const parent = stack[stack.length - 1];
      if (parent) parent.depth = Math.max(parent.depth, 1 + parent.childDims + frame.depth);
    }
  }
}

/** How many more values the message may hold (TYPED_DATA_LIMITS.messageValues), counted down as it is read. */
interface ValueBudget { left: number }

function spend(budget: ValueBudget, n: number): void {
  budget.left -= n;
  if (budget.left < 0) {
    const found = TYPED_DATA_LIMITS.messageValues - budget.left;
    throw tooLarge('messageValues', found, `typedData.message holds more than ${TYPED_DATA_LIMITS.messageValues} values (at least ${found})`);
  }
}

/** Walks a value against its EIP-712 type, returning it normalised or failing with the field path. */
function normaliseValue(types: TypeDefinitions, type: string, value: unknown, path: string, budget: ValueBudget): unknown {
  spend(budget, 1);
  const array = /^(.+)\[([0-9]*)\]$/.exec(type);
  if (array) {
    if (!Array.isArray(value)) throw new AirlockError('undecodable_payload', `${path} must be an array`);
    if (array[2] !== '' && value.length !== Number(array[2])) throw new AirlockError('undecodable_payload', `${path} must have ${array[2]} entries`);
    // Each element is at least one value: a long array is refused before any element is read.
    if (value.length > budget.left) spend(budget, value.length);
    return value.map((v, i) => normaliseValue(types, array[1] as string, v, `${path}[${i}]`, budget));
  }
  // Own keys only: `in` would take "__proto__" or "toString" for a struct (an internal error, not a refusal).
  if (Object.hasOwn(types, type)) return normaliseStruct(types, type, value, path, budget, false);
  if (type === 'address') return readAddress(value, path);
  if (type === 'bool') {
    if (typeof value !== 'boolean') throw new AirlockError('undecodable_payload', `${path} must be a boolean`);
    return value;
  }
  if (type === 'string') {
    if (typeof value !== 'string') throw new AirlockError('undecodable_payload', `${path} must be a string`);
    return value;
  }
  if (type === 'bytes') return readHex(value, path);
  const bytesN = /^bytes([0-9]+)$/.exec(type);
  if (bytesN) {
    const size = Number(bytesN[1]);
    if (size < 1 || size > 32) throw new AirlockError('undecodable_payload', `${path} has invalid type ${type}`);
    return readHex(value, path, size);
  }
  const int = /^(u?)int([0-9]*)$/.exec(type);
  if (int) {
    const bits = int[2] === '' ? 256 : Number(int[2]);
    if (bits < 8 || bits > 256 || bits % 8 !== 0) throw new AirlockError('undecodable_payload', `${path} has invalid type ${type}`);
    if (int[1] === 'u') return readQuantity(value, path, (1n << BigInt(bits)) - 1n);
    return readSignedInteger(value, path, bits);
  }
  throw new AirlockError('undecodable_payload', `${path} has unknown type '${type.slice(0, 40)}'`);
}

function normaliseStruct(types: TypeDefinitions, typeName: string, value: unknown, path: string, budget: ValueBudget, counted = true): Record<string, unknown> {
  if (counted) spend(budget, 1);
  if (!isRecord(value)) throw new AirlockError('undecodable_payload', `${path} must be an object of type ${typeName}`);
  const fields = types[typeName] ?? [];
  const names = new Set(fields.map((f) => f.name));
  for (const key of Object.keys(value)) {
    // Extra fields are not hashed: refusing them keeps what the agent sees equal to what is signed.
    if (!names.has(key)) throw new AirlockError('undecodable_payload', `${path} has a field '${key.slice(0, 40)}' not in type ${typeName}`);
  }
  const out: Record<string, unknown> = {};
  for (const field of fields) {
    if (!(field.name in value)) throw new AirlockError('undecodable_payload', `${path}.${field.name} is missing`);
    out[field.name] = normaliseValue(types, field.type, value[field.name], `${path}.${field.name}`, budget);
  }
  return out;
}

function readSignedInteger(value: unknown, path: string, bits: number): bigint {
  const negative = typeof value === 'string' && value.startsWith('-');
  const magnitude = negative ? (value as string).slice(1) : typeof value === 'number' && value < 0 ? -value : typeof value === 'bigint' && value < 0n ? -value : value;
  const isNegative = negative || (typeof value === 'number' && value < 0) || (typeof value === 'bigint' && value < 0n);
  const limit = 1n << BigInt(bits - 1);
  const abs = readQuantity(magnitude, path, isNegative ? limit : limit - 1n);
  return isNegative ? -abs : abs;
}

export function typedDataDigest(data: NormalisedTypedData): Uint8Array {
  let hash: Hex;
  try {
    hash = hashTypedDataOnce({ domain: data.domain, types: data.types, primaryType: data.primaryType, message: data.message });
  } catch (cause) {
    throw new AirlockError('undecodable_payload', 'typedData could not be hashed under EIP-712', { cause });
  }
  return hexToBytes(hash);
}

export function typedDataInfo(data: NormalisedTypedData): TypedDataInfo {
  const { name, version, chainId, verifyingContract, salt } = data.domain;
  return {
    primaryType: data.primaryType,
    domain: {
      ...(name !== undefined ? { name } : {}),
      ...(version !== undefined ? { version } : {}),
      ...(chainId !== undefined ? { chainId: Number(chainId) } : {}),
      ...(verifyingContract !== undefined ? { verifyingContract: verifyingContract.toLowerCase() } : {}),
      ...(salt !== undefined ? { salt } : {}),
    },
  };
}

export function decodeTypedDataRequest(payload: unknown, signer: SignerContext, abis?: AbiRegistry): DecodedRequest {
  const data = readTypedDataRequest(payload);
  const digest = typedDataDigest(data);
  // An ERC-4337 v0.8 user operation: decoded into its calls like one sent to /v1/sign/user-operation.
  const userOperation = readUserOperationTypedData(data);
  if (userOperation) {
    if (userOperationHash(userOperation) !== bytesToHex(digest)) throw new AirlockError('undecodable_payload', 'PackedUserOperation typed data does not hash to its userOpHash');
    return { intent: userOperationIntent(userOperation, 'typed_data', signer, abis), digest };
  }
  const chain = caip2(data.chainId);
  const info = typedDataInfo(data);
  if (isSafeTxRequest(data)) {
    const safeTx = decodeSafeTransaction(data, chain, abis);
    const intent: Intent = {
      action: 'evm.typed_data',
      chain,
      kind: safeTx.kind,
      from: signer.address.toLowerCase(),
      ...(safeTx.to ? { to: safeTx.to } : {}),
      spends: safeTx.spends,
      approvals: safeTx.approvals,
      typedData: info,
      safe: safeTx.safe,
      // A Safe executes one transaction per nonce: of two SafeTxs with one nonce only one can ever run.
      nonceKeys: [nonceKey('safe', chain, safeTx.safe.address, signer.address, safeTx.nonce)],
      summary: safeTx.summary,
    };
    return { intent, digest };
  }
  const named = namedAccount(data);
  if (named && named.address !== signer.address.toLowerCase()) {
    throw new AirlockError('invalid_request', `typedData.message.${named.field} is not the signing agent: ${data.primaryType} moves the funds of ${named.field}, and Airlock accounts for it as the signer's (${signer.address.toLowerCase()})`, {
      hints: [`Build the ${data.primaryType} with ${named.field} set to the agent's address (GET /v1/session); Airlock does not sign for another account, not even a contract wallet the agent's key owns.`],
      details: { field: `typedData.message.${named.field}`, signer: signer.address.toLowerCase() },
    });
  }
  const known = classifyTypedData(data, chain);
  const intent: Intent = {
    action: 'evm.typed_data',
    chain,
    kind: known?.kind ?? 'typed_data.unknown',
    from: signer.address.toLowerCase(),
    ...(known?.to ? { to: known.to } : {}),
    spends: known?.spends ?? [],
    approvals: known?.approvals ?? [],
    typedData: info,
    ...(known?.validity ? { validity: known.validity } : {}),
    ...(known?.payment ? { payment: known.payment } : {}),
    ...(known?.nonces?.length ? { nonceKeys: known.nonces.map((n) => nonceKey(n.standard, chain, n.contract, signer.address, n.nonce, n.scope)) } : {}),
    summary: known?.summary ?? `sign unknown typed data ${data.primaryType.slice(0, 60)} for ${info.domain.name?.slice(0, 60) ?? 'unnamed domain'}${info.domain.verifyingContract ? ` (${info.domain.verifyingContract})` : ''} on ${chain}`,
  };
  return { intent, digest };
}
