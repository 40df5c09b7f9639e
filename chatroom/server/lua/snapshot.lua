-- The users, the stream's last id ('0-0' if empty) and the seq, read at once.
-- KEYS: seq, events, users
local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
local last_id = '0-0'
if #last > 0 then last_id = last[1][1] end
return {redis.call('HGETALL', KEYS[3]), last_id, tonumber(redis.call('GET', KEYS[1]) or '0')}
