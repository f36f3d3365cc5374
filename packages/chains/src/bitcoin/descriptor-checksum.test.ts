// BIP-380 descriptor checksums: the BIP's own test vectors and the checksums Bitcoin Core's descriptor tests
// (src/test/descriptor_tests.cpp, "Checksums") give for a private and a public descriptor.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isAirlockError } from '@airlock/core';
import { descriptorChecksum, hasValidDescriptorChecksum, withDescriptorChecksum } from './descriptor-checksum.ts';

test('BIP-380: valid checksum, and every malformed one the BIP lists refused', () => {
  assert.equal(descriptorChecksum('raw(deadbeef)'), '89f8spxm');
  assert.equal(hasValidDescriptorChecksum('raw(deadbeef)#89f8spxm'), true);
  for (const [what, text] of [
    ['no checksum', 'raw(deadbeef)'],
    ['missing checksum', 'raw(deadbeef)#'],
    ['too long checksum', 'raw(deadbeef)#89f8spxmx'],
    ['too short checksum', 'raw(deadbeef)#89f8spx'],
    ['error in payload', 'raw(deedbeef)#89f8spxm'],
    ['error in checksum', 'raw(deedbeef)##9f8spxm'],
    ['invalid characters in payload', 'raw(Ü)#00000000'],
  ] as const) {
    assert.equal(hasValidDescriptorChecksum(text), false, what);
  }
  assert.throws(() => descriptorChecksum('raw(Ü)'), (e: unknown) => isAirlockError(e) && e.code === 'invalid_request');
});

test('Bitcoin Core descriptor_tests: the checksums of a private and a public multisig descriptor', () => {
  const prv =
    "sh(multi(2,[00000000/111'/222]xprvA1RpRA33e1JQ7ifknakTFpgNXPmW2YvmhqLQYMmrj4xJXXWYpDPS3xz7iAxn8L39njGVyuoseXzU6rcxFLJ8HFsTjSyQbLYnMpCqE2VbFWc,xprv9uPDJpEQgRQfDcW7BkF7eTya6RPxXeJCqCJGHuCJ4GiRVLzkTXBAJMu2qaMWPrS7AANYqdq6vcBcBUdJCVVFceUvJFjaPdGZ2y9WACViL4L/0))";
  const pub =
    "sh(multi(2,[00000000/111'/222]xpub6ERApfZwUNrhLCkDtcHTcxd75RbzS1ed54G1LkBUHQVHQKqhMkhgbmJbZRkrgZw4koxb5JaHWkY4ALHY2grBGRjaDMzQLcgJvLJuZZvRcEL,xpub68NZiKmJWnxxS6aaHmn81bvJeTESw724CRDs6HbuccFQN9Ku14VQrADWgqbhhTHBaohPX4CjNLf9fq9MYo6oDaPPLPxSb7gwQN3ih19Zm4Y/0))";
  assert.equal(withDescriptorChecksum(prv), `${prv}#ggrsrxfy`);
  assert.equal(withDescriptorChecksum(pub), `${pub}#tjg09x5t`);
  // One character changed (a case error counts as one symbol error): always detected.
  assert.equal(hasValidDescriptorChecksum(`${pub.replace('xpub68', 'xpub6A')}#tjg09x5t`), false);
  assert.equal(hasValidDescriptorChecksum(`${pub.toUpperCase()}#tjg09x5t`), false);
});
