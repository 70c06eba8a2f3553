-- Figs 2, 9, 10 (spec §2.7): broadband (PPPoE + IPoE exporters, all flows, attributed or not) in one
-- week. Returns hour (local hour of day 0-23), direction (IN|OUT) and mean_bps: bytes_est in that
-- local hour summed over the weekdays present, divided by their number, as bit/s (* 8 / 3600).
-- $weekdays_present lists the day indices (0 = Monday .. 4 = Friday) whose broadband inputs are
-- complete (pipeline/ingest/completeness.py): a missing day is left out of the sum and of the
-- divisor, never counted as a day without traffic; none present gives NULL. Every hour and
-- direction is present (0 where no traffic). The week starts at local Monday 00:00 = $week_start_ms.
-- Byte sums are exact (bytes_est as HUGEINT, then DOUBLE) so results do not depend on thread order.
WITH f AS (
    SELECT CAST(((flow_start_ms + $utc_offset_ms) // 3600000) % 24 AS INTEGER) AS hour,
           direction, bytes_est
    FROM read_parquet($flows_glob, hive_partitioning = true)
    WHERE date BETWEEN CAST($date_lo AS DATE) AND CAST($date_hi AS DATE)
      AND service IN ('pppoe', 'ipoe')
      AND flow_start_ms >= $week_start_ms AND flow_start_ms < $week_end_ms
      AND list_contains($weekdays_present, (flow_start_ms - $week_start_ms) // 86400000)
      AND direction IN ('IN', 'OUT')
),
agg AS (
    SELECT hour, direction, CAST(sum(CAST(bytes_est AS HUGEINT)) AS DOUBLE) AS bytes
    FROM f
    GROUP BY hour, direction
),
grid AS (
    SELECT CAST(h.range AS INTEGER) AS hour, d.direction
    FROM range(24) AS h, (VALUES ('IN'), ('OUT')) AS d(direction)
)
SELECT g.hour, g.direction, coalesce(a.bytes, 0.0) / nullif(len($weekdays_present), 0) * 8 / 3600 AS mean_bps
FROM grid AS g
LEFT JOIN agg AS a USING (hour, direction)
ORDER BY g.direction, g.hour
