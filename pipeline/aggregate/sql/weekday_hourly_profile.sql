-- Figs 2, 9, 10 (spec §2.7): broadband (PPPoE + IPoE exporters, all flows, attributed or not) in one
-- week. Returns hour (local hour of day 0-23), direction (IN|OUT) and mean_bps: bytes_est in that
-- local hour summed over the weekdays present, divided by the hours that local hour lasted over those
-- days ($weekday_hours[hour + 1]: the number of weekdays present without DST; a repeated fall-back
-- hour counts 2 on its day, a skipped spring-forward hour 0), as bit/s (* 8 / 3600).
-- $weekdays_present lists the local day indices (0 = Monday .. 4 = Friday) whose broadband inputs are
-- complete (pipeline/ingest/completeness.py): a missing day is left out of the sum and of the
-- divisor, never counted as a day without traffic. Every hour and direction is present (0 where no
-- traffic; NULL for an hour that never occurred or when no weekday is present). Monday-Friday is
-- [$week_start_ms, $weekday_end_ms) (local Monday 00:00 to Saturday 00:00). Local time = UTC + the
-- zone's offset: $tz_offset_ms[1] before the first of $tz_change_ms (UTC ms, ascending; empty without
-- a change), then the next; the local day index counts from $week_start_local_ms (local Monday 00:00
-- on the local clock).
-- mean_bps_lo, mean_bps_hi: mean_bps -/+ $z standard errors under 1-in-N packet sampling (lo floored
-- at 0), the variance summed in the same scan over the flows as in user_week_usage.sql (bytes_est^2 *
-- (1 - 1/N) * (1/packets + $record_spread_sq), docs/UNCERTAINTY.md).
-- Byte sums are exact (bytes_est as HUGEINT, then DOUBLE) so results do not depend on thread order;
-- so are the variance sums (each term rounded to whole MiB^2 and summed as BIGINT).
WITH local_flows AS (
    SELECT flow_start_ms
           + $tz_offset_ms[1 + len(list_filter($tz_change_ms, lambda c: c <= flow_start_ms))]
           AS local_ms,
           direction, bytes_est,
           CAST(round(bytes_est * bytes_est * (1 - 1 / greatest(sampling_interval, 1))
                      * (1 / greatest(packets, 1) + $record_spread_sq) / 1048576) AS BIGINT) AS bytes_var
    FROM read_parquet($flows_glob, hive_partitioning = true)
    WHERE date BETWEEN CAST($date_lo AS DATE) AND CAST($date_hi AS DATE)
      AND service IN ('pppoe', 'ipoe')
      AND flow_start_ms >= $week_start_ms AND flow_start_ms < $weekday_end_ms
      AND direction IN ('IN', 'OUT')
),
f AS (
    SELECT CAST((local_ms // 3600000) % 24 AS INTEGER) AS hour, direction, bytes_est, bytes_var
    FROM local_flows
    WHERE list_contains($weekdays_present, (local_ms - $week_start_local_ms) // 86400000)
),
agg AS (
    SELECT hour, direction, CAST(sum(CAST(bytes_est AS HUGEINT)) AS DOUBLE) AS bytes,
           CAST(sum(bytes_var) AS DOUBLE) * 1048576 AS bytes_var
    FROM f
    GROUP BY hour, direction
),
grid AS (
    SELECT CAST(h.range AS INTEGER) AS hour, d.direction
    FROM range(24) AS h, (VALUES ('IN'), ('OUT')) AS d(direction)
)
SELECT hour, direction, mean_bps,
       greatest(mean_bps - $z * se_bps, 0.0) AS mean_bps_lo,
       mean_bps + $z * se_bps AS mean_bps_hi
FROM (SELECT g.hour, g.direction,
             coalesce(a.bytes, 0.0) / nullif($weekday_hours[g.hour + 1], 0.0) * 8 / 3600 AS mean_bps,
             sqrt(coalesce(a.bytes_var, 0.0)) / nullif($weekday_hours[g.hour + 1], 0.0) * 8 / 3600
                 AS se_bps
      FROM grid AS g
      LEFT JOIN agg AS a USING (hour, direction))
ORDER BY direction, hour
