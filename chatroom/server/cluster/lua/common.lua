-- Shared by the scripts that append to the rooms' streams (see redis_ledger.py).
-- KEYS[1] seq, KEYS[2] events (the default room's), KEYS[3] users, KEYS[4] names,
-- KEYS[6] epoch; ARGV[1] the streams' MAXLEN. DEFAULT_ROOM, ROOM_LINGER (ms) and
-- EVENTS_PER_ENTRY are defined in Python before this text.
-- Every room is its own stream and seq: the default room's are KEYS[1] and KEYS[2] (the
-- keys of the one room there was before rooms); another room's are PREFIX.."room:"..ROOM..
-- ":seq" and ":events", in the same hash slot. PREFIX..'rooms' is a hash room -> how many
-- users are in it (the rooms in use); PREFIX..'rooms:log' a stream that tells the nodes
-- which rooms' streams to follow: field r, "+ROOM ID SEQ" when a room comes into use (read
-- its stream after ID; its seq was SEQ), "-ROOM ID" when it goes out of use (its last entry
-- is ID); PREFIX..'rooms:listed' the rooms every node keeps (--rooms): never expired.
local PREFIX = string.sub(KEYS[1], 1, -4)  -- 'chatroom:{ROOM}:' (KEYS[1] ends in 'seq')
local ROOMS, ROOM_LOG, LISTED = PREFIX .. 'rooms', PREFIX .. 'rooms:log', PREFIX .. 'rooms:listed'

local function room_keys(room)
  if room == DEFAULT_ROOM then return KEYS[1], KEYS[2] end
  return PREFIX .. 'room:' .. room .. ':seq', PREFIX .. 'room:' .. room .. ':events'
end

-- Append one event's body to its room's stream under that room's next seq; returns that
-- seq. Events go into a stream EVENTS_PER_ENTRY to an entry, as one field `e`: "SEQ NODE
-- BODY" lines joined by "\n" (a body is compact JSON, which has no raw newline, and a node
-- name has no spaces). One XADD per entry, not per event: it was half of Redis's time per
-- event, and a reader makes its strings per entry. `finish` adds what is still pending.
-- Each room's counter is read once per script call and written back by `finish`; the
-- epoch is made with the first seq of any room unless a snapshot made it first. Nothing
-- else runs between (a script is atomic).
local seqs, pending, last_ids, touched = {}, {}, {}, {}
local per_entry = tonumber(EVENTS_PER_ENTRY)

local function add_entry(room)
  local _, events = room_keys(room)
  last_ids[room] = redis.call('XADD', events, '*', 'e', table.concat(pending[room], '\n'))
  pending[room] = {}
end

