#include "proxy/config/loader.hpp"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <system_error>

#include <fmt/format.h>

#include "proxy/config/key_table.hpp"
#include "proxy/config/validate.hpp"

namespace sluice::config {

std::string config_error::to_string() const {
  std::string out = file;
  if (line > 0) out += fmt::format(":{}:{}", line, column);
  out += ": ";
  if (!key.empty()) out += key + ": ";
  out += problem;
  return out;
}

namespace {

source_position position_of(const YAML::Mark& mark) {
  if (mark.is_null()) return {};
  return {mark.line + 1, mark.column + 1};
}

// Edits (insert, delete, substitute, swap two neighbours) that turn `a` into `b`.
std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
  for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

std::string join_path(std::string_view parent, std::string_view key) {
  return parent.empty() ? std::string(key) : fmt::format("{}.{}", parent, key);
}

// The rows a mapping at `parent` may contain, in table order. Element rows
// ("databases.<name>", "users[]") are not keys anyone writes.
std::vector<const key_spec*> children_of(std::string_view parent) {
  std::vector<const key_spec*> out;
  for (const auto& spec : key_table()) {
    if (key_parent(spec) == parent && !is_element(spec)) out.push_back(&spec);
  }
  return out;
}

const key_spec* find_child(std::string_view parent, std::string_view key) {
  for (const auto* spec : children_of(parent)) {
    if (key_name(*spec) == key) return spec;
  }
  return nullptr;
}

// "unknown key", with the nearest sibling when one is a likely typo, else where the key
// does belong if it is a known key elsewhere, else the keys this section accepts.
std::string unknown_key_problem(std::string_view key, std::string_view spec_parent,
                                std::string_view path_parent) {
  const auto siblings = children_of(spec_parent);
  const key_spec* nearest = nullptr;
  std::size_t best = 3;  // at most two edits away...
  for (const auto* spec : siblings) {
    const auto name = key_name(*spec);
    const auto distance = edit_distance(key, name);
    if (distance < best && distance * 2 < name.size()) {  // ...and less than half the word
      best = distance;
      nearest = spec;
    }
  }
  if (nearest != nullptr) {
    return fmt::format("unknown key (did you mean \"{}\"?)", key_name(*nearest));
  }
  for (const auto& spec : key_table()) {
    if (key_name(spec) != key || is_element(spec)) continue;
    std::string home(key_parent(spec));
    if (home == "pool" && spec_parent == "databases.<name>") home = join_path(path_parent, "pool");
    return fmt::format("unknown key here (\"{}\" belongs {})", key,
                       home.empty() ? std::string("at the top level") : "in " + home);
  }
  std::string known;
  for (const auto* spec : siblings) {
    if (!known.empty()) known += ", ";
    known += key_name(*spec);
  }
  return fmt::format("unknown key (expected one of: {})", known);
}

std::string_view describe_node(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return "nothing";
    case YAML::NodeType::Scalar:
      return "a single value";
  }
  return "something else";
}

// Walks one YAML document with the key table, filling a `settings` and collecting every
// problem with its position. `where` records the position of every value read, for the
// cross-key checks of validate_settings().
class document_reader {
 public:
  document_reader(std::string_view file, const env_lookup& env) : file_(file), env_(env) {}

  settings read(const YAML::Node& root) {
    settings config;
    if (!root.IsMap() && !root.IsNull()) {
      error(
          position_of(root.Mark()), "",
          fmt::format("expected a mapping of keys at the top level, got {}", describe_node(root)));
      return config;
    }
    for (const auto& entry : read_section(root, {}, "", "", config)) {
      const auto path = entry.spec->path;
      if (path == "listen") {
        for (const auto& nested :
             read_section(entry.value, entry.at, "listen", "listen", config.listen)) {
          if (nested.spec->path == "listen.tls")
            read_section(nested.value, nested.at, "listen.tls", "listen.tls", config.listen.tls);
        }
      } else if (path == "pool") {
        read_section(entry.value, entry.at, "pool", "pool", config.pool);
      } else if (path == "databases") {
        read_databases(entry, config);
      } else if (path == "users") {
        read_users(entry, config);
      }
    }
    return config;
  }

