-- Append a batch of broadcast events, in order, each after the checks its type calls for:
-- one result per event, its seq in its room or TAKEN / GONE / DUPLICATE / ROOM_LIMIT
-- (refusal reasons, defined in Python before this text). A refused event changes nothing;
-- the others still go on. A user's record says which rooms it is in: a message, action,
-- rename or part in a room it is not in is GONE; a join into a room not in use past
-- MAX_ROOMS rooms in use is ROOM_LIMIT; a leave that is not a part or a kick leaves every
-- room it is in (a leave in each) and frees its name.
-- A user's id belongs to the node that joined it: another node can neither join a second
-- user under it (DUPLICATE) nor speak, rename or leave as that user (GONE).
-- KEYS: seq, events, users, names, nodes, epoch
-- ARGV: maxlen, node, the batch: a MessagePack array with one array per event: type,
--   body, user id, then for a join or a rename the user's json, its key and the old key
--   (a join sends ''); a message, action or leave stops after the id, but a message or
--   action sent as a request (rules/programs.py) has its request key fourth, and a leave
--   'part' (it leaves this room only, its name kept) or 'one' (this room only: a kick;
--   its name goes with its last room) fourth; without either it leaves every room. A
--   leave's body is its head (leave_body adds the room).
--   An event of a room other than the default room has the room last: seventh for a
--   join or rename, fifth for the others (the fourth then '' if there is none);
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

local results = {}
for i, item in ipairs(cmsgpack.unpack(ARGV[3])) do
  local request = nil
  if (item[1] == 'message' or item[1] == 'action') and item[4] and item[4] ~= '' then
    request = ARGV[4] .. item[4]
  end
  local first = request and redis.call('GET', request)
  if first then
    results[i] = REPEATED .. first
  else
    results[i] = append_one(item[1], item[2], item[3], item[4], item[5], item[6], room_of(item))
    if request and type(results[i]) == 'number' then
      redis.call('SET', request, results[i], 'PX', ARGV[5])
    end
  end
end
finish()
return results
