// SPDX-License-Identifier: MIT
pragma solidity ^0.8.26;

/// The one Multicall3 function the x402 facilitator uses (`tryAggregate`), installed at Multicall3's
/// canonical address on the local chain so the facilitator can name why a payment failed (nonce used,
/// balance too low) instead of a generic simulation failure.
contract Multicall3Lite {
    struct Call {
        address target;
        bytes callData;
    }

    struct Result {
        bool success;
        bytes returnData;
    }

    function tryAggregate(bool requireSuccess, Call[] calldata calls) external payable returns (Result[] memory returnData) {
        returnData = new Result[](calls.length);
        for (uint256 i = 0; i < calls.length; i++) {
            (bool success, bytes memory ret) = calls[i].target.call(calls[i].callData);
            require(!requireSuccess || success, "Multicall3: call failed");
            returnData[i] = Result(success, ret);
        }
    }
}
