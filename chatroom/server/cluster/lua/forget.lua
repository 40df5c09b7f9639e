-- A node that stops: a leave in each room of each of its users, then drop its heartbeat
-- and its place in the nodes set; returns how many users left.
-- KEYS: seq, events, users, names, nodes, epoch, heartbeat
-- ARGV: maxlen, node, then the leave body around id and name (see leave_all)
local n = leave_all({[ARGV[2]] = true}, ARGV[3], ARGV[4], ARGV[5])
redis.call('DEL', KEYS[7])
redis.call('SREM', KEYS[5], ARGV[2])
finish()
return n
