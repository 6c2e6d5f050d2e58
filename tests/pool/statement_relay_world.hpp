#pragma once
// The daemon's statement handling in miniature, for the unit tests
// (tests/pool/test_statement_relay_fsm.cpp) and the fuzz target
// (tests/fuzz/fuzz_statement_relay.cpp): clients whose messages go through the real lease_fsm and
// statement_relay_fsm to small models of PostgreSQL (model_backend), and random_run, which drives
// two clients and two servers with random batches and checks every reply against what a direct
// PostgreSQL sends. Its choices come from a choice_source: a seeded generator, or the fuzzer's
// input. A broken expectation throws model_error (see wire_fixtures.hpp).
#include <array>
#include <deque>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "pool/lease_fsm.hpp"
#include "pool/local_parse_answer.hpp"
#include "pool/statement_registry.hpp"
#include "pool/statement_relay_fsm.hpp"
#include "tests/pool/model_backend.hpp"
#include "tests/pool/wire_fixtures.hpp"

namespace sluice::pool::testing {

// --- The relay, as the daemon drives the fsm: through a lease ------------------------------------

// One client on one server, through the real lease_fsm in transaction mode. When a lease ends
// (released at a ReadyForQuery) while the client still has bytes to send, a new lease on the
// same server takes them, as the session does.
class link {
 public:
  link(client_statement_map& client, server_statement_cache& server, statement_registry& registry,
       statement_counters& counters)
      : client_(client), cache_(server), registry_(registry), counters_(counters) {
    start();
  }

  // Client bytes (whole messages) → the bytes the server gets. Like the relay, stops before a
  // message the fsm says must wait for owed replies; those bytes stay held until resume().
  std::string from_client(const std::string& bytes) {
    held_ += bytes;
    return resume();
  }
  std::string resume() {
    if (lease_->ended() && !held_.empty()) start();
    protocol::output_segments out;
    const auto scanned = lease_->on_client_bytes(span_of(held_), out, {});
    model_require(!(scanned.violation), "not scanned.violation");
    auto sent = flatten(out);  // before the held bytes it points into go
    held_.erase(0, scanned.consumed);
    return sent;
  }
  // Client bytes waiting for replies.
  bool blocked() const { return !held_.empty() || lease_->has_server_output(); }

  // Server bytes (whole messages) → the bytes the client gets. What arrives after the
  // ReadyForQuery that ended a lease is the next lease's, on the same server.
  std::string from_server(const std::string& bytes) {
    protocol::output_segments out;
    std::size_t used = 0;
    for (;;) {
      const auto scanned = lease_->on_server_bytes(span_of(bytes).subspan(used), out, {});
      model_require(!scanned.violation, "no framing violation from the model");
      used += scanned.consumed;
      if (used == bytes.size()) break;
      model_require(lease_->ended(), "the lease takes every reply until it ends");
      start();
    }
    return flatten(out);
  }

  // No reply is owed and no failed batch is being skipped.
  bool idle() const { return lease_->statements()->idle(); }

 private:
  void start() {
    lease_ = std::make_unique<lease_fsm>(
        lease_fsm::settings{.mode = pool_mode::transaction, .max_message_size = max_message},
        server_session_view{server_params_, server_tx_status_}, client_params_,
        statement_relay_fsm(
            client_, cache_,
            [this](std::string_view q, std::span<const std::uint32_t> t) {
              return registry_.intern(q, t);
            },
            counters_,
            [this](std::string_view definition) { return registry_.intern_sql(definition); }),
        time_point{});
  }
  static std::string flatten(const protocol::output_segments& out) {
    std::string s;
    out.for_each([&](const char* data, std::size_t size) { s.append(data, size); });
    model_require(bool(s.size() == out.total_size()), "s.size() == out.total_size()");
    return s;
  }

  client_statement_map& client_;
  server_statement_cache& cache_;
  statement_registry& registry_;
  statement_counters& counters_;
  session_params server_params_;
  char server_tx_status_ = 'I';
  shared_session_params client_params_;
  std::unique_ptr<lease_fsm> lease_;
  std::string held_;
};

struct server {
  explicit server(std::size_t capacity) : cache(capacity) {}
  server_statement_cache cache;
  model_backend pg;
};

struct exchange_result {
  std::string to_server;
  std::string to_client;
};

// Two clients, two servers, one registry: the daemon in miniature.
struct world {
  explicit world(std::size_t capacity = 8) {
    servers.emplace_back(capacity);
    servers.emplace_back(capacity);
  }
  statement_registry registry;
  statement_counters counters;
  std::deque<server> servers;
  std::array<client_statement_map, 2> clients;

