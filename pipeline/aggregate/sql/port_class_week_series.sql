-- Figs 7, 8 (spec §2.7): bytes per time bin of $bin_ms across the week [$week_start_ms, $week_end_ms)
-- for exporters of service $service (every class, attributed or not, IN + OUT), by port class:
-- total, tcp80, tcp443, tcp_dynamic (TCP with min(src, dst port) >= 1024), udp443; only the classes
-- in $classes. normalised = bytes / the largest total of the week (the panel peak = 1).
-- Returns bin_start_ms (UTC epoch ms), hour_of_week (the local clock at the bin start, in hours
-- since Monday 00:00: 24 × local day + local time of day), port_class, bytes (DOUBLE), normalised;
-- every bin present (0 where no traffic, NULL in a local day whose inputs are missing: $days_present
-- lists the local day indices 0..6 of the week whose exporters all delivered). Bins are of equal length in elapsed time: a DST week has
-- 167 or 169 hours of bins; after a spring-forward change hour_of_week skips an hour, in a repeated
-- fall-back hour two bins share it. Local time = UTC + $tz_offset_ms[1] before the first of
-- $tz_change_ms (UTC ms, ascending; empty without a change), then the next offset; the local day
-- index counts from $week_start_local_ms (local Monday 00:00 as ms since the epoch on the local clock).
-- Byte sums are exact (bytes_est as HUGEINT, then DOUBLE) so results do not depend on thread order.
WITH f AS (
    SELECT (flow_start_ms - $week_start_ms) // $bin_ms AS bin,
           CASE
               WHEN protocol = 6 AND (CASE WHEN src_port < dst_port THEN src_port ELSE dst_port END) = 80 THEN 1
               WHEN protocol = 6 AND (CASE WHEN src_port < dst_port THEN src_port ELSE dst_port END) = 443 THEN 2
               WHEN protocol = 6 AND (CASE WHEN src_port < dst_port THEN src_port ELSE dst_port END) >= 1024 THEN 3
               WHEN protocol = 17 AND (CASE WHEN src_port < dst_port THEN src_port ELSE dst_port END) = 443 THEN 4
               ELSE 0
           END AS class_code,
           CAST(bytes_est AS HUGEINT) AS bytes
    FROM read_parquet($flows_glob, hive_partitioning = true)
    WHERE date BETWEEN CAST($date_lo AS DATE) AND CAST($date_hi AS DATE)
      AND service = $service
      AND flow_start_ms >= $week_start_ms AND flow_start_ms < $week_end_ms
),
agg AS (
    SELECT bin,
           CAST(sum(bytes) AS DOUBLE) AS total,
           coalesce(CAST(sum(bytes) FILTER (WHERE class_code = 1) AS DOUBLE), 0.0) AS tcp80,
           coalesce(CAST(sum(bytes) FILTER (WHERE class_code = 2) AS DOUBLE), 0.0) AS tcp443,
           coalesce(CAST(sum(bytes) FILTER (WHERE class_code = 3) AS DOUBLE), 0.0) AS tcp_dynamic,
           coalesce(CAST(sum(bytes) FILTER (WHERE class_code = 4) AS DOUBLE), 0.0) AS udp443
    FROM f
    GROUP BY bin
),
bin_starts AS (
    SELECT range AS bin,
           $week_start_ms + range * $bin_ms
           + $tz_offset_ms[1 + len(list_filter($tz_change_ms,
                                               lambda c: c <= $week_start_ms + range * $bin_ms))]
           AS b_local
    FROM range(0, ($week_end_ms - $week_start_ms) // $bin_ms)
),
bins AS (
    SELECT bin, b_local,
           list_contains($days_present, (b_local - $week_start_local_ms) // 86400000) AS present
    FROM bin_starts
),
wide AS (
    SELECT b.bin, b.b_local,
           CASE WHEN b.present THEN coalesce(a.total, 0.0) END AS total,
           CASE WHEN b.present THEN coalesce(a.tcp80, 0.0) END AS tcp80,
           CASE WHEN b.present THEN coalesce(a.tcp443, 0.0) END AS tcp443,
           CASE WHEN b.present THEN coalesce(a.tcp_dynamic, 0.0) END AS tcp_dynamic,
           CASE WHEN b.present THEN coalesce(a.udp443, 0.0) END AS udp443
    FROM bins AS b
    LEFT JOIN agg AS a USING (bin)
),
long AS (
    SELECT bin, b_local, port_class, bytes
    FROM wide
    UNPIVOT INCLUDE NULLS (bytes FOR port_class IN (total, tcp80, tcp443, tcp_dynamic, udp443))
)
SELECT $week_start_ms + bin * $bin_ms AS bin_start_ms,
       (b_local - $week_start_local_ms) / 3600000.0 AS hour_of_week,
       port_class, bytes,
       bytes / nullif(max(bytes) FILTER (WHERE port_class = 'total') OVER (), 0) AS normalised
FROM long
WHERE list_contains($classes, port_class)
ORDER BY bin_start_ms, list_position($classes, port_class)
