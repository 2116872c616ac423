-- Nothing on SQLite, whose one writer holds the account already: PostgreSQL's account lock
-- is taken shared while the account is far from its caps (its migration 0010). Kept so that
-- both databases count the same schema versions.
SELECT 1;
