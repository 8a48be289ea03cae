#include "src/app/serve_command.h"

#include <sys/signalfd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <iterator>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "pool/pool_manager.h"
#include "src/app/serve_identity.h"
#include "src/common/clock.h"
#include "src/common/fd.h"
#include "src/common/log.h"
#include "src/io/ring.h"
#include "src/middleware/quota.h"
#include "src/proxy/governance.h"
#include "src/transport/http/gateway.h"
#include "src/transport/http/gateway_config.h"
#include "src/transport/http/identity/api_keys.h"
#include "src/transport/http/server.h"

namespace mcpmw::app {
namespace {

struct Serving {
  io::Ring& ring;
  http::Gateway& gateway;
  http::HttpServer& main;
  http::HttpServer* admin;
  proxy::Governance& governance;
  ServeIdentity& identity;
  int signal_fd;
  bool drain_started = false;
  io::ReadOp* signal_read = nullptr;
};

// How long a drain waits, once every call is answered, for the answers still queued on their
// connections to be written before it closes them (a client that stopped reading gets no more).
constexpr std::chrono::seconds kAnswerFlushGrace{2};

// Waits until `server` has written everything queued on its connections, or the grace is over.
io::Task<void> AnswersWritten(io::Ring& ring, const http::HttpServer& server) {
  const TimePoint until = ring.clock().Now() + kAnswerFlushGrace;
  while (server.unwritten_bytes() > 0 && ring.clock().Now() < until) {
    co_await io::SleepOp(ring, std::chrono::milliseconds(5));
  }
}

io::Task<void> DrainAll(Serving& s) {
  if (s.drain_started) {
    co_return;
  }
  s.drain_started = true;
  LogError("serve: draining: no new connections, finishing the calls in flight");
  s.main.StopAccepting();
  co_await s.gateway.Drain();
  // An answer that ended the drain may still be queued on its connection: closing at once would
  // drop it, and its client would wait for ever for a call mcpmw finished.
  co_await AnswersWritten(s.ring, s.main);
  s.main.CloseAll();
  if (s.admin != nullptr) {
    s.admin->StopAccepting();
    co_await AnswersWritten(s.ring, *s.admin);
    s.admin->CloseAll();
  }
  if (s.signal_read != nullptr) {
    s.ring.Cancel(s.signal_read);
  }
}

io::Task<void> Signals(Serving& s, io::TaskGroup& group) {
  while (!s.drain_started) {
    signalfd_siginfo info{};
    io::ReadOp read(s.ring, s.signal_fd,
                    std::span<char>(reinterpret_cast<char*>(&info), sizeof(info)));
    s.signal_read = &read;
    int n = co_await read;
    s.signal_read = nullptr;
    if (n != static_cast<int>(sizeof(info))) {
      if (n == -EINTR || n == -EAGAIN) {
        continue;
      }
      break;
    }
    int signo = static_cast<int>(info.ssi_signo);
    if (signo == SIGHUP) {
      absl::StatusOr<std::optional<std::string>> r = s.governance.Reload();
      if (!r.ok()) {
        LogError("serve: SIGHUP: the policy bundle was not reloaded, the running one stays: ",
                 r.status().message());
      } else if (r->has_value()) {
        LogError("serve: SIGHUP: policy bundle ", **r, " installed");
      } else {
        LogError("serve: SIGHUP: the policy bundle is unchanged");
      }
      if (absl::Status st = s.identity.Reload(); !st.ok()) {
        LogError("serve: SIGHUP: identity keys not reloaded, the running ones stay: ",
                 st.message());
      }
      continue;
    }
    LogError("serve: received SIG", sigabbrev_np(signo));
    group.Spawn(DrainAll(s));
    break;
  }
}

io::Task<void> Main(Serving& s) {
  io::TaskGroup group;
  group.Spawn(s.gateway.Run());
  group.Spawn(s.main.Serve());
  if (s.admin != nullptr) {
    group.Spawn(s.admin->Serve());
  }
  s.gateway.on_drain_requested = [&s, &group] { group.Spawn(DrainAll(s)); };
  group.Spawn(Signals(s, group));
  co_await group.Join();
}

}  // namespace

int RunServe(const Command& cmd) {
  absl::StatusOr<http::GatewayConfig> config = http::LoadGatewayConfig(cmd.serve_config);
  if (!config.ok()) {
    LogError(config.status().message());
    return 1;
  }
  ::signal(SIGPIPE, SIG_IGN);
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGHUP);
  // Blocked before any thread starts, so every thread inherits the mask and the signals arrive
  // only through the signalfd the reactor reads.
  pthread_sigmask(SIG_BLOCK, &mask, nullptr);
  UniqueFd signal_fd(::signalfd(-1, &mask, SFD_CLOEXEC));
  if (!signal_fd.Valid()) {
    LogError("serve: cannot create a signalfd (", ErrnoText(errno), ")");
    return 1;
  }

