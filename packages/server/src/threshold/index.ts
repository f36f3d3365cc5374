export { ClusterThresholdSigner } from './cluster-threshold-signer.ts';
export { prepareClusterBinding, nodeOrigin, type ClusterBindingRequest } from './cluster-binding.ts';
export { sealNodeTokens, openNodeTokens } from './node-tokens.ts';
