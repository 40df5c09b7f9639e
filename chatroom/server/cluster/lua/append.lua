-- Append a batch of broadcast events, in order, each after the checks its type calls for:
-- one result per event, its seq in its room or TAKEN / GONE / DUPLICATE / ROOM_LIMIT
-- (refusal reasons, defined in Python before this text). A refused event changes nothing;
-- the others still go on. A user's record says which rooms it is in: a message, action,
-- rename or part in a room it is not in is GONE; a join into a room not in use past
-- MAX_ROOMS rooms in use is ROOM_LIMIT; a leave that is not a part or a kick leaves every
-- room it is in (a leave in each) and frees its name.
-- A user's id belongs to the node that joined it: another node can neither join a second
-- user under it (DUPLICATE) nor speak, rename or leave as that user (GONE).
-- KEYS: seq, events, users, names, nodes, epoch, requests, request order
-- ARGV: maxlen, node, the batch: a MessagePack array with one array per event: type,
--   body, user id, then for a join or a rename the user's json, its key and the old key
--   (a join sends ''); a message, action or leave stops after the id, but a message or
--   action sent as a request (rules/programs.py) has its request key fourth, and a leave
--   'part' (it leaves this room only, its name kept) or 'one' (this room only: a kick;
--   its name goes with its last room) fourth; without either it leaves every room. A
--   leave's body is its head (leave_body adds the room).
--   An event of a room other than the default room has the room last: seventh for a
--   join or rename, fifth for the others (the fourth then '' if there is none);
--   then the requests' TTL in milliseconds and how many are kept at most.
-- A request whose key is held (its id was seen within the TTL, on any node) is not
-- appended: its result is REPEATED followed by the seq its first try got.
-- The request keys seen are one hash (key -> "SEQ EXPIRES_MS") and one sorted set (key by
-- EXPIRES_MS), bounded in time and in count: expired ones go first, then the oldest past
-- the cap, so a flood of ids leaves at most the cap (the room's config: request_table).
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

local function append_one(kind, body, id, json, key, old_key, room)
  local rec = record(id)
  if kind ~= 'message' and kind ~= 'action' then known[id] = nil; room_sets[id] = nil end
  if rec and rec.node ~= node then
    if kind == 'join' then return DUPLICATE end
    return GONE
  end
  if kind == 'join' then
    local owner = redis.call('HGET', KEYS[4], key)
    if owner and owner ~= id then return TAKEN end
    local rooms = rec and rooms_of(rec) or ' '
    local new_here = not string.find(rooms, ' ' .. room .. ' ', 1, true)
    if new_here and redis.call('HEXISTS', PREFIX .. 'rooms', room) == 0
        and room ~= DEFAULT_ROOM and redis.call('HLEN', PREFIX .. 'rooms') >= tonumber(MAX_ROOMS)
        and redis.call('SISMEMBER', PREFIX .. 'rooms:listed', room) == 0 then
      return ROOM_LIMIT
    end
    if rec and rec.key ~= key and redis.call('HGET', KEYS[4], rec.key) == id then
      redis.call('HDEL', KEYS[4], rec.key)
    end
    local user = cjson.decode(json)
    if new_here then
      rooms = rooms .. room .. ' '
      enter(room)
    end
    user.rooms = rooms
    redis.call('HSET', KEYS[3], id, cjson.encode(user))
    redis.call('HSET', KEYS[4], key, id)
    redis.call('SADD', KEYS[5], node)
  elseif not rec then
    return GONE
  elseif kind == 'leave' and json ~= 'part' and json ~= 'one' then  -- every room: gone
    return leave_everywhere(rec, body, room) or GONE
  elseif not in_room(rec, room) then
    return GONE
  elseif kind == 'rename' then
    local owner = redis.call('HGET', KEYS[4], key)
    if owner and owner ~= id then return TAKEN end
    if old_key ~= key and redis.call('HGET', KEYS[4], old_key) == id then
      redis.call('HDEL', KEYS[4], old_key)
    end
    local user = cjson.decode(json)
    user.rooms = rooms_of(rec)
    redis.call('HSET', KEYS[4], key, id)
    redis.call('HSET', KEYS[3], id, cjson.encode(user))
  elseif kind == 'leave' then  -- this room only: a part keeps its name, a kick unless last
    rec.rooms = without(rooms_of(rec), room)
    if rec.rooms == ' ' and json ~= 'part' then
      redis.call('HDEL', KEYS[3], id)
      if redis.call('HGET', KEYS[4], rec.key) == id then redis.call('HDEL', KEYS[4], rec.key) end
    else
      redis.call('HSET', KEYS[3], id, cjson.encode(rec))
    end
    leave_room(room)
    body = leave_body(body, room)
  end
  return append(room, body, node)
end

-- Where an item names its room (docs: scripts.append_item): last, when it is not the
-- default room's.
local function room_of(item)
  local n = #item
  if item[1] == 'join' or item[1] == 'rename' then
    if n >= 7 then return item[7] end
  elseif n >= 5 then
    return item[5]
  end
  return DEFAULT_ROOM
end

local request_ttl, request_cap = tonumber(ARGV[4]), tonumber(ARGV[5])
local now_ms = nil  -- Redis's clock, read once, only for a batch with a request
local function clock()
  if not now_ms then
    local now = redis.call('TIME')
    now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
  end
  return now_ms
end

-- The seq the request `key` got, if it was seen and has not expired.
local function seen(key)
  local kept = redis.call('HGET', KEYS[7], key)
  if not kept then return nil end
  local seq, expires = string.match(kept, '^(%d+) (%d+)$')
  if expires and tonumber(expires) > clock() then return seq end
  return nil
end

local remembered = false
local function remember(key, seq)
  local expires = clock() + request_ttl
  redis.call('HSET', KEYS[7], key, string.format('%d %d', seq, expires))
  redis.call('ZADD', KEYS[8], expires, key)
  remembered = true
end

-- The expired keys (a bounded number a call: the cap holds them anyway) and those past
-- the cap, oldest first, forgotten; both keys expire with the last request.
local function bound_requests()
  local gone = redis.call('ZRANGEBYSCORE', KEYS[8], '-inf', clock(), 'LIMIT', 0, 1000)
  local over = redis.call('ZCARD', KEYS[8]) - #gone - request_cap
  if over > 0 then
    local popped = redis.call('ZRANGE', KEYS[8], #gone, #gone + over - 1)
    for _, key in ipairs(popped) do gone[#gone + 1] = key end
  end
  for first = 1, #gone, 1000 do
    local chunk = {unpack(gone, first, math.min(first + 999, #gone))}
    redis.call('ZREM', KEYS[8], unpack(chunk))
    redis.call('HDEL', KEYS[7], unpack(chunk))
  end
  redis.call('PEXPIRE', KEYS[7], request_ttl)
  redis.call('PEXPIRE', KEYS[8], request_ttl)
end

local results = {}
for i, item in ipairs(cmsgpack.unpack(ARGV[3])) do
  local request = nil
  if (item[1] == 'message' or item[1] == 'action') and item[4] and item[4] ~= '' then
    request = item[4]
  end
  local first = request and seen(request)
  if first then
    results[i] = REPEATED .. first
  else
    results[i] = append_one(item[1], item[2], item[3], item[4], item[5], item[6], room_of(item))
    if request and type(results[i]) == 'number' then remember(request, results[i]) end
  end
end
if remembered then bound_requests() end
finish()
return results
