// frame_key.cpp — HKDF-SHA-256 of the --key-file secret.
#include "frame_key.h"

#include <cstring>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "sync_udp.h"

namespace hde::dp {

namespace {

using block = std::array<std::uint8_t, 32>;

block hmac(const std::uint8_t *key, std::size_t key_len, const std::uint8_t *msg, std::size_t len) {
  block out{};
  unsigned n = 0;
  HMAC(EVP_sha256(), key, static_cast<int>(key_len), msg, len, out.data(), &n);
  return out;
}

// HKDF-Expand for one block: T(1) = HMAC(PRK, info | 0x01).
block expand(const block &prk, const char *info) {
  std::uint8_t msg[64];
  const std::size_t n = std::strlen(info);
  std::memcpy(msg, info, n);
  msg[n] = 1;
  return hmac(prk.data(), prk.size(), msg, n + 1);
}

}  // namespace

frame_key derive_frame_key(const std::vector<std::uint8_t> &secret) {
  static constexpr char kSalt[] = "hde frame key salt v1";
  const block prk = hmac(reinterpret_cast<const std::uint8_t *>(kSalt), sizeof kSalt - 1, secret.data(), secret.size());
  frame_key k;
  k.aes = expand(prk, "hde aes-256-gcm frame key");
  k.id = expand(prk, "hde frame key id")[0];
  block p = prk;
  OPENSSL_cleanse(p.data(), p.size());
  return k;
}

bool load_frame_key(const std::string &path, frame_key &k, std::string &err) {
  std::vector<std::uint8_t> secret;
  if (!sync::read_key_file(path, secret, err, "key file"))
    return false;
  k = derive_frame_key(secret);
  OPENSSL_cleanse(secret.data(), secret.size());
  return true;
}

}  // namespace hde::dp
