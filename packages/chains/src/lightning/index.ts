export { decodeBolt11, type DecodeBolt11Options, type DecodedInvoice, type LightningNetwork, type RouteHintHop } from './bolt11.ts';
export { createLightningAdapter, type LightningPayPayload } from './adapter.ts';
export {
  decodeL402Macaroon,
  formatL402Authorization,
  l402Expiry,
  parseL402Challenge,
  parseL402Challenges,
  type DecodedL402Macaroon,
  type L402Challenge,
  type L402Identifier,
  type L402Scheme,
} from './l402.ts';
