-- Pulse storage, version 1.
-- Applied once by the server at start (PRAGMA user_version tracks the version).

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Each hub topic's epoch and the offset it has reached.
CREATE TABLE topics (
    topic       TEXT PRIMARY KEY,
    epoch       TEXT NOT NULL,
    last_offset INTEGER NOT NULL
);

-- Recent events per topic, exactly as subscribers received them, so that
-- clients can resume across a restart. Pruned to the history length.
CREATE TABLE events (
    topic          TEXT NOT NULL,
    "offset"       INTEGER NOT NULL,
    body           TEXT NOT NULL,
    conflation_key TEXT,
    source_ts      INTEGER,
    PRIMARY KEY (topic, "offset")
) WITHOUT ROWID;

CREATE TABLE ticks (
    id     INTEGER PRIMARY KEY,
    symbol TEXT NOT NULL,
    price  REAL NOT NULL,
    volume REAL NOT NULL,
    ts     INTEGER NOT NULL
);
CREATE INDEX ticks_symbol_ts ON ticks (symbol, ts);
CREATE INDEX ticks_ts ON ticks (ts);

CREATE TABLE candles (
    symbol   TEXT NOT NULL,
    interval TEXT NOT NULL,
    start    INTEGER NOT NULL,
    open     REAL NOT NULL,
    high     REAL NOT NULL,
    low      REAL NOT NULL,
    close    REAL NOT NULL,
    volume   REAL NOT NULL,
    PRIMARY KEY (symbol, interval, start)
) WITHOUT ROWID;
CREATE INDEX candles_interval_start ON candles (interval, start);

CREATE TABLE posts (
    id       INTEGER PRIMARY KEY,
    author   TEXT NOT NULL,
    text     TEXT NOT NULL,
    ts       INTEGER NOT NULL,
    compound REAL NOT NULL,
    pos      REAL NOT NULL,
    neu      REAL NOT NULL,
    neg      REAL NOT NULL,
    label    TEXT NOT NULL,
    symbols  TEXT NOT NULL, -- JSON array
    likes    INTEGER NOT NULL DEFAULT 0,
    shares   INTEGER NOT NULL DEFAULT 0,
    comments INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX posts_ts ON posts (ts);

CREATE TABLE engagement (
    id      INTEGER PRIMARY KEY,
    post_id INTEGER NOT NULL,
    kind    TEXT NOT NULL,
    delta   INTEGER NOT NULL,
    ts      INTEGER NOT NULL
);
CREATE INDEX engagement_ts ON engagement (ts);
