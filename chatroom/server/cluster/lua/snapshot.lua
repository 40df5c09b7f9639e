-- The users, the epoch, the rooms log's last id, and for each room in use (the default
-- room, the rooms the users are in, and the rooms named in ARGV) its stream's last id
-- ('0-0' if empty), its seq and the seq of its stream's first event (0 if empty; 1 if it
-- was never trimmed), read at once.
-- The epoch is made here if the ledger has none yet (nothing appended, or a ledger of an
-- older version), and made anew if the ledger is the one this node knew (ARGV[1]) but a
-- room's seq is below what this node saw (ARGV: room, seq pairs after the epoch): Redis
-- came back from an older snapshot.
-- KEYS: seq, events, users, epoch (the default room's seq and events)
-- ARGV: the epoch this node knew ('' if none), then room, last seq applied, ... (the
--   default room first)
local prefix = string.sub(KEYS[1], 1, -4)
local function room_keys(room, first)
  if first then return KEYS[1], KEYS[2] end
  return prefix .. 'room:' .. room .. ':seq', prefix .. 'room:' .. room .. ':events'
end
local rooms, seen = {}, {}
local back_in_time = false
for i = 2, #ARGV, 2 do
  local room = ARGV[i]
  if not seen[room] then
    seen[room] = true
    rooms[#rooms + 1] = room
    local seq_key = room_keys(room, i == 2)
    if tonumber(redis.call('GET', seq_key) or '0') < tonumber(ARGV[i + 1]) then
      back_in_time = true
    end
  end
end
for _, room in ipairs(redis.call('HKEYS', prefix .. 'rooms')) do
  if not seen[room] then seen[room] = true; rooms[#rooms + 1] = room end
end
local epoch = redis.call('GET', KEYS[4])
if not epoch or (epoch == ARGV[1] and back_in_time) then
  local now = redis.call('TIME')
  epoch = now[1] .. '.' .. now[2]
  redis.call('SET', KEYS[4], epoch)
end
local found = {}
for i, room in ipairs(rooms) do
  local seq_key, events = room_keys(room, i == 1)
  local last = redis.call('XREVRANGE', events, '+', '-', 'COUNT', 1)
  local first = redis.call('XRANGE', events, '-', '+', 'COUNT', 1)
  local first_seq = 0
  if #first > 0 then first_seq = tonumber(string.match(first[1][2][2] or '', '^(%d+) ')) or 0 end
  found[#found + 1] = room
  found[#found + 1] = #last > 0 and last[1][1] or '0-0'
  found[#found + 1] = tonumber(redis.call('GET', seq_key) or '0')
  found[#found + 1] = first_seq
end
local log = redis.call('XREVRANGE', prefix .. 'rooms:log', '+', '-', 'COUNT', 1)
return {redis.call('HGETALL', KEYS[3]), epoch, #log > 0 and log[1][1] or '0-0', found}
