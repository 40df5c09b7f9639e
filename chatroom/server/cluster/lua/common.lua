-- Shared by the scripts that append to the room's stream (see redis_ledger.py).
-- KEYS[1] seq, KEYS[2] events, KEYS[3] users, KEYS[4] names, KEYS[6] epoch;
-- ARGV[1] the stream's MAXLEN.

-- Append one event's body to the stream under the next seq; returns that seq. Events go
-- into the stream EVENTS_PER_ENTRY (defined in Python) to an entry, as one field `e`:
-- "SEQ NODE BODY" lines joined by "\n" (a body is compact JSON, which has no raw newline,
-- and a node name has no spaces). One XADD per entry, not per event: it was half of
-- Redis's time per event, and a reader makes its strings per entry. `finish` adds what is
-- still pending. The counter is read once per script call and written back by `finish`;
-- it is made with the first seq, and the ledger's epoch with it unless a snapshot made it
-- first. Nothing else runs between (a script is atomic).
local last_seq = nil
local pending = {}
local per_entry = tonumber(EVENTS_PER_ENTRY)

local function add_entry()
  redis.call('XADD', KEYS[2], '*', 'e', table.concat(pending, '\n'))
  pending = {}
end

local function append(body, node)
  if not last_seq then last_seq = tonumber(redis.call('GET', KEYS[1]) or '0') end
  last_seq = last_seq + 1
  if last_seq == 1 then
    local now = redis.call('TIME')
    redis.call('SET', KEYS[6], now[1] .. '.' .. now[2], 'NX')
  end
  pending[#pending + 1] = last_seq .. ' ' .. node .. ' ' .. body
  if #pending == per_entry then add_entry() end
  return last_seq
end

-- Every script that appends ends with this: the pending events added, the counter written
-- back, the stream trimmed once to about ARGV[1] events (MAXLEN counts entries: a busy
-- room's hold EVENTS_PER_ENTRY each, a quiet one's fewer).
local function finish()
  if #pending > 0 then add_entry() end
  if last_seq then
    redis.call('SET', KEYS[1], last_seq)
    redis.call('XTRIM', KEYS[2], 'MAXLEN', '~', math.ceil(tonumber(ARGV[1]) / per_entry))
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

-- Remove every user of the nodes in the set `nodes` (their record and name claim) and
-- append a leave for each, in id order; returns how many. The leave's body is Python's
-- encoding of it, made by the caller with the user's id and name left out: `head`, the
-- id, `middle`, the name, `tail` (so the reason, the key order and the float written for
-- ts are Python's; cjson would order the keys by hash and round ts to 14 digits).
local function leave_all(nodes, head, middle, tail)
  local dead = {}
  local all = redis.call('HGETALL', KEYS[3])
  for i = 1, #all, 2 do
    local rec = cjson.decode(all[i + 1])
    if nodes[rec.node] then dead[#dead + 1] = rec end
  end
  table.sort(dead, function(a, b) return a.id < b.id end)
  for _, rec in ipairs(dead) do
    redis.call('HDEL', KEYS[3], rec.id)
    if redis.call('HGET', KEYS[4], rec.key) == rec.id then
      redis.call('HDEL', KEYS[4], rec.key)
    end
    append(head .. json_string(rec.id) .. middle .. json_string(rec.name) .. tail, rec.node)
  end
  return #dead
end
