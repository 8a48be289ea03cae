#include "src/audit/audit_sink.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "simdjson.h"
#include "src/audit/record.h"
#include "src/common/log.h"
#include "src/common/status.h"
#include "src/common/strings.h"

namespace mcpmw::audit {
namespace {

constexpr size_t kMaxQueueCapacity = size_t{1} << 16;  // 32 MiB of slots
constexpr size_t kHeaderReadBytes = 4096;
constexpr size_t kTailChunkBytes = size_t{64} * 1024;

absl::Status ErrnoStatus(int err, std::string_view what) {
  std::string message = absl::StrCat(Sv(what), ": ", ErrnoText(err));
  switch (err) {
    case ENOENT:
      return absl::NotFoundError(message);
    case EACCES:
    case EPERM:
    case EROFS:
      return absl::PermissionDeniedError(message);
    case ENOSPC:
    case EDQUOT:
      return absl::ResourceExhaustedError(message);
    default:
      return absl::InternalError(message);
  }
}

absl::Status WriteAll(int fd, std::string_view bytes, std::string_view path) {
  while (!bytes.empty()) {
    ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      return ErrnoStatus(errno, absl::StrCat("audit log ", Sv(path), ": write"));
    }
    if (n == 0) {  // no progress and no error (some FUSE filesystems): do not spin forever
      return absl::DataLossError(
          absl::StrCat("audit log ", Sv(path), ": write wrote nothing and reported no error"));
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

absl::Status PreadExact(int fd, char* out, size_t size, uint64_t offset, std::string_view path) {
  size_t done = 0;
  while (done < size) {
    ssize_t n = ::pread(fd, out + done, size - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      return ErrnoStatus(errno, absl::StrCat("audit log ", Sv(path), ": read"));
    }
    if (n == 0) {
      return absl::InternalError(absl::StrCat("audit log ", Sv(path), ": shrank while opening"));
    }
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::Status FsyncParentDir(const std::string& path) {
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : path.substr(0, slash == 0 ? 1 : slash);
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.Valid() || ::fsync(fd.Get()) != 0) {
    return ErrnoStatus(errno, absl::StrCat("audit log directory ", dir, ": fsync"));
  }
  return absl::OkStatus();
}

// Reads an existing file backwards, one line at a time, in growing chunks.
class TailReader {
 public:
  TailReader(int fd, uint64_t size, std::string_view path)
      : fd_(fd), buf_start_(size), path_(path) {}

  // The line that ends just before the '\n' at offset `newline`. Sets *start to its first byte.
  absl::StatusOr<std::string_view> LineBefore(uint64_t newline, uint64_t* start) {
    while (true) {
      std::string_view view(buf_);
      auto end = static_cast<size_t>(newline - buf_start_);
      size_t prev = end == 0 ? std::string_view::npos : view.rfind('\n', end - 1);
      if (prev != std::string_view::npos) {
        *start = buf_start_ + prev + 1;
        return view.substr(prev + 1, end - prev - 1);
      }
      if (buf_start_ == 0) {
        *start = 0;
        return view.substr(0, end);
      }
      uint64_t grow = std::min<uint64_t>(buf_start_, std::max(kTailChunkBytes, buf_.size()));
      std::string more(grow, '\0');
      MCPMW_RETURN_IF_ERROR(PreadExact(fd_, more.data(), more.size(), buf_start_ - grow, path_));
      buf_ = more + buf_;
      buf_start_ -= grow;
    }
  }

  // Makes sure bytes [offset, offset+1) are loaded and returns that byte.
  absl::StatusOr<char> ByteAt(uint64_t offset) {
    char c = 0;
    MCPMW_RETURN_IF_ERROR(PreadExact(fd_, &c, 1, offset, path_));
    return c;
  }

  // The offset of the last '\n' before `end`, or -1.
  absl::StatusOr<int64_t> LastNewlineBefore(uint64_t end) {
    uint64_t pos = end;
    std::string chunk;
    while (pos > 0) {
      uint64_t n = std::min<uint64_t>(pos, kTailChunkBytes);
      chunk.assign(n, '\0');
      MCPMW_RETURN_IF_ERROR(PreadExact(fd_, chunk.data(), n, pos - n, path_));
      size_t at = chunk.rfind('\n');
      if (at != std::string::npos) {
        return static_cast<int64_t>(pos - n + at);
      }
      pos -= n;
    }
    return -1;
  }

 private:
  int fd_;
  std::string buf_;  // bytes [buf_start_, size) of the file
  uint64_t buf_start_;
  std::string_view path_;
};

// The writer's wake word is a raw futex rather than std::atomic::wait because its nap needs a
// timeout. Both sides use these two, so every Wake reaches a nap or a sleep.
void FutexWait(std::atomic<uint32_t>* word, uint32_t expected,
               std::optional<std::chrono::microseconds> timeout) {
  static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t));
  struct timespec ts {};
  if (timeout) {
    ts.tv_sec = static_cast<time_t>(timeout->count() / 1000000);
    ts.tv_nsec =
        static_cast<long>(timeout->count() % 1000000) * 1000;  // NOLINT(google-runtime-int)
  }
  // EAGAIN (the word moved on), EINTR and ETIMEDOUT all mean "look again".
  ::syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT_PRIVATE, expected,
            timeout ? &ts : nullptr, nullptr, 0);
}

void FutexWake(std::atomic<uint32_t>* word) {
  ::syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr,
            0);
}

absl::Status NotAnAuditLog(std::string_view path, std::string_view why) {
  return absl::FailedPreconditionError(
      absl::StrCat("audit log ", Sv(path), " cannot be continued: ", Sv(why)));
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Producer

Producer::Producer(AuditSink* sink, size_t capacity)
    // Default-initialised: a slot's packed bytes are written before they are read.
    : sink_(sink), mask_(capacity - 1), slots_(new Slot[capacity]) {}

Producer::~Producer() = default;

absl::Status Producer::Append(std::string report_json) {
  uint64_t tail = 0;
  if (absl::Status room = Reserve(&tail); !room.ok()) {
    return room;
  }
  PublishJson(tail, std::move(report_json));
  return absl::OkStatus();
}

absl::Status Producer::Reserve(uint64_t* tail) {
  if (sink_->closed_.load(std::memory_order_acquire)) {
    return absl::FailedPreconditionError("audit sink is closed");
  }
  if (sink_->failed_.load(std::memory_order_acquire)) {
    return sink_->StickyError();
  }
  *tail = tail_.load(std::memory_order_relaxed);
  if (!HasRoom(*tail)) {
    // Full: wait for the writer (backpressure). It is awake, since the queue is not empty.
    blocked_.fetch_add(1, std::memory_order_relaxed);
    sink_->Wake();
    while (!HasRoom(*tail)) {
      head_.wait(cached_head_, std::memory_order_acquire);
    }
    // Closed or failed while this waited: the writer may already have drained for the last
    // time, and a report published now would be lost without a word.
    if (sink_->closed_.load(std::memory_order_acquire)) {
      return absl::FailedPreconditionError("audit sink is closed");
    }
    if (sink_->failed_.load(std::memory_order_acquire)) {
      return sink_->StickyError();
    }
  }
  return absl::OkStatus();
}

bool Producer::TryAppend(std::string& report_json) {
  if (sink_->closed_.load(std::memory_order_acquire) ||
      sink_->failed_.load(std::memory_order_acquire)) {
    return false;
  }
  uint64_t tail = tail_.load(std::memory_order_relaxed);
  if (!HasRoom(tail)) {
    return false;
  }
  PublishJson(tail, std::move(report_json));
  return true;
}

bool Producer::HasRoom(uint64_t tail) {
  if (tail - cached_head_ > mask_) {
    cached_head_ = head_.load(std::memory_order_acquire);
  }
  return tail - cached_head_ <= mask_;
}

void Producer::PublishJson(uint64_t tail, std::string report_json) {
  Slot& slot = slots_[tail & mask_];
  slot.render = nullptr;
  slot.json = std::move(report_json);
  Publish(tail);
}

void Producer::Publish(uint64_t tail) {
  // seq_cst pairs with the writer's idle_ store and tail loads (HasPending): either it sees this
  // report before sleeping, or this sees it idle and wakes it. A busy writer is left alone.
  tail_.store(tail + 1, std::memory_order_seq_cst);
  if (sink_->idle_.load(std::memory_order_seq_cst)) {
    sink_->Wake();
  }
}

// ---------------------------------------------------------------------------------------------
// Opening

absl::StatusOr<AuditSink::Chain> AuditSink::StartLog(int fd, const AuditOptions& options) {
  std::string header;
  AppendHeaderLine(HeaderLine{.alg = std::string(AlgName(options.signer->alg())),
                              .key_id = options.signer->key_id(),
                              .started = FormatTimestamp(options.wall_clock())},
                   &header);
  Chain chain;
  chain.prev_hash = Sha256Hex(header);
  header.push_back('\n');
  MCPMW_RETURN_IF_ERROR(WriteAll(fd, header, options.path));
  if (options.fsync != AuditOptions::FsyncPolicy::kNever) {
    if (::fdatasync(fd) != 0) {
      return ErrnoStatus(errno, absl::StrCat("audit log ", options.path, ": fdatasync"));
    }
    MCPMW_RETURN_IF_ERROR(FsyncParentDir(options.path));
  }
  return chain;
}

absl::StatusOr<AuditSink::Chain> AuditSink::ResumeLog(int fd, uint64_t size,
                                                      const AuditOptions& options) {
  const std::string& path = options.path;
  // Header: the first line, which is short.
  std::string head(std::min<uint64_t>(size, kHeaderReadBytes), '\0');
  MCPMW_RETURN_IF_ERROR(PreadExact(fd, head.data(), head.size(), 0, path));
  size_t header_end = head.find('\n');
  if (header_end == std::string::npos) {
    return NotAnAuditLog(path, "no header line");
  }
  std::string_view header_text = std::string_view(head).substr(0, header_end);
  absl::StatusOr<HeaderLine> header = ParseHeaderLine(header_text);
  if (!header.ok()) {
    return NotAnAuditLog(path, Sv(header.status().message()));
  }
  if (header->alg != AlgName(options.signer->alg()) || header->key_id != options.signer->key_id()) {
    return NotAnAuditLog(
        path, absl::StrCat("it is signed with ", header->alg, " key ", header->key_id,
                           ", this sink holds ", Sv(AlgName(options.signer->alg())), " key ",
                           options.signer->key_id()));
  }

  TailReader tail(fd, size, path);
  MCPMW_ASSIGN_OR_RETURN(char last_byte, tail.ByteAt(size - 1));
  if (last_byte != '\n') {
    MCPMW_ASSIGN_OR_RETURN(int64_t newline, tail.LastNewlineBefore(size));
    auto keep = static_cast<uint64_t>(newline + 1);
    if (!options.truncate_torn_tail) {
      return NotAnAuditLog(
          path, absl::StrCat("it ends with a torn line (no final newline) at byte ", keep,
                             ", left by a crash mid-write; inspect it, then truncate the file to ",
                             keep, " bytes or open with truncate_torn_tail"));
    }
    if (::ftruncate(fd, static_cast<off_t>(keep)) != 0) {
      return ErrnoStatus(errno, absl::StrCat("audit log ", path, ": ftruncate"));
    }
    LogError("audit log ", path, ": cut a torn final line of ", size - keep, " bytes at byte ",
             keep);
    size = keep;
    tail = TailReader(fd, size, path);
  }

  // Walk back to the last record and the last signature.
  Chain chain;
  chain.prev_hash = Sha256Hex(header_text);
  bool have_record = false;
  uint64_t newline = size - 1;
  while (true) {
    uint64_t start = 0;
    MCPMW_ASSIGN_OR_RETURN(std::string_view line, tail.LineBefore(newline, &start));
    if (start == 0) {
      break;  // the header: no signature before this point
    }
    LineKind kind = ClassifyLine(line);
    if (kind == LineKind::kRecord) {
      if (!have_record) {
        absl::StatusOr<RecordLine> record = ParseRecordLine(line);
        if (!record.ok()) {
          return NotAnAuditLog(path, absl::StrCat("byte ", start, ": ", record.status().message()));
        }
        chain.next_seq = record->seq + 1;
        chain.prev_hash = Sha256Hex(line);
        have_record = true;
      }
    } else if (kind == LineKind::kSignature) {
      absl::StatusOr<SignatureLine> sig = ParseSignatureLine(line);
      if (!sig.ok()) {
        return NotAnAuditLog(path, absl::StrCat("byte ", start, ": ", sig.status().message()));
      }
      if (!have_record) {
        chain.next_seq = sig->last + 1;
        chain.prev_hash = std::string(sig->head);
      }
      chain.next_segment = sig->segment + 1;
      chain.segment_first = sig->last + 1;
      break;
    } else {
      return NotAnAuditLog(path,
                           absl::StrCat("the line at byte ", start, " is not an audit log line"));
    }
    newline = start - 1;
  }
  if (chain.next_seq < chain.segment_first) {
    return NotAnAuditLog(path, "its last record comes before its last signature");
  }
  if (chain.next_seq > chain.segment_first) {
    // A writer stopped without signing these. Their chain is intact as far as anyone can tell,
    // but nothing authenticated them when they were written (the chain alone has no key): the
    // signature this writer puts over them says they were recovered, and verify reports it.
    chain.recovered_last = chain.next_seq - 1;
    LogError("audit log ", path, ": records ", chain.segment_first, "..", chain.next_seq - 1,
             " were left unsigned by a writer that did not close cleanly; the next segment "
             "signature covers them, marked as recovered");
  }
  return chain;
}

absl::StatusOr<std::unique_ptr<AuditSink>> AuditSink::Open(AuditOptions options) {
  if (options.path.empty()) {
    return absl::InvalidArgumentError("audit log path is empty");
  }
  if (!options.signer.has_value()) {
    return absl::InvalidArgumentError("audit log needs a signing key");
  }
  if (options.segment_records == 0 || options.queue_capacity == 0 || options.max_batch_bytes == 0) {
    return absl::InvalidArgumentError(
        "audit segment_records, queue_capacity and max_batch_bytes must be at least 1");
  }
  if (options.queue_capacity > kMaxQueueCapacity) {
    return absl::InvalidArgumentError(
        absl::StrCat("audit queue_capacity is above ", kMaxQueueCapacity));
  }
  options.queue_capacity = std::bit_ceil(options.queue_capacity);
  if (!options.wall_clock) {
    options.wall_clock = [] { return std::chrono::system_clock::now(); };
  }

  UniqueFd fd(::open(options.path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600));
  if (!fd.Valid()) {
    return ErrnoStatus(errno, absl::StrCat("audit log ", options.path, ": open"));
  }
  // One writer per file: a second sink on the same log would fork the chain.
  if (::flock(fd.Get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return absl::UnavailableError(
          absl::StrCat("audit log ", options.path, " is held by another writer"));
    }
    return ErrnoStatus(errno, absl::StrCat("audit log ", options.path, ": flock"));
  }
  struct stat st {};
  if (::fstat(fd.Get(), &st) != 0) {
    return ErrnoStatus(errno, absl::StrCat("audit log ", options.path, ": fstat"));
  }
  Chain chain;
  if (st.st_size == 0) {
    MCPMW_ASSIGN_OR_RETURN(chain, StartLog(fd.Get(), options));
  } else {
    MCPMW_ASSIGN_OR_RETURN(chain, ResumeLog(fd.Get(), static_cast<uint64_t>(st.st_size), options));
  }
  return std::unique_ptr<AuditSink>(
      new AuditSink(std::move(options), std::move(fd), std::move(chain)));
}

AuditSink::AuditSink(AuditOptions options, UniqueFd fd, Chain chain)
    : options_(std::move(options)),
      fd_(std::move(fd)),
      chain_(std::move(chain)),
      parser_(std::make_unique<simdjson::dom::parser>()),
      writer_([this] { WriterLoop(); }) {}

AuditSink::~AuditSink() {
  absl::Status status = Close();
  if (!status.ok()) {
    LogError("audit log ", options_.path, ": ", status.ToString());
  }
}

// ---------------------------------------------------------------------------------------------
// Control

absl::StatusOr<Producer*> AuditSink::NewProducer() {
  std::lock_guard lock(producers_mu_);
  if (closed_.load(std::memory_order_acquire)) {
    return absl::FailedPreconditionError("audit sink is closed");
  }
  producers_.push_back(std::unique_ptr<Producer>(new Producer(this, options_.queue_capacity)));
  return producers_.back().get();
}

void AuditSink::Wake() {
  wake_.fetch_add(1, std::memory_order_seq_cst);
  FutexWake(&wake_);
}

absl::Status AuditSink::Flush() {
  if (closed_.load(std::memory_order_acquire)) {
    // Close writes everything appended before it; one may still be doing so. Wait for it (Close
    // is idempotent) and report what it found.
    return Close();
  }
  std::vector<std::pair<Producer*, uint64_t>> targets;
  {
    std::lock_guard lock(producers_mu_);
    targets.reserve(producers_.size());
    for (const auto& producer : producers_) {
      targets.emplace_back(producer.get(), producer->tail_.load(std::memory_order_acquire));
    }
  }
  Wake();
  while (true) {
    uint64_t progress = progress_.load(std::memory_order_acquire);
    if (failed_.load(std::memory_order_acquire)) {
      return StickyError();
    }
    bool done = std::all_of(targets.begin(), targets.end(), [](const auto& target) {
      return target.first->written_.load(std::memory_order_acquire) >= target.second;
    });
    if (done) {
      return absl::OkStatus();
    }
    progress_.wait(progress, std::memory_order_acquire);
  }
}

absl::Status AuditSink::Close() {
  std::lock_guard close_lock(close_mu_);
  if (!closed_.exchange(true, std::memory_order_acq_rel)) {
    stopping_.store(true, std::memory_order_seq_cst);
    Wake();
    if (writer_.joinable()) {
      writer_.join();
    }
    std::lock_guard lock(status_mu_);
    close_status_ = status_;
  }
  std::lock_guard lock(status_mu_);
  return close_status_;
}

AuditSink::Stats AuditSink::stats() const {
  return Stats{.records = records_.load(std::memory_order_relaxed),
               .segments = segments_.load(std::memory_order_relaxed),
               .batches = batches_.load(std::memory_order_relaxed),
               .fsyncs = fsyncs_.load(std::memory_order_relaxed),
               .invalid_reports = invalid_reports_.load(std::memory_order_relaxed),
               .lost = lost_.load(std::memory_order_relaxed)};
}

void AuditSink::SetError(absl::Status status) {
  std::lock_guard lock(status_mu_);
  if (status_.ok()) {
    status_ = std::move(status);
    failed_.store(true, std::memory_order_release);
    LogError("audit log ", options_.path, ": ", status_.ToString(),
             "; later reports are discarded");
  }
}

absl::Status AuditSink::StickyError() const {
  std::lock_guard lock(status_mu_);
  return status_;
}

// ---------------------------------------------------------------------------------------------
// Writer thread

void AuditSink::WriterLoop() {
  // Named so that `top -H` and /proc show which thread is the audit writer.
  ::pthread_setname_np(::pthread_self(), "mcpmw-audit");
  if (options_.writer_nice != 0 &&
      ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), options_.writer_nice) != 0) {
    LogDebug("audit: cannot set the writer's nice value to ", options_.writer_nice, ": ",
             ErrnoText(errno));
  }
  while (true) {
    uint32_t epoch = wake_.load(std::memory_order_seq_cst);
    // Read before draining: everything appended before Close() set it is then drained below.
    bool stopping = stopping_.load(std::memory_order_seq_cst);
    size_t taken = Drain();
    bool backlog = batch_.size() >= options_.max_batch_bytes;  // the drain stopped early
    if (!batch_.empty()) {
      WriteBatch();
    }
    if (taken > 0) {
      if (backlog) {
        ::sched_yield();  // more is queued: take it after whoever waits for this CPU
      } else if (!stopping) {
        FutexWait(&wake_, epoch, options_.batch_interval);  // let the next batch gather
      }
      continue;
    }
    if (stopping) {
      break;
    }
    idle_.store(true, std::memory_order_seq_cst);
    if (!HasPending()) {
      FutexWait(&wake_, epoch, std::nullopt);
    }
    idle_.store(false, std::memory_order_relaxed);
  }
  if (chain_.next_seq > chain_.segment_first) {
    SignSegment();
  }
  if (!batch_.empty()) {
    WriteBatch();
  }
  if (options_.fsync != AuditOptions::FsyncPolicy::kNever && unsynced_ &&
      !failed_.load(std::memory_order_acquire)) {
    if (::fdatasync(fd_.Get()) != 0) {
      SetError(ErrnoStatus(errno, absl::StrCat("audit log ", options_.path, ": fdatasync")));
    } else {
      fsyncs_.fetch_add(1, std::memory_order_relaxed);
    }
  }
  progress_.fetch_add(1, std::memory_order_release);
  progress_.notify_all();
}

