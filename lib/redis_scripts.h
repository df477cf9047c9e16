#ifndef RATELIMIT_LIB_REDIS_SCRIPTS_H_
#define RATELIMIT_LIB_REDIS_SCRIPTS_H_

namespace ratelimit {

// Each script decides one request against one allowance, kept as a hash in KEYS[1], and mirrors
// the function of the same algorithm in algorithms.cc: change both together.
//
// ARGV: limit, window_ms, cost, spend ("1" or "0"), now_ms ("" takes the time from Redis).
// Returns {allowed (1 or 0), remaining, reset_after_ms, retry_after_ms}.
//
// Every write sets the key's TTL to how long its state matters. A given now_ms is a test's fake
// clock, which stands still while Redis expires keys by its own running clock, so keys then get
// an hour more (kept state that no longer applies is ignored by each script anyway).
//
// Numbers are written with string.format('%d'), since Redis would render large Lua numbers in
// exponent form.
inline constexpr char kFixedWindowScript[] = R"lua(
local start = now - (now % window)
local window_end = start + window

local used = 0
local stored = redis.call('HMGET', KEYS[1], 's', 'n')
if stored[1] and tonumber(stored[1]) == start then used = tonumber(stored[2]) end

local allowed = cost <= limit - used
if allowed and spend then
  used = used + cost
  redis.call('HSET', KEYS[1], 's', fmt(start), 'n', fmt(used))
  redis.call('PEXPIRE', KEYS[1], fmt(window_end - now + ttl_slack))
end

local remaining = limit - used
if allowed and not spend then remaining = remaining - cost end
if remaining < 0 then remaining = 0 end
local reset_after = 0
if used > 0 or (allowed and not spend) then reset_after = window_end - now end
local retry_after = 0
if not allowed then retry_after = window_end - now end
return {allowed and 1 or 0, remaining, reset_after, retry_after}
)lua";

// What every script starts with (RedisStore prepends it): the arguments, the time, and exact
// arithmetic on whole numbers held in doubles.
inline constexpr char kScriptPrelude[] = R"lua(
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local spend = ARGV[4] == '1'
local now, ttl_slack = 0, 0
if ARGV[5] ~= '' then
  now, ttl_slack = tonumber(ARGV[5]), 3600000
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function fmt(n) return string.format('%d', n) end

-- floor(a * b / c) and (a * b) mod c, exactly, for whole numbers 0 <= a, b < 2^53 and
-- 0 < c < 2^53 whose quotient is below 2^53. A double holds every whole number below 2^53, but
-- a * b may be far above it, so the product is built from b's bits, high to low, reduced mod c
-- at every step: each intermediate value stays below 2^53 (the C++ side uses 128-bit integers).
local function muldivmod(a, b, c)
  local ra = math.fmod(a, c)  -- fmod is exact; Lua's % is not for large operands
  local q, r = 0, 0  -- invariant: ra * (the bits of b taken so far) == q * c + r, 0 <= r < c
  local bit = 1
  while bit * 2 <= b do bit = bit * 2 end
  local rest = b
  while bit >= 1 do
    q = q * 2
    if r >= c - r then q, r = q + 1, r - (c - r) else r = r + r end
    if rest >= bit then
      rest = rest - bit
      if r >= c - ra then q, r = q + 1, r - (c - ra) else r = r + ra end
    end
    bit = bit / 2
  end
  return (a - ra) / c * b + q, r
end
)lua";

// The weighted two-window counter; mirrors EvaluateSlidingWindow. Hash fields: s (the start of
// the window n was counted in), n, and p (the count of the window before it).
inline constexpr char kSlidingWindowScript[] = R"lua(
local start = now - (now % window)
local overlap = start + window - 1 - now

local used, previous = 0, 0
local stored = redis.call('HMGET', KEYS[1], 's', 'n', 'p')
local stamp = tonumber(stored[1])
if stamp == start then
  used = tonumber(stored[2])
  previous = tonumber(stored[3]) or 0
elseif stamp == start - window then
  previous = tonumber(stored[2])
end
local weighted, share_rem = muldivmod(previous, overlap, window)
if share_rem > 0 then weighted = weighted + 1 end

local allowed = cost <= limit - used - weighted
local after = used
if allowed then after = used + cost end
if allowed and spend then
  redis.call('HSET', KEYS[1], 's', fmt(start), 'n', fmt(after), 'p', fmt(previous))
  redis.call('PEXPIRE', KEYS[1], fmt(overlap + window + ttl_slack))
end

local remaining = limit - after - weighted
if remaining < 0 then remaining = 0 end
local reset_after = 0
if after > 0 then
  reset_after = overlap + window
elseif weighted > 0 then
  reset_after = overlap
end
local retry_after = 0
if not allowed then
  if cost > limit then
    retry_after = overlap + 1
  elseif limit - used - cost >= 0 then
    retry_after = overlap - muldivmod(limit - used - cost, window, previous)
  else
    retry_after = overlap + window - muldivmod(limit - cost, window, used)
  end
end
return {allowed and 1 or 0, remaining, reset_after, retry_after}
)lua";

// GCRA; mirrors EvaluateTokenBucket. Hash fields: the theoretical arrival time (TAT) is
// exactly t + f / l ms, where l is the limit it was written under.
inline constexpr char kTokenBucketScript[] = R"lua(
-- The backlog, how far the TAT is ahead of now, as ms + frac / limit ms.
local ms, frac = 0, 0
local stored = redis.call('HMGET', KEYS[1], 't', 'f', 'l')
local per = tonumber(stored[3])
if per and per > 0 then
  ms = tonumber(stored[1]) - now
  frac = tonumber(stored[2])
  if ms < 0 or (ms == 0 and frac == 0) then
    ms, frac = 0, 0
  elseif ms >= window then
    ms, frac = window, 0
  elseif per ~= limit then
    -- The limit changed: the TAT stays, its fraction of a ms rounded up onto the 1/limit grid.
    local ticks, ticks_rem = muldivmod(frac, limit, per)
    if ticks_rem > 0 then ticks = ticks + 1 end
    if ticks == limit then ms, frac = ms + 1, 0 else frac = ticks end
  end
end

local allowed = false
local retry_after = window
if cost <= limit then
  local q, r = muldivmod(cost, window, limit)
  local need_ms, need_frac = ms + q, 0
  if frac >= limit - r then
    need_ms, need_frac = need_ms + 1, frac - (limit - r)
  else
    need_frac = frac + r
  end
  allowed = need_ms < window or (need_ms == window and need_frac == 0)
  if allowed then
    ms, frac = need_ms, need_frac
    retry_after = 0
  else
    retry_after = need_ms - window
    if need_frac > 0 then retry_after = retry_after + 1 end
  end
end

local reset_after = ms
if frac > 0 then reset_after = reset_after + 1 end
if allowed and spend then
  redis.call('HSET', KEYS[1], 't', fmt(now + ms), 'f', fmt(frac), 'l', fmt(limit))
  redis.call('PEXPIRE', KEYS[1], fmt(reset_after + ttl_slack))
end

-- Whole tokens left: ((window - ms) * limit - frac) / window, rounded down.
local remaining, rem = muldivmod(limit, window - ms, window)
if frac > rem then
  local over = frac - rem
  local over_rem = math.fmod(over, window)
  remaining = remaining - (over - over_rem) / window
  if over_rem > 0 then remaining = remaining - 1 end
end
return {allowed and 1 or 0, remaining, reset_after, retry_after}
)lua";

}  // namespace ratelimit

#endif  // RATELIMIT_LIB_REDIS_SCRIPTS_H_
