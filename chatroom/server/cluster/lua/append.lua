-- Append a batch of broadcast events, in order, each after the checks its type calls for:
-- one result per event, its seq or TAKEN / GONE / DUPLICATE (refusal reasons, defined in
-- Python before this text). A refused event changes nothing; the others still go on.
-- A user's id belongs to the node that joined it: another node can neither join a second
-- user under it (DUPLICATE) nor speak, rename or leave as that user (GONE).
-- KEYS: seq, events, users, names, nodes, epoch
-- ARGV: maxlen, node, the batch: a MessagePack array with one array per event: type,
--   body, user id, then for a join or a rename the user's json, its key and the old key
--   (a join sends ''); a message, action or leave stops after the id, but a message or
--   action sent as a request (rules/programs.py) has its request key fourth;
--   then the request keys' prefix and their TTL in milliseconds.
-- A request whose key is held (its id was seen within the TTL, on any node) is not
-- appended: its result is REPEATED followed by the seq its first try got.
local node = ARGV[2]

-- The users' records this batch has read, by id (false: none): a batch holds many lines of
-- few users, each decoded once. A join, rename or leave changes its user's: forgotten.
local known = {}
local function record(id)
  local rec = known[id]
  if rec == nil then
    local json = redis.call('HGET', KEYS[3], id)
    rec = json and cjson.decode(json) or false
    known[id] = rec
  end
  return rec
end

local function append_one(kind, body, id, json, key, old_key)
  local rec = record(id)
  if kind ~= 'message' and kind ~= 'action' then known[id] = nil end
  if rec and rec.node ~= node then
    if kind == 'join' then return DUPLICATE end
    return GONE
  end
  if kind == 'join' then
    local owner = redis.call('HGET', KEYS[4], key)
    if owner and owner ~= id then return TAKEN end
    if rec and rec.key ~= key and redis.call('HGET', KEYS[4], rec.key) == id then
      redis.call('HDEL', KEYS[4], rec.key)
    end
    redis.call('HSET', KEYS[3], id, json)
    redis.call('HSET', KEYS[4], key, id)
    redis.call('SADD', KEYS[5], node)
  elseif not rec then
    return GONE
  elseif kind == 'rename' then
    local owner = redis.call('HGET', KEYS[4], key)
    if owner and owner ~= id then return TAKEN end
    if old_key ~= key and redis.call('HGET', KEYS[4], old_key) == id then
      redis.call('HDEL', KEYS[4], old_key)
    end
    redis.call('HSET', KEYS[4], key, id)
    redis.call('HSET', KEYS[3], id, json)
  elseif kind == 'leave' then
    redis.call('HDEL', KEYS[3], id)
    if redis.call('HGET', KEYS[4], rec.key) == id then redis.call('HDEL', KEYS[4], rec.key) end
  end
  return append(body, node)
end

local results = {}
for i, item in ipairs(cmsgpack.unpack(ARGV[3])) do
  local request = nil
  if (item[1] == 'message' or item[1] == 'action') and item[4] then
    request = ARGV[4] .. item[4]
  end
  local first = request and redis.call('GET', request)
  if first then
    results[i] = REPEATED .. first
  else
    results[i] = append_one(item[1], item[2], item[3], item[4], item[5], item[6])
    if request and type(results[i]) == 'number' then
      redis.call('SET', request, results[i], 'PX', ARGV[5])
    end
  end
end
finish()
return results
