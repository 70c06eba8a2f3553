-- Tables 1, 2 (spec §2.4): per service and direction over all users of the population in the
-- registered view user_week_usage (users with 0 bytes included). Returns service, direction,
-- users (count), mean_mb and median_mb (daily bytes / 10^6; the median interpolates between the two
-- middle users). The mode is added in Python from the density histogram (mode.py).
WITH x AS (
    SELECT service, 'IN' AS direction, daily_in_bytes AS daily_bytes FROM user_week_usage
    UNION ALL
    SELECT service, 'OUT' AS direction, daily_out_bytes AS daily_bytes FROM user_week_usage
)
SELECT service, direction, count(*) AS users,
       avg(daily_bytes) / 1e6 AS mean_mb,
       CAST(quantile_cont(daily_bytes, 0.5) AS DOUBLE) / 1e6 AS median_mb
FROM x
GROUP BY service, direction
ORDER BY service, direction
