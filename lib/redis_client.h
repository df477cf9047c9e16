#ifndef RATELIMIT_LIB_REDIS_CLIENT_H_
#define RATELIMIT_LIB_REDIS_CLIENT_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/inlined_vector.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "lib/redis_url.h"

struct event;
struct event_base;
struct redisAsyncContext;
struct redisReply;

namespace ratelimit {

// A Redis reply, owned. Error replies are values too: what they mean is the caller's business.
struct RedisReply {
  enum class Type { kNil, kInteger, kString, kStatus, kError, kArray };
  Type type = Type::kNil;
  int64_t integer = 0;
  std::string str;
  std::vector<RedisReply> elements;
};

// A script's reply read as an array of integers, what every script of this project returns: no
// allocation for up to four.
using RedisIntegers = absl::InlinedVector<int64_t, 4>;

// The arguments of one command, already in Redis's wire protocol (RESP bulk strings): a caller
// formats them once, on its own thread, into one buffer, and the client adds only the header.
class RedisArgs {
 public:
  RedisArgs() = default;
  // `bytes` is a guess of the encoded size, so that adding rarely reallocates.
  explicit RedisArgs(size_t bytes) { wire_.reserve(bytes); }

  RedisArgs& Add(absl::string_view arg) { return AddJoined({arg}); }
  RedisArgs& Add(int64_t arg) { return AddJoined({absl::AlphaNum(arg).Piece()}); }
  // One argument: the pieces one after the other, without building them into a string first.
  RedisArgs& AddJoined(std::initializer_list<absl::string_view> pieces);

  int count() const { return count_; }
  // `$<length>\r\n<bytes>\r\n` for each argument.
  absl::string_view wire() const { return wire_; }

 private:
  std::string wire_;
  int count_ = 0;
};

// One pipelined connection to Redis, driven by hiredis's asynchronous API on an event loop of
// its own, so that no caller's thread ever waits on Redis. Commands from all threads are queued
// and written to the socket together; each gets its reply, or a failure after the command
// timeout. A lost connection is re-established with backoff; until it is, commands fail at once.
//
// Thread-safe. Callbacks run on the client's event-loop thread and must not block.
//
// TODO: one connection carries every check; past what one Redis event loop can parse, a small
// pool of connections would be needed, and Redis Cluster would need slot routing on top.
class RedisClient {
 public:
  struct Options {
    RedisEndpoint endpoint;
    absl::Duration command_timeout = absl::Milliseconds(100);
    absl::Duration connect_timeout = absl::Seconds(1);
    absl::Duration min_backoff = absl::Milliseconds(50);
    absl::Duration max_backoff = absl::Seconds(2);
  };

  // Failures: DeadlineExceeded for a timeout, Unavailable when there is no connection.
  using Callback = std::function<void(absl::StatusOr<RedisReply>)>;
  using IntegersCallback = std::function<void(absl::StatusOr<RedisIntegers>)>;
  using ScriptId = int;

  explicit RedisClient(Options options);
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // Registers a Lua script to load on every connection. Call before Start().
  ScriptId RegisterScript(std::string body);

  // Starts the event loop and the first connection attempt.
  void Start();
  // Fails every queued command with Unavailable and stops the loop. Idempotent.
  void Stop();

  // Sends a command. `done` runs exactly once: on the loop thread, or on the caller's thread
  // when the client is stopped.
  void Command(RedisArgs args, Callback done);
  void Command(const std::vector<std::string>& args, Callback done);

  // Runs a registered script with EVALSHA; a NOSCRIPT reply (after SCRIPT FLUSH, or a Redis
  // restarted empty) sends the body with EVAL instead, invisibly to the caller. `keys_and_args`
  // holds the `num_keys` keys followed by the arguments. The script must return an array of
  // integers, which is read in place (see ToRedisIntegers) rather than copied into a RedisReply.
  void Eval(ScriptId script, int num_keys, RedisArgs keys_and_args, IntegersCallback done);

  // True while a connection is established and logged in.
  bool connected() const { return connected_.load(std::memory_order_acquire); }

 private:
  struct Request;
  enum class ConnState { kDisconnected, kConnecting, kHandshaking, kReady };

  // Everything below runs on the loop thread.
  static void OnWake(int fd, short what, void* arg);
  static void OnTick(int fd, short what, void* arg);
  static void OnReconnectTimer(int fd, short what, void* arg);
  static void OnConnect(const redisAsyncContext* ac, int status);
  static void OnDisconnect(const redisAsyncContext* ac, int status);
  static void OnReply(redisAsyncContext* ac, void* reply, void* privdata);

  void Enqueue(std::unique_ptr<Request> request);
  void DrainQueue();
  void Dispatch(std::unique_ptr<Request> request);
  void Connect();
  void Handshake();
  void HandshakeFailed(const absl::Status& status);
  void ConnectionGone(const absl::Status& status);
  void ScheduleReconnect();
  void ExpireRequests(absl::Time now);
  void LinkPending(Request* request);
  void UnlinkPending(Request* request);
  void ReportProblem(const absl::Status& status);

  const Options options_;
  std::vector<std::string> script_bodies_;
  std::vector<std::string> script_shas_;  // Filled by SCRIPT LOAD; loop thread only.
  // Loop thread only: each command is formatted here, so its memory is allocated once.
  std::string command_buffer_;

  event_base* base_ = nullptr;
  event* wake_event_ = nullptr;
  event* tick_event_ = nullptr;
  event* reconnect_event_ = nullptr;
  std::thread loop_;

  absl::Mutex queue_mu_;
  std::vector<std::unique_ptr<Request>> queue_ ABSL_GUARDED_BY(queue_mu_);
  bool stopped_ ABSL_GUARDED_BY(queue_mu_) = false;
  bool started_ = false;

  // Loop thread only.
  redisAsyncContext* context_ = nullptr;
  ConnState state_ = ConnState::kDisconnected;
  absl::Time connect_deadline_;
  absl::Duration backoff_;
  bool reconnect_scheduled_ = false;
  bool stopping_ = false;
  std::string last_problem_;
  // Commands sent and not yet answered, oldest first. Since every command gets the same timeout,
  // the oldest also expires first.
  Request* pending_head_ = nullptr;
  Request* pending_tail_ = nullptr;

  std::atomic<bool> connected_{false};
};

// Copies a hiredis reply into an owned RedisReply.
RedisReply ToRedisReply(const redisReply* reply);

// Reads a hiredis reply that should be an array of integers. Failures: an error reply as
// RedisReplyError says, any other shape Internal.
absl::StatusOr<RedisIntegers> ToRedisIntegers(const redisReply* reply);

// The single place that turns a failed Redis call into a status: hiredis's context error codes,
// timeouts and error replies (OK for any reply that is not an error).
absl::Status RedisContextError(int err, const char* errstr);
absl::Status RedisReplyError(const RedisReply& reply);
absl::Status RedisReplyError(const redisReply* reply);

}  // namespace ratelimit

#endif  // RATELIMIT_LIB_REDIS_CLIENT_H_
