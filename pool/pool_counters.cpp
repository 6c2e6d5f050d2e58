#include "pool/pool_counters.hpp"

#include <algorithm>
#include <bit>
#include <type_traits>

namespace sluice::pool {
namespace {

constexpr auto relaxed = std::memory_order_relaxed;
constexpr std::size_t total_fields = sizeof(pool_totals) / sizeof(std::uint64_t);
static_assert(std::is_trivially_copyable_v<pool_totals> &&
              sizeof(pool_totals) == total_fields * sizeof(std::uint64_t));
using total_array = std::array<std::uint64_t, total_fields>;

std::size_t bucket_of(std::uint64_t us) {
  const auto* at = std::lower_bound(duration_bounds_us.begin(), duration_bounds_us.end(), us);
  return static_cast<std::size_t>(at - duration_bounds_us.begin());
}

int class_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'Z') return c - 'A' + 10;
  return -1;
}

char digit_char(std::size_t d) {
  return d < 10 ? static_cast<char>('0' + d) : static_cast<char>('A' + (d - 10));
}

}  // namespace

void duration_histogram::observe(std::uint64_t us) {
  ++buckets[bucket_of(us)];
  ++count;
  sum_us += us;
}

duration_histogram& duration_histogram::operator+=(const duration_histogram& other) {
  for (std::size_t i = 0; i < buckets.size(); ++i) buckets[i] += other.buckets[i];
  count += other.count;
  sum_us += other.sum_us;
  return *this;
}

pool_totals& pool_totals::operator+=(const pool_totals& other) {
  auto mine = std::bit_cast<total_array>(*this);
  const auto theirs = std::bit_cast<total_array>(other);
  for (std::size_t i = 0; i < total_fields; ++i) mine[i] += theirs[i];
  *this = std::bit_cast<pool_totals>(mine);
  return *this;
}

std::string_view name_of(server_close_reason reason) {
  switch (reason) {
    case server_close_reason::recycle:
      return "recycle";
    case server_close_reason::idle:
      return "idle";
    case server_close_reason::surplus:
      return "surplus";
    case server_close_reason::pre_ping_failed:
      return "pre_ping_failed";
    case server_close_reason::lost:
      return "lost";
    case server_close_reason::error:
      return "error";
    case server_close_reason::client_gone:
      return "client_gone";
    case server_close_reason::stopping:
      return "stopping";
  }
  return "error";
}

std::size_t sqlstate_class_index(std::string_view sqlstate) {
  if (sqlstate.size() < 2) return sqlstate_classes;
  const int high = class_digit(sqlstate[0]);
  const int low = class_digit(sqlstate[1]);
  if (high < 0 || low < 0) return sqlstate_classes;
  return static_cast<std::size_t>(high * 36 + low);
}

std::string sqlstate_class_name(std::size_t index) {
  return {digit_char(index / 36 % 36), digit_char(index % 36)};
}

void pool_counters::add(const pool_totals& totals) {
  const auto fields = std::bit_cast<total_array>(totals);
  for (std::size_t i = 0; i < total_fields; ++i)
    if (fields[i] != 0) totals_[i].fetch_add(fields[i], relaxed);
}

void pool_counters::add(const lease_counters& lease) {
  add(lease.totals);
  if (lease.query_times.count != 0) query_times_.add(lease.query_times);
  if (lease.transaction_times.count != 0) transaction_times_.add(lease.transaction_times);
}

void pool_counters::add_wait(std::uint64_t us) {
  add(pool_totals{.server_assignments = 1, .wait_us = us});
  wait_times_.observe(us);
}

void pool_counters::add_login(std::uint64_t us) {
  add(pool_totals{.logins = 1});
  login_times_.observe(us);
}

void pool_counters::count_close(server_close_reason reason) {
  servers_closed_[static_cast<std::size_t>(reason)].fetch_add(1, relaxed);
}

pool_counters::view pool_counters::load() const {
  view out;
  total_array fields{};
  for (std::size_t i = 0; i < total_fields; ++i) fields[i] = totals_[i].load(relaxed);
  out.totals = std::bit_cast<pool_totals>(fields);
  out.wait_times = wait_times_.load();
  out.query_times = query_times_.load();
  out.transaction_times = transaction_times_.load();
  out.login_times = login_times_.load();
  out.servers_opened = servers_opened_.load(relaxed);
  for (std::size_t i = 0; i < server_close_reasons; ++i)
    out.servers_closed[i] = servers_closed_[i].load(relaxed);
  return out;
}

void pool_counters::shared_histogram::add(const duration_histogram& h) {
  for (std::size_t i = 0; i < h.buckets.size(); ++i)
    if (h.buckets[i] != 0) buckets[i].fetch_add(h.buckets[i], relaxed);
  sum_us.fetch_add(h.sum_us, relaxed);
}

void pool_counters::shared_histogram::observe(std::uint64_t us) {
  buckets[bucket_of(us)].fetch_add(1, relaxed);
  sum_us.fetch_add(us, relaxed);
}

duration_histogram pool_counters::shared_histogram::load() const {
  // Each field is read on its own: a reader racing a writer may see a bucket already counted
  // and the total not yet, which a scrape a moment later corrects. The count is derived from the
  // buckets, so the two always agree within one reading.
  duration_histogram out;
  for (std::size_t i = 0; i < buckets.size(); ++i) {
    out.buckets[i] = buckets[i].load(relaxed);
    out.count += out.buckets[i];
  }
  out.sum_us = sum_us.load(relaxed);
  return out;
}

void error_counters::count(std::string_view sqlstate) {
  if (const auto index = sqlstate_class_index(sqlstate); index < sqlstate_classes)
    by_class_[index].fetch_add(1, relaxed);
}

void error_counters::count_classes(const std::vector<std::uint16_t>& classes) {
  for (auto index : classes)
    if (index < sqlstate_classes) by_class_[index].fetch_add(1, relaxed);
}

std::vector<std::pair<std::string, std::uint64_t>> error_counters::load() const {
  std::vector<std::pair<std::string, std::uint64_t>> out;
  for (std::size_t i = 0; i < sqlstate_classes; ++i)
    if (const auto n = by_class_[i].load(relaxed); n != 0)
      out.emplace_back(sqlstate_class_name(i), n);
  return out;
}

}  // namespace sluice::pool