  link attach(int client, int server_index) {
    return link(clients[client], servers[server_index].cache, registry, counters);
  }
  // Where the server caches and the servers disagree: a statement one lists and the other lacks.
  std::string cache_mismatch() {
    std::string out;
    for (std::size_t i = 0; i < servers.size(); ++i) {
      auto& srv = servers[i];
      for (const auto& name : srv.pg.named()) {
        const auto id = std::stoull(name.substr(name.find('_') + 1));
        if (!srv.cache.contains(id))
          out += " server " + std::to_string(i) + " has " + name + ", its cache does not;";
      }
      std::size_t found = 0;
      for (std::uint64_t id = 1; id < 1000000 && found < srv.cache.size(); ++id) {
        if (!srv.cache.contains(id)) continue;
        ++found;
        if (!srv.pg.statements.contains("sluice_" + std::to_string(id)))
          out += " server " + std::to_string(i) + "'s cache lists sluice_" + std::to_string(id) +
                 ", the server lacks it;";
      }
    }
    return out;
  }
  // Client bytes in, the server answers all of it, replies out.
  // Held client bytes are sent as soon as the replies they wait for are in.
  exchange_result exchange(link& l, int server_index, const std::string& client_bytes) {
    exchange_result r;
    auto sent = l.from_client(client_bytes);
    for (;;) {
      r.to_server += sent;
      r.to_client += l.from_server(servers[server_index].pg.receive(sent));
      if (!l.blocked()) break;
      sent = l.resume();
      if (sent.empty()) model_fail("the relay waits for replies nothing will send");
    }
    return r;
  }
  // One round trip on a fresh link, which must be idle afterwards.
  exchange_result round_trip(int client, int server_index, const std::string& client_bytes) {
    auto l = attach(client, server_index);
    auto r = exchange(l, server_index, client_bytes);
    model_require(l.idle(), "the link idle after a round trip");
    return r;
  }
  // The registry's statement for this content (alive while something holds it).
  statement_ptr statement(std::string_view sql, std::vector<std::uint32_t> t = {}) {
    return registry.intern(sql, t);
  }
  // Prepares `name` for `client` on `server_index`, checking it worked.
  void prepare(int client, int server_index, std::string_view name, std::string_view sql,
               std::vector<std::uint32_t> t = {}) {
    const auto r = round_trip(client, server_index, fe::parse(name, sql, t) + fe::sync());
    model_require(bool(types(r.to_client) == "1Z"), "types(r.to_client) == '1Z'");
    model_require(bool(clients[client].contains(std::string(name))),
                  "clients[client].contains(std::string(name))");
  }
};

// What a client sees from a direct PostgreSQL for the same messages.
inline std::string direct(const std::string& client_bytes, model_backend& pg) {
  return describe_replies(pg.receive(client_bytes));
}

inline message only(std::string_view bytes, char type) {
  const auto messages = split(bytes);
  const auto it =
      std::find_if(messages.begin(), messages.end(), [&](const auto& m) { return m.type == type; });
  model_require(bool(it != messages.end()), "it != messages.end()");
  return *it;
}

// --- Random pipelines against a direct PostgreSQL -----------------------------------------------

// Random batches of Parse/Bind/Describe/Execute/Close/Flush/Sync (and now and then a simple
// Query) from two clients over a few names and statements, on two servers with small caches,
// with requests and replies interleaved at random. Each client also talks to its own model of a
// direct PostgreSQL; through sluice it must see exactly the same replies, and its statement
// names must be exactly the ones PostgreSQL would hold.
//
// The client either reads each batch's ReadyForQuery before sending the next (`waits`, what
// drivers do outside pipeline mode) or sends batches before earlier ones are answered
// (`pipelines`). Within a batch, requests and replies always interleave at random.
enum class client_mode { waits, pipelines };

struct random_options {
  client_mode mode = client_mode::waits;
  std::size_t capacity = 100;  // of each server's statement cache
  // Messages naming a statement (Parse, Bind, Describe, Close) per batch.
  std::size_t max_statement_messages = 100;
  // No name is both parsed and closed, or parsed twice, in one batch.
  bool distinct_parse_close_names = false;
  // The server also sends NoticeResponses at random places, as PostgreSQL may at any time: the
  // client must get each one, once, with the other replies unchanged around it.
  bool async_notices = false;
};

// Where random_run's choices come from: a seeded generator in the unit tests, the fuzzer's input
// in tests/fuzz/fuzz_statement_relay.cpp.
class choice_source {
 public:
  virtual ~choice_source() = default;
  virtual std::size_t pick(std::size_t n) = 0;  // in [0, n)
  virtual bool chance(double p) = 0;            // true with probability p
};

class seeded_choices : public choice_source {
 public:
  explicit seeded_choices(std::uint64_t seed) : rng_(seed) {}
  std::size_t pick(std::size_t n) override {
    return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng_);
  }
  bool chance(double p) override { return std::bernoulli_distribution(p)(rng_); }

