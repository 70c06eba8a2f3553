-- Figs 5, 6: a sample of at most $n users per service from the registered view user_week_usage,
-- published point by point, so nothing in it may single out a subscriber or link a row to another
-- year's row. The sample draws users in the order of sha256($year || ':' || $seed || ':' || user_key):
-- the user key is itself a hash under the secret salt (never published), so the draw cannot be
-- reproduced from outside; the year makes each year's sample independent of the others'. Values are rounded to $log10_digits decimals of log10(bytes/day) (the
-- resolution of the log axes) and the rows are ordered by value, not by draw. A direction that was
-- not observed, rests on fewer than $min_sampled_packets sampled packets or has a relative standard
-- error above $max_relative_error (user_week_usage.sql) is NULL (not drawn, as in
-- Tables 1, 2). No identifier is returned.
-- Returns service, daily_in_bytes, daily_out_bytes (bytes/day, 10^(rounded log10), or NULL).
WITH drawn AS (
    SELECT service,
           CASE WHEN daily_in_bytes > 0 AND coalesce(in_packets_sampled >= $min_sampled_packets, true)
                AND coalesce(in_rel_error <= $max_relative_error, true)
                THEN pow(10, round(log10(daily_in_bytes), $log10_digits)) END AS daily_in_bytes,
           CASE WHEN daily_out_bytes > 0 AND coalesce(out_packets_sampled >= $min_sampled_packets, true)
                AND coalesce(out_rel_error <= $max_relative_error, true)
                THEN pow(10, round(log10(daily_out_bytes), $log10_digits)) END AS daily_out_bytes,
           row_number() OVER (
               PARTITION BY service
               ORDER BY sha256($year || ':' || $seed || ':' || user_key), user_key
           ) AS draw
    FROM user_week_usage
)
SELECT service, daily_in_bytes, daily_out_bytes
FROM drawn
WHERE draw <= $n
ORDER BY service, daily_out_bytes NULLS LAST, daily_in_bytes NULLS LAST
