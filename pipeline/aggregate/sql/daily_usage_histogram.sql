-- Helper for the mode (spec §2.4): users per log10 bin of daily bytes, from the registered view
-- user_week_usage. Bins are $bin_width decades wide, centred on multiples of $bin_width
-- (bin_index = round(log10(daily bytes) / $bin_width)); users with 0 bytes in a direction are left out.
-- Returns service, direction, bin_index (BIGINT), users (count).
WITH x AS (
    SELECT service, 'IN' AS direction, daily_in_bytes AS daily_bytes FROM user_week_usage
    UNION ALL
    SELECT service, 'OUT' AS direction, daily_out_bytes AS daily_bytes FROM user_week_usage
)
SELECT service, direction, CAST(round(log10(daily_bytes) / $bin_width) AS BIGINT) AS bin_index,
       count(*) AS users
FROM x
WHERE daily_bytes > 0
GROUP BY ALL
ORDER BY service, direction, bin_index
