// The EIP-712 digest of normalised typed data: viem's hashTypedData (utils/signature/hashTypedData.ts, itself
// forked from MetaMask's eth-sig-util) step for step, with one change: each struct's type hash is computed once
// per request instead of once per value of that struct. viem re-encodes the type string (the struct and every
// struct it uses) for every array element, so one request of a few thousand elements of a struct with a long
// type string held the event loop for minutes. Same encoders (encodeAbiParameters, keccak256, toHex), same
// order, same validation (viem's validateTypedData): the digest is byte-identical to viem's, which
// eip712-hash.test.ts checks against viem on every shape the decoder accepts.
import { concat, encodeAbiParameters, getTypesForEIP712Domain, keccak256, toHex, validateTypedData } from 'viem';
import type { AbiParameter, Hex, TypedDataDomain } from 'viem';

interface Field { name: string; type: string }
type Types = Record<string, readonly Field[]>;

export interface Eip712Input {
  domain: TypedDataDomain;
  types: Types;
  primaryType: string;
  message: Record<string, unknown>;
}

export function hashTypedDataOnce(input: Eip712Input): Hex {
  const domain = input.domain ?? {};
  // As viem: the domain's own fields first, then the caller's types (an EIP712Domain given there wins).
  const types: Types = { EIP712Domain: getTypesForEIP712Domain({ domain }), ...input.types };
  validateTypedData({ domain, message: input.message, primaryType: input.primaryType, types } as never);
  const encoder = new StructEncoder(types);
  const parts: Hex[] = ['0x1901', encoder.hashStruct(domain as Record<string, unknown>, 'EIP712Domain')];
  if (input.primaryType !== 'EIP712Domain') parts.push(encoder.hashStruct(input.message, input.primaryType));
  return keccak256(concat(parts));
}

class StructEncoder {
  private readonly typeHashes = new Map<string, Hex>();
  private readonly types: Types;
  constructor(types: Types) {
    this.types = types;
  }

  hashStruct(data: Record<string, unknown>, primaryType: string): Hex {
    return keccak256(this.encodeData(data, primaryType));
  }

  private encodeData(data: Record<string, unknown>, primaryType: string): Hex {
    const encodedTypes: AbiParameter[] = [{ type: 'bytes32' }];
    const encodedValues: unknown[] = [this.hashType(primaryType)];
    for (const field of this.types[primaryType]!) {
      const [type, value] = this.encodeField(field.type, data[field.name]);
      encodedTypes.push(type);
      encodedValues.push(value);
    }
    return encodeAbiParameters(encodedTypes, encodedValues);
  }

  private hashType(primaryType: string): Hex {
    let hash = this.typeHashes.get(primaryType);
    if (hash === undefined) {
      hash = keccak256(toHex(encodeType(primaryType, this.types)));
      this.typeHashes.set(primaryType, hash);
    }
    return hash;
  }

  private encodeField(type: string, value: unknown): [AbiParameter, unknown] {
    if (Object.hasOwn(this.types, type)) return [{ type: 'bytes32' }, keccak256(this.encodeData(value as Record<string, unknown>, type))];
    if (type === 'bytes') return [{ type: 'bytes32' }, keccak256(value as Hex)];
    if (type === 'string') return [{ type: 'bytes32' }, keccak256(toHex(value as string))];
    if (type.lastIndexOf(']') === type.length - 1) {
      const parsedType = type.slice(0, type.lastIndexOf('['));
      const pairs = (value as unknown[]).map((item) => this.encodeField(parsedType, item));
      return [{ type: 'bytes32' }, keccak256(encodeAbiParameters(pairs.map(([t]) => t), pairs.map(([, v]) => v)))];
    }
    return [{ type }, value];
  }
}

/** EIP-712 encodeType: the struct, then every struct it uses (sorted by name), as `Name(type name,...)`. */
export function encodeType(primaryType: string, types: Types): string {
  const deps = typeDependencies(primaryType, types);
  deps.delete(primaryType);
  let result = '';
  for (const type of [primaryType, ...Array.from(deps).sort()]) {
    result += `${type}(${types[type]!.map(({ name, type: t }) => `${t} ${name}`).join(',')})`;
  }
  return result;
}

/** The struct and every struct it uses, directly or through arrays (iterative: no recursion on hostile graphs). */
export function typeDependencies(primaryType: string, types: Types): Set<string> {
  const results = new Set<string>();
  const pending = [primaryType];
  while (pending.length > 0) {
    const name = pending.pop()!.replace(/(\[[0-9]*\])+$/, '');
    if (results.has(name) || !Object.hasOwn(types, name)) continue;
    results.add(name);
    for (const field of types[name]!) pending.push(field.type);
  }
  return results;
}
