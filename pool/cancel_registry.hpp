#pragma once
// Proxy-minted BackendKeyData -> the client holding it.
//
// Clients never see a server's real key: a client's server changes (transaction pooling), and
// a real key would let one client cancel whatever another client runs on that server later.
// Each client gets a key minted here at login; a CancelRequest carrying it is looked up to
// find the client, and the daemon forwards the cancel to whichever server that client holds.
// https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-CANCELING-REQUESTS
//
// No randomness source inside pool logic: the caller passes the secret (from a CSPRNG; it is
// what keeps a stranger from cancelling other clients' queries). The process id is minted
// here and is unique among live keys, so a key is found by its process id and the secret is
// then compared.
#include <cstdint>
#include <optional>
#include <unordered_map>

namespace sluice::pool {

// The two Int32 of BackendKeyData (protocol 3.0) as unsigned bits.
struct backend_key {
  std::uint32_t process_id = 0;
  std::uint32_t secret_key = 0;
  friend bool operator==(const backend_key&, const backend_key&) = default;
};

using client_token = std::uint64_t;

class cancel_registry {
 public:
  // `first_pid`: where minting starts (tests start near the top to see the wrap-around).
  explicit cancel_registry(std::uint32_t first_pid = 1);
  // A fresh key for `client`. Its process id is in 1..INT32_MAX (clients that treat it as a
  // signed pid see a positive one) and unused by any live key.
  backend_key mint(client_token client, std::uint32_t secret);
  // The client holding `key`; nullopt for an unknown pid or a wrong secret.
  std::optional<client_token> find(const backend_key& key) const;
  // Forget `key` (client gone). False when it was not registered (wrong secret included).
  bool erase(const backend_key& key);
  std::size_t size() const { return entries_.size(); }

 private:
  struct entry {
    std::uint32_t secret_key;
    client_token client;
  };
  std::unordered_map<std::uint32_t, entry> entries_;  // by process id
  std::uint32_t next_pid_ = 1;
};

}  // namespace sluice::pool
