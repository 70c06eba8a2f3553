-- Spec §2.5: concentration. For each service and direction, all N users of the registered view
-- user_week_usage (as Tables 1, 2), sorted by that direction's weekly bytes, descending, with the
-- users below the detection limit (fewer than $min_sampled_packets sampled packets, or none, or a
-- relative standard error above $max_relative_error) ranked
-- last; share_pct = bytes of the top ceil(top_pct/100 * N) users / estimated bytes of all N users *
-- 100, for each top_pct in $top_pcts.
-- Returns service, direction, top_pct, share_pct.
WITH x AS (
    SELECT service, 'IN' AS direction, user_key, in_bytes AS bytes,
           in_packets_sampled AS packets_sampled, in_rel_error AS rel_error
    FROM user_week_usage
    UNION ALL
    SELECT service, 'OUT' AS direction, user_key, out_bytes AS bytes,
           out_packets_sampled AS packets_sampled, out_rel_error AS rel_error
    FROM user_week_usage
),
ranked AS (
    SELECT service, direction, bytes,
           row_number() OVER (PARTITION BY service, direction
                              ORDER BY detected DESC, bytes DESC, user_key) AS user_rank,
           count(*) OVER (PARTITION BY service, direction) AS users_total,
           sum(bytes) OVER (PARTITION BY service, direction) AS bytes_total
    FROM (SELECT *, coalesce(bytes, 0) > 0
                    AND coalesce(packets_sampled >= $min_sampled_packets, true)
                    AND coalesce(rel_error <= $max_relative_error, true) AS detected
          FROM x)
),
pcts AS (
    SELECT CAST(unnest($top_pcts) AS DOUBLE) AS top_pct
)
SELECT r.service, r.direction, p.top_pct,
       100.0 * coalesce(sum(r.bytes) FILTER (
           WHERE r.user_rank <= ceil(round(p.top_pct * r.users_total / 100.0, 9))), 0.0)
           / max(r.bytes_total) AS share_pct
FROM ranked AS r, pcts AS p
GROUP BY r.service, r.direction, p.top_pct
ORDER BY r.service, r.direction, p.top_pct DESC
