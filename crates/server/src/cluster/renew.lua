-- Extends the lease if the caller still holds it. KEYS: leader; ARGV: token, ms
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