  std::vector<config_error> take_errors() { return std::move(errors_); }
  const source_map& where() const { return where_; }

 private:
  // A key of a section that the table knows, with its value.
  struct entry {
    const key_spec* spec;
    std::string path;  // e.g. "databases.app.pool.size"
    YAML::Node value;
    source_position at;  // of the value, or of the key when the value is empty
  };

  void error(source_position at, std::string key, std::string problem) {
    errors_.push_back({std::string(file_), at.line, at.column, std::move(key), std::move(problem)});
  }

  // Reads the keys of `node` against the table rows under `spec_parent`: stores every
  // scalar into `target`, reports unknown, duplicate and missing keys, and returns the
  // nested sections (mappings and lists) in table order for the caller to read.
  template <class Section>
  std::vector<entry> read_section(const YAML::Node& node, source_position at,
                                  std::string_view spec_parent, const std::string& path_parent,
                                  Section& target, std::string_view database_name = {}) {
    std::vector<entry> found;
    if (!node.IsMap() && !node.IsNull()) {
      error(at, path_parent,
            fmt::format("expected a mapping of keys, got {}", describe_node(node)));
      return {};
    }
    if (node.IsMap()) {
      for (const auto& item : node) {
        const auto key_at = position_of(item.first.Mark());
        if (!item.first.IsScalar()) {
          error(key_at, path_parent, "keys must be plain names");
          continue;
        }
        const std::string key = item.first.Scalar();
        const std::string path = join_path(path_parent, key);
        const key_spec* spec = find_child(spec_parent, key);
        if (spec == nullptr) {
          error(key_at, path, unknown_key_problem(key, spec_parent, path_parent));
          continue;
        }
        const auto previous = std::find_if(found.begin(), found.end(),
                                           [&](const entry& e) { return e.spec == spec; });
        if (previous != found.end()) {
          error(key_at, path,
                fmt::format("duplicate key (first set at line {})", previous->at.line));
          continue;
        }
        const auto value_at = item.second.IsNull() ? key_at : position_of(item.second.Mark());
        found.push_back({spec, path, item.second, value_at});
        where_[path] = value_at;
      }
    }
    for (const auto* spec : children_of(spec_parent)) {
      const bool present =
          std::any_of(found.begin(), found.end(), [&](const entry& e) { return e.spec == spec; });
      if (spec->required && !present) {
        error(at, join_path(path_parent, key_name(*spec)), "missing (this key is required)");
      }
    }

    // Table order, so that `pool` is read before the databases that inherit it. (Entries
    // are not sorted in place: assigning a YAML::Node rewrites the document it points into.)
    std::vector<entry> nested;
    for (const auto* spec : children_of(spec_parent)) {
      const auto e = std::find_if(found.begin(), found.end(),
                                  [&](const entry& candidate) { return candidate.spec == spec; });
      if (e == found.end()) continue;
      if (spec->store.index() == 0) {
        nested.push_back(*e);
      } else if (spec->type == value_type::name_list) {
        if (auto value = read_name_list(*e))
          std::get<store_fn<Section>>(spec->store)(target, *value);
      } else if (auto value = read_scalar(*e, database_name)) {
        std::get<store_fn<Section>>(spec->store)(target, *value);
      }
    }
    return nested;
  }

  std::optional<parsed_value> read_scalar(const entry& e, std::string_view database_name) {
    if (!e.value.IsScalar()) {
      error(e.at, e.path,
            fmt::format("expected a single value ({}), got {}", describe_type(*e.spec),
                        describe_node(e.value)));
      where_[e.path].valid = false;
      return std::nullopt;
    }
    const std::string& raw = e.value.Scalar();
    const auto expanded = expand_env(raw, env_);
    if (!expanded.ok()) {
      if (expanded.syntax) error(e.at, e.path, *expanded.syntax);
      for (const auto& name : expanded.missing) {
        error(e.at, e.path, fmt::format("environment variable {} is not set", name));
      }
      where_[e.path].valid = false;
      return std::nullopt;
    }
    auto parsed = parse_value(*e.spec, expanded.text, database_name);
    if (!parsed.value) {
      std::string problem = std::move(parsed.problem);
      // Quote what the file says, never what the environment put there, and nothing at all
      // of a secret.
      if (!e.spec->secret && !raw.empty()) {
        problem += fmt::format(", got \"{}\"", raw);
        if (expanded.used_env) problem += " after expanding the environment";
      }
      error(e.at, e.path, std::move(problem));
      where_[e.path].valid = false;
      return std::nullopt;
    }
    return std::move(parsed.value);
  }

