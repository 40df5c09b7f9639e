-- The users, the stream's last id ('0-0' if empty), the seq, the epoch and the seq of the
-- stream's first event (0 if empty; 1 if it was never trimmed), read at once.
-- The epoch is made here if the ledger has none yet (nothing appended, or a ledger of an
-- older version), and made anew if the ledger is the one this node knew (ARGV[1]) but its
-- seq is below what this node saw (ARGV[2]): Redis came back from an older snapshot.
-- KEYS: seq, events, users, epoch
-- ARGV: the epoch this node knew ('' if none), the last seq it applied
local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
local last_id = '0-0'
if #last > 0 then last_id = last[1][1] end
local seq = tonumber(redis.call('GET', KEYS[1]) or '0')
local epoch = redis.call('GET', KEYS[4])
if not epoch or (epoch == ARGV[1] and seq < tonumber(ARGV[2])) then
  local now = redis.call('TIME')
  epoch = now[1] .. '.' .. now[2]
  redis.call('SET', KEYS[4], epoch)
end
local first = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
local first_seq = 0
if #first > 0 then first_seq = tonumber(string.match(first[1][2][2] or '', '^(%d+) ')) or 0 end
return {redis.call('HGETALL', KEYS[3]), last_id, seq, epoch, first_seq}
