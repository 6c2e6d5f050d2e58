#include "pool/release_policy.hpp"

#include <catch2/catch.hpp>

using sluice::pool::at_clean_boundary;
using sluice::pool::decide_release;
using sluice::pool::link_state;
using sluice::pool::pool_mode;
using sluice::pool::release_decision;
using sluice::pool::reusable_after_client_exit;

namespace {

link_state link(char tx, std::uint32_t syncs = 0, bool batch = false, bool copy = false,
                bool partial = false) {
  link_state l;
  l.tx_status = tx;
  l.outstanding_syncs = syncs;
  l.extended_batch_open = batch;
  l.copy_in_progress = copy;
  l.message_partially_sent = partial;
  return l;
}

constexpr auto keep = release_decision::keep;
constexpr auto release = release_decision::release;

}  // namespace

TEST_CASE("decide_release: session mode always keeps", "[pool][release_policy]") {
  const char tx = GENERATE('I', 'T', 'E', '?');
  const std::uint32_t syncs = GENERATE(0u, 1u);
  const bool batch = GENERATE(false, true);
  const bool copy = GENERATE(false, true);
  const bool partial = GENERATE(false, true);
  CHECK(decide_release(pool_mode::session, link(tx, syncs, batch, copy, partial)) == keep);
}

TEST_CASE("decide_release: transaction mode table", "[pool][release_policy]") {
  struct row {
    const char* why;
    link_state link;
    release_decision expected;
  };
  const auto r = GENERATE(values<row>({
      {"idle, nothing in flight", link('I'), release},
      {"in a transaction block", link('T'), keep},
      {"in a failed transaction block: the ROLLBACK is the client's", link('E'), keep},
      {"unknown status byte: the safe side", link('X'), keep},
      {"NUL status byte", link('\0'), keep},
      {"idle but one reply owed", link('I', 1), keep},
      {"idle but pipelined requests owed", link('I', 3), keep},
      {"idle but Parse/Bind sent without Sync", link('I', 0, true), keep},
      {"idle, Flush pin: Parse/Describe/Flush answered, Bind to come", link('I', 0, true), keep},
      {"idle but COPY under way", link('I', 0, false, true), keep},
      {"idle but half a message forwarded", link('I', 0, false, false, true), keep},
      {"in a transaction and replies owed", link('T', 2), keep},
      {"failed transaction with open batch", link('E', 0, true), keep},
      {"everything at once", link('T', 5, true, true, true), keep},
  }));
  CAPTURE(r.why);
  CHECK(decide_release(pool_mode::transaction, r.link) == r.expected);
  CHECK(at_clean_boundary(r.link) == (r.expected == release));
}

TEST_CASE("decide_release: transaction mode releases only in the one clean state",
          "[pool][release_policy]") {
  const char tx = GENERATE('I', 'T', 'E');
  const std::uint32_t syncs = GENERATE(0u, 1u, 7u);
  const bool batch = GENERATE(false, true);
  const bool copy = GENERATE(false, true);
  const bool partial = GENERATE(false, true);
  const bool clean = tx == 'I' && syncs == 0 && !batch && !copy && !partial;
  CHECK(decide_release(pool_mode::transaction, link(tx, syncs, batch, copy, partial)) ==
        (clean ? release : keep));
}

TEST_CASE("a server is reusable after its client leaves only at a clean boundary",
          "[pool][release_policy]") {
  CHECK(reusable_after_client_exit(link('I')));
  CHECK_FALSE(reusable_after_client_exit(link('T')));
  CHECK_FALSE(reusable_after_client_exit(link('E')));
  CHECK_FALSE(reusable_after_client_exit(link('I', 1)));
  CHECK_FALSE(reusable_after_client_exit(link('I', 0, false, true)));
  CHECK_FALSE(reusable_after_client_exit(link('I', 0, false, false, true)));
}
