-- Append one broadcast event after the checks its type calls for, atomically: returns its
-- seq, or TAKEN / GONE / DUPLICATE (refusal reasons, defined in Python before this text).
-- A user's id belongs to the node that joined it: another node can neither join a second
-- user under it (DUPLICATE) nor speak, rename or leave as that user (GONE).
-- KEYS: seq, events, users, names, nodes, epoch
-- ARGV: maxlen, type, body, node, user id, user json, user key, old key
local kind, node, id = ARGV[2], ARGV[4], ARGV[5]
local old = redis.call('HGET', KEYS[3], id)
local rec = old and cjson.decode(old)
if rec and rec.node ~= node then
  if kind == 'join' then return DUPLICATE end
  return GONE
end
if kind == 'join' then
  local owner = redis.call('HGET', KEYS[4], ARGV[7])
  if owner and owner ~= id then return TAKEN end
  if rec and rec.key ~= ARGV[7] and redis.call('HGET', KEYS[4], rec.key) == id then
    redis.call('HDEL', KEYS[4], rec.key)
  end
  redis.call('HSET', KEYS[3], id, ARGV[6])
  redis.call('HSET', KEYS[4], ARGV[7], id)
  redis.call('SADD', KEYS[5], node)
elseif not rec then
  return GONE
elseif kind == 'rename' then
  local owner = redis.call('HGET', KEYS[4], ARGV[7])
  if owner and owner ~= id then return TAKEN end
  if ARGV[8] ~= ARGV[7] and redis.call('HGET', KEYS[4], ARGV[8]) == id then
    redis.call('HDEL', KEYS[4], ARGV[8])
  end
  redis.call('HSET', KEYS[4], ARGV[7], id)
  redis.call('HSET', KEYS[3], id, ARGV[6])
elseif kind == 'leave' then
  redis.call('HDEL', KEYS[3], id)
  if redis.call('HGET', KEYS[4], rec.key) == id then redis.call('HDEL', KEYS[4], rec.key) end
end
return append(ARGV[3], node)
