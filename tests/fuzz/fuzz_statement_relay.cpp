// Fuzz target: the statement relay state machine (pool/statement_relay_fsm), driven by random
// client and server message sequences: the input makes every choice random_run makes in the unit
// tests (tests/pool/statement_relay_world.hpp): which client and server, the batches of Parse,
// Bind, Describe, Execute, Close, Flush, Sync and simple Queries over a few names and statements,
// how requests and replies interleave, and where the server slips in a NoticeResponse.
//
// Checked after every attachment of a client to a server, besides no crash and no sanitizer
// report: the client got exactly the replies its own direct PostgreSQL (the model) sent, each
// notice once and in order; the client's statement names are exactly those PostgreSQL holds, for
// the same statements; every server's cache matches what the server really has; the fsm is idle
// once every reply is in and never waits for replies nothing will send; and state stays bounded
// (each cache within its capacity, each client's map within the names it used).
//
// The input also chooses the batch shapes: restricted (with a small cache one statement message
// per batch, and no name parsed or closed twice in a batch) or unrestricted, and whether the
// client waits for each batch's ReadyForQuery or pipelines batches behind their Syncs.
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "tests/fuzz/fuzz_check.hpp"
#include "tests/pool/statement_relay_world.hpp"

namespace sluice::fuzz {
namespace {

// Choices read from the input, one byte each; once it runs out every choice is the first one,
// which ends the run (see LLVMFuzzerTestOneInput).
class input_choices : public pool::testing::choice_source {
 public:
  explicit input_choices(std::span<const char> in) : in_(in) {}
  std::size_t pick(std::size_t n) override {
    if (n <= 1 || exhausted()) return 0;
    return next() % n;
  }
  bool chance(double p) override {
    if (exhausted()) return false;
    return next() < p * 256;
  }
  bool exhausted() const { return used_ >= in_.size(); }

 private:
  unsigned next() { return static_cast<unsigned char>(in_[used_++]); }
  std::span<const char> in_;
  std::size_t used_ = 0;
};

}  // namespace
}  // namespace sluice::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace sluice;
  fuzz::input_choices choices(fuzz::as_chars(data, size));
  static constexpr std::array<std::size_t, 4> capacities{1, 2, 3, 100};
  pool::testing::random_options options;
  options.capacity = capacities[choices.pick(capacities.size())];
  const bool restricted = choices.chance(0.5);
  options.max_statement_messages = restricted && options.capacity < 100 ? 1 : 100;
  options.distinct_parse_close_names = restricted;
  options.mode = choices.chance(0.5) ? pool::testing::client_mode::pipelines
                                     : pool::testing::client_mode::waits;
  options.async_notices = true;
  pool::testing::random_run run(choices, options);
  try {
    // A bounded number of attachments, each a few batches: the input decides the rest.
    for (int i = 0; i < 64 && !choices.exhausted(); ++i) {
      const auto problem = run.run(1);
      if (!problem.empty()) {
        std::fprintf(stderr, "attachment %d: %s\n", i, problem.c_str());
        std::abort();
      }
    }
  } catch (const pool::testing::model_error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    std::abort();
  }
  return 0;
}
