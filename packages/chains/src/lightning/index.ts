export { decodeBolt11, type DecodeBolt11Options, type DecodedInvoice, type LightningNetwork, type RouteHintHop } from './bolt11.ts';
export { createLightningAdapter, type LightningPayPayload } from './adapter.ts';
