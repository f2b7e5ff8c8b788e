-- Gives the lease up on a clean stop, if the caller holds it. KEYS: leader; ARGV: token
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
