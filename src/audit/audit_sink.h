// mcpmw audit: the chained, signed, batched audit log writer.
//
// Last stop on the message path: chain.OnComplete ─► report stage ─► Producer::AppendPacked ─►
// (queue) ─► writer thread ─► file. A reactor packs its finished report into its own Producer's
// queue (or appends rendered JSON) and goes on; one writer thread per sink drains every
// producer, renders packed reports, numbers the records in drain order, chains and signs them
// (format: record.h, FORMAT.md) and writes each batch with one write(2), fsyncing as the
// FsyncPolicy says.
//
// Guarantees:
//   - Append and AppendPacked take no lock and make no system call unless the writer is asleep
//     (one futex wake) or the producer's queue is full. A full queue blocks the producer until
//     the writer catches up (backpressure): an audit log that silently dropped records under
//     load would not be an audit log. TryAppend is the non-blocking variant for callers that
//     prefer to decide.
//   - Records from one producer keep their order; records from different producers interleave
//     in drain order, and seq numbers that order.
//   - Flush() returns once every record appended (on any producer) before the call is written,
//     and fsynced when the policy is kPerBatch.
//   - Close() (and the destructor) writes everything appended before it, signs the final
//     partial segment, fsyncs unless the policy is kNever, and stops the writer. A clean
//     shutdown loses nothing.
//   - A write error is sticky: the writer keeps draining (so producers never deadlock) but
//     discards, counts the loss, and every later Append/Flush/Close returns the error.
//
// Reopening an existing log continues it: the header must name the same key, the chain goes on
// from the last record's hash, and segment numbers continue. Records left unsigned by a writer
// that did not close cleanly are covered by the next segment's signature. A torn final line
// (no trailing newline: a crash mid-write) is refused unless `truncate_torn_tail` is set, in
// which case it is cut off and reported on stderr.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "src/audit/signer.h"
#include "src/common/fd.h"

namespace simdjson::dom {
class parser;
}  // namespace simdjson::dom

namespace mcpmw::audit {

struct AuditOptions {
  enum class FsyncPolicy {
    kNever,       // leave it to the kernel; survives a process crash, not a power loss
    kPerSegment,  // fdatasync after each segment signature (and at Close)
    kPerBatch,    // fdatasync after every batch write: Flush() means durable
  };

  std::string path;
  // Signs every segment; also names the key in the header. Required.
  std::optional<Signer> signer;
  FsyncPolicy fsync = FsyncPolicy::kPerSegment;
  // Records per signed segment (at least 1). Close() signs a shorter final segment.
  size_t segment_records = 1000;
  // Reports each producer can hold before Append blocks; rounded up to a power of two. A slot
  // is 512 bytes (a packed report lives in it), so the default queue is 2 MiB per producer.
  size_t queue_capacity = 4096;
  // A batch stops growing past this many bytes (about 55 records by default, ~40 µs of work);
  // bounds the writer's buffer. With more queued, the writer yields the CPU between batches, so
  // a message-path thread that shares its CPU waits at most about one batch for it. 32 KiB kept
  // W=32 governed throughput level with 64 KiB and cut its p99 (6 interleaved runs: 156-169 µs
  // against 174-214 µs), likely because the writer is harder to preempt inside a long write(2).
  size_t max_batch_bytes = 32 * 1024;
  // The producers promise every report is one line of valid JSON (the report stage renders them
  // that way and its tests parse them), so the writer does not parse each one again. Leave false
  // for reports from anywhere else: an invalid one is then kept base64-wrapped.
  bool trusted_reports = false;
  // After a batch the writer naps this long before draining again, so under steady load records
  // are hashed and written in batches instead of one wake-up each. Producers wake the writer only
  // when it is idle, so a record reaches the file at most about this late; Flush, Close and a
  // full queue end the nap at once.
  std::chrono::microseconds batch_interval{1000};
  // The writer thread's nice value. It renders, hashes and writes every record off the message
  // path, so by default (19) it takes CPU the message path leaves idle rather than preempting
  // it; a full queue blocks the producer (which then leaves the CPU to it), so it cannot fall
  // more than queue_capacity records behind. 0 runs it as an equal of the message path.
  int writer_nice = 19;
  // On reopen, cut a torn final line instead of refusing to open.
  bool truncate_torn_tail = false;
  // Wall clock for the header's `started` and each record's `ts` (when the writer sequenced
  // it). Called on the writer thread and in Open. Null means std::chrono::system_clock.
  std::function<std::chrono::system_clock::time_point()> wall_clock;
};

class AuditSink;

// Appends the JSON of a report packed by its producer (Producer::AppendPacked): one value, on one
// line. Called on the writer thread, with the bytes the producer's `pack` wrote.
using PackedRenderer = void (*)(std::string_view packed, std::string* out);

// A single-producer handle: exactly one thread at a time may call Append/TryAppend/AppendPacked
// (typically one reactor thread, for its whole life). Owned by its AuditSink; valid until the
// sink is destroyed.
class Producer {
 public:
  // Bytes a packed report takes in its queue slot; a larger one goes to a heap buffer.
  static constexpr size_t kSlotBytes = 448;

