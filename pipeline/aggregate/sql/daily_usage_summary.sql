-- Tables 1, 2 (spec §2.4): per service and direction over all users of the registered view
-- user_week_usage (the week's personal users). A user-direction whose estimate rests on fewer than
-- $min_sampled_packets sampled packets (none: not observed; mobile billing is not sampled, a billed 0
-- is not observed) is below the detection limit: it has no per-user value, but it counts among the
-- users and ranks below every user with one (censored at the bottom, not set to 0 MB).
-- Returns service, direction, users (all), mean_mb (the users' estimated total bytes / users / 10^6:
-- the mean needs no per-user value; a direction with no sampled packet adds no bytes), median_mb
-- (interpolates between the two middle users; NULL if a middle user is below the limit),
-- users_not_observed, users_below_rule (observed, fewer sampled packets than the rule).
-- The mode is added in Python from the density histogram (mode.py).
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
    SELECT service, direction, coalesce(daily_bytes, 0.0) AS daily_bytes,
           coalesce(daily_bytes, 0) <= 0 AS not_observed,
           coalesce(daily_bytes, 0) > 0
               AND NOT coalesce(packets_sampled >= $min_sampled_packets, true) AS below_rule
    FROM x
),
ranked AS (
    SELECT *, CASE WHEN not_observed OR below_rule THEN 0.0 ELSE daily_bytes END AS rank_bytes
    FROM classified
)
SELECT service, direction, count(*) AS users,
       avg(daily_bytes) / 1e6 AS mean_mb,
       CASE WHEN 2 * count(*) FILTER (WHERE not_observed OR below_rule) < count(*) - 1
            THEN CAST(quantile_cont(rank_bytes, 0.5) AS DOUBLE) / 1e6 END AS median_mb,
       count(*) FILTER (WHERE not_observed) AS users_not_observed,
       count(*) FILTER (WHERE below_rule) AS users_below_rule
FROM ranked
GROUP BY service, direction
ORDER BY service, direction
