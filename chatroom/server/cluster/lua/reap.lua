-- Remove every node whose heartbeat key expired, with a leave for each of its users;
-- returns how many users left (a leave in each of their rooms).
-- KEYS: seq, events, users, names, nodes, epoch
-- ARGV: maxlen, heartbeat key prefix, then the leave body around id and name (see leave_all)
local dead, any = {}, false
for _, node in ipairs(redis.call('SMEMBERS', KEYS[5])) do
  if redis.call('EXISTS', ARGV[2] .. node) == 0 then dead[node] = true; any = true end
end
if not any then return 0 end
local n = leave_all(dead, ARGV[3], ARGV[4], ARGV[5])
for node in pairs(dead) do redis.call('SREM', KEYS[5], node) end
finish()
return n
