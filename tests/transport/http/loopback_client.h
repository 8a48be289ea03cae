// Test helper: a blocking TCP client on 127.0.0.1 with send and receive timeouts, buffering what
// it reads, for the HTTP server and gateway tests (which run the server on a ring in the test
// thread and this client on another thread).
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "src/common/fd.h"

namespace mcpmw::http::testing_support {

class LoopbackClient {
 public:
  // Connects to 127.0.0.1:`port`; `rcvbuf` > 0 shrinks the receive buffer (slow-reader tests).
  explicit LoopbackClient(uint16_t port, std::chrono::seconds timeout = std::chrono::seconds(5),
                          int rcvbuf = 0) {
    fd_.Reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    timeval tv{.tv_sec = timeout.count(), .tv_usec = 0};
    ::setsockopt(fd_.Get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ::setsockopt(fd_.Get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (rcvbuf > 0) {
      ::setsockopt(fd_.Get(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_.Get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    connect_errno_ = connected_ ? 0 : errno;
  }

  bool connected() const { return connected_; }
  int connect_errno() const { return connect_errno_; }

  // Sends all of `bytes`; false when the connection failed first.
  bool Send(std::string_view bytes) {
    while (!bytes.empty()) {
      ssize_t n = ::send(fd_.Get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) {
        return false;
      }
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // Reads once into the buffer: false at EOF, error or timeout (eof() tells which).
  bool ReadSome() {
    char buf[16384];
    ssize_t n = ::recv(fd_.Get(), buf, sizeof(buf), 0);
    if (n > 0) {
      data_.append(buf, static_cast<size_t>(n));
      return true;
    }
    eof_ = n == 0;
    return false;
  }

  // Reads until `marker` is in the buffer; returns everything up to and including it (empty
  // when the connection ended or timed out first).
  std::string ReadThrough(std::string_view marker) {
    size_t at;
    while ((at = data_.find(marker)) == std::string::npos) {
      if (!ReadSome()) {
        return {};
      }
    }
    std::string out = data_.substr(0, at + marker.size());
    data_.erase(0, at + marker.size());
    return out;
  }

  // Reads exactly `n` bytes (empty when the connection ended or timed out first).
  std::string ReadExactly(size_t n) {
    while (data_.size() < n) {
      if (!ReadSome()) {
        return {};
      }
    }
    std::string out = data_.substr(0, n);
    data_.erase(0, n);
    return out;
  }

  // Reads until the server closes; true when it did (not a timeout).
  bool ReadToEof() {
    while (ReadSome()) {
    }
    return eof_;
  }

  std::string& data() { return data_; }
  bool eof() const { return eof_; }
  void Close() { fd_.Reset(); }

 private:
  UniqueFd fd_;
  bool connected_ = false;
  int connect_errno_ = 0;
  std::string data_;
  bool eof_ = false;
};

}  // namespace mcpmw::http::testing_support
