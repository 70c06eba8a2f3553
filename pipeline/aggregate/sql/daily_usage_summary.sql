-- Tables 1, 2 (spec §2.4): per service and direction, over the user-directions of the registered
-- view user_week_usage that were observed and whose estimate rests on at least $min_sampled_packets
-- sampled packets (mobile billing is not sampled: a billed volume above 0 counts) — the users of
-- Figures 3, 4. Returns service, direction, users (counted), mean_mb and median_mb (daily bytes /
-- 10^6; the median interpolates between the two middle users), users_not_observed (no flow in that
-- direction, or a billed 0: no estimate) and users_below_rule (observed, fewer sampled packets than
-- the rule). The mode is added in Python from the density histogram (mode.py).
WITH x AS (
    SELECT service, 'IN' AS direction, daily_in_bytes AS daily_bytes,
           in_packets_sampled AS packets_sampled
    FROM user_week_usage
    UNION ALL
    SELECT service, 'OUT' AS direction, daily_out_bytes AS daily_bytes,
           out_packets_sampled AS packets_sampled
    FROM user_week_usage
),
classified AS (
    SELECT service, direction, daily_bytes,
           coalesce(daily_bytes, 0) <= 0 AS not_observed,
           coalesce(daily_bytes, 0) > 0
               AND NOT coalesce(packets_sampled >= $min_sampled_packets, true) AS below_rule
    FROM x
)
SELECT service, direction,
       count(*) FILTER (WHERE NOT not_observed AND NOT below_rule) AS users,
       avg(daily_bytes) FILTER (WHERE NOT not_observed AND NOT below_rule) / 1e6 AS mean_mb,
       CAST(quantile_cont(daily_bytes, 0.5) FILTER (WHERE NOT not_observed AND NOT below_rule)
            AS DOUBLE) / 1e6 AS median_mb,
       count(*) FILTER (WHERE not_observed) AS users_not_observed,
       count(*) FILTER (WHERE below_rule) AS users_below_rule
FROM classified
GROUP BY service, direction
ORDER BY service, direction
