#include "protocol/errc.hpp"

#include <string>

namespace sluice::protocol {
namespace {

class protocol_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "sluice.protocol"; }

  std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::ok:
        return "success";
      case errc::need_more:
        return "need more bytes";
      case errc::message_too_long:
        return "message length exceeds the limit";
      case errc::bad_length:
        return "message length is below the minimum";
      case errc::truncated:
        return "field runs past the end of the message";
      case errc::malformed:
        return "malformed message";
      case errc::unsupported_protocol:
        return "unsupported frontend protocol version";
      case errc::auth_failed:
        return "authentication failed";
      case errc::unsupported_mechanism:
        return "unsupported authentication mechanism";
    }
    return "unknown protocol error";
  }
};

}  // namespace

const std::error_category& protocol_category() noexcept {
  static const protocol_category_impl category;
  return category;
}

std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), protocol_category()};
}

}  // namespace sluice::protocol
