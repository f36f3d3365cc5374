/**
 * Every stable reason code Airlock can return, in one place.
 * Codes are part of the public contract: never rename one, only add.
 * `status` is the HTTP status an error with this code maps to.
 */
export const ERROR_CODES = {
  // input
  invalid_json: { status: 400, summary: 'The request body is not valid JSON.' },
  invalid_request: { status: 400, summary: 'The request does not match the schema; see the path in the message.' },
  invalid_address: { status: 400, summary: 'An address is not a 20-byte hex address.' },
  invalid_hex: { status: 400, summary: 'A field that must be hex is not.' },
  invalid_amount: { status: 400, summary: 'An amount is negative, fractional or larger than 2^256-1.' },
  unsupported_chain: { status: 400, summary: 'The chain is not a supported CAIP-2 chain id.' },
  unsupported_action: { status: 400, summary: 'The action is not one Airlock can sign.' },
  undecodable_payload: { status: 400, summary: 'The payload could not be decoded into an intent.' },
  chain_mismatch: { status: 400, summary: 'The payload names a different chain than the request.' },
  body_too_large: { status: 413, summary: 'The request body exceeds the size limit.' },
  forbidden_json_key: { status: 400, summary: 'A JSON key is `__proto__`, `constructor` or `prototype`; refused at any depth.' },
  payload_too_deep: { status: 400, summary: 'The JSON (or an EIP-712 struct type) nests deeper than 64 levels, or a struct type contains itself.' },
  not_found: { status: 404, summary: 'No such resource.' },
  // auth
  unauthenticated: { status: 401, summary: 'No valid credential was presented.' },
  session_expired: { status: 401, summary: 'The session credential has expired.' },
  session_revoked: { status: 401, summary: 'The session credential was revoked.' },
  forbidden: { status: 403, summary: 'The credential may not use this endpoint.' },
  session_not_narrower: { status: 403, summary: 'A child session would be wider than the session it derives from (details.axis: actions, chains, budgets or expiry); nothing was created.' },
  session_depth_exceeded: { status: 403, summary: 'Sessions derive children at most 4 levels below an operator-issued session; nothing was created.' },
  session_children_exceeded: { status: 403, summary: 'The session already has as many live child sessions as it may (100); revoke some first. Nothing was created.' },
  agent_frozen: { status: 403, summary: 'The agent is frozen; nothing is signed until it is unfrozen.' },
  agent_retired: { status: 403, summary: 'The agent is retired.' },
  key_rotated: { status: 403, summary: "The request names as its signer an earlier key of this agent, rotated since (rule agent_keys/rotated); nothing was signed or charged. Build it for the agent's current address (GET /v1/session)." },
  origin_not_allowed: { status: 403, summary: 'The request carries a browser Origin that is not in AIRLOCK_ALLOWED_ORIGINS.' },
  csrf_refused: { status: 403, summary: 'A console request without the same-origin proof: the X-Airlock-Console header and the console\'s own Origin (or Sec-Fetch-Site: same-origin), and no Authorization header.' },
  host_not_allowed: { status: 421, summary: 'The Host is not a name this daemon answers to (AIRLOCK_ALLOWED_HOSTS).' },
  // policy
  policy_denied: { status: 403, summary: 'Policy denied the request; see violations.' },
  invalid_policy: { status: 400, summary: 'The policy document is not valid; see the path in the message.' },
  // ledger / idempotency
  idempotency_conflict: { status: 409, summary: 'The Idempotency-Key was used before with a different payload.' },
  nonce_reused: { status: 409, summary: 'The authorization nonce was already signed over different content; only a byte-identical replay is released.' },
  approval_not_pending: { status: 409, summary: 'The approval was already decided, consumed or expired.' },
  conflict: { status: 409, summary: 'The resource already exists or changed concurrently.' },
  breaker_not_tripped: { status: 409, summary: 'The circuit breaker was already reset (only a tripped breaker can be reset).' },
  // approvals by quorum (signed approver votes)
  quorum_required: { status: 409, summary: 'The approval needs a quorum of signed approver votes (POST /v1/approvals/{id}/votes); the admin token cannot approve it.' },
  approver_unknown: { status: 401, summary: 'No approver by that name; nothing was recorded.' },
  approver_disabled: { status: 403, summary: 'The approver is disabled; the vote was audited and not counted.' },
  vote_signature_invalid: { status: 401, summary: "The vote's signature does not verify under the approver's public key; nothing was recorded." },
  vote_digest_mismatch: { status: 409, summary: 'The vote is for another digest than the one the approval will sign; the vote was audited and not counted.' },
  vote_stale: { status: 400, summary: "The vote's `at` is more than 5 minutes from the server's time; sign a fresh vote." },
  vote_replayed: { status: 409, summary: 'This exact signed vote was already counted; a replay counts nothing.' },
  approver_already_voted: { status: 409, summary: 'The approver already voted on this approval; a vote is final and counts once.' },
  approver_not_eligible: { status: 403, summary: "The approver is in none of the groups the approval's quorum names (or the approval has no quorum)." },
  self_approval: { status: 403, summary: 'The approver is linked to the agent that made the request and cannot vote on it.' },
  rate_limited: { status: 429, summary: 'Too many requests.' },
  session_rate_limited: { status: 429, summary: 'This session sent more requests than its rate allows; see Retry-After.' },
  // availability
  sealed: { status: 503, summary: 'The vault is sealed.' },
  store_unavailable: { status: 503, summary: 'The store is unavailable; nothing was signed.' },
  shutting_down: { status: 503, summary: 'The daemon is shutting down and accepts no new request; nothing was done.' },
  audit_integrity_failed: { status: 503, summary: 'The audit log does not extend its last signed checkpoint; nothing is signed until an operator acts.' },
  hsm_unavailable: { status: 503, summary: 'The PKCS#11 module, token or a mechanism it needs is not available, or the token refused an operation; nothing was signed.' },
  hsm_login_failed: { status: 503, summary: 'The PIN in AIRLOCK_PKCS11_PIN_FILE does not log in to the PKCS#11 token (or the file cannot be read, or the PIN is locked).' },
  hsm_key_missing: { status: 503, summary: 'The PKCS#11 token holds no key (or more than one) for an agent key path; restore the token from its own backup. Nothing was signed.' },
  hsm_unsupported: { status: 400, summary: 'The operation needs a key kind the PKCS#11 token does not provide for this key (EVM agent keys live in the token: ECDSA only).' },
  // threshold cluster (FROST signer nodes and their coordinator)
  frost_dkg_failed: { status: 400, summary: 'A key-generation message fails its signature, proof of knowledge or share check, names a node outside the cluster, or the nodes\' confirmations disagree (details.node names the sender when known); no key was kept.' },
  frost_key_not_ready: { status: 409, summary: 'The signer node has no confirmed key share yet (run the key-generation ceremony), or already has one and refuses a second ceremony.' },
  frost_commitment_unknown: { status: 409, summary: 'Round two names a nonce commitment this node did not issue, already used, or lost (nonces live in memory only and are used once: run round one again). Nothing was signed.' },
  frost_share_invalid: { status: 502, summary: 'A signer node returned a signature share that does not verify against its verifying share (RFC 9591 section 5.4); details.nodes names it. Nothing was released.' },
  frost_threshold_not_met: { status: 503, summary: 'Fewer signer nodes than the threshold answered (details.nodes gives each node\'s answer); nothing was released.' },
  // operations (the CLI and the daemon's start-up, never an HTTP answer)
  address_in_use: { status: 500, summary: 'The listen address is already in use.' },
  config_invalid: { status: 400, summary: 'The configuration file cannot be read or holds an unknown or invalid setting.' },
  // vault
  vault_wrong_passphrase: { status: 400, summary: 'The passphrase does not open this vault.' },
  vault_corrupt: { status: 400, summary: 'The vault file is truncated, tampered with or not a vault.' },
  vault_exists: { status: 409, summary: 'A vault already exists at this path.' },
  vault_missing: { status: 400, summary: 'No vault file at this path; run `airlock init`.' },
  vault_mismatch: { status: 400, summary: 'The vault does not belong to this store.' },
  restore_key_mismatch: { status: 400, summary: 'The recovery phrase does not derive the address the store records for an agent (details name the first one); nothing was written.' },
  // SLIP-39 shares (Shamir backup, k-of-n unseal): a refused share is named by code and never counted
  slip39_invalid_word: { status: 400, summary: 'A share contains a word that is not in the SLIP-39 wordlist (hints give its position, never the word).' },
  slip39_invalid_checksum: { status: 400, summary: 'A share fails its RS1024 checksum: a word is mistyped or out of order.' },
  slip39_invalid_share: { status: 400, summary: 'A share has a length, padding or parameters SLIP-39 does not allow.' },
  slip39_share_mismatch: { status: 400, summary: 'A share belongs to another share set (identifier or set parameters differ from the shares entered so far).' },
  slip39_duplicate_share: { status: 400, summary: 'This member of this group was already entered.' },
  slip39_group_complete: { status: 400, summary: 'The share\'s group already has the shares it needs; enter one of another group.' },
  slip39_threshold_not_met: { status: 400, summary: 'Fewer shares than the thresholds require: nothing can be recovered yet.' },
  slip39_invalid_digest: { status: 400, summary: 'The shares pass their checksums but do not combine to a consistent secret: one is corrupt or forged.' },
  slip39_layout_too_weak: { status: 400, summary: 'The share layout would let fewer shares than the documented minimum recover the vault.' },
  // lightning invoices (BOLT 11)
  invoice_malformed: { status: 400, summary: 'The Lightning invoice is not a well-formed BOLT 11 invoice (bech32, amount or a field).' },
  invoice_bad_signature: { status: 400, summary: 'The Lightning invoice signature does not verify (or does not match its payee node id).' },
  invoice_wrong_network: { status: 400, summary: 'The Lightning invoice is for another network than the one expected.' },
  invoice_expired: { status: 400, summary: 'The Lightning invoice has expired.' },
  invoice_amount_mismatch: { status: 400, summary: 'An amount was given for an invoice that names its own, or none for an amountless invoice.' },
  // lightning payments
  lightning_not_configured: { status: 503, summary: 'No Lightning backend is configured; nothing was paid.' },
  lightning_payment_failed: { status: 502, summary: 'The Lightning backend reported a definite failure; the hold was released and nothing was paid.' },
  lightning_payment_in_flight: { status: 409, summary: 'A payment of this invoice is already in flight or paid (by this agent: see its payment; by another agent: refused).' },
  l402_token_expired: { status: 400, summary: "The L402 challenge's macaroon has already expired (a *_valid_until caveat); nothing was paid." },
  l402_payment_hash_mismatch: { status: 400, summary: "The L402 challenge's macaroon names another payment hash than its invoice; nothing was paid." },
  lightning_backend_unavailable: { status: 503, summary: 'The Lightning backend could not be reached or gave no usable answer; a hold stays until it answers.' },
  // L402 (formerly LSAT) paid APIs
  l402_challenge_malformed: { status: 400, summary: 'The WWW-Authenticate value holds no usable L402/LSAT challenge (syntax, a missing or repeated parameter, an unknown version, or several different offers).' },
  l402_macaroon_malformed: { status: 400, summary: 'The L402 macaroon is not a well-formed V2 binary macaroon with a version 0 L402 identifier (encoding, layout, size or a third-party caveat).' },
  // bitcoin (PSBT, BIP-322)
  psbt_malformed: { status: 400, summary: 'The PSBT does not parse (base64, BIP-174/370 layout, a field, or an unsigned transaction with scripts or witnesses).' },
  psbt_missing_utxo: { status: 400, summary: 'An input lacks its previous output (witness UTXO), or an input the agent signs with segwit v0 lacks the full previous transaction.' },
  psbt_utxo_mismatch: { status: 400, summary: "An input's previous transaction does not hash to the outpoint it spends, or disagrees with its witness UTXO (amount or script)." },
  psbt_input_mismatch: { status: 400, summary: "An input names one of the agent's keys whose derived script is not the script it spends." },
  psbt_network_mismatch: { status: 400, summary: "The PSBT names keys or addresses of another network than the request's." },
  psbt_nothing_to_sign: { status: 400, summary: "No input of the PSBT is the agent's (by its derivation fields and keys): nothing would be signed." },
  psbt_unsupported_input: { status: 400, summary: 'An input of the agent is of a kind Airlock does not sign (only P2WPKH and P2TR key path).' },
  psbt_sighash_single_without_output: { status: 400, summary: 'An input asks for SIGHASH_SINGLE but the transaction has no output at its index: the signature would commit to no output.' },
  psbt_too_large: { status: 400, summary: 'The PSBT has more inputs (50), outputs (100), entries in one map (64) or derivation entries in one map (16) than Airlock decodes.' },
  psbt_value_out_of_range: { status: 400, summary: 'Amounts do not add up: outputs exceed inputs, or a value is beyond 21 million bitcoin.' },
  // webhooks (operator-configured receivers of alerts, approvals and breaker trips)
  webhook_url_invalid: { status: 400, summary: 'The webhook URL is not an absolute http(s) URL (or is longer than 2048 characters, or has a fragment).' },
  webhook_url_credentials: { status: 400, summary: 'The webhook URL carries a user name or password; receivers authenticate deliveries by their signature instead.' },
  webhook_event_unknown: { status: 400, summary: 'An event pattern names no known event family (alert, approval, breaker, agent, audit, webhook) or is not `family.*` / `family.name`.' },
  // the lifecycle path (operator-only sweeps and revocations with an agent's key at any key index)
  lifecycle_kind_refused: { status: 403, summary: 'The transaction is not a lifecycle kind (a native or ERC-20 transfer to the fleet treasury or the agent\'s current address, or a revocation that grants nothing and moves no value); nothing was signed.' },
  lifecycle_cap_exceeded: { status: 403, summary: 'The lifecycle path would move more of the asset in the window than the fleet policy\'s lifecycle cap allows; nothing was signed.' },
  lifecycle_no_treasury: { status: 409, summary: 'The agent holds a balance on a chain for which the fleet policy names no treasury (lifecycle.treasury); nothing was swept or retired (retire with --no-sweep to leave the funds).' },
  lifecycle_no_rpc: { status: 409, summary: 'No RPC is configured (AIRLOCK_EVM_RPC) for a chain the lifecycle path must read or submit to; nothing was swept or retired.' },
  lifecycle_rpc_unavailable: { status: 502, summary: 'The chain\'s RPC did not answer (balance, nonce, fee or gas read); nothing was signed.' },
  lifecycle_insufficient_gas: { status: 409, summary: 'The key has too little of the native coin to pay for its lifecycle transactions (the amount and address are in the message); nothing was signed.' },
  lifecycle_sweep_open: { status: 409, summary: 'A sweep of this agent, key index and asset is already signed and not yet mined or failed; it is tracked to the end, and no second one is built.' },
  lifecycle_key_index_invalid: { status: 400, summary: 'The key index is not one the agent has had (0 to its current key index).' },
  // signing
  signature_check_failed: { status: 500, summary: 'A produced signature did not verify; nothing was returned.' },
  internal: { status: 500, summary: 'Internal error.' },
} as const satisfies Record<string, { status: number; summary: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** Reason codes carried by policy violations (inside a `policy_denied` error or a dry-run). */
export const VIOLATION_CODES = {
  no_matching_allow_rule: 'No allow rule in this layer matches the request (default deny).',
  denied_by_rule: 'An explicit deny rule matches the request.',
  chain_not_allowed: 'The chain is not in the allowed list.',
  action_not_allowed: 'The action is not in the session scope.',
  amount_exceeds_max: 'The amount exceeds the per-request maximum for this asset.',
  budget_exceeded: 'The rolling-window budget would be exceeded.',
  rate_limit_exceeded: 'The rolling-window request count would be exceeded.',
  destination_not_allowed: 'The destination is not in the allowlist.',
  destination_denied: 'The destination is in a denylist.',
  contract_call_not_allowed: 'The contract, selector or arguments are not allowed.',
  argument_constraint_failed: 'A decoded call argument violates a constraint.',
  approval_exceeds_cap: 'The approval amount exceeds the allowance cap.',
  unlimited_approval: 'An unlimited (max uint) approval is not allowed.',
  spender_not_allowed: 'The spender is not in the allowlist.',
  unknown_typed_data: 'The typed data is not a known type and no rule names its domain and primary type.',
  typed_data_domain_not_allowed: 'The EIP-712 domain is not allowed.',
  message_not_allowed: 'Personal messages are denied unless a rule names them.',
  fee_exceeds_cap: 'A fee field exceeds its cap.',
  validity_too_long: 'The authorization is valid for longer than allowed.',
  validity_expired: 'The authorization is already expired.',
  approval_required: 'The amount is above the threshold that requires human approval.',
  contract_deploy_not_allowed: 'Contract creation is not allowed.',
  resource_not_allowed: 'The paid resource is not among the allowed URL patterns (or the request names no resource).',
  nonce_reused: 'The authorization nonce is already claimed by a different signature (dry-run view of the `nonce_reused` error).',
  loop_guard_tripped: 'Too many payments to the same resource in the window: a runaway loop is assumed.',
  chainless_domain: 'Typed data that moves tokens has an EIP-712 domain without chainId (valid on every chain) and no allow rule opts in to chainless domains.',
  x402_unsupported_scheme: 'The x402 requirement uses a scheme Airlock does not sign (only `exact`).',
  x402_unsupported_network: 'The x402 requirement names a network that is not an EVM chain Airlock knows.',
  x402_invalid_spender: 'The Permit2 spender is not the canonical x402 Permit2 proxy.',
  x402_missing_domain: 'The x402 requirement lacks extra.name / extra.version (the token EIP-712 domain).',
  x402_invalid_requirement: 'The x402 requirement is malformed (amount, asset or payTo).',
  nostr_kind_not_allowed: 'No allow rule grants this Nostr event kind (Nostr events are granted only by a rule naming a nostr action or nostr_kinds).',
  nostr_peer_not_allowed: 'The NIP-44 peer is not among the allowed pubkeys (or no allow rule grants nostr.nip44).',
  nostr_content_too_large: 'The Nostr event content is larger than the rule allows.',
  nostr_content_not_allowed: 'The Nostr event content does not match the required pattern, or matches a forbidden one.',
  nostr_created_at_out_of_window: 'The event created_at is further in the past or future than the rule allows.',
  nostr_tag_not_allowed: 'A tag of the Nostr event is not allowed (a p tag naming an unlisted pubkey, too many tags).',
  nostr_http_url_not_allowed: 'The NIP-98 u tag names a URL outside the allowed patterns.',
  nostr_http_method_not_allowed: 'The NIP-98 method tag names a method that is not allowed.',
  amountless_invoice_not_allowed: 'The invoice names no amount; amountless invoices are paid only where an allow rule names kinds: [lightning.amountless_payment].',
  routing_fee_exceeds_cap: 'The routing fee limit is above the cap (absolute, or as a share of the amount).',
  invoice_expiry_out_of_bounds: 'The invoice expires too soon to be paid safely, or is valid for longer than allowed.',
  sighash_not_allowed: 'A PSBT input asks for a sighash type other than ALL/DEFAULT (SINGLE, NONE and ANYONECANPAY can give value away) and no allow rule names it in bitcoin_sighash.',
  fee_rate_exceeds_cap: 'The transaction fee rate (sat/vB) is above the cap.',
  too_many_inputs: 'The transaction spends more inputs than the rule allows.',
  breaker_tripped: 'A detector (policy `detectors`) found this request far outside the agent\'s or the fleet\'s baseline and tripped its circuit breaker: the request is refused (freeze) or held for approval (require_approval), and so are the next ones until an operator resets the breaker.',
  breaker_open: 'A circuit breaker that binds this agent is tripped: its requests are held for approval (or refused, for a freeze) until an operator resets it (POST /v1/breakers/{id}/reset).',
  anomaly_detected: 'A detector configured to alert only found this request outside the baseline; the decision is unchanged and an `alert.<type>` audit entry is appended.',
  abi_decode_failed: 'The calldata does not decode against the ABI a policy registers for its contract and selector (fail closed).',
} as const;

export type ViolationCode = keyof typeof VIOLATION_CODES;

/**
 * Warnings about a policy that is valid but unsafe to run as written (`airlock policy validate`, the
 * `warnings` of PUT /v1/policies/:scope). They never block a change.
 */
export const POLICY_WARNING_CODES = {
  allow_without_assets: 'An allow rule lets value move without an `assets` list: any token (or the native coin) it reaches can move.',
  value_without_cap: 'An allowed asset has no per-request cap (`max_amount`) in this document.',
  value_without_budget: 'An allowed asset has no rolling-window budget (`budget`) in this document.',
  validity_unbounded: 'An allow rule grants signed authorizations (EIP-3009, permits) and no `validity_window` bounds how long they stay valid.',
} as const;

export type PolicyWarningCode = keyof typeof POLICY_WARNING_CODES;
