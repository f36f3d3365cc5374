export { createNostrAdapter, HTTP_AUTH_KIND, type Nip44Request } from './adapter.ts';
export { eventId, parseUnsignedEvent, serializeEvent, type UnsignedEvent } from './event.ts';
export { nostrIdentityPath, nostrTransportPath, xOnlyHex } from './keys.ts';
export { nip44Decrypt, nip44Encrypt, paddedLength } from './nip44.ts';
export { nip04Decrypt, nip04Encrypt } from './nip04.ts';
