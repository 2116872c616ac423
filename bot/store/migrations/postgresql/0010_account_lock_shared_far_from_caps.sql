-- The account's lock taken shared while the account is far from its caps, so that admissions
-- on the operator's key no longer take turns there; exclusive near a cap, as before.
--
-- Why shared is exact: at most ``max_connections`` transactions hold the lock at once, each
-- admitting one job. A shared admission takes only a job of at most cap / (2 x
-- max_connections), and only while what it reads (after the lock: everything committed
-- before it, as each query here sees) is at most half the cap. Take the latest shared
-- admission to read the sums: what it did not see is the jobs of the others holding the lock
-- with it (an exclusive holder waits for them all, and they for it), at most
-- max_connections - 1 of them; with its own, at most half the cap on top of at most half.
-- A shared admission that finds the account past half a cap lets its lock go (the block's
-- subtransaction is rolled back, and its locks with it) and waits for the exclusive one.

-- The account's sums (``bot.store.allowance.ACCOUNT_SQL``, word for word: a test holds them
-- alike), each query with a snapshot of its own.
CREATE FUNCTION account_spent_now(TEXT, TEXT, DOUBLE PRECISION, DOUBLE PRECISION)
    RETURNS TABLE (today DOUBLE PRECISION, month DOUBLE PRECISION)
    LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT made.today + held.today AS today, made.month + held.month AS month
    FROM (SELECT COALESCE(SUM(CASE WHEN day >= $1 THEN cost_usd ELSE 0 END), 0) AS today,
                 COALESCE(SUM(cost_usd), 0) AS month
          FROM account_daily WHERE day >= $2) AS made,
         (SELECT COALESCE(SUM(CASE WHEN created_at >= $3
                                   THEN COALESCE(cost_usd, estimated_usd, 0) ELSE 0 END), 0)
                 AS today,
                 COALESCE(SUM(COALESCE(cost_usd, estimated_usd, 0)), 0) AS month
          FROM jobs
            WHERE state IN ('accepted', 'submitting', 'queued', 'running', 'fetched', 'delivering') AND created_at >= $4 AND simulated = 0
              AND runcomfy_key IS NULL) AS held;
END
$$;

DROP FUNCTION account_spent_locked(TEXT, TEXT, DOUBLE PRECISION, DOUBLE PRECISION, BIGINT);

-- The sums after the account's lock ($5), for a job of $6 USD under a daily cap of $7 and a
-- monthly one of $8 (0: none).
CREATE FUNCTION account_spent_locked(TEXT, TEXT, DOUBLE PRECISION, DOUBLE PRECISION, BIGINT,
                                     DOUBLE PRECISION, DOUBLE PRECISION, DOUBLE PRECISION)
    RETURNS TABLE (today DOUBLE PRECISION, month DOUBLE PRECISION)
    LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    shares CONSTANT DOUBLE PRECISION := 2 * current_setting('max_connections')::INTEGER;
    spent_today DOUBLE PRECISION;
    spent_month DOUBLE PRECISION;
BEGIN
    IF ($7 = 0 OR $6 * shares <= $7) AND ($8 = 0 OR $6 * shares <= $8) THEN
        BEGIN
            PERFORM pg_advisory_xact_lock_shared($5);
            SELECT s.today, s.month INTO spent_today, spent_month
                FROM account_spent_now($1, $2, $3, $4) AS s;
            IF ($7 = 0 OR 2 * spent_today <= $7) AND ($8 = 0 OR 2 * spent_month <= $8) THEN
                RETURN QUERY SELECT spent_today, spent_month;
                RETURN;
            END IF;
            RAISE SQLSTATE 'RCNCP';  -- near a cap: the shared lock let go
        EXCEPTION WHEN SQLSTATE 'RCNCP' THEN
            NULL;
        END;
    END IF;
    PERFORM pg_advisory_xact_lock($5);
    RETURN QUERY SELECT * FROM account_spent_now($1, $2, $3, $4);
END
$$;
