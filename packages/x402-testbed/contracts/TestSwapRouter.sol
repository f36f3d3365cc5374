// SPDX-License-Identifier: MIT
pragma solidity ^0.8.26;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// Uniswap SwapRouter02's `exactInputSingle` (same struct, same selector 0x04e45aaf) at a fixed 1:1 price,
/// for tests: pulls `amountIn` of `tokenIn` from the caller (who approved the router), pays the same amount
/// of `tokenOut` from the router's own balance to `recipient`.
contract TestSwapRouter {
    struct ExactInputSingleParams {
        address tokenIn;
        address tokenOut;
        uint24 fee;
        address recipient;
        uint256 amountIn;
        uint256 amountOutMinimum;
        uint160 sqrtPriceLimitX96;
    }

    function exactInputSingle(ExactInputSingleParams calldata params) external payable returns (uint256 amountOut) {
        require(IERC20(params.tokenIn).transferFrom(msg.sender, address(this), params.amountIn), "pull failed");
        amountOut = params.amountIn;
        require(amountOut >= params.amountOutMinimum, "Too little received");
        require(IERC20(params.tokenOut).transfer(params.recipient, amountOut), "pay failed");
    }
}
