-- Live processes of one assetpay-async limiter key: how many share the quota, for the Redis outage mode.
--
-- KEYS[1]  a sorted set: member = one limiter instance (one process's grant stream), score = when its
--          announcement expires (Redis microseconds). The set itself expires a second after its last member.
-- ARGV[1]  op: "beat" (announce or renew) | "leave" (withdraw)
-- ARGV[2]  the member
-- ARGV[3]  lifetime of an announcement (us)
-- ARGV[4]  now (us) for tests; "" means Redis TIME
--
-- Returns the number of live members after the op (the caller included after a beat).

local key = KEYS[1]
local op = ARGV[1]
local member = ARGV[2]
local ttl = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
if now == nil then
  local time = redis.call('TIME')
  now = tonumber(time[1]) * 1000000 + tonumber(time[2])
end

redis.call('ZREMRANGEBYSCORE', key, '-inf', string.format('%.0f', now))
if op == 'beat' then
  redis.call('ZADD', key, string.format('%.0f', now + ttl), member)
elseif op == 'leave' then
  redis.call('ZREM', key, member)
else
  return redis.error_reply('assetpay peers: unknown op ' .. tostring(op))
end
local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
if last[2] == nil then
  return 0
end
local left_us = tonumber(last[2]) - now
if left_us < 0 then left_us = 0 end
redis.call('PEXPIRE', key, string.format('%.0f', math.ceil(left_us / 1000) + 1000))
return redis.call('ZCARD', key)