  const Clock& clock = SteadyClock::Instance();
  proxy::GovernanceOptions go;
  go.policy_path = config->policy_path;
  go.server_id = "gateway";
  go.audit_path = config->audit_path;
  go.audit_key_path = config->audit_key_path;
  go.audit_fsync = config->audit_fsync;
  absl::StatusOr<std::unique_ptr<proxy::Governance>> governance =
      proxy::Governance::Create(go, clock);
  if (!governance.ok()) {
    LogError(cmd.serve_config, ": ", governance.status().message());
    return 1;
  }
  absl::StatusOr<std::unique_ptr<ServeIdentity>> identity = ServeIdentity::Create(*config);
  if (!identity.ok()) {
    LogError(cmd.serve_config, ": ", identity.status().message());
    return 1;
  }
  absl::StatusOr<std::unique_ptr<io::Ring>> ring = io::Ring::Create(1024);
  if (!ring.ok()) {
    LogError(ring.status().message());
    return 1;
  }
  (*ring)->set_busy_poll(config->busy_poll);
  std::vector<std::string> names;
  for (const pool::Profile& p : config->servers) {
    names.push_back(p.name);
  }
  absl::StatusOr<std::unique_ptr<pool::PoolManager>> pools =
      pool::PoolManager::Start(config->servers);
  if (!pools.ok()) {
    LogError(cmd.serve_config, ": ", pools.status().message());
    return 1;
  }

  // Tenant quotas: concurrent sessions, from the running bundle.
  middleware::TenantSessions tenant_sessions;
  http::GatewayDeps deps;
  deps.ring = ring->get();
  deps.pools = pools->get();
  deps.governance = governance->get();
  deps.clock = &clock;
  deps.authenticate = [&id = **identity](const http::Request& r) { return id.Authenticate(r); };
  deps.protected_resource_metadata = (*identity)->MetadataJson();
  proxy::Governance* gov = governance->get();
  deps.admission.open = [&tenant_sessions, gov](std::string_view tenant) {
    return tenant_sessions.TryOpen(*gov->store().current(), tenant);
  };
  deps.admission.close = [&tenant_sessions](std::string_view tenant) {
    tenant_sessions.Close(tenant);
  };
  http::Gateway gateway(*config, std::move(deps));

  absl::StatusOr<std::unique_ptr<http::HttpServer>> main_server =
      http::HttpServer::Listen(**ring, gateway, config->listen);
  if (!main_server.ok()) {
    LogError(main_server.status().message());
    (*pools)->Shutdown();
    return 1;
  }
  std::unique_ptr<http::HttpServer> admin_server;
  if (config->admin_enabled) {
    absl::StatusOr<std::unique_ptr<http::HttpServer>> a =
        http::HttpServer::Listen(**ring, gateway.admin(), config->admin);
    if (!a.ok()) {
      LogError(a.status().message());
      (*pools)->Shutdown();
      return 1;
    }
    admin_server = *std::move(a);
  }
  auto url = [](const http::ListenOptions& l, uint16_t port) {
    bool v6 = l.address.find(':') != std::string::npos;
    return absl::StrCat("http://", v6 ? "[" : "", l.address, v6 ? "]" : "", ":", port);
  };
  LogError(
      "serving ", url(config->listen, (*main_server)->port()),
      " (servers: ", absl::StrJoin(names, ", "), ")",
      admin_server ? absl::StrCat("; admin on ", url(config->admin, admin_server->port())) : "");

  Serving serving{**ring,       gateway,    **main_server,  admin_server.get(),
                  **governance, **identity, signal_fd.Get()};
  (*ring)->RunUntilDone(Main(serving));

  (*pools)->Shutdown();
  int code = 0;
  if (absl::Status s = (*governance)->Close(); !s.ok()) {
    LogError("serve: ", s.message());
    code = 1;
  }
  LogError("serve: drained; every worker stopped and reaped");
  return code;
}

int RunHashApiKey() {
  std::string key(std::istreambuf_iterator<char>(std::cin), {});
  if (!key.empty() && key.back() == '\n') {
    key.pop_back();
    if (!key.empty() && key.back() == '\r') {
      key.pop_back();
    }
  }
  if (key.empty()) {
    LogError("hash-api-key: no key on stdin (usage: mcpmw hash-api-key < KEYFILE)");
    return 2;
  }
  std::printf("%s\n", http::identity::HashApiKey(key).c_str());
  return 0;
}

}  // namespace mcpmw::app