 private:
  std::mt19937_64 rng_;
};

class random_run {
 public:
  random_run(choice_source& choices, random_options options)
      : choices_(choices), options_(options), w_(options.capacity) {}

  // Returns "" or the first difference, with the trace of the attachment that showed it.
  std::string run(int attachments) {
    for (int i = 0; i < attachments; ++i) {
      auto problem = attach_once();
      if (!problem.empty()) return "attachment " + std::to_string(i) + ": " + problem;
    }
    return {};
  }

  std::size_t local_answers = 0;  // batches answered by answer_parses_locally
  std::size_t server_batches = 0;

 private:
  struct sql_choice {
    const char* sql;
    std::vector<std::uint32_t> types;
  };

  std::size_t pick(std::size_t n) { return choices_.pick(n); }
  bool chance(double p) { return choices_.chance(p); }

  std::string name() {
    static constexpr std::array<const char*, 4> names{"a", "b", "c", "zz"};
    return names[pick(names.size())];
  }
  const sql_choice& sql() {
    static const std::array<sql_choice, 6> choices{{
        {"SELECT 1", {}},
        {"SELECT $1", {23}},
        {"SELECT $1", {25}},
        {"UPDATE t SET x = 1", {}},
        {"UPDATE t SET x = 1 / 0 -- boom", {}},
        {"bad sql", {}},
    }};
    return choices[pick(choices.size())];
  }

  // Batches, each ending with its Sync.
  std::vector<std::string> batches() {
    std::vector<std::string> out;
    const auto count = 1 + pick(3);
    while (out.size() < count) {
      if (chance(0.1)) {
        static constexpr std::array<const char*, 6> queries{
            "DEALLOCATE a", "DEALLOCATE zz", "DEALLOCATE ALL", "DISCARD ALL", "SELECT 1", ""};
        out.push_back(fe::query(queries[pick(queries.size())]));
        continue;
      }
      std::string batch;
      bool unnamed = false;  // an unnamed statement is used only after its Parse in the batch
      std::set<std::string> parsed_or_closed;
      std::size_t statements = 0;  // messages that touch a named statement
      // Adds a message naming statement `n`, unless the options rule it out.
      const auto named = [&](const std::string& n, bool parse_or_close, std::string message) {
        if (!n.empty()) {
          if (statements >= options_.max_statement_messages) return;
          if (options_.distinct_parse_close_names && parse_or_close &&
              !parsed_or_closed.insert(n).second)
            return;
          ++statements;
        }
        batch += message;
      };
      const auto n = 1 + pick(6);
      for (std::size_t i = 0; i < n; ++i) {
        const auto roll = pick(100);
        if (roll < 25) {
          const auto& s = sql();
          const auto nm = name();
          named(nm, true, fe::parse(nm, s.sql, s.types));
        } else if (roll < 30) {
          const auto& s = sql();
          batch += fe::parse("", s.sql, s.types);
          unnamed = true;
        } else if (roll < 50) {
          const auto nm = unnamed && chance(0.3) ? std::string() : name();
          named(nm, false, fe::bind(nm, {"1"}));
        } else if (roll < 58) {
          const auto nm = unnamed && chance(0.3) ? std::string() : name();
          named(nm, false, fe::describe('S', nm));
        } else if (roll < 62) {
          batch += fe::describe('P', "");
        } else if (roll < 77) {
          batch += fe::execute();
        } else if (roll < 87) {
          const auto nm = name();
          named(nm, true, fe::close('S', nm));
        } else if (roll < 90) {
          batch += fe::close('P', "");
        } else {
          batch += fe::flush();
        }
      }
      out.push_back(batch + fe::sync());
    }
    return out;
  }

