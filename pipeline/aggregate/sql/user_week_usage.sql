-- Internal (never published): weekly and daily bytes per personal user in the analysis week.
-- Broadband: attributed flows of PPPoE/IPoE exporters whose user_protocol is in $bb_protocols.
-- Mobile: billing rows of local dates $first_day..$last_day, user_key = sha256($salt || ':' || msisdn)
-- so no phone number leaves the query. uplink = IN, downlink = OUT.
-- Returns service (broadband|mobile), user_key, in_bytes, out_bytes (week totals, DOUBLE),
-- daily_in_bytes, daily_out_bytes (= week totals / $days_per_week).
-- Byte sums are exact (bytes_est as HUGEINT, then DOUBLE) so results do not depend on thread order.
WITH bb AS (
    SELECT 'broadband' AS service, user_key,
           coalesce(CAST(sum(CAST(bytes_est AS HUGEINT)) FILTER (WHERE direction = 'IN') AS DOUBLE), 0.0) AS in_bytes,
           coalesce(CAST(sum(CAST(bytes_est AS HUGEINT)) FILTER (WHERE direction = 'OUT') AS DOUBLE), 0.0) AS out_bytes
    FROM read_parquet($flows_glob, hive_partitioning = true)
    WHERE date BETWEEN CAST($date_lo AS DATE) AND CAST($date_hi AS DATE)
      AND flow_start_ms >= $week_start_ms AND flow_start_ms < $week_end_ms
      AND service IN ('pppoe', 'ipoe')
      AND user_key IS NOT NULL
      AND service_class = 'personal'
      AND list_contains($bb_protocols, user_protocol)
    GROUP BY user_key
),
mob AS (
    SELECT 'mobile' AS service, sha256($salt || ':' || CAST(msisdn AS VARCHAR)) AS user_key,
           coalesce(CAST(sum(CAST(uplink_bytes AS HUGEINT)) AS DOUBLE), 0.0) AS in_bytes,
           coalesce(CAST(sum(CAST(downlink_bytes AS HUGEINT)) AS DOUBLE), 0.0) AS out_bytes
    FROM read_parquet($mobile_path)
    WHERE service_class = 'personal'
      AND CAST(date AS DATE) BETWEEN CAST($first_day AS DATE) AND CAST($last_day AS DATE)
    GROUP BY msisdn
),
users AS (
    SELECT * FROM bb
    UNION ALL
    SELECT * FROM mob
)
SELECT service, user_key, in_bytes, out_bytes,
       in_bytes / $days_per_week AS daily_in_bytes,
       out_bytes / $days_per_week AS daily_out_bytes
FROM users
ORDER BY service, user_key
