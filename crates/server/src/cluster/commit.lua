-- One commit group of the leader, checked and appended atomically.
-- KEYS: meta, leader, bus
-- ARGV: token, epoch, expected g, bus maxlen, inbox id ('' = none), entry,
--       n, then n triples (topic epoch, offset before the group, last offset),
--       m, then m epochs of removed topics (their offsets are forgotten)
-- Every check comes before any write: Redis does not roll a script back.
local lease = redis.call('GET', KEYS[2])
if lease ~= ARGV[1] then
  return redis.error_reply('NOT_LEADER the lease is held by ' .. tostring(lease))
end
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if epoch ~= ARGV[2] then
  return redis.error_reply('EPOCH the log is in epoch ' .. tostring(epoch))
end
local g = tonumber(redis.call('HGET', KEYS[1], 'g') or '0')
if g ~= tonumber(ARGV[3]) then
  return redis.error_reply('SEQUENCE the log is at ' .. g .. ', the leader at ' .. ARGV[3])
end
local n = tonumber(ARGV[7])
for i = 0, n - 1 do
  local base = 8 + 3 * i
  local current = redis.call('HGET', KEYS[1], 'o:' .. ARGV[base])
  if current and tonumber(current) ~= tonumber(ARGV[base + 1]) then
    return redis.error_reply('OFFSET ' .. ARGV[base] .. ' is at ' .. current ..
      ', the leader continues after ' .. ARGV[base + 1])
  end
end
local retired = 8 + 3 * n
for j = 1, tonumber(ARGV[retired] or '0') do
  redis.call('HDEL', KEYS[1], 'o:' .. ARGV[retired + j])
end
for i = 0, n - 1 do
  local base = 8 + 3 * i
  redis.call('HSET', KEYS[1], 'o:' .. ARGV[base], ARGV[base + 2])
end
if ARGV[5] ~= '' then
  redis.call('HSET', KEYS[1], 'in', ARGV[5])
end
g = g + 1
redis.call('HSET', KEYS[1], 'g', g)
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], g .. '-0', 'd', ARGV[6])
return g