  // Client messages and server replies interleaved at random until every reply is in.
  std::string relay(link& l, model_backend& pg, const std::string& requests) {
    std::string got;
    const auto messages = split(requests);
    std::size_t next = 0;
    std::deque<std::string> in_flight;  // server replies not yet read by the relay
    const auto send = [&](const std::string& bytes) {
      for (auto& m : split(pg.receive(bytes))) {
        if (options_.async_notices && chance(0.1)) {
          in_flight.push_back(be::notice("async " + std::to_string(notices_sent_)));
          ++notices_sent_;
        }
        in_flight.push_back(m.wire);
      }
    };
    while (next < messages.size() || !in_flight.empty() || l.blocked()) {
      if (next < messages.size() && (in_flight.empty() || chance(0.5))) {
        std::string chunk;
        for (auto k = 1 + pick(4); k > 0 && next < messages.size(); --k)
          chunk += messages[next++].wire;
        send(l.from_client(chunk));
      } else if (!in_flight.empty()) {
        std::string chunk;
        for (auto k = 1 + pick(4); k > 0 && !in_flight.empty(); --k) {
          chunk += in_flight.front();
          in_flight.pop_front();
        }
        got += l.from_server(chunk);
        if (l.blocked()) send(l.resume());  // the relay retries once replies have come in
      } else {
        problem_ = "held client bytes wait for replies nothing will send";
        return got;
      }
      if (l.idle() && !in_flight.empty()) {
        problem_ = "idle() with replies still to come";
        return got;
      }
    }
    if (!l.idle()) problem_ = "not idle after every reply";
    return got;
  }

  std::string attach_once() {
    const auto c = static_cast<int>(pick(2));
    const auto s = static_cast<int>(pick(2));
    const auto list = batches();
    std::string requests;
    for (const auto& b : list) requests += b;
    std::ostringstream trace;
    trace << "client " << c << " on server " << s << ": " << describe_requests(requests);

    const auto expected = describe_replies(direct_[c].receive(requests));
    std::string got;

    // Before taking a server: Parse...Sync batches of verified statements are answered here.
    std::size_t first = 0;
    std::string rest = requests;
    while (!rest.empty() && rest[0] == 'P') {
      auto answered = answer_parses_locally(
          span_of(rest), max_message, w_.clients[c],
          [this](std::string_view q, auto t) { return w_.registry.intern(q, t); });
      if (!answered) break;
      trace << "\n  answered locally: " << answered->parses << " Parse(s)";
      ++local_answers;
      got += answered->reply;
      rest.erase(0, answered->consumed);
      model_require(answered->consumed == list[first].size(), "a whole batch answered locally");
      ++first;
    }

    if (!rest.empty()) {
      ++server_batches;
      auto l = w_.attach(c, s);
      auto& pg = w_.servers[s].pg;
      problem_.clear();
      if (options_.mode == client_mode::pipelines) {
        got += relay(l, pg, rest);
      } else {
        for (std::size_t i = first; i < list.size() && problem_.empty(); ++i)
          got += relay(l, pg, list[i]);
      }
      if (!problem_.empty()) return trace.str() + "\n  " + problem_;
    }

    if (const auto mismatch = w_.cache_mismatch(); !mismatch.empty())
      return trace.str() + "\n " + mismatch;
    if (options_.async_notices) {
      // Each notice once, in the order sent; then the rest must be what PostgreSQL sent.
      std::string without;
      for (const auto& m : split(got)) {
        if (m.type != 'N') {
          without += m.wire;
          continue;
        }
        const auto notice = protocol::decode_error_response(span_of(m.body));
        if (!notice || notice->message() != "async " + std::to_string(notices_seen_))
          return trace.str() + "\n  a notice lost, repeated or out of order";
        ++notices_seen_;
      }
      if (notices_seen_ != notices_sent_) return trace.str() + "\n  a notice was not forwarded";
      got = std::move(without);
    }
    const auto seen = describe_replies(got);
    if (seen != expected) return trace.str() + "\n  direct: " + expected + "\n  sluice: " + seen;

    // Bounded state: a server's cache within its capacity, a client's map within the names used.
    for (const auto& srv : w_.servers)
      if (srv.cache.size() > options_.capacity) return trace.str() + "\n  a cache over capacity";
    if (w_.clients[c].size() > 4) return trace.str() + "\n  a client maps names it never used";

    // The client's names are exactly PostgreSQL's, for the same statements.
    std::set<std::string> names;
    for (const auto& [n, st] : w_.clients[c]) {
      names.insert(n);
      const auto it = direct_[c].statements.find(n);
      if (it == direct_[c].statements.end() || it->second.sql != st->query ||
          it->second.types != st->param_types)
        return trace.str() + "\n  sluice maps " + n + " to '" + st->query +
               "', PostgreSQL does not";
    }
    if (names != direct_[c].named())
      return trace.str() + "\n  PostgreSQL holds names sluice forgot";
    return {};
  }

  choice_source& choices_;
  random_options options_;
  world w_;
  std::array<model_backend, 2> direct_;
  std::string problem_;
  std::size_t notices_sent_ = 0, notices_seen_ = 0;
};

}  // namespace sluice::pool::testing