  Producer(const Producer&) = delete;
  Producer& operator=(const Producer&) = delete;
  ~Producer();

  // Queues one report (one JSON value; newlines in it are turned into spaces so the record
  // stays one line, and anything that is not JSON is recorded base64-wrapped as
  // {"mcpmw_invalid_report":"…"}). Blocks only while the queue is full. FailedPrecondition
  // after Close(); the sink's sticky write error after a write failure.
  absl::Status Append(std::string report_json);

  // Queues a report the writer renders on its own thread: `pack(char* out)` writes exactly
  // `size` bytes, and the writer hands them to `render`. They are written straight into the
  // queue's slot (a heap buffer only when size > kSlotBytes), so a steady stream of packed
  // reports allocates nothing, and the producer's thread only writes memory the writer reads
  // next: nothing it must first fetch from the writer's cache. The rendered text is checked like
  // any other report unless the sink trusts its producers. Blocks and fails as Append does.
  template <typename Pack>
  absl::Status AppendPacked(size_t size, PackedRenderer render, Pack&& pack) {
    uint64_t tail = 0;
    if (absl::Status room = Reserve(&tail); !room.ok()) {
      return room;
    }
    Slot& slot = slots_[tail & mask_];
    slot.render = render;
    slot.packed_size = size;
    if (size <= kSlotBytes) {
      pack(slot.packed);
    } else {
      slot.json.resize(size);
      pack(slot.json.data());
    }
    Publish(tail);
    return absl::OkStatus();
  }

  // As Append but never blocks: false (leaving `report_json` untouched) when the queue is full
  // or the sink is closed or failed.
  bool TryAppend(std::string& report_json);

  // How many appends found the queue full and waited. Any thread.
  uint64_t blocked_appends() const { return blocked_.load(std::memory_order_relaxed); }

 private:
  friend class AuditSink;
  Producer(AuditSink* sink, size_t capacity);
  // One queued report. The writer leaves a slot it has taken with an empty `json`, so the
  // producer can fill a packed one by writing its fields without reading what was there.
  struct alignas(64) Slot {
    PackedRenderer render = nullptr;  // set: a packed report of packed_size bytes
    size_t packed_size = 0;
    std::string json;  // a rendered report, or a packed one larger than kSlotBytes
    char packed[kSlotBytes];
  };
  // Waits for room at the queue's tail (backpressure) and sets `*tail`; the sink's error when it
  // is closed or has failed.
  absl::Status Reserve(uint64_t* tail);
  // True when the slot at `tail` is free (the writer has taken the report it held); reads the
  // writer's head only when the cached one says the queue is full.
  bool HasRoom(uint64_t tail);
  // Hands the filled slot at `tail` to the writer.
  void Publish(uint64_t tail);
  // Fills the slot at `tail` with a rendered report and publishes it.
  void PublishJson(uint64_t tail, std::string report_json);

  AuditSink* const sink_;
  const size_t mask_;
  std::unique_ptr<Slot[]> slots_;
  uint64_t cached_head_ = 0;                      // producer thread only
  alignas(64) std::atomic<uint64_t> tail_{0};     // written by the producer
  alignas(64) std::atomic<uint64_t> head_{0};     // written by the writer
  alignas(64) std::atomic<uint64_t> written_{0};  // reports written (and synced per policy)
  std::atomic<uint64_t> blocked_{0};
};

class AuditSink {
 public:
  struct Stats {
    uint64_t records = 0;   // records written by this sink
    uint64_t segments = 0;  // segment signatures written by this sink
    uint64_t batches = 0;   // write(2) batches
    uint64_t fsyncs = 0;
    uint64_t invalid_reports = 0;  // reports that were not JSON and were wrapped
    uint64_t lost = 0;             // reports discarded after a write error
  };

