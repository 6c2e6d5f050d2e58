#pragma once
// The Asio vocabulary the daemon uses everywhere: coroutines that return errors as values.
#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>

namespace sluice::proxy {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
template <class T = void>
using awaitable = asio::awaitable<T>;

// Completion token that returns (error_code, results...) instead of throwing: a closed
// socket or an expired deadline is an ordinary outcome here, not an exception.
inline constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

}  // namespace sluice::proxy
