#include "pool/release_policy.hpp"

namespace sluice::pool {

bool at_clean_boundary(const link_state& link) {
  return link.tx_status == 'I' && link.outstanding_syncs == 0 && !link.extended_batch_open &&
         !link.copy_in_progress && !link.message_partially_sent;
}

release_decision decide_release(pool_mode mode, const link_state& link) {
  switch (mode) {
    case pool_mode::session:
      return release_decision::keep;
    case pool_mode::transaction:
      return at_clean_boundary(link) ? release_decision::release : release_decision::keep;
  }
  return release_decision::keep;
}

bool reusable_after_client_exit(const link_state& link) {
  return at_clean_boundary(link);
}

}  // namespace sluice::pool
