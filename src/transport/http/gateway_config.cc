#include "src/transport/http/gateway_config.h"

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "src/common/json_reader.h"
#include "src/common/status.h"
#include "src/proxy/aggregate.h"

namespace mcpmw::http {
namespace {

using json::Bad;
using json::ObjectReader;
using Fsync = audit::AuditOptions::FsyncPolicy;

std::string Resolve(std::string_view base_dir, const std::string& path) {
  if (path.empty() || path.front() == '/' || base_dir.empty()) {
    return path;
  }
  return (std::filesystem::path(std::string(base_dir)) / path).string();
}

absl::Status ReadListen(ObjectReader& r, std::string_view key, ListenOptions* out) {
  MCPMW_ASSIGN_OR_RETURN(std::optional<ObjectReader> l, r.Object(key));
  if (!l) {
    return absl::OkStatus();
  }
  MCPMW_ASSIGN_OR_RETURN(std::optional<std::string> address, l->String("address"));
  if (address) {
    out->address = *address;
  }
  MCPMW_ASSIGN_OR_RETURN(std::optional<uint64_t> port, l->Whole("port", 65535));
  if (port) {
    out->port = static_cast<uint16_t>(*port);
  }
  return l->RejectUnknown();
}

}  // namespace

absl::StatusOr<GatewayConfig> ParseGatewayConfig(std::string_view text, std::string_view base_dir) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(text);
  simdjson::dom::element root;
  if (auto err = parser.parse(padded).get(root); err) {
    return Bad("/", absl::StrCat("not valid JSON (", simdjson::error_message(err), ")"));
  }
  MCPMW_ASSIGN_OR_RETURN(simdjson::dom::object obj, json::AsObject(root, ""));
  ObjectReader r(obj, "");
  GatewayConfig c;
  c.base_dir = std::string(base_dir);

  MCPMW_RETURN_IF_ERROR(ReadListen(r, "listen", &c.listen));
  if (r.Get("admin")) {
    c.admin_enabled = true;
    c.admin.port = 0;
    MCPMW_RETURN_IF_ERROR(ReadListen(r, "admin", &c.admin));
  }
  MCPMW_ASSIGN_OR_RETURN(c.allowed_origins, r.Strings("allowedOrigins"));
  MCPMW_ASSIGN_OR_RETURN(c.allowed_hosts, r.Strings("allowedHosts"));

  MCPMW_ASSIGN_OR_RETURN(std::optional<ObjectReader> h, r.Object("http"));
  if (h) {
    Limits& l = c.listen.limits;
    MCPMW_ASSIGN_OR_RETURN(std::optional<uint64_t> body, h->Whole("maxBodyBytes", 1ULL << 30));
    if (body) {
      l.max_body_bytes = *body;
    }
    MCPMW_ASSIGN_OR_RETURN(std::optional<uint64_t> head, h->Whole("maxHeaderBytes", 1ULL << 20));
    if (head) {
      l.max_header_bytes = *head;
    }
    MCPMW_ASSIGN_OR_RETURN(std::optional<std::chrono::milliseconds> idle,
                           h->Millis("idleTimeoutMs"));
    if (idle) {
      l.idle_timeout = *idle;
    }
    MCPMW_ASSIGN_OR_RETURN(std::optional<std::chrono::milliseconds> ht,
                           h->Millis("headerTimeoutMs"));
    if (ht) {
      l.header_timeout = *ht;
    }
    MCPMW_ASSIGN_OR_RETURN(std::optional<std::chrono::milliseconds> ka,
                           h->Millis("sseKeepAliveMs"));
    if (ka) {
      c.sse_keep_alive = *ka;
    }
    MCPMW_ASSIGN_OR_RETURN(std::optional<uint64_t> conns, h->Whole("maxConnections", 1'000'000));
    if (conns) {
      l.max_connections = *conns;
    }
    MCPMW_RETURN_IF_ERROR(h->RejectUnknown());
  }
  c.admin.limits = c.listen.limits;

