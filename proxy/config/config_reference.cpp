#include "proxy/config/config_reference.hpp"

#include <limits>
#include <span>
#include <vector>

#include <fmt/format.h>

#include "proxy/config/key_table.hpp"

namespace sluice::config {
namespace {

// --- The document ---------------------------------------------------------------------------
//
// Text in paragraphs and items may hold `code` spans; each renderer marks them its own way.

enum class block_kind {
  section,    // a heading: NAME, DESCRIPTION, ...
  paragraph,  // running text
  item,       // a term and its description (a definition list entry)
  code,       // a literal example, printed as is
  keys,       // the place where every key of the table is listed
};

struct block {
  block_kind kind;
  std::string_view text;         // an item's term
  std::string_view detail = {};  // an item's description
};

constexpr std::string_view example_config = R"(listen:
  host: 127.0.0.1
  port: 6432
databases:
  app:
    url: postgresql://app:${APP_DB_PASSWORD}@127.0.0.1:5432/app
    pool: { size: 10 }
users:
  - name: app
    password: ${APP_PASSWORD}
admin_users: [app])";

// clang-format off
constexpr block document[] = {
  {block_kind::section, "DESCRIPTION"},
  {block_kind::paragraph,
   "sluice reads its configuration from one YAML file, named with `-c`; the Debian package "
   "installs `/etc/sluice/sluice.yaml`. A minimal file lists the address to listen on, the "
   "databases clients may ask for (each a libpq connection URL) and the users who may log in. "
   "Every other key has a default. A key sluice does not know is an error, not a warning."},
  {block_kind::paragraph,
   "`sluice --check -c FILE` validates a file without starting the daemon and prints every "
   "problem as `file:line:col: key: problem`. `sluice --help` lists the keys in short, and "
   "`sluice config-reference` prints this reference as Markdown; all three come from the "
   "table of keys the loader itself reads the file with."},
  {block_kind::section, "VALUES"},
  {block_kind::item, "durations",
   "`250ms`, `30s`, `5m`, `1h`, or a plain number of seconds (`1.5`). Keys whose type says "
   "`duration | off` also take `off`."},
  {block_kind::item, "sizes",
   "`512B`, `1kB`, `64MB`, `1GB` (powers of 1024, as in postgresql.conf), or a plain number "
   "of bytes."},
  {block_kind::item, "environment variables",
   "any value may use `${NAME}`, expanded before the value is read, so `port: ${PORT}` works; "
   "`$${` writes a literal `${`. A variable that is not set is an error. Inside a flow mapping "
   "quote the value: `{ size: \"${POOL_SIZE}\" }`. Keep passwords out of the file this way: "
   "the package's systemd unit reads `/etc/sluice/sluice.env` (mode 0600) into the "
   "environment."},
  {block_kind::item, "user lists",
   "a YAML list of names, `[a, b]` or one `- name` per line; `[]` is nobody."},
  {block_kind::section, "KEYS"},
  {block_kind::paragraph,
   "Each key is given by its path: `pool.size` is `size` inside `pool:`. `databases.<name>` "
   "stands for each entry of the `databases` mapping and `users[]` for each item of the "
   "`users` list. A database's own `pool:` takes every `pool.*` key and overrides the "
   "top-level value for that database. \"Reloadable\" marks the keys a reload may change "
   "without a restart; sluice does not reload its configuration yet, so for now every change "
   "needs a restart."},
  {block_kind::keys, {}},
  {block_kind::section, "EXAMPLE"},
  {block_kind::code, example_config},
  {block_kind::section, "FILES"},
  {block_kind::item, "/etc/sluice/sluice.yaml", "the configuration the package's unit runs with"},
  {block_kind::item, "/etc/sluice/sluice.env",
   "optional `NAME=value` lines the unit puts in the environment, for `${NAME}` references"},
  {block_kind::section, "SEE ALSO"},
  {block_kind::paragraph, "sluice(8), psql(1)"},
};
// clang-format on

// --- Facts about one key --------------------------------------------------------------------

bool is_unbounded(const key_spec& spec) {
  return spec.max == std::numeric_limits<std::uint32_t>::max();
}

// The type without its range: "integer", "duration | off", "session | transaction".
std::string type_word(const key_spec& spec) {
  switch (spec.type) {
    case value_type::integer:
      return "integer";
    case value_type::byte_size:
      return "size";
    default:
      return describe_type(spec);
  }
}

// "1 to 65535", "at least 1024", or "" for keys without a range.
std::string range_text(const key_spec& spec) {
  if (spec.type != value_type::integer && spec.type != value_type::byte_size) return {};
  const auto show = [&](std::uint64_t n) {
    return spec.type == value_type::byte_size ? format_byte_size(n) : std::to_string(n);
  };
  if (is_unbounded(spec)) return "at least " + show(spec.min);
  return show(spec.min) + " to " + show(spec.max);
}

std::string_view reload_text(const key_spec& spec) {
  return spec.reloadable ? "reloadable" : "needs a restart";
}

// --- Markdown -------------------------------------------------------------------------------

void markdown_key(std::string& out, const key_spec& spec) {
  out += fmt::format("### `{}`\n\n", spec.path);
  std::vector<std::string> facts;
  facts.push_back(fmt::format("**type:** {}", type_word(spec)));
  if (const auto range = range_text(spec); !range.empty()) {
    facts.push_back(fmt::format("**range:** {}", range));
  }
  if (spec.required) {
    facts.emplace_back("**required**");
  } else if (!spec.default_value.empty()) {
    facts.push_back(fmt::format("**default:** `{}`", spec.default_value));
  }
  facts.push_back(fmt::format("**{}**", reload_text(spec)));
  if (spec.secret) facts.emplace_back("**secret:** never shown in errors");
  out += fmt::format("{}\n\n{}\n\n", fmt::join(facts, " · "), spec.doc);
}

}  // namespace