bool AuditSink::HasPending() const {
  // Every producer, not only those the last Drain knew of: one created since may have appended
  // while the writer was not yet idle, and so not have woken it. Checked only before sleeping.
  std::lock_guard lock(producers_mu_);
  return std::any_of(producers_.begin(), producers_.end(), [](const auto& p) {
    return p->tail_.load(std::memory_order_seq_cst) != p->head_.load(std::memory_order_relaxed);
  });
}

size_t AuditSink::Drain() {
  {
    std::lock_guard lock(producers_mu_);
    for (size_t i = writer_producers_.size(); i < producers_.size(); ++i) {
      writer_producers_.push_back(producers_[i].get());
      drained_through_.push_back(0);
    }
  }
  size_t taken = 0;
  std::string timestamp;  // one `ts` per drain: the records are sequenced within microseconds
  for (size_t i = 0; i < writer_producers_.size(); ++i) {
    Producer* producer = writer_producers_[i];
    uint64_t head = producer->head_.load(std::memory_order_relaxed);
    uint64_t tail = producer->tail_.load(std::memory_order_acquire);
    uint64_t start = head;
    while (head < tail && batch_.size() < options_.max_batch_bytes) {
      Producer::Slot& slot = producer->slots_[head & producer->mask_];
      if (timestamp.empty()) {
        timestamp = FormatTimestamp(options_.wall_clock());
      }
      if (slot.render != nullptr) {
        const bool inline_bytes = slot.packed_size <= Producer::kSlotBytes;
        std::string_view packed =
            inline_bytes ? std::string_view(slot.packed, slot.packed_size) : slot.json;
        if (options_.trusted_reports) {
          AppendRendered(slot.render, packed, timestamp);
        } else {
          rendered_.clear();
          slot.render(packed, &rendered_);
          AppendRecord(rendered_, timestamp);
        }
        if (!inline_bytes) {
          slot.json = std::string();
        }
      } else {
        AppendRecord(slot.json, timestamp);
        slot.json = std::string();
      }
      ++head;
    }
    if (head != start) {
      producer->head_.store(head, std::memory_order_release);
      producer->head_.notify_all();
      taken += head - start;
    }
    drained_through_[i] = head;
  }
  return taken;
}

