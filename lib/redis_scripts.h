#ifndef RATELIMIT_LIB_REDIS_SCRIPTS_H_
#define RATELIMIT_LIB_REDIS_SCRIPTS_H_

namespace ratelimit {

// Each script decides one request against one allowance, kept as a hash in KEYS[1], and mirrors
// the function of the same algorithm in algorithms.cc: change both together.
//
// ARGV: limit, window_ms, cost, spend ("1" or "0"), now_ms ("" takes the time from Redis).
// Returns {allowed (1 or 0), remaining, reset_after_ms, retry_after_ms}.
//
// Numbers are written with string.format('%d'), since Redis would render large Lua numbers in
// exponent form.
inline constexpr char kFixedWindowScript[] = R"lua(
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local spend = ARGV[4] == '1'
local now
if ARGV[5] ~= '' then
  now = tonumber(ARGV[5])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local start = now - (now % window)
local window_end = start + window

local used = 0
local stored = redis.call('HMGET', KEYS[1], 's', 'n')
if stored[1] and tonumber(stored[1]) == start then used = tonumber(stored[2]) end

local allowed = cost <= limit - used
if allowed and spend then
  used = used + cost
  redis.call('HSET', KEYS[1], 's', string.format('%d', start), 'n', string.format('%d', used))
  redis.call('PEXPIRE', KEYS[1], string.format('%d', window_end - now))
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

}  // namespace ratelimit

#endif  // RATELIMIT_LIB_REDIS_SCRIPTS_H_