local function append(room, body, node)
  local last_seq = seqs[room]
  if not last_seq then
    local seq_key = room_keys(room)
    last_seq = tonumber(redis.call('GET', seq_key) or '0')
    pending[room] = {}
    touched[#touched + 1] = room
  end
  last_seq = last_seq + 1
  seqs[room] = last_seq
  if last_seq == 1 then
    local now = redis.call('TIME')
    redis.call('SET', KEYS[6], now[1] .. '.' .. now[2], 'NX')
  end
  local lines = pending[room]
  lines[#lines + 1] = last_seq .. ' ' .. node .. ' ' .. body
  if #lines == per_entry then add_entry(room) end
  return last_seq
end

-- Rooms coming into use and going out of use in this script: room -> the room's last
-- stream id and seq when this script first changed its count (nil: not changed yet).
local was_used, before = {}, {}

local function count_changed(room)
  if was_used[room] ~= nil then return end
  was_used[room] = redis.call('HEXISTS', ROOMS, room) == 1
  if not was_used[room] then
    local seq_key, events = room_keys(room)
    local last = redis.call('XREVRANGE', events, '+', '-', 'COUNT', 1)
    before[room] = {#last > 0 and last[1][1] or '0-0', redis.call('GET', seq_key) or '0'}
  end
end

-- A user enters `room` / leaves it: the rooms in use count it.
local function enter(room)
  count_changed(room)
  redis.call('HINCRBY', ROOMS, room, 1)
end

local function leave_room(room)
  count_changed(room)
  if redis.call('HINCRBY', ROOMS, room, -1) <= 0 then redis.call('HDEL', ROOMS, room) end
end

-- A user record's rooms: " main dev " (keys have no spaces); a record of a server before
-- rooms has none: it is in the default room.
local function rooms_of(rec)
  return rec.rooms or (' ' .. DEFAULT_ROOM .. ' ')
end

-- Whether `rec` is in `room`; each record's rooms parsed once a script call (a batch is
-- many lines of few users): whoever changes a record forgets its entry.
local room_sets = {}
local function in_room(rec, room)
  local set = room_sets[rec.id]
  if not set then
    set = {}
    for key in string.gmatch(rooms_of(rec), '%S+') do set[key] = true end
    room_sets[rec.id] = set
  end
  return set[room] == true
end

local function without(rooms, room)
  local kept = ' '
  for key in string.gmatch(rooms, '%S+') do
    if key ~= room then kept = kept .. key .. ' ' end
  end
  return kept
end

-- Every script that appends ends with this: the pending events added, the counters
-- written back, each stream trimmed once to about ARGV[1] events (MAXLEN counts entries:
-- a busy room's hold EVENTS_PER_ENTRY each, a quiet one's fewer); then the rooms log says
-- which rooms came into use or went out of it. A room out of use keeps its keys for
-- ROOM_LINGER ms (the nodes read its last events meanwhile), then Redis drops them; the
-- default room and the listed ones keep theirs.
local function finish()
  for _, room in ipairs(touched) do
    if #pending[room] > 0 then add_entry(room) end
    local seq_key, events = room_keys(room)
    redis.call('SET', seq_key, seqs[room])
    redis.call('XTRIM', events, 'MAXLEN', '~', math.ceil(tonumber(ARGV[1]) / per_entry))
  end
  for room, used in pairs(was_used) do
    local now_used = redis.call('HEXISTS', ROOMS, room) == 1
    local seq_key, events = room_keys(room)
    local kept = room == DEFAULT_ROOM or redis.call('SISMEMBER', LISTED, room) == 1
    if now_used and not used then
      local from = before[room]
      redis.call('XADD', ROOM_LOG, 'MAXLEN', '~', 1000, '*', 'r',
                 '+' .. room .. ' ' .. from[1] .. ' ' .. from[2])
      if not kept then redis.call('PERSIST', seq_key); redis.call('PERSIST', events) end
    elseif used and not now_used then
      local last = last_ids[room]
      if not last then
        local found = redis.call('XREVRANGE', events, '+', '-', 'COUNT', 1)
        last = #found > 0 and found[1][1] or '0-0'
      end
      redis.call('XADD', ROOM_LOG, 'MAXLEN', '~', 1000, '*', 'r', '-' .. room .. ' ' .. last)
      if not kept then
        redis.call('PEXPIRE', seq_key, ROOM_LINGER)
        redis.call('PEXPIRE', events, ROOM_LINGER)
      end
    end
  end
end

-- The JSON text of the string s exactly as Python's json.dumps(s, ensure_ascii=False)
-- writes it: '"', '\' and C0 controls escaped, all else (DEL, non-ASCII) as it is. Not
-- cjson.encode, which also escapes '/' and DEL.
local JSON_ESCAPES = {['"'] = '\\"', ['\\'] = '\\\\', ['\b'] = '\\b', ['\f'] = '\\f',
                      ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t'}
local function json_escape(char)
  return JSON_ESCAPES[char] or string.format('\\u%04x', string.byte(char))
end
local function json_string(s)
  return '"' .. string.gsub(s, '[%z\1-\31"\\]', json_escape) .. '"'
end

-- A leave's body for `room`: Python encodes a leave with the room last, so the body it
-- hands a script is the part before `,"room":...}` (`head`) and this adds the room.
local function leave_body(head, room)
  return head .. ',"room":' .. json_string(room) .. '}'
end

-- `rec` (a user record) leaves every room it is in: a leave in each (its body `head` with
-- the user's id and name filled in: `parts` is {head, middle, tail} around them, or a
-- string, the body's head as it is), then its record and name claim go. Returns the seq
-- its leave got in `asked` (nil if it was not in it). A user in no room (between the part
-- and the join of a move) leaves `asked` (or the default room), in no room's count.
local function leave_everywhere(rec, parts, asked)
  local head = parts
  if type(parts) == 'table' then
    head = parts[1] .. json_string(rec.id) .. parts[2] .. json_string(rec.name) .. parts[3]
  end
  local seq, any = nil, false
  for room in string.gmatch(rooms_of(rec), '%S+') do
    leave_room(room)
    local got = append(room, leave_body(head, room), rec.node)
    if room == asked then seq = got end
    any = true
  end
  if not any then  -- between two rooms (a move): it leaves where it was asked to, as on one server
    local room = asked or DEFAULT_ROOM
    seq = append(room, leave_body(head, room), rec.node)
  end
  redis.call('HDEL', KEYS[3], rec.id)
  if redis.call('HGET', KEYS[4], rec.key) == rec.id then redis.call('HDEL', KEYS[4], rec.key) end
  return seq
end

-- Remove every user of the nodes in the set `nodes` and append its leaves, in id order;
-- returns how many users. The leave's body is Python's encoding of it, made by the caller
-- with the user's id and name left out: `head`, the id, `middle`, the name, `tail`, then
-- the room (so the reason, the key order and the float written for ts are Python's;
-- cjson would order the keys by hash and round ts to 14 digits).
local function leave_all(nodes, head, middle, tail)
  local dead = {}
  local all = redis.call('HGETALL', KEYS[3])
  for i = 1, #all, 2 do
    local rec = cjson.decode(all[i + 1])
    if nodes[rec.node] then dead[#dead + 1] = rec end
  end
  table.sort(dead, function(a, b) return a.id < b.id end)
  for _, rec in ipairs(dead) do leave_everywhere(rec, {head, middle, tail}) end
  return #dead
end
