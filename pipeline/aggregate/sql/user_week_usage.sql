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
-- estimate rests on, the raw packet counters summed; NULL for mobile, whose billing is not sampled).
-- Byte sums are exact (bytes_est as HUGEINT, then DOUBLE) so results do not depend on thread order.
WITH week_flows AS (
    SELECT user_key, user_protocol, service_class, direction, bytes_est, packets,
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
    SELECT user_key, user_protocol, service_class, direction, bytes_est, packets FROM week_flows
    UNION ALL
    SELECT peer_user_key, peer_user_protocol, peer_service_class, 'OUT', bytes_est, packets
    FROM week_flows
    WHERE peer_user_key IS NOT NULL
),
bb AS (
    SELECT 'broadband' AS service, user_key,
           CAST(sum(CAST(bytes_est AS HUGEINT)) FILTER (WHERE direction = 'IN') AS DOUBLE) AS in_bytes,
           CAST(sum(CAST(bytes_est AS HUGEINT)) FILTER (WHERE direction = 'OUT') AS DOUBLE) AS out_bytes,
           CAST(coalesce(sum(packets) FILTER (WHERE direction = 'IN'), 0) AS BIGINT) AS in_packets_sampled,
           CAST(coalesce(sum(packets) FILTER (WHERE direction = 'OUT'), 0) AS BIGINT) AS out_packets_sampled
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
           CAST(NULL AS BIGINT) AS out_packets_sampled
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
       in_packets_sampled, out_packets_sampled
FROM users
ORDER BY service, user_key
