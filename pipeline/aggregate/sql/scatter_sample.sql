-- Figs 5, 6: a deterministic sample of at most $n users per service from the registered view
-- user_week_usage: users ordered by sha256(user_key || $seed). No identifier is returned.
-- Returns service, daily_in_bytes, daily_out_bytes (bytes/day), in sample order.
WITH ranked AS (
    SELECT service, daily_in_bytes, daily_out_bytes,
           row_number() OVER (PARTITION BY service
                              ORDER BY sha256(user_key || $seed), user_key) AS sample_rank
    FROM user_week_usage
)
SELECT service, daily_in_bytes, daily_out_bytes
FROM ranked
WHERE sample_rank <= $n
ORDER BY service, sample_rank