  MCPMW_ASSIGN_OR_RETURN(std::optional<ObjectReader> s, r.Object("sessions"));
  if (s) {
    MCPMW_ASSIGN_OR_RETURN(std::optional<uint64_t> events, s->Whole("resumeBufferEvents", 65536));
    if (events) {
      c.resume_buffer_events = *events;
    }
    MCPMW_ASSIGN_OR_RETURN(std::optional<std::chrono::milliseconds> idle,
                           s->Millis("idleTimeoutMs"));
    if (idle) {
      c.session_idle_timeout = *idle;
    }
    MCPMW_ASSIGN_OR_RETURN(std::optional<uint64_t> max, s->Whole("maxSessions", 10'000'000));
    if (max) {
      c.max_sessions = *max;
    }
    MCPMW_RETURN_IF_ERROR(s->RejectUnknown());
  }

  MCPMW_ASSIGN_OR_RETURN(std::optional<std::string> policy, r.String("policy"));
  if (policy) {
    c.policy_path = Resolve(base_dir, *policy);
  }
  MCPMW_ASSIGN_OR_RETURN(std::optional<ObjectReader> a, r.Object("audit"));
  if (a) {
    MCPMW_ASSIGN_OR_RETURN(std::string path, a->RequiredString("path"));
    MCPMW_ASSIGN_OR_RETURN(std::string key, a->RequiredString("keyFile"));
    c.audit_path = Resolve(base_dir, path);
    c.audit_key_path = Resolve(base_dir, key);
    MCPMW_ASSIGN_OR_RETURN(c.audit_fsync, a->Choice<Fsync>("fsync",
                                                           {{"never", Fsync::kNever},
                                                            {"segment", Fsync::kPerSegment},
                                                            {"batch", Fsync::kPerBatch}},
                                                           Fsync::kPerSegment));
    MCPMW_RETURN_IF_ERROR(a->RejectUnknown());
  }
  if (std::optional<simdjson::dom::element> id = r.Get("identity")) {
    MCPMW_ASSIGN_OR_RETURN(simdjson::dom::object io, json::AsObject(*id, "/identity"));
    c.identity_json = simdjson::minify(io);
  }

  std::optional<simdjson::dom::element> servers = r.Get("servers");
  if (!servers) {
    return Bad("/servers", "required: a list of server profiles (at least one)");
  }
  MCPMW_ASSIGN_OR_RETURN(simdjson::dom::array list, json::AsArray(*servers, "/servers"));
  std::set<std::string> names;
  size_t i = 0;
  for (simdjson::dom::element e : list) {
    std::string ptr = absl::StrCat("/servers/", i++);
    MCPMW_ASSIGN_OR_RETURN(pool::Profile p, pool::ParseProfileElement(e, ptr));
    if (!p.cwd.empty()) {
      p.cwd = Resolve(base_dir, p.cwd);
    }
    if (!proxy::IsNamespaceSafeServerName(p.name)) {
      return Bad(ptr + "/name",
                 absl::StrCat("\"", p.name,
                              "\" cannot prefix aggregated tool names: use 1-32 characters from "
                              "A-Z a-z 0-9 _ . - without \"__\" and not ending in \"_\""));
    }
    if (!names.insert(p.name).second) {
      return Bad(ptr + "/name", absl::StrCat("\"", p.name, "\" is used by an earlier server"));
    }
    c.servers.push_back(std::move(p));
  }
  if (c.servers.empty()) {
    return Bad("/servers", "needs at least one server profile");
  }
  MCPMW_ASSIGN_OR_RETURN(std::optional<std::chrono::milliseconds> drain,
                         r.Millis("drainTimeoutMs"));
  if (drain) {
    c.drain_timeout = *drain;
  }
  MCPMW_ASSIGN_OR_RETURN(std::optional<std::chrono::milliseconds> request_timeout,
                         r.Millis("requestTimeoutMs"));
  if (request_timeout) {
    c.request_timeout = *request_timeout;
  }
  MCPMW_ASSIGN_OR_RETURN(std::optional<uint64_t> busy_poll_us, r.Whole("busyPollUs", 1'000'000));
  if (busy_poll_us) {
    c.busy_poll = std::chrono::microseconds(*busy_poll_us);
  }
  MCPMW_RETURN_IF_ERROR(r.RejectUnknown());
  return c;
}

absl::StatusOr<GatewayConfig> LoadGatewayConfig(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("cannot read the gateway config ", path));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  std::string dir = std::filesystem::path(path).parent_path().string();
  absl::StatusOr<GatewayConfig> c = ParseGatewayConfig(ss.str(), dir);
  if (!c.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", c.status().message()));
  }
  return c;
}

}  // namespace mcpmw::http
