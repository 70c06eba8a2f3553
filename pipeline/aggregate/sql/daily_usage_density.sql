-- Figs 3, 4, 11 (spec §2.3): probability density of log10(daily bytes) per service and direction,
-- from the registered view user_week_usage: the users of Tables 1, 2 that have a per-user value, i.e.
-- whose estimate rests on at least $min_sampled_packets sampled packets with a relative standard
-- error of at most $max_relative_error (mobile billing is not
-- sampled: a billed volume above 0). The others are below the detection limit: not drawn (Table 1
-- ranks them last; daily_usage_summary counts them, and the text says how many). Bins $bin_width
-- decades wide centred on multiples of $bin_width. Every bin centre in [$min_log10, $max_log10] is
-- listed (0 where empty), plus any occupied bin outside it, so the area (sum of density *
-- $bin_width) is exactly 1 over the users drawn.
-- Returns service, direction, bin_center_log10 (log10 bytes/day), users, density (1/decade).
WITH x AS (
    SELECT service, 'IN' AS direction, daily_in_bytes AS daily_bytes,
           in_packets_sampled AS packets_sampled, in_rel_error AS rel_error
    FROM user_week_usage
    UNION ALL
    SELECT service, 'OUT' AS direction, daily_out_bytes AS daily_bytes,
           out_packets_sampled AS packets_sampled, out_rel_error AS rel_error
    FROM user_week_usage
),
hist AS (
    SELECT service, direction, CAST(round(log10(daily_bytes) / $bin_width) AS BIGINT) AS bin_index,
           count(*) AS users
    FROM x
    WHERE daily_bytes > 0 AND (coalesce(packets_sampled >= $min_sampled_packets, true)
                    AND coalesce(rel_error <= $max_relative_error, true))
    GROUP BY ALL
),
totals AS (
    SELECT service, direction, sum(users) AS users_total FROM hist GROUP BY ALL
),
grid AS (
    SELECT t.service, t.direction, r.range AS bin_index
    FROM totals AS t,
         range(CAST(round($min_log10 / $bin_width) AS BIGINT),
               CAST(round($max_log10 / $bin_width) AS BIGINT) + 1) AS r
    UNION
    SELECT service, direction, bin_index FROM hist
)
SELECT g.service, g.direction, round(g.bin_index * $bin_width, 6) AS bin_center_log10,
       coalesce(h.users, 0) AS users,
       coalesce(h.users, 0) / t.users_total / $bin_width AS density
FROM grid AS g
JOIN totals AS t USING (service, direction)
LEFT JOIN hist AS h USING (service, direction, bin_index)
ORDER BY g.service, g.direction, bin_center_log10
