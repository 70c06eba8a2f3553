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
-- bytes_lo, bytes_hi: bytes -/+ $z standard errors under 1-in-N packet sampling (lo floored at 0), the
-- variance summed in the same scan over the flows as in user_week_usage.sql (bytes_est^2 * (1 - 1/N)
-- * (1/packets + $record_spread_sq), docs/UNCERTAINTY.md); normalised_lo, normalised_hi: the same
-- divided by the week's largest total (taken as fixed: its own relative error is of the same small size).
-- Byte sums are exact (bytes_est as HUGEINT, then DOUBLE) so results do not depend on thread order;
-- so are the variance sums (each term rounded to whole MiB^2 and summed as BIGINT).
WITH f AS (
    SELECT (flow_start_ms - $week_start_ms) // $bin_ms AS bin,
           CASE
               WHEN protocol = 6 AND (CASE WHEN src_port < dst_port THEN src_port ELSE dst_port END) = 80 THEN 1
               WHEN protocol = 6 AND (CASE WHEN src_port < dst_port THEN src_port ELSE dst_port END) = 443 THEN 2
               WHEN protocol = 6 AND (CASE WHEN src_port < dst_port THEN src_port ELSE dst_port END) >= 1024 THEN 3
               WHEN protocol = 17 AND (CASE WHEN src_port < dst_port THEN src_port ELSE dst_port END) = 443 THEN 4
               ELSE 0
           END AS class_code,
           CAST(bytes_est AS HUGEINT) AS bytes,
           CAST(round(bytes_est * bytes_est * (1 - 1 / greatest(sampling_interval, 1))
                      * (1 / greatest(packets, 1) + $record_spread_sq) / 1048576) AS BIGINT) AS bytes_var
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
           coalesce(CAST(sum(bytes) FILTER (WHERE class_code = 4) AS DOUBLE), 0.0) AS udp443,
           CAST(sum(bytes_var) AS DOUBLE) * 1048576 AS total_var,
           coalesce(CAST(sum(bytes_var) FILTER (WHERE class_code = 1) AS DOUBLE), 0.0) * 1048576 AS tcp80_var,
           coalesce(CAST(sum(bytes_var) FILTER (WHERE class_code = 2) AS DOUBLE), 0.0) * 1048576 AS tcp443_var,
           coalesce(CAST(sum(bytes_var) FILTER (WHERE class_code = 3) AS DOUBLE), 0.0) * 1048576
               AS tcp_dynamic_var,
           coalesce(CAST(sum(bytes_var) FILTER (WHERE class_code = 4) AS DOUBLE), 0.0) * 1048576 AS udp443_var
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
           CASE WHEN b.present THEN coalesce(a.udp443, 0.0) END AS udp443,
           CASE WHEN b.present THEN coalesce(a.total_var, 0.0) END AS total_var,
           CASE WHEN b.present THEN coalesce(a.tcp80_var, 0.0) END AS tcp80_var,
           CASE WHEN b.present THEN coalesce(a.tcp443_var, 0.0) END AS tcp443_var,
           CASE WHEN b.present THEN coalesce(a.tcp_dynamic_var, 0.0) END AS tcp_dynamic_var,
           CASE WHEN b.present THEN coalesce(a.udp443_var, 0.0) END AS udp443_var
    FROM bins AS b
    LEFT JOIN agg AS a USING (bin)
),
long AS (
    SELECT bin, b_local, port_class, bytes, bytes_var
    FROM wide
    UNPIVOT INCLUDE NULLS ((bytes, bytes_var) FOR port_class IN (
        (total, total_var) AS total, (tcp80, tcp80_var) AS tcp80, (tcp443, tcp443_var) AS tcp443,
        (tcp_dynamic, tcp_dynamic_var) AS tcp_dynamic, (udp443, udp443_var) AS udp443))
),
bounds AS (
    SELECT bin, b_local, port_class, bytes,
           greatest(bytes - $z * sqrt(bytes_var), 0.0) AS bytes_lo,
           bytes + $z * sqrt(bytes_var) AS bytes_hi,
           max(bytes) FILTER (WHERE port_class = 'total') OVER () AS peak
    FROM long
)
SELECT $week_start_ms + bin * $bin_ms AS bin_start_ms,
       (b_local - $week_start_local_ms) / 3600000.0 AS hour_of_week,
       port_class, bytes,
       bytes / nullif(peak, 0) AS normalised,
       bytes_lo, bytes_hi,
       bytes_lo / nullif(peak, 0) AS normalised_lo,
       bytes_hi / nullif(peak, 0) AS normalised_hi
FROM bounds
WHERE list_contains($classes, port_class)
ORDER BY bin_start_ms, list_position($classes, port_class)
