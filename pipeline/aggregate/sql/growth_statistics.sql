-- Growth statistics (spec §2.2) from the registered view monthly_traffic_normalised (rows of
-- monthly_traffic_normalised.sql, month $report_month of $year-5 up to that of $year): mean rates
-- (bit/s) of whole months.
-- Returns metric, service, direction, value, unit:
--   yoy_pct               (rate in month $report_month of $year / same month of $year-1 - 1) * 100, unit pct
--   ipoe_share_pct        broadband_ipoe / (broadband_pppoe + broadband_ipoe) * 100 in that month, pct
--   ipoe_share_change_pts ipoe_share_pct($year) - ipoe_share_pct($year-1), pts
--   factor_5y             rate($year) / rate($year-5), ratio;   annualised_5y = factor_5y^(1/5), ratio
--   relative_to_norm_month rate($year) / rate of the group's OUT in $normalise_month, ratio
-- Rows whose inputs are missing are left out.
WITH anchor AS (
    SELECT series, direction,
           max(rate_bps) FILTER (WHERE month = printf('%04d-%02d', $year, $report_month)) AS now_bps,
           max(rate_bps) FILTER (WHERE month = printf('%04d-%02d', $year - 1, $report_month)) AS prev_bps,
           max(rate_bps) FILTER (WHERE month = printf('%04d-%02d', $year - 5, $report_month)) AS y5_bps,
           max(normalised) FILTER (WHERE month = printf('%04d-%02d', $year, $report_month)) AS now_norm
    FROM monthly_traffic_normalised
    GROUP BY series, direction
),
share AS (
    SELECT i.direction,
           100.0 * i.now_bps / b.now_bps AS now_pct,
           100.0 * i.prev_bps / b.prev_bps AS prev_pct
    FROM anchor AS i
    JOIN anchor AS b ON b.series = 'broadband' AND b.direction = i.direction
    WHERE i.series = 'broadband_ipoe'
),
stats AS (
    SELECT 1 AS metric_order, 'yoy_pct' AS metric, series AS service, direction,
           100.0 * (now_bps / prev_bps - 1) AS value, 'pct' AS unit
    FROM anchor
    UNION ALL
    SELECT 2, 'ipoe_share_pct', 'broadband', direction, now_pct, 'pct' FROM share
    UNION ALL
    SELECT 3, 'ipoe_share_change_pts', 'broadband', direction, now_pct - prev_pct, 'pts' FROM share
    UNION ALL
    SELECT 4, 'factor_5y', series, direction, now_bps / y5_bps, 'ratio'
    FROM anchor WHERE series IN ('broadband', 'mobile')
    UNION ALL
    SELECT 5, 'annualised_5y', series, direction, pow(now_bps / y5_bps, 1.0 / 5), 'ratio'
    FROM anchor WHERE series IN ('broadband', 'mobile')
    UNION ALL
    SELECT 6, 'relative_to_norm_month', series, direction, now_norm, 'ratio'
    FROM anchor WHERE series IN ('broadband', 'mobile')
)
SELECT metric, service, direction, value, unit
FROM stats
WHERE value IS NOT NULL AND isfinite(value)
ORDER BY metric_order, service, direction
