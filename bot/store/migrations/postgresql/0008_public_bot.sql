-- A public bot: the servers the operator approved (``python -m bot servers approve``), and the
-- account's spending summed over every server by day (an index for the account caps).
CREATE TABLE approved_servers (
    guild_id    BIGINT PRIMARY KEY,
    approved_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX usage_daily_day ON usage_daily (day, simulated);
