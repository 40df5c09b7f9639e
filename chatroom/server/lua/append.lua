-- Append one broadcast event after the checks its type calls for, atomically: returns its
-- seq, or TAKEN / GONE (refusal reasons, defined in Python before this text).
-- KEYS: seq, events, users, names, nodes
-- ARGV: maxlen, type, body, node, user id, user json, user key, old key
local kind, id = ARGV[2], ARGV[5]
if kind == 'join' then
  local owner = redis.call('HGET', KEYS[4], ARGV[7])
  if owner and owner ~= id then return TAKEN end
  local old = redis.call('HGET', KEYS[3], id)
  if old then
    local key = cjson.decode(old).key
    if key ~= ARGV[7] and redis.call('HGET', KEYS[4], key) == id then
      redis.call('HDEL', KEYS[4], key)
    end
  end
  redis.call('HSET', KEYS[3], id, ARGV[6])
  redis.call('HSET', KEYS[4], ARGV[7], id)
  redis.call('SADD', KEYS[5], ARGV[4])
elseif kind == 'rename' then
  if redis.call('HEXISTS', KEYS[3], id) == 0 then return GONE end
  local owner = redis.call('HGET', KEYS[4], ARGV[7])
  if owner and owner ~= id then return TAKEN end
  if ARGV[8] ~= ARGV[7] and redis.call('HGET', KEYS[4], ARGV[8]) == id then
    redis.call('HDEL', KEYS[4], ARGV[8])
  end
  redis.call('HSET', KEYS[4], ARGV[7], id)
  redis.call('HSET', KEYS[3], id, ARGV[6])
elseif kind == 'leave' then
  local old = redis.call('HGET', KEYS[3], id)
  if not old then return GONE end
  local key = cjson.decode(old).key
  redis.call('HDEL', KEYS[3], id)
  if redis.call('HGET', KEYS[4], key) == id then redis.call('HDEL', KEYS[4], key) end
else
  if redis.call('HEXISTS', KEYS[3], id) == 0 then return GONE end
end
return append(ARGV[3], ARGV[4])
