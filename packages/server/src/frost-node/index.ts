export { createFrostNodeApp, type FrostNodeOptions } from './node-app.ts';
export { NodeLedger, type NodeDecision } from './node-ledger.ts';
export { FrostCoordinator, type CoordinatorNode, type NodeAnswer, type SignedNostrEvent } from './coordinator.ts';
export { startFrostNode, NODE_STATE_FILE, NODE_LEDGER_FILE, type RunningFrostNode, type StartFrostNodeOptions } from './serve-node.ts';
