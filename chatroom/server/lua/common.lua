-- Shared by the scripts that append to the room's stream (see redis_ledger.py).
-- KEYS[1] seq, KEYS[2] events, KEYS[3] users, KEYS[4] names, KEYS[6] epoch;
-- ARGV[1] the stream's MAXLEN.

-- Append one event's body to the stream under the next seq, as one field `e`: "SEQ NODE
-- BODY" (one field, not three: a reader gets a third of the strings to make, and a node
-- name has no spaces); returns that seq. The counter
-- is read once per script call and written back by `finish` (one GET and one SET however
-- many events a batch appends); it is made with the first seq, and the ledger's epoch with
-- it unless a snapshot made it first. Nothing else runs between (a script is atomic).
local last_seq = nil
local function append(body, node)
  if not last_seq then last_seq = tonumber(redis.call('GET', KEYS[1]) or '0') end
  last_seq = last_seq + 1
  if last_seq == 1 then
    local now = redis.call('TIME')
    redis.call('SET', KEYS[6], now[1] .. '.' .. now[2], 'NX')
  end
  redis.call('XADD', KEYS[2], '*', 'e', last_seq .. ' ' .. node .. ' ' .. body)
  return last_seq
end

-- Every script that appends ends with this: the counter written back, the stream trimmed
-- to about its MAXLEN (ARGV[1]) once.
local function finish()
  if last_seq then
    redis.call('SET', KEYS[1], last_seq)
    redis.call('XTRIM', KEYS[2], 'MAXLEN', '~', ARGV[1])
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
