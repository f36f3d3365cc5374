export { SLIP39_WORDLIST } from './wordlist.ts';
export { decodeShare, encodeShare, MIN_SHARE_WORDS, type Share } from './share.ts';
export { ANY_SLIP39_SET, DEFAULT_ITERATION_EXPONENT, MAX_ITERATION_EXPONENT, MIN_SHARES_TO_RECOVER, ShareCollector, combineShares, splitSecret, MAX_SHARE_COUNT, type CollectRules, type GroupLayout, type GroupProgress, type ShareProgress, type ShareSet, type SplitOptions } from './shamir.ts';