  // A list of names, each item read like a scalar (env-expanded, checked) at its own path
  // ("admin_users[1]"), so that errors and cross-key checks point at the item.
  std::optional<parsed_value> read_name_list(const entry& e) {
    if (e.value.IsNull()) return parsed_value{std::vector<std::string>{}};
    if (!e.value.IsSequence()) {
      error(e.at, e.path,
            fmt::format("expected a list of user names ([a, b], or one \"- name\" per line), "
                        "got {}",
                        describe_node(e.value)));
      where_[e.path].valid = false;
      return std::nullopt;
    }
    std::vector<std::string> names;
    bool readable = true;
    std::size_t i = 0;
    for (const auto& item : e.value) {
      const std::string path = fmt::format("{}[{}]", e.path, i++);
      const auto at = item.IsNull() ? e.at : position_of(item.Mark());
      where_[path] = at;
      if (!item.IsScalar()) {
        error(at, path, fmt::format("expected a user name, got {}", describe_node(item)));
        where_[path].valid = false;
        readable = false;
      } else if (auto name = read_scalar({e.spec, path, item, at}, {})) {
        names.push_back(std::get<std::string>(*name));
      } else {
        readable = false;
      }
    }
    if (!readable) {
      where_[e.path].valid = false;
      return std::nullopt;
    }
    return parsed_value{std::move(names)};
  }

  void read_databases(const entry& databases, settings& config) {
    const YAML::Node& node = databases.value;
    if (!node.IsMap() && !node.IsNull()) {
      error(databases.at, "databases",
            fmt::format("expected a mapping of database names, got {}", describe_node(node)));
      return;
    }
    if (node.IsNull() || node.size() == 0) {
      error(databases.at, "databases", "at least one database is required");
      return;
    }
    for (const auto& item : node) {
      const auto key_at = position_of(item.first.Mark());
      if (!item.first.IsScalar() || item.first.Scalar().empty()) {
        error(key_at, "databases", "a database name must be a non-empty plain name");
        continue;
      }
      const std::string name = item.first.Scalar();
      const std::string path = "databases." + name;
      if (config.find_database(name) != nullptr) {
        error(key_at, path,
              fmt::format("duplicate database (first set at line {})", where_[path].line));
        continue;
      }
      where_[path] = key_at;
      database_settings db{.name = name, .server = {}, .pool = config.pool};
      for (const auto& nested :
           read_section(item.second, key_at, "databases.<name>", path, db, name)) {
        // The only nested section of a database is its pool overrides.
        read_section(nested.value, nested.at, "pool", nested.path, db.pool);
      }
      config.databases.push_back(std::move(db));
    }
  }

  void read_users(const entry& users, settings& config) {
    const YAML::Node& node = users.value;
    if (!node.IsSequence() && !node.IsNull()) {
      error(users.at, "users",
            fmt::format("expected a list of users (\"- name: ...\"), got {}", describe_node(node)));
      return;
    }
    if (node.IsNull() || node.size() == 0) {
      error(users.at, "users", "at least one user is required");
      return;
    }
    std::size_t i = 0;
    for (const auto& item : node) {
      const std::string path = fmt::format("users[{}]", i);
      const auto at = item.IsNull() ? users.at : position_of(item.Mark());
      where_[path] = at;
      user_settings user;
      read_section(item, at, "users[]", path, user);
      config.users.push_back(std::move(user));
      ++i;
    }
  }