void AuditSink::AppendRecord(std::string& report, std::string_view timestamp) {
  simdjson::dom::element ignored;
  std::string wrapped;
  std::string_view body = report;
  if (options_.trusted_reports) {
    // One line of valid JSON by the producer's contract.
  } else if (parser_->parse(report.data(), report.size(), true).get(ignored) != simdjson::SUCCESS) {
    wrapped = absl::StrCat(R"({"mcpmw_invalid_report":")", absl::Base64Escape(Sv(body)), "\"}");
    body = wrapped;
    invalid_reports_.fetch_add(1, std::memory_order_relaxed);
  } else {
    // Valid JSON holds '\n' and '\r' only as whitespace between tokens; a space means the same.
    std::replace_if(
        report.begin(), report.end(), [](char c) { return c == '\n' || c == '\r'; }, ' ');
  }
  size_t line_start = batch_.size();
  AppendRecordLine(chain_.next_seq, timestamp, chain_.prev_hash, body, &batch_);
  EndRecord(line_start);
}

void AuditSink::AppendRendered(PackedRenderer render, std::string_view packed,
                               std::string_view timestamp) {
  size_t line_start = batch_.size();
  AppendRecordLinePrefix(chain_.next_seq, timestamp, chain_.prev_hash, &batch_);
  render(packed, &batch_);
  batch_.push_back('}');
  EndRecord(line_start);
}

