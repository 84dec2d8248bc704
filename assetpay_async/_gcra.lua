-- GCRA (generic cell rate algorithm) for one (merchant, route group) limiter key of assetpay-async.
--
-- All times are integer microseconds of Redis TIME: one clock for every process and host. The key is a
-- hash with two fields:
--   tat     theoretical arrival time; the next slot is due at tat - tolerance
--   paused  end of the latest 429 pause (only ever moves forward)
-- and expires a second after both have passed (an expired key and an idle key behave the same).
--
-- ARGV[1]  op: "acquire" | "pause" | "refund"
-- ARGV[2]  emission interval g (us), passed on every call: no migration when the quota changes
-- ARGV[3]  burst B >= 1; tolerance = (B - 1) * g
-- ARGV[4]  now (us) for tests; "" means Redis TIME
--
-- acquire  ARGV[5] a reserved slot to confirm before use (-1: none): void if a pause began after it
--          was reserved, or if the key was lost (restart, flush, eviction).
--          ARGV[6] reserve the next slot if it is due within this many us (-1: whatever the wait,
--          -2: reserve nothing). Reserving moves tat on by g at once.
--          ARGV[7] (optional) the longest pause (us) to believe: a pause stored further ahead (by an older
--          client, or with another bound) is cut to now + this, and the schedule moves back with it.
--          Returns {confirmed (1, 0 = void, -1 = nothing to confirm), reserved (1/0), wait, slot, tat,
--          generation}: the generation is the server's run_id ("" where INFO is not available), which
--          changes when the server restarts or another one takes over (failover): the schedule the
--          caller used may not be there.
-- pause    ARGV[5] penalty (us): no slot is due before now + penalty. Returns the pause left (us).
-- refund   ARGV[5] the tat a reservation left: gives its slot back if nobody reserved after it.
--          Returns 1 if it did, else 0.

local key = KEYS[1]
local op = ARGV[1]
local interval = tonumber(ARGV[2])
local tolerance = (tonumber(ARGV[3]) - 1) * interval
local now = tonumber(ARGV[4])
if now == nil then
  local time = redis.call('TIME')
  now = tonumber(time[1]) * 1000000 + tonumber(time[2])
end

local state = redis.call('HMGET', key, 'tat', 'paused')
local exists = state[1] ~= false
local tat = tonumber(state[1]) or now
local paused = tonumber(state[2]) or 0

-- '%.0f' keeps every digit: Lua 5.1 would print a bare number with 14 significant digits.
local function store(new_tat, new_paused)
  redis.call('HSET', key, 'tat', string.format('%.0f', new_tat), 'paused', string.format('%.0f', new_paused))
  local ttl_us = math.max(new_tat, new_paused) - now
  if ttl_us < 0 then ttl_us = 0 end
  redis.call('PEXPIRE', key, string.format('%.0f', math.ceil(ttl_us / 1000) + 1000))
end

local function generation()
  local info = redis.pcall('INFO', 'server')
  if type(info) ~= 'string' then return '' end
  return string.match(info, 'run_id:(%x+)') or ''
end

if op == 'acquire' then
  local confirm = tonumber(ARGV[5])
  local within = tonumber(ARGV[6])
  local max_pause = tonumber(ARGV[7])
  if max_pause ~= nil and paused > now + max_pause then
    local shift = paused - (now + max_pause)
    paused = paused - shift
    tat = math.max(now, tat - shift)
    store(tat, paused)
  end
  local confirmed = -1
  if confirm >= 0 then
    confirmed = (exists and paused <= confirm) and 1 or 0
  end
  if within == -2 then
    return {confirmed, 0, 0, 0, tat, generation()}
  end
  local base = math.max(tat, now)
  local wait = math.max(base - tolerance - now, 0)
  if within >= 0 and wait > within then
    return {confirmed, 0, wait, now + wait, tat, generation()}
  end
  store(base + interval, paused)
  return {confirmed, 1, wait, now + wait, base + interval, generation()}
elseif op == 'pause' then
  paused = math.max(paused, now + tonumber(ARGV[5]))
  store(math.max(tat, paused + tolerance), paused)
  return paused - now
elseif op == 'refund' then
  if exists and tat == tonumber(ARGV[5]) then
    store(tat - interval, paused)
    return 1
  end
  return 0
end
return redis.error_reply('assetpay GCRA: unknown op ' .. tostring(op))