  std::string_view file_;
  const env_lookup& env_;
  std::vector<config_error> errors_;
  source_map where_;
};

// The first node of each of the first few documents of a YAML stream, as YAML::Node::Mark()
// gives it.
//
// Not YAML::LoadAll: in yaml-cpp 0.7 (Debian 12) it never returns on some malformed input
// (",\n {"): the parser keeps reporting an empty document at the same place without consuming
// anything, and LoadAll collects them until memory runs out (yaml-cpp PR #1319; found by
// fuzz_config_loader). A config has one document, so this asks the parser for at most three:
// two documents starting at the same place mean it is stuck there.
class document_finder : public YAML::EventHandler {
 public:
  std::vector<YAML::Mark> find(const std::string& text) {
    std::istringstream in(text);
    YAML::Parser parser(in);
    while (starts_.size() < 3 && parser.HandleNextDocument(*this)) {
    }
    return std::move(starts_);
  }

 private:
  void OnDocumentStart(const YAML::Mark& mark) override { starts_.push_back(mark); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t) override { node(mark); }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override { node(mark); }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                const std::string&) override {
    node(mark);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    node(mark);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    node(mark);
  }
  void OnMapEnd() override {}

  // A document's position is that of its first node (its start mark is that of the "---").
  void node(const YAML::Mark& mark) {
    if (positioned_ == starts_.size()) return;
    starts_.back() = mark;
    positioned_ = starts_.size();
  }

  std::vector<YAML::Mark> starts_;
  std::size_t positioned_ = 0;  // documents whose first node has been seen
};

// The error for a stream of more than one document, or the one yaml-cpp gets stuck on.
config_error extra_document_error(std::string_view file_name, const std::string& text,
                                  const std::vector<YAML::Mark>& starts) {
  for (std::size_t i = 1; i < starts.size(); ++i) {
    if (starts[i].pos != starts[i - 1].pos) continue;
    const auto at = position_of(starts[i]);
    const auto pos = static_cast<std::size_t>(std::max(starts[i].pos, 0));
    std::string problem = "not valid YAML here";
    if (pos < text.size()) problem += fmt::format(" (unexpected \"{}\")", text[pos]);
    return {std::string(file_name), at.line, at.column, "", problem};
  }
  const auto at = position_of(starts[1]);
  return {std::string(file_name), at.line, at.column, "",
          "only one YAML document is allowed (remove the second \"---\")"};
}

}  // namespace

load_result load_config_text(std::string_view yaml_text, std::string_view file_name,
                             const env_lookup& env) {
  load_result result;
  const std::string text(yaml_text);
  YAML::Node document;
  try {
    // Load reads the first document only; the finder then looks for a second one.
    document = YAML::Load(text);
    if (const auto starts = document_finder().find(text); starts.size() > 1) {
      result.errors.push_back(extra_document_error(file_name, text, starts));
      return result;
    }
  } catch (const YAML::Exception& e) {
    const auto at = position_of(e.mark);
    result.errors.push_back({std::string(file_name), at.line, at.column, "", e.msg});
    return result;
  }

  document_reader reader(file_name, env);
  settings config = reader.read(document);
  result.errors = reader.take_errors();
  auto cross_key = validate_settings(config, reader.where(), file_name);
  result.errors.insert(result.errors.end(), std::make_move_iterator(cross_key.begin()),
                       std::make_move_iterator(cross_key.end()));
  std::stable_sort(result.errors.begin(), result.errors.end(),
                   [](const config_error& a, const config_error& b) {
                     return std::tie(a.line, a.column) < std::tie(b.line, b.column);
                   });
  if (result.errors.empty()) result.config = std::move(config);
  return result;
}

load_result load_config_file(const std::string& path, const env_lookup& env) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return {std::nullopt, {{path, 0, 0, "", "cannot read: is a directory"}}};
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const std::error_code open_error(errno, std::generic_category());
    return {std::nullopt, {{path, 0, 0, "", "cannot read: " + open_error.message()}}};
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return {std::nullopt, {{path, 0, 0, "", "cannot read: I/O error"}}};
  return load_config_text(text.str(), path, env);
}

env_lookup process_environment() {
  return [](std::string_view name) -> std::optional<std::string> {
    const std::string key(name);
    if (const char* value = std::getenv(key.c_str())) return std::string(value);
    return std::nullopt;
  };
}

}  // namespace sluice::config
