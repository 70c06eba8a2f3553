-- Fig 1 (spec §2.1; also the input of growth_statistics, §2.2): monthly traffic rates of the months
-- $first_month..$last_month (YYYY-MM, both included), from the monthly interface counters.
-- Returns month (YYYY-MM), series (broadband = broadband_pppoe + broadband_ipoe, broadband_pppoe,
-- broadband_ipoe, mobile), direction (IN|OUT), bytes (total in the month, DOUBLE), rate_bps (mean
-- bit/s over the month = bytes * 8 / seconds in the month) and normalised (rate_bps divided by the
-- rate_bps of the group's OUT in $normalise_month; the pppoe/ipoe lines use broadband's OUT).
-- Every month, series and direction of the range has a row: a month missing from the counters
-- has NULL bytes, rate and normalised (a gap, never a fall), and broadband is NULL unless both
-- PPPoE and IPoE are present (a partial sum would be a false fall).
WITH src AS (
    SELECT left(CAST(month AS VARCHAR), 7) AS month, service, direction, CAST(bytes AS DOUBLE) AS bytes
    FROM read_parquet($monthly_path)
),
months AS (
    SELECT strftime(m, '%Y-%m') AS month
    FROM range(CAST($first_month || '-01' AS DATE), CAST($last_month || '-01' AS DATE) + INTERVAL 1 MONTH,
               INTERVAL 1 MONTH) AS t(m)
    UNION
    SELECT $normalise_month
),
grid AS (
    SELECT m.month, s.series, d.direction
    FROM months AS m,
         (VALUES ('broadband'), ('broadband_pppoe'), ('broadband_ipoe'), ('mobile')) AS s(series),
         (VALUES ('IN'), ('OUT')) AS d(direction)
),
per_series AS (
    SELECT month, service AS series, direction, sum(bytes) AS bytes
    FROM src
    GROUP BY month, service, direction
    UNION ALL
    SELECT month, 'broadband' AS series, direction,
           CASE WHEN count(DISTINCT service) = 2 THEN sum(bytes) END AS bytes
    FROM src
    WHERE service IN ('broadband_pppoe', 'broadband_ipoe')
    GROUP BY month, direction
),
rated AS (
    SELECT g.month, g.series, g.direction, p.bytes,
           CASE WHEN g.series = 'mobile' THEN 'mobile' ELSE 'broadband' END AS norm_group,
           p.bytes * 8.0 / (86400.0 * date_diff('day', CAST(g.month || '-01' AS DATE),
                                                 CAST(g.month || '-01' AS DATE) + INTERVAL 1 MONTH)) AS rate_bps
    FROM grid AS g
    LEFT JOIN per_series AS p USING (month, series, direction)
),
norm AS (
    SELECT series AS norm_group, rate_bps AS norm_rate_bps
    FROM rated
    WHERE month = $normalise_month AND direction = 'OUT' AND series IN ('broadband', 'mobile')
)
SELECT r.month, r.series, r.direction, r.bytes, r.rate_bps, r.rate_bps / n.norm_rate_bps AS normalised
FROM rated AS r
LEFT JOIN norm AS n USING (norm_group)
WHERE r.month BETWEEN $first_month AND $last_month
ORDER BY r.month, r.series, r.direction
