"""Redis 7.0's commands and subcommands the store does not have, with their ACL categories
(as COMMAND INFO lists them, flags' implied ones included).

Not a command table: none of these runs (they answer `unknown command`). They are here for
ACL's bit arithmetic only. In Redis a rule such as `+@read` also allows LOLWUT,
and ACL LIST / GETUSER rebuild a user's rules by counting each category's commands, these
included; counting them too is what makes the store's ACL LIST print Redis's rules (and an
ACL LIST line that names one of them is accepted back by ACL SETUSER and the aclfile).
"""

from __future__ import annotations

REDIS_ONLY = {
    "client|caching": "slow connection",
    "client|tracking": "slow connection",
    "client|trackinginfo": "slow connection",
    "failover": "admin slow dangerous",
    "lolwut": "read fast",
    "migrate": "keyspace write slow dangerous",
    "psync": "admin slow dangerous",
    "replconf": "admin slow dangerous",
    "replicaof": "admin slow dangerous",
    "restore-asking": "keyspace write slow dangerous",
    "slaveof": "admin slow dangerous",
    "sync": "admin slow dangerous",
}
