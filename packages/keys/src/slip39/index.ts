export { SLIP39_WORDLIST } from './wordlist.ts';
export { decodeShare, encodeShare, MIN_SHARE_WORDS, type Share } from './share.ts';
export { ShareCollector, combineShares, splitSecret, MAX_SHARE_COUNT, type GroupLayout, type GroupProgress, type ShareProgress, type ShareSet, type SplitOptions } from './shamir.ts';
