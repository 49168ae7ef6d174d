// frame_key.h — the key that seals frames (AES-256-GCM), from the secret in
// --key-file: the same file format as the fleet sync's key (16 to 4096
// bytes, mode 0600 or stricter). Plain C++ (OpenSSL), no DPDK.
//
// The AES key and the 8-bit key id are derived with HKDF-SHA-256 (RFC 5869)
// from the secret, so both gateways agree on the id of a key without any
// exchange, and the raw secret never meets the cipher.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace hde::dp {

struct frame_key {
  std::array<std::uint8_t, 32> aes{};  // AES-256 key
  std::uint8_t id = 0;                 // carried in every sealed frame
};

// Derive the frame key from a secret.
frame_key derive_frame_key(const std::vector<std::uint8_t> &secret);

// Read `path` (refused when group- or world-accessible, with a message that
// says so) and derive its key. On failure, err says why.
bool load_frame_key(const std::string &path, frame_key &k, std::string &err);

}  // namespace hde::dp
