-- Pulse storage, version 3: prune ticks and engagement by id, not by an index.
-- Version 2 indexed `received_at` of every tick and engagement row so that
-- pruning could find expired rows. Measured (sqlite3 `.stats`, one group
-- commit of 256 ticks as the writer does it), that index was most of what
-- version 2 added to every commit: +3.7 % VM steps and +3.2 % pages written
-- of the +5.2 % / +4.1 % in all (the candle index: +0.5 % / +0.6 %).
-- Both tables take ids in commit order (INTEGER PRIMARY KEY, only ever
-- deleted from the oldest end), so the expired rows are a prefix in id order:
-- the pruner walks ids from the smallest and stops at the first row still
-- within retention, which needs no index. `received_at` is still written
-- and still what retention counts from.
-- The candle index stays: a candle row is written once per commit (not per
-- tick), so it costs little, and candles are not in arrival order.

DROP INDEX IF EXISTS ticks_received_at;
DROP INDEX IF EXISTS engagement_received_at;