void AuditSink::EndRecord(size_t line_start) {
  chain_.prev_hash = Sha256Hex(std::string_view(batch_).substr(line_start));
  batch_.push_back('\n');
  ++chain_.next_seq;
  ++batch_records_;
  if (chain_.next_seq - chain_.segment_first >= options_.segment_records) {
    SignSegment();
  }
}

void AuditSink::SignSegment() {
  const Signer& signer = *options_.signer;
  std::string_view alg = AlgName(signer.alg());
  uint64_t last = chain_.next_seq - 1;
  const std::optional<uint64_t> recovered = chain_.recovered_last;
  absl::StatusOr<std::string> sig =
      signer.Sign(SigningInput(chain_.next_segment, chain_.segment_first, last, chain_.prev_hash,
                               alg, signer.key_id(), recovered));
  if (!sig.ok()) {
    SetError(sig.status());
    return;
  }
  AppendSignatureLine(SignatureLine{.segment = chain_.next_segment,
                                    .first = chain_.segment_first,
                                    .last = last,
                                    .head = chain_.prev_hash,
                                    .alg = alg,
                                    .key_id = signer.key_id(),
                                    .sig = *sig,
                                    .recovered = recovered},
                      &batch_);
  batch_.push_back('\n');
  chain_.recovered_last.reset();
  ++chain_.next_segment;
  chain_.segment_first = chain_.next_seq;
  ++batch_signatures_;
}

