//! The Lua scripts: every conditional step is one, so Redis runs it atomically.

use redis::Script;

/// The scripts, loaded once per server and called by hash (redis-rs loads them again after a
/// restart of the server).
pub(super) struct Scripts {
    pub(super) write: Script,
    pub(super) lock: Script,
    pub(super) renew: Script,
    pub(super) unlock: Script,
    pub(super) begin_preparation: Script,
    pub(super) finish_preparation: Script,
}

impl Scripts {
    pub(super) fn new() -> Self {
        Scripts {
            // KEYS: value, the write's generation of records, [lock]. ARGV: mode (any | absent |
            // equals), expected, new text, holder, records' ttl in ms, the write's bit, '1' to
            // extend the records' ttl. The bit is set only if the write is applied, in the same
            // step.
            write: Script::new(
                r"
local refused
if #KEYS > 2 and redis.call('GET', KEYS[3]) ~= ARGV[4] then
  refused = {'lost'}
elseif ARGV[1] ~= 'any' then
  local current = redis.call('GET', KEYS[1])
  if ARGV[1] == 'absent' then
    if current then refused = {'changed', current} end
  elseif not current then
    refused = {'changed'}
  elseif current ~= ARGV[2] then
    refused = {'changed', current}
  end
end
if refused then return refused end
redis.call('SET', KEYS[1], ARGV[3])
redis.call('SETBIT', KEYS[2], ARGV[6], 1)
if ARGV[7] == '1' then redis.call('PEXPIRE', KEYS[2], ARGV[5]) end
return {'done'}
",
            ),
            // KEYS: lock, fence. ARGV: holder, lease in ms. The fencing token is taken in the same
            // step as the lease, so a later holder always has a larger one.
            lock: Script::new(
                r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return redis.call('INCR', KEYS[2])
end
return 0
",
            ),
            // KEYS: lease. ARGV: holder, lease in ms.
            renew: Script::new(
                r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
",
            ),
            // KEYS: lease. ARGV: holder.
            unlock: Script::new(
                r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
",
            ),
            // KEYS: prepared, preparing. ARGV: holder, lease in ms.
            begin_preparation: Script::new(
                r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 2 end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
",
            ),
            // KEYS: prepared, preparing. ARGV: holder, 1 if prepared.
            finish_preparation: Script::new(
                r"
if ARGV[2] == '1' then redis.call('SET', KEYS[1], '1') end
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return 1
",
            ),
        }
    }
}
