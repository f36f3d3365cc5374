// SPDX-License-Identifier: MIT
pragma solidity ^0.8.4;

// Solady's ERC4337 account (npm `solady`, src/accounts/ERC4337.sol) is abstract only in its EIP-712 name and
// version: this is the whole concrete account viem's toSoladySmartAccount drives. Its factory is Solady's own
// ERC4337Factory, compiled from the same package. The account's EntryPoint is Solady's default, the canonical v0.7.
import {ERC4337} from "solady/accounts/ERC4337.sol";
import {ERC4337Factory} from "solady/accounts/ERC4337Factory.sol";

contract SoladyAccount is ERC4337 {
    function _domainNameAndVersion() internal pure override returns (string memory, string memory) {
        return ("SoladyAccount", "1");
    }
}