void AuditSink::WriteBatch() {
  uint64_t records = std::exchange(batch_records_, 0);
  uint64_t signatures = std::exchange(batch_signatures_, 0);
  if (failed_.load(std::memory_order_acquire)) {
    lost_.fetch_add(records, std::memory_order_relaxed);
  } else if (absl::Status status = WriteAll(fd_.Get(), batch_, options_.path); !status.ok()) {
    lost_.fetch_add(records, std::memory_order_relaxed);
    SetError(std::move(status));
  } else {
    batches_.fetch_add(1, std::memory_order_relaxed);
    records_.fetch_add(records, std::memory_order_relaxed);
    segments_.fetch_add(signatures, std::memory_order_relaxed);
    unsynced_ = true;
    bool sync = options_.fsync == AuditOptions::FsyncPolicy::kPerBatch ||
                (options_.fsync == AuditOptions::FsyncPolicy::kPerSegment && signatures > 0);
    if (sync) {
      if (::fdatasync(fd_.Get()) != 0) {
        SetError(ErrnoStatus(errno, absl::StrCat("audit log ", options_.path, ": fdatasync")));
      } else {
        fsyncs_.fetch_add(1, std::memory_order_relaxed);
        unsynced_ = false;
      }
    }
    if (!failed_.load(std::memory_order_acquire)) {
      for (size_t i = 0; i < writer_producers_.size(); ++i) {
        writer_producers_[i]->written_.store(drained_through_[i], std::memory_order_release);
      }
    }
  }
  batch_.clear();
  if (batch_.capacity() > 2 * options_.max_batch_bytes) {
    batch_.shrink_to_fit();
  }
  progress_.fetch_add(1, std::memory_order_release);
  progress_.notify_all();
}

}  // namespace mcpmw::audit
