-- Pulse storage, version 2: retention counts from arrival.
-- Retention used to compare each row's own data timestamp with the clock, so
-- a backfill of old data (a 2019 replay) was deleted by the next prune round
-- right after it was acknowledged. Each row now also records when the node
-- committed it (`received_at`) or last changed it (`updated_at`, a candle
-- changes with every tick), and pruning measures the age from that.
-- Rows written before this version have NULL there; pruning falls back to
-- their data timestamp, as before, so they age out on the old schedule.

ALTER TABLE ticks ADD COLUMN received_at INTEGER;
CREATE INDEX ticks_received_at ON ticks (received_at);

ALTER TABLE candles ADD COLUMN updated_at INTEGER;
CREATE INDEX candles_interval_updated_at ON candles (interval, updated_at);

ALTER TABLE engagement ADD COLUMN received_at INTEGER;
CREATE INDEX engagement_received_at ON engagement (received_at);