std::string config_reference_markdown() {
  std::string out =
      "<!-- Generated by `sluice config-reference` from proxy/config/key_table.cpp; do not "
      "edit. -->\n"
      "# sluice configuration reference\n\n"
      "sluice.yaml: the configuration file of the sluice PostgreSQL connection pooler.\n\n";
  for (const auto& b : document) {
    switch (b.kind) {
      case block_kind::section:
        out += fmt::format("## {}\n\n", b.text);
        break;
      case block_kind::paragraph:
        out += fmt::format("{}\n\n", b.text);
        break;
      case block_kind::item:
        out += fmt::format("- **{}**: {}\n", b.text, b.detail);
        break;
      case block_kind::code:
        out += fmt::format("```yaml\n{}\n```\n\n", b.text);
        break;
      case block_kind::keys:
        for (const auto& spec : key_table()) markdown_key(out, spec);
        break;
    }
    // A definition list ends with a blank line before whatever follows it.
    if (b.kind == block_kind::item &&
        (&b + 1 == std::end(document) || (&b + 1)->kind != block_kind::item)) {
      out += "\n";
    }
  }
  // One trailing newline, as a file written by an editor has.
  while (out.ends_with("\n\n")) out.pop_back();
  return out;
}

// --- troff (man(7)) -------------------------------------------------------------------------

namespace {

// Text for troff: a backslash is \e, a line must not start with a control character, and
// `code` spans become bold with their hyphens written as \- (so they stay minus signs that
// can be copied, as man-pages(7) asks for options and literal values).
std::string troff_text(std::string_view text) {
  std::string out;
  bool in_code = false;
  for (const char c : text) {
    if (c == '`') {
      out += in_code ? "\\fR" : "\\fB";
      in_code = !in_code;
    } else if (c == '\\') {
      out += "\\e";
    } else if (c == '-' && in_code) {
      out += "\\-";
    } else {
      out += c;
    }
  }
  if (in_code) out += "\\fR";
  if (out.starts_with('.') || out.starts_with('\'')) out.insert(0, "\\&");
  return out;
}

// A literal line for a .nf block: only the escapes, no markup.
std::string troff_literal(std::string_view line) {
  std::string out;
  for (const char c : line) {
    if (c == '\\') {
      out += "\\e";
    } else if (c == '-') {
      out += "\\-";
    } else {
      out += c;
    }
  }
  if (out.starts_with('.') || out.starts_with('\'')) out.insert(0, "\\&");
  return out;
}

void man_key(std::string& out, const key_spec& spec) {
  out += fmt::format(".TP\n.B {}\n", troff_literal(spec.path));
  std::vector<std::string> facts;
  facts.push_back(troff_text(type_word(spec)));
  if (const auto range = range_text(spec); !range.empty()) {
    facts.push_back("range " + troff_text(range));
  }
  if (spec.required) {
    facts.emplace_back("required");
  } else if (!spec.default_value.empty()) {
    facts.push_back("default \\fB" + troff_literal(spec.default_value) + "\\fR");
  }
  facts.emplace_back(reload_text(spec));
  if (spec.secret) facts.emplace_back("secret");
  out += fmt::format("({})\n.br\n{}\n", fmt::join(facts, "; "), troff_text(spec.doc));
}

}  // namespace

std::string config_reference_man(std::string_view version) {
  std::string out = fmt::format(
      ".\\\" Generated by `sluice config-reference --man` from proxy/config/key_table.cpp.\n"
      ".TH SLUICE.YAML 5 \"\" \"sluice {}\" \"File Formats\"\n"
      ".SH NAME\n"
      "sluice.yaml \\- configuration file of the sluice PostgreSQL connection pooler\n",
      troff_literal(version));
  // A paragraph right after a heading starts one by itself; anywhere else it needs .PP.
  bool after_heading = true;
  for (const auto& b : document) {
    switch (b.kind) {
      case block_kind::section:
        out += fmt::format(".SH {}\n", b.text);
        break;
      case block_kind::paragraph:
        out += fmt::format("{}{}\n", after_heading ? "" : ".PP\n", troff_text(b.text));
        break;
      case block_kind::item:
        out += fmt::format(".TP\n.B {}\n{}\n", troff_literal(b.text), troff_text(b.detail));
        break;
      case block_kind::code:
        out += ".PP\n.nf\n.RS 4\n";
        for (std::size_t start = 0; start <= b.text.size();) {
          auto end = b.text.find('\n', start);
          if (end == std::string_view::npos) end = b.text.size();
          out += troff_literal(b.text.substr(start, end - start)) + "\n";
          start = end + 1;
        }
        out += ".RE\n.fi\n";
        break;
      case block_kind::keys:
        for (const auto& spec : key_table()) man_key(out, spec);
        break;
    }
    after_heading = b.kind == block_kind::section;
  }
  return out;
}

}  // namespace sluice::config
