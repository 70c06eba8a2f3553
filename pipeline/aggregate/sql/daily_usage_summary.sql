-- Tables 1, 2 (spec §2.4): per service and direction over all users of the registered view
-- user_week_usage (the week's personal users). A user-direction whose estimate rests on fewer than
-- $min_sampled_packets sampled packets, or whose relative standard error exceeds $max_relative_error
-- (no packet: not observed; mobile billing is not sampled, a billed 0
-- is not observed) is below the detection limit: it has no per-user value, but it counts among the
-- users and ranks below every user with one (censored at the bottom, not set to 0 MB).
-- Returns service, direction, users (all), mean_mb (the users' estimated total bytes / users / 10^6:
-- the mean needs no per-user value; a direction with no sampled packet adds no bytes), median_mb
-- (interpolates between the two middle users; NULL if a middle user is below the limit),
-- users_not_observed, users_below_rule (observed, fewer sampled packets than the rule),
-- mean_mb_lo, mean_mb_hi (mean_mb -/+ $z standard errors; the variance of the mean is the sum of the
-- users' daily variances / users^2: in/out_bytes_var scaled as the daily bytes are, 0 for mobile).
-- The mode, and the intervals of median and mode, are added in Python (mode.py, uncertainty.py).
WITH x AS (
    SELECT service, 'IN' AS direction, daily_in_bytes AS daily_bytes,
           in_bytes_var * pow(daily_in_bytes / in_bytes, 2) AS daily_var,
           in_packets_sampled AS packets_sampled, in_rel_error AS rel_error
    FROM user_week_usage
    UNION ALL
    SELECT service, 'OUT' AS direction, daily_out_bytes AS daily_bytes,
           out_bytes_var * pow(daily_out_bytes / out_bytes, 2) AS daily_var,
           out_packets_sampled AS packets_sampled, out_rel_error AS rel_error
    FROM user_week_usage
),
classified AS (
    SELECT service, direction, coalesce(daily_bytes, 0.0) AS daily_bytes,
           coalesce(daily_var, 0.0) AS daily_var,
           coalesce(daily_bytes, 0) <= 0 AS not_observed,
           coalesce(daily_bytes, 0) > 0
               AND NOT (coalesce(packets_sampled >= $min_sampled_packets, true)
                    AND coalesce(rel_error <= $max_relative_error, true)) AS below_rule
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
       count(*) FILTER (WHERE below_rule) AS users_below_rule,
       (avg(daily_bytes) - $z * sqrt(sum(daily_var)) / count(*)) / 1e6 AS mean_mb_lo,
       (avg(daily_bytes) + $z * sqrt(sum(daily_var)) / count(*)) / 1e6 AS mean_mb_hi
FROM ranked
GROUP BY service, direction
ORDER BY service, direction
