-- Creates the data set's epoch when Redis has none (first start, or Redis
-- lost its data), or replaces it when a node finds Redis behind what it
-- applied (an old snapshot, a lagging replica): the log is no longer the
-- one clients recovered from, so it starts again, with `g` carried on.
-- KEYS: meta, bus, inbox (a new epoch starts with an empty log and inbox)
-- ARGV: epoch the caller knows ('' = none), new epoch, g to continue from
-- Returns {epoch, g} as they are afterwards.
local epoch = redis.call('HGET', KEYS[1], 'epoch')
local g = tonumber(redis.call('HGET', KEYS[1], 'g') or '0')
local replace = (not epoch) or (ARGV[1] ~= '' and epoch == ARGV[1] and g < tonumber(ARGV[3]))
if replace then
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
  g = math.max(g, tonumber(ARGV[3]))
  redis.call('HSET', KEYS[1], 'epoch', ARGV[2], 'g', g)
  return {ARGV[2], g}
end
return {epoch, g}
