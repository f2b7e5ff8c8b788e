-- Pulse storage, version 4: when the first and last tick of a candle were,
-- and engagement by post and time.
-- A backfilled tick older than the market engine's candle rings is merged
-- into its stored candle directly (see `storage::CandleMerge`); whether it
-- becomes the candle's open or close depends on these. NULL means unknown
-- (a candle the engine wrote): its open and close are then kept, and only
-- high, low and volume take the merged tick.
ALTER TABLE candles ADD COLUMN first_ts INTEGER;
ALTER TABLE candles ADD COLUMN last_ts INTEGER;

-- Time travel shows a post's counts at a past moment: its totals less its
-- engagement after that moment, found per post by this index.
CREATE INDEX engagement_post_ts ON engagement (post_id, ts);
