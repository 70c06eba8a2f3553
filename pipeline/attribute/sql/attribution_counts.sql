-- Counts of one attributed partition: flows, attributed / unattributed flows, and bytes_est
-- (DOUBLE, bytes) in total and without a user.
SELECT
    count(*) AS flows,
    count(user_key) AS attributed,
    count(*) - count(user_key) AS unattributed,
    coalesce(sum(bytes_est), 0) AS bytes_est,
    coalesce(sum(bytes_est) FILTER (WHERE user_key IS NULL), 0) AS unattributed_bytes_est
FROM read_parquet($attributed_path)
