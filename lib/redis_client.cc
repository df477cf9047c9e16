#include "lib/redis_client.h"

#include <event2/event.h>
#include <event2/thread.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <mutex>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "lib/logging.h"

namespace ratelimit {

struct RedisClient::Request {
  RedisArgs args;
  // One of the two is set: Command's reply is copied into a RedisReply, Eval's read as integers.
  Callback done;
  IntegersCallback done_integers;
  ScriptId script = -1;
  int num_keys = 0;
  bool sent_as_eval = false;
  // Handshake commands go out before the connection counts as ready.
  bool internal = false;
  // Set once a callback has run (a timeout answers before the reply arrives).
  bool finished = false;
  absl::Time deadline;
  Request* older = nullptr;
  Request* newer = nullptr;
  bool linked = false;

  void Fail(const absl::Status& status) {
    if (std::exchange(finished, true)) return;
    if (done_integers) {
      IntegersCallback callback = std::move(done_integers);
      callback(status);
    } else {
      Callback callback = std::move(done);
      callback(status);
    }
  }

  void Answer(const redisReply* reply) {
    if (std::exchange(finished, true)) return;
    if (done_integers) {
      IntegersCallback callback = std::move(done_integers);
      callback(ToRedisIntegers(reply));
    } else {
      Callback callback = std::move(done);
      callback(ToRedisReply(reply));
    }
  }
};

namespace {

timeval TimevalOf(absl::Duration d) { return absl::ToTimeval(std::max(d, absl::ZeroDuration())); }

void EnableLibeventThreads() {
  static std::once_flag once;
  std::call_once(once, [] { evthread_use_pthreads(); });
}

// Appends one RESP bulk string made of `pieces`. The header goes in as one piece: every
// std::string::append is an out-of-line call, and this runs nine times per check.
void AppendBulk(std::string& out, std::initializer_list<absl::string_view> pieces) {
  size_t size = 0;
  for (absl::string_view piece : pieces) size += piece.size();
  char header[24] = {'$'};
  char* end = std::to_chars(header + 1, header + sizeof(header) - 2, size).ptr;
  *end++ = '\r';
  *end++ = '\n';
  out.append(header, end - header);
  for (absl::string_view piece : pieces) out.append(piece.data(), piece.size());
  out.append("\r\n", 2);
}

}  // namespace

RedisArgs& RedisArgs::AddJoined(std::initializer_list<absl::string_view> pieces) {
  AppendBulk(wire_, pieces);
  ++count_;
  return *this;
}

RedisReply ToRedisReply(const redisReply* r) {
  RedisReply out;
  switch (r->type) {
    case REDIS_REPLY_INTEGER:
      out.type = RedisReply::Type::kInteger;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_STRING:
      out.type = RedisReply::Type::kString;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = RedisReply::Type::kStatus;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = RedisReply::Type::kError;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::kArray;
      out.elements.reserve(r->elements);
      for (size_t i = 0; i < r->elements; ++i) out.elements.push_back(ToRedisReply(r->element[i]));
      break;
    default:
      out.type = RedisReply::Type::kNil;
      break;
  }
  return out;
}

absl::Status RedisContextError(int err, const char* errstr) {
  const std::string detail = errstr != nullptr && errstr[0] != '\0' ? errstr : "no detail";
  switch (err) {
    case 0:
      return absl::UnavailableError("redis: connection closed");
    case REDIS_ERR_IO:
      return absl::UnavailableError(absl::StrCat("redis: I/O error: ", detail));
    case REDIS_ERR_EOF:
      return absl::UnavailableError("redis: server closed the connection");
    case REDIS_ERR_PROTOCOL:
      return absl::UnavailableError(absl::StrCat("redis: protocol error: ", detail));
    default:
      return absl::UnavailableError(absl::StrCat("redis: ", detail));
  }
}

namespace {

absl::Status ErrorReplyStatus(absl::string_view message) {
  if (absl::StartsWith(message, "WRONGPASS") || absl::StartsWith(message, "NOAUTH") ||
      absl::StartsWith(message, "ERR invalid password") || absl::StartsWith(message, "ERR AUTH")) {
    return absl::PermissionDeniedError(absl::StrCat("redis rejected the login: ", message));
  }
  return absl::InternalError(absl::StrCat("redis replied with an error: ", message));
}

}  // namespace

absl::Status RedisReplyError(const RedisReply& reply) {
  if (reply.type != RedisReply::Type::kError) return absl::OkStatus();
  return ErrorReplyStatus(reply.str);
}

absl::Status RedisReplyError(const redisReply* reply) {
  if (reply->type != REDIS_REPLY_ERROR) return absl::OkStatus();
  return ErrorReplyStatus(absl::string_view(reply->str, reply->len));
}

absl::StatusOr<RedisIntegers> ToRedisIntegers(const redisReply* reply) {
  if (absl::Status error = RedisReplyError(reply); !error.ok()) return error;
  if (reply->type != REDIS_REPLY_ARRAY) {
    return absl::InternalError("redis: the script's reply has an unexpected shape");
  }
  RedisIntegers integers(reply->elements);
  for (size_t i = 0; i < reply->elements; ++i) {
    if (reply->element[i]->type != REDIS_REPLY_INTEGER) {
      return absl::InternalError("redis: the script's reply holds a non-integer");
    }
    integers[i] = reply->element[i]->integer;
  }
  return integers;
}

RedisClient::RedisClient(Options options)
    : options_(std::move(options)), backoff_(options_.min_backoff) {
  EnableLibeventThreads();
  base_ = event_base_new();
  wake_event_ = event_new(base_, -1, 0, &RedisClient::OnWake, this);
  tick_event_ = event_new(base_, -1, EV_PERSIST, &RedisClient::OnTick, this);
  reconnect_event_ = evtimer_new(base_, &RedisClient::OnReconnectTimer, this);
}

RedisClient::~RedisClient() {
  Stop();
  event_free(reconnect_event_);
  event_free(tick_event_);
  event_free(wake_event_);
  event_base_free(base_);
}

RedisClient::ScriptId RedisClient::RegisterScript(std::string body) {
  script_bodies_.push_back(std::move(body));
  script_shas_.emplace_back();
  return static_cast<ScriptId>(script_bodies_.size() - 1);
}

void RedisClient::Start() {
  started_ = true;
  // Timeouts are checked on a tick: a tenth of the timeout keeps the overshoot small.
  const absl::Duration tick =
      std::clamp(options_.command_timeout / 10, absl::Milliseconds(1), absl::Milliseconds(20));
  const timeval tv = TimevalOf(tick);
  evtimer_add(tick_event_, &tv);
  Connect();
  loop_ = std::thread([this] { event_base_dispatch(base_); });
}

void RedisClient::Stop() {
  {
    absl::MutexLock lock(&queue_mu_);
    if (stopped_) return;
    stopped_ = true;
  }
  if (started_) {
    // The loop sees stopped_ on its next wake, fails what it holds and exits.
    event_active(wake_event_, EV_READ, 0);
    loop_.join();
  } else {
    DrainQueue();
  }
}

void RedisClient::Command(RedisArgs args, Callback done) {
  auto request = std::make_unique<Request>();
  request->args = std::move(args);
  request->done = std::move(done);
  Enqueue(std::move(request));
}

void RedisClient::Command(const std::vector<std::string>& args, Callback done) {
  RedisArgs wire;
  for (const std::string& arg : args) wire.Add(arg);
  Command(std::move(wire), std::move(done));
}

void RedisClient::Eval(ScriptId script, int num_keys, RedisArgs keys_and_args,
                       IntegersCallback done) {
  auto request = std::make_unique<Request>();
  request->args = std::move(keys_and_args);
  request->done_integers = std::move(done);
  request->script = script;
  request->num_keys = num_keys;
  Enqueue(std::move(request));
}

void RedisClient::Enqueue(std::unique_ptr<Request> request) {
  std::unique_ptr<Request> refused;
  bool wake = false;
  {
    absl::MutexLock lock(&queue_mu_);
    if (stopped_) {
      refused = std::move(request);
    } else {
      wake = queue_.empty();
      queue_.push_back(std::move(request));
    }
  }
  if (refused != nullptr) {
    refused->Fail(absl::UnavailableError("redis: client stopped"));
    return;
  }
  // One wake-up serves every command queued before the loop drains.
  if (wake) event_active(wake_event_, EV_READ, 0);
}

void RedisClient::OnWake(int, short, void* arg) {
  auto* self = static_cast<RedisClient*>(arg);
  bool stopped;
  {
    absl::MutexLock lock(&self->queue_mu_);
    stopped = self->stopped_;
  }
  if (!stopped) {
    self->DrainQueue();
    return;
  }

  // Stop: free the connection (hiredis answers its pending callbacks with no reply), fail
  // the queue, leave the loop.
  self->stopping_ = true;
  evtimer_del(self->reconnect_event_);
  evtimer_del(self->tick_event_);
  if (redisAsyncContext* context = std::exchange(self->context_, nullptr)) redisAsyncFree(context);
  self->connected_.store(false, std::memory_order_release);
  self->DrainQueue();
  event_base_loopbreak(self->base_);
}

void RedisClient::DrainQueue() {
  std::vector<std::unique_ptr<Request>> batch;
  {
    absl::MutexLock lock(&queue_mu_);
    batch.swap(queue_);
  }
  for (auto& request : batch) {
    if (stopping_ || !started_) {
      request->Fail(absl::UnavailableError("redis: client stopped"));
    } else {
      Dispatch(std::move(request));
    }
  }
}

void RedisClient::Dispatch(std::unique_ptr<Request> request) {
  if (context_ == nullptr || (state_ != ConnState::kReady && !request->internal)) {
    request->Fail(absl::UnavailableError(
        last_problem_.empty() ? "redis: not connected"
                              : absl::StrCat("redis: not connected: ", last_problem_)));
    return;
  }

  // The arguments are already in Redis's wire protocol; only the header is written here, into
  // a buffer that keeps its memory from one command to the next. (hiredis's own formatter
  // spends a few thousand instructions per command in printf-style code.)
  std::string& command = command_buffer_;
  command.clear();
  const bool script = request->script >= 0;
  const absl::AlphaNum count((script ? 3 : 0) + request->args.count());
  command.append("*", 1).append(count.data(), count.size()).append("\r\n", 2);
  if (script) {
    const bool eval = request->sent_as_eval || script_shas_[request->script].empty();
    request->sent_as_eval = eval;
    AppendBulk(command, {eval ? "EVAL" : "EVALSHA"});
    AppendBulk(command, {eval ? script_bodies_[request->script] : script_shas_[request->script]});
    AppendBulk(command, {absl::AlphaNum(request->num_keys).Piece()});
  }
  const absl::string_view args = request->args.wire();
  command.append(args.data(), args.size());

  // hiredis owns the request until OnReply, unless it refuses the command.
  Request* raw = request.release();
  if (redisAsyncFormattedCommand(context_, &RedisClient::OnReply, raw, command.data(),
                                 command.size()) != REDIS_OK) {
    std::unique_ptr<Request>(raw)->Fail(absl::UnavailableError("redis: connection is closing"));
    return;
  }
  raw->deadline = absl::Now() + options_.command_timeout;
  LinkPending(raw);
}

void RedisClient::OnReply(redisAsyncContext* ac, void* reply, void* privdata) {
  auto* self = static_cast<RedisClient*>(ac->data);
  std::unique_ptr<Request> request(static_cast<Request*>(privdata));
  self->UnlinkPending(request.get());
  if (request->finished) return;
  if (reply == nullptr) {
    request->Fail(RedisContextError(ac->err, ac->errstr));
    return;
  }
  const auto* r = static_cast<const redisReply*>(reply);

  // The script cache is gone (SCRIPT FLUSH, or a restart that lost it): send the body, which
  // also caches it again. This is not a failure of Redis.
  if (r->type == REDIS_REPLY_ERROR && request->script >= 0 && !request->sent_as_eval &&
      absl::StartsWith(absl::string_view(r->str, r->len), "NOSCRIPT")) {
    request->sent_as_eval = true;
    self->Dispatch(std::move(request));
    return;
  }
  request->Answer(r);
}

void RedisClient::LinkPending(Request* request) {
  request->older = pending_tail_;
  request->newer = nullptr;
  if (pending_tail_ != nullptr)
    pending_tail_->newer = request;
  else
    pending_head_ = request;
  pending_tail_ = request;
  request->linked = true;
}

void RedisClient::UnlinkPending(Request* request) {
  if (!request->linked) return;
  if (request->older != nullptr)
    request->older->newer = request->newer;
  else
    pending_head_ = request->newer;
  if (request->newer != nullptr)
    request->newer->older = request->older;
  else
    pending_tail_ = request->older;
  request->linked = false;
}

void RedisClient::ExpireRequests(absl::Time now) {
  // The request stays with hiredis, which frees it when the late reply (or the disconnect)
  // arrives; only its callback runs now.
  while (pending_head_ != nullptr && pending_head_->deadline <= now) {
    Request* request = pending_head_;
    UnlinkPending(request);
    request->Fail(absl::DeadlineExceededError(
        absl::StrCat("redis: no reply within ", absl::FormatDuration(options_.command_timeout))));
  }
}

void RedisClient::OnTick(int, short, void* arg) {
  auto* self = static_cast<RedisClient*>(arg);
  const absl::Time now = absl::Now();
  self->ExpireRequests(now);
  if ((self->state_ == ConnState::kConnecting || self->state_ == ConnState::kHandshaking) &&
      now > self->connect_deadline_) {
    self->HandshakeFailed(absl::DeadlineExceededError(absl::StrCat(
        "redis: could not connect within ", absl::FormatDuration(self->options_.connect_timeout))));
  }
}

void RedisClient::Connect() {
  if (stopping_) return;
  const RedisEndpoint& endpoint = options_.endpoint;
  redisAsyncContext* context = redisAsyncConnect(endpoint.host.c_str(), endpoint.port);
  if (context == nullptr) {
    ReportProblem(absl::ResourceExhaustedError("redis: cannot allocate a connection"));
    ScheduleReconnect();
    return;
  }
  if (context->err != 0) {
    ReportProblem(RedisContextError(context->err, context->errstr));
    redisAsyncFree(context);
    ScheduleReconnect();
    return;
  }
  context->data = this;
  redisLibeventAttach(context, base_);
  redisAsyncSetConnectCallback(context, &RedisClient::OnConnect);
  redisAsyncSetDisconnectCallback(context, &RedisClient::OnDisconnect);
  context_ = context;
  state_ = ConnState::kConnecting;
  connect_deadline_ = absl::Now() + options_.connect_timeout;
}

void RedisClient::OnConnect(const redisAsyncContext* ac, int status) {
  auto* self = static_cast<RedisClient*>(ac->data);
  if (self->context_ != ac) return;
  if (status != REDIS_OK) {
    // hiredis frees the context after this callback.
    self->context_ = nullptr;
    self->ConnectionGone(RedisContextError(ac->err, ac->errstr));
    return;
  }
  self->Handshake();
}

void RedisClient::Handshake() {
  state_ = ConnState::kHandshaking;

  // Log in, select the database and load every script, pipelined; the connection is ready
  // when the last reply is good.
  struct HandshakeCommand {
    RedisArgs args;
    int script = -1;  // The script whose SHA the reply is.
  };
  std::vector<HandshakeCommand> commands;
  const RedisEndpoint& endpoint = options_.endpoint;
  if (!endpoint.password.empty()) {
    RedisArgs& auth = commands.emplace_back().args.Add("AUTH");
    if (!endpoint.username.empty()) auth.Add(endpoint.username);
    auth.Add(endpoint.password);
  }
  if (endpoint.db != 0) commands.emplace_back().args.Add("SELECT").Add(endpoint.db);
  for (size_t i = 0; i < script_bodies_.size(); ++i) {
    HandshakeCommand& load = commands.emplace_back();
    load.args.Add("SCRIPT").Add("LOAD").Add(script_bodies_[i]);
    load.script = static_cast<int>(i);
  }
  commands.emplace_back().args.Add("PING");

  auto remaining = std::make_shared<size_t>(commands.size());
  auto failed = std::make_shared<bool>(false);
  redisAsyncContext* context = context_;
  for (HandshakeCommand& command : commands) {
    auto request = std::make_unique<Request>();
    request->internal = true;
    request->args = std::move(command.args);
    request->done = [this, context, remaining, failed,
                     script = command.script](absl::StatusOr<RedisReply> reply) {
      if (*failed || context_ != context) return;
      absl::Status status = reply.ok() ? RedisReplyError(*reply) : reply.status();
      if (!status.ok()) {
        *failed = true;
        HandshakeFailed(status);
        return;
      }
      if (script >= 0) script_shas_[script] = reply->str;
      if (--*remaining > 0) return;

      state_ = ConnState::kReady;
      backoff_ = options_.min_backoff;
      last_problem_.clear();
      connected_.store(true, std::memory_order_release);
      spdlog::info("redis connected to {}", RedactedUrl(options_.endpoint));
    };
    Dispatch(std::move(request));
  }
}

void RedisClient::HandshakeFailed(const absl::Status& status) {
  redisAsyncContext* context = std::exchange(context_, nullptr);
  ConnectionGone(status);
  if (context == nullptr) return;
  // This may run inside a hiredis callback, where the context must not be freed: free it from
  // the loop once the callback has returned.
  event_base_once(
      base_, -1, EV_TIMEOUT,
      [](int, short, void* arg) { redisAsyncFree(static_cast<redisAsyncContext*>(arg)); }, context,
      nullptr);
}

void RedisClient::OnDisconnect(const redisAsyncContext* ac, int status) {
  auto* self = static_cast<RedisClient*>(ac->data);
  if (self->context_ != ac) return;  // Already given up on.
  self->context_ = nullptr;
  self->ConnectionGone(status == REDIS_OK ? absl::UnavailableError("redis: disconnected")
                                          : RedisContextError(ac->err, ac->errstr));
}

void RedisClient::ConnectionGone(const absl::Status& status) {
  const bool was_ready = state_ == ConnState::kReady;
  state_ = ConnState::kDisconnected;
  connected_.store(false, std::memory_order_release);
  if (stopping_) return;
  if (was_ready) {
    spdlog::warn("redis connection to {} lost: {}", RedactedUrl(options_.endpoint),
                 status.message());
    last_problem_ = std::string(status.message());
  } else {
    ReportProblem(status);
  }
  ScheduleReconnect();
}

void RedisClient::ReportProblem(const absl::Status& status) {
  // Retries repeat the same failure; say it once, and again only when it changes.
  if (status.message() == last_problem_) return;
  last_problem_ = std::string(status.message());
  spdlog::warn("redis at {} unavailable: {}", RedactedUrl(options_.endpoint), status.message());
}

void RedisClient::ScheduleReconnect() {
  if (stopping_ || reconnect_scheduled_) return;
  reconnect_scheduled_ = true;
  const timeval tv = TimevalOf(backoff_);
  evtimer_add(reconnect_event_, &tv);
  backoff_ = std::min(backoff_ * 2, options_.max_backoff);
}

void RedisClient::OnReconnectTimer(int, short, void* arg) {
  auto* self = static_cast<RedisClient*>(arg);
  self->reconnect_scheduled_ = false;
  self->Connect();
}

}  // namespace ratelimit
