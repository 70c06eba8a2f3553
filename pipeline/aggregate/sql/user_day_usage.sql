-- Internal (never published): per personal broadband user and local day of the analysis week, the
-- bytes by the same rule as user_week_usage.sql — a flow counts whole in the local day (and hour, and
-- week) of its start, flow_start_ms, however long it lasts — so the days of a user add up exactly to
-- its weekly total and no flow falls in two days or in none. The local day follows the zone (23- and
-- 25-hour days): local time = UTC + $tz_offset_ms[1 + number of $tz_change_ms at or before the start],
-- day index counted from local Monday 00:00 on the local clock, $week_start_local_ms.
-- Returns service ('broadband'), user_key, day (local date YYYY-MM-DD), in_bytes, out_bytes (DOUBLE;
-- 0 where none that day), flows (flow sides counted that day).
WITH week_flows AS (
    SELECT user_key, user_protocol, service_class, direction, bytes_est, flow_start_ms,
           peer_user_key, peer_user_protocol, peer_service_class
    FROM read_parquet($flows_glob, hive_partitioning = true)
    WHERE date BETWEEN CAST($date_lo AS DATE) AND CAST($date_hi AS DATE)
      AND flow_start_ms >= $week_start_ms AND flow_start_ms < $week_end_ms
      AND service IN ('pppoe', 'ipoe')
      AND user_key IS NOT NULL
),
user_sides AS (  -- the row's user, then the receiver of an on-net flow
    SELECT user_key, user_protocol, service_class, direction, bytes_est, flow_start_ms FROM week_flows
    UNION ALL
    SELECT peer_user_key, peer_user_protocol, peer_service_class, 'OUT', bytes_est, flow_start_ms
    FROM week_flows
    WHERE peer_user_key IS NOT NULL
)
SELECT 'broadband' AS service, user_key,
       strftime(CAST($first_day AS DATE)
                + CAST((flow_start_ms
                        + $tz_offset_ms[1 + len(list_filter($tz_change_ms, lambda c: c <= flow_start_ms))]
                        - $week_start_local_ms) // 86400000 AS INTEGER),
                '%Y-%m-%d') AS day,
       coalesce(CAST(sum(CAST(bytes_est AS HUGEINT)) FILTER (WHERE direction = 'IN') AS DOUBLE), 0.0) AS in_bytes,
       coalesce(CAST(sum(CAST(bytes_est AS HUGEINT)) FILTER (WHERE direction = 'OUT') AS DOUBLE), 0.0) AS out_bytes,
       count(*) AS flows
FROM user_sides
WHERE service_class = 'personal'
  AND list_contains($bb_protocols, user_protocol)
GROUP BY ALL
ORDER BY user_key, day
