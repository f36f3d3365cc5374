export { CLUSTER_SUITE, FROST_SUITES, type FrostSuite } from './ciphersuite.ts';
export { parseCluster, clusterHash, clusterNode, frostIdentifier, nodeByFrostIdentifier, type ClusterDefinition, type ClusterNode } from './cluster.ts';
export { DkgParticipant, confirmDkg, identityPublicKey, signMessage, type ConfirmMessage, type DkgResult, type Round1Message, type Round2Message, type Signed } from './dkg.ts';
export { groupXOnlyKey, publicPackageHash, type PublicPackageJson, type SecretShareJson } from './key-package.ts';
export { FrostSigner, aggregateSignature, invalidShares, isCurvePoint, parseCommitmentList, type CommitmentJson, type NodeShare, type SignerOptions } from './signing.ts';
export { createNodeState, openNodeState, NodeState, type NodeKey, type CreateNodeStateOptions } from './node-state.ts';