  // Opens (creating with mode 0600, or continuing) the log at options.path and starts the
  // writer thread. InvalidArgument for bad options; FailedPrecondition when the existing file
  // was written with another key, is not an audit log, or has a torn tail; errno-derived codes
  // for I/O failures.
  static absl::StatusOr<std::unique_ptr<AuditSink>> Open(AuditOptions options);

  AuditSink(const AuditSink&) = delete;
  AuditSink& operator=(const AuditSink&) = delete;
  // Closes (see Close) if not yet closed; a failure is logged to stderr.
  ~AuditSink();

  // A new producer for one thread. Any thread; takes a lock (not on the message path).
  // FailedPrecondition after Close().
  absl::StatusOr<Producer*> NewProducer();

  // Waits until every report appended before the call (on any producer) is written, and
  // fsynced when the policy is kPerBatch. Any thread but a producer's own while its queue is
  // full. Returns the sticky write error if there is one.
  absl::Status Flush();

  // Writes everything appended before the call, signs the final partial segment, fsyncs (unless
  // kNever) and stops the writer. Producers must have stopped appending; appends after Close
  // fail. Idempotent: later calls return the first call's status.
  absl::Status Close();

  // Counters so far. Any thread.
  Stats stats() const;

 private:
  friend class Producer;
  struct Chain {
    uint64_t next_seq = 0;
    std::string prev_hash;
    uint64_t next_segment = 0;
    uint64_t segment_first = 0;  // first record not yet signed
    // The last of the records a reopened log held unsigned (segment_first..it): the next
    // signature marks them as recovered. Cleared once signed.
    std::optional<uint64_t> recovered_last;
  };

  // Writes the header of a new, empty log.
  static absl::StatusOr<Chain> StartLog(int fd, const AuditOptions& options);
  // Reads the header and the tail of an existing log to continue its chain.
  static absl::StatusOr<Chain> ResumeLog(int fd, uint64_t size, const AuditOptions& options);

  AuditSink(AuditOptions options, UniqueFd fd, Chain chain);
  void Wake();
  void WriterLoop();
  // Drains producers into batch_ (formatting and chaining); returns the reports taken.
  size_t Drain();
  // True when some known producer has reports the writer has not taken.
  bool HasPending() const;
  void AppendRecord(std::string& report, std::string_view timestamp);
  // A trusted packed report, rendered straight into the batch.
  void AppendRendered(PackedRenderer render, std::string_view packed, std::string_view timestamp);
  // Chains the record line batch_[line_start, end) and ends it; signs a full segment.
  void EndRecord(size_t line_start);
  void SignSegment();
  void WriteBatch();
  void SetError(absl::Status status);
  absl::Status StickyError() const;

  const AuditOptions options_;
  UniqueFd fd_;
  Chain chain_;  // writer thread only (after Open)

  mutable std::mutex producers_mu_;
  std::vector<std::unique_ptr<Producer>> producers_;  // guarded; entries never removed

  std::atomic<uint32_t> wake_{0};  // a futex: bumped by Wake(); the writer naps and sleeps on it
  std::atomic<bool> idle_{false};  // the writer is (about to be) asleep: producers must Wake()
  std::atomic<uint64_t> progress_{0};  // bumped by the writer after each batch; Flush waits
  std::atomic<bool> stopping_{false};
  std::atomic<bool> closed_{false};
  std::atomic<bool> failed_{false};
  std::mutex close_mu_;  // serialises Close()
  mutable std::mutex status_mu_;
  absl::Status status_;        // guarded by status_mu_: the first write error
  absl::Status close_status_;  // guarded by status_mu_

  // Writer thread state.
  std::unique_ptr<simdjson::dom::parser> parser_;  // checks each report is JSON
  std::string batch_;
  std::string rendered_;  // an untrusted packed report's text, reused
  uint64_t batch_records_ = 0;
  uint64_t batch_signatures_ = 0;
  bool unsynced_ = false;                  // written since the last fdatasync
  std::vector<uint64_t> drained_through_;  // per producer index: head after this batch
  std::vector<Producer*> writer_producers_;
  std::atomic<uint64_t> records_{0};
  std::atomic<uint64_t> segments_{0};
  std::atomic<uint64_t> batches_{0};
  std::atomic<uint64_t> fsyncs_{0};
  std::atomic<uint64_t> invalid_reports_{0};
  std::atomic<uint64_t> lost_{0};

  std::thread writer_;  // last: started once everything above exists
};

}  // namespace mcpmw::audit
