-- Internal (never published): weekly and daily bytes per personal user in the analysis week.
-- Broadband: attributed flows of PPPoE/IPoE exporters whose user_protocol is in $bb_protocols. Each
-- flow counts for its user in its direction and, when it is on-net (peer_user_key set, ARCHITECTURE
-- §4), once more as OUT for the receiving subscriber: both customers' lines carried it.
-- A flow counts whole in the week of its start: flow_start_ms in [$week_start_ms, $week_end_ms).
-- Only the days whose inputs are complete count (pipeline/ingest/completeness.py): broadband flows
-- whose local start day index (0 = Monday, local clock from $week_start_local_ms, local time = UTC +
-- $tz_offset_ms[1 + changes at or before the start]) is in $bb_day_indices, billing rows of the local
-- dates in $mobile_dates; daily = week total / $bb_divisor or $mobile_divisor (params.yaml
-- days_per_week scaled by the share of the week's days present: 7 when complete).
-- Mobile: billing rows of local dates $first_day..$last_day, user_key = sha256($salt || ':' || msisdn)
-- so no phone number leaves the query. uplink = IN, downlink = OUT.
-- Returns service (broadband|mobile), user_key, in_bytes, out_bytes (week totals, DOUBLE; NULL when
-- the direction was not observed: no flow in it, or a billed 0), daily_in_bytes, daily_out_bytes
-- (= week totals / the divisor above), in_packets_sampled, out_packets_sampled (sampled packets the
-- estimate rests on, the raw packet counters summed; NULL for mobile, whose billing is not sampled),
-- in_bytes_var, out_bytes_var (variance of the weekly estimate under 1-in-N packet sampling, bytes^2:
-- the sum over its flows of bytes_est^2 * (1 - 1/sampling_interval) * (1/packets + $record_spread_sq),
-- docs/UNCERTAINTY.md: packets of equal size within a record, plus a spread of the record's mean
-- sampled packet size that does not shrink with the sample, relative sd sqrt($record_spread_sq);
-- 0 for mobile; NULL when not observed), in_rel_error, out_rel_error (sqrt(var) / bytes: relative
-- standard error of the estimate; 0 for mobile; NULL when not observed).
-- Byte sums are exact (bytes_est as HUGEINT, then DOUBLE) so results do not depend on thread order;
-- so are the variance sums (each flow's term rounded to whole bytes^2 first).
WITH week_flows AS (
    SELECT user_key, user_protocol, service_class, direction, bytes_est, packets,
           CAST(round(bytes_est * bytes_est * (1 - 1 / greatest(sampling_interval, 1))
                      * (1 / greatest(packets, 1) + $record_spread_sq)) AS HUGEINT) AS bytes_var,
           peer_user_key, peer_user_protocol, peer_service_class
    FROM read_parquet($flows_glob, hive_partitioning = true)
    WHERE date BETWEEN CAST($date_lo AS DATE) AND CAST($date_hi AS DATE)
      AND flow_start_ms >= $week_start_ms AND flow_start_ms < $week_end_ms
      AND service IN ('pppoe', 'ipoe')
      AND user_key IS NOT NULL
      AND list_contains($bb_day_indices,
                        (flow_start_ms
                         + $tz_offset_ms[1 + len(list_filter($tz_change_ms, lambda c: c <= flow_start_ms))]
                         - $week_start_local_ms) // 86400000)
),
user_sides AS (  -- the row's user, then the receiver of an on-net flow
    SELECT user_key, user_protocol, service_class, direction, bytes_est, packets, bytes_var
    FROM week_flows
    UNION ALL
    SELECT peer_user_key, peer_user_protocol, peer_service_class, 'OUT', bytes_est, packets, bytes_var
    FROM week_flows
    WHERE peer_user_key IS NOT NULL
),
bb AS (
    SELECT 'broadband' AS service, user_key,
           CAST(sum(CAST(bytes_est AS HUGEINT)) FILTER (WHERE direction = 'IN') AS DOUBLE) AS in_bytes,
           CAST(sum(CAST(bytes_est AS HUGEINT)) FILTER (WHERE direction = 'OUT') AS DOUBLE) AS out_bytes,
           CAST(coalesce(sum(packets) FILTER (WHERE direction = 'IN'), 0) AS BIGINT) AS in_packets_sampled,
           CAST(coalesce(sum(packets) FILTER (WHERE direction = 'OUT'), 0) AS BIGINT) AS out_packets_sampled,
           CAST(sum(bytes_var) FILTER (WHERE direction = 'IN') AS DOUBLE) AS in_bytes_var,
           CAST(sum(bytes_var) FILTER (WHERE direction = 'OUT') AS DOUBLE) AS out_bytes_var
    FROM user_sides
    WHERE service_class = 'personal'
      AND list_contains($bb_protocols, user_protocol)
    GROUP BY user_key
),
mob AS (
    SELECT 'mobile' AS service, sha256($salt || ':' || CAST(msisdn AS VARCHAR)) AS user_key,
           nullif(coalesce(CAST(sum(CAST(uplink_bytes AS HUGEINT)) AS DOUBLE), 0.0), 0.0) AS in_bytes,
           nullif(coalesce(CAST(sum(CAST(downlink_bytes AS HUGEINT)) AS DOUBLE), 0.0), 0.0) AS out_bytes,
           CAST(NULL AS BIGINT) AS in_packets_sampled,
           CAST(NULL AS BIGINT) AS out_packets_sampled,
           0.0 AS in_bytes_var,
           0.0 AS out_bytes_var
    FROM read_parquet($mobile_path)
    WHERE service_class = 'personal'
      AND CAST(date AS DATE) BETWEEN CAST($first_day AS DATE) AND CAST($last_day AS DATE)
      AND list_contains($mobile_dates, strftime(CAST(date AS DATE), '%Y-%m-%d'))
    GROUP BY msisdn
),
users AS (
    SELECT * FROM bb
    UNION ALL
    SELECT * FROM mob
)
SELECT service, user_key, in_bytes, out_bytes,
       in_bytes / (CASE service WHEN 'broadband' THEN $bb_divisor ELSE $mobile_divisor END)
           AS daily_in_bytes,
       out_bytes / (CASE service WHEN 'broadband' THEN $bb_divisor ELSE $mobile_divisor END)
           AS daily_out_bytes,
       in_packets_sampled, out_packets_sampled,
       CASE WHEN in_bytes > 0 THEN in_bytes_var END AS in_bytes_var,
       CASE WHEN out_bytes > 0 THEN out_bytes_var END AS out_bytes_var,
       CASE WHEN in_bytes > 0 THEN sqrt(in_bytes_var) / in_bytes END AS in_rel_error,
       CASE WHEN out_bytes > 0 THEN sqrt(out_bytes_var) / out_bytes END AS out_rel_error
FROM users
ORDER BY service, user_key
